#!/usr/bin/env bash
# The local stack of kinesis-pulsar: Pulsar standalone, DynamoDB Local and moto, on 127.0.0.1 only.
#
#   stack.sh install   install what is missing into .cache/ (Pulsar 4.0.8, DynamoDB Local 3.3.1, the venv)
#   stack.sh up        install, start the servers fresh (empty data; a running stack is restarted), wait until
#                      each really answers, write .cache/run/env
#   stack.sh down      stop every server this stack started (extra test brokers too); idempotent
#   stack.sh status    one line per server
#   stack.sh ensure [pulsar|dynamodb|moto]...
#                      install what is missing, start only the named servers (default: all) that are not
#                      running, leave running ones alone, wait until each answers, write .cache/run/env if
#                      missing (or stale for what it started); prints one line on stdout naming what it
#                      started (for release)
#   stack.sh release [TOKEN]...
#                      stop what an ensure started, given its output line; a server restarted by someone
#                      else since (another pid) is left running; no tokens: nothing to do
#
# Environment:
#   KP_CACHE_DIR       cache root instead of <repo>/.cache (downloads, installs, run/ with pids, logs, data)
#   PULSAR_SERVICE_URL (and PULSAR_ADMIN_URL), AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB: when set, that
#                      server is not started and the given value goes into the env file.
#   KP_PULSAR_TIMEOUT, KP_SERVER_TIMEOUT: readiness waits in seconds (120 for Pulsar, 30 for the others).
#   KP_PULSAR_PORT, KP_PULSAR_WEB_PORT, KP_DYNAMODB_PORT, KP_MOTO_PORT: ports for ensure only (default 6650,
#                      8080, 8000, 5000); with KP_CACHE_DIR they let a second stack run beside the usual one.
#
# .cache/run/env (KEY=value lines; `set -a; . .cache/run/env`): PULSAR_SERVICE_URL, PULSAR_ADMIN_URL,
# AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# PULSAR_HOME (the unpacked Pulsar distribution), KP_VENV (the Python venv). See infra/local/README.md.
set -euo pipefail

# shellcheck disable=SC2034 # used by lib.sh
PROG="stack.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PULSAR_SH="$KP_LOCAL/pulsar.sh"
ENV_FILE="$KP_RUN/env"
DYNAMODB_PORT=8000
MOTO_PORT=5000
PULSAR_TIMEOUT=${KP_PULSAR_TIMEOUT:-120}
SERVER_TIMEOUT=${KP_SERVER_TIMEOUT:-30}

DYNAMODB_PID="$KP_RUN/dynamodb.pid"
DYNAMODB_LOG="$KP_RUN/dynamodb.log"
DYNAMODB_MARKER="-Dkp.instance=$KP_RUN/dynamodb "
MOTO_PID="$KP_RUN/moto.pid"
MOTO_LOG="$KP_RUN/moto.log"
MOTO_MARKER="$KP_VENV/bin/moto_server "

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# A fake SigV4 header: DynamoDB Local and moto want one (they do not check the signature) and read the
# region and the service from its credential scope.
sigv4_header() { printf 'Authorization: AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/%s/aws4_request, SignedHeaders=host, Signature=0' "$1"; }

# ---- install ----------------------------------------------------------------------------------------------

# ensure_pulsar_cds: records the class-data-sharing archive of Pulsar with one broker start and stop, so
# that even the first broker of a fresh install starts fast (about 4 s instead of 8-15 s here). Not fatal:
# brokers also run without it, and the first one that stops cleanly records it then.
ensure_pulsar_cds() {
  [[ -s $(pulsar_cds_archive) ]] && return 0
  local ports start
  start=$(now_ms)
  info "recording Pulsar's class-data-sharing archive (one broker start and stop)"
  read -r -a ports <<<"$(free_ports 2)"
  if "$PULSAR_SH" start --name cds-training --broker-port "${ports[0]}" --web-port "${ports[1]}" >"$KP_CACHE/pulsar/cds-training.log" 2>&1; then
    "$PULSAR_SH" stop --name cds-training
  else
    "$PULSAR_SH" stop --name cds-training || true
  fi
  rm -rf "$KP_RUN/pulsar-cds-training" "$KP_RUN"/pulsar-cds-training.*
  if [[ -s $(pulsar_cds_archive) ]]; then
    info "class-data-sharing archive recorded in $(elapsed "$start")s"
  else
    info "warning: no class-data-sharing archive recorded (see $KP_CACHE/pulsar/cds-training.log); brokers start without it"
  fi
}

install_all() {
  local with_dynamodb=$1
  install_pulsar
  ensure_pulsar_cds
  if ((with_dynamodb)); then install_dynamodb; fi
  if [[ -n ${KP_CLOCK_SHIFT_DAYS:-} ]]; then install_faketime; fi
  install_venv
}

cmd_install() {
  local start
  start=$(now_ms)
  need_java
  with_install_lock install_all 1
  info "installed in $(elapsed "$start")s: Pulsar $PULSAR_VERSION ($KP_PULSAR_HOME), DynamoDB Local $DYNAMODB_VERSION ($KP_DYNAMODB_HOME), venv ($KP_VENV)"
}

# ---- servers ----------------------------------------------------------------------------------------------

start_dynamodb() {
  : >"$DYNAMODB_LOG"
  # LoopbackServer: DynamoDB Local's own main with the listener pinned to 127.0.0.1 (it has no such option).
  (
    cd "$KP_RUN"
    # KP_CLOCK_SHIFT_DAYS (clockshift.sh): the server's clock runs that many days ahead, TTL sweeper
    # included. The monotonic clock moves by the same constant, which timers never notice; leaving it
    # real (FAKETIME_DONT_FAKE_MONOTONIC) makes the JVM's timed waits take seconds each.
    local faketime=()
    if [[ -n ${KP_CLOCK_SHIFT_DAYS:-} ]]; then
      faketime=(env "LD_PRELOAD=$KP_FAKETIME_LIB" "FAKETIME=+${KP_CLOCK_SHIFT_DAYS}d")
    fi
    exec "${faketime[@]}" java -Xms64m -Xmx1g -XX:+UseSerialGC -Dkp.instance="$KP_RUN/dynamodb" -Djava.net.preferIPv4Stack=true \
      -Djava.library.path="$KP_DYNAMODB_HOME/lib" -cp "$KP_DYNAMODB_HOME/classes:$KP_DYNAMODB_HOME/lib/*" \
      -Dkp.bind=127.0.0.1 LoopbackServer -inMemory -disableTelemetry -port "$DYNAMODB_PORT"
  ) </dev/null >>"$DYNAMODB_LOG" 2>&1 &
  printf '%s\n' "$!" >"$DYNAMODB_PID"
}

dynamodb_ready() {
  curl -sS --max-time 5 -X POST -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: DynamoDB_20120810.ListTables' -H "$(sigv4_header dynamodb)" -d '{}' \
    "http://127.0.0.1:$DYNAMODB_PORT/" 2>/dev/null | grep -q '"TableNames"'
}

start_moto() {
  : >"$MOTO_LOG"
  (
    cd "$KP_RUN"
    # infra/local/moto/sitecustomize.py makes moto's Kinesis safe under concurrent PutRecords.
    PYTHONPATH="$KP_LOCAL/moto${PYTHONPATH:+:$PYTHONPATH}" exec "$KP_VENV/bin/python" "$KP_VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
  ) </dev/null >>"$MOTO_LOG" 2>&1 &
  printf '%s\n' "$!" >"$MOTO_PID"
}

# A real Secrets Manager call, which also loads that backend before the first test needs it.
moto_ready() {
  curl -sS --max-time 5 -X POST -H 'Content-Type: application/x-amz-json-1.1' \
    -H 'X-Amz-Target: secretsmanager.ListSecrets' -H "$(sigv4_header secretsmanager)" -d '{}' \
    "http://127.0.0.1:$MOTO_PORT/" 2>/dev/null | grep -q '"SecretList"'
}

# wait_server LABEL PIDFILE MARKER LOG READY_FN TIMEOUT_S START_MS: polls READY_FN; on failure prints one line
# with the server, its log and what to do, and returns 1.
wait_server() {
  local label=$1 pidfile=$2 marker=$3 log=$4 ready=$5 timeout=$6 start=$7 pid
  pid=$(tr -dc '0-9' <"$pidfile")
  while ! "$ready"; do
    if [[ ! -e /proc/$pid ]]; then
      tail_log "$log" 6
      info "error: $label exited during start-up; read $log, fix the cause and run 'make local-up' again"
      rm -f "$pidfile"
      return 1
    fi
    if (($(now_ms) - start > timeout * 1000)); then
      tail_log "$log" 6
      info "error: $label not ready after ${timeout}s; read $log, then retry (KP_SERVER_TIMEOUT raises the wait)"
      return 1
    fi
    sleep 0.2
  done
  info "$label ready in $(elapsed "$start")s (pid $pid, log $log)"
}

stop_servers() {
  local pids=()
  "$PULSAR_SH" stop-all &
  pids+=($!)
  stop_pid dynamodb "$DYNAMODB_PID" "$DYNAMODB_MARKER" 10 &
  pids+=($!)
  stop_pid moto "$MOTO_PID" "$MOTO_MARKER" 10 &
  pids+=($!)
  local p rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return "$rc"
}

# ---- ensure and release (make demo, make invoke) ----------------------------------------------------------
#
# ensure starts only what is missing, so that a demo can run beside a stack others use, and prints what it
# started as tokens (pulsar=PID dynamodb=PID moto=PID env); release stops exactly those, and only while the
# recorded pid is still the server's: a server someone restarted since (make test, stack.sh up) is theirs.

PULSAR_DEFAULT_PID="$KP_RUN/pulsar-default.pid"
PULSAR_DEFAULT_MARKER="-Dkp.instance=$KP_RUN/pulsar-default "

pulsar_default_pid() { pid_of_ours "$PULSAR_DEFAULT_PID" "$PULSAR_DEFAULT_MARKER"; }

# pulsar_default_port KEY DEFAULT: a port the running default broker was started with (its merged
# settings, written by pulsar.sh), which may differ from the ports asked for now.
pulsar_default_port() {
  local v
  v=$(sed -n "s/^$1=\([0-9]*\)$/\1/p" "$KP_RUN/pulsar-default.conf" 2>/dev/null | tail -n1)
  printf '%s\n' "${v:-$2}"
}

# pulsar_answers WEB_PORT: the admin API lists public/default (what pulsar.sh waits for first).
pulsar_answers() {
  curl -sS --max-time 5 "http://127.0.0.1:$1/admin/v2/namespaces/public" 2>/dev/null | grep -q '"public/default"'
}

# await_answer LABEL TIMEOUT_S CHECK...: waits until CHECK succeeds, for a server that is already running
# (ours, perhaps still starting because someone else just started it).
await_answer() {
  local label=$1 timeout=$2 start
  shift 2
  start=$(now_ms)
  until "$@"; do
    (($(now_ms) - start < timeout * 1000)) || die "$label is running but did not answer within ${timeout}s; see its log under $KP_RUN, or restart the stack ('make local-down local-up')"
    sleep 0.2
  done
}

# ensure_port NAME DEFAULT: the port ensure uses for a server, from KP_<NAME>.
ensure_port() {
  local var="KP_$1" value
  value=${!var:-$2}
  if [[ ! $value =~ ^[0-9]+$ ]] || ((value < 1 || value > 65535)); then die "$var='$value' is not a port number"; fi
  printf '%s\n' "$value"
}

# ENSURE_LAUNCHED: servers this ensure launched so far; ENSURE_TOKENS: what it prints at the end.
ENSURE_LAUNCHED=()
ENSURE_TOKENS=()

# ensure_stop_launched: stops what this ensure launched (after a failed start or an interrupt).
ensure_stop_launched() {
  local name
  for name in "${ENSURE_LAUNCHED[@]}"; do
    case $name in
    pulsar) "$PULSAR_SH" stop --name default || true ;;
    dynamodb) stop_pid dynamodb "$DYNAMODB_PID" "$DYNAMODB_MARKER" 10 || true ;;
    moto) stop_pid moto "$MOTO_PID" "$MOTO_MARKER" 10 || true ;;
    esac
  done
}

cmd_ensure() {
  # Only the tokens go to stdout (callers capture them); everything else, children included, to stderr.
  ensure_servers "$@" >&2
  printf '%s\n' "${ENSURE_TOKENS[*]}"
}

ensure_servers() {
  local want=("$@") name
  ((${#want[@]})) || want=(pulsar dynamodb moto)
  local do_pulsar=0 do_dynamodb=0 do_moto=0
  for name in "${want[@]}"; do
    case $name in
    pulsar) do_pulsar=1 ;;
    dynamodb) do_dynamodb=1 ;;
    moto) do_moto=1 ;;
    *) die "ensure: unknown server '$name' (pulsar, dynamodb, moto)" ;;
    esac
  done
  local start
  start=$(now_ms)
  need_cmd curl "install curl (Debian: apt-get install curl)"
  need_cmd flock "install util-linux (Debian: apt-get install util-linux)"
  need_java

  local pulsar_port web_port
  pulsar_port=$(ensure_port PULSAR_PORT 6650)
  web_port=$(ensure_port PULSAR_WEB_PORT 8080)
  DYNAMODB_PORT=$(ensure_port DYNAMODB_PORT "$DYNAMODB_PORT")
  MOTO_PORT=$(ensure_port MOTO_PORT "$MOTO_PORT")

  # As with up, a variable the user set names a server that is not ours to start.
  local pulsar_url="pulsar://127.0.0.1:$pulsar_port" admin_url="http://127.0.0.1:$web_port"
  local aws_url="http://127.0.0.1:$MOTO_PORT" dynamodb_url="http://127.0.0.1:$DYNAMODB_PORT"
  if [[ -n ${PULSAR_SERVICE_URL:-} ]]; then
    do_pulsar=0 pulsar_url=$PULSAR_SERVICE_URL
    admin_url=${PULSAR_ADMIN_URL:-$admin_url}
  fi
  if [[ -n ${AWS_ENDPOINT_URL:-} ]]; then do_moto=0 aws_url=$AWS_ENDPOINT_URL; fi
  if [[ -n ${AWS_ENDPOINT_URL_DYNAMODB:-} ]]; then do_dynamodb=0 dynamodb_url=$AWS_ENDPOINT_URL_DYNAMODB; fi

  with_install_lock install_all "$do_dynamodb"
  mkdir -p "$KP_RUN"
  # Two ensures at once (two make demo on a stopped stack) would both find a server missing.
  exec 8>"$KP_CACHE/.ensure.lock"
  flock -w 300 8 || die "waited 5 minutes for $KP_CACHE/.ensure.lock; another ensure seems stuck, stop it and retry"

  # Servers are started with fd 8 closed: they must not hold the lock for as long as they run.
  trap 'info "interrupted; stopping what this ensure started"; ensure_stop_launched; exit 130' INT TERM
  local pulsar_job="" t_servers pid failed=0
  t_servers=$(now_ms)
  if ((do_pulsar)); then
    if pid=$(pulsar_default_pid) && [[ -n $pid ]]; then
      pulsar_port=$(pulsar_default_port brokerServicePort "$pulsar_port")
      web_port=$(pulsar_default_port webServicePort "$web_port")
      pulsar_url="pulsar://127.0.0.1:$pulsar_port" admin_url="http://127.0.0.1:$web_port"
      await_answer "pulsar[default] (pid $pid)" "$PULSAR_TIMEOUT" pulsar_answers "$web_port"
      info "pulsar[default] already running (pid $pid, $pulsar_url); left as it is"
    elif port_in_use "$pulsar_port"; then
      pulsar_answers "$web_port" ||
        check_port_free "$pulsar_port" "Pulsar broker" "set PULSAR_SERVICE_URL and PULSAR_ADMIN_URL to use that broker"
      info "a Pulsar broker not started by this stack answers on 127.0.0.1:$pulsar_port/$web_port; using it"
    else
      check_port_free "$web_port" "Pulsar admin/web" "set KP_PULSAR_WEB_PORT to another port"
      "$PULSAR_SH" start --name default --broker-port "$pulsar_port" --web-port "$web_port" --timeout "$PULSAR_TIMEOUT" 8>&- &
      pulsar_job=$!
      ENSURE_LAUNCHED+=(pulsar)
    fi
  fi
  local launched_dynamodb=0 launched_moto=0
  if ((do_dynamodb)); then
    if pid=$(pid_of_ours "$DYNAMODB_PID" "$DYNAMODB_MARKER") && [[ -n $pid ]]; then
      await_answer "DynamoDB Local (pid $pid)" "$SERVER_TIMEOUT" dynamodb_ready
      info "DynamoDB Local already running (pid $pid); left as it is"
    elif port_in_use "$DYNAMODB_PORT"; then
      dynamodb_ready ||
        check_port_free "$DYNAMODB_PORT" "DynamoDB Local" "set AWS_ENDPOINT_URL_DYNAMODB to a DynamoDB endpoint that is running"
      info "a DynamoDB endpoint not started by this stack answers on 127.0.0.1:$DYNAMODB_PORT; using it"
    else
      start_dynamodb 8>&-
      launched_dynamodb=1
      ENSURE_LAUNCHED+=(dynamodb)
    fi
  fi
  if ((do_moto)); then
    if pid=$(pid_of_ours "$MOTO_PID" "$MOTO_MARKER") && [[ -n $pid ]]; then
      await_answer "moto (pid $pid)" "$SERVER_TIMEOUT" moto_ready
      info "moto already running (pid $pid); left as it is"
    elif port_in_use "$MOTO_PORT"; then
      moto_ready || check_port_free "$MOTO_PORT" "moto" "set AWS_ENDPOINT_URL to an AWS stand-in that is running"
      info "an AWS stand-in not started by this stack answers on 127.0.0.1:$MOTO_PORT; using it"
    else
      start_moto 8>&-
      launched_moto=1
      ENSURE_LAUNCHED+=(moto)
    fi
  fi
  if ((launched_dynamodb)); then
    wait_server "DynamoDB Local" "$DYNAMODB_PID" "$DYNAMODB_MARKER" "$DYNAMODB_LOG" dynamodb_ready "$SERVER_TIMEOUT" "$t_servers" || failed=1
  fi
  if ((launched_moto)); then
    wait_server "moto" "$MOTO_PID" "$MOTO_MARKER" "$MOTO_LOG" moto_ready "$SERVER_TIMEOUT" "$t_servers" || failed=1
  fi
  if [[ -n $pulsar_job ]]; then wait "$pulsar_job" || failed=1; fi
  if ((failed)); then
    ensure_stop_launched
    die "ensure could not start the local stack (see the error above); what it started was stopped"
  fi
  trap - INT TERM

  # A server that died right after answering (a signal, a crash) fails the ensure like one that never
  # came up: the caller would otherwise run against half a stack.
  local tokens=() gone=()
  if [[ -n $pulsar_job ]]; then
    pid=$(pulsar_default_pid)
    if [[ -n $pid ]]; then tokens+=("pulsar=$pid"); else gone+=(pulsar); fi
  fi
  if ((launched_dynamodb)); then
    pid=$(pid_of_ours "$DYNAMODB_PID" "$DYNAMODB_MARKER")
    if [[ -n $pid ]]; then tokens+=("dynamodb=$pid"); else gone+=(dynamodb); fi
  fi
  if ((launched_moto)); then
    pid=$(pid_of_ours "$MOTO_PID" "$MOTO_MARKER")
    if [[ -n $pid ]]; then tokens+=("moto=$pid"); else gone+=(moto); fi
  fi
  if ((${#gone[@]})); then
    ensure_stop_launched
    die "${gone[*]} exited right after starting (see the logs under $KP_RUN); what this ensure started was stopped"
  fi
  # The env file is written when missing, or when this ensure started a server and the file says
  # otherwise (left by a stack that ran on other ports); a file describing running servers stays.
  {
    write_kv_line PULSAR_SERVICE_URL "$pulsar_url"
    write_kv_line PULSAR_ADMIN_URL "$admin_url"
    write_kv_line AWS_ENDPOINT_URL "$aws_url"
    write_kv_line AWS_ENDPOINT_URL_DYNAMODB "$dynamodb_url"
    write_kv_line AWS_REGION us-east-1
    write_kv_line AWS_ACCESS_KEY_ID test
    write_kv_line AWS_SECRET_ACCESS_KEY test
    write_kv_line PULSAR_HOME "$KP_PULSAR_HOME"
    write_kv_line KP_VENV "$KP_VENV"
  } >"$ENV_FILE.tmp.$$"
  if [[ ! -f $ENV_FILE ]]; then
    mv "$ENV_FILE.tmp.$$" "$ENV_FILE"
    tokens+=(env)
  elif ((${#tokens[@]})) && ! cmp -s "$ENV_FILE" "$ENV_FILE.tmp.$$"; then
    info "rewriting $ENV_FILE for the servers this ensure started"
    mv "$ENV_FILE.tmp.$$" "$ENV_FILE"
  else
    rm -f "$ENV_FILE.tmp.$$"
  fi
  info "ensured ${want[*]} in $(elapsed "$start")s; started: ${tokens[*]:-nothing}; env: $ENV_FILE"
  ENSURE_TOKENS=("${tokens[@]}")
}

# release_one LABEL PID CURRENT_PID STOP...: runs STOP when the server still has the pid ensure recorded.
release_one() {
  local label=$1 pid=$2 current=$3
  shift 3
  if [[ -z $current ]]; then
    return 0
  elif [[ $current != "$pid" ]]; then
    info "$label is now pid $current, not the pid $pid ensure started (restarted by someone else); left running"
    return 0
  fi
  "$@"
}

cmd_release() {
  local tok pid env=0 pids=() rc=0
  for tok in "$@"; do
    [[ $tok == env || $tok =~ ^(pulsar|dynamodb|moto)=[0-9]+$ ]] || die "release: '$tok' is not a token ensure prints (pulsar=PID, dynamodb=PID, moto=PID, env)"
  done
  for tok in "$@"; do
    pid=${tok#*=}
    case $tok in
    env) env=1 ;;
    pulsar=*) release_one "pulsar[default]" "$pid" "$(pulsar_default_pid)" "$PULSAR_SH" stop --name default & pids+=($!) ;;
    dynamodb=*) release_one dynamodb "$pid" "$(pid_of_ours "$DYNAMODB_PID" "$DYNAMODB_MARKER")" stop_pid dynamodb "$DYNAMODB_PID" "$DYNAMODB_MARKER" 10 & pids+=($!) ;;
    moto=*) release_one moto "$pid" "$(pid_of_ours "$MOTO_PID" "$MOTO_MARKER")" stop_pid moto "$MOTO_PID" "$MOTO_MARKER" 10 & pids+=($!) ;;
    esac
  done
  local p
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  # The env file ensure wrote goes only once nothing of the stack runs any more: it may describe servers
  # someone else started meanwhile.
  if ((env)) && [[ -z $(pulsar_default_pid) && -z $(pid_of_ours "$DYNAMODB_PID" "$DYNAMODB_MARKER") && -z $(pid_of_ours "$MOTO_PID" "$MOTO_MARKER") ]]; then
    rm -f "$ENV_FILE"
  fi
  (($# == 0)) || info "released: $*"
  return "$rc"
}

# ---- commands ---------------------------------------------------------------------------------------------

cmd_up() {
  local start
  start=$(now_ms)
  need_cmd curl "install curl (Debian: apt-get install curl)"
  need_java

  # A variable the user set wins: that server is not started here.
  local run_pulsar=1 run_dynamodb=1 run_moto=1
  local pulsar_url="pulsar://127.0.0.1:6650" admin_url="http://127.0.0.1:8080"
  local aws_url="http://127.0.0.1:$MOTO_PORT" dynamodb_url="http://127.0.0.1:$DYNAMODB_PORT"
  if [[ -n ${PULSAR_SERVICE_URL:-} ]]; then
    run_pulsar=0
    pulsar_url=$PULSAR_SERVICE_URL
    if [[ -n ${PULSAR_ADMIN_URL:-} ]]; then
      admin_url=$PULSAR_ADMIN_URL
    else
      # Same host, the broker's default web port.
      local host=${PULSAR_SERVICE_URL#*://}
      host=${host%%[:/]*}
      admin_url="http://$host:8080"
      info "PULSAR_SERVICE_URL is set but PULSAR_ADMIN_URL is not; assuming $admin_url"
    fi
  fi
  if [[ -n ${AWS_ENDPOINT_URL:-} ]]; then run_moto=0 aws_url=$AWS_ENDPOINT_URL; fi
  if [[ -n ${AWS_ENDPOINT_URL_DYNAMODB:-} ]]; then run_dynamodb=0 dynamodb_url=$AWS_ENDPOINT_URL_DYNAMODB; fi

  # Pulsar is installed even when the user brings a broker: tests start extra brokers from it.
  with_install_lock install_all "$run_dynamodb"
  mkdir -p "$KP_RUN"
  rm -f "$ENV_FILE"

  # Whatever an earlier run of this stack left (running or crashed) goes first: tests need empty servers.
  stop_servers
  "$PULSAR_SH" clean-extra

  if ((run_pulsar)); then
    check_port_free 6650 "Pulsar broker" "set PULSAR_SERVICE_URL and PULSAR_ADMIN_URL to use that broker"
    check_port_free 8080 "Pulsar admin/web" "set PULSAR_SERVICE_URL and PULSAR_ADMIN_URL to use a broker that is running"
  fi
  if ((run_dynamodb)); then
    check_port_free "$DYNAMODB_PORT" "DynamoDB Local" "set AWS_ENDPOINT_URL_DYNAMODB to a DynamoDB endpoint that is running"
  fi
  if ((run_moto)); then
    check_port_free "$MOTO_PORT" "moto" "set AWS_ENDPOINT_URL to an AWS stand-in that is running"
  fi

  # From here on, a failure or an interrupt stops what this run started.
  trap 'info "interrupted; stopping what was started"; stop_servers; exit 130' INT TERM
  local pulsar_job="" failed=0
  if ((run_pulsar)); then
    "$PULSAR_SH" start --name default --broker-port 6650 --web-port 8080 --timeout "$PULSAR_TIMEOUT" &
    pulsar_job=$!
  fi
  local t_servers
  t_servers=$(now_ms)
  if ((run_dynamodb)); then start_dynamodb; fi
  if ((run_moto)); then start_moto; fi
  if ((run_dynamodb)); then
    wait_server "DynamoDB Local" "$DYNAMODB_PID" "$DYNAMODB_MARKER" "$DYNAMODB_LOG" dynamodb_ready "$SERVER_TIMEOUT" "$t_servers" || failed=1
  fi
  if ((run_moto)); then
    wait_server "moto" "$MOTO_PID" "$MOTO_MARKER" "$MOTO_LOG" moto_ready "$SERVER_TIMEOUT" "$t_servers" || failed=1
  fi
  if [[ -n $pulsar_job ]]; then wait "$pulsar_job" || failed=1; fi
  if ((failed)); then
    stop_servers || true
    trap - INT TERM
    die "the local stack did not come up (see the error above); everything it started was stopped"
  fi
  trap - INT TERM

  {
    write_kv_line PULSAR_SERVICE_URL "$pulsar_url"
    write_kv_line PULSAR_ADMIN_URL "$admin_url"
    write_kv_line AWS_ENDPOINT_URL "$aws_url"
    write_kv_line AWS_ENDPOINT_URL_DYNAMODB "$dynamodb_url"
    write_kv_line AWS_REGION us-east-1
    write_kv_line AWS_ACCESS_KEY_ID test
    write_kv_line AWS_SECRET_ACCESS_KEY test
    write_kv_line PULSAR_HOME "$KP_PULSAR_HOME"
    write_kv_line KP_VENV "$KP_VENV"
  } >"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  local external=()
  ((run_pulsar)) || external+=(Pulsar)
  ((run_dynamodb)) || external+=(DynamoDB)
  ((run_moto)) || external+=(moto)
  info "local stack up in $(elapsed "$start")s; env: $ENV_FILE${external[*]:+ (not started, user-set: ${external[*]})}"
}

cmd_down() {
  stop_servers
  rm -f "$ENV_FILE"
  info "local stack down"
}

server_status() {
  local label=$1 pidfile=$2 marker=$3 url=$4 log=$5 pid
  pid=$(pid_of_ours "$pidfile" "$marker")
  if [[ -n $pid ]]; then
    printf '%-20s running  pid %-7s %s  log %s\n' "$label" "$pid" "$url" "$log"
  else
    printf '%-20s stopped\n' "$label"
  fi
}

cmd_status() {
  "$PULSAR_SH" status
  server_status dynamodb "$DYNAMODB_PID" "$DYNAMODB_MARKER" "http://127.0.0.1:$DYNAMODB_PORT" "$DYNAMODB_LOG"
  server_status moto "$MOTO_PID" "$MOTO_MARKER" "http://127.0.0.1:$MOTO_PORT" "$MOTO_LOG"
  if [[ -f $ENV_FILE ]]; then
    printf '%-20s %s\n' "env file" "$ENV_FILE"
  else
    printf '%-20s %s\n' "env file" "none (run 'make local-up')"
  fi
}

main() {
  (($#)) || usage
  local cmd=$1
  shift
  case $cmd in
  ensure) cmd_ensure "$@"; return ;;
  release) cmd_release "$@"; return ;;
  esac
  (($# == 0)) || die "$cmd takes no arguments"
  case $cmd in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  -h | --help | help) usage ;;
  *) die "unknown command '$cmd' (install, up, down, status, ensure, release)" ;;
  esac
}

main "$@"
