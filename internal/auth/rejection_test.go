package auth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
)

// The client's own log lines reach the wrapped logger unchanged, and only a handshake refused for
// authentication marks the secret as refused. The real client's messages are checked against a broker
// in auth_integration_test.go.
func TestRejectionWatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		log     func(l pulsarlog.Logger)
		problem string // "" = no failure noticed
	}{
		{"refused handshake", func(l pulsarlog.Logger) {
			l.SubLogger(pulsarlog.Fields{"remote_addr": "x"}).Warnf(handshakeFailedFormat, "Failed to authenticate")
		}, `is refused by the broker: "Failed to authenticate"`},
		{"refused handshake on an entry", func(l pulsarlog.Logger) {
			l.WithField("a", 1).WithFields(pulsarlog.Fields{"b": 2}).Warnf(handshakeFailedFormat, "Unable to authenticate")
		}, `is refused by the broker: "Unable to authenticate"`},
		{"other handshake error", func(l pulsarlog.Logger) { l.Warnf(handshakeFailedFormat, "Service not ready") }, ""},
		{"credentials not loaded", func(l pulsarlog.Logger) {
			l.SubLogger(pulsarlog.Fields{"x": 1}).WithError(errAny).WithField("y", 2).Warn(credentialsFailedMessage)
		}, "gives the client no credentials: some error"},
		{"other warning", func(l pulsarlog.Logger) { l.WithError(errAny).Warnf("Failed to connect to broker: %s", "authenticate") }, ""},
		{"other warning with an error", func(l pulsarlog.Logger) { l.WithError(errAny).Warn("Failed to connect to broker.") }, ""},
		{"not a warning", func(l pulsarlog.Logger) { l.Errorf(handshakeFailedFormat, "Failed to authenticate") }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			appLog := slog.New(slog.NewJSONHandler(&out, nil))
			s := New(&fakeSecrets{value: jwt(map[string]any{"sub": "fn"})}, "arn:aws:secretsmanager:us-east-1:1:secret:pulsar", appLog)
			opts := pulsar.ClientOptions{Logger: pulsarlog.NewLoggerWithSlog(appLog.With("component", "pulsar-client"))}
			if err := s.Apply(context.Background(), &opts); err != nil {
				t.Fatal(err)
			}
			tc.log(opts.Logger)
			tc.log(opts.Logger) // a second refusal of the same copy is not logged again
			if !strings.Contains(out.String(), `"component":"pulsar-client"`) {
				t.Error("the client's log line did not reach the wrapped logger")
			}
			err := s.Rejected()
			notices := strings.Count(out.String(), "do not work")
			if tc.problem == "" {
				if err != nil || notices != 0 {
					t.Errorf("Rejected() = %v, %d notices; want none", err, notices)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), `secret "arn:aws:secretsmanager:us-east-1:1:secret:pulsar": `+tc.problem) {
				t.Errorf("Rejected() = %v, want an error naming the secret and %q", err, tc.problem)
			}
			if notices != 1 {
				t.Errorf("%d log lines about the refusal, want 1", notices)
			}
		})
	}
}

var errAny = errors.New("some error")

// A refused token without expiry is fetched again by the supplier, at most every minRefetchInterval;
// the fresh copy is no longer marked refused.
func TestRefusedTokenIsFetchedAgain(t *testing.T) {
	now := time.Now()
	old, rotated := jwt(map[string]any{"sub": "a"}), jwt(map[string]any{"sub": "b"})
	f := &fakeSecrets{value: old}
	s := New(f, "pulsar", nil)
	s.now = func() time.Time { return now }
	if err := s.Apply(context.Background(), &pulsar.ClientOptions{}); err != nil {
		t.Fatal(err)
	}
	s.rejected("Failed to authenticate")
	f.set(rotated)

	now = now.Add(minRefetchInterval / 2)
	if tok, _ := s.token(); tok != old || f.fetches != 1 {
		t.Fatalf("refetched %d times within minRefetchInterval; rotated token used = %v", f.fetches-1, tok == rotated)
	}
	now = now.Add(minRefetchInterval)
	if tok, err := s.token(); err != nil || tok != rotated || f.fetches != 2 {
		t.Fatalf("after the interval: err %v, fetches %d, rotated token used = %v", err, f.fetches, tok == rotated)
	}
	if err := s.Rejected(); err != nil {
		t.Errorf("the fresh copy is still marked refused: %v", err)
	}
	// A valid token is not fetched again.
	now = now.Add(time.Hour)
	if _, _ = s.token(); f.fetches != 2 {
		t.Errorf("fetches %d, want 2", f.fetches)
	}
}

// A Secrets Manager outage while the token must be refreshed costs one attempt per interval, not one
// per reconnect of the client; the old token keeps being offered.
func TestFailedRefetchIsRateLimited(t *testing.T) {
	now := time.Now()
	old := jwt(map[string]any{"exp": now.Add(time.Minute).Unix()})
	f := &fakeSecrets{value: old}
	s := New(f, "pulsar", slog.New(slog.DiscardHandler))
	s.now = func() time.Time { return now }
	if err := s.Apply(context.Background(), &pulsar.ClientOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.err = errAny
	f.mu.Unlock()
	now = now.Add(2 * time.Minute) // expired
	for range 5 {
		if tok, err := s.token(); err != nil || tok != old {
			t.Fatalf("token() = err %v; want the old token while the secret cannot be read", err)
		}
	}
	if f.fetches != 2 {
		t.Errorf("fetches %d, want 2 (the first and one attempt)", f.fetches)
	}
}

// After Refresh the next client gets a fresh copy, even when the client being replaced kept using the
// cached one meanwhile; and a client is never created with a copy a broker refused.
func TestNewClientGetsFreshCopy(t *testing.T) {
	first, second, third := jwt(map[string]any{"sub": "1"}), jwt(map[string]any{"sub": "2"}), jwt(map[string]any{"sub": "3"})
	f := &fakeSecrets{value: first}
	s := New(f, "pulsar", slog.New(slog.DiscardHandler))
	apply := func() string {
		t.Helper()
		if err := s.Apply(context.Background(), &pulsar.ClientOptions{}); err != nil {
			t.Fatal(err)
		}
		tok, err := s.token()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if apply() != first {
		t.Fatal("first Apply did not use the secret")
	}
	s.Refresh()
	if tok, _ := s.token(); tok != first { // the old client reconnecting
		t.Fatal("the old client lost its token")
	}
	f.set(second)
	if apply() != second || f.fetches != 2 {
		t.Fatalf("after Refresh: fetches %d, rotated token used = false", f.fetches)
	}
	if apply() != second || f.fetches != 2 {
		t.Fatalf("a healthy copy was fetched again (fetches %d)", f.fetches)
	}
	s.rejected("Failed to authenticate")
	f.set(third)
	if apply() != third || f.fetches != 3 {
		t.Fatalf("a refused copy was reused for a new client (fetches %d)", f.fetches)
	}
}

// When the secret cannot be read again, a new client gets the copy already cached rather than nothing.
func TestCachedCopyWhenRefetchFails(t *testing.T) {
	tok := jwt(map[string]any{"sub": "1"})
	f := &fakeSecrets{value: tok}
	s := New(f, "pulsar", slog.New(slog.DiscardHandler))
	if err := s.Apply(context.Background(), &pulsar.ClientOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Refresh()
	f.mu.Lock()
	f.err = errAny
	f.mu.Unlock()
	if err := s.Apply(context.Background(), &pulsar.ClientOptions{}); err != nil || f.fetches != 2 {
		t.Fatalf("Apply = %v after %d fetches; want the cached copy after one more attempt", err, f.fetches)
	}
	if got, _ := s.token(); got != tok {
		t.Error("the cached token was not used")
	}
}
