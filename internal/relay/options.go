package relay

import (
	"fmt"
	"strings"
	"time"

	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
)

// KeySource chooses the Pulsar message key.
type KeySource int

const (
	// KeyPartitionKey uses the record's partition key (a KPL sub-record's own key). Default.
	KeyPartitionKey KeySource = iota
	// KeyShardID uses the shard id, so one shard maps to one Pulsar partition.
	KeyShardID
	// KeyNone sends messages without a key.
	KeyNone
)

// Property is one of the kinesis.* message properties. The names are those of the Pulsar IO Kinesis
// source, so its consumers can migrate unchanged; the last three are ours.
type Property uint16

const (
	PropSequenceNumber    Property = 1 << iota // kinesis.sequence.number
	PropPartitionKey                           // kinesis.partition.key
	PropArrivalTimestamp                       // kinesis.arrival.timestamp, ISO-8601 UTC with milliseconds
	PropEncryptionType                         // kinesis.encryption.type, NONE or KMS
	PropShardID                                // kinesis.shard.id
	PropStreamARN                              // kinesis.stream.arn
	PropSubSequenceNumber                      // kinesis.sub.sequence.number, a KPL sub-record's index
	PropExplicitHashKey                        // kinesis.explicit.hash.key, where the KPL record has one

	// AllProperties is the default set.
	AllProperties = PropSequenceNumber | PropPartitionKey | PropArrivalTimestamp | PropEncryptionType |
		PropShardID | PropStreamARN | PropSubSequenceNumber | PropExplicitHashKey
)

var propertyNames = []struct {
	p    Property
	name string
}{
	{PropSequenceNumber, "kinesis.sequence.number"},
	{PropPartitionKey, "kinesis.partition.key"},
	{PropArrivalTimestamp, "kinesis.arrival.timestamp"},
	{PropEncryptionType, "kinesis.encryption.type"},
	{PropShardID, "kinesis.shard.id"},
	{PropStreamARN, "kinesis.stream.arn"},
	{PropSubSequenceNumber, "kinesis.sub.sequence.number"},
	{PropExplicitHashKey, "kinesis.explicit.hash.key"},
}

// Properties written on dead-lettered messages, beside the kinesis.* ones.
const (
	PropDeadLetterError = "dead.letter.error" // why the record could not be published
	PropDeadLetterTopic = "dead.letter.topic" // where it should have gone
)

// PropertyNames lists every kinesis.* property name, in documentation order.
func PropertyNames() []string {
	names := make([]string, len(propertyNames))
	for i, pn := range propertyNames {
		names[i] = pn.name
	}
	return names
}

// ParseProperties reads a comma-separated list of property names; "none" selects no property.
func ParseProperties(list string) (Property, error) {
	if strings.EqualFold(strings.TrimSpace(list), "none") {
		return 0, nil
	}
	var set Property
	var unknown []string
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for _, pn := range propertyNames {
			if pn.name == name {
				set |= pn.p
				found = true
			}
		}
		if !found {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		return 0, fmt.Errorf("unknown properties %s", strings.Join(unknown, ", "))
	}
	return set, nil
}

// Guarantee is the processing guarantee (the names are Pulsar Functions').
type Guarantee int

const (
	// AtLeastOnce publishes every record at least once: a retried batch publishes again. Default.
	AtLeastOnce Guarantee = iota
	// EffectivelyOnce gives every message a sequence id from the shard's state in the audit table and
	// publishes with one named producer per shard, so the broker drops what a retry sends again.
	EffectivelyOnce
)

// Options configure the relay. Zero values take the documented defaults, except Topic (required).
type Options struct {
	// Topic is the Pulsar topic; it may contain {stream}.
	Topic streamtopic.Template
	// DeadLetterTopic receives records that can never be published to Topic (too large with chunking
	// off, topic terminated, unroutable), with the cause in a property. Empty: such records fail the
	// batch. It may contain {stream}.
	DeadLetterTopic streamtopic.Template
	// Key chooses the message key. Default KeyPartitionKey.
	Key KeySource
	// Properties selects the kinesis.* properties to attach. Zero means none; config defaults to all.
	Properties Property
	// Deaggregate splits KPL aggregates into one message per user record.
	Deaggregate bool
	// DeadlineMargin is kept free before the invocation deadline: waiting for the broker stops this long
	// before it, leaving time for dead letters, the audit write and the response, each with a share of
	// its own. Default 1 s.
	DeadlineMargin time.Duration
	// LargeRecordBytes: records with more payload than this go through the unbatched (chunking)
	// producer. Set it to the batching size limit. Default 128 KiB.
	LargeRecordBytes int
	// Guarantee is the processing guarantee. Default AtLeastOnce; EffectivelyOnce needs
	// Relay.EnableEffectivelyOnce.
	Guarantee Guarantee
	// AuditRequired reports the whole batch failed when its audit cannot be written.
	AuditRequired bool
	// Now is the clock that stamps a batch's start (the audit item's startedAt, and so its expiry).
	// Default time.Now; tests inject the local stack's clock, which may run years ahead.
	Now func() time.Time
}

// Defaults.
const (
	DefaultDeadlineMargin = time.Second
	// DefaultLargeRecordBytes is the Pulsar client's default batch size limit (producer.Options'
	// BatchingMaxBytes); config sets both from PULSAR_BATCHING_MAX_BYTES.
	DefaultLargeRecordBytes = 128 * 1024
)

func (o Options) withDefaults() Options {
	if o.DeadlineMargin <= 0 {
		o.DeadlineMargin = DefaultDeadlineMargin
	}
	if o.LargeRecordBytes <= 0 {
		o.LargeRecordBytes = DefaultLargeRecordBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
