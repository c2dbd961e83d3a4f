package relay

import (
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Outcome of an invocation.
const (
	OutcomeDelivered = "delivered" // every record is in Pulsar (or its dead-letter topic)
	OutcomePartial   = "partial"   // a prefix is; Lambda retries from the first record that is not
	OutcomeFailed    = "failed"    // no record is; Lambda retries the whole batch
)

// Summary describes one invocation, for metrics and the summary log line.
type Summary struct {
	RequestID string
	StreamARN string
	Stream    string
	ShardID   string
	Topic     string

	FirstSequence string
	LastSequence  string

	Records        int   // Kinesis records received
	Aggregates     int   // of which KPL aggregates
	SubRecords     int   // user records inside those aggregates
	Messages       int   // messages planned: plain records plus user records
	Published      int   // messages confirmed on their topic
	PublishedBytes int64 // payload bytes of those
	DeadLettered   int   // messages written to the dead-letter topic
	FailedRecords  int   // Kinesis records reported for retry: the first not done and all after it
	FailedSequence string
	Cause          error // why the first record not done is not done

	DeadlineStop     bool // waiting for the broker ended at the invocation's stop deadline
	NoPublishTime    bool // the deadline margin left the invocation no time to publish at all
	ProducersCreated int  // cold producers this invocation had to create
	// PublishLatencies are send-to-receipt times of confirmed messages: all of them, or 100 evenly
	// spaced quantiles when there are more.
	PublishLatencies []time.Duration
	// EndToEndLag is the time from the newest confirmed record's arrival in Kinesis to the end of
	// publishing.
	EndToEndLag time.Duration
	AuditError  error

	// Effectively-once mode: records at or below the shard's checkpoint, answered done without
	// publishing; messages the broker dropped as duplicates; and whether the broker evidently does not
	// deduplicate (a message sent again with its sequence id was stored again).
	AlreadyDelivered  int
	DuplicatesDropped int
	DeduplicationOff  bool

	Started  time.Time
	Duration time.Duration
	Outcome  string

	failedRecord     int // index of the first record not done, -1 when none
	checkpointRecord int // index of the last record of the done prefix, -1 when none
	checkpointMsgID  string
}

// summarize takes a consistent snapshot of the batch after publishing.
func (b *batch) summarize(started time.Time) *Summary {
	published := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &Summary{Started: started, Records: len(b.sources), Messages: len(b.msgs),
		DeadlineStop: b.halt.deadline, NoPublishTime: b.halt.noPublishTime, ProducersCreated: b.send.created, checkpointRecord: -1}
	if len(b.sources) > 0 {
		first, last := b.sources[0], b.sources[len(b.sources)-1]
		s.StreamARN, s.Stream, s.ShardID, s.Topic = first.rec.EventSourceArn, first.stream, first.shardID, first.topic
		s.FirstSequence, s.LastSequence = first.rec.Kinesis.SequenceNumber, last.rec.Kinesis.SequenceNumber
	}
	for i := range b.sources {
		if b.sources[i].aggregate {
			s.Aggregates++
			s.SubRecords += b.led.starts[i+1] - b.led.starts[i]
		}
	}
	var latencies []time.Duration
	var newest time.Time
	for i := range b.msgs {
		o := &b.led.out[i]
		switch o.state {
		case confirmed:
			s.Published++
			s.PublishedBytes += int64(len(b.msgs[i].payload))
			latencies = append(latencies, o.latency)
			if t := b.sources[b.msgs[i].record].arrivedAt; t.After(newest) {
				newest = t
			}
		case deadLettered:
			s.DeadLettered++
		}
	}
	if !newest.IsZero() {
		s.EndToEndLag = published.Sub(newest)
	}
	s.PublishLatencies = quantiles(latencies, 100)

	s.failedRecord = b.led.firstUndone(false)
	if s.failedRecord >= 0 {
		fs := &b.sources[s.failedRecord]
		s.FailedSequence = fs.rec.Kinesis.SequenceNumber
		for i := b.led.starts[s.failedRecord]; i < b.led.starts[s.failedRecord+1]; i++ {
			if o := &b.led.out[i]; o.state != confirmed && o.state != deadLettered {
				s.Cause = o.err
				break
			}
		}
		if s.Cause == nil {
			// Never sent: sending stopped earlier, at a failure or at the deadline.
			s.Cause = b.halt.cause
			if s.Cause == nil {
				s.Cause = errDeadline
			}
		}
	}
	if s.checkpointRecord = s.failedRecord - 1; s.failedRecord < 0 {
		s.checkpointRecord = len(b.sources) - 1
	}
	if s.checkpointRecord >= 0 {
		// The newest message of the delivered prefix confirmed on its own topic: a dead-lettered
		// message's id names a position on the dead-letter topic.
		for i := b.led.starts[s.checkpointRecord+1] - 1; i >= 0; i-- {
			if o := &b.led.out[i]; o.state == confirmed && o.id != nil {
				s.checkpointMsgID = o.id.String()
				break
			}
		}
	}
	return s
}

// finish settles the outcome once the audit had its say (AUDIT_REQUIRED can fail the whole batch),
// and records the identifier the response actually names.
func (s *Summary) finish(failed, records int, resp events.KinesisEventResponse) {
	switch {
	case failed < 0:
		s.Outcome = OutcomeDelivered
	case failed == 0:
		s.Outcome = OutcomeFailed
	default:
		s.Outcome = OutcomePartial
	}
	if failed < 0 {
		return
	}
	s.FailedRecords = records - failed
	s.FailedSequence = ""
	if len(resp.BatchItemFailures) > 0 {
		s.FailedSequence = resp.BatchItemFailures[0].ItemIdentifier
	}
	if failed != s.failedRecord && s.AuditError != nil {
		s.Cause = s.AuditError
	}
}

// auditBatch is the audit view of the summary.
func (b *batch) auditBatch(s *Summary) AuditRecord {
	a := AuditRecord{
		StreamARN: s.StreamARN, ShardID: s.ShardID, RequestID: s.RequestID, Topic: s.Topic,
		FirstSequenceNumber: s.FirstSequence, LastSequenceNumber: s.LastSequence,
		Records: s.Records, Published: s.Published, DeadLettered: s.DeadLettered,
		FailedSequenceNumber: s.FailedSequence, CheckpointMessageID: s.checkpointMsgID,
		StartedAt: s.Started, Duration: time.Since(s.Started),
	}
	if s.checkpointRecord >= 0 {
		a.CheckpointSequenceNumber = b.sources[s.checkpointRecord].rec.Kinesis.SequenceNumber
	}
	return a
}

// quantiles returns all values when there are at most n, else n evenly spaced quantiles (the last
// one is the maximum), sorted.
func quantiles(values []time.Duration, n int) []time.Duration {
	slices.Sort(values)
	if len(values) <= n {
		return values
	}
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = values[(i+1)*len(values)/n-1]
	}
	return out
}
