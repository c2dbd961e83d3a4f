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
	ShardID        string
	SequenceNumber string
	UpdatedAt      string
	RequestID      string
	Topic          string
	LastMessageID  string
}

// BatchItem is what one invocation did.
type BatchItem struct {
	FirstSequenceNumber      string
	LastSequenceNumber       string
	CheckpointSequenceNumber string
	FailedSequenceNumber     string
	Records                  int
	Published                int
	DeadLettered             int
	StartedAt                string
	DurationMs               int64
	Topic                    string
	RequestID                string
	ExpiresAt                time.Time
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
		for len(req) > 0 {
			res, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("reading checkpoints from %s: %w", table, err)
			}
			for _, item := range res.Responses[table] {
				out = append(out, checkpointOf(item, streamARN))
			}
			req = res.UnprocessedKeys
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

// RecentBatches returns up to n batch items of a shard, highest first sequence number first (within a
// shard, Kinesis sequence numbers have the same number of digits, so this is also time order).
func RecentBatches(ctx context.Context, db Reader, table, streamARN, shardID string, n int) ([]BatchItem, error) {
	if n <= 0 {
		return nil, errors.New("the number of batches must be positive")
	}
	res, err := db.Query(ctx, &dynamodb.QueryInput{
		TableName:              &table,
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :batch)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(Key(streamARN, shardID)), ":batch": str(BatchPrefix),
		},
		ScanIndexForward: aws.Bool(false),
		Limit:            aws.Int32(int32(n)),
	})
	if err != nil {
		return nil, fmt.Errorf("reading batches of %s from %s: %w", shardID, table, err)
	}
	out := make([]BatchItem, 0, len(res.Items))
	for _, item := range res.Items {
		out = append(out, BatchItem{
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
		})
	}
	return out, nil
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
