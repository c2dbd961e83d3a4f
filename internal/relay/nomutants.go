//go:build !faultmutants

package relay

// The real relay: see mutants.go for the deliberate bugs the fault matrix is tested against.

func mutateFailed(failed, _ int) int { return failed }

func deadLetterDoneAtSend() bool { return false }
