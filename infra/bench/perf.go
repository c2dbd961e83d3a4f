package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// PerfResult is one run of the Java `pulsar-perf produce`: a stream of messages, not batches.
type PerfResult struct {
	Size     int
	Seconds  int
	Records  int64
	RecPerS  float64
	MbitPerS float64
	Command  string
}

var perfSummary = regexp.MustCompile(`Aggregated throughput stats --- (\d+) records sent --- ([\d.]+) msg/s --- ([\d.]+) Mbit/s`)

// PulsarPerf runs pulsar-perf produce for seconds with the function's batching settings (10 ms, 1,000
// messages, 128 KiB), 10,000 messages outstanding (our pending limit), random keys, no rate limit.
func PulsarPerf(ctx context.Context, pulsarHome, serviceURL, topic, logDir string, size, seconds int) (PerfResult, error) {
	args := []string{"produce", "-u", serviceURL, "-r", "100000000", "-s", strconv.Itoa(size),
		"-time", strconv.Itoa(seconds), "-b", "10", "-bm", "1000", "-bb", "131072", "-o", "10000",
		"-mk", "random", topic}
	bin := filepath.Join(pulsarHome, "bin", "pulsar-perf")
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds+90)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "PULSAR_LOG_DIR="+logDir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	r := PerfResult{Size: size, Seconds: seconds, Command: "pulsar-perf " + joinArgs(args)}
	if err := cmd.Run(); err != nil {
		return r, fmt.Errorf("pulsar-perf: %w\n%s", err, tail(out.Bytes(), 2000))
	}
	m := perfSummary.FindSubmatch(out.Bytes())
	if m == nil {
		return r, fmt.Errorf("pulsar-perf: no summary line in its output:\n%s", tail(out.Bytes(), 2000))
	}
	r.Records, _ = strconv.ParseInt(string(m[1]), 10, 64)
	r.RecPerS, _ = strconv.ParseFloat(string(m[2]), 64)
	r.MbitPerS, _ = strconv.ParseFloat(string(m[3]), 64)
	return r, nil
}

func joinArgs(args []string) string {
	var b bytes.Buffer
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a)
	}
	return b.String()
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
