//go:build unix

package localfn

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/apache/pulsar-client-go/pulsar"
	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/internal/config"
	"github.com/streambridge/kinesis-pulsar/internal/kpl"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
)

// RelayOptions reads the function's environment (KEY=value, from PointAtStack) with the function's own
// configuration code, so the tools route and count records exactly as the function does. An invalid
// configuration gives the zero Options (no topic) and the error the function will report.
func RelayOptions(env []string) (relay.Options, error) {
	vars := make(map[string]string, len(env))
	for _, kv := range env {
		name, v, _ := strings.Cut(kv, "=")
		vars[name] = v
	}
	cfg, err := config.Load(func(name string) string { return vars[name] })
	if err != nil {
		return relay.Options{}, fmt.Errorf("the function's configuration: %w", err)
	}
	return cfg.Relay, nil
}

// Topics returns the topics the function may publish records of the streams arns to, in order of first
// use: the topic for each stream, then the dead-letter topic when set. A stream ARN that names no stream
// has no topic where the template needs one (the function reports such records as failed).
func Topics(opts relay.Options, arns ...string) []string {
	var topics []string
	for _, t := range []streamtopic.Template{opts.Topic, opts.DeadLetterTopic} {
		for _, arn := range arns {
			if name, err := t.Resolve(arn); err == nil && name != "" && !slices.Contains(topics, name) {
				topics = append(topics, name)
			}
		}
	}
	return topics
}

// ExpectedMessages is how many messages the records make when all are published: one per KPL user
// record (when opts.Deaggregate), one per plain record.
func ExpectedMessages(opts relay.Options, records []events.KinesisEventRecord) int {
	n := 0
	for _, r := range records {
		if opts.Deaggregate {
			if users, err := kpl.Deaggregate(r.Kinesis.Data); err == nil {
				n += len(users)
				continue
			}
		}
		n++
	}
	return n
}

// Message is a message read back from one of the watched topics.
type Message struct {
	Topic string
	pulsar.Message
}

// Watcher reads topics from the moment it was created on, like `pulsar-client consume -p Latest`
// started before the producer.
type Watcher struct {
	client  pulsar.Client
	readers []pulsar.Reader
	ch      chan Message
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Watch connects to serviceURL and opens a reader at the latest message of every topic (creating
// topics that do not exist yet, as the broker allows).
func Watch(ctx context.Context, serviceURL string, topics []string) (*Watcher, error) {
	client, err := pulsar.NewClient(pulsar.ClientOptions{
		URL: serviceURL, ConnectionTimeout: 5 * time.Second, OperationTimeout: 30 * time.Second,
		// The client's info lines would drown what the programs print; its errors still show.
		Logger: pulsarlog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))),
	})
	if err != nil {
		return nil, fmt.Errorf("pulsar client for %s: %w", serviceURL, err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	w := &Watcher{client: client, ch: make(chan Message, 1024), cancel: cancel}
	for _, topic := range topics {
		if err := ctx.Err(); err != nil {
			w.Close()
			return nil, fmt.Errorf("watch %s: %w", topic, err)
		}
		r, err := client.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.LatestMessageID(), ReceiverQueueSize: 1000})
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("reader on %s (is the broker at %s up?): %w", topic, serviceURL, err)
		}
		w.readers = append(w.readers, r)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for {
				m, err := r.Next(rctx)
				if err != nil {
					return
				}
				select {
				case w.ch <- Message{Topic: topic, Message: m}:
				case <-rctx.Done():
					return
				}
			}
		}()
	}
	return w, nil
}

// Collect returns the messages read so far and those that follow, until want messages are there
// (want <= 0: no count is known), no message came for idle, or ctx ends.
func (w *Watcher) Collect(ctx context.Context, want int, idle time.Duration) []Message {
	return w.CollectUntil(ctx, func(msgs []Message) bool { return want > 0 && len(msgs) >= want }, idle)
}

// CollectUntil returns the messages read so far and those that follow, until done says so, no
// message came for idle, or ctx ends.
func (w *Watcher) CollectUntil(ctx context.Context, done func([]Message) bool, idle time.Duration) []Message {
	var out []Message
	t := time.NewTimer(idle)
	defer t.Stop()
	for !done(out) {
		select {
		case m := <-w.ch:
			out = append(out, m)
			t.Reset(idle)
		case <-t.C:
			return out
		case <-ctx.Done():
			return out
		}
	}
	return out
}

// Close stops the readers and the client.
func (w *Watcher) Close() {
	w.cancel()
	w.wg.Wait()
	for _, r := range w.readers {
		r.Close()
	}
	w.client.Close()
}

// Format prints a message as `pulsar-client consume` does: a separator line, then key, properties
// (sorted by name here) and content. Content that is not printable UTF-8 text is shown safely: quoted
// when it is UTF-8 with control characters, in hex otherwise.
func Format(m pulsar.Message) string {
	return format(m.Key(), m.Properties(), m.Payload())
}

func format(key string, props map[string]string, payload []byte) string {
	if key == "" {
		key = "null"
	}
	pairs := make([]string, 0, len(props))
	for _, k := range slices.Sorted(maps.Keys(props)) {
		pairs = append(pairs, k+"="+props[k])
	}
	return fmt.Sprintf("----- got message -----\nkey:[%s], properties:[%s], content:%s", key, strings.Join(pairs, ", "), Content(payload))
}

// maxHexBytes bounds the bytes shown in hex; longer payloads are cut with their length.
const maxHexBytes = 64

// Content renders a payload for one line of output.
func Content(b []byte) string {
	if !utf8.Valid(b) {
		s := "hex:" + hex.EncodeToString(b[:min(len(b), maxHexBytes)])
		if len(b) > maxHexBytes {
			s += fmt.Sprintf("… (%d bytes, not UTF-8)", len(b))
		} else {
			s += " (not UTF-8)"
		}
		return s
	}
	s := string(b)
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
