package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"testing"
)

// seedAggregates are valid aggregates of several shapes, for the fuzzers' seed corpus.
func seedAggregates(t testing.TB) [][]byte {
	shapes := [][]Record{
		{{PartitionKey: "k", Data: []byte("v")}},
		{{PartitionKey: "a", Data: []byte("1")}, {PartitionKey: "b", Data: nil}, {PartitionKey: "a", Data: []byte("3")}},
		{{PartitionKey: "a", ExplicitHashKey: "1", Data: []byte("x")}, {PartitionKey: "b", Data: []byte("y")},
			{PartitionKey: "c", ExplicitHashKey: "2", Data: []byte("z")}, {PartitionKey: "a", ExplicitHashKey: "1"}},
		{{PartitionKey: "ключ", Data: bytes.Repeat([]byte{0xF3}, 300)}},
	}
	out := make([][]byte, 0, len(shapes))
	for _, s := range shapes {
		out = append(out, mustAggregate(t, s))
	}
	return out
}

// seedBodies are protobuf bodies Aggregate would not write: unknown fields, tags, tables after
// records, groups.
func seedBodies() [][]byte {
	return [][]byte{
		cat(varintField(15, 7), pkEntry("a"), bytesField(99, []byte("f")), groups(20, 2, varintField(1, 1)),
			record(varintField(5, 1), pkIndex(0), data("x"), groups(7, 1, nil))),
		cat(pkEntry("a"), record(pkIndex(0), tag(bytesField(1, []byte("k")), bytesField(2, []byte("v"))), data("x"))),
		cat(record(pkIndex(1), ehkIndex(0), data("1")), pkEntry("a"), ehkEntry("7"), pkEntry("b")),
		cat(pkEntry("a"), record(pkIndex(0), data("old"), pkIndex(0), data("new"))),
	}
}

// FuzzDeaggregate feeds arbitrary bytes; the seeds are whole aggregates, so mutations mostly break the
// checksum. FuzzDeaggregateBody gets past it.
func FuzzDeaggregate(f *testing.F) {
	for _, s := range seedAggregates(f) {
		f.Add(s)
	}
	for _, b := range seedBodies() {
		f.Add(wrap(b))
	}
	f.Add([]byte("plain record"))
	f.Add(Magic[:])
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDeaggregate(t, in)
	})
}

// FuzzDeaggregateBody fuzzes the protobuf body: it adds the magic and a correct MD5 trailer itself.
func FuzzDeaggregateBody(f *testing.F) {
	for _, s := range seedAggregates(f) {
		f.Add(s[len(Magic) : len(s)-md5.Size])
	}
	for _, b := range seedBodies() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in := wrap(body)
		err := checkDeaggregate(t, in)
		if len(body) > 0 && errors.Is(err, ErrNotAggregated) {
			t.Fatalf("a framed %d-byte body reported as not aggregated: %v", len(body), err)
		}
	})
}

// checkDeaggregate asserts the properties that hold for any input, and returns Deaggregate's error.
func checkDeaggregate(t *testing.T, in []byte) error {
	t.Helper()
	orig := bytes.Clone(in)
	got, err := Deaggregate(in)
	if !bytes.Equal(in, orig) {
		t.Fatal("Deaggregate modified its input")
	}
	if err != nil {
		if got != nil {
			t.Fatalf("%d records returned with error %v", len(got), err)
		}
		if errors.Is(err, ErrNotAggregated) == errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v must wrap exactly one of ErrNotAggregated, ErrMalformed", err)
		}
		if !bytes.HasPrefix(in, Magic[:]) && err != ErrNotAggregated {
			t.Fatalf("no magic: got %v, want ErrNotAggregated itself", err)
		}
	} else {
		if len(got) == 0 {
			t.Fatal("success with no records")
		}
		checkAliases(t, in, got)
		again := mustAggregate(t, got)
		back, err := Deaggregate(again)
		if err != nil {
			t.Fatalf("re-aggregated records do not decode: %v", err)
		}
		if diff := sameRecords(back, got); diff != "" {
			t.Fatalf("round trip: %s", diff)
		}
		if twice := mustAggregate(t, back); !bytes.Equal(twice, again) {
			t.Fatal("Aggregate is not stable over a round trip")
		}
	}
	if errors.Is(err, errTooDeep) {
		return err // the oracle allows deeper nesting
	}
	oracle, oerr := oracleDeaggregate(in)
	if errorClass(oerr) != errorClass(err) {
		t.Fatalf("outcome %q (%v), the oracle's %q (%v)", errorClass(err), err, errorClass(oerr), oerr)
	}
	if diff := sameRecords(got, oracle); diff != "" {
		t.Fatalf("differs from the oracle: %s", diff)
	}
	return err
}
