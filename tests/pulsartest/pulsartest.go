// Package pulsartest helps tests read back what reached a real Pulsar broker.
package pulsartest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
)

// QuietLogger keeps the client's warnings and errors in test output, not its chatter.
func QuietLogger() pulsarlog.Logger {
	return pulsarlog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// Topic returns a fresh topic name in public/default, unique to this test run, made of the characters
// the function's configuration accepts in a topic (streamtopic.Parse).
func Topic(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("_.=-", r) {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	if len(name) > 60 {
		name = name[:60]
	}
	return fmt.Sprintf("persistent://public/default/%s-%s-%s", prefix, name, hex.EncodeToString(b))
}

// Client connects to serviceURL and closes the client when the test ends.
func Client(t testing.TB, serviceURL string) pulsar.Client {
	t.Helper()
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: serviceURL, OperationTimeout: 30 * time.Second, Logger: QuietLogger()})
	if err != nil {
		t.Fatalf("pulsar client for %s: %v", serviceURL, err)
	}
	t.Cleanup(c.Close)
	return c
}

// ReadAll reads topic (every partition, when partitioned) from the earliest message to the last one
// the broker has persisted when ReadAll runs, within timeout. Partitions are read one after the other,
// so the order within each partition is kept.
func ReadAll(t testing.TB, client pulsar.Client, topic string, timeout time.Duration) []pulsar.Message {
	t.Helper()
	partitions, err := client.TopicPartitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var all []pulsar.Message
	for _, p := range partitions {
		all = append(all, readPartition(ctx, t, client, p)...)
	}
	return all
}

func readPartition(ctx context.Context, t testing.TB, client pulsar.Client, topic string) []pulsar.Message {
	t.Helper()
	r, err := client.CreateReader(pulsar.ReaderOptions{
		Topic:                    topic,
		StartMessageID:           pulsar.EarliestMessageID(),
		ReceiverQueueSize:        1000,
		MaxPendingChunkedMessage: 10,
	})
	if err != nil {
		t.Fatalf("reader on %s: %v", topic, err)
	}
	defer r.Close()
	var out []pulsar.Message
	for r.HasNext() {
		// After a chunked message the reader may still report a next message (its position is the
		// first chunk's): give up on that one after a pause instead of waiting for the whole timeout.
		next, cancel := context.WithTimeout(ctx, chunkedTailWait)
		m, err := r.Next(next)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("reading %s after %d messages: %v", topic, len(out), err)
			}
			break
		}
		out = append(out, m)
	}
	return out
}

// chunkedTailWait bounds the wait for a message HasNext announced; see readPartition.
const chunkedTailWait = 3 * time.Second
