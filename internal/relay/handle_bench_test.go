//go:build unix

package relay_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
	"github.com/streambridge/kinesis-pulsar/tests/kinesistest"
	"github.com/streambridge/kinesis-pulsar/tests/pulsarfake"
)

// BenchmarkHandle measures the relay's own work per batch, with producers that confirm every message
// at once: planning, building the messages, bookkeeping of the answers, the summary and its log line.
// The broker's side is in infra/bench (make bench). Besides wall time it reports the process's CPU
// time per record (cpu-ns/record, GC included), which a busy machine disturbs much less. Profile with
//
//	go test -run '^$' -bench Handle -cpuprofile cpu.prof ./internal/relay
func BenchmarkHandle(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		for _, size := range []int{100, 1024} {
			b.Run(fmt.Sprintf("records=%d/size=%d", n, size), func(b *testing.B) {
				ev := benchEvent(n, size)
				r := relay.New(relay.Options{Topic: streamtopic.MustParse(topic), Properties: relay.AllProperties, Deaggregate: true}, pulsarfake.New(nil), nil, nil,
					slog.New(slog.NewJSONHandler(io.Discard, nil)))
				ctx := context.Background()
				b.ReportAllocs()
				cpu := processCPU(b)
				for b.Loop() {
					resp, err := r.Handle(ctx, ev)
					if err != nil || len(resp.BatchItemFailures) > 0 {
						b.Fatalf("%v %v", resp, err)
					}
				}
				cpu = processCPU(b) - cpu
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/record")
			})
		}
	}
}

// processCPU is the user and system CPU time of this process so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchEvent(n, size int) events.KinesisEvent {
	shard := kinesistest.NewShard("bench", 0)
	ev := events.KinesisEvent{Records: make([]events.KinesisEventRecord, n)}
	data := make([]byte, size)
	for i := range ev.Records {
		ev.Records[i] = shard.Record(fmt.Sprintf("partition-key-%04d", i%1000), data)
	}
	return ev
}
