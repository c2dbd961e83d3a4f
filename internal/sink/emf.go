package sink

import (
	"context"
	"strings"
	"time"

	"github.com/streambridge/kinesis-pulsar/internal/metrics"
)

// DimStream breaks the metrics down by target stream, beside metrics.DimFunction.
const DimStream = "Stream"

// MetricSchema is what every sink invocation's EMF document declares.
var MetricSchema = metrics.Schema{
	Metrics: []metrics.Metric{
		{Name: "SinkMessagesReceived", Unit: metrics.Count, Doc: "messages received from the subscription"},
		{Name: "SinkMessagesPut", Unit: metrics.Count, Doc: "messages whose Kinesis record was confirmed"},
		{Name: "SinkRecordsPut", Unit: metrics.Count, Doc: "Kinesis records confirmed (an aggregate counts once)"},
		{Name: "SinkBytesPut", Unit: metrics.Bytes, Doc: "data bytes of the confirmed records"},
		{Name: "SinkMessagesAcknowledged", Unit: metrics.Count, Doc: "messages acknowledged on the subscription"},
		{Name: "SinkMessagesDeadLettered", Unit: metrics.Count, Doc: "messages written to the dead-letter topic"},
		{Name: "SinkRetries", Unit: metrics.Count, Doc: "messages written again after a failed write"},
		{Name: "SinkThrottles", Unit: metrics.Count, Doc: "records and calls Kinesis refused for throughput (or KMS throttling)"},
		{Name: "SinkPutErrors", Unit: metrics.Count, Doc: "failed records and failed PutRecords calls"},
		{Name: "SinkAckErrors", Unit: metrics.Count, Doc: "messages put but not acknowledged (they come back as duplicates)"},
		{Name: "SinkMessagesHeld", Unit: metrics.Count, Doc: "messages Kinesis cannot accept, left unacknowledged without a dead-letter topic"},
		{Name: "SinkInvocationErrors", Unit: metrics.Count, Doc: "1 when the invocation failed before consuming (subscription, shard listing)"},
		{Name: "SinkEndToEndLagMs", Unit: metrics.Milliseconds, Doc: "from publishing to Kinesis's confirmation, the longest of the invocation"},
		{Name: "SinkDurationMs", Unit: metrics.Milliseconds, Doc: "invocation time"},
	},
	DimensionSets: [][]string{{metrics.DimFunction}, {metrics.DimFunction, DimStream}},
}

// EMFObserver writes one EMF document per invocation; EMF must have been made with MetricSchema. It
// implements Observer.
type EMFObserver struct {
	EMF *metrics.EMF
}

// Observe writes the document of one invocation.
func (o EMFObserver) Observe(_ context.Context, s *Summary) {
	o.EMF.Write(o.Document(s, time.Now()))
}

// Document builds the EMF document of one invocation; the lag is left out when nothing was put.
func (o EMFObserver) Document(s *Summary, now time.Time) map[string]any {
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
		"SinkInvocationErrors":     metrics.Flag(s.Failed),
		"SinkDurationMs":           metrics.Millis(s.Duration),
	}
	if s.Put > 0 {
		values["SinkEndToEndLagMs"] = metrics.Millis(s.MaxLag)
	}
	fields := map[string]any{
		DimStream:   s.StreamARN[strings.LastIndex(s.StreamARN, "/")+1:],
		"requestId": s.RequestID,
		"stoppedBy": s.StoppedBy,
	}
	return o.EMF.Document(values, fields, now)
}
