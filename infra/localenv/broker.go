package localenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BrokerOptions describes an extra Pulsar standalone broker (infra/local/pulsar.sh).
type BrokerOptions struct {
	// Name identifies the broker's files under .cache/run (pulsar-<Name>.*); lower-case letters, digits
	// and dashes. It must be unique among brokers running at the same time, across test packages too.
	// Empty: derived from the test name.
	Name string
	// BrokerPort and WebPort: 0 picks free ports.
	BrokerPort, WebPort int
	// ConfFiles are merged over the stack's broker settings, in order (see infra/local/pulsar/standalone.conf).
	ConfFiles []string
	// Memory holds the JVM memory flags; empty means a small broker (512 MiB heap and direct memory).
	Memory string
	// TokenFile holds a token that the readiness checks send, for brokers with authentication enabled.
	TokenFile string
	// StartTimeout bounds each start and restart; 0 means 120 s.
	StartTimeout time.Duration
}

// Broker is an extra broker started by StartBroker. Its methods may be called from any goroutine.
type Broker struct {
	name       string
	script     string
	brokerPort int
	webPort    int
	timeout    time.Duration
}

const defaultBrokerMemory = "-Xms256m -Xmx512m -XX:MaxDirectMemorySize=512m"

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,40}$`)

// StartBroker starts an extra standalone broker with empty data and waits until it accepts a publish.
// t.Cleanup stops it. The test fails when the broker cannot be started.
func StartBroker(t testing.TB, opts BrokerOptions) *Broker {
	t.Helper()
	b, err := startBroker(t, opts)
	if err != nil {
		t.Fatalf("localenv: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			// Kept until the next `stack.sh up`.
			t.Logf("localenv: log of broker %q: %s", b.name, b.LogPath())
		}
		if err := b.Stop(); err != nil {
			t.Errorf("localenv: %v", err)
		}
	})
	return b
}

func startBroker(t testing.TB, opts BrokerOptions) (*Broker, error) {
	script, err := RepoFile("infra/local/pulsar.sh")
	if err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = nameFromTest(t.Name())
	}
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("broker name %q: use lower-case letters, digits and dashes (at most 41)", name)
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	b := &Broker{name: name, script: script, brokerPort: opts.BrokerPort, webPort: opts.WebPort, timeout: opts.StartTimeout}
	if b.brokerPort == 0 {
		b.brokerPort = ports[0]
	}
	if b.webPort == 0 {
		b.webPort = ports[1]
	}
	if b.timeout <= 0 {
		b.timeout = 120 * time.Second
	}
	memory := opts.Memory
	if memory == "" {
		memory = defaultBrokerMemory
	}
	args := []string{"start", "--name", name,
		"--broker-port", strconv.Itoa(b.brokerPort), "--web-port", strconv.Itoa(b.webPort),
		"--mem", memory, "--timeout", strconv.Itoa(int(b.timeout.Seconds()))}
	for _, f := range opts.ConfFiles {
		args = append(args, "--conf", f)
	}
	if opts.TokenFile != "" {
		args = append(args, "--token-file", opts.TokenFile)
	}
	if err := b.run(b.timeout+30*time.Second, args...); err != nil {
		return nil, err
	}
	return b, nil
}

// LogPath returns the broker's console log, .cache/run/pulsar-<name>.log (under KP_CACHE_DIR when set).
func (b *Broker) LogPath() string {
	return filepath.Join(b.cacheDir(), "run", "pulsar-"+b.name+".log")
}

// cacheDir is the stack's cache root as the scripts see it from the repository root, where make runs
// them: KP_CACHE_DIR (relative to the root when relative), or <repo>/.cache.
func (b *Broker) cacheDir() string {
	// The script is <repo>/infra/local/pulsar.sh.
	root := filepath.Dir(filepath.Dir(filepath.Dir(b.script)))
	cache := os.Getenv("KP_CACHE_DIR")
	switch {
	case cache == "":
		return filepath.Join(root, ".cache")
	case filepath.IsAbs(cache):
		return cache
	default:
		return filepath.Join(root, cache)
	}
}

// Name returns the broker's name.
func (b *Broker) Name() string { return b.name }

// ServiceURL returns the broker's binary protocol URL, pulsar://127.0.0.1:<port>.
func (b *Broker) ServiceURL() string { return fmt.Sprintf("pulsar://127.0.0.1:%d", b.brokerPort) }

// AdminURL returns the broker's web service URL, http://127.0.0.1:<port>.
func (b *Broker) AdminURL() string { return fmt.Sprintf("http://127.0.0.1:%d", b.webPort) }

// Admin returns an admin API client for this broker.
func (b *Broker) Admin() *Admin { return NewAdmin(b.AdminURL()) }

// Kill crashes the broker: SIGSTOP, then SIGKILL (see pulsar.sh kill); nothing is flushed or closed.
// Data stays for Restart.
func (b *Broker) Kill() error { return b.run(time.Minute, "kill", "--name", b.name) }

// Restart starts the broker again on the same ports, with the same settings and data, after stopping it
// gracefully if it is still running, and waits until it accepts a publish.
func (b *Broker) Restart() error {
	return b.run(b.timeout+60*time.Second, "restart", "--name", b.name, "--timeout", strconv.Itoa(int(b.timeout.Seconds())))
}

// Stop stops the broker gracefully (SIGTERM, then SIGKILL after 20 s). Stopping a stopped broker is fine.
func (b *Broker) Stop() error { return b.run(time.Minute, "stop", "--name", b.name) }

// run executes pulsar.sh with a deadline; its output goes into the error when it fails.
func (b *Broker) run(timeout time.Duration, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.script, args...)
	// go test runs in the package directory; the stack's cache must not move with it.
	cmd.Env = append(os.Environ(), "KP_CACHE_DIR="+b.cacheDir())
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// Should the deadline pass, do not wait for pipes held open by anything the script started.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		return fmt.Errorf("pulsar.sh %s for broker %q: %w\n%s", args[0], b.name, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, e.g. for a TLS port in a --conf
// file of StartBroker.
func FreePort(t testing.TB) int {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatalf("localenv: %v", err)
	}
	return ports[0]
}

// freePorts returns n distinct ports the kernel handed out for 127.0.0.1; all listeners stay open until
// every port is chosen, so the ports differ.
func freePorts(n int) ([]int, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// nameFromTest makes a broker name from a test name: "TestFaults/kill_broker" -> "testfaults-kill-broker".
func nameFromTest(testName string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(testName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 41 {
		name = strings.TrimRight(name[:41], "-")
	}
	if name == "" {
		name = "broker"
	}
	return name
}
