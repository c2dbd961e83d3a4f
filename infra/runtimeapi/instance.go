//go:build unix

package runtimeapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// instance is one runtime process and the Runtime API server it talks to. Each process gets its own
// listener, so requests still in flight from a dead process can never reach its successor.
type instance struct {
	opts  *Options
	cmd   *exec.Cmd
	pid   int
	addr  string
	srv   *http.Server
	start time.Time

	events   chan *invocation // unbuffered: Invoke hands an event to a waiting /next
	ready    chan struct{}    // closed when init is complete
	initErr  chan struct{}    // closed when the runtime posted /runtime/init/error
	stopping chan struct{}    // closed when shutdown begins; releases SHUTDOWN subscribers
	exited   chan struct{}    // closed once the process is reaped

	mu           sync.Mutex
	runtimeReady bool // the runtime called /next at least once
	readyClosed  bool
	initDur      time.Duration
	initFailure  *FunctionError
	exts         map[string]*extension
	extPending   int // registered extensions that have not called /event/next yet
	current      *invocation
	deadline     time.Time // of the last invocation handed out; it holds until the runtime's next /next
	served       int
	idle         bool // the runtime is waiting in /next
	busy         bool // an Invoke is in progress on this instance
	frozen       bool
	stopReason   string
	forced       bool
	exit         Exit
	maxRSS       int64
	stopOnce     sync.Once
}

type extension struct {
	name     string
	shutdown bool // subscribed to SHUTDOWN
	waiting  bool // has called /event/next
}

// invocation is one event on its way through the Runtime API. Fields after done are written by the
// server handlers under instance.mu; Invoke reads them after done is closed or under instance.mu.
type invocation struct {
	id      string
	payload []byte
	traceID string
	done    chan struct{}

	delivered time.Time
	finished  time.Time
	cold      bool
	initDur   time.Duration
	response  []byte
	fnErr     *FunctionError
}

// launch starts the server and the process. It does not wait for init.
func launch(opts *Options, env []string) (*instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the runtime API: %w", err)
	}
	inst := &instance{
		opts:     opts,
		addr:     ln.Addr().String(),
		events:   make(chan *invocation),
		ready:    make(chan struct{}),
		initErr:  make(chan struct{}),
		stopping: make(chan struct{}),
		exited:   make(chan struct{}),
		exts:     make(map[string]*extension),
	}
	inst.srv = &http.Server{
		Handler: inst,
		// A client that vanishes mid-request is normal here (the process was killed); do not log it.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	cmd := exec.Command(opts.Binary)
	cmd.Dir = filepath.Dir(opts.Binary)
	cmd.Env = append(env, "AWS_LAMBDA_RUNTIME_API="+inst.addr)
	cmd.Stdout = opts.Stdout
	cmd.Stderr = opts.Stderr
	cmd.SysProcAttr = sysProcAttr()
	// A grandchild holding the output pipes open must not keep Wait (and so Shutdown) waiting.
	cmd.WaitDelay = time.Second
	inst.start = time.Now()
	if err := cmd.Start(); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("start %s: %w", opts.Binary, err)
	}
	inst.cmd = cmd
	inst.pid = cmd.Process.Pid
	// Serve only now, so the handlers see the fields above; the bound listener queues early connects.
	go func() { _ = inst.srv.Serve(ln) }()
	go inst.wait()
	return inst, nil
}

func (inst *instance) wait() {
	_ = inst.cmd.Wait() // the outcome is in ProcessState
	st := inst.cmd.ProcessState
	var x Exit
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		x = Exit{Code: -1, Signal: ws.Signal()}
	} else {
		x = Exit{Code: st.ExitCode()}
	}
	inst.mu.Lock()
	x.Forced = inst.forced
	inst.exit = x
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		inst.maxRSS = maxRSSBytes(ru)
	}
	inst.mu.Unlock()
	close(inst.exited)
	// Closing the server ends the handlers still parked in /next or /event/next for this process.
	_ = inst.srv.Close()
}

func (inst *instance) hasExited() bool {
	select {
	case <-inst.exited:
		return true
	default:
		return false
	}
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// awaitInit waits for the end of the init phase and turns every way it can fail into ErrInitFailed.
// On failure the process is gone when it returns.
func (inst *instance) awaitInit(ctx context.Context) error {
	t := time.NewTimer(inst.opts.InitTimeout)
	defer t.Stop()
	select {
	case <-inst.ready:
	case <-inst.initErr:
	case <-inst.exited:
	case <-t.C:
	case <-ctx.Done():
	}
	// Several may hold at once (init/error, then exit); report the most telling.
	switch {
	case closed(inst.ready):
		return nil
	case closed(inst.initErr):
		inst.terminate(context.Background(), "failure")
		inst.mu.Lock()
		fe := inst.initFailure
		inst.mu.Unlock()
		return fmt.Errorf("%w: runtime posted init error: %s", ErrInitFailed, fe)
	case closed(inst.exited):
		return fmt.Errorf("%w: runtime exited during init: %s", ErrInitFailed, inst.exitStatus())
	case ctx.Err() != nil:
		inst.terminate(context.Background(), "failure")
		return fmt.Errorf("wait for init: %w", ctx.Err())
	default:
		inst.terminate(context.Background(), "timeout")
		return fmt.Errorf("%w: runtime did not call /next within the init timeout %s", ErrInitFailed, inst.opts.InitTimeout)
	}
}

func (inst *instance) exitStatus() Exit {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return inst.exit
}

func (inst *instance) initDuration() time.Duration {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return inst.initDur
}

// checkReadyLocked ends init once the runtime and every registered extension have called their
// /next, which is when Lambda considers the init phase complete.
func (inst *instance) checkReadyLocked() {
	if inst.readyClosed || !inst.runtimeReady || inst.extPending > 0 {
		return
	}
	inst.readyClosed = true
	inst.initDur = time.Since(inst.start)
	close(inst.ready)
	inst.maybeFreezeLocked()
}

// beginInvoke marks an invocation in progress and resumes a frozen process, as Lambda thaws the
// environment for the next event.
func (inst *instance) beginInvoke() {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	inst.busy = true
	if inst.frozen {
		inst.signalLocked(syscall.SIGCONT)
		inst.frozen = false
	}
}

// handoffLimit bounds how long Invoke waits for the runtime to come back to /next: the previous
// invocation is complete only then, and Lambda holds it to its deadline. The slack spares a runtime
// that answered just before its deadline.
func (inst *instance) handoffLimit() time.Duration {
	const slack = 100 * time.Millisecond
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.idle || inst.deadline.IsZero() {
		return inst.opts.Timeout + slack // idle, or no invocation yet: not expected to fire
	}
	return max(time.Until(inst.deadline), 0) + slack
}

func (inst *instance) endInvoke() {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	inst.busy = false
	inst.maybeFreezeLocked()
}

// maybeFreezeLocked freezes the process when FreezeBetweenInvokes is set and it sits idle in /next.
func (inst *instance) maybeFreezeLocked() {
	// Never once shutdown began: a stopped process would hold its SIGTERM until the SIGKILL.
	if inst.opts.FreezeBetweenInvokes && inst.idle && !inst.busy && inst.readyClosed && !inst.frozen &&
		inst.stopReason == "" && !inst.hasExited() {
		inst.signalLocked(syscall.SIGSTOP)
		inst.frozen = true
	}
}

func (inst *instance) signalLocked(sig syscall.Signal) {
	// Errors only mean the process is already gone, which the exit watcher reports.
	_ = inst.cmd.Process.Signal(sig)
}

func (inst *instance) freeze() error {
	inst.mu.Lock()
	if inst.hasExited() || inst.stopReason != "" {
		inst.mu.Unlock()
		return ErrProcessExited
	}
	if !inst.frozen {
		if err := inst.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			inst.mu.Unlock()
			return fmt.Errorf("SIGSTOP pid %d: %w", inst.pid, err)
		}
		inst.frozen = true
	}
	inst.mu.Unlock()
	return waitStopped(inst.pid, time.Second)
}

func (inst *instance) thaw() error {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.hasExited() {
		return ErrProcessExited
	}
	if inst.frozen {
		if err := inst.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			return fmt.Errorf("SIGCONT pid %d: %w", inst.pid, err)
		}
		inst.frozen = false
	}
	return nil
}

// terminate ends the process the way Lambda shuts an environment down: resume it if frozen, release
// SHUTDOWN subscribers, send SIGTERM only if an extension registered (Lambda sends none otherwise),
// wait up to the grace period, then SIGKILL. It returns once the process is reaped.
func (inst *instance) terminate(ctx context.Context, reason string) Exit {
	inst.stopOnce.Do(func() {
		inst.mu.Lock()
		if inst.frozen {
			inst.signalLocked(syscall.SIGCONT)
			inst.frozen = false
		}
		inst.stopReason = reason
		sigterm := len(inst.exts) > 0
		inst.current = nil // a late answer from this process is no longer wanted
		inst.mu.Unlock()
		close(inst.stopping)

		if sigterm && !inst.hasExited() {
			_ = inst.cmd.Process.Signal(syscall.SIGTERM)
			t := time.NewTimer(inst.opts.ShutdownGrace)
			select {
			case <-inst.exited:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		if !inst.hasExited() {
			inst.mu.Lock()
			inst.forced = true
			inst.signalLocked(syscall.SIGKILL)
			inst.mu.Unlock()
		}
	})
	<-inst.exited
	return inst.exitStatus()
}

// peakRSS is the process's peak resident set size in bytes: VmHWM while it lives, ru_maxrss after.
func (inst *instance) peakRSS() (int64, error) {
	if !inst.hasExited() {
		n, err := readVmHWM(inst.pid)
		if err == nil || !inst.hasExited() {
			return n, err
		}
		// It exited while we read; rusage has the answer now.
	}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.maxRSS == 0 {
		return 0, errors.New("peak RSS unknown: no rusage for the exited process")
	}
	return inst.maxRSS, nil
}
