#!/usr/bin/env bash
# mirrorflow demo: a private Open vSwitch (userspace datapath), two namespace "VMs" on a bridge,
# a port mirror made with the mirrorflow CLI, mirrored traffic seen on the mirror's output port,
# the VM inventory from OVSDB, and a full clean-up. Run as root on Debian 12; installs what it needs.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/demo.sh [--keep-going]

Stands up a sandbox OVS (never the system one), two namespace VMs (vm-web 10.77.0.1, vm-db
10.77.0.2) with OpenStack-style Interface external_ids, then with `mirrorflow`:
  inventory             the VMs OVSDB knows of
  mirror create         mirror vm-web's traffic (both directions) to an internal capture port
  mirror list / stats   the mirror and what it sent
and shows the mirrored frames of a ping and a TCP exchange captured on the output port.
Everything it made is removed at the end, also on failure or Ctrl-C.
USAGE
}
case "${1:-}" in -h | --help) usage; exit 0 ;; "") ;; *) echo "demo: unknown argument (argument=$1); see --help" >&2; exit 2 ;; esac

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
[ "$(id -u)" = 0 ] || { echo "demo: must run as root (network namespaces, OVS)" >&2; exit 1; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
mf() { echo "\$ mirrorflow $*"; node src/cli/bin.js "$@"; }

bash scripts/setup.sh

SANDBOX_DIR=$(mktemp -d /tmp/mf-demo.XXXXXX)
BR=br-demo
WEB=mfdemo-web
DB=mfdemo-db
CAPTURE_PID=
cleanup() {
  set +e
  [ -n "$CAPTURE_PID" ] && kill "$CAPTURE_PID" 2>/dev/null
  for vm in "$WEB" "$DB"; do bash scripts/vm.sh del "$vm" --db "unix:$SANDBOX_DIR/db.sock" >/dev/null 2>&1; done
  bash scripts/ovs-sandbox.sh stop "$SANDBOX_DIR" >/dev/null 2>&1
  rm -rf "$SANDBOX_DIR"
  echo "demo: cleaned up (sandbox, VMs, capture port)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "A private Open vSwitch in $SANDBOX_DIR (ovsdb-server + ovs-vswitchd, userspace datapath)"
set -a
eval "$(bash scripts/ovs-sandbox.sh start "$SANDBOX_DIR")"
set +a
echo "MIRRORFLOW_DB=$MIRRORFLOW_DB"
# Fixture: a bridge and two VMs wired as libvirt/OpenStack do (ovs-vsctl stands in for them here).
ovs-vsctl --db="$MIRRORFLOW_DB" -- --may-exist add-br "$BR" -- set Bridge "$BR" datapath_type=netdev
bash scripts/vm.sh add "$WEB" --bridge "$BR" --ip 10.77.0.1/24 --vm-uuid 11111111-aaaa-4000-8000-000000000001 --db "$MIRRORFLOW_DB" >/dev/null
bash scripts/vm.sh add "$DB" --bridge "$BR" --ip 10.77.0.2/24 --vm-uuid 22222222-bbbb-4000-8000-000000000002 --db "$MIRRORFLOW_DB" >/dev/null
echo "VMs: $WEB (10.77.0.1) and $DB (10.77.0.2) on $BR"

step "The VM inventory, read from Interface.external_ids over OVSDB"
mf inventory

step "Mirror vm-web's traffic to an internal capture port mirrorflow creates"
mf mirror create --bridge "$BR" --name web-watch --select-vm 11111111-aaaa-4000-8000-000000000001 --output-internal
mf mirror create --bridge "$BR" --name web-watch --select-vm 11111111-aaaa-4000-8000-000000000001 --output-internal
mf mirror list
OUT=$(node src/cli/bin.js mirror list --json | python3 -c 'import json,sys; print([m for m in json.load(sys.stdin) if m["name"]=="web-watch"][0]["outputPort"]["name"])')

step "Traffic between the VMs, as the mirror delivers it on $OUT"
tcpdump -l -n -e -i "$OUT" -c 12 'icmp or tcp port 8080' >"$SANDBOX_DIR/capture.txt" 2>"$SANDBOX_DIR/tcpdump.err" &
CAPTURE_PID=$!
for _ in $(seq 100); do grep -q 'listening on' "$SANDBOX_DIR/tcpdump.err" 2>/dev/null && break; sleep 0.05; done
ip netns exec "$DB" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("10.77.0.2", 8080)); s.listen(1)
c, _ = s.accept(); c.sendall(c.recv(100).upper()); c.close()' &
SERVER_PID=$!
for _ in $(seq 100); do ip netns exec "$DB" ss -ltn 2>/dev/null | grep -q ':8080' && break; sleep 0.05; done
ip netns exec "$WEB" ping -n -c 3 -i 0.2 10.77.0.2 | tail -2
ip netns exec "$WEB" python3 -c '
import socket
s = socket.create_connection(("10.77.0.2", 8080), timeout=5); s.sendall(b"hello from vm-web"); print("vm-web got:", s.recv(100).decode()); s.close()'
wait "$SERVER_PID" || true
for _ in $(seq 60); do kill -0 "$CAPTURE_PID" 2>/dev/null || break; sleep 0.05; done
kill -INT "$CAPTURE_PID" 2>/dev/null || true
wait "$CAPTURE_PID" 2>/dev/null || true
CAPTURE_PID=
cat "$SANDBOX_DIR/capture.txt"
echo "($(wc -l <"$SANDBOX_DIR/capture.txt") mirrored frames shown)"

step "What the mirror sent (Mirror.statistics from ovs-vswitchd)"
for _ in $(seq 60); do
  n=$(node src/cli/bin.js mirror stats --name web-watch --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["txPackets"])')
  [ "$n" -gt 0 ] && break
  sleep 0.1
done
mf mirror stats --name web-watch

step "Delete the mirror (its capture port goes with it)"
mf mirror delete --bridge "$BR" --name web-watch
mf mirror list
