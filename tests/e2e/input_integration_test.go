//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

// An SQS event (a trigger attached by mistake) fails the invocation with an error saying what
// arrived, and nothing is published: a success would have the queue delete messages never published.
func TestBootstrapRefusesOtherEvents(t *testing.T) {
	stack := localenv.Require(t)
	tp := pulsartest.Topic(t, "e2e")
	f := mustStart(t, map[string]string{"PULSAR_SERVICE_URL": stack.PulsarServiceURL, "PULSAR_TOPIC": tp}, 10*time.Second)
	res, err := f.env.Invoke(context.Background(), []byte(`{"Records":[{"messageId":"1","eventSource":"aws:sqs",`+
		`"eventSourceARN":"arn:aws:sqs:us-east-1:000000000000:q","body":"hello"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Error == nil || !strings.Contains(res.Error.Message, `eventSource "aws:sqs"`) {
		t.Fatalf("response %s, error %v; want a function error naming aws:sqs", res.Payload, res.Error)
	}
	if msgs := pulsartest.ReadAll(t, pulsartest.Client(t, stack.PulsarServiceURL), tp, 30*time.Second); len(msgs) != 0 {
		t.Errorf("%d messages published from an SQS event", len(msgs))
	}
}

// Settings that weaken security are allowed, with a warning at init.
func TestBootstrapWarnsAboutInsecureSettings(t *testing.T) {
	stack := localenv.Require(t)
	f := mustStart(t, map[string]string{"PULSAR_SERVICE_URL": stack.PulsarServiceURL, "PULSAR_TOPIC": pulsartest.Topic(t, "e2e"),
		"PULSAR_TLS_ALLOW_INSECURE": "true", "PULSAR_AUTH_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:e2e-none"},
		10*time.Second)
	f.settle(t, 0, 2)
	var warnings []string
	for _, l := range f.logs(t, "insecure configuration") {
		warnings = append(warnings, fmt.Sprint(l["warning"]))
	}
	all := strings.Join(warnings, "\n")
	if len(warnings) != 2 || !strings.Contains(all, "PULSAR_TLS_ALLOW_INSECURE") || !strings.Contains(all, "cleartext") {
		t.Errorf("init warnings %q, want one for PULSAR_TLS_ALLOW_INSECURE and one for credentials over pulsar://", warnings)
	}
}

// The AWS SDK's own warnings are JSON lines like the function's: here the credential chain finds no
// credentials and asks an instance metadata service that refuses tokens (as on some CI hosts), and the
// SDK's "falling back to IMDSv1" must not reach stderr as plain text.
func TestBootstrapLogsTheSDKsWarningsAsJSON(t *testing.T) {
	stack := localenv.Require(t)
	var asked atomic.Int32
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		http.Error(w, "forbidden", http.StatusForbidden)
	}))
	t.Cleanup(imds.Close)
	f := mustStart(t, map[string]string{"PULSAR_SERVICE_URL": stack.PulsarServiceURL, "PULSAR_TOPIC": pulsartest.Topic(t, "e2e"),
		"PULSAR_AUTH_SECRET_ARN":            "arn:aws:secretsmanager:us-east-1:000000000000:secret:e2e-none",
		"AWS_EC2_METADATA_DISABLED":         "false",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.URL,
	}, 10*time.Second)
	// The warm-up fetches the secret, which resolves credentials; wait for its warning.
	deadline := time.Now().Add(10 * time.Second)
	for len(f.logs(t, "warm-up could not create the producer; the first invocation will retry")) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if asked.Load() == 0 {
		t.Fatal("the credential chain never asked the metadata service; the premise does not hold")
	}
	// Every stderr line is JSON, the SDK's warning included.
	var warned bool
	for _, line := range f.stderr.Lines() {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			t.Errorf("stderr line is not JSON: %s", line)
			continue
		}
		if msg, _ := m["msg"].(string); strings.Contains(msg, "IMDSv1") {
			warned = true
			if m["level"] != "WARN" || m["source"] != "aws-sdk" {
				t.Errorf("SDK warning %v, want level WARN and source aws-sdk", m)
			}
		}
	}
	if !warned {
		t.Errorf("no SDK warning about IMDSv1 on stderr:\n%s", strings.Join(f.stderr.Lines(), "\n"))
	}
}
