package relay

import (
	"math/rand/v2"
	"testing"
	"time"
)

// formatArrival writes its digits by hand; it must render exactly what time.Format does.
func TestFormatArrivalMatchesTimeFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	times := []time.Time{
		time.Date(2026, 11, 22, 14, 2, 3, 456_000_000, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 999_999_999, time.FixedZone("x", -7*3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 1_000_000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
	}
	for range 100000 {
		times = append(times, time.Unix(rng.Int64N(1<<37)-1<<36, rng.Int64N(1e9)).In(time.FixedZone("z", rng.IntN(50000)-25000)))
	}
	for _, tm := range times {
		if tm.IsZero() {
			continue
		}
		if got, want := formatArrival(tm), tm.UTC().Format(arrivalLayout); got != want {
			t.Fatalf("formatArrival(%v) = %q, time.Format gives %q", tm, got, want)
		}
	}
	if got := formatArrival(time.Time{}); got != "" {
		t.Errorf("zero time: %q", got)
	}
}

func BenchmarkFormatArrival(b *testing.B) {
	tm := time.Date(2026, 11, 22, 14, 2, 3, 456_000_000, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		_ = formatArrival(tm)
	}
}
