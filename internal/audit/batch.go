package audit

import "time"

// Batch is what one invocation did with one batch of one shard.
type Batch struct {
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
