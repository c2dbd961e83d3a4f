package bench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
	"github.com/streambridge/kinesis-pulsar/tests/kinesistest"
)

// Workload is one batch shape: Records records of Size payload bytes each, or an explicit list of
// sizes (the large batch).
type Workload struct {
	Name    string
	Records int
	Size    int   // payload bytes per record; 0 when Sizes is set
	Sizes   []int // per-record payload sizes, for batches of mixed sizes
	Large   bool  // the batch of large records filling Lambda's payload limit
}

// Matrix is the grid of the throughput comparison: 100, 1,000 and 10,000 records of 100 B, 1 KiB and
// 10 KiB, then a batch of 1 MiB records filling Lambda's 6 MB invocation payload.
func Matrix() []Workload {
	var ws []Workload
	for _, n := range []int{100, 1000, 10000} {
		for _, size := range []int{100, 1024, 10 * 1024} {
			ws = append(ws, Workload{Name: fmt.Sprintf("%s x %s", count(n), bytesLabel(size)), Records: n, Size: size})
		}
	}
	return append(ws, LargeBatch())
}

// LargeBatch is the largest batch of large records Lambda can deliver: 1 MiB records (the classic
// Kinesis record limit), the last one shortened so that the JSON event stays just under the 6 MB
// invocation payload limit. Every record is above the 128 KiB batching limit, so the batch takes the
// unbatched producer.
func LargeBatch() Workload {
	const record = 1 << 20
	budget := eventBudget()
	per := recordOverhead()
	var sizes []int
	used := 0
	for {
		full := per + base64Len(record)
		if used+full <= budget {
			sizes = append(sizes, record)
			used += full
			continue
		}
		// The remainder as one shorter record: the largest payload whose base64 still fits.
		left := (budget - used - per) / 4 * 3
		if left > 0 {
			sizes = append(sizes, left)
		}
		break
	}
	w := Workload{Records: len(sizes), Sizes: sizes, Large: true}
	for !fits(w) { // the estimate may be off by the few bytes of varying arrival times
		w.Sizes[len(w.Sizes)-1] -= 3
	}
	w.Name = fmt.Sprintf("6 MB event (%d records, %.1f MiB)", w.Records, float64(w.PayloadBytes())/(1<<20))
	return w
}

// PayloadBytes is the sum of the record payloads.
func (w Workload) PayloadBytes() int64 {
	if w.Sizes != nil {
		var n int64
		for _, s := range w.Sizes {
			n += int64(s)
		}
		return n
	}
	return int64(w.Records) * int64(w.Size)
}

func (w Workload) size(i int) int {
	if w.Sizes != nil {
		return w.Sizes[i]
	}
	return w.Size
}

// Event builds the batch as Lambda delivers it: one shard, increasing sequence numbers, 1,000 distinct
// partition keys, incompressible payloads from a fixed seed (so every run sends the same bytes).
func (w Workload) Event() events.KinesisEvent {
	shard := kinesistest.NewShard("bench", 0)
	rng := rand.New(rand.NewChaCha8([32]byte{'k', 'i', 'n', 'e', 's', 'i', 's'}))
	records := make([]events.KinesisEventRecord, w.Records)
	for i := range records {
		data := make([]byte, w.size(i))
		fillRandom(rng, data)
		records[i] = shard.Record(fmt.Sprintf("partition-key-%04d", i%1000), data)
	}
	return events.KinesisEvent{Records: records}
}

func fillRandom(rng *rand.Rand, b []byte) {
	for len(b) >= 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			b[j] = byte(v >> (8 * j))
		}
		b = b[8:]
	}
	for j := range b {
		b[j] = byte(rng.Uint32())
	}
}

// recordOverhead is the JSON size of one record of the event with empty data, plus its separator.
// Every record of a Workload's event has the same overhead: sequence numbers all have 56 digits and
// partition keys 18 characters.
func recordOverhead() int {
	rec := kinesistest.NewShard("bench", 0).Record("partition-key-0000", []byte{})
	b, err := json.Marshal(rec)
	if err != nil {
		panic(fmt.Sprintf("marshal a record: %v", err)) // a fixed struct of strings: cannot fail
	}
	return len(b) + 1
}

// eventBudget is what Lambda's payload limit leaves for the records: the event's own wrapper is
// {"Records":[...]}, and the last record has no separator.
func eventBudget() int {
	empty, err := json.Marshal(events.KinesisEvent{Records: []events.KinesisEventRecord{}})
	if err != nil {
		panic(fmt.Sprintf("marshal an empty event: %v", err))
	}
	return runtimeapi.MaxPayloadBytes - len(empty) + 1
}

func base64Len(n int) int { return (n + 2) / 3 * 4 }

func count(n int) string {
	if n >= 1000 {
		return fmt.Sprintf("%d,%03d", n/1000, n%1000)
	}
	return fmt.Sprint(n)
}

func bytesLabel(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1024 && n%1024 == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
