// Command handler is a tiny Lambda function that the runtimeapi tests build and drive. Each event picks
// one behaviour with "action"; the environment picks the init and SIGTERM behaviour:
//
//	RUNTIMEAPI_TEST_INIT     ""            normal init
//	                         "exit"        exit with status 3 before starting the runtime loop
//	                         "init-error"  post to /runtime/init/error, then exit with status 4
//	                         "sleep:<ms>"  sleep during init
//	                         "linger:<ms>" run a bare runtime loop (no aws-lambda-go) that answers {} at
//	                                       once but waits <ms> before asking for the next event
//	RUNTIMEAPI_TEST_SIGTERM  ""            register the SIGTERM extension; on SIGTERM print the marker and exit 0
//	                         "hang"        register it; on SIGTERM print the marker and keep running
//	                         "off"         do not register it (Lambda then sends no SIGTERM)
//	RUNTIMEAPI_TEST_EXT      "shutdown"    also register an extension subscribed to SHUTDOWN and print
//	                                       the event it receives
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// SigtermMarker is printed to stdout when the SIGTERM callback runs; the tests look for it.
const SigtermMarker = "runtimeapi-test: SIGTERM received"

type request struct {
	Action string          `json:"action"`
	Value  json.RawMessage `json:"value,omitempty"`
	Millis int             `json:"ms,omitempty"`
	Code   int             `json:"code,omitempty"`
	Names  []string        `json:"names,omitempty"`
	Size   int             `json:"size,omitempty"`
}

type response struct {
	Action         string            `json:"action"`
	Value          json.RawMessage   `json:"value,omitempty"`
	RequestID      string            `json:"requestId"`
	FunctionArn    string            `json:"functionArn"`
	DeadlineUnixMs int64             `json:"deadlineUnixMs"`
	RemainingMs    int64             `json:"remainingMs"`
	Ticks          int64             `json:"ticks"`
	PID            int               `json:"pid"`
	Env            map[string]string `json:"env,omitempty"`
	Blob           string            `json:"blob,omitempty"`
}

// testError gives the error a distinct type name, which aws-lambda-go reports as errorType.
type testError struct{ msg string }

func (e *testError) Error() string { return e.msg }

// ticks advances every 5 ms in the background, so a test can tell whether the process was stopped.
var ticks atomic.Int64

func handle(ctx context.Context, req request) (response, error) {
	resp := response{Action: req.Action, Value: req.Value, Ticks: ticks.Load(), PID: os.Getpid()}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		resp.RequestID = lc.AwsRequestID
		resp.FunctionArn = lc.InvokedFunctionArn
	}
	if dl, ok := ctx.Deadline(); ok {
		resp.DeadlineUnixMs = dl.UnixMilli()
		resp.RemainingMs = time.Until(dl).Milliseconds()
	}
	switch req.Action {
	case "", "echo", "deadline", "ticks":
		return resp, nil
	case "env":
		resp.Env = make(map[string]string, len(req.Names))
		for _, n := range req.Names {
			if v, ok := os.LookupEnv(n); ok {
				resp.Env[n] = v
			}
		}
		return resp, nil
	case "error":
		return response{}, &testError{msg: "requested failure"}
	case "panic":
		panic("requested panic")
	case "sleep":
		select {
		case <-time.After(time.Duration(req.Millis) * time.Millisecond):
		case <-ctx.Done():
			// Ignore the deadline on purpose: the platform, not the handler, must end a timed-out invoke.
			time.Sleep(time.Duration(req.Millis) * time.Millisecond)
		}
		return resp, nil
	case "exit":
		os.Exit(req.Code)
	case "big":
		resp.Blob = strings.Repeat("x", req.Size)
		return resp, nil
	}
	return response{}, fmt.Errorf("unknown action %q", req.Action)
}

func postInitError(api string) error {
	body := []byte(`{"errorMessage":"requested init failure","errorType":"TestInitError"}`)
	resp, err := http.Post("http://"+api+"/2018-06-01/runtime/init/error", "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post init error: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return errors.New("post init error: status " + resp.Status)
	}
	return nil
}

// ExtensionMarker prefixes the event the SHUTDOWN-subscribed extension receives.
const ExtensionMarker = "runtimeapi-test: extension event: "

// extensionDone is closed once the extension printed its event; the SIGTERM callback waits for it
// (briefly), since here the extension lives in the function's process.
var extensionDone = make(chan struct{})

// registerShutdownExtension registers an extension for SHUTDOWN events and waits for one in the
// background, as an external extension's main loop would.
func registerShutdownExtension(api string) error {
	base := "http://" + api + "/2020-01-01/extension/"
	req, err := http.NewRequest(http.MethodPost, base+"register", strings.NewReader(`{"events":["SHUTDOWN"]}`))
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	req.Header.Set("Lambda-Extension-Name", "runtimeapi-test-extension")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("register: status " + resp.Status)
	}
	id := resp.Header.Get("Lambda-Extension-Identifier")
	go func() {
		req, _ := http.NewRequest(http.MethodGet, base+"event/next", nil)
		req.Header.Set("Lambda-Extension-Identifier", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "extension next:", err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Println(ExtensionMarker + string(body))
		close(extensionDone)
	}()
	return nil
}

// lingerLoop is a minimal runtime that keeps working after each answer, as a runtime with
// post-response work would.
func lingerLoop(api string, linger time.Duration) error {
	base := "http://" + api + "/2018-06-01/runtime/invocation/"
	for {
		resp, err := http.Get(base + "next")
		if err != nil {
			return fmt.Errorf("next: %w", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		post, err := http.Post(base+id+"/response", "application/json", strings.NewReader("{}"))
		if err != nil {
			return fmt.Errorf("response: %w", err)
		}
		post.Body.Close()
		time.Sleep(linger)
	}
}

func main() {
	switch mode := os.Getenv("RUNTIMEAPI_TEST_INIT"); {
	case mode == "exit":
		fmt.Fprintln(os.Stderr, "runtimeapi-test: exiting during init")
		os.Exit(3)
	case mode == "init-error":
		if err := postInitError(os.Getenv("AWS_LAMBDA_RUNTIME_API")); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(4)
	case strings.HasPrefix(mode, "sleep:"):
		ms, _ := strconv.Atoi(strings.TrimPrefix(mode, "sleep:"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
	case strings.HasPrefix(mode, "linger:"):
		ms, _ := strconv.Atoi(strings.TrimPrefix(mode, "linger:"))
		if err := lingerLoop(os.Getenv("AWS_LAMBDA_RUNTIME_API"), time.Duration(ms)*time.Millisecond); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(6)
		}
	}

	if os.Getenv("RUNTIMEAPI_TEST_EXT") == "shutdown" {
		if err := registerShutdownExtension(os.Getenv("AWS_LAMBDA_RUNTIME_API")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(5)
		}
	}

	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		for range t.C {
			ticks.Add(1)
		}
	}()

	var opts []lambda.Option
	switch os.Getenv("RUNTIMEAPI_TEST_SIGTERM") {
	case "off":
	case "hang":
		opts = append(opts, lambda.WithEnableSIGTERM(func() { fmt.Println(SigtermMarker) }))
	default:
		opts = append(opts, lambda.WithEnableSIGTERM(func() {
			fmt.Println(SigtermMarker)
			if os.Getenv("RUNTIMEAPI_TEST_EXT") != "" {
				select {
				case <-extensionDone:
				case <-time.After(300 * time.Millisecond):
				}
			}
			os.Exit(0)
		}))
	}
	lambda.StartWithOptions(handle, opts...)
}
