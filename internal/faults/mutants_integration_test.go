//go:build integration

package faults

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

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
			t.Logf("MUTANT %s caught by %v in %v", m, caughtBy, time.Since(started).Round(time.Second))
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
