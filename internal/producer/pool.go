// Package producer holds the warm Pulsar client and its producers: created once per execution
// environment, reused across invocations, replaced when they can no longer be trusted.
package producer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/prometheus/client_golang/prometheus"
)

// Kind selects how a producer publishes.
type Kind int

const (
	// Batched carries ordinary records: batching on, for throughput.
	Batched Kind = iota
	// Unbatched carries records larger than a batch may hold: batching off (Pulsar requires it for
	// chunking), chunking on when Options.Chunking is set.
	Unbatched
	// DeadLetter carries records that can never reach their topic: batching off, chunking always on,
	// so even a record too large for the broker fits.
	DeadLetter
)

func (k Kind) String() string {
	switch k {
	case Batched:
		return "batched"
	case Unbatched:
		return "unbatched"
	case DeadLetter:
		return "dead-letter"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Credentials supply authentication and TLS material; internal/auth implements them from Secrets
// Manager. Apply is called each time a client is created; for pulsar+ssl:// URLs opts.TLSConfig is
// already set, and Apply may add a private CA and a client certificate to it.
type Credentials interface {
	Apply(ctx context.Context, opts *pulsar.ClientOptions) error
	// Refresh forgets cached material, so the next Apply fetches it again (after the broker rejected it).
	Refresh()
	// Rejected says why the broker refused the current credentials, nil when it did not: the client
	// reports a refused handshake only as a connection error.
	Rejected() error
}

// Options configure the client and its producers. Zero values take the documented defaults.
type Options struct {
	// ServiceURL is pulsar://host:6650 or pulsar+ssl://host:6651. Required.
	ServiceURL string
	// ConnectionTimeout bounds one TCP (and TLS) connect. Default 5 s; the OS default is about 2 minutes.
	ConnectionTimeout time.Duration
	// OperationTimeout bounds lookups and producer creation, which the client retries until it expires.
	// Default 10 s. The relay also bounds them by the invocation deadline.
	OperationTimeout time.Duration
	// KeepAliveInterval is the client's ping interval. It is also the idle time after which the warm
	// client is replaced before use: a frozen environment answers no pings, and a connection idle for
	// longer may have been closed by the broker or silently dropped on the way. Default 30 s.
	KeepAliveInterval time.Duration

	// Compression of message payloads. Default none.
	Compression pulsar.CompressionType
	// Hashing routes keys to partitions. Default JavaStringHash (Pulsar's default).
	Hashing pulsar.HashingScheme
	// BatchingMaxDelay, BatchingMaxMessages and BatchingMaxBytes bound a batch. Defaults 10 ms, 1000
	// messages, 128 KiB. The relay flushes at the end of every invocation, so the delay rarely matters.
	BatchingMaxDelay    time.Duration
	BatchingMaxMessages uint
	BatchingMaxBytes    uint
	// KeyBasedBatching makes each batch hold one key only, for Key_Shared consumers. Default off.
	KeyBasedBatching bool
	// MaxPendingMessages bounds the messages awaiting a receipt, per partition. Default 10,000.
	MaxPendingMessages int
	// Chunking lets the Unbatched producer split records above the broker's maximum message size.
	Chunking bool

	// TLSAllowInsecure accepts any broker certificate on pulsar+ssl://. Default false.
	TLSAllowInsecure bool
	// TLSValidateHostname checks that the broker certificate names the host connected to.
	TLSValidateHostname bool
	// Credentials for authentication and TLS; nil means none.
	Credentials Credentials

	// Logger receives the client's own log lines at Warn and above. Default slog.Default().
	Logger *slog.Logger
	// NamePrefix, when set, names every producer <NamePrefix>-<kind>-<random>, so a tool's messages
	// (the replay's) can be told from the function's; empty lets the broker name them.
	NamePrefix string
}

// Default values.
const (
	DefaultConnectionTimeout   = 5 * time.Second
	DefaultOperationTimeout    = 10 * time.Second
	DefaultKeepAliveInterval   = 30 * time.Second
	DefaultBatchingMaxDelay    = 10 * time.Millisecond
	DefaultBatchingMaxMessages = 1000
	DefaultBatchingMaxBytes    = 128 * 1024
	DefaultMaxPendingMessages  = 10000
	// maxReconnectBackoff caps the client's reconnect backoff (60 s by default): a Lambda invocation
	// cannot wait a minute for a broker that came back after a second.
	maxReconnectBackoff = 2 * time.Second
)

func (o Options) withDefaults() Options {
	if o.ConnectionTimeout <= 0 {
		o.ConnectionTimeout = DefaultConnectionTimeout
	}
	if o.OperationTimeout <= 0 {
		o.OperationTimeout = DefaultOperationTimeout
	}
	if o.KeepAliveInterval <= 0 {
		o.KeepAliveInterval = DefaultKeepAliveInterval
	}
	if o.BatchingMaxDelay <= 0 {
		o.BatchingMaxDelay = DefaultBatchingMaxDelay
	}
	if o.BatchingMaxMessages == 0 {
		o.BatchingMaxMessages = DefaultBatchingMaxMessages
	}
	if o.BatchingMaxBytes == 0 {
		o.BatchingMaxBytes = DefaultBatchingMaxBytes
	}
	if o.MaxPendingMessages <= 0 {
		o.MaxPendingMessages = DefaultMaxPendingMessages
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Pool hands out producers by topic and kind, creating the client and each producer on first use.
// It is safe for concurrent use, and so are invocations: each runs between Begin and End.
type Pool struct {
	opts Options
	now  func() time.Time

	mu        sync.Mutex
	client    pulsar.Client
	producers map[key]*entry
	lastUsed  time.Time // wall clock: a monotonic clock may not advance while the environment is frozen
	// running invocations: while one runs, the client is busy, not idle.
	running map[Invocation]struct{}
	lastInv Invocation
	// retired clients still wait for invocations that may be sending on their producers: the client
	// closes a producer's queue under a concurrent SendAsync ("send on closed channel").
	retired []*retiredClient
	closed  bool
}

// Invocation identifies one invocation between Begin and End.
type Invocation uint64

// retiredClient is a replaced client (or discarded producers, client nil), closed once the
// invocations in waitFor have ended.
type retiredClient struct {
	client    pulsar.Client
	producers map[key]*entry
	waitFor   map[Invocation]struct{}
}

type key struct {
	topic string
	kind  Kind
}

// entry is a producer being created or ready; concurrent callers share one creation.
type entry struct {
	ready        chan struct{}
	producer     pulsar.Producer
	err          error
	authRejected bool // creation failed because the broker rejected the credentials
	claimed      bool // a caller of Producer received it and counted it as created
}

// NewPool returns a pool; nothing connects until the first Producer call.
func NewPool(opts Options) *Pool {
	return &Pool{opts: opts.withDefaults(), now: time.Now, producers: map[key]*entry{}, running: map[Invocation]struct{}{}}
}

// Producer returns the warm producer for topic and kind, creating it (and the client) if needed;
// created is true for the first caller to receive a newly created producer (the ProducerCreated
// metric). Creation is bounded by ctx: when ctx ends first, Producer returns its error and the producer
// still being created is kept for the next call.
func (p *Pool) Producer(ctx context.Context, topic string, kind Kind) (prod pulsar.Producer, created bool, err error) {
	return p.producer(ctx, topic, kind, true, false)
}

// Warm creates the producer for topic and kind ahead of the first invocation, which will still count
// it as created.
func (p *Pool) Warm(ctx context.Context, topic string, kind Kind) error {
	_, _, err := p.producer(ctx, topic, kind, false, false)
	return err
}

func (p *Pool) producer(ctx context.Context, topic string, kind Kind, claim, retried bool) (prod pulsar.Producer, created bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, errors.New("producer pool is closed")
	}
	k := key{topic, kind}
	e, ok := p.producers[k]
	if !ok {
		client, err := p.clientLocked(ctx)
		if err != nil {
			p.mu.Unlock()
			return nil, false, err
		}
		e = &entry{ready: make(chan struct{})}
		p.producers[k] = e
		go p.create(client, k, e)
	}
	p.mu.Unlock()

	select {
	case <-e.ready:
	case <-ctx.Done():
		err := fmt.Errorf("creating %s producer for %s: %w", kind, topic, context.Cause(ctx))
		if rerr := p.rejection(); rerr != nil {
			err = fmt.Errorf("%w: %w", err, rerr)
		}
		return nil, false, err
	}
	if e.authRejected && !retried {
		// The broker rejected the credentials (rotated): create dropped the client and refreshed them,
		// so this attempt fetches them again and reconnects, once.
		return p.producer(ctx, topic, kind, claim, true)
	}
	if e.err == nil && claim {
		p.mu.Lock()
		created, e.claimed = !e.claimed, true
		p.mu.Unlock()
	}
	return e.producer, created, e.err
}

// Begin marks the start of an invocation. When no other invocation runs, a client idle past the
// keep-alive interval is replaced first: no record is sent on a connection that may be dead; a fresh
// connection costs milliseconds, a dead one an invocation.
func (p *Pool) Begin() Invocation {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.running) == 0 && p.client != nil {
		if idle := p.now().Round(0).Sub(p.lastUsed); idle > p.opts.KeepAliveInterval {
			p.opts.Logger.Debug("replacing idle pulsar client", "idle", idle.String())
			p.dropClientLocked()
		}
	}
	p.lastInv++
	p.running[p.lastInv] = struct{}{}
	return p.lastInv
}

// End marks the end of inv, after which it sends nothing more. With reset, the client and every
// producer are replaced and the credentials fetched again on next use: the relay resets after an
// invocation that made no progress at all, so a half-open connection or rejected credentials cost
// one invocation, not one per keep-alive timeout.
func (p *Pool) End(inv Invocation, reset bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, inv)
	p.retired = slices.DeleteFunc(p.retired, func(r *retiredClient) bool {
		delete(r.waitFor, inv)
		if len(r.waitFor) > 0 {
			return false
		}
		go closeAll(r.client, r.producers)
		return true
	})
	if !reset {
		p.lastUsed = p.now().Round(0)
		return
	}
	if p.opts.Credentials != nil {
		p.opts.Credentials.Refresh()
	}
	p.dropClientLocked()
}

// Discard forgets prod, which the client closed for good (topic terminated or deleted, producer
// fenced): the client exposes no state, so the caller tells the pool from the send errors. The next
// Producer call for its topic and kind creates a new one.
func (p *Pool) Discard(topic string, kind Kind, prod pulsar.Producer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := key{topic, kind}
	if e, ok := p.producers[k]; ok && e.producer == prod {
		delete(p.producers, k)
		p.retireLocked(nil, map[key]*entry{k: e})
	}
}

func (p *Pool) create(client pulsar.Client, k key, e *entry) {
	prod, err := client.CreateProducer(p.producerOptions(k))
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		e.err = fmt.Errorf("creating %s producer for %s: %w", k.kind, k.topic, err)
		rerr := p.rejection()
		if rerr != nil {
			e.err = fmt.Errorf("%w: %w", e.err, rerr)
		}
		// Forget the failed attempt so the next call tries again, unless the entry was replaced meanwhile.
		if p.producers[k] == e {
			delete(p.producers, k)
		}
		if (isAuthError(err) || rerr != nil) && p.opts.Credentials != nil {
			// Rotated credentials: fetch them again and build a new client on the next attempt.
			e.authRejected = true
			p.opts.Credentials.Refresh()
			p.dropClientLocked()
		}
	} else {
		// Even when the pool replaced the client meanwhile, the caller waiting for it still gets it:
		// the retired client's entries, this one included, are closed once that caller's invocation ends.
		e.producer = prod
	}
	close(e.ready)
}

func (p *Pool) producerOptions(k key) pulsar.ProducerOptions {
	o := pulsar.ProducerOptions{
		Topic:              k.topic,
		HashingScheme:      p.opts.Hashing,
		CompressionType:    p.opts.Compression,
		MaxPendingMessages: p.opts.MaxPendingMessages,
		// The relay bounds every wait by the invocation deadline. The client's own send timeout would
		// fail a timed-out prefix of the queue while later messages still succeed, which breaks per-key
		// order once the failed ones are retried.
		SendTimeout:       -1,
		BackOffPolicyFunc: newBackoff,
	}
	if p.opts.NamePrefix != "" {
		// A name is unique per topic on the broker: the batched and unbatched producers share a topic,
		// and a replaced client's producer may linger until its invocation ends.
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.Name = fmt.Sprintf("%s-%s-%x", p.opts.NamePrefix, k.kind, b)
	}
	switch k.kind {
	case Batched:
		o.BatchingMaxPublishDelay = p.opts.BatchingMaxDelay
		o.BatchingMaxMessages = p.opts.BatchingMaxMessages
		o.BatchingMaxSize = p.opts.BatchingMaxBytes
		if p.opts.KeyBasedBatching {
			o.BatcherBuilderType = pulsar.KeyBasedBatchBuilder
		}
	case Unbatched:
		o.DisableBatching = true
		o.EnableChunking = p.opts.Chunking
	case DeadLetter:
		o.DisableBatching = true
		o.EnableChunking = true
	}
	return o
}

func (p *Pool) clientLocked(ctx context.Context) (pulsar.Client, error) {
	if p.client != nil {
		return p.client, nil
	}
	opts := pulsar.ClientOptions{
		URL:               p.opts.ServiceURL,
		ConnectionTimeout: p.opts.ConnectionTimeout,
		OperationTimeout:  p.opts.OperationTimeout,
		KeepAliveInterval: p.opts.KeepAliveInterval,
		TLSConfig:         p.opts.tlsConfig(),
		Logger:            pulsarlog.NewLoggerWithSlog(quietLogger(p.opts.Logger)),
		// Nothing scrapes Prometheus in a Lambda: keep the client's metrics out of the global registry.
		MetricsCardinality: pulsar.MetricsCardinalityNone,
		MetricsRegisterer:  prometheus.NewRegistry(),
	}
	if p.opts.Credentials != nil {
		if err := p.opts.Credentials.Apply(ctx, &opts); err != nil {
			return nil, fmt.Errorf("pulsar credentials: %w", err)
		}
	}
	c, err := pulsar.NewClient(opts)
	if err != nil {
		return nil, fmt.Errorf("creating pulsar client for %s: %w", redactURL(p.opts.ServiceURL), err)
	}
	p.client = c
	p.lastUsed = p.now().Round(0)
	return c, nil
}

// dropClientLocked forgets the client and its producers.
func (p *Pool) dropClientLocked() {
	client, producers := p.client, p.producers
	p.client, p.producers = nil, map[key]*entry{}
	if client != nil {
		p.retireLocked(client, producers)
	}
}

// retireLocked closes producers (and client, when not nil) in the background (closing waits for the
// broker, which may be the very thing that is gone) once no invocation running now can still be
// sending on them; invocations that begin later do not see them.
func (p *Pool) retireLocked(client pulsar.Client, producers map[key]*entry) {
	if len(p.running) == 0 {
		go closeAll(client, producers)
		return
	}
	p.retired = append(p.retired, &retiredClient{client: client, producers: producers, waitFor: maps.Clone(p.running)})
}

func closeAll(client pulsar.Client, producers map[key]*entry) {
	for _, e := range producers {
		<-e.ready
		if e.producer != nil {
			e.producer.Close()
		}
	}
	if client != nil {
		client.Close()
	}
}

// Close flushes and closes every producer and the client, bounded by ctx (the SIGTERM window).
func (p *Pool) Close(ctx context.Context) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	// On SIGTERM no invocation runs: retired clients go too.
	clients := append(p.retired, &retiredClient{client: p.client, producers: p.producers})
	p.client, p.producers, p.retired = nil, map[key]*entry{}, nil
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		for _, r := range clients {
			closeAll(r.client, r.producers)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// rejection is the credentials' account of a refused handshake, nil when none (or no credentials).
func (p *Pool) rejection() error {
	if p.opts.Credentials == nil {
		return nil
	}
	return p.opts.Credentials.Rejected()
}

func isAuthError(err error) bool {
	var perr *pulsar.Error
	if errors.As(err, &perr) {
		switch perr.Result() {
		case pulsar.AuthenticationError, pulsar.ErrorGettingAuthenticationData:
			return true
		}
	}
	return false
}
