package config

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/streambridge/kinesis-pulsar/internal/sink"
)

const sinkStreamARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/orders"

func sinkEnv(extra map[string]string) func(string) string {
	kv := map[string]string{VarServiceURL: "pulsar://127.0.0.1:6650", VarSinkTopics: "orders", VarKinesisStreamARN: sinkStreamARN}
	for k, v := range extra {
		kv[k] = v
	}
	return env(kv)
}

func TestLoadSinkDefaults(t *testing.T) {
	c, err := LoadSink(sinkEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := sink.Options{StreamARN: sinkStreamARN, Topics: []string{"orders"}, Subscription: "kinesis-sink",
		MaxRedeliveries: 10, DeadlineMargin: time.Second}
	if !reflect.DeepEqual(c.Sink, want) {
		t.Errorf("sink options\n%+v\nwant\n%+v", c.Sink, want)
	}
	if c.Region != "eu-west-1" || c.MetricsNamespace != DefaultMetricsNamespace || !c.Client.TLSValidateHostname {
		t.Errorf("region %q, namespace %q, validate hostname %v", c.Region, c.MetricsNamespace, c.Client.TLSValidateHostname)
	}
}

func TestLoadSinkValues(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want func(sink.Options) bool
	}{
		{"topics list", map[string]string{VarSinkTopics: " a, persistent://public/default/b ,"},
			func(o sink.Options) bool {
				return reflect.DeepEqual(o.Topics, []string{"a", "persistent://public/default/b"})
			}},
		{"pattern", map[string]string{VarSinkTopics: "", VarSinkTopicsPattern: "persistent://public/default/o-.*"},
			func(o sink.Options) bool {
				return o.TopicsPattern == "persistent://public/default/o-.*" && o.Topics == nil
			}},
		{"earliest", map[string]string{VarSinkInitialPosition: "EARLIEST"},
			func(o sink.Options) bool { return o.InitialPosition == sink.PositionEarliest }},
		{"property key", map[string]string{VarKinesisPartitionKey: "property:tenant"},
			func(o sink.Options) bool {
				return o.PartitionKey == sink.PartitionKey{Source: sink.KeyProperty, Property: "tenant"}
			}},
		{"random key", map[string]string{VarKinesisPartitionKey: "random"},
			func(o sink.Options) bool { return o.PartitionKey.Source == sink.KeyRandom }},
		{"json", map[string]string{VarKinesisFormat: "json"}, func(o sink.Options) bool { return o.Format == sink.FormatJSON }},
		{"connector's expand", map[string]string{VarKinesisFormat: "FULL_MESSAGE_IN_JSON_EXPAND_VALUE"},
			func(o sink.Options) bool { return o.Format == sink.FormatJSONExpand }},
		{"ordering none", map[string]string{VarKinesisOrdering: "none"}, func(o sink.Options) bool { return o.Ordering == sink.OrderNone }},
		{"aggregation", map[string]string{VarKinesisAggregation: "true"}, func(o sink.Options) bool { return o.Aggregation }},
		{"dead letters", map[string]string{VarSinkDeadLetterTopic: "persistent://public/default/dlt", VarSinkMaxRedeliveries: "3"},
			func(o sink.Options) bool {
				return o.DeadLetterTopic == "persistent://public/default/dlt" && o.MaxRedeliveries == 3
			}},
		{"margin", map[string]string{VarDeadlineMargin: "2500"}, func(o sink.Options) bool { return o.DeadlineMargin == 2500*time.Millisecond }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadSink(sinkEnv(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(c.Sink) {
				t.Errorf("options %+v", c.Sink)
			}
		})
	}
}

// TestLoadSinkReportsEveryProblem: one start names every invalid variable.
func TestLoadSinkReportsEveryProblem(t *testing.T) {
	_, err := LoadSink(env(map[string]string{
		VarServiceURL:          "http://x",
		VarSinkTopics:          "a/b/c/d",
		VarSinkTopicsPattern:   "(",
		VarSinkSubscription:    "no spaces",
		VarSinkInitialPosition: "middle",
		VarKinesisStreamARN:    "orders",
		VarKinesisPartitionKey: "property:",
		VarKinesisFormat:       "FULL_MESSAGE_IN_FB",
		VarKinesisOrdering:     "strict",
		VarKinesisAggregation:  "maybe",
		VarSinkDeadLetterTopic: "a b",
		VarSinkMaxRedeliveries: "0",
	}))
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v, want *Error", err)
	}
	got := map[string]bool{}
	for _, p := range cerr.Problems {
		got[p.Variable] = true
	}
	for _, v := range []string{VarServiceURL, VarSinkTopicsPattern, VarSinkSubscription, VarSinkInitialPosition,
		VarKinesisStreamARN, VarKinesisPartitionKey, VarKinesisFormat, VarKinesisOrdering, VarKinesisAggregation,
		VarSinkDeadLetterTopic, VarSinkMaxRedeliveries} {
		if !got[v] {
			t.Errorf("no problem reported for %s; got %v", v, err)
		}
	}
	if _, err := LoadSink(env(map[string]string{VarServiceURL: "pulsar://h:6650", VarKinesisStreamARN: sinkStreamARN})); err == nil {
		t.Error("neither SINK_TOPICS nor SINK_TOPICS_PATTERN: no error")
	}
}
