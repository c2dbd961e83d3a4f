//go:build integration && unix

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
)

// bootstrap is the function built for this host, as make demo builds it.
var bootstrap string

func TestMain(m *testing.M) {
	runtimeapi.RunTests(m, "../../../functions/kinesis-to-pulsar", &bootstrap)
}

// TestDemo runs the whole demo against the local stack: stream, KPL and plain producers, the local
// poller, the real bootstrap under the RIE, Pulsar.
func TestDemo(t *testing.T) {
	stack := localenv.Require(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	c := config{
		bootstrap: bootstrap, envVars: "../../../events/env.json", function: "KinesisToPulsarFunction",
		stream: "kp-demo-test-" + hex.EncodeToString(b), shards: 2, batchSize: 2, maxRetries: 1,
		memoryMB: 256, timeout: 10 * time.Second, wait: 20 * time.Second, driver: "rie",
	}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := run(ctx, c, &stdout, &stderr)
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}

	// The producers: one KPL aggregate of the ten quick-start records, then the plain records. The
	// stream holds those (and a copy, should a producer have retried a put): that is what must reach
	// Pulsar.
	if len(rep.puts) != 1+len(plainRecords) || !rep.puts[0].aggregated || rep.puts[0].userRecords != quickStartRecords ||
		rep.puts[0].partitionKey != quickStartKey {
		t.Fatalf("puts = %+v", rep.puts)
	}
	if len(rep.records) < len(rep.puts) || rep.expected < quickStartRecords+len(plainRecords) {
		t.Fatalf("the stream holds %+v (%d user records) for puts %+v", rep.records, rep.expected, rep.puts)
	}

	// The poller: per shard, batches of two in sequence order, each shard checkpointed at its last
	// record, nothing given up on.
	perShard := map[string][]string{}
	for _, r := range rep.records {
		perShard[r.shard] = append(perShard[r.shard], r.sequence)
	}
	wantInvocations := 0
	for shard, seqs := range perShard {
		if got, want := rep.summary.Checkpoints[shard], seqs[len(seqs)-1]; got != want {
			t.Errorf("checkpoint of %s = %q, want %q", shard, got, want)
		}
		wantInvocations += (len(seqs) + 1) / 2
	}
	if rep.summary.Invocations != wantInvocations || len(rep.summary.Failed) != 0 {
		t.Errorf("summary = %+v, want %d invocations and no failed batch:\n%s", rep.summary, wantInvocations, &stdout)
	}

	// Pulsar: a message per user record; the aggregate's in sub-record order, customer-17's in the
	// order written; payloads byte for byte.
	if len(rep.messages) != rep.expected {
		t.Fatalf("%d messages, want %d:\n%s", len(rep.messages), rep.expected, &stdout)
	}
	subs := map[string][]string{} // per aggregate (its sequence number)
	var customer17 []string
	for _, m := range rep.messages {
		if want := "persistent://public/default/" + c.stream; m.Topic != want {
			t.Errorf("message on %s, want %s", m.Topic, want)
		}
		props := m.Properties()
		switch m.Key() {
		case quickStartKey:
			if string(m.Payload()) != quickStartData {
				t.Errorf("quick-start message %q, properties %v", m.Payload(), props)
			}
			seq := props["kinesis.sequence.number"]
			subs[seq] = append(subs[seq], props["kinesis.sub.sequence.number"])
		case "customer-17":
			customer17 = append(customer17, string(m.Payload()))
		case "sensor-7":
			if !bytes.Equal(m.Payload(), plainRecords[3].data) {
				t.Errorf("binary payload = %x, want %x", m.Payload(), plainRecords[3].data)
			}
		}
		if props["kinesis.stream.arn"] != "arn:aws:kinesis:us-east-1:123456789012:stream/"+c.stream || props["kinesis.shard.id"] == "" {
			t.Errorf("message properties %v", props)
		}
	}
	if len(subs) == 0 {
		t.Error("no quick-start message")
	}
	for seq, sub := range subs {
		if got := strings.Join(sub, ","); got != "0,1,2,3,4,5,6,7,8,9" {
			t.Errorf("sub-sequence numbers of aggregate %s in Pulsar order: %s", seq, got)
		}
	}
	if len(customer17) < 2 || !strings.Contains(customer17[0], "1001") || !strings.Contains(customer17[len(customer17)-1], "1003") {
		t.Errorf("customer-17 in Pulsar order: %q", customer17)
	}

	// What is printed is what pulsar-client consume prints.
	out := stdout.String()
	if n := strings.Count(out, "----- got message -----\n"); n != rep.expected {
		t.Errorf("%d messages printed, want %d", n, rep.expected)
	}
	for _, want := range []string{
		"key:[myPartitionKey], properties:[kinesis.arrival.timestamp=",
		"kinesis.sub.sequence.number=9], content:test-kinesis-data\n",
		"content:hex:1f8b08000000000000ff2b492d2e0100 (not UTF-8)\n",
		"== " + strconv.Itoa(rep.expected) + " messages for " + strconv.Itoa(rep.expected) + " user records",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// The stream went with the demo.
	awsCfg, err := stack.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = kinesis.NewFromConfig(awsCfg).DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(c.stream)})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("the stream %s is still there after the demo (DescribeStreamSummary: %v)", c.stream, err)
	}
}
