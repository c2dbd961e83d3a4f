//go:build integration

package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
	"github.com/streambridge/kinesis-pulsar/internal/audit"
	"github.com/streambridge/kinesis-pulsar/internal/auth"
	"github.com/streambridge/kinesis-pulsar/internal/config"
	"github.com/streambridge/kinesis-pulsar/internal/eventjson"
	"github.com/streambridge/kinesis-pulsar/internal/producer"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/internal/relay/senders"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

// bootstrap is the function binary, built once by TestMain for the scenarios that need the real
// process (freeze and thaw).
var bootstrap string

func TestMain(m *testing.M) {
	// toxiproxy logs every connection through zerolog's global logger.
	zerolog.SetGlobalLevel(zerolog.Disabled)
	toxics.Register(blackholeType, new(blackholeToxic))
	runtimeapi.RunTests(m, "../../functions/kinesis-to-pulsar", &bootstrap)
}

// ---- fault-injecting proxies --------------------------------------------------------------------

var (
	toxiServer     *toxiproxy.ApiServer
	toxiServerOnce sync.Once
)

// proxy is one in-process toxiproxy proxy on 127.0.0.1 in front of a server of the test.
type proxy struct {
	p     *toxiproxy.Proxy
	mu    sync.Mutex
	names []string // toxics added and not yet removed
}

// newProxy starts a proxy on a free port of 127.0.0.1 forwarding to upstream; t.Cleanup stops it.
func newProxy(t testing.TB, name, upstream string) *proxy {
	t.Helper()
	toxiServerOnce.Do(func() {
		toxiServer = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	})
	p := &proxy{p: toxiproxy.NewProxy(toxiServer, name, "127.0.0.1:0", upstream)}
	if err := p.p.Start(); err != nil {
		t.Fatalf("starting proxy %s to %s: %v", name, upstream, err)
	}
	t.Cleanup(p.p.Stop)
	return p
}

// Addr is host:port where clients connect.
func (p *proxy) Addr() string { return p.p.Listen }

func portOf(addr string) int {
	_, port, _ := net.SplitHostPort(addr)
	var n int
	fmt.Sscan(port, &n)
	return n
}

// toxic adds a toxic (see toxiproxy's README for types and attributes) on stream "upstream" (client to
// server) or "downstream" and returns its name for removeToxic.
func (p *proxy) toxic(t testing.TB, typ, direction string, attrs map[string]any) string {
	t.Helper()
	p.mu.Lock()
	name := fmt.Sprintf("%s_%s_%d", typ, direction, len(p.names))
	p.mu.Unlock()
	body, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": direction, "toxicity": 1.0, "attributes": attrs})
	if err != nil {
		t.Fatal(err)
	}
	w, err := p.p.Toxics.AddToxicJson(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("adding toxic %s to proxy %s: %v", name, p.p.Name, err)
	}
	if bh, ok := w.Toxic.(*blackholeToxic); ok {
		// Links opened from now on pass: only the connections alive when the toxic came are dropped.
		bh.sealed.Store(true)
	}
	p.mu.Lock()
	p.names = append(p.names, name)
	p.mu.Unlock()
	return name
}

// removeToxic removes one toxic.
func (p *proxy) removeToxic(t testing.TB, name string) {
	t.Helper()
	if err := p.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
		t.Fatalf("removing toxic %s from proxy %s: %v", name, p.p.Name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, n := range p.names {
		if n == name {
			p.names = append(p.names[:i], p.names[i+1:]...)
			break
		}
	}
}

// heal removes every toxic and makes sure the proxy accepts connections.
func (p *proxy) heal(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	names := append([]string(nil), p.names...)
	p.mu.Unlock()
	for _, n := range names {
		p.removeToxic(t, n)
	}
	p.enable(t)
}

// disable closes the listener and every connection through the proxy (a FIN to both sides): new
// connections are refused until enable.
func (p *proxy) disable() { p.p.Stop() }

func (p *proxy) enable(t testing.TB) {
	t.Helper()
	if p.p.Enabled {
		return
	}
	if err := p.p.Start(); err != nil {
		t.Fatalf("restarting proxy %s: %v", p.p.Name, err)
	}
}

// blackholeToxic silently drops everything on the connections that are open when it is added, close
// included (neither side sees a FIN or RST), as a NAT or a load balancer that forgot a flow does;
// connections opened later pass untouched. toxiproxy's own timeout toxic would drop the new ones too.
type blackholeToxic struct {
	sealed atomic.Bool // set right after the toxic was added: later links are new connections
}

const blackholeType = "faults_blackhole"

type blackholeState struct{ drop bool }

func (b *blackholeToxic) NewState() any { return &blackholeState{drop: !b.sealed.Load()} }

func (b *blackholeToxic) Pipe(stub *toxics.ToxicStub) {
	drop := stub.State.(*blackholeState).drop
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			switch {
			case drop:
				// Data and close alike vanish.
			case c == nil:
				stub.Close()
				return
			default:
				stub.Output <- c
			}
		}
	}
}

var _ toxics.StatefulToxic = (*blackholeToxic)(nil)

// ---- the fault broker -----------------------------------------------------------------------------

// faultBroker is a standalone broker of this package that clients reach only through a proxy: it
// advertises the proxy's address as its internal listener, so the topic lookup sends the client back
// through the proxy. A second listener, "direct", lets the invariant checker read past the faults.
type faultBroker struct {
	*localenv.Broker
	proxy     *proxy
	url       string // pulsar://<proxy>, what the function is given
	directURL string // pulsar://<broker port>; lookups still answer the proxy unless ListenerName is "direct"
	admin     *localenv.Admin
	reader    pulsar.Client // reads over the direct listener

	// onceTable is the running scenario's audit table in the effectively-once run
	// (KP_FAULTS_GUARANTEE=effectivelyOnce), where the shards' sequence ids live; "" in the
	// at-least-once run.
	onceTable string

	mu   sync.Mutex
	down bool // killed and not restarted yet
}

// effectivelyOnce reports whether the matrix runs in PROCESSING_GUARANTEE=effectivelyOnce
// (KP_FAULTS_GUARANTEE=effectivelyOnce; the default is the at-least-once matrix).
func effectivelyOnce() bool { return os.Getenv("KP_FAULTS_GUARANTEE") == "effectivelyOnce" }

// onceNamespace is where the effectively-once run's topics live, with deduplication on: broker-wide
// deduplication would drop the readiness check's REST publishes, which repeat their sequence ids.
const onceNamespace = "public/kp-once"

// Broker settings of the fault broker (merged over the stack's, see infra/local/pulsar/standalone.conf).
const faultBrokerConf = `
# Advertise the proxy: clients that look up a topic connect back through it. advertisedAddress must be
# blank when advertisedListeners is set.
advertisedAddress=
advertisedListeners=internal:pulsar://127.0.0.1:%[1]d,direct:pulsar://127.0.0.1:%[2]d
internalListenerName=internal
# The broker's own client would also go through the proxy; keep it idle: no topic policies, no
# system topics.
systemTopicEnabled=false
topicLevelPoliciesEnabled=false
# A frozen client is cut off after two missed pings: a freeze of 7 s is past it.
keepAliveIntervalSeconds=3
# A kill must act like a crash that keeps the page cache, not like a torn disk. pulsar.sh kill stops the
# JVM before SIGKILL so that no write(2) is cut short; but with the default 64 KiB journal buffer a record
# larger than the buffer is written in several syscalls, and a kill between them left a half-written
# journal record that the in-process bookie replayed; the topic's ledger then failed recovery
# ("Digest mismatch ... Error while recovering ledger", code -10) and the topic could not be loaded.
journalWriteBufferSizeKB=4096
# Small enough that a too-large record costs 1 MiB, not 5.
maxMessageSize=1048576
nettyMaxFrameSizeBytes=1058816
`

const maxMessageSize = 1 << 20

func startFaultBroker(t *testing.T) *faultBroker {
	t.Helper()
	ports := freePorts(t, 2)
	px := newProxy(t, "pulsar", fmt.Sprintf("127.0.0.1:%d", ports[0]))
	conf := filepath.Join(t.TempDir(), "faults.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, faultBrokerConf, portOf(px.Addr()), ports[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("faults-%d", os.Getpid())
	var logPath string
	t.Cleanup(func() {
		// Runs after the broker's own cleanup stopped it: a passing run leaves no data behind.
		if !t.Failed() && logPath != "" {
			base := strings.TrimSuffix(logPath, ".log")
			for _, p := range []string{base, base + ".log", base + ".conf", base + ".args"} {
				_ = os.RemoveAll(p)
			}
		}
	})
	started := time.Now()
	b := localenv.StartBroker(t, localenv.BrokerOptions{Name: name, BrokerPort: ports[0], WebPort: ports[1], ConfFiles: []string{conf}})
	logPath = b.LogPath()
	t.Logf("fault broker %s ready in %v: proxy %s, broker port %d", name, time.Since(started).Round(time.Millisecond), px.Addr(), ports[0])
	fb := &faultBroker{Broker: b, proxy: px, url: "pulsar://" + px.Addr(),
		directURL: fmt.Sprintf("pulsar://127.0.0.1:%d", ports[0]), admin: b.Admin()}
	reader, err := pulsar.NewClient(pulsar.ClientOptions{URL: fb.directURL, ListenerName: "direct",
		OperationTimeout: 30 * time.Second, Logger: pulsartest.QuietLogger()})
	if err != nil {
		t.Fatalf("reader client: %v", err)
	}
	t.Cleanup(reader.Close)
	fb.reader = reader
	return fb
}

// kill crashes the broker (see localenv.Broker.Kill).
func (fb *faultBroker) kill(t testing.TB) {
	t.Helper()
	if err := fb.Kill(); err != nil {
		t.Fatalf("killing the fault broker: %v", err)
	}
	fb.mu.Lock()
	fb.down = true
	fb.mu.Unlock()
}

// restart starts the broker again (after kill, or gracefully stopping it first) and returns how long
// it took.
func (fb *faultBroker) restart(t testing.TB) time.Duration {
	t.Helper()
	started := time.Now()
	if err := fb.Restart(); err != nil {
		t.Fatalf("restarting the fault broker: %v", err)
	}
	fb.mu.Lock()
	fb.down = false
	fb.mu.Unlock()
	return time.Since(started)
}

// ensureUp restarts a broker a failed scenario left killed, so the next scenario finds it running.
func (fb *faultBroker) ensureUp(t testing.TB) {
	fb.mu.Lock()
	down := fb.down
	fb.mu.Unlock()
	if down {
		fb.restart(t)
	}
	fb.proxy.heal(t)
}

// read returns every message of topic, reading over the direct listener. A topic that the restarted
// broker cannot load yet is tried again for a while before the test fails.
func (fb *faultBroker) read(t testing.TB, topic string) []pulsar.Message {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// A reader that can be created means the topic loads: then ReadAll reads it.
		r, err := fb.reader.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
		if err == nil {
			r.Close()
			return pulsartest.ReadAll(t, fb.reader, topic, 2*time.Minute)
		}
		if time.Now().After(deadline) {
			t.Fatalf("reading %s: the broker cannot load the topic: %v (broker log %s)", topic, err, fb.LogPath())
		}
		time.Sleep(time.Second)
	}
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// ---- the function under test ----------------------------------------------------------------------

// outcome is one invocation as the event source mapping sees it.
type outcome struct {
	resp  events.KinesisEventResponse
	fnErr error // a function error (returned error, timeout, crash): Lambda retries the whole batch
	took  time.Duration
	// late is set when the handler returned after the invocation deadline: Lambda would have timed
	// it out.
	late bool
	// returned is when the response was complete; receipts, when not nil, tells when the broker's
	// receipt of a message reached the function (in-process invocations only: the real bootstrap is
	// checked by killing it right after its response instead).
	returned time.Time
	receipts *countingProducers
}

// invoker runs one invocation.
type invoker interface {
	invoke(t testing.TB, ev events.KinesisEvent) outcome
}

// inproc is the handler wired exactly as functions/kinesis-to-pulsar/main.go wires it, from the same
// environment variables, run in this process through the same raw handler (eventjson.Handler: JSON
// in, JSON out).
type inproc struct {
	relay    *relay.Relay
	pool     *producer.Pool
	handler  eventjson.Handler
	timeout  time.Duration
	log      *runtimeapi.Output
	counting *countingProducers
}

// awsEndpoints overrides where the function's AWS clients go (proxies in front of moto and DynamoDB
// Local); empty fields keep the local stack's.
type awsEndpoints struct {
	secretsManager, dynamoDB string
}

func newInproc(t *testing.T, vars map[string]string, timeout time.Duration, endpoints awsEndpoints) *inproc {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatalf("configuration: %v", err)
	}
	logs := &runtimeapi.Output{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("function log:\n%s", logs.String())
		}
	})
	cfg.Producer.Logger = log
	var awsCfg aws.Config
	if cfg.Auth.SecretID != "" || cfg.Audit.Table != "" {
		env := localenv.Require(t)
		if awsCfg, err = env.AWSConfig(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.Auth.SecretID != "" {
		sm := secretsmanager.NewFromConfig(awsCfg, func(o *secretsmanager.Options) {
			if endpoints.secretsManager != "" {
				o.BaseEndpoint = aws.String(endpoints.secretsManager)
			}
		})
		cfg.Producer.Credentials = auth.New(sm, cfg.Auth.SecretID, log)
	}
	pool := producer.NewPool(cfg.Producer)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		pool.Close(ctx)
	})
	var auditor relay.Auditor
	var db *dynamodb.Client
	if cfg.Audit.Table != "" {
		db = dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
			if endpoints.dynamoDB != "" {
				o.BaseEndpoint = aws.String(endpoints.dynamoDB)
			}
		})
		auditor = audit.New(db, cfg.Audit)
	}
	pooled := senders.FromPool(pool)
	counting := &countingProducers{Senders: pooled, named: pooled}
	r := relay.New(cfg.Relay, counting, auditor, nil, log)
	if cfg.Relay.Guarantee == relay.EffectivelyOnce {
		r.EnableEffectivelyOnce(audit.NewSequences(db, cfg.Audit.Table, 0), counting)
	}
	return &inproc{relay: r, pool: pool, handler: eventjson.Handler(r.Handle), timeout: timeout, log: logs, counting: counting}
}

func (f *inproc) invoke(t testing.TB, ev events.KinesisEvent) outcome {
	t.Helper()
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(f.timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	started := time.Now()
	out, err := f.handler.Invoke(ctx, payload)
	o := outcome{took: time.Since(started), returned: time.Now(), receipts: f.counting}
	o.late = o.returned.After(deadline)
	switch {
	case o.late:
		o.fnErr = fmt.Errorf("task timed out after %v", f.timeout)
	case err != nil:
		o.fnErr = err
	default:
		if err := json.Unmarshal(out, &o.resp); err != nil {
			t.Fatalf("response %s: %v", out, err)
		}
	}
	return o
}

// countingProducers passes the pool through and counts broker receipts, so a scenario can strike
// while a batch is in flight, and notes when each message's first receipt arrived, so the checker can
// tell a record confirmed before the response from one confirmed after it (or never).
type countingProducers struct {
	relay.Senders
	named    relay.NamedSenders // the effectively-once mode's producers
	receipts atomic.Int64
	resets   atomic.Int64
	mu       sync.Mutex
	trigger  func()
	at       int64
	first    map[string]time.Time // receiptKey -> first receipt
}

// receiptKey names a message by the kinesis.* properties the relay attaches.
func receiptKey(shardID, seq, sub string) string { return shardID + "/" + seq + "/" + sub }

// receivedAt returns when the first receipt for the message arrived.
func (c *countingProducers) receivedAt(shardID, seq, sub string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.first[receiptKey(shardID, seq, sub)]
	return at, ok
}

// onReceipts runs fn once, on its own goroutine, when n more receipts have arrived; the channel is
// closed once fn has returned.
func (c *countingProducers) onReceipts(n int64, fn func()) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	done := make(chan struct{})
	c.at, c.trigger = c.receipts.Load()+n, func() {
		defer close(done)
		fn()
	}
	return done
}

// struck fails the test unless the fault of onReceipts has run: a scenario whose batch finished
// before the fault tested nothing.
func struck(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the fault never struck: the batch was done before it")
	}
}

func (c *countingProducers) Sender(ctx context.Context, topic string, kind relay.Kind) (relay.Sender, bool, error) {
	s, created, err := c.Senders.Sender(ctx, topic, kind)
	if err != nil {
		return nil, created, err
	}
	return &countingProducer{Sender: s, c: c}, created, nil
}

// Named counts the receipts of the effectively-once mode's producers.
func (c *countingProducers) Named(ctx context.Context, topic string, kind relay.Kind, name string) (relay.NamedSender, error) {
	s, err := c.named.Named(ctx, topic, kind, name)
	if err != nil {
		return nil, err
	}
	return &countingNamed{NamedSender: s, c: c}, nil
}

// Begin counts the relay's client replacements (after an invocation without progress).
func (c *countingProducers) Begin() func(reset bool) {
	end := c.Senders.Begin()
	return func(reset bool) {
		if reset {
			c.resets.Add(1)
		}
		end(reset)
	}
}

func (c *countingProducers) Discard(topic string, kind relay.Kind, s relay.Sender) {
	if cp, ok := s.(*countingProducer); ok {
		s = cp.Sender
	}
	c.Senders.Discard(topic, kind, s)
}

func (c *countingProducers) receipt(m *pulsar.ProducerMessage) {
	now := time.Now()
	n := c.receipts.Add(1)
	c.mu.Lock()
	k := receiptKey(m.Properties["kinesis.shard.id"], m.Properties["kinesis.sequence.number"], m.Properties["kinesis.sub.sequence.number"])
	if _, ok := c.first[k]; !ok {
		if c.first == nil {
			c.first = map[string]time.Time{}
		}
		c.first[k] = now
	}
	fn := c.trigger
	if fn != nil && n >= c.at {
		c.trigger = nil
	}
	c.mu.Unlock()
	if fn != nil && n >= c.at {
		go fn()
	}
}

type countingProducer struct {
	relay.Sender
	c *countingProducers
}

func (p *countingProducer) SendAsync(ctx context.Context, m *pulsar.ProducerMessage, cb func(pulsar.MessageID, *pulsar.ProducerMessage, error)) {
	p.Sender.SendAsync(ctx, m, func(id pulsar.MessageID, pm *pulsar.ProducerMessage, err error) {
		if err == nil {
			p.c.receipt(m)
		}
		cb(id, pm, err)
	})
}

type countingNamed struct {
	relay.NamedSender
	c *countingProducers
}

func (p *countingNamed) SendAsync(ctx context.Context, m *pulsar.ProducerMessage, cb func(pulsar.MessageID, *pulsar.ProducerMessage, error)) {
	(&countingProducer{Sender: p.NamedSender, c: p.c}).SendAsync(ctx, m, cb)
}

// boot is the real bootstrap under the in-process Runtime API.
type boot struct {
	env            *runtimeapi.Env
	stdout, stderr *runtimeapi.Output
	timeout        time.Duration
}

func newBoot(t *testing.T, vars map[string]string, timeout time.Duration) *boot {
	t.Helper()
	b := &boot{stdout: &runtimeapi.Output{}, stderr: &runtimeapi.Output{}, timeout: timeout}
	var env []string
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	if vars["AUDIT_TABLE_NAME"] != "" {
		// The local stack's AWS endpoints and credentials, for the table.
		for _, kv := range os.Environ() {
			if strings.HasPrefix(kv, "AWS_") {
				env = append(env, kv)
			}
		}
	}
	var err error
	b.env, err = runtimeapi.Start(context.Background(), runtimeapi.Options{
		Binary: bootstrap, Env: env, FunctionName: "kinesis-to-pulsar", MemoryMB: 256, Timeout: timeout,
		Stdout: b.stdout, Stderr: b.stderr,
	})
	if err != nil {
		t.Fatalf("starting bootstrap: %v\nstderr:\n%s", err, b.stderr.String())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = b.env.Shutdown(ctx)
		if t.Failed() {
			t.Logf("bootstrap stderr:\n%s", b.stderr.String())
		}
	})
	return b
}

func (b *boot) invoke(t testing.TB, ev events.KinesisEvent) outcome {
	t.Helper()
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.env.Invoke(context.Background(), payload)
	o := outcome{took: res.Duration}
	switch {
	case errors.Is(err, runtimeapi.ErrTimeout):
		o.late, o.fnErr = true, err
	case err != nil:
		t.Fatalf("invoke: %v", err)
	case res.Error != nil:
		o.fnErr = res.Error
	default:
		if err := json.Unmarshal(res.Payload, &o.resp); err != nil {
			t.Fatalf("response %s: %v", res.Payload, err)
		}
	}
	return o
}

// reclaimed is the real bootstrap killed (SIGKILL: no flush, no SIGTERM) right after each response,
// as Lambda may reclaim an environment once it answered: whatever the response acknowledged must be in
// Pulsar already, for nothing left in the process will ever send it. The next invocation is a cold
// start.
type reclaimed struct{ *boot }

func (r reclaimed) invoke(t testing.TB, ev events.KinesisEvent) outcome {
	t.Helper()
	o := r.boot.invoke(t, ev)
	if err := r.env.Reclaim(); err != nil {
		t.Fatalf("killing the bootstrap: %v", err)
	}
	return o
}
