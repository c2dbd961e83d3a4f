// Package metrics writes one CloudWatch Embedded Metric Format document per invocation to stdout:
// CloudWatch extracts the metrics from the log line, with no PutMetricData call and no added latency.
package metrics

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/streambridge/kinesis-pulsar/internal/relay"
)

// Units used by the metrics.
const (
	Count        = "Count"
	Bytes        = "Bytes"
	Milliseconds = "Milliseconds"
)

// Metric is one metric the function emits.
type Metric struct {
	Name string
	Unit string
	Doc  string
}

// Metrics lists every metric, in the order they appear in a document.
var Metrics = []Metric{
	{"RecordsReceived", Count, "Kinesis records in the batch"},
	{"KplSubRecords", Count, "user records inside KPL aggregates"},
	{"MessagesPublished", Count, "messages confirmed by the broker on their topic"},
	{"RecordsFailed", Count, "Kinesis records reported for retry"},
	{"RecordsDeadLettered", Count, "messages written to the dead-letter topic"},
	{"BytesPublished", Bytes, "payload bytes confirmed on their topic"},
	{"BatchDurationMs", Milliseconds, "invocation time, start to response"},
	{"PublishLatencyMs", Milliseconds, "send-to-receipt time of confirmed messages (up to 100 quantiles per batch)"},
	{"ProducerCreated", Count, "producers created cold (0 on a warm invocation)"},
	{"DeadlineStops", Count, "1 when waiting for the broker stopped at the deadline margin"},
	{"NoTimeToPublish", Count, "1 when the deadline margin left the invocation no time to publish (DEADLINE_MARGIN_MS too large for the timeout)"},
	{"AuditWriteErrors", Count, "1 when the audit item could not be written"},
	{"EndToEndLagMs", Milliseconds, "from the newest published record's arrival in Kinesis to its receipt"},
	{"RecordsAlreadyDelivered", Count, "effectivelyOnce: records at or below the shard's checkpoint, not published again"},
	{"DuplicatesDropped", Count, "effectivelyOnce: messages the broker dropped as duplicates of stored ones"},
	{"DeduplicationOff", Count, "effectivelyOnce: 1 when a message sent again was stored again (the broker does not deduplicate)"},
}

// Dimension names. FunctionName alone is what dashboards and alarms use; the second set breaks
// the same metrics down by stream and topic.
const (
	DimFunction = "FunctionName"
	DimStream   = "Stream"
	DimTopic    = "Topic"
)

// DimensionSets are the EMF dimension sets of every document.
var DimensionSets = [][]string{{DimFunction}, {DimFunction, DimStream, DimTopic}}

// EMF writes documents to w. It implements relay.Observer and is safe for concurrent use.
type EMF struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
	function  string
}

// New returns an EMF writer for a namespace and function name.
func New(w io.Writer, namespace, function string) *EMF {
	return &EMF{w: w, namespace: namespace, function: function}
}

type directive struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []metricDecl `json:"Metrics"`
}

type metricDecl struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// Observe writes the document for one invocation as a single line.
func (e *EMF) Observe(_ context.Context, s *relay.Summary) {
	writeLine(&e.mu, e.w, e.Document(s, time.Now()))
}

// writeLine writes doc as one JSON line; mu serializes the writers of w.
func writeLine(mu *sync.Mutex, w io.Writer, doc map[string]any) {
	line, err := json.Marshal(doc)
	if err != nil {
		return // cannot happen: the document holds strings and numbers only
	}
	mu.Lock()
	defer mu.Unlock()
	_, _ = w.Write(append(line, '\n'))
}

// Document builds the EMF document for one invocation. A metric without a value in this invocation
// (no latency, no lag when nothing was published) is left out, declaration and value alike.
func (e *EMF) Document(s *relay.Summary, now time.Time) map[string]any {
	values := map[string]any{
		"RecordsReceived":     s.Records,
		"KplSubRecords":       s.SubRecords,
		"MessagesPublished":   s.Published,
		"RecordsFailed":       s.FailedRecords,
		"RecordsDeadLettered": s.DeadLettered,
		"BytesPublished":      s.PublishedBytes,
		"BatchDurationMs":     ms(s.Duration),
		"ProducerCreated":     s.ProducersCreated,
		"DeadlineStops":       boolCount(s.DeadlineStop),
		"NoTimeToPublish":     boolCount(s.NoPublishTime),
		"AuditWriteErrors":    boolCount(s.AuditError != nil),
	}
	if s.AlreadyDelivered > 0 || s.DuplicatesDropped > 0 || s.DeduplicationOff {
		// Only the effectively-once mode counts them; a retry or a probe is where they show.
		values["RecordsAlreadyDelivered"] = s.AlreadyDelivered
		values["DuplicatesDropped"] = s.DuplicatesDropped
		values["DeduplicationOff"] = boolCount(s.DeduplicationOff)
	}
	if len(s.PublishLatencies) > 0 {
		latencies := make([]float64, len(s.PublishLatencies))
		for i, d := range s.PublishLatencies {
			latencies[i] = ms(d)
		}
		values["PublishLatencyMs"] = latencies
	}
	if s.Published > 0 {
		// With nothing confirmed there is no lag to report, and 0 would read as "caught up".
		values["EndToEndLagMs"] = ms(s.EndToEndLag)
	}

	doc := map[string]any{
		DimFunction: orUnknown(e.function),
		DimStream:   orUnknown(s.Stream),
		DimTopic:    orUnknown(s.Topic),
		// Context for Logs Insights; not dimensions, so they add no metric cardinality.
		"requestId": s.RequestID,
		"shardId":   s.ShardID,
		"outcome":   s.Outcome,
	}
	return withMetrics(doc, values, Metrics, e.namespace, DimensionSets, now)
}

// withMetrics adds to doc the metrics of list that have a value in values, in list order, and the
// _aws metadata declaring them.
func withMetrics(doc, values map[string]any, list []Metric, namespace string, dims [][]string, now time.Time) map[string]any {
	decls := make([]metricDecl, 0, len(list))
	for _, m := range list {
		if v, ok := values[m.Name]; ok {
			decls = append(decls, metricDecl{m.Name, m.Unit})
			doc[m.Name] = v
		}
	}
	doc["_aws"] = map[string]any{
		"Timestamp":         now.UnixMilli(),
		"CloudWatchMetrics": []directive{{Namespace: namespace, Dimensions: dims, Metrics: decls}},
	}
	return doc
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func boolCount(b bool) int {
	if b {
		return 1
	}
	return 0
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
