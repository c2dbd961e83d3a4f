package audit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// throttling answers BatchGetItem with some keys unprocessed, as a throttled table does; DynamoDB
// Local never does. Only BatchGetItem is used.
type throttling struct {
	Reader
	table string
	calls int
}

func (f *throttling) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	f.calls++
	keys := in.RequestItems[f.table].Keys
	n := 1 // one key per call, the others unprocessed
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
	for _, k := range keys[:n] {
		out.Responses[f.table] = append(out.Responses[f.table], map[string]types.AttributeValue{
			AttrPK: k[AttrPK], AttrSK: k[AttrSK], "sequenceNumber": str("1"),
		})
	}
	if rest := keys[n:]; len(rest) > 0 {
		out.UnprocessedKeys = map[string]types.KeysAndAttributes{f.table: {Keys: rest}}
	}
	return out, nil
}

func TestCheckpointsRetryUnprocessedKeys(t *testing.T) {
	shards := []string{"shardId-000000000000", "shardId-000000000001", "shardId-000000000002"}
	f := &throttling{table: "t"}
	start := time.Now()
	cps, err := Checkpoints(context.Background(), f, "t", "arn", shards)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 3 || cps[0].ShardID != shards[0] || cps[2].ShardID != shards[2] || f.calls != 3 {
		t.Errorf("got %+v in %d calls, want the 3 shards in 3", cps, f.calls)
	}
	if elapsed := time.Since(start); elapsed < 150*time.Millisecond {
		t.Errorf("retried unprocessed keys after %v, want a backoff (50 ms, then 100 ms)", elapsed)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := Checkpoints(ctx, &throttling{table: "t"}, "t", "arn", shards); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("with the context ending during the backoff: %v", err)
	}
}
