//go:build integration

package kpl

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
)

// The Python side is aws_kinesis_agg, the official KPL aggregation library, from the project venv
// that `make local-up` (infra/local/stack.sh install) creates. The test fails when it is missing.
const pythonLibraryVersion = "1.2.3"

type pyRecord struct {
	PK   string  `json:"pk"`
	EHK  *string `json:"ehk"`
	Data []byte  `json:"data"` // base64 in JSON, as the script expects
}

type pyUserRecord struct {
	Aggregated bool    `json:"aggregated"`
	PK         string  `json:"pk"`
	EHK        *string `json:"ehk"`
	Data       []byte  `json:"data"`
	Sub        *int    `json:"sub"`
}

type pyRequest struct {
	Aggregate   [][]pyRecord `json:"aggregate"`
	Deaggregate [][]byte     `json:"deaggregate"`
}

type pyAnswer struct {
	Version      string           `json:"version"`
	Aggregates   [][]byte         `json:"aggregates"`
	Deaggregated [][]pyUserRecord `json:"deaggregated"`
	HasEHKIndex  [][]bool         `json:"has_ehk_index"`
}

// venvPython returns the venv's python: $KP_VENV, else .cache/venv at the repository root.
func venvPython(t *testing.T) string {
	t.Helper()
	venv := os.Getenv("KP_VENV")
	if venv == "" {
		root, err := localenv.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		venv = filepath.Join(root, ".cache", "venv")
	}
	python := filepath.Join(venv, "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("the Python venv with aws_kinesis_agg==%s is missing (%v): run `make local-up`, or set KP_VENV",
			pythonLibraryVersion, err)
	}
	return python
}

// runPython sends one request to testdata/kpl_interop.py and checks the library version.
func runPython(t *testing.T, req pyRequest) pyAnswer {
	t.Helper()
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("encode request: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, venvPython(t), filepath.Join("testdata", "kpl_interop.py"))
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kpl_interop.py: %v\nstderr:\n%s\n(an ImportError means the venv lacks aws_kinesis_agg==%s or its dependencies: run `make local-up`)",
			err, stderr.String(), pythonLibraryVersion)
	}
	var ans pyAnswer
	if err := json.Unmarshal(stdout.Bytes(), &ans); err != nil {
		t.Fatalf("decode answer: %v\nstdout:\n%s", err, stdout.String())
	}
	if ans.Version != pythonLibraryVersion {
		t.Fatalf("aws_kinesis_agg %s in the venv, the test is written against %s", ans.Version, pythonLibraryVersion)
	}
	if stderr.Len() > 0 {
		t.Logf("kpl_interop.py stderr:\n%s", stderr.String())
	}
	return ans
}

func toPy(records []Record) []pyRecord {
	out := make([]pyRecord, len(records))
	for i, r := range records {
		out[i] = pyRecord{PK: r.PartitionKey, Data: r.Data}
		if r.ExplicitHashKey != "" {
			out[i].EHK = &r.ExplicitHashKey
		}
	}
	return out
}

// interopSets are the record lists both directions are checked with.
func interopSets() map[string][]Record {
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	many := make([]Record, 1000)
	for i := range many {
		many[i] = Record{PartitionKey: fmt.Sprintf("user-%d", i%50), Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	}
	return map[string][]Record{
		"one record":    {{PartitionKey: "k", Data: []byte("v")}},
		"shared key":    {{PartitionKey: "s", Data: []byte("1")}, {PartitionKey: "s", Data: []byte("2")}, {PartitionKey: "s", Data: []byte("3")}},
		"distinct keys": {{PartitionKey: "a", Data: []byte("1")}, {PartitionKey: "b", Data: []byte("2")}, {PartitionKey: "c", Data: []byte("3")}},
		"explicit hash keys": {
			{PartitionKey: "a", ExplicitHashKey: "0", Data: []byte("1")},
			{PartitionKey: "b", ExplicitHashKey: "340282366920938463463374607431768211455", Data: []byte("2")},
			{PartitionKey: "c", ExplicitHashKey: "0", Data: []byte("3")}},
		"explicit hash keys mixed with absent": {
			{PartitionKey: "a", Data: []byte("1")},
			{PartitionKey: "b", ExplicitHashKey: "170141183460469231731687303715884105728", Data: []byte("2")},
			{PartitionKey: "a", Data: []byte("3")}},
		"empty data":        {{PartitionKey: "a", Data: []byte{}}, {PartitionKey: "a", Data: []byte("x")}, {PartitionKey: "b", Data: []byte{}}},
		"unicode and bytes": {{PartitionKey: "ключ-🔑", Data: allBytes}, {PartitionKey: "鍵", Data: Magic[:]}},
		"large record":      {{PartitionKey: "big", Data: bytes.Repeat([]byte("0123456789abcdef"), 40_000)}, {PartitionKey: "small", Data: []byte("s")}},
		"1000 records":      many,
	}
}

// TestPythonAggregatesGoDeaggregates: aws_kinesis_agg aggregates known records; Deaggregate must
// return them exactly, and Aggregate must produce the same bytes.
func TestPythonAggregatesGoDeaggregates(t *testing.T) {
	sets := interopSets()
	var names []string
	var req pyRequest
	for name, records := range sets {
		names = append(names, name)
		req.Aggregate = append(req.Aggregate, toPy(records))
	}
	ans := runPython(t, req)
	if len(ans.Aggregates) != len(names) {
		t.Fatalf("got %d aggregates, want %d", len(ans.Aggregates), len(names))
	}
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			blob := ans.Aggregates[i]
			got, err := Deaggregate(blob)
			if err != nil {
				t.Fatalf("Deaggregate of the Python aggregate: %v", err)
			}
			if diff := sameRecords(got, sets[name]); diff != "" {
				t.Fatal(diff)
			}
			if ours := mustAggregate(t, sets[name]); !bytes.Equal(ours, blob) {
				t.Errorf("Aggregate differs from the Python aggregate:\n ours %x\npython %x", head(ours), head(blob))
			}
		})
	}
}

// TestGoAggregatesPythonDeaggregates: Aggregate's output must come out of aws_kinesis_agg's
// deaggregator exactly.
func TestGoAggregatesPythonDeaggregates(t *testing.T) {
	sets := interopSets()
	var names []string
	var req pyRequest
	for name, records := range sets {
		names = append(names, name)
		req.Deaggregate = append(req.Deaggregate, mustAggregate(t, records))
	}
	ans := runPython(t, req)
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			want := sets[name]
			got := ans.Deaggregated[i]
			if len(got) != len(want) {
				t.Fatalf("Python returned %d records, want %d", len(got), len(want))
			}
			for j, g := range got {
				w := want[j]
				if !g.Aggregated || g.Sub == nil || *g.Sub != j {
					t.Fatalf("record %d: aggregated %v, subSequenceNumber %v; want true, %d", j, g.Aggregated, g.Sub, j)
				}
				if g.PK != w.PartitionKey || !bytes.Equal(g.Data, w.Data) {
					t.Fatalf("record %d: got pk %q, %d bytes; want pk %q, %d bytes", j, g.PK, len(g.Data), w.PartitionKey, len(w.Data))
				}
				hasIndex := ans.HasEHKIndex[i][j]
				switch {
				case w.ExplicitHashKey == "" && hasIndex:
					t.Fatalf("record %d: explicit hash key index set, want none", j)
				case w.ExplicitHashKey != "" && (!hasIndex || g.EHK == nil || *g.EHK != w.ExplicitHashKey):
					t.Fatalf("record %d: explicit hash key %v (index set: %v), want %q", j, g.EHK, hasIndex, w.ExplicitHashKey)
				}
				// Without an index the library still reports ehk_table[0] when the table is not
				// empty (its own quirk), so g.EHK is not compared then.
			}
		})
	}
}

// TestClassificationMatchesPython: for inputs at the edges of the format, both sides must agree
// whether a record is an aggregate and what it holds. Where this package deliberately differs from
// the library (it never loses a record), the library's behaviour is pinned too, so a change in it
// shows up here.
func TestClassificationMatchesPython(t *testing.T) {
	valid := mustAggregate(t, []Record{{PartitionKey: "a", Data: []byte("1")}, {PartitionKey: "b", Data: []byte("2")}})
	validBody := valid[len(Magic) : len(valid)-md5.Size]
	badMD5 := bytes.Clone(valid)
	badMD5[len(badMD5)-1] ^= 0xFF
	x := []Record{{PartitionKey: "a", Data: []byte("x")}}

	type outcome int
	const (
		agree      outcome = iota // same records, or both pass the input through
		pyDefaults                // Python: no required-field check, record with default index 0 and empty data
		pyDropsAll                // Python: yields nothing at all
		pyPrefix                  // Python: logs an error and yields the records before the bad one
	)
	tests := []struct {
		name string
		in   []byte
		want []Record // nil: Deaggregate must fail
		py   outcome
		// pyCount is the number of user records Python yields for pyPrefix.
		pyCount int
	}{
		{name: "valid", in: valid, want: []Record{{PartitionKey: "a", Data: []byte("1")}, {PartitionKey: "b", Data: []byte("2")}}},
		{name: "plain record", in: []byte("just a plain record, not an aggregate")},
		{name: "wrong magic", in: cat([]byte{0xF3, 0x89, 0x9A, 0xC3}, validBody, make([]byte, 16))},
		{name: "magic and 16 bytes", in: cat(Magic[:], make([]byte, 16))},
		{name: "bad MD5", in: badMD5},
		{name: "truncated protobuf", in: wrap(validBody[:len(validBody)-2])},
		{name: "reserved wire type", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), []byte{0x2e}))},
		{name: "unmatched end group", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), []byte{0x2c}))},
		{name: "field number beyond 2^29-1", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), []byte{0x80, 0x80, 0x80, 0x80, 0x10, 0x00}))},
		{name: "unknown fields", want: x, in: wrap(cat(varintField(15, 7), pkEntry("a"), bytesField(99, []byte("f")),
			groups(20, 2, varintField(1, 1)), record(varintField(5, 1), pkIndex(0), data("x"), groups(7, 1, nil))))},
		{name: "wire-type mismatch is an unknown field", want: x, in: wrap(cat(varintField(1, 5), pkEntry("a"),
			record(bytesField(1, nil), pkIndex(0), varintField(3, 1), data("x"))))},
		{name: "tags", want: x, in: wrap(cat(pkEntry("a"), record(pkIndex(0), tag(bytesField(1, []byte("k")), bytesField(2, []byte("v"))), data("x"))))},
		{name: "tables after records", in: wrap(cat(record(pkIndex(1), data("1")), pkEntry("a"), pkEntry("b"))),
			want: []Record{{PartitionKey: "b", Data: []byte("1")}}},
		{name: "last value wins", want: x, in: wrap(cat(pkEntry("b"), pkEntry("a"), record(pkIndex(0), data("old"), pkIndex(1), data("x"))))},
		{name: "groups 100 deep", want: x, in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), groups(5, 100, nil)))},
		{name: "groups 101 deep", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x")), groups(5, 101, nil)))},
		{name: "groups 99 deep in a record", want: x, in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x"), groups(5, 99, nil))))},
		{name: "groups 100 deep in a record", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("x"), groups(5, 100, nil))))},

		// Deliberate differences.
		{name: "missing partition key index", in: wrap(cat(pkEntry("a"), record(data("x")))), py: pyDefaults},
		{name: "missing data", in: wrap(cat(pkEntry("a"), record(pkIndex(0)))), py: pyDefaults},
		{name: "zero records", in: wrap(cat(pkEntry("a"), ehkEntry("1"))), py: pyDropsAll},
		{name: "index out of range in the second record", in: wrap(cat(pkEntry("a"), record(pkIndex(0), data("1")), record(pkIndex(7), data("2")))),
			py: pyPrefix, pyCount: 1},
	}
	var req pyRequest
	for _, tt := range tests {
		req.Deaggregate = append(req.Deaggregate, tt.in)
	}
	ans := runPython(t, req)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Deaggregate(tt.in)
			if tt.want != nil {
				if err != nil {
					t.Fatalf("Deaggregate: %v", err)
				}
				if diff := sameRecords(got, tt.want); diff != "" {
					t.Fatal(diff)
				}
			} else if err == nil {
				t.Fatalf("Deaggregate returned %d records, want an error", len(got))
			}

			py := ans.Deaggregated[i]
			var pyRecords []Record
			for _, r := range py {
				if r.Aggregated {
					pyRecords = append(pyRecords, Record{PartitionKey: r.PK, Data: r.Data})
				}
			}
			passedThrough := len(py) == 1 && !py[0].Aggregated && bytes.Equal(py[0].Data, tt.in)
			switch tt.py {
			case agree:
				if tt.want == nil && !passedThrough {
					t.Fatalf("Python did not pass the record through unchanged: %+v", py)
				}
				if tt.want != nil {
					if diff := sameRecords(pyRecords, tt.want); diff != "" || len(pyRecords) != len(py) {
						t.Fatalf("Python's records differ: %s (%d outputs)", diff, len(py))
					}
				}
			case pyDefaults:
				if len(pyRecords) != 1 || len(py) != 1 || pyRecords[0].PartitionKey != "a" {
					t.Fatalf("Python: got %+v, want one record with the defaults filled in", py)
				}
			case pyDropsAll:
				if len(py) != 0 {
					t.Fatalf("Python: got %+v, want nothing", py)
				}
			case pyPrefix:
				if len(py) != tt.pyCount || len(pyRecords) != tt.pyCount {
					t.Fatalf("Python: got %+v, want the first %d records", py, tt.pyCount)
				}
			}
		})
	}
}

// head shortens long byte strings in failure messages.
func head(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
