#!/usr/bin/env bash
# A "VM" for tests and the demo: a network namespace wired to an OVS bridge through a veth pair,
# with the Interface external_ids OpenStack / libvirt set (attached-mac, iface-id, vm-uuid, iface-status).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/vm.sh add NAME --bridge BR --ip 10.0.0.X/24 [--mac M] [--vm-uuid U] [--iface-id I] [--db URL]
       scripts/vm.sh del NAME [--db URL]
       scripts/vm.sh exec NAME [--] COMMAND [ARGS...]
       scripts/vm.sh host-iface NAME

add   creates netns NAME with eth0 (MAC default 52:54:00:xx:xx:xx derived from NAME, tx checksum
      offload off, which TCP through the userspace datapath needs), and the host side veth
      (mf-NAME, or mf-<hash> when that exceeds 15 characters) as a port of BR with
      external_ids attached-mac, iface-id, vm-uuid (random uuids unless given), iface-status=active.
      Prints shell-exportable lines VM_NAME, VM_NS, VM_HOST_IFACE, VM_MAC, VM_IP, VM_UUID, VM_IFACE_ID.
del   kills the processes left in the netns, removes the port, the veth pair and the netns; safe to repeat.
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

check_name() {
  local name=$1
  [ -n "$name" ] || die "missing NAME; see --help"
  [[ $name =~ ^[A-Za-z0-9_.-]{1,60}$ ]] || die "invalid name, use [A-Za-z0-9_.-] (name=$name)"
}

vsctl() { ovs-vsctl --db="$DB" --timeout=30 "$@"; }

cmd_add() {
  local name=${1:-}; shift || true
  check_name "$name"
  local bridge='' ip_cidr='' mac='' vm_uuid='' iface_id=''
  DB=${MIRRORFLOW_DB:-}
  while [ $# -gt 0 ]; do
    case $1 in
      --bridge) bridge=${2:?--bridge needs a value}; shift 2 ;;
      --ip) ip_cidr=${2:?--ip needs a value}; shift 2 ;;
      --mac) mac=${2:?--mac needs a value}; shift 2 ;;
      --vm-uuid) vm_uuid=${2:?--vm-uuid needs a value}; shift 2 ;;
      --iface-id) iface_id=${2:?--iface-id needs a value}; shift 2 ;;
      --db) DB=${2:?--db needs a value}; shift 2 ;;
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
  local host
  host=$(host_iface_of "$name")

  ip netns list | awk '{print $1}' | grep -qxF -- "$name" && die "netns already exists (name=$name)"
  ip link show dev "$host" >/dev/null 2>&1 && die "host interface already exists (iface=$host)"
  vsctl br-exists "$bridge" || die "bridge not found (bridge=$bridge, db=$DB)"

  # From here on, undo everything when a step fails.
  trap 'cleanup_vm "$name" "$host" >/dev/null 2>&1 || true' EXIT
  ip netns add "$name"
  ip link add "$host" type veth peer name eth0 netns "$name"
  ip netns exec "$name" ip link set lo up
  ip netns exec "$name" ip link set eth0 address "$mac"
  ip netns exec "$name" ip addr add "$ip_cidr" dev eth0
  ip netns exec "$name" ip link set eth0 up
  # Checksum offload would leave TCP checksums partial; the userspace datapath forwards them as is.
  ip netns exec "$name" ethtool -K eth0 tx off >/dev/null
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
}

cleanup_vm() {
  local name=$1 host=$2
  if [ -n "${DB:-}" ]; then
    ovs-vsctl --db="$DB" --timeout=5 --if-exists del-port "$host" >/dev/null 2>&1 || true
  fi
  ip link del "$host" >/dev/null 2>&1 || true
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

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    add) cmd_add "$@" ;;
    del) cmd_del "$@" ;;
    exec) cmd_exec "$@" ;;
    host-iface) check_name "${1:-}"; host_iface_of "$1" ;;
    -h | --help | help) usage ;;
    '') usage >&2; exit 2 ;;
    *) die "unknown command (command=$cmd); see --help" ;;
  esac
}

main "$@"
