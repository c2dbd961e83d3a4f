package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/streambridge/kinesis-pulsar/internal/kpl"
)

const testStream = "arn:aws:kinesis:us-east-1:123456789012:stream/sink-unit"

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
}

func fastOptions() Options {
	return Options{StreamARN: testStream, Topics: []string{"t"}, RetryInitialDelay: time.Millisecond,
		RetryMaxDelay: 5 * time.Millisecond, DeadlineMargin: 200 * time.Millisecond}
}

// runFor runs one invocation with a deadline d from now.
func runFor(t *testing.T, s *Sink, d time.Duration, ev Event) *Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	sum, err := s.Run(ctx, ev)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return sum
}

func TestPartitionKey(t *testing.T) {
	long := strings.Repeat("é", 300)
	tests := []struct {
		name string
		pk   PartitionKey
		msg  fakeMsg
		want string
	}{
		{"message key", PartitionKey{}, fakeMsg{key: "k1", topic: "t"}, "k1"},
		{"no key: the topic", PartitionKey{}, fakeMsg{topic: "persistent://public/default/t"}, "persistent://public/default/t"},
		{"no key, no topic", PartitionKey{}, fakeMsg{}, "default"},
		{"long key cut to 256 characters", PartitionKey{}, fakeMsg{key: long}, strings.Repeat("é", 256)},
		{"property", PartitionKey{Source: KeyProperty, Property: "tenant"}, fakeMsg{key: "k", topic: "t", props: map[string]string{"tenant": "acme"}}, "acme"},
		{"property missing: the topic", PartitionKey{Source: KeyProperty, Property: "tenant"}, fakeMsg{key: "k", topic: "t"}, "t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pk.of(&tt.msg); got != tt.want {
				t.Errorf("key = %q, want %q", got, tt.want)
			}
		})
	}
	a, b := PartitionKey{Source: KeyRandom}.of(&fakeMsg{}), PartitionKey{Source: KeyRandom}.of(&fakeMsg{})
	if a == b || len(a) != 32 {
		t.Errorf("random keys %q and %q: want two distinct 32-character keys", a, b)
	}
}

func TestFormat(t *testing.T) {
	pub := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	msg := func(payload string) *fakeMsg {
		return &fakeMsg{topic: "persistent://public/default/t", key: "k", payload: []byte(payload),
			props: map[string]string{"a": "b"}, id: pulsar.NewMessageID(7, 8, -1, 0), publish: pub}
	}
	envelope := `{"topic":"persistent://public/default/t","key":"k","messageId":"7:8:0","properties":{"a":"b"},"publishTime":"2026-01-02T03:04:05.006Z",`
	tests := []struct {
		format  string
		payload string
		want    string
	}{
		{"raw", `{"x": 1}`, `{"x": 1}`},
		{"ONLY_RAW_PAYLOAD", "\x00\xff", "\x00\xff"},
		{"json", `{"x": 1}`, envelope + `"payloadBase64":"eyJ4IjogMX0="}`},
		{"FULL_MESSAGE_IN_JSON", "", envelope + `"payloadBase64":""}`},
		{"jsonExpand", `{"x": 1}`, envelope + `"payload":{"x":1}}`},
		{"FULL_MESSAGE_IN_JSON_EXPAND_VALUE", "not json", envelope + `"payloadBase64":"bm90IGpzb24="}`},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			f, ok := ParseFormat(tt.format)
			if !ok {
				t.Fatalf("ParseFormat(%q) not accepted", tt.format)
			}
			if got := string(f.data(msg(tt.payload))); got != tt.want {
				t.Errorf("data =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	if _, ok := ParseFormat("FULL_MESSAGE_IN_FB"); ok {
		t.Error("FULL_MESSAGE_IN_FB accepted; the flatbuffer format is not supported")
	}
}

func TestShardOf(t *testing.T) {
	k := newFakeKinesis(t)
	m, err := listShards(context.Background(), k, testStream)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		key := fmt.Sprint("key-", i)
		h := keyHash(key)
		want := "shardId-000000000000"
		if h.hi >= 1<<63 {
			want = "shardId-000000000001"
		}
		if got := m.shardOf(key); got != want {
			t.Fatalf("shardOf(%q) = %s, want %s", key, got, want)
		}
	}
	// The MD5 of "a" is 0cc175b9c0f1b6a831c399e269772661: below the split.
	if got := m.shardOf("a"); got != "shardId-000000000000" {
		t.Errorf(`shardOf("a") = %s`, got)
	}
}

// TestOrderUnderPartialFailures: records fail at random inside PutRecords calls and whole calls fail;
// with perKey every key's first deliveries are in publish order, every message ends up in Kinesis,
// and each is acknowledged only after Kinesis accepted it (the fake consumer checks).
func TestOrderUnderPartialFailures(t *testing.T) {
	for _, tt := range []struct {
		name        string
		aggregation bool
		failRate    float64
	}{
		{"plain, 30% of records fail", false, 0.3},
		{"plain, 70% of records fail", false, 0.7},
		{"aggregated, 30% of records fail", true, 0.3},
		{"aggregated, 70% of records fail", true, 0.7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kin := newFakeKinesis(t)
			kin.checkKey, kin.byShard = true, tt.aggregation
			var mu sync.Mutex
			rng := rand.New(rand.NewPCG(1, 2))
			kin.fail = func(call int, _ string, _ []byte) string {
				mu.Lock()
				defer mu.Unlock()
				if call <= 2 || rng.Float64() < tt.failRate {
					return []string{"ProvisionedThroughputExceededException", "InternalFailure"}[rng.IntN(2)]
				}
				return ""
			}
			kin.callErr = func(call int) error {
				if call%7 == 0 {
					return &types.ProvisionedThroughputExceededException{Message: new(string)}
				}
				return nil
			}
			b := newBroker(t, kin)
			var keys []string
			for i := range 1500 {
				keys = append(keys, fmt.Sprint("key-", i%23))
			}
			b.publish("t", keys...)
			opts := fastOptions()
			opts.Aggregation = tt.aggregation
			s := New(opts, b, kin, nil, quietLog())
			sum := runFor(t, s, 30*time.Second, Event{MaxMessages: 1500})
			if sum.StoppedBy != StopMaxMessages || sum.Acknowledged != 1500 || sum.Put != 1500 {
				t.Fatalf("summary %+v, want 1500 put and acknowledged, stopped by maxMessages", sum.Result)
			}
			if sum.Retries == 0 || sum.Throttles == 0 {
				t.Errorf("retries %d, throttles %d: the faults were not exercised", sum.Retries, sum.Throttles)
			}
			checkOrder(t, kin, b)
			if n := b.unacked(); n != 0 {
				t.Errorf("%d messages unacknowledged", n)
			}
		})
	}
}

// checkOrder asserts every key's first deliveries are in publish order and complete.
func checkOrder(t *testing.T, kin *fakeKinesis, b *broker) {
	t.Helper()
	want := map[string][]string{}
	for _, m := range b.msgs {
		want[m.key] = append(want[m.key], string(m.payload))
	}
	got := kin.firstDeliveries()
	for key, w := range want {
		if !slices.Equal(got[key], w) {
			t.Errorf("key %s: first deliveries %d, want %d in publish order; got %.5q", key, len(got[key]), len(w), got[key])
		}
	}
}

func TestOrderingNoneDeliversEverything(t *testing.T) {
	kin := newFakeKinesis(t)
	var calls sync.Map
	kin.fail = func(call int, key string, _ []byte) string {
		// Fail each record on its first attempt only.
		if _, again := calls.LoadOrStore(key+fmt.Sprint(call), true); !again && call%2 == 1 {
			return "InternalFailure"
		}
		return ""
	}
	b := newBroker(t, kin)
	b.publish("t", slices.Repeat([]string{"a", "b", "c"}, 100)...)
	opts := fastOptions()
	opts.Ordering = OrderNone
	sum := runFor(t, New(opts, b, kin, nil, quietLog()), 20*time.Second, Event{MaxMessages: 300})
	if sum.Put != 300 || sum.Acknowledged != 300 || b.unacked() != 0 {
		t.Fatalf("summary %+v, unacked %d", sum.Result, b.unacked())
	}
}

func TestAggregatesGroupedByShard(t *testing.T) {
	kin := newFakeKinesis(t)
	b := newBroker(t, kin)
	var keys []string
	for i := range 400 {
		keys = append(keys, fmt.Sprint("k", i))
	}
	b.publish("t", keys...)
	opts := fastOptions()
	opts.Aggregation = true
	sum := runFor(t, New(opts, b, kin, nil, quietLog()), 20*time.Second, Event{MaxMessages: 400})
	if sum.Put != 400 || sum.RecordsPut > 200 {
		t.Fatalf("put %d messages in %d records, want 400 in a few aggregates", sum.Put, sum.RecordsPut)
	}
	for _, r := range kin.accepted {
		recs, err := kpl.Deaggregate(r.data)
		if err != nil {
			t.Fatalf("record is not an aggregate: %v", err)
		}
		for _, u := range recs {
			if s := kin.shards.shardOf(u.PartitionKey); s != r.shard {
				t.Errorf("user record %q of shard %s in an aggregate written to %s", u.PartitionKey, s, r.shard)
			}
		}
	}
	if kin.listed != 1 {
		t.Errorf("ListShards called %d times, want once", kin.listed)
	}
}

func TestStopReasons(t *testing.T) {
	tests := []struct {
		name      string
		published int
		ev        Event
		deadline  time.Duration
		want      string
		wantAcked int
	}{
		{"maxMessages", 20, Event{MaxMessages: 5}, 10 * time.Second, StopMaxMessages, 5},
		{"idle", 3, Event{IdleMs: 100}, 10 * time.Second, StopIdle, 3},
		{"deadline", 3, Event{}, 700 * time.Millisecond, StopDeadline, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kin := newFakeKinesis(t)
			b := newBroker(t, kin)
			b.publish("t", slices.Repeat([]string{"k"}, tt.published)...)
			started := time.Now()
			sum := runFor(t, New(fastOptions(), b, kin, nil, quietLog()), tt.deadline, tt.ev)
			if sum.StoppedBy != tt.want || sum.Acknowledged != tt.wantAcked {
				t.Errorf("stopped by %s with %d acknowledged, want %s with %d", sum.StoppedBy, sum.Acknowledged, tt.want, tt.wantAcked)
			}
			if tt.want == StopDeadline {
				if el := time.Since(started); el < tt.deadline-fastOptions().DeadlineMargin-50*time.Millisecond || el > tt.deadline {
					t.Errorf("returned after %v; want at the margin of a %v deadline", el, tt.deadline)
				}
			}
		})
	}
}

func TestHandleEvent(t *testing.T) {
	for _, tt := range []struct {
		event string
		want  int
	}{
		{`{"maxMessages": 2}`, 2},
		{`{"version":"0","detail-type":"Scheduled Event","source":"aws.scheduler","maxMessages":"x"}`, 4},
		{`"anything"`, 4},
	} {
		kin := newFakeKinesis(t)
		b := newBroker(t, kin)
		b.publish("t", "a", "b", "c", "d")
		ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
		res, err := New(fastOptions(), b, kin, nil, quietLog()).Handle(ctx, json.RawMessage(tt.event))
		cancel()
		if err != nil || res.Acknowledged != tt.want {
			t.Errorf("event %s: %+v, %v; want %d acknowledged", tt.event, res, err, tt.want)
		}
	}
}

func TestDeadLetterTooLarge(t *testing.T) {
	for _, dlt := range []string{"persistent://public/default/dlt", ""} {
		t.Run("dead-letter topic "+dlt, func(t *testing.T) {
			kin := newFakeKinesis(t)
			b := newBroker(t, kin)
			b.publish("t", "big", "big", "other")
			b.msgs[0].payload = bytes.Repeat([]byte("x"), maxRecordBytes)
			opts := fastOptions()
			opts.DeadLetterTopic = dlt
			sum := runFor(t, New(opts, b, kin, nil, quietLog()), 10*time.Second, Event{IdleMs: 100})
			if dlt != "" {
				if sum.DeadLettered != 1 || sum.Put != 2 || b.unacked() != 0 || len(b.dead) != 1 {
					t.Fatalf("summary %+v, dead %d, unacked %d", sum.Result, len(b.dead), b.unacked())
				}
				if r := b.dead[0].Properties[PropDeadLetterReason]; !strings.Contains(r, "exceeds Kinesis") {
					t.Errorf("reason %q", r)
				}
				return
			}
			// No dead-letter topic: the large message and the one behind it (same key) stay
			// unacknowledged; the other key goes on.
			if sum.Put != 1 || sum.Held != 2 || b.unacked() != 2 {
				t.Fatalf("summary %+v held %d, unacked %d; want 1 put, 2 held", sum.Result, sum.Held, b.unacked())
			}
		})
	}
}

func TestDeadLetterAfterMaxRedeliveries(t *testing.T) {
	kin := newFakeKinesis(t)
	kin.fail = func(_ int, key string, _ []byte) string {
		if key == "poison" {
			return "InternalFailure"
		}
		return ""
	}
	b := newBroker(t, kin)
	b.publish("t", "poison", "fine")
	opts := fastOptions()
	opts.DeadLetterTopic = "dlt"
	opts.MaxRedeliveries = 2
	s := New(opts, b, kin, nil, quietLog())
	for i := range 3 {
		// Delivered once, then redelivered twice: still within the limit.
		if sum := runFor(t, s, 500*time.Millisecond, Event{}); sum.DeadLettered != 0 {
			t.Fatalf("invocation %d dead-lettered %d", i, sum.DeadLettered)
		}
	}
	sum := runFor(t, s, 500*time.Millisecond, Event{})
	if sum.DeadLettered != 1 || b.unacked() != 0 {
		t.Fatalf("fourth invocation: %+v, unacked %d; want the poison message dead-lettered", sum.Result, b.unacked())
	}
	if r := b.dead[0].Properties[PropDeadLetterReason]; !strings.Contains(r, "redelivered 3 times") {
		t.Errorf("reason %q", r)
	}
}

// TestDeadlineMidPut: a PutRecords call still unanswered at the deadline is abandoned, nothing of it
// is acknowledged, and the next invocation writes the messages again.
func TestDeadlineMidPut(t *testing.T) {
	kin := newFakeKinesis(t)
	kin.block = func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}
	b := newBroker(t, kin)
	b.publish("t", "a", "b")
	s := New(fastOptions(), b, kin, nil, quietLog())
	started := time.Now()
	sum := runFor(t, s, 800*time.Millisecond, Event{})
	if el := time.Since(started); el > 800*time.Millisecond {
		t.Errorf("answered after %v, past the deadline", el)
	}
	if sum.Acknowledged != 0 || b.unacked() != 2 || sum.StoppedBy != StopDeadline {
		t.Fatalf("summary %+v, unacked %d", sum.Result, b.unacked())
	}
	kin.block = nil
	if sum := runFor(t, s, 5*time.Second, Event{IdleMs: 100}); sum.Acknowledged != 2 || b.unacked() != 0 {
		t.Fatalf("next invocation %+v, unacked %d", sum.Result, b.unacked())
	}
}

func TestSubscribeErrorIsReturned(t *testing.T) {
	kin := newFakeKinesis(t)
	b := newBroker(t, kin)
	b.subErr = fmt.Errorf("broker down: %w", errInjected)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := New(fastOptions(), b, kin, nil, quietLog()).Run(ctx, Event{}); err == nil {
		t.Fatal("Run returned no error")
	}
	if b.opts.Type != pulsar.Failover || !b.opts.AckWithResponse || b.opts.SubscriptionName != DefaultSubscription {
		t.Errorf("consumer options %+v: want Failover, acks with response, subscription %s", b.opts, DefaultSubscription)
	}
}
