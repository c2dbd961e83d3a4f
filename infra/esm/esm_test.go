//go:build unix

package esm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/streambridge/kinesis-pulsar/infra/onfailure"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
	"github.com/streambridge/kinesis-pulsar/internal/kpl"
)

const testARN = "arn:aws:kinesis:eu-west-1:111122223333:stream/orders"

// fakeShard is one shard of fakeKinesis.
type fakeShard struct {
	id, parent string
	records    []types.Record
	closed     bool // NextShardIterator is nil once every record was read
}

// fakeKinesis serves shards from memory, with Kinesis's iterator semantics. Unit tests use it to drive
// the poller's logic; the integration test runs the same poller against moto.
type fakeKinesis struct {
	mu     sync.Mutex
	shards []*fakeShard
	// afterRead, when set, runs after every GetRecords call (under the lock) with the call's number.
	afterRead func(k *fakeKinesis, call int)
	// expireOnce makes the call with this number fail with ExpiredIteratorException.
	expireOnce int
	reads      int
	iterTypes  []types.ShardIteratorType
}

func (k *fakeKinesis) shard(id string) *fakeShard {
	for _, s := range k.shards {
		if s.id == id {
			return s
		}
	}
	return nil
}

// addRecords appends n records with partition key "k" to a shard, numbering sequences on from its last.
func (s *fakeShard) addRecords(n int, size int) {
	for range n {
		seq := 1000 + len(s.records) + 1
		s.records = append(s.records, types.Record{
			SequenceNumber:              aws.String(strconv.Itoa(seq)),
			PartitionKey:                aws.String("k"),
			Data:                        bytes.Repeat([]byte{'x'}, size),
			ApproximateArrivalTimestamp: aws.Time(time.Date(2026, 11, 22, 14, 2, 3, 456_789_000, time.UTC)),
		})
	}
}

func (k *fakeKinesis) ListShards(_ context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if aws.ToString(in.StreamName) != "orders" {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no stream " + aws.ToString(in.StreamName))}
	}
	out := &kinesis.ListShardsOutput{}
	for _, s := range k.shards {
		sh := types.Shard{ShardId: aws.String(s.id)}
		if s.parent != "" {
			sh.ParentShardId = aws.String(s.parent)
		}
		out.Shards = append(out.Shards, sh)
	}
	return out, nil
}

// Iterators are "shard/position", position being the index of the next record.
func (k *fakeKinesis) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.shard(aws.ToString(in.ShardId))
	if s == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no shard")}
	}
	k.iterTypes = append(k.iterTypes, in.ShardIteratorType)
	pos := 0
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeTrimHorizon:
	case types.ShardIteratorTypeLatest:
		pos = len(s.records)
	case types.ShardIteratorTypeAfterSequenceNumber:
		pos = slices.IndexFunc(s.records, func(r types.Record) bool {
			return aws.ToString(r.SequenceNumber) == aws.ToString(in.StartingSequenceNumber)
		}) + 1
		if pos == 0 {
			return nil, fmt.Errorf("no record %s", aws.ToString(in.StartingSequenceNumber))
		}
	default:
		return nil, fmt.Errorf("iterator type %s not faked", in.ShardIteratorType)
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(fmt.Sprintf("%s/%d", s.id, pos))}, nil
}

func (k *fakeKinesis) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reads++
	if k.afterRead != nil {
		defer k.afterRead(k, k.reads)
	}
	if k.reads == k.expireOnce {
		return nil, &types.ExpiredIteratorException{Message: aws.String("expired")}
	}
	id, p, _ := strings.Cut(aws.ToString(in.ShardIterator), "/")
	pos, err := strconv.Atoi(p)
	s := k.shard(id)
	if err != nil || s == nil {
		return nil, fmt.Errorf("bad iterator %q", aws.ToString(in.ShardIterator))
	}
	end := min(len(s.records), pos+int(aws.ToInt32(in.Limit)))
	out := &kinesis.GetRecordsOutput{
		Records:            s.records[pos:end],
		MillisBehindLatest: aws.Int64(int64(len(s.records)-end) * 1000),
	}
	if !(s.closed && end == len(s.records)) {
		out.NextShardIterator = aws.String(fmt.Sprintf("%s/%d", s.id, end))
	}
	return out, nil
}

// answer is one scripted invocation result.
type answer struct {
	payload string // the function's response; "%s" is replaced by the batch's second sequence number
	fnErr   bool   // a function error document
	err     error  // a driver error (timeout, crash)
}

// fakeInvoker answers from a script, then with a complete success, and records every batch.
type fakeInvoker struct {
	mu      sync.Mutex
	script  []answer
	batches []batchSeen
}

type batchSeen struct {
	shard string
	seqs  []string
	event events.KinesisEvent
	raw   []byte
}

func (f *fakeInvoker) Invoke(_ context.Context, payload []byte) (runtimeapi.Result, error) {
	var ev events.KinesisEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return runtimeapi.Result{}, fmt.Errorf("fake invoker: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := batchSeen{event: ev, raw: payload}
	for _, r := range ev.Records {
		seen.shard, _, _ = strings.Cut(r.EventID, ":")
		seen.seqs = append(seen.seqs, r.Kinesis.SequenceNumber)
	}
	f.batches = append(f.batches, seen)
	a := answer{payload: `{"batchItemFailures":[]}`}
	if len(f.script) > 0 {
		a, f.script = f.script[0], f.script[1:]
	}
	res := runtimeapi.Result{RequestID: fmt.Sprintf("req-%d", len(f.batches))}
	switch {
	case a.err != nil:
		return res, a.err
	case a.fnErr:
		res.Error = &runtimeapi.FunctionError{Type: "Unhandled", Message: "boom"}
	default:
		p := a.payload
		if strings.Contains(p, "%s") && len(seen.seqs) > 1 {
			p = fmt.Sprintf(p, seen.seqs[1])
		}
		res.Payload = []byte(p)
	}
	return res, nil
}

func (f *fakeInvoker) seen() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]string, len(f.batches))
	for i, b := range f.batches {
		out[i] = b.seqs
	}
	return out
}

func seqs(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, strconv.Itoa(1000+i))
	}
	return out
}

// testOptions are fast: no real waiting between polls and retries.
func testOptions() Options {
	return Options{
		StreamARN: testARN, ReportBatchItemFailures: true, MaxRetryAttempts: -1, StopAtLatest: true,
		RetryBackoff: time.Millisecond, PollInterval: time.Millisecond,
	}
}

func oneShard(n int) *fakeKinesis {
	s := &fakeShard{id: "shardId-000000000000"}
	s.addRecords(n, 8)
	return &fakeKinesis{shards: []*fakeShard{s}}
}

func TestRunCheckpointsAndRetries(t *testing.T) {
	t.Parallel()
	const partialAtSecond = `{"batchItemFailures":[{"itemIdentifier":"%s"}]}`
	timeout := fmt.Errorf("invoke req: %w after 3s", runtimeapi.ErrTimeout)
	tests := []struct {
		name       string
		records    int
		batchSize  int
		maxRetries int
		noReport   bool // ReportBatchItemFailures off
		script     []answer
		want       [][]string
		checkpoint string
		// failed lists the given-up batches as start-end:invocations.
		failed []string
	}{
		{
			name: "batches of two, all succeed", records: 5, batchSize: 2, maxRetries: -1,
			want: [][]string{seqs(1, 2), seqs(3, 4), seqs(5, 5)}, checkpoint: "1005",
		},
		{
			name: "a reported record is retried with the rest of its batch", records: 4, batchSize: 4, maxRetries: -1,
			script: []answer{{payload: partialAtSecond}},
			want:   [][]string{seqs(1, 4), seqs(2, 4)}, checkpoint: "1004",
		},
		{
			name: "the lowest of several reported records wins", records: 4, batchSize: 4, maxRetries: -1,
			script: []answer{{payload: `{"batchItemFailures":[{"itemIdentifier":"1004"},{"itemIdentifier":"1003"}]}`}},
			want:   [][]string{seqs(1, 4), seqs(3, 4)}, checkpoint: "1004",
		},
		{
			name: "a function error retries the same batch", records: 3, batchSize: 2, maxRetries: -1,
			script: []answer{{fnErr: true}},
			want:   [][]string{seqs(1, 2), seqs(1, 2), seqs(3, 3)}, checkpoint: "1003",
		},
		{
			name: "a timeout retries the same batch", records: 3, batchSize: 2, maxRetries: -1,
			script: []answer{{err: timeout}},
			want:   [][]string{seqs(1, 2), seqs(1, 2), seqs(3, 3)}, checkpoint: "1003",
		},
		{
			name: "an empty itemIdentifier fails the whole batch", records: 2, batchSize: 2, maxRetries: -1,
			script: []answer{{payload: `{"batchItemFailures":[{"itemIdentifier":""}]}`}},
			want:   [][]string{seqs(1, 2), seqs(1, 2)}, checkpoint: "1002",
		},
		{
			name: "unbounded retries go on until the batch succeeds", records: 2, batchSize: 2, maxRetries: -1,
			script: []answer{{fnErr: true}, {fnErr: true}, {fnErr: true}},
			want:   [][]string{seqs(1, 2), seqs(1, 2), seqs(1, 2), seqs(1, 2)}, checkpoint: "1002",
		},
		{
			name: "exhausted retries skip the batch to the on-failure destination", records: 3, batchSize: 2, maxRetries: 1,
			script: []answer{{fnErr: true}, {fnErr: true}},
			want:   [][]string{seqs(1, 2), seqs(1, 2), seqs(3, 3)}, checkpoint: "1003",
			failed: []string{"1001-1002:2"},
		},
		{
			name: "no retries at all with MaxRetryAttempts 0", records: 3, batchSize: 2, maxRetries: 0,
			script: []answer{{err: timeout}},
			want:   [][]string{seqs(1, 2), seqs(3, 3)}, checkpoint: "1003",
			failed: []string{"1001-1002:1"},
		},
		{
			name: "a partial failure that keeps failing is skipped from the reported record", records: 4, batchSize: 3, maxRetries: 1,
			script: []answer{{payload: partialAtSecond}, {payload: `{"batchItemFailures":[{"itemIdentifier":"1002"}]}`}},
			want:   [][]string{seqs(1, 3), seqs(2, 3), seqs(4, 4)}, checkpoint: "1004",
			failed: []string{"1002-1003:2"},
		},
		{
			name: "a success resets the retry count", records: 4, batchSize: 2, maxRetries: 1,
			script: []answer{{fnErr: true}, {}, {fnErr: true}},
			want:   [][]string{seqs(1, 2), seqs(1, 2), seqs(3, 4), seqs(3, 4)}, checkpoint: "1004",
		},
		{
			name: "without ReportBatchItemFailures the answer is ignored", records: 2, batchSize: 2, maxRetries: -1, noReport: true,
			script: []answer{{payload: partialAtSecond}},
			want:   [][]string{seqs(1, 2)}, checkpoint: "1002",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := oneShard(tt.records)
			fn := &fakeInvoker{script: slices.Clone(tt.script)}
			opts := testOptions()
			opts.BatchSize, opts.MaxRetryAttempts, opts.ReportBatchItemFailures = tt.batchSize, tt.maxRetries, !tt.noReport
			var mu sync.Mutex
			var observed []Invocation
			opts.Observe = func(inv Invocation) {
				mu.Lock()
				observed = append(observed, inv)
				mu.Unlock()
			}
			sum, err := Run(context.Background(), k, fn, opts)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := fn.seen(); !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("batches = %v, want %v", got, tt.want)
			}
			if got := sum.Checkpoints["shardId-000000000000"]; got != tt.checkpoint {
				t.Errorf("checkpoint = %q, want %q", got, tt.checkpoint)
			}
			var failed []string
			for _, fb := range sum.Failed {
				failed = append(failed, fmt.Sprintf("%s-%s:%d", fb.StartSequenceNumber, fb.EndSequenceNumber, fb.Invocations))
				if fb.Condition != "RetryAttemptsExhausted" || fb.StreamARN != testARN || fb.ShardID != "shardId-000000000000" {
					t.Errorf("failed batch %+v", fb)
				}
			}
			if !slices.Equal(failed, tt.failed) {
				t.Errorf("failed batches = %v, want %v", failed, tt.failed)
			}
			if len(observed) != len(tt.want) || sum.Invocations != len(tt.want) {
				t.Fatalf("observed %d invocations, summary %d, want %d", len(observed), sum.Invocations, len(tt.want))
			}
			// Each observation's checkpoint never moves backwards and ends where the summary says.
			prev := 0
			for _, inv := range observed {
				cp, _ := strconv.Atoi(inv.Checkpoint)
				if inv.Checkpoint != "" && cp < prev {
					t.Errorf("checkpoint moved backwards: %d after %d", cp, prev)
				}
				prev = max(prev, cp)
				if inv.Outcome == Failed && inv.Reason == "" {
					t.Errorf("a failed invocation without a reason: %+v", inv)
				}
			}
		})
	}
}

func TestRunPartialFailureReportsRetryPoint(t *testing.T) {
	t.Parallel()
	k := oneShard(3)
	fn := &fakeInvoker{script: []answer{{payload: `{"batchItemFailures":[{"itemIdentifier":"%s"}]}`}}}
	opts := testOptions()
	var first Invocation
	var once sync.Once
	opts.Observe = func(inv Invocation) { once.Do(func() { first = inv }) }
	if _, err := Run(context.Background(), k, fn, opts); err != nil {
		t.Fatal(err)
	}
	want := Invocation{ShardID: "shardId-000000000000", Records: 3, First: "1001", Last: "1003", Outcome: PartiallyFailed,
		RetryFrom: "1002", Checkpoint: "1001"}
	if first.Result.RequestID != "req-1" {
		t.Errorf("first invocation's request id = %q", first.Result.RequestID)
	}
	first.Result = runtimeapi.Result{}
	if !reflect.DeepEqual(first, want) {
		t.Errorf("first invocation = %+v, want %+v", first, want)
	}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	batch := oneShard(3).shards[0].records
	tests := []struct {
		name     string
		payload  string
		failedAt int  // -1: complete success
		failAll  bool // the whole batch fails
	}{
		{"empty body", "", -1, false},
		{"null body", "null", -1, false},
		{"empty object", "{}", -1, false},
		{"null list", `{"batchItemFailures":null}`, -1, false},
		{"empty list", `{"batchItemFailures":[]}`, -1, false},
		{"one record", `{"batchItemFailures":[{"itemIdentifier":"1002"}]}`, 1, false},
		{"several records, lowest wins", `{"batchItemFailures":[{"itemIdentifier":"1003"},{"itemIdentifier":"1001"}]}`, 0, false},
		{"empty identifier", `{"batchItemFailures":[{"itemIdentifier":""}]}`, 0, true},
		{"null identifier", `{"batchItemFailures":[{"itemIdentifier":null}]}`, 0, true},
		{"wrong key name", `{"batchItemFailures":[{"itemId":"1002"}]}`, 0, true},
		{"identifier not in the batch", `{"batchItemFailures":[{"itemIdentifier":"999"}]}`, 0, true},
		{"identifier not a string", `{"batchItemFailures":[{"itemIdentifier":1002}]}`, 0, true},
		{"list of non-objects", `{"batchItemFailures":["1002"]}`, 0, true},
		{"not JSON", `ok`, 0, true},
		{"a JSON string", `"ok"`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := judge([]byte(tt.payload), batch)
			if tt.failAll {
				if v.reason == "" {
					t.Errorf("judge(%s) = %+v, want a failure of the whole batch", tt.payload, v)
				}
				return
			}
			if v.reason != "" || v.failedAt != tt.failedAt {
				t.Errorf("judge(%s) = %+v, want failedAt %d", tt.payload, v, tt.failedAt)
			}
		})
	}
}

func TestEventIsWhatLambdaSends(t *testing.T) {
	t.Parallel()
	agg, err := kpl.Aggregate([]kpl.Record{{PartitionKey: "myPartitionKey", Data: []byte("test-kinesis-data")}, {PartitionKey: "myPartitionKey", Data: []byte("test-kinesis-data")}})
	if err != nil {
		t.Fatal(err)
	}
	recs := []types.Record{
		{SequenceNumber: aws.String("49590338271490256608559692538361571095921575989136588898"), PartitionKey: aws.String("myPartitionKey"),
			Data: agg, ApproximateArrivalTimestamp: aws.Time(time.Date(2026, 11, 22, 14, 2, 3, 456_789_000, time.UTC))},
		{SequenceNumber: aws.String("49590338271490256608559692538361571095921575989136588899"), PartitionKey: aws.String("k2"),
			Data: []byte{0xff, 0x00}, EncryptionType: types.EncryptionTypeKms, ApproximateArrivalTimestamp: aws.Time(time.Unix(1795356123, 0))},
	}
	ev := Event(testARN, "shardId-000000000007", "arn:aws:iam::111122223333:role/fn", recs)
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	// The wire format: float seconds with milliseconds, base64 data (the aggregate whole, not split).
	for _, want := range []string{
		`"approximateArrivalTimestamp":1795356123.456,`,
		`"approximateArrivalTimestamp":1795356123,`,
		`"eventID":"shardId-000000000007:49590338271490256608559692538361571095921575989136588898"`,
		`"eventSourceARN":"` + testARN + `"`,
		`"awsRegion":"eu-west-1"`,
		`"data":"/wA="`,
		`"encryptionType":"NONE"`,
		`"encryptionType":"KMS"`,
		`"invokeIdentityArn":"arn:aws:iam::111122223333:role/fn"`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("event lacks %s:\n%s", want, raw)
		}
	}
	var back events.KinesisEvent
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Records) != 2 || !bytes.Equal(back.Records[0].Kinesis.Data, agg) {
		t.Fatalf("records after a round trip: %+v", back.Records)
	}
	r := back.Records[0]
	if r.EventName != "aws:kinesis:record" || r.EventSource != "aws:kinesis" || r.EventVersion != "1.0" ||
		r.Kinesis.KinesisSchemaVersion != "1.0" || r.Kinesis.PartitionKey != "myPartitionKey" {
		t.Errorf("record fields: %+v", r)
	}
}

func TestRunCutsBatchesAtThePayloadLimit(t *testing.T) {
	t.Parallel()
	s := &fakeShard{id: "shardId-000000000000"}
	s.addRecords(5, 1_700_000) // 2.3 MB each in base64: three would pass 6 MiB
	k := &fakeKinesis{shards: []*fakeShard{s}}
	fn := &fakeInvoker{}
	if _, err := Run(context.Background(), k, fn, testOptions()); err != nil {
		t.Fatal(err)
	}
	if got, want := fn.seen(), [][]string{seqs(1, 2), seqs(3, 4), seqs(5, 5)}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("batches = %v, want %v", got, want)
	}
	for _, b := range fn.batches {
		if len(b.raw) > runtimeapi.MaxPayloadBytes {
			t.Errorf("an event of %d bytes", len(b.raw))
		}
	}
}

func TestRunBatchingWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		window time.Duration
		want   [][]string
	}{
		{"no window: a batch goes out as soon as records exist", 0, [][]string{seqs(1, 3), seqs(4, 5)}},
		{"a window gathers records that arrive meanwhile", 150 * time.Millisecond, [][]string{seqs(1, 5)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := oneShard(3)
			// Two more records arrive right after the first read.
			k.afterRead = func(k *fakeKinesis, call int) {
				if call == 1 {
					k.shards[0].addRecords(2, 8)
				}
			}
			fn := &fakeInvoker{}
			opts := testOptions()
			opts.BatchSize, opts.MaxBatchingWindow, opts.PollInterval = 10, tt.window, 20*time.Millisecond
			start := time.Now()
			if _, err := Run(context.Background(), k, fn, opts); err != nil {
				t.Fatal(err)
			}
			if got := fn.seen(); !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("batches = %v, want %v", got, tt.want)
			}
			if el := time.Since(start); el < tt.window {
				t.Errorf("took %s, less than the window %s", el, tt.window)
			}
		})
	}
}

func TestRunChildShardsAfterTheirParents(t *testing.T) {
	t.Parallel()
	parent := &fakeShard{id: "shardId-000000000000", closed: true}
	parent.addRecords(3, 8)
	child := &fakeShard{id: "shardId-000000000001", parent: parent.id}
	child.addRecords(2, 8)
	other := &fakeShard{id: "shardId-000000000002"}
	other.addRecords(1, 8)
	// The child is listed first: order must come from the parent link, not the listing.
	k := &fakeKinesis{shards: []*fakeShard{child, parent, other}}
	fn := &fakeInvoker{}
	opts := testOptions()
	opts.BatchSize = 1
	sum, err := Run(context.Background(), k, fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, b := range fn.batches {
		if b.shard != other.id {
			order = append(order, b.shard)
		}
	}
	want := []string{parent.id, parent.id, parent.id, child.id, child.id}
	if !slices.Equal(order, want) {
		t.Errorf("invocation order = %v, want %v", order, want)
	}
	wantCP := map[string]string{parent.id: "1003", child.id: "1002", other.id: "1001"}
	for id, cp := range wantCP {
		if sum.Checkpoints[id] != cp {
			t.Errorf("checkpoint of %s = %q, want %q", id, sum.Checkpoints[id], cp)
		}
	}
}

func TestRunRenewsAnExpiredIterator(t *testing.T) {
	t.Parallel()
	k := oneShard(4)
	k.expireOnce = 2 // the second GetRecords call, after the first batch
	fn := &fakeInvoker{}
	opts := testOptions()
	opts.BatchSize = 2
	if _, err := Run(context.Background(), k, fn, opts); err != nil {
		t.Fatal(err)
	}
	if got, want := fn.seen(), [][]string{seqs(1, 2), seqs(3, 4)}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("batches = %v, want %v (each record once)", got, want)
	}
	want := []types.ShardIteratorType{types.ShardIteratorTypeTrimHorizon, types.ShardIteratorTypeAfterSequenceNumber}
	if !slices.Equal(k.iterTypes, want) {
		t.Errorf("iterators = %v, want %v", k.iterTypes, want)
	}
}

func TestRunLatestSkipsEarlierRecords(t *testing.T) {
	t.Parallel()
	k := oneShard(3)
	fn := &fakeInvoker{}
	opts := testOptions()
	opts.StartingPosition = types.ShardIteratorTypeLatest
	sum, err := Run(context.Background(), k, fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(fn.seen()) != 0 || sum.Checkpoints["shardId-000000000000"] != "" {
		t.Errorf("LATEST delivered %v", fn.seen())
	}
}

// closedInvoker is an environment that was shut down.
type closedInvoker struct{}

func (closedInvoker) Invoke(context.Context, []byte) (runtimeapi.Result, error) {
	return runtimeapi.Result{}, fmt.Errorf("invoke: %w", runtimeapi.ErrClosed)
}

func TestRunStopsWhenTheInvokerIsClosed(t *testing.T) {
	t.Parallel()
	_, err := Run(context.Background(), oneShard(2), closedInvoker{}, testOptions())
	if !errors.Is(err, runtimeapi.ErrClosed) || !strings.Contains(err.Error(), "shardId-000000000000") {
		t.Errorf("Run = %v, want ErrClosed naming the shard", err)
	}
}

func TestRunEndsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	opts := testOptions()
	opts.StopAtLatest = false // poll forever
	start := time.Now()
	_, err := Run(ctx, oneShard(1), &fakeInvoker{}, opts)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("Run = %v after %s, want the context's deadline soon", err, time.Since(start))
	}
}

func TestOptionsAreChecked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Options)
		want   string // a fragment of the error; "" for valid options
	}{
		{"defaults", func(*Options) {}, ""},
		{"not a stream ARN", func(o *Options) { o.StreamARN = "orders" }, "is not arn:aws:kinesis"},
		{"a consumer ARN", func(o *Options) { o.StreamARN = testARN + "/consumer/c:1" }, "consumer ARNs"},
		{"batch too large", func(o *Options) { o.BatchSize = 10001 }, "BatchSize 10001"},
		{"window too long", func(o *Options) { o.MaxBatchingWindow = 301 * time.Second }, "MaxBatchingWindow"},
		{"AT_TIMESTAMP without a time", func(o *Options) { o.StartingPosition = types.ShardIteratorTypeAtTimestamp }, "StartingPositionTimestamp"},
		{"unknown position", func(o *Options) { o.StartingPosition = "AT_SEQUENCE_NUMBER" }, "StartingPosition"},
		{"retries below -1", func(o *Options) { o.MaxRetryAttempts = -2 }, "MaxRetryAttempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := Options{StreamARN: testARN}
			tt.mutate(&o)
			got, _, err := o.withDefaults()
			if tt.want == "" {
				if err != nil || got.BatchSize != 100 || got.StartingPosition != types.ShardIteratorTypeTrimHorizon ||
					got.FunctionRoleARN != "arn:aws:iam::111122223333:role/kinesis-to-pulsar" {
					t.Errorf("defaults: %+v, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one with %q", err, tt.want)
			}
		})
	}
}

// sentRecords collects what Run sends to its on-failure destination.
type sentRecords struct {
	mu     sync.Mutex
	recs   []onfailure.Record
	events [][]byte
}

func (s *sentRecords) Send(_ context.Context, rec onfailure.Record, event []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, rec)
	s.events = append(s.events, event)
	return nil
}

func TestRunSendsGivenUpBatchesToTheDestination(t *testing.T) {
	t.Parallel()
	// Records 1-2 arrived two hours ago, 3-5 just now; the maximum age is one hour.
	k := oneShard(5)
	now := time.Now()
	for i, r := range k.shards[0].records {
		at := now
		if i < 2 {
			at = now.Add(-2 * time.Hour)
		}
		r.ApproximateArrivalTimestamp = aws.Time(at)
		k.shards[0].records[i] = r
	}
	// The young batch fails as a whole twice: with one retry it is given up on.
	fn := &fakeInvoker{script: []answer{{fnErr: true}, {fnErr: true}}}
	dest := &sentRecords{}
	opts := testOptions()
	opts.MaxRecordAge, opts.MaxRetryAttempts, opts.Destination = time.Hour, 1, dest
	sum, err := Run(context.Background(), k, fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := fn.seen(); !reflect.DeepEqual(got, [][]string{seqs(3, 5), seqs(3, 5)}) {
		t.Errorf("invoked %v: the old records must not be invoked", got)
	}
	if cp := sum.Checkpoints["shardId-000000000000"]; cp != "1005" {
		t.Errorf("checkpoint %q, want 1005", cp)
	}
	if len(dest.recs) != 2 {
		t.Fatalf("%d records sent, want 2", len(dest.recs))
	}
	for i, tc := range []struct {
		condition, first, last string
		invokes                int
		fnError                string
	}{
		{onfailure.RecordAgeExceeded, "1001", "1002", 0, ""},
		{onfailure.RetryAttemptsExhausted, "1003", "1005", 2, "Unhandled"},
	} {
		r := dest.recs[i]
		b := r.KinesisBatchInfo
		if r.RequestContext.Condition != tc.condition || b.StartSequenceNumber != tc.first || b.EndSequenceNumber != tc.last ||
			r.RequestContext.ApproximateInvokeCount != tc.invokes || r.ResponseContext.FunctionError != tc.fnError ||
			b.StreamARN != testARN || b.ShardID != "shardId-000000000000" || r.RequestContext.RequestID == "" ||
			r.RequestContext.FunctionARN != "arn:aws:lambda:eu-west-1:111122223333:function:kinesis-to-pulsar" {
			t.Errorf("record %d = %+v", i, r)
		}
		var ev events.KinesisEvent
		if err := json.Unmarshal(dest.events[i], &ev); err != nil || len(ev.Records) != b.BatchSize ||
			ev.Records[0].Kinesis.SequenceNumber != tc.first {
			t.Errorf("event %d: %s (%v)", i, dest.events[i], err)
		}
	}
	if dest.recs[1].RequestContext.RequestID != "req-2" {
		t.Errorf("request id %q, want the last invocation's", dest.recs[1].RequestContext.RequestID)
	}
}
