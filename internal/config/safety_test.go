package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Settings that parse but can only go wrong are refused, each named, together with every other
// problem.
func TestRefusesUnsafeSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  map[string]string
		want []string // variables reported
	}{
		{"non-persistent topic", map[string]string{VarTopic: "non-persistent://public/default/events"}, []string{VarTopic}},
		{"non-persistent dead-letter topic", map[string]string{VarDeadLetterTopic: "non-persistent://public/default/dlq"}, []string{VarDeadLetterTopic}},
		{"dead-letter topic is the topic", map[string]string{VarTopic: "persistent://public/default/events", VarDeadLetterTopic: "persistent://public/default/events"}, []string{VarDeadLetterTopic}},
		{"dead-letter topic is the topic, short names", map[string]string{VarTopic: "events", VarDeadLetterTopic: "public/default/events"}, []string{VarDeadLetterTopic}},
		{"dead-letter topic is the topic template", map[string]string{VarTopic: "persistent://public/default/{stream}", VarDeadLetterTopic: "{stream}"}, []string{VarDeadLetterTopic}},
		{"with other problems", map[string]string{VarTopic: "non-persistent://public/default/events", VarCompression: "gzip"}, []string{VarTopic, VarCompression}},
		{"distinct persistent topics", map[string]string{VarTopic: "events", VarDeadLetterTopic: "events-dlq"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := minimal()
			for k, v := range tc.set {
				kv[k] = v
			}
			_, err := Load(env(kv))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("want *Error, got %v", err)
			}
			var got []string
			for _, p := range cerr.Problems {
				got = append(got, p.Variable)
			}
			if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(tc.want))) {
				t.Errorf("problems with %v, want %v: %v", got, tc.want, err)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"no credentials", nil, nil},
		{"credentials over pulsar+ssl", map[string]string{VarServiceURL: "pulsar+ssl://broker:6651", VarAuthSecret: "arn:s"}, nil},
		{"credentials over pulsar", map[string]string{VarAuthSecret: "arn:s"}, []string{"cleartext"}},
		{"insecure TLS", map[string]string{VarServiceURL: "pulsar+ssl://broker:6651", VarTLSAllowInsecure: "true"}, []string{VarTLSAllowInsecure}},
		{"both", map[string]string{VarAuthSecret: "arn:s", VarTLSAllowInsecure: "true"}, []string{"cleartext", VarTLSAllowInsecure}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := minimal()
			for k, v := range tc.set {
				kv[k] = v
			}
			c, err := Load(env(kv))
			if err != nil {
				t.Fatal(err)
			}
			w := Warnings(c)
			if len(w) != len(tc.want) {
				t.Fatalf("warnings %q, want %d", w, len(tc.want))
			}
			for i, want := range tc.want {
				if !strings.Contains(w[i], want) {
					t.Errorf("warning %q does not say %q", w[i], want)
				}
			}
		})
	}
}
