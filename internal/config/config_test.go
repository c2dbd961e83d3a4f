package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/streambridge/kinesis-pulsar/internal/relay"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func minimal() map[string]string {
	return map[string]string{
		VarServiceURL: "pulsar://127.0.0.1:6650",
		VarTopic:      "persistent://public/default/{stream}",
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(minimal()))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"key", c.Relay.Key, relay.KeyPartitionKey},
		{"properties", c.Relay.Properties, relay.AllProperties},
		{"compression", c.Producer.Compression, pulsar.NoCompression},
		{"hashing", c.Producer.Hashing, pulsar.JavaStringHash},
		{"chunking", c.Producer.Chunking, true},
		{"deaggregate", c.Relay.Deaggregate, true},
		{"margin", c.Relay.DeadlineMargin, time.Second},
		{"large", c.Relay.LargeRecordBytes, 128 * 1024},
		{"batch bytes", c.Producer.BatchingMaxBytes, uint(128 * 1024)},
		{"keepalive", c.Producer.KeepAliveInterval, 30 * time.Second},
		{"validate hostname", c.Producer.TLSValidateHostname, true},
		{"insecure", c.Producer.TLSAllowInsecure, false},
		{"audit off", c.Audit.Table, ""},
		{"retention", c.Audit.Retention, 7 * 24 * time.Hour},
		{"namespace", c.MetricsNamespace, "KinesisPulsar"},
		{"dead letter", c.Relay.DeadLetterTopic.String(), ""},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoadValues(t *testing.T) {
	kv := minimal()
	for k, v := range map[string]string{
		VarMessageKey: "SHARDID", VarProperties: "kinesis.sequence.number, kinesis.shard.id",
		VarCompression: "zstd", VarHashing: "murmur3", VarBatchingMaxBytes: "1048576",
		VarBatchingType: "keyBased", VarChunking: "false", VarDeaggregate: "0", VarDeadlineMargin: "2500",
		VarDeadLetterTopic: "persistent://public/default/dlq-{stream}", VarAuditTable: "audit",
		VarAuditRetention: "3", VarAuditRequired: "true", VarAuthSecret: "arn:aws:secretsmanager:x",
		VarServiceURL: "pulsar+ssl://broker.example.com:6651",
	} {
		kv[k] = v
	}
	c, err := Load(env(kv))
	if err != nil {
		t.Fatal(err)
	}
	if c.Relay.Key != relay.KeyShardID || c.Relay.Properties != relay.PropSequenceNumber|relay.PropShardID ||
		c.Producer.Compression != pulsar.ZSTD || c.Producer.Hashing != pulsar.Murmur3_32Hash ||
		c.Relay.LargeRecordBytes != 1<<20 || !c.Producer.KeyBasedBatching || c.Producer.Chunking ||
		c.Relay.Deaggregate || c.Relay.DeadlineMargin != 2500*time.Millisecond || !c.Relay.AuditRequired ||
		c.Audit.Retention != 72*time.Hour || c.Auth.SecretID == "" {
		t.Errorf("unexpected config: %+v", c)
	}
	kv[VarProperties] = "none"
	if c, err = Load(env(kv)); err != nil || c.Relay.Properties != 0 {
		t.Errorf("none: properties %v, err %v", c.Relay.Properties, err)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := Load(env(map[string]string{
		VarServiceURL:       "http://user:hunter2@host",
		VarMessageKey:       "sequence",
		VarProperties:       "kinesis.sequence.number,kinesis.bogus",
		VarCompression:      "gzip",
		VarBatchingMaxBytes: "lots",
		VarDeadlineMargin:   "-5",
		VarChunking:         "maybe",
		VarAuditRequired:    "true",
		VarDeadLetterTopic:  "persistent://public/default/a b",
	}))
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("want *Error, got %v", err)
	}
	want := []string{VarServiceURL, VarTopic, VarMessageKey, VarProperties, VarCompression,
		VarBatchingMaxBytes, VarDeadlineMargin, VarChunking, VarAuditRequired, VarDeadLetterTopic}
	got := map[string]bool{}
	for _, p := range cerr.Problems {
		got[p.Variable] = true
		if p.Want == "" {
			t.Errorf("%s: no expectation stated", p.Variable)
		}
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("no problem reported for %s in %v", w, err)
		}
	}
	if len(cerr.Problems) != len(want) {
		t.Errorf("got %d problems, want %d: %v", len(cerr.Problems), len(want), err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the URL's password: %v", err)
	}
}

// Topic syntax is streamtopic.Parse's (tested there); Load adds the rules of safety.go.
func TestTopics(t *testing.T) {
	for _, tc := range []struct {
		topic string
		ok    bool
	}{
		{"persistent://public/default/{stream}-raw", true},
		{"tenant/ns/topic", true},
		{"non-persistent://t/ns/x", false},
		{"persistent://public/default/{shard}", false},
	} {
		kv := minimal()
		kv[VarTopic] = tc.topic
		_, err := Load(env(kv))
		if (err == nil) != tc.ok {
			t.Errorf("topic %q: err %v, want ok=%v", tc.topic, err, tc.ok)
		}
	}
}

func TestGuarantee(t *testing.T) {
	for _, tc := range []struct {
		name     string
		kv       map[string]string
		want     relay.Guarantee
		problems []string // variables reported, in order
	}{
		{"default", nil, relay.AtLeastOnce, nil},
		{"at least once", map[string]string{VarGuarantee: "atLeastOnce"}, relay.AtLeastOnce, nil},
		{"effectively once", map[string]string{VarGuarantee: "EffectivelyOnce", VarAuditTable: "audit"}, relay.EffectivelyOnce, nil},
		{"unknown", map[string]string{VarGuarantee: "exactlyOnce"}, 0, []string{VarGuarantee}},
		{"no audit table", map[string]string{VarGuarantee: "effectivelyOnce"}, 0, []string{VarGuarantee}},
		{"keyless and no table, at once", map[string]string{VarGuarantee: "effectivelyOnce", VarMessageKey: "none"}, 0,
			[]string{VarGuarantee, VarGuarantee}},
		{"shard key", map[string]string{VarGuarantee: "effectivelyOnce", VarAuditTable: "audit", VarMessageKey: "shardId"},
			relay.EffectivelyOnce, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := minimal()
			for k, v := range tc.kv {
				kv[k] = v
			}
			c, err := Load(env(kv))
			if tc.problems == nil {
				if err != nil {
					t.Fatal(err)
				}
				if c.Relay.Guarantee != tc.want {
					t.Errorf("guarantee %v, want %v", c.Relay.Guarantee, tc.want)
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
			if strings.Join(got, ",") != strings.Join(tc.problems, ",") {
				t.Errorf("problems %v, want %v (%v)", got, tc.problems, err)
			}
		})
	}
}
