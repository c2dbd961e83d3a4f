package relay

// Unexported names the external tests (package relay_test) check against.
var (
	Permanent        = permanent
	ErrUnroutable    = errUnroutable
	ErrNoPublishTime = errNoPublishTime
)

const MaxResponseReserve = maxResponseReserve
