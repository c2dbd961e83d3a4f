//go:build unix

package runtimeapi

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Options describe one function and how to run it. Zero values take Lambda's defaults.
type Options struct {
	// Binary is the path of the compiled bootstrap. Required.
	Binary string
	// Env holds extra KEY=value variables (the function's configured environment, credentials,
	// endpoints). They override the defaults below, except AWS_LAMBDA_RUNTIME_API.
	Env []string
	// InheritEnv passes this process's whole environment first (everything else still overrides it).
	// Off by default: a test should state what the function sees.
	InheritEnv bool

	FunctionName string        // default "function"
	MemoryMB     int           // AWS_LAMBDA_FUNCTION_MEMORY_SIZE; default 128 (Lambda's default)
	Timeout      time.Duration // function timeout; default 3 s (Lambda's default)
	// InitTimeout bounds the init phase; default 10 s, Lambda's limit for on-demand functions.
	InitTimeout time.Duration
	// ShutdownGrace is the time between SIGTERM and SIGKILL; default 500 ms, what Lambda gives a
	// runtime with an internal extension.
	ShutdownGrace time.Duration
	// Region sets AWS_REGION and AWS_DEFAULT_REGION; default: this process's AWS_REGION, then
	// AWS_DEFAULT_REGION, then us-east-1.
	Region string
	// AccountID is used in the invoked function ARN; default 123456789012.
	AccountID string

	// Stdout and Stderr receive the function's output; nil discards it.
	Stdout, Stderr io.Writer
	// Platform, when set, receives Lambda's START, END and REPORT lines (Env only; the RIE prints its
	// own to Stdout). It costs a /proc read per invocation for "Max Memory Used".
	Platform io.Writer
	// FreezeBetweenInvokes stops the process (SIGSTOP) whenever it waits in /next with no invocation
	// pending, and resumes it (SIGCONT) for the next one, as Lambda freezes idle environments. Env only.
	FreezeBetweenInvokes bool
}

const (
	defaultFunctionName = "function"
	defaultMemoryMB     = 128
	defaultTimeout      = 3 * time.Second
	defaultInitTimeout  = 10 * time.Second
	defaultGrace        = 500 * time.Millisecond
	defaultAccountID    = "123456789012"
	functionVersion     = "$LATEST"
)

func (o Options) withDefaults() (Options, error) {
	if o.Binary == "" {
		return o, errors.New("options: Binary is required")
	}
	abs, err := filepath.Abs(o.Binary)
	if err != nil {
		return o, fmt.Errorf("options: resolve binary %q: %w", o.Binary, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return o, fmt.Errorf("options: binary: %w", err)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return o, fmt.Errorf("options: binary %s is not an executable file", abs)
	}
	o.Binary = abs
	if o.FunctionName == "" {
		o.FunctionName = defaultFunctionName
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = defaultMemoryMB
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	if o.InitTimeout == 0 {
		o.InitTimeout = defaultInitTimeout
	}
	if o.ShutdownGrace == 0 {
		o.ShutdownGrace = defaultGrace
	}
	if o.MemoryMB < 0 || o.Timeout < 0 || o.InitTimeout < 0 || o.ShutdownGrace < 0 {
		return o, errors.New("options: MemoryMB, Timeout, InitTimeout and ShutdownGrace must not be negative")
	}
	if o.Region == "" {
		o.Region = os.Getenv("AWS_REGION")
	}
	if o.Region == "" {
		o.Region = os.Getenv("AWS_DEFAULT_REGION")
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.AccountID == "" {
		o.AccountID = defaultAccountID
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	return o, nil
}

func (o Options) functionARN() string {
	return "arn:aws:lambda:" + o.Region + ":" + o.AccountID + ":function:" + o.FunctionName
}

// childEnv is the environment Lambda gives a provided.al2023 function, without AWS_LAMBDA_RUNTIME_API
// (which belongs to each process). Later entries win (os/exec keeps the last of duplicate keys).
func (o Options) childEnv() []string {
	var env []string
	if o.InheritEnv {
		env = append(env, os.Environ()...)
	}
	env = append(env,
		"AWS_LAMBDA_FUNCTION_NAME="+o.FunctionName,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(o.MemoryMB),
		"AWS_LAMBDA_FUNCTION_VERSION="+functionVersion,
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+o.FunctionName,
		"AWS_LAMBDA_LOG_STREAM_NAME="+logStreamName(),
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_REGION="+o.Region,
		"AWS_DEFAULT_REGION="+o.Region,
		// Not a variable Lambda sets, but what it means is true there: a function has no instance
		// metadata service. Without it, an SDK missing credentials here would ask this host's IMDS.
		"AWS_EC2_METADATA_DISABLED=true",
		"_HANDLER=bootstrap",
		"LAMBDA_TASK_ROOT="+filepath.Dir(o.Binary),
		"LAMBDA_RUNTIME_DIR=/var/runtime",
		"TZ=:UTC",
		"LANG=en_US.UTF-8",
		"PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin",
	)
	return append(env, o.Env...)
}

// logStreamName has Lambda's shape: date/[version]32 hex digits.
func logStreamName() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("2006/01/02") + "/[" + functionVersion + "]" + hex.EncodeToString(b[:])
}

// newRequestID returns a random (version 4) UUID, the shape of Lambda's request ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// newTraceID returns an X-Ray trace header of the shape Lambda passes (not sampled).
func newTraceID(now time.Time) string {
	return fmt.Sprintf("Root=1-%08x-%012x%012x;Parent=%016x;Sampled=0",
		now.Unix(), mrand.Uint64()&0xffffffffffff, mrand.Uint64()&0xffffffffffff, mrand.Uint64())
}
