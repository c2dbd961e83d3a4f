//go:build unix

// Command roundtrip shows both functions on one machine, with no AWS account and no Docker: messages
// published to a Pulsar topic go through the sink (the real pulsar-to-kinesis bootstrap under the local
// Runtime API) into a Kinesis stream in moto, then through the source (the real kinesis-to-pulsar
// bootstrap, fed by the local event source mapping of infra/esm) into another topic, where they are
// compared with what was published: byte for byte, keys kept, each key's order kept. make demo runs it
// after the source demo.
//
// It exits 0 when every message came back intact and in order, 1 otherwise.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/streambridge/kinesis-pulsar/infra/esm"
	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
	"github.com/streambridge/kinesis-pulsar/internal/sink"
)

type config struct {
	sinkBootstrap, sourceBootstrap string
	messages, keys, shards         int
	aggregation                    bool
	timeout, wait                  time.Duration
	verbose                        bool
}

func main() {
	var c config
	flag.StringVar(&c.sinkBootstrap, "sink-bootstrap", "bin/host/pulsar-to-kinesis/bootstrap", "the sink's bootstrap built for this host")
	flag.StringVar(&c.sourceBootstrap, "source-bootstrap", "bin/host/kinesis-to-pulsar/bootstrap", "the source's bootstrap built for this host")
	flag.IntVar(&c.messages, "messages", 100, "messages to publish")
	flag.IntVar(&c.keys, "keys", 5, "distinct message keys")
	flag.IntVar(&c.shards, "shards", 2, "shards of the stream")
	flag.BoolVar(&c.aggregation, "aggregation", true, "the sink writes KPL aggregates (KINESIS_AGGREGATION), which the source splits")
	flag.DurationVar(&c.timeout, "timeout", 60*time.Second, "each function's timeout")
	flag.DurationVar(&c.wait, "wait", 30*time.Second, "how long to wait for the messages on the output topic")
	flag.BoolVar(&c.verbose, "v", false, "show the functions' logs")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "roundtrip: error:", err)
		os.Exit(1)
	}
}

type message struct {
	key  string
	data []byte
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func run(ctx context.Context, c config, stdout, stderr io.Writer) (err error) {
	say := func(format string, args ...any) { fmt.Fprintf(stdout, format+"\n", args...) }
	stack, err := localenv.Load()
	if err != nil {
		return err
	}
	awsCfg, err := stack.AWSConfig(ctx)
	if err != nil {
		return err
	}
	k := kinesis.NewFromConfig(awsCfg)
	run := randomHex(4)
	in, out, stream := "persistent://public/default/roundtrip-in-"+run, "persistent://public/default/roundtrip-out-"+run, "kp-roundtrip-"+run

	say("== 1. Kinesis: stream %s with %d shards in moto", stream, c.shards)
	if _, err := k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(int32(c.shards))}); err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	defer func() {
		_, _ = k.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(stream)})
	}()
	desc, err := k.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		return fmt.Errorf("describe stream: %w", err)
	}
	arn := aws.ToString(desc.StreamDescriptionSummary.StreamARN)

	quiet := pulsarlog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(io.Discard, nil)))
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: stack.PulsarServiceURL, Logger: quiet, OperationTimeout: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("pulsar client: %w", err)
	}
	defer client.Close()

	say("== 2. Pulsar: %d messages with %d keys on %s (binary payloads, batched producer)", c.messages, c.keys, in)
	sent, err := publish(ctx, client, in, c.messages, c.keys)
	if err != nil {
		return err
	}

	var logs runtimeapi.Output
	var fnLogs io.Writer = &logs
	if c.verbose {
		fnLogs = io.MultiWriter(&logs, stderr)
	}
	defer func() {
		if err != nil && !c.verbose {
			fmt.Fprintf(stderr, "the functions' logs:\n%s", logs.String())
		}
	}()
	common := []string{"PULSAR_SERVICE_URL=" + stack.PulsarServiceURL, "AWS_ENDPOINT_URL=" + stack.AWSEndpointURL,
		"AWS_ACCESS_KEY_ID=" + stack.AWSAccessKeyID, "AWS_SECRET_ACCESS_KEY=" + stack.AWSSecretAccessKey}
	sinkFn, err := runtimeapi.Start(ctx, runtimeapi.Options{Binary: c.sinkBootstrap, FunctionName: "pulsar-to-kinesis",
		Region: stack.AWSRegion, Timeout: c.timeout, MemoryMB: 256, Stdout: fnLogs, Stderr: fnLogs,
		Env: append(common, "SINK_TOPICS="+in, "SINK_INITIAL_POSITION=earliest", "KINESIS_STREAM_ARN="+arn,
			fmt.Sprintf("KINESIS_AGGREGATION=%v", c.aggregation))})
	if err != nil {
		return fmt.Errorf("start the sink: %w", err)
	}
	defer func() { _, _ = sinkFn.Shutdown(context.Background()) }()
	event := fmt.Sprintf(`{"maxMessages":%d,"idleMs":5000}`, c.messages)
	say("== 3. Sink (pulsar-to-kinesis bootstrap, KINESIS_AGGREGATION=%v): invoked with %s", c.aggregation, event)
	res, err := sinkFn.Invoke(ctx, []byte(event))
	if err != nil {
		return fmt.Errorf("invoke the sink: %w", err)
	}
	if res.Error != nil {
		return fmt.Errorf("the sink failed: %w", res.Error)
	}
	var summary sink.Result
	if err := json.Unmarshal(res.Payload, &summary); err != nil {
		return fmt.Errorf("the sink answered %s: %w", res.Payload, err)
	}
	say("   answered %s in %v", res.Payload, res.Duration.Round(time.Millisecond))
	if summary.Acknowledged != c.messages {
		return fmt.Errorf("the sink acknowledged %d of %d messages", summary.Acknowledged, c.messages)
	}

	sourceFn, err := runtimeapi.Start(ctx, runtimeapi.Options{Binary: c.sourceBootstrap, FunctionName: "kinesis-to-pulsar",
		Region: stack.AWSRegion, Timeout: c.timeout, MemoryMB: 256, Stdout: fnLogs, Stderr: fnLogs,
		Env: append(common, "PULSAR_TOPIC="+out)})
	if err != nil {
		return fmt.Errorf("start the source: %w", err)
	}
	defer func() { _, _ = sourceFn.Shutdown(context.Background()) }()
	say("== 4. Source (kinesis-to-pulsar bootstrap, local event source mapping from TRIM_HORIZON) into %s", out)
	sum, err := esm.Run(ctx, k, sourceFn, esm.Options{StreamARN: arn, StartingPosition: types.ShardIteratorTypeTrimHorizon,
		ReportBatchItemFailures: true, MaxRetryAttempts: 2, StopAtLatest: true})
	if err != nil {
		return fmt.Errorf("the poller stopped: %w", err)
	}
	if len(sum.Failed) > 0 {
		return fmt.Errorf("the source gave up on %d batches", len(sum.Failed))
	}

	say("== 5. Compare %s with %s", out, in)
	got, err := readAll(ctx, client, out, c.messages, c.wait)
	if err != nil {
		return err
	}
	if err := compare(sent, got); err != nil {
		return err
	}
	say("== %d messages came back byte for byte, keys kept, every key in publish order (%d received, %d duplicates)",
		c.messages, len(got), len(got)-c.messages)
	return nil
}

func publish(ctx context.Context, client pulsar.Client, topic string, n, keys int) ([]message, error) {
	p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, BatchingMaxMessages: 50})
	if err != nil {
		return nil, fmt.Errorf("producer on %s: %w", topic, err)
	}
	defer p.Close()
	sent := make([]message, n)
	errs := make(chan error, n)
	for i := range sent {
		data := make([]byte, 8+i%64)
		_, _ = rand.Read(data)
		sent[i] = message{key: fmt.Sprintf("key-%d", i%keys), data: data}
		p.SendAsync(ctx, &pulsar.ProducerMessage{Key: sent[i].key, Payload: data}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			errs <- err
		})
	}
	for range sent {
		if err := <-errs; err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
	}
	return sent, nil
}

// readAll reads topic from the earliest message until it holds want distinct payloads or wait passes.
func readAll(ctx context.Context, client pulsar.Client, topic string, want int, wait time.Duration) ([]message, error) {
	r, err := client.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		return nil, fmt.Errorf("reader on %s: %w", topic, err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var got []message
	distinct := map[string]bool{}
	for len(distinct) < want {
		m, err := r.Next(ctx)
		if err != nil {
			return got, fmt.Errorf("%d of %d messages on %s: %w", len(distinct), want, topic, err)
		}
		got = append(got, message{key: m.Key(), data: m.Payload()})
		distinct[string(m.Payload())] = true
	}
	return got, nil
}

// compare checks that every key's first deliveries are what was sent under it, in order, byte for byte.
func compare(sent, got []message) error {
	want := map[string][][]byte{}
	for _, m := range sent {
		want[m.key] = append(want[m.key], m.data)
	}
	first := map[string][][]byte{}
	seen := map[string]bool{}
	for _, m := range got {
		if !seen[string(m.data)] {
			seen[string(m.data)] = true
			first[m.key] = append(first[m.key], m.data)
		}
	}
	for key, w := range want {
		g := first[key]
		if len(g) != len(w) {
			return fmt.Errorf("key %s: %d messages came back, %d were sent", key, len(g), len(w))
		}
		for i := range w {
			if !bytes.Equal(g[i], w[i]) {
				return fmt.Errorf("key %s: message %d differs or is out of order", key, i)
			}
		}
	}
	if len(first) != len(want) {
		return fmt.Errorf("%d keys came back, %d were sent", len(first), len(want))
	}
	return nil
}
