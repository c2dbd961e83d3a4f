package relay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-lambda-go/events"
)

// state of one message. The zero value means not sent (or sent and not yet answered).
type state uint8

const (
	unanswered   state = iota
	confirmed          // the broker's receipt arrived
	failed             // will be retried by Lambda
	toDeadLetter       // can never reach its topic; waiting for the dead-letter phase
	deadLettered       // written to the dead-letter topic
)

type outcome struct {
	state   state
	id      pulsar.MessageID
	err     error
	latency time.Duration
}

type producerKey struct {
	topic string
	kind  Kind
}

// batch is the state of one invocation. Callbacks of the Pulsar client update it concurrently; late
// callbacks, after Handle returned, update a batch nobody reads any more.
type batch struct {
	r       *Relay
	sources []source
	msgs    []message
	starts  []int // record i owns msgs[starts[i]:starts[i+1]]

	producers map[producerKey]Sender // this invocation's producers, looked up once
	// Producers that could not be created, with why: one attempt per topic and kind per batch. Each
	// attempt is a lookup and a CreateProducer round trip; thousands of records for a terminated topic
	// would otherwise spend the invocation on them (sender goroutine only).
	unavailable map[producerKey]error
	created     int
	// The producer of the previous message: consecutive messages almost always share it, and a struct
	// comparison is cheaper than hashing the topic (sender goroutine only).
	lastKey      producerKey
	lastProducer Sender

	issued int // messages sent or failed before sending, over both phases (sender goroutine only)

	mu        sync.Mutex
	out       []outcome
	completed int           // answers received, over both phases
	target    int           // answers awaited by await; -1 while not awaiting
	allDone   chan struct{} // closed when completed reaches target
	waitIdx   int           // message the sender waits for (per-key barrier), with waitCh
	waitCh    chan struct{}
	closed    map[producerKey]bool // producers that answered ErrProducerClosed
	stopped   bool                 // a failure that Lambda must retry: sending more only makes duplicates
	cause     error                // the first such failure
	deadline  bool                 // waiting ended at the stop deadline
	// noPublishTime: the invocation began past its publishing deadline
	noPublishTime bool
}

func (r *Relay) newBatch(records []events.KinesisEventRecord) *batch {
	sources, msgs, starts := r.plan(records)
	return &batch{
		r: r, sources: sources, msgs: msgs, starts: starts,
		producers: map[producerKey]Sender{},
		out:       make([]outcome, len(msgs)),
		target:    -1,
	}
}

// publish sends every message in batch order and waits for the answers, until done or ctx ends.
func (b *batch) publish(ctx context.Context) {
	var lastOnKey map[string]int // only when a key may use both producers: see barrier
	if b.mixedKinds() {
		lastOnKey = map[string]int{}
	}
	for i := range b.msgs {
		if ctx.Err() != nil || b.isStopped() {
			break
		}
		m := &b.msgs[i]
		s := &b.sources[m.record]
		if lastOnKey != nil && s.err == nil {
			k := b.r.key(s, m)
			if j, ok := lastOnKey[k]; ok && b.msgs[j].kind != m.kind {
				// Two producers do not order against each other: let the key's earlier message land
				// before this one leaves.
				if !b.awaitMessage(ctx, j) {
					break
				}
			}
			lastOnKey[k] = i
		}
		b.issued++
		if s.err != nil {
			b.complete(i, nil, s.err, 0)
			continue
		}
		p, err := b.producer(ctx, s.topic, m.kind)
		if err != nil {
			b.complete(i, nil, err, 0)
			if ctx.Err() != nil {
				b.markDeadline()
			}
			continue
		}
		sent := time.Now()
		p.SendAsync(ctx, b.r.producerMessage(s, m), func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			b.noteClosed(s.topic, m.kind, err)
			b.complete(i, id, err, time.Since(sent))
		})
	}
	b.flush(ctx)
	b.await(ctx)
}

// mixedKinds reports whether the batch uses both the batched and the unbatched producer.
func (b *batch) mixedKinds() bool {
	for i := 1; i < len(b.msgs); i++ {
		if b.msgs[i].kind != b.msgs[0].kind {
			return true
		}
	}
	return false
}

func (b *batch) producer(ctx context.Context, topic string, kind Kind) (Sender, error) {
	k := producerKey{topic, kind}
	if b.lastProducer != nil && b.lastKey == k {
		return b.lastProducer, nil
	}
	if p, ok := b.producers[k]; ok {
		b.lastKey, b.lastProducer = k, p
		return p, nil
	}
	if err, ok := b.unavailable[k]; ok {
		return nil, err
	}
	p, created, err := b.r.senders.Sender(ctx, topic, kind)
	if created {
		b.created++
	}
	if err != nil {
		if b.unavailable == nil {
			b.unavailable = map[producerKey]error{}
		}
		b.unavailable[k] = err
		return nil, err
	}
	b.producers[k] = p
	b.lastKey, b.lastProducer = k, p
	return p, nil
}

// flush pushes out the batches being filled; the receipts are awaited through the callbacks.
func (b *batch) flush(ctx context.Context) {
	for k, p := range b.producers {
		if k.kind == Batched {
			go func() { _ = p.FlushWithCtx(ctx) }()
		}
	}
}

// complete records the answer for message i. It may run on the sender's goroutine (errors found
// before sending) or on the client's.
func (b *batch) complete(i int, id pulsar.MessageID, err error, latency time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o := &b.out[i]
	switch {
	case o.state == toDeadLetter && err == nil:
		o.state, o.id = deadLettered, id
	case o.state == toDeadLetter:
		o.state, o.err = failed, err
		b.stopLocked(err)
	case o.state != unanswered:
		return // answered already
	case err == nil:
		o.state, o.id, o.latency = confirmed, id, latency
	case !b.r.opts.DeadLetterTopic.IsZero() && permanent(err):
		o.state, o.err = toDeadLetter, err
	default:
		o.state, o.err = failed, err
		b.stopLocked(err)
	}
	b.completed++
	if b.completed == b.target {
		close(b.allDone)
		b.target = -1
	}
	if b.waitCh != nil && b.waitIdx == i {
		close(b.waitCh)
		b.waitCh = nil
	}
}

// noteClosed remembers a producer the client closed for good, so the pool can forget it.
func (b *batch) noteClosed(topic string, kind Kind, err error) {
	if !errors.Is(err, pulsar.ErrProducerClosed) && !errors.Is(err, pulsar.ErrTopicTerminated) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed == nil {
		b.closed = map[producerKey]bool{}
	}
	b.closed[producerKey{topic, kind}] = true
}

// closedProducers returns the producers seen closed, with the instance this invocation used.
func (b *batch) closedProducers() map[producerKey]Sender {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[producerKey]Sender{}
	for k := range b.closed {
		if p, ok := b.producers[k]; ok {
			out[k] = p
		}
	}
	return out
}

// noTime stops the batch before anything is sent: the deadline margin leaves no time to publish.
func (b *batch) noTime(margin, left time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.noPublishTime = true
	b.stopLocked(fmt.Errorf("%w: the invocation had %v left, the deadline margin is %v; lower the margin or raise the function timeout",
		errNoPublishTime, left.Round(time.Millisecond), margin))
}

// errNoPublishTime: the deadline margin is not shorter than the invocation's time left.
var errNoPublishTime = errors.New("no time to publish")

func (b *batch) stopLocked(err error) {
	if !b.stopped {
		b.stopped, b.cause = true, err
	}
}

func (b *batch) isStopped() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stopped
}

// awaitMessage waits until message j is answered; false when ctx ended first.
func (b *batch) awaitMessage(ctx context.Context, j int) bool {
	b.mu.Lock()
	if b.out[j].state != unanswered {
		b.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	b.waitIdx, b.waitCh = j, ch
	b.mu.Unlock()
	b.flush(ctx)
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		b.mu.Lock()
		b.waitCh = nil
		b.mu.Unlock()
		b.markDeadline()
		return false
	}
}

func (b *batch) markDeadline() {
	b.mu.Lock()
	b.deadline = true
	b.mu.Unlock()
}

// await waits until every message issued so far is answered, or ctx ends.
func (b *batch) await(ctx context.Context) {
	b.mu.Lock()
	if b.completed == b.issued {
		b.mu.Unlock()
		return
	}
	done := make(chan struct{})
	b.allDone, b.target = done, b.issued
	b.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		b.mu.Lock()
		b.deadline = true
		b.target = -1
		b.mu.Unlock()
	}
}

// deadLetter writes the records that can never reach their topic to the dead-letter topic, until done
// or ctx ends. ctx is the dead letters' own budget: publishing may have used up all of its time.
func (b *batch) deadLetter(ctx context.Context) {
	if b.r.opts.DeadLetterTopic.IsZero() {
		return
	}
	b.mu.Lock()
	// Records after the first failure are retried by Lambda anyway: dead-lettering them now would
	// write them twice.
	limit := b.firstUndoneLocked(true)
	var todo []int
	for i := range b.msgs {
		if b.msgs[i].record >= limit && limit >= 0 {
			break
		}
		if b.out[i].state == toDeadLetter {
			todo = append(todo, i)
		}
	}
	b.mu.Unlock()
	if len(todo) == 0 {
		return
	}

	for _, i := range todo {
		if ctx.Err() != nil {
			break
		}
		m := &b.msgs[i]
		s := &b.sources[m.record]
		b.issued++
		topic, err := routeTo(b.r.opts.DeadLetterTopic, s.stream, s.rec.EventSourceArn)
		if err != nil {
			b.complete(i, nil, err, 0)
			continue
		}
		p, err := b.producer(ctx, topic, DeadLetter)
		if err != nil {
			b.complete(i, nil, err, 0)
			continue
		}
		b.mu.Lock()
		cause := b.out[i].err
		b.mu.Unlock()
		pm := b.r.producerMessage(s, m)
		if pm.Properties == nil {
			pm.Properties = map[string]string{}
		}
		pm.Properties[PropDeadLetterError] = cause.Error()
		pm.Properties[PropDeadLetterTopic] = s.topic
		b.r.log.Warn("dead-lettering record", "sequenceNumber", s.rec.Kinesis.SequenceNumber,
			"subSequenceNumber", m.sub, "shardId", s.shardID, "topic", s.topic, "deadLetterTopic", topic,
			"cause", cause)
		if deadLetterDoneAtSend() {
			b.complete(i, nil, nil, 0)
		}
		p.SendAsync(ctx, pm, func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			b.noteClosed(topic, DeadLetter, err)
			b.complete(i, id, err, 0)
		})
	}
	b.await(ctx)
}

// firstUndoneLocked returns the index of the first record with a message that is neither confirmed
// nor dead-lettered, or -1. With pendingDeadLetterDone, messages awaiting the dead-letter phase count
// as done.
func (b *batch) firstUndoneLocked(pendingDeadLetterDone bool) int {
	for rec := range b.sources {
		for i := b.starts[rec]; i < b.starts[rec+1]; i++ {
			switch b.out[i].state {
			case confirmed, deadLettered:
			case toDeadLetter:
				if !pendingDeadLetterDone {
					return rec
				}
			default:
				return rec
			}
		}
	}
	return -1
}

// permanent reports errors after which the record can never reach its topic.
func permanent(err error) bool {
	if errors.Is(err, errUnroutable) {
		return true
	}
	var perr *pulsar.Error
	if errors.As(err, &perr) {
		switch perr.Result() {
		case pulsar.MessageTooBig, pulsar.TopicTerminated, pulsar.InvalidTopicName, pulsar.InvalidMessage:
			return true
		}
	}
	// Creating a producer on a terminated topic fails with the broker's error as text only
	// ("server error: TopicTerminatedError: ..."), not as a *pulsar.Error.
	return err != nil && strings.Contains(err.Error(), "TopicTerminatedError")
}
