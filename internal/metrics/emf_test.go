package metrics

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/streambridge/kinesis-pulsar/tests/emfcheck"
)

func TestDocument(t *testing.T) {
	schema := Schema{
		Metrics:       []Metric{{"Sent", Count, "sent"}, {"LatencyMs", Milliseconds, "latency"}},
		DimensionSets: [][]string{{DimFunction}, {DimFunction, "Stream"}},
	}
	var buf bytes.Buffer
	e := New(&buf, "NS", "fn", schema)
	e.Write(e.Document(map[string]any{"Sent": 3}, map[string]any{"Stream": "", "requestId": "r"}, time.Unix(1, 0)))
	line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if err := emfcheck.Validate(line); err != nil {
		t.Fatalf("invalid EMF: %v\n%s", err, line)
	}
	var doc map[string]any
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["Stream"] != "unknown" || doc[DimFunction] != "fn" || doc["requestId"] != "r" || doc["Sent"] != 3.0 {
		t.Errorf("document %s", line)
	}
	if _, ok := doc["LatencyMs"]; ok || bytes.Contains(line, []byte(`"LatencyMs"`)) {
		t.Errorf("a metric without a value is declared: %s", line)
	}
}
