//go:build unix

package esm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/streambridge/kinesis-pulsar/infra/onfailure"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
)

// shardPoller reads one shard and invokes the function with its batches, one at a time.
type shardPoller struct {
	k       Kinesis
	fn      Invoker
	o       Options
	stream  streamARN
	id      string
	observe func(inv Invocation, delivered int)
	failed  func(FailedBatch)

	iterator *string
	started  bool // the first iterator was taken (later ones continue after lastRead)
	lastRead string
	closed   bool // the shard is closed and read to its end
	atTip    bool // the last GetRecords call returned nothing new with MillisBehindLatest 0
	lastPoll time.Time
	empty    bool // the last GetRecords call returned no records

	buf        []types.Record // read, not yet done, in sequence order
	since      time.Time      // when buf last became non-empty (the batching window's start)
	checkpoint string

	// The batch being retried, its retry count and how often it was invoked.
	retry       []types.Record
	retries     int
	invocations int
}

func (p *shardPoller) run(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		batch := p.retry
		if batch == nil {
			ready, err := p.gather(ctx)
			if err != nil {
				return err
			}
			if !ready {
				if len(p.buf) == 0 && (p.closed || (p.o.StopAtLatest && p.atTip)) {
					return nil
				}
				continue
			}
			batch, err = p.take()
			if err != nil {
				return err
			}
		}
		if expired, err := p.expire(ctx, batch); expired || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		if err := p.invoke(ctx, batch); err != nil {
			return err
		}
	}
}

// gather reads records until a batch is ready and reports whether one is. Without a batching window
// a batch goes out as soon as records exist; with one, records are gathered until BatchSize of them
// are there or the window, which starts with the first record waiting, has passed.
func (p *shardPoller) gather(ctx context.Context) (bool, error) {
	window := p.o.MaxBatchingWindow
	if len(p.buf) < p.o.BatchSize && !p.closed && (len(p.buf) == 0 || window > 0) {
		if err := p.read(ctx); err != nil {
			return false, err
		}
	}
	switch {
	case len(p.buf) == 0:
		return false, nil
	case len(p.buf) >= p.o.BatchSize || window == 0 || p.closed:
		return true, nil
	default:
		return !time.Now().Before(p.since.Add(window)), nil
	}
}

// read makes one GetRecords call, paced like Lambda: right away while records flow (at most five
// calls a second, or one per PollInterval if that is shorter), after PollInterval once a call found
// nothing.
func (p *shardPoller) read(ctx context.Context) error {
	gap := min(minPollGap, p.o.PollInterval)
	if p.empty {
		gap = p.o.PollInterval
	}
	if err := sleep(ctx, time.Until(p.lastPoll.Add(gap))); err != nil {
		return err
	}
	if p.iterator == nil {
		if err := p.newIterator(ctx); err != nil {
			return err
		}
	}
	p.lastPoll = time.Now()
	out, err := p.k.GetRecords(ctx, &kinesis.GetRecordsInput{
		ShardIterator: p.iterator,
		Limit:         aws.Int32(int32(min(p.o.BatchSize, maxBatchSize))),
	})
	var expired *types.ExpiredIteratorException
	var throttled *types.ProvisionedThroughputExceededException
	switch {
	case errors.As(err, &expired):
		// Take a fresh one after the last record read on the next call.
		p.iterator = nil
		return nil
	case errors.As(err, &throttled):
		p.empty = true // back off for a poll interval
		return nil
	case err != nil:
		return fmt.Errorf("get records: %w", err)
	}
	if len(out.Records) > 0 {
		if len(p.buf) == 0 {
			p.since = time.Now()
		}
		p.buf = append(p.buf, out.Records...)
		p.lastRead = aws.ToString(out.Records[len(out.Records)-1].SequenceNumber)
	}
	p.empty = len(out.Records) == 0
	p.atTip = p.empty && out.MillisBehindLatest != nil && *out.MillisBehindLatest == 0
	p.iterator = out.NextShardIterator
	p.closed = p.iterator == nil
	return nil
}

func (p *shardPoller) newIterator(ctx context.Context) error {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(p.stream.name), ShardId: aws.String(p.id)}
	switch {
	case p.started && p.lastRead != "":
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = aws.String(p.lastRead)
	case p.started:
		// Nothing read yet: the original position still holds, except that LATEST would now skip
		// records written since the first iterator.
		in.ShardIteratorType = p.o.StartingPosition
		if in.ShardIteratorType == types.ShardIteratorTypeLatest {
			in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
			in.Timestamp = aws.Time(p.lastPoll)
		}
	default:
		in.ShardIteratorType = p.o.StartingPosition
		if in.ShardIteratorType == types.ShardIteratorTypeAtTimestamp {
			in.Timestamp = aws.Time(p.o.StartingPositionTimestamp)
		}
	}
	if in.ShardIteratorType == types.ShardIteratorTypeAtTimestamp && in.Timestamp == nil {
		in.Timestamp = aws.Time(p.o.StartingPositionTimestamp)
	}
	out, err := p.k.GetShardIterator(ctx, in)
	if err != nil {
		return fmt.Errorf("get shard iterator (%s): %w", in.ShardIteratorType, err)
	}
	if !p.started {
		p.lastPoll = time.Now()
	}
	p.started = true
	p.iterator = out.ShardIterator
	return nil
}

// take removes the next batch from the buffer: at most BatchSize records whose event fits Lambda's
// synchronous payload limit.
func (p *shardPoller) take() ([]types.Record, error) {
	n := min(len(p.buf), p.o.BatchSize)
	size := eventOverhead
	for i := range n {
		s, err := recordSize(p.stream, p.id, p.o.FunctionRoleARN, p.buf[i])
		if err != nil {
			return nil, err
		}
		if i > 0 {
			s++ // the comma
		}
		if size+s > runtimeapi.MaxPayloadBytes {
			if i == 0 {
				return nil, fmt.Errorf("record %s alone makes a %d-byte event, over Lambda's %d-byte payload limit",
					aws.ToString(p.buf[0].SequenceNumber), size+s, runtimeapi.MaxPayloadBytes)
			}
			n = i
			break
		}
		size += s
	}
	return p.buf[:n:n], nil
}

// invoke runs one invocation of batch (a new one, or a retry) and moves the checkpoint.
func (p *shardPoller) invoke(ctx context.Context, batch []types.Record) error {
	payload, err := json.Marshal(Event(p.stream.arn, p.id, p.o.FunctionRoleARN, batch))
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	p.invocations++
	res, err := p.fn.Invoke(ctx, payload)
	if err != nil && (ctx.Err() != nil || errors.Is(err, runtimeapi.ErrClosed) || errors.Is(err, runtimeapi.ErrPayloadTooLarge)) {
		return fmt.Errorf("invoke: %w", err)
	}
	inv := Invocation{
		ShardID: p.id, Records: len(batch), Retry: p.retries,
		First: aws.ToString(batch[0].SequenceNumber), Last: aws.ToString(batch[len(batch)-1].SequenceNumber),
		Result: res, Err: err,
	}
	done := len(batch) // records done by this invocation, from the batch's start
	switch {
	case err != nil:
		inv.Outcome, inv.Reason, done = Failed, err.Error(), 0
	case res.Error != nil:
		inv.Outcome, inv.Reason, done = Failed, "function error "+res.Error.Error(), 0
	case p.o.ReportBatchItemFailures:
		v := judge(res.Payload, batch)
		switch {
		case v.reason != "":
			inv.Outcome, inv.Reason, done = Failed, v.reason, 0
		case v.failedAt >= 0:
			inv.Outcome, done = PartiallyFailed, v.failedAt
			inv.RetryFrom = aws.ToString(batch[v.failedAt].SequenceNumber)
		}
	}

	if done > 0 {
		p.checkpoint = aws.ToString(batch[done-1].SequenceNumber)
	}
	p.drop(done)
	var gaveUp *FailedBatch
	var gaveUpRecords []types.Record
	if inv.Outcome == Succeeded {
		p.retry, p.retries, p.invocations = nil, 0, 0
	} else {
		p.retry = batch[done:len(batch):len(batch)]
		p.retries++
		if p.o.MaxRetryAttempts >= 0 && p.retries > p.o.MaxRetryAttempts {
			fb := p.failedBatch(p.retry)
			fb.RequestID = res.RequestID
			if err != nil || res.Error != nil {
				fb.FunctionError = "Unhandled"
			}
			gaveUp, gaveUpRecords = &fb, p.retry
			p.checkpoint = fb.EndSequenceNumber
			p.drop(len(p.retry))
			p.retry, p.retries, p.invocations = nil, 0, 0
		}
	}
	inv.Checkpoint = p.checkpoint
	p.observe(inv, done)
	if gaveUp != nil {
		p.failed(*gaveUp)
		return p.sendFailure(ctx, *gaveUp, gaveUpRecords)
	}
	if p.retry != nil {
		backoff := p.o.RetryBackoff << min(p.retries-1, 20)
		return sleep(ctx, min(backoff, p.o.MaxRetryBackoff))
	}
	return nil
}

// drop removes the first n records from the buffer: they are done (or given up on).
func (p *shardPoller) drop(n int) {
	// A fresh slice, so the done records' data can be collected while the rest waits.
	p.buf = append([]types.Record(nil), p.buf[n:]...)
	if len(p.buf) > 0 {
		p.since = time.Now()
	}
}

// expire gives up on the records of batch (the front of the buffer) older than MaxRecordAge, as Lambda
// does before invoking, and reports whether there were any. Arrival times grow along a shard, so they
// are a prefix of the batch.
func (p *shardPoller) expire(ctx context.Context, batch []types.Record) (bool, error) {
	if p.o.MaxRecordAge <= 0 {
		return false, nil
	}
	oldest := time.Now().Add(-p.o.MaxRecordAge)
	n := 0
	for n < len(batch) && aws.ToTime(batch[n].ApproximateArrivalTimestamp).Before(oldest) {
		n++
	}
	if n == 0 {
		return false, nil
	}
	fb := p.failedBatch(batch[:n])
	fb.Condition = onfailure.RecordAgeExceeded
	p.checkpoint = fb.EndSequenceNumber
	p.drop(n)
	if p.retry != nil {
		p.retry = batch[n:len(batch):len(batch)]
		if len(p.retry) == 0 {
			p.retry, p.retries, p.invocations = nil, 0, 0
		}
	}
	p.failed(fb)
	return true, p.sendFailure(ctx, fb, batch[:n])
}

func (p *shardPoller) failedBatch(recs []types.Record) FailedBatch {
	first, last := recs[0], recs[len(recs)-1]
	return FailedBatch{
		ShardID:                         p.id,
		StartSequenceNumber:             aws.ToString(first.SequenceNumber),
		EndSequenceNumber:               aws.ToString(last.SequenceNumber),
		ApproximateArrivalOfFirstRecord: aws.ToTime(first.ApproximateArrivalTimestamp),
		ApproximateArrivalOfLastRecord:  aws.ToTime(last.ApproximateArrivalTimestamp),
		BatchSize:                       len(recs),
		StreamARN:                       p.stream.arn,
		Condition:                       "RetryAttemptsExhausted",
		Invocations:                     p.invocations,
	}
}

// sendFailure delivers the invocation record of a batch given up on to the on-failure destination.
func (p *shardPoller) sendFailure(ctx context.Context, fb FailedBatch, recs []types.Record) error {
	if p.o.Destination == nil {
		return nil
	}
	if fb.RequestID == "" {
		fb.RequestID = onfailure.NewUUID() // the driver failed before the runtime took the invocation
	}
	event, err := json.Marshal(Event(p.stream.arn, p.id, p.o.FunctionRoleARN, recs))
	if err != nil {
		return fmt.Errorf("encode the failed batch's event: %w", err)
	}
	if err := p.o.Destination.Send(ctx, fb.Record(p.o.FunctionARN, time.Now()), event); err != nil {
		return fmt.Errorf("on-failure destination: %w", err)
	}
	return nil
}
