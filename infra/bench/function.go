package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
)

// FunctionOptions describe one execution environment of the real bootstrap.
type FunctionOptions struct {
	Binary     string // the bootstrap built for this host
	ServiceURL string
	Topic      string
	MemoryMB   int           // AWS_LAMBDA_FUNCTION_MEMORY_SIZE; default 1769
	Timeout    time.Duration // default 60 s
	// CPU, when set, runs the process in this control group (a CPU quota for the memory size).
	CPU *CPUGroup
	// Stderr receives the function's log lines; nil discards them.
	Stderr io.Writer
	// Env holds extra variables (experiments: GOMEMLIMIT, GOGC).
	Env []string
}

// Function is the bootstrap under the local Runtime API (infra/runtimeapi.Env).
type Function struct {
	Env     *runtimeapi.Env
	Started time.Time // just before the process was started
	wrapper string
}

// StartFunction starts the bootstrap and waits for the end of its init phase.
func StartFunction(ctx context.Context, o FunctionOptions) (*Function, error) {
	if o.MemoryMB == 0 {
		o.MemoryMB = 1769
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	f := &Function{}
	binary := o.Binary
	if o.CPU != nil {
		w, err := o.CPU.wrapper(o.Binary)
		if err != nil {
			return nil, err
		}
		binary, f.wrapper = w, w
	}
	f.Started = time.Now()
	env, err := runtimeapi.Start(ctx, runtimeapi.Options{
		Binary:       binary,
		Env:          append([]string{"PULSAR_SERVICE_URL=" + o.ServiceURL, "PULSAR_TOPIC=" + o.Topic}, o.Env...),
		FunctionName: "kinesis-to-pulsar",
		MemoryMB:     o.MemoryMB,
		Timeout:      o.Timeout,
		Stderr:       o.Stderr,
	})
	if err != nil {
		f.removeWrapper()
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	f.Env = env
	return f, nil
}

// Invoke sends one JSON event and checks that the answer reports every record delivered.
func (f *Function) Invoke(ctx context.Context, payload []byte) (runtimeapi.Result, error) {
	res, err := f.Env.Invoke(ctx, payload)
	if err != nil {
		return res, fmt.Errorf("bootstrap: %w", err)
	}
	if res.Error != nil {
		return res, fmt.Errorf("bootstrap: function error: %w", res.Error)
	}
	var resp events.KinesisEventResponse
	if err := json.Unmarshal(res.Payload, &resp); err != nil {
		return res, fmt.Errorf("bootstrap: response %q: %w", res.Payload, err)
	}
	if len(resp.BatchItemFailures) > 0 {
		return res, fmt.Errorf("bootstrap: %w: retry from %s", errNotDelivered, resp.BatchItemFailures[0].ItemIdentifier)
	}
	return res, nil
}

// Close shuts the environment down as Lambda does (SIGTERM, then SIGKILL after the grace period).
func (f *Function) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := f.Env.Shutdown(ctx)
	f.removeWrapper()
	if err != nil {
		return fmt.Errorf("bootstrap: shutdown: %w", err)
	}
	return nil
}

func (f *Function) removeWrapper() {
	if f.wrapper != "" {
		_ = os.Remove(f.wrapper)
	}
}

// EventJSON is the event as Lambda sends it; ok is false when it exceeds Lambda's 6 MB payload limit.
func EventJSON(ev events.KinesisEvent) (payload []byte, ok bool, err error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, false, fmt.Errorf("marshal event: %w", err)
	}
	return b, len(b) <= runtimeapi.MaxPayloadBytes, nil
}

var errNoCgroup = errors.New("no CPU quota available")
