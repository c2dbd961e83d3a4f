package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Machine describes the host a run measured on.
type Machine struct {
	CPU       string
	Cores     int
	MemoryMiB int
	Kernel    string
	Go        string
}

// DescribeMachine reads the CPU model, core count, memory and kernel of this host.
func DescribeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemoryMiB = kb / 1024
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// Load is the system load and the busiest processes at one moment.
type Load struct {
	At      time.Time
	Load1   float64
	Load5   float64
	Load15  float64
	Busiest []Proc // top processes by CPU over the last second, ours excluded
}

// Proc is one process's CPU share over a sampling interval.
type Proc struct {
	PID     int
	Command string
	CPU     float64 // percent of one core
}

func (l Load) String() string {
	var procs []string
	for _, p := range l.Busiest {
		procs = append(procs, fmt.Sprintf("%s %.0f%%", p.Command, p.CPU))
	}
	s := fmt.Sprintf("load %.2f %.2f %.2f", l.Load1, l.Load5, l.Load15)
	if len(procs) > 0 {
		s += "; busiest: " + strings.Join(procs, ", ")
	}
	return s
}

// SampleLoad reads /proc/loadavg and the CPU use of every process over interval.
func SampleLoad(interval time.Duration) (Load, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return Load{}, fmt.Errorf("read load average: %w", err)
	}
	l := Load{At: time.Now()}
	if _, err := fmt.Sscanf(string(b), "%f %f %f", &l.Load1, &l.Load5, &l.Load15); err != nil {
		return Load{}, fmt.Errorf("parse /proc/loadavg %q: %w", b, err)
	}
	before := cpuTicks()
	time.Sleep(interval)
	after := cpuTicks()
	const hz = 100 // USER_HZ on Linux
	self := os.Getpid()
	for pid, t := range after {
		if pid == self {
			continue
		}
		used := float64(t.ticks-before[pid].ticks) / hz / interval.Seconds() * 100
		if used >= 5 {
			l.Busiest = append(l.Busiest, Proc{PID: pid, Command: t.comm, CPU: used})
		}
	}
	sort.Slice(l.Busiest, func(i, j int) bool { return l.Busiest[i].CPU > l.Busiest[j].CPU })
	if len(l.Busiest) > 5 {
		l.Busiest = l.Busiest[:5]
	}
	return l, nil
}

type procTicks struct {
	comm  string
	ticks int64
}

// cpuTicks returns utime+stime of every process, by pid.
func cpuTicks() map[int]procTicks {
	out := map[int]procTicks{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(string(b[end+1:]))
		if len(fields) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(fields[11], 10, 64)
		st, _ := strconv.ParseInt(fields[12], 10, 64)
		out[pid] = procTicks{comm: string(b[open+1 : end]), ticks: ut + st}
	}
	return out
}

// WaitQuiet polls until the 1-minute load average is below maxLoad, for at most maxWait, and returns
// the last sample and whether the machine was quiet. progress receives one line per minute of waiting.
func WaitQuiet(ctx context.Context, maxLoad float64, maxWait time.Duration, progress func(string)) (Load, bool, error) {
	deadline := time.Now().Add(maxWait)
	lastNote := time.Now()
	for {
		l, err := SampleLoad(time.Second)
		if err != nil {
			return l, false, err
		}
		if l.Load1 < maxLoad {
			return l, true, nil
		}
		if time.Now().After(deadline) {
			return l, false, nil
		}
		if time.Since(lastNote) >= time.Minute {
			progress(fmt.Sprintf("waiting for a quiet machine (1-minute load below %.2f): %s", maxLoad, l))
			lastNote = time.Now()
		}
		select {
		case <-ctx.Done():
			return l, false, ctx.Err()
		case <-time.After(9 * time.Second):
		}
	}
}

func goarch() string { return runtime.GOARCH }

// PulsarVersion asks the broker's admin API for its version.
func PulsarVersion(ctx context.Context, adminURL string) string {
	v, err := PulsarVersionErr(ctx, adminURL)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return v
}

// PulsarVersionErr is PulsarVersion with its error.
func PulsarVersionErr(ctx context.Context, adminURL string) (string, error) {
	out, err := httpGet(ctx, strings.TrimRight(adminURL, "/")+"/admin/v2/brokers/version")
	if err != nil {
		return "", err
	}
	return strings.Trim(strings.TrimSpace(string(out)), `"`), nil
}

// JavaVersion is the first line of `java -version`.
func JavaVersion() string {
	out, err := exec.Command("java", "-version").CombinedOutput()
	if err != nil {
		return "unknown"
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	if sc.Scan() {
		return strings.TrimSpace(sc.Text())
	}
	return "unknown"
}
