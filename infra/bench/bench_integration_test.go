//go:build integration && unix

package bench

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

// The Go benchmarks of the two in-process sides of `make bench`, for profiling one shape at a time:
//
//	go test -tags integration -run '^$' -bench 'Handler/10,000 x 1 KiB' -cpuprofile cpu.prof ./infra/bench
//
// They need the local stack (set -a; . .cache/run/env; set +a). One b.N iteration is one batch.

func benchWorkloads() []Workload {
	var out []Workload
	for _, w := range Matrix() {
		if w.Records == 10000 && w.Size == 10*1024 {
			continue // 100 MB a batch: left to make bench
		}
		out = append(out, w)
	}
	return out
}

func BenchmarkCeiling(b *testing.B) {
	env := localenv.Require(b)
	c, err := NewCeiling(env.PulsarServiceURL, pulsartest.Topic(b, "bench-ceiling"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	for _, w := range benchWorkloads() {
		b.Run(w.Name, func(b *testing.B) {
			msgs, err := Messages(context.Background(), w.Event())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(w.PayloadBytes())
			cpu := selfCPU(b)
			for b.Loop() {
				if _, err := c.Run(context.Background(), msgs); err != nil {
					b.Fatal(err)
				}
			}
			report(b, w, selfCPU(b)-cpu)
		})
	}
}

func BenchmarkHandler(b *testing.B) {
	env := localenv.Require(b)
	h, err := NewHandler(env.PulsarServiceURL, pulsartest.Topic(b, "bench-handler"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.Close)
	for _, w := range benchWorkloads() {
		b.Run(w.Name, func(b *testing.B) {
			ev := w.Event()
			b.ReportAllocs()
			b.SetBytes(w.PayloadBytes())
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			cpu := selfCPU(b)
			for b.Loop() {
				if _, err := h.Run(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
			report(b, w, selfCPU(b)-cpu)
		})
	}
}

func report(b *testing.B, w Workload, cpu time.Duration) {
	perBatch := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(w.Records)/perBatch, "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*w.Records), "cpu-ns/record")
}

// selfCPU is the user and system CPU time of this process so far: the client's goroutines and GC
// included, the broker's not.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
