//go:build unix

package runtimeapi

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sigtermMarker is what testdata/handler prints when its SIGTERM callback runs.
const sigtermMarker = "runtimeapi-test: SIGTERM received"

// testBootstrap is the test handler, built once for the host by TestMain.
var testBootstrap string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runtimeapi-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(1)
	}
	if testBootstrap, err = Build(context.Background(), "./testdata/handler", dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// waitFor polls cond, for output that a child writes asynchronously.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// handlerRequest and handlerResponse mirror testdata/handler.
type handlerRequest struct {
	Action string          `json:"action,omitempty"`
	Value  json.RawMessage `json:"value,omitempty"`
	Millis int             `json:"ms,omitempty"`
	Code   int             `json:"code,omitempty"`
	Names  []string        `json:"names,omitempty"`
	Size   int             `json:"size,omitempty"`
}

type handlerResponse struct {
	Action         string            `json:"action"`
	Value          json.RawMessage   `json:"value"`
	RequestID      string            `json:"requestId"`
	FunctionArn    string            `json:"functionArn"`
	DeadlineUnixMs int64             `json:"deadlineUnixMs"`
	RemainingMs    int64             `json:"remainingMs"`
	Ticks          int64             `json:"ticks"`
	PID            int               `json:"pid"`
	Env            map[string]string `json:"env"`
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// invokeOK invokes d and requires a successful response from the handler.
func invokeOK(t testing.TB, d Driver, req handlerRequest) (Result, handlerResponse) {
	t.Helper()
	res, err := d.Invoke(context.Background(), mustJSON(t, req))
	if err != nil {
		t.Fatalf("invoke %+v: %v", req, err)
	}
	if res.Error != nil {
		t.Fatalf("invoke %+v: function error %v", req, res.Error)
	}
	var resp handlerResponse
	if err := json.Unmarshal(res.Payload, &resp); err != nil {
		t.Fatalf("invoke %+v: decode %q: %v", req, res.Payload, err)
	}
	if resp.RequestID != res.RequestID {
		t.Fatalf("handler saw request id %q, driver reported %q", resp.RequestID, res.RequestID)
	}
	return res, resp
}

type testOut struct{ stdout, stderr *Output }

func (o testOut) String() string {
	return "stdout:\n" + o.stdout.String() + "\nstderr:\n" + o.stderr.String()
}

// startEnv starts the test handler with opts adjusted by mutate and shuts it down at the end of the
// test; the shutdown also proves no process is left behind.
func startEnv(t *testing.T, mutate func(*Options)) (*Env, testOut) {
	t.Helper()
	out := testOut{&Output{}, &Output{}}
	opts := Options{
		Binary:       testBootstrap,
		FunctionName: "kp-test",
		MemoryMB:     256,
		Timeout:      5 * time.Second,
		Region:       "eu-west-1",
		Stdout:       out.stdout,
		Stderr:       out.stderr,
	}
	if mutate != nil {
		mutate(&opts)
	}
	env, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	sigtermExits := !slices.ContainsFunc(opts.Env, func(kv string) bool {
		return strings.HasPrefix(kv, "RUNTIMEAPI_TEST_SIGTERM=") && kv != "RUNTIMEAPI_TEST_SIGTERM="
	})
	t.Cleanup(func() {
		x, err := env.Shutdown(context.Background())
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
		// The handler exits on SIGTERM by default: needing SIGKILL would mean SIGTERM went missing.
		if sigtermExits && x.Forced {
			t.Errorf("shutdown needed SIGKILL (%s); SIGTERM did not end the process\n%s", x, out)
		}
		requireReaped(t, env)
	})
	return env, out
}

// requireReaped fails if the last process of env is still alive.
func requireReaped(t *testing.T, env *Env) {
	t.Helper()
	inst, err := env.current()
	if err != nil {
		return
	}
	if !inst.hasExited() {
		t.Errorf("pid %d still running after shutdown", inst.pid)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// benchPayload is an event of about size bytes that the test handler decodes and ignores, so the
// benchmark measures moving it through the API rather than the handler's work.
func benchPayload(size int) []byte {
	pad := size - len(`{"action":"echo","pad":""}`)
	return []byte(`{"action":"echo","pad":"` + strings.Repeat("x", max(pad, 0)) + `"}`)
}

// benchInvoke measures warm invocations of d. Besides ns/op it reports handler-ns/op, the part the
// runtime spent between taking the event and posting the answer (Result.Duration), and
// driver-cpu-ns/op, the CPU this process (the server, or the HTTP client of the RIE) burns per
// invocation.
func benchInvoke(b *testing.B, d Driver, payload []byte) {
	ctx := context.Background()
	if _, err := d.Invoke(ctx, payload); err != nil { // the cold start is not what we measure
		b.Fatal(err)
	}
	var n int
	var handler time.Duration
	b.SetBytes(int64(len(payload)))
	cpu0 := selfCPU(b)
	b.ResetTimer()
	for b.Loop() {
		res, err := d.Invoke(ctx, payload)
		if err != nil || res.Error != nil {
			b.Fatalf("invoke: %v %v", err, res.Error)
		}
		handler += res.Duration
		n++
	}
	b.ReportMetric(float64(handler.Nanoseconds())/float64(n), "handler-ns/op")
	b.ReportMetric(float64((selfCPU(b)-cpu0).Nanoseconds())/float64(n), "driver-cpu-ns/op")
}

// selfCPU is the user plus system CPU time of this (the driving) process so far.
func selfCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
