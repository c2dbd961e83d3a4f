package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Reader is the part of the DynamoDB client the operator tool uses.
type Reader interface {
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Checkpoint is where a shard stands.
type Checkpoint struct {
	ShardID        string `json:"shardId"`
	SequenceNumber string `json:"sequenceNumber"`
	UpdatedAt      string `json:"updatedAt"`
	RequestID      string `json:"requestId"`
	Topic          string `json:"topic"`
	LastMessageID  string `json:"lastMessageId"`
}

// BatchItem is what one invocation did.
type BatchItem struct {
	FirstSequenceNumber      string    `json:"firstSequenceNumber"`
	LastSequenceNumber       string    `json:"lastSequenceNumber"`
	CheckpointSequenceNumber string    `json:"checkpointSequenceNumber,omitempty"`
	FailedSequenceNumber     string    `json:"failedSequenceNumber,omitempty"`
	Records                  int       `json:"records"`
	Published                int       `json:"published"`
	DeadLettered             int       `json:"deadLettered"`
	StartedAt                string    `json:"startedAt"`
	DurationMs               int64     `json:"durationMs"`
	Topic                    string    `json:"topic"`
	RequestID                string    `json:"requestId"`
	ExpiresAt                time.Time `json:"expiresAt"`
}

// Checkpoints reads the checkpoints of the given shards of a stream; shards without one are left out.
func Checkpoints(ctx context.Context, db Reader, table, streamARN string, shardIDs []string) ([]Checkpoint, error) {
	var out []Checkpoint
	for start := 0; start < len(shardIDs); start += 100 { // BatchGetItem takes up to 100 keys
		keys := []map[string]types.AttributeValue{}
		for _, id := range shardIDs[start:min(start+100, len(shardIDs))] {
			keys = append(keys, map[string]types.AttributeValue{AttrPK: str(Key(streamARN, id)), AttrSK: str(CheckpointSK)})
		}
		req := map[string]types.KeysAndAttributes{table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
			res, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("reading checkpoints from %s: %w", table, err)
			}
			for _, item := range res.Responses[table] {
				out = append(out, checkpointOf(item, streamARN))
			}
			if req = res.UnprocessedKeys; len(req) == 0 {
				break
			}
			// Keys come back unprocessed when the table throttles: retrying at once would be refused too.
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("reading checkpoints from %s: %w", table, context.Cause(ctx))
			case <-time.After(wait):
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ShardID < out[j].ShardID })
	return out, nil
}

// ScanCheckpoints finds every checkpoint of a stream by scanning the table. It reads the whole table:
// use Checkpoints with the stream's shard ids when they are known.
func ScanCheckpoints(ctx context.Context, db Reader, table, streamARN string) ([]Checkpoint, error) {
	var out []Checkpoint
	in := &dynamodb.ScanInput{
		TableName:                 &table,
		FilterExpression:          aws.String("sk = :cp AND begins_with(pk, :stream)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":cp": str(CheckpointSK), ":stream": str(streamARN + "#")},
	}
	for {
		res, err := db.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("scanning %s for checkpoints: %w", table, err)
		}
		for _, item := range res.Items {
			out = append(out, checkpointOf(item, streamARN))
		}
		if len(res.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ShardID < out[j].ShardID })
	return out, nil
}

// RecentBatches returns up to n batch items of a shard, newest first: by first sequence number,
// highest first, and attempts at the same batch (Lambda's retries) by start time, latest first.
func RecentBatches(ctx context.Context, db Reader, table, streamARN, shardID string, n int) ([]BatchItem, error) {
	return batches(ctx, db, table, streamARN, shardID, n, time.Time{})
}

// BatchesUntil is RecentBatches for the batches that started at or before until. It reads, and pays
// for, every batch item of the shard newer than until: meant for the last hours or days, not as an
// index by time.
func BatchesUntil(ctx context.Context, db Reader, table, streamARN, shardID string, until time.Time, n int) ([]BatchItem, error) {
	if until.IsZero() {
		return nil, errors.New("the time to list batches until must be set")
	}
	return batches(ctx, db, table, streamARN, shardID, n, until)
}

// batches queries a shard's batch items in descending sort key order. Within a shard Kinesis sequence
// numbers have the same number of digits, so the sort key order of "batch#<first sequence number>#…"
// is their integer order, which is time order.
func batches(ctx context.Context, db Reader, table, streamARN, shardID string, n int, until time.Time) ([]BatchItem, error) {
	if n <= 0 {
		return nil, errors.New("the number of batches must be positive")
	}
	in := &dynamodb.QueryInput{
		TableName:              &table,
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :batch)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(Key(streamARN, shardID)), ":batch": str(BatchPrefix),
		},
		ScanIndexForward: aws.Bool(false),
	}
	if !until.IsZero() {
		// startedAt has a fixed width, so string order is time order.
		in.FilterExpression = aws.String("startedAt <= :until")
		in.ExpressionAttributeValues[":until"] = str(iso(until))
	}
	var out []BatchItem
	for len(out) < n {
		// The limit applies before the filter: with one, read full pages and keep the first n matches.
		in.Limit = aws.Int32(int32(min(n-len(out), 1000)))
		if in.FilterExpression != nil {
			in.Limit = aws.Int32(1000)
		}
		res, err := db.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("reading batches of %s from %s: %w", shardID, table, err)
		}
		for _, item := range res.Items {
			out = append(out, batchOf(item))
		}
		if len(res.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
	out = out[:min(len(out), n)]
	// Retries of one batch share its first sequence number; their sort keys then differ only by
	// request id, which says nothing about time.
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && out[j].FirstSequenceNumber == out[i].FirstSequenceNumber {
			j++
		}
		run := out[i:j]
		sort.SliceStable(run, func(a, b int) bool { return run[a].StartedAt > run[b].StartedAt })
		i = j
	}
	return out, nil
}

func batchOf(item map[string]types.AttributeValue) BatchItem {
	return BatchItem{
		FirstSequenceNumber:      s(item, "firstSequenceNumber"),
		LastSequenceNumber:       s(item, "lastSequenceNumber"),
		CheckpointSequenceNumber: s(item, "checkpointSequenceNumber"),
		FailedSequenceNumber:     s(item, "failedSequenceNumber"),
		Records:                  int(n64(item, "records")),
		Published:                int(n64(item, "published")),
		DeadLettered:             int(n64(item, "deadLettered")),
		StartedAt:                s(item, "startedAt"),
		DurationMs:               n64(item, "durationMs"),
		Topic:                    s(item, "topic"),
		RequestID:                s(item, "requestId"),
		ExpiresAt:                time.Unix(n64(item, AttrExpiresAt), 0).UTC(),
	}
}

func checkpointOf(item map[string]types.AttributeValue, streamARN string) Checkpoint {
	return Checkpoint{
		ShardID:        strings.TrimPrefix(s(item, AttrPK), streamARN+"#"),
		SequenceNumber: s(item, "sequenceNumber"),
		UpdatedAt:      s(item, "updatedAt"),
		RequestID:      s(item, "requestId"),
		Topic:          s(item, "topic"),
		LastMessageID:  s(item, "lastMessageId"),
	}
}

func s(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func n64(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}
