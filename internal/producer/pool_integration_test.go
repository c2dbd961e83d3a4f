//go:build integration

package producer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

func newPool(t *testing.T, opts Options) *Pool {
	t.Helper()
	if opts.ServiceURL == "" {
		opts.ServiceURL = localenv.Require(t).PulsarServiceURL
	}
	p := NewPool(opts)
	t.Cleanup(func() {
		// Bounded as on SIGTERM: a creation still waiting for an unreachable broker is not awaited.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

func get(t *testing.T, p *Pool, topic string, kind Kind) (pulsar.Producer, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prod, created, err := p.Producer(ctx, topic, kind)
	if err != nil {
		t.Fatal(err)
	}
	return prod, created
}

func send(t *testing.T, prod pulsar.Producer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := prod.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("x")})
	return err
}

// Concurrent invocations share one creation, and exactly one of them counts it.
func TestConcurrentCallersShareOneProducer(t *testing.T) {
	p := newPool(t, Options{})
	topic := pulsartest.Topic(t, "pool")
	var wg sync.WaitGroup
	var mu sync.Mutex
	prods := map[pulsar.Producer]int{}
	created := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prod, c := get(t, p, topic, Batched)
			mu.Lock()
			defer mu.Unlock()
			prods[prod]++
			if c {
				created++
			}
		}()
	}
	wg.Wait()
	if len(prods) != 1 || created != 1 {
		t.Fatalf("%d distinct producers, %d counted as created; want 1 and 1", len(prods), created)
	}
	for prod := range prods {
		if err := send(t, prod); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKindsAreSeparateProducers(t *testing.T) {
	p := newPool(t, Options{Chunking: true})
	topic := pulsartest.Topic(t, "pool")
	batched, _ := get(t, p, topic, Batched)
	unbatched, _ := get(t, p, topic, Unbatched)
	dead, _ := get(t, p, topic+"-dlq", DeadLetter)
	if batched == unbatched {
		t.Fatal("batched and unbatched share a producer")
	}
	for _, prod := range []pulsar.Producer{batched, unbatched, dead} {
		if err := send(t, prod); err != nil {
			t.Fatal(err)
		}
	}
}

// A producer warmed up during init counts as created by the first invocation that uses it.
func TestWarmUpCountsForTheFirstInvocation(t *testing.T) {
	p := newPool(t, Options{})
	topic := pulsartest.Topic(t, "pool")
	if err := p.Warm(context.Background(), topic, Batched); err != nil {
		t.Fatal(err)
	}
	if _, created := get(t, p, topic, Batched); !created {
		t.Error("first use after warm-up not counted as created")
	}
	if _, created := get(t, p, topic, Batched); created {
		t.Error("second use counted as created")
	}
}

// A client idle past the keep-alive interval is replaced before use: the connection may be dead.
func TestIdleClientIsReplaced(t *testing.T) {
	p := newPool(t, Options{KeepAliveInterval: 30 * time.Second})
	now := time.Now()
	p.now = func() time.Time { return now }
	topic := pulsartest.Topic(t, "pool")
	inv := p.Begin()
	first, _ := get(t, p, topic, Batched)
	p.End(inv, false)

	now = now.Add(29 * time.Second)
	inv = p.Begin()
	if same, created := get(t, p, topic, Batched); same != first || created {
		t.Fatal("client replaced before the keep-alive interval passed")
	}
	p.End(inv, false)
	now = now.Add(31 * time.Second)
	p.Begin()
	second, created := get(t, p, topic, Batched)
	if second == first || !created {
		t.Fatal("idle client not replaced")
	}
	if err := send(t, second); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, first)
}

// waitClosed waits for prod, which the pool dropped, to be closed in the background.
func waitClosed(t *testing.T, prod pulsar.Producer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for send(t, prod) == nil {
		if time.Now().After(deadline) {
			t.Fatal("replaced producer still open")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A running invocation keeps its client however long it runs: idleness counts from the end of the
// last invocation, so one that begins while another runs does not replace the client.
func TestBusyClientIsNotIdle(t *testing.T) {
	p := newPool(t, Options{KeepAliveInterval: 30 * time.Second})
	now := time.Now()
	p.now = func() time.Time { return now }
	topic := pulsartest.Topic(t, "pool")
	p.Begin()
	batched, _ := get(t, p, topic, Batched)
	now = now.Add(time.Minute) // still running when the next invocation begins
	p.Begin()
	if again, created := get(t, p, topic, Batched); again != batched || created {
		t.Fatal("the running invocation's client was replaced as idle")
	}
	if err := send(t, batched); err != nil {
		t.Fatal(err)
	}
}

// An invocation that resets the client does not close the producers another running invocation is
// sending on (the client would close their queue under a concurrent SendAsync and panic): they are
// closed when that invocation ends, and the next one gets the new client.
func TestResetWaitsForRunningInvocations(t *testing.T) {
	p := newPool(t, Options{})
	topic := pulsartest.Topic(t, "pool")
	busy := p.Begin()
	old, _ := get(t, p, topic, Batched)
	p.End(p.Begin(), true)
	if err := send(t, old); err != nil {
		t.Fatalf("producer of a running invocation closed by another's reset: %v", err)
	}
	p.End(busy, false)
	p.Begin()
	if next, created := get(t, p, topic, Batched); next == old || !created {
		t.Fatal("reset did not replace the producer")
	}
	waitClosed(t, old)
}

func TestResetAndDiscard(t *testing.T) {
	p := newPool(t, Options{})
	topic := pulsartest.Topic(t, "pool")
	first, _ := get(t, p, topic, Batched)

	other, _ := get(t, p, topic+"-other", Batched)
	p.Discard(topic, Batched, other) // not the instance cached for topic: ignored
	if again, _ := get(t, p, topic, Batched); again != first {
		t.Fatal("Discard of another instance dropped the producer")
	}

	p.Discard(topic, Batched, first)
	second, created := get(t, p, topic, Batched)
	if second == first || !created {
		t.Fatal("Discard did not drop the producer")
	}

	p.End(p.Begin(), true)
	third, created := get(t, p, topic, Batched)
	if third == second || !created {
		t.Fatal("Reset did not replace the producer")
	}
	if err := send(t, third); err != nil {
		t.Fatal(err)
	}
}

// Creation against an address where nothing answers ends with the caller's context, not the client's
// operation timeout.
func TestCreationIsBoundedByTheContext(t *testing.T) {
	p := newPool(t, Options{ServiceURL: "pulsar://127.0.0.1:1", OperationTimeout: 30 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := p.Producer(ctx, "persistent://public/default/nowhere", Batched)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's deadline", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("returned after %v", elapsed)
	}
}

func TestClosedPoolRefuses(t *testing.T) {
	p := newPool(t, Options{})
	topic := pulsartest.Topic(t, "pool")
	prod, _ := get(t, p, topic, Batched)
	p.Close(context.Background())
	if _, _, err := p.Producer(context.Background(), topic, Batched); err == nil {
		t.Error("closed pool handed out a producer")
	}
	if err := send(t, prod); err == nil {
		t.Error("producer still open after Close")
	}
}
