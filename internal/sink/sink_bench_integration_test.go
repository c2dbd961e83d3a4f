//go:build integration

package sink_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/streambridge/kinesis-pulsar/internal/sink"
)

// BenchmarkSinkThroughput drains benchMessages messages (100 keys, 16 to 215 bytes) per operation
// into moto's Kinesis, per ordering mode and with aggregation, beside a bare PutRecords loop writing
// the same records to the same endpoint in the same run: the ratio is what carries over to real
// Kinesis. Each sink operation is one invocation, so it includes subscribing and the broker's failover
// delay for the new consumer (1 s by default), which a 70 s scheduled invocation pays once.
//
//	go test -tags integration -run '^$' -bench BenchmarkSinkThroughput -benchtime 2x ./internal/sink
func BenchmarkSinkThroughput(b *testing.B) {
	const benchMessages = 5000
	for _, mode := range []struct {
		name        string
		ordering    sink.Ordering
		aggregation bool
		bare        bool
	}{
		{name: "bare-PutRecords", bare: true},
		{name: "perKey", ordering: sink.OrderPerKey},
		{name: "none", ordering: sink.OrderNone},
		{name: "perKey-aggregated", ordering: sink.OrderPerKey, aggregation: true},
	} {
		b.Run(mode.name, func(b *testing.B) {
			s := newStack(b, 2)
			msgs := messages("b", benchMessages, 100)
			if mode.bare {
				benchBare(b, s, msgs)
			} else {
				topic := s.topic("bench")
				opts := s.options(topic)
				opts.Ordering, opts.Aggregation = mode.ordering, mode.aggregation
				sk := s.sink(opts, nil)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					s.publishBatched(topic, msgs)
					b.StartTimer()
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
					sum, err := sk.Run(ctx, sink.Event{MaxMessages: benchMessages})
					cancel()
					if err != nil || sum.Acknowledged != benchMessages {
						b.Fatalf("invocation: %v, %+v", err, sum.Result)
					}
				}
			}
			b.ReportMetric(float64(benchMessages*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// benchBare writes the same records with PutRecords, 500 per call, one call after the other.
func benchBare(b *testing.B, s *stack, msgs []published) {
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for i := 0; i < len(msgs); i += 500 {
			in := &kinesis.PutRecordsInput{StreamARN: aws.String(s.stream)}
			for _, m := range msgs[i:min(i+500, len(msgs))] {
				in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(m.key), Data: m.data})
			}
			out, err := s.kin.PutRecords(context.Background(), in)
			if err != nil || aws.ToInt32(out.FailedRecordCount) > 0 {
				b.Fatal(fmt.Errorf("PutRecords: %w (failed %d)", err, aws.ToInt32(out.FailedRecordCount)))
			}
		}
	}
}
