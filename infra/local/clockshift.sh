#!/usr/bin/env bash
# clockshift.sh DAYS COMMAND...: runs COMMAND against a DynamoDB Local whose clock runs DAYS days ahead
# of the real one (libfaketime), so that a test writing a fixed instant that has passed by then (a TTL
# attribute a week after a date in a test) fails today instead of on that date.
#
# The rest of the local stack must be running (make local-up, or inside make test) and its env file
# exported; COMMAND gets AWS_ENDPOINT_URL_DYNAMODB of the shifted server and KP_CLOCK_SHIFT_DAYS=DAYS,
# which Go tests read through localenv.Now (libfaketime cannot shift a Go process: the runtime reads the
# clock through the vDSO, not libc). The shifted server lives in .cache/run/clock+DAYSd and is stopped
# at the end, whatever COMMAND did.
set -euo pipefail

# shellcheck disable=SC2034 # used by lib.sh
PROG="clockshift.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# >= 2)) && [[ $1 =~ ^[0-9]+$ ]] || {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}
days=$1
shift

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run="$KP_CACHE/run/clock+${days}d"
# Started beside a busy stack; a 2-core machine running the test suites needs more than the usual 30 s.
export KP_SERVER_TIMEOUT=${KP_SERVER_TIMEOUT:-120}
tokens=$(env -u AWS_ENDPOINT_URL_DYNAMODB KP_RUN_DIR="$run" KP_DYNAMODB_PORT="$port" KP_CLOCK_SHIFT_DAYS="$days" \
  "$KP_LOCAL/stack.sh" ensure dynamodb)
status=0
trap 'status=130' INT TERM
AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port" KP_CLOCK_SHIFT_DAYS="$days" "$@" || status=$?
# shellcheck disable=SC2086 # the tokens are words
KP_RUN_DIR="$run" "$KP_LOCAL/stack.sh" release $tokens || { ((status)) || status=1; }
exit $status
