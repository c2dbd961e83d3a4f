package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// The relay's ports: what it needs from the world, in its own terms. internal/relay/senders gives
// Senders over the shared Pulsar client pool; internal/audit implements Auditor with DynamoDB;
// relay.EMFObserver is an Observer. Tests use the fake of tests/pulsarfake.

// Kind says how a message is published.
type Kind uint8

const (
	// Batched carries ordinary records: batching on, for throughput.
	Batched Kind = iota
	// Unbatched carries records larger than a batch may hold: batching off, chunking when enabled.
	Unbatched
	// DeadLetter carries records that can never reach their topic: batching off, chunking always on.
	DeadLetter
)

// Sender publishes to one topic, asynchronously; a pulsar.Producer is one.
type Sender interface {
	// SendAsync hands m over; done runs once with the broker's receipt or the failure.
	SendAsync(ctx context.Context, m *pulsar.ProducerMessage, done func(pulsar.MessageID, *pulsar.ProducerMessage, error))
	// FlushWithCtx pushes out the batch being filled.
	FlushWithCtx(ctx context.Context) error
}

// Senders hands out warm senders, one per topic and kind.
type Senders interface {
	// Sender returns the sender for topic and kind; created reports a cold start of that sender.
	Sender(ctx context.Context, topic string, kind Kind) (s Sender, created bool, err error)
	// Discard forgets a sender the client closed for good.
	Discard(topic string, kind Kind, s Sender)
	// Begin brackets an invocation; end(true) replaces the client and its senders, with fresh
	// credentials, closing nothing another running invocation may still be sending on.
	Begin() (end func(reset bool))
}

// Auditor records what a batch did.
type Auditor interface {
	Record(ctx context.Context, r AuditRecord) error
}

// Observer receives the summary of every invocation (metrics, summary log line).
type Observer interface {
	Observe(ctx context.Context, s *Summary)
}

// AuditRecord is what one invocation did with one batch of one shard.
type AuditRecord struct {
	StreamARN string
	ShardID   string
	RequestID string
	Topic     string

	FirstSequenceNumber string
	LastSequenceNumber  string
	Records             int // Kinesis records in the batch
	Published           int // messages confirmed on the topic (KPL sub-records count one each)
	DeadLettered        int // messages written to the dead-letter topic
	// FailedSequenceNumber is the record Lambda retries from; "" when the whole batch was delivered.
	FailedSequenceNumber string
	// CheckpointSequenceNumber is the highest sequence number such that it and every earlier record of
	// the batch are in Pulsar; "" when the first record is not. CheckpointMessageID is the Pulsar
	// message id of that record's last message.
	CheckpointSequenceNumber string
	CheckpointMessageID      string

	StartedAt time.Time
	Duration  time.Duration
}

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
