package kpl

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

// Hand-made wire bytes, so that tests can build what Aggregate never would.

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func bytesField(num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
}

func pkEntry(s string) []byte        { return bytesField(1, []byte(s)) }
func ehkEntry(s string) []byte       { return bytesField(2, []byte(s)) }
func record(fields ...[]byte) []byte { return bytesField(3, cat(fields...)) }
func pkIndex(i uint64) []byte        { return varintField(1, i) }
func ehkIndex(i uint64) []byte       { return varintField(2, i) }
func data(s string) []byte           { return bytesField(3, []byte(s)) }
func tag(fields ...[]byte) []byte    { return bytesField(4, cat(fields...)) }

// groups nests inner in depth groups numbered num.
func groups(num protowire.Number, depth int, inner []byte) []byte {
	start := protowire.AppendTag(nil, num, protowire.StartGroupType)
	end := protowire.AppendTag(nil, num, protowire.EndGroupType)
	return cat(bytes.Repeat(start, depth), inner, bytes.Repeat(end, depth))
}

// wrap frames a body as an aggregate: magic, body, MD5 of the body.
func wrap(body []byte) []byte {
	sum := md5.Sum(body)
	return cat(Magic[:], body, sum[:])
}

func mustAggregate(t testing.TB, records []Record) []byte {
	t.Helper()
	b, err := Aggregate(records)
	if err != nil {
		t.Fatalf("Aggregate: %v", err)
	}
	return b
}

// checkAliases fails unless every non-empty Data lies inside input and has its capacity capped.
func checkAliases(t testing.TB, input []byte, records []Record) {
	t.Helper()
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(input)))
	hi := lo + uintptr(len(input))
	for i, r := range records {
		if cap(r.Data) != len(r.Data) {
			t.Errorf("record %d: cap(Data) %d != len %d", i, cap(r.Data), len(r.Data))
		}
		if len(r.Data) == 0 {
			continue
		}
		p := uintptr(unsafe.Pointer(unsafe.SliceData(r.Data)))
		if p < lo || p+uintptr(len(r.Data)) > hi {
			t.Errorf("record %d: Data is not a sub-slice of the input", i)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0xAB}, 200_000)
	many := make([]Record, 1000)
	for i := range many {
		many[i] = Record{PartitionKey: fmt.Sprintf("key-%d", i%37), Data: []byte(fmt.Sprintf("payload %d", i))}
	}
	tests := []struct {
		name    string
		records []Record
		// keys is the expected number of partition- and explicit-hash-key table entries.
		pks, ehks int
	}{
		{name: "one record", records: []Record{{PartitionKey: "k", Data: []byte("v")}}, pks: 1},
		{name: "shared key", pks: 1, records: []Record{
			{PartitionKey: "same", Data: []byte("a")}, {PartitionKey: "same", Data: []byte("b")},
			{PartitionKey: "same", Data: []byte("c")}}},
		{name: "distinct keys", pks: 3, records: []Record{
			{PartitionKey: "a", Data: []byte("1")}, {PartitionKey: "b", Data: []byte("2")},
			{PartitionKey: "c", Data: []byte("3")}}},
		{name: "repeated keys interleaved", pks: 2, records: []Record{
			{PartitionKey: "a", Data: []byte("1")}, {PartitionKey: "b", Data: []byte("2")},
			{PartitionKey: "a", Data: []byte("3")}, {PartitionKey: "b", Data: []byte("4")}}},
		{name: "explicit hash keys present", pks: 2, ehks: 2, records: []Record{
			{PartitionKey: "a", ExplicitHashKey: "0", Data: []byte("1")},
			{PartitionKey: "b", ExplicitHashKey: "340282366920938463463374607431768211455", Data: []byte("2")},
			{PartitionKey: "a", ExplicitHashKey: "0", Data: []byte("3")}}},
		{name: "explicit hash keys mixed with absent", pks: 1, ehks: 1, records: []Record{
			{PartitionKey: "a", Data: []byte("1")},
			{PartitionKey: "a", ExplicitHashKey: "42", Data: []byte("2")},
			{PartitionKey: "a", Data: []byte("3")}}},
		{name: "empty data", pks: 2, records: []Record{
			{PartitionKey: "a", Data: nil}, {PartitionKey: "b", Data: []byte{}},
			{PartitionKey: "a", Data: []byte("x")}}},
		{name: "empty partition key", pks: 1, records: []Record{{PartitionKey: "", Data: []byte("x")}}},
		{name: "unicode keys and binary data", pks: 2, records: []Record{
			{PartitionKey: "ключ-🔑", Data: []byte{0, 0xFF, 0xF3, 0x89, 0x9A, 0xC2}},
			{PartitionKey: "鍵", Data: []byte{0}}}},
		{name: "large data", pks: 1, records: []Record{{PartitionKey: "k", Data: big}, {PartitionKey: "k", Data: big[:1]}}},
		{name: "1000 records", pks: 37, records: many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agg := mustAggregate(t, tt.records)
			got, err := Deaggregate(agg)
			if err != nil {
				t.Fatalf("Deaggregate: %v", err)
			}
			if diff := sameRecords(got, tt.records); diff != "" {
				t.Fatal(diff)
			}
			checkAliases(t, agg, got)
			layout, err := scanBody(agg[len(Magic) : len(agg)-md5.Size])
			if err != nil {
				t.Fatalf("scanBody: %v", err)
			}
			if layout.partitionKeys != tt.pks || layout.explicitHashKeys != tt.ehks || layout.records != len(tt.records) {
				t.Errorf("tables: got %d partition keys, %d explicit hash keys, %d records; want %d, %d, %d",
					layout.partitionKeys, layout.explicitHashKeys, layout.records, tt.pks, tt.ehks, len(tt.records))
			}
			oracle, err := oracleDeaggregate(agg)
			if err != nil {
				t.Fatalf("oracle: %v", err)
			}
			if diff := sameRecords(got, oracle); diff != "" {
				t.Fatalf("differs from the oracle: %s", diff)
			}
		})
	}
}

// TestAggregateMatchesPythonLibrary pins the exact bytes aws_kinesis_agg 1.2.3 produces for
// add_user_record("pk", "hello") then add_user_record("pk2", b"", "123").
func TestAggregateMatchesPythonLibrary(t *testing.T) {
	const want = "f3899ac20a02706b0a03706b3212033132331a0908001a0568656c6c6f1a06080110001a00" +
		"fa23364054616bb46c3914bfa38cf1e9"
	got := mustAggregate(t, []Record{
		{PartitionKey: "pk", Data: []byte("hello")},
		{PartitionKey: "pk2", ExplicitHashKey: "123", Data: nil},
	})
	if hex.EncodeToString(got) != want {
		t.Fatalf("Aggregate:\n got %x\nwant %s", got, want)
	}
}

func TestAggregateEmpty(t *testing.T) {
	if b, err := Aggregate(nil); err == nil {
		t.Fatalf("Aggregate(nil) = %x, want an error", b)
	}
}

func TestDeaggregate(t *testing.T) {
	valid := mustAggregate(t, []Record{{PartitionKey: "a", Data: []byte("1")}, {PartitionKey: "b", Data: []byte("2")}})
	badMD5 := bytes.Clone(valid)
	badMD5[len(badMD5)-1] ^= 1
	flippedBody := bytes.Clone(valid)
	flippedBody[6] ^= 1
	validBody := valid[len(Magic) : len(valid)-md5.Size]
	ab := []Record{{PartitionKey: "a", Data: []byte("x")}}

	tests := []struct {
		name string
		in   []byte
		want []Record // nil: an error of class err
		err  error
	}{
		// Not aggregates at all.
		{name: "empty", in: nil, err: ErrNotAggregated},
		{name: "shorter than the magic", in: Magic[:3], err: ErrNotAggregated},
		{name: "wrong magic", in: cat([]byte{0xF3, 0x89, 0x9A, 0xC3}, validBody, make([]byte, 16)), err: ErrNotAggregated},
		{name: "plain text", in: []byte("hello, world: a plain record of some length"), err: ErrNotAggregated},
		{name: "magic only", in: Magic[:], err: ErrNotAggregated},
		{name: "magic and 16 bytes", in: cat(Magic[:], make([]byte, 16)), err: ErrNotAggregated},
		{name: "magic and the MD5 of an empty body", in: wrap(nil), err: ErrNotAggregated},

		// Checksum.
		{name: "bad MD5 trailer", in: badMD5, err: ErrMalformed},
		{name: "body changed after the MD5", in: flippedBody, err: ErrMalformed},
		{name: "magic and 17 bytes", in: cat(Magic[:], make([]byte, 17)), err: ErrMalformed},

		// Protobuf.
		{name: "truncated protobuf", in: wrap(validBody[:len(validBody)-1]), err: ErrMalformed},
		{name: "truncated record length", in: wrap(cat(pkEntry("a"), []byte{0x1a, 0x80})), err: ErrMalformed},
		{name: "record length beyond the body", in: wrap(cat(pkEntry("a"), []byte{0x1a, 0x10}, pkIndex(0), data(""))), err: ErrMalformed},
		{name: "huge declared length", in: wrap(cat(pkEntry("a"), protowire.AppendVarint([]byte{0x1a}, 1<<62), pkIndex(0))), err: ErrMalformed},
		{name: "varint overflow", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), []byte{0x08}, bytes.Repeat([]byte{0xFF}, 10), []byte{1})), err: ErrMalformed},
		{name: "field number zero", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), []byte{0x00, 0x00})), err: ErrMalformed},
		{name: "field number beyond 2^29-1", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), protowire.AppendVarint(nil, uint64(1)<<32), []byte{0})), err: ErrMalformed},
		{name: "reserved wire type 6", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), []byte{0x2e})), err: ErrMalformed},
		{name: "reserved wire type 7 in a record", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x"), []byte{0x2f}))), err: ErrMalformed},
		{name: "unmatched end group", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), []byte{0x2c})), err: ErrMalformed},
		{name: "mismatched end group", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), []byte{0x2b, 0x34})), err: ErrMalformed},
		{name: "unterminated group", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), []byte{0x2b, 0x08, 0x01})), err: ErrMalformed},
		{name: "partition key index as a length-delimited field", in: wrap(cat(pkEntry("a"), record(bytesField(1, nil), data("x")))), err: ErrMalformed},

		// Resolution and required fields.
		{name: "partition key index out of range", in: wrap(cat(pkEntry("a"), record(pkIndex(1), data("x")))), err: ErrMalformed},
		{name: "partition key index 2^32 (the KCL truncates it to 0)", in: wrap(cat(pkEntry("a"), record(pkIndex(1<<32), data("x")))), err: ErrMalformed},
		{name: "explicit hash key index out of range", in: wrap(cat(pkEntry("a"), ehkEntry("1"), record(pkIndex(0), ehkIndex(1), data("x")))), err: ErrMalformed},
		{name: "explicit hash key index without a table", in: wrap(cat(pkEntry("a"), record(pkIndex(0), ehkIndex(0), data("x")))), err: ErrMalformed},
		{name: "missing partition key index", in: wrap(cat(pkEntry("a"), record(data("x")))), err: ErrMalformed},
		{name: "missing data", in: wrap(cat(pkEntry("a"), record(pkIndex(0)))), err: ErrMalformed},
		{name: "empty record", in: wrap(cat(pkEntry("a"), record())), err: ErrMalformed},
		{name: "empty partition key table", in: wrap(record(pkIndex(0), data("x"))), err: ErrMalformed},
		{name: "tag without its required key", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x"), tag(bytesField(2, []byte("v")))))), err: ErrMalformed},
		{name: "tag that does not parse", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x"), tag([]byte{0x0a, 0x05})))), err: ErrMalformed},

		// Zero records and all-or-nothing.
		{name: "zero records, tables only", in: wrap(cat(pkEntry("a"), ehkEntry("1"))), err: ErrMalformed},
		{name: "zero records, unknown field only", in: wrap(varintField(9, 1)), err: ErrMalformed},
		{name: "second record bad", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("ok")), record(pkIndex(5), data("bad")))), err: ErrMalformed},
		{name: "last record bad", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("1")), record(pkIndex(0), data("2")), record(pkIndex(0)))), err: ErrMalformed},

		// Valid bodies Aggregate would not write.
		{name: "unknown fields of every wire type", want: ab, in: wrap(cat(
			varintField(15, 7), pkEntry("a"), protowire.AppendFixed32([]byte{0x7d}, 1), // field 15 fixed32
			protowire.AppendFixed64([]byte{0x79}, 1), // field 15 fixed64
			bytesField(99, []byte("future")), groups(20, 3, varintField(1, 1)),
			record(varintField(5, 1), pkIndex(0), bytesField(6, []byte("x")), data("x"), groups(7, 2, nil),
				protowire.AppendFixed32([]byte{0x45}, 9)),
		))},
		{name: "known field numbers with other wire types are unknown fields", want: ab, in: wrap(cat(
			varintField(1, 5), pkEntry("a"), varintField(3, 1), varintField(2, 1),
			record(protowire.AppendFixed64([]byte{0x09}, 3), pkIndex(0), varintField(3, 1), data("x"), varintField(4, 1)),
		))},
		{name: "valid tags ignored", want: ab, in: wrap(cat(pkEntry("a"),
			record(pkIndex(0), tag(bytesField(1, []byte("k"))), data("x"), tag(bytesField(1, nil), bytesField(2, []byte("v")), varintField(3, 3))),
		))},
		{name: "repeated scalar fields: last one wins", want: ab, in: wrap(cat(pkEntry("b"), pkEntry("a"),
			record(pkIndex(0), data("old"), pkIndex(1), data("x")),
		))},
		{name: "tables after the records", in: wrap(cat(
			record(pkIndex(1), ehkIndex(0), data("1")), record(pkIndex(0), data("2")), pkEntry("a"), ehkEntry("7"), pkEntry("b"),
		)), want: []Record{{PartitionKey: "b", ExplicitHashKey: "7", Data: []byte("1")}, {PartitionKey: "a", Data: []byte("2")}}},
		{name: "records before, between and after table entries", in: wrap(cat(
			record(pkIndex(0), data("1")), pkEntry("a"), record(pkIndex(1), data("2")), pkEntry("b"), record(pkIndex(1), data("3")),
		)), want: []Record{{PartitionKey: "a", Data: []byte("1")}, {PartitionKey: "b", Data: []byte("2")}, {PartitionKey: "b", Data: []byte("3")}}},
		{name: "explicit hash key table entry never used", want: ab, in: wrap(cat(pkEntry("a"), ehkEntry("1"), record(pkIndex(0), data("x"))))},
		{name: "invalid UTF-8 key kept as is", in: wrap(cat(pkEntry("\xff\xfe"), record(pkIndex(0), data("x")))),
			want: []Record{{PartitionKey: "\xff\xfe", Data: []byte("x")}}},
		{name: "non-minimal varints", want: ab, in: wrap(cat(pkEntry("a"), []byte{0x9a, 0x00, 0x08}, []byte{0x88, 0x80, 0x00, 0x80, 0x00}, data("x")))},

		// Nesting limit: 100 levels, the top-level message being level 0 (as protobuf-java and upb).
		{name: "groups 100 deep at the top level", want: ab, in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), groups(5, 100, nil)))},
		{name: "groups 101 deep at the top level", err: ErrMalformed, in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), groups(5, 101, nil)))},
		{name: "groups 99 deep in a record", want: ab, in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x"), groups(5, 99, nil))))},
		{name: "groups 100 deep in a record", err: ErrMalformed, in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x"), groups(5, 100, nil))))},
		{name: "groups 98 deep in a tag", want: ab, in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x"), tag(bytesField(1, nil), groups(5, 98, nil)))))},
		{name: "groups 99 deep in a tag", err: ErrMalformed, in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x"), tag(bytesField(1, nil), groups(5, 99, nil)))))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Deaggregate(tt.in)
			if tt.want != nil {
				if err != nil {
					t.Fatalf("Deaggregate: %v", err)
				}
				if diff := sameRecords(got, tt.want); diff != "" {
					t.Fatal(diff)
				}
				checkAliases(t, tt.in, got)
			} else {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Deaggregate: got error %v, want one wrapping %v", err, tt.err)
				}
				if got != nil {
					t.Fatalf("Deaggregate returned %d records with the error", len(got))
				}
				if tt.err == ErrNotAggregated && errors.Is(err, ErrMalformed) || tt.err == ErrMalformed && errors.Is(err, ErrNotAggregated) {
					t.Fatalf("error %v wraps both sentinels", err)
				}
			}
			if errors.Is(err, errTooDeep) {
				return // the oracle allows deeper nesting
			}
			oracle, oerr := oracleDeaggregate(tt.in)
			if errorClass(oerr) != errorClass(err) {
				t.Fatalf("outcome %q, the oracle's %q (%v)", errorClass(err), errorClass(oerr), oerr)
			}
			if diff := sameRecords(got, oracle); diff != "" {
				t.Fatalf("differs from the oracle: %s", diff)
			}
		})
	}
}

func TestNotAggregatedIsUnwrappedForPlainRecords(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("abc"), []byte(`{"json": true}`)} {
		if _, err := Deaggregate(in); err != ErrNotAggregated {
			t.Errorf("Deaggregate(%q): got %v, want ErrNotAggregated itself", in, err)
		}
	}
	plain := []byte(`{"json": true}`)
	allocs := testing.AllocsPerRun(100, func() { _, _ = Deaggregate(plain) })
	if allocs != 0 {
		t.Errorf("plain record: %v allocations, want 0", allocs)
	}
}

func TestAppendDeaggregate(t *testing.T) {
	first := mustAggregate(t, []Record{{PartitionKey: "a", Data: []byte("1")}})
	second := mustAggregate(t, []Record{{PartitionKey: "b", Data: []byte("2")}, {PartitionKey: "c", Data: []byte("3")}})
	bad := wrap(cat(pkEntry("a"), record(pkIndex(0), data("ok")), record(pkIndex(9), data("bad"))))

	dst, err := AppendDeaggregate(make([]Record, 0, 1), first)
	if err != nil {
		t.Fatalf("first: %v", err)
	}
	dst, err = AppendDeaggregate(dst, second)
	if err != nil {
		t.Fatalf("second: %v", err)
	}
	want := []Record{{PartitionKey: "a", Data: []byte("1")}, {PartitionKey: "b", Data: []byte("2")}, {PartitionKey: "c", Data: []byte("3")}}
	if diff := sameRecords(dst, want); diff != "" {
		t.Fatal(diff)
	}

	spare := make([]Record, 1, 10)
	spare[0] = Record{PartitionKey: "keep"}
	out, err := AppendDeaggregate(spare, bad)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad: got %v, want ErrMalformed", err)
	}
	if len(out) != 1 || out[0].PartitionKey != "keep" {
		t.Fatalf("bad: dst changed to %+v", out)
	}
	for i, r := range spare[1:cap(spare)] {
		if r.PartitionKey != "" || r.Data != nil {
			t.Errorf("bad: spare capacity slot %d still holds %+v", i+1, r)
		}
	}
}

func TestDataDoesNotWriteIntoInput(t *testing.T) {
	agg := mustAggregate(t, []Record{{PartitionKey: "a", Data: []byte("12")}, {PartitionKey: "a", Data: []byte("34")}})
	before := bytes.Clone(agg)
	got, err := Deaggregate(agg)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(got[0].Data, "xxxxxxxx"...)
	if !bytes.Equal(agg, before) {
		t.Fatal("appending to Data changed the input")
	}
}

// TestHostileInputAllocation checks that declared lengths and counts do not drive allocation: the
// memory used stays within a small multiple of the input size.
func TestHostileInputAllocation(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{name: "record declaring 2^62 bytes", in: wrap(cat(pkEntry("a"), protowire.AppendVarint([]byte{0x1a}, 1<<62)))},
		{name: "key declaring 2^40 bytes", in: wrap(cat(protowire.AppendVarint([]byte{0x0a}, 1<<40), record(pkIndex(0), data("x"))))},
		{name: "100k empty records", in: wrap(cat(pkEntry("a"), bytes.Repeat([]byte{0x1a, 0x00}, 100_000)))},
		{name: "100k tiny valid records", in: wrap(cat(pkEntry("a"), bytes.Repeat(record(pkIndex(0), data("")), 100_000)))},
		{name: "100k keys", in: wrap(cat(bytes.Repeat(pkEntry(""), 100_000), record(pkIndex(99_999), data("x"))))},
		{name: "deep groups", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), groups(5, 50_000, nil)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Deaggregate(tt.in)
			runtime.ReadMemStats(&after)
			used := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes allocated for a %d-byte input", used, len(tt.in))
			// A Record is 56 bytes and needs at least 6 input bytes; keys and the table cost less.
			if limit := uint64(12*len(tt.in) + 4096); used > limit {
				t.Fatalf("allocated %d bytes for a %d-byte input (limit %d); err %v", used, len(tt.in), limit, err)
			}
		})
	}
}

// TestErrorsNameTheProblem keeps error messages useful for the operator reading the logs.
func TestErrorsNameTheProblem(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{in: cat(Magic[:], make([]byte, 8)), want: "only 8 bytes follow the magic"},
		{in: cat(Magic[:], make([]byte, 20)), want: "MD5 trailer does not match"},
		{in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), record(pkIndex(3), data("x")))), want: "record 1: partition key index 3 out of range"},
		{in: wrap(cat(pkEntry("a"), record(data("xy")))), want: "record 0: required partition_key_index is missing"},
		{in: wrap(pkEntry("a")), want: "no records"},
		{in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), record(pkIndex(0)))), want: "record 1: 2 bytes cannot hold its required fields"},
	}
	for _, tt := range tests {
		_, err := Deaggregate(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("got error %v, want it to contain %q", err, tt.want)
		}
	}
}
