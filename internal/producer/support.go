package producer

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/apache/pulsar-client-go/pulsar/backoff"
)

// capped is an exponential reconnect backoff from 100 ms up to maxReconnectBackoff, with 20% jitter.
type capped struct{ next time.Duration }

func newBackoff() backoff.Policy { return &capped{} }

func (b *capped) Next() time.Duration {
	switch {
	case b.next == 0:
		b.next = 100 * time.Millisecond
	case b.next < maxReconnectBackoff:
		b.next = min(2*b.next, maxReconnectBackoff)
	}
	return b.next + time.Duration(rand.Int64N(int64(b.next)/5+1))
}

// IsMaxBackoffReached is false: the client only uses it to count a metric, and retrying never stops.
func (b *capped) IsMaxBackoffReached() bool { return false }

func (b *capped) Reset() { b.next = 0 }

// quietLogger passes the client's warnings and errors on, but not its chatter about every
// connection and producer, which would drown the one summary line per invocation.
func quietLogger(l *slog.Logger) *slog.Logger {
	return slog.New(minLevel{l.Handler(), slog.LevelWarn}).With("component", "pulsar-client")
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}

// redactURL keeps scheme and hosts only, in case a URL carries user information.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}
