//go:build integration && unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
	"github.com/streambridge/kinesis-pulsar/tests/pulsartest"
)

// bootstrap is the function built for this host, as make invoke builds it.
var bootstrap string

func TestMain(m *testing.M) {
	runtimeapi.RunTests(m, "../../../functions/kinesis-to-pulsar", &bootstrap)
}

// envFile is events/env.json with a topic of the test's own, so that nothing else publishing to
// my-stream meanwhile shows up; host.docker.internal stays, as invoke must replace it.
func envFile(t *testing.T, block map[string]string) string {
	t.Helper()
	data, err := json.Marshal(map[string]map[string]string{"KinesisToPulsarFunction": block})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "env.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestInvokeSampleEvents sends the committed sample events through the real bootstrap under the RIE.
func TestInvokeSampleEvents(t *testing.T) {
	localenv.Require(t)
	failed, err := os.ReadFile("../../../events/record-to-fail.json")
	if err != nil {
		t.Fatal(err)
	}
	var failEvent events.KinesisEvent
	if err := json.Unmarshal(failed, &failEvent); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		event    string
		response string
		// messages is the number of messages printed, lines what must be among the output's lines.
		messages int
		lines    []string
		err      string
	}{
		{
			event: "quickstart-kpl.json", response: `{"batchItemFailures":[]}`, messages: 10,
			lines: []string{"key:[myPartitionKey], properties:[kinesis.arrival.timestamp=2026-11-22T14:02:03.456Z, kinesis.encryption.type=NONE, " +
				"kinesis.partition.key=myPartitionKey, kinesis.sequence.number=49590338271490256608559692538362780021741190618311295074, " +
				"kinesis.shard.id=shardId-000000000000, kinesis.stream.arn=arn:aws:kinesis:us-east-1:123456789012:stream/my-stream, " +
				"kinesis.sub.sequence.number=9], content:test-kinesis-data"},
		},
		{
			event: "binary.json", response: `{"batchItemFailures":[]}`, messages: 5,
			lines: []string{"content:hex:1f8b08000000000000ff2b492d2e0100 (not UTF-8)", "content:hex:f3899ac2010203 (not UTF-8)"},
		},
		{
			// The doctored record fails; the two before it are published.
			event:    "record-to-fail.json",
			response: `{"batchItemFailures":[{"itemIdentifier":"` + failEvent.Records[2].Kinesis.SequenceNumber + `"}]}`,
			messages: 2,
			lines:    []string{"content:record 0", "content:record 1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			topic := pulsartest.Topic(t, "invoke") + "-{stream}"
			c := config{
				event: "../../../events/" + tt.event, function: "KinesisToPulsarFunction", bootstrap: bootstrap,
				envVars:  envFile(t, map[string]string{"PULSAR_SERVICE_URL": "pulsar://host.docker.internal:6650", "PULSAR_TOPIC": topic}),
				memoryMB: 256, timeout: 10 * time.Second, wait: 20 * time.Second,
			}
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), c, &stdout, &stderr); err != nil {
				t.Fatalf("invoke: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			if lines[0] != tt.response {
				t.Errorf("response = %s, want %s", lines[0], tt.response)
			}
			if n := strings.Count(stdout.String(), "----- got message -----\n"); n != tt.messages {
				t.Errorf("%d messages printed, want %d:\n%s", n, tt.messages, &stdout)
			}
			for _, want := range tt.lines {
				found := false
				for _, l := range lines {
					found = found || strings.HasSuffix(l, want)
				}
				if !found {
					t.Errorf("no line ends with %q:\n%s", want, &stdout)
				}
			}
			if !strings.Contains(stderr.String(), "PULSAR_SERVICE_URL=pulsar://127.0.0.1:") {
				t.Errorf("stderr does not say where PULSAR_SERVICE_URL points:\n%s", &stderr)
			}
		})
	}
}

// A configuration the function refuses at init is a failed invocation with the function's reason.
func TestInvokeReportsAFailedInit(t *testing.T) {
	localenv.Require(t)
	c := config{
		event: "../../../events/quickstart-kpl.json", function: "KinesisToPulsarFunction", bootstrap: bootstrap,
		envVars:  envFile(t, map[string]string{"PULSAR_SERVICE_URL": "pulsar://host.docker.internal:6650"}),
		memoryMB: 256, timeout: 10 * time.Second, wait: 5 * time.Second,
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), c, &stdout, &stderr)
	if !errors.Is(err, runtimeapi.ErrInitFailed) || !strings.Contains(err.Error(), "failed during init") {
		t.Fatalf("run = %v, want a failed invocation\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	if !strings.Contains(stderr.String(), "PULSAR_TOPIC") {
		t.Errorf("the function's reason (PULSAR_TOPIC missing) is not in its output:\n%s", &stderr)
	}
}
