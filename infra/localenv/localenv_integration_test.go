//go:build integration

package localenv_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
)

// unique makes names that do not collide between runs against the same servers.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

func newClient(t *testing.T, serviceURL string) pulsar.Client {
	t.Helper()
	client, err := pulsar.NewClient(pulsar.ClientOptions{
		URL:               serviceURL,
		ConnectionTimeout: 5 * time.Second,
		OperationTimeout:  30 * time.Second,
		Logger:            pulsarlog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	})
	if err != nil {
		t.Fatalf("pulsar client for %s: %v", serviceURL, err)
	}
	t.Cleanup(client.Close)
	return client
}

type message struct {
	key, payload string
	props        map[string]string
}

// publish sends the messages in order and waits for every receipt.
func publish(ctx context.Context, client pulsar.Client, topic string, msgs []message) error {
	producer, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	if err != nil {
		return fmt.Errorf("create producer on %s: %w", topic, err)
	}
	defer producer.Close()
	for i, m := range msgs {
		if _, err := producer.Send(ctx, &pulsar.ProducerMessage{Key: m.key, Payload: []byte(m.payload), Properties: m.props}); err != nil {
			return fmt.Errorf("send message %d to %s: %w", i, topic, err)
		}
	}
	return nil
}

// receive reads n messages from the consumer and acknowledges them.
func receive(ctx context.Context, consumer pulsar.Consumer, n int) ([]message, error) {
	var got []message
	for len(got) < n {
		msg, err := consumer.Receive(ctx)
		if err != nil {
			return got, fmt.Errorf("receive message %d of %d: %w", len(got)+1, n, err)
		}
		got = append(got, message{key: msg.Key(), payload: string(msg.Payload()), props: msg.Properties()})
		if err := consumer.Ack(msg); err != nil {
			return got, fmt.Errorf("ack: %w", err)
		}
	}
	return got, nil
}

func sameMessages(got, want []message) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.key != w.key || g.payload != w.payload || len(g.props) != len(w.props) {
			return fmt.Errorf("message %d = %+v, want %+v", i, g, w)
		}
		for k, v := range w.props {
			if g.props[k] != v {
				return fmt.Errorf("message %d property %s = %q, want %q", i, k, g.props[k], v)
			}
		}
	}
	return nil
}

func TestPulsarRoundTrip(t *testing.T) {
	env := localenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := newClient(t, env.PulsarServiceURL)

	tests := []struct {
		name       string
		partitions int // 0: non-partitioned, auto-created on first use
	}{
		{name: "non-partitioned"},
		{name: "partitioned", partitions: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := "persistent://public/default/" + unique("localenv-"+tt.name)
			admin := env.Admin()
			if tt.partitions > 0 {
				if err := admin.CreatePartitionedTopic(ctx, topic, tt.partitions); err != nil {
					t.Fatal(err)
				}
			}
			consumer, err := client.Subscribe(pulsar.ConsumerOptions{
				Topic: topic, SubscriptionName: "check", Type: pulsar.Exclusive,
				SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
			})
			if err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			defer consumer.Close()

			// One key only: a partitioned topic keeps order per key, not across keys.
			var want []message
			for i := range 5 {
				want = append(want, message{key: "shard-0001", payload: fmt.Sprintf("record %d", i),
					props: map[string]string{"seq": fmt.Sprint(i), "source": "localenv"}})
			}
			if err := publish(ctx, client, topic, want); err != nil {
				t.Fatal(err)
			}
			got, err := receive(ctx, consumer, len(want))
			if err != nil {
				t.Fatal(err)
			}
			if err := sameMessages(got, want); err != nil {
				t.Error(err)
			}

			var stats localenv.TopicStats
			if tt.partitions > 0 {
				stats, err = admin.PartitionedTopicStats(ctx, topic)
			} else {
				stats, err = admin.TopicStats(ctx, topic)
			}
			if err != nil {
				t.Fatal(err)
			}
			if stats.MsgInCounter != int64(len(want)) || len(stats.Partitions) != tt.partitions {
				t.Errorf("stats: msgInCounter %d, %d partitions; want %d, %d", stats.MsgInCounter, len(stats.Partitions), len(want), tt.partitions)
			}
			if _, ok := stats.Subscriptions["check"]; !ok {
				t.Errorf("stats: subscription check missing in %v", stats.Subscriptions)
			}
		})
	}
}

func TestTerminateTopic(t *testing.T) {
	env := localenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := newClient(t, env.PulsarServiceURL)
	topic := "persistent://public/default/" + unique("localenv-terminate")

	producer, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatalf("create producer: %v", err)
	}
	defer producer.Close()
	if _, err := producer.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("before")}); err != nil {
		t.Fatalf("send before terminate: %v", err)
	}
	if _, err := env.Admin().TerminateTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	// The connected producer fails: TopicTerminated, or ProducerClosed when the broker's notice closed it first.
	_, err = producer.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("after")})
	if !errors.Is(err, pulsar.ErrTopicTerminated) && !errors.Is(err, pulsar.ErrProducerClosed) {
		t.Errorf("send after terminate: error %v, want %v or %v", err, pulsar.ErrTopicTerminated, pulsar.ErrProducerClosed)
	}
	// A new producer is refused.
	if p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic}); err == nil || !strings.Contains(err.Error(), "TopicTerminated") {
		if p != nil {
			p.Close()
		}
		t.Errorf("create producer on a terminated topic: error %v, want TopicTerminated", err)
	}
	var adminErr *localenv.AdminError
	if err := env.Admin().CreateTopic(ctx, topic); !errors.As(err, &adminErr) || adminErr.Status != 409 {
		t.Errorf("create existing topic: error %v, want HTTP 409", err)
	}
}

func TestDynamoDBLocal(t *testing.T) {
	env := localenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := env.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	table := unique("localenv")
	_, err = db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			t.Errorf("delete table: %v", err)
		}
	})

	item := map[string]ddbtypes.AttributeValue{
		"pk":       &ddbtypes.AttributeValueMemberS{Value: "shard-0001"},
		"sequence": &ddbtypes.AttributeValueMemberS{Value: "49590338271490256608559692538361571095921575989136588898"},
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatalf("put item: %v", err)
	}
	// A conditional write is what the checkpoint relies on; DynamoDB Local must refuse the second one.
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	var conflict *ddbtypes.ConditionalCheckFailedException
	if !errors.As(err, &conflict) {
		t.Errorf("conditional put of an existing item: error %v, want ConditionalCheckFailedException", err)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(table), Key: map[string]ddbtypes.AttributeValue{"pk": item["pk"]}, ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("get item: %v", err)
	}
	if seq, ok := out.Item["sequence"].(*ddbtypes.AttributeValueMemberS); !ok || seq.Value != item["sequence"].(*ddbtypes.AttributeValueMemberS).Value {
		t.Errorf("get item = %v, want the item put", out.Item)
	}

	// The table is in DynamoDB Local, not in moto (which also speaks DynamoDB): the SDK used
	// AWS_ENDPOINT_URL_DYNAMODB.
	onMoto := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(env.AWSEndpointURL) })
	tables, err := onMoto.ListTables(ctx, &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatalf("list tables on moto: %v", err)
	}
	for _, name := range tables.TableNames {
		if name == table {
			t.Errorf("table %s was created on moto (%s), not on DynamoDB Local (%s)", table, env.AWSEndpointURL, env.DynamoDBEndpointURL)
		}
	}
}

func TestMotoSecretsManager(t *testing.T) {
	env := localenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := env.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	name := unique("localenv/pulsar-token")
	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("token-value")})
	if err != nil {
		t.Fatalf("create secret: %v", err)
	}
	got, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: created.ARN})
	if err != nil {
		t.Fatalf("get secret: %v", err)
	}
	if aws.ToString(got.SecretString) != "token-value" || aws.ToString(got.Name) != name {
		t.Errorf("secret = %q (%s), want token-value (%s)", aws.ToString(got.SecretString), aws.ToString(got.Name), name)
	}
}

// TestExtraBroker is what the fault tests rely on: a broker of their own, next to the shared one, that
// can be killed and restarted on the same ports with its data.
func TestExtraBroker(t *testing.T) {
	env := localenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	broker := localenv.StartBroker(t, localenv.BrokerOptions{Name: "localenv-extra"})
	if broker.ServiceURL() == env.PulsarServiceURL || broker.AdminURL() == env.PulsarAdminURL {
		t.Fatalf("extra broker %s / %s shares an address with the stack's broker", broker.ServiceURL(), broker.AdminURL())
	}
	topic := "persistent://public/default/" + unique("localenv-restart")
	first := []message{{key: "k", payload: "before the crash", props: map[string]string{"n": "1"}}}
	second := []message{{key: "k", payload: "after the restart", props: map[string]string{"n": "2"}}}

	if err := publish(ctx, newClient(t, broker.ServiceURL()), topic, first); err != nil {
		t.Fatal(err)
	}
	if err := broker.Kill(); err != nil {
		t.Fatal(err)
	}
	// Killed means gone: the shared broker must not be affected, the extra one must refuse.
	if err := env.Reachable(ctx); err != nil {
		t.Fatalf("the stack's servers after killing the extra broker: %v", err)
	}
	if _, err := broker.Admin().TopicStats(ctx, topic); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("admin API of the killed broker: error %v, want connection refused", err)
	}

	if err := broker.Restart(); err != nil {
		t.Fatal(err)
	}
	client := newClient(t, broker.ServiceURL())
	if err := publish(ctx, client, topic, second); err != nil {
		t.Fatal(err)
	}
	// What was acknowledged before the crash survived it.
	consumer, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "check", SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer consumer.Close()
	got, err := receive(ctx, consumer, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameMessages(got, append(first, second...)); err != nil {
		t.Error(err)
	}
}
