//go:build unix

package localfn

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
	"github.com/streambridge/kinesis-pulsar/internal/kpl"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
	"github.com/streambridge/kinesis-pulsar/tests/kinesistest"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "env.json")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadSAMEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    map[string]string
		err     string
	}{
		{
			name:    "the function's block over Parameters; scalars as SAM passes them",
			content: `{"Parameters":{"A":"global","B":"global"},"Fn":{"B":"mine","N":42,"F":1.5,"T":true,"Z":null},"Other":{"A":"not mine"}}`,
			want:    map[string]string{"A": "global", "B": "mine", "N": "42", "F": "1.5", "T": "true", "Z": ""},
		},
		{name: "no block for the function", content: `{"Other":{}}`, err: `has no "Fn" block (it has Other)`},
		{name: "not JSON", content: `A=1`, err: "want {"},
		{name: "a nested value", content: `{"Fn":{"A":{"b":1}}}`, err: "A: want a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := LoadSAMEnv(writeFile(t, tt.content), "Fn")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error = %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("LoadSAMEnv = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// The committed env.json is what make invoke and make demo read.
func TestLoadSAMEnvOfTheRepository(t *testing.T) {
	t.Parallel()
	vars, err := LoadSAMEnv("../../../events/env.json", FunctionName)
	if err != nil {
		t.Fatal(err)
	}
	if vars["PULSAR_TOPIC"] != "persistent://public/default/{stream}" || !strings.Contains(vars["PULSAR_SERVICE_URL"], dockerHost) {
		t.Errorf("events/env.json: %v", vars)
	}
}

func TestPointAtStack(t *testing.T) {
	t.Parallel()
	stack := localenv.Env{
		PulsarServiceURL: "pulsar://127.0.0.1:16650", AWSEndpointURL: "http://127.0.0.1:15000",
		DynamoDBEndpointURL: "http://127.0.0.1:18000", AWSAccessKeyID: "test", AWSSecretAccessKey: "secret",
	}
	vars := map[string]string{
		"PULSAR_SERVICE_URL":               "pulsar://host.docker.internal:6650",
		"PULSAR_TOPIC":                     "persistent://public/default/{stream}",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://host.docker.internal:5000",
		"AUDIT_TABLE_NAME":                 "",
	}
	env, changes := PointAtStack(vars, stack)
	want := []string{
		"AUDIT_TABLE_NAME=",
		"AWS_ACCESS_KEY_ID=test",
		"AWS_ENDPOINT_URL=http://127.0.0.1:15000",
		"AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:18000",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:5000",
		"AWS_SECRET_ACCESS_KEY=secret",
		"PULSAR_SERVICE_URL=pulsar://127.0.0.1:16650",
		"PULSAR_TOPIC=persistent://public/default/{stream}",
	}
	if !slices.Equal(env, want) {
		t.Errorf("env = %q, want %q", env, want)
	}
	wantChanges := []Change{
		{"AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://host.docker.internal:5000", "http://127.0.0.1:5000"},
		{"PULSAR_SERVICE_URL", "pulsar://host.docker.internal:6650", "pulsar://127.0.0.1:16650"},
	}
	if !slices.Equal(changes, wantChanges) {
		t.Errorf("changes = %+v, want %+v", changes, wantChanges)
	}
}

func TestTopicsAndExpectedMessages(t *testing.T) {
	t.Parallel()
	shard := kinesistest.NewShard("orders", 0)
	agg, err := shard.Aggregate([]kpl.Record{{PartitionKey: "a", Data: []byte("1")}, {PartitionKey: "a", Data: []byte("2")}, {PartitionKey: "b", Data: []byte("3")}})
	if err != nil {
		t.Fatal(err)
	}
	plain := shard.Record("c", []byte("plain"))
	other := kinesistest.NewShard("payments", 1).Record("d", []byte("x"))
	broken := shard.Record("e", []byte("y"))
	broken.EventSourceArn = "arn:aws:kinesis:us-east-1:123456789012:no-stream-here"
	ev := kinesistest.Event(agg, plain, other, broken)
	arns := make([]string, len(ev.Records))
	for i, r := range ev.Records {
		arns[i] = r.EventSourceArn
	}

	tests := []struct {
		name     string
		vars     map[string]string
		topics   []string
		expected int
	}{
		{"per stream, de-aggregated", map[string]string{"PULSAR_TOPIC": "persistent://public/default/{stream}"},
			[]string{"persistent://public/default/orders", "persistent://public/default/payments"}, 6},
		{"one topic and a dead-letter topic", map[string]string{"PULSAR_TOPIC": "events", "DEAD_LETTER_TOPIC": "dlq-{stream}"},
			[]string{"events", "dlq-orders", "dlq-payments"}, 6},
		{"aggregates kept whole", map[string]string{"PULSAR_TOPIC": "events", "KPL_DEAGGREGATE": "FALSE"},
			[]string{"events"}, 4},
		// The function's own spellings of false: "no" and "0" keep aggregates whole too.
		{"aggregates kept whole (no)", map[string]string{"PULSAR_TOPIC": "events", "KPL_DEAGGREGATE": "no"},
			[]string{"events"}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"PULSAR_SERVICE_URL": "pulsar://127.0.0.1:6650"}
			maps.Copy(vars, tt.vars)
			env, _ := PointAtStack(vars, localenv.Env{PulsarServiceURL: vars["PULSAR_SERVICE_URL"]})
			opts, err := RelayOptions(env)
			if err != nil {
				t.Fatal(err)
			}
			if got := Topics(opts, arns...); !slices.Equal(got, tt.topics) {
				t.Errorf("Topics = %q, want %q", got, tt.topics)
			}
			if got := ExpectedMessages(opts, ev.Records); got != tt.expected {
				t.Errorf("ExpectedMessages = %d, want %d", got, tt.expected)
			}
		})
	}
	if got := Topics(relay.Options{Topic: streamtopic.MustParse("{stream}")}, broken.EventSourceArn); len(got) != 0 {
		t.Errorf("a record without a stream has topics %q", got)
	}
}

func TestFormatLikePulsarClientConsume(t *testing.T) {
	t.Parallel()
	props := map[string]string{"kinesis.sequence.number": "42", "kinesis.partition.key": "k"}
	tests := []struct {
		name    string
		key     string
		props   map[string]string
		payload []byte
		want    string
	}{
		{"text", "myPartitionKey", props, []byte("test-kinesis-data"),
			"----- got message -----\nkey:[myPartitionKey], properties:[kinesis.partition.key=k, kinesis.sequence.number=42], content:test-kinesis-data"},
		{"no key, no properties, empty", "", nil, nil, "----- got message -----\nkey:[null], properties:[], content:"},
		{"UTF-8 with a newline is quoted", "k", nil, []byte("a\nb é"), "----- got message -----\nkey:[k], properties:[], content:\"a\\nb é\""},
		{"binary is hex", "k", nil, []byte{0x1f, 0x8b, 0xff}, "----- got message -----\nkey:[k], properties:[], content:hex:1f8bff (not UTF-8)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := format(tt.key, tt.props, tt.payload); got != tt.want {
				t.Errorf("format =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	long := make([]byte, 256)
	for i := range long {
		long[i] = byte(i)
	}
	if got := Content(long); !strings.HasPrefix(got, "hex:000102") || !strings.HasSuffix(got, "3e3f… (256 bytes, not UTF-8)") {
		t.Errorf("Content of 256 bytes = %s", got)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	got := Describe(runtimeapi.Result{RequestID: "r1", Duration: 12345 * time.Microsecond, ColdStart: true, InitDuration: 20 * time.Millisecond})
	if want := "request r1, 12.3 ms, cold start (init 20.0 ms)"; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
}
