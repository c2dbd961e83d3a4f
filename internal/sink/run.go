package sink

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/streambridge/kinesis-pulsar/internal/kpl"
)

// Kinesis limits.
const (
	maxBatchRecords = 500     // records per PutRecords call
	maxBatchBytes   = 5 << 20 // data and partition keys per PutRecords call
	maxRecordBytes  = 1 << 20 // data and partition key of one record
	// aggregateLimit leaves room in a record for the aggregate's own partition key (at most 256
	// characters of up to 4 bytes).
	aggregateLimit = maxRecordBytes - 1024
	// aggregateOverhead bounds the magic, the MD5 trailer and a record's protobuf framing.
	aggregateOverhead = 4 + 16
	perRecordOverhead = 24
)

// Properties of a dead-lettered message, beside the original ones.
const (
	PropDeadLetterReason = "sink.dead.letter.reason"
	PropSourceTopic      = "sink.source.topic"
	PropSourceMessageID  = "sink.source.message.id"
)

// item is one received message.
type item struct {
	seq    int // receive order
	msg    pulsar.Message
	key    string // Kinesis partition key
	data   []byte
	reason string // why it is dead-lettered
}

// entry is one Kinesis record: a message, or a KPL aggregate of several.
type entry struct {
	items []*item
	key   string
	lane  string // what perKey keeps one write in flight for: the key, or the shard with aggregation
	data  []byte
	size  int // data bytes so far (estimated for an aggregate being filled)
	agg   bool
}

// outcome is what a write or a dead-letter send reports back to the loop.
type outcome struct {
	entries   []*entry
	codes     []string // per entry: "" when confirmed, else the error code
	dead      []*item  // a dead-letter send
	err       error
	acked     int
	ackErr    error
	maxLag    time.Duration
	resharded bool // an aggregate landed on another shard than the map said
}

// run is one invocation's state; only the loop's goroutine touches it.
type run struct {
	s        *Sink
	ev       Event
	sum      *Summary
	consumer Consumer
	shards   *shardMap // with aggregation

	pending  []*item         // to write, in receive order
	dead     []*item         // to dead-letter
	busy     map[string]bool // perKey: lanes with a write in flight
	held     map[string]bool // perKey: keys blocked by a message Kinesis cannot accept
	inflight int
	done     chan outcome
	seq      int

	backoff   time.Duration
	notBefore time.Time
	stale     bool // the shard map must be read again once nothing is in flight
	writing   bool
}

func (r *run) perKey() bool { return r.s.opts.Ordering == OrderPerKey }

func (r *run) lane(it *item) string {
	if r.shards != nil {
		return r.shards.shardOf(it.key)
	}
	return it.key
}

// loop receives and writes until a stop condition, then waits for the writes in flight.
func (r *run) loop(stopCtx, writeCtx context.Context) {
	recvCtx, stopReceiving := context.WithCancel(stopCtx)
	in := make(chan pulsar.Message, maxBatchRecords)
	recvErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { receive(recvCtx, r.consumer, in, recvErr) })
	defer func() {
		stopReceiving()
		wg.Wait()
	}()

	receiving, stopC := true, stopCtx.Done()
	r.writing = true
	stop := func(reason string) {
		if receiving {
			receiving = false
			r.sum.StoppedBy = reason
			stopReceiving()
		}
	}
	var idleC <-chan time.Time
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	if r.ev.IdleMs > 0 {
		idle.Reset(time.Duration(r.ev.IdleMs) * time.Millisecond)
		idleC = idle.C
	}
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()

	for {
		if r.writing {
			if wait := r.dispatch(writeCtx); wait > 0 {
				retry.Reset(wait)
			}
		}
		if !receiving && r.inflight == 0 && (!r.writing || len(r.pending)+len(r.dead) == 0) {
			return
		}
		var inC <-chan pulsar.Message
		if receiving && len(r.pending)+len(r.dead)+r.inflight*maxBatchRecords < r.s.opts.MaxBuffered {
			inC = in
		}
		select {
		case m := <-inC:
			r.accept(m)
			// Take what else has arrived, so a write carries as much as is ready.
			for drained := false; !drained && len(r.pending) < maxBatchRecords && !r.reachedMax(); {
				select {
				case m := <-in:
					r.accept(m)
				default:
					drained = true
				}
			}
			if idleC != nil {
				idle.Reset(time.Duration(r.ev.IdleMs) * time.Millisecond)
			}
			if r.reachedMax() {
				stop(StopMaxMessages)
			}
		case err := <-recvErr:
			r.sum.Cause = fmt.Errorf("receiving: %w", err)
			stop(StopDeadline)
		case o := <-r.done:
			r.complete(o)
			if idleC != nil && receiving {
				// Not idle while writes complete: the buffer may be what held new messages back.
				idle.Reset(time.Duration(r.ev.IdleMs) * time.Millisecond)
			}
		case <-retry.C:
		case <-idleC:
			stop(StopIdle)
		case <-stopC:
			stopC = nil
			stop(StopDeadline)
			r.writing = false
			if len(r.pending)+len(r.dead)+r.inflight > 0 {
				r.sum.StoppedBy = StopDeadline // work was left for the next invocation
			}
		}
	}
}

func (r *run) reachedMax() bool {
	return r.ev.MaxMessages > 0 && r.sum.Received >= r.ev.MaxMessages
}

func receive(ctx context.Context, c Consumer, out chan<- pulsar.Message, errc chan<- error) {
	for {
		m, err := c.Receive(ctx)
		if err != nil {
			if ctx.Err() == nil {
				errc <- err
			}
			return
		}
		select {
		case out <- m:
		case <-ctx.Done():
			return // not acknowledged: redelivered to the next invocation
		}
	}
}

// accept turns a received message into an item to write or to dead-letter.
func (r *run) accept(m pulsar.Message) {
	r.sum.Received++
	it := &item{seq: r.seq, msg: m}
	r.seq++
	opts := &r.s.opts
	if n := r.s.redeliveries(m); n > opts.MaxRedeliveries && opts.DeadLetterTopic != "" {
		it.reason = fmt.Sprintf("redelivered %d times, more than SINK_MAX_REDELIVERIES=%d", n, opts.MaxRedeliveries)
		r.dead = append(r.dead, it)
		return
	}
	it.key = opts.PartitionKey.of(m)
	it.data = opts.Format.data(m)
	if size := len(it.data) + len(it.key); size > maxRecordBytes {
		reason := fmt.Sprintf("a %d-byte record (data and partition key) exceeds Kinesis's %d-byte limit", size, maxRecordBytes)
		if opts.DeadLetterTopic != "" {
			it.reason = reason
			r.dead = append(r.dead, it)
			return
		}
		r.s.log.Error("message Kinesis cannot accept is left unacknowledged; set SINK_DEAD_LETTER_TOPIC",
			"topic", m.Topic(), "messageId", m.ID().String(), "reason", reason)
		r.sum.Cause = errors.New(reason)
		if r.perKey() {
			r.held[it.key] = true
		}
		r.sum.Held++
		return
	}
	if r.perKey() && r.held[it.key] {
		r.sum.Held++ // behind a message that cannot be written: its key's order forbids writing it
		return
	}
	r.pending = append(r.pending, it)
}

// dispatch starts dead-letter sends and writes while the limits allow; it returns how long to wait
// before the backoff allows the next write, 0 when not waiting.
func (r *run) dispatch(ctx context.Context) time.Duration {
	if len(r.dead) > 0 && r.inflight < r.s.opts.MaxInFlight {
		items := r.dead
		r.dead = nil
		r.inflight++
		go r.deadLetter(ctx, items)
	}
	if len(r.pending) == 0 {
		return 0
	}
	if wait := time.Until(r.notBefore); wait > 0 {
		return wait
	}
	if r.stale {
		if r.inflight > 0 {
			return 0 // a key moved shards: no aggregate until the old shard's writes are confirmed
		}
		m, err := listShards(ctx, r.s.kinesis, r.s.opts.StreamARN)
		if err != nil {
			r.sum.Cause = err
			return r.failed()
		}
		r.shards, r.stale = m, false
	}
	for r.inflight < r.s.opts.MaxInFlight {
		batch, err := r.nextBatch()
		if err != nil {
			r.sum.Cause = err
			return 0
		}
		if len(batch) == 0 {
			break
		}
		r.inflight++
		go r.write(ctx, batch)
	}
	return 0
}

// nextBatch takes the next PutRecords call's records from pending. With perKey a lane that has a
// record in flight is skipped, and so is everything after a record of a lane that was skipped.
func (r *run) nextBatch() ([]*entry, error) {
	var batch []*entry
	open := map[string]*entry{} // aggregates being filled, by lane
	blocked := map[string]bool{}
	size, rest := 0, r.pending[:0]
	skip := func(it *item, lane string) {
		rest = append(rest, it)
		blocked[lane] = true
	}
	for _, it := range r.pending {
		lane := r.lane(it)
		if r.perKey() && (r.busy[lane] || blocked[lane]) {
			skip(it, lane)
			continue
		}
		n := len(it.data) + perRecordOverhead + len(it.key)
		if e := open[lane]; e != nil {
			if e.size+n <= aggregateLimit {
				e.items = append(e.items, it)
				e.size += n
				size += n
				continue
			}
			if r.perKey() {
				skip(it, lane)
				continue
			}
		}
		agg := r.shards != nil && aggregateOverhead+n <= aggregateLimit
		recSize := len(it.data) + len(it.key)
		if agg {
			recSize = aggregateOverhead + n + len(it.key)
		}
		if len(batch) == maxBatchRecords || size+recSize > maxBatchBytes {
			skip(it, lane)
			continue
		}
		e := &entry{items: []*item{it}, key: it.key, lane: lane, agg: agg, size: recSize}
		batch = append(batch, e)
		size += recSize
		if agg {
			open[lane] = e
		} else if r.perKey() {
			blocked[lane] = true
		}
	}
	clear(r.pending[len(rest):])
	r.pending = rest
	for _, e := range batch {
		if r.perKey() {
			r.busy[e.lane] = true
		}
		if !e.agg {
			e.data = e.items[0].data
			continue
		}
		recs := make([]kpl.Record, len(e.items))
		for i, it := range e.items {
			recs[i] = kpl.Record{PartitionKey: it.key, Data: it.data}
		}
		data, err := kpl.Aggregate(recs)
		if err != nil {
			return nil, fmt.Errorf("aggregating %d messages: %w", len(recs), err)
		}
		e.data = data
	}
	return batch, nil
}

// write puts one batch, then acknowledges the messages of every record Kinesis confirmed.
func (r *run) write(ctx context.Context, batch []*entry) {
	in := &kinesis.PutRecordsInput{StreamARN: aws.String(r.s.opts.StreamARN), Records: make([]types.PutRecordsRequestEntry, len(batch))}
	for i, e := range batch {
		in.Records[i] = types.PutRecordsRequestEntry{Data: e.data, PartitionKey: aws.String(e.key)}
	}
	o := outcome{entries: batch, codes: make([]string, len(batch))}
	out, err := r.s.kinesis.PutRecords(ctx, in)
	if err == nil && len(out.Records) != len(batch) {
		err = fmt.Errorf("PutRecords answered %d results for %d records", len(out.Records), len(batch))
	}
	now := time.Now()
	var ids []pulsar.MessageID
	for i, e := range batch {
		switch {
		case err != nil:
			o.codes[i] = errorCode(err)
		case out.Records[i].ErrorCode != nil:
			o.codes[i] = *out.Records[i].ErrorCode
			if o.err == nil {
				o.err = fmt.Errorf("PutRecords: %s: %s", o.codes[i], aws.ToString(out.Records[i].ErrorMessage))
			}
		default:
			if e.agg && aws.ToString(out.Records[i].ShardId) != e.lane {
				o.resharded = true
			}
			for _, it := range e.items {
				ids = append(ids, it.msg.ID())
				o.maxLag = max(o.maxLag, lag(it.msg, now))
			}
		}
	}
	if err != nil {
		o.err = fmt.Errorf("PutRecords: %w", err)
	}
	if len(ids) > 0 {
		if o.ackErr = ackWithin(ctx, r.consumer, ids); o.ackErr == nil {
			o.acked = len(ids)
		}
	}
	r.done <- o
}

// ackWithin acknowledges ids, waiting no longer than ctx for the broker.
func ackWithin(ctx context.Context, c Consumer, ids []pulsar.MessageID) error {
	done := make(chan error, 1)
	go func() { done <- c.AckIDList(ids) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("acknowledging %d messages: %w", len(ids), err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("acknowledging %d messages: %w", len(ids), context.Cause(ctx))
	}
}

// deadLetter sends items to the dead-letter topic with the reason, then acknowledges them.
func (r *run) deadLetter(ctx context.Context, items []*item) {
	msgs := make([]*pulsar.ProducerMessage, len(items))
	ids := make([]pulsar.MessageID, len(items))
	for i, it := range items {
		props := map[string]string{}
		for k, v := range it.msg.Properties() {
			props[k] = v
		}
		props[PropDeadLetterReason] = it.reason
		props[PropSourceTopic] = it.msg.Topic()
		props[PropSourceMessageID] = it.msg.ID().String()
		msgs[i] = &pulsar.ProducerMessage{Payload: it.msg.Payload(), Key: it.msg.Key(), Properties: props, EventTime: it.msg.EventTime()}
		ids[i] = it.msg.ID()
	}
	o := outcome{dead: items}
	if o.err = r.s.pulsar.Send(ctx, r.s.opts.DeadLetterTopic, msgs); o.err == nil {
		if o.ackErr = ackWithin(ctx, r.consumer, ids); o.ackErr == nil {
			o.acked = len(ids)
		}
	}
	r.done <- o
}

// complete takes a write's or dead-letter send's outcome into the run.
func (r *run) complete(o outcome) {
	r.inflight--
	r.sum.Acknowledged += o.acked
	if o.ackErr != nil {
		r.sum.AckErrors += max(len(o.dead), countItems(o.entries, o.codes))
		r.sum.Cause = o.ackErr
	}
	if o.dead != nil {
		if o.err != nil {
			// Left unacknowledged: the next invocation receives them again.
			r.sum.Cause = fmt.Errorf("dead-lettering %d messages: %w", len(o.dead), o.err)
			return
		}
		r.sum.DeadLettered += len(o.dead)
		if o.ackErr == nil {
			r.s.forget(o.dead)
		}
		return
	}
	var retry []*item
	for i, e := range o.entries {
		delete(r.busy, e.lane)
		if o.codes[i] == "" {
			r.sum.RecordsPut++
			r.sum.Put += len(e.items)
			r.sum.BytesPut += int64(len(e.data))
			if o.ackErr == nil {
				r.s.forget(e.items)
			}
			continue
		}
		r.sum.PutErrors++
		if throttled(o.codes[i]) {
			r.sum.Throttles++
		}
		retry = append(retry, e.items...)
	}
	r.sum.MaxLag = max(r.sum.MaxLag, o.maxLag)
	r.stale = r.stale || o.resharded
	if len(retry) == 0 {
		r.backoff = 0
		return
	}
	r.sum.Cause = o.err
	r.sum.Retries += len(retry)
	// Back in receive order, so a key's retried record goes before its later ones.
	r.pending = append(r.pending, retry...)
	slices.SortFunc(r.pending, func(a, b *item) int { return cmp.Compare(a.seq, b.seq) })
	r.failed()
}

// failed grows the backoff (exponential, with jitter over its upper half) and returns the wait.
func (r *run) failed() time.Duration {
	o := &r.s.opts
	r.backoff = min(max(2*r.backoff, o.RetryInitialDelay), o.RetryMaxDelay)
	wait := r.backoff/2 + rand.N(r.backoff/2+1)
	r.notBefore = time.Now().Add(wait)
	return wait
}

func countItems(entries []*entry, codes []string) int {
	n := 0
	for i, e := range entries {
		if codes[i] == "" {
			n += len(e.items)
		}
	}
	return n
}

// errorCode names a failed call's error the way PutRecords names a failed record's.
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "Timeout"
	}
	return "RequestError"
}

func throttled(code string) bool {
	switch code {
	case "ProvisionedThroughputExceededException", "KMSThrottlingException", "LimitExceededException", "ThrottlingException":
		return true
	}
	return false
}
