package localenv

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// ClockShiftVariable names the days by which the local stack's clock runs ahead of the real one. It is
// set by infra/local/clockshift.sh, which starts a DynamoDB Local under libfaketime that many days ahead
// and runs the time-sensitive suites against it. libfaketime cannot shift a Go process (the runtime
// reads the clock through the vDSO, not libc), so Go code reads the shifted clock through Now.
const ClockShiftVariable = "KP_CLOCK_SHIFT_DAYS"

// Now is the local stack's clock: the real time plus KP_CLOCK_SHIFT_DAYS days. Tests derive every instant
// that a server compares with its own clock (TTL attributes, token lifetimes) from it, never from a
// fixed date, so they hold whenever they run and whatever the servers' clock says.
func Now() time.Time { return time.Now().Add(ClockShift()) }

// ClockShift returns KP_CLOCK_SHIFT_DAYS as a duration; zero when unset. A value that is not a whole
// number of days panics: a shifted run that silently ran unshifted would prove nothing.
func ClockShift() time.Duration {
	v := os.Getenv(ClockShiftVariable)
	if v == "" {
		return 0
	}
	days, err := strconv.Atoi(v)
	if err != nil {
		panic(fmt.Sprintf("localenv: %s=%q: want a whole number of days", ClockShiftVariable, v))
	}
	return time.Duration(days) * 24 * time.Hour
}
