//go:build integration

package faults

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streambridge/kinesis-pulsar/infra/localenv"
)

// The relay's mutants (internal/relay/mutants.go, built with the faultmutants tag): each breaks the
// promise in a way the checker must see.
var mutants = []string{
	"report-after-unconfirmed",        // names the record after the first one not done
	"empty-response-last-unconfirmed", // answers success while the last record is not confirmed
	"dead-letter-done-at-send",        // counts a dead letter as done before its receipt
}

// The fault matrix can fail: run against each mutant of the relay, it must find a violation of the
// invariant. Each run is a separate go test process, built with the faultmutants tag, stopping at its
// first failed scenario.
func TestMutantsAreCaught(t *testing.T) {
	localenv.Require(t)
	if os.Getenv("KP_RELAY_MUTANT") != "" {
		t.Skip("this process runs the matrix against a mutant")
	}
	failedScenario := regexp.MustCompile(`--- FAIL: TestFaults/(\S+)`)
	for _, m := range mutants {
		t.Run(m, func(t *testing.T) {
			started := time.Now()
			cmd := exec.Command("go", "test", "-tags", "integration,faultmutants", "-run", "^TestFaults$",
				"-failfast", "-count=1", "-timeout", "20m", ".")
			cmd.Env = append(os.Environ(), "KP_RELAY_MUTANT="+m)
			out, err := cmd.CombinedOutput()
			var caughtBy []string
			for _, sm := range failedScenario.FindAllSubmatch(out, -1) {
				caughtBy = append(caughtBy, string(sm[1]))
			}
			if err == nil || !bytes.Contains(out, []byte("INVARIANT VIOLATED")) || len(caughtBy) == 0 {
				t.Fatalf("mutant %s survived the fault matrix (%v):\n%s", m, err, tail(out, 60))
			}
			_, violations, _ := bytes.Cut(out, []byte("INVARIANT VIOLATED"))
			t.Logf("MUTANT %s caught by %v in %v:%s", m, caughtBy, time.Since(started).Round(time.Second),
				bytes.Join(bytes.SplitN(violations, []byte("\n"), 4)[:3], []byte("\n")))
		})
	}
}

// tail is the last n lines of out.
func tail(out []byte, n int) []byte {
	lines := bytes.Split(out, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, []byte("\n"))
}

// The checker itself: a record acknowledged done whose receipt came after the response, or never, is
// a violation even when the record ends up in Pulsar (a warm producer's resend); one confirmed before
// the response is not.
func TestCheckerWantsTheReceiptBeforeTheResponse(t *testing.T) {
	returned := time.Now()
	for _, tc := range []struct {
		name    string
		receipt time.Duration // relative to the response; 0: none
		want    string
	}{
		{"before the response", -time.Millisecond, ""},
		{"after the response", time.Millisecond, "after the response"},
		{"never", 0, "no broker receipt when it returned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLedger(t, nil, "persistent://public/default/checker", "", batchSpec{stream: "checker", n: 3, size: 16})
			c := &countingProducers{}
			// Receipts for records 0 and 2 before the response; record 1's as the case says.
			c.first = map[string]time.Time{
				receiptKey(l.shardID, l.records[0].Kinesis.SequenceNumber, ""): returned.Add(-time.Millisecond),
				receiptKey(l.shardID, l.records[2].Kinesis.SequenceNumber, ""): returned.Add(-time.Millisecond),
			}
			if tc.receipt != 0 {
				c.first[receiptKey(l.shardID, l.records[1].Kinesis.SequenceNumber, "")] = returned.Add(tc.receipt)
			}
			l.apply(0, outcome{resp: events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}, returned: returned, receipts: c})
			got := strings.Join(l.violations, "\n")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("violations %q, want one saying %q", got, tc.want)
			}
		})
	}
}
