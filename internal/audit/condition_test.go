package audit

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streambridge/kinesis-pulsar/internal/relay"
)

// checkpointItems applies UpdateItem requests to one item in memory, evaluating the request's own
// ConditionExpression and UpdateExpression. It understands only the grammar the checkpoint uses
// (attribute_not_exists, comparisons of an attribute with a value, OR, AND, SET a = :v, ...) and fails
// the test on anything else, so a changed expression is evaluated as written or noticed, never guessed.
// The integration tests run the same requests against DynamoDB Local; this one lets `make unit` catch a
// flipped comparison.
type checkpointItems struct {
	t    *testing.T
	item map[string]string // attribute name -> string value; nil: no item
}

func (c *checkpointItems) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return &dynamodb.PutItemOutput{}, nil
}

func (c *checkpointItems) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	values := map[string]string{}
	for k, v := range in.ExpressionAttributeValues {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			c.t.Fatalf("value %s is %T, the checkpoint writes strings only", k, v)
		}
		values[k] = s.Value
	}
	if in.ConditionExpression != nil && !c.holds(*in.ConditionExpression, values) {
		return nil, &types.ConditionalCheckFailedException{}
	}
	set, ok := strings.CutPrefix(*in.UpdateExpression, "SET ")
	if !ok {
		c.t.Fatalf("update expression %q: only SET is understood", *in.UpdateExpression)
	}
	if c.item == nil {
		c.item = map[string]string{}
	}
	for _, a := range strings.Split(set, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(a), " = ")
		v, known := values[value]
		if !ok || !known {
			c.t.Fatalf("update expression %q: %q is not `name = :value`", *in.UpdateExpression, a)
		}
		c.item[name] = v
	}
	return &dynamodb.UpdateItemOutput{}, nil
}

var (
	notExists  = regexp.MustCompile(`^attribute_not_exists\((\w+)\)$`)
	comparison = regexp.MustCompile(`^(\w+) (<|<=|>|>=|=|<>) (:\w+)$`)
)

// holds evaluates expr: OR of ANDs of terms (no parentheses other than the function's).
func (c *checkpointItems) holds(expr string, values map[string]string) bool {
	for _, conj := range strings.Split(expr, " OR ") {
		all := true
		for _, term := range strings.Split(conj, " AND ") {
			all = all && c.term(strings.TrimSpace(term), values)
		}
		if all {
			return true
		}
	}
	return false
}

func (c *checkpointItems) term(term string, values map[string]string) bool {
	if m := notExists.FindStringSubmatch(term); m != nil {
		_, ok := c.item[m[1]]
		return !ok
	}
	m := comparison.FindStringSubmatch(term)
	if m == nil {
		c.t.Fatalf("condition term %q is not understood", term)
	}
	have, ok := c.item[m[1]]
	if !ok {
		return false // a comparison with a missing attribute is false in DynamoDB
	}
	v, ok := values[m[3]]
	if !ok {
		c.t.Fatalf("condition term %q: no value %s", term, m[3])
	}
	// DynamoDB compares strings by their UTF-8 bytes, as Go does.
	switch m[2] {
	case "<":
		return have < v
	case "<=":
		return have <= v
	case ">":
		return have > v
	case ">=":
		return have >= v
	case "=":
		return have == v
	default:
		return have != v
	}
}

// The checkpoint's condition, evaluated on the requests Record sends: whatever order the batches of a
// shard finish in, the checkpoint ends at the highest sequence number (compared as integers: 100 after
// 99), and a checkpoint recorded again (a retry) changes nothing, not even the request id.
func TestCheckpointNeverMovesBackwards(t *testing.T) {
	const arn = "arn:aws:kinesis:us-east-1:123456789012:stream/s"
	for _, tc := range []struct {
		order []string // checkpoints in the order their invocations finish
		want  string
	}{
		{[]string{"1", "2", "3"}, "3"},
		{[]string{"3", "2", "1"}, "3"},
		{[]string{"99", "100", "98"}, "100"},
		{[]string{"100", "99"}, "100"},
		{[]string{"5", "49590338271490256608559692538361571095921575989136588898", "700"}, "49590338271490256608559692538361571095921575989136588898"},
	} {
		t.Run(strings.Join(tc.order, ","), func(t *testing.T) {
			db := &checkpointItems{t: t}
			table := New(db, Options{Table: "audit"})
			for i, seq := range tc.order {
				err := table.Record(context.Background(), relay.AuditRecord{StreamARN: arn, ShardID: "shardId-000000000000",
					RequestID: fmt.Sprintf("req-%d", i), FirstSequenceNumber: seq, LastSequenceNumber: seq,
					CheckpointSequenceNumber: seq, StartedAt: time.Unix(1_700_000_000, 0)})
				if err != nil {
					t.Fatal(err)
				}
			}
			if got := db.item["sequenceNumber"]; got != tc.want {
				t.Errorf("checkpoint %q after %v, want %s", got, tc.order, tc.want)
			}
			// The same checkpoint recorded again by a retry leaves the item as it is.
			before := db.item["requestId"]
			if err := table.Record(context.Background(), relay.AuditRecord{StreamARN: arn, ShardID: "shardId-000000000000",
				RequestID: "retry", FirstSequenceNumber: tc.want, CheckpointSequenceNumber: tc.want,
				StartedAt: time.Unix(1_700_000_000, 0)}); err != nil {
				t.Fatal(err)
			}
			if got := db.item["requestId"]; got != before {
				t.Errorf("recording checkpoint %s again replaced request id %s with %s", tc.want, before, got)
			}
		})
	}
}
