package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/streambridge/kinesis-pulsar/internal/audit"
)

func TestUsage(t *testing.T) {
	t.Setenv("AUDIT_TABLE_NAME", "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"checkpoints"}, "missing --table (or AUDIT_TABLE_NAME), --stream-arn"},
		{[]string{"batches", "--table", "t", "--stream-arn", "arn:aws:kinesis:us-east-1:1:stream/s"}, "missing --shard"},
		{[]string{"batches", "--table", "t", "--stream-arn", "arn:aws:sqs:us-east-1:1:q", "--shard", "s"}, "not a Kinesis stream ARN"},
		{[]string{"batches", "--table", "t", "--stream-arn", "arn:aws:kinesis:us-east-1:1:stream/s", "--shard", "s", "-n", "0"}, "-n must be positive"},
		{[]string{"batches", "--table", "t", "--stream-arn", "arn:aws:kinesis:us-east-1:1:stream/s", "--shard", "s", "--until", "noon"}, `"noon" is not a time`},
		{[]string{"create-table"}, "create-table: missing --table (or AUDIT_TABLE_NAME)"},
		{[]string{"shards"}, `unknown command "shards"`},
		{[]string{"checkpoints", "--table", "t", "--stream-arn", "arn:aws:kinesis:us-east-1:1:stream/s", "extra"}, "unexpected arguments"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), c.args, &out, &errOut)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want a usage error with %q", c.args, err, c.want)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), nil, &out, &out); err != nil || !strings.Contains(out.String(), "What happened to the batch at 14:02?") {
		t.Errorf("help: %v\n%s", err, out.String())
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 22, 23, 30, 0, 0, time.FixedZone("CET", 3600)) // 22:30 UTC
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"2026-11-22T14:03:00Z", time.Date(2026, 11, 22, 14, 3, 0, 0, time.UTC)},
		{"2026-11-22T15:03:00+01:00", time.Date(2026, 11, 22, 14, 3, 0, 0, time.UTC)},
		{"2026-11-22T14:03", time.Date(2026, 11, 22, 14, 3, 0, 0, time.UTC)},
		{"2026-11-22 14:03:07", time.Date(2026, 11, 22, 14, 3, 7, 0, time.UTC)},
		{"14:03", time.Date(2026, 11, 22, 14, 3, 0, 0, time.UTC)},
		{"14:03:59", time.Date(2026, 11, 22, 14, 3, 59, 0, time.UTC)},
	} {
		got, err := parseTime(c.in, now)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	// Today is UTC's today.
	if got, _ := parseTime("01:00", time.Date(2026, 11, 23, 0, 30, 0, 0, time.FixedZone("CET", 3600))); !got.Equal(time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("01:00 shortly after midnight CET = %v, want the UTC day", got)
	}
	for _, bad := range []string{"", "noon", "25:00", "2026-13-01T00:00"} {
		if _, err := parseTime(bad, now); err == nil {
			t.Errorf("parseTime(%q) accepted", bad)
		}
	}
}

func TestOutcome(t *testing.T) {
	for _, c := range []struct {
		b    audit.BatchItem
		want string
	}{
		{audit.BatchItem{FirstSequenceNumber: "1"}, "delivered"},
		{audit.BatchItem{FirstSequenceNumber: "1", FailedSequenceNumber: "1"}, "failed"},
		{audit.BatchItem{FirstSequenceNumber: "1", FailedSequenceNumber: "5"}, "partial"},
	} {
		if got := outcome(c.b); got != c.want {
			t.Errorf("outcome(%+v) = %s, want %s", c.b, got, c.want)
		}
	}
}
