package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CPUGroup is a Linux control group with a CPU bandwidth limit (CFS quota), used to give the bootstrap
// the share of a CPU that Lambda gives a function of a given memory size. It needs write access to the
// cgroup file system (root, or a delegated subtree).
type CPUGroup struct {
	dir string
	v2  bool
}

// cgroup mount points: v1 has a cpu hierarchy of its own, v2 one unified tree.
const (
	cgroupV1CPU = "/sys/fs/cgroup/cpu"
	cgroupV2    = "/sys/fs/cgroup"
)

// NewCPUGroup creates the group name limited to share of one CPU per period.
func NewCPUGroup(name string, share float64, period time.Duration) (*CPUGroup, error) {
	if share <= 0 {
		return nil, fmt.Errorf("cpu group %s: share must be positive, got %v", name, share)
	}
	periodUS := period.Microseconds()
	quotaUS := int64(share * float64(periodUS))
	if quotaUS < 1000 {
		quotaUS = 1000 // the kernel's minimum quota is 1 ms
	}
	if st, err := os.Stat(filepath.Join(cgroupV1CPU, "cpu.cfs_quota_us")); err == nil && !st.IsDir() {
		g := &CPUGroup{dir: filepath.Join(cgroupV1CPU, name)}
		if err := os.Mkdir(g.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("cpu group %s: %w", name, err)
		}
		if err := g.write("cpu.cfs_period_us", strconv.FormatInt(periodUS, 10)); err != nil {
			return nil, errors.Join(err, g.Remove())
		}
		if err := g.write("cpu.cfs_quota_us", strconv.FormatInt(quotaUS, 10)); err != nil {
			return nil, errors.Join(err, g.Remove())
		}
		return g, nil
	}
	if b, err := os.ReadFile(filepath.Join(cgroupV2, "cgroup.subtree_control")); err == nil {
		if !strings.Contains(string(b), "cpu") {
			if err := os.WriteFile(filepath.Join(cgroupV2, "cgroup.subtree_control"), []byte("+cpu"), 0o644); err != nil {
				return nil, fmt.Errorf("cpu group %s: enable the cpu controller: %w", name, err)
			}
		}
		g := &CPUGroup{dir: filepath.Join(cgroupV2, name), v2: true}
		if err := os.Mkdir(g.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("cpu group %s: %w", name, err)
		}
		if err := g.write("cpu.max", fmt.Sprintf("%d %d", quotaUS, periodUS)); err != nil {
			return nil, errors.Join(err, g.Remove())
		}
		return g, nil
	}
	return nil, errors.New("no writable cgroup cpu controller (needs root or a delegated cgroup)")
}

func (g *CPUGroup) write(file, value string) error {
	if err := os.WriteFile(filepath.Join(g.dir, file), []byte(value), 0o644); err != nil {
		return fmt.Errorf("cpu group: write %s: %w", file, err)
	}
	return nil
}

// ProcsFile is the file a process writes its pid to in order to join the group.
func (g *CPUGroup) ProcsFile() string { return filepath.Join(g.dir, "cgroup.procs") }

// Throttled reads how often and how long the group was held back by its quota.
func (g *CPUGroup) Throttled() (periods, throttled int64, total time.Duration) {
	b, err := os.ReadFile(filepath.Join(g.dir, "cpu.stat"))
	if err != nil {
		return 0, 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, " ")
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch k {
		case "nr_periods":
			periods = n
		case "nr_throttled":
			throttled = n
		case "throttled_time": // v1, nanoseconds
			total = time.Duration(n)
		case "throttled_usec": // v2
			total = time.Duration(n) * time.Microsecond
		}
	}
	return periods, throttled, total
}

// Remove deletes the group; it must be empty (its processes exited).
func (g *CPUGroup) Remove() error {
	var err error
	for range 50 { // the kernel empties the group shortly after the last process is reaped
		if err = os.Remove(g.dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("cpu group: remove %s: %w", g.dir, err)
}

// wrapper writes a shell script that joins the group and then execs binary, so that the bootstrap runs
// under the quota from its first instruction (its init counts too). It lives in binary's directory,
// which Lambda makes the working directory and LAMBDA_TASK_ROOT.
func (g *CPUGroup) wrapper(binary string) (string, error) {
	path := filepath.Join(filepath.Dir(binary), "bootstrap-"+filepath.Base(g.dir))
	script := fmt.Sprintf("#!/bin/sh\necho $$ > %s || exit 1\nexec %s\n", shellQuote(g.ProcsFile()), shellQuote(binary))
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		return "", fmt.Errorf("cpu group: write wrapper: %w", err)
	}
	return path, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
