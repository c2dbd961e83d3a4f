package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/streambridge/kinesis-pulsar/internal/eventjson"
)

// RSSResult is the peak resident set of one process that handled a batch.
type RSSResult struct {
	Workload    Workload
	EventBytes  int
	Invocations int
	PeakFirst   int64 // after the first invocation
	PeakLast    int64 // after the last one (garbage of earlier batches may still be live)
	InProcess   bool  // measured in a child process running the handler, not the bootstrap
	Note        string
}

// BootstrapRSS starts a fresh bootstrap, sends payload n times and reads its peak RSS (VmHWM).
func BootstrapRSS(ctx context.Context, o FunctionOptions, w Workload, payload []byte, n int) (RSSResult, error) {
	f, err := StartFunction(ctx, o)
	if err != nil {
		return RSSResult{}, err
	}
	defer func() { _ = f.Close() }()
	r := RSSResult{Workload: w, EventBytes: len(payload), Invocations: n}
	for i := 0; i < n; i++ {
		if _, err := f.Invoke(ctx, payload); err != nil {
			return r, err
		}
		peak, err := f.Env.PeakRSS()
		if err != nil {
			return r, err
		}
		if i == 0 {
			r.PeakFirst = peak
		}
		r.PeakLast = peak
	}
	return r, nil
}

// ChildRSS runs `<self> rss-child` for a batch Lambda cannot deliver (its event exceeds 6 MB): a fresh
// process holds the event's JSON as the runtime would, decodes it and runs the handler (the function's
// wiring, in process) n times, then reports its peak RSS.
func ChildRSS(ctx context.Context, self, serviceURL, topic string, w Workload, n int, env []string) (RSSResult, error) {
	cmd := exec.CommandContext(ctx, self, "rss-child",
		"-service-url", serviceURL, "-topic", topic,
		"-records", strconv.Itoa(w.Records), "-size", strconv.Itoa(w.Size), "-invocations", strconv.Itoa(n))
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return RSSResult{}, fmt.Errorf("rss child: %w", err)
	}
	var r RSSResult
	if err := json.Unmarshal(out, &r); err != nil {
		return RSSResult{}, fmt.Errorf("rss child output %q: %w", out, err)
	}
	r.Workload = w
	r.InProcess = true
	return r, nil
}

// RSSChild is the body of `bench rss-child`: see ChildRSS. It writes an RSSResult as JSON to stdout.
func RSSChild(ctx context.Context, serviceURL, topic string, w Workload, n int) (RSSResult, error) {
	payload, err := json.Marshal(w.Event())
	if err != nil {
		return RSSResult{}, fmt.Errorf("marshal event: %w", err)
	}
	h, err := NewHandler(serviceURL, topic)
	if err != nil {
		return RSSResult{}, err
	}
	defer h.Close()
	// Only the JSON is left of building the event: from here on the process holds what the bootstrap
	// would, so start the high-water mark again at the current resident set.
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return RSSResult{}, fmt.Errorf("reset the peak RSS: %w", err)
	}
	r := RSSResult{EventBytes: len(payload), Invocations: n}
	for i := 0; i < n; i++ {
		ev, err := eventjson.Decode(payload) // as the function decodes it
		if err != nil {
			return r, fmt.Errorf("decode event: %w", err)
		}
		runCtx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err = h.Run(runCtx, ev)
		cancel()
		if err != nil {
			return r, err
		}
		peak, err := readSelfHWM()
		if err != nil {
			return r, err
		}
		if i == 0 {
			r.PeakFirst = peak
		}
		r.PeakLast = peak
	}
	return r, nil
}

func readSelfHWM() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read /proc/self/status: %w", err)
	}
	_, rest, ok := bytes.Cut(b, []byte("\nVmHWM:"))
	if !ok {
		return 0, fmt.Errorf("no VmHWM in /proc/self/status")
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(line), []byte("kB")))), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse VmHWM %q: %w", line, err)
	}
	return kb * 1024, nil
}

// hostPortOf returns host:port of a pulsar:// URL.
func hostPortOf(serviceURL string) (string, error) {
	u, err := url.Parse(serviceURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("service URL %q: not a pulsar://host:port URL", serviceURL)
	}
	if u.Port() == "" {
		return u.Host + ":6650", nil
	}
	return u.Host, nil
}
