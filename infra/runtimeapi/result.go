//go:build unix

package runtimeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
)

// Driver is what both execution-environment drivers offer: the in-process Runtime API server (Env) and
// the Runtime Interface Emulator runner (RIE). Tests and benchmarks can take either.
type Driver interface {
	Invoke(ctx context.Context, payload []byte) (Result, error)
	Shutdown(ctx context.Context) (Exit, error)
}

var (
	_ Driver = (*Env)(nil)
	_ Driver = (*RIE)(nil)
)

// Errors returned (wrapped) by Invoke and Start; test with errors.Is. A function error (the handler
// returned an error or panicked) is not among them: it comes back in Result.Error with a nil error, as
// the Lambda Invoke API returns it in the response body.
var (
	// ErrTimeout: the invocation ran past the function timeout. The process was killed, so the next
	// invocation is a cold start.
	ErrTimeout = errors.New("function timed out")
	// ErrProcessExited: the runtime process died while it held an invocation.
	ErrProcessExited = errors.New("runtime process exited")
	// ErrInitFailed: the process exited, posted /runtime/init/error, or did not reach /next in time
	// during the init phase.
	ErrInitFailed = errors.New("init failed")
	// ErrClosed: Shutdown was called.
	ErrClosed = errors.New("execution environment shut down")
	// ErrPayloadTooLarge: the event exceeds Lambda's 6 MB synchronous payload limit.
	ErrPayloadTooLarge = errors.New("request payload too large")
)

// MaxPayloadBytes is Lambda's limit for a synchronous request and for a buffered response (6 MB).
const MaxPayloadBytes = 6 * 1024 * 1024

// Result is one invocation as the caller of the Lambda Invoke API sees it, plus timing.
type Result struct {
	RequestID string
	// Payload is the response body the runtime posted; nil when Error is set.
	Payload []byte
	// Error is the function error: what the runtime posted to /invocation/{id}/error, or the error
	// Lambda itself substitutes (Sandbox.Timedout, Runtime.ExitError).
	Error *FunctionError
	// Duration runs from the event leaving the API to the runtime posting its answer (Lambda's
	// "Duration" in the REPORT line); on a timeout it is the timeout.
	Duration time.Duration
	// ColdStart is true when this invocation was the first served by a fresh process.
	ColdStart bool
	// InitDuration is the init phase of that fresh process (zero when not ColdStart).
	InitDuration time.Duration
}

// FunctionError is the error document of the Runtime API (aws-lambda-go lambda/messages).
type FunctionError struct {
	Message    string       `json:"errorMessage"`
	Type       string       `json:"errorType"`
	StackTrace []StackFrame `json:"stackTrace,omitempty"`
}

// StackFrame is one frame of a FunctionError stack trace.
type StackFrame struct {
	Path  string `json:"path"`
	Line  int32  `json:"line"`
	Label string `json:"label"`
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// parseFunctionError decodes an error document; a body that is not one is kept as the message, so a
// runtime that posts plain text still yields a readable error.
func parseFunctionError(body []byte, typeHint string) *FunctionError {
	var fe FunctionError
	if err := json.Unmarshal(body, &fe); err != nil || (fe.Type == "" && fe.Message == "") {
		fe = FunctionError{Message: strings.TrimSpace(string(body))}
	}
	if fe.Type == "" {
		fe.Type = typeHint
	}
	if fe.Type == "" {
		fe.Type = "Unhandled"
	}
	return &fe
}

// Exit is how a runtime process ended.
type Exit struct {
	// Code is the exit status, or -1 when a signal ended the process.
	Code int
	// Signal is the signal that ended the process, 0 when it exited by itself.
	Signal syscall.Signal
	// Forced is true when the driver had to send SIGKILL: no extension was registered (then Lambda
	// sends no SIGTERM), or the process outlived the grace period after SIGTERM.
	Forced bool
}

func (x Exit) String() string {
	if x.Signal != 0 {
		return "signal: " + x.Signal.String()
	}
	return fmt.Sprintf("exit status %d", x.Code)
}
