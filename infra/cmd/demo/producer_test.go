//go:build unix

package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"math/big"
	"testing"

	"github.com/streambridge/kinesis-pulsar/internal/kpl"
)

func TestHashKeyIsTheMD5OfThePartitionKey(t *testing.T) {
	t.Parallel()
	sum := md5.Sum([]byte("myPartitionKey"))
	want, _ := new(big.Int).SetString(hex.EncodeToString(sum[:]), 16)
	if got := hashKey("myPartitionKey"); got.Cmp(want) != 0 {
		t.Errorf("hashKey = %s, want %s", got, want)
	}
}

func TestShardFor(t *testing.T) {
	t.Parallel()
	// Two shards splitting the 128-bit hash key space in half, as CreateStream does.
	half := new(big.Int).Lsh(big.NewInt(1), 127)
	top := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	p := &kplProducer{shards: []shardRange{
		{id: "shardId-000000000000", start: big.NewInt(0), end: new(big.Int).Sub(half, big.NewInt(1))},
		{id: "shardId-000000000001", start: half, end: top},
	}}
	tests := []struct {
		name string
		key  *big.Int
		want string
	}{
		{"lowest", big.NewInt(0), "shardId-000000000000"},
		{"last of the first half", new(big.Int).Sub(half, big.NewInt(1)), "shardId-000000000000"},
		{"first of the second half", half, "shardId-000000000001"},
		{"highest", top, "shardId-000000000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := p.shardFor(tt.key); got != tt.want {
				t.Errorf("shardFor(%s) = %s, want %s", tt.key, got, tt.want)
			}
		})
	}
}

func TestSplitAggregates(t *testing.T) {
	t.Parallel()
	rec := func(n int) kpl.Record { return kpl.Record{PartitionKey: "k", Data: bytes.Repeat([]byte{'x'}, n)} }
	tests := []struct {
		name  string
		recs  []kpl.Record
		sizes []int // records per group
	}{
		{"none", nil, nil},
		{"one", []kpl.Record{rec(10)}, []int{1}},
		{"the quick start fits one aggregate", []kpl.Record{rec(17), rec(17), rec(17), rec(17), rec(17), rec(17), rec(17), rec(17), rec(17), rec(17)}, []int{10}},
		{"cut at 50 KiB", []kpl.Record{rec(20000), rec(20000), rec(20000), rec(20000), rec(20000)}, []int{2, 2, 1}},
		{"a record larger than an aggregate stands alone", []kpl.Record{rec(10), rec(60000), rec(10)}, []int{1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			groups := splitAggregates(tt.recs)
			var sizes []int
			n := 0
			for _, g := range groups {
				sizes = append(sizes, len(g))
				for _, r := range g {
					if !bytes.Equal(r.Data, tt.recs[n].Data) {
						t.Fatalf("record %d out of order", n)
					}
					n++
				}
				if len(g) > 1 {
					agg, err := kpl.Aggregate(g)
					if err != nil || len(agg) > kplMaxAggregateBytes {
						t.Errorf("aggregate of %d records: %d bytes, %v", len(g), len(agg), err)
					}
				}
			}
			if n != len(tt.recs) || len(sizes) != len(tt.sizes) {
				t.Fatalf("groups %v, want %v", sizes, tt.sizes)
			}
			for i := range sizes {
				if sizes[i] != tt.sizes[i] {
					t.Errorf("groups %v, want %v", sizes, tt.sizes)
					break
				}
			}
		})
	}
}

func TestMissing(t *testing.T) {
	t.Parallel()
	recs := []streamRecord{
		{shard: "shardId-000000000001", sequence: "1", users: 3}, // a KPL aggregate
		{shard: "shardId-000000000000", sequence: "1", users: 1},
	}
	msg := func(shard, seq, sub string) map[string]string {
		p := map[string]string{"kinesis.shard.id": shard, "kinesis.sequence.number": seq}
		if sub != "" {
			p["kinesis.sub.sequence.number"] = sub
		}
		return p
	}
	tests := []struct {
		name string
		msgs []map[string]string
		want int
	}{
		{"nothing yet", nil, 4},
		{"all", []map[string]string{msg("shardId-000000000001", "1", "0"), msg("shardId-000000000001", "1", "1"),
			msg("shardId-000000000001", "1", "2"), msg("shardId-000000000000", "1", "")}, 0},
		{"a duplicate does not stand for another record", []map[string]string{msg("shardId-000000000001", "1", "0"),
			msg("shardId-000000000001", "1", "0"), msg("shardId-000000000001", "1", "2"), msg("shardId-000000000000", "1", "")}, 1},
		{"same sequence number on another shard", []map[string]string{msg("shardId-000000000001", "1", "0"), msg("shardId-000000000001", "1", "1"),
			msg("shardId-000000000001", "1", "2"), msg("shardId-000000000001", "1", "")}, 1},
		{"without the properties, messages are counted", []map[string]string{{}, {}, {}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := missing(recs, tt.msgs); got != tt.want {
				t.Errorf("missing = %d, want %d", got, tt.want)
			}
		})
	}
}
