package relay

import (
	"context"
	"time"

	"github.com/streambridge/kinesis-pulsar/internal/metrics"
)

// Dimensions beside metrics.DimFunction: the second set breaks the metrics down by stream and topic.
const (
	DimStream = "Stream"
	DimTopic  = "Topic"
)

// MetricSchema is what every invocation's EMF document declares.
var MetricSchema = metrics.Schema{
	Metrics: []metrics.Metric{
		{Name: "RecordsReceived", Unit: metrics.Count, Doc: "Kinesis records in the batch"},
		{Name: "KplSubRecords", Unit: metrics.Count, Doc: "user records inside KPL aggregates"},
		{Name: "MessagesPublished", Unit: metrics.Count, Doc: "messages confirmed by the broker on their topic"},
		{Name: "RecordsFailed", Unit: metrics.Count, Doc: "Kinesis records reported for retry"},
		{Name: "RecordsDeadLettered", Unit: metrics.Count, Doc: "messages written to the dead-letter topic"},
		{Name: "BytesPublished", Unit: metrics.Bytes, Doc: "payload bytes confirmed on their topic"},
		{Name: "BatchDurationMs", Unit: metrics.Milliseconds, Doc: "invocation time, start to response"},
		{Name: "PublishLatencyMs", Unit: metrics.Milliseconds, Doc: "send-to-receipt time of confirmed messages (up to 100 quantiles per batch)"},
		{Name: "ProducerCreated", Unit: metrics.Count, Doc: "producers created cold (0 on a warm invocation)"},
		{Name: "DeadlineStops", Unit: metrics.Count, Doc: "1 when waiting for the broker stopped at the deadline margin"},
		{Name: "NoTimeToPublish", Unit: metrics.Count, Doc: "1 when the deadline margin left the invocation no time to publish (DEADLINE_MARGIN_MS too large for the timeout)"},
		{Name: "AuditWriteErrors", Unit: metrics.Count, Doc: "1 when the audit item could not be written"},
		{Name: "EndToEndLagMs", Unit: metrics.Milliseconds, Doc: "from the newest published record's arrival in Kinesis to its receipt"},
		{Name: "RecordsAlreadyDelivered", Unit: metrics.Count, Doc: "effectivelyOnce: records at or below the shard's checkpoint, not published again"},
		{Name: "DuplicatesDropped", Unit: metrics.Count, Doc: "effectivelyOnce: messages the broker dropped as duplicates of stored ones"},
		{Name: "DeduplicationOff", Unit: metrics.Count, Doc: "effectivelyOnce: 1 when a message sent again was stored again (the broker does not deduplicate)"},
	},
	DimensionSets: [][]string{{metrics.DimFunction}, {metrics.DimFunction, DimStream, DimTopic}},
}

// EMFObserver writes one EMF document per invocation; EMF must have been made with MetricSchema.
type EMFObserver struct {
	EMF *metrics.EMF
}

// Observe writes the document of one invocation.
func (o EMFObserver) Observe(_ context.Context, s *Summary) {
	o.EMF.Write(o.Document(s, time.Now()))
}

// Document builds the EMF document of one invocation. A metric without a value in this invocation (no
// latency, no lag when nothing was published) is left out.
func (o EMFObserver) Document(s *Summary, now time.Time) map[string]any {
	values := map[string]any{
		"RecordsReceived":     s.Records,
		"KplSubRecords":       s.SubRecords,
		"MessagesPublished":   s.Published,
		"RecordsFailed":       s.FailedRecords,
		"RecordsDeadLettered": s.DeadLettered,
		"BytesPublished":      s.PublishedBytes,
		"BatchDurationMs":     metrics.Millis(s.Duration),
		"ProducerCreated":     s.ProducersCreated,
		"DeadlineStops":       metrics.Flag(s.DeadlineStop),
		"NoTimeToPublish":     metrics.Flag(s.NoPublishTime),
		"AuditWriteErrors":    metrics.Flag(s.AuditError != nil),
	}
	if s.AlreadyDelivered > 0 || s.DuplicatesDropped > 0 || s.DeduplicationOff {
		// Only the effectively-once mode counts them; a retry or a probe is where they show.
		values["RecordsAlreadyDelivered"] = s.AlreadyDelivered
		values["DuplicatesDropped"] = s.DuplicatesDropped
		values["DeduplicationOff"] = metrics.Flag(s.DeduplicationOff)
	}
	if len(s.PublishLatencies) > 0 {
		latencies := make([]float64, len(s.PublishLatencies))
		for i, d := range s.PublishLatencies {
			latencies[i] = metrics.Millis(d)
		}
		values["PublishLatencyMs"] = latencies
	}
	if s.Published > 0 {
		// With nothing confirmed there is no lag to report, and 0 would read as "caught up".
		values["EndToEndLagMs"] = metrics.Millis(s.EndToEndLag)
	}
	fields := map[string]any{DimStream: s.Stream, DimTopic: s.Topic,
		"requestId": s.RequestID, "shardId": s.ShardID, "outcome": s.Outcome}
	return o.EMF.Document(values, fields, now)
}
