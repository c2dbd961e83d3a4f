package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/internal/eventjson"
)

// decodeTimes times the decoding of payload as the function does it (eventjson) and as aws-lambda-go
// would by default (a json.Decoder into the handler's argument type).
func decodeTimes(payload []byte) (fn, std time.Duration, err error) {
	start := time.Now()
	if _, err := eventjson.Decode(payload); err != nil {
		return 0, 0, fmt.Errorf("decode event: %w", err)
	}
	fn = time.Since(start)
	start = time.Now()
	var ev events.KinesisEvent
	if err := json.NewDecoder(bytes.NewReader(payload)).Decode(&ev); err != nil {
		return 0, 0, fmt.Errorf("decode event: %w", err)
	}
	return fn, time.Since(start), nil
}

// Mode is one of the three ways a batch is published.
type Mode int

const (
	ModeCeiling   Mode = iota // bare pulsar-client-go producer
	ModeHandler               // the handler in this process
	ModeBootstrap             // the real bootstrap under the local Runtime API
	numModes
)

func (m Mode) String() string {
	return [...]string{"ceiling", "handler", "bootstrap"}[m]
}

// Cell is the comparison for one batch shape: every round publishes the same batch once per mode,
// the modes in rotating order, so that drift in the machine's state hits all of them alike.
type Cell struct {
	Workload    Workload
	EventBytes  int  // the JSON event Lambda would send
	Deliverable bool // the event fits Lambda's 6 MB payload limit, so the bootstrap runs it
	Durations   [numModes][]time.Duration
	Allocs      [numModes][]Allocs // in-process modes only
	// Decode is the time the function's decoder (eventjson) takes on the event in this process, part
	// of the bootstrap's overhead; DecodeStd is encoding/json's, what aws-lambda-go would spend by
	// default (deliverable batches only).
	Decode, DecodeStd []time.Duration
}

// OverheadMS is the median over the rounds of the bootstrap's duration minus the handler's, in ms.
func (c *Cell) OverheadMS() float64 {
	var d []float64
	for i := range min(len(c.Durations[ModeHandler]), len(c.Durations[ModeBootstrap])) {
		d = append(d, float64(c.Durations[ModeBootstrap][i]-c.Durations[ModeHandler][i])/float64(time.Millisecond))
	}
	return Median(d)
}

// Rounds is the number of complete rounds.
func (c *Cell) Rounds() int { return len(c.Durations[ModeCeiling]) }

// RecordsPerSecond is the median throughput of mode over the rounds.
func (c *Cell) RecordsPerSecond(m Mode) float64 {
	return float64(c.Workload.Records) / Median(Seconds(c.Durations[m]))
}

// MBPerSecond is the median payload throughput of mode (MB = 10^6 bytes).
func (c *Cell) MBPerSecond(m Mode) float64 {
	return float64(c.Workload.PayloadBytes()) / 1e6 / Median(Seconds(c.Durations[m]))
}

// Ratio is the median over the rounds of mode's throughput relative to the ceiling's in the same round.
func (c *Cell) Ratio(m Mode) float64 { return c.pairRatio(ModeCeiling, m) }

// BootstrapOverhead is the median over the rounds of the bootstrap's extra time relative to the
// in-process handler in the same round.
func (c *Cell) BootstrapOverhead() float64 { return 1/c.pairRatio(ModeHandler, ModeBootstrap) - 1 }

func (c *Cell) pairRatio(base, m Mode) float64 { return Median(c.pairRatios(base, m)) }

func (c *Cell) pairRatios(base, m Mode) []float64 {
	n := min(len(c.Durations[base]), len(c.Durations[m]))
	rs := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		rs = append(rs, c.Durations[base][i].Seconds()/c.Durations[m][i].Seconds())
	}
	return rs
}

// RatioIQR is the interquartile range of mode's per-round ratio to the ceiling: how much one round
// says.
func (c *Cell) RatioIQR(m Mode) (p25, p75 float64) {
	rs := c.pairRatios(ModeCeiling, m)
	return Quantile(rs, 0.25), Quantile(rs, 0.75)
}

// LatencyMS returns the q-quantile of mode's batch latency in milliseconds.
func (c *Cell) LatencyMS(m Mode, q float64) float64 { return Quantile(Millis(c.Durations[m]), q) }

// AllocsPerRecord returns the median objects and bytes allocated per record by mode.
func (c *Cell) AllocsPerRecord(m Mode) (objects, bytes float64) {
	var os, bs []float64
	for _, a := range c.Allocs[m] {
		os = append(os, float64(a.Objects)/float64(c.Workload.Records))
		bs = append(bs, float64(a.Bytes)/float64(c.Workload.Records))
	}
	return Median(os), Median(bs)
}

// Publishers are the three sides of the comparison.
type Publishers struct {
	Ceiling  *Ceiling
	Handler  *Handler
	Function *Function // nil: the bootstrap is left out
}

// MatrixOptions bound the rounds of each cell.
type MatrixOptions struct {
	MinRounds, MaxRounds int
	Budget               time.Duration // per cell, after MinRounds
	Progress             func(string)  `json:"-"`
}

// RunCell measures one batch shape.
func RunCell(ctx context.Context, p Publishers, w Workload, o MatrixOptions) (*Cell, error) {
	ev := w.Event()
	msgs, err := Messages(ctx, ev)
	if err != nil {
		return nil, err
	}
	payload, deliverable, err := EventJSON(ev)
	if err != nil {
		return nil, err
	}
	c := &Cell{Workload: w, EventBytes: len(payload), Deliverable: deliverable && p.Function != nil}
	if !deliverable {
		payload = nil // only the bootstrap needs it
	}
	run := func(m Mode) (time.Duration, Allocs, error) {
		switch m {
		case ModeCeiling:
			return Measure(func() (time.Duration, error) { return p.Ceiling.Run(ctx, msgs) })
		case ModeHandler:
			// A deadline, as Lambda gives one: a stuck broker ends the run instead of hanging it.
			runCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			return Measure(func() (time.Duration, error) { return p.Handler.Run(runCtx, ev) })
		default:
			res, err := p.Function.Invoke(ctx, payload)
			return res.Duration, Allocs{}, err
		}
	}
	modes := []Mode{ModeCeiling, ModeHandler}
	if c.Deliverable {
		modes = append(modes, ModeBootstrap)
	}
	// One unmeasured round: producers exist, the broker's code paths and the client's buffers are warm.
	for _, m := range modes {
		if _, _, err := run(m); err != nil {
			return c, fmt.Errorf("%s, warm-up, %s: %w", w.Name, m, err)
		}
	}
	start := time.Now()
	for r := 0; r < o.MaxRounds && (r < o.MinRounds || time.Since(start) < o.Budget); r++ {
		for i := range modes {
			m := modes[(i+r)%len(modes)]
			d, a, err := run(m)
			if err != nil {
				return c, fmt.Errorf("%s, round %d, %s: %w", w.Name, r+1, m, err)
			}
			c.Durations[m] = append(c.Durations[m], d)
			if m != ModeBootstrap {
				c.Allocs[m] = append(c.Allocs[m], a)
			}
		}
		if c.Deliverable {
			fn, std, err := decodeTimes(payload)
			if err != nil {
				return c, fmt.Errorf("%s: %w", w.Name, err)
			}
			c.Decode = append(c.Decode, fn)
			c.DecodeStd = append(c.DecodeStd, std)
		}
	}
	if o.Progress != nil {
		line := fmt.Sprintf("%-34s %3d rounds  ceiling %9.0f rec/s  handler %9.0f rec/s (%5.1f%%)",
			w.Name, c.Rounds(), c.RecordsPerSecond(ModeCeiling), c.RecordsPerSecond(ModeHandler), 100*c.Ratio(ModeHandler))
		if c.Deliverable {
			line += fmt.Sprintf("  bootstrap %9.0f rec/s (%5.1f%%, +%.1f%% over handler)",
				c.RecordsPerSecond(ModeBootstrap), 100*c.Ratio(ModeBootstrap), 100*c.BootstrapOverhead())
		}
		o.Progress(line)
	}
	return c, nil
}
