package eventjson

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/internal/kpl"
	"github.com/streambridge/kinesis-pulsar/tests/kinesistest"
)

// The fast path must know every field encoding/json fills: a field it skipped would differ.
func TestKeysMatchTheEventTypes(t *testing.T) {
	tags := func(v any) []string {
		var out []string
		typ := reflect.TypeOf(v)
		for i := 0; i < typ.NumField(); i++ {
			out = append(out, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		typ  any
		keys []string
	}{
		{events.KinesisEvent{}, []string{"Records"}},
		{events.KinesisEventRecord{}, recordKeys},
		{events.KinesisRecord{}, kinesisKeys},
	} {
		want := slices.Sorted(slices.Values(tc.keys))
		if got := tags(tc.typ); !slices.Equal(got, want) {
			t.Errorf("%T has fields %v, the decoder knows %v", tc.typ, got, want)
		}
	}
}

// lambdaJSON marshals an event as Lambda sends it (aws-lambda-go's marshalling is Lambda's shape).
func lambdaJSON(t testing.TB, ev events.KinesisEvent) []byte {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func generated(t testing.TB, records, size int) []byte {
	t.Helper()
	shard := kinesistest.NewShard("stream", 3)
	var ev events.KinesisEvent
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 31)
	}
	for i := 0; i < records; i++ {
		ev.Records = append(ev.Records, shard.Record(fmt.Sprintf("key-%d", i%17), data))
	}
	agg, err := shard.Aggregate([]kpl.Record{{PartitionKey: "a", Data: []byte("x")}, {PartitionKey: "b", Data: nil}})
	if err != nil {
		t.Fatal(err)
	}
	ev.Records = append(ev.Records, agg, shard.Record("empty", []byte{}))
	return lambdaJSON(t, ev)
}

// cases are canonical events (fast: the fast path must take them) and hostile ones.
func cases(t testing.TB) []struct {
	name    string
	payload string
	fast    bool
} {
	t.Helper()
	out := []struct {
		name    string
		payload string
		fast    bool
	}{
		{"generated", string(generated(t, 50, 100)), true},
		{"pretty", strings.ReplaceAll(string(generated(t, 3, 10)), ",", ",\n\t "), true},
		{"empty records", `{"Records":[]}`, true},
		{"no records", `{}`, true},
		{"unknown fields", `{"x":{"a":[1,-2.5e3,true,false,null,"s",{}]},"Records":[{"kinesis":{"data":"aGk=","extra":[]},"other":"o"}]}`, true},
		{"trailing bytes", `{"Records":[]} garbage`, true},
		{"escaped string", `{"Records":[{"eventID":"shardId-0:1\u0031","kinesis":{"data":"aGk="}}]}`, false},
		{"escaped slash in data", `{"Records":[{"kinesis":{"data":"a\/k="}}]}`, false},
		{"null records", `{"Records":null}`, false},
		{"null record", `{"Records":[null]}`, false},
		{"null data", `{"Records":[{"kinesis":{"data":null}}]}`, false},
		{"null string", `{"Records":[{"eventID":null}]}`, false},
		{"case-folded key", `{"records":[{"kinesis":{"data":"aGk="}}]}`, false},
		{"case-folded field", `{"Records":[{"EventID":"x"}]}`, false},
		{"kelvin sign", `{"Records":[{"` + "\u212a" + `inesis":{"data":"aGk="}}]}`, false},
		{"duplicate key", `{"Records":[{"eventID":"a","eventID":"b"}]}`, false},
		{"duplicate records", `{"Records":[],"Records":[{"eventID":"b"}]}`, false},
		{"bad base64", `{"Records":[{"kinesis":{"data":"!!!"}}]}`, false},
		{"base64 without padding", `{"Records":[{"kinesis":{"data":"aGk"}}]}`, false},
		{"raw newline in data", "{\"Records\":[{\"kinesis\":{\"data\":\"aG\nk=\"}}]}", false},
		{"four raw newlines in data", "{\"Records\":[{\"kinesis\":{\"data\":\"aG\r\n\r\nk=\"}}]}", false},
		{"escaped quote in data", `{"Records":[{"kinesis":{"data":"aG\"k="}}]}`, false},
		{"invalid utf-8", "{\"Records\":[{\"kinesis\":{\"partitionKey\":\"\xff\"}}]}", false},
		{"invalid utf-8 in an unknown field", "{\"Records\":[{\"partitionKey\":\"\xff\"}]}", true},
		{"valid utf-8", `{"Records":[{"kinesis":{"partitionKey":"clé-🔑"}}]}`, true},
		{"control character", "{\"Records\":[{\"eventID\":\"a\tb\"}]}", false},
		{"string timestamp", `{"Records":[{"kinesis":{"approximateArrivalTimestamp":"1"}}]}`, false},
		{"timestamp forms", `{"Records":[{"kinesis":{"approximateArrivalTimestamp":1545084650.987}},{"kinesis":{"approximateArrivalTimestamp":-0.5e-3}},{"kinesis":{"approximateArrivalTimestamp":0}}]}`, true},
		{"huge timestamp", `{"Records":[{"kinesis":{"approximateArrivalTimestamp":1e999}}]}`, false},
		{"leading zero", `{"Records":[{"kinesis":{"approximateArrivalTimestamp":01}}]}`, false},
		{"truncated", `{"Records":[{"kinesis":{"data":"aGk=`, false},
		{"array", `[]`, false},
		{"empty", ``, false},
		{"records not an array", `{"Records":{}}`, false},
		{"nested to the limit", nested(maxDepth - 1), true},
		{"nested past the limit", nested(maxDepth), false},
		{"nested far past the limit", nested(10 * maxDepth), false},
		{"record nested to the limit", `{"Records":[{"x":` + strings.Repeat("[", maxDepth-3) + strings.Repeat("]", maxDepth-3) + `}]}`, true},
		{"record nested past the limit", `{"Records":[{"x":` + strings.Repeat("[", maxDepth-2) + strings.Repeat("]", maxDepth-2) + `}]}`, false},
	}
	files, _ := filepath.Glob("../../events/*.json")
	for _, f := range files {
		if filepath.Base(f) == "env.json" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, struct {
			name    string
			payload string
			fast    bool
		}{filepath.Base(f), string(b), true})
	}
	return out
}

// nested is an event with an unknown field nesting n arrays and objects inside the event object.
func nested(n int) string {
	open, closing := strings.Repeat(`[{"a":`, n/2), strings.Repeat(`}]`, n/2)
	if n%2 == 1 {
		open, closing = open+"[", "]"+closing
	}
	return `{"x":` + open + `1` + closing + `,"Records":[]}`
}

// encoding/json rejects nesting deeper than 10,000; so must Decode, with a bounded stack: 6 MB of '['
// (Lambda's payload limit) used to grow the parser's goroutine stack to 256 MiB.
func TestDeepNesting(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(64 << 20)) // past it the test binary dies: stack overflow
	for _, payload := range []string{`{"x":` + strings.Repeat("[", 6<<20), `{"x":` + strings.Repeat(`{"a":`, 1<<20), nested(maxDepth + 1)} {
		_, err := Decode([]byte(payload))
		if err == nil || !strings.Contains(err.Error(), "exceeded max depth") {
			t.Errorf("%.20s... (%d bytes): error %v, want encoding/json's \"exceeded max depth\"", payload, len(payload), err)
		}
	}
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, tc := range cases(t) {
		t.Run(tc.name, func(t *testing.T) {
			_, fast := decodeFast([]byte(tc.payload))
			if fast != tc.fast {
				t.Errorf("fast path taken = %v, want %v", fast, tc.fast)
			}
			same(t, []byte(tc.payload))
		})
	}
}

// same checks Decode against encoding/json.
func same(t *testing.T, payload []byte) {
	t.Helper()
	want, wantErr := decodeStd(payload)
	got, err := Decode(payload)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("error %v, encoding/json says %v", err, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded differently from encoding/json:\n got %+v\nwant %+v", got, want)
	}
}

func FuzzDecode(f *testing.F) {
	for _, tc := range cases(f) {
		f.Add([]byte(tc.payload))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev, fast := decodeFast(payload)
		if !fast {
			return // encoding/json itself decides; Decode is decodeStd then
		}
		want, err := decodeStd(payload)
		if err != nil {
			t.Fatalf("fast path accepted what encoding/json rejects (%v)", err)
		}
		if !reflect.DeepEqual(ev, want) {
			t.Fatalf("decoded differently from encoding/json:\n got %+v\nwant %+v", ev, want)
		}
	})
}

func TestHandler(t *testing.T) {
	var seen events.KinesisEvent
	h := Handler(func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		seen = ev
		return events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{{ItemIdentifier: "42"}}}, nil
	})
	out, err := h.Invoke(context.Background(), generated(t, 2, 4))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"batchItemFailures":[{"itemIdentifier":"42"}]}` || len(seen.Records) != 4 {
		t.Errorf("response %s, %d records seen", out, len(seen.Records))
	}
	if _, err := h.Invoke(context.Background(), []byte(`{"Records":[{"kinesis":{"data":"!"}}]}`)); err == nil {
		t.Error("undecodable event: no error")
	}
}

func benchmarkDecode(b *testing.B, decode func([]byte) (events.KinesisEvent, error), records, size int) {
	payload := generated(b, records, size)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, shape := range []struct{ records, size int }{{100, 100}, {1000, 1024}, {100, 10240}} {
		name := fmt.Sprintf("%dx%dB", shape.records, shape.size)
		b.Run(name+"/eventjson", func(b *testing.B) { benchmarkDecode(b, Decode, shape.records, shape.size) })
		b.Run(name+"/encoding_json", func(b *testing.B) { benchmarkDecode(b, decodeStd, shape.records, shape.size) })
	}
}
