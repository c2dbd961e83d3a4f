//go:build unix

package esm

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Event builds the event Lambda sends for records of one shard of the stream streamARN, read with the
// Kinesis API. Records are passed as they are: a KPL aggregate stays one record.
func Event(streamARN, shardID, roleARN string, records []types.Record) events.KinesisEvent {
	region := ""
	if parts := strings.SplitN(streamARN, ":", 5); len(parts) == 5 {
		region = parts[3]
	}
	ev := events.KinesisEvent{Records: make([]events.KinesisEventRecord, len(records))}
	for i, r := range records {
		ev.Records[i] = eventRecord(streamARN, region, shardID, roleARN, r)
	}
	return ev
}

func eventRecord(streamARN, region, shardID, roleARN string, r types.Record) events.KinesisEventRecord {
	seq := aws.ToString(r.SequenceNumber)
	enc := string(r.EncryptionType)
	if enc == "" {
		// Kinesis (and moto) leave it out for unencrypted streams; Lambda's events say NONE.
		enc = string(types.EncryptionTypeNone)
	}
	return events.KinesisEventRecord{
		AwsRegion:         region,
		EventID:           shardID + ":" + seq,
		EventName:         "aws:kinesis:record",
		EventSource:       "aws:kinesis",
		EventSourceArn:    streamARN,
		EventVersion:      "1.0",
		InvokeIdentityArn: roleARN,
		Kinesis: events.KinesisRecord{
			// Lambda writes arrival times in seconds with millisecond precision.
			ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: aws.ToTime(r.ApproximateArrivalTimestamp).UTC().Truncate(time.Millisecond)},
			Data:                        r.Data,
			EncryptionType:              enc,
			PartitionKey:                aws.ToString(r.PartitionKey),
			SequenceNumber:              seq,
			KinesisSchemaVersion:        "1.0",
		},
	}
}

// eventOverhead is the length of {"Records":[]}, the event around its records.
const eventOverhead = len(`{"Records":[]}`)

// recordSize is the length of one record in the encoded event.
func recordSize(stream streamARN, shardID, roleARN string, r types.Record) (int, error) {
	b, err := json.Marshal(eventRecord(stream.arn, stream.region, shardID, roleARN, r))
	if err != nil {
		return 0, fmt.Errorf("encode record %s: %w", aws.ToString(r.SequenceNumber), err)
	}
	return len(b), nil
}
