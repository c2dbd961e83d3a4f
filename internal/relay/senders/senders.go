// Package senders gives the relay its Senders port over the shared Pulsar client pool
// (internal/producer), translating the relay's kinds into the pool's.
package senders

import (
	"context"
	"fmt"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/streambridge/kinesis-pulsar/internal/producer"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
)

// Pool adapts a producer.Pool to relay.Senders.
type Pool struct {
	pool *producer.Pool
}

// FromPool returns the relay's senders over p.
func FromPool(p *producer.Pool) Pool { return Pool{p} }

var kinds = map[relay.Kind]producer.Kind{
	relay.Batched:    producer.Batched,
	relay.Unbatched:  producer.Unbatched,
	relay.DeadLetter: producer.DeadLetter,
}

func kind(k relay.Kind) producer.Kind {
	pk, ok := kinds[k]
	if !ok {
		panic(fmt.Sprintf("senders: unknown relay.Kind %d", k))
	}
	return pk
}

// Sender returns the pool's producer for topic and kind.
func (p Pool) Sender(ctx context.Context, topic string, k relay.Kind) (relay.Sender, bool, error) {
	prod, created, err := p.pool.Producer(ctx, topic, kind(k))
	if err != nil {
		return nil, created, err
	}
	return prod, created, nil
}

// Discard forgets a producer the client closed for good.
func (p Pool) Discard(topic string, k relay.Kind, s relay.Sender) {
	if prod, ok := s.(pulsar.Producer); ok {
		p.pool.Discard(topic, kind(k), prod)
	}
}

// Begin brackets an invocation.
func (p Pool) Begin() func(reset bool) {
	inv := p.pool.Begin()
	return func(reset bool) { p.pool.End(inv, reset) }
}

// Named creates a producer of the caller's own with a fixed name (relay.NamedSenders).
func (p Pool) Named(ctx context.Context, topic string, k relay.Kind, name string) (relay.NamedSender, error) {
	prod, err := p.pool.Named(ctx, topic, kind(k), name)
	if err != nil {
		return nil, err // not prod: the client returns a typed nil on error
	}
	return prod, nil
}
