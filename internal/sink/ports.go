package sink

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/streambridge/kinesis-pulsar/internal/producer"
)

// Kinesis is the part of the Kinesis API the sink uses; *kinesis.Client implements it.
type Kinesis interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, opts ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// Consumer is the part of pulsar.Consumer the sink uses.
type Consumer interface {
	Receive(ctx context.Context) (pulsar.Message, error)
	// AckIDList acknowledges; with AckWithResponse it returns once the broker confirmed.
	AckIDList(ids []pulsar.MessageID) error
	Close()
}

// Pulsar opens each invocation's consumer and sends dead letters; Broker implements it with the
// warm client pool.
type Pulsar interface {
	// Begin and End bracket an invocation; with reset, End replaces the client.
	Begin() producer.Invocation
	End(inv producer.Invocation, reset bool)
	Subscribe(ctx context.Context, opts pulsar.ConsumerOptions) (Consumer, error)
	// Send publishes msgs to topic and returns once the broker confirmed every one of them.
	Send(ctx context.Context, topic string, msgs []*pulsar.ProducerMessage) error
}

// Broker is Pulsar on the warm client pool.
type Broker struct{ *producer.Pool }

// Subscribe opens a consumer on the pool's client.
func (b Broker) Subscribe(ctx context.Context, opts pulsar.ConsumerOptions) (Consumer, error) {
	return b.Pool.Subscribe(ctx, opts)
}

// Send publishes through the pool's dead-letter producer (unbatched, chunking on, so any message fits).
func (b Broker) Send(ctx context.Context, topic string, msgs []*pulsar.ProducerMessage) error {
	p, _, err := b.Producer(ctx, topic, producer.DeadLetter)
	if err != nil {
		return err
	}
	errs := make(chan error, len(msgs))
	for _, m := range msgs {
		p.SendAsync(ctx, m, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) { errs <- err })
	}
	var all []error
	for range msgs {
		select {
		case err := <-errs:
			all = append(all, err)
		case <-ctx.Done():
			return fmt.Errorf("sending to %s: %w", topic, context.Cause(ctx))
		}
	}
	if err := errors.Join(all...); err != nil {
		return fmt.Errorf("sending to %s: %w", topic, err)
	}
	return nil
}
