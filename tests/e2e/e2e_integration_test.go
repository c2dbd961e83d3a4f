//go:build integration

// Package e2e runs the real bootstrap binary under a local Lambda Runtime API against the local stack:
// the function exactly as Lambda runs it, configured only through its environment variables.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
	"github.com/streambridge/kinesis-pulsar/internal/kpl"
	"github.com/streambridge/kinesis-pulsar/tests/emfcheck"
	"github.com/streambridge/kinesis-pulsar/tests/kinesistest"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

// bootstrap is the function binary, built once for the host by TestMain.
var bootstrap string

func TestMain(m *testing.M) {
	runtimeapi.RunTests(m, "../../functions/kinesis-to-pulsar", &bootstrap)
}

type function struct {
	env            *runtimeapi.Env
	stdout, stderr *runtimeapi.Output
}

// start runs the bootstrap with exactly vars (plus what Lambda itself sets).
func start(t *testing.T, vars map[string]string, timeout time.Duration) (*function, error) {
	t.Helper()
	f := &function{stdout: &runtimeapi.Output{}, stderr: &runtimeapi.Output{}}
	var env []string
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	var err error
	f.env, err = runtimeapi.Start(context.Background(), runtimeapi.Options{
		Binary: bootstrap, Env: env, FunctionName: "kinesis-to-pulsar", MemoryMB: 256, Timeout: timeout,
		Stdout: f.stdout, Stderr: f.stderr,
	})
	if err != nil {
		return f, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = f.env.Shutdown(ctx)
	})
	return f, nil
}

func mustStart(t *testing.T, vars map[string]string, timeout time.Duration) *function {
	t.Helper()
	f, err := start(t, vars, timeout)
	if err != nil {
		t.Fatalf("starting bootstrap: %v\nstderr:\n%s", err, strings.Join(f.stderr.Lines(), "\n"))
	}
	return f
}

func (f *function) invoke(t *testing.T, ev events.KinesisEvent) (events.KinesisEventResponse, runtimeapi.Result) {
	t.Helper()
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.env.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("function error: %v\nstderr:\n%s", res.Error, strings.Join(f.stderr.Lines(), "\n"))
	}
	var resp events.KinesisEventResponse
	if err := json.Unmarshal(res.Payload, &resp); err != nil {
		t.Fatalf("response %s: %v", res.Payload, err)
	}
	return resp, res
}

// settle waits until the child's output pipes have delivered the lines an invocation writes before
// it answers: os/exec copies them on its own goroutine, so they can trail the response.
func (f *function) settle(t *testing.T, stdoutLines, stderrLines int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for len(f.stdout.Lines()) < stdoutLines || len(f.stderr.Lines()) < stderrLines {
		if time.Now().After(deadline) {
			return // the assertions that follow report what is missing
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// emf returns the invocation's EMF documents, checking that stdout holds nothing else.
func (f *function) emf(t *testing.T) []map[string]any {
	t.Helper()
	f.settle(t, 1, 1)
	var docs []map[string]any
	for _, line := range f.stdout.Lines() {
		if err := emfcheck.Validate([]byte(line)); err != nil {
			t.Errorf("stdout line is not valid EMF (%v): %s", err, line)
			continue
		}
		var doc map[string]any
		_ = json.Unmarshal([]byte(line), &doc)
		docs = append(docs, doc)
	}
	return docs
}

// logs returns the JSON log lines on stderr with the given message.
func (f *function) logs(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range f.stderr.Lines() {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("stderr line is not JSON: %s", line)
			continue
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func quickStartEvent(t *testing.T, stream string) events.KinesisEvent {
	t.Helper()
	shard := kinesistest.NewShard(stream, 0)
	user := make([]kpl.Record, 10)
	for i := range user {
		user[i] = kpl.Record{PartitionKey: "myPartitionKey", Data: []byte("test-kinesis-data")}
	}
	rec, err := shard.Aggregate(user)
	if err != nil {
		t.Fatal(err)
	}
	return kinesistest.Event(rec)
}

// The acceptance of the publish issue: the real bootstrap, only PULSAR_SERVICE_URL and PULSAR_TOPIC set,
// an event through the Runtime API; one EMF document and one summary line per invocation (observability).
func TestBootstrapPublishes(t *testing.T) {
	stack := localenv.Require(t)
	topic := pulsartest.Topic(t, "e2e")
	f := mustStart(t, map[string]string{"PULSAR_SERVICE_URL": stack.PulsarServiceURL, "PULSAR_TOPIC": topic}, 30*time.Second)

	for i, wantCreated := range []float64{1, 0} {
		f.stdout.Reset()
		f.stderr.Reset()
		ev := quickStartEvent(t, "e2e")
		resp, res := f.invoke(t, ev)
		if resp.BatchItemFailures == nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("invocation %d: response %s, want an empty batchItemFailures list", i, res.Payload)
		}
		docs := f.emf(t)
		if len(docs) != 1 {
			t.Fatalf("invocation %d: %d EMF documents, want 1", i, len(docs))
		}
		d := docs[0]
		if d["RecordsReceived"] != 1.0 || d["KplSubRecords"] != 10.0 || d["MessagesPublished"] != 10.0 ||
			d["RecordsFailed"] != 0.0 || d["ProducerCreated"] != wantCreated || d["FunctionName"] != "kinesis-to-pulsar" ||
			d["Stream"] != "e2e" || d["Topic"] != topic || d["outcome"] != "delivered" || d["requestId"] != res.RequestID {
			t.Errorf("invocation %d: EMF document %v", i, d)
		}
		summary := f.logs(t, "batch")
		if len(summary) != 1 {
			t.Fatalf("invocation %d: %d summary lines, want 1:\n%s", i, len(summary), strings.Join(f.stderr.Lines(), "\n"))
		}
		s := summary[0]
		if s["level"] != "INFO" || s["requestId"] != res.RequestID || s["shardId"] != "shardId-000000000000" ||
			s["firstSequenceNumber"] != ev.Records[0].Kinesis.SequenceNumber || s["published"] != 10.0 || s["outcome"] != "delivered" {
			t.Errorf("invocation %d: summary %v", i, s)
		}
		if strings.Contains(strings.Join(f.stderr.Lines(), "\n"), "test-kinesis-data") {
			t.Error("a payload reached the logs")
		}
	}
	client := pulsartest.Client(t, stack.PulsarServiceURL)
	msgs := pulsartest.ReadAll(t, client, topic, time.Minute)
	if len(msgs) != 20 {
		t.Fatalf("got %d messages, want 20", len(msgs))
	}
	for _, m := range msgs {
		if m.Key() != "myPartitionKey" || string(m.Payload()) != "test-kinesis-data" || m.Properties()["kinesis.sequence.number"] == "" {
			t.Errorf("message key %q payload %q properties %v", m.Key(), m.Payload(), m.Properties())
		}
	}
}

func TestBootstrapInvalidConfiguration(t *testing.T) {
	f, err := start(t, map[string]string{
		"PULSAR_SERVICE_URL": "http://127.0.0.1:6650",
		"PULSAR_COMPRESSION": "gzip",
		"DEADLINE_MARGIN_MS": "soon",
	}, 5*time.Second)
	if !errors.Is(err, runtimeapi.ErrInitFailed) {
		t.Fatalf("start: %v, want an init failure", err)
	}
	f.settle(t, 0, 1)
	var errorLines []string
	for _, line := range f.stderr.Lines() {
		if strings.Contains(line, "invalid configuration") {
			errorLines = append(errorLines, line)
		}
	}
	if len(errorLines) != 1 {
		t.Fatalf("%d error lines, want one naming every variable:\n%s", len(errorLines), strings.Join(f.stderr.Lines(), "\n"))
	}
	for _, name := range []string{"PULSAR_SERVICE_URL", "PULSAR_TOPIC", "PULSAR_COMPRESSION", "DEADLINE_MARGIN_MS"} {
		if !strings.Contains(errorLines[0], name) {
			t.Errorf("init error does not name %s: %s", name, errorLines[0])
		}
	}
}

// Nothing listens on the broker port: the whole batch is reported failed before the deadline, and the
// function does not time out.
func TestBootstrapBrokerDown(t *testing.T) {
	const timeout = 3 * time.Second
	f := mustStart(t, map[string]string{
		"PULSAR_SERVICE_URL": "pulsar://127.0.0.1:1", "PULSAR_TOPIC": "persistent://public/default/down",
		"DEADLINE_MARGIN_MS": "500", "PULSAR_CONNECT_TIMEOUT_MS": "500",
	}, timeout)
	ev := quickStartEvent(t, "down")
	resp, res := f.invoke(t, ev)
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != ev.Records[0].Kinesis.SequenceNumber {
		t.Fatalf("response %s, want the first record failed", res.Payload)
	}
	// The product's bound is the timeout: an answer after it is no answer (Lambda kills the function).
	// That the relay stopped at the margin, 500 ms before it, is DeadlineStops below; what follows the
	// stop (the EMF document, the response through the Runtime API) is this machine's time, not the
	// product's, so the assertion does not divide the margin further.
	if res.Duration >= timeout {
		t.Errorf("took %v of a %v timeout", res.Duration, timeout)
	}
	if docs := f.emf(t); len(docs) != 1 || docs[0]["DeadlineStops"] != 1.0 || docs[0]["RecordsFailed"] != 1.0 {
		t.Errorf("EMF %v", docs)
	}
}

// SIGTERM closes the producers and exits at once, well inside Lambda's 500 ms before SIGKILL.
func TestBootstrapShutdown(t *testing.T) {
	stack := localenv.Require(t)
	f := mustStart(t, map[string]string{"PULSAR_SERVICE_URL": stack.PulsarServiceURL, "PULSAR_TOPIC": pulsartest.Topic(t, "e2e")}, 30*time.Second)
	f.invoke(t, quickStartEvent(t, "e2e"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	startedAt := time.Now()
	exit, err := f.env.Shutdown(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The product's bound is Lambda's: SIGKILL 500 ms after SIGTERM. The driver sends it at the same
	// moment (runtimeapi.Options.ShutdownGrace), so Forced is that bound; the elapsed time adds the
	// reaping of the process on this machine and is only reported.
	elapsed := time.Since(startedAt)
	if exit.Forced || exit.Code != 0 {
		t.Errorf("shutdown took %v (exit %+v), want a clean exit before SIGKILL", elapsed, exit)
	}
	t.Logf("exited %v after SIGTERM", elapsed.Round(time.Millisecond))
}
