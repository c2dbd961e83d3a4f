package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	smithylog "github.com/aws/smithy-go/logging"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       map[string]string
		debugSeen bool
		json      bool
	}{
		{"defaults", nil, false, true},
		{"LOG_LEVEL", map[string]string{"LOG_LEVEL": "debug"}, true, true},
		{"Lambda level wins", map[string]string{"LOG_LEVEL": "debug", "AWS_LAMBDA_LOG_LEVEL": "WARN"}, false, true},
		{"Lambda trace", map[string]string{"AWS_LAMBDA_LOG_LEVEL": "TRACE"}, true, true},
		{"text", map[string]string{"AWS_LAMBDA_LOG_FORMAT": "Text"}, false, false},
		{"json explicit", map[string]string{"AWS_LAMBDA_LOG_FORMAT": "JSON"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := New(&buf, func(k string) string { return tc.env[k] })
			log.Debug("d")
			log.Warn("w", "k", "v")
			out := buf.String()
			if got := strings.Contains(out, `"msg":"d"`) || strings.Contains(out, "msg=d"); got != tc.debugSeen {
				t.Errorf("debug line present = %v, want %v:\n%s", got, tc.debugSeen, out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			last := lines[len(lines)-1]
			var m map[string]any
			isJSON := json.Unmarshal([]byte(last), &m) == nil
			if isJSON != tc.json {
				t.Fatalf("json = %v, want %v: %s", isJSON, tc.json, last)
			}
			if isJSON && (m["level"] != "WARN" || m["timestamp"] == nil || m["k"] != "v") {
				t.Errorf("unexpected line %v", m)
			}
		})
	}
}

func TestSDK(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, func(string) string { return "" })
	sdk := SDK(log)
	sdk.Logf(smithylog.Warn, "falling back to IMDSv1: %v", "status 403")
	sdk.Logf(smithylog.Debug, "request %d", 1) // below INFO: dropped
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines, want the warning only:\n%s", len(lines), buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("not JSON: %s", lines[0])
	}
	if m["level"] != "WARN" || m["msg"] != "falling back to IMDSv1: status 403" || m["source"] != "aws-sdk" {
		t.Errorf("line %v", m)
	}
}
