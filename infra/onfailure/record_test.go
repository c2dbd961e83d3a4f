package onfailure

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// docExample is the invocation record of the Lambda developer guide's Kinesis example.
const docExample = `{
    "requestContext": {
        "requestId": "c9b8fa9f-5a7f-xmpl-af9c-0c604cde93a5",
        "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
        "condition": "RetryAttemptsExhausted",
        "approximateInvokeCount": 1
    },
    "responseContext": {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled"
    },
    "version": "1.0",
    "timestamp": "2019-11-14T00:38:06.021Z",
    "KinesisBatchInfo": {
        "shardId": "shardId-000000000001",
        "startSequenceNumber": "49601189658422359378836298521827638475320189012309704722",
        "endSequenceNumber": "49601189658422359378836298522902373528957594348623495186",
        "approximateArrivalOfFirstRecord": "2019-11-14T00:38:04.835Z",
        "approximateArrivalOfLastRecord": "2019-11-14T00:38:05.580Z",
        "batchSize": 500,
        "streamArn": "arn:aws:kinesis:us-east-2:123456789012:stream/mystream"
    }
}`

func TestRecordRoundTripsTheDocumentedExample(t *testing.T) {
	rec, err := Parse([]byte(docExample))
	if err != nil {
		t.Fatal(err)
	}
	if rec.KinesisBatchInfo.BatchSize != 500 || rec.RequestContext.Condition != RetryAttemptsExhausted {
		t.Errorf("parsed %+v", rec)
	}
	out, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	_ = json.Unmarshal([]byte(docExample), &a)
	_ = json.Unmarshal(out, &b)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Errorf("re-encoded\n%s\nwant\n%s", jb, ja)
	}
	if _, ok, err := rec.Event(); ok || err != nil {
		t.Errorf("the SQS record has an event (%v, %v)", ok, err)
	}
}

func TestParseRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":      `{`,
		"no batch info": `{"requestContext":{}}`,
		"bad range": strings.Replace(docExample, `"endSequenceNumber": "49601189658422359378836298522902373528957594348623495186"`,
			`"endSequenceNumber": "1"`, 1),
		"not a number": strings.Replace(docExample, `"startSequenceNumber": "4`, `"startSequenceNumber": "x4`, 1),
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

type putRecorder struct {
	key  string
	body []byte
}

func (p *putRecorder) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	p.key = *in.Key
	p.body, _ = io.ReadAll(in.Body)
	return &s3.PutObjectOutput{}, nil
}

func TestBucketWritesTheEventAsAString(t *testing.T) {
	rec, _ := Parse([]byte(docExample))
	event := `{"Records":[{"eventID":"shardId-000000000001:1","kinesis":{"data":"aGk=","partitionKey":"k","sequenceNumber":"1"}}]}`
	p := &putRecorder{}
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	b := Bucket{Client: p, Name: "b", MappingUUID: "m-uuid", Now: func() time.Time { return at }}
	if err := b.Send(context.Background(), rec, []byte(event)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.key, "aws/lambda/m-uuid/shardId-000000000001/2026/03/04/2026-03-04T05.06.07-") {
		t.Errorf("key %s", p.key)
	}
	var raw map[string]any
	if err := json.Unmarshal(p.body, &raw); err != nil || raw["payload"] != event {
		t.Fatalf("payload %#v (%v), want the event as a string", raw["payload"], err)
	}
	got, err := Parse(p.body)
	if err != nil {
		t.Fatal(err)
	}
	ev, ok, err := got.Event()
	if err != nil || !ok || len(ev.Records) != 1 || string(ev.Records[0].Kinesis.Data) != "hi" {
		t.Errorf("event %+v, %v, %v", ev, ok, err)
	}
	// An embedded object reads the same.
	embedded := strings.Replace(docExample, `"version"`, `"payload": `+event+`, "version"`, 1)
	got, _ = Parse([]byte(embedded))
	if ev, ok, err := got.Event(); err != nil || !ok || ev.Records[0].Kinesis.SequenceNumber != "1" {
		t.Errorf("embedded payload: %+v, %v, %v", ev, ok, err)
	}
}
