package producer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// Named creates a producer of its own for the caller, on the warm client, with a fixed name, for
// PROCESSING_GUARANTEE=effectivelyOnce: the broker deduplicates on the producer name and the sequence
// ids the caller sets. Batching is off (a batch carries only its first message's sequence id, so a
// batch mixing duplicates and new messages loses the new ones): kind Batched is made Unbatched, which
// chunks when Options.Chunking is set; DeadLetter always chunks. The caller closes the producer
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
	if kind == Batched {
		kind = Unbatched
	}
	o := p.producerOptions(key{topic, kind})
	o.Name = name
	type result struct {
		prod pulsar.Producer
		err  error
	}
	for {
		done := make(chan result, 1)
		go func() {
			prod, err := client.CreateProducer(o)
			done <- result{prod, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-ctx.Done():
			go func() {
				// On error the client returns a typed nil producer: test the error, not the interface.
				if r := <-done; r.err == nil {
					r.prod.Close()
				}
			}()
			return nil, fmt.Errorf("creating producer %s for %s: %w", name, topic, context.Cause(ctx))
		}
		if r.err == nil {
			return r.prod, nil
		}
		// The previous invocation's producer may still hold the name while its close goes through (a
		// slow link): wait for it, within ctx.
		if strings.Contains(r.err.Error(), "ProducerBusy") {
			select {
			case <-time.After(namedBusyRetry):
				continue
			case <-ctx.Done():
			}
		}
		err := fmt.Errorf("creating producer %s for %s: %w", name, topic, r.err)
		if rerr := p.rejection(); rerr != nil {
			err = fmt.Errorf("%w: %w", err, rerr)
		}
		return nil, err
	}
}

// namedBusyRetry is the pause before creating a named producer again after ProducerBusy.
const namedBusyRetry = 100 * time.Millisecond
