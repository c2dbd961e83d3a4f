package sink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/streambridge/kinesis-pulsar/internal/kpl"
	"github.com/streambridge/kinesis-pulsar/internal/producer"
)

// fakeMsg is a received message; only what the sink reads is implemented.
type fakeMsg struct {
	pulsar.Message
	topic, key   string
	payload      []byte
	props        map[string]string
	id           pulsar.MessageID
	publish      time.Time
	event        time.Time
	redeliveries uint32
}

func (m *fakeMsg) Topic() string                 { return m.topic }
func (m *fakeMsg) Key() string                   { return m.key }
func (m *fakeMsg) Payload() []byte               { return m.payload }
func (m *fakeMsg) Properties() map[string]string { return m.props }
func (m *fakeMsg) ID() pulsar.MessageID          { return m.id }
func (m *fakeMsg) PublishTime() time.Time        { return m.publish }
func (m *fakeMsg) EventTime() time.Time          { return m.event }
func (m *fakeMsg) RedeliveryCount() uint32       { return m.redeliveries }

// broker is a fake single-partition topic behind a Failover subscription: a consumer receives the
// unacknowledged messages in order; closing it makes what it did not acknowledge deliverable again.
type broker struct {
	t  testing.TB
	mu sync.Mutex
	// msgs in publish order; acked by entry id.
	msgs   []*fakeMsg
	acked  map[int64]bool
	cursor int // next message index for the open consumer
	kin    *fakeKinesis
	dead   []*pulsar.ProducerMessage
	sendFn func(msgs []*pulsar.ProducerMessage) error
	subErr error
	opts   pulsar.ConsumerOptions
}

func newBroker(t testing.TB, kin *fakeKinesis) *broker {
	return &broker{t: t, acked: map[int64]bool{}, kin: kin}
}

// publish adds messages with keys keys[i] and payloads "<key>-<n>" (n counts per key).
func (b *broker) publish(topic string, keys ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		n := len(b.msgs)
		b.msgs = append(b.msgs, &fakeMsg{topic: topic, key: k, payload: fmt.Appendf(nil, "%s-%06d", k, n),
			id: pulsar.NewMessageID(1, int64(n), -1, 0), publish: time.Now(), props: map[string]string{"n": fmt.Sprint(n)}})
	}
}

func (b *broker) Begin() producer.Invocation    { return 0 }
func (b *broker) End(producer.Invocation, bool) {}
func (b *broker) Subscribe(_ context.Context, o pulsar.ConsumerOptions) (Consumer, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opts = o
	b.cursor = 0
	if b.subErr != nil {
		return nil, b.subErr
	}
	return &fakeConsumer{b: b}, nil
}

func (b *broker) Send(_ context.Context, topic string, msgs []*pulsar.ProducerMessage) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sendFn != nil {
		if err := b.sendFn(msgs); err != nil {
			return err
		}
	}
	b.dead = append(b.dead, msgs...)
	return nil
}

func (b *broker) unacked() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs) - len(b.acked)
}

type fakeConsumer struct{ b *broker }

func (c *fakeConsumer) Receive(ctx context.Context) (pulsar.Message, error) {
	for {
		c.b.mu.Lock()
		for c.b.cursor < len(c.b.msgs) && c.b.acked[int64(c.b.cursor)] {
			c.b.cursor++
		}
		if c.b.cursor < len(c.b.msgs) {
			m := c.b.msgs[c.b.cursor]
			c.b.cursor++
			c.b.mu.Unlock()
			return m, nil
		}
		c.b.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func (c *fakeConsumer) AckIDList(ids []pulsar.MessageID) error {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	for _, id := range ids {
		m := c.b.msgs[id.EntryID()]
		// The contract under test: acknowledged only after Kinesis confirmed it (or it was dead-lettered).
		if !c.b.kin.has(m.payload) && !slices.ContainsFunc(c.b.dead, func(d *pulsar.ProducerMessage) bool {
			return string(d.Payload) == string(m.payload)
		}) {
			c.b.t.Errorf("message %d acknowledged before Kinesis confirmed it", id.EntryID())
		}
		c.b.acked[id.EntryID()] = true
	}
	return nil
}

func (c *fakeConsumer) Close() {}

// putRecord is one record Kinesis accepted.
type putRecord struct {
	key, shard string
	data       []byte
}

// fakeKinesis accepts PutRecords and injects faults: fail decides each record's error code ("" to
// accept), callErr fails a whole call. It checks perKey's rule as the calls arrive: no record of a
// key (or, aggregating, of a shard) while another call with it is unanswered, none twice in a call.
type fakeKinesis struct {
	t        testing.TB
	mu       sync.Mutex
	calls    int
	fail     func(call int, key string, data []byte) string
	callErr  func(call int) error
	block    func(ctx context.Context) error
	lanes    map[string]bool
	checkKey bool // enforce the perKey rule
	byShard  bool
	accepted []putRecord
	payloads map[string]bool
	shards   *shardMap
	listed   int
}

func newFakeKinesis(t testing.TB) *fakeKinesis {
	m := &shardMap{starts: []hash128{{0, 0}, {1 << 63, 0}}, ids: []string{"shardId-000000000000", "shardId-000000000001"}}
	return &fakeKinesis{t: t, lanes: map[string]bool{}, payloads: map[string]bool{}, shards: m}
}

func (k *fakeKinesis) has(payload []byte) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.payloads[string(payload)]
}

func (k *fakeKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	k.mu.Lock()
	k.calls++
	call := k.calls
	var lanes []string
	for _, r := range in.Records {
		lane := aws.ToString(r.PartitionKey)
		if k.byShard {
			lane = k.shards.shardOf(lane)
		}
		if k.checkKey && k.lanes[lane] {
			k.t.Errorf("call %d writes lane %s while an earlier record of it is unconfirmed", call, lane)
		}
		k.lanes[lane] = true
		lanes = append(lanes, lane)
	}
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		for _, l := range lanes {
			delete(k.lanes, l)
		}
		k.mu.Unlock()
	}()
	if k.block != nil {
		if err := k.block(ctx); err != nil {
			return nil, err
		}
	}
	if k.callErr != nil {
		if err := k.callErr(call); err != nil {
			return nil, err
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	out := &kinesis.PutRecordsOutput{}
	for _, r := range in.Records {
		key := aws.ToString(r.PartitionKey)
		shard := k.shards.shardOf(key)
		if k.fail != nil {
			if code := k.fail(call, key, r.Data); code != "" {
				out.FailedRecordCount = aws.Int32(aws.ToInt32(out.FailedRecordCount) + 1)
				out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String("injected")})
				continue
			}
		}
		k.accepted = append(k.accepted, putRecord{key: key, shard: shard, data: r.Data})
		for _, p := range k.userPayloads(r.Data) {
			k.payloads[string(p)] = true
		}
		out.Records = append(out.Records, types.PutRecordsResultEntry{ShardId: aws.String(shard), SequenceNumber: aws.String(fmt.Sprint(len(k.accepted)))})
	}
	return out, nil
}

func (k *fakeKinesis) userPayloads(data []byte) [][]byte {
	recs, err := kpl.Deaggregate(data)
	if err != nil {
		return [][]byte{data}
	}
	var out [][]byte
	for _, r := range recs {
		out = append(out, r.Data)
	}
	return out
}

func (k *fakeKinesis) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.listed++
	out := &kinesis.ListShardsOutput{}
	ends := []string{"170141183460469231731687303715884105727", "340282366920938463463374607431768211455"}
	starts := []string{"0", "170141183460469231731687303715884105728"}
	for i, id := range k.shards.ids {
		out.Shards = append(out.Shards, types.Shard{ShardId: aws.String(id),
			HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(starts[i]), EndingHashKey: aws.String(ends[i])},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}})
	}
	return out, nil
}

// firstDeliveries returns, per partition key, the user-record payloads in the order Kinesis first
// accepted them.
func (k *fakeKinesis) firstDeliveries() map[string][]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	seen := map[string]bool{}
	out := map[string][]string{}
	for _, r := range k.accepted {
		recs, err := kpl.Deaggregate(r.data)
		if err != nil {
			recs = []kpl.Record{{PartitionKey: r.key, Data: r.data}}
		}
		for _, u := range recs {
			if !seen[string(u.Data)] {
				seen[string(u.Data)] = true
				out[u.PartitionKey] = append(out[u.PartitionKey], string(u.Data))
			}
		}
	}
	return out
}

var errInjected = errors.New("injected")
