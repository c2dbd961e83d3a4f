package sink

import (
	"strings"
	"time"
)

// Format is how a Pulsar message becomes the data of a Kinesis record.
type Format int

const (
	// FormatRaw writes the payload bytes unchanged. Default.
	FormatRaw Format = iota
	// FormatJSON writes a JSON envelope: topic, key, message id, properties, publish and event time, and
	// the payload in base64.
	FormatJSON
	// FormatJSONExpand is FormatJSON with the payload inlined as a JSON value when it is valid JSON.
	FormatJSONExpand
)

// formatNames maps every accepted spelling (ours, then the Pulsar IO connector's) to a Format.
var formatNames = map[string]Format{
	"raw": FormatRaw, "json": FormatJSON, "jsonExpand": FormatJSONExpand,
	"ONLY_RAW_PAYLOAD": FormatRaw, "FULL_MESSAGE_IN_JSON": FormatJSON, "FULL_MESSAGE_IN_JSON_EXPAND_VALUE": FormatJSONExpand,
}

// FormatNames lists the accepted KINESIS_MESSAGE_FORMAT values, ours first.
func FormatNames() []string {
	return []string{"raw", "json", "jsonExpand", "ONLY_RAW_PAYLOAD", "FULL_MESSAGE_IN_JSON", "FULL_MESSAGE_IN_JSON_EXPAND_VALUE"}
}

// ParseFormat reads one of FormatNames, case-insensitively.
func ParseFormat(s string) (Format, bool) {
	for name, f := range formatNames {
		if strings.EqualFold(name, strings.TrimSpace(s)) {
			return f, true
		}
	}
	return FormatRaw, false
}

// KeySource chooses the Kinesis partition key of a message.
type KeySource int

const (
	// KeyMessageKey uses the message key, or the topic name for a message without one (as the
	// connector does). Default.
	KeyMessageKey KeySource = iota
	// KeyProperty uses the value of the message property PartitionKey.Property, or the topic name
	// when the message lacks it.
	KeyProperty
	// KeyRandom spreads messages over all shards; per-key order then means nothing.
	KeyRandom
)

// PartitionKey is the KINESIS_PARTITION_KEY setting.
type PartitionKey struct {
	Source   KeySource
	Property string // with KeyProperty
}

// Ordering says what the sink keeps in order.
type Ordering int

const (
	// OrderPerKey never writes a record before every earlier record of the same partition key (the same
	// shard, with aggregation) is confirmed, so retried partial failures never reorder a key. Default.
	OrderPerKey Ordering = iota
	// OrderNone sends as much as the limits allow; a retried record may land after later ones.
	OrderNone
)

// Position is where a new subscription starts.
type Position int

const (
	PositionLatest Position = iota // default
	PositionEarliest
)

// Options configure the sink. Zero values take the documented defaults, except StreamARN and the
// topics (required).
type Options struct {
	// StreamARN is the target Kinesis stream.
	StreamARN string
	// Topics or TopicsPattern (a regular expression) name what to consume.
	Topics        []string
	TopicsPattern string
	// Subscription is the Failover subscription's name. Default "kinesis-sink".
	Subscription    string
	InitialPosition Position

	PartitionKey PartitionKey
	Format       Format
	Ordering     Ordering
	// Aggregation writes KPL aggregates, one per target shard and PutRecords call.
	Aggregation bool

	// DeadLetterTopic receives messages Kinesis can never accept, and messages redelivered more than
	// MaxRedeliveries times, with the reason in a property. Empty: they stay unacknowledged (retried).
	DeadLetterTopic string
	// MaxRedeliveries is how often one message may be redelivered before it is dead-lettered. Default 10.
	MaxRedeliveries int

	// DeadlineMargin is kept free before the invocation deadline: receiving and new writes stop this
	// long before it. Default 1 s.
	DeadlineMargin time.Duration
	// RetryInitialDelay and RetryMaxDelay bound the backoff after a failed or throttled write.
	// Defaults 100 ms and 5 s.
	RetryInitialDelay time.Duration
	RetryMaxDelay     time.Duration
	// MaxInFlight bounds concurrent PutRecords calls. Default 4.
	MaxInFlight int
	// MaxBuffered bounds the messages received and not yet acknowledged. Default 10,000.
	MaxBuffered int
}

// Defaults.
const (
	DefaultSubscription      = "kinesis-sink"
	DefaultMaxRedeliveries   = 10
	DefaultDeadlineMargin    = time.Second
	DefaultRetryInitialDelay = 100 * time.Millisecond
	DefaultRetryMaxDelay     = 5 * time.Second
	DefaultMaxInFlight       = 4
	DefaultMaxBuffered       = 10_000
)

func (o Options) withDefaults() Options {
	if o.Subscription == "" {
		o.Subscription = DefaultSubscription
	}
	if o.MaxRedeliveries <= 0 {
		o.MaxRedeliveries = DefaultMaxRedeliveries
	}
	if o.DeadlineMargin <= 0 {
		o.DeadlineMargin = DefaultDeadlineMargin
	}
	if o.RetryInitialDelay <= 0 {
		o.RetryInitialDelay = DefaultRetryInitialDelay
	}
	if o.RetryMaxDelay < o.RetryInitialDelay {
		o.RetryMaxDelay = max(DefaultRetryMaxDelay, o.RetryInitialDelay)
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = DefaultMaxBuffered
	}
	return o
}
