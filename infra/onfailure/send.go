package onfailure

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Sender delivers invocation records to an on-failure destination.
type Sender interface {
	// Send delivers rec; event is the invocation's event (JSON), which only S3 keeps.
	Send(ctx context.Context, rec Record, event []byte) error
}

// SQSAPI is the part of the SQS API the queue sender calls; *sqs.Client satisfies it.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Queue sends the metadata only, as Lambda does to SQS.
type Queue struct {
	Client SQSAPI
	URL    string
}

// Send implements Sender.
func (q Queue) Send(ctx context.Context, rec Record, _ []byte) error {
	rec.Payload = nil
	body, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode invocation record: %w", err)
	}
	if _, err := q.Client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(string(body))}); err != nil {
		return fmt.Errorf("send invocation record to %s: %w", q.URL, err)
	}
	return nil
}

// S3API is the part of the S3 API the bucket sender calls; *s3.Client satisfies it.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Bucket writes one object per batch holding the metadata and the invocation's event, as Lambda does.
type Bucket struct {
	Client S3API
	Name   string
	// MappingUUID is the event source mapping's UUID, part of the object key.
	MappingUUID string
	// Now, when set, replaces time.Now for the key's date.
	Now func() time.Time
}

// Send implements Sender.
func (b Bucket) Send(ctx context.Context, rec Record, event []byte) error {
	// Lambda writes the event as a JSON string inside the record.
	s, err := json.Marshal(string(event))
	if err != nil {
		return fmt.Errorf("encode invocation payload: %w", err)
	}
	rec.Payload = s
	body, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode invocation record: %w", err)
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	key := ObjectKey(b.MappingUUID, rec.KinesisBatchInfo.ShardID, now(), NewUUID())
	if _, err := b.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b.Name), Key: aws.String(key),
		Body: bytes.NewReader(body), ContentType: aws.String("application/json")}); err != nil {
		return fmt.Errorf("write invocation record s3://%s/%s: %w", b.Name, key, err)
	}
	return nil
}

// ObjectKey is where Lambda writes a failed batch's record in an S3 destination:
// aws/lambda/<mapping UUID>/<shard id>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<random UUID>.
func ObjectKey(mappingUUID, shardID string, t time.Time, random string) string {
	t = t.UTC()
	return strings.Join([]string{"aws/lambda", mappingUUID, shardID, t.Format("2006/01/02"),
		t.Format("2006-01-02T15.04.05") + "-" + random}, "/")
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
