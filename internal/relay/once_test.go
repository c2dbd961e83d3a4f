package relay_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/streambridge/kinesis-pulsar/internal/relay"
	"github.com/streambridge/kinesis-pulsar/internal/streamtopic"
	"github.com/streambridge/kinesis-pulsar/tests/pulsarfake"
)

// The effectively-once paths a real broker cannot be made to take on demand (a message failing after
// later ones were stored). The real paths run in once_integration_test.go.

// memStore is a sequence store in memory, with the conditional write of internal/audit.Sequences.
type memStore struct {
	mu sync.Mutex
	q  relay.Sequence
}

var errConflict = errors.New("the shard's sequence state changed since it was read")

func (m *memStore) Read(context.Context, string, string) (relay.Sequence, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.q
	if q.Epoch == "" {
		q = relay.Sequence{Epoch: "e", CheckpointID: -1, ResumeID: -1}
	}
	return q, nil
}

func (m *memStore) Write(_ context.Context, _, _, _ string, _ time.Time, prev, next relay.Sequence) (relay.Sequence, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev.Version != m.q.Version {
		return relay.Sequence{}, errConflict
	}
	next.Version = prev.Version + 1
	if next.ResumeSequenceNumber == "" {
		next.ResumeID = -1
	}
	m.q = next
	return next, nil
}

func runOnce(t *testing.T, store *memStore, f *pulsarfake.Broker, records int, from int) (*relay.Summary, []int64) {
	t.Helper()
	obs := &lastSummary{}
	r := relay.New(relay.Options{Topic: streamtopic.MustParse(topic), Guarantee: relay.EffectivelyOnce}, f, nil, obs, nil)
	r.EnableEffectivelyOnce(store, f)
	ev := plainEvent(records)
	ev.Records = ev.Records[from:]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, m := range f.Topic(topic) {
		ids = append(ids, *m.SequenceID)
	}
	return obs.s, ids
}

// Ids run on from the last batch; a retry from the resume point reuses the ids of the same records.
func TestOnceIDs(t *testing.T) {
	store := &memStore{}
	// Message 3 fails: records 0-2 done, the retry resumes at record 3 with id 3.
	fail3 := pulsarfake.New(func(_ string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
		if n >= 3 { // as on a real connection, the messages after a failed one fail too
			return 0, errTransient, false
		}
		return 0, nil, false
	})
	s, ids := runOnce(t, store, fail3, 6, 0)
	if s.Outcome != relay.OutcomePartial || ids[0] != 0 || ids[3] != 3 {
		t.Fatalf("outcome %s, ids %v", s.Outcome, ids)
	}
	if q := store.q; q.ResumeID != 3 || q.NextID != 6 || q.CheckpointID != 2 {
		t.Fatalf("state after the partial failure %+v", q)
	}
	s, ids = runOnce(t, store, pulsarfake.New(nil), 6, 3)
	if s.Outcome != relay.OutcomeDelivered || len(ids) != 3 || ids[0] != 3 || ids[2] != 5 {
		t.Fatalf("retry: outcome %s, ids %v, want 3..5", s.Outcome, ids)
	}
	// The next batch (records 6.. of the shard, here the same records skipped by the checkpoint and
	// four new ones) continues at id 6.
	s, ids = runOnce(t, store, pulsarfake.New(nil), 10, 0)
	if s.AlreadyDelivered != 6 || len(ids) != 4 || ids[0] != 6 || s.DuplicatesDropped != 1 {
		t.Fatalf("next batch: already delivered %d, ids %v, duplicates dropped %d (the probe)", s.AlreadyDelivered, ids, s.DuplicatesDropped)
	}
}

// A message failing after later ones were stored (which the client and broker never do) must not
// leave its id to the retry: the broker would drop the record as a duplicate of the later one.
func TestOnceHoleGetsFreshIDs(t *testing.T) {
	store := &memStore{}
	late := pulsarfake.New(func(_ string, n int, _ *pulsar.ProducerMessage) (time.Duration, error, bool) {
		if n == 1 {
			return 50 * time.Millisecond, errTransient, false
		}
		return 0, nil, false
	})
	s, ids := runOnce(t, store, late, 4, 0)
	if s.Outcome != relay.OutcomePartial || len(ids) < 3 {
		t.Fatalf("outcome %s, ids %v: want message 1 failed after later ones were stored", s.Outcome, ids)
	}
	if q := store.q; q.ResumeSequenceNumber != "" || q.NextID != 4 {
		t.Fatalf("state %+v: want no resume point, next id 4", q)
	}
	_, ids = runOnce(t, store, pulsarfake.New(nil), 4, 1)
	if ids[0] != 4 {
		t.Fatalf("retry ids %v, want fresh ones from 4", ids)
	}
}

func TestSequenceCovers(t *testing.T) {
	long := strings.Repeat("9", 129)
	for _, tc := range []struct {
		checkpoint, seq string
		want            bool
	}{
		{"", "1", false},
		{"105", "105", true},
		{"105", "99", true},
		{"105", "106", false},
		{"105", "1000", false},
		{long, "1" + strings.Repeat("0", 127), true},
		{"1" + strings.Repeat("0", 127), long, false},
		{"105", "099", false}, // not a sequence number
		{"105", "1e2", false},
	} {
		if got := (relay.Sequence{CheckpointSequenceNumber: tc.checkpoint}).Covers(tc.seq); got != tc.want {
			t.Errorf("checkpoint %.10s… covers %.10s… = %v, want %v", tc.checkpoint, tc.seq, got, tc.want)
		}
	}
}
