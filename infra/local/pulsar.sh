#!/usr/bin/env bash
# Starts and stops named Pulsar standalone brokers of the local stack on 127.0.0.1.
#
# The default broker ("default", 6650/8080) is started by stack.sh through this script; tests start extra
# brokers (auth+TLS, small max message size, one that fault tests kill) with their own names and ports.
#
#   pulsar.sh start   [--name NAME] [--broker-port P] [--web-port P] [--conf FILE]... [--mem "JVM memory flags"]
#                     [--timeout SECONDS] [--token-file FILE] [--keep-data] [--no-wait]
#   pulsar.sh stop    --name NAME        SIGTERM, bounded wait, then SIGKILL
#   pulsar.sh kill    --name NAME        crash it (SIGSTOP, then SIGKILL); data and settings stay for restart
#   pulsar.sh restart --name NAME        stop if running, start again with the same ports, settings and data
#                                        (minus stale ephemeral metadata, see pulsar/DropEphemeralNodes.java)
#   pulsar.sh status  [--name NAME]      one line per broker
#   pulsar.sh stop-all                   stop every broker of this stack (used by stack.sh down)
#   pulsar.sh clean-extra                remove files of stopped extra brokers (used by stack.sh up)
#
# Per broker, under .cache/run/: pulsar-NAME/ (data, wiped on start), pulsar-NAME.conf (merged settings, see
# pulsar/standalone.conf), pulsar-NAME.log, pulsar-NAME.pid, pulsar-NAME.args (for restart).
# --token-file: a token the readiness checks send (for brokers with authentication enabled).
# Ports a standalone binds: broker and web ports (plus brokerServicePortTls/webServicePortTls when a --conf
# sets them) and a bookie port, which is a free ephemeral port picked at start. No ZooKeeper, no stream
# storage, no functions worker.
set -euo pipefail

# shellcheck disable=SC2034 # used by lib.sh
PROG="pulsar.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KP_PULSAR_MEM_DEFAULT="-Xms1g -Xmx1g -XX:MaxDirectMemorySize=1g"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# ---- per-instance paths -----------------------------------------------------------------------------------

set_instance() {
  NAME=$1
  [[ $NAME =~ ^[a-z0-9][a-z0-9-]{0,40}$ ]] || die "broker name '$NAME' must be lower-case letters, digits and dashes"
  INST="pulsar-$NAME"
  DATA="$KP_RUN/$INST"
  PIDFILE="$KP_RUN/$INST.pid"
  LOG="$KP_RUN/$INST.log"
  CONF="$KP_RUN/$INST.conf"
  ARGSFILE="$KP_RUN/$INST.args"
  # Every broker JVM carries this on its command line; pids are trusted only when it matches.
  MARKER="-Dkp.instance=$DATA "
}

label() { printf 'pulsar[%s]' "$NAME"; }

# conf_get KEY: the value of KEY in the merged configuration.
conf_get() {
  sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$CONF" | tail -n1 | tr -d '[:space:]'
}

# merge_conf OUT FILE...: KEY=value lines of all FILEs, the last value of each key winning, in the order
# keys first appear. Comments and blank lines are dropped.
merge_conf() {
  local out=$1
  shift
  awk '
    /^[[:space:]]*([#!]|$)/ { next }
    {
      i = index($0, "="); if (i == 0) next
      key = substr($0, 1, i - 1); gsub(/^[[:space:]]+|[[:space:]]+$/, "", key)
      val = substr($0, i + 1);    gsub(/^[[:space:]]+|[[:space:]]+$/, "", val)
      if (!(key in value)) order[++n] = key
      value[key] = val
    }
    END { for (j = 1; j <= n; j++) print order[j] "=" value[order[j]] }
  ' "$@" >"$out.tmp"
  mv "$out.tmp" "$out"
}

# ---- readiness --------------------------------------------------------------------------------------------

CURL_AUTH=()

http() { curl -sS --max-time 10 "${CURL_AUTH[@]}" "$@"; }

# wait_ready PID TIMEOUT_S START_MS: the namespace public/default is listed by the admin API, and a message
# can be published to a topic (over the broker's REST API, so through broker, managed ledger and bookie). /metrics answering is not enough; it is served long before the namespaces exist.
wait_ready() {
  local pid=$1 timeout=$2 start=$3 web deadline topic admin body
  web=$(conf_get webServicePort)
  admin="http://127.0.0.1:$web"
  deadline=$((start + timeout * 1000))
  topic="persistent/public/default/kp-readiness-$$"
  local phase="namespace public/default"
  while :; do
    if [[ ! -e /proc/$pid ]]; then
      rm -f "$PIDFILE"
      info "$(label) exited during start-up; last lines of $LOG:"
      tail_log "$LOG" 8
      die "$(label) did not start; read $LOG, fix the cause (ports, --conf settings, memory) and start it again"
    fi
    if (($(now_ms) > deadline)); then
      info "$(label) not ready after ${timeout}s (waiting for: $phase); last lines of $LOG:"
      tail_log "$LOG" 8
      stop_instance
      die "$(label) was stopped; read $LOG, then retry (a slow machine may need a longer wait: pulsar.sh --timeout, KP_PULSAR_TIMEOUT for stack.sh)"
    fi
    case $phase in
    "namespace public/default")
      if http -f "$admin/admin/v2/namespaces/public" 2>/dev/null | grep -q '"public/default"'; then
        phase="a test publish"
        continue
      fi
      ;;
    "a test publish")
      # The REST producer does not create topics; the admin API does (204, or 409 when a retry finds it).
      http -o /dev/null -X PUT "$admin/admin/v2/$topic" 2>/dev/null || true
      body=$(http -f -X POST -H 'Content-Type: application/json' \
        -d '{"messages":[{"payload":"cmVhZHk="}]}' "$admin/topics/$topic" 2>/dev/null) || body=""
      if [[ $body == *'"messageId"'* && $body == *'"errorCode":0'* ]]; then
        # Leave public/default as empty as a fresh broker's.
        http -o /dev/null -X DELETE "$admin/admin/v2/$topic?force=true" 2>/dev/null || true
        return 0
      fi
      ;;
    esac
    sleep 0.2
  done
}

# ---- commands ---------------------------------------------------------------------------------------------

cmd_start() {
  local broker_port="" web_port="" mem="${KP_PULSAR_MEM:-$KP_PULSAR_MEM_DEFAULT}" timeout=120 keep=0 wait=1
  local token_file="" name=default confs=()
  while (($#)); do
    case $1 in
    --name) name=${2:?--name needs a value}; shift 2 ;;
    --broker-port) broker_port=${2:?--broker-port needs a value}; shift 2 ;;
    --web-port) web_port=${2:?--web-port needs a value}; shift 2 ;;
    --conf) confs+=("$(readlink -f "${2:?--conf needs a file}")"); shift 2 ;;
    --mem) mem=${2:?--mem needs a value}; shift 2 ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    --token-file) token_file=$(readlink -f "${2:?--token-file needs a file}"); shift 2 ;;
    --keep-data) keep=1; shift ;;
    --no-wait) wait=0; shift ;;
    *) die "start: unknown option '$1' (see pulsar.sh --help)" ;;
    esac
  done
  set_instance "$name"
  if [[ $name == default ]]; then
    broker_port=${broker_port:-6650}
    web_port=${web_port:-8080}
  fi
  [[ $broker_port =~ ^[0-9]+$ && $web_port =~ ^[0-9]+$ ]] ||
    die "start: broker '$name' needs --broker-port and --web-port (only 'default' has default ports)"
  [[ $timeout =~ ^[0-9]+$ ]] || die "start: --timeout must be whole seconds"
  local f
  for f in "${confs[@]}"; do [[ -r $f ]] || die "start: --conf file $f not readable"; done
  if [[ -n $token_file ]]; then
    [[ -r $token_file ]] || die "start: --token-file $token_file not readable"
    CURL_AUTH=(-H "Authorization: Bearer $(tr -d '[:space:]' <"$token_file")")
  fi

  pulsar_installed || with_install_lock install_pulsar
  need_java
  mkdir -p "$KP_RUN"

  # A broker of this name still running (a previous run, a crashed test): replace it.
  if [[ -n $(pid_of_ours "$PIDFILE" "$MARKER") ]]; then
    info "$(label) is running from an earlier start; stopping it first"
    stop_instance
  fi

  local ports_conf="$KP_RUN/$INST.ports"
  printf 'brokerServicePort=%s\nwebServicePort=%s\n' "$broker_port" "$web_port" >"$ports_conf"
  merge_conf "$CONF" "$KP_PULSAR_HOME/conf/standalone.conf" "$KP_LOCAL/pulsar/standalone.conf" "$ports_conf" "${confs[@]}"
  rm -f "$ports_conf"

  local key port
  for key in brokerServicePort webServicePort brokerServicePortTls webServicePortTls; do
    port=$(conf_get "$key")
    [[ -n $port ]] || continue
    check_port_free "$port" "$(label) $key" "start this broker on other ports"
  done

  if ((keep)) && [[ -d $DATA ]]; then
    : # restart: same metadata, ledgers and bookie cookie (which pins the bookie port)
  else
    # --wipe-data would clear only the bookie dir, not the RocksDB metadata: remove everything.
    rm -rf "$DATA"
    # What restart replays: absolute paths, explicit ports.
    local saved=(--name "$name" --broker-port "$broker_port" --web-port "$web_port" --mem "$mem" --timeout "$timeout")
    for f in "${confs[@]}"; do saved+=(--conf "$f"); done
    [[ -z $token_file ]] || saved+=(--token-file "$token_file")
    printf '%q ' "${saved[@]}" >"$ARGSFILE"
  fi
  mkdir -p "$DATA/logs"
  # The JVM's temporary directory: RocksDB and BookKeeper unpack native libraries there (13 MB per start),
  # which a killed JVM never removes. Inside the data dir they go with the next wipe.
  rm -rf "$DATA/tmp"
  mkdir -p "$DATA/tmp"

  local cds archive
  archive=$(pulsar_cds_archive)
  if [[ -s $archive ]]; then
    cds=(-XX:SharedArchiveFile="$archive" -Xlog:cds=off -Xlog:cds+dynamic=off)
  else
    # No archive yet: this broker records one when it stops cleanly; stop adopts it (see stop_instance).
    cds=(-XX:ArchiveClassesAtExit="$DATA/classes.jsa" -Xlog:cds=off -Xlog:cds+dynamic=off)
  fi

  local -a memflags
  read -r -a memflags <<<"$mem"
  local start
  start=$(now_ms)
  if ((keep)); then printf '\n==== %s: restart ====\n' "$(date -u +%FT%TZ)" >>"$LOG"; else : >"$LOG"; fi
  # The flags bin/pulsar passes for Java 17 (PULSAR_EXTRA_OPTS, add-opens, metadata drivers), launched
  # directly: bin/pulsar puts conf/ on the class path, which rules out a class-data-sharing archive, and
  # pre-touches the heap. cwd is the data dir so that relative paths of the config stay inside it.
  (
    cd "$DATA"
    exec java "${memflags[@]}" -XX:+UseG1GC -XX:+PerfDisableSharedMem "${cds[@]}" \
      -Dkp.instance="$DATA" -Djava.io.tmpdir="$DATA/tmp" \
      -cp "$KP_PULSAR_HOME/lib/*" \
      -Djava.net.preferIPv4Stack=true -Djute.maxbuffer=10485760 \
      --add-opens java.base/java.io=ALL-UNNAMED --add-opens java.base/java.util.zip=ALL-UNNAMED \
      --add-opens java.management/sun.management=ALL-UNNAMED \
      --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED \
      --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/jdk.internal.misc=ALL-UNNAMED \
      --add-opens java.base/jdk.internal.platform=ALL-UNNAMED --enable-native-access=ALL-UNNAMED \
      -Dio.netty.tryReflectionSetAccessible=true -Dorg.apache.pulsar.shade.io.netty.tryReflectionSetAccessible=true \
      -Dpulsar.allocator.exit_on_oom=true -Dio.netty.recycler.maxCapacityPerThread=4096 \
      -Dbookkeeper.metadata.bookie.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataBookieDriver \
      -Dbookkeeper.metadata.client.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataClientDriver \
      -Dlog4j.configurationFile="$KP_PULSAR_HOME/conf/log4j2.yaml" -Dlog4j.shutdownHookEnabled=false \
      -Dlog4j2.is.webapp=false -Dpulsar.log.appender=RoutingAppender -Dpulsar.routing.appender.default=Console \
      -Dpulsar.log.dir="$DATA/logs" -Dpulsar.log.file=pulsar-standalone.log -Dpulsar.log.level=info \
      -Dpulsar.log.immediateFlush=false -Dpulsar.config.file="$CONF" \
      org.apache.pulsar.PulsarStandaloneStarter --config "$CONF" -nfw -nss \
      --metadata-dir "$DATA/metadata" --bookkeeper-dir "$DATA/bookkeeper" --zookeeper-dir "$DATA/zookeeper"
  ) </dev/null >>"$LOG" 2>&1 &
  local pid=$!
  printf '%s\n' "$pid" >"$PIDFILE"
  ((wait)) || return 0
  wait_ready "$pid" "$timeout" "$start"
  info "$(label) ready in $(elapsed "$start")s: pulsar://127.0.0.1:$(conf_get brokerServicePort) http://127.0.0.1:$(conf_get webServicePort) (pid $pid, log $LOG)"
}

# stop_instance: graceful stop of the current instance; adopts the class-data-sharing archive the JVM wrote
# at exit, if it exited by itself (a JVM killed while writing would leave a partial file).
stop_instance() {
  stop_pid "$(label)" "$PIDFILE" "$MARKER" 20
  local archive
  archive=$(pulsar_cds_archive)
  if [[ -s "$DATA/classes.jsa" ]]; then
    if [[ ${STOP_FORCED:-0} == 0 && ! -s $archive ]]; then
      mkdir -p "$(dirname "$archive")"
      mv "$DATA/classes.jsa" "$archive.tmp.$$" && mv "$archive.tmp.$$" "$archive"
    fi
    rm -f "$DATA/classes.jsa"
  fi
}

# drop_ephemeral_nodes: with the broker stopped, removes what its ephemeral metadata nodes would be once its
# session expired (see pulsar/DropEphemeralNodes.java: after a kill, stale registrations make the restarted
# bookie's registration flap).
drop_ephemeral_nodes() {
  [[ -d "$DATA/metadata" ]] || return 0
  [[ -d $(pulsar_tools_dir) ]] || with_install_lock install_pulsar_tools
  printf '\n==== %s: dropping ephemeral metadata nodes before restart ====\n' "$(date -u +%FT%TZ)" >>"$LOG"
  java -cp "$KP_PULSAR_HOME/lib/*:$(pulsar_tools_dir)" DropEphemeralNodes "$DATA/metadata" >>"$LOG" 2>&1 ||
    die "$(label): clearing stale ephemeral nodes from $DATA/metadata failed (see $LOG); start it afresh with start"
}

cmd_stop() {
  set_instance "$(parse_name "$@")"
  stop_instance
}

# all_stopped: every thread of process $1 is stopped (state T), or the process is gone.
all_stopped() {
  local stat
  for stat in /proc/"$1"/task/*/stat; do
    [[ -r $stat ]] || continue
    # The state follows the command name, which is in parentheses and may hold spaces.
    [[ $(sed 's/^.*) //' "$stat" 2>/dev/null | cut -c1) == T ]] || return 1
  done
}

cmd_kill() {
  set_instance "$(parse_name "$@")"
  local pid
  pid=$(pid_of_ours "$PIDFILE" "$MARKER")
  [[ -n $pid ]] || die "$(label) is not running"
  # SIGKILL alone can cut a large write(2) short (the kernel checks for fatal signals between pages): the
  # standalone's bookie runs in the same JVM, and a torn journal record made the topic unloadable after
  # restart (digest mismatch on ledger recovery), which a broker crash cannot do to a real, separate
  # bookie. Stopping every thread first lets the writes in progress finish; then the crash.
  kill -STOP "$pid"
  local i
  for ((i = 0; i < 100; i++)); do
    all_stopped "$pid" && break
    sleep 0.05
  done
  kill -KILL "$pid"
  for ((i = 0; i < 100; i++)); do
    [[ -e /proc/$pid ]] || break
    sleep 0.05
  done
  [[ ! -e /proc/$pid ]] || die "$(label) (pid $pid) survived SIGKILL for 5s"
  rm -f "$PIDFILE" "$DATA/classes.jsa"
}

cmd_restart() {
  local name extra=()
  name=$(parse_name "$@")
  while (($#)); do
    case $1 in
    --name) shift 2 ;;
    --timeout) extra+=(--timeout "${2:?--timeout needs seconds}"); shift 2 ;;
    *) die "restart: unknown option '$1'" ;;
    esac
  done
  set_instance "$name"
  [[ -f $ARGSFILE ]] || die "$(label) was never started (no $ARGSFILE); use start"
  stop_instance
  drop_ephemeral_nodes
  local -a args
  eval "args=($(cat "$ARGSFILE"))"
  cmd_start "${args[@]}" "${extra[@]}" --keep-data
}

cmd_status() {
  local names=() f
  if (($#)); then
    names=("$(parse_name "$@")")
  else
    # The default broker always, extra brokers while they run.
    names=(default)
    for f in "$KP_RUN"/pulsar-*.pid; do
      [[ -e $f ]] || continue
      f=${f##*/pulsar-}
      [[ ${f%.pid} == default ]] || names+=("${f%.pid}")
    done
  fi
  local n pid
  for n in "${names[@]}"; do
    set_instance "$n"
    pid=$(pid_of_ours "$PIDFILE" "$MARKER")
    if [[ -n $pid ]]; then
      printf '%-20s running  pid %-7s pulsar://127.0.0.1:%s http://127.0.0.1:%s  log %s\n' "$(label)" "$pid" \
        "$(conf_get brokerServicePort)" "$(conf_get webServicePort)" "$LOG"
    else
      printf '%-20s stopped\n' "$(label)"
    fi
  done
}

cmd_stop_all() {
  local f pids=()
  for f in "$KP_RUN"/pulsar-*.pid; do
    [[ -e $f ]] || continue
    f=${f##*/pulsar-}
    (set_instance "${f%.pid}" && stop_instance) &
    pids+=($!)
  done
  local p rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return "$rc"
}

# cmd_clean_extra: removes the files of stopped extra brokers (data, logs, settings), left for post-mortems
# by the previous run; stack.sh up calls it after stop-all.
cmd_clean_extra() {
  local f n
  for f in "$KP_RUN"/pulsar-*.args; do
    [[ -e $f ]] || continue
    n=${f##*/pulsar-}
    n=${n%.args}
    [[ $n != default ]] || continue
    set_instance "$n"
    [[ -z $(pid_of_ours "$PIDFILE" "$MARKER") ]] || continue
    rm -rf "$DATA" "$CONF" "$LOG" "$ARGSFILE"
  done
}

parse_name() {
  local name=""
  while (($#)); do
    case $1 in
    --name) name=${2:?--name needs a value}; shift 2 ;;
    *) shift ;;
    esac
  done
  printf '%s\n' "${name:-default}"
}

main() {
  (($#)) || usage
  local cmd=$1
  shift
  case $cmd in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  kill) cmd_kill "$@" ;;
  restart) cmd_restart "$@" ;;
  status) cmd_status "$@" ;;
  stop-all) cmd_stop_all ;;
  clean-extra) cmd_clean_extra ;;
  -h | --help | help) usage ;;
  *) die "unknown command '$cmd' (start, stop, kill, restart, status, stop-all)" ;;
  esac
}

main "$@"
