package auth

import (
	"fmt"
	"strconv"
	"strings"

	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/sirupsen/logrus"
)

// pulsar-client-go (v0.21.0, internal/connection.go doHandshake) learns that credentials do not work
// only during a connection's handshake, logs it with one of these messages and drops it: lookups and
// producer creation see a bare "connection error" until the operation timeout, and the client retries
// with the same credentials forever. Its log is the only place to learn it from.
const (
	// A broker answered CONNECT with an error, with the broker's message as the argument.
	handshakeFailedFormat = "Failed to establish connection with broker: '%s'"
	// The auth provider's GetData failed (an OAuth2 issuer refused the client, say), with the error
	// attached by WithError.
	credentialsFailedMessage = "Failed to load auth credentials"
)

// watchRejections wraps the client's logger so that the secret hears about failed handshakes.
func (s *Secret) watchRejections(l pulsarlog.Logger) pulsarlog.Logger {
	if l == nil {
		// What the client itself would use.
		l = pulsarlog.NewLoggerWithLogrus(logrus.StandardLogger())
	}
	return rejectionLogger{Logger: l, onReject: s.rejected}
}

// rejectionLogger passes everything on; a handshake failed for the credentials calls onReject.
type rejectionLogger struct {
	pulsarlog.Logger
	onReject func(problem string)
}

func (l rejectionLogger) SubLogger(f pulsarlog.Fields) pulsarlog.Logger {
	return rejectionLogger{Logger: l.Logger.SubLogger(f), onReject: l.onReject}
}

func (l rejectionLogger) WithFields(f pulsarlog.Fields) pulsarlog.Entry {
	return rejectionEntry{Entry: l.Logger.WithFields(f), onReject: l.onReject}
}

func (l rejectionLogger) WithField(name string, v any) pulsarlog.Entry {
	return rejectionEntry{Entry: l.Logger.WithField(name, v), onReject: l.onReject}
}

func (l rejectionLogger) WithError(err error) pulsarlog.Entry {
	return rejectionEntry{Entry: l.Logger.WithError(err), onReject: l.onReject, err: err}
}

func (l rejectionLogger) Warnf(format string, args ...any) {
	l.Logger.Warnf(format, args...)
	checkRefusal(l.onReject, format, args)
}

type rejectionEntry struct {
	pulsarlog.Entry
	onReject func(problem string)
	err      error // from WithError
}

func (e rejectionEntry) WithFields(f pulsarlog.Fields) pulsarlog.Entry {
	return rejectionEntry{Entry: e.Entry.WithFields(f), onReject: e.onReject, err: e.err}
}

func (e rejectionEntry) WithField(name string, v any) pulsarlog.Entry {
	return rejectionEntry{Entry: e.Entry.WithField(name, v), onReject: e.onReject, err: e.err}
}

func (e rejectionEntry) Warnf(format string, args ...any) {
	e.Entry.Warnf(format, args...)
	checkRefusal(e.onReject, format, args)
}

func (e rejectionEntry) Warn(args ...any) {
	e.Entry.Warn(args...)
	if e.err != nil && fmt.Sprint(args...) == credentialsFailedMessage {
		// The provider's error, such as the issuer's error code; the test against a real issuer checks
		// that it carries no client secret.
		e.onReject("gives the client no credentials: " + e.err.Error())
	}
}

// checkRefusal reports a refused handshake whose broker message is about authentication (Pulsar
// brokers answer "Failed to authenticate" whatever the cause, so as not to help an attacker).
func checkRefusal(onReject func(string), format string, args []any) {
	if format != handshakeFailedFormat || len(args) != 1 {
		return
	}
	msg := fmt.Sprint(args[0])
	if strings.Contains(strings.ToLower(msg), "authenticat") {
		onReject("is refused by the broker: " + strconv.Quote(msg))
	}
}
