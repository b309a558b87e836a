# shellcheck shell=bash
# The demo's world, shared by scripts/demo.sh and scripts/soak.sh (sourced, not run): a private OVS
# sandbox with one bridge and four namespace VMs (vm-web, vm-api, vm-db behind the impairment
# forwarder, vm-cache), traffic between them, the agent (and, with Kafka, a broker and the pipeline),
# and one clean-up that removes all of it, also after a failure or Ctrl-C.
#
#   mfenv_init TAG                    temp dir /tmp/mf-TAG.XXXXXX; call mfenv_cleanup from an EXIT trap
#   mfenv_start_ovs                   the sandbox (waits while another one holds the userspace datapath)
#   mfenv_add_vms                     bridge + 4 VMs (vm-uuid and vm-name in Interface external_ids)
#   mfenv_start_traffic demo|soak     servers and clients in the VMs (soak: every sender paced)
#   mfenv_start_kafka                 a local broker; sets MFENV_BROKERS
#   mfenv_start_bg NAME LOG CMD...    a background process, stopped by mfenv_cleanup (SIGTERM)
#   mfenv_start_agent ARGS...         `mirrorflow agent ARGS`; sets MFENV_AGENT_PID, MFENV_METRICS_URL
#   mfenv_stop_pid PID NAME [S]       SIGTERM, SIGKILL after S seconds (default 15)
#   mfenv_cleanup                     everything above, in reverse; safe to call twice
#
# Tunables (environment): MFENV_DELAY_MS (forwarder delay each way, default 10 -> 20 ms round trip),
# MFENV_LOSS (forwarder drop probability each way, default 2%), MFENV_PACE (tbf rate, default 20mbit).

MFENV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MFENV_BR=br-mfdemo
MFENV_DELAY_MS=${MFENV_DELAY_MS:-10}
MFENV_LOSS=${MFENV_LOSS:-2%}
MFENV_PACE=${MFENV_PACE:-20mbit}
# name(netns) display-name ip vm-uuid impaired
MFENV_VMS=(
  "mfd-web vm-web 10.77.0.1 0d3b7a10-0000-4000-8000-00000000a001 0"
  "mfd-api vm-api 10.77.0.2 0d3b7a10-0000-4000-8000-00000000a002 0"
  "mfd-db vm-db 10.77.0.3 0d3b7a10-0000-4000-8000-00000000a003 1"
  "mfd-cache vm-cache 10.77.0.4 0d3b7a10-0000-4000-8000-00000000a004 0"
)
MFENV_TMP=''
MFENV_DB=''
MFENV_OVS_DIR=''
MFENV_KAFKA_DIR=''
MFENV_BROKERS=''
MFENV_AGENT_PID=''
MFENV_METRICS_URL=''
MFENV_BG_PIDS=()   # "PID NAME", stopped last-started first
MFENV_VMS_ADDED=()
MFENV_CLEANED=0

mfenv_say() { printf '%s\n' "$*" >&2; }
mfenv_die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
mf() { node "$MFENV_ROOT/src/cli/bin.js" "$@"; }

mfenv_init() {
  local tag=$1
  [ "$(id -u)" = 0 ] || mfenv_die "must run as root (network namespaces, OVS)"
  MFENV_TMP=$(mktemp -d "/tmp/mf-$tag.XXXXXX")
  # The forwarder's pid and log files live with the rest of our temp files.
  export MIRRORFLOW_IMPAIR_DIR=$MFENV_TMP/impair
}

mfenv_start_ovs() {
  MFENV_OVS_DIR=$MFENV_TMP/ovs
  local out
  # One userspace datapath per host: when another sandbox (e.g. a test run) holds it, wait for it.
  out=$(OVS_SANDBOX_DP_WAIT_S=${OVS_SANDBOX_DP_WAIT_S:-900} bash "$MFENV_ROOT/scripts/ovs-sandbox.sh" start "$MFENV_OVS_DIR") \
    || mfenv_die "the OVS sandbox did not start (dir=$MFENV_OVS_DIR)"
  MFENV_DB=$(sed -n 's/^MIRRORFLOW_DB=//p' <<<"$out")
  [ -n "$MFENV_DB" ] || mfenv_die "the OVS sandbox printed no MIRRORFLOW_DB (dir=$MFENV_OVS_DIR)"
  export MIRRORFLOW_DB=$MFENV_DB
}

mfenv_vsctl() { ovs-vsctl --db="$MFENV_DB" --timeout=30 "$@"; }

mfenv_add_vms() {
  mfenv_vsctl -- --may-exist add-br "$MFENV_BR" -- set Bridge "$MFENV_BR" datapath_type=netdev
  local spec ns name ip uuid impaired host args
  for spec in "${MFENV_VMS[@]}"; do
    read -r ns name ip uuid impaired <<<"$spec"
    args=(add "$ns" --bridge "$MFENV_BR" --ip "$ip/24" --vm-uuid "$uuid" --db "$MFENV_DB")
    [ "$impaired" = 1 ] && args+=(--impair-delay-ms "$MFENV_DELAY_MS" --impair-loss "$MFENV_LOSS")
    MFENV_VMS_ADDED+=("$ns")
    bash "$MFENV_ROOT/scripts/vm.sh" "${args[@]}" >/dev/null || mfenv_die "could not add the VM (vm=$name)"
    # The display name the inventory shows (Interface external_ids:vm-name, as a platform would set it).
    host=$(bash "$MFENV_ROOT/scripts/vm.sh" host-iface "$ns")
    mfenv_vsctl set Interface "$host" "external_ids:vm-name=$name"
    # IPv4 only: no IPv6 router solicitations or MLD reports in the table.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.eth0.disable_ipv6=1 >/dev/null
    sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1" >/dev/null 2>&1 || true
  done
}

# mfenv_ns NAME -> the VM's netns, mfenv_ip NAME -> its address (NAME: web, api, db, cache)
mfenv_ns() { echo "mfd-$1"; }
mfenv_ip() {
  local spec ns name ip rest
  for spec in "${MFENV_VMS[@]}"; do
    read -r ns name ip rest <<<"$spec"
    [ "$ns" = "mfd-$1" ] && { echo "$ip"; return 0; }
  done
  return 1
}

mfenv_start_bg() {
  local name=$1 log=$2; shift 2
  "$@" >>"$log" 2>&1 </dev/null &
  MFENV_BG_PIDS+=("$! $name")
}

# Runs a command inside VM NAME's namespace in the background.
mfenv_in_vm() {
  local vm=$1 label=$2; shift 2
  mfenv_start_bg "$label" "$MFENV_TMP/traffic-$vm.log" ip netns exec "$(mfenv_ns "$vm")" "$@"
}

mfenv_pace() { # VM: tbf on its eth0, so its senders never burst beyond what the userspace datapath takes
  ip netns exec "$(mfenv_ns "$1")" tc qdisc replace dev eth0 root tbf rate "$MFENV_PACE" burst 32kb latency 100ms
}

mfenv_start_traffic() {
  local mode=$1 vm py=$MFENV_ROOT/scripts/lib/traffic.py
  for vm in web api db cache; do
    mfenv_in_vm "$vm" "server-$vm" python3 "$py" serve --ip "$(mfenv_ip "$vm")"
  done
  for vm in web api db cache; do
    local deadline=$((SECONDS + 20))
    until ip netns exec "$(mfenv_ns "$vm")" ss -Hltn 'sport = :8080' | grep -q 8080; do
      [ "$SECONDS" -lt "$deadline" ] || mfenv_die "traffic server did not start (vm=vm-$vm, log=$MFENV_TMP/traffic-$vm.log)"
      sleep 0.1
    done
  done
  # Paced senders show no loss of the datapath's own; vm-web stays unpaced in the demo so that its
  # bulk transfer shows the loss the userspace datapath really inflicts on unpaced bursts.
  mfenv_pace api
  mfenv_pace db
  mfenv_pace cache
  [ "$mode" = soak ] && mfenv_pace web
  # vm-web -> vm-api: ping (5 per second)
  mfenv_in_vm web ping-web-api ping -n -q -i 0.2 "$(mfenv_ip api)"
  # vm-web -> vm-cache: a 3 MB bulk TCP transfer every 3 seconds
  mfenv_in_vm web bulk-web-cache python3 "$py" bulk --to "$(mfenv_ip cache):5001" --bytes 3000000 --every 3
  # vm-api -> vm-db (impaired): 10 short TCP connections per second and one long stream
  mfenv_in_vm api short-api-db python3 "$py" short --to "$(mfenv_ip db):8080" --rate 10
  # (the stream paces itself below the tbf rate, so vm-api's ACKs and replies never queue behind it)
  mfenv_in_vm api stream-api-db python3 "$py" bulk --to "$(mfenv_ip db):5001" --bytes 0 --rate-mbit 8
  # vm-cache -> vm-api: UDP, 200 datagrams of 500 bytes per second
  mfenv_in_vm cache udp-cache-api python3 "$py" udp --to "$(mfenv_ip api):9999" --pps 200 --size 500
  # vm-cache -> vm-web: 5 short TCP connections per second
  mfenv_in_vm cache short-cache-web python3 "$py" short --to "$(mfenv_ip web):8080" --rate 5
}

mfenv_start_kafka() {
  MFENV_KAFKA_DIR=$MFENV_TMP/kafka
  MFENV_BROKERS=$(bash "$MFENV_ROOT/scripts/kafka.sh" start "$MFENV_KAFKA_DIR" 2>"$MFENV_TMP/kafka-start.log" | tail -n1) \
    || mfenv_die "the Kafka broker did not start: $(tail -n 3 "$MFENV_TMP/kafka-start.log" | tr '\n' ' ')"
  [[ $MFENV_BROKERS =~ ^[0-9.]+:[0-9]+$ ]] || mfenv_die "kafka.sh start printed no bootstrap address (got=$MFENV_BROKERS)"
}

# Starts the agent with ARGS (plus --db and --metrics on a free loopback port) and waits until it runs.
mfenv_start_agent() {
  local log=$MFENV_TMP/agent.log deadline=$((SECONDS + 120))
  mfenv_start_bg agent "$log" node "$MFENV_ROOT/src/cli/bin.js" agent --db "$MFENV_DB" --metrics 127.0.0.1:0 "$@"
  MFENV_AGENT_PID=${MFENV_BG_PIDS[-1]%% *}
  until grep -q '^agent: running' "$log" 2>/dev/null; do
    kill -0 "$MFENV_AGENT_PID" 2>/dev/null || mfenv_die "the agent exited at start (log=$log): $(tail -n 5 "$log" | tr '\n' ' ')"
    [ "$SECONDS" -lt "$deadline" ] || mfenv_die "the agent did not start within 120 s (log=$log)"
    sleep 0.2
  done
  MFENV_METRICS_URL=$(grep -m1 '^agent: running' "$log" | grep -o 'http://[^ ,)]*/metrics' || true)
}

mfenv_stop_pid() {
  local pid=$1 name=$2 timeout_s=${3:-15} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout_s * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    mfenv_say "demo: $name did not stop after SIGTERM within ${timeout_s}s, killing it (pid=$pid)"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# Stops the agent (SIGTERM: it flushes its flows and removes its mirror) and returns its exit status.
mfenv_stop_agent() {
  local pid=$MFENV_AGENT_PID rc=0 i
  [ -n "$pid" ] || return 0
  MFENV_AGENT_PID=''
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || rc=$?; return $rc; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    mfenv_say "demo: the agent did not exit within 15 s of SIGTERM, killing it (pid=$pid)"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || rc=$?
  return $rc
}

mfenv_cleanup() {
  [ "$MFENV_CLEANED" = 1 ] && return 0
  MFENV_CLEANED=1
  set +e
  trap '' INT TERM
  mfenv_stop_agent >/dev/null 2>&1
  local i entry
  for ((i = ${#MFENV_BG_PIDS[@]} - 1; i >= 0; i--)); do
    entry=${MFENV_BG_PIDS[$i]}
    mfenv_stop_pid "${entry%% *}" "${entry#* }" 10
  done
  local ns
  for ns in "${MFENV_VMS_ADDED[@]}"; do
    bash "$MFENV_ROOT/scripts/vm.sh" del "$ns" ${MFENV_DB:+--db "$MFENV_DB"} >/dev/null 2>&1
  done
  [ -n "$MFENV_OVS_DIR" ] && bash "$MFENV_ROOT/scripts/ovs-sandbox.sh" stop "$MFENV_OVS_DIR" >/dev/null 2>&1
  [ -n "$MFENV_KAFKA_DIR" ] && bash "$MFENV_ROOT/scripts/kafka.sh" stop "$MFENV_KAFKA_DIR" >/dev/null 2>&1
  [ -n "$MFENV_TMP" ] && rm -rf -- "$MFENV_TMP"
  trap - INT TERM
}

# The end of a script on this environment (its EXIT trap calls this with the exit status): says why
# it stopped when it did not finish (an interrupt; a failure with the agent's last log lines, unless
# REPORTED is non-empty: the script has said what failed), cleans up, and says so.
#   mfenv_finish RC NAME DONE-MESSAGE [REPORTED]
mfenv_finish() {
  local rc=$1 name=$2 done_msg=$3 reported=${4:-}
  [ -n "$MFENV_TMP" ] && [ "$MFENV_CLEANED" = 0 ] || return 0
  case $rc in
    0) ;;
    130 | 143) echo "$name: interrupted, cleaning up" >&2 ;;
    *) if [ -z "$reported" ] && [ -s "$MFENV_TMP/agent.log" ]; then
         echo "$name: failed (exit $rc); the agent's last log lines:" >&2
         tail -n 5 "$MFENV_TMP/agent.log" >&2
       fi ;;
  esac
  mfenv_cleanup
  echo "$name: $done_msg"
}
