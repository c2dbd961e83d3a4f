package bench

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Monitor samples the CPU use of every process while the benchmark runs and splits it three ways:
// this benchmark (the bench process and everything it started: bootstraps, pulsar-perf), the shared
// broker (which works for the benchmark, but also for anyone else using it), and everything else — the
// noise the figures were taken under.
type Monitor struct {
	brokerPID int
	interval  time.Duration
	stop      chan struct{}
	done      chan struct{}

	mu     sync.Mutex
	phase  string
	phases []*PhaseCPU
}

// PhaseCPU is the CPU use during one phase, in percent of one core, averaged over its samples.
type PhaseCPU struct {
	Phase     string
	Samples   int
	Ours      float64
	Broker    float64
	Others    float64
	OthersMax float64            // the busiest sample of the others
	Top       map[string]float64 // others by command, summed over samples (for the busiest few)
}

// TopOthers names the busiest other commands of the phase with their average share.
func (p *PhaseCPU) TopOthers(n int) string {
	type kv struct {
		k string
		v float64
	}
	var l []kv
	for k, v := range p.Top {
		l = append(l, kv{k, v / float64(max(p.Samples, 1))})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v })
	var out []string
	for i, x := range l {
		if i == n || x.v < 1 {
			break
		}
		out = append(out, fmt.Sprintf("%s %.0f%%", x.k, x.v))
	}
	return strings.Join(out, ", ")
}

// StartMonitor starts sampling; brokerPID 0 means the broker is not known (it counts as others).
func StartMonitor(brokerPID int, interval time.Duration) *Monitor {
	m := &Monitor{brokerPID: brokerPID, interval: interval, stop: make(chan struct{}), done: make(chan struct{})}
	go m.run()
	return m
}

// Phase starts attributing samples to a new phase.
func (m *Monitor) Phase(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.phase = name
	m.phases = append(m.phases, &PhaseCPU{Phase: name, Top: map[string]float64{}})
}

// Stop ends sampling and returns the phases.
func (m *Monitor) Stop() []*PhaseCPU {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.phases
}

func (m *Monitor) run() {
	defer close(m.done)
	prev, prevAt := cpuTicks(), time.Now()
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		cur, at := cpuTicks(), time.Now()
		m.account(prev, cur, at.Sub(prevAt))
		prev, prevAt = cur, at
	}
}

func (m *Monitor) account(prev, cur map[int]procTicks, elapsed time.Duration) {
	ours := descendants(os.Getpid())
	const hz = 100 // USER_HZ
	var s struct{ ours, broker, others float64 }
	top := map[string]float64{}
	for pid, t := range cur {
		p, ok := prev[pid]
		if !ok {
			p = procTicks{} // started during the interval
		}
		pct := float64(t.ticks-p.ticks) / hz / elapsed.Seconds() * 100
		switch {
		case ours[pid]:
			s.ours += pct
		case pid == m.brokerPID:
			s.broker += pct
		default:
			s.others += pct
			if pct > 0 {
				top[t.comm] += pct
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.phases) == 0 {
		return
	}
	p := m.phases[len(m.phases)-1]
	n := float64(p.Samples)
	p.Ours = (p.Ours*n + s.ours) / (n + 1)
	p.Broker = (p.Broker*n + s.broker) / (n + 1)
	p.Others = (p.Others*n + s.others) / (n + 1)
	p.OthersMax = max(p.OthersMax, s.others)
	for k, v := range top {
		p.Top[k] += v
	}
	p.Samples++
}

// descendants returns pid and every process below it.
func descendants(pid int) map[int]bool {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		end := strings.LastIndexByte(string(b), ')')
		if end < 0 {
			continue
		}
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
	}
	out := map[int]bool{pid: true}
	for changed := true; changed; {
		changed = false
		for p, pp := range parent {
			if out[pp] && !out[p] {
				out[p], changed = true, true
			}
		}
	}
	return out
}

// BrokerPID reads the pid of the local stack's broker from its pid file, 0 when there is none.
func BrokerPID(runDir string) int {
	b, err := os.ReadFile(runDir + "/pulsar-default.pid")
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}
