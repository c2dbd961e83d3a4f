package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/streambridge/kinesis-pulsar/infra/onfailure"
)

// Kinesis is the part of the Kinesis API the replay calls; *kinesis.Client satisfies it.
type Kinesis interface {
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// Kinesis limits per shard: GetRecords and GetShardIterator five calls a second each, at most 10,000
// records per GetRecords call; an iterator expires five minutes after it was issued.
const (
	callGap          = 200 * time.Millisecond
	throttledBackoff = time.Second
	maxGetRecords    = 10000
	// maxEmptyReads bounds the empty answers in a row while the shard is behind its tip: Kinesis may
	// answer empty while it skips a stretch without records.
	maxEmptyReads = 100
)

// lostRange is a stretch of a failed batch the stream no longer holds.
type lostRange struct {
	// The range starts at From, or just after After; it ends at To, or just before Before.
	From, After, To, Before string
	Reason                  string
}

func (l lostRange) String() string {
	from, to := "from "+l.From, "to "+l.To
	if l.From == "" {
		from = "after " + l.After
	}
	if l.To == "" {
		to = "up to (not including) " + l.Before
	}
	return fmt.Sprintf("%s %s: %s", from, to, l.Reason)
}

// shardReader reads a sequence number range of one shard, pacing its calls within Kinesis's limits.
type shardReader struct {
	k                Kinesis
	streamARN, shard string
	lastCall         time.Time
	lastIteratorCall time.Time
	progress         func(read int)
}

// readRange returns the records of the shard from start to end, both included, and what of that range
// the stream no longer holds (trimmed after its retention, or the stream or shard deleted). A closed
// shard (after resharding) is read like an open one, to its end.
func (r *shardReader) readRange(ctx context.Context, b onfailure.BatchInfo) ([]types.Record, *lostRange, error) {
	start, _ := onfailure.SequenceNumber(b.StartSequenceNumber)
	end, _ := onfailure.SequenceNumber(b.EndSequenceNumber)
	it, err := r.iterator(ctx, types.ShardIteratorTypeAtSequenceNumber, b.StartSequenceNumber)
	if lost := goneError(err); lost != "" {
		return nil, &lostRange{From: b.StartSequenceNumber, To: b.EndSequenceNumber, Reason: lost}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var recs []types.Record
	var last string
	empty := 0
	for {
		if err := r.pace(ctx, &r.lastCall); err != nil {
			return nil, nil, err
		}
		out, err := r.k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(maxGetRecords)})
		var expired *types.ExpiredIteratorException
		var throttled *types.ProvisionedThroughputExceededException
		switch {
		case errors.As(err, &expired):
			// Iterators live five minutes: continue after the last record read.
			typ, at := types.ShardIteratorTypeAfterSequenceNumber, last
			if last == "" {
				typ, at = types.ShardIteratorTypeAtSequenceNumber, b.StartSequenceNumber
			}
			if it, err = r.iterator(ctx, typ, at); err != nil {
				if lost := goneError(err); lost != "" {
					return recs, r.lostAfter(recs, b, lost), nil
				}
				return nil, nil, err
			}
			continue
		case errors.As(err, &throttled):
			if err := sleep(ctx, throttledBackoff); err != nil {
				return nil, nil, err
			}
			continue
		case goneError(err) != "":
			return recs, r.lostAfter(recs, b, goneError(err)), nil
		case err != nil:
			return nil, nil, fmt.Errorf("get records of %s: %w", r.shard, err)
		}
		for _, rec := range out.Records {
			seq, ok := onfailure.SequenceNumber(aws.ToString(rec.SequenceNumber))
			if !ok {
				return nil, nil, fmt.Errorf("%s: record with sequence number %q", r.shard, aws.ToString(rec.SequenceNumber))
			}
			if seq.Cmp(start) < 0 {
				continue
			}
			if seq.Cmp(end) > 0 {
				return recs, r.lostBefore(recs, b), nil
			}
			recs = append(recs, rec)
			last = aws.ToString(rec.SequenceNumber)
			if r.progress != nil && len(recs)%1000 == 0 {
				r.progress(len(recs))
			}
			if seq.Cmp(end) == 0 {
				return recs, r.lostBefore(recs, b), nil
			}
		}
		it = out.NextShardIterator
		atTip := len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0
		if len(out.Records) == 0 {
			empty++
		} else {
			empty = 0
		}
		if it == nil || atTip || empty > maxEmptyReads {
			// The shard ended (closed and read to its end) or has nothing newer, and the end sequence
			// number was not seen.
			if lost := r.lostBefore(recs, b); lost != nil {
				return recs, lost, nil
			}
			if len(recs) == 0 {
				return nil, &lostRange{From: b.StartSequenceNumber, To: b.EndSequenceNumber, Reason: "the shard holds no record of the range"}, nil
			}
			return nil, nil, fmt.Errorf("%s: read to %s, the end of the shard's records, without reaching %s", r.shard, last, b.EndSequenceNumber)
		}
	}
}

// lostBefore reports the start of the range missing when the first record read is not the first of
// the batch: the stream trimmed it (Kinesis hands out an iterator at the trim horizon then).
func (r *shardReader) lostBefore(recs []types.Record, b onfailure.BatchInfo) *lostRange {
	if len(recs) == 0 {
		return &lostRange{From: b.StartSequenceNumber, To: b.EndSequenceNumber, Reason: "expired from the stream"}
	}
	first := aws.ToString(recs[0].SequenceNumber)
	if first == b.StartSequenceNumber {
		return nil
	}
	return &lostRange{From: b.StartSequenceNumber, Before: first, Reason: "expired from the stream"}
}

// lostAfter is the range lost when the stream or shard disappeared while reading.
func (r *shardReader) lostAfter(recs []types.Record, b onfailure.BatchInfo, reason string) *lostRange {
	if len(recs) == 0 {
		return &lostRange{From: b.StartSequenceNumber, To: b.EndSequenceNumber, Reason: reason}
	}
	return &lostRange{After: aws.ToString(recs[len(recs)-1].SequenceNumber), To: b.EndSequenceNumber, Reason: reason + " while it was being read"}
}

func (r *shardReader) iterator(ctx context.Context, typ types.ShardIteratorType, seq string) (*string, error) {
	if err := r.pace(ctx, &r.lastIteratorCall); err != nil {
		return nil, err
	}
	for {
		// By name, in the ARN's region: moto does not resolve StreamARN here.
		name, region := streamName(r.streamARN), ""
		if parts := strings.SplitN(r.streamARN, ":", 5); len(parts) == 5 {
			region = parts[3]
		}
		out, err := r.k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(name),
			ShardId: aws.String(r.shard), ShardIteratorType: typ, StartingSequenceNumber: aws.String(seq)},
			func(o *kinesis.Options) {
				if region != "" {
					o.Region = region
				}
			})
		var throttled *types.ProvisionedThroughputExceededException
		if errors.As(err, &throttled) {
			if err := sleep(ctx, throttledBackoff); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get shard iterator %s %s of %s: %w", typ, seq, r.shard, err)
		}
		return out.ShardIterator, nil
	}
}

// goneError says why err means the records are gone: the stream or the shard no longer exists.
func goneError(err error) string {
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) {
		return "the stream or shard no longer exists: " + aws.ToString(notFound.Message)
	}
	return ""
}

// pace waits until callGap has passed since *last, then sets it.
func (r *shardReader) pace(ctx context.Context, last *time.Time) error {
	if err := sleep(ctx, time.Until(last.Add(callGap))); err != nil {
		return err
	}
	*last = time.Now()
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
