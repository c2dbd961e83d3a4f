package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-lambda-go/events"
)

// batch is the state of one invocation, in three parts with one owner each: the plan (read-only), the
// sender's state (its goroutine only) and, under mu, what the client's callbacks update: the ledger of
// answers, the waits on them and why sending stopped. Late callbacks, after Handle returned, update a
// batch nobody reads any more.
type batch struct {
	r       *Relay
	seq     *sequencing // effectively-once mode; nil otherwise
	sources []source
	msgs    []message
	send    sendState

	mu     sync.Mutex
	led    ledger
	wait   waits
	halt   halt
	closed map[senderKey]bool // senders that answered ErrProducerClosed or ErrTopicTerminated
}

type senderKey struct {
	topic string
	kind  Kind
}

// sendState belongs to the sender goroutine (publish, then deadLetter).
type sendState struct {
	senders map[senderKey]Sender // this invocation's senders, looked up once
	// Senders that could not be created, with why: one attempt per topic and kind per batch. Each
	// attempt is a lookup and a CreateProducer round trip; thousands of records for a terminated topic
	// would otherwise spend the invocation on them.
	unavailable map[senderKey]error
	created     int
	// The sender of the previous message: consecutive messages almost always share it, and a struct
	// comparison is cheaper than hashing the topic.
	lastKey senderKey
	last    Sender
	issued  int // messages sent or failed before sending, over both phases
}

// waits are what the sender waits for: every answer (await) or one message's (awaitMessage).
type waits struct {
	target  int           // answers awaited by await; -1 while not awaiting
	allDone chan struct{} // closed when the ledger's answers reach target
	idx     int           // message the sender waits for (per-key barrier), with ch
	ch      chan struct{}
}

// halt says why sending stopped early.
type halt struct {
	stopped       bool  // a failure that Lambda must retry: sending more only makes duplicates
	cause         error // the first such failure
	deadline      bool  // waiting ended at the stop deadline
	noPublishTime bool  // the invocation began past its publishing deadline
}

func (r *Relay) newBatch(records []events.KinesisEventRecord) *batch {
	sources, msgs, starts := r.plan(records)
	return &batch{
		r: r, sources: sources, msgs: msgs,
		send: sendState{senders: map[senderKey]Sender{}},
		led:  newLedger(starts, !r.opts.DeadLetterTopic.IsZero()),
		wait: waits{target: -1},
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
		b.send.issued++
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
		pm := b.r.producerMessage(s, m)
		b.seq.stamp(pm, i)
		p.SendAsync(ctx, pm, func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
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
	k := senderKey{topic, kind}
	if b.send.last != nil && b.send.lastKey == k {
		return b.send.last, nil
	}
	if p, ok := b.send.senders[k]; ok {
		b.send.lastKey, b.send.last = k, p
		return p, nil
	}
	if err, ok := b.send.unavailable[k]; ok {
		return nil, err
	}
	var p Sender
	var created bool
	var err error
	if b.seq != nil {
		p, err = b.seq.producer(ctx, topic, kind)
	} else {
		p, created, err = b.r.senders.Sender(ctx, topic, kind)
	}
	if created {
		b.send.created++
	}
	if err != nil {
		if b.send.unavailable == nil {
			b.send.unavailable = map[senderKey]error{}
		}
		b.send.unavailable[k] = err
		return nil, err
	}
	b.send.senders[k] = p
	b.send.lastKey, b.send.last = k, p
	return p, nil
}

// flush pushes out the batches being filled; the receipts are awaited through the callbacks.
func (b *batch) flush(ctx context.Context) {
	for k, p := range b.send.senders {
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
	counted, retry := b.led.answer(i, id, err, latency)
	if !counted {
		return
	}
	if retry != nil {
		b.stopLocked(retry)
	}
	if b.led.answered == b.wait.target {
		close(b.wait.allDone)
		b.wait.target = -1
	}
	if b.wait.ch != nil && b.wait.idx == i {
		close(b.wait.ch)
		b.wait.ch = nil
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
		b.closed = map[senderKey]bool{}
	}
	b.closed[senderKey{topic, kind}] = true
}

// closedProducers returns the producers seen closed, with the instance this invocation used.
func (b *batch) closedProducers() map[senderKey]Sender {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[senderKey]Sender{}
	for k := range b.closed {
		if p, ok := b.send.senders[k]; ok {
			out[k] = p
		}
	}
	return out
}

// noTime stops the batch before anything is sent: the deadline margin leaves no time to publish.
func (b *batch) noTime(margin, left time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.halt.noPublishTime = true
	b.stopLocked(fmt.Errorf("%w: the invocation had %v left, the deadline margin is %v; lower the margin or raise the function timeout",
		errNoPublishTime, left.Round(time.Millisecond), margin))
}

// errNoPublishTime: the deadline margin is not shorter than the invocation's time left.
var errNoPublishTime = errors.New("no time to publish")

func (b *batch) stopLocked(err error) {
	if !b.halt.stopped {
		b.halt.stopped, b.halt.cause = true, err
	}
}

func (b *batch) isStopped() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.halt.stopped
}

// awaitMessage waits until message j is answered; false when ctx ended first.
func (b *batch) awaitMessage(ctx context.Context, j int) bool {
	b.mu.Lock()
	if b.led.out[j].state != unanswered {
		b.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	b.wait.idx, b.wait.ch = j, ch
	b.mu.Unlock()
	b.flush(ctx)
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		b.mu.Lock()
		b.wait.ch = nil
		b.mu.Unlock()
		b.markDeadline()
		return false
	}
}

func (b *batch) markDeadline() {
	b.mu.Lock()
	b.halt.deadline = true
	b.mu.Unlock()
}

// await waits until every message issued so far is answered, or ctx ends.
func (b *batch) await(ctx context.Context) {
	b.mu.Lock()
	if b.led.answered == b.send.issued {
		b.mu.Unlock()
		return
	}
	done := make(chan struct{})
	b.wait.allDone, b.wait.target = done, b.send.issued
	b.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		b.mu.Lock()
		b.halt.deadline = true
		b.wait.target = -1
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
	todo := b.led.forDeadLetter()
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
		b.send.issued++
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
		cause := b.led.out[i].err
		b.mu.Unlock()
		pm := b.r.producerMessage(s, m)
		b.seq.stamp(pm, i)
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
