#!/usr/bin/env bash
# Install what mirrorflow's build, tests and demo need on a fresh Debian 12 (run as root). Idempotent:
# every step checks first and does nothing when its work is already done.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/setup.sh [--force-npm-ci]

Installs (only what is missing): Debian packages for Open vSwitch (without starting the system
service), libpcap, tcpdump, tshark, ethtool, iproute2, ping, openssl, a C toolchain and python3;
then `npm ci` in the repo root when node_modules does not match package-lock.json (or when
--force-npm-ci is given), and checks that tsx runs; Java 17 and Maven, and the Kafka broker's jars
(scripts/kafka.sh fetch, cached in ~/.cache/mirrorflow). Must run as root on Debian 12.
EOF
}

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FORCE_NPM_CI=0

say() { echo "setup: $*"; }
die() { echo "setup: $*" >&2; exit 1; }

APT_PACKAGES=(
  openvswitch-switch openvswitch-common libpcap-dev tcpdump tshark ethtool iproute2
  iputils-ping openssl build-essential python3 softflowd
)

APT_UPDATED=0
apt_update_once() {
  if [ "$APT_UPDATED" = 0 ]; then
    say "apt-get update"
    apt-get update -qq >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
  fi
}

missing_packages() { # PKG... -> the ones not installed
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"
  done
}

# Install packages without letting their maintainer scripts start system services (policy-rc.d 101):
# the project always runs its own private OVS (scripts/ovs-sandbox.sh) and never a system one.
apt_install() {
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  # shellcheck disable=SC2064
  trap "[ $created_policy = 1 ] && rm -f $policy" EXIT
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || die "apt-get install failed (packages=$*)"
  if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
  trap - EXIT
}

step_apt() {
  local missing
  mapfile -t missing < <(missing_packages "${APT_PACKAGES[@]}")
  if [ ${#missing[@]} -eq 0 ]; then
    say "debian packages present"
    return 0
  fi
  command -v apt-get >/dev/null || die "apt-get not found: this script targets Debian 12"
  apt_update_once
  # tshark asks whether non-root users may capture; answer it up front.
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
  say "installing ${missing[*]}"
  apt_install "${missing[@]}"
  mapfile -t missing < <(missing_packages "${APT_PACKAGES[@]}")
  [ ${#missing[@]} -eq 0 ] || die "packages still missing after install (packages=${missing[*]})"
  if [ -S /var/run/openvswitch/db.sock ]; then
    say "note: a system Open vSwitch is running; it is left alone and never used"
  fi
}

step_tools() {
  local t
  for t in ovsdb-server ovs-vswitchd ovsdb-tool ovs-vsctl tcpdump tshark ethtool ip ping openssl python3 cc; do
    command -v "$t" >/dev/null 2>&1 || die "tool not found after install (tool=$t)"
  done
  [ -r /usr/share/openvswitch/vswitch.ovsschema ] || die "OVS schema missing (path=/usr/share/openvswitch/vswitch.ovsschema)"
  [ -c /dev/net/tun ] || die "/dev/net/tun missing: the userspace datapath needs tap devices"
  say "tools present"
}

step_node() {
  command -v node >/dev/null || die "node not found (need Node.js >= 20.19)"
  command -v npm >/dev/null || die "npm not found"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || die "Node.js >= 20.19 required (found=$(node -v))"
  cd "$REPO_ROOT"
  local stamp=node_modules/.mirrorflow-setup-stamp want
  want=$( (cat package-lock.json; node -v; npm -v) | sha256sum | cut -d' ' -f1)
  if [ "$FORCE_NPM_CI" = 0 ] && [ -r "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && tsx_runs; then
    say "node_modules up to date"
    return 0
  fi
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed"
  tsx_runs || die "node_modules/.bin/tsx does not run after npm ci (esbuild install script blocked? see allowScripts in package.json)"
  echo "$want" >"$stamp"
  say "node_modules installed"
}

tsx_runs() {
  [ -x "$REPO_ROOT/node_modules/.bin/tsx" ] || return 1
  # Transforming TypeScript needs esbuild's native binary, which its install script provides.
  [ "$(cd "$REPO_ROOT" && node_modules/.bin/tsx -e 'const n: number = 40 + 2; console.log(n)' 2>/dev/null)" = 42 ]
}

# The libpcap addon: npm ci builds it (the package's install script); rebuild when a source changed.
step_native() {
  cd "$REPO_ROOT"
  local addon=src/capture/native/build/Release/mirrorflow_pcap.node
  if [ -f "$addon" ] && [ "$addon" -nt src/capture/native/pcap-addon.cc ] && [ "$addon" -nt src/capture/native/binding.gyp ]; then
    say "native addon up to date"
    return 0
  fi
  say "building the native libpcap addon"
  npm run --silent build:native || die "native addon build failed (see above)"
  [ -f "$addon" ] || die "native addon missing after build (path=$addon)"
}

java17_present() { # java on PATH, version 17 or newer
  command -v java >/dev/null 2>&1 || return 1
  local major
  major=$(java -version 2>&1 | head -n1 | sed -E 's/^[^"]*"(1\.)?([0-9]+).*/\2/')
  [[ $major =~ ^[0-9]+$ ]] && [ "$major" -ge 17 ]
}

# The Kafka broker of tests, benchmarks and the demo (scripts/kafka.sh): Java 17+ and Maven, then
# its classpath fetched once from Maven Central into the cache, so tests never pay for the download.
step_kafka() {
  local missing=()
  java17_present || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "apt-get not found: this script targets Debian 12"
    apt_update_once
    say "installing ${missing[*]}"
    apt_install "${missing[@]}"
    java17_present || die "Java 17 or newer not found after install (java=$(command -v java || echo none))"
    command -v mvn >/dev/null 2>&1 || die "mvn not found after install"
  fi
  bash "$REPO_ROOT/scripts/kafka.sh" fetch 2>&1 | sed 's/^kafka: /setup: kafka: /' \
    || die "fetching the Kafka classpath failed (see above)"
}

# Later steps go here: one function each, checking before doing.
STEPS=(step_apt step_tools step_node step_native step_kafka)

main() {
  while [ $# -gt 0 ]; do
    case $1 in
      --force-npm-ci) FORCE_NPM_CI=1; shift ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown option (option=$1); see --help" ;;
    esac
  done
  [ "$(id -u)" = 0 ] || die "must run as root"
  local s
  for s in "${STEPS[@]}"; do "$s"; done
  say "done"
}

main "$@"
