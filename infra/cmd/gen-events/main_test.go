package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/internal/config"
	"github.com/streambridge/kinesis-pulsar/internal/kpl"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/tests/kinesistest"
	"github.com/streambridge/kinesis-pulsar/tests/pulsarfake"
)

const eventsDir = "../../../events"

func TestCommittedEventsAreCurrent(t *testing.T) {
	files, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		committed, err := os.ReadFile(filepath.Join(eventsDir, s.file))
		if err != nil {
			t.Errorf("%v: run go run ./infra/cmd/gen-events", err)
			continue
		}
		if !bytes.Equal(committed, files[s.file]) {
			t.Errorf("events/%s differs from what gen-events writes: run go run ./infra/cmd/gen-events", s.file)
		}
	}
}

// readEvent decodes a committed sample strictly, as Lambda's JSON would be.
func readEvent(t *testing.T, file string) (events.KinesisEvent, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(eventsDir, file))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var ev events.KinesisEvent
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("%s is not a KinesisEvent: %v", file, err)
	}
	return ev, data
}

var (
	sequencePattern = regexp.MustCompile(`^[0-9]{56}$`)
	shardPattern    = regexp.MustCompile(`^shardId-[0-9]{12}$`)
	// Lambda writes the arrival time as seconds with a fraction.
	arrivalPattern = regexp.MustCompile(`"approximateArrivalTimestamp": [0-9]{10}\.[0-9]{1,6},`)
)

func TestEventsAreWhatLambdaSends(t *testing.T) {
	for _, s := range samples {
		t.Run(s.file, func(t *testing.T) {
			ev, data := readEvent(t, s.file)
			if len(ev.Records) == 0 {
				t.Fatal("no records")
			}
			if n := len(arrivalPattern.FindAll(data, -1)); n != len(ev.Records) {
				t.Errorf("%d of %d records carry approximateArrivalTimestamp as float seconds", n, len(ev.Records))
			}
			var shard string
			prev := new(big.Int)
			for i, r := range ev.Records {
				k := r.Kinesis
				if !sequencePattern.MatchString(k.SequenceNumber) {
					t.Errorf("record %d: sequence number %q is not 56 digits", i, k.SequenceNumber)
				}
				id, seq, ok := strings.Cut(r.EventID, ":")
				if !ok || !shardPattern.MatchString(id) || seq != k.SequenceNumber {
					t.Errorf("record %d: eventID %q is not shardId-…:<its sequence number>", i, r.EventID)
				}
				if i == 0 {
					shard = id
				} else if id != shard {
					t.Errorf("record %d: shard %s in a batch of %s (a batch holds one shard)", i, id, shard)
				}
				n, _ := new(big.Int).SetString(k.SequenceNumber, 10)
				if n == nil || n.Cmp(prev) <= 0 {
					t.Errorf("record %d: sequence number does not grow", i)
				} else {
					prev = n
				}
				wantARN := kinesistest.StreamARN(stream)
				if s.file == "record-to-fail.json" && i == failIndex {
					wantARN = r.EventSourceArn // doctored on purpose; checked in TestEventsUnderEnvJSON
				}
				if r.EventSourceArn != wantARN || r.EventSource != "aws:kinesis" || r.EventName != "aws:kinesis:record" ||
					r.EventVersion != "1.0" || r.AwsRegion != kinesistest.Region || k.KinesisSchemaVersion != "1.0" {
					t.Errorf("record %d: envelope %+v is not Lambda's", i, r)
				}
				if k.PartitionKey == "" || k.ApproximateArrivalTimestamp.IsZero() {
					t.Errorf("record %d: no partition key or arrival time", i)
				}
			}
		})
	}
}

func TestSampleContents(t *testing.T) {
	t.Run("quickstart-kpl.json", func(t *testing.T) {
		ev, _ := readEvent(t, "quickstart-kpl.json")
		if len(ev.Records) != 1 {
			t.Fatalf("%d Kinesis records, want the KPL's one aggregate", len(ev.Records))
		}
		users, err := kpl.Deaggregate(ev.Records[0].Kinesis.Data)
		if err != nil {
			t.Fatalf("not a KPL aggregate: %v", err)
		}
		if len(users) != 10 {
			t.Fatalf("%d user records, want 10", len(users))
		}
		for i, u := range users {
			if u.PartitionKey != "myPartitionKey" || string(u.Data) != "test-kinesis-data" {
				t.Errorf("user record %d = %q %q", i, u.PartitionKey, u.Data)
			}
		}
	})
	t.Run("several-keys.json", func(t *testing.T) {
		ev, _ := readEvent(t, "several-keys.json")
		keys := map[string]int{}
		for _, r := range ev.Records {
			keys[r.Kinesis.PartitionKey]++
			if _, err := kpl.Deaggregate(r.Kinesis.Data); err != kpl.ErrNotAggregated {
				t.Errorf("record %s is not plain: %v", r.Kinesis.SequenceNumber, err)
			}
		}
		if len(keys) < 3 {
			t.Errorf("keys %v, want at least 3", keys)
		}
	})
	t.Run("binary.json", func(t *testing.T) {
		ev, _ := readEvent(t, "binary.json")
		if len(ev.Records) != len(binaryPayloads) {
			t.Fatalf("%d records, want %d", len(ev.Records), len(binaryPayloads))
		}
		for i, r := range ev.Records {
			if utf8.Valid(r.Kinesis.Data) {
				t.Errorf("record %d (%s) is valid UTF-8", i, r.Kinesis.PartitionKey)
			}
			if !bytes.Equal(r.Kinesis.Data, binaryPayloads[i].data) {
				t.Errorf("record %d (%s) does not decode to its payload", i, r.Kinesis.PartitionKey)
			}
		}
	})
}

// envJSON reads events/env.json, the --env-vars file of `sam local invoke`.
func envJSON(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(eventsDir, "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	var byFunction map[string]map[string]string
	if err := json.Unmarshal(data, &byFunction); err != nil {
		t.Fatalf("env.json: %v", err)
	}
	env, ok := byFunction["KinesisToPulsarFunction"]
	if !ok || len(byFunction) != 1 {
		t.Fatalf("env.json has %v, want one entry keyed by the function's logical id KinesisToPulsarFunction", slices.Collect(maps.Keys(byFunction)))
	}
	for k := range env {
		if !slices.Contains(config.Names(), k) {
			t.Errorf("env.json sets %s, which config does not read (sam local invoke only overrides the template's variables)", k)
		}
	}
	return env
}

// TestEventsUnderEnvJSON runs the real handler, configured from env.json, on every sample against a
// broker that confirms everything: only record-to-fail.json's doctored record may fail, and the
// messages are what the samples promise.
func TestEventsUnderEnvJSON(t *testing.T) {
	env := envJSON(t)
	if env[config.VarServiceURL] != "pulsar://host.docker.internal:6650" {
		t.Errorf("PULSAR_SERVICE_URL = %q: sam local invoke runs the function in a container, which reaches the host's broker as host.docker.internal", env[config.VarServiceURL])
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("env.json does not configure the function: %v", err)
	}
	topic, err := cfg.Relay.Topic.ForStream(stream, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file     string
		failed   int // record index reported as the batch item failure, -1 none
		messages int // confirmed on topic
	}{
		{"quickstart-kpl.json", -1, 10},
		{"several-keys.json", -1, 6},
		{"binary.json", -1, len(binaryPayloads)},
		{"record-to-fail.json", failIndex, -1},
	} {
		t.Run(tc.file, func(t *testing.T) {
			ev, _ := readEvent(t, tc.file)
			broker := pulsarfake.New(nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := relay.New(cfg.Relay, broker, nil, nil, nil).Handle(ctx, ev)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			var got []string
			for _, f := range resp.BatchItemFailures {
				got = append(got, f.ItemIdentifier)
			}
			var want []string
			if tc.failed >= 0 {
				want = []string{ev.Records[tc.failed].Kinesis.SequenceNumber}
			}
			if !slices.Equal(got, want) {
				t.Errorf("batch item failures %v, want %v", got, want)
			}
			if tc.messages < 0 {
				return
			}
			msgs := broker.Topic(topic)
			if len(msgs) != tc.messages || len(msgs) != len(broker.Messages) {
				t.Fatalf("%d messages on %s (of %d on every topic), want %d", len(msgs), topic, len(broker.Messages), tc.messages)
			}
			for i, m := range msgs {
				switch tc.file {
				case "quickstart-kpl.json":
					if m.Key != "myPartitionKey" || string(m.Payload) != "test-kinesis-data" {
						t.Errorf("message %d: key %q payload %q", i, m.Key, m.Payload)
					}
				default:
					r := ev.Records[i].Kinesis
					if m.Key != r.PartitionKey || !bytes.Equal(m.Payload, r.Data) {
						t.Errorf("message %d: key %q payload %x, want %q %x", i, m.Key, m.Payload, r.PartitionKey, r.Data)
					}
				}
			}
		})
	}
}
