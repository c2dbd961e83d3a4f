//go:build integration

package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
	"github.com/streambridge/kinesis-pulsar/internal/audit"
	"github.com/streambridge/kinesis-pulsar/internal/relay"
)

// The sequence state of a shard: a fresh epoch on first read, conditional writes that refuse a stale
// version, a checkpoint that only moves forwards, and an at-least-once audit write on the same item
// that leaves the state alone.
func TestSequenceState(t *testing.T) {
	l := newLocal(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seqs := audit.NewSequences(l.db, l.table, 0)
	const arn, shard = "arn:aws:kinesis:us-east-1:000000000000:stream/seq", "shardId-000000000000"
	now := localenv.Now()

	q0, err := seqs.Read(ctx, arn, shard)
	if err != nil {
		t.Fatal(err)
	}
	if q0.Epoch == "" || q0.NextID != 0 || q0.Version != 0 || q0.CheckpointSequenceNumber != "" || q0.CheckpointID != -1 {
		t.Fatalf("fresh state %+v", q0)
	}
	// Reserve ids 0..9 for a batch starting at record 100.
	r := q0
	r.NextID, r.ResumeSequenceNumber, r.ResumeID = 10, "100", 0
	q1, err := seqs.Write(ctx, arn, shard, "req-1", now, q0, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seqs.Write(ctx, arn, shard, "req-x", now, q0, r); !errors.Is(err, audit.ErrSequenceConflict) {
		t.Fatalf("write over a stale version: %v, want ErrSequenceConflict", err)
	}
	got, err := seqs.Read(ctx, arn, shard)
	if err != nil {
		t.Fatal(err)
	}
	if got != q1 {
		t.Fatalf("read %+v, want %+v", got, q1)
	}
	// Advance: records up to 105 done (ids 0..5), a retry resumes at 106 with id 6.
	a := q1
	a.CheckpointSequenceNumber, a.CheckpointID, a.ResumeSequenceNumber, a.ResumeID = "105", 5, "106", 6
	q2, err := seqs.Write(ctx, arn, shard, "req-1", now, q1, a)
	if err != nil {
		t.Fatal(err)
	}
	// The at-least-once writer (the audit batch record) reaching the same checkpoint changes nothing.
	tbl := audit.New(l.db, audit.Options{Table: l.table})
	if err := tbl.Record(ctx, relay.AuditRecord{StreamARN: arn, ShardID: shard, RequestID: "req-1", FirstSequenceNumber: "100",
		CheckpointSequenceNumber: "105", StartedAt: now}); err != nil {
		t.Fatal(err)
	}
	if got, err = seqs.Read(ctx, arn, shard); err != nil || got != q2 {
		t.Fatalf("read %+v (%v), want %+v", got, err, q2)
	}
	if !got.Covers("105") || !got.Covers("99") || got.Covers("106") || got.Covers("1000") {
		t.Errorf("Covers wrong around checkpoint 105")
	}
	// A write with an older checkpoint keeps the newer one; clearing the resume point removes it.
	c := q2
	c.CheckpointSequenceNumber, c.CheckpointID, c.ResumeSequenceNumber = "104", 4, ""
	q3, err := seqs.Write(ctx, arn, shard, "req-2", now, q2, c)
	if err == nil {
		t.Fatalf("moving the checkpoint backwards was accepted: %+v", q3)
	}
	c.CheckpointSequenceNumber, c.CheckpointID = q2.CheckpointSequenceNumber, q2.CheckpointID
	if q3, err = seqs.Write(ctx, arn, shard, "req-2", now, q2, c); err != nil {
		t.Fatal(err)
	}
	if got, err = seqs.Read(ctx, arn, shard); err != nil || got != q3 || got.ResumeSequenceNumber != "" || got.ResumeID != -1 {
		t.Fatalf("read %+v (%v), want %+v without a resume point", got, err, q3)
	}
}
