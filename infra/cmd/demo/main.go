//go:build unix

// Command demo shows the whole path on one machine, with no AWS account and no Docker: it creates a
// Kinesis stream in moto, writes the Pulsar IO Kinesis connector's quick-start records through a
// KPL-style aggregating producer (ten records "test-kinesis-data" with key myPartitionKey) and a few
// plain records with other keys, feeds the stream to the real bootstrap through a local poller that
// behaves like Lambda's event source mapping (infra/esm), and prints what reached Pulsar the way
// `pulsar-client consume` prints it. make demo builds the bootstrap, ensures the local stack, runs this
// and stops what it started (docs/local.md).
//
// It exits 0 when every user record reached Pulsar, 1 otherwise.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/streambridge/kinesis-pulsar/infra/esm"
	"github.com/streambridge/kinesis-pulsar/infra/esm/localfn"
	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
	"github.com/streambridge/kinesis-pulsar/internal/kpl"
)

type config struct {
	bootstrap, envVars, function string
	stream                       string
	shards                       int
	batchSize                    int
	window                       time.Duration
	maxRetries                   int
	memoryMB                     int
	timeout, wait                time.Duration
	driver                       string // rie or env
	keepStream, verbose          bool
}

// The quick start of the Pulsar IO Kinesis source: what its KPL example writes.
const (
	quickStartKey     = "myPartitionKey"
	quickStartData    = "test-kinesis-data"
	quickStartRecords = 10
)

// plainRecords are written without the KPL, one PutRecord each: JSON under two keys (customer-17 twice,
// to follow its order) and one binary payload (a gzip header), which Pulsar keeps byte for byte.
var plainRecords = []struct {
	key  string
	data []byte
}{
	{"customer-17", []byte(`{"orderId":1001,"customer":"customer-17","amount":12.50}`)},
	{"customer-42", []byte(`{"orderId":1002,"customer":"customer-42","amount":7.25}`)},
	{"customer-17", []byte(`{"orderId":1003,"customer":"customer-17","amount":3.10}`)},
	{"sensor-7", []byte{0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x2b, 0x49, 0x2d, 0x2e, 0x01, 0x00}},
}

func main() {
	c := config{}
	flag.StringVar(&c.bootstrap, "bootstrap", "bin/host/kinesis-to-pulsar/bootstrap", "the bootstrap built for this host")
	flag.StringVar(&c.envVars, "env-vars", "events/env.json", "the `sam local invoke --env-vars` file to take the function's variables from")
	flag.StringVar(&c.function, "function", localfn.FunctionName, "the block of the env-vars file (the function's logical id)")
	flag.StringVar(&c.stream, "stream", "kp-demo", "the Kinesis stream to create (an existing one is deleted first)")
	flag.IntVar(&c.shards, "shards", 2, "shards of the stream")
	flag.IntVar(&c.batchSize, "batch-size", 100, "the mapping's BatchSize")
	flag.DurationVar(&c.window, "window", 0, "the mapping's MaximumBatchingWindowInSeconds, as a duration")
	flag.IntVar(&c.maxRetries, "max-retries", 2, "the mapping's MaximumRetryAttempts (-1: until the batch succeeds)")
	flag.IntVar(&c.memoryMB, "memory", localfn.DefaultMemoryMB, "the function's memory in MB")
	flag.DurationVar(&c.timeout, "timeout", localfn.DefaultTimeout, "the function timeout, whole seconds")
	flag.DurationVar(&c.wait, "wait", 15*time.Second, "how long to wait for the messages in Pulsar")
	flag.StringVar(&c.driver, "driver", "rie", "how to run the bootstrap: rie (the emulator sam local invoke uses) or env (infra/runtimeapi's own Runtime API)")
	flag.BoolVar(&c.keepStream, "keep-stream", false, "keep the stream in moto at the end")
	flag.BoolVar(&c.verbose, "v", false, "show the function's logs as they come (otherwise only after a failure)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "demo: unexpected arguments %q (see demo -h)\n", flag.Args())
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	_, err := run(ctx, c, os.Stdout, os.Stderr)
	interrupted := ctx.Err() != nil // before stop, which cancels ctx
	stop()
	switch {
	case err == nil:
	case interrupted:
		fmt.Fprintln(os.Stderr, "demo: interrupted")
		os.Exit(130)
	default:
		fmt.Fprintln(os.Stderr, "demo: error:", err)
		os.Exit(1)
	}
}

// report is what a run did, for the integration test.
type report struct {
	puts     []put
	records  []streamRecord // what the stream holds after the producers
	summary  esm.Summary
	messages []localfn.Message
	expected int // user records in the stream: the messages Pulsar must hold
}

func run(ctx context.Context, c config, stdout, stderr io.Writer) (report, error) {
	var rep report
	out := &localenv.LockedWriter{W: stdout}
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	if c.driver != "rie" && c.driver != "env" {
		return rep, fmt.Errorf("-driver %q: want rie or env", c.driver)
	}
	stack, err := localenv.Load()
	if err != nil {
		return rep, err
	}
	vars, err := localfn.LoadSAMEnv(c.envVars, c.function)
	if err != nil {
		return rep, err
	}
	fnEnv, changes := localfn.PointAtStack(vars, stack)
	opts, err := localfn.RelayOptions(fnEnv)
	if err != nil {
		return rep, fmt.Errorf("%s, block %s: %w", c.envVars, c.function, err)
	}
	awsCfg, err := stack.AWSConfig(ctx)
	if err != nil {
		return rep, err
	}
	k := kinesis.NewFromConfig(awsCfg)

	say("== 1. Kinesis: stream %s with %d shards in moto (%s)", c.stream, c.shards, stack.AWSEndpointURL)
	arn, err := createStream(ctx, k, c.stream, c.shards)
	if err != nil {
		return rep, err
	}
	if !c.keepStream {
		defer func() {
			// The stream goes with the demo; a fresh context, so an interrupt still cleans up.
			dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := k.DeleteStream(dctx, &kinesis.DeleteStreamInput{StreamName: aws.String(c.stream), EnforceConsumerDeletion: aws.Bool(true)})
			// After an interrupt a moto this run started may be gone already, and the stream with it.
			if err != nil && ctx.Err() == nil {
				fmt.Fprintf(stderr, "demo: could not delete the stream %s: %v\n", c.stream, err)
			}
		}()
	}
	say("   %s", arn)

	// Pulsar readers first, at the latest message: they see what this run publishes, as
	// `pulsar-client consume -p Latest` started before the producers would.
	topics := localfn.Topics(opts, arn)
	if len(topics) == 0 {
		return rep, fmt.Errorf("%s sets no usable PULSAR_TOPIC for %s", c.envVars, c.function)
	}
	watcher, err := localfn.Watch(ctx, stack.PulsarServiceURL, topics)
	if err != nil {
		return rep, err
	}
	defer watcher.Close()

	say("== 2. Producers")
	if rep.puts, err = produce(ctx, k, c.stream); err != nil {
		return rep, err
	}
	for _, p := range rep.puts {
		if p.aggregated {
			say("   KPL producer:   %d user records %q, key %s → 1 aggregated Kinesis record (%d bytes) on %s, sequence %s",
				p.userRecords, quickStartData, p.partitionKey, p.bytes, p.shard, p.sequence)
		} else {
			say("   plain producer: key %-14s → %s, sequence %s", p.partitionKey, p.shard, p.sequence)
		}
	}
	// What the stream holds is what must reach Pulsar: a producer's retry can write a record twice
	// (Kinesis producers are at-least-once), and such a copy is a record of its own.
	if rep.records, err = readStream(ctx, k, c.stream, opts.Deaggregate); err != nil {
		return rep, err
	}
	for _, r := range rep.records {
		rep.expected += r.users
	}
	if len(rep.records) != len(rep.puts) {
		say("   the stream holds %d records for %d puts: a producer retry wrote a record twice", len(rep.records), len(rep.puts))
	}

	logs := &logTail{}
	var fnLogs io.Writer = logs
	if c.verbose {
		fnLogs = io.MultiWriter(logs, stderr)
	}
	fn, how, err := startFunction(ctx, c, fnEnv, stack.AWSRegion, fnLogs)
	if err != nil {
		return rep, err
	}
	defer func() { _, _ = fn.Shutdown(context.Background()) }()

	say("== 3. Event source mapping (local poller, infra/esm): TRIM_HORIZON, batch size %d, window %s, ReportBatchItemFailures, %s",
		c.batchSize, c.window, retries(c.maxRetries))
	say("   function %s: %s under %s", c.function, c.bootstrap, how)
	for _, ch := range changes {
		say("   %s=%s (%s has %s, for SAM's container)", ch.Name, ch.To, c.envVars, ch.From)
	}
	say("   PULSAR_TOPIC=%s", vars["PULSAR_TOPIC"])
	rep.summary, err = esm.Run(ctx, k, fn, esm.Options{
		StreamARN: arn, BatchSize: c.batchSize, MaxBatchingWindow: c.window,
		StartingPosition: types.ShardIteratorTypeTrimHorizon, ReportBatchItemFailures: true,
		MaxRetryAttempts: c.maxRetries, StopAtLatest: true,
		Observe: func(inv esm.Invocation) { say("   %s", describe(inv)) },
		OnFailure: func(fb esm.FailedBatch) {
			say("   %s: gave up on records %s..%s after %d invocations (what Lambda sends to the on-failure destination)",
				fb.ShardID, fb.StartSequenceNumber, fb.EndSequenceNumber, fb.Invocations)
		},
	})
	if err != nil {
		logs.dump(stderr)
		return rep, fmt.Errorf("the poller stopped: %w", err)
	}
	var cps []string
	for _, id := range slices.Sorted(maps.Keys(rep.summary.Checkpoints)) {
		cps = append(cps, id+" at "+orNone(rep.summary.Checkpoints[id]))
	}
	say("   checkpoints: %s", strings.Join(cps, ", "))

	say("== 4. Pulsar: %s, as `pulsar-client consume` prints it", strings.Join(topics, ", "))
	wctx, cancel := context.WithTimeout(ctx, c.wait)
	defer cancel()
	rep.messages = watcher.CollectUntil(wctx, func(msgs []localfn.Message) bool { return missing(rep.records, properties(msgs)) == 0 }, c.wait)
	for _, m := range rep.messages {
		say("%s", localfn.Format(m.Message))
	}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	if n := missing(rep.records, properties(rep.messages)); n > 0 || len(rep.summary.Failed) > 0 {
		logs.dump(stderr)
		return rep, fmt.Errorf("%d of %d user records reached Pulsar", rep.expected-n, rep.expected)
	}
	say("== %d messages for %d user records (%d Kinesis records): every record reached Pulsar", len(rep.messages), rep.expected, len(rep.records))
	return rep, nil
}

// streamRecord is a record of the stream and the messages it makes.
type streamRecord struct {
	shard, sequence string
	users           int // KPL user records, 1 for a plain record
}

// readStream reads every shard from its start to its end. With deaggregate, a KPL aggregate makes a
// message per user record, as the function publishes it.
func readStream(ctx context.Context, k *kinesis.Client, stream string, deaggregate bool) ([]streamRecord, error) {
	shards, err := k.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		return nil, fmt.Errorf("list shards of %s: %w", stream, err)
	}
	var out []streamRecord
	for _, sh := range shards.Shards {
		it, err := k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: sh.ShardId,
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", aws.ToString(sh.ShardId), err)
		}
		iter := it.ShardIterator
		for iter != nil {
			got, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", aws.ToString(sh.ShardId), err)
			}
			for _, r := range got.Records {
				users := 1
				if recs, err := kpl.Deaggregate(r.Data); err == nil && deaggregate {
					users = len(recs)
				}
				out = append(out, streamRecord{shard: aws.ToString(sh.ShardId), sequence: aws.ToString(r.SequenceNumber), users: users})
			}
			if len(got.Records) == 0 && aws.ToInt64(got.MillisBehindLatest) == 0 {
				break
			}
			iter = got.NextShardIterator
		}
	}
	return out, nil
}

func properties(msgs []localfn.Message) []map[string]string {
	out := make([]map[string]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Properties()
	}
	return out
}

// missing counts the user records of recs that no message (given by its properties) stands for. A
// message names its record by the kinesis.shard.id, kinesis.sequence.number and
// kinesis.sub.sequence.number properties; when the function is configured without them, messages are
// only counted.
func missing(recs []streamRecord, msgs []map[string]string) int {
	want := 0
	for _, r := range recs {
		want += r.users
	}
	seen := make(map[string]bool, len(msgs))
	for _, p := range msgs {
		if p["kinesis.shard.id"] == "" || p["kinesis.sequence.number"] == "" {
			return max(0, want-len(msgs))
		}
		seen[p["kinesis.shard.id"]+"/"+p["kinesis.sequence.number"]+"/"+p["kinesis.sub.sequence.number"]] = true
	}
	n := 0
	for _, r := range recs {
		if r.users == 1 && seen[r.shard+"/"+r.sequence+"/"] {
			continue
		}
		for sub := range r.users {
			if !seen[r.shard+"/"+r.sequence+"/"+strconv.Itoa(sub)] {
				n++
			}
		}
	}
	return n
}

// createStream creates the stream afresh (deleting one of that name) and waits until it is active.
func createStream(ctx context.Context, k *kinesis.Client, name string, shards int) (string, error) {
	var notFound *types.ResourceNotFoundException
	if _, err := k.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name), EnforceConsumerDeletion: aws.Bool(true)}); err != nil && !errors.As(err, &notFound) {
		return "", fmt.Errorf("delete the earlier stream %s (is moto up?): %w", name, err)
	}
	if err := waitStream(ctx, k, name, func(s *types.StreamDescriptionSummary, err error) bool { return errors.As(err, &notFound) }); err != nil {
		return "", fmt.Errorf("wait for the earlier stream %s to go: %w", name, err)
	}
	if _, err := k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(shards))}); err != nil {
		return "", fmt.Errorf("create stream %s: %w", name, err)
	}
	var arn string
	err := waitStream(ctx, k, name, func(s *types.StreamDescriptionSummary, err error) bool {
		if err != nil || s.StreamStatus != types.StreamStatusActive {
			return false
		}
		arn = aws.ToString(s.StreamARN)
		return true
	})
	if err != nil {
		return "", fmt.Errorf("wait for stream %s to be active: %w", name, err)
	}
	return arn, nil
}

func waitStream(ctx context.Context, k *kinesis.Client, name string, done func(*types.StreamDescriptionSummary, error) bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := k.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		var s *types.StreamDescriptionSummary
		if err == nil {
			s = out.StreamDescriptionSummary
		}
		if done(s, err) {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("still " + string(s.StreamStatus))
			}
			return fmt.Errorf("after 30s: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// produce writes the quick start through the KPL-style producer, then the plain records.
func produce(ctx context.Context, k *kinesis.Client, stream string) ([]put, error) {
	kp, err := newKPLProducer(ctx, k, stream)
	if err != nil {
		return nil, err
	}
	for range quickStartRecords {
		kp.Add(quickStartKey, []byte(quickStartData))
	}
	puts, err := kp.Flush(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range plainRecords {
		p, err := putPlain(ctx, k, stream, r.key, r.data)
		if err != nil {
			return nil, err
		}
		puts = append(puts, p)
	}
	return puts, nil
}

// startFunction runs the bootstrap under the emulator, or under infra/runtimeapi's Runtime API.
func startFunction(ctx context.Context, c config, env []string, region string, logs io.Writer) (esmDriver, string, error) {
	if c.driver == "env" {
		e, err := runtimeapi.Start(ctx, runtimeapi.Options{
			Binary: c.bootstrap, Env: env, FunctionName: c.function, Region: region, MemoryMB: c.memoryMB,
			Timeout: c.timeout, Stdout: logs, Stderr: logs,
		})
		if err != nil {
			return nil, "", fmt.Errorf("start %s: %w", c.bootstrap, err)
		}
		return e, "infra/runtimeapi (in-process Runtime API)", nil
	}
	r, rie, err := localfn.StartRIE(ctx, localfn.Function{
		Bootstrap: c.bootstrap, Name: c.function, Env: env, Region: region, MemoryMB: c.memoryMB,
		Timeout: c.timeout, Logs: logs,
	})
	if err != nil {
		return nil, "", err
	}
	return r, filepath.Base(rie) + " (aws-sam-cli's Runtime Interface Emulator)", nil
}

// esmDriver is a running function: the poller invokes it, the demo shuts it down.
type esmDriver interface {
	esm.Invoker
	Shutdown(ctx context.Context) (runtimeapi.Exit, error)
}

// describe renders one invocation on one line.
func describe(inv esm.Invocation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d record", inv.ShardID, inv.Records)
	if inv.Records != 1 {
		b.WriteString("s")
	}
	fmt.Fprintf(&b, " %s..%s", inv.First, inv.Last)
	if inv.Retry > 0 {
		fmt.Fprintf(&b, " (retry %d)", inv.Retry)
	}
	switch {
	case inv.Err != nil:
		fmt.Fprintf(&b, " → %v", inv.Err)
	case inv.Result.Error != nil:
		fmt.Fprintf(&b, " → function error %s", inv.Result.Error)
	default:
		fmt.Fprintf(&b, " → %s", bytes.TrimSpace(inv.Result.Payload))
	}
	fmt.Fprintf(&b, ": %s", inv.Outcome)
	switch inv.Outcome {
	case esm.PartiallyFailed:
		fmt.Fprintf(&b, ", retry from %s", inv.RetryFrom)
	case esm.Failed:
		fmt.Fprintf(&b, " (%s), retry the batch", inv.Reason)
	}
	fmt.Fprintf(&b, ", checkpoint %s [%s]", orNone(inv.Checkpoint), localfn.Describe(inv.Result))
	return b.String()
}

func retries(n int) string {
	if n < 0 {
		return "retries until success"
	}
	return fmt.Sprintf("at most %d retries", n)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// logTail keeps the function's output, to show it when something went wrong.
type logTail struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// The last 64 KiB are plenty to see why a batch failed.
	if l.buf.Len() > 64<<10 {
		rest := append([]byte(nil), l.buf.Bytes()[l.buf.Len()-32<<10:]...)
		l.buf.Reset()
		l.buf.Write(rest)
	}
	return l.buf.Write(p)
}

func (l *logTail) dump(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 0 {
		fmt.Fprintf(w, "demo: the function's output:\n%s", l.buf.Bytes())
	}
}
