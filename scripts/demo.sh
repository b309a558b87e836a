#!/usr/bin/env bash
# mirrorflow demo, the README's first command: a private Open vSwitch (userspace datapath) with four
# namespace VMs and traffic between them, `mirrorflow agent` mirroring the bridge and aggregating per
# VM pair, and `mirrorflow top` showing the pairs live; then a full clean-up. Root, Debian 12.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/demo.sh [--duration SECONDS] [--kafka] [--skip-setup]

Run as root on Debian 12. Installs what it needs (scripts/setup.sh), then builds, in a private OVS
sandbox (never the system one), a bridge with four namespace VMs, named in OVSDB as a cloud
platform names them (Interface external_ids vm-uuid, vm-name):

  vm-web   10.77.0.1   pings vm-api; sends a 3 MB bulk TCP transfer to vm-cache every 3 s, unpaced
  vm-api   10.77.0.2   10 short TCP connections/s and a TCP stream (8 Mbit/s) to vm-db
  vm-db    10.77.0.3   behind an impairment forwarder: 10 ms delay each way, 2 % loss each way
  vm-cache 10.77.0.4   UDP to vm-api (200 datagrams/s); 5 short TCP connections/s to vm-web

and starts `mirrorflow agent --bridge br-mfdemo --select-all --window 5` on its embedded default
(the pipeline in-process, pairs and alerts as JSON lines), and shows `mirrorflow top` on its output,
refreshed every window, for --duration seconds (default 40). Then it stops the agent (SIGTERM) and
removes everything it made (VMs, forwarder, sandbox, broker, temp files), also on failure or Ctrl-C.

  --duration S   how long the live table runs (default 40)
  --kafka        the same through a local Kafka broker (scripts/kafka.sh): the agent sends flow
                 records to the flows topic, `mirrorflow pipeline` aggregates them into the pairs
                 topic, and `mirrorflow top --brokers` reads it
  --skip-setup   do not run scripts/setup.sh (when it ran already)
USAGE
}

DURATION_S=40
KAFKA=0
SETUP=1
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --duration)
      [[ ${2:-} =~ ^[0-9]+$ ]] && [ "$2" -ge 5 ] || { echo "demo: invalid --duration, expected whole seconds >= 5 (duration=${2:-})" >&2; exit 2; }
      DURATION_S=$2; shift 2 ;;
    --kafka) KAFKA=1; shift ;;
    --skip-setup) SETUP=0; shift ;;
    *) echo "demo: unknown argument (argument=$1); see --help" >&2; exit 2 ;;
  esac
done

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
[ "$(id -u)" = 0 ] || { echo "demo: must run as root (network namespaces, OVS)" >&2; exit 1; }
# shellcheck source=lib/demo-env.sh
. "$REPO_ROOT/scripts/lib/demo-env.sh"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
WINDOW_S=5

on_exit() {
  local rc=$?
  mfenv_finish "$rc" demo "cleaned up (agent, traffic, VMs, impairment forwarder, OVS sandbox${MFENV_KAFKA_DIR:+, Kafka broker}, temp files)"
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$SETUP" = 1 ]; then
  step "Installing what the demo needs (scripts/setup.sh: only what is missing)"
  bash scripts/setup.sh
fi
mfenv_init demo

step "A private Open vSwitch (ovsdb-server + ovs-vswitchd, userspace datapath)"
mfenv_start_ovs
echo "sandbox in $MFENV_OVS_DIR, OVSDB at $MFENV_DB"

step "Bridge $MFENV_BR with four namespace VMs (vm-db behind the impairment forwarder)"
mfenv_add_vms
echo "\$ mirrorflow inventory   # what OVSDB knows of the VMs (Interface external_ids)"
mf inventory

step "Traffic between the VMs, in the background"
mfenv_start_traffic demo
cat <<EOF
  vm-web   -> vm-api    ping, 5 per second
  vm-web   -> vm-cache  3 MB bulk TCP every 3 s (unpaced: the userspace datapath drops some of its bursts)
  vm-api   -> vm-db     10 short TCP connections/s + a TCP stream at 8 Mbit/s (vm-db: ${MFENV_DELAY_MS} ms each way, ${MFENV_LOSS} loss)
  vm-cache -> vm-api    UDP, 200 datagrams/s
  vm-cache -> vm-web    5 short TCP connections/s
  (vm-api, vm-db and vm-cache send through tbf at $MFENV_PACE, so they show no loss of the datapath's own)
EOF

PAIRS=$MFENV_TMP/pairs.jsonl
# Two threshold rules of the demo's own (the built-in rules are anomaly and security rules, which
# need a learning period): they mark the impaired pair and the pair with the unpaced bulk transfer.
RULES='{"thresholds": [
  {"name": "slow-handshake", "metric": "tcp.handshakeRttUs.p50", "operator": ">", "value": 10000},
  {"name": "lossy", "metric": "lossRate", "operator": ">", "value": 0.05}]}'
RULES=$(tr -d '\n' <<<"$RULES")
ALERTS=$MFENV_TMP/alerts.jsonl
if [ "$KAFKA" = 1 ]; then
  step "A local Kafka broker and the pipeline (a consumer group writing the pairs and alerts topics)"
  mfenv_start_kafka
  echo "broker at $MFENV_BROKERS"
  echo "{\"rules\": $RULES}" >"$MFENV_TMP/pipeline.json"
  mfenv_start_bg pipeline "$MFENV_TMP/pipeline.log" node src/cli/bin.js pipeline --config "$MFENV_TMP/pipeline.json" --brokers "$MFENV_BROKERS" --window "$WINDOW_S"
  PIPELINE_PID=${MFENV_BG_PIDS[-1]%% *}
  deadline=$((SECONDS + 120))
  until grep -q 'pipeline: running' "$MFENV_TMP/pipeline.log" 2>/dev/null; do
    kill -0 "$PIPELINE_PID" 2>/dev/null || mfenv_die "the pipeline exited at start: $(tail -n 5 "$MFENV_TMP/pipeline.log" | tr '\n' ' ')"
    [ "$SECONDS" -lt "$deadline" ] || mfenv_die "the pipeline did not start within 120 s (log=$MFENV_TMP/pipeline.log)"
    sleep 0.2
  done
  echo "\$ mirrorflow pipeline --config pipeline.json --brokers $MFENV_BROKERS --window $WINDOW_S   # running (pipeline.json: the rules below)"
  echo "  rules: $RULES"
  step "The agent: mirror the whole bridge, capture, flow records to Kafka"
  echo "\$ mirrorflow agent --bridge $MFENV_BR --select-all --window $WINDOW_S --brokers $MFENV_BROKERS"
  mfenv_start_agent --bridge "$MFENV_BR" --select-all --window "$WINDOW_S" --brokers "$MFENV_BROKERS" --agent-id demo-hv1
  TOP=(top --brokers "$MFENV_BROKERS")
else
  step "The agent on its embedded default: mirror the whole bridge, capture, aggregate in-process"
  echo "\$ mirrorflow agent --bridge $MFENV_BR --select-all --window $WINDOW_S --pairs-out $PAIRS --alerts-out $ALERTS --set 'sink.rules=$RULES'"
  mfenv_start_agent --bridge "$MFENV_BR" --select-all --window "$WINDOW_S" --pairs-out "$PAIRS" --alerts-out "$ALERTS" --agent-id demo-hv1 \
    --set "sink.rules=$RULES"
  TOP=(top --file "$PAIRS" --alerts "$ALERTS")
fi
grep -m1 '^agent: running' "$MFENV_TMP/agent.log"

step "Live table of VM pairs, one window every ${WINDOW_S} s, for ${DURATION_S} s"
echo "\$ mirrorflow ${TOP[*]}"
echo "(the first window shows once the second has started, about $((2 * WINDOW_S)) s from now; Ctrl-C ends the demo)"
rc=0
timeout --foreground -s INT "$DURATION_S" node src/cli/bin.js "${TOP[@]}" || rc=$?
# 124: the duration passed (timeout's status); 0: top ended by itself
[ "$rc" = 0 ] || [ "$rc" = 124 ] || mfenv_die "mirrorflow top failed (exit $rc)"

step "Stopping the agent (SIGTERM: it flushes its flows and removes its mirror)"
agent_rc=0
mfenv_stop_agent || agent_rc=$?
grep '^agent: stopped' "$MFENV_TMP/agent.log" || true
[ "$agent_rc" = 0 ] || mfenv_die "the agent exited with status $agent_rc (log=$MFENV_TMP/agent.log)"

loss_pct=${MFENV_LOSS%\%}
case $MFENV_LOSS in *%) ;; *) loss_pct=$(awk -v p="$MFENV_LOSS" 'BEGIN { print p * 100 }') ;; esac
cat <<EOF

What the table shows: one row per pair of VMs seen talking in the window (names from OVSDB's
external_ids vm-name): throughput, packets and flows; the TCP handshake RTT (p50/p95, measured at
the mirror, i.e. inside the switch); the ping RTT (ECHO RTT); the loss rate of TCP data, from the
retransmissions the mirror sees (RETX) and from sequence gaps (GAP: segments lost before the mirror
saw them); and the alerts firing for the pair (ALERTS: the demo's two threshold rules,
slow-handshake: handshake RTT p50 > 10 ms, and lossy: loss > 5 %).
  vm-api <-> vm-db     the impaired pair: handshake RTT ~ $(awk -v d="$MFENV_DELAY_MS" 'BEGIN { print 2 * d }') ms (the forwarder's ${MFENV_DELAY_MS} ms in each
                       direction) and loss ~ ${loss_pct} % (the segments of vm-api the forwarder drops, retransmitted)
  vm-cache <-> vm-web  RTT well under a millisecond; its loss is real: vm-web's unpaced 3 MB bursts overrun
                       the userspace datapath, which drops part of them before the mirror (GAP)
  vm-api <-> vm-web    ping: ECHO RTT, no loss;   vm-api <-> vm-cache: UDP, packets and throughput only
EOF
