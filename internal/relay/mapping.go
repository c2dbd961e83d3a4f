package relay

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/internal/kpl"
	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
)

// source is what every message made from one Kinesis record shares.
type source struct {
	rec       *events.KinesisEventRecord
	shardID   string
	stream    string
	topic     string
	arrivedAt time.Time
	arrival   string // kinesis.arrival.timestamp
	encrypted string // kinesis.encryption.type
	aggregate bool   // a KPL aggregate, split into sub-records
	err       error  // why the record cannot be routed; its messages fail (or are dead-lettered)
}

// message is one planned Pulsar message: a plain record, or one user record of a KPL aggregate.
type message struct {
	record       int // index of the Kinesis record in the batch
	sub          int // index in the aggregate, -1 for a plain record
	partitionKey string
	hashKey      string
	payload      []byte
	kind         Kind
}

// errUnroutable marks a record whose topic cannot be derived: it can never be published there.
var errUnroutable = errors.New("record cannot be routed to a topic")

// plan maps the batch to messages in order, de-aggregating KPL records when enabled.
func (r *Relay) plan(records []events.KinesisEventRecord) ([]source, []message, []int) {
	sources := make([]source, len(records))
	msgs := make([]message, 0, len(records))
	starts := make([]int, len(records)+1) // record i owns msgs[starts[i]:starts[i+1]]
	var subs []kpl.Record                 // reused across aggregates
	// A batch comes from one shard, so every record names the same stream: derive its name and topic
	// once per distinct ARN, not once per record.
	var route struct {
		arn, stream, topic string
		err                error
		ok                 bool
	}
	for i := range records {
		rec := &records[i]
		s := &sources[i]
		s.rec = rec
		s.shardID = shardID(rec.EventID)
		if !route.ok || route.arn != rec.EventSourceArn {
			route.arn, route.stream, route.ok = rec.EventSourceArn, streamtopic.StreamName(rec.EventSourceArn), true
			route.topic, route.err = routeTo(r.opts.Topic, route.stream, rec.EventSourceArn)
		}
		s.stream, s.topic, s.err = route.stream, route.topic, route.err
		// Kinesis arrival times are whole milliseconds; aws-lambda-go decodes the float seconds by
		// truncation, which lands just below the millisecond about half the time.
		s.arrivedAt = rec.Kinesis.ApproximateArrivalTimestamp.Time.Round(time.Millisecond)
		if i > 0 && s.arrivedAt.Equal(sources[i-1].arrivedAt) {
			s.arrival = sources[i-1].arrival // records written together often share the millisecond
		} else {
			s.arrival = formatArrival(s.arrivedAt)
		}
		s.encrypted = encryptionType(rec.Kinesis.EncryptionType)
		starts[i] = len(msgs)

		if r.opts.Deaggregate {
			var err error
			if subs, err = kpl.AppendDeaggregate(subs[:0], rec.Kinesis.Data); err == nil {
				s.aggregate = true
				for j, sub := range subs {
					msgs = append(msgs, message{record: i, sub: j, partitionKey: sub.PartitionKey,
						hashKey: sub.ExplicitHashKey, payload: sub.Data, kind: r.kindFor(len(sub.Data))})
				}
				continue
			} else if !errors.Is(err, kpl.ErrNotAggregated) {
				// Published plain, bytes unchanged, as the KCL does; worth knowing about.
				r.log.Warn("malformed KPL aggregate published as one plain record",
					"sequenceNumber", rec.Kinesis.SequenceNumber, "shardId", s.shardID, "error", err)
			}
		}
		msgs = append(msgs, message{record: i, sub: -1, partitionKey: rec.Kinesis.PartitionKey,
			payload: rec.Kinesis.Data, kind: r.kindFor(len(rec.Kinesis.Data))})
	}
	starts[len(records)] = len(msgs)
	return sources, msgs, starts
}

func (r *Relay) kindFor(size int) Kind {
	if size > r.opts.LargeRecordBytes {
		return Unbatched
	}
	return Batched
}

// routeTo fills {stream} in t; a record it cannot route can never be published there.
func routeTo(t streamtopic.Template, stream, arn string) (string, error) {
	name, err := t.ForStream(stream, arn)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errUnroutable, err)
	}
	return name, nil
}

// key returns the Pulsar message key of m.
func (r *Relay) key(s *source, m *message) string {
	switch r.opts.Key {
	case KeyShardID:
		return s.shardID
	case KeyNone:
		return ""
	}
	return m.partitionKey
}

// producerMessage builds the Pulsar message for m.
func (r *Relay) producerMessage(s *source, m *message) *pulsar.ProducerMessage {
	return &pulsar.ProducerMessage{
		Payload:    m.payload,
		Key:        r.key(s, m),
		EventTime:  s.arrivedAt,
		Properties: r.properties(s, m),
	}
}

func (r *Relay) properties(s *source, m *message) map[string]string {
	set := r.opts.Properties
	if set == 0 {
		return nil
	}
	props := make(map[string]string, 8)
	add := func(p Property, name, value string) {
		if set&p != 0 && value != "" {
			props[name] = value
		}
	}
	add(PropSequenceNumber, "kinesis.sequence.number", s.rec.Kinesis.SequenceNumber)
	add(PropPartitionKey, "kinesis.partition.key", m.partitionKey)
	add(PropArrivalTimestamp, "kinesis.arrival.timestamp", s.arrival)
	add(PropEncryptionType, "kinesis.encryption.type", s.encrypted)
	add(PropShardID, "kinesis.shard.id", s.shardID)
	add(PropStreamARN, "kinesis.stream.arn", s.rec.EventSourceArn)
	if m.sub >= 0 {
		add(PropSubSequenceNumber, "kinesis.sub.sequence.number", strconv.Itoa(m.sub))
		add(PropExplicitHashKey, "kinesis.explicit.hash.key", m.hashKey)
	}
	return props
}

// shardID is the part of eventID before the colon: "shardId-000000000006:4954...". Lambda gives the
// shard id nowhere else.
func shardID(eventID string) string {
	if i := strings.IndexByte(eventID, ':'); i > 0 && strings.HasPrefix(eventID, "shardId-") {
		return eventID[:i]
	}
	return ""
}

// arrivalLayout is ISO-8601 UTC with milliseconds always present, e.g. 2024-01-02T03:04:05.060Z.
const arrivalLayout = "2006-01-02T15:04:05.000Z"

// formatArrival renders t in arrivalLayout. It runs once per record: the digits are written directly,
// which is several times faster than time.Format; years outside 0-9999 (never a Kinesis arrival time)
// keep time.Format's rendering.
func formatArrival(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.Format(arrivalLayout)
	}
	hour, minute, sec := t.Clock()
	var b [len(arrivalLayout)]byte
	digits(b[0:4], year)
	b[4] = '-'
	digits(b[5:7], int(month))
	b[7] = '-'
	digits(b[8:10], day)
	b[10] = 'T'
	digits(b[11:13], hour)
	b[13] = ':'
	digits(b[14:16], minute)
	b[16] = ':'
	digits(b[17:19], sec)
	b[19] = '.'
	digits(b[20:23], t.Nanosecond()/int(time.Millisecond)) // truncated, as time.Format does
	b[23] = 'Z'
	return string(b[:])
}

// digits writes v into b as len(b) decimal digits, zero-padded.
func digits(b []byte, v int) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}

func encryptionType(t string) string {
	if t == "" {
		return "NONE"
	}
	return strings.ToUpper(t)
}
