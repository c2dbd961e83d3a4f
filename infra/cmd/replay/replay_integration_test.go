//go:build integration && unix

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/streambridge/kinesis-pulsar/infra/esm"
	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/infra/onfailure"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

// bootstrap is the real function, built for this host.
var bootstrap string

func TestMain(m *testing.M) {
	runtimeapi.RunTests(m, "../../../functions/kinesis-to-pulsar", &bootstrap)
}

func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// fixture is the local stack's clients and a one-shard stream.
type fixture struct {
	env    localenv.Env
	k      *kinesis.Client
	q      *sqs.Client
	s3     *s3.Client
	stream string // name
	arn    string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := localenv.Require(t)
	ctx := context.Background()
	cfg, err := env.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{env: env, k: kinesis.NewFromConfig(cfg), q: sqs.NewFromConfig(cfg),
		s3: s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), stream: unique("replay-test")}
	if _, err := f.k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(f.stream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	t.Cleanup(func() {
		_, _ = f.k.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(f.stream)})
	})
	out, err := f.k.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(f.stream)})
	if err != nil {
		t.Fatal(err)
	}
	f.arn = aws.ToString(out.StreamDescriptionSummary.StreamARN)
	return f
}

// put writes records key-i = "record i" and returns them as the stream holds them.
func (f *fixture) put(t *testing.T, n int) []types.Record {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if _, err := f.k.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(f.stream),
			PartitionKey: aws.String(fmt.Sprintf("key-%d", i)), Data: []byte(fmt.Sprintf("record %d", i))}); err != nil {
			t.Fatalf("put record: %v", err)
		}
	}
	return f.all(t)
}

func (f *fixture) all(t *testing.T) []types.Record {
	t.Helper()
	ctx := context.Background()
	it, err := f.k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(f.stream),
		ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	return out.Records
}

func (f *fixture) queue(t *testing.T) string {
	t.Helper()
	out, err := f.q.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(unique("replay-failures"))})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	t.Cleanup(func() { _, _ = f.q.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}) })
	return aws.ToString(out.QueueUrl)
}

// messages counts the queue's messages, visible and in flight.
func (f *fixture) messages(t *testing.T, url string) int {
	t.Helper()
	out, err := f.q.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, v := range out.Attributes {
		var x int
		_, _ = fmt.Sscan(v, &x)
		n += x
	}
	return n
}

func (f *fixture) keys(t *testing.T, bucket, prefix string) []string {
	t.Helper()
	out, err := f.s3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// failThroughESM runs the real function under the local event source mapping with a topic in a
// namespace that does not exist yet: every batch fails, is retried once and goes to dest.
func failThroughESM(t *testing.T, f *fixture, topic string, dest onfailure.Sender) esm.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := &runtimeapi.Output{}
	fn, err := runtimeapi.Start(ctx, runtimeapi.Options{
		Binary: bootstrap, FunctionName: "kinesis-to-pulsar", MemoryMB: 256, Timeout: 6 * time.Second,
		Env: []string{"PULSAR_SERVICE_URL=" + f.env.PulsarServiceURL, "PULSAR_TOPIC=" + topic,
			"PULSAR_OPERATION_TIMEOUT_MS=2000"},
		Stdout: logs, Stderr: logs,
	})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, logs)
	}
	defer func() { _, _ = fn.Shutdown(context.Background()) }()
	sum, err := esm.Run(ctx, f.k, fn, esm.Options{StreamARN: f.arn, BatchSize: 100, ReportBatchItemFailures: true,
		MaxRetryAttempts: 1, StopAtLatest: true, RetryBackoff: 10 * time.Millisecond, PollInterval: 100 * time.Millisecond,
		Destination: dest})
	if err != nil {
		t.Fatalf("esm: %v\n%s", err, logs)
	}
	if len(sum.Failed) != 1 || sum.Records != 0 {
		t.Fatalf("esm summary %+v, want one batch given up on and nothing delivered\n%s", sum, logs)
	}
	return sum
}

// missingNamespace returns a topic in a namespace of public that does not exist, and a function that
// creates the namespace (the cause removed).
func missingNamespace(t *testing.T, env localenv.Env) (topic string, create func()) {
	ns := unique("replay-ns")
	return "persistent://public/" + ns + "/events", func() {
		req, _ := http.NewRequest(http.MethodPut, env.PulsarAdminURL+"/admin/v2/namespaces/public/"+ns, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("create namespace %s: %s", ns, resp.Status)
		}
		t.Cleanup(func() {
			req, _ := http.NewRequest(http.MethodDelete, env.PulsarAdminURL+"/admin/v2/namespaces/public/"+ns+"?force=true", nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_ = resp.Body.Close()
			}
		})
	}
}

// replay runs the command in-process with the function's configuration in fnEnv.
func replay(t *testing.T, f *fixture, fnEnv map[string]string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, args, func(k string) string { return fnEnv[k] }, &out, &errOut)
	t.Logf("replay %s:\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String(), err
}

// messagesOf reads the topic and returns key=sequence:payload for each message, checking the producer.
func messagesOf(t *testing.T, f *fixture, topic string) []string {
	t.Helper()
	var got []string
	for _, m := range pulsartest.ReadAll(t, pulsartest.Client(t, f.env.PulsarServiceURL), topic, 20*time.Second) {
		if !strings.HasPrefix(m.ProducerName(), "kinesis-pulsar-replay-") {
			t.Errorf("message %s from producer %q, want the replay's", m.ID(), m.ProducerName())
		}
		got = append(got, m.Key()+"="+m.Properties()["kinesis.sequence.number"]+":"+string(m.Payload()))
	}
	return got
}

func want(recs []types.Record) []string {
	var w []string
	for _, r := range recs {
		w = append(w, aws.ToString(r.PartitionKey)+"="+aws.ToString(r.SequenceNumber)+":"+string(r.Data))
	}
	return w
}

// TestPoisonBatchFromTheQueue: a batch exhausts its retries, its invocation record lands on the queue
// in Lambda's format; a replay interrupted before the cause is removed leaves it; once the cause is
// removed, the replay publishes every record once and empties the queue; a second run finds nothing.
func TestPoisonBatchFromTheQueue(t *testing.T) {
	f := newFixture(t)
	recs := f.put(t, 5)
	url := f.queue(t)
	topic, createNamespace := missingNamespace(t, f.env)
	sum := failThroughESM(t, f, topic, onfailure.Queue{Client: f.q, URL: url})

	// What Lambda sends to SQS: the metadata, no payload.
	msg, err := f.q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	if err != nil || len(msg.Messages) != 1 {
		t.Fatalf("queue holds %d messages (%v), want 1", len(msg.Messages), err)
	}
	// Visible again for the replay (a zero VisibilityTimeout on receive is not sent: the queue's 30 s apply).
	if _, err := f.q.ChangeMessageVisibility(context.Background(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url),
		ReceiptHandle: msg.Messages[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	body := aws.ToString(msg.Messages[0].Body)
	rec, err := onfailure.Parse([]byte(body))
	if err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	b := rec.KinesisBatchInfo
	if b.StartSequenceNumber != aws.ToString(recs[0].SequenceNumber) || b.EndSequenceNumber != aws.ToString(recs[4].SequenceNumber) ||
		b.BatchSize != 5 || b.ShardID != "shardId-000000000000" || b.StreamARN != f.arn || rec.RequestContext.Condition != "RetryAttemptsExhausted" ||
		rec.RequestContext.ApproximateInvokeCount != 2 || rec.Version != "1.0" || strings.Contains(body, `"payload"`) ||
		!strings.Contains(body, `"approximateArrivalOfFirstRecord":"`) {
		t.Errorf("invocation record %s does not describe the batch %+v", body, sum.Failed[0])
	}

	fnEnv := map[string]string{"PULSAR_SERVICE_URL": f.env.PulsarServiceURL, "PULSAR_TOPIC": topic}
	if out, err := replay(t, f, fnEnv, "--queue", url, "--dry-run"); err != nil || !strings.Contains(out, "5 of 5 records read from the stream") {
		t.Fatalf("dry run: %v", err)
	}
	if n := f.messages(t, url); n != 1 {
		t.Fatalf("after the dry run the queue holds %d messages, want 1", n)
	}

	// Interrupted while the cause is still there: the batch stays, visible to the next run at once.
	ictx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	var out bytes.Buffer
	err = run(ictx, []string{"--queue", url}, func(k string) string { return fnEnv[k] }, &out, &out)
	cancel()
	t.Logf("interrupted replay:\n%s", out.String())
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("interrupted replay returned %v", err)
	}
	if out, err := replay(t, f, fnEnv, "--queue", url, "--dry-run"); err != nil || !strings.Contains(out, "1 batches found") {
		t.Fatalf("after the interrupt, the batch is not visible at once: %v", err)
	}

	createNamespace()
	if _, err := replay(t, f, fnEnv, "--queue", url); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if got := messagesOf(t, f, topic); !slices.Equal(got, want(recs)) {
		t.Errorf("Pulsar holds\n%q\nwant\n%q", got, want(recs))
	}
	if n := f.messages(t, url); n != 0 {
		t.Errorf("the queue still holds %d messages", n)
	}
	if out, err := replay(t, f, fnEnv, "--queue", url); err != nil || !strings.Contains(out, "0 batches found") {
		t.Errorf("second run: %v", err)
	}
}

// TestRecordsGoneFromTheStream: the stream no longer holds the batch: the replay reports the exact range
// lost, exits non-zero and leaves the message.
func TestRecordsGoneFromTheStream(t *testing.T) {
	f := newFixture(t)
	recs := f.put(t, 3)
	url := f.queue(t)
	topic, createNamespace := missingNamespace(t, f.env)
	failThroughESM(t, f, topic, onfailure.Queue{Client: f.q, URL: url})
	createNamespace()
	if _, err := f.k.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(f.stream)}); err != nil {
		t.Fatal(err)
	}
	fnEnv := map[string]string{"PULSAR_SERVICE_URL": f.env.PulsarServiceURL, "PULSAR_TOPIC": topic}
	for _, args := range [][]string{{"--queue", url, "--dry-run"}, {"--queue", url}} {
		out, err := replay(t, f, fnEnv, args...)
		if err == nil {
			t.Errorf("%v: no error, want a non-zero exit", args)
		}
		lost := fmt.Sprintf("LOST %s shardId-000000000000 from %s to %s", f.arn, aws.ToString(recs[0].SequenceNumber), aws.ToString(recs[2].SequenceNumber))
		if !strings.Contains(out, lost) {
			t.Errorf("%v: the output does not say %q", args, lost)
		}
	}
	if n := f.messages(t, url); n != 1 {
		t.Errorf("the queue holds %d messages, want the batch kept", n)
	}
}

// TestBucketDestinationAndA9MiBRecord: with an S3 destination the object carries the records, so the
// replay needs no stream; and a 9 MiB record, which no Lambda invocation can carry (6 MB), reaches
// Pulsar through the replay, chunked, byte for byte.
func TestBucketDestinationAndA9MiBRecord(t *testing.T) {
	f := newFixture(t)
	bucket := unique("replay-failures")
	ctx := context.Background()
	if _, err := f.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	recs := f.put(t, 4)
	topic, createNamespace := missingNamespace(t, f.env)
	failThroughESM(t, f, topic, onfailure.Bucket{Client: f.s3, Name: bucket, MappingUUID: onfailure.NewUUID()})
	keys := f.keys(t, bucket, "aws/lambda/")
	if len(keys) != 1 || !strings.Contains(keys[0], "/shardId-000000000000/") {
		t.Fatalf("bucket holds %q, want one object under aws/lambda/<mapping>/shardId-000000000000/", keys)
	}

	// The 9 MiB record: Lambda cannot invoke with it (the 6 MB payload limit), so its batch ends at the
	// on-failure destination once its age is exceeded; here its record is sent as Lambda would.
	big := make([]byte, 9<<20)
	_, _ = rand.Read(big)
	if _, err := f.k.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(f.stream), PartitionKey: aws.String("big"), Data: big}); err != nil {
		t.Fatalf("moto refuses a 9 MiB PutRecord: %v", err)
	}
	all := f.all(t)
	bigRec := all[len(all)-1]
	if !bytes.Equal(bigRec.Data, big) {
		t.Fatalf("the stream returns %d bytes for the 9 MiB record", len(bigRec.Data))
	}
	queue := f.queue(t)
	fb := esm.FailedBatch{ShardID: "shardId-000000000000", StartSequenceNumber: aws.ToString(bigRec.SequenceNumber),
		EndSequenceNumber: aws.ToString(bigRec.SequenceNumber), ApproximateArrivalOfFirstRecord: aws.ToTime(bigRec.ApproximateArrivalTimestamp),
		ApproximateArrivalOfLastRecord: aws.ToTime(bigRec.ApproximateArrivalTimestamp), BatchSize: 1, StreamARN: f.arn,
		Condition: onfailure.RecordAgeExceeded, RequestID: onfailure.NewUUID()}
	if err := (onfailure.Queue{Client: f.q, URL: queue}).Send(ctx, fb.Record("arn:aws:lambda:us-east-1:123456789012:function:kinesis-to-pulsar", time.Now()), nil); err != nil {
		t.Fatal(err)
	}

	createNamespace()
	fnEnv := map[string]string{"PULSAR_SERVICE_URL": f.env.PulsarServiceURL, "PULSAR_TOPIC": topic, "PULSAR_CHUNKING": "true"}
	out, err := replay(t, f, fnEnv, "--bucket", bucket)
	if err != nil || !strings.Contains(out, "4 of 4 records read from the object's payload") {
		t.Fatalf("bucket replay: %v", err)
	}
	if left := f.keys(t, bucket, "aws/lambda/"); len(left) != 0 {
		t.Errorf("objects left under aws/lambda/: %q", left)
	}
	if moved := f.keys(t, bucket, "replayed/"); len(moved) != 1 || moved[0] != "replayed/"+keys[0] {
		t.Errorf("replayed/ holds %q, want %q", moved, "replayed/"+keys[0])
	}
	if _, err := replay(t, f, fnEnv, "--queue", queue); err != nil {
		t.Fatalf("queue replay of the 9 MiB record: %v", err)
	}
	msgs := pulsartest.ReadAll(t, pulsartest.Client(t, f.env.PulsarServiceURL), topic, 30*time.Second)
	if len(msgs) != 5 {
		t.Fatalf("Pulsar holds %d messages, want 5", len(msgs))
	}
	var got []string
	for _, m := range msgs[:4] {
		got = append(got, m.Key()+"="+m.Properties()["kinesis.sequence.number"]+":"+string(m.Payload()))
	}
	if !slices.Equal(got, want(recs)) {
		t.Errorf("Pulsar holds\n%q\nwant\n%q", got, want(recs))
	}
	m := msgs[4]
	if m.Key() != "big" || !bytes.Equal(m.Payload(), big) || m.Properties()["kinesis.sequence.number"] != aws.ToString(bigRec.SequenceNumber) {
		t.Errorf("the 9 MiB record arrived as key %q, %d bytes (equal: %v)", m.Key(), len(m.Payload()), bytes.Equal(m.Payload(), big))
	}
	if n := f.messages(t, queue); n != 0 {
		t.Errorf("the queue still holds %d messages", n)
	}
}

// TestClosedShardAfterResharding: a batch of a shard that a split closed is read from the closed shard.
func TestClosedShardAfterResharding(t *testing.T) {
	f := newFixture(t)
	recs := f.put(t, 3)
	ctx := context.Background()
	if _, err := f.k.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(f.stream), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatalf("split shard: %v", err)
	}
	shards, err := f.k.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(f.stream)})
	if err != nil || len(shards.Shards) != 3 || shards.Shards[0].SequenceNumberRange.EndingSequenceNumber == nil {
		t.Fatalf("after the split: %+v, %v; want shardId-000000000000 closed and two children", shards, err)
	}
	queue := f.queue(t)
	first, last := recs[0], recs[len(recs)-1]
	fb := esm.FailedBatch{ShardID: "shardId-000000000000", StartSequenceNumber: aws.ToString(first.SequenceNumber),
		EndSequenceNumber: aws.ToString(last.SequenceNumber), ApproximateArrivalOfFirstRecord: aws.ToTime(first.ApproximateArrivalTimestamp),
		ApproximateArrivalOfLastRecord: aws.ToTime(last.ApproximateArrivalTimestamp), BatchSize: len(recs), StreamARN: f.arn,
		Condition: onfailure.RetryAttemptsExhausted, Invocations: 3, RequestID: onfailure.NewUUID(), FunctionError: "Unhandled"}
	if err := (onfailure.Queue{Client: f.q, URL: queue}).Send(ctx, fb.Record("arn:aws:lambda:us-east-1:123456789012:function:kinesis-to-pulsar", time.Now()), nil); err != nil {
		t.Fatal(err)
	}
	topic := pulsartest.Topic(t, "replay")
	if _, err := replay(t, f, map[string]string{"PULSAR_SERVICE_URL": f.env.PulsarServiceURL, "PULSAR_TOPIC": topic}, "--queue", queue); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if got := messagesOf(t, f, topic); !slices.Equal(got, want(recs)) {
		t.Errorf("Pulsar holds\n%q\nwant\n%q", got, want(recs))
	}
	if n := f.messages(t, queue); n != 0 {
		t.Errorf("the queue still holds %d messages", n)
	}
}
