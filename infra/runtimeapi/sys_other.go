//go:build unix && !linux

package runtimeapi

import (
	"errors"
	"runtime"
	"syscall"
	"time"
)

func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func readVmHWM(int) (int64, error) {
	return 0, errors.New("peak RSS of a live process is only available on Linux")
}

// maxRSSBytes converts ru_maxrss to bytes: macOS reports bytes, the BSDs kilobytes.
func maxRSSBytes(ru *syscall.Rusage) int64 {
	if runtime.GOOS == "darwin" {
		return ru.Maxrss
	}
	return ru.Maxrss * 1024
}

// waitStopped cannot observe the stop without /proc; SIGSTOP is still delivered.
func waitStopped(int, time.Duration) error { return nil }
