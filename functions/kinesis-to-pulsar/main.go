// Command kinesis-to-pulsar is the Lambda function: it publishes every record of a Kinesis batch to
// Pulsar. This file only wires the pieces together; the logic lives in internal/.
package main

import (
	"context"
	"os"
	"runtime/debug"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/streambridge/kinesis-pulsar/internal/audit"
	"github.com/streambridge/kinesis-pulsar/internal/auth"
	"github.com/streambridge/kinesis-pulsar/internal/config"
	"github.com/streambridge/kinesis-pulsar/internal/eventjson"
	"github.com/streambridge/kinesis-pulsar/internal/logging"
	"github.com/streambridge/kinesis-pulsar/internal/metrics"
	"github.com/streambridge/kinesis-pulsar/internal/producer"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/internal/relay/senders"
)

// Lambda sends SIGKILL about 500 ms after SIGTERM.
const shutdownBudget = 400 * time.Millisecond

// warmUpBudget bounds the producer creation started during init; the first invocation waits for
// whatever is left of it.
const warmUpBudget = 5 * time.Second

func main() {
	log := logging.New(os.Stderr, os.Getenv)
	if os.Getenv("GOMEMLIMIT") == "" && lambdacontext.MemoryLimitInMB > 0 {
		// Lambda kills a function that outgrows its memory. A soft limit of half of it makes the GC
		// collect earlier invocations' garbage before the heap doubles; a 6 MB batch at 128 MB then
		// peaks near 80 MiB instead of 100. GOMEMLIMIT overrides it.
		debug.SetMemoryLimit(int64(lambdacontext.MemoryLimitInMB) << 20 / 2)
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		// Exit during init: Lambda reports Runtime.ExitError and nothing is published.
		log.Error("invalid configuration", "error", err)
		os.Exit(1)
	}
	for _, w := range config.Warnings(cfg) {
		log.Warn("insecure configuration", "warning", w)
	}

	var awsCfg aws.Config
	if cfg.Auth.SecretID != "" || cfg.Audit.Table != "" {
		// Reads the environment only; no request is made here.
		if awsCfg, err = awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithLogger(logging.SDK(log))); err != nil {
			log.Error("AWS SDK configuration", "error", err)
			os.Exit(1)
		}
	}

	// The warm client: created once per execution environment, reused by every invocation.
	cfg.Producer.Logger = log
	if cfg.Auth.SecretID != "" {
		// Fetched on first use, inside an invocation: a Secrets Manager outage then fails records
		// (retried by Lambda) instead of the runtime's init.
		cfg.Producer.Credentials = auth.New(secretsmanager.NewFromConfig(awsCfg), cfg.Auth.SecretID, log)
	}
	pool := producer.NewPool(cfg.Producer)

	var auditor relay.Auditor
	var db *dynamodb.Client
	if cfg.Audit.Table != "" {
		db = dynamodb.NewFromConfig(awsCfg)
		auditor = audit.New(db, cfg.Audit)
	}
	emf := relay.EMFObserver{EMF: metrics.New(os.Stdout, cfg.MetricsNamespace, lambdacontext.FunctionName, relay.MetricSchema)}
	handler := relay.New(cfg.Relay, senders.FromPool(pool), auditor, emf, log)
	if cfg.Relay.Guarantee == relay.EffectivelyOnce {
		// config.Load requires the audit table in this mode.
		handler.EnableEffectivelyOnce(audit.NewSequences(db, cfg.Audit.Table, 0), senders.FromPool(pool))
	}

	// The effectively-once mode creates its producers per invocation, under the shard's name.
	if !cfg.Relay.Topic.PerStream() && cfg.Relay.Guarantee != relay.EffectivelyOnce {
		// Connect while the runtime starts; the first invocation reuses the result.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), warmUpBudget)
			defer cancel()
			if err := pool.Warm(ctx, cfg.Relay.Topic.String(), producer.Batched); err != nil {
				log.Warn("warm-up could not create the producer; the first invocation will retry", "error", err)
			}
		}()
	}

	// eventjson decodes Lambda's event several times faster than the reflection path, same result.
	lambda.StartWithOptions(eventjson.Handler(handler.Handle), lambda.WithEnableSIGTERM(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownBudget)
		pool.Close(ctx)
		cancel()
		// aws-lambda-go does not exit after SIGTERM callbacks; Lambda would SIGKILL us 500 ms later.
		os.Exit(0)
	}))
}
