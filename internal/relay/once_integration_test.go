//go:build integration

package relay_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/internal/audit"
	"github.com/streambridge/kinesis-pulsar/internal/kpl"
	"github.com/streambridge/kinesis-pulsar/internal/producer"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/internal/relay/senders"
	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
	"github.com/streambridge/kinesis-pulsar/tests/kinesistest"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

// Namespaces of the shared broker for these tests: one deduplicating, one not.
const (
	dedupNamespace   = "public/kp-once-dedup"
	noDedupNamespace = "public/kp-once-nodedup"
)

// onceEnv is a topic in a namespace of its own and an audit table: what the processes of one test share.
type onceEnv struct {
	partitioned bool // the topic is read partition after partition: order holds per partition only
	url         string
	topic       string
	db          *dynamodb.Client
	table       string
}

func newOnceEnvB(b *testing.B) *onceEnv { return newOnceEnv(b, true) }

func slogDiscard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newOnceEnv(t testing.TB, deduplicate bool) *onceEnv {
	t.Helper()
	env := localenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := noDedupNamespace
	if deduplicate {
		ns = dedupNamespace
	}
	if err := env.Admin().EnsureNamespace(ctx, ns, deduplicate); err != nil {
		t.Fatal(err)
	}
	cfg, err := env.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	e := &onceEnv{
		url:   env.PulsarServiceURL,
		topic: strings.Replace(pulsartest.Topic(t, "once"), "public/default", ns, 1),
		db:    dynamodb.NewFromConfig(cfg),
		table: "once-" + hex.EncodeToString(b),
	}
	if err := audit.CreateTable(ctx, e.db, e.table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = e.db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &e.table})
	})
	return e
}

// process is one fresh Lambda execution environment: its own client, relay and state store.
type process struct {
	relay *relay.Relay
	pool  *producer.Pool
	sums  *summaries
	store *flakyStore
}

func (e *onceEnv) process(t *testing.T, opts relay.Options) *process {
	return e.newProcess(t, opts, false)
}

// newProcess with crash dies before its checkpoint: the sequence state's second write (the first
// reserves the ids) and the audit item are never written.
func (e *onceEnv) newProcess(t *testing.T, opts relay.Options, crash bool) *process {
	t.Helper()
	opts.Topic, opts.Guarantee, opts.Properties, opts.Now = streamtopic.MustParse(e.topic), relay.EffectivelyOnce, relay.AllProperties, localenv.Now
	opts.Deaggregate = true
	pool := producer.NewPool(producer.Options{ServiceURL: e.url})
	t.Cleanup(func() { pool.Close(context.Background()) })
	p := &process{pool: pool, sums: &summaries{}, store: &flakyStore{Sequences: audit.NewSequences(e.db, e.table, 0)}}
	var auditor relay.Auditor = audit.New(e.db, audit.Options{Table: e.table})
	if crash {
		p.store.failWriteNo, auditor = 2, nil
	}
	p.relay = relay.New(opts, senders.FromPool(pool), auditor, p.sums, nil)
	p.relay.EnableEffectivelyOnce(p.store, senders.FromPool(pool))
	return p
}

func (p *process) handle(t *testing.T, timeout time.Duration, ev events.KinesisEvent) events.KinesisEventResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := p.relay.Handle(ctx, ev)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return resp
}

// flakyStore is the real sequence store, with a crash injected before the checkpoint write: a real
// DynamoDB cannot be made to lose exactly that write.
type flakyStore struct {
	*audit.Sequences
	writes      atomic.Int32
	failWriteNo int32 // the write (1-based) that fails; 0: none
}

var errCrash = errors.New("injected: the process died before this write")

func (s *flakyStore) Write(ctx context.Context, arn, shard, req string, now time.Time, prev, next relay.Sequence) (relay.Sequence, error) {
	if n := s.writes.Add(1); n == s.failWriteNo {
		return relay.Sequence{}, errCrash
	}
	return s.Sequences.Write(ctx, arn, shard, req, now, prev, next)
}

// onceBatch is n records of one shard, every tenth a KPL aggregate of three user records; it returns
// the payloads in the order they must appear on the topic.
func onceBatch(t *testing.T, stream string, n int) (events.KinesisEvent, []string) {
	t.Helper()
	shard := kinesistest.NewShard(stream, 0)
	var ev events.KinesisEvent
	var want []string
	for i := range n {
		if i%10 == 9 {
			var user []kpl.Record
			for j := range 3 {
				p := fmt.Sprintf("record-%05d-%d", i, j)
				user = append(user, kpl.Record{PartitionKey: fmt.Sprintf("k%d", j), Data: []byte(p)})
				want = append(want, p)
			}
			rec, err := shard.Aggregate(user)
			if err != nil {
				t.Fatal(err)
			}
			ev.Records = append(ev.Records, rec)
			continue
		}
		p := fmt.Sprintf("record-%05d", i)
		ev.Records = append(ev.Records, shard.Record(fmt.Sprintf("k%d", i%7), []byte(p)))
		want = append(want, p)
	}
	return ev, want
}

// exactlyOnce checks that the topic holds every payload of want once, in order.
func (e *onceEnv) exactlyOnce(t *testing.T, want []string) {
	t.Helper()
	msgs := pulsartest.ReadAll(t, pulsartest.Client(t, e.url), e.topic, time.Minute)
	got := make([]string, len(msgs))
	count := map[string]int{}
	for i, m := range msgs {
		got[i] = string(m.Payload())
		count[got[i]]++
	}
	var dups, missing int
	for _, w := range want {
		switch count[w] {
		case 0:
			missing++
		case 1:
		default:
			dups += count[w] - 1
		}
	}
	if dups != 0 || missing != 0 || len(got) != len(want) {
		t.Fatalf("topic holds %d messages for %d records: %d duplicates, %d missing", len(got), len(want), dups, missing)
	}
	if e.partitioned {
		return
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d is %q, want %q (order)", i, got[i], want[i])
		}
	}
}

// retryUntilDelivered plays Lambda: it hands the records from the reported failure to fresh processes
// until a response reports none.
func (e *onceEnv) retryUntilDelivered(t *testing.T, ev events.KinesisEvent, resp events.KinesisEventResponse) {
	t.Helper()
	for attempt := 0; len(resp.BatchItemFailures) > 0; attempt++ {
		if attempt == 10 {
			t.Fatalf("still failing after %d retries: %v", attempt, resp.BatchItemFailures)
		}
		from := resp.BatchItemFailures[0].ItemIdentifier
		i := 0
		for ev.Records[i].Kinesis.SequenceNumber != from {
			i++
		}
		ev = kinesistest.Event(ev.Records[i:]...)
		resp = e.process(t, relay.Options{}).handle(t, time.Minute, ev)
	}
}

// A response lost (or the same batch handed to two fresh processes one after the other): the second
// answers every record done without publishing, and its probe is dropped by the broker.
func TestOnceSameBatchTwice(t *testing.T) {
	e := newOnceEnv(t, true)
	ev, want := onceBatch(t, "once-twice", 200)
	a := e.process(t, relay.Options{})
	wantDelivered(t, a.handle(t, time.Minute, ev))
	if s := a.sums.last(t); s.Published != len(want) || s.AlreadyDelivered != 0 {
		t.Fatalf("first process: published %d, already delivered %d; want %d, 0", s.Published, s.AlreadyDelivered, len(want))
	}
	b := e.process(t, relay.Options{})
	wantDelivered(t, b.handle(t, time.Minute, ev))
	s := b.sums.last(t)
	if s.AlreadyDelivered != len(ev.Records) || s.Published != 0 || s.DuplicatesDropped != 1 || s.DeduplicationOff {
		t.Fatalf("second process: already delivered %d, published %d, duplicates dropped %d, deduplication off %v; want %d, 0, 1 (the probe), false",
			s.AlreadyDelivered, s.Published, s.DuplicatesDropped, s.DeduplicationOff, len(ev.Records))
	}
	// The next batch of the shard continues after it.
	e.exactlyOnce(t, want)
}

// A crash after publishing, before the checkpoint: the retry gives the same records the same ids and
// the broker drops every one of them; on a partitioned topic too (each partition deduplicates on its
// own, and a key goes to the same partition on every attempt).
func TestOnceCrashBeforeCheckpoint(t *testing.T) {
	for _, partitions := range []int{0, 3} {
		t.Run(fmt.Sprintf("partitions=%d", partitions), func(t *testing.T) { crashBeforeCheckpoint(t, partitions) })
	}
}

func crashBeforeCheckpoint(t *testing.T, partitions int) {
	e := newOnceEnv(t, true)
	if partitions > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := localenv.Require(t).Admin().CreatePartitionedTopic(ctx, e.topic, partitions); err != nil {
			t.Fatal(err)
		}
		e.partitioned = true
	}
	ev, want := onceBatch(t, "once-crash", 200)
	a := e.newProcess(t, relay.Options{}, true)
	resp := a.handle(t, time.Minute, ev)
	if s := a.sums.last(t); s.Published != len(want) {
		t.Fatalf("crashing process published %d, want %d", s.Published, len(want))
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != ev.Records[0].Kinesis.SequenceNumber {
		t.Fatalf("without its checkpoint the whole batch must be retried, got %v", resp.BatchItemFailures)
	}
	// Lambda retries the whole batch (a crash has no response) on a fresh process.
	b := e.process(t, relay.Options{})
	wantDelivered(t, b.handle(t, time.Minute, ev))
	if s := b.sums.last(t); s.DuplicatesDropped != len(want) || s.AlreadyDelivered != 0 {
		t.Fatalf("retry: %d duplicates dropped, %d already delivered; want %d, 0", s.DuplicatesDropped, s.AlreadyDelivered, len(want))
	}
	e.exactlyOnce(t, want)
}

// A partial failure (the deadline stops publishing in the middle, with messages in flight), then
// Lambda's retry from the reported record, then the whole batch once more (a lost response).
func TestOncePartialFailureThenRetry(t *testing.T) {
	e := newOnceEnv(t, true)
	var ev events.KinesisEvent
	var want []string
	var resp events.KinesisEventResponse
	// The deadline falls somewhere in the batch; on a slow or a fast machine it may miss it: try again
	// on a fresh shard with another margin.
	for attempt, budget := range []time.Duration{300, 150, 600, 75, 1200} {
		ev, want = onceBatch(t, fmt.Sprintf("once-partial-%d", attempt), 3000)
		a := e.process(t, relay.Options{DeadlineMargin: time.Second})
		resp = a.handle(t, time.Second+budget*time.Millisecond, ev)
		s := a.sums.last(t)
		if s.Outcome == relay.OutcomePartial {
			t.Logf("partial failure: %d published, %d records failed", s.Published, s.FailedRecords)
			break
		}
		t.Logf("budget %d ms: outcome %s, trying again", budget, s.Outcome)
		e.retryUntilDelivered(t, ev, resp) // leave the shard's topic complete before checking the next
		e.topic = strings.Replace(e.topic, fmt.Sprintf("-a%d", attempt), "", 1) + fmt.Sprintf("-a%d", attempt+1)
		resp = events.KinesisEventResponse{}
	}
	if len(resp.BatchItemFailures) == 0 {
		t.Fatal("no partial failure in any attempt")
	}
	e.retryUntilDelivered(t, ev, resp)
	b := e.process(t, relay.Options{})
	wantDelivered(t, b.handle(t, time.Minute, ev))
	if s := b.sums.last(t); s.AlreadyDelivered != len(ev.Records) {
		t.Fatalf("the whole batch again: %d already delivered, want %d", s.AlreadyDelivered, len(ev.Records))
	}
	e.exactlyOnce(t, want)
}

// A broker that does not deduplicate: the probe of a retried batch is stored again and reported.
func TestOnceDetectsBrokerWithoutDeduplication(t *testing.T) {
	e := newOnceEnv(t, false)
	ev, _ := onceBatch(t, "once-nodedup", 20)
	wantDelivered(t, e.process(t, relay.Options{}).handle(t, time.Minute, ev))
	b := e.process(t, relay.Options{})
	wantDelivered(t, b.handle(t, time.Minute, ev))
	if s := b.sums.last(t); !s.DeduplicationOff || s.DuplicatesDropped != 0 {
		t.Fatalf("deduplication off %v, duplicates dropped %d; want true, 0", s.DeduplicationOff, s.DuplicatesDropped)
	}
}

// BenchmarkGuarantee publishes batches of 1,000 records of 1 KiB through the relay in both modes, in
// the same run, against the shared broker (a namespace with deduplication on, for both): records/s
// is the figure docs/effectively-once.md quotes.
//
//	go test -tags integration -run '^$' -bench Guarantee -benchtime 20x ./internal/relay
func BenchmarkGuarantee(b *testing.B) {
	const n, size = 1000, 1024
	for _, g := range []struct {
		name      string
		guarantee relay.Guarantee
	}{{"atLeastOnce", relay.AtLeastOnce}, {"effectivelyOnce", relay.EffectivelyOnce}} {
		b.Run(g.name, func(b *testing.B) {
			e := newOnceEnvB(b)
			opts := relay.Options{Topic: streamtopic.MustParse(e.topic), Guarantee: g.guarantee, Properties: relay.AllProperties, Now: localenv.Now}
			pool := producer.NewPool(producer.Options{ServiceURL: e.url})
			defer pool.Close(context.Background())
			r := relay.New(opts, senders.FromPool(pool), audit.New(e.db, audit.Options{Table: e.table}), nil, slogDiscard())
			r.EnableEffectivelyOnce(audit.NewSequences(e.db, e.table, 0), senders.FromPool(pool))
			shard := kinesistest.NewShard("bench-"+g.name, 0)
			data := make([]byte, size)
			batch := func() events.KinesisEvent {
				var ev events.KinesisEvent
				for i := range n {
					ev.Records = append(ev.Records, shard.Record(fmt.Sprintf("key-%03d", i%100), data))
				}
				return ev
			}
			// Warm: the client connects, the topic exists.
			if resp, err := r.Handle(context.Background(), batch()); err != nil || len(resp.BatchItemFailures) > 0 {
				b.Fatalf("warm-up: %v %v", resp, err)
			}
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				ev := batch()
				b.StartTimer()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				resp, err := r.Handle(ctx, ev)
				cancel()
				if err != nil || len(resp.BatchItemFailures) > 0 {
					b.Fatalf("%v %v", resp, err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
