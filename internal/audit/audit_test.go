package audit

import (
	"math/big"
	"math/rand"
	"sort"
	"testing"
)

func TestSequenceKeyOrdersAsIntegers(t *testing.T) {
	seqs := []string{"0", "9", "10", "99", "100", "49590338271490256608559692538361571095921575989136588898",
		"49590338271490256608559692538361571095921575989136588899", "149590338271490256608559692538361571095921575989136588898"}
	for i := 0; i < 200; i++ {
		n := new(big.Int).Rand(rand.New(rand.NewSource(int64(i))), new(big.Int).Lsh(big.NewInt(1), uint(1+i*2)))
		seqs = append(seqs, n.String())
	}
	keys := make([]string, len(seqs))
	for i, s := range seqs {
		k, err := SequenceKey(s)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	idx := make([]int, len(seqs))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	for i := 1; i < len(idx); i++ {
		x, _ := new(big.Int).SetString(seqs[idx[i-1]], 10)
		y, _ := new(big.Int).SetString(seqs[idx[i]], 10)
		if x.Cmp(y) > 0 {
			t.Fatalf("string order %s < %s but integers %s > %s", keys[idx[i-1]], keys[idx[i]], x, y)
		}
	}
}

func TestSequenceKeyRejects(t *testing.T) {
	for _, bad := range []string{"", "007", "12a", "-1", " 1", "1" + string(make([]byte, 129))} {
		if _, err := SequenceKey(bad); err == nil {
			t.Errorf("SequenceKey(%q) accepted", bad)
		}
	}
}
