package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/infra/esm"
	"github.com/streambridge/kinesis-pulsar/infra/onfailure"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
)

// Handler publishes a batch and answers as the function does; *relay.Relay is one.
type Handler interface {
	Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error)
}

// Chunks handed to the relay at once: a Lambda-sized event at most, so a replay needs no more memory
// than the function does, and a long batch shows progress.
const (
	chunkRecords = 1000
	chunkBytes   = 6 << 20
)

// replayer replays the failed batches of one source.
type replayer struct {
	src     source
	k       Kinesis
	handler Handler
	// counts receives the relay's summaries (messages published and dead-lettered).
	counts *counter
	out    io.Writer

	dryRun       bool
	dropLost     bool
	batchTimeout time.Duration
	attempts     int
	retryBackoff time.Duration

	sum summary
}

// summary is what a run did, printed at its end.
type summary struct {
	batches, replayed, failed, withLoss, unreadable int
	records, confirmed                              int
	lost                                            []string
	failures                                        []string
}

// ok reports whether every batch found was replayed (or, dry, could be) without loss.
func (s summary) ok() bool { return s.failed == 0 && s.withLoss == 0 && s.unreadable == 0 }

// counter adds up the relay's summaries; it is the relay's Observer.
type counter struct {
	mu                      sync.Mutex
	published, deadLettered int
}

func (c *counter) Observe(_ context.Context, s *relay.Summary) {
	c.mu.Lock()
	c.published += s.Published
	c.deadLettered += s.DeadLettered
	c.mu.Unlock()
}

func (c *counter) get() (published, deadLettered int) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.published, c.deadLettered
}

// run replays every batch of the source; it returns an error only when it cannot go on (the source
// cannot be read, or ctx ended). Batches that fail are counted and left at the source.
func (r *replayer) run(ctx context.Context) error {
	defer r.src.finish(context.WithoutCancel(ctx))
	for {
		b, err := r.src.next(ctx)
		if err != nil {
			return err
		}
		if b == nil {
			return nil
		}
		r.sum.batches++
		if err := r.one(ctx, b); err != nil {
			r.src.release(context.WithoutCancel(ctx), b)
			return err
		}
	}
}

func (r *replayer) say(format string, args ...any) {
	fmt.Fprintf(r.out, format+"\n", args...)
}

// one replays one batch; it returns an error only when ctx ended.
func (r *replayer) one(ctx context.Context, b *failedBatch) error {
	n := r.sum.batches
	if b.parseErr != nil {
		r.sum.unreadable++
		r.say("batch %d (%s): UNREADABLE, left in place: %v", n, b.id, b.parseErr)
		r.src.release(ctx, b)
		return nil
	}
	info := b.record.KinesisBatchInfo
	r.say("batch %d (%s): %s %s, %s..%s, %d records arrived %s..%s, %s after %d invocations",
		n, b.id, streamName(info.StreamARN), info.ShardID, info.StartSequenceNumber, info.EndSequenceNumber,
		info.BatchSize, info.ApproximateArrivalOfFirstRecord, info.ApproximateArrivalOfLastRecord,
		b.record.RequestContext.Condition, b.record.RequestContext.ApproximateInvokeCount)

	ev, fromPayload, err := b.record.Event()
	var lost *lostRange
	if err == nil && !fromPayload {
		ev, lost, err = r.readStream(ctx, info)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		r.fail(ctx, b, n, fmt.Sprintf("reading its records: %v", err))
		return nil
	}
	where := "from the stream"
	if fromPayload {
		where = "from the object's payload"
	}
	r.say("  %d of %d records read %s", len(ev.Records), info.BatchSize, where)
	r.sum.records += len(ev.Records)
	if lost != nil {
		r.sum.withLoss++
		l := fmt.Sprintf("%s %s %s", info.StreamARN, info.ShardID, lost)
		r.sum.lost = append(r.sum.lost, l)
		r.say("  LOST: records %s", lost)
	}
	if r.dryRun {
		r.src.release(ctx, b)
		return nil
	}
	if len(ev.Records) > 0 {
		if err := r.publish(ctx, ev, func() error { return r.src.keep(ctx, b) }); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.fail(ctx, b, n, err.Error())
			return nil
		}
		r.sum.confirmed += len(ev.Records)
	}
	if lost != nil && !r.dropLost {
		r.say("  the %d records still in the stream are in Pulsar; the batch stays at the source because records were lost (--drop-lost removes it)", len(ev.Records))
		r.src.release(ctx, b)
		return nil
	}
	if err := r.src.done(ctx, b); err != nil {
		r.fail(ctx, b, n, fmt.Sprintf("published, but could not be removed (a rerun publishes it again): %v", err))
		return nil
	}
	r.sum.replayed++
	r.say("  replayed: %d records confirmed by Pulsar; removed from the %s", len(ev.Records), r.src.describe())
	return nil
}

func (r *replayer) fail(ctx context.Context, b *failedBatch, n int, why string) {
	r.sum.failed++
	r.sum.failures = append(r.sum.failures, fmt.Sprintf("batch %d (%s): %s", n, b.id, why))
	r.say("  FAILED, left in place: %s", why)
	r.src.release(ctx, b)
}

// readStream reads the batch's records from the stream and builds the event Lambda would have sent.
func (r *replayer) readStream(ctx context.Context, info onfailure.BatchInfo) (events.KinesisEvent, *lostRange, error) {
	last := time.Now()
	sr := &shardReader{k: r.k, streamARN: info.StreamARN, shard: info.ShardID, progress: func(read int) {
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			r.say("  ... %d of %d records read", read, info.BatchSize)
		}
	}}
	recs, lost, err := sr.readRange(ctx, info)
	if err != nil {
		return events.KinesisEvent{}, nil, err
	}
	// invokeIdentityArn is not something the relay reads.
	return esm.Event(info.StreamARN, info.ShardID, "", recs), lost, nil
}

// publish hands the records to the relay in Lambda-sized chunks and retries, from the first record not
// confirmed, until every record is confirmed or attempts are used up. keep runs before each chunk, so
// the batch stays claimed however long it takes.
func (r *replayer) publish(ctx context.Context, ev events.KinesisEvent, keep func() error) error {
	recs := ev.Records
	done := 0
	for len(recs) > 0 {
		n, size := 0, 0
		for n < len(recs) && n < chunkRecords && (n == 0 || size+len(recs[n].Kinesis.Data) <= chunkBytes) {
			size += len(recs[n].Kinesis.Data)
			n++
		}
		if err := keep(); err != nil {
			return err
		}
		if err := r.publishChunk(ctx, recs[:n]); err != nil {
			return err
		}
		recs = recs[n:]
		done += n
		if len(ev.Records) > chunkRecords {
			r.say("  ... %d of %d records confirmed", done, len(ev.Records))
		}
	}
	return nil
}

func (r *replayer) publishChunk(ctx context.Context, recs []events.KinesisEventRecord) error {
	for attempt := 1; ; attempt++ {
		hctx, cancel := context.WithTimeout(ctx, r.batchTimeout)
		resp, err := r.handler.Handle(hctx, events.KinesisEvent{Records: recs})
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil && len(resp.BatchItemFailures) == 0 {
			return nil
		}
		from, what := 0, "the chunk"
		if err == nil {
			seq := resp.BatchItemFailures[0].ItemIdentifier
			what = "record " + seq
			for i, rec := range recs {
				if rec.Kinesis.SequenceNumber == seq {
					from = i
					break
				}
			}
		}
		recs = recs[from:]
		if attempt >= r.attempts {
			cause := "the relay's log line above says why"
			if err != nil {
				cause = err.Error()
			}
			return fmt.Errorf("%s and the %d records after it are not confirmed after %d attempts (%s)", what, len(recs)-1, attempt, cause)
		}
		r.say("  attempt %d: %s not confirmed; retrying from it", attempt, what)
		if err := sleep(ctx, r.retryBackoff<<min(attempt-1, 5)); err != nil {
			return err
		}
	}
}

// report prints the summary.
func (r *replayer) report() {
	s := r.sum
	verb, n := "replayed and removed", s.replayed
	if r.dryRun {
		verb, n = "complete in the stream or object (dry run)", s.batches-s.failed-s.withLoss-s.unreadable
	}
	r.say("")
	r.say("summary (%s): %d batches found; %s: %d; with records lost: %d; failed: %d; unreadable: %d",
		r.src.describe(), s.batches, verb, n, s.withLoss, s.failed, s.unreadable)
	published, deadLettered := r.counts.get()
	r.say("  records read: %d; confirmed: %d (messages published %d, dead-lettered %d)", s.records, s.confirmed, published, deadLettered)
	for _, l := range s.lost {
		r.say("  LOST %s", l)
	}
	for _, f := range s.failures {
		r.say("  FAILED %s", f)
	}
}

func streamName(arn string) string {
	if _, name, ok := strings.Cut(arn, ":stream/"); ok {
		return name
	}
	return arn
}
