package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Config is one `make bench` run.
type Config struct {
	ServiceURL string // the local broker
	AdminURL   string
	PulsarHome string // for pulsar-perf

	Bootstrap       string // the function built for this host, as Lambda builds it
	LambdaBootstrap string // the arm64 build of `make build`, for its size
	Repo            string // repository root
	RunDir          string // the local stack's run directory (pid files), to tell the broker's CPU apart
	Scratch         string // .cache/bench/: logs and temporary files
	Self            string // this program, re-executed for the in-process RSS child
	Command         string // how the run was started, for the report

	MaxLoad float64       // wait for the 1-minute load to fall below this before measuring
	Wait    time.Duration // for at most this long

	Matrix      MatrixOptions
	PerfSeconds int // per pulsar-perf run; 0 skips pulsar-perf
	ColdRuns    int
	CostPeriod  time.Duration // CFS period of the CPU quota
	CostMemory  []int         // memory sizes of the cost runs
	// Phases to run (throughput, perf, cold, memory, size, cost); empty runs all.
	Phases []string
	// FunctionEnv is added to the bootstrap's environment (experiments: GOMEMLIMIT, GOGC).
	FunctionEnv []string
	// DeliverableOnly limits the throughput matrix to the batches Lambda can deliver (experiments).
	DeliverableOnly bool
	// FunctionLog receives every bootstrap's log lines (stderr); nil discards them.
	FunctionLog io.Writer    `json:"-"`
	Progress    func(string) `json:"-"`
}

// Report is everything one run measured.
type Report struct {
	Config   Config
	RunID    string
	Started  time.Time
	Finished time.Time
	Machine  Machine
	Pulsar   string
	Java     string

	Quiet  bool // the load fell below MaxLoad before measuring
	Loads  []PhaseLoad
	CPU    []*PhaseCPU // who used the CPU during each phase
	Cells  []*Cell
	Perf   []PerfResult
	Cold   []ColdRun // straight to the broker
	ColdPx []ColdRun // through the timing proxy
	RSS    []RSSResult
	Size   SizeResult
	Cost   []CostPoint
	Notes  []string // what could not be measured, and why
}

// PhaseLoad is the machine's load when a phase began.
type PhaseLoad struct {
	Phase string
	Load  Load
}

// Run measures everything, in this order: throughput matrix, pulsar-perf, cold start, memory, binary
// size, cost. Topics it created are deleted at the end.
func Run(ctx context.Context, c Config) (*Report, error) {
	if c.Progress == nil {
		c.Progress = func(string) {}
	}
	progress := c.Progress
	r := &Report{Config: c, RunID: runID(), Machine: DescribeMachine(), Java: JavaVersion()}
	r.Pulsar = PulsarVersion(ctx, c.AdminURL)
	topic := func(name string) string { return "persistent://public/default/bench-" + r.RunID + "-" + name }
	var topics []string
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, t := range topics {
			if err := DeleteTopic(ctx, c.AdminURL, t); err != nil {
				progress("warning: " + err.Error())
			}
		}
	}()
	newTopic := func(name string) string {
		t := topic(name)
		topics = append(topics, t)
		return t
	}

	load, quiet, err := WaitQuiet(ctx, c.MaxLoad, c.Wait, progress)
	if err != nil {
		return r, err
	}
	r.Quiet = quiet
	if !quiet {
		r.Notes = append(r.Notes, fmt.Sprintf("The machine did not get quiet: the 1-minute load stayed at or above %.2f for the whole %s wait (%s).", c.MaxLoad, c.Wait, load))
	}
	r.Started = time.Now()
	mon := StartMonitor(BrokerPID(c.RunDir), 2*time.Second)
	defer func() {
		if r.CPU == nil {
			r.CPU = mon.Stop()
		}
	}()
	phase := func(name string) {
		l, err := SampleLoad(time.Second)
		if err == nil {
			r.Loads = append(r.Loads, PhaseLoad{name, l})
			progress(fmt.Sprintf("== %s (%s)", name, l))
		}
		mon.Phase(name)
	}

	// Throughput, three ways.
	if c.runs("throughput") {
		phase("throughput")
		pubs, err := startPublishers(ctx, c, newTopic)
		if err != nil {
			return r, err
		}
		for _, w := range Matrix() {
			if c.DeliverableOnly && !fits(w) {
				continue
			}
			cell, err := RunCell(ctx, pubs.Publishers, w, c.Matrix)
			if err != nil {
				pubs.close()
				return r, err
			}
			r.Cells = append(r.Cells, cell)
		}
		pubs.close()
	}

	if c.PerfSeconds > 0 && c.runs("perf") {
		phase("pulsar-perf")
		for _, size := range []int{100, 1024, 10 * 1024} {
			p, err := PulsarPerf(ctx, c.PulsarHome, c.ServiceURL, newTopic(fmt.Sprintf("perf-%d", size)), c.Scratch, size, c.PerfSeconds)
			if err != nil {
				r.Notes = append(r.Notes, "pulsar-perf did not run: "+err.Error())
				break
			}
			progress(fmt.Sprintf("pulsar-perf %s: %.0f rec/s, %.1f MB/s", bytesLabel(size), p.RecPerS, p.MbitPerS/8))
			r.Perf = append(r.Perf, p)
		}
	}

	if c.runs("cold") {
		phase("cold start")
		if err := r.coldStart(ctx, newTopic("cold")); err != nil {
			return r, err
		}
	}

	if c.runs("memory") {
		phase("memory")
		if err := r.memory(ctx, newTopic("rss")); err != nil {
			return r, err
		}
	}

	if c.runs("size") {
		phase("binary size")
		if r.Size, err = BinarySize(ctx, c.LambdaBootstrap, c.Repo, c.Scratch); err != nil {
			return r, err
		}
		progress(fmt.Sprintf("arm64 bootstrap: %.1f MiB (zipped %.1f MiB)", float64(r.Size.Bytes)/(1<<20), float64(r.Size.Zipped)/(1<<20)))
	}

	if c.runs("cost") {
		phase("cost")
		if err := r.cost(ctx, newTopic("cost")); err != nil {
			if !errors.Is(err, errNoCgroup) {
				return r, err
			}
			r.Notes = append(r.Notes, "The CPU share of small memory sizes could not be enforced ("+err.Error()+"); the cost section has no figures.")
		}
	}
	phase("end")
	r.CPU = mon.Stop()
	r.Finished = time.Now()
	return r, nil
}

func (c Config) runs(phase string) bool {
	return len(c.Phases) == 0 || slices.Contains(c.Phases, phase)
}

// function returns the options of a bootstrap run on topic.
func (c Config) function(topic string) FunctionOptions {
	return FunctionOptions{Binary: c.Bootstrap, ServiceURL: c.ServiceURL, Topic: topic, Env: c.FunctionEnv, Stderr: c.FunctionLog}
}

type publishers struct {
	Publishers
}

func (p publishers) close() {
	p.Ceiling.Close()
	p.Handler.Close()
	if p.Function != nil {
		_ = p.Function.Close()
	}
}

func startPublishers(ctx context.Context, c Config, newTopic func(string) string) (publishers, error) {
	var p publishers
	var err error
	if p.Ceiling, err = NewCeiling(c.ServiceURL, newTopic("ceiling")); err != nil {
		return p, err
	}
	if p.Handler, err = NewHandler(c.ServiceURL, newTopic("handler")); err != nil {
		return p, err
	}
	if p.Function, err = StartFunction(ctx, c.function(newTopic("bootstrap"))); err != nil {
		return p, err
	}
	return p, nil
}

func (r *Report) coldStart(ctx context.Context, topic string) error {
	c := r.Config
	payload, _, err := EventJSON(Workload{Records: 1, Size: 1024}.Event())
	if err != nil {
		return err
	}
	// The topic exists before the first measured run: a cold function, not a cold broker.
	f, err := StartFunction(ctx, c.function(topic))
	if err != nil {
		return err
	}
	_, err = f.Invoke(ctx, payload)
	_ = f.Close()
	if err != nil {
		return err
	}
	r.Cold, r.ColdPx, err = ColdStarts(ctx, ColdOptions{Function: c.function(topic), Payload: payload, Runs: c.ColdRuns})
	if err != nil {
		return err
	}
	c.Progress(fmt.Sprintf("cold start: process start to first receipt %.0f ms (through the proxy), to the response %.0f ms (direct); init %.0f ms",
		Median(Millis(pick(r.ColdPx, func(x ColdRun) time.Duration { return x.FirstReceipt }))),
		Median(Millis(pick(r.Cold, func(x ColdRun) time.Duration { return x.Response }))),
		Median(Millis(pick(r.Cold, func(x ColdRun) time.Duration { return x.Init })))))
	return nil
}

func (r *Report) memory(ctx context.Context, topic string) error {
	c := r.Config
	fo := c.function(topic)
	fo.MemoryMB = 128
	for _, w := range []Workload{LargeBatch(), MaxBatch(1024), {Name: "1,000 x 1 KiB", Records: 1000, Size: 1024}} {
		payload, ok, err := EventJSON(w.Event())
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("memory: %s: event of %d bytes over the limit", w.Name, len(payload))
		}
		res, err := BootstrapRSS(ctx, fo, w, payload, rssInvocations)
		if err != nil {
			return fmt.Errorf("memory, %s: %w", w.Name, err)
		}
		r.RSS = append(r.RSS, res)
		c.Progress(fmt.Sprintf("peak RSS %-34s %5.1f MiB after 1, %5.1f MiB after %d invocations", w.Name,
			float64(res.PeakFirst)/(1<<20), float64(res.PeakLast)/(1<<20), res.Invocations))
	}
	w := Workload{Name: "10,000 x 1 KiB", Records: 10000, Size: 1024}
	res, err := ChildRSS(ctx, c.Self, c.ServiceURL, topic, w, rssInvocations, c.FunctionEnv)
	if err != nil {
		return err
	}
	res.Note = fmt.Sprintf("event of %.1f MB: over Lambda's 6 MB limit, so measured in a child process that decodes the JSON and runs the handler in process", float64(res.EventBytes)/1e6)
	r.RSS = append(r.RSS, res)
	c.Progress(fmt.Sprintf("peak RSS %-34s %5.1f MiB after 1, %5.1f MiB after %d invocations (in process)", w.Name,
		float64(res.PeakFirst)/(1<<20), float64(res.PeakLast)/(1<<20), res.Invocations))
	return nil
}

// rssInvocations: Lambda reports the peak over an environment's life, and garbage of earlier batches
// can still be resident when the next arrives.
const rssInvocations = 10

// MaxBatch is the largest batch of records of size bytes whose event fits Lambda's 6 MB payload.
func MaxBatch(size int) Workload {
	w := Workload{Records: eventBudget() / (recordOverhead() + base64Len(size)), Size: size}
	// Records differ by a few bytes (arrival times are printed with as few digits as they need):
	// settle the estimate on real events.
	for w.Records > 1 && !fits(w) {
		w.Records--
	}
	for {
		next := w
		next.Records++
		if !fits(next) {
			break
		}
		w = next
	}
	w.Name = fmt.Sprintf("%s x %s (largest in 6 MB)", count(w.Records), bytesLabel(size))
	return w
}

func fits(w Workload) bool {
	_, ok, err := EventJSON(w.Event())
	return err == nil && ok
}

func (r *Report) cost(ctx context.Context, topic string) error {
	c := r.Config
	ws := []Workload{{Name: "100 x 1 KiB", Records: 100, Size: 1024}, {Name: "1,000 x 1 KiB", Records: 1000, Size: 1024}, MaxBatch(1024)}
	var payloads [][]byte
	for _, w := range ws {
		p, _, err := EventJSON(w.Event())
		if err != nil {
			return err
		}
		payloads = append(payloads, p)
	}
	points, err := CostRuns(ctx, CostOptions{
		Function: FunctionOptions{Binary: c.Bootstrap, ServiceURL: c.ServiceURL, Topic: topic},
		MemoryMB: c.CostMemory, Workloads: ws, Payloads: payloads,
		Invocations: 10, MinTime: time.Second, Period: c.CostPeriod,
	})
	r.Cost = points
	for _, p := range points {
		c.Progress(fmt.Sprintf("cost %5d MB %-34s mean %7.1f ms  cpu %6.1f ms  $%.5f per million records  peak RSS %.0f MiB",
			p.MemoryMB, p.Workload.Name, p.MeanBilledMS(), float64(p.CPU)/float64(time.Millisecond), p.USDPerMillionRecords(), float64(p.PeakRSS)/(1<<20)))
	}
	return err
}

func pick[T any](xs []T, f func(T) time.Duration) []time.Duration {
	out := make([]time.Duration, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

func runID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102t150405") + "-" + hex.EncodeToString(b)
}

// Scratch returns dir, created.
func Scratch(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("scratch dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("scratch dir: %w", err)
	}
	return abs, nil
}
