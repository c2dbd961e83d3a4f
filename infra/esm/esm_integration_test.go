//go:build integration && unix

package esm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

// bootstrap is the real function, built for this host.
var bootstrap string

func TestMain(m *testing.M) {
	runtimeapi.RunTests(m, "../../functions/kinesis-to-pulsar", &bootstrap)
}

// stream creates a one-shard stream in moto holding records with keys key-0.. and returns its ARN and
// the records as the stream holds them (a producer retry may have written one twice).
func stream(t *testing.T, k *kinesis.Client, records int) (string, []types.Record) {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "esm-test-" + hex.EncodeToString(b)
	if _, err := k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	t.Cleanup(func() {
		_, _ = k.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
	})
	out, err := k.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range records {
		if _, err := k.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String(fmt.Sprintf("key-%d", i)),
			Data: []byte(fmt.Sprintf("record %d", i))}); err != nil {
			t.Fatalf("put record: %v", err)
		}
	}
	it, err := k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(name), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(got.Records) < records {
		t.Fatalf("the stream holds %d records after %d puts: %v", len(got.Records), records, err)
	}
	return aws.ToString(out.StreamDescriptionSummary.StreamARN), got.Records
}

func seqsOf(recs []types.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, aws.ToString(r.SequenceNumber))
	}
	return out
}

// TestPollerWithTheRealFunction runs the poller against moto and the real bootstrap: a stream that goes
// through, then, once the topic is terminated, batches the function reports from their first record,
// which the poller retries once and then gives up on.
func TestPollerWithTheRealFunction(t *testing.T) {
	env := localenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	awsCfg, err := env.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k := kinesis.NewFromConfig(awsCfg)
	topic := pulsartest.Topic(t, "esm")
	logs := &runtimeapi.Output{}
	fn, err := runtimeapi.Start(ctx, runtimeapi.Options{
		Binary: bootstrap, FunctionName: "kinesis-to-pulsar", MemoryMB: 256, Timeout: 10 * time.Second,
		Env:    []string{"PULSAR_SERVICE_URL=" + env.PulsarServiceURL, "PULSAR_TOPIC=" + topic},
		Stdout: logs, Stderr: logs,
	})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, logs)
	}
	t.Cleanup(func() { _, _ = fn.Shutdown(context.Background()) })

	var mu sync.Mutex
	var invs []Invocation
	opts := func(arn string) Options {
		return Options{StreamARN: arn, BatchSize: 2, ReportBatchItemFailures: true, MaxRetryAttempts: 1, StopAtLatest: true,
			RetryBackoff: 10 * time.Millisecond, PollInterval: 100 * time.Millisecond,
			Observe: func(inv Invocation) {
				mu.Lock()
				invs = append(invs, inv)
				mu.Unlock()
			}}
	}

	arn, recs := stream(t, k, 3)
	seqs := seqsOf(recs)
	last := seqs[len(seqs)-1]
	sum, err := Run(ctx, k, fn, opts(arn))
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, logs)
	}
	if sum.Invocations != (len(recs)+1)/2 || sum.Checkpoints["shardId-000000000000"] != last || len(sum.Failed) != 0 {
		t.Fatalf("summary %+v, want %d invocations, checkpoint %s; function output:\n%s", sum, (len(recs)+1)/2, last, logs)
	}
	msgs := pulsartest.ReadAll(t, pulsartest.Client(t, env.PulsarServiceURL), topic, 20*time.Second)
	var got, want []string
	for _, m := range msgs {
		got = append(got, m.Key()+"="+m.Properties()["kinesis.sequence.number"]+":"+string(m.Payload()))
	}
	for _, r := range recs {
		want = append(want, aws.ToString(r.PartitionKey)+"="+aws.ToString(r.SequenceNumber)+":"+string(r.Data))
	}
	if !slices.Equal(got, want) {
		t.Errorf("Pulsar holds %q, want %q", got, want)
	}

	if _, err := env.Admin().TerminateTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	invs = nil
	mu.Unlock()
	arn, recs = stream(t, k, 3)
	seqs = seqsOf(recs)
	sum, err = Run(ctx, k, fn, opts(arn))
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, logs)
	}
	// Batches of two, each invoked twice (the first time and one retry), then given up on.
	var failed, wantFailed []string
	for _, fb := range sum.Failed {
		failed = append(failed, fmt.Sprintf("%s-%s:%d", fb.StartSequenceNumber, fb.EndSequenceNumber, fb.Invocations))
	}
	for i := 0; i < len(seqs); i += 2 {
		wantFailed = append(wantFailed, seqs[i]+"-"+seqs[min(i+1, len(seqs)-1)]+":2")
	}
	if !slices.Equal(failed, wantFailed) {
		t.Errorf("given up on %v, want %v; function output:\n%s", failed, wantFailed, logs)
	}
	if cp := sum.Checkpoints["shardId-000000000000"]; cp != seqs[len(seqs)-1] {
		t.Errorf("checkpoint %q, want %q (past the batches given up on)", cp, seqs[len(seqs)-1])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(invs) != 2*len(wantFailed) {
		t.Fatalf("%d invocations, want %d: %+v", len(invs), 2*len(wantFailed), invs)
	}
	for i, inv := range invs {
		if inv.Outcome != PartiallyFailed || inv.RetryFrom != inv.First || inv.Retry != i%2 {
			t.Errorf("invocation %d: %+v (answer %s), want a partial failure from its first record", i, inv, inv.Result.Payload)
		}
	}
}
