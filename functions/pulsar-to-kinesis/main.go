// Command pulsar-to-kinesis is the sink Lambda function: each scheduled invocation drains a Pulsar
// subscription into a Kinesis stream until its deadline. This file only wires the pieces together;
// the logic lives in internal/sink.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/streambridge/kinesis-pulsar/internal/auth"
	"github.com/streambridge/kinesis-pulsar/internal/config"
	"github.com/streambridge/kinesis-pulsar/internal/logging"
	"github.com/streambridge/kinesis-pulsar/internal/metrics"
	"github.com/streambridge/kinesis-pulsar/internal/producer"
	"github.com/streambridge/kinesis-pulsar/internal/sink"
)

// Lambda sends SIGKILL about 500 ms after SIGTERM.
const shutdownBudget = 400 * time.Millisecond

func main() {
	log := logging.New(os.Stderr, os.Getenv)
	cfg, err := config.LoadSink(os.Getenv)
	if err != nil {
		// Exit during init: Lambda reports Runtime.ExitError and nothing is consumed.
		log.Error("invalid configuration", "error", err)
		os.Exit(1)
	}
	// Reads the environment only; no request is made here.
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithLogger(logging.SDK(log)))
	if err != nil {
		log.Error("AWS SDK configuration", "error", err)
		os.Exit(1)
	}

	// The warm client: created once per execution environment, reused by every invocation.
	cfg.Client.Logger = log
	if cfg.Auth.SecretID != "" {
		cfg.Client.Credentials = auth.New(secretsmanager.NewFromConfig(awsCfg), cfg.Auth.SecretID, log)
	}
	pool := producer.NewPool(cfg.Client)

	kin := kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) {
		o.Region = cfg.Region // the stream's, which may differ from the function's
		// The sink retries failed writes itself, with backoff bounded by the deadline and counted in
		// its metrics; an SDK retry would hide throttling and wait past the margin.
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.MaxAttempts = 1 })
	})
	emf := sink.EMFObserver{EMF: metrics.New(os.Stdout, cfg.MetricsNamespace, lambdacontext.FunctionName, sink.MetricSchema)}
	handler := sink.New(cfg.Sink, sink.Broker{Pool: pool}, kin, emf, log)

	lambda.StartWithOptions(handler.Handle, lambda.WithEnableSIGTERM(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownBudget)
		pool.Close(ctx)
		cancel()
		// aws-lambda-go does not exit after SIGTERM callbacks; Lambda would SIGKILL us 500 ms later.
		os.Exit(0)
	}))
}
