//go:build linux

package runtimeapi

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// sysProcAttr puts the child in its own process group (so a terminal's Ctrl-C reaches only the test,
// which then cleans up) and has the kernel kill it if the driving process dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// readVmHWM reads the peak resident set size ("high water mark") of a live process, in bytes.
func readVmHWM(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	_, rest, ok := bytes.Cut(b, []byte("\nVmHWM:"))
	if !ok {
		// A zombie has no memory lines any more.
		return 0, fmt.Errorf("pid %d: no VmHWM in /proc status (process exiting?)", pid)
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(line), []byte("kB")))), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("pid %d: parse VmHWM %q: %w", pid, line, err)
	}
	return kb * 1024, nil
}

// maxRSSBytes converts the ru_maxrss of wait4 (kilobytes on Linux) to bytes.
func maxRSSBytes(ru *syscall.Rusage) int64 { return ru.Maxrss * 1024 }

// waitStopped waits until SIGSTOP has taken effect on every thread of pid, so that Freeze returns
// only once the process really is frozen.
func waitStopped(pid int, limit time.Duration) error {
	end := time.Now().Add(limit)
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	for {
		tasks, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("list threads of pid %d: %w", pid, err)
		}
		stopped := true
		for _, t := range tasks {
			st, err := os.ReadFile(dir + "/" + t.Name() + "/stat")
			if err != nil {
				continue // the thread exited meanwhile
			}
			// The state follows the parenthesised command name, which may itself contain ") ".
			if i := bytes.LastIndexByte(st, ')'); i < 0 || i+2 >= len(st) || (st[i+2] != 'T' && st[i+2] != 't') {
				stopped = false
				break
			}
		}
		if stopped {
			return nil
		}
		if time.Now().After(end) {
			return errors.New("process did not stop within " + limit.String())
		}
		time.Sleep(200 * time.Microsecond)
	}
}
