//go:build integration

package sink_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/internal/kpl"
	"github.com/streambridge/kinesis-pulsar/internal/producer"
	"github.com/streambridge/kinesis-pulsar/internal/sink"
)

// stack is the local stack as the sink's tests use it: a stream of their own on moto, topics of
// their own on the shared broker.
type stack struct {
	t      testing.TB
	env    localenv.Env
	kin    *kinesis.Client
	client pulsar.Client
	pool   *producer.Pool
	stream string // ARN
}

func newStack(t testing.TB, shards int32) *stack {
	t.Helper()
	env := localenv.Require(t)
	return newStackOn(t, env, shards, env.PulsarServiceURL)
}

// newStackOn is newStack with the broker at serviceURL.
func newStackOn(t testing.TB, env localenv.Env, shards int32, serviceURL string) *stack {
	t.Helper()
	ctx := context.Background()
	cfg, err := env.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kin := kinesis.NewFromConfig(cfg)
	name := "sink-" + randomHex(5)
	if _, err := kin.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	t.Cleanup(func() {
		_, _ = kin.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
	})
	sum, err := kin.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	quiet := pulsarlog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(io.Discard, nil)))
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: serviceURL, OperationTimeout: 30 * time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	pool := producer.NewPool(producer.Options{ServiceURL: serviceURL, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { pool.Close(context.Background()) })
	return &stack{t: t, env: env, kin: kin, client: client, pool: pool, stream: aws.ToString(sum.StreamDescriptionSummary.StreamARN)}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *stack) topic(prefix string) string {
	return "persistent://public/default/sink-" + prefix + "-" + randomHex(5)
}

type published struct {
	key  string
	data []byte
}

// publish sends msgs to topic unbatched and waits for every receipt. Unbatched, because a batch
// acknowledged in part comes back whole from a broker without batch-index acknowledgment.
func (s *stack) publish(topic string, msgs []published) {
	s.t.Helper()
	s.send(pulsar.ProducerOptions{Topic: topic, DisableBatching: true}, msgs)
}

// publishBatched sends msgs in batches, as most producers do.
func (s *stack) publishBatched(topic string, msgs []published) {
	s.t.Helper()
	s.send(pulsar.ProducerOptions{Topic: topic, BatchingMaxMessages: 50}, msgs)
}

func (s *stack) send(opts pulsar.ProducerOptions, msgs []published) {
	s.t.Helper()
	p, err := s.client.CreateProducer(opts)
	if err != nil {
		s.t.Fatal(err)
	}
	defer p.Close()
	for _, m := range msgs {
		p.SendAsync(context.Background(), &pulsar.ProducerMessage{Key: m.key, Payload: m.data}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			if err != nil {
				s.t.Errorf("publish: %v", err)
			}
		})
	}
	if err := p.FlushWithCtx(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) options(topics ...string) sink.Options {
	return sink.Options{StreamARN: s.stream, Topics: topics, Subscription: "sink-test", InitialPosition: sink.PositionEarliest,
		RetryInitialDelay: 10 * time.Millisecond, RetryMaxDelay: 100 * time.Millisecond}
}

func (s *stack) sink(opts sink.Options, k sink.Kinesis) *sink.Sink {
	if k == nil {
		k = s.kin
	}
	return sink.New(opts, sink.Broker{Pool: s.pool}, k, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// idleMs outlasts the broker's failover delay (activeConsumerFailoverDelayTimeMillis, 1 s by default):
// a Failover subscription's new consumer receives nothing before it.
const idleMs = 3000

func invoke(t *testing.T, sk *sink.Sink, d time.Duration, ev sink.Event) *sink.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	sum, err := sk.Run(ctx, ev)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return sum
}

type streamRecord struct {
	key, shard string
	data       []byte
}

// read returns every record of the stream, shard by shard in sequence order.
func (s *stack) read() []streamRecord {
	s.t.Helper()
	ctx := context.Background()
	shards, err := s.kin.ListShards(ctx, &kinesis.ListShardsInput{StreamARN: aws.String(s.stream)})
	if err != nil {
		s.t.Fatal(err)
	}
	var out []streamRecord
	for _, sh := range shards.Shards {
		it, err := s.kin.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamARN: aws.String(s.stream), ShardId: sh.ShardId,
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			s.t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			got, err := s.kin.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, StreamARN: aws.String(s.stream)})
			if err != nil {
				s.t.Fatal(err)
			}
			for _, r := range got.Records {
				out = append(out, streamRecord{key: aws.ToString(r.PartitionKey), shard: aws.ToString(sh.ShardId), data: r.Data})
			}
			if len(got.Records) == 0 {
				break
			}
			iter = got.NextShardIterator
		}
	}
	return out
}

// userRecords de-aggregates what read returns, as our source and the KCL do.
func userRecords(recs []streamRecord) []streamRecord {
	var out []streamRecord
	for _, r := range recs {
		users, err := kpl.Deaggregate(r.data)
		if err != nil {
			out = append(out, r)
			continue
		}
		for _, u := range users {
			out = append(out, streamRecord{key: u.PartitionKey, shard: r.shard, data: u.Data})
		}
	}
	return out
}

// checkFirstDeliveries: per key, the first delivery of each message is in publish order, byte for byte,
// and every message is there.
func checkFirstDeliveries(t *testing.T, msgs []published, got []streamRecord) {
	t.Helper()
	want := map[string][][]byte{}
	for _, m := range msgs {
		want[m.key] = append(want[m.key], m.data)
	}
	seen := map[string]bool{}
	first := map[string][][]byte{}
	for _, r := range got {
		if !seen[string(r.data)] {
			seen[string(r.data)] = true
			first[r.key] = append(first[r.key], r.data)
		}
	}
	for key, w := range want {
		if !slices.EqualFunc(first[key], w, bytes.Equal) {
			t.Errorf("key %q: %d first deliveries, want %d in publish order", key, len(first[key]), len(w))
		}
	}
}

func messages(prefix string, n, keys int) []published {
	out := make([]published, n)
	for i := range out {
		data := make([]byte, 16+i%200)
		_, _ = rand.Read(data)
		out[i] = published{key: fmt.Sprintf("%s-key-%d", prefix, i%keys), data: data}
	}
	return out
}

func TestRoundTripByteForByte(t *testing.T) {
	for _, agg := range []bool{false, true} {
		t.Run(fmt.Sprintf("aggregation=%v", agg), func(t *testing.T) {
			s := newStack(t, 2)
			topics := []string{s.topic("a"), s.topic("b")}
			// Pulsar orders a key within a topic: each topic has keys of its own.
			msgs := append(messages("a", 60, 4), messages("b", 60, 3)...)
			s.publishBatched(topics[0], msgs[:60])
			s.publishBatched(topics[1], msgs[60:])
			opts := s.options(topics...)
			opts.Aggregation = agg
			sk := s.sink(opts, nil)
			sum := invoke(t, sk, 60*time.Second, sink.Event{MaxMessages: len(msgs)})
			if sum.Received != 120 || sum.Put != 120 || sum.Acknowledged != 120 || sum.StoppedBy != sink.StopMaxMessages {
				t.Fatalf("summary %+v", sum.Result)
			}
			recs := s.read()
			if agg && len(recs) >= 120 {
				t.Errorf("%d Kinesis records for 120 messages with aggregation", len(recs))
			}
			users := userRecords(recs)
			if len(users) != 120 {
				t.Errorf("%d user records in the stream, want 120", len(users))
			}
			checkFirstDeliveries(t, msgs, users)
			if agg {
				checkShards(t, s, recs)
			}
			// Everything was acknowledged: the next invocation finds nothing.
			if sum := invoke(t, sk, 30*time.Second, sink.Event{IdleMs: idleMs}); sum.Received != 0 || sum.StoppedBy != sink.StopIdle {
				t.Errorf("second invocation %+v, want nothing received, stopped by idle", sum.Result)
			}
		})
	}
}

// checkShards: each aggregate holds only user records whose key hashes into its shard's range.
func checkShards(t *testing.T, s *stack, recs []streamRecord) {
	t.Helper()
	out, err := s.kin.ListShards(context.Background(), &kinesis.ListShardsInput{StreamARN: aws.String(s.stream)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		users, err := kpl.Deaggregate(r.data)
		if err != nil {
			t.Fatalf("record on %s is not an aggregate: %v", r.shard, err)
		}
		for _, u := range users {
			if sh := shardOfKey(t, out.Shards, u.PartitionKey); sh != r.shard {
				t.Errorf("user record of key %s (shard %s) in an aggregate on %s", u.PartitionKey, sh, r.shard)
			}
		}
	}
}

// TestUnacknowledgedAreRedelivered: while Kinesis refuses everything nothing is acknowledged; the
// next invocation receives the same messages again and writes them, in order.
func TestUnacknowledgedAreRedelivered(t *testing.T) {
	s := newStack(t, 1)
	topic := s.topic("redeliver")
	msgs := messages("r", 50, 3)
	s.publish(topic, msgs)
	down := &faulty{Kinesis: s.kin, fail: func(*kinesis.PutRecordsInput) error {
		return &types.ProvisionedThroughputExceededException{Message: aws.String("injected")}
	}}
	sum := invoke(t, s.sink(s.options(topic), down), 6*time.Second, sink.Event{})
	if sum.Received == 0 || sum.Acknowledged != 0 || sum.Throttles == 0 || sum.StoppedBy != sink.StopDeadline {
		t.Fatalf("while Kinesis refuses: %+v (throttles %d)", sum.Result, sum.Throttles)
	}
	sum = invoke(t, s.sink(s.options(topic), nil), 30*time.Second, sink.Event{IdleMs: idleMs})
	if sum.Received != 50 || sum.Acknowledged != 50 {
		t.Fatalf("next invocation %+v, want all 50 redelivered and acknowledged", sum.Result)
	}
	checkFirstDeliveries(t, msgs, s.read())
}

// TestThrottledCallsRetried: every other PutRecords call is throttled; all messages arrive in order.
func TestThrottledCallsRetried(t *testing.T) {
	s := newStack(t, 1)
	topic := s.topic("throttle")
	msgs := messages("t", 100, 4)
	s.publish(topic, msgs)
	var calls atomic.Int64
	k := &faulty{Kinesis: s.kin, fail: func(*kinesis.PutRecordsInput) error {
		if calls.Add(1)%2 == 1 {
			return &types.ProvisionedThroughputExceededException{Message: aws.String("injected")}
		}
		return nil
	}}
	sum := invoke(t, s.sink(s.options(topic), k), 60*time.Second, sink.Event{MaxMessages: 100})
	if sum.Acknowledged != 100 || sum.Throttles == 0 || sum.Retries == 0 {
		t.Fatalf("summary %+v, throttles %d, retries %d", sum.Result, sum.Throttles, sum.Retries)
	}
	checkFirstDeliveries(t, msgs, s.read())
}

// TestDeadLetters: a message too large for Kinesis goes to the dead-letter topic at once; one Kinesis
// keeps refusing goes there after SINK_MAX_REDELIVERIES redeliveries; both with the reason.
func TestDeadLetters(t *testing.T) {
	s := newStack(t, 1)
	topic, dlt := s.topic("dl"), s.topic("dlt")
	big := bytes.Repeat([]byte("x"), 1<<20+1)
	msgs := []published{{"big", big}, {"poison", []byte("refused")}, {"fine", []byte("ok")}}
	s.publish(topic, msgs)
	k := &faulty{Kinesis: s.kin, refuse: func(r types.PutRecordsRequestEntry) bool { return aws.ToString(r.PartitionKey) == "poison" }}
	opts := s.options(topic)
	opts.DeadLetterTopic, opts.MaxRedeliveries = dlt, 1
	sk := s.sink(opts, k)
	var dead int
	for i := range 3 { // delivered, redelivered once, then dead-lettered
		sum := invoke(t, sk, 8*time.Second, sink.Event{})
		dead += sum.DeadLettered
		t.Logf("invocation %d: %+v", i, sum.Result)
	}
	if dead != 2 {
		t.Fatalf("%d dead-lettered, want 2", dead)
	}
	reasons := map[string]string{}
	r, err := s.client.CreateReader(pulsar.ReaderOptions{Topic: dlt, StartMessageID: pulsar.EarliestMessageID(), MaxPendingChunkedMessage: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(reasons) < 2 {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("reading the dead-letter topic: %v (got %v)", err, reasons)
		}
		reasons[m.Key()] = m.Properties()[sink.PropDeadLetterReason]
		if m.Key() == "big" && !bytes.Equal(m.Payload(), big) {
			t.Error("dead-lettered payload differs")
		}
	}
	if !strings.Contains(reasons["big"], "exceeds") || !strings.Contains(reasons["poison"], "redelivered 2 times") {
		t.Errorf("reasons %q", reasons)
	}
	got := s.read()
	if len(got) != 1 || string(got[0].data) != "ok" {
		t.Errorf("stream holds %d records, want only the fine one", len(got))
	}
}

func TestStopReasons(t *testing.T) {
	s := newStack(t, 1)
	topic := s.topic("stops")
	s.publish(topic, messages("s", 10, 2))
	sk := s.sink(s.options(topic), nil)
	if sum := invoke(t, sk, 30*time.Second, sink.Event{MaxMessages: 4}); sum.StoppedBy != sink.StopMaxMessages || sum.Acknowledged != 4 {
		t.Errorf("maxMessages: %+v", sum.Result)
	}
	if sum := invoke(t, sk, 30*time.Second, sink.Event{IdleMs: idleMs}); sum.StoppedBy != sink.StopIdle || sum.Acknowledged != 6 {
		t.Errorf("idle: %+v", sum.Result)
	}
	started := time.Now()
	const deadline = 4 * time.Second
	sum := invoke(t, sk, deadline, sink.Event{})
	if el := time.Since(started); sum.StoppedBy != sink.StopDeadline || sum.Received != 0 || el > deadline || el < deadline-2*sink.DefaultDeadlineMargin {
		t.Errorf("deadline: %+v after %v", sum.Result, el)
	}
}

// faulty passes calls to moto, except what it refuses: faults moto cannot produce. fail refuses a
// whole call; refuse fails single records (InternalFailure) and passes the rest of the call on.
type faulty struct {
	sink.Kinesis
	fail   func(*kinesis.PutRecordsInput) error
	refuse func(types.PutRecordsRequestEntry) bool
}

func (f *faulty) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	if f.fail != nil {
		if err := f.fail(in); err != nil {
			return nil, err
		}
	}
	if f.refuse == nil {
		return f.Kinesis.PutRecords(ctx, in, opts...)
	}
	pass := *in
	pass.Records = nil
	for _, r := range in.Records {
		if !f.refuse(r) {
			pass.Records = append(pass.Records, r)
		}
	}
	got := &kinesis.PutRecordsOutput{}
	if len(pass.Records) > 0 {
		var err error
		if got, err = f.Kinesis.PutRecords(ctx, &pass, opts...); err != nil {
			return nil, err
		}
	}
	out := &kinesis.PutRecordsOutput{}
	for _, r := range in.Records {
		if f.refuse(r) {
			out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String("InternalFailure"), ErrorMessage: aws.String("injected")})
			continue
		}
		out.Records = append(out.Records, got.Records[0])
		got.Records = got.Records[1:]
	}
	return out, nil
}

// shardOfKey finds key's shard the way Kinesis documents it, independently of the sink's own map.
func shardOfKey(t *testing.T, shards []types.Shard, key string) string {
	t.Helper()
	sum := md5.Sum([]byte(key))
	h := new(big.Int).SetBytes(sum[:])
	for _, s := range shards {
		lo, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
		hi, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
		if h.Cmp(lo) >= 0 && h.Cmp(hi) <= 0 {
			return aws.ToString(s.ShardId)
		}
	}
	t.Fatalf("no shard holds key %q", key)
	return ""
}

// faultProxy stands between the Kinesis client and moto and answers some PutRecords calls itself:
// throttling (400 ProvisionedThroughputExceededException) and 5xx, before or after moto wrote them.
type faultProxy struct {
	calls atomic.Int64
	fault func(call int64) (status int, code string, afterMoto bool)
}

func (f *faultProxy) start(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	moto := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutRecords") {
			moto.ServeHTTP(w, r)
			return
		}
		status, code, after := f.fault(f.calls.Add(1))
		if status == 0 {
			moto.ServeHTTP(w, r)
			return
		}
		if after {
			// moto writes the records; the client sees a failure: it writes them again (at least once).
			moto.ServeHTTP(httptest.NewRecorder(), r)
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":%q,"message":"injected by the fault proxy"}`, code)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestFaultProxyThrottlingAnd5xx: the real client through a proxy that throttles, fails with 500 and
// 503, and fails calls moto has already written; every message arrives, each key's first deliveries in
// publish order.
func TestFaultProxyThrottlingAnd5xx(t *testing.T) {
	s := newStack(t, 2)
	topic := s.topic("proxy")
	msgs := messages("p", 120, 5)
	s.publish(topic, msgs)
	proxy := &faultProxy{fault: func(call int64) (int, string, bool) {
		switch call % 6 {
		case 1:
			return http.StatusBadRequest, "ProvisionedThroughputExceededException", false
		case 3:
			return http.StatusInternalServerError, "InternalFailure", true
		case 5:
			return http.StatusServiceUnavailable, "ServiceUnavailable", false
		}
		return 0, "", false
	}}
	cfg, err := s.env.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg.BaseEndpoint = aws.String(proxy.start(t, s.env.AWSEndpointURL))
	// As the function builds it: no SDK retries, the sink retries itself.
	viaProxy := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.MaxAttempts = 1 })
	})
	sum := invoke(t, s.sink(s.options(topic), viaProxy), 120*time.Second, sink.Event{MaxMessages: len(msgs)})
	if sum.Acknowledged != len(msgs) || sum.Throttles == 0 || sum.PutErrors == 0 {
		t.Fatalf("summary %+v, throttles %d, put errors %d", sum.Result, sum.Throttles, sum.PutErrors)
	}
	got := s.read()
	checkFirstDeliveries(t, msgs, got)
	t.Logf("%d PutRecords calls through the proxy, %d records in the stream for %d messages", proxy.calls.Load(), len(got), len(msgs))
}

// TestBrokerRestartMidDrain: a broker of the test's own restarts while the sink drains one key, one
// record in flight at a time; acknowledgements fail meanwhile and messages come back, but every message
// reaches the stream and the key's first deliveries stay in publish order.
func TestBrokerRestartMidDrain(t *testing.T) {
	env := localenv.Require(t)
	var logPath string
	t.Cleanup(func() {
		// Runs after the broker's own cleanup stopped it: a passing run leaves no data behind.
		if base := strings.TrimSuffix(logPath, ".log"); !t.Failed() && logPath != "" {
			for _, p := range []string{base, base + ".log", base + ".conf", base + ".args", base + ".pid"} {
				_ = os.RemoveAll(p)
			}
		}
	})
	b := localenv.StartBroker(t, localenv.BrokerOptions{Name: fmt.Sprintf("sink-restart-%d", os.Getpid())})
	logPath = b.LogPath()
	s := newStackOn(t, env, 1, b.ServiceURL())
	topic := s.topic("restart")
	msgs := messages("r", 300, 1)
	s.publish(topic, msgs)
	sk := s.sink(s.options(topic), nil)

	first := make(chan *sink.Summary, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		sum, _ := sk.Run(ctx, sink.Event{MaxMessages: len(msgs)})
		first <- sum
	}()
	for deadline := time.Now().Add(60 * time.Second); len(s.read()) < 10; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("nothing reached the stream")
		}
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	sum := <-first
	t.Logf("invocation across the restart: %+v, ack errors %d", sum.Result, sum.AckErrors)
	for range 5 { // until an invocation finds nothing left
		rest := invoke(t, sk, 60*time.Second, sink.Event{IdleMs: idleMs})
		t.Logf("next invocation: %+v", rest.Result)
		if rest.Received == 0 {
			break
		}
	}
	got := s.read()
	checkFirstDeliveries(t, msgs, got)
	t.Logf("%d records in the stream for %d messages", len(got), len(msgs))
}

// TestDeadlineMidPutRecords: a PutRecords call moto has answered but whose answer the proxy holds past
// the invocation's deadline: the invocation still answers in time, acknowledges nothing of that call,
// and the next invocation writes those messages again (at least once, first deliveries in order).
func TestDeadlineMidPutRecords(t *testing.T) {
	s := newStack(t, 1)
	topic := s.topic("midput")
	msgs := messages("d", 40, 2)
	s.publish(topic, msgs)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var calls, held atomic.Int64
	cfg, err := s.env.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(s.env.AWSEndpointURL)
	moto := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutRecords") && calls.Add(1) >= 3 && held.Add(1) == 1 {
			rec := httptest.NewRecorder()
			moto.ServeHTTP(rec, r) // written in the stream, answer held
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		moto.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg.BaseEndpoint = aws.String(srv.URL)
	viaProxy := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.MaxAttempts = 1 })
	})
	const deadline = 8 * time.Second
	started := time.Now()
	sum := invoke(t, s.sink(s.options(topic), viaProxy), deadline, sink.Event{})
	if el := time.Since(started); el > deadline || held.Load() == 0 || sum.Acknowledged >= len(msgs) {
		t.Fatalf("first invocation: %+v after %v (held %d calls)", sum.Result, el, held.Load())
	}
	rest := invoke(t, s.sink(s.options(topic), s.kin), 60*time.Second, sink.Event{IdleMs: idleMs})
	if sum.Acknowledged+rest.Acknowledged != len(msgs) {
		t.Fatalf("acknowledged %d then %d, want %d in all", sum.Acknowledged, rest.Acknowledged, len(msgs))
	}
	got := s.read()
	checkFirstDeliveries(t, msgs, got)
	t.Logf("first invocation %+v, then %+v; %d records for %d messages", sum.Result, rest.Result, len(got), len(msgs))
}
