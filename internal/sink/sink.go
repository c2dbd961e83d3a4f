// Package sink drains a Pulsar subscription into a Kinesis stream, one Lambda invocation at a time.
//
// Each invocation subscribes (Failover, so overlapping invocations never consume the same partition
// at once), writes what it receives with PutRecords, acknowledges a message only after Kinesis
// confirmed the record that carries it, and at the deadline margin stops receiving, waits for the
// writes in flight, closes the consumer and answers. What is not acknowledged is redelivered to the
// next invocation: at least once, nothing lost.
package sink

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Event is the invocation event. The scheduler's event is ignored; a manual invocation may bound the
// run with {"maxMessages": N, "idleMs": M}.
type Event struct {
	// MaxMessages stops the invocation once this many messages are acknowledged; 0: no limit.
	MaxMessages int `json:"maxMessages"`
	// IdleMs stops receiving after this many milliseconds without a new message; 0: no limit.
	IdleMs int `json:"idleMs"`
}

// Why an invocation stopped.
const (
	StopDeadline    = "deadline"
	StopMaxMessages = "maxMessages"
	StopIdle        = "idle"
)

// Result is the invocation's response.
type Result struct {
	Received int `json:"received"`
	// Put counts messages whose record Kinesis confirmed.
	Put int `json:"put"`
	// Acknowledged counts messages acknowledged on the subscription, dead-lettered ones included.
	Acknowledged int    `json:"acknowledged"`
	DeadLettered int    `json:"deadLettered"`
	StoppedBy    string `json:"stoppedBy"`
}

// Summary describes one invocation, for metrics and the summary log line.
type Summary struct {
	Result
	RequestID string
	StreamARN string
	// RecordsPut counts Kinesis records confirmed (an aggregate counts once), BytesPut their data bytes.
	RecordsPut int
	BytesPut   int64
	// Retries counts messages written again after a failed write, Throttles the records and calls
	// Kinesis refused for throughput (or KMS throttling).
	Retries   int
	Throttles int
	// PutErrors counts failed records and failed PutRecords calls; AckErrors messages put but not
	// acknowledged (they come back: duplicates in Kinesis, never a loss).
	PutErrors int
	AckErrors int
	// Held counts messages Kinesis can never accept, kept unacknowledged for want of a dead-letter topic.
	Held int
	// MaxLag is the longest time from publishing to Kinesis's confirmation among the messages put.
	MaxLag   time.Duration
	Duration time.Duration
	// Cause is the last failure, nil when none.
	Cause error
	// Failed: the invocation could not consume at all (subscription, shard listing); Run returned an error.
	Failed bool
}

// Observer receives every invocation's summary (metrics).
type Observer interface {
	Observe(ctx context.Context, s *Summary)
}

// Sink is the Lambda handler. Invocations may overlap; it is safe for concurrent use.
type Sink struct {
	opts     Options
	pulsar   Pulsar
	kinesis  Kinesis
	observer Observer
	log      *slog.Logger

	mu sync.Mutex
	// seen counts how often this environment received each unacknowledged message: a Failover
	// subscription does not count redeliveries on the broker.
	seen map[string]int
}

// maxSeen bounds seen; beyond it the counts start again, which only delays dead-lettering.
const maxSeen = 100_000

// New returns a sink; observer may be nil, log nil means slog.Default().
func New(opts Options, p Pulsar, k Kinesis, observer Observer, log *slog.Logger) *Sink {
	if log == nil {
		log = slog.Default()
	}
	return &Sink{opts: opts.withDefaults(), pulsar: p, kinesis: k, observer: observer, log: log, seen: map[string]int{}}
}

// Handle is the Lambda entry point: it decodes the event leniently (anything but maxMessages and
// idleMs is ignored) and runs one invocation.
func (s *Sink) Handle(ctx context.Context, raw json.RawMessage) (Result, error) {
	var ev Event
	_ = json.Unmarshal(raw, &ev) // the scheduler's payload is not ours to validate
	sum, err := s.Run(ctx, Event{MaxMessages: max(ev.MaxMessages, 0), IdleMs: max(ev.IdleMs, 0)})
	return sum.Result, err
}

// closeReserve is kept after the writes in flight, for closing the consumer and answering.
func (s *Sink) closeReserve() time.Duration { return s.opts.DeadlineMargin / 4 }

// errDeadline is the cause of the stop context.
var errDeadline = errors.New("stopped at the invocation's deadline margin")

// Run consumes until the deadline margin, ev's limits, or a failure to subscribe (the error).
func (s *Sink) Run(ctx context.Context, ev Event) (*Summary, error) {
	started := time.Now()
	sum := &Summary{StreamARN: s.opts.StreamARN}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		sum.RequestID = lc.AwsRequestID
	}
	inv, reset := s.pulsar.Begin(), false
	defer func() { s.pulsar.End(inv, reset) }()

	stopCtx, cancelStop := context.WithCancelCause(ctx)
	writeCtx, cancelWrite := context.WithCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		stopCtx, cancelStop = withDeadline(ctx, d.Add(-s.opts.DeadlineMargin))
		writeCtx, cancelWrite = context.WithDeadline(ctx, d.Add(-s.closeReserve()))
	}
	defer cancelStop(nil)
	defer cancelWrite()

	r := &run{s: s, ev: ev, sum: sum, busy: map[string]bool{}, held: map[string]bool{}, done: make(chan outcome)}
	var err error
	if s.opts.Aggregation {
		if r.shards, err = listShards(stopCtx, s.kinesis, s.opts.StreamARN); err != nil {
			return s.finish(ctx, sum, started, err)
		}
	}
	if r.consumer, err = s.pulsar.Subscribe(stopCtx, s.consumerOptions()); err != nil {
		reset = true // a half-open connection or rejected credentials: start afresh next time
		return s.finish(ctx, sum, started, err)
	}
	r.loop(stopCtx, writeCtx)
	closeCtx, cancelClose := withReserve(ctx, answerReserve)
	closeWithin(closeCtx, r.consumer)
	cancelClose()
	reset = sum.AckErrors > 0 && sum.Acknowledged == 0
	return s.finish(ctx, sum, started, nil)
}

// answerReserve is kept after closing the consumer, for the summary and the response.
const answerReserve = 20 * time.Millisecond

func withReserve(ctx context.Context, reserve time.Duration) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, d.Add(-reserve))
	}
	return context.WithCancel(ctx)
}

func withDeadline(ctx context.Context, d time.Time) (context.Context, context.CancelCauseFunc) {
	c, cancel := context.WithDeadlineCause(ctx, d, errDeadline)
	return c, func(error) { cancel() }
}

func (s *Sink) consumerOptions() pulsar.ConsumerOptions {
	o := pulsar.ConsumerOptions{
		Topics:           s.opts.Topics,
		TopicsPattern:    s.opts.TopicsPattern,
		SubscriptionName: s.opts.Subscription,
		Type:             pulsar.Failover,
		// An acknowledgement counts only once the broker confirmed it.
		AckWithResponse: true,
		// Where the broker has acknowledgmentAtBatchIndexLevelEnabled, a batch acknowledged in part
		// does not come back whole; elsewhere it does (duplicates in Kinesis, never a loss).
		EnableBatchIndexAcknowledgment: true,
		ReceiverQueueSize:              1000,
		MaxPendingChunkedMessage:       10,
	}
	if s.opts.InitialPosition == PositionEarliest {
		o.SubscriptionInitialPosition = pulsar.SubscriptionPositionEarliest
	}
	return o
}

// closeWithin closes the consumer, so the next invocation takes its partitions over at once, but
// waits no longer than ctx: a consumer on a dead connection is released by the broker anyway.
func closeWithin(ctx context.Context, c Consumer) {
	done := make(chan struct{})
	go func() {
		c.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (s *Sink) finish(ctx context.Context, sum *Summary, started time.Time, err error) (*Summary, error) {
	sum.Duration = time.Since(started)
	if sum.StoppedBy == "" {
		sum.StoppedBy = StopDeadline
	}
	if err != nil {
		sum.Cause, sum.Failed = err, true
	}
	attrs := []slog.Attr{
		slog.String("requestId", sum.RequestID), slog.Int("received", sum.Received), slog.Int("put", sum.Put),
		slog.Int("recordsPut", sum.RecordsPut), slog.Int("acknowledged", sum.Acknowledged),
		slog.Int("deadLettered", sum.DeadLettered), slog.Int("retries", sum.Retries),
		slog.Int("throttles", sum.Throttles), slog.Int("putErrors", sum.PutErrors), slog.Int("ackErrors", sum.AckErrors),
		slog.Int("held", sum.Held), slog.String("stoppedBy", sum.StoppedBy),
		slog.Float64("maxLagMs", ms(sum.MaxLag)), slog.Float64("durationMs", ms(sum.Duration)),
	}
	level := slog.LevelInfo
	if sum.Cause != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("cause", sum.Cause.Error()))
	}
	if err != nil {
		level = slog.LevelError
	}
	s.log.LogAttrs(ctx, level, "sink invocation", attrs...)
	if s.observer != nil {
		s.observer.Observe(ctx, sum)
	}
	return sum, err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// redeliveries counts a delivery of m and returns how often it was delivered before: the broker's
// count, or this environment's when higher.
func (s *Sink) redeliveries(m pulsar.Message) int {
	id := m.Topic() + "|" + m.ID().String()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) >= maxSeen {
		clear(s.seen)
	}
	s.seen[id]++
	return max(int(m.RedeliveryCount()), s.seen[id]-1)
}

// forget drops the delivery counts of acknowledged messages.
func (s *Sink) forget(items []*item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range items {
		delete(s.seen, it.msg.Topic()+"|"+it.msg.ID().String())
	}
}
