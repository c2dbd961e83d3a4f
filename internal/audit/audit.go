// Package audit records, in DynamoDB, where each shard stands and what every batch did.
//
// One item per shard holds the checkpoint: the highest sequence number delivered to Pulsar together
// with every earlier record of its batch. It is written with a condition so it never moves backwards,
// whatever order concurrent or retried invocations finish in. One item per invocation describes the
// batch, and expires after the retention period. An invocation costs two write requests, never one per
// record.
//
// Items (partition key pk = "<eventSourceARN>#<shardId>"):
//
//	sk "checkpoint":                 sequenceNumber, sequenceKey, updatedAt, requestId, topic, lastMessageId
//	sk "batch#<first seq>#<request>": firstSequenceNumber, lastSequenceNumber, records, published,
//	                                  deadLettered, failedSequenceNumber, startedAt, durationMs, topic,
//	                                  requestId, expiresAt (TTL, epoch seconds)
package audit

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streambridge/kinesis-pulsar/internal/relay"
)

// Attribute and key names.
const (
	AttrPK        = "pk"
	AttrSK        = "sk"
	AttrExpiresAt = "expiresAt"
	CheckpointSK  = "checkpoint"
	BatchPrefix   = "batch#"
)

// Writer is the part of the DynamoDB client the writer uses.
type Writer interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// Options configure the audit table.
type Options struct {
	// Table is the table name. Required.
	Table string
	// Retention is how long batch items live (DynamoDB TTL). Default 7 days.
	Retention time.Duration
	// Timeout bounds one Record call: both writes, with the SDK's retries. Default 2 s. The caller's
	// deadline still applies when it is earlier.
	Timeout time.Duration
}

// Defaults.
const (
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultTimeout is far above a DynamoDB write (milliseconds) and leaves room for the SDK's
	// retries of a throttled or failed request. Without a bound of its own, an endpoint that does not
	// answer (or refuses connections, retried with backoff) would hold every invocation until its
	// deadline: with AUDIT_REQUIRED=false the batch is delivered anyway, so the shard would only
	// slow down to one batch per function timeout.
	DefaultTimeout = 2 * time.Second
)

// Table writes audit items. It implements relay.Auditor and is safe for concurrent use.
type Table struct {
	db   Writer
	opts Options
}

// New returns a writer for the table in opts.
func New(db Writer, opts Options) *Table {
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	return &Table{db: db, opts: opts}
}

// Key is the partition key of a shard's items.
func Key(streamARN, shardID string) string { return streamARN + "#" + shardID }

// Record writes the batch item and, when the batch delivered at least its first record, advances the
// checkpoint. The two writes run concurrently; the checkpoint not advancing because a later one is
// already recorded is not an error. Record returns within Options.Timeout, or by ctx's deadline when
// that is earlier.
func (t *Table) Record(ctx context.Context, b relay.AuditRecord) error {
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	pk := Key(b.StreamARN, b.ShardID)
	var wg sync.WaitGroup
	var checkpointErr error
	if b.CheckpointSequenceNumber != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			checkpointErr = t.advance(ctx, pk, b)
		}()
	}
	batchErr := t.putBatch(ctx, pk, b)
	wg.Wait()
	return errors.Join(checkpointErr, batchErr)
}

func (t *Table) advance(ctx context.Context, pk string, b relay.AuditRecord) error {
	key, err := SequenceKey(b.CheckpointSequenceNumber)
	if err != nil {
		return fmt.Errorf("audit checkpoint for %s: %w", pk, err)
	}
	_, err = t.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &t.opts.Table,
		Key:       map[string]types.AttributeValue{AttrPK: str(pk), AttrSK: str(CheckpointSK)},
		UpdateExpression: aws.String("SET sequenceNumber = :seq, sequenceKey = :key, updatedAt = :now, " +
			"requestId = :req, topic = :topic, lastMessageId = :mid"),
		ConditionExpression: aws.String("attribute_not_exists(sequenceKey) OR sequenceKey < :key"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":seq":   str(b.CheckpointSequenceNumber),
			":key":   str(key),
			":now":   str(iso(b.StartedAt.Add(b.Duration))),
			":req":   str(orNone(b.RequestID)),
			":topic": str(orNone(b.Topic)),
			":mid":   str(orNone(b.CheckpointMessageID)),
		},
	})
	var stale *types.ConditionalCheckFailedException
	if errors.As(err, &stale) {
		return nil // a later checkpoint is already recorded
	}
	if err != nil {
		return fmt.Errorf("audit checkpoint for %s in table %s: %w", pk, t.opts.Table, err)
	}
	return nil
}

func (t *Table) putBatch(ctx context.Context, pk string, b relay.AuditRecord) error {
	item := map[string]types.AttributeValue{
		AttrPK:                str(pk),
		AttrSK:                str(BatchSK(b.FirstSequenceNumber, b.RequestID)),
		"firstSequenceNumber": str(orNone(b.FirstSequenceNumber)),
		"lastSequenceNumber":  str(orNone(b.LastSequenceNumber)),
		"records":             num(int64(b.Records)),
		"published":           num(int64(b.Published)),
		"deadLettered":        num(int64(b.DeadLettered)),
		"startedAt":           str(iso(b.StartedAt)),
		"durationMs":          num(b.Duration.Milliseconds()),
		"topic":               str(orNone(b.Topic)),
		"requestId":           str(orNone(b.RequestID)),
		AttrExpiresAt:         num(b.StartedAt.Add(t.opts.Retention).Unix()),
	}
	if b.FailedSequenceNumber != "" {
		item["failedSequenceNumber"] = str(b.FailedSequenceNumber)
	}
	if b.CheckpointSequenceNumber != "" {
		item["checkpointSequenceNumber"] = str(b.CheckpointSequenceNumber)
	}
	if _, err := t.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &t.opts.Table, Item: item}); err != nil {
		return fmt.Errorf("audit batch item for %s in table %s: %w", pk, t.opts.Table, err)
	}
	return nil
}

// BatchSK is the sort key of a batch item.
func BatchSK(firstSequenceNumber, requestID string) string {
	return BatchPrefix + firstSequenceNumber + "#" + requestID
}

var decimal = regexp.MustCompile(`^(0|[1-9][0-9]{0,128})$`)

// SequenceKey makes a sequence number comparable as a DynamoDB string: its length, zero-padded to
// three digits, then the digits. A longer number is larger, and numbers of equal length compare digit
// by digit, so string order is integer order. Kinesis sequence numbers have up to 129 digits, beyond
// what a DynamoDB number (38 digits) holds.
func SequenceKey(seq string) (string, error) {
	if !decimal.MatchString(seq) {
		return "", fmt.Errorf("sequence number %q is not a decimal number", seq)
	}
	return fmt.Sprintf("%03d:%s", len(seq), seq), nil
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// orNone keeps attributes non-empty; DynamoDB rejects empty key attributes, and "" is unhelpful to read.
func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
