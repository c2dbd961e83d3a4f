//go:build unix

package runtimeapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestInvokeRoundTrip(t *testing.T) {
	t.Parallel()
	env, _ := startEnv(t, nil)
	if env.InitDuration() <= 0 {
		t.Errorf("InitDuration = %v, want > 0", env.InitDuration())
	}

	res, resp := invokeOK(t, env, handlerRequest{Action: "echo", Value: json.RawMessage(`{"records":[1,2,3]}`)})
	if string(resp.Value) != `{"records":[1,2,3]}` {
		t.Errorf("echoed value = %s", resp.Value)
	}
	if want := "arn:aws:lambda:eu-west-1:123456789012:function:kp-test"; resp.FunctionArn != want {
		t.Errorf("function ARN = %q, want %q", resp.FunctionArn, want)
	}
	if !res.ColdStart || res.InitDuration != env.InitDuration() {
		t.Errorf("first invoke: ColdStart=%v InitDuration=%v, want true and %v", res.ColdStart, res.InitDuration, env.InitDuration())
	}
	if res.Duration <= 0 || res.Duration > time.Second {
		t.Errorf("Duration = %v", res.Duration)
	}

	res2, resp2 := invokeOK(t, env, handlerRequest{})
	if res2.ColdStart || res2.InitDuration != 0 {
		t.Errorf("second invoke: ColdStart=%v InitDuration=%v, want a warm invoke", res2.ColdStart, res2.InitDuration)
	}
	if resp2.PID != resp.PID || env.Launches() != 1 {
		t.Errorf("warm invoke ran in pid %d (first %d), launches %d", resp2.PID, resp.PID, env.Launches())
	}
}

func TestFunctionErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		req       handlerRequest
		wantType  string
		wantMsg   string
		wantStack bool
		// aws-lambda-go exits after reporting a panic, so the next invoke is a cold start.
		wantRestart bool
	}{
		{name: "returned error", req: handlerRequest{Action: "error"}, wantType: "testError", wantMsg: "requested failure"},
		{name: "panic", req: handlerRequest{Action: "panic"}, wantType: "string", wantMsg: "requested panic", wantStack: true, wantRestart: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, _ := startEnv(t, nil)
			res, err := env.Invoke(context.Background(), mustJSON(t, tt.req))
			if err != nil {
				t.Fatalf("a function error must not be an Invoke error: %v", err)
			}
			if res.Error == nil || res.Payload != nil {
				t.Fatalf("Result = %+v, want a function error and no payload", res)
			}
			if res.Error.Type != tt.wantType || res.Error.Message != tt.wantMsg {
				t.Errorf("error = %q / %q, want %q / %q", res.Error.Type, res.Error.Message, tt.wantType, tt.wantMsg)
			}
			if got := len(res.Error.StackTrace) > 0; got != tt.wantStack {
				t.Errorf("stack trace present = %v, want %v", got, tt.wantStack)
			}

			next, _ := invokeOK(t, env, handlerRequest{})
			if next.ColdStart != tt.wantRestart || (env.Launches() == 2) != tt.wantRestart {
				t.Errorf("after the error: ColdStart=%v launches=%d, want restart=%v", next.ColdStart, env.Launches(), tt.wantRestart)
			}
		})
	}
}

func TestDeadlineMatchesTimeout(t *testing.T) {
	t.Parallel()
	tests := []time.Duration{1500 * time.Millisecond, 7 * time.Second}
	for _, timeout := range tests {
		t.Run(timeout.String(), func(t *testing.T) {
			t.Parallel()
			env, _ := startEnv(t, func(o *Options) { o.Timeout = timeout })
			before := time.Now()
			_, resp := invokeOK(t, env, handlerRequest{Action: "deadline"})
			after := time.Now()
			deadline := time.UnixMilli(resp.DeadlineUnixMs)
			// The header has millisecond resolution, hence the 1 ms slack below the window.
			if lo, hi := before.Add(timeout-time.Millisecond), after.Add(timeout); deadline.Before(lo) || deadline.After(hi) {
				t.Errorf("handler deadline %v outside [%v, %v]", deadline, lo, hi)
			}
			if rem := time.Duration(resp.RemainingMs) * time.Millisecond; rem > timeout || rem < timeout-100*time.Millisecond {
				t.Errorf("remaining at handler start = %v, want about %v", rem, timeout)
			}
		})
	}
}

func TestTimeoutKillsAndReports(t *testing.T) {
	t.Parallel()
	env, out := startEnv(t, func(o *Options) { o.Timeout = 300 * time.Millisecond })
	_, first := invokeOK(t, env, handlerRequest{})

	start := time.Now()
	res, err := env.Invoke(context.Background(), mustJSON(t, handlerRequest{Action: "sleep", Millis: 5000}))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if res.Error == nil || res.Error.Type != "Sandbox.Timedout" || !strings.Contains(res.Error.Message, "Task timed out after 0.30 seconds") {
		t.Errorf("Result.Error = %+v", res.Error)
	}
	if res.RequestID == "" || res.Duration != 300*time.Millisecond {
		t.Errorf("Result = %+v", res)
	}
	// The handler exits on SIGTERM, so the reset takes far less than the sleep.
	if elapsed > 2*time.Second {
		t.Errorf("timeout took %v to report", elapsed)
	}
	if err := syscall.Kill(first.PID, 0); err == nil {
		t.Errorf("timed-out process %d is still alive", first.PID)
	}
	// Lambda resets a timed-out environment like a shutdown: the extension's SIGTERM comes first.
	waitFor(t, "SIGTERM marker", func() bool { return strings.Contains(out.stdout.String(), sigtermMarker) })

	res2, resp2 := invokeOK(t, env, handlerRequest{})
	if !res2.ColdStart || resp2.PID == first.PID || env.Launches() != 2 {
		t.Errorf("after a timeout: ColdStart=%v pid %d (old %d) launches %d, want a fresh process", res2.ColdStart, resp2.PID, first.PID, env.Launches())
	}
}

func TestProcessExitDuringInvoke(t *testing.T) {
	t.Parallel()
	env, _ := startEnv(t, nil)
	res, err := env.Invoke(context.Background(), mustJSON(t, handlerRequest{Action: "exit", Code: 7}))
	if !errors.Is(err, ErrProcessExited) || !strings.Contains(err.Error(), "exit status 7") {
		t.Fatalf("err = %v, want ErrProcessExited with exit status 7", err)
	}
	if res.Error == nil || res.Error.Type != "Runtime.ExitError" {
		t.Errorf("Result.Error = %+v, want Runtime.ExitError", res.Error)
	}
	if res2, _ := invokeOK(t, env, handlerRequest{}); !res2.ColdStart {
		t.Error("the invoke after a crash must be a cold start")
	}
}

func TestInitFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		mode        string
		initTimeout time.Duration
		want        string
	}{
		{name: "exit during init", mode: "exit", want: "runtime exited during init: exit status 3"},
		{name: "init error posted", mode: "init-error", want: "TestInitError: requested init failure"},
		{name: "init too slow", mode: "sleep:5000", initTimeout: 200 * time.Millisecond, want: "did not call /next within the init timeout 200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			env, err := Start(context.Background(), Options{
				Binary:      testBootstrap,
				Env:         []string{"RUNTIMEAPI_TEST_INIT=" + tt.mode},
				InitTimeout: tt.initTimeout,
			})
			if err == nil {
				_, _ = env.Shutdown(context.Background())
				t.Fatal("Start succeeded, want an init failure")
			}
			if !errors.Is(err, ErrInitFailed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrInitFailed containing %q", err, tt.want)
			}
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("init failure took %v to report", elapsed)
			}
		})
	}
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	const grace = 200 * time.Millisecond
	tests := []struct {
		name       string
		sigterm    string
		wantMarker bool
		want       Exit
		minElapsed time.Duration
	}{
		// The callback exits by itself within the grace period.
		{name: "SIGTERM handled", sigterm: "", wantMarker: true, want: Exit{Code: 0}},
		// aws-lambda-go's handler does not exit the process; SIGKILL follows after the grace period.
		{name: "SIGTERM ignored", sigterm: "hang", wantMarker: true, want: Exit{Code: -1, Signal: syscall.SIGKILL, Forced: true}, minElapsed: grace},
		// No extension registered: Lambda sends no SIGTERM, only SIGKILL.
		{name: "no extension", sigterm: "off", wantMarker: false, want: Exit{Code: -1, Signal: syscall.SIGKILL, Forced: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, out := startEnv(t, func(o *Options) {
				o.ShutdownGrace = grace
				o.Env = []string{"RUNTIMEAPI_TEST_SIGTERM=" + tt.sigterm}
			})
			invokeOK(t, env, handlerRequest{})

			start := time.Now()
			x, err := env.Shutdown(context.Background())
			elapsed := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if x != tt.want {
				t.Errorf("exit = %+v (%s), want %+v", x, x, tt.want)
			}
			if elapsed < tt.minElapsed || elapsed > grace+time.Second {
				t.Errorf("shutdown took %v, want at least %v and not much more than the grace %v", elapsed, tt.minElapsed, grace)
			}
			if tt.wantMarker {
				waitFor(t, "SIGTERM marker", func() bool { return strings.Contains(out.stdout.String(), sigtermMarker) })
			} else if strings.Contains(out.stdout.String(), sigtermMarker) {
				t.Error("SIGTERM reached a function without an extension")
			}
			if again, _ := env.Shutdown(context.Background()); again != x {
				t.Errorf("second Shutdown = %+v, want %+v", again, x)
			}
			if _, err := env.Invoke(context.Background(), []byte(`{}`)); !errors.Is(err, ErrClosed) {
				t.Errorf("Invoke after Shutdown: %v, want ErrClosed", err)
			}
		})
	}
}

func TestExtensionGetsShutdownEvent(t *testing.T) {
	t.Parallel()
	env, out := startEnv(t, func(o *Options) { o.Env = []string{"RUNTIMEAPI_TEST_EXT=shutdown"} })
	invokeOK(t, env, handlerRequest{})
	if _, err := env.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "extension SHUTDOWN event", func() bool {
		return containsAll(out.stdout.String(), "runtimeapi-test: extension event: ", `"eventType":"SHUTDOWN"`, `"shutdownReason":"spindown"`)
	})
}

func TestFreezeStopsTheProcess(t *testing.T) {
	t.Parallel()
	env, _ := startEnv(t, nil)
	// The handler's ticker advances every 5 ms while the process runs.
	_, r1 := invokeOK(t, env, handlerRequest{Action: "ticks"})
	time.Sleep(200 * time.Millisecond)
	_, r2 := invokeOK(t, env, handlerRequest{Action: "ticks"})
	if running := r2.Ticks - r1.Ticks; running < 10 {
		t.Fatalf("ticker advanced %d in 200 ms unfrozen; the test cannot tell frozen from running", running)
	}

	if err := env.Freeze(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := env.Thaw(); err != nil {
		t.Fatal(err)
	}
	_, r3 := invokeOK(t, env, handlerRequest{Action: "ticks"})
	// At most the one tick a Go ticker buffers, plus a few for the invoke itself.
	if frozen := r3.Ticks - r2.Ticks; frozen > 8 {
		t.Errorf("ticker advanced %d during 300 ms frozen, want about 0", frozen)
	}

	// Invoke thaws a frozen process by itself, as Lambda does.
	if err := env.Freeze(); err != nil {
		t.Fatal(err)
	}
	invokeOK(t, env, handlerRequest{})
}

func TestFreezeBetweenInvokes(t *testing.T) {
	t.Parallel()
	env, _ := startEnv(t, func(o *Options) { o.FreezeBetweenInvokes = true })
	_, r1 := invokeOK(t, env, handlerRequest{Action: "ticks"})
	if err := waitStopped(env.PID(), time.Second); err != nil {
		t.Fatalf("process not frozen between invokes: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	_, r2 := invokeOK(t, env, handlerRequest{Action: "ticks"})
	if idle := r2.Ticks - r1.Ticks; idle > 8 {
		t.Errorf("ticker advanced %d during 300 ms idle, want about 0 (frozen)", idle)
	}
}

func TestRequestIDsUniqueUnderConcurrency(t *testing.T) {
	t.Parallel()
	env, _ := startEnv(t, nil)
	const workers, each = 4, 25
	var (
		mu   sync.Mutex
		seen = make(map[string]bool)
		pids = make(map[int]bool)
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for range each {
				res, resp := invokeOK(t, env, handlerRequest{})
				mu.Lock()
				if seen[res.RequestID] {
					t.Errorf("request id %s issued twice", res.RequestID)
				}
				seen[res.RequestID] = true
				pids[resp.PID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != workers*each || len(pids) != 1 {
		t.Errorf("%d distinct ids for %d invokes, %d processes", len(seen), workers*each, len(pids))
	}
}

func TestEnvironmentVariables(t *testing.T) {
	// Not parallel: t.Setenv.
	t.Setenv("RUNTIMEAPI_PARENT_ONLY", "parent")
	names := []string{
		"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
		"AWS_LAMBDA_LOG_GROUP_NAME", "AWS_REGION", "AWS_DEFAULT_REGION", "_HANDLER", "TZ",
		"RUNTIMEAPI_EXTRA", "RUNTIMEAPI_PARENT_ONLY", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_LOG_STREAM_NAME",
		"AWS_EC2_METADATA_DISABLED",
	}
	tests := []struct {
		name    string
		inherit bool
	}{{"explicit", false}, {"inherit", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _ := startEnv(t, func(o *Options) {
				o.InheritEnv = tt.inherit
				// Options.Env overrides a default, but never the runtime API address.
				o.Env = []string{"RUNTIMEAPI_EXTRA=1", "TZ=Europe/Paris", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:1"}
			})
			_, resp := invokeOK(t, env, handlerRequest{Action: "env", Names: names})
			want := map[string]string{
				"AWS_LAMBDA_FUNCTION_NAME":        "kp-test",
				"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
				"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
				"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/kp-test",
				"AWS_REGION":                      "eu-west-1",
				"AWS_DEFAULT_REGION":              "eu-west-1",
				"_HANDLER":                        "bootstrap",
				"TZ":                              "Europe/Paris",
				"RUNTIMEAPI_EXTRA":                "1",
				"AWS_LAMBDA_RUNTIME_API":          env.Addr(),
				"LAMBDA_TASK_ROOT":                strings.TrimSuffix(testBootstrap, "/bootstrap"),
				"AWS_EC2_METADATA_DISABLED":       "true",
			}
			if tt.inherit {
				want["RUNTIMEAPI_PARENT_ONLY"] = "parent"
			}
			for k, v := range want {
				if resp.Env[k] != v {
					t.Errorf("%s = %q, want %q", k, resp.Env[k], v)
				}
			}
			if _, ok := resp.Env["RUNTIMEAPI_PARENT_ONLY"]; ok && !tt.inherit {
				t.Error("the parent's environment leaked into the function")
			}
			if s := resp.Env["AWS_LAMBDA_LOG_STREAM_NAME"]; !strings.Contains(s, "/[$LATEST]") || len(s) != len("2006/01/02/[$LATEST]")+32 {
				t.Errorf("log stream name %q does not have Lambda's shape", s)
			}
		})
	}
}

func TestRuntimeAPIRejectsBadRequests(t *testing.T) {
	t.Parallel()
	env, _ := startEnv(t, nil)
	base := "http://" + env.Addr()
	tests := []struct {
		method, path string
		wantStatus   int
		wantInBody   string
	}{
		{http.MethodGet, "/2018-06-01/runtime/nope", http.StatusNotFound, "no such endpoint GET /2018-06-01/runtime/nope"},
		{http.MethodGet, "/", http.StatusNotFound, "no such endpoint"},
		{http.MethodPost, "/2018-06-01/runtime/invocation/not-a-request/response", http.StatusBadRequest, "InvalidRequestID"},
		{http.MethodGet, "/2018-06-01/runtime/invocation/x/response", http.StatusMethodNotAllowed, "only POST"},
		{http.MethodPost, "/2018-06-01/runtime/invocation/x/other", http.StatusNotFound, "no such endpoint"},
		{http.MethodGet, "/2020-01-01/extension/event/next", http.StatusForbidden, "Extension.InvalidExtensionIdentifier"},
		// Init is over: a late registration is refused, as in Lambda.
		{http.MethodPost, "/2020-01-01/extension/register", http.StatusForbidden, ""},
		{http.MethodPost, "/2018-06-01/runtime/init/error", http.StatusForbidden, "init is already complete"},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantInBody) {
			t.Errorf("%s %s = %d %s, want %d containing %q", tt.method, tt.path, resp.StatusCode, body, tt.wantStatus, tt.wantInBody)
		}
	}
	// The environment still works after the noise.
	invokeOK(t, env, handlerRequest{})
}

func TestPayloadLimits(t *testing.T) {
	t.Parallel()
	env, _ := startEnv(t, nil)
	if _, err := env.Invoke(context.Background(), make([]byte, MaxPayloadBytes+1)); !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("oversized event: %v, want ErrPayloadTooLarge", err)
	}
	res, err := env.Invoke(context.Background(), mustJSON(t, handlerRequest{Action: "big", Size: MaxPayloadBytes + 10}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Error == nil || res.Error.Type != "Function.ResponseSizeTooLarge" {
		t.Errorf("oversized response: Result.Error = %+v", res.Error)
	}
	// aws-lambda-go exits on the 413; the environment recovers with a cold start.
	if res2, _ := invokeOK(t, env, handlerRequest{}); !res2.ColdStart {
		t.Error("want a cold start after the runtime exited")
	}
}

func TestCancelResetsTheEnvironment(t *testing.T) {
	t.Parallel()
	env, _ := startEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := env.Invoke(ctx, mustJSON(t, handlerRequest{Action: "sleep", Millis: 5000})); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if res, _ := invokeOK(t, env, handlerRequest{}); !res.ColdStart {
		t.Error("want a cold start after a cancelled invoke")
	}
}

func TestPeakRSSAndPlatformLines(t *testing.T) {
	t.Parallel()
	platform := &Output{}
	env, _ := startEnv(t, func(o *Options) { o.Platform = platform })
	res, _ := invokeOK(t, env, handlerRequest{})
	invokeOK(t, env, handlerRequest{})

	live, err := env.PeakRSS()
	if err != nil || live < 1<<20 || live > 1<<30 {
		t.Errorf("PeakRSS while running = %d, %v; want between 1 MiB and 1 GiB", live, err)
	}
	if _, err := env.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	after, err := env.PeakRSS()
	if err != nil || after < live/2 {
		t.Errorf("PeakRSS after exit = %d, %v; want about %d", after, err, live)
	}

	lines := platform.String()
	if !containsAll(lines, "START RequestId: "+res.RequestID+" Version: $LATEST", "END RequestId: "+res.RequestID,
		"REPORT RequestId: "+res.RequestID+"\tDuration: ", "Memory Size: 256 MB", "Max Memory Used: ", "Init Duration: ") {
		t.Errorf("platform lines:\n%s", lines)
	}
	if n := strings.Count(lines, "Init Duration"); n != 1 {
		t.Errorf("%d REPORT lines with Init Duration, want 1 (the cold start)", n)
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no binary", Options{}, "Binary is required"},
		{"missing binary", Options{Binary: "/nonexistent/bootstrap"}, "no such file"},
		{"directory", Options{Binary: "/"}, "not an executable file"},
		{"negative timeout", Options{Binary: testBootstrap, Timeout: -time.Second}, "must not be negative"},
	}
	for _, tt := range tests {
		if _, err := Start(context.Background(), tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestRuntimeLingeringPastDeadlineIsReset(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	env, _ := startEnv(t, func(o *Options) {
		o.Timeout = timeout
		// The bare loop registers no extension, so shutdown is a SIGKILL.
		o.Env = []string{"RUNTIMEAPI_TEST_INIT=linger:5000", "RUNTIMEAPI_TEST_SIGTERM=off"}
	})
	res, err := env.Invoke(context.Background(), []byte(`{}`))
	if err != nil || string(res.Payload) != "{}" {
		t.Fatalf("first invoke: %+v, %v", res, err)
	}
	// The runtime answered but does not come back to /next: the next event must not wait for it
	// beyond the first invocation's deadline.
	start := time.Now()
	res2, err := env.Invoke(context.Background(), []byte(`{}`))
	elapsed := time.Since(start)
	if err != nil || string(res2.Payload) != "{}" {
		t.Fatalf("second invoke: %+v, %v", res2, err)
	}
	if !res2.ColdStart || env.Launches() != 2 || elapsed > timeout+time.Second {
		t.Errorf("second invoke: ColdStart=%v launches=%d after %v, want a fresh process within about %v",
			res2.ColdStart, env.Launches(), elapsed, timeout)
	}
}

// Reclaim returns once the process is gone: the next invocation is a cold start, never a dying
// process's pending /next.
func TestReclaim(t *testing.T) {
	t.Parallel()
	env, _ := startEnv(t, nil)
	for i := range 20 {
		pid := env.PID()
		if err := env.Reclaim(); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("process %d still there after Reclaim: %v", pid, err)
		}
		if res, _ := invokeOK(t, env, handlerRequest{}); !res.ColdStart || env.Launches() != i+2 {
			t.Fatalf("after reclaim %d: cold start %v, %d launches", i+1, res.ColdStart, env.Launches())
		}
	}
}
