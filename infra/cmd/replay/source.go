package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/streambridge/kinesis-pulsar/infra/onfailure"
)

// failedBatch is one invocation record found at the destination.
type failedBatch struct {
	// id names it for the operator: the SQS message id or the S3 key.
	id     string
	record onfailure.Record
	// parseErr is set when the message or object is not an invocation record; it is reported and left.
	parseErr error
	// receipt is the SQS receipt handle.
	receipt string
}

// source is where failed batches are: the on-failure queue or bucket.
type source interface {
	// next returns the next batch, or nil when every one has been seen.
	next(ctx context.Context) (*failedBatch, error)
	// done removes a replayed batch: deletes the message, or moves the object under replayed/.
	done(ctx context.Context, b *failedBatch) error
	// keep extends the claim on a batch being replayed (a queue message's visibility timeout).
	keep(ctx context.Context, b *failedBatch) error
	// release marks a batch that was not replayed; finish makes it visible to the next run.
	release(ctx context.Context, b *failedBatch)
	finish(ctx context.Context)
	describe() string
}

// SQSAPI is the part of the SQS API the replay calls.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// queueSource receives the queue's messages until none is left. A received message stays invisible for
// visibility, long enough to replay its batch; one not replayed is released at the end, and after an
// interrupt it comes back by itself when the visibility timeout ends.
type queueSource struct {
	c          SQSAPI
	url        string
	visibility time.Duration
	pending    []sqstypes.Message
	seen       map[string]bool
	drained    bool
	// held are the receipt handles of messages received and not deleted.
	held []string
}

func (q *queueSource) describe() string { return "queue " + q.url }

func (q *queueSource) next(ctx context.Context) (*failedBatch, error) {
	for len(q.pending) == 0 {
		if q.drained {
			return nil, nil
		}
		out, err := q.c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.url), MaxNumberOfMessages: 10,
			VisibilityTimeout: int32(q.visibility / time.Second), WaitTimeSeconds: 1})
		if err != nil {
			return nil, fmt.Errorf("receive from %s: %w", q.url, err)
		}
		fresh := 0
		for _, m := range out.Messages {
			if q.seen[aws.ToString(m.MessageId)] {
				q.held = append(q.held, aws.ToString(m.ReceiptHandle))
				continue
			}
			q.seen[aws.ToString(m.MessageId)] = true
			q.pending = append(q.pending, m)
			fresh++
		}
		// Messages already seen come back when a release made them visible again: the queue has no
		// new batch for this run.
		q.drained = fresh == 0
	}
	m := q.pending[0]
	q.pending = q.pending[1:]
	b := &failedBatch{id: "message " + aws.ToString(m.MessageId), receipt: aws.ToString(m.ReceiptHandle)}
	b.record, b.parseErr = onfailure.Parse([]byte(aws.ToString(m.Body)))
	return b, nil
}

func (q *queueSource) done(ctx context.Context, b *failedBatch) error {
	if _, err := q.c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(b.receipt)}); err != nil {
		return fmt.Errorf("delete %s: %w", b.id, err)
	}
	return nil
}

func (q *queueSource) keep(ctx context.Context, b *failedBatch) error {
	if _, err := q.c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(q.url),
		ReceiptHandle: aws.String(b.receipt), VisibilityTimeout: int32(q.visibility / time.Second)}); err != nil {
		return fmt.Errorf("extend the visibility of %s: %w", b.id, err)
	}
	return nil
}

func (q *queueSource) release(_ context.Context, b *failedBatch) {
	q.held = append(q.held, b.receipt)
}

// finish makes the messages not deleted visible again: releasing them one by one during the run would
// have this run receive them again.
func (q *queueSource) finish(ctx context.Context) {
	for _, h := range q.held {
		_, _ = q.c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(q.url),
			ReceiptHandle: aws.String(h), VisibilityTimeout: 0})
	}
	q.held = nil
}

// S3API is the part of the S3 API the replay calls.
type S3API interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	CopyObject(ctx context.Context, in *s3.CopyObjectInput, optFns ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// bucketPrefix is where Lambda writes invocation records; replayedPrefix where the replay moves them.
const (
	bucketPrefix   = "aws/lambda/"
	replayedPrefix = "replayed/"
)

// bucketSource lists the objects Lambda wrote and reads them one at a time.
type bucketSource struct {
	c      S3API
	bucket string
	token  *string
	keys   []string
	listed bool
}

func (s *bucketSource) describe() string { return "bucket " + s.bucket }

func (s *bucketSource) next(ctx context.Context) (*failedBatch, error) {
	for len(s.keys) == 0 {
		if s.listed {
			return nil, nil
		}
		out, err := s.c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(bucketPrefix), ContinuationToken: s.token})
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", s.bucket, bucketPrefix, err)
		}
		for _, o := range out.Contents {
			s.keys = append(s.keys, aws.ToString(o.Key))
		}
		s.token = out.NextContinuationToken
		s.listed = !aws.ToBool(out.IsTruncated)
	}
	key := s.keys[0]
	s.keys = s.keys[1:]
	b := &failedBatch{id: "s3://" + s.bucket + "/" + key}
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", b.id, err)
	}
	data, err := io.ReadAll(out.Body)
	_ = out.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", b.id, err)
	}
	b.record, b.parseErr = onfailure.Parse(data)
	return b, nil
}

// done moves the object under replayed/ (copy, then delete): a rerun no longer sees it, and it stays
// for inspection until the bucket's lifecycle rule expires it.
func (s *bucketSource) done(ctx context.Context, b *failedBatch) error {
	key := strings.TrimPrefix(b.id, "s3://"+s.bucket+"/")
	if _, err := s.c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(replayedPrefix + key),
		CopySource: aws.String(s.bucket + "/" + escapePath(key))}); err != nil {
		return fmt.Errorf("copy %s to %s: %w", b.id, replayedPrefix, err)
	}
	if _, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}); err != nil {
		return fmt.Errorf("delete %s after copying it to %s: %w", b.id, replayedPrefix, err)
	}
	return nil
}

func (s *bucketSource) keep(context.Context, *failedBatch) error { return nil }

func (s *bucketSource) release(context.Context, *failedBatch) {}

func (s *bucketSource) finish(context.Context) {}

// escapePath URL-encodes each segment of an object key, as CopySource wants it.
func escapePath(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
