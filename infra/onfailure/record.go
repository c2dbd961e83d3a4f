// Package onfailure holds what Lambda's Kinesis event source mapping sends to an on-failure destination
// when it gives up on a batch (retries or record age exhausted): the invocation record, its S3 object
// naming, and senders to an SQS queue or an S3 bucket. The local event source mapping (infra/esm) sends
// it; the replay command (infra/cmd/replay) reads it back.
//
// The format, from the Lambda developer guide (kinesis-on-failure-destination, "Example invocation
// record"): requestContext {requestId, functionArn, condition, approximateInvokeCount}, responseContext
// {statusCode, executedVersion, functionError}, version "1.0", timestamp, KinesisBatchInfo {shardId,
// startSequenceNumber, endSequenceNumber, approximateArrivalOfFirstRecord, approximateArrivalOfLastRecord,
// batchSize, streamArn}. SQS and SNS receive this metadata only; "for Amazon S3 destinations, Lambda also
// sends the entire invocation record along with the metadata" (same page; the execution role needs
// s3:PutObject and s3:ListBucket).
//
// (unverified) The S3 object's layout: the event in a payload member, as a JSON string, under the key
// aws/lambda/<mapping UUID>/<shard id>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<random UUID>. This follows the
// page's S3 example as remembered; the copies of the page searched here did not include it. Parse takes
// the payload as a string or as an embedded object, and the replay lists every key under aws/lambda/.
package onfailure

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Conditions Lambda names in requestContext.condition.
const (
	RetryAttemptsExhausted = "RetryAttemptsExhausted"
	RecordAgeExceeded      = "RecordAgeExceeded"
)

// TimeLayout is how the record writes instants: UTC, milliseconds, Z.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Record is the invocation record of a Kinesis batch given up on.
type Record struct {
	RequestContext   RequestContext  `json:"requestContext"`
	ResponseContext  ResponseContext `json:"responseContext"`
	Version          string          `json:"version"`
	Timestamp        string          `json:"timestamp"`
	KinesisBatchInfo BatchInfo       `json:"KinesisBatchInfo"`
	// Payload is the invocation's event; S3 destinations only. Lambda writes it as a JSON string;
	// Parse also takes it as an embedded object.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// RequestContext describes the invocation.
type RequestContext struct {
	RequestID              string `json:"requestId"`
	FunctionARN            string `json:"functionArn"`
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// ResponseContext is the function's last answer. A batch that exceeded its age may never have
// reached the function: Lambda then leaves it empty.
type ResponseContext struct {
	StatusCode      int    `json:"statusCode,omitempty"`
	ExecutedVersion string `json:"executedVersion,omitempty"`
	FunctionError   string `json:"functionError,omitempty"`
}

// BatchInfo names the records: one shard, a sequence number range, inclusive.
type BatchInfo struct {
	ShardID                         string `json:"shardId"`
	StartSequenceNumber             string `json:"startSequenceNumber"`
	EndSequenceNumber               string `json:"endSequenceNumber"`
	ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
	BatchSize                       int    `json:"batchSize"`
	StreamARN                       string `json:"streamArn"`
}

// Parse reads an invocation record (an SQS message body or an S3 object) and checks that it names a
// batch: a shard, a stream and a start sequence number not after the end one.
func Parse(data []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("not an invocation record: %w", err)
	}
	b := r.KinesisBatchInfo
	var missing []string
	for _, f := range []struct{ name, v string }{{"shardId", b.ShardID}, {"startSequenceNumber", b.StartSequenceNumber},
		{"endSequenceNumber", b.EndSequenceNumber}, {"streamArn", b.StreamARN}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return Record{}, fmt.Errorf("invocation record without KinesisBatchInfo.%s (is it from a Kinesis mapping?)", strings.Join(missing, ", "))
	}
	start, ok1 := SequenceNumber(b.StartSequenceNumber)
	end, ok2 := SequenceNumber(b.EndSequenceNumber)
	if !ok1 || !ok2 || start.Cmp(end) > 0 {
		return Record{}, fmt.Errorf("invocation record names sequence numbers %q to %q: not a range", b.StartSequenceNumber, b.EndSequenceNumber)
	}
	return r, nil
}

// Event returns the invocation's event from Payload; ok is false when the record carries none (SQS).
func (r Record) Event() (ev events.KinesisEvent, ok bool, err error) {
	p := r.Payload
	if len(p) == 0 || string(p) == "null" {
		return ev, false, nil
	}
	if p[0] == '"' {
		var s string
		if err := json.Unmarshal(p, &s); err != nil {
			return ev, false, fmt.Errorf("payload: %w", err)
		}
		p = []byte(s)
	}
	if err := json.Unmarshal(p, &ev); err != nil {
		return ev, false, fmt.Errorf("payload is not a Kinesis event: %w", err)
	}
	if len(ev.Records) == 0 {
		return ev, false, errors.New("payload is a Kinesis event without records")
	}
	return ev, true, nil
}

// SequenceNumber reads a Kinesis sequence number (a decimal of up to 128 bits) for comparison.
func SequenceNumber(s string) (*big.Int, bool) {
	n, ok := new(big.Int).SetString(s, 10)
	return n, ok && n.Sign() >= 0
}

// FormatTime writes an instant as the record does.
func FormatTime(t time.Time) string {
	return t.UTC().Format(TimeLayout)
}
