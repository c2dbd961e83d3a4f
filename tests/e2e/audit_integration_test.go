//go:build integration

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/internal/audit"
	"github.com/streambridge/kinesis-pulsar/internal/kpl"
	"github.com/streambridge/kinesis-pulsar/tests/kinesistest"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

// The acceptance of the audit issue: the real bootstrap with AUDIT_TABLE_NAME set (and the local
// endpoint and credential variables) processes two batches of one shard; the table then holds the
// checkpoint at the last record, with a message id that reads back that record from the topic, and
// one batch item per invocation, expiring 7 days after it started.
func TestBootstrapWritesAudit(t *testing.T) {
	stack := localenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := stack.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	table := "audit-e2e-" + hex.EncodeToString(b)
	if err := audit.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})

	topic := pulsartest.Topic(t, "e2e-audit")
	f := mustStart(t, map[string]string{
		"PULSAR_SERVICE_URL":        stack.PulsarServiceURL,
		"PULSAR_TOPIC":              topic,
		"AUDIT_TABLE_NAME":          table,
		"AWS_ENDPOINT_URL":          stack.AWSEndpointURL,
		"AWS_ENDPOINT_URL_DYNAMODB": stack.DynamoDBEndpointURL,
		"AWS_ACCESS_KEY_ID":         stack.AWSAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":     stack.AWSSecretAccessKey,
	}, 30*time.Second)

	// Two batches: plain records, then plain records and a KPL aggregate last (its 10 user records are
	// 10 messages; the checkpoint's message is the last of them).
	shard := kinesistest.NewShard("e2e-audit", 1)
	var batches [2]events.KinesisEvent
	for i := 0; i < 3; i++ {
		batches[0].Records = append(batches[0].Records, shard.Record(fmt.Sprintf("k%d", i), []byte(fmt.Sprintf("first %d", i))))
	}
	batches[1].Records = append(batches[1].Records, shard.Record("k", []byte("second")))
	users := make([]kpl.Record, 10)
	for i := range users {
		users[i] = kpl.Record{PartitionKey: "agg", Data: []byte(fmt.Sprintf("user %d", i))}
	}
	agg, err := shard.Aggregate(users)
	if err != nil {
		t.Fatal(err)
	}
	batches[1].Records = append(batches[1].Records, agg)

	type invocation struct {
		ev             events.KinesisEvent
		requestID      string
		before, after  time.Time
		duration       time.Duration
		published      int
		wantCheckpoint string
	}
	var invs []invocation
	for i, ev := range batches {
		f.stdout.Reset()
		before := time.Now()
		resp, res := f.invoke(t, ev)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("batch %d: response %s, want every record delivered", i, res.Payload)
		}
		if docs := f.emf(t); len(docs) != 1 || docs[0]["AuditWriteErrors"] != 0.0 {
			t.Fatalf("batch %d: EMF %v, want one document without audit errors\nstderr:\n%s", i, docs, strings.Join(f.stderr.Lines(), "\n"))
		}
		invs = append(invs, invocation{ev: ev, requestID: res.RequestID, before: before, after: time.Now(), duration: res.Duration,
			published: []int{3, 11}[i], wantCheckpoint: ev.Records[len(ev.Records)-1].Kinesis.SequenceNumber})
	}

	pk := audit.Key(kinesistest.StreamARN("e2e-audit"), shard.ID)
	items := query(ctx, t, db, table, pk)
	if len(items) != 3 {
		t.Fatalf("%d items for %s, want the checkpoint and 2 batch items: %v", len(items), pk, items)
	}

	// The batch items.
	for i, inv := range invs {
		first := inv.ev.Records[0].Kinesis.SequenceNumber
		item, ok := items[audit.BatchSK(first, inv.requestID)]
		if !ok {
			t.Fatalf("batch %d: no item %s among %v", i, audit.BatchSK(first, inv.requestID), items)
		}
		want := map[string]string{
			"firstSequenceNumber": first, "lastSequenceNumber": inv.wantCheckpoint, "checkpointSequenceNumber": inv.wantCheckpoint,
			"records": strconv.Itoa(len(inv.ev.Records)), "published": strconv.Itoa(inv.published), "deadLettered": "0",
			"topic": topic, "requestId": inv.requestID,
		}
		for k, v := range want {
			if item[k] != v {
				t.Errorf("batch %d: %s = %q, want %q", i, k, item[k], v)
			}
		}
		if _, has := item["failedSequenceNumber"]; has {
			t.Errorf("batch %d: failedSequenceNumber on a delivered batch: %v", i, item)
		}
		// The item's instants are ISO-8601 with milliseconds, truncated: the 1 ms allowance is that
		// truncation, not a tolerance for the machine.
		started, err := time.Parse(time.RFC3339, item["startedAt"])
		if err != nil || started.Before(inv.before.Add(-time.Millisecond)) || started.After(inv.after) {
			t.Errorf("batch %d: startedAt %s (%v), want between %v and %v", i, item["startedAt"], err, inv.before, inv.after)
		}
		if ms, err := strconv.ParseInt(item["durationMs"], 10, 64); err != nil || ms < 0 || time.Duration(ms)*time.Millisecond > inv.duration {
			t.Errorf("batch %d: durationMs %s, want at most the invocation's %v", i, item["durationMs"], inv.duration)
		}
		expires, err := strconv.ParseInt(item["expiresAt"], 10, 64)
		if want := started.Add(7 * 24 * time.Hour).Unix(); err != nil || expires != want {
			t.Errorf("batch %d: expiresAt %s, want startedAt + 7 days = %d", i, item["expiresAt"], want)
		}
		if d := time.Until(time.Unix(expires, 0)) - 7*24*time.Hour; d > time.Second || d < -time.Minute {
			t.Errorf("batch %d: expiresAt is now + 7 days %+v", i, d)
		}
	}

	// The checkpoint: the last record of the second batch, written by that invocation.
	cp := items[audit.CheckpointSK]
	last := invs[1]
	if cp["sequenceNumber"] != last.wantCheckpoint || cp["requestId"] != last.requestID || cp["topic"] != topic {
		t.Errorf("checkpoint %v, want %s by %s on %s", cp, last.wantCheckpoint, last.requestID, topic)
	}
	if _, has := cp["expiresAt"]; has {
		t.Errorf("the checkpoint expires: %v", cp)
	}
	if updated, err := time.Parse(time.RFC3339, cp["updatedAt"]); err != nil || updated.Before(last.before.Add(-time.Millisecond)) || updated.After(last.after) {
		t.Errorf("checkpoint updatedAt %s (%v), want during the second invocation", cp["updatedAt"], err)
	}

	// lastMessageId is a Pulsar message id: reading the topic from it yields the checkpoint record's
	// last message (the aggregate's tenth user record).
	id, err := parseMessageID(cp["lastMessageId"])
	if err != nil {
		t.Fatalf("checkpoint lastMessageId: %v", err)
	}
	client := pulsartest.Client(t, stack.PulsarServiceURL)
	reader, err := client.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: id, StartMessageIDInclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	next, cancelNext := context.WithTimeout(ctx, 30*time.Second)
	defer cancelNext()
	m, err := reader.Next(next)
	if err != nil {
		t.Fatalf("reading %s from %s: %v", topic, id, err)
	}
	if p := m.Properties(); p["kinesis.sequence.number"] != last.wantCheckpoint || p["kinesis.sub.sequence.number"] != "9" || string(m.Payload()) != "user 9" {
		t.Errorf("message at %s: payload %q properties %v, want the aggregate's last user record", id, m.Payload(), p)
	}
	if m.ID().String() != cp["lastMessageId"] {
		t.Errorf("read message %s, want %s", m.ID(), cp["lastMessageId"])
	}
}

// query returns a partition's items by sort key, each as attribute name → string or number value.
func query(ctx context.Context, t *testing.T, db *dynamodb.Client, table, pk string) map[string]map[string]string {
	t.Helper()
	res, err := db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("query %s: %v", pk, err)
	}
	out := map[string]map[string]string{}
	for _, item := range res.Items {
		m := map[string]string{}
		for k, v := range item {
			switch v := v.(type) {
			case *types.AttributeValueMemberS:
				m[k] = v.Value
			case *types.AttributeValueMemberN:
				m[k] = v.Value
			}
		}
		out[m["sk"]] = m
	}
	return out
}

// parseMessageID reads the text form of a message id, ledger:entry:partition[:batch index].
func parseMessageID(s string) (pulsar.MessageID, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 && len(parts) != 4 {
		return nil, fmt.Errorf("%q is not ledger:entry:partition[:batch index]", s)
	}
	var n [4]int64
	n[3] = -1
	for i, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not ledger:entry:partition[:batch index]: %w", s, err)
		}
		n[i] = v
	}
	return pulsar.NewMessageID(n[0], n[1], int32(n[3]), int32(n[2])), nil
}
