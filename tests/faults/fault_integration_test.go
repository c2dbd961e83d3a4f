//go:build integration

package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/internal/audit"
	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

// TestFaults runs the fault matrix against one broker of its own (a start costs seconds): each
// scenario is a subtest that leaves the broker running and the proxy healed for the next.
func TestFaults(t *testing.T) {
	localenv.Require(t)
	fb := startFaultBroker(t)
	if effectivelyOnce() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := fb.admin.EnsureNamespace(ctx, onceNamespace, true)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	scenarios := []struct {
		name string
		run  func(*testing.T, *faultBroker)
	}{
		{"proxy_is_the_only_path", proxyIsTheOnlyPath},
		{"broker_down_before_invocation", brokerDownBeforeInvocation},
		// Early in the list: cheap, and the scenarios that catch two of the relay mutants
		// (TestMutantsAreCaught runs the matrix until the first failure).
		{"too_large_last_without_dead_letter", tooLargeAt(false, 59)},
		{"dead_letter_topic_terminated", deadLetterTopicTerminated},
		{"broker_killed_mid_batch", brokerKilledMidBatch},
		{"broker_restarted_between_invocations", brokerRestartedBetweenInvocations},
		{"connection_reset_mid_batch", connectionResetMidBatch},
		{"proxy_disabled_mid_batch", proxyDisabledMidBatch},
		{"latency_spikes", latencySpikes},
		{"bandwidth_limit", bandwidthLimit},
		{"invocation_longer_than_keepalive", invocationLongerThanKeepAlive},
		{"broker_never_answers_warm", brokerNeverAnswers(false, "")},
		{"broker_never_answers_cold", brokerNeverAnswers(true, "")},
		{"broker_never_answers_queue_full", brokerNeverAnswers(false, "10")},
		{"frozen_past_keepalive", frozenPastKeepAlive},
		{"frozen_silent_drop", frozenSilentDrop},
		{"frozen_silent_drop_default_keepalive", frozenSilentDropDefaultKeepAlive},
		{"reclaimed_after_every_response", reclaimedAfterEveryResponse},
		{"secrets_manager_down", secretsManagerDown},
		{"secrets_manager_slow", secretsManagerSlow},
		{"dynamodb_down_audit_optional", dynamoDown(false)},
		{"dynamodb_down_audit_required", dynamoDown(true)},
		{"dynamodb_slow_audit_optional", dynamoSlow(false)},
		{"dynamodb_slow_audit_required", dynamoSlow(true)},
		{"too_large_to_dead_letter", tooLarge(true)},
		{"too_large_without_dead_letter", tooLarge(false)},
		{"topic_terminated_to_dead_letter", topicTerminated(true)},
		{"topic_terminated_without_dead_letter", topicTerminated(false)},
		{"concurrent_shards", concurrentShards},
		{"concurrent_reset", concurrentReset},
	}
	var failed []string
	for _, sc := range scenarios {
		ok := t.Run(sc.name, func(t *testing.T) {
			// Registered first, so it runs last: the next scenario finds the broker up and the proxy clean.
			t.Cleanup(func() { fb.ensureUp(t) })
			if effectivelyOnce() {
				// Scenarios reuse stream names and shards, and so sequence numbers: each gets a state of its own.
				fb.onceTable = onceTable(t)
			}
			sc.run(t, fb)
		})
		if !ok {
			failed = append(failed, sc.name)
		}
	}
	// A long log buries a subtest's failure; name the failed scenarios once more at the end.
	if len(failed) > 0 {
		t.Errorf("failed scenarios: %s", strings.Join(failed, ", "))
	}
}

// vars is the function's configuration for a scenario: the broker through the proxy, short connect
// and operation timeouts so that faults show within an invocation.
func vars(fb *faultBroker, topic string, extra ...string) map[string]string {
	v := map[string]string{
		"PULSAR_SERVICE_URL":          fb.url,
		"PULSAR_TOPIC":                topic,
		"PULSAR_CONNECT_TIMEOUT_MS":   "1000",
		"PULSAR_OPERATION_TIMEOUT_MS": "3000",
		"DEADLINE_MARGIN_MS":          "500",
	}
	if fb.onceTable != "" {
		v["PROCESSING_GUARANTEE"], v["AUDIT_TABLE_NAME"] = "effectivelyOnce", fb.onceTable
	}
	for i := 0; i+1 < len(extra); i += 2 {
		v[extra[i]] = extra[i+1]
	}
	return v
}

// onceTable creates an audit table for one scenario of the effectively-once run (scenarios with a
// table of their own keep theirs: the sequence ids then live there).
func onceTable(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := localenv.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	table := fmt.Sprintf("faults-once-%d", time.Now().UnixNano())
	if err := audit.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &table}) })
	return table
}

func topic(t *testing.T) string {
	tp := pulsartest.Topic(t, "faults")
	if effectivelyOnce() {
		tp = strings.Replace(tp, "public/default/", onceNamespace+"/", 1)
	}
	return tp
}

// wantReconnect asserts that the client saw its connection go (its own warning), so the fault hit the
// function's traffic and not only the proxy.
func wantReconnect(t *testing.T, f *inproc) {
	t.Helper()
	if len(f.log.JSON("Connection was closed")) == 0 {
		t.Errorf("the Pulsar client never lost its connection: the fault missed the function's traffic")
	}
}

// warm runs one small batch so that the client and the producer exist, as in a warm environment.
func warm(t *testing.T, fb *faultBroker, inv invoker, topic string, shard int) {
	t.Helper()
	l := newLedger(t, fb, topic, "", batchSpec{stream: "warm", shard: shard, n: 5, size: 100})
	if next, o := l.first(inv); next != -1 {
		t.Fatalf("warm-up invocation: %v", describe(o))
	}
}

// The harness's premise: every byte between the function and the broker crosses the proxy. The
// broker advertises the proxy as its internal listener, so the topic lookup a client makes through the
// proxy sends it back through the proxy (a client that dialled the broker's own port would be answered
// with that port: the function is only ever given the proxy). Cutting the proxy cuts the client off,
// while the checker's reader (listener "direct") still reads.
func proxyIsTheOnlyPath(t *testing.T, fb *faultBroker) {
	tp := topic(t)
	lookup := struct {
		BrokerURL string `json:"brokerUrl"`
	}{}
	resp, err := http.Get(fb.AdminURL() + "/lookup/v2/topic/persistent/" + strings.TrimPrefix(tp, "persistent://"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&lookup); err != nil {
		t.Fatal(err)
	}
	if lookup.BrokerURL != fb.url {
		t.Fatalf("lookup answers %q, want the proxy %q", lookup.BrokerURL, fb.url)
	}

	serviceURL := fb.url
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: serviceURL, ConnectionTimeout: time.Second,
		OperationTimeout: 5 * time.Second, Logger: pulsartest.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: tp, SendTimeout: -1})
	if err != nil {
		t.Fatalf("producer via %s: %v", serviceURL, err)
	}
	defer p.Close()
	send := func(wait time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte(serviceURL)})
		return err
	}
	if err := send(10 * time.Second); err != nil {
		t.Fatalf("send via %s: %v", serviceURL, err)
	}
	fb.proxy.disable()
	cut := send(3 * time.Second)
	// The checker's path stays open: reading over the direct listener does not need the proxy.
	readable := len(fb.read(t, tp))
	fb.proxy.enable(t)
	if cut == nil {
		t.Errorf("client given %s published with the proxy down: traffic bypasses the proxy", serviceURL)
	}
	if readable == 0 {
		t.Errorf("reader on the direct listener read nothing with the proxy down")
	}
	started := time.Now()
	if err := send(15 * time.Second); err != nil {
		t.Fatalf("send via %s after the proxy came back: %v", serviceURL, err)
	}
	t.Logf("client given %s: cut off with the proxy down (%v), back %v after it returned", serviceURL, cut, time.Since(started).Round(time.Millisecond))
	if msgs := fb.read(t, tp); len(msgs) < 2 {
		t.Errorf("read %d messages, want at least 2", len(msgs))
	}
}

// Nothing answers at the broker's address when the invocation starts: the whole batch is reported
// failed before the deadline, and the retries deliver it once the broker is back.
func brokerDownBeforeInvocation(t *testing.T, fb *faultBroker) {
	tp := topic(t)
	const timeout = 5 * time.Second
	f := newInproc(t, vars(fb, tp), timeout, awsEndpoints{})
	l := newLedger(t, fb, tp, "", batchSpec{stream: "down", n: 300, size: 512, aggregateEvery: 50, aggregateOf: 5})
	fb.kill(t)
	next, o := l.first(f)
	if next != 0 || o.fnErr != nil {
		t.Errorf("with the broker down: %v, next %d; want the first record reported", describe(o), next)
	}
	took := fb.restart(t)
	t.Logf("broker restarted in %v", took.Round(time.Millisecond))
	l.check("after the outage", false)
	l.replay(f, next, 5)
	l.check("after the retries", true)
	l.finish()
}

// A graceful broker restart between two invocations: the warm producer reconnects and the next batch
// goes through.
func brokerRestartedBetweenInvocations(t *testing.T, fb *faultBroker) {
	tp := topic(t)
	f := newInproc(t, vars(fb, tp), 10*time.Second, awsEndpoints{})
	warm(t, fb, f, tp, 9)
	took := fb.restart(t)
	t.Logf("broker restarted in %v", took.Round(time.Millisecond))
	l := newLedger(t, fb, tp, "", batchSpec{stream: "restart", n: 500, size: 512, aggregateEvery: 50, aggregateOf: 5})
	started := time.Now()
	next, o := l.first(f)
	if next != -1 {
		t.Errorf("the first invocation after the restart: %v; the warm producer should have recovered", describe(o))
	}
	l.check("after the restart", false)
	l.replay(f, next, 5)
	l.recovered = time.Since(started)
	l.check("after the retries", true)
	l.finish()
}

// midBatch is a fault that strikes while a warm function publishes a large batch. Each such scenario
// runs the same skeleton: warm up, publish while the fault strikes, check what reached the broker,
// heal, let the retries deliver, check again; they differ in the fault.
type midBatch struct {
	fault   string // what struck, for the checker's messages
	stream  string
	timeout time.Duration
	spec    batchSpec
	// strike arms or starts the fault; the settle it returns runs after the first invocation and
	// returns once the fault is over (failing the test if it never struck).
	strike func(t *testing.T, fb *faultBroker, f *inproc) (settle func())
	// reconnect: the client must have seen its connection go, so the fault hit the function's traffic.
	reconnect bool
	// mustFail: the fault leaves the first invocation unable to deliver the whole batch.
	mustFail bool
}

// mixedBatch is 3,000 records with aggregates, records above the batch size limit and three records
// too large for the broker.
var mixedBatch = batchSpec{n: 3000, size: 1024, aggregateEvery: 100, aggregateOf: 10, largeEvery: 700,
	largeSize: 200 << 10, tooLarge: []int{500, 1500, 2500}}

func (m midBatch) run(t *testing.T, fb *faultBroker) {
	tp := topic(t)
	f := newInproc(t, vars(fb, tp), m.timeout, awsEndpoints{})
	warm(t, fb, f, tp, 9)
	spec := m.spec
	spec.stream = m.stream
	l := newLedger(t, fb, tp, "", spec)
	settle := m.strike(t, fb, f)
	next, _ := l.first(f)
	settle()
	if m.mustFail && next < 0 {
		t.Errorf("the whole batch was confirmed although the %s struck mid-batch", m.fault)
	}
	if m.reconnect {
		wantReconnect(t, f)
	}
	l.check("after the "+m.fault, false)
	fb.proxy.heal(t)
	l.replay(f, next, 5)
	l.check("after the retries", true)
	l.finish()
}

// onReceipts strikes with fault once the batch has had n receipts.
func onReceipts(n int64, fault func(t *testing.T, fb *faultBroker)) func(*testing.T, *faultBroker, *inproc) func() {
	return func(t *testing.T, fb *faultBroker, f *inproc) func() {
		done := f.counting.onReceipts(n, func() { fault(t, fb) })
		return func() { struck(t, done) }
	}
}

var (
	// A crash (SIGKILL) after 400 receipts: what the broker confirmed is there, the rest is reported
	// and delivered by the retries against the restarted broker, on the same warm pool.
	brokerKilledMidBatch = midBatch{fault: "crash", stream: "kill", timeout: 8 * time.Second, spec: mixedBatch,
		mustFail: true, strike: crash}.run
	// Every connection through the proxy is reset (RST) while the batch is in flight, and new ones too
	// for 300 ms. Both directions: when every message is already written (the effectively-once mode
	// sends unbatched and fast), only the receipts still flow, downstream.
	connectionResetMidBatch = midBatch{fault: "resets", stream: "reset", timeout: 10 * time.Second, spec: mixedBatch,
		reconnect: true, strike: onReceipts(300, func(t *testing.T, fb *faultBroker) {
			up := fb.proxy.toxic(t, "reset_peer", "upstream", map[string]any{"timeout": 0})
			down := fb.proxy.toxic(t, "reset_peer", "downstream", map[string]any{"timeout": 0})
			time.Sleep(300 * time.Millisecond)
			fb.proxy.removeToxic(t, up)
			fb.proxy.removeToxic(t, down)
		})}.run
	// The proxy goes away for a second mid-batch (connections closed, new ones refused), then returns.
	proxyDisabledMidBatch = midBatch{fault: "cut", stream: "cut", timeout: 10 * time.Second, spec: mixedBatch,
		reconnect: true, strike: onReceipts(300, func(t *testing.T, fb *faultBroker) {
			fb.proxy.disable()
			time.Sleep(time.Second)
			fb.proxy.enable(t)
		})}.run
	// Latency comes and goes (400 ± 300 ms each way, on for 300 ms, off for 300 ms) during the batch.
	latencySpikes = midBatch{fault: "spikes", stream: "latency", timeout: 15 * time.Second,
		spec:   batchSpec{n: 1500, size: 1024, aggregateEvery: 100, aggregateOf: 10, largeEvery: 500, largeSize: 200 << 10},
		strike: spikes}.run
)

// crash kills the broker after 400 receipts; settling waits for the kill and restarts it.
func crash(t *testing.T, fb *faultBroker, f *inproc) func() {
	killed := make(chan error, 1)
	f.counting.onReceipts(400, func() {
		fb.mu.Lock()
		fb.down = true // from now on the cleanup must restart it, whatever happens
		fb.mu.Unlock()
		killed <- fb.Kill()
	})
	return func() {
		// pulsar.sh kill takes a moment: the invocation may have ended (reporting the failure) first.
		select {
		case err := <-killed:
			if err != nil {
				t.Fatalf("kill: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("the broker was never killed")
		}
		took := fb.restart(t)
		t.Logf("broker restarted in %v", took.Round(time.Millisecond))
	}
}

// spikes switches latency on and off until settled.
func spikes(t *testing.T, fb *faultBroker, _ *inproc) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			up := fb.proxy.toxic(t, "latency", "upstream", map[string]any{"latency": 400, "jitter": 300})
			down := fb.proxy.toxic(t, "latency", "downstream", map[string]any{"latency": 400, "jitter": 300})
			time.Sleep(300 * time.Millisecond)
			fb.proxy.removeToxic(t, up)
			fb.proxy.removeToxic(t, down)
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	})
	return func() {
		close(stop)
		wg.Wait()
	}
}

// The link carries 256 KB/s towards the broker: a 2 MB batch cannot make it in one 4 s invocation;
// the retries, still on the slow link, must make progress, then finish once the link is healed.
func bandwidthLimit(t *testing.T, fb *faultBroker) {
	tp := topic(t)
	f := newInproc(t, vars(fb, tp), 4*time.Second, awsEndpoints{})
	warm(t, fb, f, tp, 9)
	l := newLedger(t, fb, tp, "", batchSpec{stream: "bandwidth", n: 1000, size: 2048, aggregateEvery: 100, aggregateOf: 10})
	fb.proxy.toxic(t, "bandwidth", "upstream", map[string]any{"rate": 256})
	next, o := l.first(f)
	if next == -1 {
		t.Errorf("2 MB went through a 256 KB/s link in %v", o.took)
	}
	l.check("after the slow invocation", false)
	slow := l.replay(f, next, 4)
	t.Logf("after 4 retries on the slow link the batch is at record %d of %d", slow, len(l.records))
	if slow >= 0 && slow <= next {
		l.violate("no progress on the slow link: the retries stayed at record %d (first failure %d)", slow, next)
	}
	fb.proxy.heal(t)
	l.replay(f, slow, 3)
	l.check("after the retries", true)
	l.finish()
}

// A healthy but slow link (128 KB/s) and a keep-alive shorter than the invocation: the batch needs
// its second producer (a large record, after the per-key barrier waited for the small ones) more than
// a keep-alive interval after the previous invocation ended. The client is busy, not idle, so it must
// not be replaced under the running batch: the whole batch fits in the deadline and must be delivered
// by this one invocation.
func invocationLongerThanKeepAlive(t *testing.T, fb *faultBroker) {
	tp := topic(t)
	f := newInproc(t, vars(fb, tp, "PULSAR_KEEPALIVE_INTERVAL_MS", "1000"), 10*time.Second, awsEndpoints{})
	warm(t, fb, f, tp, 9)
	l := newLedger(t, fb, tp, "", batchSpec{stream: "busy", n: 200, size: 2048, keys: 1, largeEvery: 100, largeSize: 200 << 10})
	fb.proxy.toxic(t, "bandwidth", "upstream", map[string]any{"rate": 128})
	next, o := l.first(f)
	fb.proxy.heal(t)
	if next != -1 {
		l.check("after the slow invocation", false)
		l.replay(f, next, 3)
		l.check("after the retries", true)
		l.finish()
		cause := ""
		if lines := f.log.JSON("records not delivered, Lambda will retry them"); len(lines) > 0 {
			cause = fmt.Sprint(lines[0]["cause"])
		}
		t.Fatalf("a slow but healthy batch was reported failed at record %d after %v (cause: %s): the pool "+
			"replaced the client as idle while the invocation was using it (idle is measured from the end of the "+
			"previous invocation, and checked on every Producer call); see the report of issue 9 for the fix",
			next, o.took.Round(time.Millisecond), cause)
	}
	l.check("after the slow invocation", true)
	l.finish()
}

// The broker accepts the connection and the messages but no answer ever comes back (on the warm
// producer's connection, or from the first CONNECT of a cold client; with maxPending, the producer's
// queue fills up and SendAsync blocks): the function must return before its deadline, report the
// batch, and replace its client; the retries deliver.
func brokerNeverAnswers(cold bool, maxPending string) func(*testing.T, *faultBroker) {
	return func(t *testing.T, fb *faultBroker) {
		tp := topic(t)
		const timeout = 5 * time.Second
		v := vars(fb, tp)
		if maxPending != "" {
			v["PULSAR_MAX_PENDING_MESSAGES"] = maxPending
		}
		f := newInproc(t, v, timeout, awsEndpoints{})
		if !cold {
			warm(t, fb, f, tp, 9)
		}
		l := newLedger(t, fb, tp, "", batchSpec{stream: "silent", n: 300, size: 512, aggregateEvery: 50, aggregateOf: 5})
		fb.proxy.toxic(t, "timeout", "downstream", map[string]any{"timeout": 0})
		next, o := l.first(f)
		if next != 0 || o.fnErr != nil || o.took > timeout-300*time.Millisecond {
			t.Errorf("broker silent: %v, next %d; want the first record reported well before %v", describe(o), next, timeout)
		}
		if f.counting.resets.Load() != 1 {
			t.Errorf("the client was not replaced after an invocation without a receipt")
		}
		fb.proxy.heal(t)
		l.check("after the silence", false)
		l.replay(f, next, 5)
		l.check("after the retries", true)
		l.finish()
	}
}

// The real bootstrap, frozen between two invocations for longer than both keep-alives: the broker
// closed the connection meanwhile. The thawed function must deliver the next batch.
func frozenPastKeepAlive(t *testing.T, fb *faultBroker) {
	frozen(t, fb, false, "2000", true)
}

// As frozenPastKeepAlive, but the frozen connection is silently dropped on the way (no FIN, no RST
// reaches the function): only the idle replacement can save the next batch.
func frozenSilentDrop(t *testing.T, fb *faultBroker) {
	frozen(t, fb, true, "2000", true)
}

// The silent drop with the default 30 s keep-alive, longer than the freeze: the thawed function trusts
// the dead connection, so the first batch gets no receipt. It must be reported before the deadline
// and the client replaced, so that the retry goes through.
func frozenSilentDropDefaultKeepAlive(t *testing.T, fb *faultBroker) {
	frozen(t, fb, true, "", false)
}

func frozen(t *testing.T, fb *faultBroker, blackhole bool, keepAliveMS string, wantFirst bool) {
	tp := topic(t)
	const timeout = 6 * time.Second
	v := vars(fb, tp)
	if keepAliveMS != "" {
		v["PULSAR_KEEPALIVE_INTERVAL_MS"] = keepAliveMS
	}
	b := newBoot(t, v, timeout)
	warm(t, fb, b, tp, 9)
	if err := b.env.Freeze(); err != nil {
		t.Fatal(err)
	}
	if blackhole {
		fb.proxy.toxic(t, blackholeType, "upstream", nil)
		fb.proxy.toxic(t, blackholeType, "downstream", nil)
	}
	time.Sleep(7 * time.Second) // past the function's 2 s and the broker's 2 x 3 s keep-alive
	l := newLedger(t, fb, tp, "", batchSpec{stream: "frozen", n: 500, size: 512, aggregateEvery: 50, aggregateOf: 5})
	next, o := l.first(b) // Invoke thaws the process
	switch {
	case wantFirst && next != -1:
		t.Errorf("first invocation after the thaw: %v; the function should have reconnected", describe(o))
	case o.took > timeout-300*time.Millisecond:
		t.Errorf("first invocation after the thaw took %v of %v", o.took, timeout)
	}
	started := time.Now()
	l.replay(b, next, 5)
	l.recovered = o.took + time.Since(started)
	fb.proxy.heal(t)
	l.check("after the retries", true)
	l.finish()
}

// secretsProxy creates a token secret in moto and returns its id and a proxy in front of moto.
func secretsProxy(t *testing.T) (string, *proxy) {
	t.Helper()
	env := localenv.Require(t)
	cfg, err := env.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	name := strings.ReplaceAll(t.Name(), "/", "-") + fmt.Sprint(time.Now().UnixNano())
	// The fault broker has no authentication: it ignores the token, the client still needs the secret.
	out, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(name),
		SecretString: aws.String(`{"type":"token","token":"faults-token"}`)})
	if err != nil {
		t.Fatalf("creating secret: %v", err)
	}
	u, err := url.Parse(env.AWSEndpointURL)
	if err != nil {
		t.Fatal(err)
	}
	return *out.ARN, newProxy(t, "secretsmanager", u.Host)
}

// Secrets Manager refuses connections on the first invocation: the credentials cannot be fetched, so
// no client exists; the batch is reported failed, not lost, and delivered once it is back.
func secretsManagerDown(t *testing.T, fb *faultBroker) {
	tp := topic(t)
	secret, px := secretsProxy(t)
	const timeout = 5 * time.Second
	f := newInproc(t, vars(fb, tp, "PULSAR_AUTH_SECRET_ARN", secret), timeout, awsEndpoints{secretsManager: "http://" + px.Addr()})
	l := newLedger(t, fb, tp, "", batchSpec{stream: "secrets", n: 200, size: 512})
	px.disable()
	next, o := l.first(f)
	if next != 0 || o.fnErr != nil || o.took > timeout-300*time.Millisecond {
		t.Errorf("Secrets Manager down: %v, next %d; want the first record reported before the deadline", describe(o), next)
	}
	px.heal(t)
	l.check("after the outage", false)
	l.replay(f, next, 3)
	l.check("after the retries", true)
	l.finish()
}

// Secrets Manager answers after 8 s, past the 4 s invocation: the function still returns in time.
func secretsManagerSlow(t *testing.T, fb *faultBroker) {
	tp := topic(t)
	secret, px := secretsProxy(t)
	const timeout = 4 * time.Second
	f := newInproc(t, vars(fb, tp, "PULSAR_AUTH_SECRET_ARN", secret), timeout, awsEndpoints{secretsManager: "http://" + px.Addr()})
	l := newLedger(t, fb, tp, "", batchSpec{stream: "secrets", n: 200, size: 512})
	px.toxic(t, "latency", "downstream", map[string]any{"latency": 8000})
	next, o := l.first(f)
	if next != 0 || o.fnErr != nil || o.took > timeout-300*time.Millisecond {
		t.Errorf("Secrets Manager slow: %v, next %d; want the first record reported before the deadline", describe(o), next)
	}
	px.heal(t)
	l.check("after the slow fetch", false)
	l.replay(f, next, 3)
	l.check("after the retries", true)
	l.finish()
}

// dynamoProxy creates an audit table in DynamoDB Local and returns its name and a proxy in front of it.
func dynamoProxy(t *testing.T) (string, *proxy) {
	t.Helper()
	env := localenv.Require(t)
	cfg, err := env.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	table := fmt.Sprintf("faults-%d", time.Now().UnixNano())
	if err := audit.CreateTable(context.Background(), db, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	u, err := url.Parse(env.DynamoDBEndpointURL)
	if err != nil {
		t.Fatal(err)
	}
	return table, newProxy(t, "dynamodb", u.Host)
}

// DynamoDB refuses connections: with AUDIT_REQUIRED the published batch is reported failed as a whole
// (and delivered again: duplicates, never losses); without it the batch counts as delivered.
func dynamoDown(required bool) func(*testing.T, *faultBroker) {
	return func(t *testing.T, fb *faultBroker) {
		tp := topic(t)
		table, px := dynamoProxy(t)
		const timeout = 5 * time.Second
		f := newInproc(t, vars(fb, tp, "AUDIT_TABLE_NAME", table, "AUDIT_REQUIRED", fmt.Sprint(required)), timeout,
			awsEndpoints{dynamoDB: "http://" + px.Addr()})
		l := newLedger(t, fb, tp, "", batchSpec{stream: "audit", n: 200, size: 512})
		px.disable()
		next, o := l.first(f)
		want := -1
		if required || effectivelyOnce() {
			// Effectively once keeps the sequence ids in the table: without it nothing is published.
			want = 0
		}
		if next != want || o.fnErr != nil || o.took > timeout-300*time.Millisecond {
			t.Errorf("DynamoDB down, AUDIT_REQUIRED=%v: %v, next %d; want %d", required, describe(o), next, want)
		}
		if len(f.log.JSON("audit write failed")) != 1 {
			t.Errorf("the failed audit write was not logged")
		}
		px.heal(t)
		l.check("after the outage", false)
		l.replay(f, next, 3)
		l.check("after the retries", true)
		l.finish()
	}
}

// DynamoDB answers after 8 s, past the 4 s invocation: the function returns in time, reporting the
// batch with AUDIT_REQUIRED and delivered without.
func dynamoSlow(required bool) func(*testing.T, *faultBroker) {
	return func(t *testing.T, fb *faultBroker) {
		tp := topic(t)
		table, px := dynamoProxy(t)
		const timeout = 4 * time.Second
		f := newInproc(t, vars(fb, tp, "AUDIT_TABLE_NAME", table, "AUDIT_REQUIRED", fmt.Sprint(required)), timeout,
			awsEndpoints{dynamoDB: "http://" + px.Addr()})
		l := newLedger(t, fb, tp, "", batchSpec{stream: "audit", n: 200, size: 512})
		px.toxic(t, "latency", "downstream", map[string]any{"latency": 8000})
		next, o := l.first(f)
		want := -1
		if required || effectivelyOnce() {
			// Effectively once keeps the sequence ids in the table: without it nothing is published.
			want = 0
		}
		// The bound is the product's: the relay keeps the response's share of the margin (100 ms with
		// the default 1 s) free of any wait, so it answers that long before Lambda's deadline; 50 ms of
		// it may go to a busy machine's scheduling, the rest proves no wait ran into the reserve.
		if next != want || o.fnErr != nil || o.took > timeout-50*time.Millisecond {
			t.Errorf("DynamoDB slow, AUDIT_REQUIRED=%v: %v, next %d; want %d before the deadline", required, describe(o), next, want)
		}
		px.heal(t)
		l.check("after the slow audit", false)
		l.replay(f, next, 3)
		l.check("after the retries", true)
		l.finish()
	}
}

// A record larger than the broker accepts, chunking off: with a dead-letter topic it lands there and
// the batch is delivered; without one the batch stops at it, every retry reports the same record,
// and nothing before it is missing.
func tooLarge(deadLetter bool) func(*testing.T, *faultBroker) { return tooLargeAt(deadLetter, 25) }

// tooLargeAt is tooLarge with the record at index at (of 60) too large.
func tooLargeAt(deadLetter bool, at int) func(*testing.T, *faultBroker) {
	return func(t *testing.T, fb *faultBroker) {
		tp := topic(t)
		extra := []string{"PULSAR_CHUNKING", "false"}
		dlt := ""
		if deadLetter {
			dlt = tp + "-dlq"
			extra = append(extra, "DEAD_LETTER_TOPIC", dlt)
		}
		f := newInproc(t, vars(fb, tp, extra...), 10*time.Second, awsEndpoints{})
		l := newLedger(t, fb, tp, dlt, batchSpec{stream: "large", n: 60, size: 512, tooLarge: []int{at}})
		next, o := l.first(f)
		want := at
		if deadLetter {
			want = -1
		}
		if next != want {
			t.Errorf("too large record, dead-letter topic %q: %v, next %d; want %d", dlt, describe(o), next, want)
		}
		l.check("after the rejection", false)
		still := l.replay(f, next, 2)
		if still != want {
			t.Errorf("the retries ended at record %d, want %d", still, want)
		}
		l.check("after the retries", deadLetter)
		l.finish()
	}
}

// The topic is terminated while the producer is warm: with a dead-letter topic every record lands
// there; without one the batch is reported from its first record, every time.
func topicTerminated(deadLetter bool) func(*testing.T, *faultBroker) {
	return func(t *testing.T, fb *faultBroker) {
		tp := topic(t)
		var extra []string
		dlt := ""
		if deadLetter {
			dlt = tp + "-dlq"
			extra = append(extra, "DEAD_LETTER_TOPIC", dlt)
		}
		f := newInproc(t, vars(fb, tp, extra...), 10*time.Second, awsEndpoints{})
		warm(t, fb, f, tp, 9)
		if _, err := fb.admin.TerminateTopic(context.Background(), tp); err != nil {
			t.Fatal(err)
		}
		l := newLedger(t, fb, tp, dlt, batchSpec{stream: "terminated", n: 100, size: 512, aggregateEvery: 20, aggregateOf: 3})
		for i := range l.msgs {
			l.msgs[i].deadLetter = deadLetter
		}
		want := 0
		if deadLetter {
			want = -1
		}
		next, _ := l.first(f)
		// The first invocation may find the warm producer already closed by the termination
		// (ErrProducerClosed, retried once); the retry creates a producer, which the broker refuses.
		still := l.replay(f, next, 2)
		if still != want {
			l.check("after the retries", false)
			l.finish()
			t.Fatalf("terminated topic with DEAD_LETTER_TOPIC=%q: every retry reports record %d instead of dead-lettering "+
				"the batch, so the shard is blocked until the records expire. Creating a producer on a terminated topic "+
				"fails with a plain error (\"server error: TopicTerminatedError: ...\"), which relay.permanent does not "+
				"recognise; see the report of issue 9 for the fix", dlt, still)
		}
		l.check("after the retries", deadLetter)
		l.finish()
	}
}

// Four shards invoke one relay (one producer pool) at the same time, while the proxy cuts every
// connection for a second: each shard's batch keeps the promise on its own.
func concurrentShards(t *testing.T, fb *faultBroker) {
	tp := topic(t)
	f := newInproc(t, vars(fb, tp), 10*time.Second, awsEndpoints{})
	warm(t, fb, f, tp, 9)
	ledgers := make([]*ledger, 4)
	for i := range ledgers {
		ledgers[i] = newLedger(t, fb, tp, "", batchSpec{stream: "concurrent", shard: i, n: 1000, size: 1024,
			aggregateEvery: 100, aggregateOf: 10, largeEvery: 400, largeSize: 200 << 10})
	}
	done := f.counting.onReceipts(1000, func() {
		fb.proxy.disable()
		time.Sleep(time.Second)
		fb.proxy.enable(t)
	})
	nexts := make([]int, len(ledgers))
	var wg sync.WaitGroup
	for i, l := range ledgers {
		wg.Go(func() { nexts[i], _ = l.first(f) })
	}
	wg.Wait()
	struck(t, done)
	wantReconnect(t, f)
	fb.proxy.heal(t)
	for _, l := range ledgers {
		l.check("after the concurrent cut", false)
	}
	for i, l := range ledgers {
		wg.Go(func() { l.replay(f, nexts[i], 5) })
	}
	wg.Wait()
	for _, l := range ledgers {
		l.check("after the retries", true)
	}
	for _, l := range ledgers {
		t.Run(fmt.Sprintf("shard_%d", l.shard), func(t *testing.T) {
			l.t = t
			l.name = t.Name()
			l.finish()
		})
	}
}

// One shard's invocations keep ending without a receipt, so each one replaces the shared client while
// another shard's large batch is in flight on it. Their timeout is shorter than the deadline margin:
// the stop context has ended before the first send, so no receipt is certain, whatever the machine's
// speed. The busy shard keeps the client it is sending on until it ends (closing a producer under a
// concurrent SendAsync races inside pulsar-client-go and can panic), so its batch goes through
// undisturbed, and under -race the race detector watches the hand-over.
func concurrentReset(t *testing.T, fb *faultBroker) {
	template := topic(t) + "-" + streamtopic.StreamPlaceholder
	busyTopic := strings.ReplaceAll(template, streamtopic.StreamPlaceholder, "busy")
	f := newInproc(t, vars(fb, template), 10*time.Second, awsEndpoints{})
	hasty := &inproc{relay: f.relay, handler: f.handler, timeout: 300 * time.Millisecond, log: f.log, counting: f.counting}
	warm(t, fb, f, strings.ReplaceAll(template, streamtopic.StreamPlaceholder, "warm"), 9)
	busy := newLedger(t, fb, busyTopic, "", batchSpec{stream: "busy", shard: 0, n: 3000, size: 1024,
		aggregateEvery: 100, aggregateOf: 10, largeEvery: 700, largeSize: 200 << 10})
	hastyTopic := strings.ReplaceAll(template, streamtopic.StreamPlaceholder, "hasty")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var busyNext int
	sending := f.counting.receipts.Load()
	wg.Go(func() {
		defer close(stop)
		busyNext, _ = busy.first(f)
	})
	// The first hasty invocation follows the busy batch's first receipt at once: without -race that
	// batch can be over in 60 ms. The next ones come every 100 ms while it lasts.
	next := time.Millisecond
	for f.counting.receipts.Load() == sending && !isClosed(stop) {
		time.Sleep(time.Millisecond)
	}
	var hastyLedgers []*ledger
	for i := 0; ; i++ {
		select {
		case <-stop:
		case <-time.After(next):
			next = 100 * time.Millisecond
			l := newLedger(t, fb, hastyTopic, "", batchSpec{stream: "hasty", shard: 1 + i, n: 200, size: 512})
			next, _ := l.first(hasty)
			hastyLedgers = append(hastyLedgers, l)
			l.pending = next
			continue
		}
		break
	}
	wg.Wait()
	resets := f.counting.resets.Load()
	t.Logf("%d hasty invocations, %d client resets during the busy batch", len(hastyLedgers), resets)
	if resets == 0 {
		t.Fatal("no hasty invocation replaced the client: the race was not exercised")
	}
	if busyNext != -1 {
		t.Errorf("the busy batch stopped at record %d: another invocation's reset disturbed it", busyNext)
	}
	busy.check("after the resets", false)
	busy.replay(f, busyNext, 5)
	busy.check("after the retries", true)
	for _, l := range hastyLedgers {
		l.replay(f, l.pending, 3)
		l.check("after the retries", true)
	}
	busy.finish()
	for _, l := range hastyLedgers {
		if len(l.violations) > 0 {
			l.finish()
		}
	}
}

// The dead-letter topic is terminated while its producer is warm: a record that can reach neither
// topic is reported, by every retry, and never acknowledged before a dead letter of it is confirmed.
func deadLetterTopicTerminated(t *testing.T, fb *faultBroker) {
	tp := topic(t)
	dlt := tp + "-dlq"
	f := newInproc(t, vars(fb, tp, "PULSAR_CHUNKING", "false", "DEAD_LETTER_TOPIC", dlt), 10*time.Second, awsEndpoints{})
	// A first batch dead-letters a record, so the dead-letter producer is warm.
	warmed := newLedger(t, fb, tp, dlt, batchSpec{stream: "dlq", shard: 1, n: 20, size: 512, tooLarge: []int{10}})
	if next, o := warmed.first(f); next != -1 {
		t.Errorf("with both topics available: %v, next %d; want the batch delivered", describe(o), next)
	}
	warmed.check("after the first batch", true)
	warmed.finish()
	if _, err := fb.admin.TerminateTopic(context.Background(), dlt); err != nil {
		t.Fatal(err)
	}
	const poison = 20
	l := newLedger(t, fb, tp, dlt, batchSpec{stream: "dlq", shard: 2, n: 40, size: 512, tooLarge: []int{poison}})
	next, o := l.first(f)
	if next != poison {
		t.Errorf("dead-letter topic terminated: %v, next %d; want record %d reported", describe(o), next, poison)
	}
	if still := l.replay(f, next, 2); still != poison {
		t.Errorf("the retries ended at record %d, want %d", still, poison)
	}
	l.check("after the retries", false)
	l.finish()
}

// The real bootstrap, killed (SIGKILL) right after every response, as Lambda may reclaim an
// environment once it answered. The link is slow, so the first invocation ends at its deadline with
// messages sent and not confirmed: whatever a response acknowledged must be in Pulsar although no
// process is left to resend it; every retry is a cold start.
func reclaimedAfterEveryResponse(t *testing.T, fb *faultBroker) {
	tp := topic(t)
	b := newBoot(t, vars(fb, tp), 4*time.Second)
	warm(t, fb, b, tp, 9)
	inv := reclaimed{b}
	l := newLedger(t, fb, tp, "", batchSpec{stream: "reclaim", n: 1000, size: 2048, aggregateEvery: 100, aggregateOf: 10})
	fb.proxy.toxic(t, "bandwidth", "upstream", map[string]any{"rate": 256})
	next, o := l.first(inv)
	if next == -1 {
		t.Errorf("2 MB went through a 256 KB/s link in %v", o.took)
	}
	l.check("after the reclaim", false)
	slow := l.replay(inv, next, 2)
	fb.proxy.heal(t)
	if slow >= 0 {
		l.replay(inv, slow, 3)
	}
	l.check("after the retries", true)
	t.Logf("%d bootstrap processes started", b.env.Launches())
	if b.env.Launches() < 2 {
		t.Errorf("the bootstrap was never killed")
	}
	l.finish()
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
