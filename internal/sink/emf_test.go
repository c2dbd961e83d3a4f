package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/streambridge/kinesis-pulsar/internal/metrics"
	"github.com/streambridge/kinesis-pulsar/tests/emfcheck"
)

func TestDocumentIsValidEMF(t *testing.T) {
	for _, tc := range []struct {
		name    string
		s       Summary
		wantLag bool
	}{
		{"put", Summary{Result: Result{Received: 3, Put: 3, Acknowledged: 3, StoppedBy: StopIdle},
			StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/orders", RecordsPut: 1, BytesPut: 30,
			MaxLag: 1500 * time.Millisecond, Duration: time.Second}, true},
		{"nothing put", Summary{Result: Result{Received: 2, StoppedBy: StopDeadline}, PutErrors: 4, Failed: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			EMFObserver{metrics.New(&buf, "KinesisPulsar", "sink-fn", MetricSchema)}.Observe(context.Background(), &tc.s)
			line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			if err := emfcheck.Validate(line); err != nil {
				t.Fatalf("invalid EMF: %v\n%s", err, line)
			}
			var doc map[string]any
			if err := json.Unmarshal(line, &doc); err != nil {
				t.Fatal(err)
			}
			if _, ok := doc["SinkEndToEndLagMs"]; ok != tc.wantLag {
				t.Errorf("lag present %v, want %v", ok, tc.wantLag)
			}
			if doc["SinkMessagesPut"] != float64(tc.s.Put) || doc[metrics.DimFunction] != "sink-fn" {
				t.Errorf("document %s", line)
			}
			if tc.wantLag && (doc[DimStream] != "orders" || doc["SinkEndToEndLagMs"] != 1500.0) {
				t.Errorf("stream %v, lag %v", doc[DimStream], doc["SinkEndToEndLagMs"])
			}
		})
	}
}
