//go:build integration

package e2e

import (
	"context"
	"fmt"
	"strings"
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
