//go:build integration

package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/internal/kpl"
	"github.com/streambridge/kinesis-pulsar/internal/producer"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/internal/relay/senders"
	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
	"github.com/streambridge/kinesis-pulsar/tests/kinesistest"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

func serviceURL(t *testing.T) string {
	t.Helper()
	return localenv.Require(t).PulsarServiceURL
}

// summaries collects what the relay observed.
type summaries struct {
	mu  sync.Mutex
	all []*relay.Summary
}

func (s *summaries) Observe(_ context.Context, sum *relay.Summary) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, sum)
}

func (s *summaries) last(t *testing.T) *relay.Summary {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.all) == 0 {
		t.Fatal("no summary observed")
	}
	return s.all[len(s.all)-1]
}

type fixture struct {
	relay  *relay.Relay
	pool   *producer.Pool
	client pulsar.Client
	sums   *summaries
	topic  string
}

func newFixture(t *testing.T, opts relay.Options, popts producer.Options) *fixture {
	t.Helper()
	url := serviceURL(t)
	if opts.Topic.IsZero() {
		opts.Topic = streamtopic.MustParse(pulsartest.Topic(t, "relay"))
	}
	if opts.Properties == 0 {
		opts.Properties = relay.AllProperties
	}
	popts.ServiceURL = url
	pool := producer.NewPool(popts)
	t.Cleanup(func() { pool.Close(context.Background()) })
	sums := &summaries{}
	return &fixture{
		relay:  relay.New(opts, senders.FromPool(pool), nil, sums, nil),
		pool:   pool,
		client: pulsartest.Client(t, url),
		sums:   sums,
		topic:  opts.Topic.String(),
	}
}

func (f *fixture) handle(t *testing.T, timeout time.Duration, ev events.KinesisEvent) events.KinesisEventResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := f.relay.Handle(ctx, ev)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return resp
}

func (f *fixture) read(t *testing.T, topic string) []pulsar.Message {
	t.Helper()
	return pulsartest.ReadAll(t, f.client, topic, 60*time.Second)
}

func wantDelivered(t *testing.T, resp events.KinesisEventResponse) {
	t.Helper()
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("batch item failures %v, want none", resp.BatchItemFailures)
	}
}

func wantFailedAt(t *testing.T, resp events.KinesisEventResponse, seq string) {
	t.Helper()
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != seq {
		t.Fatalf("batch item failures %v, want exactly [%s]", resp.BatchItemFailures, seq)
	}
}

// The quick start of the Pulsar Kinesis connector: a KPL producer sends 10 records
// "test-kinesis-data" with key "myPartitionKey"; a consumer sees 10 messages with that key and the
// sequence number as a property.
func TestQuickStart(t *testing.T) {
	f := newFixture(t, relay.Options{Deaggregate: true}, producer.Options{})
	shard := kinesistest.NewShard("quickstart", 0)
	user := make([]kpl.Record, 10)
	for i := range user {
		user[i] = kpl.Record{PartitionKey: "myPartitionKey", Data: []byte("test-kinesis-data")}
	}
	rec, err := shard.Aggregate(user)
	if err != nil {
		t.Fatal(err)
	}
	wantDelivered(t, f.handle(t, 30*time.Second, kinesistest.Event(rec)))

	msgs := f.read(t, f.topic)
	if len(msgs) != 10 {
		t.Fatalf("got %d messages, want 10", len(msgs))
	}
	arrival := rec.Kinesis.ApproximateArrivalTimestamp.Time
	for i, m := range msgs {
		if m.Key() != "myPartitionKey" || string(m.Payload()) != "test-kinesis-data" {
			t.Errorf("message %d: key %q payload %q", i, m.Key(), m.Payload())
		}
		want := map[string]string{
			"kinesis.sequence.number":     rec.Kinesis.SequenceNumber,
			"kinesis.sub.sequence.number": strconv.Itoa(i),
			"kinesis.partition.key":       "myPartitionKey",
			"kinesis.arrival.timestamp":   arrival.UTC().Format("2006-01-02T15:04:05.000Z"),
			"kinesis.encryption.type":     "NONE",
			"kinesis.shard.id":            "shardId-000000000000",
			"kinesis.stream.arn":          kinesistest.StreamARN("quickstart"),
		}
		if got := m.Properties(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("message %d properties\n got %v\nwant %v", i, got, want)
		}
		if !m.EventTime().Equal(arrival) {
			t.Errorf("message %d event time %v, want %v", i, m.EventTime(), arrival)
		}
	}
	s := f.sums.last(t)
	if s.Records != 1 || s.SubRecords != 10 || s.Published != 10 || s.Outcome != relay.OutcomeDelivered {
		t.Errorf("summary %+v", s)
	}
}

func TestBinaryPayloadsArriveUnchanged(t *testing.T) {
	f := newFixture(t, relay.Options{Deaggregate: true}, producer.Options{})
	shard := kinesistest.NewShard("binary", 3)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	payloads := [][]byte{
		all,
		{0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff}, // gzip header
		{0xff, 0xfe, 0xfd, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1}, // invalid UTF-8
		{},
		{0xF3, 0x89, 0x9A, 0xC2, 1, 2, 3}, // KPL magic, but not an aggregate: published as is
		bytes.Repeat([]byte{0}, 4096),
	}
	var ev events.KinesisEvent
	for i, p := range payloads {
		ev.Records = append(ev.Records, shard.Record(fmt.Sprintf("bin-%d", i), p))
	}
	wantDelivered(t, f.handle(t, 30*time.Second, ev))
	msgs := f.read(t, f.topic)
	if len(msgs) != len(payloads) {
		t.Fatalf("got %d messages, want %d", len(msgs), len(payloads))
	}
	for i, m := range msgs {
		if !bytes.Equal(m.Payload(), payloads[i]) {
			t.Errorf("payload %d changed: got % x, want % x", i, m.Payload(), payloads[i])
		}
		if m.Properties()["kinesis.sequence.number"] != ev.Records[i].Kinesis.SequenceNumber {
			t.Errorf("message %d out of order", i)
		}
	}
}

func TestAggregatesWithSeveralKeys(t *testing.T) {
	f := newFixture(t, relay.Options{Deaggregate: true}, producer.Options{})
	shard := kinesistest.NewShard("kpl", 1)
	var ev events.KinesisEvent
	var want []kpl.Record
	for a := 0; a < 5; a++ {
		var user []kpl.Record
		for i := 0; i < 50; i++ {
			r := kpl.Record{PartitionKey: fmt.Sprintf("key-%d", i%7), Data: []byte(fmt.Sprintf("agg %d rec %d", a, i))}
			if i%5 == 0 {
				r.ExplicitHashKey = strconv.Itoa(i * 1000003)
			}
			user = append(user, r)
		}
		rec, err := shard.Aggregate(user)
		if err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, rec)
		want = append(want, user...)
		// A plain record between aggregates.
		plain := kpl.Record{PartitionKey: "plain", Data: []byte(fmt.Sprintf("plain %d", a))}
		ev.Records = append(ev.Records, shard.Record(plain.PartitionKey, plain.Data))
		want = append(want, plain)
	}
	wantDelivered(t, f.handle(t, 30*time.Second, ev))
	msgs := f.read(t, f.topic)
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages, want %d", len(msgs), len(want))
	}
	for i, m := range msgs {
		w := want[i]
		if m.Key() != w.PartitionKey || string(m.Payload()) != string(w.Data) {
			t.Fatalf("message %d: key %q payload %q, want %q %q", i, m.Key(), m.Payload(), w.PartitionKey, w.Data)
		}
		_, isSub := m.Properties()["kinesis.sub.sequence.number"]
		if isSub == (w.PartitionKey == "plain") {
			t.Errorf("message %d: sub-sequence property present=%v", i, isSub)
		}
		if got := m.Properties()["kinesis.explicit.hash.key"]; got != w.ExplicitHashKey {
			t.Errorf("message %d: explicit hash key %q, want %q", i, got, w.ExplicitHashKey)
		}
	}
	if s := f.sums.last(t); s.Aggregates != 5 || s.SubRecords != 250 || s.Published != 255 {
		t.Errorf("summary: aggregates %d sub-records %d published %d", s.Aggregates, s.SubRecords, s.Published)
	}
}

func TestPartitionedTopicKeepsPerKeyOrder(t *testing.T) {
	for name, hashing := range map[string]pulsar.HashingScheme{"javaStringHash": pulsar.JavaStringHash, "murmur3": pulsar.Murmur3_32Hash} {
		t.Run(name, func(t *testing.T) {
			topic := pulsartest.Topic(t, "partitioned")
			createPartitionedTopic(t, topic, 4)
			f := newFixture(t, relay.Options{Topic: streamtopic.MustParse(topic), Deaggregate: true}, producer.Options{Hashing: hashing})
			shard := kinesistest.NewShard("ordered", 2)
			var ev events.KinesisEvent
			for i := 0; i < 2000; i++ {
				ev.Records = append(ev.Records, shard.Record(fmt.Sprintf("key-%02d", i%20), []byte(strconv.Itoa(i))))
			}
			wantDelivered(t, f.handle(t, 60*time.Second, ev))
			msgs := f.read(t, topic)
			if len(msgs) != 2000 {
				t.Fatalf("got %d messages, want 2000", len(msgs))
			}
			checkPerKeyOrder(t, msgs, 1)
		})
	}
}

// checkPerKeyOrder checks that each key stays on one partition and that, per key and per run of the
// same records, sequence numbers increase.
func checkPerKeyOrder(t *testing.T, msgs []pulsar.Message, runs int) {
	t.Helper()
	last := map[string]*big.Int{}
	lastTopic := map[string]string{}
	seen := map[string]int{}
	for _, m := range msgs {
		seq, ok := new(big.Int).SetString(m.Properties()["kinesis.sequence.number"], 10)
		if !ok {
			t.Fatalf("message without a sequence number: %v", m.Properties())
		}
		k := m.Key()
		if prev, ok := lastTopic[k]; ok && prev != m.Topic() {
			t.Fatalf("key %s on two partitions: %s and %s", k, prev, m.Topic())
		}
		lastTopic[k] = m.Topic()
		if p := last[k]; p != nil && seq.Cmp(p) <= 0 {
			// A new run of the same records starts over: allowed only as often as there are runs.
			seen[k]++
			if seen[k] >= runs {
				t.Fatalf("key %s: sequence %s after %s", k, seq, p)
			}
		}
		last[k] = seq
	}
}

func TestLargeRecordIsChunkedInOrder(t *testing.T) {
	f := newFixture(t, relay.Options{Deaggregate: true}, producer.Options{Chunking: true})
	shard := kinesistest.NewShard("large", 4)
	big := make([]byte, 7<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	var ev events.KinesisEvent
	for i := 0; i < 50; i++ {
		ev.Records = append(ev.Records, shard.Record("same", []byte(fmt.Sprintf("before %d", i))))
	}
	ev.Records = append(ev.Records, shard.Record("same", big))
	for i := 0; i < 50; i++ {
		ev.Records = append(ev.Records, shard.Record("same", []byte(fmt.Sprintf("after %d", i))))
		ev.Records = append(ev.Records, shard.Record("other", []byte(fmt.Sprintf("other %d", i))))
	}
	wantDelivered(t, f.handle(t, 60*time.Second, ev))
	msgs := f.read(t, f.topic)
	if len(msgs) != len(ev.Records) {
		t.Fatalf("got %d messages, want %d", len(msgs), len(ev.Records))
	}
	var same [][]byte
	for _, m := range msgs {
		if m.Key() == "same" {
			same = append(same, m.Payload())
		}
	}
	if len(same) != 101 || !bytes.Equal(same[50], big) {
		t.Fatalf("7 MiB record not intact at its place among %d messages of its key", len(same))
	}
	for i := 0; i < 50; i++ {
		if string(same[i]) != fmt.Sprintf("before %d", i) || string(same[51+i]) != fmt.Sprintf("after %d", i) {
			t.Fatalf("key order broken around the large record at %d", i)
		}
	}
}

func TestWarmProducerIsReused(t *testing.T) {
	f := newFixture(t, relay.Options{}, producer.Options{})
	shard := kinesistest.NewShard("warm", 5)
	for i, wantCreated := range []int{1, 0, 0} {
		ev := kinesistest.Event(shard.Record("k", []byte{byte(i)}), shard.Record("k", []byte{byte(i), 1}))
		wantDelivered(t, f.handle(t, 30*time.Second, ev))
		if got := f.sums.last(t).ProducersCreated; got != wantCreated {
			t.Errorf("invocation %d created %d producers, want %d", i, got, wantCreated)
		}
	}
	if n := len(f.read(t, f.topic)); n != 6 {
		t.Errorf("got %d messages, want 6", n)
	}
}

func TestTopicPerStream(t *testing.T) {
	base := pulsartest.Topic(t, "stream")
	f := newFixture(t, relay.Options{Topic: streamtopic.MustParse(base + "-{stream}")}, producer.Options{})
	for _, stream := range []string{"orders", "payments"} {
		shard := kinesistest.NewShard(stream, 0)
		wantDelivered(t, f.handle(t, 30*time.Second, kinesistest.Event(shard.Record("k", []byte(stream)))))
	}
	for _, stream := range []string{"orders", "payments"} {
		msgs := f.read(t, base+"-"+stream)
		if len(msgs) != 1 || string(msgs[0].Payload()) != stream {
			t.Errorf("topic for %s: %d messages", stream, len(msgs))
		}
	}
}

// A record above the broker's 5 MiB limit with chunking off can never be published.
func TestTooLargeRecord(t *testing.T) {
	shardFor := func(name string) (*kinesistest.Shard, events.KinesisEvent) {
		shard := kinesistest.NewShard(name, 6)
		ev := kinesistest.Event(
			shard.Record("a", []byte("first")),
			shard.Record("a", make([]byte, 6<<20)),
			shard.Record("a", []byte("third")),
		)
		return shard, ev
	}

	t.Run("dead letter", func(t *testing.T) {
		dlq := pulsartest.Topic(t, "dlq")
		f := newFixture(t, relay.Options{DeadLetterTopic: streamtopic.MustParse(dlq)}, producer.Options{Chunking: false})
		_, ev := shardFor("toolarge-dlq")
		wantDelivered(t, f.handle(t, 60*time.Second, ev))
		main := f.read(t, f.topic)
		if len(main) != 2 || string(main[0].Payload()) != "first" || string(main[1].Payload()) != "third" {
			t.Fatalf("main topic: %d messages", len(main))
		}
		dead := f.read(t, dlq)
		if len(dead) != 1 || len(dead[0].Payload()) != 6<<20 {
			t.Fatalf("dead-letter topic: %d messages", len(dead))
		}
		p := dead[0].Properties()
		if p[relay.PropDeadLetterTopic] != f.topic || p[relay.PropDeadLetterError] == "" ||
			p["kinesis.sequence.number"] != ev.Records[1].Kinesis.SequenceNumber {
			t.Errorf("dead letter properties %v", p)
		}
		if s := f.sums.last(t); s.DeadLettered != 1 || s.Published != 2 || s.Outcome != relay.OutcomeDelivered {
			t.Errorf("summary %+v", s)
		}
	})

	t.Run("no dead-letter topic", func(t *testing.T) {
		f := newFixture(t, relay.Options{}, producer.Options{Chunking: false})
		_, ev := shardFor("toolarge-fail")
		wantFailedAt(t, f.handle(t, 60*time.Second, ev), ev.Records[1].Kinesis.SequenceNumber)
		msgs := f.read(t, f.topic)
		if len(msgs) != 1 || string(msgs[0].Payload()) != "first" {
			t.Fatalf("got %d messages; only the record before the failure may be published", len(msgs))
		}
		if s := f.sums.last(t); s.Outcome != relay.OutcomePartial || s.FailedRecords != 2 || s.Cause == nil {
			t.Errorf("summary %+v", s)
		}
	})
}

// Nothing listens on the broker port: the invocation must report the first record failed and return
// before its deadline.
func TestBrokerDownReturnsBeforeDeadline(t *testing.T) {
	const timeout, margin = 3 * time.Second, 500 * time.Millisecond
	pool := producer.NewPool(producer.Options{ServiceURL: "pulsar://127.0.0.1:1", ConnectionTimeout: time.Second})
	t.Cleanup(func() { pool.Close(context.Background()) })
	sums := &summaries{}
	r := relay.New(relay.Options{Topic: streamtopic.MustParse(pulsartest.Topic(t, "down")), DeadlineMargin: margin, Properties: relay.AllProperties}, senders.FromPool(pool), nil, sums, nil)
	shard := kinesistest.NewShard("down", 7)
	ev := kinesistest.Event(shard.Record("k", []byte("1")), shard.Record("k", []byte("2")))

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	resp, err := r.Handle(ctx, ev)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	wantFailedAt(t, resp, ev.Records[0].Kinesis.SequenceNumber)
	if elapsed > timeout-margin+200*time.Millisecond {
		t.Errorf("returned after %v; the deadline was %v with a %v margin", elapsed, timeout, margin)
	}
	if s := sums.last(t); s.Outcome != relay.OutcomeFailed || s.FailedRecords != 2 || !s.DeadlineStop {
		t.Errorf("summary %+v", s)
	}
}

func createPartitionedTopic(t *testing.T, topic string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := localenv.Require(t).Admin().CreatePartitionedTopic(ctx, topic, partitions); err != nil {
		t.Fatal(err)
	}
}

// A terminated topic with a dead-letter topic, thousands of records and a short timeout: the batch
// completes, each record on the dead-letter topic with its reason, and every invocation makes progress.
// (One invocation usually dead-letters it all; under the race detector on a busy machine the retries
// may have to finish it.) Before, every message made its own failing producer creation, publishing used
// up the time, the dead letters were skipped at the stop deadline, and every retry named record 0: the
// shard stalled until its records expired.
func TestTerminatedTopicAtScaleIsDeadLettered(t *testing.T) {
	const records, timeout = 6000, 5 * time.Second
	tp := pulsartest.Topic(t, "terminated")
	dlq := tp + "-dlq"
	admin := localenv.Require(t).Admin()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.CreateTopic(ctx, tp); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.TerminateTopic(ctx, tp); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler) // one warning per dead letter, the client's own errors
	pool := producer.NewPool(producer.Options{ServiceURL: serviceURL(t), Logger: quiet})
	t.Cleanup(func() { pool.Close(context.Background()) })
	sums := &summaries{}
	r := relay.New(relay.Options{Topic: streamtopic.MustParse(tp), DeadLetterTopic: streamtopic.MustParse(dlq), Properties: relay.AllProperties}, senders.FromPool(pool), nil, sums, quiet)
	shard := kinesistest.NewShard("terminated", 3)
	var ev events.KinesisEvent
	bySeq := map[string]int{}
	for i := range records {
		ev.Records = append(ev.Records, shard.Record(fmt.Sprintf("k%d", i%16), fmt.Appendf(nil, "record %d", i)))
		bySeq[ev.Records[i].Kinesis.SequenceNumber] = i
	}

	// Retry as the event source mapping does, from the reported record.
	for next, invocation := 0, 1; next >= 0; invocation++ {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		resp, err := r.Handle(ctx, events.KinesisEvent{Records: ev.Records[next:]})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		s := sums.last(t)
		t.Logf("invocation %d, records %d..: %s in %v, %d dead-lettered, %d producer(s) created", invocation, next,
			s.Outcome, s.Duration.Round(time.Millisecond), s.DeadLettered, s.ProducersCreated)
		if s.Duration >= timeout {
			t.Fatalf("invocation %d took %v of %v", invocation, s.Duration, timeout)
		}
		if len(resp.BatchItemFailures) == 0 {
			break
		}
		failed := bySeq[resp.BatchItemFailures[0].ItemIdentifier]
		if failed <= next || invocation == 5 {
			t.Fatalf("invocation %d of records %d.. reported record %d (cause %v): the shard is not making progress",
				invocation, next, failed, s.Cause)
		}
		next = failed
	}
	seen := map[string]bool{}
	for _, m := range pulsartest.ReadAll(t, pulsartest.Client(t, serviceURL(t)), dlq, 3*time.Minute) {
		p := m.Properties()
		if p[relay.PropDeadLetterTopic] != tp || !strings.Contains(p[relay.PropDeadLetterError], "TopicTerminated") {
			t.Fatalf("dead letter %s: %s=%q %s=%q", m.ID(), relay.PropDeadLetterTopic, p[relay.PropDeadLetterTopic],
				relay.PropDeadLetterError, p[relay.PropDeadLetterError])
		}
		seen[p["kinesis.sequence.number"]] = true
	}
	for i, rec := range ev.Records {
		if !seen[rec.Kinesis.SequenceNumber] {
			t.Fatalf("record %d is not on the dead-letter topic (%d of %d are)", i, len(seen), records)
		}
	}
}
