#!/usr/bin/env bash
# A "VM" for tests and the demo: a network namespace wired to an OVS bridge through a veth pair,
# with the Interface external_ids OpenStack / libvirt set (attached-mac, iface-id, vm-uuid, iface-status).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/vm.sh add NAME --bridge BR --ip 10.0.0.X/24 [--mac M] [--vm-uuid U] [--iface-id I] [--db URL]
                         [--impair-delay-ms D] [--impair-loss P] [--impair-seed N]
       scripts/vm.sh del NAME [--db URL]
       scripts/vm.sh exec NAME [--] COMMAND [ARGS...]
       scripts/vm.sh host-iface NAME
       scripts/vm.sh impair-stats NAME

add   creates netns NAME with eth0 (MAC default 52:54:00:xx:xx:xx derived from NAME, tx checksum
      offload off, which TCP through the userspace datapath needs), and the host side veth
      (mf-NAME, or mf-<hash> when that exceeds 15 characters) as a port of BR with
      external_ids attached-mac, iface-id, vm-uuid (random uuids unless given), iface-status=active.
      Prints shell-exportable lines VM_NAME, VM_NS, VM_HOST_IFACE, VM_MAC, VM_IP, VM_UUID, VM_IFACE_ID.
      With --impair-*: eth0 is not joined to BR directly but through the impairment forwarder
      (scripts/impair.ts): eth0 <-> mx-NAME (host) <=> forwarder <=> my-NAME <-> mf-NAME (the BR
      port, with the external_ids above), every frame both ways delayed by D ms (default 0) and
      dropped with probability P (0..1 or N%; default 0; PRNG seeded with N). GRO/GSO/TSO are off
      on the host-side ends (the forwarder sees wire-sized frames). The forwarder runs in the
      background (pid file and log in $MIRRORFLOW_IMPAIR_DIR, default /run/mirrorflow-impair;
      del removes them); add also prints VM_IMPAIR_PID, VM_IMPAIR_A, VM_IMPAIR_B, VM_IMPAIR_LOG.
del   kills the processes left in the netns (and the VM's forwarder), removes the port, the veth
      pairs and the netns; safe to repeat.
impair-stats  prints the counters of NAME's forwarder so far (one JSON line).
--db  defaults to $MIRRORFLOW_DB (as printed by scripts/ovs-sandbox.sh start). ovs-vsctl is only
      used here to emulate what libvirt / OpenStack do (fixtures), always with an explicit --db.
EOF
}

die() { echo "vm: $*" >&2; exit 1; }

# Host-side interface name (<= 15 characters, IFNAMSIZ-1), deterministic from NAME.
host_iface_of() {
  local name=$1 cand="mf-$1"
  if [ "${#cand}" -le 15 ] && [[ $name =~ ^[A-Za-z0-9_.-]+$ ]]; then
    echo "$cand"
  else
    echo "mf-$(printf '%s' "$name" | sha1sum | cut -c1-12)"
  fi
}

mac_of() {
  local h
  h=$(printf '%s' "$1" | md5sum)
  echo "52:54:00:${h:0:2}:${h:2:2}:${h:4:2}"
}

new_uuid() { cat /proc/sys/kernel/random/uuid; }

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMPAIR_DIR=${MIRRORFLOW_IMPAIR_DIR:-/run/mirrorflow-impair}

# Host-side interfaces of an impaired VM: PREFIX-NAME, or PREFIX-<hash> when that exceeds 15 characters.
impair_iface_of() {
  local prefix=$1 name=$2 cand="$1-$2"
  if [ "${#cand}" -le 15 ] && [[ $name =~ ^[A-Za-z0-9_.-]+$ ]]; then
    echo "$cand"
  else
    echo "$prefix-$(printf '%s' "$name" | sha1sum | cut -c1-12)"
  fi
}

# Pid of NAME's forwarder when it still runs (checked against its command line: pids get reused).
impair_pid_of() {
  local name=$1 pidfile="$IMPAIR_DIR/$1.pid" pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "scripts/impair.ts --a $(impair_iface_of mx "$name") " || return 1
  echo "$pid"
}

stop_impair() {
  local name=$1 pid i
  if pid=$(impair_pid_of "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$IMPAIR_DIR/$name.pid" "$IMPAIR_DIR/$name.log"
  rmdir "$IMPAIR_DIR" 2>/dev/null || true
}

# Starts the forwarder between A and B in the background; waits until it forwards.
start_impair() {
  local name=$1 a=$2 b=$3 delay=$4 loss=$5 seed=$6 log pid i
  mkdir -p "$IMPAIR_DIR"
  log="$IMPAIR_DIR/$name.log"
  local args=(--a "$a" --b "$b" --delay-ms "$delay" --loss "$loss" --json)
  [ -z "$seed" ] || args+=(--seed "$seed")
  (cd "$REPO_ROOT" && exec setsid node --import tsx scripts/impair.ts "${args[@]}") >"$log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$IMPAIR_DIR/$name.pid"
  for i in $(seq 1 300); do
    grep -q '^impair: forwarding (' "$log" 2>/dev/null && { echo "$pid"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  die "impairment forwarder did not start (name=$name, log=$log): $(tail -n 3 "$log" 2>/dev/null | tr '\n' ' ')"
}

check_name() {
  local name=$1
  [ -n "$name" ] || die "missing NAME; see --help"
  [[ $name =~ ^[A-Za-z0-9_.-]{1,60}$ ]] || die "invalid name, use [A-Za-z0-9_.-] (name=$name)"
}

vsctl() { ovs-vsctl --db="$DB" --timeout=30 "$@"; }

cmd_add() {
  local name=${1:-}; shift || true
  check_name "$name"
  local bridge='' ip_cidr='' mac='' vm_uuid='' iface_id='' impair='' delay=0 loss=0 seed=''
  DB=${MIRRORFLOW_DB:-}
  while [ $# -gt 0 ]; do
    case $1 in
      --bridge) bridge=${2:?--bridge needs a value}; shift 2 ;;
      --ip) ip_cidr=${2:?--ip needs a value}; shift 2 ;;
      --mac) mac=${2:?--mac needs a value}; shift 2 ;;
      --vm-uuid) vm_uuid=${2:?--vm-uuid needs a value}; shift 2 ;;
      --iface-id) iface_id=${2:?--iface-id needs a value}; shift 2 ;;
      --db) DB=${2:?--db needs a value}; shift 2 ;;
      --impair-delay-ms) delay=${2:?--impair-delay-ms needs a value}; impair=1; shift 2 ;;
      --impair-loss) loss=${2:?--impair-loss needs a value}; impair=1; shift 2 ;;
      --impair-seed) seed=${2:?--impair-seed needs a value}; impair=1; shift 2 ;;
      *) die "unknown option for add (option=$1)" ;;
    esac
  done
  [ -n "$bridge" ] || die "add needs --bridge (name=$name)"
  [[ $ip_cidr =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$ ]] || die "add needs --ip A.B.C.D/LEN (ip=$ip_cidr)"
  [ -n "$DB" ] || die "no database: pass --db or export MIRRORFLOW_DB (scripts/ovs-sandbox.sh start)"
  [ -n "$mac" ] || mac=$(mac_of "$name")
  [[ $mac =~ ^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$ ]] || die "invalid MAC (mac=$mac)"
  mac=${mac,,}
  [ -n "$vm_uuid" ] || vm_uuid=$(new_uuid)
  [ -n "$iface_id" ] || iface_id=$(new_uuid)
  if [ -n "$impair" ]; then
    [[ $delay =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "invalid --impair-delay-ms, expected milliseconds >= 0 (value=$delay)"
    [[ $loss =~ ^[0-9]+(\.[0-9]+)?%?$ ]] || die "invalid --impair-loss, expected 0..1 or N% (value=$loss)"
    [ -z "$seed" ] || [[ $seed =~ ^[0-9]+$ ]] || die "invalid --impair-seed, expected an integer (value=$seed)"
  fi
  local host vmside
  host=$(host_iface_of "$name")
  # The peer of the VM's eth0: the bridge port itself, or the forwarder's end when impaired.
  vmside=$host
  [ -z "$impair" ] || vmside=$(impair_iface_of mx "$name")

  ip netns list | awk '{print $1}' | grep -qxF -- "$name" && die "netns already exists (name=$name)"
  ip link show dev "$host" >/dev/null 2>&1 && die "host interface already exists (iface=$host)"
  vsctl br-exists "$bridge" || die "bridge not found (bridge=$bridge, db=$DB)"

  # From here on, undo everything when a step fails.
  trap 'cleanup_vm "$name" "$host" >/dev/null 2>&1 || true' EXIT
  ip netns add "$name"
  ip link add "$vmside" type veth peer name eth0 netns "$name"
  ip netns exec "$name" ip link set lo up
  ip netns exec "$name" ip link set eth0 address "$mac"
  ip netns exec "$name" ip addr add "$ip_cidr" dev eth0
  ip netns exec "$name" ip link set eth0 up
  # Checksum offload would leave TCP checksums partial; the userspace datapath forwards them as is.
  ip netns exec "$name" ethtool -K eth0 tx off >/dev/null
  local impair_pid='' fwd=''
  if [ -n "$impair" ]; then
    fwd=$(impair_iface_of my "$name")
    ip link add "$fwd" type veth peer name "$host"
    local dev
    for dev in "$vmside" "$fwd" "$host"; do
      sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1" >/dev/null 2>&1 || true
      ethtool -K "$dev" gro off gso off tso off >/dev/null 2>&1 || true
      ip link set "$dev" up
    done
    impair_pid=$(start_impair "$name" "$vmside" "$fwd" "$delay" "$loss" "$seed")
  fi
  ip link set "$host" up
  vsctl add-port "$bridge" "$host" -- set Interface "$host" \
    "external_ids:attached-mac=\"$mac\"" \
    "external_ids:iface-id=\"$iface_id\"" \
    "external_ids:vm-uuid=\"$vm_uuid\"" \
    "external_ids:iface-status=active"
  trap - EXIT
  echo "VM_NAME=$name"
  echo "VM_NS=$name"
  echo "VM_HOST_IFACE=$host"
  echo "VM_MAC=$mac"
  echo "VM_IP=$ip_cidr"
  echo "VM_UUID=$vm_uuid"
  echo "VM_IFACE_ID=$iface_id"
  if [ -n "$impair" ]; then
    echo "VM_IMPAIR_PID=$impair_pid"
    echo "VM_IMPAIR_A=$vmside"
    echo "VM_IMPAIR_B=$fwd"
    echo "VM_IMPAIR_LOG=$IMPAIR_DIR/$name.log"
  fi
}

cleanup_vm() {
  local name=$1 host=$2
  stop_impair "$name"
  if [ -n "${DB:-}" ]; then
    ovs-vsctl --db="$DB" --timeout=5 --if-exists del-port "$host" >/dev/null 2>&1 || true
  fi
  ip link del "$host" >/dev/null 2>&1 || true
  # An impaired VM's host-side pairs (its forwarder is stopped first, above).
  ip link del "$(impair_iface_of mx "$name")" >/dev/null 2>&1 || true
  ip link del "$(impair_iface_of my "$name")" >/dev/null 2>&1 || true
  if ip netns list | awk '{print $1}' | grep -qxF -- "$name"; then
    # Processes still inside the namespace (servers started by tests) would keep it alive.
    local pid
    for pid in $(ip netns pids "$name" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$name"
  fi
}

cmd_del() {
  local name=${1:-}; shift || true
  check_name "$name"
  DB=${MIRRORFLOW_DB:-}
  while [ $# -gt 0 ]; do
    case $1 in
      --db) DB=${2:?--db needs a value}; shift 2 ;;
      *) die "unknown option for del (option=$1)" ;;
    esac
  done
  cleanup_vm "$name" "$(host_iface_of "$name")"
}

cmd_exec() {
  local name=${1:-}; shift || true
  check_name "$name"
  [ "${1:-}" = -- ] && shift
  [ $# -gt 0 ] || die "exec needs a command (name=$name)"
  exec ip netns exec "$name" "$@"
}

cmd_impair_stats() {
  local name=${1:-} pid log before i
  check_name "$name"
  pid=$(impair_pid_of "$name") || die "no impairment forwarder running (name=$name)"
  log="$IMPAIR_DIR/$name.log"
  before=$(grep -c '^{' "$log" || true)
  kill -USR1 "$pid"
  for i in $(seq 1 50); do
    if [ "$(grep -c '^{' "$log" || true)" -gt "$before" ]; then
      grep '^{' "$log" | tail -n 1
      return 0
    fi
    sleep 0.1
  done
  die "forwarder did not report its counters (name=$name, pid=$pid)"
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    add) cmd_add "$@" ;;
    del) cmd_del "$@" ;;
    exec) cmd_exec "$@" ;;
    host-iface) check_name "${1:-}"; host_iface_of "$1" ;;
    impair-stats) cmd_impair_stats "$@" ;;
    -h | --help | help) usage ;;
    '') usage >&2; exit 2 ;;
    *) die "unknown command (command=$cmd); see --help" ;;
  esac
}

main "$@"
