package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/streambridge/kinesis-pulsar/internal/metrics"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/tests/emfcheck"
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
			relay.EMFObserver{metrics.New(&buf, "KinesisPulsar", "fn", relay.MetricSchema)}.Observe(context.Background(), &tc.s)
			line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
				t.Fatalf("want one line, got %q", buf.String())
			}
			if err := emfcheck.Validate(line); err != nil {
				t.Fatalf("invalid EMF: %v\n%s", err, line)
			}
			var doc map[string]any
			_ = json.Unmarshal(line, &doc)
			for _, name := range tc.absent {
				if _, ok := doc[name]; ok || strings.Contains(string(line), `"Name":"`+name+`"`) {
					t.Errorf("%s present", name)
				}
			}
			if want := map[bool]float64{true: 1, false: 0}[tc.s.NoPublishTime]; doc["NoTimeToPublish"] != want {
				t.Errorf("NoTimeToPublish %v, want %v", doc["NoTimeToPublish"], want)
			}
			if doc[relay.DimStream] == "" || doc[relay.DimTopic] == "" || doc[metrics.DimFunction] != "fn" {
				t.Errorf("dimensions %v %v %v", doc[metrics.DimFunction], doc[relay.DimStream], doc[relay.DimTopic])
			}
		})
	}
}
