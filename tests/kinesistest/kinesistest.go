// Package kinesistest builds Kinesis events as Lambda delivers them (56-digit sequence numbers,
// eventID "shardId-…:seq", stream ARNs, arrival times), for tests, sample events, the demo and the
// benchmarks.
package kinesistest

import (
	"fmt"
	"math/big"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/internal/kpl"
)

// Region and Account of the ARNs this package builds.
const (
	Region  = "us-east-1"
	Account = "123456789012"
)

// StreamARN is the ARN of a stream in Region and Account.
func StreamARN(stream string) string {
	return fmt.Sprintf("arn:aws:kinesis:%s:%s:stream/%s", Region, Account, stream)
}

// Shard hands out records of one shard with increasing sequence numbers. Not safe for concurrent use.
type Shard struct {
	Stream  string
	ID      string // shardId-000000000000
	seq     *big.Int
	step    *big.Int
	Arrival time.Time // arrival time of the next record; advances 1 ms per record
}

// firstSequence is a real-looking Kinesis sequence number (56 digits).
const firstSequence = "49590338271490256608559692538361571095921575989136588898"

// NewShard starts shard number n of a stream.
func NewShard(stream string, n int) *Shard {
	seq, _ := new(big.Int).SetString(firstSequence, 10)
	// Distinct shards get distinct sequence ranges, as in Kinesis.
	seq.Add(seq, new(big.Int).Lsh(big.NewInt(int64(n)), 100))
	return &Shard{
		Stream:  stream,
		ID:      fmt.Sprintf("shardId-%012d", n),
		seq:     seq,
		step:    new(big.Int).Lsh(big.NewInt(1), 80), // Kinesis numbers grow in large, uneven steps
		Arrival: time.Date(2026, 11, 22, 14, 2, 3, 456_000_000, time.UTC),
	}
}

// Record returns the next record of the shard.
func (s *Shard) Record(partitionKey string, data []byte) events.KinesisEventRecord {
	s.seq.Add(s.seq, s.step)
	seq := s.seq.String()
	arrival := s.Arrival
	s.Arrival = s.Arrival.Add(time.Millisecond)
	return events.KinesisEventRecord{
		AwsRegion:         Region,
		EventID:           s.ID + ":" + seq,
		EventName:         "aws:kinesis:record",
		EventSource:       "aws:kinesis",
		EventSourceArn:    StreamARN(s.Stream),
		EventVersion:      "1.0",
		InvokeIdentityArn: "arn:aws:iam::" + Account + ":role/kinesis-to-pulsar",
		Kinesis: events.KinesisRecord{
			ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: arrival},
			Data:                        data,
			EncryptionType:              "NONE",
			PartitionKey:                partitionKey,
			SequenceNumber:              seq,
			KinesisSchemaVersion:        "1.0",
		},
	}
}

// Aggregate returns the next record of the shard holding records as a KPL aggregate. Like the KPL,
// the Kinesis record's partition key is the first user record's.
func (s *Shard) Aggregate(records []kpl.Record) (events.KinesisEventRecord, error) {
	data, err := kpl.Aggregate(records)
	if err != nil {
		return events.KinesisEventRecord{}, fmt.Errorf("aggregating %d records: %w", len(records), err)
	}
	return s.Record(records[0].PartitionKey, data), nil
}

// Event wraps records into the event Lambda sends.
func Event(records ...events.KinesisEventRecord) events.KinesisEvent {
	return events.KinesisEvent{Records: records}
}
