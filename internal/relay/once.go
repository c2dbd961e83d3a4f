package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
)

// PROCESSING_GUARANTEE=effectivelyOnce (docs/effectively-once.md). Every message gets a sequence id
// from the shard's state in the audit table and is published by a producer named after the shard, so
// the broker, deduplicating on the name and the id, drops what a retry sends again:
//
//   - records at or below the shard's checkpoint are answered done without publishing;
//   - the others get consecutive ids in batch order, reserved (a conditional write) before publishing:
//     from the resume point when the batch starts where the unfinished attempt did, so the same record
//     gets the same id, otherwise fresh ones above every id ever handed out;
//   - after the receipts, the checkpoint and the resume point (the first record not done, with its id)
//     are written, conditionally, before the response.

// EnableEffectivelyOnce turns on the effectively-once mode (Options.Guarantee EffectivelyOnce) with the
// shards' sequence state in store. Call it before the first Handle.
func (r *Relay) EnableEffectivelyOnce(store SequenceStore, producers NamedSenders) {
	r.once = &onceMode{store: store, producers: producers}
}

type onceMode struct {
	store     SequenceStore
	producers NamedSenders
}

// sequencing is one invocation's part of the mode.
type sequencing struct {
	r                  *Relay
	streamARN, shardID string
	requestID          string
	name               string // the producer name
	read, reserved     Sequence
	covered            int     // records at or below the checkpoint, answered done without publishing
	canary             *source // the checkpoint record, when the batch holds it: see probeDeduplication
	ids                []int64 // the sequence id of each message of the batch
	reservedIDs        bool    // the ids are reserved: only then is the state written after publishing
	probeDropped       bool    // the probe was dropped as a duplicate
	deduplicationOff   bool    // the probe was stored: the broker does not deduplicate

	mu        sync.Mutex
	producers map[senderKey]NamedSender
}

// errSequence marks failures of the sequence state: nothing of the batch was published.
var errSequence = errors.New("effectively-once sequence state")

// beginOnce reads the shard's state and returns the records still to publish; nil in the
// at-least-once mode.
func (r *Relay) beginOnce(ctx context.Context, records []events.KinesisEventRecord) (*sequencing, []events.KinesisEventRecord, error) {
	if r.opts.Guarantee != EffectivelyOnce {
		return nil, records, nil
	}
	q := &sequencing{r: r, producers: map[senderKey]NamedSender{}}
	if r.once == nil {
		return q, records, fmt.Errorf("%w: the relay has no sequence store (EnableEffectivelyOnce)", errSequence)
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		q.requestID = lc.AwsRequestID
	}
	if len(records) == 0 {
		return q, records, nil
	}
	q.streamARN, q.shardID = records[0].EventSourceArn, shardID(records[0].EventID)
	if q.shardID == "" {
		return q, records, fmt.Errorf("%w: no shard id in event id %q", errSequence, records[0].EventID)
	}
	read, err := r.once.store.Read(ctx, q.streamARN, q.shardID)
	if err != nil {
		return q, records, fmt.Errorf("%w: %w", errSequence, err)
	}
	q.read, q.reserved = read, read
	q.name = producerName(streamtopic.StreamName(q.streamARN), q.shardID, read.Epoch)
	for q.covered < len(records) && read.Covers(records[q.covered].Kinesis.SequenceNumber) {
		q.covered++
	}
	if q.covered > 0 && records[q.covered-1].Kinesis.SequenceNumber == read.CheckpointSequenceNumber && read.CheckpointID >= 0 {
		sources, _, _ := r.plan(records[q.covered-1 : q.covered])
		q.canary = &sources[0]
	}
	return q, records[q.covered:], nil
}

// prepare reserves the batch's ids and probes the broker's deduplication, or, when the mode could not
// start (err), fails every message. Nothing to do in the at-least-once mode (q nil).
func (q *sequencing) prepare(ctx context.Context, b *batch, err error) {
	if q == nil {
		return
	}
	b.seq = q
	if err == nil {
		err = q.reserve(ctx, b)
	}
	if err != nil {
		b.failAll(err)
		return
	}
	q.probeDeduplication(ctx)
}

// reserve gives every message of b its sequence id and records the reservation before anything is
// sent. Every message goes through the shard's one unbatched producer per topic.
func (q *sequencing) reserve(ctx context.Context, b *batch) error {
	q.ids = make([]int64, len(b.msgs))
	if len(b.msgs) == 0 {
		return nil
	}
	first := b.sources[0].rec.Kinesis.SequenceNumber
	base := q.read.NextID
	switch {
	case q.read.ResumeSequenceNumber == first:
		base = q.read.ResumeID // a retry: the same records get the same ids
	case q.read.ResumeSequenceNumber != "":
		// The unfinished attempt started elsewhere (records given up by Lambda, a bisected batch): its
		// records that reached Pulsar get fresh ids now, so they may appear twice.
		q.r.log.Warn("batch does not start where the unfinished one did: records of it already in Pulsar may be duplicated",
			"shardId", q.shardID, "firstSequenceNumber", first, "resumeSequenceNumber", q.read.ResumeSequenceNumber)
	}
	for i := range b.msgs {
		q.ids[i] = base + int64(i)
		b.msgs[i].kind = Unbatched
	}
	next := q.read
	next.NextID = max(q.read.NextID, base+int64(len(b.msgs)))
	next.ResumeSequenceNumber, next.ResumeID = first, base
	reserved, err := q.r.once.store.Write(ctx, q.streamARN, q.shardID, q.requestID, q.r.opts.Now(), q.read, next)
	if err != nil {
		return fmt.Errorf("%w: reserving ids: %w", errSequence, err)
	}
	q.reserved, q.reservedIDs = reserved, true
	return nil
}

// producer returns the invocation's producer for topic: the shard's name, closed in finish.
func (q *sequencing) producer(ctx context.Context, topic string, kind Kind) (NamedSender, error) {
	if kind != DeadLetter {
		kind = Unbatched
	}
	k := senderKey{topic, kind}
	q.mu.Lock()
	p, ok := q.producers[k]
	q.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := q.r.once.producers.Named(ctx, topic, kind, q.name)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	q.producers[k] = p
	q.mu.Unlock()
	return p, nil
}

// stamp sets message i's sequence id.
func (q *sequencing) stamp(pm *pulsar.ProducerMessage, i int) {
	if q != nil {
		pm.SequenceID = &q.ids[i]
	}
}

// probeDeduplication sends the checkpoint record's last message again, with the id it was confirmed
// with, when a retried batch still holds it: a broker that deduplicates drops it (a receipt without a
// position); one that stores it evidently does not deduplicate, and says so in s. Only retries pay for
// this, and only a broker that does not deduplicate gets the copy, as it would get copies anyway.
func (q *sequencing) probeDeduplication(ctx context.Context) {
	if q.canary == nil || q.canary.err != nil {
		return
	}
	_, msgs, _ := q.r.plan([]events.KinesisEventRecord{*q.canary.rec})
	if len(msgs) == 0 {
		return
	}
	m := &msgs[len(msgs)-1]
	p, err := q.producer(ctx, q.canary.topic, Unbatched)
	if err != nil {
		return // the batch itself will meet the same error
	}
	pm := q.r.producerMessage(q.canary, m)
	pm.SequenceID = &q.reserved.CheckpointID
	id, err := p.Send(ctx, pm)
	switch {
	case err != nil:
		q.r.log.Debug("deduplication probe failed", "shardId", q.shardID, "error", err)
	case dropped(id):
		q.probeDropped = true
	default:
		q.deduplicationOff = true
		q.r.log.Error("the broker does not deduplicate: a message sent again with its sequence id was stored again; "+
			"enable deduplication on the topic's namespace (pulsar-admin namespaces set-deduplication --enable)",
			"topic", q.canary.topic, "producerName", q.name, "sequenceId", q.reserved.CheckpointID, "messageId", id.String())
	}
}

// finish closes the invocation's producers, records the checkpoint and the resume point, and returns
// the record the response must fail from: failed (s's), or 0 when the state could not be written.
func (q *sequencing) finish(ctx context.Context, b *batch, s *Summary, failed int) int {
	if q == nil {
		return failed
	}
	// Closed while the checkpoint is written: on a slow link the close may take the whole budget.
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		q.closeProducers(ctx)
	}()
	defer func() { <-closed }()
	s.AlreadyDelivered, s.DeduplicationOff = q.covered, q.deduplicationOff
	if s.ShardID == "" { // every record was covered: name the shard all the same
		s.StreamARN, s.Stream, s.ShardID = q.streamARN, streamtopic.StreamName(q.streamARN), q.shardID
	}
	if q.probeDropped {
		s.DuplicatesDropped++
	}
	if !q.reservedIDs {
		return failed
	}
	b.mu.Lock()
	firstUndone := -1 // message index
	hole := false
	for i := range b.led.out {
		switch st := b.led.out[i].state; {
		case st == confirmed || st == deadLettered:
			if id := b.led.out[i].id; st == confirmed && id != nil && dropped(id) {
				s.DuplicatesDropped++
			}
			// A message done after one that is not: a retry giving the earlier one its id again would
			// have it dropped as a duplicate of the later one.
			hole = hole || firstUndone >= 0
		case firstUndone < 0:
			firstUndone = i
		}
	}
	b.mu.Unlock()

	next := q.reserved
	if s.checkpointRecord >= 0 {
		next.CheckpointSequenceNumber = b.sources[s.checkpointRecord].rec.Kinesis.SequenceNumber
		next.CheckpointID = -1
		if end := b.led.starts[s.checkpointRecord+1]; end > b.led.starts[s.checkpointRecord] {
			next.CheckpointID = q.ids[end-1]
		}
	}
	next.ResumeSequenceNumber, next.ResumeID = "", -1
	if s.failedRecord >= 0 && !hole {
		next.ResumeSequenceNumber, next.ResumeID = b.sources[s.failedRecord].rec.Kinesis.SequenceNumber, q.ids[b.led.starts[s.failedRecord]]
	}
	if hole {
		// Not expected (docs/effectively-once.md proves it cannot happen); if it does, the retry gets
		// fresh ids: records may be duplicated, none lost.
		q.r.log.Error("a message failed while a later one was stored: the retry gets fresh sequence ids",
			"shardId", q.shardID, "firstSequenceNumber", s.FirstSequence, "failedSequenceNumber", s.FailedSequence)
	}
	if _, err := q.r.once.store.Write(ctx, q.streamARN, q.shardID, q.requestID, q.r.opts.Now(), q.reserved, next); err != nil {
		// The state still names this batch's start with its ids: a retry of the whole batch gets them
		// again and the broker drops what is stored already.
		q.r.log.Error("checkpoint not written: the whole batch is reported failed", "shardId", q.shardID, "error", err)
		s.Cause = fmt.Errorf("%w: writing the checkpoint: %w", errSequence, err)
		return 0
	}
	return failed
}

// closeProducers closes the invocation's producers, so no frozen environment holds the shard's name;
// bounded by ctx.
func (q *sequencing) closeProducers(ctx context.Context) {
	q.mu.Lock()
	producers := q.producers
	q.producers = map[senderKey]NamedSender{}
	q.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Close()
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		q.r.log.Warn("closing the shard's producers did not finish in time: the next invocation may find the name busy",
			"shardId", q.shardID)
	}
}

// failAll reports every message of b failed with err, before anything was sent.
func (b *batch) failAll(err error) {
	for i := range b.msgs {
		b.send.issued++
		b.complete(i, nil, err, 0)
	}
}

// onceAttrs are the summary log line's attributes of the mode.
func onceAttrs(s *Summary) []slog.Attr {
	return []slog.Attr{slog.Int("alreadyDelivered", s.AlreadyDelivered), slog.Int("duplicatesDropped", s.DuplicatesDropped),
		slog.Bool("deduplicationOff", s.DeduplicationOff)}
}

// dropped reports a receipt for a message the broker dropped as a duplicate: it has no position.
func dropped(id pulsar.MessageID) bool { return id.LedgerID() == -1 && id.EntryID() == -1 }

// producerName is the name of a shard's producer: one per stream, shard and epoch.
func producerName(stream, shardID, epoch string) string {
	return strings.Join([]string{"kp", stream, shardID, epoch}, "-")
}
