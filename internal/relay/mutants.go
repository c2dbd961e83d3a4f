//go:build faultmutants

package relay

import "os"

// Mutants are deliberate bugs that the fault matrix must catch (tests/faults, TestMutantsAreCaught
// runs it against each): built only with the faultmutants tag, selected by KP_RELAY_MUTANT.
var mutant = os.Getenv("KP_RELAY_MUTANT")

// mutateFailed is the index of the record the response names (-1: none).
func mutateFailed(failed, records int) int {
	switch {
	case mutant == "report-after-unconfirmed" && failed >= 0:
		// Names the record after the first one not done: that one is acknowledged unconfirmed.
		if failed++; failed == records {
			return -1
		}
	case mutant == "empty-response-last-unconfirmed" && failed == records-1:
		return -1
	}
	return failed
}

// deadLetterDoneAtSend counts a dead-letter attempt as done before its receipt.
func deadLetterDoneAtSend() bool { return mutant == "dead-letter-done-at-send" }
