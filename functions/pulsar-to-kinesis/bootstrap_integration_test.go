//go:build integration

package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
	"github.com/streambridge/kinesis-pulsar/internal/sink"
	"github.com/streambridge/kinesis-pulsar/tests/emfcheck"
)

// bootstrap is the real sink function, built for this host.
var bootstrap string

func TestMain(m *testing.M) {
	runtimeapi.RunTests(m, ".", &bootstrap)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fixture is a fresh topic with messages, a fresh stream, and the function's environment for them.
type fixture struct {
	env    localenv.Env
	kin    *kinesis.Client
	topic  string
	stream string // ARN
	vars   []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := localenv.Require(t)
	cfg, err := env.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	kin := kinesis.NewFromConfig(cfg)
	name := "sink-fn-" + randomHex(5)
	if _, err := kin.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = kin.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
	})
	sum, err := kin.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{env: env, kin: kin, topic: "persistent://public/default/sink-fn-" + randomHex(5),
		stream: aws.ToString(sum.StreamDescriptionSummary.StreamARN)}
	f.vars = []string{
		"PULSAR_SERVICE_URL=" + env.PulsarServiceURL, "SINK_TOPICS=" + f.topic, "KINESIS_STREAM_ARN=" + f.stream,
		"SINK_INITIAL_POSITION=earliest", "AWS_ENDPOINT_URL=" + env.AWSEndpointURL,
		"AWS_ACCESS_KEY_ID=" + env.AWSAccessKeyID, "AWS_SECRET_ACCESS_KEY=" + env.AWSSecretAccessKey,
	}
	return f
}

// publish sends n messages with keys k0..k2 and returns them in publish order.
func (f *fixture) publish(t *testing.T, n int) [][2]string {
	t.Helper()
	quiet := pulsarlog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(io.Discard, nil)))
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: f.env.PulsarServiceURL, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: f.topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var out [][2]string
	for i := range n {
		m := [2]string{fmt.Sprintf("k%d", i%3), fmt.Sprintf("payload %d \x00\xff", i)}
		if _, err := p.Send(context.Background(), &pulsar.ProducerMessage{Key: m[0], Payload: []byte(m[1])}); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// records reads the stream's one shard: [partition key, data] in sequence order.
func (f *fixture) records(t *testing.T) [][2]string {
	t.Helper()
	ctx := context.Background()
	it, err := f.kin.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamARN: aws.String(f.stream),
		ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.kin.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, StreamARN: aws.String(f.stream)})
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	for _, r := range got.Records {
		out = append(out, [2]string{aws.ToString(r.PartitionKey), string(r.Data)})
	}
	return out
}

func start(t *testing.T, f *fixture, timeout time.Duration, stdout io.Writer, extra ...string) *runtimeapi.Env {
	t.Helper()
	var stderr runtimeapi.Output
	env, err := runtimeapi.Start(context.Background(), runtimeapi.Options{Binary: bootstrap, Env: append(f.vars, extra...),
		FunctionName: "pulsar-to-kinesis", Timeout: timeout, MemoryMB: 256, Stdout: stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = env.Shutdown(context.Background())
		if t.Failed() {
			t.Logf("function stderr:\n%s", stderr.String())
		}
	})
	return env
}

// TestBootstrapDrainsTopicIntoStream: the real bootstrap under the Runtime API, manual event.
func TestBootstrapDrainsTopicIntoStream(t *testing.T) {
	f := newFixture(t)
	sent := f.publish(t, 30)
	var stdout runtimeapi.Output
	env := start(t, f, 30*time.Second, &stdout)
	res, err := env.Invoke(context.Background(), []byte(`{"maxMessages":30,"idleMs":5000}`))
	if err != nil || res.Error != nil {
		t.Fatalf("invoke: %v %v", err, res.Error)
	}
	var got sink.Result
	if err := json.Unmarshal(res.Payload, &got); err != nil {
		t.Fatalf("response %s: %v", res.Payload, err)
	}
	want := sink.Result{Received: 30, Put: 30, Acknowledged: 30, StoppedBy: sink.StopMaxMessages}
	if got != want {
		t.Errorf("response %+v, want %+v", got, want)
	}
	recs := f.records(t)
	if fmt.Sprint(recs) != fmt.Sprint(sent) {
		t.Errorf("stream holds\n%q\nwant, byte for byte and in publish order (one shard)\n%q", recs, sent)
	}

	// One valid EMF document per invocation, with the counts.
	var doc map[string]any
	for _, line := range stdout.Lines() {
		if strings.Contains(line, `"_aws"`) {
			if err := emfcheck.Validate([]byte(line)); err != nil {
				t.Errorf("invalid EMF: %v", err)
			}
			_ = json.Unmarshal([]byte(line), &doc)
		}
	}
	if doc["SinkMessagesPut"] != 30.0 || doc["FunctionName"] != "pulsar-to-kinesis" {
		t.Errorf("EMF document %v", doc)
	}

	// A scheduled invocation (EventBridge Scheduler's payload is ignored) runs to the deadline margin
	// and answers in time.
	res, err = env.Invoke(context.Background(), []byte(`{"version":"0","source":"aws.scheduler"}`))
	if err != nil || res.Error != nil {
		t.Fatalf("scheduled invoke: %v %v", err, res.Error)
	}
	if err := json.Unmarshal(res.Payload, &got); err != nil || got.StoppedBy != sink.StopDeadline || got.Received != 0 {
		t.Errorf("scheduled invocation: %s", res.Payload)
	}
	if res.Duration > 30*time.Second || res.Duration < 28*time.Second {
		t.Errorf("scheduled invocation took %v, want about the timeout minus the 1 s margin", res.Duration)
	}
}

// TestBootstrapRefusesBadConfiguration: init fails, naming every bad variable.
func TestBootstrapRefusesBadConfiguration(t *testing.T) {
	f := newFixture(t)
	var stderr runtimeapi.Output
	env, err := runtimeapi.Start(context.Background(), runtimeapi.Options{Binary: bootstrap,
		Env: append(f.vars, "KINESIS_ORDERING=strict", "KINESIS_STREAM_ARN=orders"), Stderr: &stderr})
	if err == nil {
		_, err = env.Invoke(context.Background(), []byte(`{}`))
		defer env.Shutdown(context.Background())
	}
	if !errors.Is(err, runtimeapi.ErrInitFailed) {
		t.Fatalf("error %v, want init failure", err)
	}
	for _, v := range []string{"KINESIS_ORDERING", "KINESIS_STREAM_ARN"} {
		if !bytes.Contains([]byte(stderr.String()), []byte(v)) {
			t.Errorf("stderr does not name %s:\n%s", v, stderr.String())
		}
	}
}

// TestKilledEnvironment: the process is killed (SIGKILL) in the middle of a drain; the next
// invocation, in a fresh environment, writes the rest: every message reaches the stream, each in
// publish order at its first delivery (one key, so one record in flight at a time).
func TestKilledEnvironment(t *testing.T) {
	f := newFixture(t)
	const n = 150
	var sent [][2]string
	quiet := pulsarlog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(io.Discard, nil)))
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: f.env.PulsarServiceURL, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: f.topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m := [2]string{"one-key", fmt.Sprintf("m%03d", i)}
		if _, err := p.Send(context.Background(), &pulsar.ProducerMessage{Key: m[0], Payload: []byte(m[1])}); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m)
	}
	p.Close()
	c.Close()

	env := start(t, f, 60*time.Second, nil)
	killed := make(chan error, 1)
	go func() {
		_, err := env.Invoke(context.Background(), []byte(`{"idleMs":5000}`))
		killed <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for len(f.records(t)) < 5 {
		if time.Now().After(deadline) {
			t.Fatal("no record reached the stream")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(env.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-killed; !errors.Is(err, runtimeapi.ErrProcessExited) {
		t.Fatalf("killed invocation: %v, want the process gone", err)
	}
	before := len(f.records(t))
	if before >= n {
		t.Fatalf("the drain finished (%d records) before the kill; the test needs a slower drain", before)
	}

	res, err := env.Invoke(context.Background(), []byte(`{"idleMs":5000}`))
	if err != nil || res.Error != nil || !res.ColdStart {
		t.Fatalf("next invocation: %v %v (cold start %v)", err, res.Error, res.ColdStart)
	}
	recs := f.records(t)
	seen := map[string]bool{}
	var first [][2]string
	for _, r := range recs {
		if !seen[r[1]] {
			seen[r[1]] = true
			first = append(first, r)
		}
	}
	if fmt.Sprint(first) != fmt.Sprint(sent) {
		t.Errorf("first deliveries after the kill\n%v\nwant\n%v", first, sent)
	}
	t.Logf("killed after %d of %d records; %d records in the stream at the end (%s)", before, n, len(recs), res.Payload)
}
