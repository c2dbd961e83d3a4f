package bench

import (
	_ "embed"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// notes is the hand-written part of docs/benchmarks.md: method, profile findings, changes made.
//
//go:embed notes.md
var notes string

// Target is one of issue 8's goals and what this run measured for it.
type Target struct {
	Goal     string
	Measured string
	Reached  bool
}

// Targets evaluates the goals against the run.
func (r *Report) Targets() []Target {
	var ts []Target
	if c := r.cell(10000, 1024); c != nil {
		ratio := c.Ratio(ModeHandler)
		lo, hi := c.RatioIQR(ModeHandler)
		ts = append(ts, Target{"handler >= 90% of the bare-producer ceiling at 10,000 x 1 KiB",
			fmt.Sprintf("%.1f%% (%.0f vs %.0f records/s; per-round IQR %.0f-%.0f%%, %d rounds)", 100*ratio,
				c.RecordsPerSecond(ModeHandler), c.RecordsPerSecond(ModeCeiling), 100*lo, 100*hi, c.Rounds()), ratio >= 0.9})
	}
	var over []string
	worst, n := 0.0, 0
	for _, c := range r.Cells {
		if !c.Deliverable || c.Workload.Large {
			continue
		}
		n++
		o := c.BootstrapOverhead()
		worst = math.Max(worst, o)
		if o >= 0.05 {
			over = append(over, fmt.Sprintf("%s +%.1f%%", c.Workload.Name, 100*o))
		}
	}
	if n > 0 {
		m := fmt.Sprintf("worst +%.1f%% over %d batch shapes (the extra is the event crossing the Runtime API and its decoding: see below)", 100*worst, n)
		if len(over) > 0 {
			m += "; at or above 5%: " + strings.Join(over, ", ")
		}
		ts = append(ts, Target{"bootstrap overhead < 5% over the in-process handler (batches of 100 B to 10 KiB records)", m, len(over) == 0})
	}
	for _, c := range r.Cells {
		if c.Workload.Large && c.Deliverable {
			o := c.BootstrapOverhead()
			ts = append(ts, Target{"bootstrap overhead < 5%, 6 MB event of large records (JSON and base64 decoding of 6 MB)",
				fmt.Sprintf("+%.1f%%", 100*o), o < 0.05})
		}
	}
	for _, x := range r.RSS {
		if x.Workload.Large {
			peak := float64(x.PeakLast) / (1 << 20)
			ts = append(ts, Target{"peak RSS < 100 MB for a 6 MB batch",
				fmt.Sprintf("%.1f MB (%.1f MiB) after %d invocations, %.1f MB after the first", float64(x.PeakLast)/1e6, peak,
					x.Invocations, float64(x.PeakFirst)/1e6), float64(x.PeakLast) < 100e6})
		}
	}
	if len(r.ColdPx) > 0 {
		rec := Median(Millis(pick(r.ColdPx, func(x ColdRun) time.Duration { return x.FirstReceipt })))
		resp := Median(Millis(pick(r.Cold, func(x ColdRun) time.Duration { return x.Response })))
		ts = append(ts, Target{"cold start to first confirmed publish < 300 ms (local broker)",
			fmt.Sprintf("%.0f ms to the first receipt (through the timing proxy), %.0f ms to the response (direct), medians of %d", rec, resp, len(r.Cold)),
			rec < 300 && resp < 300})
	}
	return ts
}

func (r *Report) cell(records, size int) *Cell {
	for _, c := range r.Cells {
		if c.Workload.Records == records && c.Workload.Size == size {
			return c
		}
	}
	return nil
}

// Summary writes the console table.
func (r *Report) Summary(w io.Writer) {
	fmt.Fprintf(w, "\n%-36s %6s %10s %10s %7s %10s %7s %9s\n", "batch", "rounds", "ceiling/s", "handler/s", "ratio", "bootstr/s", "ratio", "overhead")
	for _, c := range r.Cells {
		line := fmt.Sprintf("%-36s %6d %10.0f %10.0f %6.1f%%", c.Workload.Name, c.Rounds(),
			c.RecordsPerSecond(ModeCeiling), c.RecordsPerSecond(ModeHandler), 100*c.Ratio(ModeHandler))
		if c.Deliverable {
			line += fmt.Sprintf(" %10.0f %6.1f%% %+8.1f%%", c.RecordsPerSecond(ModeBootstrap), 100*c.Ratio(ModeBootstrap), 100*c.BootstrapOverhead())
		} else {
			line += fmt.Sprintf(" %10s", "n/a >6MB")
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
	for _, t := range r.Targets() {
		mark := "MISSED"
		if t.Reached {
			mark = "reached"
		}
		fmt.Fprintf(w, "%-8s %s: %s\n", mark, t.Goal, t.Measured)
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// Markdown writes docs/benchmarks.md.
func (r *Report) Markdown(w io.Writer, chartFile string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	m := r.Machine
	p("# Benchmarks\n\n")
	p("How close the function comes to the broker's own publish ceiling, how fast it starts, how much memory it needs and what it costs, ")
	p("measured side by side in one run against the local Pulsar standalone. Written by `make bench` (infra/bench); ")
	p("absolute figures depend on this machine and its load, the ratios measured in the same run are what carry over.\n\n")
	p("Reproduce: `%s` (on a clean clone: it starts the local stack if none runs, and stops only what it started).\n\n", r.Config.Command)

	p("## Machine and run\n\n")
	p("| | |\n|---|---|\n")
	p("| CPU | %s, %d cores, %d MiB memory |\n", m.CPU, m.Cores, m.MemoryMiB)
	p("| Kernel | %s |\n", m.Kernel)
	p("| Go | %s (GOOS/GOARCH of the measured bootstrap: linux/%s; the Lambda build is linux/arm64) |\n", m.Go, goarch())
	p("| Pulsar | %s standalone, local, same machine (shares the cores) |\n", r.Pulsar)
	p("| Java (pulsar-perf) | %s |\n", r.Java)
	p("| Run | %s, %s, %s |\n", r.RunID, r.Started.UTC().Format(time.RFC3339), r.Finished.Sub(r.Started).Round(time.Second))
	quiet := "yes"
	if !r.Quiet {
		quiet = "**no**"
	}
	p("| Quiet start (1-minute load < %.2f) | %s |\n", r.Config.MaxLoad, quiet)
	if len(r.Loads) > 0 {
		p("| Load at the start | %s |\n", r.Loads[0].Load)
		p("| Load at the end | %s (the benchmark's own work included) |\n", r.Loads[len(r.Loads)-1].Load)
	}
	p("\n")
	if len(r.CPU) > 0 {
		p("CPU use during each phase (percent of one core, sampled every 2 s): this benchmark with everything it started, the shared ")
		p("broker (busy serving it), and all other processes — the noise the figures were taken under.\n\n")
		p("| phase | benchmark | broker | others (mean) | others (busiest sample) | busiest others |\n|---|---:|---:|---:|---:|---|\n")
		for _, c := range r.CPU {
			if c.Samples == 0 {
				continue
			}
			p("| %s | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %s |\n", c.Phase, c.Ours, c.Broker, c.Others, c.OthersMax, c.TopOthers(3))
		}
		p("\n")
	}
	for _, n := range r.Notes {
		p("> %s\n\n", n)
	}

	p("## Targets\n\n| goal | measured | |\n|---|---|---|\n")
	for _, t := range r.Targets() {
		mark := "missed"
		if t.Reached {
			mark = "reached"
		}
		p("| %s | %s | %s |\n", t.Goal, t.Measured, mark)
	}
	p("\n")

	r.markdownThroughput(p, chartFile)
	r.markdownCold(p)
	r.markdownMemory(p)
	r.markdownSize(p)
	r.markdownCost(p)
	p("%s", notes)
}

func (r *Report) markdownThroughput(p func(string, ...any), chartFile string) {
	if len(r.Cells) == 0 {
		return
	}
	p("## Throughput: ceiling, handler, bootstrap\n\n")
	p("Each round publishes the same batch once per mode, in rotating order; figures are medians over the rounds, ")
	p("ratios are medians of the per-round ratios. **ceiling**: a bare pulsar-client-go producer (`SendAsync` of the messages the ")
	p("handler builds, same keys, properties and event times, same client and producer options, then a flush and a wait for every ")
	p("receipt). **handler**: `relay.Handle` with the producer pool, EMF metrics and the summary log line, on the decoded `KinesisEvent`. ")
	p("**bootstrap**: the real binary under `infra/runtimeapi` (JSON in, response out; Lambda's Duration). MB = 10^6 bytes of payload.\n\n")
	if chartFile != "" {
		p("![records/s by batch and record size](%s)\n\n", chartFile)
	}
	p("The per-round ratios vary (the broker's latency does, run to run); their interquartile range is in brackets.\n\n")
	p("| batch | event | rounds | ceiling rec/s | MB/s | handler rec/s | MB/s | of ceiling | bootstrap rec/s | of ceiling | over handler |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range r.Cells {
		lo, hi := c.RatioIQR(ModeHandler)
		p("| %s | %s | %d | %.0f | %.1f | %.0f | %.1f | %.1f%% (%.0f-%.0f) |", c.Workload.Name, mb(c.EventBytes), c.Rounds(),
			c.RecordsPerSecond(ModeCeiling), c.MBPerSecond(ModeCeiling), c.RecordsPerSecond(ModeHandler), c.MBPerSecond(ModeHandler),
			100*c.Ratio(ModeHandler), 100*lo, 100*hi)
		if c.Deliverable {
			lo, hi := c.RatioIQR(ModeBootstrap)
			p(" %.0f | %.1f%% (%.0f-%.0f) | %+.1f%% |\n", c.RecordsPerSecond(ModeBootstrap), 100*c.Ratio(ModeBootstrap), 100*lo, 100*hi, 100*c.BootstrapOverhead())
		} else {
			p(" n/a: event over 6 MB | | |\n")
		}
	}
	p("\nWhere the bootstrap's overhead goes (medians): the bootstrap's duration minus the handler's in the same round, beside the time ")
	p("the function's decoder (`internal/eventjson`) takes in this process on the same event (base64 payloads included), ")
	p("and, for reference, what `encoding/json` — aws-lambda-go's default — would take; the rest is the event and the response ")
	p("crossing the Runtime API's HTTP exchanges, and a second process competing for the cores.\n\n")
	p("| batch | event | bootstrap - handler ms | eventjson decode ms | encoding/json decode ms |\n|---|---:|---:|---:|---:|\n")
	for _, c := range r.Cells {
		if c.Deliverable {
			p("| %s | %s | %.2f | %.2f | %.2f |\n", c.Workload.Name, mb(c.EventBytes), c.OverheadMS(), Median(Millis(c.Decode)), Median(Millis(c.DecodeStd)))
		}
	}
	p("\nBatch latency and allocations (allocations counted over the whole process during the batch, so the client's own are included):\n\n")
	p("| batch | ceiling p50 ms | p99 ms | handler p50 ms | p99 ms | bootstrap p50 ms | p99 ms | ceiling allocs/rec | B/rec | handler allocs/rec | B/rec |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range r.Cells {
		co, cb := c.AllocsPerRecord(ModeCeiling)
		ho, hb := c.AllocsPerRecord(ModeHandler)
		boot := "n/a | n/a"
		if c.Deliverable {
			boot = fmt.Sprintf("%.2f | %.2f", c.LatencyMS(ModeBootstrap, 0.5), c.LatencyMS(ModeBootstrap, 0.99))
		}
		p("| %s | %.2f | %.2f | %.2f | %.2f | %s | %.1f | %.0f | %.1f | %.0f |\n", c.Workload.Name,
			c.LatencyMS(ModeCeiling, 0.5), c.LatencyMS(ModeCeiling, 0.99), c.LatencyMS(ModeHandler, 0.5), c.LatencyMS(ModeHandler, 0.99),
			boot, co, cb, ho, hb)
	}
	p("\n")
	if len(r.Perf) > 0 {
		p("For reference, the Java `pulsar-perf produce` on the same broker: a continuous stream (no batch boundary to wait at), ")
		p("random keys, no properties, our batching settings (10 ms, 1,000 messages, 128 KiB) and 10,000 messages outstanding:\n\n")
		p("| record size | seconds | records/s | MB/s | vs our ceiling at 10,000 records |\n|---|---:|---:|---:|---:|\n")
		for _, x := range r.Perf {
			vs := ""
			if c := r.cell(10000, x.Size); c != nil {
				vs = fmt.Sprintf("%.2fx", x.RecPerS/c.RecordsPerSecond(ModeCeiling))
			}
			p("| %s | %d | %.0f | %.1f | %s |\n", bytesLabel(x.Size), x.Seconds, x.RecPerS, x.MbitPerS/8, vs)
		}
		p("\nCommand: `$PULSAR_HOME/bin/%s`\n\n", strings.Replace(r.Perf[0].Command, "persistent://", "<topic: persistent://", 1)+">")
	}
}

func (r *Report) markdownCold(p func(string, ...any)) {
	if len(r.Cold) == 0 {
		return
	}
	p("## Cold start\n\n")
	p("A fresh `bootstrap` process per run, a fresh broker connection, topic lookup, producer creation, then the first invocation ")
	p("(one 1 KiB record) — the topic already exists (a cold function, not a cold broker). %d runs straight to the broker and %d ", len(r.Cold), len(r.ColdPx))
	p("through a timing proxy (infra/bench/proxy.go) that timestamps every Pulsar command; the function is not instrumented. ")
	p("The function connects during init (main.go warms the producer in the background), so Pulsar's steps overlap the runtime's init. ")
	p("Times are medians, from process start.\n\n")
	med := func(xs []ColdRun, f func(ColdRun) time.Duration) float64 { return Median(Millis(pick(xs, f))) }
	p("| step (from process start) | median ms | p90 ms |\n|---|---:|---:|\n")
	row := func(name string, xs []ColdRun, f func(ColdRun) time.Duration) {
		p("| %s | %.1f | %.1f |\n", name, med(xs, f), Quantile(Millis(pick(xs, f)), 0.9))
	}
	row("runtime init done (first /next; Lambda's Init Duration), direct", r.Cold, func(x ColdRun) time.Duration { return x.Init })
	row("first invocation answered, direct (its record is confirmed by then)", r.Cold, func(x ColdRun) time.Duration { return x.Response })
	row("proxy: TCP connection to the broker accepted", r.ColdPx, func(x ColdRun) time.Duration { return x.Accept })
	row("proxy: CONNECTED (protocol handshake)", r.ColdPx, func(x ColdRun) time.Duration { return x.Connected })
	row("proxy: LOOKUP_RESPONSE (partitioned metadata and lookup)", r.ColdPx, func(x ColdRun) time.Duration { return x.Looked })
	row("proxy: PRODUCER_SUCCESS (producer created)", r.ColdPx, func(x ColdRun) time.Duration { return x.ProducerUp })
	row("proxy: runtime init done", r.ColdPx, func(x ColdRun) time.Duration { return x.Init })
	row("proxy: first SEND", r.ColdPx, func(x ColdRun) time.Duration { return x.FirstSend })
	row("proxy: first SEND_RECEIPT (**first confirmed publish**)", r.ColdPx, func(x ColdRun) time.Duration { return x.FirstReceipt })
	row("proxy: first invocation answered", r.ColdPx, func(x ColdRun) time.Duration { return x.Response })
	p("\nThe split (medians of the per-run differences, through the proxy):\n\n| part | ms |\n|---|---:|\n")
	diff := func(name string, f func(ColdRun) time.Duration) { p("| %s | %.1f |\n", name, med(r.ColdPx, f)) }
	diff("runtime init (process start to first /next)", func(x ColdRun) time.Duration { return x.Init })
	diff("process start to the broker connection (Go runtime, config, client)", func(x ColdRun) time.Duration { return x.Accept })
	diff("Pulsar connect (TCP accept to CONNECTED)", func(x ColdRun) time.Duration { return x.Connected - x.Accept })
	diff("topic lookup (CONNECTED to LOOKUP_RESPONSE)", func(x ColdRun) time.Duration { return x.Looked - x.Connected })
	diff("producer creation (LOOKUP_RESPONSE to PRODUCER_SUCCESS)", func(x ColdRun) time.Duration { return x.ProducerUp - x.Looked })
	diff("first publish (SEND to SEND_RECEIPT)", func(x ColdRun) time.Duration { return x.FirstReceipt - x.FirstSend })
	p("\nFirst invocation answered through the proxy minus answered direct (medians; the proxy's own cost, within noise): %.1f ms.\n\n",
		med(r.ColdPx, func(x ColdRun) time.Duration { return x.Response })-med(r.Cold, func(x ColdRun) time.Duration { return x.Response }))
}

func (r *Report) markdownMemory(p func(string, ...any)) {
	if len(r.RSS) == 0 {
		return
	}
	p("## Memory\n\n")
	p("Peak resident set (VmHWM: what Lambda reports as Max Memory Used) of a fresh process, after the first and after the ")
	p("%dth invocation of the same batch, back to back (garbage of earlier batches can still be resident). Lambda's smallest size is 128 MB.\n\n", r.RSS[0].Invocations)
	p("| batch | event | after 1 | after %d | of 128 MB | how |\n|---|---:|---:|---:|---:|---|\n", r.RSS[0].Invocations)
	for _, x := range r.RSS {
		how := "the bootstrap under the Runtime API"
		if x.InProcess {
			how = x.Note
		}
		p("| %s | %s | %.1f MiB | %.1f MiB | %.0f%% | %s |\n", x.Workload.Name, mb(x.EventBytes),
			float64(x.PeakFirst)/(1<<20), float64(x.PeakLast)/(1<<20), 100*float64(x.PeakLast)/(128<<20), how)
	}
	p("\n")
}

func (r *Report) markdownSize(p func(string, ...any)) {
	s := r.Size
	if s.Bytes == 0 {
		return
	}
	p("## Binary size\n\n")
	p("`make build` (linux/arm64, `-tags lambda.norpc -trimpath -ldflags='-s -w -buildid='`): **%.1f MiB** (%d bytes), %.1f MiB zipped ", float64(s.Bytes)/(1<<20), s.Bytes, float64(s.Zipped)/(1<<20))
	p("as a deployment package (Lambda's limits: 50 MB zipped, 250 MB unzipped).\n\n")
	p("| section | MiB | holds |\n|---|---:|---|\n")
	holds := map[string]string{".text": "machine code", ".rodata": "constants, type descriptors, strings",
		".gopclntab": "function tables (stack traces, GC, preemption)", ".noptrdata": "initialised data without pointers",
		".data": "initialised data", ".typelink": "type links", ".itablink": "interface tables", ".go.buildinfo": "build info"}
	for i, sec := range s.Sections {
		if i == 6 {
			break
		}
		p("| %s | %.2f | %s |\n", sec.Name, float64(sec.Bytes)/(1<<20), holds[sec.Name])
	}
	p("\nThe machine code by dependency (symbol sizes of an unstripped build of the same package, %.1f MiB of code):\n\n", float64(s.Symbols)/(1<<20))
	p("| code of | MiB | share |\n|---|---:|---:|\n")
	for i, g := range s.ByGroup {
		if i == 12 {
			break
		}
		p("| %s | %.2f | %.0f%% |\n", g.Name, float64(g.Bytes)/(1<<20), 100*float64(g.Bytes)/float64(s.Symbols))
	}
	p("\n")
}

func (r *Report) markdownCost(p func(string, ...any)) {
	if len(r.Cost) == 0 {
		return
	}
	p("## Cost\n\n")
	p("Model: Lambda gives CPU in proportion to memory, one vCPU at 1,769 MB. Here each memory size M runs the bootstrap in a cgroup ")
	p("with a CPU quota of M/1,769 of one CPU (CFS period %s), back to back, as on a busy shard (quota left in a period is lost, never banked). ", r.Config.CostPeriod)
	p("Billed duration: each invocation rounded up to 1 ms. Prices (US East, arm64): $%.10f per GB-second ([Lambda pricing](https://aws.amazon.com/lambda/pricing/), first tier), ", LambdaArmGBSecond)
	p("$0.20 per million requests; EventBridge Pipes $0.40 per million requests after filtering, every 64 KB chunk of an event one request ([EventBridge pricing](https://aws.amazon.com/eventbridge/pricing/)). ")
	p("Assumptions: the broker is as close and as fast as here (its CPU is not throttled: it is another machine in production); a Graviton core does ")
	p("the work of one core of this machine; the 1-ms rounding and the request charge included; no free tier.\n\n")
	p("| memory | CPU share | batch | mean billed ms | CPU ms/invocation | peak RSS | GB-s/invocation | $ per million records |\n")
	p("|---:|---:|---|---:|---:|---:|---:|---:|\n")
	best := map[string]CostPoint{}
	for _, x := range r.Cost {
		fits := ""
		if !x.Fits() {
			fits = " (too close to the limit)"
		}
		p("| %d MB | %.1f%% | %s | %.1f | %.2f | %.0f MiB%s | %.6f | $%.5f |\n", x.MemoryMB, 100*x.Share, x.Workload.Name, x.MeanBilledMS(),
			float64(x.CPU)/float64(time.Millisecond), float64(x.PeakRSS)/(1<<20), fits, x.GBSeconds(), x.USDPerMillionRecords())
		if b, ok := best[x.Workload.Name]; x.Fits() && (!ok || x.USDPerMillionRecords() < b.USDPerMillionRecords()) {
			best[x.Workload.Name] = x
		}
	}
	p("\nCheapest memory size per batch shape, against EventBridge Pipes (1 KiB records: one Pipes request each; Pipes has no Pulsar ")
	p("target, so a Pipes design still needs a function or an HTTP hop after it, on top of this price):\n\n")
	p("| batch | cheapest memory | $ per million 1 KiB records | GB-s per million records | EventBridge Pipes alone |\n|---|---:|---:|---:|---:|\n")
	for _, x := range r.Cost {
		b, ok := best[x.Workload.Name]
		if !ok || b.MemoryMB != x.MemoryMB {
			continue
		}
		p("| %s | %d MB | $%.5f | %.1f | $%.2f |\n", b.Workload.Name, b.MemoryMB, b.USDPerMillionRecords(),
			b.GBSeconds()*1e6/float64(b.Workload.Records), PipesRequest*1e6)
	}
	p("\n")
}

func mb(n int) string { return fmt.Sprintf("%.2f MB", float64(n)/1e6) }
