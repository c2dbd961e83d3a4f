// Package relay publishes a batch of Kinesis records to Pulsar and reports which record Lambda must
// retry from. Every record either reaches Pulsar (its topic, or the dead-letter topic) with the
// broker's receipt, or is reported failed: the response names the first record, in batch order, that is
// not done, and nothing after it counts as done.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/streambridge/kinesis-pulsar/internal/audit"
	"github.com/streambridge/kinesis-pulsar/internal/producer"
)

// Producers hands out warm producers; internal/producer.Pool implements it.
type Producers interface {
	// Producer returns the producer for topic and kind; created reports a cold start of that producer.
	Producer(ctx context.Context, topic string, kind producer.Kind) (p pulsar.Producer, created bool, err error)
	// Discard forgets a producer the client closed for good.
	Discard(topic string, kind producer.Kind, p pulsar.Producer)
	// Begin and End bracket an invocation. With reset, End replaces the client and its producers,
	// with fresh credentials; it closes nothing another running invocation may still be sending on.
	Begin() producer.Invocation
	End(inv producer.Invocation, reset bool)
}

// Auditor records what a batch did; internal/audit implements it with DynamoDB.
type Auditor interface {
	Record(ctx context.Context, b audit.Batch) error
}

// Observer receives the summary of every invocation (metrics, summary log line).
type Observer interface {
	Observe(ctx context.Context, s *Summary)
}

// Relay is the Lambda handler. It is safe for concurrent use.
type Relay struct {
	opts      Options
	producers Producers
	auditor   Auditor
	observer  Observer
	log       *slog.Logger
	once      *onceMode // PROCESSING_GUARANTEE=effectivelyOnce; nil otherwise
}

// New returns a relay. auditor and observer may be nil; log nil means slog.Default().
func New(opts Options, producers Producers, auditor Auditor, observer Observer, log *slog.Logger) *Relay {
	if log == nil {
		log = slog.Default()
	}
	return &Relay{opts: opts.withDefaults(), producers: producers, auditor: auditor, observer: observer, log: log}
}

// responseReserve is kept after the audit write for the handler to return its response.
const responseReserve = 100 * time.Millisecond

// Handle publishes the batch and returns the partial batch response. It returns an error only when no
// valid item identifier exists for the first unfinished record; Lambda then retries the whole batch.
func (r *Relay) Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	started := r.opts.Now()
	inv, reset := r.producers.Begin(), false
	// Deferred: aws-lambda-go recovers a panicking handler, and the environment lives on.
	defer func() { r.producers.End(inv, reset) }()
	stopCtx, cancel := r.stopContext(ctx)
	defer cancel()
	seq, records, seqErr := r.beginOnce(stopCtx, ev.Records)
	b := r.newBatch(records)
	seq.prepare(stopCtx, b, seqErr)
	b.publish(stopCtx)
	b.deadLetter(stopCtx)

	s := b.summarize(started)
	reset = r.releaseProducers(b, s)
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		s.RequestID = lc.AwsRequestID
	}
	finishCtx, cancelFinish := withReserve(ctx, responseReserve)
	failed := seq.finish(finishCtx, b, s, s.failedRecord)
	cancelFinish()
	if r.auditor != nil && len(records) > 0 {
		auditCtx, cancel := withReserve(ctx, responseReserve)
		s.AuditError = r.auditor.Record(auditCtx, b.auditBatch(s))
		cancel()
		if s.AuditError != nil {
			r.log.Error("audit write failed", "error", s.AuditError, "required", r.opts.AuditRequired,
				"shardId", s.ShardID, "firstSequenceNumber", s.FirstSequence)
			if r.opts.AuditRequired {
				// The audit must be complete: have Lambda deliver the whole batch again.
				failed = 0
			}
		}
	}

	resp, err := b.response(failed)
	s.Duration = r.opts.Now().Sub(started)
	s.finish(failed, len(records), resp)
	r.logSummary(ctx, s)
	if r.observer != nil {
		r.observer.Observe(ctx, s)
	}
	return resp, err
}

// logSummary writes the invocation's summary line and, when records failed, one line with the cause.
func (r *Relay) logSummary(ctx context.Context, s *Summary) {
	attrs := []slog.Attr{
		slog.String("requestId", s.RequestID), slog.String("stream", s.Stream), slog.String("shardId", s.ShardID),
		slog.String("topic", s.Topic), slog.String("firstSequenceNumber", s.FirstSequence),
		slog.String("lastSequenceNumber", s.LastSequence), slog.Int("records", s.Records),
		slog.Int("messages", s.Messages), slog.Int("published", s.Published),
		slog.Int("deadLettered", s.DeadLettered), slog.Int("failedRecords", s.FailedRecords),
		slog.String("outcome", s.Outcome), slog.Float64("durationMs", float64(s.Duration.Microseconds())/1000),
		slog.Int("producersCreated", s.ProducersCreated), slog.Bool("deadlineStop", s.DeadlineStop),
	}
	if s.FailedSequence != "" {
		attrs = append(attrs, slog.String("failedSequenceNumber", s.FailedSequence))
	}
	if s.AuditError != nil {
		attrs = append(attrs, slog.String("auditError", s.AuditError.Error()))
	}
	if r.opts.Guarantee == EffectivelyOnce {
		attrs = append(attrs, onceAttrs(s)...)
	}
	level := slog.LevelInfo
	if s.Outcome != OutcomeDelivered {
		level = slog.LevelWarn
		r.log.LogAttrs(ctx, slog.LevelError, "records not delivered, Lambda will retry them",
			slog.String("requestId", s.RequestID), slog.String("shardId", s.ShardID),
			slog.String("failedSequenceNumber", s.FailedSequence), slog.Int("failedRecords", s.FailedRecords),
			slog.Any("cause", s.Cause))
	}
	r.log.LogAttrs(ctx, level, "batch", attrs...)
}

// releaseProducers hands back what the invocation learnt about the client: producers it saw closed,
// and whether the client made no progress at all (then it must be reset).
func (r *Relay) releaseProducers(b *batch, s *Summary) (reset bool) {
	for k, p := range b.closedProducers() {
		r.producers.Discard(k.topic, k.kind, p)
	}
	// No receipt at all, and not because of a record the broker can never take: the connection or the
	// credentials are suspect (a half-open connection, a rotated certificate). A poison record instead
	// fails every retry the same way, and rebuilding the client for it would only add reconnects.
	if s.Published == 0 && s.DeadLettered == 0 && s.Messages > 0 && !permanent(s.Cause) && !errors.Is(s.Cause, errSequence) {
		r.log.Warn("no message confirmed: replacing the Pulsar client", "shardId", s.ShardID, "cause", s.Cause)
		return true
	}
	return false
}

// stopContext ends DeadlineMargin before the invocation deadline: after it, nothing more is sent and
// no more receipts are awaited.
func (r *Relay) stopContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadlineCause(ctx, d.Add(-r.opts.DeadlineMargin), errDeadline)
	}
	return context.WithCancel(ctx)
}

// errDeadline is the cause of the stop context: the invocation is about to time out.
var errDeadline = errors.New("stopped before the invocation deadline")

func withReserve(ctx context.Context, reserve time.Duration) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, d.Add(-reserve))
	}
	return context.WithCancel(ctx)
}

// response names the first record not done; failed < 0 means all are done.
func (b *batch) response(failed int) (events.KinesisEventResponse, error) {
	if failed < 0 {
		return events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}, nil
	}
	// An empty identifier would fail the whole batch anyway; retrying from an earlier record only adds
	// duplicates, never loses one.
	for i := failed; i >= 0; i-- {
		if seq := b.sources[i].rec.Kinesis.SequenceNumber; seq != "" {
			return events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{{ItemIdentifier: seq}}}, nil
		}
	}
	return events.KinesisEventResponse{}, fmt.Errorf("record %d failed and no record up to it has a sequence number", failed)
}
