package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/streambridge/kinesis-pulsar/internal/relay"
)

func TestDocumentIsValidEMF(t *testing.T) {
	for _, tc := range []struct {
		name     string
		s        relay.Summary
		absent   []string
		wantLags bool
	}{
		{"delivered", relay.Summary{Stream: "orders", Topic: "persistent://public/default/orders", Records: 3,
			Messages: 3, Published: 3, PublishedBytes: 30, Duration: 12 * time.Millisecond, EndToEndLag: time.Second,
			PublishLatencies: []time.Duration{time.Millisecond, 2 * time.Millisecond}, Outcome: relay.OutcomeDelivered}, nil, true},
		{"nothing published", relay.Summary{Records: 3, FailedRecords: 3, DeadlineStop: true, NoPublishTime: true,
			AuditError: errors.New("x"), Outcome: relay.OutcomeFailed}, []string{"EndToEndLagMs", "PublishLatencyMs"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			New(&buf, "KinesisPulsar", "fn").Observe(context.Background(), &tc.s)
			line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
				t.Fatalf("want one line, got %q", buf.String())
			}
			if err := Validate(line); err != nil {
				t.Fatalf("invalid EMF: %v\n%s", err, line)
			}
			var doc map[string]any
			_ = json.Unmarshal(line, &doc)
			for _, name := range tc.absent {
				if _, ok := doc[name]; ok || strings.Contains(string(line), `"Name":"`+name+`"`) {
					t.Errorf("%s present", name)
				}
			}
			if want := float64(boolCount(tc.s.NoPublishTime)); doc["NoTimeToPublish"] != want {
				t.Errorf("NoTimeToPublish %v, want %v", doc["NoTimeToPublish"], want)
			}
			if doc[DimStream] == "" || doc[DimTopic] == "" || doc[DimFunction] != "fn" {
				t.Errorf("dimensions %v %v %v", doc[DimFunction], doc[DimStream], doc[DimTopic])
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	good := `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["F"]],"Metrics":[{"Name":"M","Unit":"Count"}]}]},"F":"f","M":1}`
	if err := Validate([]byte(good)); err != nil {
		t.Fatalf("good document rejected: %v", err)
	}
	for name, doc := range map[string]string{
		"no _aws":          `{"M":1}`,
		"no timestamp":     `{"_aws":{"CloudWatchMetrics":[]}}`,
		"bad unit":         strings.Replace(good, `"Count"`, `"Things"`, 1),
		"missing value":    strings.Replace(good, `,"M":1`, ``, 1),
		"missing dim":      strings.Replace(good, `"F":"f",`, ``, 1),
		"string value":     strings.Replace(good, `"M":1`, `"M":"1"`, 1),
		"empty array":      strings.Replace(good, `"M":1`, `"M":[]`, 1),
		"no namespace":     strings.Replace(good, `"Namespace":"N",`, ``, 1),
		"numeric dim":      strings.Replace(good, `"F":"f"`, `"F":3`, 1),
		"bad resolution":   strings.Replace(good, `"Unit":"Count"`, `"Unit":"Count","StorageResolution":5`, 1),
		"not json":         `{`,
		"too many values":  strings.Replace(good, `"M":1`, `"M":[`+strings.Repeat("1,", 100)+`1]`, 1),
		"metrics missing":  strings.Replace(good, `,"Metrics":[{"Name":"M","Unit":"Count"}]`, ``, 1),
		"dimensions nil":   strings.Replace(good, `"Dimensions":[["F"]],`, ``, 1),
		"timestamp string": strings.Replace(good, `"Timestamp":1`, `"Timestamp":"1"`, 1),
	} {
		if err := Validate([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
