//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
	"github.com/streambridge/kinesis-pulsar/tests/authtest"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

// The acceptance of the auth issue: the real bootstrap, configured with PULSAR_SERVICE_URL (pulsar+ssl),
// PULSAR_TOPIC and PULSAR_AUTH_SECRET_ARN only (plus where the local Secrets Manager is, and test
// credentials), against a broker that requires token authentication over TLS.
func TestBootstrapAuth(t *testing.T) {
	stack := localenv.Require(t)
	broker := authtest.Start(t, "auth-e2e")
	secrets := authtest.NewSecrets(t)
	material := authtest.Material{}
	material.Add("admin token", broker.AdminToken)
	reader := broker.Client(t)
	awsVars := func(endpointVar string) map[string]string {
		return map[string]string{endpointVar: stack.AWSEndpointURL, "AWS_REGION": stack.AWSRegion,
			"AWS_ACCESS_KEY_ID": stack.AWSAccessKeyID, "AWS_SECRET_ACCESS_KEY": stack.AWSSecretAccessKey}
	}
	tokenSecret := func(token string) string {
		return authtest.JSON(map[string]string{"type": "token", "token": token, "caPem": broker.CAPEM})
	}

	// invoke runs one invocation and checks that nothing the function wrote holds secret material;
	// whatever it prints is redacted.
	invoke := func(t *testing.T, f *function, ev events.KinesisEvent) (events.KinesisEventResponse, runtimeapi.Result) {
		t.Helper()
		payload, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.env.Invoke(context.Background(), payload)
		f.settle(t, 1, 2)
		out := strings.Join(f.stdout.Lines(), "\n") + "\n" + strings.Join(f.stderr.Lines(), "\n")
		if leaks := material.Leaks(out); len(leaks) > 0 {
			t.Errorf("the function's output contains secret material: %v", leaks)
		}
		if err != nil || res.Error != nil {
			t.Fatalf("invoke: %v, function error %v\nstderr (redacted):\n%s", err, res.Error, material.Redact(out))
		}
		var resp events.KinesisEventResponse
		if err := json.Unmarshal(res.Payload, &resp); err != nil {
			t.Fatalf("response %s: %v", res.Payload, err)
		}
		return resp, res
	}
	startFn := func(t *testing.T, vars map[string]string, timeout time.Duration) *function {
		t.Helper()
		f, err := start(t, vars, timeout)
		if err != nil {
			t.Fatalf("starting bootstrap: %v\nstderr (redacted):\n%s", err, material.Redact(strings.Join(f.stderr.Lines(), "\n")))
		}
		return f
	}

	t.Run("publishes", func(t *testing.T) {
		token := broker.Token(t, "fn", 0)
		material.Add("fn token", token)
		topic := pulsartest.Topic(t, "e2e-auth")
		vars := awsVars("AWS_ENDPOINT_URL")
		vars["PULSAR_SERVICE_URL"] = broker.ServiceURL
		vars["PULSAR_TOPIC"] = topic
		vars["PULSAR_AUTH_SECRET_ARN"] = secrets.Create(t, "e2e", tokenSecret(token))
		f := startFn(t, vars, 30*time.Second)

		resp, res := invoke(t, f, quickStartEvent(t, "e2e-auth"))
		if resp.BatchItemFailures == nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("response %s, want an empty batchItemFailures list\nstderr (redacted):\n%s", res.Payload,
				material.Redact(strings.Join(f.stderr.Lines(), "\n")))
		}
		if docs := f.emf(t); len(docs) != 1 || docs[0]["MessagesPublished"] != 10.0 || docs[0]["outcome"] != "delivered" {
			t.Errorf("EMF %v", docs)
		}
		if msgs := pulsartest.ReadAll(t, reader, topic, time.Minute); len(msgs) != 10 {
			t.Errorf("read %d messages back, want 10", len(msgs))
		}
	})

	// A token signed with a key the broker does not know: the whole batch is reported failed before
	// the deadline, the log names the secret and the refusal. Once the secret holds a valid token, the
	// same process publishes: no cold start (here the invocation that failed at its deadline made the
	// pool replace its client; internal/auth's tests cover the case where it does not). The secret
	// comes through AWS_ENDPOINT_URL_SECRETS_MANAGER, without AWS_ENDPOINT_URL.
	t.Run("wrong token then rotated", func(t *testing.T) {
		foreign := broker.ForeignToken(t, "fn")
		material.Add("foreign token", foreign)
		arn := secrets.Create(t, "e2e", tokenSecret(foreign))
		vars := awsVars("AWS_ENDPOINT_URL_SECRETS_MANAGER")
		vars["PULSAR_SERVICE_URL"] = broker.ServiceURL
		vars["PULSAR_TOPIC"] = pulsartest.Topic(t, "e2e-auth")
		vars["PULSAR_AUTH_SECRET_ARN"] = arn
		const timeout = 4 * time.Second
		f := startFn(t, vars, timeout)

		ev := quickStartEvent(t, "e2e-auth")
		resp, res := invoke(t, f, ev)
		if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != ev.Records[0].Kinesis.SequenceNumber {
			t.Fatalf("response %s, want the whole batch failed", res.Payload)
		}
		// DEADLINE_MARGIN_MS is 1 s by default: the relay stops 3 s in and answers. The product's bound
		// is the timeout (a later answer is no answer); the time between the stop and the response is
		// this machine's, so the assertion does not divide the margin further.
		if res.Duration >= timeout {
			t.Errorf("failing took %v of a %v timeout", res.Duration, timeout)
		}
		t.Logf("wrong token: whole batch failed after %v of a %v timeout", res.Duration.Round(time.Millisecond), timeout)
		if !f.refusalLogged(arn) {
			t.Errorf("no log line names the secret and the refusal\nstderr (redacted):\n%s", material.Redact(strings.Join(f.stderr.Lines(), "\n")))
		}

		valid := broker.Token(t, "fn", 0)
		material.Add("rotated token", valid)
		secrets.Put(t, arn, tokenSecret(valid))
		f.stdout.Reset()
		f.stderr.Reset()
		resp, res = invoke(t, f, quickStartEvent(t, "e2e-auth"))
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("after the rotation: response %s\nstderr (redacted):\n%s", res.Payload, material.Redact(strings.Join(f.stderr.Lines(), "\n")))
		}
		if res.ColdStart || f.env.Launches() != 1 {
			t.Errorf("the rotation cost a cold start (launches %d)", f.env.Launches())
		}
		t.Logf("after the rotation: the next invocation delivered in %v, same process", res.Duration.Round(time.Millisecond))
	})
}

// refusalLogged reports a JSON log line of the function that says the broker refused the credentials
// of the secret.
func (f *function) refusalLogged(secretID string) bool {
	for _, line := range f.stderr.Lines() {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		msg, _ := m["msg"].(string)
		problem, _ := m["problem"].(string)
		if m["secret"] == secretID && strings.Contains(msg, "do not work") && strings.HasPrefix(problem, "is refused by the broker") {
			return true
		}
	}
	return false
}
