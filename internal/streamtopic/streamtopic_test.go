package streamtopic

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		topic string
		ok    bool
	}{
		{"persistent://public/default/events", true},
		{"non-persistent://t/ns/x", true},
		{"persistent://public/default/{stream}-raw", true},
		{"my-topic", true},
		{"tenant/ns/topic", true},
		{"", true}, // no topic
		{"persistent://public/default/{shard}", false},
		{"persistent://public/default/", false},
		{"persistent://public/events", false},
		{"kafka://a/b/c", false},
		{"a b", false},
	} {
		got, err := Parse(tc.topic)
		if (err == nil) != tc.ok {
			t.Errorf("Parse(%q): err %v, want ok=%v", tc.topic, err, tc.ok)
		}
		if err == nil && got.String() != tc.topic {
			t.Errorf("Parse(%q).String() = %q", tc.topic, got)
		}
	}
}

func TestResolve(t *testing.T) {
	const (
		streamARN   = "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
		consumerARN = "arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/c:1700000000"
		noStream    = "arn:aws:kinesis:us-east-1:123456789012:no-stream-here"
	)
	for _, tc := range []struct {
		template, arn, want string
		noStream            bool
	}{
		{"persistent://public/default/{stream}-raw", streamARN, "persistent://public/default/orders-raw", false},
		{"persistent://public/default/{stream}", consumerARN, "persistent://public/default/orders", false},
		{"persistent://public/default/fixed", noStream, "persistent://public/default/fixed", false},
		{"persistent://public/default/{stream}", noStream, "", true},
		{"{stream}", "", "", true},
		{"", streamARN, "", false},
	} {
		got, err := MustParse(tc.template).Resolve(tc.arn)
		if got != tc.want || errors.Is(err, ErrNoStream) != tc.noStream {
			t.Errorf("%q.Resolve(%q) = %q, %v; want %q, no stream %v", tc.template, tc.arn, got, err, tc.want, tc.noStream)
		}
	}
}

func TestStreamName(t *testing.T) {
	for arn, want := range map[string]string{
		"arn:aws:kinesis:us-east-1:123456789012:stream/orders":                       "orders",
		"arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/c:1700000000": "orders",
		"arn:aws:sqs:us-east-1:123456789012:stream/orders":                           "",
		"arn:aws:kinesis:us-east-1:123456789012:table/orders":                        "",
		"orders": "",
	} {
		if got := StreamName(arn); got != want {
			t.Errorf("StreamName(%q) = %q, want %q", arn, got, want)
		}
	}
}
