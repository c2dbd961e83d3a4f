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
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Relay is the Lambda handler. It is safe for concurrent use.
type Relay struct {
	opts     Options
	senders  Senders
	auditor  Auditor
	observer Observer
	log      *slog.Logger
	once     *onceMode // PROCESSING_GUARANTEE=effectivelyOnce; nil otherwise
}

// New returns a relay. auditor and observer may be nil; log nil means slog.Default().
func New(opts Options, senders Senders, auditor Auditor, observer Observer, log *slog.Logger) *Relay {
	if log == nil {
		log = slog.Default()
	}
	return &Relay{opts: opts.withDefaults(), senders: senders, auditor: auditor, observer: observer, log: log}
}

// Handle publishes the batch and returns the partial batch response. It returns an error only when no
// valid item identifier exists for the first unfinished record; Lambda then retries the whole batch.
func (r *Relay) Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	if err := checkEvent(ev); err != nil {
		// A trigger attached by mistake: answering success would have its source checkpoint events
		// that were never published.
		r.log.ErrorContext(ctx, "invocation refused", "error", err)
		return events.KinesisEventResponse{}, err
	}
	// Deadlines are the real clock's; opts.Now stamps the batch (the audit item's startedAt).
	started, stamp := time.Now(), r.opts.Now()
	end, reset := r.senders.Begin(), false
	// Deferred, so End runs on a panic too: aws-lambda-go recovers it only to report it, then the
	// process exits, and an invocation still running on another goroutine ends with it.
	defer func() { end(reset) }()
	d := r.deadlines(ctx)
	publishCtx, cancel := d.context(ctx, d.publish)
	seq, records, seqErr := r.beginOnce(publishCtx, ev.Records)
	b := r.newBatch(records)
	if d.set && !started.Before(d.publish) {
		b.noTime(r.opts.DeadlineMargin, d.publish.Add(r.opts.DeadlineMargin).Sub(started))
		r.log.ErrorContext(ctx, "no time to publish: the deadline margin is not shorter than the invocation's time left",
			"deadlineMargin", r.opts.DeadlineMargin.String(), "error", b.halt.cause)
	} else {
		seq.prepare(publishCtx, b, seqErr)
	}
	b.publish(publishCtx)
	cancel()
	deadLetterCtx, cancel := d.context(ctx, d.deadLetter)
	b.deadLetter(deadLetterCtx)
	cancel()

	s := b.summarize(stamp)
	reset = r.releaseProducers(b, s)
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		s.RequestID = lc.AwsRequestID
	}
	// The effectively-once checkpoint comes first: the audit item only describes the batch.
	auditCtx, cancelAudit := d.context(ctx, d.audit)
	defer cancelAudit()
	failed := seq.finish(auditCtx, b, s, s.failedRecord)
	if r.auditor != nil && len(records) > 0 {
		s.AuditError = r.auditor.Record(auditCtx, b.auditBatch(s))
		if s.AuditError != nil {
			r.log.Error("audit write failed", "error", s.AuditError, "required", r.opts.AuditRequired,
				"shardId", s.ShardID, "firstSequenceNumber", s.FirstSequence)
			if r.opts.AuditRequired {
				// The audit must be complete: have Lambda deliver the whole batch again.
				failed = 0
			}
		}
	}

	failed = mutateFailed(failed, len(records))
	resp, err := b.response(failed)
	s.Duration = time.Since(started)
	s.finish(failed, len(records), resp)
	r.logSummary(ctx, s)
	if r.observer != nil {
		r.observer.Observe(ctx, s)
	}
	return resp, err
}

// checkEvent refuses an event that is not a batch of Kinesis records, saying what arrived.
func checkEvent(ev events.KinesisEvent) error {
	if len(ev.Records) == 0 {
		return errors.New("not a Kinesis event: it holds no records (no Records array, or an empty one); nothing was published")
	}
	sources := map[string]int{}
	for i := range ev.Records {
		if src := ev.Records[i].EventSource; src != "aws:kinesis" {
			sources[src]++
		}
	}
	if len(sources) == 0 {
		return nil
	}
	var parts []string
	for _, src := range slices.Sorted(maps.Keys(sources)) {
		parts = append(parts, fmt.Sprintf("%d with eventSource %q", sources[src], src))
	}
	return fmt.Errorf("not a Kinesis event: of its %d records, %s, where \"aws:kinesis\" is expected (is a trigger other than a Kinesis stream attached to the function?); nothing was published",
		len(ev.Records), strings.Join(parts, " and "))
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
		r.senders.Discard(k.topic, k.kind, p)
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

// maxResponseReserve is the most of the deadline margin kept for returning the response.
const maxResponseReserve = 100 * time.Millisecond

// deadlines are the instants at which each phase of an invocation stops. Publishing stops
// DeadlineMargin before the invocation deadline; the margin is then shared by the dead letters, the
// audit write and the response, each with a budget of its own: publishing that used all its time
// still leaves the dead letters theirs (else a batch whose records all go to the dead-letter topic
// would never get there, and the shard would stall), and slow dead letters still leave the audit
// write and the response theirs.
type deadlines struct {
	set                        bool // the invocation has a deadline
	publish, deadLetter, audit time.Time
}

func (r *Relay) deadlines(ctx context.Context) deadlines {
	end, ok := ctx.Deadline()
	if !ok {
		return deadlines{}
	}
	margin := r.opts.DeadlineMargin
	response := min(maxResponseReserve, margin/5)
	audit := time.Duration(0) // the audit's share of the margin, taken from the dead letters' end
	switch {
	case r.auditor != nil && !r.opts.DeadLetterTopic.IsZero():
		audit = (margin - response) / 2
	case r.auditor != nil:
		audit = margin - response
	}
	return deadlines{set: true,
		publish:    end.Add(-margin),
		deadLetter: end.Add(-response - audit),
		audit:      end.Add(-response),
	}
}

// context ends at the phase's stop instant; without an invocation deadline only with ctx.
func (d deadlines) context(ctx context.Context, stop time.Time) (context.Context, context.CancelFunc) {
	if !d.set {
		return context.WithCancel(ctx)
	}
	return context.WithDeadlineCause(ctx, stop, errDeadline)
}

// errDeadline is the cause of the phases' contexts: the invocation is about to time out.
var errDeadline = errors.New("stopped before the invocation deadline")

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
