//go:build unix

package runtimeapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"syscall"
	"time"
)

// Env is one Lambda execution environment: a runtime process started from Options.Binary, served by
// an in-process Runtime API on 127.0.0.1. Its methods are safe for concurrent use; invocations run
// one at a time, as in Lambda.
type Env struct {
	opts Options
	env  []string

	sem chan struct{} // one invocation at a time

	mu       sync.Mutex // guards the fields below
	inst     *instance  // current or last process
	closed   bool
	launches int

	shutdownOnce sync.Once
	shutdownExit Exit
}

// Start launches the process and returns once its init phase is complete (the runtime called /next
// and every registered extension called /event/next). An init failure is returned as ErrInitFailed and
// leaves nothing running.
func Start(ctx context.Context, opts Options) (*Env, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Env{opts: o, env: o.childEnv(), sem: make(chan struct{}, 1)}
	if _, err := e.ready(ctx); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Binary, err)
	}
	return e, nil
}

// ready returns a live, initialised instance, launching a fresh process (a cold start) if there is
// none or the last one died.
func (e *Env) ready(ctx context.Context) (*instance, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	inst := e.inst
	if inst == nil || inst.hasExited() {
		var err error
		inst, err = launch(&e.opts, e.env)
		if err != nil {
			e.mu.Unlock()
			return nil, err
		}
		e.inst = inst
		e.launches++
	}
	e.mu.Unlock()
	if closed(inst.ready) { // the warm path: no timer
		return inst, nil
	}
	if err := inst.awaitInit(ctx); err != nil {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.closed { // Shutdown ended this init; say so rather than "exited during init"
			return nil, ErrClosed
		}
		return nil, err
	}
	return inst, nil
}

// Invoke delivers one event and waits for the runtime's answer. A function error comes back in
// Result.Error with a nil error. A timeout, a process that dies holding the event, or a failed init
// return ErrTimeout, ErrProcessExited or ErrInitFailed (Result still carries the request id, and for
// the first two the error Lambda would report).
//
// After a timeout or a crash the process is gone; the next Invoke starts a fresh one by itself, which
// is what Lambda does, and reports it with Result.ColdStart. An event is only ever delivered once: if
// the process died while idle, the event goes to the fresh process instead.
//
// Cancelling ctx while the runtime holds the event resets the environment like a timeout does.
func (e *Env) Invoke(ctx context.Context, payload []byte) (Result, error) {
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("invoke: wait for the environment: %w", ctx.Err())
	}
	defer func() { <-e.sem }()

	if len(payload) > MaxPayloadBytes {
		return Result{}, fmt.Errorf("invoke: %w: %d bytes, the limit is %d", ErrPayloadTooLarge, len(payload), MaxPayloadBytes)
	}
	inv := &invocation{id: newRequestID(), payload: payload, done: make(chan struct{})}
	inv.traceID = newTraceID(time.Now())
	res := Result{RequestID: inv.id}

	for attempt := 0; ; attempt++ {
		inst, err := e.ready(ctx)
		if err != nil {
			return res, fmt.Errorf("invoke %s: %w", inv.id, err)
		}
		inst.beginInvoke()
		handoff := time.NewTimer(inst.handoffLimit())
		select {
		case inst.events <- inv:
			handoff.Stop()
			return e.await(ctx, inst, inv)
		case <-inst.exited:
		case <-handoff.C:
			// The runtime kept working after its answer, past the deadline: Lambda times that
			// invocation out and resets the environment. This event was never handed out.
			inst.terminate(context.Background(), "timeout")
		case <-ctx.Done():
			handoff.Stop()
			inst.endInvoke()
			return res, fmt.Errorf("invoke %s: %w", inv.id, ctx.Err())
		}
		inst.endInvoke()
		// The event was not delivered, so a fresh process takes it, as Lambda would route it to a
		// new environment.
		if attempt >= 2 {
			return res, fmt.Errorf("invoke %s: %w before taking the event: %s", inv.id, ErrProcessExited, inst.exitStatus())
		}
	}
}

func (e *Env) await(ctx context.Context, inst *instance, inv *invocation) (Result, error) {
	o := &e.opts
	if o.Platform != nil {
		fmt.Fprintf(o.Platform, "START RequestId: %s Version: %s\n", inv.id, functionVersion)
	}
	timer := time.NewTimer(o.Timeout)
	defer timer.Stop()
	select {
	case <-inv.done:
	case <-inst.exited:
	case <-timer.C:
	case <-ctx.Done():
	}

	res := Result{RequestID: inv.id}
	inst.mu.Lock()
	res.ColdStart = inv.cold
	if inv.cold {
		res.InitDuration = inv.initDur
	}
	delivered := inv.delivered
	inst.mu.Unlock()

	var err error
	switch {
	case closed(inv.done): // wins over a simultaneous exit: a panic posts its error, then exits
		res.Payload, res.Error = inv.response, inv.fnErr
		res.Duration = inv.finished.Sub(inv.delivered)
		inst.endInvoke()
	case closed(inst.exited):
		x := inst.exitStatus()
		res.Duration = time.Since(delivered)
		res.Error = &FunctionError{Type: "Runtime.ExitError",
			Message: fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", inv.id, x)}
		err = fmt.Errorf("invoke %s: %w while running the handler: %s", inv.id, ErrProcessExited, x)
	case ctx.Err() != nil:
		inst.terminate(context.Background(), "failure")
		res.Duration = time.Since(delivered)
		err = fmt.Errorf("invoke %s: %w (the environment was reset)", inv.id, ctx.Err())
	default:
		// Lambda resets a timed-out environment like a shutdown: SIGTERM if an extension registered,
		// SIGKILL after the grace period.
		inst.terminate(context.Background(), "timeout")
		res.Duration = o.Timeout
		res.Error = &FunctionError{Type: "Sandbox.Timedout",
			Message: fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.id, o.Timeout.Seconds())}
		err = fmt.Errorf("invoke %s: %w after %s; the process was killed", inv.id, ErrTimeout, o.Timeout)
	}
	if o.Platform != nil {
		e.report(inst, res)
	}
	return res, err
}

// report writes Lambda's END and REPORT lines.
func (e *Env) report(inst *instance, res Result) {
	ms := float64(res.Duration) / float64(time.Millisecond)
	line := fmt.Sprintf("END RequestId: %s\nREPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %.0f ms\tMemory Size: %d MB",
		res.RequestID, res.RequestID, ms, math.Ceil(ms), e.opts.MemoryMB)
	if rss, err := inst.peakRSS(); err == nil {
		line += fmt.Sprintf("\tMax Memory Used: %d MB", int(math.Ceil(float64(rss)/(1<<20))))
	}
	if res.ColdStart {
		line += fmt.Sprintf("\tInit Duration: %.2f ms", float64(res.InitDuration)/float64(time.Millisecond))
	}
	if res.Error != nil && res.Error.Type == "Sandbox.Timedout" {
		line += "\tStatus: timeout"
	}
	fmt.Fprintln(e.opts.Platform, line)
}

func (e *Env) current() (*instance, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inst == nil {
		return nil, errors.New("no runtime process")
	}
	return e.inst, nil
}

// InitDuration is the init phase of the current (or last) process: from its start to the runtime's
// first /next, or to the last extension's first /event/next if later.
func (e *Env) InitDuration() time.Duration {
	inst, err := e.current()
	if err != nil {
		return 0
	}
	return inst.initDuration()
}

// Launches counts the processes started so far; more than one means cold starts after a reset.
func (e *Env) Launches() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.launches
}

// PID is the current (or last) process id.
func (e *Env) PID() int {
	inst, err := e.current()
	if err != nil {
		return 0
	}
	return inst.pid
}

// Addr is the Runtime API address of the current process (AWS_LAMBDA_RUNTIME_API).
func (e *Env) Addr() string {
	inst, err := e.current()
	if err != nil {
		return ""
	}
	return inst.addr
}

// Freeze stops the process with SIGSTOP and returns once every thread is stopped (Linux), as Lambda
// freezes an idle environment. Invoke thaws it by itself.
func (e *Env) Freeze() error {
	inst, err := e.current()
	if err != nil {
		return fmt.Errorf("freeze: %w", err)
	}
	if err := inst.freeze(); err != nil {
		return fmt.Errorf("freeze: %w", err)
	}
	return nil
}

// Thaw resumes a frozen process with SIGCONT.
func (e *Env) Thaw() error {
	inst, err := e.current()
	if err != nil {
		return fmt.Errorf("thaw: %w", err)
	}
	if err := inst.thaw(); err != nil {
		return fmt.Errorf("thaw: %w", err)
	}
	return nil
}

// PeakRSS is the peak resident set size of the current (or last) process in bytes: /proc VmHWM while
// it runs, the kernel's ru_maxrss once it has exited. Lambda bills and limits memory on this kind of
// figure, but nothing here enforces Options.MemoryMB.
func (e *Env) PeakRSS() (int64, error) {
	inst, err := e.current()
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	n, err := inst.peakRSS()
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	return n, nil
}

// Reclaim kills the current process with SIGKILL, as Lambda may reclaim an environment at any moment
// after a response, and returns once the process is gone, so the next Invoke cannot reach the dying
// process's pending /next and starts a fresh one (a cold start).
func (e *Env) Reclaim() error {
	inst, err := e.current()
	if err != nil {
		return err
	}
	inst.mu.Lock()
	inst.signalLocked(syscall.SIGKILL)
	inst.mu.Unlock()
	<-inst.exited
	return nil
}

// Shutdown ends the environment as Lambda does: resume the process if frozen, send SIGTERM only if an
// extension registered, SIGKILL after Options.ShutdownGrace (or when ctx ends), and return how the
// process ended. Later calls return the same Exit; Invoke then fails with ErrClosed.
func (e *Env) Shutdown(ctx context.Context) (Exit, error) {
	e.shutdownOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		inst := e.inst
		e.mu.Unlock()
		if inst != nil {
			e.shutdownExit = inst.terminate(ctx, "spindown")
		}
	})
	return e.shutdownExit, nil
}
