//go:build integration

package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
	"github.com/streambridge/kinesis-pulsar/internal/audit"
	"github.com/streambridge/kinesis-pulsar/internal/metrics"
	"github.com/streambridge/kinesis-pulsar/internal/producer"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/internal/relay/senders"
	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
	"github.com/streambridge/kinesis-pulsar/tests/kinesistest"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

// observer keeps every summary and writes its EMF document, as the function does.
type observer struct {
	emf  relay.EMFObserver
	mu   sync.Mutex
	sums []*relay.Summary
}

func (o *observer) Observe(ctx context.Context, s *relay.Summary) {
	o.mu.Lock()
	o.sums = append(o.sums, s)
	o.mu.Unlock()
	o.emf.Observe(ctx, s)
}

func (o *observer) last(t *testing.T) *relay.Summary {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.sums) == 0 {
		t.Fatal("no summary observed")
	}
	return o.sums[len(o.sums)-1]
}

// relayFixture is the handler as the function wires it: the real pool on the stack's broker, the audit
// table given, EMF and logs captured.
type relayFixture struct {
	relay     *relay.Relay
	obs       *observer
	emf, logs *runtimeapi.Output
	topic     string
	client    pulsar.Client
}

func newRelay(t *testing.T, auditor relay.Auditor, opts relay.Options, popts producer.Options) *relayFixture {
	t.Helper()
	stack := localenv.Require(t)
	if opts.Topic.IsZero() {
		opts.Topic = streamtopic.MustParse(pulsartest.Topic(t, "audit"))
	}
	opts.Properties = relay.AllProperties
	opts.Now = localenv.Now
	popts.ServiceURL = stack.PulsarServiceURL
	popts.Logger = slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	pool := producer.NewPool(popts)
	t.Cleanup(func() { pool.Close(context.Background()) })
	f := &relayFixture{emf: &runtimeapi.Output{}, logs: &runtimeapi.Output{}, topic: opts.Topic.String(), client: pulsartest.Client(t, stack.PulsarServiceURL)}
	f.obs = &observer{emf: relay.EMFObserver{EMF: metrics.New(f.emf, "KinesisPulsar", "kinesis-to-pulsar", relay.MetricSchema)}}
	f.relay = relay.New(opts, senders.FromPool(pool), auditor, f.obs, slog.New(slog.NewJSONHandler(f.logs, nil)))
	return f
}

// handle runs one invocation with a request id and a deadline, as Lambda does; it returns the
// response and how long Handle took.
func (f *relayFixture) handle(t *testing.T, timeout time.Duration, requestID string, ev events.KinesisEvent) (events.KinesisEventResponse, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: requestID})
	start := time.Now()
	resp, err := f.relay.Handle(ctx, ev)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return resp, elapsed
}

// lastEMF is the newest EMF document.
func (f *relayFixture) lastEMF(t *testing.T) map[string]any {
	t.Helper()
	docs := f.emf.JSON("")
	if len(docs) == 0 {
		t.Fatal("no EMF document")
	}
	return docs[len(docs)-1]
}

func failures(resp events.KinesisEventResponse) []string {
	out := []string{}
	for _, f := range resp.BatchItemFailures {
		out = append(out, f.ItemIdentifier)
	}
	return out
}

// One record can never be published (6 MiB, chunking off, no dead-letter topic): the batch item names
// it, and the checkpoint stops at the record before it, with that record's message id.
func TestRelayPartialFailure(t *testing.T) {
	l := newLocal(t)
	f := newRelay(t, audit.New(l.db, audit.Options{Table: l.table}), relay.Options{}, producer.Options{Chunking: false})
	shard := kinesistest.NewShard("audit-partial", 2)
	ev := kinesistest.Event(
		shard.Record("a", []byte("first")),
		shard.Record("b", []byte("second")),
		shard.Record("a", make([]byte, 6<<20)),
		shard.Record("b", []byte("fourth")),
	)
	seq := func(i int) string { return ev.Records[i].Kinesis.SequenceNumber }
	resp, _ := f.handle(t, time.Minute, "req-partial", ev)
	if got := failures(resp); fmt.Sprint(got) != fmt.Sprint([]string{seq(2)}) {
		t.Fatalf("batch item failures %v, want [%s]", got, seq(2))
	}

	msgs := pulsartest.ReadAll(t, f.client, f.topic, time.Minute)
	if len(msgs) != 2 || string(msgs[1].Payload()) != "second" {
		t.Fatalf("%d messages on the topic, want first and second", len(msgs))
	}
	pk := audit.Key(kinesistest.StreamARN("audit-partial"), shard.ID)
	cp := attrs(l.item(t, pk, audit.CheckpointSK))
	if cp["sequenceNumber"] != seq(1) || cp["lastMessageId"] != msgs[1].ID().String() || cp["requestId"] != "req-partial" || cp["topic"] != f.topic {
		t.Errorf("checkpoint %v, want %s with message id %s", cp, seq(1), msgs[1].ID())
	}
	b := attrs(l.item(t, pk, audit.BatchSK(seq(0), "req-partial")))
	want := map[string]string{
		"firstSequenceNumber": seq(0), "lastSequenceNumber": seq(3), "failedSequenceNumber": seq(2),
		"checkpointSequenceNumber": seq(1), "records": "N:4", "published": "N:2", "deadLettered": "N:0", "topic": f.topic,
	}
	for k, v := range want {
		if b[k] != v {
			t.Errorf("batch item %s = %q, want %q (item %v)", k, b[k], v, b)
		}
	}
}

// Exactly one conditional update and one put per invocation, whatever the batch size: counted on
// the wire, through the relay.
func TestRelayTwoWriteRequestsPerInvocation(t *testing.T) {
	l := newLocal(t)
	f := newRelay(t, audit.New(l.db, audit.Options{Table: l.table}), relay.Options{}, producer.Options{})
	shard := kinesistest.NewShard("audit-writes", 0)
	for i, n := range []int{1, 100, 2000} {
		var ev events.KinesisEvent
		for j := 0; j < n; j++ {
			ev.Records = append(ev.Records, shard.Record(fmt.Sprintf("k%d", j%10), []byte{byte(j)}))
		}
		l.reqs.take()
		resp, _ := f.handle(t, time.Minute, fmt.Sprintf("req-%d", i), ev)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("%d records: failures %v", n, resp.BatchItemFailures)
		}
		if got, want := l.reqs.take(), map[string]int{"UpdateItem": 1, "PutItem": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%d records: requests %v, want %v", n, got, want)
		}
		cp := attrs(l.item(t, audit.Key(kinesistest.StreamARN("audit-writes"), shard.ID), audit.CheckpointSK))
		if last := ev.Records[n-1].Kinesis.SequenceNumber; cp["sequenceNumber"] != last {
			t.Errorf("%d records: checkpoint %s, want %s", n, cp["sequenceNumber"], last)
		}
	}
}

// timedAuditor measures the audit write the relay makes.
type timedAuditor struct {
	relay.Auditor
	mu   sync.Mutex
	took time.Duration
}

func (a *timedAuditor) Record(ctx context.Context, b relay.AuditRecord) error {
	start := time.Now()
	err := a.Auditor.Record(ctx, b)
	a.mu.Lock()
	a.took = time.Since(start)
	a.mu.Unlock()
	return err
}

// clientAt is a client with the stack's configuration and the SDK's default HTTP client and retries
// (as the function has), sending to endpoint.
func clientAt(t *testing.T, endpoint string) *dynamodb.Client {
	t.Helper()
	cfg, err := localenv.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// closedPort returns the URL of a local port nobody listens on: connections are refused.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

// silentServer returns the URL of a local server that accepts connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// The audit table cannot be written, end to end through the relay. AUDIT_REQUIRED=false: the batch is
// delivered, and the summary, the EMF document and an error line count the audit error.
// AUDIT_REQUIRED=true: the first record is reported failed, so Lambda delivers the whole batch again.
// The audit write takes at most audit.DefaultTimeout, or less when the invocation's deadline is
// nearer; the invocation always returns before its deadline.
func TestRelayAuditUnavailable(t *testing.T) {
	stack := localenv.Require(t)
	const slack = 300 * time.Millisecond // scheduling on a busy machine, with -race
	cases := []struct {
		name     string
		table    string
		url      func(t *testing.T) string
		timeout  time.Duration // the invocation's
		maxAudit time.Duration // the bound on the audit write
	}{
		{"table does not exist", "audit-missing", func(*testing.T) string { return stack.DynamoDBEndpointURL }, 10 * time.Second, slack},
		{"closed port", "audit", closedPort, 10 * time.Second, audit.DefaultTimeout + slack},
		{"endpoint does not answer", "audit", silentServer, 10 * time.Second, audit.DefaultTimeout + slack},
		// The deadline comes first: Handle keeps 100 ms for its response.
		{"endpoint does not answer, deadline first", "audit", silentServer, 1500 * time.Millisecond, 1400*time.Millisecond + slack/2},
	}
	for _, c := range cases {
		for _, required := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/required=%v", c.name, required), func(t *testing.T) {
				auditor := &timedAuditor{Auditor: audit.New(clientAt(t, c.url(t)), audit.Options{Table: c.table})}
				f := newRelay(t, auditor, relay.Options{DeadlineMargin: 500 * time.Millisecond, AuditRequired: required}, producer.Options{})
				shard := kinesistest.NewShard("audit-down", 1)
				ev := kinesistest.Event(shard.Record("k", []byte("1")), shard.Record("k", []byte("2")), shard.Record("k", []byte("3")))
				resp, elapsed := f.handle(t, c.timeout, "req-down", ev)
				t.Logf("Handle took %v, the audit write %v (invocation timeout %v)", elapsed, auditor.took, c.timeout)
				if auditor.took > c.maxAudit {
					t.Errorf("the audit write took %v, want at most %v", auditor.took, c.maxAudit)
				}
				if elapsed >= c.timeout-50*time.Millisecond {
					t.Errorf("Handle took %v with a %v timeout: it must return before the deadline", elapsed, c.timeout)
				}

				s := f.obs.last(t)
				if s.AuditError == nil {
					t.Fatal("no audit error in the summary")
				}
				if doc := f.lastEMF(t); doc["AuditWriteErrors"] != 1.0 {
					t.Errorf("EMF AuditWriteErrors = %v, want 1", doc["AuditWriteErrors"])
				}
				if lines := f.logs.JSON("audit write failed"); len(lines) != 1 || lines[0]["required"] != required {
					t.Errorf("audit error lines %v", lines)
				}
				if msgs := pulsartest.ReadAll(t, f.client, f.topic, time.Minute); len(msgs) != 3 {
					t.Errorf("%d messages on the topic, want 3", len(msgs))
				}
				if !required {
					if len(resp.BatchItemFailures) != 0 || s.Outcome != relay.OutcomeDelivered {
						t.Errorf("failures %v, outcome %s; want the batch delivered", failures(resp), s.Outcome)
					}
					return
				}
				if got := failures(resp); fmt.Sprint(got) != fmt.Sprint([]string{ev.Records[0].Kinesis.SequenceNumber}) ||
					s.Outcome != relay.OutcomeFailed || s.FailedRecords != 3 || s.Cause != s.AuditError {
					t.Errorf("failures %v, outcome %s, failed records %d, cause %v; want the first record failed because of the audit",
						got, s.Outcome, s.FailedRecords, s.Cause)
				}
			})
		}
	}
}
