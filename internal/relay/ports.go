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

// NamedSender is a producer the effectively-once mode owns for one invocation; a pulsar.Producer is
// one.
type NamedSender interface {
	Sender
	// Send publishes m and waits for the receipt.
	Send(ctx context.Context, m *pulsar.ProducerMessage) (pulsar.MessageID, error)
	Close()
}

// NamedSenders creates senders with a fixed producer name, unbatched, owned by the caller: the broker
// deduplicates on the name and the sequence ids.
type NamedSenders interface {
	Named(ctx context.Context, topic string, kind Kind, name string) (NamedSender, error)
}

// SequenceStore keeps each shard's Sequence; internal/audit.Sequences implements it in the audit table.
type SequenceStore interface {
	Read(ctx context.Context, streamARN, shardID string) (Sequence, error)
	// Write replaces prev with next, conditionally on prev's version, and returns what it stored.
	Write(ctx context.Context, streamARN, shardID, requestID string, now time.Time, prev, next Sequence) (Sequence, error)
}

// Sequence is a shard's state for PROCESSING_GUARANTEE=effectivelyOnce, kept beside its checkpoint.
// The shard's producer is named after the stream, the shard and Epoch, and gives every message a
// sequence id the broker deduplicates on.
type Sequence struct {
	// CheckpointSequenceNumber is the checkpoint: it and every earlier record are in Pulsar. "" none.
	CheckpointSequenceNumber string
	// CheckpointID is the sequence id of the checkpoint record's last message; -1 when unknown.
	CheckpointID int64
	// Epoch is part of the producer name. It is drawn when the state is first written, so a table (or
	// item) created afresh never reuses the ids of a producer the broker still remembers.
	Epoch string
	// NextID is above every id ever handed out for the shard: fresh ids start here.
	NextID int64
	// ResumeSequenceNumber is the record a retry restarts from with the same ids as the attempt that did
	// not finish: it gets ResumeID, the messages after it consecutive ids. "" when none is pending.
	ResumeSequenceNumber string
	ResumeID             int64
	// Version counts the writes; every write is conditional on the version it read.
	Version int64
}

// Covers reports whether the checkpoint covers seq: seq is at or below it, so already in Pulsar.
// Sequence numbers have no leading zeros, so a longer one is larger.
func (q Sequence) Covers(seq string) bool {
	c := q.CheckpointSequenceNumber
	if c == "" || !decimal(seq) || !decimal(c) {
		return false
	}
	if len(seq) != len(c) {
		return len(seq) < len(c)
	}
	return seq <= c
}

// decimal reports whether s is a Kinesis sequence number: digits, no leading zero.
func decimal(s string) bool {
	if s == "" || (s[0] == '0' && s != "0") {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
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
