// Package pulsarfake is the one fake broker behind the relay's Senders port: for the faults a real
// broker cannot produce on demand (a chosen message failing, answers late, out of order or never) and
// for runs that need no broker at all (the relay's benchmarks, the samples' tests, the benchmark's
// recording of the handler's messages). Everything else runs against a real broker.
package pulsarfake

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/streambridge/kinesis-pulsar/internal/relay"
)

// Answer decides what the broker does with the n-th message (from 0) sent on a topic: the receipt
// after delay, or err; never leaves the message unanswered. It runs under the broker's lock.
type Answer func(topic string, n int, m *pulsar.ProducerMessage) (delay time.Duration, err error, never bool)

// Message is one message as the relay handed it over, with the topic and kind of its sender.
type Message struct {
	Topic string
	Kind  relay.Kind
	Msg   *pulsar.ProducerMessage
}

// Broker implements relay.Senders. A message answered without delay is answered inside SendAsync;
// one with a delay, from a goroutine of its own. Read the exported fields once the relay has
// returned (a delayed answer may still come later: Events then grows).
type Broker struct {
	answer Answer

	// Err makes every Sender call fail; Refuse makes it fail for one topic.
	Err    error
	Refuse map[string]error
	// NoRecord keeps no messages (benchmarks send millions).
	NoRecord bool

	mu       sync.Mutex
	counts   map[string]int
	senders  map[key]*sender
	Messages []Message      // every message sent, in order
	Events   []string       // "send <topic> <n>", "ack <topic> <n>", "discard <topic>/<kind>", "reset"
	Attempts map[string]int // Sender calls per topic
}

type key struct {
	topic string
	kind  relay.Kind
}

// New returns a broker answering as a says; nil confirms every message at once.
func New(a Answer) *Broker {
	if a == nil {
		a = func(string, int, *pulsar.ProducerMessage) (time.Duration, error, bool) { return 0, nil, false }
	}
	return &Broker{answer: a, counts: map[string]int{}, senders: map[key]*sender{}, Attempts: map[string]int{}}
}

// Topic returns the messages sent to topic, in order.
func (b *Broker) Topic(topic string) []*pulsar.ProducerMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*pulsar.ProducerMessage
	for _, m := range b.Messages {
		if m.Topic == topic {
			out = append(out, m.Msg)
		}
	}
	return out
}

// Saw reports whether event is among Events.
func (b *Broker) Saw(event string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Contains(b.Events, event)
}

// Sender returns the sender of topic and kind; created is true the first time (and after a reset).
func (b *Broker) Sender(_ context.Context, topic string, kind relay.Kind) (relay.Sender, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.Attempts[topic]++
	if b.Err != nil {
		return nil, false, b.Err
	}
	if err := b.Refuse[topic]; err != nil {
		return nil, false, err
	}
	k := key{topic, kind}
	s, ok := b.senders[k]
	if !ok {
		s = &sender{b: b, key: k}
		b.senders[k] = s
	}
	return s, !ok, nil
}

// Discard forgets the sender of topic and kind.
func (b *Broker) Discard(topic string, kind relay.Kind, _ relay.Sender) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logLocked("discard %s/%s", topic, kind)
	delete(b.senders, key{topic, kind})
}

// Begin brackets an invocation; a reset forgets every sender.
func (b *Broker) Begin() func(reset bool) {
	return func(reset bool) {
		if !reset {
			return
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		b.logLocked("reset")
		b.senders = map[key]*sender{}
	}
}

// Named implements relay.NamedSenders: the sender of topic and kind, under any name, with a Send that
// answers as a deduplicating broker answers a message it already holds (a receipt without a position:
// Dropped) and a Close that does nothing.
func (b *Broker) Named(ctx context.Context, topic string, kind relay.Kind, _ string) (relay.NamedSender, error) {
	s, _, err := b.Sender(ctx, topic, kind)
	if err != nil {
		return nil, err
	}
	return named{s.(*sender)}, nil
}

type named struct{ *sender }

func (named) Send(context.Context, *pulsar.ProducerMessage) (pulsar.MessageID, error) {
	return Dropped{}, nil
}
func (named) Close() {}

// Dropped is the id a deduplicating broker answers for a duplicate: ledger and entry -1.
type Dropped struct{ ID }

func (Dropped) LedgerID() int64 { return -1 }
func (Dropped) EntryID() int64  { return -1 }

func (b *Broker) logLocked(format string, args ...any) {
	if !b.NoRecord {
		b.Events = append(b.Events, fmt.Sprintf(format, args...))
	}
}

type sender struct {
	b   *Broker
	key key
}

func (s *sender) SendAsync(_ context.Context, m *pulsar.ProducerMessage, done func(pulsar.MessageID, *pulsar.ProducerMessage, error)) {
	b, topic := s.b, s.key.topic
	b.mu.Lock()
	n := b.counts[topic]
	b.counts[topic]++
	if !b.NoRecord {
		b.Messages = append(b.Messages, Message{Topic: topic, Kind: s.key.kind, Msg: m})
	}
	b.logLocked("send %s %d", topic, n)
	delay, err, never := b.answer(topic, n, m)
	b.mu.Unlock()
	answer := func() {
		b.mu.Lock()
		b.logLocked("ack %s %d", topic, n)
		b.mu.Unlock()
		if err != nil {
			done(nil, m, err)
			return
		}
		done(ID(n), m, nil)
	}
	switch {
	case never:
	case delay == 0:
		answer()
	default:
		go func() {
			time.Sleep(delay)
			answer()
		}()
	}
}

func (s *sender) FlushWithCtx(context.Context) error { return nil }

// ID is the message id of the n-th message on a topic: ledger 1, entry n.
type ID int64

func (id ID) Serialize() []byte   { return nil }
func (id ID) LedgerID() int64     { return 1 }
func (id ID) EntryID() int64      { return int64(id) }
func (id ID) BatchIdx() int32     { return 0 }
func (id ID) PartitionIdx() int32 { return 0 }
func (id ID) BatchSize() int32    { return 0 }
func (id ID) String() string      { return fmt.Sprintf("1:%d:0", int64(id)) }
