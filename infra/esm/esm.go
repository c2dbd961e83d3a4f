//go:build unix

package esm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/streambridge/kinesis-pulsar/infra/onfailure"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
)

// Invoker runs the function synchronously; runtimeapi.RIE and runtimeapi.Env satisfy it.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) (runtimeapi.Result, error)
}

// Kinesis is the part of the Kinesis API the poller calls; *kinesis.Client satisfies it.
type Kinesis interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// Options are the event source mapping's settings, named as in Lambda where Lambda has them.
type Options struct {
	// StreamARN is the stream to read (arn:aws:kinesis:region:account:stream/name). Required.
	StreamARN string
	// BatchSize is the most records per invocation, 1 to 10000; 0 means Lambda's default, 100.
	BatchSize int
	// MaxBatchingWindow is how long records are gathered before invoking, up to 300 s; 0 invokes as
	// soon as records exist.
	MaxBatchingWindow time.Duration
	// StartingPosition is TRIM_HORIZON (the default here), LATEST or AT_TIMESTAMP.
	StartingPosition types.ShardIteratorType
	// StartingPositionTimestamp is used with AT_TIMESTAMP.
	StartingPositionTimestamp time.Time
	// ReportBatchItemFailures makes the poller read batchItemFailures from the function's answer
	// (FunctionResponseTypes: [ReportBatchItemFailures]); without it the answer is ignored.
	ReportBatchItemFailures bool
	// MaxRetryAttempts bounds the retries of a failing batch: -1 retries until the batch succeeds
	// (Lambda's default, which holds the shard back), 0 to 10000 gives up after that many.
	MaxRetryAttempts int
	// MaxRecordAge (MaximumRecordAgeInSeconds) gives up on records that arrived longer ago than this
	// before they are invoked (or retried): they go to OnFailure and Destination with the condition
	// RecordAgeExceeded. 0 means no limit (Lambda's -1).
	MaxRecordAge time.Duration
	// RetryBackoff is the wait before the first retry (default 500 ms), doubled for each further
	// retry up to MaxRetryBackoff (default 5 s).
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// PollInterval is the wait after a GetRecords call that found nothing (default 1 s, the base rate
	// at which Lambda polls a shard).
	PollInterval time.Duration
	// StopAtLatest ends a shard once it has no more records (a GetRecords call returned nothing with
	// MillisBehindLatest 0, or the shard is closed and read to its end) and every batch is done. Run
	// then returns when all shards have ended: what a demo or a test wants. Without it Run polls until
	// ctx ends, as Lambda does.
	StopAtLatest bool
	// FunctionRoleARN is the invokeIdentityArn of every record; default
	// arn:aws:iam::<the stream's account>:role/kinesis-to-pulsar.
	FunctionRoleARN string
	// Observe, when set, is called after every invocation, from the shard's goroutine: shards run
	// concurrently, so it must be safe for concurrent use.
	Observe func(Invocation)
	// OnFailure, when set, receives each batch given up on after MaxRetryAttempts, as Lambda sends it
	// to an on-failure destination. Called like Observe.
	OnFailure func(FailedBatch)
	// Destination, when set, receives the invocation record of each batch given up on, in Lambda's
	// format (onfailure.Queue for SQS, onfailure.Bucket for S3, which also keeps the event). A failed
	// send stops the shard: the batch is reported nowhere else.
	Destination onfailure.Sender
	// FunctionARN is requestContext.functionArn in those records; default
	// arn:aws:lambda:<the stream's region and account>:function:kinesis-to-pulsar.
	FunctionARN string
}

const (
	defaultBatchSize       = 100
	maxBatchSize           = 10000
	maxBatchingWindow      = 300 * time.Second
	defaultRetryBackoff    = 500 * time.Millisecond
	defaultMaxRetryBackoff = 5 * time.Second
	defaultPollInterval    = time.Second
	// minPollGap keeps GetRecords within Kinesis's five calls per second per shard.
	minPollGap = 200 * time.Millisecond
)

// streamARN is the parsed form of Options.StreamARN.
type streamARN struct {
	arn, region, account, name string
}

func parseStreamARN(arn string) (streamARN, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kinesis" || parts[3] == "" || parts[4] == "" {
		return streamARN{}, fmt.Errorf("stream ARN %q is not arn:aws:kinesis:region:account:stream/name", arn)
	}
	name, ok := strings.CutPrefix(parts[5], "stream/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return streamARN{}, fmt.Errorf("stream ARN %q does not name a stream (consumer ARNs, enhanced fan-out, are not supported)", arn)
	}
	return streamARN{arn: arn, region: parts[3], account: parts[4], name: name}, nil
}

func (o Options) withDefaults() (Options, streamARN, error) {
	s, err := parseStreamARN(o.StreamARN)
	if err != nil {
		return o, s, fmt.Errorf("esm options: %w", err)
	}
	if o.BatchSize == 0 {
		o.BatchSize = defaultBatchSize
	}
	if o.BatchSize < 1 || o.BatchSize > maxBatchSize {
		return o, s, fmt.Errorf("esm options: BatchSize %d is outside 1 to %d", o.BatchSize, maxBatchSize)
	}
	if o.MaxBatchingWindow < 0 || o.MaxBatchingWindow > maxBatchingWindow {
		return o, s, fmt.Errorf("esm options: MaxBatchingWindow %s is outside 0 to %s", o.MaxBatchingWindow, maxBatchingWindow)
	}
	switch o.StartingPosition {
	case "":
		o.StartingPosition = types.ShardIteratorTypeTrimHorizon
	case types.ShardIteratorTypeTrimHorizon, types.ShardIteratorTypeLatest:
	case types.ShardIteratorTypeAtTimestamp:
		if o.StartingPositionTimestamp.IsZero() {
			return o, s, errors.New("esm options: AT_TIMESTAMP needs StartingPositionTimestamp")
		}
	default:
		return o, s, fmt.Errorf("esm options: StartingPosition %q is not TRIM_HORIZON, LATEST or AT_TIMESTAMP", o.StartingPosition)
	}
	if o.MaxRetryAttempts < -1 || o.MaxRetryAttempts > 10000 {
		return o, s, fmt.Errorf("esm options: MaxRetryAttempts %d is outside -1 to 10000", o.MaxRetryAttempts)
	}
	if o.MaxRecordAge < 0 {
		return o, s, fmt.Errorf("esm options: MaxRecordAge %s is negative (0 means no limit)", o.MaxRecordAge)
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = defaultRetryBackoff
	}
	if o.MaxRetryBackoff <= 0 {
		o.MaxRetryBackoff = defaultMaxRetryBackoff
	}
	if o.MaxRetryBackoff < o.RetryBackoff {
		o.MaxRetryBackoff = o.RetryBackoff
	}
	if o.PollInterval <= 0 {
		o.PollInterval = defaultPollInterval
	}
	if o.FunctionRoleARN == "" {
		o.FunctionRoleARN = "arn:aws:iam::" + s.account + ":role/kinesis-to-pulsar"
	}
	if o.FunctionARN == "" {
		o.FunctionARN = "arn:aws:lambda:" + s.region + ":" + s.account + ":function:kinesis-to-pulsar"
	}
	return o, s, nil
}

// Outcome is how the poller judged an invocation.
type Outcome int

const (
	// Succeeded: every record of the batch is done; the checkpoint is the batch's last record.
	Succeeded Outcome = iota
	// PartiallyFailed: the answer named records; the checkpoint is just before the lowest of them and
	// the batch is retried from it.
	PartiallyFailed
	// Failed: a function error or an answer that counts as a complete failure; the batch is retried.
	Failed
)

func (o Outcome) String() string {
	switch o {
	case Succeeded:
		return "succeeded"
	case PartiallyFailed:
		return "partially failed"
	default:
		return "failed"
	}
}

// Invocation is one invocation as the poller saw it.
type Invocation struct {
	ShardID string
	// Records is the batch's size; First and Last are its first and last sequence numbers.
	Records     int
	First, Last string
	// Retry is 0 for the first invocation of a batch, then 1, 2, ... for its retries.
	Retry  int
	Result runtimeapi.Result
	// Err is the driver's error (a timeout, a crash, a failed init); nil when the function answered.
	Err     error
	Outcome Outcome
	// RetryFrom is the sequence number the batch is retried from (PartiallyFailed); Reason says why
	// an invocation Failed.
	RetryFrom string
	Reason    string
	// Checkpoint is the shard's checkpoint after this invocation ("" while nothing is done).
	Checkpoint string
}

// FailedBatch describes a batch given up on, with the fields of Lambda's KinesisBatchInfo.
type FailedBatch struct {
	ShardID                         string
	StartSequenceNumber             string
	EndSequenceNumber               string
	ApproximateArrivalOfFirstRecord time.Time
	ApproximateArrivalOfLastRecord  time.Time
	BatchSize                       int
	StreamARN                       string
	// Condition is RetryAttemptsExhausted or RecordAgeExceeded.
	Condition string
	// Invocations is how many times the batch (or the rest of it) was invoked.
	Invocations int
	// RequestID and FunctionError describe the last invocation (FunctionError Unhandled when the
	// function failed as a whole, empty when it answered with batchItemFailures).
	RequestID     string
	FunctionError string
}

// Record is the invocation record Lambda sends to an on-failure destination for the batch.
func (fb FailedBatch) Record(functionARN string, at time.Time) onfailure.Record {
	var resp onfailure.ResponseContext
	if fb.Invocations > 0 {
		resp = onfailure.ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST", FunctionError: fb.FunctionError}
	}
	return onfailure.Record{
		RequestContext: onfailure.RequestContext{RequestID: fb.RequestID, FunctionARN: functionARN,
			Condition: fb.Condition, ApproximateInvokeCount: fb.Invocations},
		ResponseContext: resp,
		Version:         "1.0",
		Timestamp:       onfailure.FormatTime(at),
		KinesisBatchInfo: onfailure.BatchInfo{
			ShardID: fb.ShardID, StartSequenceNumber: fb.StartSequenceNumber, EndSequenceNumber: fb.EndSequenceNumber,
			ApproximateArrivalOfFirstRecord: onfailure.FormatTime(fb.ApproximateArrivalOfFirstRecord),
			ApproximateArrivalOfLastRecord:  onfailure.FormatTime(fb.ApproximateArrivalOfLastRecord),
			BatchSize:                       fb.BatchSize, StreamARN: fb.StreamARN,
		},
	}
}

// Summary is what a Run did.
type Summary struct {
	// Checkpoints holds each shard's last done sequence number ("" for a shard where nothing was done).
	Checkpoints map[string]string
	Invocations int
	Records     int // records delivered in successful or partially successful invocations' done part
	Failed      []FailedBatch
}

// Run polls every shard of the stream and invokes fn with its batches until ctx ends, or with
// StopAtLatest until every shard has no more records. It returns the first error that stops a shard
// (a Kinesis API error, a closed Invoker, ctx); function errors are retried, never returned.
func Run(ctx context.Context, k Kinesis, fn Invoker, opts Options) (Summary, error) {
	o, stream, err := opts.withDefaults()
	if err != nil {
		return Summary{}, err
	}
	shards, err := listShards(ctx, k, stream.name)
	if err != nil {
		return Summary{}, err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sum := Summary{Checkpoints: make(map[string]string, len(shards))}
	var mu sync.Mutex // guards sum
	done := make(map[string]chan struct{}, len(shards))
	for _, sh := range shards {
		done[aws.ToString(sh.ShardId)] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for _, sh := range shards {
		p := &shardPoller{
			k: k, fn: fn, o: o, stream: stream, id: aws.ToString(sh.ShardId),
			observe: func(inv Invocation, delivered int) {
				mu.Lock()
				sum.Invocations++
				sum.Records += delivered
				sum.Checkpoints[inv.ShardID] = inv.Checkpoint
				mu.Unlock()
				if o.Observe != nil {
					o.Observe(inv)
				}
			},
			failed: func(fb FailedBatch) {
				mu.Lock()
				sum.Failed = append(sum.Failed, fb)
				sum.Checkpoints[fb.ShardID] = fb.EndSequenceNumber
				mu.Unlock()
				if o.OnFailure != nil {
					o.OnFailure(fb)
				}
			},
		}
		mu.Lock()
		sum.Checkpoints[p.id] = ""
		mu.Unlock()
		var parents []chan struct{}
		for _, parent := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if ch, ok := done[aws.ToString(parent)]; ok {
				parents = append(parents, ch)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Lambda processes a child shard only after its parents, so per-key order holds across a
			// split or merge.
			for _, ch := range parents {
				select {
				case <-ch:
				case <-ctx.Done():
					return
				}
			}
			if err := p.run(ctx); err != nil {
				cancel(fmt.Errorf("%s: %w", p.id, err))
				return
			}
			close(done[p.id])
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if err := context.Cause(ctx); err != nil {
		return sum, err
	}
	return sum, nil
}

func listShards(ctx context.Context, k Kinesis, stream string) ([]types.Shard, error) {
	var shards []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		out, err := k.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards of %s: %w", stream, err)
		}
		shards = append(shards, out.Shards...)
		if aws.ToString(out.NextToken) == "" {
			break
		}
		// With NextToken the stream name must not be repeated.
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	if len(shards) == 0 {
		return nil, fmt.Errorf("stream %s has no shards", stream)
	}
	return shards, nil
}

// sleep waits d or until ctx ends.
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
		return context.Cause(ctx)
	}
}
