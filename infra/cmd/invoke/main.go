//go:build unix

// Command invoke runs one sample event through the real bootstrap, without Docker: the function runs on
// this host under the Lambda Runtime Interface Emulator (the aws-lambda-rie that `sam local invoke`
// runs inside its container), configured from the function's block of a `sam local invoke --env-vars`
// file with the endpoints pointed at the local stack. It prints the function's response, then the
// messages that reached Pulsar, as `pulsar-client consume` prints them. make invoke builds the
// bootstrap, ensures the stack and runs it (docs/local.md):
//
//	make invoke EVENT=events/quickstart-kpl.json
//
// Standard output carries the response and the messages; standard error what is going on and the
// function's own logs. The exit status is 1 when the function failed (an error document, a timeout, a
// crash) or answered success while messages are missing, 2 on bad usage.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/infra/esm/localfn"
	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
)

type config struct {
	event, envVars, function, bootstrap string
	memoryMB                            int
	timeout, wait                       time.Duration
	verbose                             bool
}

// errUsage marks a mistake in the command line (exit status 2).
var errUsage = errors.New("usage")

func main() {
	var c config
	flag.StringVar(&c.event, "event", "", "the Kinesis event to send (a file of events/); required")
	flag.StringVar(&c.envVars, "env-vars", "events/env.json", "the `sam local invoke --env-vars` file to take the function's variables from")
	flag.StringVar(&c.function, "function", localfn.FunctionName, "the block of the env-vars file (the function's logical id)")
	flag.StringVar(&c.bootstrap, "bootstrap", "bin/host/kinesis-to-pulsar/bootstrap", "the bootstrap built for this host")
	flag.IntVar(&c.memoryMB, "memory", localfn.DefaultMemoryMB, "the function's memory in MB (AWS_LAMBDA_FUNCTION_MEMORY_SIZE)")
	flag.DurationVar(&c.timeout, "timeout", localfn.DefaultTimeout, "the function timeout, whole seconds")
	flag.DurationVar(&c.wait, "wait", 10*time.Second, "how long to wait for the messages in Pulsar")
	flag.BoolVar(&c.verbose, "v", false, "also show the emulator's own log")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if flag.NArg() > 0 {
		err = fmt.Errorf("%w: unexpected arguments %q", errUsage, flag.Args())
	} else {
		err = run(ctx, c, os.Stdout, os.Stderr)
	}
	interrupted := ctx.Err() != nil // before stop, which cancels ctx
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "invoke:", err)
		os.Exit(2)
	case interrupted:
		fmt.Fprintln(os.Stderr, "invoke: interrupted")
		os.Exit(130)
	default:
		fmt.Fprintln(os.Stderr, "invoke: error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, stdout, stderr io.Writer) error {
	if c.event == "" {
		return fmt.Errorf("%w: invoke -event events/<file>.json [-env-vars events/env.json] [-bootstrap PATH]", errUsage)
	}
	payload, ev, err := readEvent(c.event)
	if err != nil {
		return err
	}
	stack, err := localenv.Load()
	if err != nil {
		return err
	}
	vars, err := localfn.LoadSAMEnv(c.envVars, c.function)
	if err != nil {
		return err
	}
	env, changes := localfn.PointAtStack(vars, stack)

	say := func(format string, args ...any) { fmt.Fprintf(stderr, "invoke: "+format+"\n", args...) }
	say("%s (%s) → %s (%s)", c.event, plural(len(ev.Records), "record"), c.function, c.bootstrap)
	for _, ch := range changes {
		say("%s=%s for this host (%s has %s, for SAM's container)", ch.Name, ch.To, c.envVars, ch.From)
	}

	opts, err := localfn.RelayOptions(env)
	if err != nil {
		say("%v", err)
	}
	arns := make([]string, len(ev.Records))
	for i, r := range ev.Records {
		arns[i] = r.EventSourceArn
	}
	topics := localfn.Topics(opts, arns...)
	var watcher *localfn.Watcher
	if len(topics) > 0 {
		// Readers at the latest message, opened before the invocation: they see exactly what it
		// publishes (and whatever someone else publishes to the same topics meanwhile).
		if watcher, err = localfn.Watch(ctx, stack.PulsarServiceURL, topics); err != nil {
			return err
		}
		defer watcher.Close()
	}

	trace := io.Discard
	if c.verbose {
		trace = stderr
	}
	fn, rie, err := localfn.StartRIE(ctx, localfn.Function{
		Bootstrap: c.bootstrap, Name: c.function, Env: env, Region: stack.AWSRegion,
		MemoryMB: c.memoryMB, Timeout: c.timeout, Logs: stderr, Trace: trace,
	})
	if err != nil {
		return err
	}
	defer func() { _, _ = fn.Shutdown(context.Background()) }()
	say("running under %s", filepath.Base(rie))

	res, err := fn.Invoke(ctx, payload)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, runtimeapi.ErrInitFailed) {
		return fmt.Errorf("the function failed during init; its output above says why (%w)", err)
	}
	if err != nil {
		return fmt.Errorf("the invocation failed (%s): %w", localfn.Describe(res), err)
	}
	if res.Error != nil {
		doc, _ := json.Marshal(res.Error)
		fmt.Fprintf(stdout, "%s\n", doc)
		return fmt.Errorf("function error (%s): %s", localfn.Describe(res), res.Error)
	}
	say("response (%s):", localfn.Describe(res))
	fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(res.Payload))

	if watcher == nil {
		say("no record has a topic: nothing to read from Pulsar")
		return nil
	}
	expected := localfn.ExpectedMessages(opts, ev.Records)
	complete := completeSuccess(res.Payload)
	want := expected
	if !complete {
		// Some records failed: how many messages exist is not known, so read until it is quiet.
		want = 0
	}
	wctx, cancel := context.WithTimeout(ctx, c.wait)
	defer cancel()
	msgs := watcher.Collect(wctx, want, 2*time.Second)
	say("%s in Pulsar (%s) for %s (%s)", plural(len(msgs), "message"), strings.Join(topics, ", "),
		plural(len(ev.Records), "record"), plural(expected, "user record"))
	topic := ""
	for _, m := range msgs {
		if len(topics) > 1 && m.Topic != topic {
			topic = m.Topic
			say("topic %s:", topic)
		}
		fmt.Fprintln(stdout, localfn.Format(m.Message))
	}
	if complete && len(msgs) < expected {
		return fmt.Errorf("the function answered success but only %d of %d messages reached Pulsar within %s", len(msgs), expected, c.wait)
	}
	return nil
}

// readEvent returns the file's bytes, sent unchanged as SAM does, and the event they hold.
func readEvent(path string) ([]byte, events.KinesisEvent, error) {
	var ev events.KinesisEvent
	payload, err := os.ReadFile(path)
	if err != nil {
		return nil, ev, fmt.Errorf("%w: event: %w", errUsage, err)
	}
	if err := json.Unmarshal(payload, &ev); err != nil || len(ev.Records) == 0 {
		return nil, ev, fmt.Errorf("%w: %s is not a Kinesis event ({\"Records\":[...]}, see events/)", errUsage, path)
	}
	return payload, ev, nil
}

// completeSuccess reports whether the answer names no failed record.
func completeSuccess(payload []byte) bool {
	if p := bytes.TrimSpace(payload); len(p) == 0 || string(p) == "null" {
		return true
	}
	var resp events.KinesisEventResponse
	if err := json.Unmarshal(payload, &resp); err != nil {
		return false
	}
	return len(resp.BatchItemFailures) == 0
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
