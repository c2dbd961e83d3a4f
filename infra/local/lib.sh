# shellcheck shell=bash disable=SC2034
# Shared by infra/local/stack.sh and infra/local/pulsar.sh: paths, messages, installs, process and port helpers.
# Sourced, never run. Callers set PROG (the name used in messages) and run with `set -euo pipefail`.

KP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
KP_LOCAL="$KP_ROOT/infra/local"
# Everything installed or written lives under the cache root (ignored by git).
KP_CACHE="${KP_CACHE_DIR:-$KP_ROOT/.cache}"
mkdir -p "$KP_CACHE"
KP_CACHE=$(cd "$KP_CACHE" && pwd -P)
# KP_RUN_DIR moves only the run state (pids, logs, env file), for a second instance of a server beside the
# stack's (infra/local/clockshift.sh); installs stay under the cache root.
KP_RUN="${KP_RUN_DIR:-$KP_CACHE/run}"
KP_DOWNLOADS="$KP_CACHE/downloads"

PULSAR_VERSION=4.0.8
KP_PULSAR_HOME="$KP_CACHE/pulsar/apache-pulsar-$PULSAR_VERSION"
KP_PULSAR_TARBALL="$KP_DOWNLOADS/pulsar-server-distribution-$PULSAR_VERSION-bin.tar.gz"

DYNAMODB_VERSION=3.3.1
KP_DYNAMODB_HOME="$KP_CACHE/dynamodb/$DYNAMODB_VERSION"

KP_VENV="$KP_CACHE/venv"

# libfaketime from Debian's packages, unpacked (not installed) under the cache: clockshift.sh runs
# DynamoDB Local years ahead with it.
FAKETIME_VERSION=0.9.10-2.1
KP_FAKETIME_HOME="$KP_CACHE/faketime/$FAKETIME_VERSION"
KP_FAKETIME_LIB="$KP_FAKETIME_HOME/usr/lib/$(uname -m)-linux-gnu/faketime/libfaketimeMT.so.1"

# ---- messages ---------------------------------------------------------------------------------------------

info() { printf '%s: %s\n' "$PROG" "$*" >&2; }
# die prints one line saying what failed and what to do, then exits non-zero.
die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}

now_ms() { date +%s%3N; }
# elapsed START_MS: seconds since START_MS with one decimal.
elapsed() {
  local ms=$(($(now_ms) - $1))
  printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

# ---- prerequisites ----------------------------------------------------------------------------------------

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH; $2"
}

need_java() {
  need_cmd java "install a Java 17+ JDK (Debian: apt-get install openjdk-17-jdk-headless) or put it on PATH"
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  [[ -n $v && $v -ge 17 ]] || die "java on PATH is version '${v:-unknown}', Pulsar $PULSAR_VERSION and DynamoDB Local need 17+; put a Java 17+ JDK first on PATH"
}

# with_install_lock CMD...: installs are serialised, because `make test` and tests starting extra brokers may
# both find something missing at the same time.
with_install_lock() {
  mkdir -p "$KP_CACHE"
  (
    flock -w 900 9 || die "waited 15 minutes for $KP_CACHE/.install.lock; another install seems stuck, stop it and retry"
    "$@"
  ) 9>"$KP_CACHE/.install.lock"
}

# file_hash FILE...: one short hash over the contents of the files.
file_hash() { cat "$@" | sha256sum | cut -c1-16; }

# ---- Pulsar -----------------------------------------------------------------------------------------------

pulsar_installed() { [[ -f "$KP_PULSAR_HOME/.kp-installed" ]]; }

install_pulsar() {
  pulsar_installed && return 0
  need_java
  if [[ ! -s "$KP_PULSAR_TARBALL" ]]; then
    need_cmd mvn "install Maven 3.8+ (Debian: apt-get install maven), it downloads Pulsar from Maven Central"
    mkdir -p "$KP_DOWNLOADS"
    info "downloading Pulsar $PULSAR_VERSION from Maven Central (about 240 MB)"
    local log="$KP_DOWNLOADS/mvn-pulsar.log"
    (cd "$KP_DOWNLOADS" && mvn -B -q dependency:copy \
      "-Dartifact=org.apache.pulsar:pulsar-server-distribution:$PULSAR_VERSION:tar.gz:bin" \
      -DoutputDirectory=.) >"$log" 2>&1 ||
      die "downloading Pulsar $PULSAR_VERSION with mvn dependency:copy failed (log: $log); check access to Maven Central (~/.m2/settings.xml, proxy) and retry"
    [[ -s "$KP_PULSAR_TARBALL" ]] || die "mvn succeeded but $KP_PULSAR_TARBALL is missing (log: $log)"
  fi
  info "unpacking Pulsar $PULSAR_VERSION into $KP_PULSAR_HOME"
  local tmp="$KP_CACHE/pulsar/.unpack.$$"
  rm -rf "$tmp" "$KP_PULSAR_HOME"
  mkdir -p "$tmp"
  tar -xzf "$KP_PULSAR_TARBALL" -C "$tmp" ||
    die "unpacking $KP_PULSAR_TARBALL failed; delete it (a partial download?) and rerun install"
  [[ -d "$tmp/apache-pulsar-$PULSAR_VERSION/lib" ]] ||
    die "$KP_PULSAR_TARBALL does not hold apache-pulsar-$PULSAR_VERSION/lib; delete it and rerun install"
  mv "$tmp/apache-pulsar-$PULSAR_VERSION" "$KP_PULSAR_HOME"
  rm -rf "$tmp"
  # Proves the distribution runs on this Java, before anything waits on a broker.
  local out
  out=$(java -cp "$KP_PULSAR_HOME/lib/*" org.apache.pulsar.PulsarVersionStarter 2>&1) ||
    die "Pulsar $PULSAR_VERSION does not run on $(java -version 2>&1 | head -n1): $(tail -n1 <<<"$out")"
  grep -q "$PULSAR_VERSION" <<<"$out" || die "unexpected Pulsar version output: $(head -n1 <<<"$out")"
  date -u +%FT%TZ >"$KP_PULSAR_HOME/.kp-installed"
  install_pulsar_tools
}

# pulsar_tools_dir: where the compiled helpers of infra/local/pulsar/*.java live (keyed by their source).
pulsar_tools_dir() {
  printf '%s\n' "$KP_CACHE/pulsar/kp-tools-$(file_hash "$KP_LOCAL"/pulsar/*.java)"
}

# install_pulsar_tools: compiles those helpers against the distribution's jars, once.
install_pulsar_tools() {
  local dir tmp
  dir=$(pulsar_tools_dir)
  [[ -d $dir ]] && return 0
  need_cmd javac "install a Java 17+ JDK, not only a JRE (Debian: apt-get install openjdk-17-jdk-headless)"
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"
  javac -nowarn -cp "$KP_PULSAR_HOME/lib/*" -d "$tmp" "$KP_LOCAL"/pulsar/*.java >"$KP_CACHE/pulsar/kp-tools.log" 2>&1 ||
    die "compiling infra/local/pulsar/*.java against Pulsar $PULSAR_VERSION failed (log: $KP_CACHE/pulsar/kp-tools.log)"
  mv "$tmp" "$dir"
}

# pulsar_cds_archive: the path of the class-data-sharing archive for this Pulsar and this JDK build. The JVM
# maps it at start, which saves seconds of class loading; it is written by the first broker that stops cleanly
# (see pulsar.sh). A stale or foreign archive is ignored by the JVM with a warning, never fatal.
pulsar_cds_archive() {
  local java_bin java_home key
  java_bin=$(readlink -f "$(command -v java)")
  java_home=$(dirname "$(dirname "$java_bin")")
  if [[ -f "$java_home/release" ]]; then
    key=$(file_hash "$java_home/release")
  else
    key=$(printf '%s' "$java_bin" | sha256sum | cut -c1-16)
  fi
  printf '%s\n' "$KP_CACHE/pulsar/cds/pulsar-$PULSAR_VERSION-java-$key.jsa"
}

# ---- DynamoDB Local ---------------------------------------------------------------------------------------

dynamodb_stamp() { file_hash "$KP_LOCAL/dynamodb/pom.xml" "$KP_LOCAL/dynamodb/LoopbackServer.java"; }

dynamodb_installed() {
  [[ -f "$KP_DYNAMODB_HOME/.kp-installed" && "$(cat "$KP_DYNAMODB_HOME/.kp-installed")" == "$(dynamodb_stamp)" ]]
}

install_dynamodb() {
  dynamodb_installed && return 0
  need_java
  need_cmd mvn "install Maven 3.8+ (Debian: apt-get install maven), it downloads DynamoDB Local from Maven Central"
  need_cmd javac "install a Java 17+ JDK, not only a JRE (Debian: apt-get install openjdk-17-jdk-headless)"
  info "installing DynamoDB Local $DYNAMODB_VERSION from Maven Central into $KP_DYNAMODB_HOME"
  local tmp="$KP_DYNAMODB_HOME.tmp.$$" log
  mkdir -p "$KP_CACHE/dynamodb"
  log="$KP_CACHE/dynamodb/mvn-$DYNAMODB_VERSION.log"
  rm -rf "$tmp"
  # The jars and the sqlite4java native libraries (type so/dylib/dll) land in one folder, which becomes
  # java.library.path: sqlite4java finds libsqlite4java-linux-amd64-<version>.so there by name.
  mvn -B -q -f "$KP_LOCAL/dynamodb/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp/lib" >"$log" 2>&1 ||
    die "resolving DynamoDB Local with mvn dependency:copy-dependencies failed (log: $log); check access to Maven Central and retry"
  javac -nowarn -cp "$tmp/lib/*" -d "$tmp/classes" "$KP_LOCAL/dynamodb/LoopbackServer.java" >>"$log" 2>&1 ||
    die "compiling infra/local/dynamodb/LoopbackServer.java against DynamoDB Local failed (log: $log)"
  dynamodb_stamp >"$tmp/.kp-installed"
  rm -rf "$KP_DYNAMODB_HOME"
  mv "$tmp" "$KP_DYNAMODB_HOME"
}

# ---- libfaketime ------------------------------------------------------------------------------------------

install_faketime() {
  [[ -f $KP_FAKETIME_LIB ]] && return 0
  need_cmd apt-get "the clock-shifted suites take libfaketime from Debian's packages: run them on Debian or Ubuntu"
  need_cmd dpkg-deb "install dpkg (Debian: it is part of every Debian system)"
  info "downloading libfaketime $FAKETIME_VERSION from Debian's packages into $KP_FAKETIME_HOME"
  local dir="$KP_DOWNLOADS/faketime" deb tmp="$KP_FAKETIME_HOME.tmp.$$"
  mkdir -p "$dir"
  # apt-get download needs the package lists; a fresh machine may have none (or old ones) yet.
  if ! (cd "$dir" && apt-get download "libfaketime=$FAKETIME_VERSION") >"$dir/apt.log" 2>&1; then
    apt-get update >>"$dir/apt.log" 2>&1 ||
      die "apt-get update failed (log: $dir/apt.log); it needs root and access to Debian's mirrors"
    (cd "$dir" && apt-get download "libfaketime=$FAKETIME_VERSION") >>"$dir/apt.log" 2>&1 ||
      die "apt-get download libfaketime=$FAKETIME_VERSION failed (log: $dir/apt.log)"
  fi
  deb=$(ls "$dir"/libfaketime_*.deb | head -n1)
  rm -rf "$tmp"
  mkdir -p "$tmp"
  dpkg-deb -x "$deb" "$tmp" || die "unpacking $deb failed"
  rm -rf "$KP_FAKETIME_HOME"
  mv "$tmp" "$KP_FAKETIME_HOME"
  [[ -f $KP_FAKETIME_LIB ]] || die "$deb has no $KP_FAKETIME_LIB"
}

# ---- Python venv ------------------------------------------------------------------------------------------

venv_stamp() {
  { cat "$KP_LOCAL/requirements.txt" "$KP_LOCAL/constraints.txt"; python3 --version 2>&1; } | sha256sum | cut -c1-16
}

venv_installed() {
  [[ -x "$KP_VENV/bin/python" && -f "$KP_VENV/.kp-installed" && "$(cat "$KP_VENV/.kp-installed")" == "$(venv_stamp)" ]]
}

install_venv() {
  venv_installed && return 0
  need_cmd python3 "install Python 3.11+ with venv (Debian: apt-get install python3 python3-venv)"
  info "creating the Python venv $KP_VENV (moto, aws-sam-cli, cfn-lint, aws_kinesis_agg; about a minute)"
  local log="$KP_CACHE/venv-install.log"
  rm -rf "$KP_VENV"
  python3 -m venv "$KP_VENV" >"$log" 2>&1 ||
    die "python3 -m venv failed (log: $log); install the venv module (Debian: apt-get install python3-venv)"
  if ! "$KP_VENV/bin/pip" install --disable-pip-version-check --no-input -r "$KP_LOCAL/requirements.txt" >>"$log" 2>&1; then
    rm -rf "$KP_VENV"
    die "pip install -r infra/local/requirements.txt failed (log: $log); check access to PyPI and retry"
  fi
  venv_stamp >"$KP_VENV/.kp-installed"
}

# ---- processes --------------------------------------------------------------------------------------------

# pid_of_ours PIDFILE MARKER: prints the pid recorded in PIDFILE when that process is alive and its command
# line contains MARKER (an absolute path only our launches use). Anything else means a stale file: the
# process is gone, or the pid now belongs to someone else. Such a file is removed and nothing is printed.
pid_of_ours() {
  local file=$1 marker=$2 pid
  [[ -f "$file" ]] || return 0
  pid=$(tr -dc '0-9' <"$file")
  if [[ -n $pid && -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"; then
    printf '%s\n' "$pid"
  else
    rm -f "$file"
  fi
}

# stop_pid LABEL PIDFILE MARKER TIMEOUT_S: SIGTERM, wait up to TIMEOUT_S, then SIGKILL. Only for a process
# that pid_of_ours recognises; always removes the pid file. Sets STOP_FORCED=1 when SIGKILL was needed.
stop_pid() {
  local label=$1 file=$2 marker=$3 timeout=$4 pid i
  STOP_FORCED=0
  pid=$(pid_of_ours "$file" "$marker")
  if [[ -z $pid ]]; then
    rm -f "$file"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    [[ -e /proc/$pid ]] || break
    sleep 0.1
  done
  if [[ -e /proc/$pid ]]; then
    info "$label (pid $pid) still running ${timeout}s after SIGTERM; sending SIGKILL"
    STOP_FORCED=1
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      [[ -e /proc/$pid ]] || break
      sleep 0.1
    done
  fi
  rm -f "$file"
}

# port_owner PORT: a short description of who listens on PORT, if ss can tell.
port_owner() {
  local line
  command -v ss >/dev/null 2>&1 || return 0
  line=$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n1) || true
  [[ $line =~ users:\(\(\"([^\"]+)\",pid=([0-9]+) ]] && printf '%s, pid %s' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
  return 0
}

# port_in_use PORT: true when something accepts connections on 127.0.0.1:PORT (a listener on 127.0.0.1 or on
# all interfaces, both of which would make our bind fail).
port_in_use() {
  (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# check_port_free PORT WHAT HINT: dies with one line naming the port, what needs it and who has it.
check_port_free() {
  local port=$1 what=$2 hint=$3 owner
  if port_in_use "$port"; then
    owner=$(port_owner "$port")
    die "port $port ($what) on 127.0.0.1 is already in use${owner:+ by $owner}; that process was not started by this stack and is left alone: stop it, or $hint"
  fi
}

# free_ports N: N distinct ports between 20000 and 29999 (below the kernel's ephemeral range, so no
# outgoing connection takes them meanwhile) that nothing listens on now.
free_ports() {
  local n=$1 port found=()
  while ((${#found[@]} < n)); do
    port=$((20000 + RANDOM % 10000))
    [[ " ${found[*]} " == *" $port "* ]] && continue
    port_in_use "$port" || found+=("$port")
  done
  printf '%s\n' "${found[*]}"
}

# tail_log FILE: the last lines of a log, indented, for a failure message.
tail_log() {
  if [[ -f "$1" ]]; then tail -n "${2:-5}" "$1" | sed 's/^/    | /' >&2; fi
}

# write_kv_line KEY VALUE: a KEY=value line that `set -a; . file` reads back unchanged. Plain values stay
# unquoted, so simple KEY=value parsers also work; anything else is single-quoted.
write_kv_line() {
  local key=$1 value=$2
  if [[ $value =~ ^[A-Za-z0-9_./:@%+,=-]*$ ]]; then
    printf '%s=%s\n' "$key" "$value"
  else
    printf "%s='%s'\n" "$key" "${value//\'/\'\\\'\'}"
  fi
}
