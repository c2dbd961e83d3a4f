//go:build integration

package audit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/internal/audit"
)

// requests counts the HTTP requests a DynamoDB client sends, by operation (the X-Amz-Target header
// without its "DynamoDB_20120810." prefix). Retries count as requests of their own.
type requests struct {
	base http.RoundTripper
	mu   sync.Mutex
	ops  map[string]int
}

func (r *requests) RoundTrip(req *http.Request) (*http.Response, error) {
	op := req.Header.Get("X-Amz-Target")
	op = op[strings.LastIndexByte(op, '.')+1:]
	r.mu.Lock()
	r.ops[op]++
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// take returns the counts so far and starts over.
func (r *requests) take() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := r.ops
	r.ops = map[string]int{}
	return ops
}

// local is the DynamoDB Local of the stack with one fresh audit table.
type local struct {
	cfg   aws.Config
	db    *dynamodb.Client // counted by reqs
	reqs  *requests
	table string
}

// newLocal creates a table of its own for the test with audit.CreateTable and deletes it afterwards.
func newLocal(t *testing.T) *local {
	t.Helper()
	localenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := localenv.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reqs := &requests{base: http.DefaultTransport.(*http.Transport).Clone(), ops: map[string]int{}}
	l := &local{
		cfg:   cfg,
		db:    dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.HTTPClient = &http.Client{Transport: reqs} }),
		reqs:  reqs,
		table: tableName(t),
	}
	if err := audit.CreateTable(ctx, l.db, l.table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := l.db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &l.table}); err != nil {
			t.Errorf("deleting table %s: %v", l.table, err)
		}
	})
	l.reqs.take()
	return l
}

// tableName is unique to the test and the run, within DynamoDB's name rules.
func tableName(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 80 {
		name = name[:80]
	}
	return fmt.Sprintf("audit-%s-%s", name, hex.EncodeToString(b))
}

// item reads one item with a consistent read.
func (l *local) item(t *testing.T, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := l.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &l.table,
		Key:            map[string]types.AttributeValue{audit.AttrPK: &types.AttributeValueMemberS{Value: pk}, audit.AttrSK: &types.AttributeValueMemberS{Value: sk}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("reading %s/%s: %v", pk, sk, err)
	}
	return res.Item
}

// items reads every item of a partition, in sort key order.
func (l *local) items(t *testing.T, pk string) []map[string]types.AttributeValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in := &dynamodb.QueryInput{
		TableName:                 &l.table,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
		ConsistentRead:            aws.Bool(true),
	}
	var out []map[string]types.AttributeValue
	for {
		res, err := l.db.Query(ctx, in)
		if err != nil {
			t.Fatalf("query %s: %v", pk, err)
		}
		out = append(out, res.Items...)
		if len(res.LastEvaluatedKey) == 0 {
			return out
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// attrs renders an item as name → value (strings and numbers), for comparisons and messages.
func attrs(item map[string]types.AttributeValue) map[string]string {
	out := map[string]string{}
	for k, v := range item {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			out[k] = v.Value
		case *types.AttributeValueMemberN:
			out[k] = "N:" + v.Value
		default:
			out[k] = fmt.Sprintf("%T", v)
		}
	}
	return out
}
