#!/usr/bin/env bash
# Private Open vSwitch sandbox: an ovsdb-server and an ovs-vswitchd (userspace datapath) living
# entirely in one directory, so tests and the demo never touch a system OVS (/var/run/openvswitch).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/ovs-sandbox.sh COMMAND [DIR] [options]

Commands:
  start [DIR] [--ssl-key F --ssl-cert F --ssl-ca F] [--no-vswitchd]
                     start ovsdb-server + ovs-vswitchd in DIR (default: a new /tmp/mf-ovs.XXXXXX,
                     remembered in /tmp/mf-ovs-sandbox.state) and print shell-exportable lines:
                       OVS_SANDBOX_DIR=... MIRRORFLOW_DB=unix:DIR/db.sock OVS_SANDBOX_TCP=tcp:127.0.0.1:PORT
                     (plus OVS_SANDBOX_SSL=ssl:127.0.0.1:PORT with --ssl-*). Starting a running sandbox
                     again only prints its lines; a sandbox whose daemons died is restarted on the same
                     db file, unix socket and ports. --no-vswitchd runs ovsdb-server only (enough for
                     OVSDB client tests, and free of the one-datapath-per-host limit below).
  stop [DIR]         stop both daemons (SIGTERM, SIGKILL after a deadline), remove the bridges' tap
                     devices and the directory. Safe to repeat.
  status [DIR]       print the state of both daemons; exit 0 when both run, 3 otherwise.
  env [DIR]          print the exportable lines of a running sandbox.
  kill-ovsdb DIR     SIGKILL ovsdb-server only (fault injection for tests).
  restart-ovsdb DIR  restart ovsdb-server on the same db file, unix socket and tcp/ssl ports.
  restart-vswitchd DIR
                     stop ovs-vswitchd (SIGTERM) and start it again: bridges, ports and internal
                     ports are rebuilt from the database (their devices are recreated).

Usage in a shell:  set -a; eval "$(scripts/ovs-sandbox.sh start)"; set +a; ...; scripts/ovs-sandbox.sh stop
Only one sandbox per host can run ovs-vswitchd (the userspace datapath is a tap named ovs-netdev);
a second start waits up to $OVS_SANDBOX_DP_WAIT_S (default 60) seconds for the first to stop.
Bridges are created by callers with datapath_type=netdev (no kernel module needed), e.g.
  ovs-vsctl --db="$MIRRORFLOW_DB" add-br br0 -- set bridge br0 datapath_type=netdev
EOF
}

die() { echo "ovs-sandbox: $*" >&2; exit 1; }
log() { echo "ovs-sandbox: $*" >&2; }

SCHEMA=${OVS_SANDBOX_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}
STATE_FILE=${OVS_SANDBOX_STATE_FILE:-/tmp/mf-ovs-sandbox.state}
MARKER=.mf-ovs-sandbox
START_TIMEOUT_S=${OVS_SANDBOX_START_TIMEOUT_S:-20}
# The userspace datapath is one tap device named "ovs-netdev" per network namespace, so only one
# ovs-vswitchd with netdev bridges can run per host: sandboxes take turns through this owner file.
DP_LOCK_FILE=${OVS_SANDBOX_DP_LOCK_FILE:-/tmp/mf-ovs-netdev.lock}
DP_OWNER_FILE=${OVS_SANDBOX_DP_OWNER_FILE:-/tmp/mf-ovs-netdev.owner}
DP_WAIT_S=${OVS_SANDBOX_DP_WAIT_S:-60}
STOP_TIMEOUT_S=${OVS_SANDBOX_STOP_TIMEOUT_S:-5}

need_tools() {
  local t
  for t in ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-appctl ovsdb-client ss; do
    command -v "$t" >/dev/null 2>&1 || die "missing tool $t (run scripts/setup.sh as root)"
  done
  [ -r "$SCHEMA" ] || die "schema not found (path=$SCHEMA)"
  [ "$(id -u)" = 0 ] || die "must run as root (ovs-vswitchd opens tap devices)"
}

# Keep every OVS default path inside the sandbox.
set_ovs_env() {
  export OVS_RUNDIR=$1 OVS_LOGDIR=$1 OVS_DBDIR=$1 OVS_SYSCONFDIR=$1 OVS_PKGDATADIR=/usr/share/openvswitch
}

# pid of daemon NAME in DIR when it runs (and really is that sandbox's daemon), else empty.
daemon_pid() {
  local dir=$1 name=$2 pid cmd
  [ -r "$dir/$name.pid" ] || return 0
  pid=$(tr -dc '0-9' <"$dir/$name.pid" 2>/dev/null) || return 0
  [ -n "$pid" ] || return 0
  [ -r "/proc/$pid/cmdline" ] || return 0
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
  case $cmd in *"$name"*"$dir/"*) echo "$pid" ;; esac
  return 0
}

# Poll COMMAND... until it succeeds or the deadline passes.
wait_until() {
  local timeout_s=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout_s))
  while ! "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "timed out after ${timeout_s}s waiting for $what"
    fi
    sleep 0.1
  done
}

# Ports ovsdb-server PID listens on (tcp, loopback).
listen_ports_of() {
  ss -Htlnp 2>/dev/null | awk -v pat="pid=$1," 'index($0, pat) { n = split($4, a, ":"); print a[n] }' | sort -u
}

resolve_dir() { # [DIR] -> DIR (or empty) from argument or state file
  if [ -n "${1:-}" ]; then
    case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac
  elif [ -r "$STATE_FILE" ]; then
    head -n1 "$STATE_FILE"
  fi
}

load_conf() {
  TCP_PORT='' SSL_PORT='' SSL_KEY='' SSL_CERT='' SSL_CA='' NO_VSWITCHD=0
  # shellcheck disable=SC1091
  [ -r "$1/sandbox.conf" ] && . "$1/sandbox.conf"
  return 0
}

save_conf() {
  local dir=$1
  {
    printf 'TCP_PORT=%q\n' "$TCP_PORT"
    printf 'SSL_PORT=%q\n' "$SSL_PORT"
    printf 'SSL_KEY=%q\n' "$SSL_KEY"
    printf 'SSL_CERT=%q\n' "$SSL_CERT"
    printf 'SSL_CA=%q\n' "$SSL_CA"
    printf 'NO_VSWITCHD=%q\n' "$NO_VSWITCHD"
  } >"$dir/sandbox.conf.tmp"
  mv "$dir/sandbox.conf.tmp" "$dir/sandbox.conf"
}

print_env() {
  local dir=$1
  load_conf "$dir"
  echo "OVS_SANDBOX_DIR=$dir"
  echo "MIRRORFLOW_DB=unix:$dir/db.sock"
  echo "OVS_SANDBOX_TCP=tcp:127.0.0.1:$TCP_PORT"
  echo "OVS_SANDBOX_TCP_PORT=$TCP_PORT"
  if [ -n "$SSL_PORT" ]; then
    echo "OVS_SANDBOX_SSL=ssl:127.0.0.1:$SSL_PORT"
    echo "OVS_SANDBOX_SSL_PORT=$SSL_PORT"
  fi
}

start_ovsdb() {
  local dir=$1 pid port ports new
  local args=("$dir/conf.db" "--remote=punix:$dir/db.sock"
    "--pidfile=$dir/ovsdb-server.pid" --detach "--log-file=$dir/ovsdb-server.log"
    "--unixctl=$dir/ovsdb-server.ctl")
  if [ -n "$SSL_KEY" ]; then
    args+=("--private-key=$SSL_KEY" "--certificate=$SSL_CERT" "--ca-cert=$SSL_CA")
  fi
  # First start: ptcp:0 lets the kernel pick a free port (race-free); restarts reuse the recorded ports.
  args+=("--remote=ptcp:${TCP_PORT:-0}:127.0.0.1")
  [ -n "$SSL_PORT" ] && args+=("--remote=pssl:$SSL_PORT:127.0.0.1")
  rm -f "$dir/db.sock"
  ovsdb-server "${args[@]}" 2>>"$dir/ovsdb-server.stderr" || die "ovsdb-server failed to start (log=$dir/ovsdb-server.log)"
  pid=$(daemon_pid "$dir" ovsdb-server)
  [ -n "$pid" ] || die "ovsdb-server exited right after start (log=$dir/ovsdb-server.log)"
  wait_until "$START_TIMEOUT_S" "ovsdb-server on unix:$dir/db.sock" ovsdb-client --timeout=2 list-dbs "unix:$dir/db.sock"
  if [ -z "$TCP_PORT" ]; then
    wait_until "$START_TIMEOUT_S" "ovsdb-server tcp listener" test -n "$(listen_ports_of "$pid")"
    TCP_PORT=$(listen_ports_of "$pid" | head -n1)
  fi
  if [ -n "$SSL_KEY" ] && [ -z "$SSL_PORT" ]; then
    ovs-appctl -t "$dir/ovsdb-server.ctl" ovsdb-server/add-remote "pssl:0:127.0.0.1" >/dev/null
    local deadline=$((SECONDS + START_TIMEOUT_S))
    while [ -z "$SSL_PORT" ]; do
      ports=$(listen_ports_of "$pid")
      for port in $ports; do [ "$port" != "$TCP_PORT" ] && SSL_PORT=$port; done
      [ -n "$SSL_PORT" ] && break
      [ "$SECONDS" -ge "$deadline" ] && die "timed out waiting for the ssl listener (log=$dir/ovsdb-server.log)"
      sleep 0.1
    done
  fi
  save_conf "$dir"
  wait_until "$START_TIMEOUT_S" "ovsdb-server on tcp:127.0.0.1:$TCP_PORT" \
    bash -c "ss -Htlnp 'sport = :$TCP_PORT' | grep -q 'pid=$pid,'"
  wait_until "$START_TIMEOUT_S" "ovsdb-server on tcp:127.0.0.1:$TCP_PORT" ovsdb-client --timeout=2 list-dbs "tcp:127.0.0.1:$TCP_PORT"
  if [ -n "$SSL_PORT" ]; then
    wait_until "$START_TIMEOUT_S" "ovsdb-server on ssl:127.0.0.1:$SSL_PORT" \
      bash -c "ss -Htlnp 'sport = :$SSL_PORT' | grep -q 'pid=$pid,'"
  fi
}

start_vswitchd() {
  local dir=$1
  ovs-vswitchd "unix:$dir/db.sock" "--pidfile=$dir/ovs-vswitchd.pid" --detach \
    "--log-file=$dir/ovs-vswitchd.log" "--unixctl=$dir/ovs-vswitchd.ctl" 2>>"$dir/ovs-vswitchd.stderr" \
    || die "ovs-vswitchd failed to start (log=$dir/ovs-vswitchd.log)"
  [ -n "$(daemon_pid "$dir" ovs-vswitchd)" ] || die "ovs-vswitchd exited right after start (log=$dir/ovs-vswitchd.log)"
  wait_until "$START_TIMEOUT_S" "ovs-vswitchd control socket" ovs-appctl -t "$dir/ovs-vswitchd.ctl" version
}

# Is the datapath owner recorded as "DIR PID" still alive (its ovs-vswitchd runs, or its start is underway)?
owner_alive() {
  local odir=$1 opid=$2
  [ -n "$odir" ] && [ -f "$odir/$MARKER" ] || return 1
  [ -n "$(daemon_pid "$odir" ovs-vswitchd)" ] && return 0
  [ -n "$opid" ] && [ -d "/proc/$opid" ] && [ "$(awk '{print $3}' "/proc/$opid/stat" 2>/dev/null)" != Z ]
}

claim_datapath() {
  local dir=$1 odir opid deadline=$((SECONDS + DP_WAIT_S)) warned=0
  while :; do
    exec 9>>"$DP_LOCK_FILE"
    flock -w 10 9 || die "could not lock the datapath owner file (file=$DP_LOCK_FILE)"
    odir='' opid=''
    [ -r "$DP_OWNER_FILE" ] && read -r odir opid <"$DP_OWNER_FILE" || true
    if [ -z "$odir" ] || [ "$odir" = "$dir" ] || ! owner_alive "$odir" "$opid"; then
      echo "$dir $$" >"$DP_OWNER_FILE"
      exec 9>&-
      return 0
    fi
    exec 9>&-
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "the userspace datapath (ovs-netdev) is used by another sandbox for more than ${DP_WAIT_S}s (dir=$odir); one per host; stop it: scripts/ovs-sandbox.sh stop $odir"
    fi
    if [ "$warned" = 0 ]; then log "waiting for another sandbox to release the userspace datapath (dir=$odir)"; warned=1; fi
    sleep 0.2
  done
}

# Release datapath ownership of DIR; succeeds (exit 0) only when DIR was the owner.
release_datapath() {
  local dir=$1 odir opid rc=1
  exec 9>>"$DP_LOCK_FILE"
  flock -w 10 9 || die "could not lock the datapath owner file (file=$DP_LOCK_FILE)"
  odir='' opid=''
  [ -r "$DP_OWNER_FILE" ] && read -r odir opid <"$DP_OWNER_FILE" || true
  if [ "$odir" = "$dir" ]; then rm -f "$DP_OWNER_FILE"; rc=0; fi
  exec 9>&-
  return $rc
}

cmd_start() {
  local dir='' ssl_key='' ssl_cert='' ssl_ca='' created=0 no_vswitchd=0
  case ${1:-} in --*) ;; *) dir=${1:-}; shift || true ;; esac
  while [ $# -gt 0 ]; do
    case $1 in
      --ssl-key) ssl_key=${2:?--ssl-key needs a file}; shift 2 ;;
      --ssl-cert) ssl_cert=${2:?--ssl-cert needs a file}; shift 2 ;;
      --ssl-ca) ssl_ca=${2:?--ssl-ca needs a file}; shift 2 ;;
      --no-vswitchd) no_vswitchd=1; shift ;;
      *) die "unknown option for start (option=$1)" ;;
    esac
  done
  if [ -n "$ssl_key$ssl_cert$ssl_ca" ]; then
    [ -r "$ssl_key" ] && [ -r "$ssl_cert" ] && [ -r "$ssl_ca" ] || die "--ssl-key, --ssl-cert and --ssl-ca must all name readable files"
  fi
  need_tools
  local use_state=0
  if [ -z "$dir" ] || [ "$dir" = - ]; then
    use_state=1
    dir=$(resolve_dir "")
    if [ -n "$dir" ] && [ ! -f "$dir/$MARKER" ]; then dir=''; fi
    if [ -z "$dir" ]; then
      dir=$(mktemp -d /tmp/mf-ovs.XXXXXX)
      created=1
    fi
  else
    dir=$(resolve_dir "$dir")
  fi
  mkdir -p "$dir"
  set_ovs_env "$dir"
  if [ ! -f "$dir/$MARKER" ]; then
    [ -z "$(ls -A "$dir")" ] || die "directory is not empty and not a sandbox (dir=$dir)"
    created=1
  fi
  if [ "$created" = 1 ]; then
    : >"$dir/$MARKER"
    TCP_PORT='' SSL_PORT=''
    SSL_KEY=$ssl_key SSL_CERT=$ssl_cert SSL_CA=$ssl_ca NO_VSWITCHD=$no_vswitchd
    save_conf "$dir"
    ovsdb-tool create "$dir/conf.db" "$SCHEMA" || die "ovsdb-tool create failed (dir=$dir)"
  else
    load_conf "$dir"
    if [ -n "$ssl_key" ] && [ -z "$SSL_KEY" ]; then
      die "sandbox already exists without ssl; stop it first (dir=$dir)"
    fi
  fi
  [ "$use_state" = 1 ] && echo "$dir" >"$STATE_FILE"

  if [ -z "$(daemon_pid "$dir" ovsdb-server)" ]; then
    start_ovsdb "$dir"
  fi
  load_conf "$dir"
  ovs-vsctl --db="unix:$dir/db.sock" --no-wait --timeout=10 init || die "ovs-vsctl init failed (dir=$dir)"
  if [ "$NO_VSWITCHD" != 1 ]; then
    if [ -z "$(daemon_pid "$dir" ovs-vswitchd)" ]; then
      claim_datapath "$dir"
      start_vswitchd "$dir"
    fi
    # Without --no-wait, ovs-vsctl returns once ovs-vswitchd has applied the configuration: both answer.
    wait_until "$START_TIMEOUT_S" "ovs-vswitchd to apply the database (dir=$dir)" \
      ovs-vsctl --db="unix:$dir/db.sock" --timeout=5 init
  fi
  print_env "$dir"
}

# Kill the daemon NAME of DIR: SIGTERM, then SIGKILL after the deadline; wait until it is gone.
stop_daemon() {
  local dir=$1 name=$2 sig=${3:-TERM} pid deadline
  pid=$(daemon_pid "$dir" "$name")
  [ -n "$pid" ] || { rm -f "$dir/$name.pid"; return 0; }
  kill "-$sig" "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT_S))
  while [ -d "/proc/$pid" ] && [ -n "$(daemon_pid "$dir" "$name")" ]; do
    if [ "$SECONDS" -ge "$deadline" ] && [ "$sig" != KILL ]; then
      log "$name did not exit after SIGTERM, sending SIGKILL (pid=$pid)"
      kill -KILL "$pid" 2>/dev/null || true
      sig=KILL
      deadline=$((SECONDS + STOP_TIMEOUT_S))
    elif [ "$SECONDS" -ge "$deadline" ]; then
      die "$name survived SIGKILL (pid=$pid)"
    fi
    sleep 0.05
  done
  rm -f "$dir/$name.pid"
}

# Names of all internal interfaces (bridge local ports) recorded in the sandbox db.
internal_ifaces() {
  local dir=$1
  [ -r "$dir/conf.db" ] || return 0
  ovsdb-tool query "$dir/conf.db" \
    '["Open_vSwitch",{"op":"select","table":"Interface","where":[["type","==","internal"]],"columns":["name"]}]' \
    2>/dev/null | grep -o '"name":"[^"]*"' | sed 's/^"name":"//; s/"$//' || true
}

cmd_stop() {
  local dir
  dir=$(resolve_dir "${1:-}")
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    [ -z "${1:-}" ] && rm -f "$STATE_FILE"
    log "nothing to stop${dir:+ (dir=$dir)}"
    return 0
  fi
  [ -f "$dir/$MARKER" ] || die "not a sandbox directory, refusing to touch it (dir=$dir)"
  set_ovs_env "$dir"
  stop_daemon "$dir" ovs-vswitchd
  stop_daemon "$dir" ovsdb-server
  # The userspace datapath makes bridge ports persistent tap devices: remove those of this sandbox.
  local ifc dp_ifc=''
  if release_datapath "$dir"; then dp_ifc=ovs-netdev; fi
  for ifc in $(internal_ifaces "$dir") $dp_ifc; do
    if [ -e "/sys/class/net/$ifc/tun_flags" ]; then
      ip link del "$ifc" 2>/dev/null || true
    fi
  done
  rm -rf -- "$dir"
  if [ -r "$STATE_FILE" ] && [ "$(head -n1 "$STATE_FILE")" = "$dir" ]; then rm -f "$STATE_FILE"; fi
  log "stopped (dir=$dir)"
}

cmd_status() {
  local dir rc=0 pid name
  dir=$(resolve_dir "${1:-}")
  if [ -z "$dir" ] || [ ! -f "$dir/$MARKER" ]; then
    echo "no sandbox${dir:+ (dir=$dir)}"
    return 3
  fi
  echo "dir: $dir"
  load_conf "$dir"
  for name in ovsdb-server ovs-vswitchd; do
    pid=$(daemon_pid "$dir" "$name")
    if [ -n "$pid" ]; then echo "$name: running (pid=$pid)"
    elif [ "$name" = ovs-vswitchd ] && [ "$NO_VSWITCHD" = 1 ]; then echo "$name: not used (--no-vswitchd)"
    else echo "$name: stopped"; rc=3; fi
  done
  return $rc
}

cmd_env() {
  local dir
  dir=$(resolve_dir "${1:-}")
  [ -n "$dir" ] && [ -f "$dir/$MARKER" ] || die "no sandbox${dir:+ (dir=$dir)}; run: scripts/ovs-sandbox.sh start"
  [ -n "$(daemon_pid "$dir" ovsdb-server)" ] || die "ovsdb-server is not running (dir=$dir)"
  print_env "$dir"
}

cmd_kill_ovsdb() {
  local dir=${1:-}
  [ -n "$dir" ] || die "kill-ovsdb needs DIR"
  [ -f "$dir/$MARKER" ] || die "not a sandbox directory (dir=$dir)"
  stop_daemon "$dir" ovsdb-server KILL
}

cmd_restart_ovsdb() {
  local dir=${1:-}
  [ -n "$dir" ] || die "restart-ovsdb needs DIR"
  [ -f "$dir/$MARKER" ] || die "not a sandbox directory (dir=$dir)"
  need_tools
  set_ovs_env "$dir"
  stop_daemon "$dir" ovsdb-server
  load_conf "$dir"
  start_ovsdb "$dir"
  print_env "$dir"
}

cmd_restart_vswitchd() {
  local dir=${1:-}
  [ -n "$dir" ] || die "restart-vswitchd needs DIR"
  [ -f "$dir/$MARKER" ] || die "not a sandbox directory (dir=$dir)"
  need_tools
  set_ovs_env "$dir"
  load_conf "$dir"
  [ "$NO_VSWITCHD" = 1 ] && die "sandbox runs without ovs-vswitchd (dir=$dir)"
  stop_daemon "$dir" ovs-vswitchd
  claim_datapath "$dir"
  start_vswitchd "$dir"
  wait_until "$START_TIMEOUT_S" "ovs-vswitchd to apply the database (dir=$dir)" \
    ovs-vsctl --db="unix:$dir/db.sock" --timeout=5 init
  print_env "$dir"
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env "$@" ;;
    kill-ovsdb) cmd_kill_ovsdb "$@" ;;
    restart-ovsdb) cmd_restart_ovsdb "$@" ;;
    restart-vswitchd) cmd_restart_vswitchd "$@" ;;
    -h | --help | help) usage ;;
    '') usage >&2; exit 2 ;;
    *) die "unknown command (command=$cmd); see --help" ;;
  esac
}

main "$@"
