//go:build integration

package audit_test

import (
	"context"
	"fmt"
	"math/big"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/internal/audit"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
)

const (
	testARN   = "arn:aws:kinesis:us-east-1:123456789012:stream/audit"
	testShard = "shardId-000000000003"
)

// testStart is the start of the tests' first batch: derived from the local stack's clock, because
// DynamoDB's TTL sweeper deletes items whose expiresAt (start plus the retention) has passed by its clock.
// The 456 ms keep the millisecond formatting under test.
var testStart = localenv.Now().UTC().Truncate(time.Second).Add(456 * time.Millisecond)

// iso formats t as the audit table writes instants.
func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// delivered is a batch whose every record is in Pulsar.
func delivered(first, last, req string) relay.AuditRecord {
	return relay.AuditRecord{
		StreamARN: testARN, ShardID: testShard, RequestID: req, Topic: "persistent://public/default/audit",
		FirstSequenceNumber: first, LastSequenceNumber: last, Records: 3, Published: 3,
		CheckpointSequenceNumber: last, CheckpointMessageID: "mid-" + req,
		StartedAt: testStart, Duration: 42 * time.Millisecond,
	}
}

func record(t *testing.T, tab *audit.Table, b relay.AuditRecord) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tab.Record(ctx, b); err != nil {
		t.Fatalf("Record %s: %v", b.RequestID, err)
	}
}

func TestCheckpointAdvancesAcrossInvocations(t *testing.T) {
	l := newLocal(t)
	tab := audit.New(l.db, audit.Options{Table: l.table})
	pk := audit.Key(testARN, testShard)
	steps := []struct {
		first, last, req string
	}{
		{"49590338271490256608559692538361571095921575989136588898", "49590338271490256608559692538361571095921575989136588900", "req-1"},
		{"49590338271490256608559692538361571095921575989136588901", "49590338271490256608559692538361571095921575989136589000", "req-2"},
		{"49590338271490256608559692538361571095921575989136589001", "49590338271490256608559692538361571095921575989136600000", "req-3"},
	}
	for i, s := range steps {
		b := delivered(s.first, s.last, s.req)
		b.StartedAt = testStart.Add(time.Duration(i) * time.Second)
		record(t, tab, b)
		cp := attrs(l.item(t, pk, audit.CheckpointSK))
		want := map[string]string{
			"pk": pk, "sk": "checkpoint", "sequenceNumber": s.last, "sequenceKey": "056:" + s.last,
			"updatedAt": iso(b.StartedAt.Add(b.Duration)), "requestId": s.req,
			"topic": b.Topic, "lastMessageId": "mid-" + s.req,
		}
		if fmt.Sprint(cp) != fmt.Sprint(want) {
			t.Errorf("after invocation %d checkpoint\n got %v\nwant %v", i+1, cp, want)
		}
	}
	if n := len(l.items(t, pk)); n != 1+len(steps) {
		t.Errorf("%d items, want the checkpoint and %d batch items", n, len(steps))
	}
}

// sequenceNumbers returns distinct decimal numbers of 1 to 129 digits, among them neighbours across a
// change of digit count, where string order and integer order disagree.
func sequenceNumbers(rng *rand.Rand, n int) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, s := range []string{"0", "9", "10", "99", "100", strings.Repeat("9", 56), "1" + strings.Repeat("0", 56),
		"2" + strings.Repeat("0", 55), strings.Repeat("9", 128), "1" + strings.Repeat("0", 128)} {
		add(s)
	}
	for len(out) < n {
		digits := 1 + rng.Intn(129)
		b := []byte{byte('1' + rng.Intn(9))}
		for len(b) < digits {
			b = append(b, byte('0'+rng.Intn(10)))
		}
		add(string(b))
	}
	return out
}

// A stale invocation finishing late cannot move the checkpoint back: many invocations with shuffled
// sequence numbers of different lengths finish concurrently; the checkpoint ends at the maximum, and
// all its fields come from that one invocation.
func TestStaleInvocationCannotMoveCheckpointBack(t *testing.T) {
	l := newLocal(t)
	tab := audit.New(l.db, audit.Options{Table: l.table})
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for round := 0; round < 3; round++ {
		shard := fmt.Sprintf("shardId-%012d", round)
		seqs := sequenceNumbers(rng, 150)
		rng.Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
		maxSeq := new(big.Int)
		var want string
		for _, s := range seqs {
			if n, _ := new(big.Int).SetString(s, 10); n.Cmp(maxSeq) >= 0 {
				maxSeq, want = n, s
			}
		}

		var wg sync.WaitGroup
		errs := make(chan error, len(seqs))
		sem := make(chan struct{}, 32)
		for i, s := range seqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				b := delivered(s, s, "req-"+s)
				b.ShardID = shard
				b.StartedAt = testStart.Add(time.Duration(i) * time.Millisecond)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := tab.Record(ctx, b); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		cp := attrs(l.item(t, audit.Key(testARN, shard), audit.CheckpointSK))
		if cp["sequenceNumber"] != want || cp["requestId"] != "req-"+want || cp["lastMessageId"] != "mid-req-"+want ||
			cp["sequenceKey"] != fmt.Sprintf("%03d:%s", len(want), want) {
			t.Errorf("round %d: checkpoint %v, want the maximum %s (%d digits) with its own fields", round, cp, want, len(want))
		}
		if n := len(l.items(t, audit.Key(testARN, shard))); n != len(seqs)+1 {
			t.Errorf("round %d: %d items, want %d batch items and the checkpoint", round, n, len(seqs))
		}
	}
}

// Late and repeated invocations, one after the other: none with a lower or equal checkpoint changes any
// field of the recorded one.
func TestLateOrEqualCheckpointChangesNothing(t *testing.T) {
	const high = "49590338271490256608559692538361571095921575989136588999"
	cases := []struct {
		name, late string
	}{
		{"lower, same length", "49590338271490256608559692538361571095921575989136588998"},
		{"lower, shorter, larger as a string", "9" + strings.Repeat("9", 54)},
		{"equal (a retry of the same batch)", high},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newLocal(t)
			tab := audit.New(l.db, audit.Options{Table: l.table})
			record(t, tab, delivered("1", high, "req-high"))
			before := attrs(l.item(t, audit.Key(testARN, testShard), audit.CheckpointSK))

			late := delivered("1", c.late, "req-late")
			late.StartedAt = testStart.Add(time.Hour)
			late.Topic, late.CheckpointMessageID = "persistent://public/default/other", "mid-late"
			record(t, tab, late)
			after := attrs(l.item(t, audit.Key(testARN, testShard), audit.CheckpointSK))
			if fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("checkpoint changed\nbefore %v\n after %v", before, after)
			}
			// The late batch is still described.
			if b := l.item(t, audit.Key(testARN, testShard), audit.BatchSK("1", "req-late")); attrs(b)["lastSequenceNumber"] != c.late {
				t.Errorf("late batch item %v", attrs(b))
			}
		})
	}
}

// TTL is on, on expiresAt, and only batch items carry it: startedAt plus the retention, in epoch seconds.
func TestBatchItemsExpireCheckpointsDoNot(t *testing.T) {
	l := newLocal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ttl, err := l.db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &l.table})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || d.AttributeName == nil || *d.AttributeName != "expiresAt" {
		t.Fatalf("TTL %+v, want enabled on expiresAt", d)
	}

	for _, c := range []struct {
		name      string
		retention time.Duration
		want      time.Duration
	}{
		{"default", 0, 7 * 24 * time.Hour},
		{"three days", 72 * time.Hour, 72 * time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			tab := audit.New(l.db, audit.Options{Table: l.table, Retention: c.retention})
			shard := "shardId-" + strings.ReplaceAll(c.name, " ", "-")
			b := delivered("100", "200", "req-"+shard)
			b.ShardID = shard
			record(t, tab, b)
			// Exactly two items: the checkpoint, which never expires, and the batch item, which expires
			// the retention after its start.
			got := map[string]string{}
			for _, item := range l.items(t, audit.Key(testARN, shard)) {
				a := attrs(item)
				got[a["sk"]] = a["expiresAt"]
			}
			want := map[string]string{
				audit.CheckpointSK: "",
				audit.BatchSK(b.FirstSequenceNumber, b.RequestID): "N:" + strconv.FormatInt(b.StartedAt.Add(c.want).Unix(), 10),
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("items (sort key: expiresAt) %v, want %v", got, want)
			}
		})
	}
}

// The batch item holds what the invocation did: a partly failed batch names the record Lambda retries
// from, a delivered one does not; a batch with no record delivered leaves the checkpoint alone.
func TestBatchItemFields(t *testing.T) {
	l := newLocal(t)
	tab := audit.New(l.db, audit.Options{Table: l.table})
	partial := relay.AuditRecord{
		StreamARN: testARN, ShardID: testShard, RequestID: "req-partial", Topic: "persistent://public/default/t",
		FirstSequenceNumber: "1000", LastSequenceNumber: "1009", Records: 10, Published: 7, DeadLettered: 1,
		FailedSequenceNumber: "1008", CheckpointSequenceNumber: "1007", CheckpointMessageID: "5:3:-1:2",
		StartedAt: testStart, Duration: 1234567 * time.Microsecond,
	}
	none := relay.AuditRecord{
		StreamARN: testARN, ShardID: testShard, RequestID: "req-none", Topic: "persistent://public/default/t",
		FirstSequenceNumber: "1008", LastSequenceNumber: "1009", Records: 2, FailedSequenceNumber: "1008",
		StartedAt: testStart.Add(time.Minute), Duration: 3 * time.Second,
	}
	record(t, tab, partial)
	record(t, tab, none)
	pk := audit.Key(testARN, testShard)
	for _, c := range []struct {
		b    relay.AuditRecord
		want map[string]string
	}{
		{partial, map[string]string{
			"pk": pk, "sk": "batch#1000#req-partial", "firstSequenceNumber": "1000", "lastSequenceNumber": "1009",
			"records": "N:10", "published": "N:7", "deadLettered": "N:1", "failedSequenceNumber": "1008",
			"checkpointSequenceNumber": "1007", "startedAt": iso(testStart), "durationMs": "N:1234",
			"topic": "persistent://public/default/t", "requestId": "req-partial",
			"expiresAt": "N:" + strconv.FormatInt(testStart.Add(audit.DefaultRetention).Unix(), 10),
		}},
		{none, map[string]string{
			"pk": pk, "sk": "batch#1008#req-none", "firstSequenceNumber": "1008", "lastSequenceNumber": "1009",
			"records": "N:2", "published": "N:0", "deadLettered": "N:0", "failedSequenceNumber": "1008",
			"startedAt": iso(testStart.Add(time.Minute)), "durationMs": "N:3000",
			"topic": "persistent://public/default/t", "requestId": "req-none",
			"expiresAt": "N:" + strconv.FormatInt(testStart.Add(time.Minute+audit.DefaultRetention).Unix(), 10),
		}},
	} {
		got := attrs(l.item(t, pk, audit.BatchSK(c.b.FirstSequenceNumber, c.b.RequestID)))
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("batch item\n got %v\nwant %v", got, c.want)
		}
	}
	if cp := attrs(l.item(t, pk, audit.CheckpointSK)); cp["sequenceNumber"] != "1007" || cp["requestId"] != "req-partial" || cp["lastMessageId"] != "5:3:-1:2" {
		t.Errorf("checkpoint %v, want 1007 from req-partial", cp)
	}
}

// One conditional update and one put per invocation, whatever the batch holds; none of either when
// no record was delivered.
func TestWriteRequestsPerInvocation(t *testing.T) {
	l := newLocal(t)
	tab := audit.New(l.db, audit.Options{Table: l.table})
	for _, c := range []struct {
		name string
		b    relay.AuditRecord
		want map[string]int
	}{
		{"one record", delivered("5", "5", "req-a"), map[string]int{"UpdateItem": 1, "PutItem": 1}},
		{"10000 records", func() relay.AuditRecord {
			b := delivered("6", "10005", "req-b")
			b.Records, b.Published = 10000, 10000
			return b
		}(), map[string]int{"UpdateItem": 1, "PutItem": 1}},
		{"stale checkpoint", delivered("1", "2", "req-c"), map[string]int{"UpdateItem": 1, "PutItem": 1}},
		{"nothing delivered", func() relay.AuditRecord {
			b := delivered("10006", "10010", "req-d")
			b.Published, b.CheckpointSequenceNumber, b.CheckpointMessageID, b.FailedSequenceNumber = 0, "", "", "10006"
			return b
		}(), map[string]int{"PutItem": 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			record(t, tab, c.b)
			if got := l.reqs.take(); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("requests %v, want %v", got, c.want)
			}
		})
	}
}

// A checkpoint that is not a sequence number is refused without a request; the batch item is still
// written.
func TestInvalidCheckpointSequenceNumber(t *testing.T) {
	l := newLocal(t)
	tab := audit.New(l.db, audit.Options{Table: l.table})
	b := delivered("1", "1x", "req-bad")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := tab.Record(ctx, b)
	if err == nil || !strings.Contains(err.Error(), "not a decimal number") {
		t.Fatalf("Record: %v, want an invalid sequence number error", err)
	}
	if got := l.reqs.take(); fmt.Sprint(got) != fmt.Sprint(map[string]int{"PutItem": 1}) {
		t.Errorf("requests %v, want the put only", got)
	}
	if item := l.item(t, audit.Key(testARN, testShard), audit.BatchSK("1", "req-bad")); item == nil {
		t.Error("batch item missing")
	}
}

// The cost of the audit to an invocation: one Record (both writes, concurrently) against DynamoDB
// Local, measured over consecutive invocations of one shard.
func TestRecordLatency(t *testing.T) {
	l := newLocal(t)
	tab := audit.New(l.db, audit.Options{Table: l.table})
	const n = 200
	took := make([]time.Duration, n)
	for i := range took {
		b := delivered(strconv.Itoa(10*i+1), strconv.Itoa(10*i+10), fmt.Sprintf("req-%d", i))
		start := time.Now()
		record(t, tab, b)
		took[i] = time.Since(start)
	}
	slices.Sort(took)
	p50, p99, maxTook := took[n/2], took[n*99/100], took[n-1]
	t.Logf("Record against DynamoDB Local, %d invocations: p50 %v, p99 %v, max %v", n, p50, p99, maxTook)
	// Far below the 2 s audit timeout and the default 1 s deadline margin, even on a busy machine.
	if p50 > 100*time.Millisecond {
		t.Errorf("median Record took %v", p50)
	}
}

// The premise of every instant in these tests: DynamoDB's clock, which its TTL sweeper reads, is the
// tests' clock (localenv.Now), also when infra/local/clockshift.sh runs both years ahead.
func TestDynamoDBClockIsTheTestsClock(t *testing.T) {
	l := newLocal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := localenv.Now()
	d, err := l.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &l.table})
	if err != nil {
		t.Fatal(err)
	}
	created := *d.Table.CreationDateTime
	// The table was created just before, by newLocal; a minute covers a slow machine, and a year's
	// shift missed would be off by 365 days.
	if skew := before.Sub(created); skew < -time.Minute || skew > time.Minute {
		t.Fatalf("DynamoDB created the table at %s by its clock, the tests' clock says %s (shift %s): they disagree by %s",
			created.UTC(), before.UTC(), localenv.ClockShift(), skew)
	}
}
