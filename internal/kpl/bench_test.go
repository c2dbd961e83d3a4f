package kpl

import (
	"crypto/md5"
	"fmt"
	"testing"
)

// benchRecords returns n records of size bytes each; keys is the number of distinct partition keys,
// and every record carries an explicit hash key when ehk is set.
func benchRecords(n, size, keys int, ehk bool) []Record {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	records := make([]Record, n)
	for i := range records {
		records[i] = Record{PartitionKey: fmt.Sprintf("partition-key-%06d", i%keys), Data: payload}
		if ehk {
			records[i].ExplicitHashKey = fmt.Sprintf("%d", uint64(i%keys)*1_000_003)
		}
	}
	return records
}

// BenchmarkDeaggregate decodes aggregates of 500 records of 1 KiB (about 512 KiB, a typical full
// KPL aggregate). Most of the time is the MD5: compare with the md5-only case.
func BenchmarkDeaggregate(b *testing.B) {
	cases := []struct {
		name string
		in   []byte
	}{
		{name: "500x1KiB/one-key", in: mustAggregate(b, benchRecords(500, 1024, 1, false))},
		{name: "500x1KiB/500-keys", in: mustAggregate(b, benchRecords(500, 1024, 500, false))},
		{name: "500x1KiB/500-keys+ehk", in: mustAggregate(b, benchRecords(500, 1024, 500, true))},
		{name: "1000x16B/100-keys", in: mustAggregate(b, benchRecords(1000, 16, 100, false))},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Deaggregate(c.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("500x1KiB/md5-only", func(b *testing.B) {
		in := cases[0].in
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			_ = md5.Sum(in[len(Magic) : len(in)-md5.Size])
		}
	})
	b.Run("plain-record", func(b *testing.B) {
		in := make([]byte, 1024)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Deaggregate(in); err != ErrNotAggregated {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAggregate(b *testing.B) {
	records := benchRecords(500, 1024, 500, false)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Aggregate(records); err != nil {
			b.Fatal(err)
		}
	}
}
