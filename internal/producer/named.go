package producer

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/pulsar-client-go/pulsar"
)

// Named creates a producer of its own for the caller, on the warm client, with a fixed name, for
// PROCESSING_GUARANTEE=effectivelyOnce: the broker deduplicates on the producer name and the sequence
// ids the caller sets. Batching is off (a batch carries only its first message's sequence id, so a
// batch mixing duplicates and new messages loses the new ones) and chunking on (a record too large
// for the broker fails before it is sent, while later ones go on). The caller closes the producer
// before its invocation ends: a frozen environment holding the name would refuse it to the next.
// The pool does not keep it. Creation is bounded by ctx: a producer created after ctx ended is closed.
func (p *Pool) Named(ctx context.Context, topic string, kind Kind, name string) (pulsar.Producer, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("producer pool is closed")
	}
	client, err := p.clientLocked(ctx)
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	o := p.producerOptions(key{topic, kind})
	o.Name = name
	o.DisableBatching, o.EnableChunking = true, true
	o.BatchingMaxPublishDelay, o.BatchingMaxMessages, o.BatchingMaxSize, o.BatcherBuilderType = 0, 0, 0, 0
	type result struct {
		prod pulsar.Producer
		err  error
	}
	done := make(chan result, 1)
	go func() {
		prod, err := client.CreateProducer(o)
		done <- result{prod, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			err := fmt.Errorf("creating producer %s for %s: %w", name, topic, r.err)
			if rerr := p.rejection(); rerr != nil {
				err = fmt.Errorf("%w: %w", err, rerr)
			}
			return nil, err
		}
		return r.prod, nil
	case <-ctx.Done():
		go func() {
			// On error the client returns a typed nil producer: test the error, not the interface.
			if r := <-done; r.err == nil {
				r.prod.Close()
			}
		}()
		return nil, fmt.Errorf("creating producer %s for %s: %w", name, topic, context.Cause(ctx))
	}
}

// ProducerName is the name of a shard's producer in PROCESSING_GUARANTEE=effectivelyOnce: one per
// stream, shard and epoch (the epoch comes from the shard's sequence state).
func ProducerName(stream, shardID, epoch string) string {
	return strings.Join([]string{"kp", stream, shardID, epoch}, "-")
}
