//go:build unix

package runtimeapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
)

// RIE runs the bootstrap under AWS's Runtime Interface Emulator (aws-lambda-rie) and invokes it through
// the emulator's POST /2015-03-31/functions/function/invocations. It exists to cross-check Env.
//
// How the emulator's answers map onto Result (aws-lambda-rie from aws-sam-cli 1.170.0):
//   - 200 with the handler's body: Result.Payload. A function error is also 200, with the error document
//     as body and no X-Amz-Function-Error header, so a body shaped like {"errorMessage","errorType"...}
//     is taken as Result.Error.
//   - 200 with "Task timed out after N.00 seconds": ErrTimeout. The emulator SIGTERMs the runtime and
//     the next invocation re-runs init (a cold start).
//   - 502 with {"errorType":"Runtime.ExitError",...} or an empty body: ErrProcessExited, or
//     ErrInitFailed when the log shows the init failed; 502 with another error document (a panic, whose
//     process then exits) is a function error, as with Env.
//   - The request id, the cold start and its init duration come from the emulator's log: the
//     "START RequestId:" line (the same id the handler sees), "(rapid) INIT REPORT(durationMs: ...)".
//
// Init is lazy: the process starts with the first Invoke, whose Result has ColdStart set.
type RIE struct {
	opts   Options
	cmd    *exec.Cmd
	url    string
	client *http.Client
	logs   *rieLog

	sem chan struct{} // one invocation at a time
	seq int           // invocations posted; guarded by sem

	exited       chan struct{}
	exit         Exit
	shutdownOnce sync.Once
	shutdownExit Exit
}

// FindRIE returns the emulator binary for this host's architecture inside the project venv: KP_VENV,
// or <repo root>/.cache/venv where the repo root is the nearest parent directory with a go.mod.
func FindRIE() (string, error) {
	venv := os.Getenv("KP_VENV")
	if venv == "" {
		root, err := localenv.RepoRoot()
		if err != nil {
			return "", fmt.Errorf("find RIE: %w", err)
		}
		venv = filepath.Join(root, ".cache", "venv")
	}
	return FindRIEIn(venv)
}

// FindRIEIn returns the emulator binary for this host's architecture inside venv.
func FindRIEIn(venv string) (string, error) {
	arch, ok := map[string]string{"amd64": "x86_64", "arm64": "arm64"}[runtime.GOARCH]
	if !ok {
		return "", fmt.Errorf("find RIE: aws-sam-cli ships no emulator for GOARCH %s", runtime.GOARCH)
	}
	pattern := filepath.Join(venv, "lib", "python3*", "site-packages", "samcli", "local", "rapid", "aws-lambda-rie-"+arch)
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return "", fmt.Errorf("find RIE: %w", err)
	}
	if len(matches) == 0 {
		return "", fmt.Errorf("find RIE: no %s: install aws-sam-cli==1.170.0 into the venv "+
			"(infra/local/stack.sh install) or point KP_VENV at a venv that has it", pattern)
	}
	return matches[len(matches)-1], nil
}

// StartRIE starts the emulator rie with the function of opts and waits until it accepts invocations.
// opts.Timeout must be whole seconds (the emulator reads AWS_LAMBDA_FUNCTION_TIMEOUT as an integer);
// Platform, FreezeBetweenInvokes and InitTimeout are not supported.
func StartRIE(ctx context.Context, rie string, opts Options) (*RIE, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.Timeout%time.Second != 0 {
		return nil, fmt.Errorf("start RIE: timeout %s is not whole seconds, which is all the emulator accepts", o.Timeout)
	}
	if o.FreezeBetweenInvokes || o.Platform != nil {
		return nil, errors.New("start RIE: FreezeBetweenInvokes and Platform are Env features")
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, fmt.Errorf("start RIE: %w", err)
	}
	apiAddr, rtAddr := "127.0.0.1:"+ports[0], "127.0.0.1:"+ports[1]

	env := make([]string, 0, 24)
	for _, kv := range o.childEnv() {
		// The emulator sets the runtime API address itself, and AWS_LAMBDA_MAX_CONCURRENCY switches it
		// to the multi-concurrency (Managed Instances) emulator.
		if !strings.HasPrefix(kv, "AWS_LAMBDA_RUNTIME_API=") && !strings.HasPrefix(kv, "AWS_LAMBDA_MAX_CONCURRENCY=") {
			env = append(env, kv)
		}
	}
	env = append(env, "AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(int(o.Timeout/time.Second)))

	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start RIE: pipe: %w", err)
	}
	cmd := exec.Command(rie,
		"--log-level", "info",
		"--runtime-interface-emulator-address", apiAddr,
		"--runtime-api-address", rtAddr,
		o.Binary)
	cmd.Dir = filepath.Dir(o.Binary)
	cmd.Env = env
	// One pipe for both streams keeps the emulator's log lines and the function's output in order;
	// rieLog splits them again.
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = pr.Close()
		_ = pw.Close()
		return nil, fmt.Errorf("start RIE %s: %w", rie, err)
	}
	_ = pw.Close()

	r := &RIE{
		opts: o,
		cmd:  cmd,
		url:  "http://" + apiAddr + "/2015-03-31/functions/function/invocations",
		client: &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     time.Minute,
		}},
		logs:   newRIELog(o.Stdout, o.Stderr),
		sem:    make(chan struct{}, 1),
		exited: make(chan struct{}),
	}
	go r.logs.run(pr)
	go r.wait()

	if err := r.awaitListening(ctx, apiAddr); err != nil {
		_, _ = r.Shutdown(context.Background())
		return nil, fmt.Errorf("start RIE: %w", err)
	}
	return r, nil
}

func freePorts(n int) ([]string, error) {
	// Listen on all first so the ports differ; the emulator binds them right after (a small race).
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ports = append(ports, port)
	}
	return ports, nil
}

func (r *RIE) awaitListening(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-r.exited:
			return fmt.Errorf("emulator exited before listening on %s: %s", addr, r.exit)
		case <-ctx.Done():
			return fmt.Errorf("wait for the emulator on %s: %w", addr, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("emulator not listening on %s after 10s: %w", addr, err)
		}
	}
}

func (r *RIE) wait() {
	_ = r.cmd.Wait()
	st := r.cmd.ProcessState
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		r.exit = Exit{Code: -1, Signal: ws.Signal()}
	} else {
		r.exit = Exit{Code: st.ExitCode()}
	}
	close(r.exited)
}

// Invoke posts one event to the emulator and maps its answer (see RIE).
func (r *RIE) Invoke(ctx context.Context, payload []byte) (Result, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("invoke: wait for the emulator: %w", ctx.Err())
	}
	defer func() { <-r.sem }()
	if closed(r.exited) {
		return Result{}, fmt.Errorf("invoke: %w: the emulator exited: %s", ErrClosed, r.exit)
	}
	if len(payload) > MaxPayloadBytes {
		return Result{}, fmt.Errorf("invoke: %w: %d bytes, the limit is %d", ErrPayloadTooLarge, len(payload), MaxPayloadBytes)
	}
	r.seq++
	rec := r.logs.expect(r.seq)
	defer r.logs.forget(r.seq)

	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(payload))
	if err != nil {
		return Result{}, fmt.Errorf("invoke: %w", err)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("invoke: post to the emulator: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return Result{}, fmt.Errorf("invoke: read the emulator's answer: %w", err)
	}
	wall := time.Since(start)

	// The emulator logs the invocation's last line before it answers; wait for our reader to see it.
	t := time.NewTimer(2 * time.Second)
	select {
	case <-rec.done:
	case <-t.C:
	case <-r.exited:
	}
	t.Stop()
	info := r.logs.snapshot(rec)

	res := Result{RequestID: info.id, Duration: info.duration, ColdStart: info.cold, InitDuration: info.initDur}
	if res.Duration == 0 {
		res.Duration = wall
	}
	id := res.RequestID
	if id == "" {
		id = "(unknown)"
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if bytes.HasPrefix(body, []byte("Task timed out after ")) {
			res.Error = &FunctionError{Type: "Sandbox.Timedout", Message: "RequestId: " + id + " Error: " + string(body)}
			return res, fmt.Errorf("invoke %s: %w: %s", id, ErrTimeout, body)
		}
		if fe := asErrorDocument(body); fe != nil {
			res.Error = fe
			return res, nil
		}
		res.Payload = body
		return res, nil
	case http.StatusBadGateway:
		fe := asErrorDocument(body)
		switch {
		case info.initFailed:
			msg := "runtime exited during init"
			if fe != nil {
				msg = fe.Error()
			}
			return res, fmt.Errorf("invoke %s: %w: %s", id, ErrInitFailed, msg)
		case fe == nil || fe.Type == "Runtime.ExitError":
			if fe == nil {
				fe = &FunctionError{Type: "Runtime.ExitError", Message: strings.TrimSpace(string(body))}
			}
			res.Error = fe
			return res, fmt.Errorf("invoke %s: %w while running the handler: %s", id, ErrProcessExited, fe.Message)
		default:
			res.Error = fe
			return res, nil
		}
	default:
		return res, fmt.Errorf("invoke %s: emulator answered %s: %s", id, resp.Status, bytes.TrimSpace(body))
	}
}

// asErrorDocument returns the error document in body, or nil when body is something else. The cheap
// prefix test keeps ordinary responses off the JSON decoder (aws-lambda-go writes errorMessage first).
func asErrorDocument(body []byte) *FunctionError {
	b := bytes.TrimSpace(body)
	if !bytes.HasPrefix(b, []byte(`{"errorMessage"`)) && !bytes.HasPrefix(b, []byte(`{"errorType"`)) {
		return nil
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil
	}
	for k := range doc {
		if k != "errorMessage" && k != "errorType" && k != "stackTrace" {
			return nil
		}
	}
	return parseFunctionError(b, "")
}

// Shutdown sends SIGTERM to the emulator, which resets the sandbox (SIGTERM to the runtime) and exits;
// after 3 s it kills the emulator's process group. It returns the emulator's exit.
func (r *RIE) Shutdown(ctx context.Context) (Exit, error) {
	r.shutdownOnce.Do(func() {
		pgid := r.cmd.Process.Pid
		if !closed(r.exited) {
			_ = r.cmd.Process.Signal(syscall.SIGTERM)
			t := time.NewTimer(3 * time.Second)
			select {
			case <-r.exited:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		forced := !closed(r.exited)
		// The group also holds the runtime the emulator started; leave nothing behind.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-r.exited
		r.shutdownExit = r.exit
		r.shutdownExit.Forced = forced
	})
	return r.shutdownExit, nil
}

// rieLog forwards the emulator's merged output, the "(rapid)" log lines to Stderr and the rest (the
// function's output and START/END/REPORT) to Stdout, and extracts per-invocation facts.
type rieLog struct {
	stdout, stderr io.Writer

	mu     sync.Mutex
	starts int
	recs   map[int]*rieRecord
	cur    *rieRecord
}

type rieRecord struct {
	done       chan struct{}
	finished   bool
	id         string
	cold       bool
	initDur    time.Duration
	initFailed bool
	duration   time.Duration
}

func newRIELog(stdout, stderr io.Writer) *rieLog {
	return &rieLog{stdout: stdout, stderr: stderr, recs: make(map[int]*rieRecord)}
}

func (l *rieLog) expect(seq int) *rieRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recordLocked(seq)
}

func (l *rieLog) recordLocked(seq int) *rieRecord {
	rec := l.recs[seq]
	if rec == nil {
		rec = &rieRecord{done: make(chan struct{})}
		l.recs[seq] = rec
	}
	return rec
}

func (l *rieLog) forget(seq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.recs, seq)
}

func (l *rieLog) snapshot(rec *rieRecord) rieRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return *rec
}

func (l *rieLog) run(r io.ReadCloser) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			l.line(line)
		}
		if err != nil {
			return
		}
	}
}

func (l *rieLog) line(line []byte) {
	s := string(bytes.TrimRight(line, "\r\n"))
	rapid := strings.Contains(s, "] (rapid) ")
	if rapid {
		_, _ = l.stderr.Write(line)
	} else {
		_, _ = l.stdout.Write(line)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case strings.HasPrefix(s, "START RequestId: "):
		l.starts++
		l.cur = l.recordLocked(l.starts)
		l.cur.id, _, _ = strings.Cut(strings.TrimPrefix(s, "START RequestId: "), " ")
	case l.cur == nil:
	case rapid && strings.Contains(s, "INIT REPORT(durationMs: "):
		if !l.cur.cold {
			l.cur.cold = true
			v := s[strings.Index(s, "durationMs: ")+len("durationMs: "):]
			v, _, _ = strings.Cut(v, ")")
			if ms, err := strconv.ParseFloat(v, 64); err == nil {
				l.cur.initDur = time.Duration(ms * float64(time.Millisecond))
			}
		}
	case rapid && strings.Contains(s, "INIT RTDONE(status: ") && !strings.Contains(s, "INIT RTDONE(status: success)"):
		l.cur.initFailed = true
	case strings.HasPrefix(s, "REPORT RequestId: "):
		for _, f := range strings.Split(s, "\t") {
			if v, ok := strings.CutPrefix(f, "Duration: "); ok {
				if ms, err := strconv.ParseFloat(strings.TrimSuffix(v, " ms"), 64); err == nil {
					l.cur.duration = time.Duration(ms * float64(time.Millisecond))
				}
			}
		}
		l.finishLocked()
	case rapid && strings.Contains(s, "Invoke DONE failed"):
		l.finishLocked()
	}
}

func (l *rieLog) finishLocked() {
	if !l.cur.finished {
		l.cur.finished = true
		close(l.cur.done)
	}
}
