#!/usr/bin/env bash
# The whole check, as CI runs it: install what is missing, typecheck, unit tests, integration tests
# (against a real private OVS), then make sure the tests left no sandbox daemon, netns or device behind.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/test.sh

Runs as root from any directory: scripts/setup.sh, npm run typecheck, npm run test:unit,
npm run test:integration (stops at the first failure), then looks for what the tests left
behind (sandbox ovsdb-server/ovs-vswitchd processes, sandbox dirs, network namespaces, bridge
tap devices): removes it and fails if there was any. Exit status 0 only when all passed.
EOF
}

case ${1:-} in
  -h | --help) usage; exit 0 ;;
  '') ;;
  *) echo "test: unknown argument (arg=$1); see --help" >&2; exit 2 ;;
esac

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
[ "$(id -u)" = 0 ] || { echo "test: must run as root (network namespaces, tap devices)" >&2; exit 1; }

say() { echo "test: $*"; }

# Test helpers (test/helpers/ovs-sandbox.ts) record here what they create.
REGISTRY=$(mktemp /tmp/mf-test-registry.XXXXXX)
export MIRRORFLOW_TEST_REGISTRY=$REGISTRY

# Live (non-zombie) pids whose command line contains STRING.
pids_mentioning() {
  local needle=$1 p state
  for p in /proc/[0-9]*; do
    [ -r "$p/cmdline" ] || continue
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$needle" || continue
    state=$(sed 's/.*) //' "$p/stat" 2>/dev/null | cut -c1)
    [ "$state" = Z ] || [ "$state" = X ] || [ -z "$state" ] || echo "${p#/proc/}"
  done
}

check_leftovers() {
  local left=() kind name pid p dir
  # Namespaces (and the processes inside them) first, then sandboxes, then what is still around.
  while read -r kind name; do
    [ "$kind" = netns ] || continue
    if [ -e "/run/netns/$name" ]; then
      left+=("netns $name")
      bash scripts/vm.sh del "$name" >/dev/null 2>&1 || ip netns del "$name" 2>/dev/null || true
    fi
  done <"$REGISTRY"
  while read -r kind name; do
    [ "$kind" = dir ] || continue
    for pid in $(pids_mentioning "$name/"); do
      left+=("process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80))")
    done
    if [ -f "$name/.mf-ovs-sandbox" ]; then
      left+=("sandbox $name")
      bash scripts/ovs-sandbox.sh stop "$name" >/dev/null 2>&1 || true
    fi
    for pid in $(pids_mentioning "$name/"); do kill -KILL "$pid" 2>/dev/null || true; done
    if [ -e "$name" ]; then
      case $name in /tmp/mf-ovs-test.*) left+=("dir $name"); rm -rf -- "$name" ;; esac
    fi
  done <"$REGISTRY"
  while read -r kind name; do
    [ "$kind" = iface ] || continue
    if [ -e "/sys/class/net/$name" ]; then
      left+=("interface $name")
      ip link del "$name" 2>/dev/null || true
    fi
  done <"$REGISTRY"
  # Daemons of any test sandbox whose directory is gone are orphans, whichever run started them.
  for p in $(pids_mentioning /tmp/mf-ovs-test.); do
    dir=$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -o '/tmp/mf-ovs-test\.[A-Za-z0-9]*' | head -n1)
    if [ -n "$dir" ] && [ ! -d "$dir" ]; then
      left+=("orphan process $p (dir=$dir)")
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  rm -f "$REGISTRY"
  if [ ${#left[@]} -gt 0 ]; then
    say "FAIL: the tests left these behind (now removed):"
    printf '  %s\n' "${left[@]}"
    return 1
  fi
  say "no leftovers"
}

rc=0
for step in "bash scripts/setup.sh" "npm run typecheck" "npm run test:unit" "npm run test:integration"; do
  say "== $step"
  if ! $step; then
    say "FAIL: $step"
    rc=1
    break
  fi
done
check_leftovers || rc=1
if [ "$rc" = 0 ]; then say "all passed"; else say "failed"; fi
exit "$rc"
