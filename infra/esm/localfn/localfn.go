//go:build unix

// Package localfn holds what make invoke (infra/cmd/invoke) and make demo (infra/cmd/demo) share: the
// function's environment taken from a `sam local invoke --env-vars` file and pointed at the local stack,
// the real bootstrap started under the Runtime Interface Emulator, and Pulsar messages read back and
// printed the way `pulsar-client consume` prints them.
package localfn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
)

// FunctionName is the function's logical id in template.yaml and its block in events/env.json.
const FunctionName = "KinesisToPulsarFunction"

// Defaults of template.yaml's MemorySize and Timeout parameters.
const (
	DefaultMemoryMB = 512
	DefaultTimeout  = 60 * time.Second
)

// LoadSAMEnv reads a `sam local invoke --env-vars` file: the "Parameters" block (for every function),
// then the block of function, which wins. Numbers and booleans become their JSON text, as SAM passes
// them; null becomes "".
func LoadSAMEnv(path, function string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("env vars file: %w", err)
	}
	var blocks map[string]map[string]json.RawMessage
	if err := json.Unmarshal(data, &blocks); err != nil {
		return nil, fmt.Errorf("env vars file %s: want {\"%s\": {\"NAME\": \"value\", ...}}: %w", path, function, err)
	}
	fn, ok := blocks[function]
	if !ok {
		return nil, fmt.Errorf("env vars file %s has no %q block (it has %s)", path, function, strings.Join(slices.Sorted(maps.Keys(blocks)), ", "))
	}
	vars := make(map[string]string)
	for _, block := range []map[string]json.RawMessage{blocks["Parameters"], fn} {
		for name, raw := range block {
			v, err := scalar(raw)
			if err != nil {
				return nil, fmt.Errorf("env vars file %s: %s: %w", path, name, err)
			}
			vars[name] = v
		}
	}
	return vars, nil
}

func scalar(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case string(raw) == "null":
		return "", nil
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("decode string: %w", err)
		}
		return s, nil
	case string(raw) == "true" || string(raw) == "false":
		return string(raw), nil
	default:
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", errors.New("want a string, number, boolean or null")
		}
		return n.String(), nil
	}
}

// Change is one variable whose value was replaced for the local run.
type Change struct {
	Name, From, To string
}

// dockerHost is how SAM's container reaches the host; on the host itself that is 127.0.0.1.
const dockerHost = "host.docker.internal"

// PointAtStack turns the variables SAM would give the container into those of a run on this host:
// host.docker.internal becomes 127.0.0.1 in every value, and the stack's own endpoints and test
// credentials are set (a function that calls AWS must reach moto and DynamoDB Local, never AWS). It
// returns KEY=value lines, sorted, and the changes to variables the file set.
func PointAtStack(vars map[string]string, stack localenv.Env) ([]string, []Change) {
	out := make(map[string]string, len(vars)+6)
	var changes []Change
	for name, v := range vars {
		out[name] = strings.ReplaceAll(v, dockerHost, "127.0.0.1")
	}
	for name, v := range map[string]string{
		"PULSAR_SERVICE_URL":        stack.PulsarServiceURL,
		"AWS_ENDPOINT_URL":          stack.AWSEndpointURL,
		"AWS_ENDPOINT_URL_DYNAMODB": stack.DynamoDBEndpointURL,
		"AWS_ACCESS_KEY_ID":         stack.AWSAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":     stack.AWSSecretAccessKey,
	} {
		out[name] = v
	}
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		if vars[name] != out[name] {
			changes = append(changes, Change{Name: name, From: vars[name], To: out[name]})
		}
	}
	env := make([]string, 0, len(out))
	for _, name := range slices.Sorted(maps.Keys(out)) {
		env = append(env, name+"="+out[name])
	}
	return env, changes
}

// Function describes the bootstrap to run.
type Function struct {
	Bootstrap string   // the bootstrap built for this host
	Name      string   // AWS_LAMBDA_FUNCTION_NAME; SAM uses the logical id
	Env       []string // KEY=value, from PointAtStack
	Region    string
	MemoryMB  int
	Timeout   time.Duration // whole seconds (the emulator's limit)
	// Logs receives the function's output and the emulator's START/END/REPORT lines; Trace the
	// emulator's own "(rapid)" log. nil discards.
	Logs, Trace io.Writer
}

// StartRIE runs the function under the aws-lambda-rie of the project venv (KP_VENV), the emulator that
// `sam local invoke` runs in its container. Init is lazy: the first Invoke is the cold start.
func StartRIE(ctx context.Context, f Function) (*runtimeapi.RIE, string, error) {
	rie, err := runtimeapi.FindRIE()
	if err != nil {
		return nil, "", fmt.Errorf("the Lambda Runtime Interface Emulator: %w", err)
	}
	r, err := runtimeapi.StartRIE(ctx, rie, runtimeapi.Options{
		Binary: f.Bootstrap, Env: f.Env, FunctionName: f.Name, Region: f.Region, MemoryMB: f.MemoryMB,
		Timeout: f.Timeout, Stdout: f.Logs, Stderr: f.Trace,
	})
	if err != nil {
		return nil, "", fmt.Errorf("start %s under %s: %w", f.Bootstrap, rie, err)
	}
	return r, rie, nil
}

// Describe says how an invocation went, in one line: the request id, cold start and durations.
func Describe(res runtimeapi.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "request %s, %s", res.RequestID, ms(res.Duration))
	if res.ColdStart {
		fmt.Fprintf(&b, ", cold start (init %s)", ms(res.InitDuration))
	}
	return b.String()
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}
