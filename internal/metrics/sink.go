package metrics

import (
	"context"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/streambridge/kinesis-pulsar/internal/sink"
)

// SinkMetrics lists every metric of the pulsar-to-kinesis function, in document order.
var SinkMetrics = []Metric{
	{"SinkMessagesReceived", Count, "messages received from the subscription"},
	{"SinkMessagesPut", Count, "messages whose Kinesis record was confirmed"},
	{"SinkRecordsPut", Count, "Kinesis records confirmed (an aggregate counts once)"},
	{"SinkBytesPut", Bytes, "data bytes of the confirmed records"},
	{"SinkMessagesAcknowledged", Count, "messages acknowledged on the subscription"},
	{"SinkMessagesDeadLettered", Count, "messages written to the dead-letter topic"},
	{"SinkRetries", Count, "messages written again after a failed write"},
	{"SinkThrottles", Count, "records and calls Kinesis refused for throughput (or KMS throttling)"},
	{"SinkPutErrors", Count, "failed records and failed PutRecords calls"},
	{"SinkAckErrors", Count, "messages put but not acknowledged (they come back as duplicates)"},
	{"SinkMessagesHeld", Count, "messages Kinesis cannot accept, left unacknowledged without a dead-letter topic"},
	{"SinkInvocationErrors", Count, "1 when the invocation failed before consuming (subscription, shard listing)"},
	{"SinkEndToEndLagMs", Milliseconds, "from publishing to Kinesis's confirmation, the longest of the invocation"},
	{"SinkDurationMs", Milliseconds, "invocation time"},
}

// SinkDimensionSets are the EMF dimension sets of the sink's documents.
var SinkDimensionSets = [][]string{{DimFunction}, {DimFunction, DimStream}}

// Sink writes one EMF document per sink invocation. It implements sink.Observer.
type Sink struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
	function  string
}

// NewSink returns an EMF writer for the sink.
func NewSink(w io.Writer, namespace, function string) *Sink {
	return &Sink{w: w, namespace: namespace, function: function}
}

// Observe writes the document for one invocation as a single line.
func (e *Sink) Observe(_ context.Context, s *sink.Summary) {
	writeLine(&e.mu, e.w, e.Document(s, time.Now()))
}

// Document builds the EMF document of one invocation; the lag is left out when nothing was put.
func (e *Sink) Document(s *sink.Summary, now time.Time) map[string]any {
	values := map[string]any{
		"SinkMessagesReceived":     s.Received,
		"SinkMessagesPut":          s.Put,
		"SinkRecordsPut":           s.RecordsPut,
		"SinkBytesPut":             s.BytesPut,
		"SinkMessagesAcknowledged": s.Acknowledged,
		"SinkMessagesDeadLettered": s.DeadLettered,
		"SinkRetries":              s.Retries,
		"SinkThrottles":            s.Throttles,
		"SinkPutErrors":            s.PutErrors,
		"SinkAckErrors":            s.AckErrors,
		"SinkMessagesHeld":         s.Held,
		"SinkInvocationErrors":     boolCount(s.Failed),
		"SinkDurationMs":           ms(s.Duration),
	}
	if s.Put > 0 {
		values["SinkEndToEndLagMs"] = ms(s.MaxLag)
	}
	doc := map[string]any{
		DimFunction: orUnknown(e.function),
		DimStream:   orUnknown(streamName(s.StreamARN)),
		"requestId": s.RequestID,
		"stoppedBy": s.StoppedBy,
	}
	return withMetrics(doc, values, SinkMetrics, e.namespace, SinkDimensionSets, now)
}

// streamName is the name part of a stream ARN.
func streamName(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }
