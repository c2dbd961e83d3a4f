// Command gen-events writes the sample Kinesis events in events/: batches as Lambda delivers them,
// for `sam local invoke -e`, the Docker-less invoke and the docs. The files are deterministic (fixed
// sequence numbers and arrival times); a test regenerates them and fails when the committed files
// differ, so rerun this after changing it:
//
//	go run ./infra/cmd/gen-events [-out events]
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/internal/kpl"
	"github.com/streambridge/kinesis-pulsar/tests/kinesistest"
)

// stream is the stream every sample reads, the name in the connector's configuration example.
const stream = "my-stream"

// sample is one events/ file.
type sample struct {
	file  string
	build func() (events.KinesisEvent, error)
}

var samples = []sample{
	{"quickstart-kpl.json", quickstartKPL},
	{"several-keys.json", severalKeys},
	{"binary.json", binary},
	{"record-to-fail.json", recordToFail},
}

// quickstartKPL is the Pulsar IO Kinesis source's quick start: ten records "test-kinesis-data" with key
// myPartitionKey, sent through the KPL, which packs them into one aggregated Kinesis record.
func quickstartKPL() (events.KinesisEvent, error) {
	users := make([]kpl.Record, 10)
	for i := range users {
		users[i] = kpl.Record{PartitionKey: "myPartitionKey", Data: []byte("test-kinesis-data")}
	}
	rec, err := kinesistest.NewShard(stream, 0).Aggregate(users)
	if err != nil {
		return events.KinesisEvent{}, fmt.Errorf("quick start aggregate: %w", err)
	}
	return kinesistest.Event(rec), nil
}

// severalKeys is a plain batch of JSON orders under three partition keys, interleaved, so per-key
// order can be followed on the Pulsar side.
func severalKeys() (events.KinesisEvent, error) {
	shard := kinesistest.NewShard(stream, 1)
	customers := []string{"customer-17", "customer-42", "customer-99"}
	var recs []events.KinesisEventRecord
	for i := range 6 {
		key := customers[i%len(customers)]
		data := fmt.Sprintf(`{"orderId":%d,"customer":%q,"amount":%d.%02d}`, 1001+i, key, 10+7*i, (13*i)%100)
		recs = append(recs, shard.Record(key, []byte(data)))
	}
	return kinesistest.Event(recs...), nil
}

// binaryPayloads are not UTF-8 text: the connector alters such bytes (anchors.md), the function must
// not. The last one starts with the KPL magic but is too short to be an aggregate, so it is published
// as it is.
var binaryPayloads = []struct {
	key  string
	data []byte
}{
	// A gzip member header (magic, deflate, no flags, mtime 0, OS unknown) and the start of a stream.
	{"gzip", []byte{0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x2b, 0x49, 0x2d, 0x2e, 0x01, 0x00}},
	// A protobuf message: field 1 varint 150, field 2 bytes {0xff, 0xfe, 0x00}.
	{"protobuf", []byte{0x08, 0x96, 0x01, 0x12, 0x03, 0xff, 0xfe, 0x00}},
	// Every byte value once.
	{"all-bytes", allBytes()},
	// Invalid UTF-8: a lone continuation byte, an overlong encoding, a truncated sequence.
	{"invalid-utf8", []byte{'a', 0x80, 'b', 0xc0, 0xaf, 'c', 0xe2, 0x82}},
	{"kpl-magic-only", append(kpl.Magic[:], 0x01, 0x02, 0x03)},
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func binary() (events.KinesisEvent, error) {
	shard := kinesistest.NewShard(stream, 2)
	var recs []events.KinesisEventRecord
	for _, p := range binaryPayloads {
		recs = append(recs, shard.Record(p.key, p.data))
	}
	return kinesistest.Event(recs...), nil
}

// failIndex is the record of record-to-fail.json that cannot be routed.
const failIndex = 2

// recordToFail is a batch of five records where the middle one has an eventSourceARN that names no
// stream. With events/env.json (PULSAR_TOPIC holds {stream}, no DEAD_LETTER_TOPIC) it has no topic,
// so the function reports it as the batch item failure and Lambda retries from it. Lambda itself
// never sends such an ARN: the record is doctored to show the failure path without a broker fault.
func recordToFail() (events.KinesisEvent, error) {
	shard := kinesistest.NewShard(stream, 3)
	var recs []events.KinesisEventRecord
	for i := range 5 {
		recs = append(recs, shard.Record(fmt.Sprintf("key-%d", i), []byte(fmt.Sprintf("record %d", i))))
	}
	recs[failIndex].EventSourceArn = "arn:aws:kinesis:" + kinesistest.Region + ":" + kinesistest.Account + ":no-stream-here"
	return kinesistest.Event(recs...), nil
}

// generate returns every sample file's name and content.
func generate() (map[string][]byte, error) {
	files := make(map[string][]byte, len(samples))
	for _, s := range samples {
		ev, err := s.build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.file, err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ev); err != nil {
			return nil, fmt.Errorf("%s: encoding: %w", s.file, err)
		}
		files[s.file] = buf.Bytes()
	}
	return files, nil
}

func main() {
	out := flag.String("out", "events", "directory to write the sample events to")
	flag.Parse()
	files, err := generate()
	if err != nil {
		log.Fatal(err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(*out, name)
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			log.Fatalf("writing %s: %v", path, err)
		}
		fmt.Println("wrote", path)
	}
}
