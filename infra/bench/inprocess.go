package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/internal/config"
	"github.com/streambridge/kinesis-pulsar/internal/logging"
	"github.com/streambridge/kinesis-pulsar/internal/metrics"
	"github.com/streambridge/kinesis-pulsar/internal/producer"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/internal/relay/senders"
	"github.com/streambridge/kinesis-pulsar/tests/pulsarfake"
)

// FunctionConfig loads the function's configuration exactly as the bootstrap does, from nothing but
// PULSAR_SERVICE_URL and PULSAR_TOPIC: every other setting takes its documented default.
func FunctionConfig(serviceURL, topic string) (config.Config, error) {
	vars := map[string]string{config.VarServiceURL: serviceURL, config.VarTopic: topic}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		return config.Config{}, fmt.Errorf("function configuration: %w", err)
	}
	cfg.Producer.Logger = logging.New(io.Discard, func(string) string { return "" })
	return cfg, nil
}

// Handler is the function's handler in this process: relay, producer pool, EMF metrics and the summary
// log line, wired as functions/kinesis-to-pulsar/main.go wires them, with the output discarded.
type Handler struct {
	Pool  *producer.Pool
	Relay *relay.Relay
}

// NewHandler builds the handler for topic.
func NewHandler(serviceURL, topic string) (*Handler, error) {
	cfg, err := FunctionConfig(serviceURL, topic)
	if err != nil {
		return nil, err
	}
	log := logging.New(io.Discard, func(string) string { return "" })
	pool := producer.NewPool(cfg.Producer)
	emf := relay.EMFObserver{EMF: metrics.New(io.Discard, cfg.MetricsNamespace, "kinesis-to-pulsar", relay.MetricSchema)}
	return &Handler{Pool: pool, Relay: relay.New(cfg.Relay, senders.FromPool(pool), nil, emf, log)}, nil
}

// Run handles one batch and checks that every record was delivered.
func (h *Handler) Run(ctx context.Context, ev events.KinesisEvent) (time.Duration, error) {
	start := time.Now()
	resp, err := h.Relay.Handle(ctx, ev)
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("handler: %w", err)
	}
	if len(resp.BatchItemFailures) > 0 {
		return d, fmt.Errorf("handler: batch not delivered, retry from %s", resp.BatchItemFailures[0].ItemIdentifier)
	}
	return d, nil
}

// Close closes the pool.
func (h *Handler) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.Pool.Close(ctx)
}

// Messages runs the handler's own mapping over ev against a recording producer and returns the
// messages it would send, in order: the ceiling publishes exactly these (keys, properties, event
// times, producer kinds), so the two differ only in the handler's own work.
func Messages(ctx context.Context, ev events.KinesisEvent) ([]pulsarfake.Message, error) {
	cfg, err := FunctionConfig("pulsar://127.0.0.1:6650", "persistent://public/default/recorded")
	if err != nil {
		return nil, err
	}
	rec := pulsarfake.New(nil)
	r := relay.New(cfg.Relay, rec, nil, nil, logging.New(io.Discard, func(string) string { return "" }))
	resp, err := r.Handle(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) > 0 {
		return nil, fmt.Errorf("recording the handler's messages: %v %v", resp, err)
	}
	return rec.Messages, nil
}

// Ceiling is a bare pulsar-client-go producer: SendAsync of prepared messages, a flush, and a wait for
// every receipt. Its producers come from a producer.Pool of its own, so client and producer options are
// the function's by construction; nothing of the relay runs.
type Ceiling struct {
	Pool  *producer.Pool
	Topic string
}

// NewCeiling returns a ceiling publisher for topic.
func NewCeiling(serviceURL, topic string) (*Ceiling, error) {
	cfg, err := FunctionConfig(serviceURL, topic)
	if err != nil {
		return nil, err
	}
	return &Ceiling{Pool: producer.NewPool(cfg.Producer), Topic: topic}, nil
}

// Run publishes msgs and waits for every receipt; it fails on the first send error.
func (c *Ceiling) Run(ctx context.Context, msgs []pulsarfake.Message) (time.Duration, error) {
	var prods [3]relay.Sender
	for _, m := range msgs {
		if prods[m.Kind] == nil {
			p, _, err := senders.FromPool(c.Pool).Sender(ctx, c.Topic, m.Kind)
			if err != nil {
				return 0, fmt.Errorf("ceiling: %w", err)
			}
			prods[m.Kind] = p
		}
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	wg.Add(len(msgs))
	cb := func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
		wg.Done()
	}
	start := time.Now()
	for _, m := range msgs {
		prods[m.Kind].SendAsync(ctx, m.Msg, cb)
	}
	if p := prods[relay.Batched]; p != nil {
		if err := p.FlushWithCtx(ctx); err != nil {
			return 0, fmt.Errorf("ceiling: flush: %w", err)
		}
	}
	wg.Wait()
	d := time.Since(start)
	if firstErr != nil {
		return d, fmt.Errorf("ceiling: send: %w", firstErr)
	}
	return d, nil
}

// Close closes the pool.
func (c *Ceiling) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Pool.Close(ctx)
}

// Allocs counts heap allocations of this process over a run (every goroutine: the client's as well).
type Allocs struct {
	Objects uint64
	Bytes   uint64
}

// Measure runs fn between two reads of the allocator's counters, outside fn's own timing.
func Measure(fn func() (time.Duration, error)) (time.Duration, Allocs, error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d, err := fn()
	runtime.ReadMemStats(&after)
	return d, Allocs{Objects: after.Mallocs - before.Mallocs, Bytes: after.TotalAlloc - before.TotalAlloc}, err
}

// errNotDelivered marks a bootstrap answer that names a record to retry.
var errNotDelivered = errors.New("batch not delivered")
