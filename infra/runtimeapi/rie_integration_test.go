//go:build integration && unix

package runtimeapi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// findRIE fails (never skips) when the venv lacks the emulator: the integration run must have it.
func findRIE(t testing.TB) string {
	t.Helper()
	rie, err := FindRIE()
	if err != nil {
		t.Fatalf("%v (KP_VENV=%q)", err, os.Getenv("KP_VENV"))
	}
	return rie
}

func startRIE(t *testing.T, mutate func(*Options)) (*RIE, testOut) {
	t.Helper()
	out := testOut{&Output{}, &Output{}}
	opts := Options{
		Binary:       testBootstrap,
		FunctionName: "kp-test",
		MemoryMB:     256,
		Timeout:      2 * time.Second,
		Region:       "eu-west-1",
		Stdout:       out.stdout,
		Stderr:       out.stderr,
	}
	if mutate != nil {
		mutate(&opts)
	}
	r, err := StartRIE(context.Background(), findRIE(t), opts)
	if err != nil {
		t.Fatalf("start RIE: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if _, err := r.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown RIE: %v", err)
		}
		if !closed(r.exited) {
			t.Error("the emulator is still running after shutdown")
		}
	})
	return r, out
}

func TestRIERoundTrip(t *testing.T) {
	t.Parallel()
	r, out := startRIE(t, nil)
	res, resp := invokeOK(t, r, handlerRequest{Action: "echo", Value: []byte(`{"records":[1,2,3]}`)})
	if string(resp.Value) != `{"records":[1,2,3]}` {
		t.Errorf("echoed value = %s", resp.Value)
	}
	// Init is lazy: the first invocation is the cold start.
	if !res.ColdStart || res.InitDuration <= 0 || res.Duration <= 0 {
		t.Errorf("first invoke: %+v, want a cold start with init and invoke durations", res)
	}
	res2, resp2 := invokeOK(t, r, handlerRequest{})
	if res2.ColdStart || resp2.PID != resp.PID {
		t.Errorf("second invoke: ColdStart=%v pid %d (first %d), want warm", res2.ColdStart, resp2.PID, resp.PID)
	}
	if res2.RequestID == res.RequestID {
		t.Error("request id repeated")
	}
	// The emulator hard-codes region and account in the ARN, but takes the function name.
	if want := "arn:aws:lambda:us-east-1:012345678912:function:kp-test"; resp.FunctionArn != want {
		t.Errorf("function ARN = %q, want %q", resp.FunctionArn, want)
	}
	if !containsAll(out.stdout.String(), "START RequestId: "+res.RequestID, "REPORT RequestId: "+res.RequestID) ||
		!strings.Contains(out.stderr.String(), "(rapid) INIT REPORT") {
		t.Errorf("output not split as documented:\n%s", out)
	}
}

func TestRIEDeadline(t *testing.T) {
	t.Parallel()
	const timeout = 3 * time.Second
	r, _ := startRIE(t, func(o *Options) { o.Timeout = timeout })
	invokeOK(t, r, handlerRequest{}) // the cold start delays the handler; measure a warm one
	before := time.Now()
	_, resp := invokeOK(t, r, handlerRequest{Action: "deadline"})
	after := time.Now()
	deadline := time.UnixMilli(resp.DeadlineUnixMs)
	if lo, hi := before.Add(timeout-time.Millisecond), after.Add(timeout); deadline.Before(lo) || deadline.After(hi) {
		t.Errorf("handler deadline %v outside [%v, %v]", deadline, lo, hi)
	}
}

func TestRIEEnvironment(t *testing.T) {
	t.Setenv("RUNTIMEAPI_PARENT_ONLY", "parent")
	r, _ := startRIE(t, func(o *Options) { o.Env = []string{"RUNTIMEAPI_EXTRA=1"} })
	_, resp := invokeOK(t, r, handlerRequest{Action: "env", Names: []string{
		"RUNTIMEAPI_EXTRA", "RUNTIMEAPI_PARENT_ONLY", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
		"AWS_REGION", "_HANDLER", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_FUNCTION_TIMEOUT",
	}})
	want := map[string]string{
		"RUNTIMEAPI_EXTRA": "1", "AWS_LAMBDA_FUNCTION_NAME": "kp-test", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"AWS_REGION": "eu-west-1", "_HANDLER": "bootstrap", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/kp-test",
		// The emulator forwards its whole environment, its own settings included.
		"AWS_LAMBDA_FUNCTION_TIMEOUT": "2",
	}
	for k, v := range want {
		if resp.Env[k] != v {
			t.Errorf("%s = %q, want %q", k, resp.Env[k], v)
		}
	}
	if _, ok := resp.Env["RUNTIMEAPI_PARENT_ONLY"]; ok {
		t.Error("the parent's environment leaked through the emulator")
	}
}

func TestRIEFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		req      handlerRequest
		wantErr  error  // nil: a function error in Result.Error
		wantType string // Result.Error.Type
	}{
		{name: "returned error", req: handlerRequest{Action: "error"}, wantType: "testError"},
		{name: "panic", req: handlerRequest{Action: "panic"}, wantType: "string"},
		{name: "exit", req: handlerRequest{Action: "exit", Code: 7}, wantErr: ErrProcessExited, wantType: "Runtime.ExitError"},
		{name: "timeout", req: handlerRequest{Action: "sleep", Millis: 3000}, wantErr: ErrTimeout, wantType: "Sandbox.Timedout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, out := startRIE(t, func(o *Options) { o.Timeout = time.Second })
			invokeOK(t, r, handlerRequest{})
			res, err := r.Invoke(context.Background(), mustJSON(t, tt.req))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v\n%s", err, tt.wantErr, out)
			}
			if res.Error == nil || res.Error.Type != tt.wantType || res.RequestID == "" {
				t.Errorf("Result = %+v (error %+v), want error type %q and a request id", res, res.Error, tt.wantType)
			}
			// Every failure but a returned error resets the sandbox: the next invoke re-runs init.
			next, _ := invokeOK(t, r, handlerRequest{})
			if want := tt.name != "returned error"; next.ColdStart != want {
				t.Errorf("after %s: ColdStart = %v, want %v", tt.name, next.ColdStart, want)
			}
		})
	}
}

func TestRIEInitFailures(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"exit", "init-error"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			r, out := startRIE(t, func(o *Options) { o.Env = []string{"RUNTIMEAPI_TEST_INIT=" + mode} })
			if _, err := r.Invoke(context.Background(), []byte(`{}`)); !errors.Is(err, ErrInitFailed) {
				t.Errorf("err = %v, want ErrInitFailed\n%s", err, out)
			}
		})
	}
}

func TestRIEStartRejectsFractionalTimeout(t *testing.T) {
	t.Parallel()
	_, err := StartRIE(context.Background(), findRIE(t), Options{Binary: testBootstrap, Timeout: 1500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "whole seconds") {
		t.Errorf("err = %v, want a whole-seconds error", err)
	}
}

func TestFindRIEInMissingVenv(t *testing.T) {
	t.Parallel()
	_, err := FindRIEIn(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "aws-sam-cli==1.170.0") {
		t.Errorf("err = %v, want a message that says how to install the emulator", err)
	}
}

// BenchmarkDrivers compares the per-invocation cost of the two drivers on the same bootstrap:
//
//	go test -tags integration -run '^$' -bench BenchmarkDrivers -benchtime 2000x ./infra/runtimeapi
func BenchmarkDrivers(b *testing.B) {
	rie := findRIE(b)
	for _, size := range []int{128, 1 << 20} {
		b.Run(fmt.Sprintf("driver=env/event=%dB", size), func(b *testing.B) {
			env, err := Start(context.Background(), Options{Binary: testBootstrap, Timeout: 10 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _, _ = env.Shutdown(context.Background()) })
			benchInvoke(b, env, benchPayload(size))
		})
		b.Run(fmt.Sprintf("driver=rie/event=%dB", size), func(b *testing.B) {
			r, err := StartRIE(context.Background(), rie, Options{Binary: testBootstrap, Timeout: 10 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _, _ = r.Shutdown(context.Background()) })
			benchInvoke(b, r, benchPayload(size))
		})
	}
}
