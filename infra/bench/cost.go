package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Published prices used by the cost model (USD, US East (N. Virginia)).
const (
	// LambdaArmGBSecond is the arm64 duration price for the first pricing tier (the first 7.5 billion
	// GB-seconds a month), https://aws.amazon.com/lambda/pricing/.
	LambdaArmGBSecond = 0.0000133334
	// LambdaRequest is the price of one invocation ($0.20 per million requests).
	LambdaRequest = 0.20 / 1e6
	// PipesRequest is the EventBridge Pipes price per request after filtering ($0.40 per million; every
	// 64 KB chunk of an event is one request), https://aws.amazon.com/eventbridge/pricing/.
	PipesRequest = 0.40 / 1e6
	// FullCPUMemoryMB is the memory size at which Lambda gives a function one full vCPU; CPU is
	// allocated in proportion to memory below it.
	FullCPUMemoryMB = 1769
)

// CPUShare is the fraction of one vCPU that Lambda gives memoryMB (capped at one: the function is
// effectively single-threaded on the hot path, and sizes above 1,769 MB only add cores).
func CPUShare(memoryMB int) float64 { return math.Min(1, float64(memoryMB)/FullCPUMemoryMB) }

// CostPoint is the measured cost of one batch shape at one memory size.
type CostPoint struct {
	MemoryMB  int
	Share     float64
	Quota     bool // the CPU share was enforced with a cgroup quota (else: not measured)
	Workload  Workload
	Durations []time.Duration
	CPU       time.Duration // CPU time of the process per invocation
	PeakRSS   int64
	Throttled time.Duration // time the quota held the process back, over the measured invocations
}

// MeanBilledMS is the mean billed duration: each invocation rounded up to the millisecond.
func (p CostPoint) MeanBilledMS() float64 {
	var sum float64
	for _, d := range p.Durations {
		sum += math.Ceil(float64(d) / float64(time.Millisecond))
	}
	return sum / float64(len(p.Durations))
}

// GBSeconds per invocation.
func (p CostPoint) GBSeconds() float64 {
	return float64(p.MemoryMB) / 1024 * p.MeanBilledMS() / 1000
}

// USDPerMillionRecords is the Lambda cost (duration and requests) of a million records in batches of
// this shape.
func (p CostPoint) USDPerMillionRecords() float64 {
	invocations := 1e6 / float64(p.Workload.Records)
	return invocations * (p.GBSeconds()*LambdaArmGBSecond + LambdaRequest)
}

// Fits reports whether the peak RSS leaves 10% of the memory size free.
func (p CostPoint) Fits() bool { return float64(p.PeakRSS) < 0.9*float64(p.MemoryMB)*(1<<20) }

// CostOptions configure the cost runs.
type CostOptions struct {
	Function    FunctionOptions // Binary, ServiceURL, Topic
	MemoryMB    []int
	Workloads   []Workload
	Payloads    [][]byte
	Invocations int           // measured invocations per point, at least
	MinTime     time.Duration // and for at least this long
	Period      time.Duration // CFS period of the quota
}

// CostRuns measures the bootstrap at each memory size with the CPU share of that size enforced by a
// cgroup quota, back to back (a busy shard: quota left unused in a period is lost, never banked).
func CostRuns(ctx context.Context, o CostOptions) ([]CostPoint, error) {
	var points []CostPoint
	for _, mem := range o.MemoryMB {
		share := CPUShare(mem)
		group, err := NewCPUGroup(fmt.Sprintf("kp-bench-%d-%d", os.Getpid(), mem), share, o.Period)
		if err != nil {
			return points, fmt.Errorf("%w: %v", errNoCgroup, err)
		}
		fo := o.Function
		fo.MemoryMB, fo.CPU = mem, group
		pts, err := costAt(ctx, fo, o)
		points = append(points, pts...)
		if rerr := group.Remove(); rerr != nil && err == nil {
			err = rerr
		}
		if err != nil {
			return points, fmt.Errorf("cost at %d MB: %w", mem, err)
		}
	}
	return points, nil
}

func costAt(ctx context.Context, fo FunctionOptions, o CostOptions) ([]CostPoint, error) {
	f, err := StartFunction(ctx, fo)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var points []CostPoint
	for i, w := range o.Workloads {
		payload := o.Payloads[i]
		for range 2 { // warm: producer created, caches filled
			if _, err := f.Invoke(ctx, payload); err != nil {
				return points, err
			}
		}
		p := CostPoint{MemoryMB: fo.MemoryMB, Share: CPUShare(fo.MemoryMB), Quota: true, Workload: w}
		_, _, throttledBefore := fo.CPU.Throttled()
		cpuBefore, err := processCPU(f.Env.PID())
		if err != nil {
			return points, err
		}
		start := time.Now()
		for len(p.Durations) < o.Invocations || time.Since(start) < o.MinTime {
			res, err := f.Invoke(ctx, payload)
			if err != nil {
				return points, err
			}
			p.Durations = append(p.Durations, res.Duration)
		}
		cpuAfter, err := processCPU(f.Env.PID())
		if err != nil {
			return points, err
		}
		_, _, throttledAfter := fo.CPU.Throttled()
		p.CPU = (cpuAfter - cpuBefore) / time.Duration(len(p.Durations))
		p.Throttled = throttledAfter - throttledBefore
		if p.PeakRSS, err = f.Env.PeakRSS(); err != nil {
			return points, err
		}
		points = append(points, p)
	}
	return points, nil
}

// processCPU is the CPU time (user and system) of every thread of pid, with nanosecond resolution
// (/proc/<pid>/task/*/schedstat).
func processCPU(pid int) (time.Duration, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("CPU time of pid %d: %w", pid, err)
	}
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			continue // the thread exited meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("CPU time of pid %d: parse %q: %w", pid, b, err)
		}
		total += time.Duration(ns)
	}
	if total == 0 {
		return 0, errors.New("CPU time: no schedstat (kernel without CONFIG_SCHED_INFO?)")
	}
	return total, nil
}
