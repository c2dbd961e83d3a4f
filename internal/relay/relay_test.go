package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/internal/kpl"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
	"github.com/streambridge/kinesis-pulsar/tests/kinesistest"
	"github.com/streambridge/kinesis-pulsar/tests/pulsarfake"
)

// These tests inject faults a real broker cannot produce on demand (a chosen message failing, answers
// out of order, an answer that never comes). The same paths run against a real broker in
// relay_integration_test.go and tests/faults.

type recordingAuditor struct {
	batches []relay.AuditRecord
	err     error
}

func (a *recordingAuditor) Record(_ context.Context, b relay.AuditRecord) error {
	a.batches = append(a.batches, b)
	return a.err
}

type lastSummary struct{ s *relay.Summary }

func (l *lastSummary) Observe(_ context.Context, s *relay.Summary) { l.s = s }

const topic = "persistent://public/default/t"

func plainEvent(n int) events.KinesisEvent {
	shard := kinesistest.NewShard("s", 0)
	var ev events.KinesisEvent
	for i := 0; i < n; i++ {
		ev.Records = append(ev.Records, shard.Record(fmt.Sprintf("k%d", i%3), []byte(fmt.Sprintf("r%d", i))))
	}
	return ev
}

func run(t *testing.T, opts relay.Options, p relay.Senders, a relay.Auditor, ev events.KinesisEvent, timeout time.Duration) (events.KinesisEventResponse, *relay.Summary, error) {
	t.Helper()
	if opts.Topic.IsZero() {
		opts.Topic = streamtopic.MustParse(topic)
	}
	obs := &lastSummary{}
	r := relay.New(opts, p, a, obs, nil)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := r.Handle(ctx, ev)
	return resp, obs.s, err
}

func failedAt(resp events.KinesisEventResponse) string {
	if len(resp.BatchItemFailures) != 1 {
		return fmt.Sprintf("%d failures", len(resp.BatchItemFailures))
	}
	return resp.BatchItemFailures[0].ItemIdentifier
}

var errTransient = errors.New("connection reset")

func TestResponse(t *testing.T) {
	tooBig := pulsar.ErrMessageTooLarge
	for _, tc := range []struct {
		name       string
		dlq        bool
		answer     pulsarfake.Answer
		wantFailed int // record index, -1 none
		wantPub    int
		wantDead   int
	}{
		{"all confirmed", false, nil, -1, 10, 0},
		{"answers out of order", false, func(_ string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
			return time.Duration(10-n) * time.Millisecond, nil, false
		}, -1, 10, 0},
		{"transient failure in the middle", false, func(_ string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
			if n == 4 {
				return 0, errTransient, false
			}
			return time.Millisecond, nil, false
		}, 4, -1, 0},
		{"later message fails first", false, func(_ string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
			if n == 7 {
				return 0, errTransient, false
			}
			return 5 * time.Millisecond, nil, false
		}, 7, -1, 0},
		// Two unfinished records at once, the later one answered first: the response names the first.
		{"two failures, the later answered first", false, func(_ string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
			switch n {
			case 3:
				return 20 * time.Millisecond, errTransient, false
			case 6:
				return 0, errTransient, false
			}
			return time.Millisecond, nil, false
		}, 3, -1, 0},
		{"a late failure before an early one", false, func(_ string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
			switch n {
			case 1:
				return 20 * time.Millisecond, errTransient, false
			case 8:
				return 0, tooBig, false
			}
			return 0, nil, false
		}, 1, -1, 0},
		{"permanent failure without dead-letter topic", false, func(_ string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
			if n == 2 {
				return 0, tooBig, false
			}
			return 0, nil, false
		}, 2, -1, 0},
		{"permanent failure dead-lettered", true, func(tp string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
			if tp == topic && (n == 2 || n == 8) {
				return 0, tooBig, false
			}
			return 0, nil, false
		}, -1, 8, 2},
		{"dead-letter topic fails too", true, func(tp string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
			if tp == topic && n == 2 {
				return 0, tooBig, false
			}
			if tp != topic {
				return 0, errTransient, false
			}
			return 0, nil, false
		}, 2, -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := plainEvent(10)
			opts := relay.Options{}
			if tc.dlq {
				opts.DeadLetterTopic = streamtopic.MustParse("persistent://public/default/dlq")
			}
			resp, s, err := run(t, opts, pulsarfake.New(tc.answer), nil, ev, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantFailed < 0 {
				if len(resp.BatchItemFailures) != 0 {
					t.Fatalf("failures %v, want none", resp.BatchItemFailures)
				}
			} else if got, want := failedAt(resp), ev.Records[tc.wantFailed].Kinesis.SequenceNumber; got != want {
				t.Fatalf("failed at %s, want record %d (%s)", got, tc.wantFailed, want)
			}
			if tc.wantPub >= 0 && s.Published != tc.wantPub {
				t.Errorf("published %d, want %d", s.Published, tc.wantPub)
			}
			if s.DeadLettered != tc.wantDead {
				t.Errorf("dead-lettered %d, want %d", s.DeadLettered, tc.wantDead)
			}
			if tc.wantFailed >= 0 && (s.Cause == nil || s.FailedRecords != 10-tc.wantFailed) {
				t.Errorf("cause %v, failed records %d", s.Cause, s.FailedRecords)
			}
		})
	}
}

// After a failure Lambda retries everything from it: sending more only makes duplicates.
func TestStopsSendingAfterFailure(t *testing.T) {
	fake := pulsarfake.New(func(_ string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
		if n == 3 {
			return 0, pulsar.ErrMessageTooLarge, false
		}
		return 0, nil, false
	})
	// An answer without delay (the fake's, like pulsar-client-go's for errors it finds before
	// queueing) reaches the callback before SendAsync returns, so the relay knows of the failure before
	// the next send: not one message may follow the 4th.
	if _, _, err := run(t, relay.Options{}, fake, nil, plainEvent(1000), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Topic(topic)); n != 4 {
		t.Errorf("sent %d messages, want 4: none after the failure of the 4th", n)
	}
}

func TestDeadlineStop(t *testing.T) {
	never := func(string, int, *pulsar.ProducerMessage) (time.Duration, error, bool) { return 0, nil, true }
	ev := plainEvent(5)
	start := time.Now()
	resp, s, err := run(t, relay.Options{DeadlineMargin: 300 * time.Millisecond}, pulsarfake.New(never), nil, ev, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > 900*time.Millisecond {
		t.Errorf("returned after %v, deadline margin not kept", elapsed)
	}
	if failedAt(resp) != ev.Records[0].Kinesis.SequenceNumber || !s.DeadlineStop || s.Outcome != relay.OutcomeFailed {
		t.Errorf("response %v, summary %+v", resp, s)
	}
}

func TestProducerUnavailable(t *testing.T) {
	fake := pulsarfake.New(nil)
	fake.Err = errors.New("lookup failed")
	ev := plainEvent(3)
	resp, s, err := run(t, relay.Options{}, fake, nil, ev, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if failedAt(resp) != ev.Records[0].Kinesis.SequenceNumber || s.Cause == nil || s.Cause.Error() != "lookup failed" {
		t.Errorf("response %v, cause %v", resp, s.Cause)
	}
}

// A failed KPL sub-record fails its whole Kinesis record.
func TestSubRecordFailureFailsParent(t *testing.T) {
	shard := kinesistest.NewShard("s", 0)
	first := shard.Record("p", []byte("plain"))
	agg, err := shard.Aggregate([]kpl.Record{{PartitionKey: "a", Data: []byte("0")}, {PartitionKey: "b", Data: []byte("1")}, {PartitionKey: "c", Data: []byte("2")}})
	if err != nil {
		t.Fatal(err)
	}
	ev := kinesistest.Event(first, agg, shard.Record("p", []byte("after")))
	fake := pulsarfake.New(func(_ string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
		if n == 2 { // the aggregate's second sub-record
			return 0, errTransient, false
		}
		return 0, nil, false
	})
	resp, s, err := run(t, relay.Options{Deaggregate: true}, fake, nil, ev, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if failedAt(resp) != agg.Kinesis.SequenceNumber || s.SubRecords != 3 || s.Messages != 5 {
		t.Errorf("response %v, summary %+v", resp, s)
	}
}

func TestUnroutableRecord(t *testing.T) {
	shard := kinesistest.NewShard("s", 0)
	bad := shard.Record("k", []byte("x"))
	bad.EventSourceArn = "not-an-arn"
	ev := kinesistest.Event(shard.Record("k", []byte("ok")), bad, shard.Record("k", []byte("ok2")))
	opts := relay.Options{Topic: streamtopic.MustParse("persistent://public/default/{stream}")}

	resp, s, err := run(t, opts, pulsarfake.New(nil), nil, ev, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if failedAt(resp) != bad.Kinesis.SequenceNumber || !errors.Is(s.Cause, relay.ErrUnroutable) {
		t.Errorf("without dead letters: response %v, cause %v", resp, s.Cause)
	}

	opts.DeadLetterTopic = streamtopic.MustParse("persistent://public/default/dead")
	fake := pulsarfake.New(nil)
	resp, s, err = run(t, opts, fake, nil, ev, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 0 || s.DeadLettered != 1 || len(fake.Topic(opts.DeadLetterTopic.String())) != 1 {
		t.Errorf("with dead letters: response %v, summary %+v", resp, s)
	}
}

// An empty identifier would fail the whole batch; the relay names an earlier record instead, or
// fails the invocation when there is none.
func TestNeverAnEmptyIdentifier(t *testing.T) {
	failAt := func(k int) pulsarfake.Answer {
		return func(_ string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
			if n == k {
				return 0, errTransient, false
			}
			return 0, nil, false
		}
	}
	ev := plainEvent(4)
	ev.Records[2].Kinesis.SequenceNumber = ""
	resp, _, err := run(t, relay.Options{}, pulsarfake.New(failAt(2)), nil, ev, 5*time.Second)
	if err != nil || failedAt(resp) != ev.Records[1].Kinesis.SequenceNumber {
		t.Errorf("response %v, err %v; want the previous record", resp, err)
	}
	ev.Records[0].Kinesis.SequenceNumber = ""
	if _, _, err := run(t, relay.Options{}, pulsarfake.New(failAt(0)), nil, ev, 5*time.Second); err == nil {
		t.Error("no identifier available: want an error so Lambda retries the whole batch")
	}
}

// A large record goes through the other producer; it must not overtake an earlier record of its key,
// nor be overtaken by a later one.
func TestPerKeyBarrierBetweenProducers(t *testing.T) {
	shard := kinesistest.NewShard("s", 0)
	ev := kinesistest.Event(
		shard.Record("k", []byte("small 0")),
		shard.Record("other", []byte("small other")),
		shard.Record("k", make([]byte, 300)),
		shard.Record("k", []byte("small 1")),
	)
	fake := pulsarfake.New(func(string, int, *pulsar.ProducerMessage) (time.Duration, error, bool) {
		return 20 * time.Millisecond, nil, false
	})
	resp, _, err := run(t, relay.Options{LargeRecordBytes: 100}, fake, nil, ev, 5*time.Second)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("response %v, err %v", resp, err)
	}
	// Both producers publish to the same topic, so the fake numbers their messages together:
	// 0 small 0, 1 small other, 2 the large record, 3 small 1.
	at := map[string]int{}
	for i, e := range fake.Events {
		at[e] = i
	}
	ev2 := func(kind string, n int) int { return at[fmt.Sprintf("%s %s %d", kind, topic, n)] }
	if !(ev2("ack", 0) < ev2("send", 2) && ev2("ack", 2) < ev2("send", 3)) {
		t.Errorf("the per-key barrier was not kept: %v", fake.Events)
	}
}

func TestAudit(t *testing.T) {
	ev := plainEvent(5)
	failAt3 := func(_ string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
		if n == 3 {
			return 0, errTransient, false
		}
		return 0, nil, false
	}
	a := &recordingAuditor{}
	if _, _, err := run(t, relay.Options{}, pulsarfake.New(failAt3), a, ev, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	b := a.batches[0]
	// Record 4 may have left before the failure of record 3 was known: published 3 or 4.
	if b.Records != 5 || b.Published < 3 || b.FailedSequenceNumber != ev.Records[3].Kinesis.SequenceNumber ||
		b.CheckpointSequenceNumber != ev.Records[2].Kinesis.SequenceNumber || b.CheckpointMessageID != "1:2:0" ||
		b.ShardID != "shardId-000000000000" || b.FirstSequenceNumber != ev.Records[0].Kinesis.SequenceNumber ||
		b.LastSequenceNumber != ev.Records[4].Kinesis.SequenceNumber || b.Topic != topic {
		t.Errorf("audit batch %+v", b)
	}

	for _, required := range []bool{false, true} {
		a := &recordingAuditor{err: errors.New("table unavailable")}
		resp, s, err := run(t, relay.Options{AuditRequired: required}, pulsarfake.New(nil), a, ev, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if required && (failedAt(resp) != ev.Records[0].Kinesis.SequenceNumber || s.Outcome != relay.OutcomeFailed) {
			t.Errorf("audit required: response %v outcome %s", resp, s.Outcome)
		}
		if !required && (len(resp.BatchItemFailures) != 0 || s.AuditError == nil) {
			t.Errorf("audit optional: response %v audit error %v", resp, s.AuditError)
		}
	}
}

// A producer the client closed for good is handed back for discarding; a client that got no receipt
// at all is reset, unless a record the broker can never take is the cause; one that got any is kept.
func TestProducerRelease(t *testing.T) {
	closed := pulsarfake.New(func(string, int, *pulsar.ProducerMessage) (time.Duration, error, bool) {
		return 0, pulsar.ErrProducerClosed, false
	})
	if _, _, err := run(t, relay.Options{}, closed, nil, plainEvent(3), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if !closed.Saw("discard " + topic + "/batched") {
		t.Errorf("closed producer: events %v", closed.Events)
	}

	// A poison record at the head fails every retry the same way: no reason to rebuild the client.
	poison := pulsarfake.New(func(string, int, *pulsar.ProducerMessage) (time.Duration, error, bool) {
		return 0, pulsar.ErrMessageTooLarge, false
	})
	if _, _, err := run(t, relay.Options{}, poison, nil, plainEvent(3), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if poison.Saw("reset") {
		t.Errorf("poison record: client reset: %v", poison.Events)
	}

	stuck := pulsarfake.New(func(string, int, *pulsar.ProducerMessage) (time.Duration, error, bool) { return 0, nil, true })
	if _, _, err := run(t, relay.Options{DeadlineMargin: 200 * time.Millisecond}, stuck, nil, plainEvent(3), 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if !stuck.Saw("reset") {
		t.Errorf("no progress: events %v", stuck.Events)
	}

	slowAfterFirst := pulsarfake.New(func(_ string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
		return 0, nil, n > 0
	})
	if _, _, err := run(t, relay.Options{DeadlineMargin: 200 * time.Millisecond}, slowAfterFirst, nil, plainEvent(3), 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if slowAfterFirst.Saw("reset") {
		t.Errorf("progress made, yet the client was reset: %v", slowAfterFirst.Events)
	}
}

// Lambda sends arrival times as float seconds; decoding truncates .987 to .986999988, which must not
// become .986 in the property or the event time.
func TestArrivalTimeRoundsToTheMillisecond(t *testing.T) {
	var ev events.KinesisEvent
	for ms := 0; ms < 1000; ms++ {
		body := fmt.Sprintf(`{"Records":[{"eventSource":"aws:kinesis","eventID":"shardId-000000000000:1","eventSourceARN":"arn:aws:kinesis:us-east-1:1:stream/s",
			"kinesis":{"sequenceNumber":"%d","partitionKey":"k","data":"eA==","approximateArrivalTimestamp":1545084650.%03d}}]}`, ms+1, ms)
		var one events.KinesisEvent
		if err := json.Unmarshal([]byte(body), &one); err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, one.Records...)
	}
	fake := pulsarfake.New(nil)
	if _, _, err := run(t, relay.Options{Properties: relay.AllProperties}, fake, nil, ev, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for ms, m := range fake.Topic(topic) {
		want := time.Unix(1545084650, int64(ms)*int64(time.Millisecond)).UTC()
		if !m.EventTime.Equal(want) || m.Properties["kinesis.arrival.timestamp"] != want.Format("2006-01-02T15:04:05.000Z") {
			t.Fatalf("arrival .%03d: event time %v, property %s", ms, m.EventTime, m.Properties["kinesis.arrival.timestamp"])
		}
	}
}

// The checkpoint's message id names a message on the main topic, even when the checkpoint record
// itself went to the dead-letter topic.
func TestCheckpointMessageIDSkipsDeadLetters(t *testing.T) {
	ev := plainEvent(3)
	fake := pulsarfake.New(func(tp string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
		if tp == topic && n == 2 {
			return 0, pulsar.ErrMessageTooLarge, false
		}
		return 0, nil, false
	})
	a := &recordingAuditor{}
	if _, _, err := run(t, relay.Options{DeadLetterTopic: streamtopic.MustParse("persistent://public/default/dlq")}, fake, a, ev, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	b := a.batches[0]
	if b.CheckpointSequenceNumber != ev.Records[2].Kinesis.SequenceNumber || b.CheckpointMessageID != "1:1:0" {
		t.Errorf("checkpoint %s at message %s, want record 2 at the main topic's message 1:1:0", b.CheckpointSequenceNumber, b.CheckpointMessageID)
	}
}

func TestPermanent(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{pulsar.ErrMessageTooLarge, true},
		{errors.Join(pulsar.ErrTopicTerminated, errors.New("x")), true},
		// Producer creation on a terminated topic: the broker's error arrives as text only.
		{fmt.Errorf("creating batched producer for t: %w", errors.New("server error: TopicTerminatedError: Topic was already terminated")), true},
		{fmt.Errorf("x: %w", relay.ErrUnroutable), true},
		{pulsar.ErrProducerClosed, false},
		{errors.New("connection closed"), false},
		{context.DeadlineExceeded, false},
		{nil, false},
	} {
		if got := relay.Permanent(tc.err); got != tc.want {
			t.Errorf("relay.Permanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// The deadline margin gives the dead letters, the audit write and the response a budget each.
func TestDeadlineBudgets(t *testing.T) {
	const dlq = "persistent://public/default/dlq"
	for _, tc := range []struct {
		name       string
		answer     pulsarfake.Answer
		wantFailed int // record the response names
		wantDead   int
	}{
		// Record 0 can never reach its topic, record 1 is never answered: publishing waits until its
		// stop deadline, and record 0 must still go to the dead-letter topic. Before, the dead letters
		// were skipped at the stop deadline and every retry named record 0: the shard stalled.
		{"publishing used all its time", func(tp string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
			switch {
			case tp == dlq:
				return 0, nil, false
			case n == 0:
				return 0, pulsar.ErrMessageTooLarge, false
			}
			return 0, nil, true
		}, 1, 1},
		// The dead-letter topic never answers: the dead letters stop at their budget's end, and the
		// audit write and the response still get theirs.
		{"dead letters never confirmed", func(tp string, _ int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
			if tp == dlq {
				return 0, nil, true
			}
			return 0, pulsar.ErrMessageTooLarge, false
		}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := plainEvent(3)
			a := &auditBudget{}
			start := time.Now()
			const timeout, margin = 1500 * time.Millisecond, 600 * time.Millisecond
			resp, s, err := run(t, relay.Options{DeadLetterTopic: streamtopic.MustParse(dlq), DeadlineMargin: margin}, pulsarfake.New(tc.answer), a, ev, timeout)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := failedAt(resp), ev.Records[tc.wantFailed].Kinesis.SequenceNumber; got != want || s.DeadLettered != tc.wantDead {
				t.Errorf("response names %s after %d dead letter(s), want record %d (%s) after %d", got, s.DeadLettered, tc.wantFailed, want, tc.wantDead)
			}
			if took := time.Since(start); took > timeout-50*time.Millisecond {
				t.Errorf("returned after %v of %v", took, timeout)
			}
			if a.left < (margin-relay.MaxResponseReserve)/2-50*time.Millisecond {
				t.Errorf("the audit write had %v left, want about half of the margin after the response's reserve", a.left)
			}
		})
	}
}

// auditBudget records how much time its context left the audit write.
type auditBudget struct{ left time.Duration }

func (a *auditBudget) Record(ctx context.Context, _ relay.AuditRecord) error {
	if d, ok := ctx.Deadline(); ok && ctx.Err() == nil {
		a.left = time.Until(d)
	}
	return nil
}

// A producer that cannot be created (a terminated topic) is tried once per batch, not once per
// message: each attempt is a lookup and a CreateProducer round trip.
func TestProducerCreationFailureIsRememberedForTheBatch(t *testing.T) {
	const dlq = "persistent://public/default/dlq"
	fake := pulsarfake.New(nil)
	fake.Refuse = map[string]error{topic: errors.New("server error: TopicTerminatedError: Topic was already terminated")}
	ev := plainEvent(500)
	resp, s, err := run(t, relay.Options{DeadLetterTopic: streamtopic.MustParse(dlq)}, fake, nil, ev, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 0 || s.DeadLettered != 500 {
		t.Errorf("response %v, %d dead-lettered; want all 500", resp, s.DeadLettered)
	}
	if fake.Attempts[topic] != 1 || fake.Attempts[dlq] != 1 {
		t.Errorf("producer attempts %v, want one per topic", fake.Attempts)
	}
}

// A trigger attached by mistake (SQS, DynamoDB Streams, S3, a schedule) must fail the invocation with
// an error saying what arrived, and publish nothing: a success would checkpoint events never published.
func TestRefusesEventsThatAreNotKinesis(t *testing.T) {
	kinesisRecord := plainEvent(1).Records[0]
	for _, tc := range []struct {
		name, payload string
		want          []string
	}{
		{"sqs", `{"Records":[{"messageId":"1","eventSource":"aws:sqs","body":"x"},{"messageId":"2","eventSource":"aws:sqs","body":"y"}]}`,
			[]string{`2 with eventSource "aws:sqs"`, "of its 2 records"}},
		{"dynamodb streams", `{"Records":[{"eventID":"1","eventSource":"aws:dynamodb","dynamodb":{"Keys":{}}}]}`,
			[]string{`1 with eventSource "aws:dynamodb"`}},
		{"s3", `{"Records":[{"eventSource":"aws:s3","s3":{"bucket":{"name":"b"}}}]}`, []string{`1 with eventSource "aws:s3"`}},
		{"no records", `{"version":"0","detail-type":"Scheduled Event","source":"aws.events","detail":{}}`, []string{"holds no records"}},
		{"empty records", `{"Records":[]}`, []string{"holds no records"}},
		{"one stray record", func() string {
			b, _ := json.Marshal(events.KinesisEvent{Records: []events.KinesisEventRecord{kinesisRecord, {EventSource: "aws:sqs"}}})
			return string(b)
		}(), []string{`1 with eventSource "aws:sqs"`, "of its 2 records"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev events.KinesisEvent
			if err := json.Unmarshal([]byte(tc.payload), &ev); err != nil {
				t.Fatal(err)
			}
			fake := pulsarfake.New(nil)
			_, s, err := run(t, relay.Options{}, fake, nil, ev, 5*time.Second)
			if err == nil {
				t.Fatal("handled, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if len(fake.Messages) > 0 || len(fake.Attempts) > 0 || s != nil {
				t.Errorf("sent %v, producers asked %v, summary %v: want nothing done", fake.Messages, fake.Attempts, s)
			}
		})
	}
}

// A DEADLINE_MARGIN_MS as long as the invocation's time leaves nothing to publish: the log and the
// metrics say so, rather than every batch failing with the generic deadline cause.
func TestNoTimeToPublish(t *testing.T) {
	var logs strings.Builder
	obs := &lastSummary{}
	r := relay.New(relay.Options{Topic: streamtopic.MustParse(topic), DeadlineMargin: time.Second}, pulsarfake.New(nil), nil, obs, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	ev := plainEvent(2)
	resp, err := r.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	s := obs.s
	if failedAt(resp) != ev.Records[0].Kinesis.SequenceNumber || !s.NoPublishTime || !errors.Is(s.Cause, relay.ErrNoPublishTime) {
		t.Fatalf("response %v, no publish time %v, cause %v", resp, s.NoPublishTime, s.Cause)
	}
	if !strings.Contains(logs.String(), "no time to publish") || !strings.Contains(s.Cause.Error(), "deadline margin is 1s") {
		t.Errorf("cause %v; log:\n%s", s.Cause, logs.String())
	}
	// With time to publish, nothing is said.
	_, s, _ = run(t, relay.Options{DeadlineMargin: 100 * time.Millisecond}, pulsarfake.New(nil), nil, plainEvent(2), 5*time.Second)
	if s.NoPublishTime {
		t.Errorf("no publish time reported with 5 s left and a 100 ms margin")
	}
}
