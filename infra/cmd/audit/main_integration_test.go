//go:build integration

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/internal/audit"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
)

// fixture is a moto Kinesis stream of two shards, shard 0 then split (closed, with two children), and
// a DynamoDB Local audit table with items written by audit.Table.Record.
type fixture struct {
	table, arn string
	seq        map[string]string // shard id → the sequence number of its checkpoint
	started    time.Time         // the first batch's start; the others follow within minutes
}

// at formats the instant d after the first batch's start as the tool prints it.
func (f *fixture) at(d time.Duration) string {
	return f.started.Add(d).UTC().Format("2006-01-02T15:04:05.000Z")
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	localenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := localenv.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	f := &fixture{table: "audit-tool-" + suffix, seq: map[string]string{}}

	kc := kinesis.NewFromConfig(cfg)
	stream := "audit-tool-" + suffix
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatalf("creating stream: %v", err)
	}
	t.Cleanup(func() {
		_, _ = kc.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(stream)})
	})
	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	f.arn = aws.ToString(sum.StreamDescriptionSummary.StreamARN)
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream),
		ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")}); err != nil {
		t.Fatalf("splitting shard 0: %v", err)
	}

	db := dynamodb.NewFromConfig(cfg)
	if err := audit.CreateTable(ctx, db, f.table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(f.table)})
	})
	tab := audit.New(db, audit.Options{Table: f.table})
	// From the stack's clock: DynamoDB's TTL sweeper deletes batch items a week after their start.
	started := localenv.Now().UTC().Truncate(time.Minute)
	f.started = started
	const prefix = "495903382714902566085596925383615710959215759891365"
	for _, b := range []relay.AuditRecord{
		// Shard 0: delivered, then partly failed (the checkpoint stops before the failed record).
		{ShardID: "shardId-000000000000", RequestID: "req-0a", FirstSequenceNumber: prefix + "00001", LastSequenceNumber: prefix + "00010",
			Records: 10, Published: 10, CheckpointSequenceNumber: prefix + "00010", CheckpointMessageID: "12:3:-1:9", StartedAt: started},
		{ShardID: "shardId-000000000000", RequestID: "req-0b", FirstSequenceNumber: prefix + "00011", LastSequenceNumber: prefix + "00020",
			Records: 10, Published: 4, DeadLettered: 1, FailedSequenceNumber: prefix + "00016", CheckpointSequenceNumber: prefix + "00015",
			CheckpointMessageID: "12:4:-1:4", StartedAt: started.Add(2 * time.Minute), Duration: 1500 * time.Millisecond},
		// Shard 1: nothing delivered.
		{ShardID: "shardId-000000000001", RequestID: "req-1a", FirstSequenceNumber: prefix + "10001", LastSequenceNumber: prefix + "10003",
			Records: 3, FailedSequenceNumber: prefix + "10001", StartedAt: started.Add(time.Minute)},
		// Shard 2 (a child of shard 0): delivered.
		{ShardID: "shardId-000000000002", RequestID: "req-2a", FirstSequenceNumber: prefix + "20001", LastSequenceNumber: prefix + "20001",
			Records: 1, Published: 1, CheckpointSequenceNumber: prefix + "20001", CheckpointMessageID: "13:0:-1:0", StartedAt: started.Add(3 * time.Minute)},
	} {
		b.StreamARN, b.Topic = f.arn, "persistent://public/default/orders"
		if err := tab.Record(ctx, b); err != nil {
			t.Fatal(err)
		}
		if b.CheckpointSequenceNumber != "" {
			f.seq[b.ShardID] = b.CheckpointSequenceNumber
		}
	}
	return f
}

func (f *fixture) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, args, &out, &errOut)
	return out.String(), err
}

// rows splits table output into lines of whitespace-separated fields, header first.
func rows(out string) [][]string {
	var r [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		r = append(r, regexp.MustCompile(`\s{2,}`).Split(line, -1))
	}
	return r
}

func TestCheckpoints(t *testing.T) {
	f := newFixture(t)
	const topic = "persistent://public/default/orders"
	out, err := f.run(t, "checkpoints", "--table", f.table, "--stream-arn", f.arn)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checkpoints:\n%s", out)
	want := [][]string{
		{"SHARD", "STATE", "CHECKPOINT SEQUENCE NUMBER", "UPDATED AT", "REQUEST ID", "LAST MESSAGE ID", "TOPIC"},
		{"shardId-000000000000", "closed", f.seq["shardId-000000000000"], f.at(2*time.Minute + 1500*time.Millisecond), "req-0b", "12:4:-1:4", topic},
		{"shardId-000000000001", "open", "-", "-", "-", "-", "-"},
		{"shardId-000000000002", "open", f.seq["shardId-000000000002"], f.at(3 * time.Minute), "req-2a", "13:0:-1:0", topic},
		{"shardId-000000000003", "open", "-", "-", "-", "-", "-"},
	}
	if got := rows(out); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("checkpoints output:\n%s\nwant rows %q", out, want)
	}

	out, err = f.run(t, "checkpoints", "--table", f.table, "--stream-arn", f.arn, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var js []shardRow
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("--json output %s: %v", out, err)
	}
	wantJSON := []shardRow{
		{ShardID: "shardId-000000000000", State: "closed", SequenceNumber: f.seq["shardId-000000000000"], UpdatedAt: f.at(2*time.Minute + 1500*time.Millisecond), RequestID: "req-0b", Topic: topic, LastMessageID: "12:4:-1:4"},
		{ShardID: "shardId-000000000001", State: "open"},
		{ShardID: "shardId-000000000002", State: "open", ParentShardID: "shardId-000000000000", SequenceNumber: f.seq["shardId-000000000002"], UpdatedAt: f.at(3 * time.Minute), RequestID: "req-2a", Topic: topic, LastMessageID: "13:0:-1:0"},
		{ShardID: "shardId-000000000003", State: "open", ParentShardID: "shardId-000000000000"},
	}
	if fmt.Sprint(js) != fmt.Sprint(wantJSON) {
		t.Errorf("--json\n got %+v\nwant %+v", js, wantJSON)
	}

	// Without Kinesis: only the shards with a checkpoint, state unknown.
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", "http://127.0.0.1:1")
	out, err = f.run(t, "checkpoints", "--table", f.table, "--stream-arn", f.arn, "--scan")
	if err != nil {
		t.Fatal(err)
	}
	want = [][]string{want[0], {"shardId-000000000000", "-", f.seq["shardId-000000000000"], f.at(2*time.Minute + 1500*time.Millisecond), "req-0b", "12:4:-1:4", topic},
		{"shardId-000000000002", "-", f.seq["shardId-000000000002"], f.at(3 * time.Minute), "req-2a", "13:0:-1:0", topic}}
	if got := rows(out); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("--scan output:\n%s\nwant rows %q", out, want)
	}
	other := strings.Replace(f.arn, "stream/", "stream/other-", 1)
	if out, err = f.run(t, "checkpoints", "--table", f.table, "--stream-arn", other, "--scan"); err != nil || out != "no checkpoint of "+other+" in "+f.table+"\n" {
		t.Errorf("--scan of a stream without checkpoints: %v\n%s", err, out)
	}
	// And that Kinesis really was out of reach.
	if _, err := f.run(t, "checkpoints", "--table", f.table, "--stream-arn", f.arn); err == nil || !strings.Contains(err.Error(), "--scan") {
		t.Errorf("checkpoints with Kinesis down: %v, want an error suggesting --scan", err)
	}
}

func TestBatches(t *testing.T) {
	f := newFixture(t)
	const prefix = "495903382714902566085596925383615710959215759891365"
	header := []string{"STARTED AT", "MS", "RECORDS", "PUBLISHED", "DEAD-LETTERED", "OUTCOME", "FIRST SEQUENCE NUMBER", "LAST SEQUENCE NUMBER", "FAILED AT", "REQUEST ID"}
	second := []string{f.at(2 * time.Minute), "1500", "10", "4", "1", "partial", prefix + "00011", prefix + "00020", prefix + "00016", "req-0b"}
	first := []string{f.at(0), "0", "10", "10", "0", "delivered", prefix + "00001", prefix + "00010", "-", "req-0a"}
	shard0 := []string{"batches", "--table", f.table, "--stream-arn", f.arn, "--shard", "shardId-000000000000"}
	for _, c := range []struct {
		name string
		args []string
		want [][]string
	}{
		{"all", shard0, [][]string{header, second, first}},
		{"newest", append(shard0, "-n", "1"), [][]string{header, second}},
		{"until a minute after the first", append(shard0, "--until", f.started.Add(time.Minute).Format("2006-01-02T15:04")), [][]string{header, first}},
		{"until the second, RFC 3339 in another zone", append(shard0, "--until", f.started.Add(2*time.Minute).In(time.FixedZone("", 3600)).Format(time.RFC3339)),
			[][]string{header, second, first}},
		{"failed batch", []string{"batches", "--table", f.table, "--stream-arn", f.arn, "--shard", "shardId-000000000001"},
			[][]string{header, {f.at(time.Minute), "0", "3", "0", "0", "failed", prefix + "10001", prefix + "10003", prefix + "10001", "req-1a"}}},
		{"none", []string{"batches", "--table", f.table, "--stream-arn", f.arn, "--shard", "shardId-000000000003"},
			[][]string{{"no batch of shardId-000000000003 in " + f.table}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := f.run(t, c.args...)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", out)
			if got := rows(out); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("output:\n%s\nwant rows %q", out, c.want)
			}
		})
	}

	out, err := f.run(t, append(shard0, "--json", "-n", "1")...)
	if err != nil {
		t.Fatal(err)
	}
	var js []map[string]any
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("--json output %s: %v", out, err)
	}
	want := map[string]any{
		"firstSequenceNumber": prefix + "00011", "lastSequenceNumber": prefix + "00020", "checkpointSequenceNumber": prefix + "00015",
		"failedSequenceNumber": prefix + "00016", "records": 10.0, "published": 4.0, "deadLettered": 1.0,
		"startedAt": f.at(2 * time.Minute), "durationMs": 1500.0, "topic": "persistent://public/default/orders",
		"requestId": "req-0b", "expiresAt": f.started.Add(2*time.Minute + audit.DefaultRetention).Format(time.RFC3339), "outcome": "partial",
	}
	if len(js) != 1 || fmt.Sprint(js[0]) != fmt.Sprint(want) {
		t.Errorf("--json\n got %v\nwant %v", js, want)
	}
}
