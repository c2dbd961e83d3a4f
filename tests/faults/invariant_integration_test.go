//go:build integration

package faults

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/internal/kpl"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/tests/kinesistest"
)

// batchSpec describes the records of one shard a scenario sends.
type batchSpec struct {
	stream string
	shard  int
	n      int // Kinesis records
	size   int // payload bytes of a plain record
	keys   int // distinct partition keys, cycled
	// aggregateEvery makes every k-th record a KPL aggregate of aggregateOf user records (0: none).
	aggregateEvery, aggregateOf int
	// largeEvery makes every k-th record larger than a batch may hold (largeSize bytes), so it goes
	// through the unbatched producer and the per-key barrier (0: none).
	largeEvery, largeSize int
	// tooLarge lists record indexes made larger than the broker accepts (maxMessageSize): with
	// chunking on (the default) they are sent in chunks, with chunking off they are rejected.
	tooLarge []int
}

// want is one message the batch must produce: where it goes and what it carries.
type want struct {
	record, sub int // sub is -1 for a plain record
	key         string
	payload     []byte
	props       map[string]string
	deadLetter  bool // expected on the dead-letter topic instead
}

func (w *want) id() string { return fmt.Sprintf("%d/%d", w.record, w.sub) }

// ledger follows one batch through the fault and the retries: what each invocation reported, what
// reached Pulsar, and whether the promise held.
type ledger struct {
	t        *testing.T
	name     string
	fb       *faultBroker
	topic    string
	dlt      string // dead-letter topic, "" when none
	records  []events.KinesisEventRecord
	msgs     []want
	bySeq    map[string]int // sequence number -> record index
	firstMsg []int          // record i owns msgs[firstMsg[i]:firstMsg[i+1]]
	shard    int
	// shardID: messages of other shards on the topic (warm-up, concurrent shards) are not this batch's.
	shardID string

	done        []bool // acknowledged done by an invocation
	invocations int
	firstFailed int // record the first invocation reported, -1 when none or a function error
	confirmed   int // records the first invocation acknowledged done
	retried     int // records sent again by the replays
	violations  []string
	recovered   time.Duration
	pending     int // where a scenario's retries go on from
	duplicates  int
	missing     int
}

func newLedger(t *testing.T, fb *faultBroker, topic, dlt string, spec batchSpec) *ledger {
	t.Helper()
	l := &ledger{t: t, name: t.Name(), fb: fb, topic: topic, dlt: dlt, bySeq: map[string]int{}, firstFailed: -1, shard: spec.shard}
	if spec.keys == 0 {
		spec.keys = 8
	}
	shard := kinesistest.NewShard(spec.stream, spec.shard)
	l.shardID = shard.ID
	tooLarge := map[int]bool{}
	for _, i := range spec.tooLarge {
		tooLarge[i] = true
	}
	for i := range spec.n {
		l.firstMsg = append(l.firstMsg, len(l.msgs))
		key := fmt.Sprintf("%s-key-%d", shard.ID, i%spec.keys)
		var rec events.KinesisEventRecord
		switch {
		case spec.aggregateEvery > 0 && i%spec.aggregateEvery == spec.aggregateEvery-1:
			user := make([]kpl.Record, spec.aggregateOf)
			for j := range user {
				user[j] = kpl.Record{PartitionKey: fmt.Sprintf("%s-key-%d", shard.ID, (i+j)%spec.keys), Data: payload(i, j, 64)}
			}
			var err error
			if rec, err = shard.Aggregate(user); err != nil {
				t.Fatal(err)
			}
			for j, u := range user {
				l.msgs = append(l.msgs, want{record: i, sub: j, key: u.PartitionKey, payload: u.Data,
					props: props(rec, u.PartitionKey, j)})
			}
		default:
			size := spec.size
			if spec.largeEvery > 0 && i%spec.largeEvery == spec.largeEvery-1 {
				size = spec.largeSize
			}
			if tooLarge[i] {
				size = maxMessageSize + 64*1024
			}
			rec = shard.Record(key, payload(i, -1, size))
			l.msgs = append(l.msgs, want{record: i, sub: -1, key: key, payload: rec.Kinesis.Data,
				props: props(rec, key, -1), deadLetter: tooLarge[i] && dlt != ""})
		}
		l.bySeq[rec.Kinesis.SequenceNumber] = i
		l.records = append(l.records, rec)
	}
	l.firstMsg = append(l.firstMsg, len(l.msgs))
	l.done = make([]bool, len(l.records))
	return l
}

// payload is recognisable (record and sub-record index) and otherwise random.
func payload(i, sub, size int) []byte {
	p := fmt.Appendf(nil, "record-%d-%d-", i, sub)
	if size > len(p) {
		fill := make([]byte, size-len(p))
		_, _ = rand.Read(fill)
		p = append(p, fill...)
	}
	return p
}

// props are the kinesis.* properties the relay attaches with its default configuration.
func props(rec events.KinesisEventRecord, key string, sub int) map[string]string {
	shardID, _, _ := strings.Cut(rec.EventID, ":")
	p := map[string]string{
		"kinesis.sequence.number":   rec.Kinesis.SequenceNumber,
		"kinesis.partition.key":     key,
		"kinesis.arrival.timestamp": rec.Kinesis.ApproximateArrivalTimestamp.UTC().Format("2006-01-02T15:04:05.000Z"),
		"kinesis.encryption.type":   "NONE",
		"kinesis.shard.id":          shardID,
		"kinesis.stream.arn":        rec.EventSourceArn,
	}
	if sub >= 0 {
		p["kinesis.sub.sequence.number"] = strconv.Itoa(sub)
	}
	return p
}

// event is the batch from record from on, as the ESM delivers it after a checkpoint.
func (l *ledger) event(from int) events.KinesisEvent {
	return events.KinesisEvent{Records: slices.Clone(l.records[from:])}
}

// apply records what the invocation of l.records[from:] answered and returns where the ESM goes on
// from: the same record after a function error, the reported record, or -1 when the batch is done.
func (l *ledger) apply(from int, o outcome) int {
	l.invocations++
	first := l.invocations == 1
	if o.late {
		l.violate("invocation %d (records %d..) returned after its deadline (%v)", l.invocations, from, o.took)
	}
	if o.fnErr != nil {
		// A function error fails the whole batch (kinesis-esm.md §4).
		if first {
			l.confirmed, l.firstFailed = 0, from
		}
		return from
	}
	failures := o.resp.BatchItemFailures
	next := -1
	switch {
	case len(failures) == 0:
	case len(failures) > 1:
		l.violate("invocation %d reported %d batch item failures; the relay reports only the first record not done", l.invocations, len(failures))
		next = from
	default:
		id := failures[0].ItemIdentifier
		idx, ok := l.bySeq[id]
		switch {
		case id == "":
			l.violate("invocation %d reported an empty itemIdentifier (a whole-batch failure)", l.invocations)
			next = from
		case !ok || idx < from:
			l.violate("invocation %d reported %q, not a record of its batch (records %d..)", l.invocations, id, from)
			next = from
		default:
			next = idx
		}
	}
	end := len(l.records)
	if next >= 0 {
		end = next
	}
	for i := from; i < end; i++ {
		l.done[i] = true
		l.receivedBefore(o, i)
	}
	if first {
		l.confirmed = end - from
		l.firstFailed = next
	}
	return next
}

// receivedBefore asserts that every message of record i, which invocation o acknowledged as done, had
// its broker receipt before o returned: in Lambda the environment may be reclaimed right after the
// response, and a message the warm producer still holds is then lost, even if a resend would have
// reached Pulsar later.
func (l *ledger) receivedBefore(o outcome, i int) {
	if o.receipts == nil {
		return
	}
	seq := l.records[i].Kinesis.SequenceNumber
	for j := l.firstMsg[i]; j < l.firstMsg[i+1]; j++ {
		w := &l.msgs[j]
		sub := ""
		if w.sub >= 0 {
			sub = strconv.Itoa(w.sub)
		}
		at, ok := o.receipts.receivedAt(l.shardID, seq, sub)
		switch {
		case !ok:
			l.violate("invocation %d acknowledged record %d done, but message %s had no broker receipt when it returned", l.invocations, i, w.id())
		case at.After(o.returned):
			l.violate("invocation %d acknowledged record %d done, but message %s had its broker receipt %v after the response: "+
				"a reclaimed environment would have lost it", l.invocations, i, w.id(), at.Sub(o.returned).Round(time.Microsecond))
		}
	}
}

// check reads the topic (and the dead-letter topic) and asserts the invariant: every record
// acknowledged as done is there with its key, payload and properties; per key, the first delivery of
// each message follows Kinesis order; nothing that is not in the batch appears. With complete, every
// record must be there.
func (l *ledger) check(phase string, complete bool) {
	l.t.Helper()
	type seen struct {
		count   int
		deadLtr bool
	}
	found := map[string]*seen{}
	index := map[string]int{}
	for i := range l.msgs {
		index[l.msgs[i].id()] = i
	}
	total := 0
	scan := func(topic string, deadLetter bool) {
		lastFirst := map[string]int{} // key -> index of the last message first seen
		for _, m := range l.fb.read(l.t, topic) {
			total++
			p := m.Properties()
			if p["kinesis.shard.id"] != l.shardID {
				continue
			}
			seq := p["kinesis.sequence.number"]
			rec, ok := l.bySeq[seq]
			sub := -1
			if s, has := p["kinesis.sub.sequence.number"]; has {
				sub, _ = strconv.Atoi(s)
			}
			i, known := index[fmt.Sprintf("%d/%d", rec, sub)]
			if !ok || !known {
				l.violate("%s: %s holds a message that is not in the batch (sequence %q, sub %d)", phase, topic, seq, sub)
				continue
			}
			w := &l.msgs[i]
			l.compare(phase, topic, m, w, deadLetter)
			s := found[w.id()]
			if s == nil {
				s = &seen{deadLtr: deadLetter}
				found[w.id()] = s
				if last, ok := lastFirst[w.key]; ok && last > i {
					l.violate("%s: key %q: message %s first delivered after message %s (Kinesis order broken)",
						phase, w.key, w.id(), l.msgs[last].id())
				}
				lastFirst[w.key] = i
			}
			s.count++
		}
	}
	scan(l.topic, false)
	if l.dlt != "" {
		scan(l.dlt, true)
	}
	l.missing, l.duplicates = 0, 0
	for i := range l.msgs {
		w := &l.msgs[i]
		s := found[w.id()]
		if s == nil {
			l.missing++
			switch {
			case l.done[w.record]:
				l.violate("%s: record %d (message %s) was acknowledged done but is not in Pulsar: LOST", phase, w.record, w.id())
			case complete:
				l.violate("%s: record %d (message %s) is still missing after the retries", phase, w.record, w.id())
			}
			continue
		}
		if s.deadLtr != w.deadLetter {
			l.violate("%s: message %s on the dead-letter topic: %v, want %v", phase, w.id(), s.deadLtr, w.deadLetter)
		}
		l.duplicates += s.count - 1
	}
	l.t.Logf("%s: %d messages read, %d of %d distinct expected messages missing, %d duplicates", phase, total, l.missing, len(l.msgs), l.duplicates)
}

// compare checks one message against what the record must produce.
func (l *ledger) compare(phase, topic string, m pulsar.Message, w *want, deadLetter bool) {
	if m.Key() != w.key {
		l.violate("%s: message %s key %q, want %q", phase, w.id(), m.Key(), w.key)
	}
	if !bytes.Equal(m.Payload(), w.payload) {
		l.violate("%s: message %s payload differs (%d bytes, want %d)", phase, w.id(), len(m.Payload()), len(w.payload))
	}
	got := maps.Clone(m.Properties())
	if deadLetter {
		if got[relay.PropDeadLetterTopic] != l.topic || got[relay.PropDeadLetterError] == "" {
			l.violate("%s: dead-lettered message %s: %s=%q %s=%q", phase, w.id(), relay.PropDeadLetterTopic,
				got[relay.PropDeadLetterTopic], relay.PropDeadLetterError, got[relay.PropDeadLetterError])
		}
		delete(got, relay.PropDeadLetterTopic)
		delete(got, relay.PropDeadLetterError)
	}
	if !maps.Equal(got, w.props) {
		l.violate("%s: message %s on %s properties %v, want %v", phase, w.id(), topic, got, w.props)
	}
}

// replay retries the batch as the event source mapping does, from next, until it is done or
// attempts run out (the caller has healed the fault, or asserts that it cannot be). It returns the
// record still failing, -1 when done.
func (l *ledger) replay(inv invoker, next, attempts int) int {
	l.t.Helper()
	started := time.Now()
	for a := 0; a < attempts && next >= 0; a++ {
		l.retried += len(l.records) - next
		o := inv.invoke(l.t, l.event(next))
		next = l.apply(next, o)
		l.t.Logf("replay %d: %v, next %d", a+1, describe(o), next)
	}
	l.recovered = time.Since(started)
	return next
}

// first runs the invocation under fault, checks the invariant on what it left, and returns where
// the ESM goes on from.
func (l *ledger) first(inv invoker) (int, outcome) {
	l.t.Helper()
	o := inv.invoke(l.t, l.event(0))
	next := l.apply(0, o)
	l.t.Logf("first invocation: %v, next %d", describe(o), next)
	return next, o
}

func describe(o outcome) string {
	if o.fnErr != nil {
		return fmt.Sprintf("function error after %v: %v", o.took.Round(time.Millisecond), o.fnErr)
	}
	return fmt.Sprintf("returned after %v reporting %d record(s)", o.took.Round(time.Millisecond), len(o.resp.BatchItemFailures))
}

func (l *ledger) violate(format string, args ...any) {
	l.violations = append(l.violations, fmt.Sprintf(format, args...))
}

// finish reports the counts and fails the test on any violation of the promise.
func (l *ledger) finish() {
	l.t.Helper()
	failed := 0
	if l.firstFailed >= 0 {
		failed = len(l.records) - l.firstFailed
	}
	l.t.Logf("RESULT %s records=%d messages=%d confirmed=%d reported=%d retried=%d invocations=%d missing=%d duplicates=%d recovery=%v",
		l.name, len(l.records), len(l.msgs), l.confirmed, failed, l.retried, l.invocations, l.missing, l.duplicates, l.recovered.Round(time.Millisecond))
	if len(l.violations) > 0 {
		if len(l.violations) > 20 {
			l.violations = append(l.violations[:20], fmt.Sprintf("... and %d more", len(l.violations)-20))
		}
		l.t.Fatalf("INVARIANT VIOLATED (%d):\n  %s", len(l.violations), strings.Join(l.violations, "\n  "))
	}
}
