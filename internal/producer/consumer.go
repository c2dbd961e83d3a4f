package producer

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/pulsar-client-go/pulsar"
)

// Subscribe opens a consumer on the warm client (creating the client if needed), bounded by ctx. The
// caller closes the consumer before the invocation's End.
func (p *Pool) Subscribe(ctx context.Context, opts pulsar.ConsumerOptions) (pulsar.Consumer, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("producer pool is closed")
	}
	client, err := p.clientLocked(ctx)
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	type result struct {
		c   pulsar.Consumer
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := client.Subscribe(opts)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			r.err = fmt.Errorf("subscribing %s: %w", opts.SubscriptionName, r.err)
			if rerr := p.rejection(); rerr != nil {
				r.err = fmt.Errorf("%w: %w", r.err, rerr)
			}
		}
		return r.c, r.err
	case <-ctx.Done():
		// The client keeps trying until its operation timeout; a consumer it opens late is closed.
		go func() {
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, fmt.Errorf("subscribing %s: %w", opts.SubscriptionName, context.Cause(ctx))
	}
}
