package runtimeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// RunTests is a TestMain for packages that test the real binary: it builds pkg with Build into a
// temporary directory, sets *bootstrap to its path, runs the tests, removes the directory and exits
// with the tests' status.
func RunTests(m *testing.M, pkg string, bootstrap *string) {
	dir, err := os.MkdirTemp("", "bootstrap-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *bootstrap, err = Build(context.Background(), pkg, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// Build compiles the main package pkg (a path as `go build` takes it) for this host as the provided
// runtimes need it — static, without the net/rpc shim — into dir/bootstrap, and returns that path.
func Build(ctx context.Context, pkg, dir string) (string, error) {
	out := filepath.Join(dir, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %w\n%s", pkg, err, msg)
	}
	return out, nil
}

// Output collects what a function writes to stdout or stderr. os/exec copies the child's output on
// goroutines of its own, so the writes are concurrent, and a line may arrive just after the invocation
// that wrote it returned.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Reset forgets what was written.
func (o *Output) Reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Reset()
}

// Lines returns the non-empty lines written so far, trimmed.
func (o *Output) Lines() []string {
	var out []string
	for _, line := range strings.Split(o.String(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// JSON returns the lines that are JSON objects with the given "msg" (slog's message key); msg ""
// returns every JSON object line.
func (o *Output) JSON(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range o.Lines() {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if msg == "" || m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}
