//go:build integration

package audit_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/streambridge/kinesis-pulsar/internal/audit"
)

// Checkpoints reads the given shards (more than one BatchGetItem holds), ScanCheckpoints finds the same
// without shard ids and leaves other streams out.
func TestReadCheckpoints(t *testing.T) {
	l := newLocal(t)
	tab := audit.New(l.db, audit.Options{Table: l.table})
	const other = "arn:aws:kinesis:us-east-1:123456789012:stream/audit-other"
	var shards []string
	for i := 0; i < 130; i++ {
		shard := fmt.Sprintf("shardId-%012d", i)
		shards = append(shards, shard)
		if i%10 == 9 {
			continue // a shard without a checkpoint
		}
		b := delivered("1", fmt.Sprint(1000+i), fmt.Sprintf("req-%d", i))
		b.ShardID = shard
		record(t, tab, b)
	}
	b := delivered("1", "7", "req-other")
	b.StreamARN = other
	record(t, tab, b)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := audit.Checkpoints(ctx, l.db, l.table, testARN, shards)
	if err != nil {
		t.Fatal(err)
	}
	scanned, err := audit.ScanCheckpoints(ctx, l.db, l.table, testARN)
	if err != nil {
		t.Fatal(err)
	}
	for name, cps := range map[string][]audit.Checkpoint{"Checkpoints": got, "ScanCheckpoints": scanned} {
		if len(cps) != 117 {
			t.Fatalf("%s: %d checkpoints, want 117", name, len(cps))
		}
		for _, cp := range cps {
			var i int
			if _, err := fmt.Sscanf(cp.ShardID, "shardId-%d", &i); err != nil || i%10 == 9 {
				t.Fatalf("%s: unexpected shard %q", name, cp.ShardID)
			}
			want := audit.Checkpoint{ShardID: cp.ShardID, SequenceNumber: fmt.Sprint(1000 + i), UpdatedAt: iso(testStart.Add(42 * time.Millisecond)),
				RequestID: fmt.Sprintf("req-%d", i), Topic: "persistent://public/default/audit", LastMessageID: fmt.Sprintf("mid-req-%d", i)}
			if cp != want {
				t.Errorf("%s: %+v, want %+v", name, cp, want)
			}
		}
	}
}

// RecentBatches lists the newest batches first, retries of one batch by time; BatchesUntil only those
// that started by then. Both page through DynamoDB until they have n.
func TestReadBatches(t *testing.T) {
	l := newLocal(t)
	tab := audit.New(l.db, audit.Options{Table: l.table})
	const prefix = "4959033827149025660855969253836157109592157598913"
	seq := func(i int) string { return fmt.Sprintf("%s%07d", prefix, i) }
	// 1500 batches a second apart; batch 1200 failed twice before it went through.
	var want []string // request ids, newest first
	for i := 0; i < 1500; i++ {
		b := delivered(seq(10*i), seq(10*i+9), fmt.Sprintf("req-%04d", i))
		b.StartedAt = testStart.Add(time.Duration(i) * time.Second)
		record(t, tab, b)
		want = append([]string{b.RequestID}, want...)
	}
	retries := []string{"req-z-retry-1", "req-a-retry-2"} // request ids that do not sort by time
	for k, req := range retries {
		b := delivered(seq(12000), seq(12009), req)
		b.StartedAt = testStart.Add(time.Duration(1500+k) * time.Second)
		record(t, tab, b)
	}
	at := 1500 - 1200 - 1 // index of req-1200 in want
	want = append(want[:at], append([]string{"req-a-retry-2", "req-z-retry-1"}, want[at:]...)...)

	ids := func(items []audit.BatchItem) []string {
		var out []string
		for _, b := range items {
			out = append(out, b.RequestID)
		}
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		name  string
		until time.Time
		n     int
		want  []string
	}{
		{"newest", time.Time{}, 1, want[:1]},
		{"around the retries", time.Time{}, 303, want[:303]},
		{"all, over several pages", time.Time{}, 5000, want},
		{"until, exact start", testStart.Add(1000 * time.Second), 3, []string{"req-1000", "req-0999", "req-0998"}},
		{"until, between starts", testStart.Add(1000*time.Second - time.Millisecond), 2, []string{"req-0999", "req-0998"}},
		{"until, after the first retry", testStart.Add(1500 * time.Second), 302, without(want, "req-a-retry-2")[:302]},
		{"until, before the retries", testStart.Add(1200*time.Second + 500*time.Millisecond), 3, []string{"req-1200", "req-1199", "req-1198"}},
		{"until, before everything", testStart.Add(-time.Second), 5, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []audit.BatchItem
			var err error
			if c.until.IsZero() {
				got, err = audit.RecentBatches(ctx, l.db, l.table, testARN, testShard, c.n)
			} else {
				got, err = audit.BatchesUntil(ctx, l.db, l.table, testARN, testShard, c.until, c.n)
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(ids(got), ",") != strings.Join(c.want, ",") {
				t.Errorf("got %d batches %v…, want %d %v…", len(got), head(ids(got)), len(c.want), head(c.want))
			}
		})
	}

	got, err := audit.RecentBatches(ctx, l.db, l.table, testARN, testShard, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantItem := audit.BatchItem{
		FirstSequenceNumber: seq(14990), LastSequenceNumber: seq(14999), CheckpointSequenceNumber: seq(14999),
		Records: 3, Published: 3, StartedAt: iso(testStart.Add(1499 * time.Second)), DurationMs: 42,
		Topic: "persistent://public/default/audit", RequestID: "req-1499",
		ExpiresAt: testStart.Add(1499*time.Second + audit.DefaultRetention).Truncate(time.Second),
	}
	if len(got) != 1 || got[0] != wantItem {
		t.Errorf("newest batch %+v, want %+v", got, wantItem)
	}
	if _, err := audit.RecentBatches(ctx, l.db, l.table, testARN, testShard, 0); err == nil {
		t.Error("n=0 accepted")
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }

func without(s []string, drop string) []string {
	var out []string
	for _, v := range s {
		if v != drop {
			out = append(out, v)
		}
	}
	return out
}
