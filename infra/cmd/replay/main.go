// Command replay publishes the Kinesis batches Lambda gave up on (retries or record age exhausted) to
// Pulsar, exactly as the function would have: it reads the on-failure destination (the SQS queue or
// the S3 bucket), takes each batch's records from the S3 object or from the stream, and hands them to
// the function's own relay (internal/relay) with the function's configuration. See docs/runbook.md.
//
//	go run ./infra/cmd/replay --queue URL [--dry-run]
//	go run ./infra/cmd/replay --bucket NAME [--dry-run]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/streambridge/kinesis-pulsar/internal/auth"
	"github.com/streambridge/kinesis-pulsar/internal/config"
	"github.com/streambridge/kinesis-pulsar/internal/producer"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/internal/relay/senders"
)

const usage = `usage: go run ./infra/cmd/replay (--queue URL | --bucket NAME) [flags]

Replays the batches kinesis-to-pulsar's event source mapping gave up on. For each invocation record at
the on-failure destination, oldest first as the destination returns them:
  1. reads the batch's records: from the S3 object's payload, or from the stream (GetShardIterator
     AT_SEQUENCE_NUMBER startSequenceNumber, GetRecords up to endSequenceNumber; closed shards too);
  2. publishes them with the function's relay and configuration (the function's environment variables:
     PULSAR_SERVICE_URL, PULSAR_TOPIC, DEAD_LETTER_TOPIC, KPL_DEAGGREGATE, PULSAR_CHUNKING, ...; see the
     README), under producers named after --producer-name;
  3. once Pulsar confirmed every record of the batch: deletes the queue message, or moves the object
     under replayed/ in the bucket.
Records the stream no longer holds (past its retention, or the stream deleted) are reported LOST with
their exact sequence number range; the batch then stays at the destination and the exit status is 1.
Interrupting is safe: a batch not fully confirmed stays at the destination, and a rerun publishes it
again (consumers may see those of its records that were confirmed twice).

flags:
  --queue URL          the on-failure SQS queue (output FailureQueueUrl of the stack)
  --bucket NAME        the on-failure S3 bucket (output FailureBucketName), objects under aws/lambda/
  --dry-run            list the batches, their record counts and time ranges, and what is lost;
                       publish nothing, remove nothing
  --drop-lost          remove a batch with lost records once the records still there are confirmed
  --producer-name P    producer name prefix (default kinesis-pulsar-replay)
  --batch-timeout D    bound for publishing one chunk of up to 1000 records (default 2m)
  --attempts N         tries per chunk before the batch counts as failed (default 3)
  --region R           the AWS region; default the configured one
  --verbose            the relay's log line for every chunk

AWS access uses the standard configuration (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, ...).
Exit status: 0 when every batch was replayed (dry run: could be), 1 when a batch failed, lost records
or could not be read, 2 for a wrong command line.
`

const exitUsage = 2

var errUsage = errors.New("usage")

// errIncomplete: some batch was not replayed; the summary says which.
var errIncomplete = errors.New("not every batch was replayed")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "replay: %v\n", err)
		os.Exit(exitUsage)
	default:
		fmt.Fprintln(os.Stderr, "replay:", err)
		os.Exit(1)
	}
}

type options struct {
	queue, bucket, producerName, region string
	dryRun, dropLost, verbose           bool
	batchTimeout                        time.Duration
	attempts                            int
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	var o options
	fs.StringVar(&o.queue, "queue", "", "on-failure queue URL")
	fs.StringVar(&o.bucket, "bucket", "", "on-failure bucket")
	fs.BoolVar(&o.dryRun, "dry-run", false, "list, publish nothing")
	fs.BoolVar(&o.dropLost, "drop-lost", false, "remove batches with lost records once the rest is confirmed")
	fs.StringVar(&o.producerName, "producer-name", "kinesis-pulsar-replay", "producer name prefix")
	fs.DurationVar(&o.batchTimeout, "batch-timeout", 2*time.Minute, "bound for one chunk")
	fs.IntVar(&o.attempts, "attempts", 3, "tries per chunk")
	fs.StringVar(&o.region, "region", "", "AWS region")
	fs.BoolVar(&o.verbose, "verbose", false, "the relay's log lines")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	var problems []error
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if (o.queue == "") == (o.bucket == "") {
		problems = append(problems, errors.New("give exactly one of --queue and --bucket"))
	}
	if o.batchTimeout <= 0 {
		problems = append(problems, errors.New("--batch-timeout must be positive"))
	}
	if o.attempts < 1 {
		problems = append(problems, errors.New("--attempts must be at least 1"))
	}
	if o.producerName == "" {
		problems = append(problems, errors.New("--producer-name must not be empty"))
	}
	if len(problems) > 0 {
		return o, fmt.Errorf("%w: %w", errUsage, errors.Join(problems...))
	}
	return o, nil
}

// run replays and prints the summary; main maps its error to the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return nil
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	if o.region != "" {
		awsCfg.Region = o.region
	}
	r := &replayer{k: kinesis.NewFromConfig(awsCfg), out: stdout, dryRun: o.dryRun, dropLost: o.dropLost,
		batchTimeout: o.batchTimeout, attempts: o.attempts, retryBackoff: time.Second}
	if o.queue != "" {
		// Long enough for a chunk's attempts; extended before each chunk (SQS allows up to 12 hours).
		visibility := min(time.Duration(o.attempts)*(o.batchTimeout+5*time.Second)+time.Minute, 12*time.Hour)
		r.src = &queueSource{c: sqs.NewFromConfig(awsCfg), url: o.queue, visibility: visibility, seen: map[string]bool{}}
	} else {
		r.src = &bucketSource{c: s3.NewFromConfig(awsCfg, func(so *s3.Options) {
			// A local endpoint (moto) has no virtual-host buckets.
			so.UsePathStyle = awsCfg.BaseEndpoint != nil || getenv("AWS_ENDPOINT_URL_S3") != ""
		}), bucket: o.bucket}
	}

	if !o.dryRun {
		// The function's configuration, read as the function reads it.
		cfg, err := config.Load(getenv)
		if err != nil {
			return fmt.Errorf("the function's configuration (its environment variables): %w", err)
		}
		cfg.Producer.Logger = log
		cfg.Producer.NamePrefix = o.producerName
		if cfg.Auth.SecretID != "" {
			cfg.Producer.Credentials = auth.New(secretsmanager.NewFromConfig(awsCfg), cfg.Auth.SecretID, log)
		}
		pool := producer.NewPool(cfg.Producer)
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			pool.Close(cctx)
			cancel()
		}()
		r.counts = &counter{}
		// No auditor: the audit table holds what the function did; a replay is not one of its batches.
		r.handler = relay.New(cfg.Relay, senders.FromPool(pool), nil, r.counts, log)
	}

	verb := "replaying"
	if o.dryRun {
		verb = "dry run: listing"
	}
	fmt.Fprintf(stdout, "%s the failed batches of %s\n", verb, r.src.describe())
	runErr := r.run(ctx)
	r.report()
	switch {
	case runErr != nil && ctx.Err() != nil:
		return fmt.Errorf("interrupted; batches not confirmed stay at the destination, run again to replay them: %w", runErr)
	case runErr != nil:
		return runErr
	case !r.sum.ok():
		return errIncomplete
	}
	return nil
}
