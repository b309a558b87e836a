#!/usr/bin/env bash
# Soak run of `mirrorflow agent` (not part of CI): the demo's four VMs with paced mixed traffic for N
# minutes, the agent on its embedded default; samples its RSS and its loss ledger every 10 s and
# checks that memory stays flat after warm-up and that the capture loses nothing.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/soak.sh [--minutes N] [--warmup-minutes W] [--interval S] [--csv FILE] [--skip-setup]

Run as root. Builds the demo's world (scripts/lib/demo-env.sh: a private OVS sandbox, four namespace
VMs, vm-db behind the impairment forwarder) with every sender paced by tbf (a rate the userspace
datapath sustains): ping, a 3 MB bulk TCP transfer every 3 s, short TCP connections, a long TCP
stream and UDP. Runs `mirrorflow agent --select-all --window 5` on it for N minutes (default 10) and
every S seconds (default 10) samples the agent's RSS (/proc/PID/status VmRSS) and its /metrics:
frames captured, libpcap dropped / ifdropped, mirror tx packets. At the end prints a summary and exits
non-zero when a goal is missed:
  - RSS after warm-up (the first W minutes, default 2) flat within 10 % ((max - min) / min)
  - no capture loss: libpcap dropped + ifdropped = 0
  - the agent ran throughout and exited 0 on SIGTERM
--csv FILE keeps the samples (t_s, rss_kib, frames, pcap_received, pcap_dropped, pcap_ifdropped,
mirror_tx_packets, flows_active, undecodable). Everything is removed at the end, also on Ctrl-C.
USAGE
}

MINUTES=10
WARMUP_MIN=2
INTERVAL_S=10
CSV_OUT=''
SETUP=1
RSS_SPREAD_GOAL_PCT=10
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --minutes)
      [[ ${2:-} =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] || { echo "soak: invalid --minutes, expected a whole number >= 1 (minutes=${2:-})" >&2; exit 2; }
      MINUTES=$2; shift 2 ;;
    --warmup-minutes)
      [[ ${2:-} =~ ^[0-9]+$ ]] || { echo "soak: invalid --warmup-minutes, expected a whole number (warmup=${2:-})" >&2; exit 2; }
      WARMUP_MIN=$2; shift 2 ;;
    --interval)
      [[ ${2:-} =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] || { echo "soak: invalid --interval, expected whole seconds >= 1 (interval=${2:-})" >&2; exit 2; }
      INTERVAL_S=$2; shift 2 ;;
    --csv) CSV_OUT=${2:?--csv needs a file}; shift 2 ;;
    --skip-setup) SETUP=0; shift ;;
    *) echo "soak: unknown argument (argument=$1); see --help" >&2; exit 2 ;;
  esac
done
[ "$WARMUP_MIN" -lt "$MINUTES" ] || { echo "soak: --warmup-minutes must be below --minutes (warmup=$WARMUP_MIN, minutes=$MINUTES)" >&2; exit 2; }

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
[ "$(id -u)" = 0 ] || { echo "soak: must run as root (network namespaces, OVS)" >&2; exit 1; }
# shellcheck source=lib/demo-env.sh
. "$REPO_ROOT/scripts/lib/demo-env.sh"

on_exit() {
  local rc=$?
  # the samples outlive the temp dir when asked for
  [ -n "$CSV_OUT" ] && [ -n "$MFENV_TMP" ] && [ -f "$MFENV_TMP/samples.csv" ] && cp "$MFENV_TMP/samples.csv" "$CSV_OUT"
  mfenv_finish "$rc" soak "cleaned up" "${SUMMARY_DONE:-}"
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$SETUP" = 1 ] && bash scripts/setup.sh
mfenv_init soak
echo "soak: starting the OVS sandbox and four VMs"
mfenv_start_ovs
mfenv_add_vms
mfenv_start_traffic soak
PAIRS=$MFENV_TMP/pairs.jsonl
mfenv_start_agent --bridge "$MFENV_BR" --select-all --window 5 --pairs-out "$PAIRS" --alerts-out "$MFENV_TMP/alerts.jsonl" --agent-id soak-hv1
grep -m1 '^agent: running' "$MFENV_TMP/agent.log"
[ -n "$MFENV_METRICS_URL" ] || mfenv_die "the agent printed no metrics address (log=$MFENV_TMP/agent.log)"

# metric NAME FILE -> the sum of its samples (all label sets), 0 when absent
metric() { awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f\n", s }' "$2"; }

CSV=$MFENV_TMP/samples.csv
echo "t_s,rss_kib,frames,pcap_received,pcap_dropped,pcap_ifdropped,mirror_tx_packets,flows_active,undecodable" >"$CSV"
sample() { # T -> one CSV line and one progress line
  local t=$1 rss m=$MFENV_TMP/metrics.txt
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$MFENV_AGENT_PID/status" 2>/dev/null || true)
  [ -n "$rss" ] || mfenv_die "the agent is gone at t=${t}s (log=$MFENV_TMP/agent.log): $(tail -n 3 "$MFENV_TMP/agent.log" | tr '\n' ' ')"
  curl -fsS --max-time 5 "$MFENV_METRICS_URL" >"$m" || mfenv_die "cannot read the agent's metrics at t=${t}s (url=$MFENV_METRICS_URL)"
  local frames recv drop ifdrop tx active undec
  frames=$(metric mirrorflow_capture_frames_total "$m")
  recv=$(metric mirrorflow_capture_pcap_received_frames_total "$m")
  drop=$(metric mirrorflow_capture_pcap_dropped_frames_total "$m")
  ifdrop=$(metric mirrorflow_capture_pcap_ifdropped_frames_total "$m")
  tx=$(metric mirrorflow_mirror_tx_packets_total "$m")
  active=$(metric mirrorflow_flows_active_flows "$m")
  undec=$(metric mirrorflow_capture_undecodable_frames_total "$m")
  echo "$t,$rss,$frames,$recv,$drop,$ifdrop,$tx,$active,$undec" >>"$CSV"
  printf 'soak: t=%4ds  rss=%6.1f MiB  frames=%9s  mirror_tx=%9s  pcap_dropped=%s ifdropped=%s  flows_active=%s\n' \
    "$t" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$frames" "$tx" "$drop" "$ifdrop" "$active"
}

TOTAL_S=$((MINUTES * 60))
echo "soak: running ${MINUTES} min (warm-up ${WARMUP_MIN} min), a sample every ${INTERVAL_S} s"
START=$SECONDS
next=0
while :; do
  sample "$next"
  [ "$next" -ge "$TOTAL_S" ] && break
  next=$((next + INTERVAL_S))
  while [ $((SECONDS - START)) -lt "$next" ]; do sleep 0.5; done
done

agent_rc=0
mfenv_stop_agent || agent_rc=$?
STOPPED=$(grep -m1 '^agent: stopped' "$MFENV_TMP/agent.log" || true)
echo "$STOPPED"
WINDOWS=$(node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const starts = new Set(lines.map((w) => w.windowStartUs));
const imp = lines.filter((w) => [w.a, w.b].sort().join("|") === "vm-api|vm-db");
const med = (xs) => { const s = xs.filter((x) => x > 0).sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : 0; };
const rtt = med(imp.map((w) => Number(w.tcp?.handshakeRttUs?.p50 ?? 0))) / 1000;
const loss = med(imp.map((w) => Number(w.lossRate ?? 0))) * 100;
console.log(`${starts.size} ${lines.length} ${rtt.toFixed(2)} ${loss.toFixed(2)}`);
' "$PAIRS" 2>/dev/null || echo "0 0 0 0")
read -r n_windows n_pairs imp_rtt imp_loss <<<"$WINDOWS"

WARMUP_S=$((WARMUP_MIN * 60))
read -r rss_min rss_max rss_n <<<"$(awk -F, -v w="$WARMUP_S" 'NR > 1 && $1 >= w { if (n == 0 || $2 < mn) mn = $2; if ($2 > mx) mx = $2; n++ } END { print mn + 0, mx + 0, n + 0 }' "$CSV")"
spread=$(awk -v a="$rss_min" -v b="$rss_max" 'BEGIN { if (a > 0) printf "%.1f", (b - a) * 100 / a; else print "nan" }')
IFS=, read -r _ _ frames recv drop ifdrop tx active undec < <(tail -n1 "$CSV")
coverage=$(awk -v f="$frames" -v t="$tx" 'BEGIN { if (t > 0) printf "%.2f", f * 100 / t; else print "n/a" }')
# The agent's own final ledger (after its last flush) covers the time after the last sample too.
if [[ $STOPPED =~ frames=([0-9]+).*received=([0-9]+)\ dropped=([0-9]+)\ ifdropped=([0-9]+) ]]; then
  frames=${BASH_REMATCH[1]} recv=${BASH_REMATCH[2]}
  [ "${BASH_REMATCH[3]}" -gt "$drop" ] && drop=${BASH_REMATCH[3]}
  [ "${BASH_REMATCH[4]}" -gt "$ifdrop" ] && ifdrop=${BASH_REMATCH[4]}
fi

verdict() { if [ "$1" = ok ]; then echo "ok"; else echo "MISSED"; fi; }
rss_ok=$(awk -v s="$spread" -v g="$RSS_SPREAD_GOAL_PCT" 'BEGIN { print (s != "nan" && s + 0 <= g) ? "ok" : "no" }')
drop_ok=$([ "$((drop + ifdrop))" = 0 ] && echo ok || echo no)
agent_ok=$([ "$agent_rc" = 0 ] && echo ok || echo no)
fail=0
[ "$rss_ok$drop_ok$agent_ok" = okokok ] || fail=1
cat <<EOF

soak summary (${MINUTES} min, paced mixed traffic on 4 VMs, agent --window 5, sample every ${INTERVAL_S} s)
  agent RSS after warm-up (t >= ${WARMUP_MIN} min, ${rss_n} samples): min $(awk -v k="$rss_min" 'BEGIN { printf "%.1f", k / 1024 }') MiB, max $(awk -v k="$rss_max" 'BEGIN { printf "%.1f", k / 1024 }') MiB, spread ${spread} % (goal <= ${RSS_SPREAD_GOAL_PCT} %): $(verdict "$rss_ok")
  frames captured: ${frames} (libpcap received ${recv}); at the last sample captured/mirrored ${coverage} % (mirror tx from OVS statistics, which lag a few s)
  libpcap dropped: ${drop}, ifdropped: ${ifdrop} (goal 0): $(verdict "$drop_ok")
  undecodable frames: ${undec}; flows active at the end: ${active}
  pair windows written: ${n_pairs} in ${n_windows} windows; vm-api <-> vm-db (impaired, ${MFENV_DELAY_MS} ms each way, ${MFENV_LOSS}): median handshake RTT ${imp_rtt} ms, median loss ${imp_loss} %
  agent exit on SIGTERM: ${agent_rc}: $(verdict "$agent_ok")
EOF
SUMMARY_DONE=1
[ "$fail" = 0 ] || { echo "soak: a goal was missed"; exit 1; }
echo "soak: all goals met"
