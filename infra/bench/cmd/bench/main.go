// Command bench runs the benchmarks of issue 8 against the local stack and writes docs/benchmarks.md
// and docs/benchmarks.png. `make bench` builds what it needs and runs it; see infra/bench/bench.mk.
//
//	bench [flags]                      measure and write the report
//	bench rss-child [flags]            (internal) peak RSS of the handler in a fresh process
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/streambridge/kinesis-pulsar/infra/bench"
	"github.com/streambridge/kinesis-pulsar/infra/localenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "rss-child" {
		err = rssChild(ctx, os.Args[2:])
	} else {
		err = run(ctx, os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap", ".cache/bench/host/bootstrap", "the function built for this host with the Lambda build flags")
	lambdaBootstrap := fs.String("lambda-bootstrap", "bin/kinesis-to-pulsar/bootstrap", "the arm64 bootstrap of `make build`")
	doc := fs.String("doc", "docs/benchmarks.md", "report to write")
	chart := fs.String("chart", "docs/benchmarks.png", "chart to write")
	scratch := fs.String("scratch", ".cache/bench", "directory for logs and temporary files")
	maxLoad := fs.Float64("max-load", 0.7, "wait until the 1-minute load average is below this")
	wait := fs.Duration("wait", 2*time.Minute, "wait at most this long for a quiet machine, then measure anyway (and say so)")
	quick := fs.Bool("quick", false, "fewer rounds and runs: a smoke test, not a measurement")
	command := fs.String("command", "make bench", "the command to name in the report")
	costMemory := fs.String("cost-memory", "128,256,512,1024,1769", "memory sizes (MB) of the cost runs")
	costPeriod := fs.Duration("cost-period", 100*time.Millisecond, "CFS period of the CPU quota of the cost runs")
	phases := fs.String("phases", "", "comma list of the phases to run: throughput, perf, cold, memory, size, cost (default all)")
	deliverableOnly := fs.Bool("deliverable-only", false, "throughput: only the batches Lambda can deliver (experiments)")
	var fenv multiFlag
	fs.Var(&fenv, "function-env", "KEY=VALUE added to the bootstrap's environment (repeatable; for experiments such as GOMEMLIMIT)")
	render := fs.String("render", "", "write the report and chart again from the raw results of an earlier run (.cache/bench/bench-<run>.json), without measuring")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *render != "" {
		raw, err := os.ReadFile(*render)
		if err != nil {
			return fmt.Errorf("-render: %w", err)
		}
		var r bench.Report
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("-render %s: %w", *render, err)
		}
		return output(&r, *doc, *chart, filepath.Dir(*render), false)
	}
	// Only the broker is needed: the variables are read here rather than by localenv.Load, which
	// requires the whole stack.
	env := localenv.Env{PulsarServiceURL: os.Getenv("PULSAR_SERVICE_URL"), PulsarAdminURL: os.Getenv("PULSAR_ADMIN_URL"),
		PulsarHome: os.Getenv("PULSAR_HOME")}
	if env.PulsarServiceURL == "" || env.PulsarAdminURL == "" || env.PulsarHome == "" {
		return errors.New("PULSAR_SERVICE_URL, PULSAR_ADMIN_URL and PULSAR_HOME must be set: run `make bench`, or export .cache/run/env (set -a; . .cache/run/env; set +a)")
	}
	if _, err := bench.PulsarVersionErr(ctx, env.PulsarAdminURL); err != nil {
		return fmt.Errorf("the local broker does not answer: %w", err)
	}
	repo, err := localenv.RepoRoot()
	if err != nil {
		return err
	}
	scratchDir, err := bench.Scratch(*scratch)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("own path: %w", err)
	}
	var mems []int
	for _, s := range strings.Split(*costMemory, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 128 {
			return fmt.Errorf("-cost-memory: %q is not a memory size in MB", s)
		}
		mems = append(mems, n)
	}
	runDir := filepath.Join(repo, ".cache", "run")
	if d := os.Getenv("KP_CACHE_DIR"); d != "" {
		runDir = filepath.Join(d, "run")
	}
	cfg := bench.Config{
		ServiceURL: env.PulsarServiceURL, AdminURL: env.PulsarAdminURL, PulsarHome: env.PulsarHome,
		Bootstrap: abs(*bootstrap), LambdaBootstrap: abs(*lambdaBootstrap), Repo: repo, RunDir: runDir, Scratch: scratchDir, Self: self,
		Command: *command, MaxLoad: *maxLoad, Wait: *wait,
		Matrix:      bench.MatrixOptions{MinRounds: 7, MaxRounds: 200, Budget: 6 * time.Second},
		PerfSeconds: 6, ColdRuns: 15, CostPeriod: *costPeriod, CostMemory: mems,
		Progress: func(s string) { fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), s) },
	}
	cfg.Matrix.Progress = cfg.Progress
	cfg.FunctionEnv = fenv
	cfg.DeliverableOnly = *deliverableOnly
	if *phases != "" {
		cfg.Phases = strings.Split(*phases, ",")
	}
	if *quick {
		cfg.Matrix = bench.MatrixOptions{MinRounds: 2, MaxRounds: 3, Budget: 0, Progress: cfg.Progress}
		cfg.PerfSeconds, cfg.ColdRuns = 2, 3
	}
	logFile, err := os.Create(filepath.Join(scratchDir, "bootstrap-stderr.log"))
	if err != nil {
		return fmt.Errorf("bootstrap log: %w", err)
	}
	defer logFile.Close()
	cfg.FunctionLog = &localenv.LockedWriter{W: logFile}
	r, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	return output(r, *doc, *chart, scratchDir, true)
}

// output prints the summary and writes the chart, the report and (for a new run) the raw results.
func output(r *bench.Report, doc, chart, scratch string, raw bool) error {
	r.Summary(os.Stdout)
	if len(r.Cells) == 0 {
		return writeReport(r, doc, "", scratch, raw)
	}
	var png bytes.Buffer
	if err := bench.Chart(&png, "Records per second: function vs broker ceiling",
		fmt.Sprintf("%s, %d cores; Pulsar %s standalone on the same machine; medians over rounds; %% = share of the ceiling in the same round", r.Machine.CPU, r.Machine.Cores, r.Pulsar),
		panels(r)); err != nil {
		return err
	}
	if err := os.WriteFile(chart, png.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	rel, err := filepath.Rel(filepath.Dir(abs(doc)), abs(chart))
	if err != nil {
		rel = chart
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", chart)
	return writeReport(r, doc, rel, scratch, raw)
}

// writeReport writes the markdown report and the raw results (JSON, in the scratch directory).
func writeReport(r *bench.Report, doc, chart, scratch string, writeRaw bool) error {
	var md bytes.Buffer
	r.Markdown(&md, chart)
	if err := os.WriteFile(doc, md.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if !writeRaw {
		fmt.Fprintf(os.Stderr, "wrote %s\n", doc)
		return nil
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(scratch, "bench-"+r.RunID+".json"), raw, 0o644)
	}
	if err != nil {
		return fmt.Errorf("write raw results: %w", err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s and %s\n", doc, filepath.Join(scratch, "bench-"+r.RunID+".json"))
	return nil
}

// panels groups the matrix by record size (records/s), plus the 6 MB event (MB/s). The labels are the
// medians of the per-round ratios to the ceiling, as in the report's table.
func panels(r *bench.Report) []bench.ChartPanel {
	var ps []bench.ChartPanel
	for _, size := range []int{100, 1024, 10 * 1024} {
		p := bench.ChartPanel{Title: "records of " + label(size), Unit: "records/s", Note: "records per batch; n/a: event over 6 MB"}
		for _, c := range r.Cells {
			if c.Workload.Size != size || c.Workload.Large {
				continue
			}
			p.Groups = append(p.Groups, thousands(c.Workload.Records))
			p.Values = append(p.Values, values(c, c.RecordsPerSecond))
			p.Labels = append(p.Labels, labels(c))
		}
		if len(p.Groups) > 0 {
			ps = append(ps, p)
		}
	}
	for _, c := range r.Cells {
		if c.Workload.Large {
			ps = append(ps, bench.ChartPanel{Title: "6 MB event of 1 MiB records", Unit: "MB/s", Note: "records per batch",
				Groups: []string{fmt.Sprint(c.Workload.Records)}, Values: [][3]float64{values(c, c.MBPerSecond)},
				Labels: [][3]string{labels(c)}})
		}
	}
	return ps
}

func values(c *bench.Cell, f func(bench.Mode) float64) [3]float64 {
	v := [3]float64{f(bench.ModeCeiling), f(bench.ModeHandler), math.NaN()}
	if c.Deliverable {
		v[bench.ModeBootstrap] = f(bench.ModeBootstrap)
	}
	return v
}

func labels(c *bench.Cell) [3]string {
	l := [3]string{"", fmt.Sprintf("%.0f%%", 100*c.Ratio(bench.ModeHandler)), ""}
	if c.Deliverable {
		l[bench.ModeBootstrap] = fmt.Sprintf("%.0f%%", 100*c.Ratio(bench.ModeBootstrap))
	}
	return l
}

func thousands(n int) string {
	if n >= 1000 {
		return fmt.Sprintf("%d,%03d", n/1000, n%1000)
	}
	return fmt.Sprint(n)
}

func label(size int) string {
	if size >= 1024 {
		return fmt.Sprintf("%d KiB", size/1024)
	}
	return fmt.Sprintf("%d B", size)
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func rssChild(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rss-child", flag.ContinueOnError)
	serviceURL := fs.String("service-url", "", "broker")
	topic := fs.String("topic", "", "topic")
	records := fs.Int("records", 10000, "records per batch")
	size := fs.Int("size", 1024, "payload bytes per record")
	n := fs.Int("invocations", 5, "batches")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, err := bench.RSSChild(ctx, *serviceURL, *topic, bench.Workload{Records: *records, Size: *size}, *n)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}
