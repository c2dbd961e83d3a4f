package relay_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/internal/eventjson"
	"github.com/streambridge/kinesis-pulsar/internal/kpl"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
	"github.com/streambridge/kinesis-pulsar/tests/kinesistest"
	"github.com/streambridge/kinesis-pulsar/tests/pulsarfake"
)

// The fuzz targets feed bad input through the handler exactly as functions/kinesis-to-pulsar/main.go
// wires it (eventjson.Handler(relay.Handle).Invoke with the raw JSON event). The producers are a fake that
// confirms every message, or fails the n-th one: the fault is in the input, and the oracle is the
// contract with the event source mapping: no panic, allocation linear in the input, and a clear
// outcome per batch (an error only for undecodable JSON, for an event that is not a batch of
// aws:kinesis records, which publishes nothing, or when no record up to the failed one has a
// sequence number; otherwise a response naming exactly the failed record, or the nearest earlier one
// with a sequence number, never an empty identifier).

// fuzzRelay builds the relay the targets drive. LargeRecordBytes is tiny so that both producer kinds
// and the per-key barrier take part.
func fuzzRelay(topic string, p relay.Senders) *relay.Relay {
	return relay.New(relay.Options{Topic: streamtopic.MustParse(topic), Properties: relay.AllProperties, Deaggregate: true, LargeRecordBytes: 32}, p, nil, nil, fuzzLog)
}

var fuzzLog = slog.New(slog.DiscardHandler)

// invokeChecked runs payload through the Lambda handler and checks the outcome against the event
// decoded independently: failedMsg is the index of the message the fake fails (-1 for none), msgs the
// messages each record makes.
// fuzzBroker confirms every message at once, except the send numbered failAt (0-based, across the
// batch), which fails with err.
func fuzzBroker(failAt int, err error) *pulsarfake.Broker {
	sends := 0
	return pulsarfake.New(func(string, int, *pulsar.ProducerMessage) (time.Duration, error, bool) {
		n := sends
		sends++
		if n == failAt {
			return 0, err, false
		}
		return 0, nil, false
	})
}

func invokeChecked(t *testing.T, r *relay.Relay, broker *pulsarfake.Broker, payload []byte, expectFailure func(ev events.KinesisEvent) (failedRecord int)) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := eventjson.Handler(r.Handle).Invoke(ctx, payload)
	runtime.ReadMemStats(&after)
	// Linear in the input: the decoded event, one message and its properties per sub-record (a
	// sub-record costs at least a few bytes of input), the response.
	if grew, limit := after.TotalAlloc-before.TotalAlloc, uint64(4096*len(payload)+(4<<20)); grew > limit {
		t.Fatalf("handling a %d-byte event allocated %d bytes (limit %d)", len(payload), grew, limit)
	}

	// Decoded as aws-lambda-go does: the first JSON value counts, whatever follows it.
	var ev events.KinesisEvent
	if jsonErr := json.NewDecoder(bytes.NewReader(payload)).Decode(&ev); jsonErr != nil {
		if err == nil {
			t.Fatalf("undecodable event (%v) answered %s, want an error", jsonErr, out)
		}
		return
	}
	notKinesis := len(ev.Records) == 0
	for i := range ev.Records {
		notKinesis = notKinesis || ev.Records[i].EventSource != "aws:kinesis"
	}
	if notKinesis {
		if sends := len(broker.Messages); err == nil || sends > 0 {
			t.Fatalf("an event that is not a batch of aws:kinesis records: answered %s, error %v, %d messages sent; want an error and nothing sent", out, err, sends)
		}
		return
	}
	failed := expectFailure(ev)
	want := ""
	for i := failed; i >= 0; i-- {
		if seq := ev.Records[i].Kinesis.SequenceNumber; seq != "" {
			want = seq
			break
		}
	}
	switch {
	case failed < 0:
		if err != nil {
			t.Fatalf("nothing failed, yet the handler returned %v", err)
		}
	case want == "":
		if err == nil {
			t.Fatalf("record %d failed and no record up to it has a sequence number: answered %s, want an error", failed, out)
		}
		return
	case err != nil:
		t.Fatalf("record %d failed: handler returned %v, want a response naming %q", failed, err, want)
	}
	var resp events.KinesisEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	if resp.BatchItemFailures == nil {
		t.Fatalf("response %s: batchItemFailures is null, want a list", out)
	}
	switch {
	case failed < 0 && len(resp.BatchItemFailures) != 0:
		t.Fatalf("nothing failed, yet the response is %s", out)
	case failed >= 0 && (len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != want):
		t.Fatalf("record %d failed: response %s, want exactly [%q]", failed, out, want)
	}
}

// messagesOf is the number of messages the relay makes of a record with de-aggregation on.
func messagesOf(data []byte) int {
	if recs, err := kpl.Deaggregate(data); err == nil {
		return len(recs)
	}
	return 1
}

// FuzzHandlePayload feeds arbitrary bytes as the invocation payload: JSON that is not an event,
// invalid base64, wrong types, truncated documents. Every record that decodes is published (the fake
// confirms all), so the only failure is a record without a stream in its ARN when the topic names
// {stream}.
func FuzzHandlePayload(f *testing.F) {
	for _, name := range []string{"binary.json", "quickstart-kpl.json", "record-to-fail.json", "several-keys.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "events", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, false)
		f.Add(data, true)
	}
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `{"Records":null}`, `{"Records":[]}`, `{"Records":[{}]}`, `{"Records":[null]}`,
		`{"Records":[{"kinesis":{"data":"!!!not base64"}}]}`,
		`{"Records":[{"kinesis":{"data":"8ymawg=="}}]}`, // the KPL magic alone
		`{"Records":[{"kinesis":{"data":"AAAA","sequenceNumber":"","partitionKey":""}}]}`,
		`{"Records":[{"kinesis":{"data":"AAAA","sequenceNumber":"1"}},{"kinesis":{"data":"AAAA","sequenceNumber":"1"}}]}`,
		`{"Records":[{"kinesis":{"data":"AAAA","sequenceNumber":1}}]}`,
		`{"Records":[{"kinesis":{"approximateArrivalTimestamp":1e308,"data":""}}]}`,
		`{"Records":[{"eventID":"shardId-000000000000:","eventSourceARN":"arn:aws:kinesis:r:a:stream/","kinesis":{"data":""}}]}`,
		`{"Records":[{"kinesis":{"data":"AAAA"`,
		`{"Records":[{"eventSource":"aws:kinesis","kinesis":{"data":"AAAA","sequenceNumber":"1"}}]}`,
		`{"Records":[{"eventSource":"aws:kinesis","kinesis":{"data":"AAAA","sequenceNumber":"1"}},{"eventSource":"aws:sqs","body":"x"}]}`,
		`{"Records":[{"eventSource":"aws:kinesis","kinesis":{"data":"8ymawg=="}}]}`,
		`{"Records":[{"eventSource":"aws:kinesis","eventID":"shardId-000000000000:","eventSourceARN":"arn:aws:kinesis:r:a:stream/","kinesis":{"data":""}}]}`,
		`{"Records":[{"eventSource":"aws:s3","s3":{"bucket":{"name":"b"}}}]}`,
		`{"version":"0","detail-type":"Scheduled Event","source":"aws.events"}`,
		// Nesting at and past encoding/json's limit of 10,000, inside a record and around the event.
		`{"Records":[{"eventSource":"aws:kinesis","x":` + strings.Repeat("[", 9997) + strings.Repeat("]", 9997) + `,"kinesis":{"data":"AAAA","sequenceNumber":"1"}}]}`,
		`{"Records":[{"eventSource":"aws:kinesis","x":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `,"kinesis":{"data":"AAAA","sequenceNumber":"1"}}]}`,
		`{"Records":[{"eventSource":"aws:kinesis","x":` + strings.Repeat(`{"a":`, 100000),
		strings.Repeat("[", 100000),
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, payload []byte, streamTopic bool) {
		topic := "persistent://public/default/fuzz"
		if streamTopic {
			topic = "persistent://public/default/fuzz-" + streamtopic.StreamPlaceholder
		}
		broker := fuzzBroker(-1, nil)
		invokeChecked(t, fuzzRelay(topic, broker), broker, payload, func(ev events.KinesisEvent) int {
			if !streamTopic {
				return -1
			}
			for i := range ev.Records {
				if streamtopic.StreamName(ev.Records[i].EventSourceArn) == "" && messagesOf(ev.Records[i].Kinesis.Data) > 0 {
					return i
				}
			}
			return -1
		})
	})
}

// FuzzHandleRecords builds well-formed JSON events around hostile record contents: KPL aggregates that
// are truncated, carry a wrong MD5 or declare huge lengths, empty or duplicated partition keys and
// sequence numbers, missing eventID and ARN; and fails the n-th message sent, retryably or
// permanently.
func FuzzHandleRecords(f *testing.F) {
	agg, err := kpl.Aggregate([]kpl.Record{
		{PartitionKey: "a", Data: []byte("one")},
		{PartitionKey: "b", ExplicitHashKey: "123", Data: []byte("two")},
		{PartitionKey: "", Data: nil},
	})
	if err != nil {
		f.Fatal(err)
	}
	wrongMD5 := append([]byte(nil), agg...)
	wrongMD5[len(wrongMD5)-1] ^= 0xff
	// An aggregate whose body declares a 4 GiB partition key table entry, with a valid MD5.
	body := []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 'k'}
	sum := md5.Sum(body)
	huge := append(append(append([]byte(nil), kpl.Magic[:]...), body...), sum[:]...)
	shard := kinesistest.NewShard("fuzz", 0)
	rec := shard.Record("pk", nil)
	for _, seed := range []struct {
		data                []byte
		key, seq, id, arn   string
		n                   uint8
		dupSeq, permanent   bool
		failAt              uint16
		streamTopic, noSeqs bool
	}{
		{agg, "pk", rec.Kinesis.SequenceNumber, rec.EventID, rec.EventSourceArn, 3, false, false, 0xffff, false, false},
		{agg, "pk", rec.Kinesis.SequenceNumber, rec.EventID, rec.EventSourceArn, 3, false, false, 4, false, false},
		{agg[:len(agg)/2], "", "", "", "", 2, false, true, 1, true, false},
		{wrongMD5, "pk", "1", "shardId-1:1", "arn:aws:kinesis:us-east-1:1:stream/s", 2, true, false, 2, true, false},
		{huge, "pk", "1", "", "", 1, false, false, 0, false, false},
		{[]byte("plain"), "", "", "", "", 4, true, true, 3, false, true},
		{append(kpl.Magic[:], 1, 2, 3), "k", "5", "bad", "arn:aws:kinesis:r:a:stream/x/consumer/c:1", 5, false, false, 0xffff, true, false},
	} {
		f.Add(seed.data, seed.key, seed.seq, seed.id, seed.arn, seed.n, seed.dupSeq, seed.permanent, seed.failAt, seed.streamTopic, seed.noSeqs)
	}
	f.Fuzz(func(t *testing.T, data []byte, key, seq, eventID, arn string, n uint8, dupSeq, permanentErr bool, failAt uint16, streamTopic, noSeqs bool) {
		count := int(n%8) + 1
		var ev events.KinesisEvent
		for i := range count {
			d := data
			if i%2 == 1 {
				d = data[:len(data)/2] // truncated
			}
			s := seq
			switch {
			case noSeqs && i%2 == 0:
				s = ""
			case !dupSeq && seq != "":
				s = seq + strconv.Itoa(i)
			}
			ev.Records = append(ev.Records, events.KinesisEventRecord{
				EventSource: "aws:kinesis", EventID: eventID, EventSourceArn: arn,
				Kinesis: events.KinesisRecord{Data: d, PartitionKey: key, SequenceNumber: s},
			})
		}
		payload, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		topic := "persistent://public/default/fuzz"
		if streamTopic {
			topic = "persistent://public/default/fuzz-" + streamtopic.StreamPlaceholder
		}
		failErr := errors.New("fuzz: connection lost")
		if permanentErr {
			failErr = fmt.Errorf("fuzz: %w", pulsar.ErrMessageTooLarge)
		}
		broker := fuzzBroker(int(failAt), failErr)
		invokeChecked(t, fuzzRelay(topic, broker), broker, payload, func(ev events.KinesisEvent) int {
			// Sending stops at the first failure, so the n-th send is the n-th message until a record
			// that cannot be routed, which fails without being sent.
			msg := 0
			for i := range ev.Records {
				m := messagesOf(ev.Records[i].Kinesis.Data)
				if m == 0 {
					continue
				}
				if streamTopic && streamtopic.StreamName(ev.Records[i].EventSourceArn) == "" {
					return i
				}
				if int(failAt) < msg+m {
					return i
				}
				msg += m
			}
			return -1
		})
	})
}
