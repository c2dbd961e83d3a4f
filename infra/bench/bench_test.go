package bench

import (
	"bytes"
	"encoding/binary"
	"image/png"
	"io"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/streambridge/kinesis-pulsar/infra/runtimeapi"
)

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	if got := Median(xs); got != 3 {
		t.Errorf("median %v", got)
	}
	if got := Quantile(xs, 0.99); math.Abs(got-4.96) > 1e-9 {
		t.Errorf("p99 %v", got)
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	if xs[0] != 5 {
		t.Error("Quantile sorted its argument")
	}
}

// The batches the bootstrap is given must fit Lambda's payload limit, and only just.
func TestBatchesFitLambdaLimit(t *testing.T) {
	for _, w := range []Workload{LargeBatch(), MaxBatch(1024)} {
		payload, ok, err := EventJSON(w.Event())
		if err != nil {
			t.Fatal(err)
		}
		if !ok || len(payload) < runtimeapi.MaxPayloadBytes-64*1024 {
			t.Errorf("%s: event of %d bytes, want just under %d", w.Name, len(payload), runtimeapi.MaxPayloadBytes)
		}
	}
	if w := LargeBatch(); w.Sizes[0] != 1<<20 || w.Sizes[len(w.Sizes)-1] <= 128*1024 {
		t.Errorf("large batch sizes %v: want 1 MiB records, all above the batching limit", w.Sizes)
	}
	// One more record would not fit.
	w := MaxBatch(1024)
	w.Records++
	if _, ok, _ := EventJSON(w.Event()); ok {
		t.Errorf("MaxBatch is not the largest: %d records still fit", w.Records)
	}
}

func TestEventIsReproducible(t *testing.T) {
	w := Workload{Records: 3, Size: 100}
	a, _, _ := EventJSON(w.Event())
	b, _, _ := EventJSON(w.Event())
	if !bytes.Equal(a, b) {
		t.Error("two events of the same workload differ")
	}
}

// lookupResponse builds a LOOKUP_RESPONSE command as a broker sends it.
func lookupResponse(url string) []byte {
	var inner []byte
	inner = protowire.AppendTag(inner, fieldBrokerURL, protowire.BytesType)
	inner = protowire.AppendString(inner, url)
	inner = protowire.AppendTag(inner, 3, protowire.VarintType) // response: Connect
	inner = protowire.AppendVarint(inner, 1)
	inner = protowire.AppendTag(inner, 4, protowire.VarintType) // request_id
	inner = protowire.AppendVarint(inner, 7)
	var cmd []byte
	cmd = protowire.AppendTag(cmd, fieldType, protowire.VarintType)
	cmd = protowire.AppendVarint(cmd, cmdLookupResponse)
	cmd = protowire.AppendTag(cmd, fieldLookupResponse, protowire.BytesType)
	return protowire.AppendBytes(cmd, inner)
}

func TestRewriteLookup(t *testing.T) {
	cmd := lookupResponse("pulsar://127.0.0.1:6650")
	out, err := rewriteLookup(cmd, "pulsar://127.0.0.1:40000")
	if err != nil {
		t.Fatal(err)
	}
	if want := lookupResponse("pulsar://127.0.0.1:40000"); !bytes.Equal(out, want) {
		t.Errorf("rewritten command %x, want %x", out, want)
	}
	typ, _, rest, err := splitFrame(binary.BigEndian.AppendUint32(nil, uint32(len(out))))
	if err == nil {
		t.Errorf("a frame without its command parsed: type %d, rest %x", typ, rest)
	}
}

// The proxy forwards frames both ways, notes their commands and points lookups at itself.
func TestProxy(t *testing.T) {
	broker, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	go func() {
		c, err := broker.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		frame, err := readFrame(c) // the client's command, answered with a lookup response
		if err != nil {
			return
		}
		if _, _, _, err := splitFrame(frame); err != nil {
			return
		}
		_, _ = c.Write(joinFrame(lookupResponse("pulsar://127.0.0.1:6650"), []byte("payload")))
		_, _ = io.Copy(io.Discard, c)
	}()
	p, err := StartProxy(broker.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client, err := net.Dial("tcp", strings.TrimPrefix(p.ServiceURL(), "pulsar://"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var lookup []byte
	lookup = protowire.AppendTag(lookup, fieldType, protowire.VarintType)
	lookup = protowire.AppendVarint(lookup, cmdLookup)
	if _, err := client.Write(joinFrame(lookup, nil)); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	frame, err := readFrame(client)
	if err != nil {
		t.Fatal(err)
	}
	typ, cmd, rest, err := splitFrame(frame)
	if err != nil || typ != cmdLookupResponse || string(rest) != "payload" {
		t.Fatalf("answer type %d rest %q: %v", typ, rest, err)
	}
	if !bytes.Equal(cmd, lookupResponse(p.ServiceURL())) {
		t.Errorf("the lookup answer does not name the proxy: %x", cmd)
	}
	var types []int
	for _, e := range p.Events() {
		types = append(types, e.Type)
	}
	if len(types) != 3 || types[0] != eventAccept || types[1] != cmdLookup || types[2] != cmdLookupResponse {
		t.Errorf("events %v", types)
	}
}

func TestCostPoint(t *testing.T) {
	p := CostPoint{MemoryMB: 128, Workload: Workload{Records: 1000},
		Durations: []time.Duration{9200 * time.Microsecond, 10 * time.Millisecond}}
	if got := p.MeanBilledMS(); got != 10 {
		t.Errorf("billed %v ms, want each invocation rounded up to 10 ms", got)
	}
	// 1,000 invocations of 0.125 GB for 10 ms, plus 1,000 requests.
	want := 1000 * (0.125*0.010*LambdaArmGBSecond + LambdaRequest)
	if got := p.USDPerMillionRecords(); math.Abs(got-want) > 1e-12 {
		t.Errorf("$%v per million records, want $%v", got, want)
	}
	if CPUShare(128) >= 0.073 || CPUShare(1769) != 1 || CPUShare(3008) != 1 {
		t.Errorf("shares %v %v %v", CPUShare(128), CPUShare(1769), CPUShare(3008))
	}
}

func TestChart(t *testing.T) {
	var buf bytes.Buffer
	err := Chart(&buf, "title", "subtitle", []ChartPanel{{Title: "p", Unit: "records/s", Groups: []string{"100", "1000"},
		Values: [][numModes]float64{{100, 95, math.NaN()}, {1000, 930, 800}}}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 300 {
		t.Errorf("chart of %v", b)
	}
	if err := Chart(io.Discard, "", "", []ChartPanel{{Title: "empty"}}); err == nil {
		t.Error("a panel without groups was drawn")
	}
}

func TestNiceTicks(t *testing.T) {
	for _, c := range []struct {
		max   float64
		step  float64
		ticks int
	}{{180000, 50000, 4}, {93, 20, 5}, {1, 0.2, 5}} {
		step, ticks := niceTicks(c.max)
		if math.Abs(step-c.step) > 1e-9 || ticks != c.ticks {
			t.Errorf("niceTicks(%v) = %v, %d; want %v, %d", c.max, step, ticks, c.step, c.ticks)
		}
	}
}

func TestSymbolGroup(t *testing.T) {
	for sym, want := range map[string]string{
		"github.com/apache/pulsar-client-go/pulsar.(*producer).SendAsync":       "pulsar-client-go",
		"github.com/streambridge/kinesis-pulsar/internal/relay.(*Relay).Handle": "kinesis-pulsar (our code)",
		"runtime.mallocgc":                                 "Go runtime",
		"encoding/json.Unmarshal":                          "standard library",
		"type:.eq.github.com/aws/aws-sdk-go-v2/aws.Config": "aws-sdk-go-v2 (DynamoDB, Secrets Manager)",
	} {
		if got := symbolGroup(sym); got != want {
			t.Errorf("symbolGroup(%q) = %q, want %q", sym, got, want)
		}
	}
}
