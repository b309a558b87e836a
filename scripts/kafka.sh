#!/usr/bin/env bash
# A private, real Apache Kafka 4.x broker for tests, benchmarks and the demo: one node in KRaft
# combined mode (broker + controller) on 127.0.0.1, its storage in a temp dir. The jars come from
# Maven Central through Maven (scripts/kafka/pom.xml) and are cached between runs.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/kafka.sh COMMAND [DIR] [options]

Commands:
  start [DIR] [--security] [--prop KEY=VALUE]...
                  start a one-node Kafka (KRaft, process.roles=broker,controller) in DIR (default: a
                  new /tmp/mf-kafka.XXXXXX, remembered in /tmp/mf-kafka.state), listening on
                  127.0.0.1 only, on free ports; format its storage on first start. Returns once a
                  Metadata request answers and prints the bootstrap address 127.0.0.1:PORT as the
                  last line of its output (progress goes to stderr). Starting a running broker again
                  only prints its address; a broker that died is restarted on the same data and
                  ports. --prop adds or overrides a server property (first start of DIR only).
                  --security (or KAFKA_SECURITY=sasl-ssl) adds two listeners on first start of DIR:
                  SASL_PLAINTEXT and SASL_SSL, both with SCRAM-SHA-256 and SCRAM-SHA-512; the TLS
                  certificate is signed by a private CA made with openssl in DIR/security/. SCRAM
                  users (alice, bob; random passwords) are created when the storage is formatted.
                  The PLAINTEXT listener (the printed address) and the controller stay as they are.
  stop [DIR]      stop the broker (SIGTERM, SIGKILL after a deadline) and remove DIR. Safe to repeat.
  status [DIR]    print the state; exit 0 when the broker runs, 3 otherwise.
  address [DIR] [--listener plaintext|sasl_plaintext|sasl_ssl]
                  print 127.0.0.1:PORT of a running broker's listener (default plaintext; exit 3
                  when none runs, 2 when the broker has no such listener).
  fetch           download the Kafka classpath into the cache (Maven) unless it is there already.
  classpath       print the cached classpath (fetching it first when needed), e.g. for
                  java -cp "$(scripts/kafka.sh classpath)" org.apache.kafka.tools.TopicCommand ...

Environment:
  KAFKA_VERSION          Kafka version to run (default 4.4.0)
  KAFKA_CACHE_DIR        classpath cache (default ${XDG_CACHE_HOME:-~/.cache}/mirrorflow)
  KAFKA_HEAP_OPTS        JVM heap of the broker (default "-Xms64m -Xmx512m")
  KAFKA_START_TIMEOUT_S  how long start waits for metadata to answer (default 90)
  KAFKA_STOP_TIMEOUT_S   how long stop waits after SIGTERM before SIGKILL (default 20)
  KAFKA_STATE_FILE       where start/stop without DIR remember the broker (default /tmp/mf-kafka.state)
  KAFKA_SECURITY         sasl-ssl: as --security; unset, empty or none: plaintext only
  JAVA_HOME              Java 17 or newer (else `java` on PATH); Maven (`mvn`) is needed to fetch.

Usage in a shell:  BOOTSTRAP=$(scripts/kafka.sh start | tail -n1); ...; scripts/kafka.sh stop
Logs: DIR/logs/server.log (broker), DIR/kafka.out (JVM output), DIR/probe.log (readiness probe).

With --security, DIR/security/ holds (readable by the caller, removed by stop):
  ca.pem                 the private CA to trust (tls.caFile); ca.key stays there too
  server.pem             the broker's key and certificate chain (Kafka's PEM keystore)
  users                  one "USERNAME PASSWORD" line per SCRAM user (both mechanisms each)
  client-sasl_ssl.json   {"kafka": {brokers, tls: {caFile}, sasl: {mechanism, username, password}}}
  client-sasl_plaintext.json   the same without TLS: usable as `mirrorflow … --config FILE`
EOF
}

die() { echo "kafka: $*" >&2; exit 1; }
log() { echo "kafka: $*" >&2; }

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONF_DIR=$SCRIPT_DIR/kafka
KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
CACHE_ROOT=${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/mirrorflow}
CACHE_DIR=$CACHE_ROOT/kafka-$KAFKA_VERSION
LIB_DIR=$CACHE_DIR/lib
HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms64m -Xmx512m}
START_TIMEOUT_S=${KAFKA_START_TIMEOUT_S:-90}
STOP_TIMEOUT_S=${KAFKA_STOP_TIMEOUT_S:-20}
STATE_FILE=${KAFKA_STATE_FILE:-/tmp/mf-kafka.state}
MARKER=.mf-kafka
HOST=127.0.0.1
# Ports are picked below the kernel's ephemeral range (32768-60999) so outgoing connections never hold them.
PORT_MIN=20000 PORT_MAX=32000

JAVA=''
find_java() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then JAVA=$JAVA_HOME/bin/java
  elif command -v java >/dev/null 2>&1; then JAVA=$(command -v java)
  else die "java not found (need Java 17 or newer; on Debian 12: apt-get install openjdk-17-jre-headless, or run scripts/setup.sh)"
  fi
  local line major
  line=$("$JAVA" -version 2>&1 | head -n1) || die "java does not run (java=$JAVA)"
  major=$(sed -E 's/^[^"]*"(1\.)?([0-9]+).*/\2/' <<<"$line")
  case $major in '' | *[!0-9]*) die "cannot read the Java version (java=$JAVA, output=$line)" ;; esac
  [ "$major" -ge 17 ] || die "Java 17 or newer needed (java=$JAVA, version=$major)"
}

# The pom's content is part of the cache key: a changed pom means a new fetch.
pom_stamp() { { cat "$CONF_DIR/pom.xml"; echo "$KAFKA_VERSION"; } | sha256sum | cut -d' ' -f1; }

classpath_ready() {
  [ -r "$CACHE_DIR/.complete" ] && [ "$(cat "$CACHE_DIR/.complete")" = "$(pom_stamp)" ] \
    && compgen -G "$LIB_DIR/kafka_2.13-*.jar" >/dev/null
}

# Fill $LIB_DIR with the runtime jars of scripts/kafka/pom.xml, once (a lock keeps parallel starts apart).
ensure_classpath() {
  classpath_ready && return 0
  mkdir -p "$CACHE_DIR" || die "cannot create the cache dir (dir=$CACHE_DIR)"
  exec 7>>"$CACHE_DIR.lock"
  flock -w 600 7 || die "timed out waiting for another fetch of the Kafka classpath (lock=$CACHE_DIR.lock)"
  if classpath_ready; then exec 7>&-; return 0; fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found: Maven fetches the Kafka jars (on Debian 12: apt-get install maven, or run scripts/setup.sh)"
  local tmp=$CACHE_DIR/lib.tmp.$$ flog=$CACHE_DIR/fetch.log started=$SECONDS
  rm -rf -- "$tmp"
  log "fetching Kafka $KAFKA_VERSION and its dependencies with Maven (once; cache=$CACHE_DIR)"
  if ! (cd "$CONF_DIR" && mvn -B -q -Dstyle.color=never -f "$CONF_DIR/pom.xml" "-Dkafka.version=$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=$tmp") >"$flog" 2>&1; then
    rm -rf -- "$tmp"
    die "fetching the Kafka classpath failed (version=$KAFKA_VERSION, log=$flog): $(grep -m1 -E 'ERROR' "$flog" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-300)"
  fi
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || { rm -rf -- "$tmp"; die "Maven fetched no kafka_2.13 jar (log=$flog)"; }
  rm -rf -- "$LIB_DIR"
  mv "$tmp" "$LIB_DIR"
  pom_stamp >"$CACHE_DIR/.complete"
  exec 7>&-
  log "fetched $(find "$LIB_DIR" -name '*.jar' | wc -l) jars in $((SECONDS - started))s"
}

# Live (non-zombie) pids, other than this script's, whose command line contains STRING.
pids_mentioning() {
  local needle=$1 f p
  for f in $(grep -alsF -- "$needle" /proc/[0-9]*/cmdline 2>/dev/null); do
    p=${f#/proc/}; p=${p%/cmdline}
    [ "$p" != "$$" ] && [ "$p" != "$BASHPID" ] && alive "$p" && echo "$p"
  done
  return 0
}

alive() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]; }

# pid of the broker JVM of DIR when it runs, else empty.
broker_pid() {
  local dir=$1 pid cmd
  [ -r "$dir/kafka.pid" ] || return 0
  pid=$(tr -dc '0-9' <"$dir/kafka.pid" 2>/dev/null) || return 0
  [ -n "$pid" ] && alive "$pid" || return 0
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
  case $cmd in *kafka.Kafka*"$dir/server.properties"*) echo "$pid" ;; esac
  return 0
}

# The broker JVM of DIR by its command line, wherever its pid is recorded (e.g. after a crash of this script).
find_broker_pid() {
  local dir=$1 p
  for p in $(pids_mentioning "$dir/server.properties"); do
    case $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) in *kafka.Kafka*) echo "$p"; return 0 ;; esac
  done
  return 0
}

resolve_dir() { # [DIR] -> DIR (or empty) from argument or state file
  if [ -n "${1:-}" ]; then
    case $1 in /*) echo "${1%/}" ;; *) echo "$PWD/${1%/}" ;; esac
  elif [ -r "$STATE_FILE" ]; then
    head -n1 "$STATE_FILE"
  fi
}

load_conf() {
  PORT='' CONTROLLER_PORT='' VERSION='' SASL_PORT='' SSL_PORT=''
  # shellcheck disable=SC1091
  [ -r "$1/kafka.conf" ] && . "$1/kafka.conf"
  return 0
}

save_conf() {
  {
    printf 'PORT=%q\n' "$PORT"
    printf 'CONTROLLER_PORT=%q\n' "$CONTROLLER_PORT"
    printf 'VERSION=%q\n' "$VERSION"
    printf 'SASL_PORT=%q\n' "$SASL_PORT"
    printf 'SSL_PORT=%q\n' "$SSL_PORT"
  } >"$1/kafka.conf.tmp"
  mv "$1/kafka.conf.tmp" "$1/kafka.conf"
}

port_free() { # PORT [listen]: no socket uses PORT (with `listen`: nobody listens on it; Kafka binds
  # with SO_REUSEADDR, so a restart may reuse its ports while old connections linger in TIME_WAIT)
  local port=$1 states=-tan
  [ "${2:-}" = listen ] && states=-tln
  if command -v ss >/dev/null 2>&1; then
    [ -z "$(ss -H "$states" "sport = :$port" 2>/dev/null)" ]
  else
    ! (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null
  fi
}

pick_port() { # [EXCEPT]... -> a port nobody listens on or connects from
  local port i
  for i in $(seq 1 200); do
    port=$((PORT_MIN + RANDOM % (PORT_MAX - PORT_MIN)))
    case " $* " in *" $port "*) continue ;; esac
    if port_free "$port"; then echo "$port"; return 0; fi
  done
  die "no free port found (range=$PORT_MIN-$PORT_MAX)"
}

write_server_properties() {
  local dir=$1; shift
  {
    echo "# Written by scripts/kafka.sh: one node, KRaft combined mode, loopback only."
    echo "process.roles=broker,controller"
    echo "node.id=1"
    echo "controller.quorum.voters=1@$HOST:$CONTROLLER_PORT"
    if [ -n "$SASL_PORT" ]; then
      echo "listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT,SASL_PLAINTEXT://$HOST:$SASL_PORT,SASL_SSL://$HOST:$SSL_PORT"
      echo "advertised.listeners=PLAINTEXT://$HOST:$PORT,SASL_PLAINTEXT://$HOST:$SASL_PORT,SASL_SSL://$HOST:$SSL_PORT"
      echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"
    else
      echo "listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT"
      echo "advertised.listeners=PLAINTEXT://$HOST:$PORT"
      echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    fi
    echo "controller.listener.names=CONTROLLER"
    echo "inter.broker.listener.name=PLAINTEXT"
    echo "log.dirs=$dir/data"
    # One broker: every internal topic has one replica, and transactions work (min ISR 1).
    echo "offsets.topic.replication.factor=1"
    echo "offsets.topic.num.partitions=5"
    echo "transaction.state.log.replication.factor=1"
    echo "transaction.state.log.min.isr=1"
    echo "transaction.state.log.num.partitions=5"
    echo "share.coordinator.state.topic.replication.factor=1"
    echo "share.coordinator.state.topic.min.isr=1"
    echo "group.initial.rebalance.delay.ms=0"
    echo "num.partitions=1"
    echo "default.replication.factor=1"
    echo "min.insync.replicas=1"
    echo "auto.create.topics.enable=true"
    echo "num.network.threads=2"
    echo "num.io.threads=4"
    [ -z "$SASL_PORT" ] || security_properties "$dir"
    local kv
    for kv in "$@"; do echo "$kv"; done
  } >"$dir/server.properties"
}

# SCRAM on both SASL listeners (the credentials live in the cluster metadata, written by
# format_storage), TLS on SASL_SSL from a PEM keystore. No client certificates.
security_properties() {
  local dir=$1 l m
  echo "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512"
  for l in sasl_plaintext sasl_ssl; do
    for m in scram-sha-256 scram-sha-512; do
      echo "listener.name.$l.$m.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
    done
  done
  echo "listener.name.sasl_ssl.ssl.keystore.type=PEM"
  echo "listener.name.sasl_ssl.ssl.keystore.location=$dir/security/server.pem"
  echo "listener.name.sasl_ssl.ssl.client.auth=none"
}

SCRAM_USERS='alice bob'

# DIR/security/: a private CA, the broker's key + certificate (SAN 127.0.0.1 and localhost) signed
# by it, SCRAM users with random passwords, and ready-made mirrorflow client configs.
make_security_files() {
  local dir=$1 sec=$1/security u pw
  command -v openssl >/dev/null 2>&1 || die "openssl not found: --security makes its TLS certificate with it (on Debian 12: apt-get install openssl)"
  rm -rf -- "$sec"
  mkdir -p "$sec"
  chmod 700 "$sec"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=mirrorflow test CA $(basename "$dir")" \
      -keyout "$sec/ca.key" -out "$sec/ca.pem" \
      && openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$HOST" -keyout "$sec/server.key.tmp" -out "$sec/server.csr" \
      && printf 'subjectAltName=IP:%s,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' "$HOST" >"$sec/server.ext" \
      && openssl x509 -req -in "$sec/server.csr" -CA "$sec/ca.pem" -CAkey "$sec/ca.key" -CAcreateserial -days 3650 -sha256 \
        -extfile "$sec/server.ext" -out "$sec/server.crt" \
      && openssl pkcs8 -topk8 -nocrypt -in "$sec/server.key.tmp" -out "$sec/server.key"
  } >"$sec/openssl.log" 2>&1 || die "making the TLS certificate failed (log=$sec/openssl.log): $(grep -m1 -iE 'error' "$sec/openssl.log" | cut -c1-300)"
  # Kafka's PEM keystore: the PKCS#8 key, then the certificate chain
  (umask 077 && cat "$sec/server.key" "$sec/server.crt" "$sec/ca.pem" >"$sec/server.pem")
  rm -f "$sec/server.key.tmp" "$sec/server.csr" "$sec/server.ext" "$sec/ca.srl"
  : >"$sec/users"
  for u in $SCRAM_USERS; do
    pw=$(head -c18 /dev/urandom | base64 | tr '+/' 'xy')
    echo "$u $pw" >>"$sec/users"
  done
  write_client_configs "$dir"
}

write_client_configs() {
  local dir=$1 sec=$1/security user pw
  read -r user pw <"$sec/users"
  printf '{"kafka": {"brokers": "%s:%s", "tls": {"caFile": "%s"}, "sasl": {"mechanism": "scram-sha-512", "username": "%s", "password": "%s"}}}\n' \
    "$HOST" "$SSL_PORT" "$sec/ca.pem" "$user" "$pw" >"$sec/client-sasl_ssl.json"
  printf '{"kafka": {"brokers": "%s:%s", "sasl": {"mechanism": "scram-sha-256", "username": "%s", "password": "%s"}}}\n' \
    "$HOST" "$SASL_PORT" "$user" "$pw" >"$sec/client-sasl_plaintext.json"
}

# --add-scram arguments of kafka-storage format: every user with both mechanisms.
scram_format_args() {
  local dir=$1 u pw m
  [ -r "$dir/security/users" ] || return 0
  while read -r u pw; do
    [ -n "$u" ] || continue
    for m in SCRAM-SHA-256 SCRAM-SHA-512; do
      printf '%s\n' --add-scram "$m=[name=$u,password=$pw]"
    done
  done <"$dir/security/users"
}

random_cluster_id() { # 16 random bytes, base64url without padding (22 characters), as Kafka's Uuid
  local id
  while :; do
    id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    case $id in -*) ;; *) echo "$id"; return 0 ;; esac
  done
}

java_tool() { # CLASS ARGS... with the cached classpath, quiet logging, a small heap and fast startup
  "$JAVA" -Xmx192m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$CONF_DIR/tools-log4j2.properties" -cp "$LIB_DIR/*" "$@"
}

format_storage() {
  local dir=$1
  [ -r "$dir/data/meta.properties" ] && return 0
  local scram=()
  mapfile -t scram < <(scram_format_args "$dir")
  java_tool kafka.tools.StorageTool format "--cluster-id=$(random_cluster_id)" \
    --config "$dir/server.properties" "${scram[@]}" >"$dir/format.log" 2>&1 \
    || die "formatting the storage failed (log=$dir/format.log): $(grep -m1 -iE 'error|exception' "$dir/format.log" | cut -c1-300)"
}

launch_broker() {
  local dir=$1
  mkdir -p "$dir/logs"
  # setsid and no inherited descriptors: the broker outlives this script and holds no caller's pipe.
  # shellcheck disable=SC2086
  (cd "$dir" && exec 7>&- 8>&- && exec setsid "$JAVA" $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true "-Dkafka.logs.dir=$dir/logs" "-Dlog4j2.configurationFile=$CONF_DIR/log4j2.properties" \
    -cp "$LIB_DIR/*" kafka.Kafka "$dir/server.properties" </dev/null >>"$dir/kafka.out" 2>&1) &
  local child=$! pid='' deadline=$((SECONDS + 10))
  # Until the exec, the child is still this shell; wait for the JVM's command line (setsid may fork).
  echo "$child" >"$dir/kafka.pid"
  while :; do
    pid=$(broker_pid "$dir")
    [ -n "$pid" ] && break
    pid=$(find_broker_pid "$dir")
    [ -n "$pid" ] && break
    alive "$child" || break
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.02
  done
  echo "${pid:-$child}" >"$dir/kafka.pid"
}

# Tail of what the broker said, for error messages.
broker_log_tail() {
  local dir=$1
  { tail -n 3 "$dir/kafka.out" 2>/dev/null; grep -E ' (ERROR|FATAL) ' "$dir/logs/server.log" 2>/dev/null | tail -n 2; } \
    | tr '\n' ' ' | cut -c1-600
}

# Wait until a Metadata request (Admin listTopics, Kafka's own tool) answers, the broker dies, or the
# deadline passes. Returns 0 when ready, 1 when the broker died (so the caller may retry); on a
# timeout or a failed probe it stops the broker (the dir stays for its logs) and dies.
wait_ready() {
  local dir=$1 deadline=$((SECONDS + START_TIMEOUT_S)) probe rc
  {
    echo "request.timeout.ms=5000"
    echo "default.api.timeout.ms=$(((START_TIMEOUT_S + 5) * 1000))"
    echo "reconnect.backoff.max.ms=200"
    echo "retry.backoff.max.ms=200"
  } >"$dir/probe.properties"
  java_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$PORT" \
    --command-config "$dir/probe.properties" --list >"$dir/probe.log" 2>&1 &
  probe=$!
  while :; do
    if ! kill -0 "$probe" 2>/dev/null; then
      rc=0; wait "$probe" || rc=$?
      [ "$rc" = 0 ] && return 0
      [ -n "$(broker_pid "$dir")" ] || return 1
      kill_all "$dir"
      die "the readiness probe failed (exit=$rc, log=$dir/probe.log): $(grep -m1 -iE 'error|exception' "$dir/probe.log" | cut -c1-300)"
    fi
    if [ -z "$(broker_pid "$dir")" ]; then
      kill "$probe" 2>/dev/null || true; wait "$probe" 2>/dev/null || true
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill "$probe" 2>/dev/null || true; wait "$probe" 2>/dev/null || true
      kill_all "$dir"
      die "timed out after ${START_TIMEOUT_S}s waiting for metadata on $HOST:$PORT (log=$dir/logs/server.log)"
    fi
    sleep 0.2
  done
}

# Processes of DIR: the broker and the storage tool name DIR/server.properties, a probe DIR/probe.properties.
dir_pids() { { pids_mentioning "$1/server.properties"; pids_mentioning "$1/probe.properties"; } | sort -u; }

# Kill every process of DIR (the broker, a probe): SIGTERM, SIGKILL after the deadline.
kill_all() {
  local dir=$1 pids deadline sig=TERM
  pids=$(dir_pids "$dir")
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT_S))
  while [ -n "$(dir_pids "$dir")" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      [ "$sig" = KILL ] && die "processes survived SIGKILL (dir=$dir, pids=$(dir_pids "$dir" | tr '\n' ' '))"
      log "broker did not exit ${STOP_TIMEOUT_S}s after SIGTERM, sending SIGKILL (dir=$dir)"
      # shellcheck disable=SC2046
      kill -KILL $(dir_pids "$dir") 2>/dev/null || true
      sig=KILL
      deadline=$((SECONDS + 5))
    fi
    sleep 0.1
  done
}

cmd_start() {
  local dir='' created=0 use_state=0 props=() kv security=0
  case ${KAFKA_SECURITY:-} in '' | none) ;; sasl-ssl) security=1 ;; *) die "invalid KAFKA_SECURITY, expected sasl-ssl or none (KAFKA_SECURITY=$KAFKA_SECURITY)" ;; esac
  case ${1:-} in --* | '') ;; *) dir=$1; shift ;; esac
  while [ $# -gt 0 ]; do
    case $1 in
      --security) security=1; shift ;;
      --prop)
        kv=${2:-}
        [[ $kv =~ ^[A-Za-z0-9._-]+=.*$ ]] || die "--prop needs KEY=VALUE (value=$kv)"
        props+=("$kv"); shift 2 ;;
      *) die "unknown option for start (option=$1); see --help" ;;
    esac
  done
  find_java
  ensure_classpath
  if [ -z "$dir" ]; then
    use_state=1
    # One default broker per host: parallel starts without DIR share it.
    exec 8>>"$STATE_FILE.lock"
    flock -w "$((START_TIMEOUT_S + 60))" 8 || die "timed out waiting for another start (lock=$STATE_FILE.lock)"
    dir=$(resolve_dir "")
    if [ -n "$dir" ] && [ ! -f "$dir/$MARKER" ]; then dir=''; fi
    if [ -z "$dir" ]; then dir=$(mktemp -d /tmp/mf-kafka.XXXXXX); fi
    echo "$dir" >"$STATE_FILE"
  else
    dir=$(resolve_dir "$dir")
  fi
  mkdir -p "$dir"
  if [ ! -f "$dir/$MARKER" ]; then
    [ -z "$(ls -A "$dir")" ] || die "directory is not empty and not a Kafka dir (dir=$dir)"
    : >"$dir/$MARKER"
    created=1
  fi
  load_conf "$dir"
  if [ "$security" = 1 ] && [ -n "$PORT" ] && [ -z "$SASL_PORT" ]; then
    die "the broker of this dir was started without --security; stop it first (dir=$dir)"
  fi
  if [ -n "$(broker_pid "$dir")" ]; then
    echo "$HOST:$PORT"
    return 0
  fi
  if [ "$created" = 0 ] && [ -n "$VERSION" ] && [ "$VERSION" != "$KAFKA_VERSION" ]; then
    die "the dir holds Kafka $VERSION data, not $KAFKA_VERSION; stop it first (dir=$dir)"
  fi
  local attempt fresh=0 started=$SECONDS
  [ -n "$PORT" ] && [ -r "$dir/server.properties" ] || fresh=1
  # A freshly picked port can be taken between the check and the bind: pick again then (3 tries).
  for attempt in 1 2 3; do
    if [ "$fresh" = 1 ]; then
      PORT=$(pick_port) CONTROLLER_PORT=$(pick_port "$PORT") VERSION=$KAFKA_VERSION SASL_PORT='' SSL_PORT=''
      if [ "$security" = 1 ]; then
        SASL_PORT=$(pick_port "$PORT" "$CONTROLLER_PORT") SSL_PORT=$(pick_port "$PORT" "$CONTROLLER_PORT" "$SASL_PORT")
        [ -r "$dir/security/users" ] || make_security_files "$dir"
        write_client_configs "$dir"
      fi
      write_server_properties "$dir" "${props[@]}"
      save_conf "$dir"
    elif ! port_free "$PORT" listen || ! port_free "$CONTROLLER_PORT" listen \
      || { [ -n "$SASL_PORT" ] && { ! port_free "$SASL_PORT" listen || ! port_free "$SSL_PORT" listen; }; }; then
      die "the broker's ports are taken by another process (ports=$PORT,$CONTROLLER_PORT${SASL_PORT:+,$SASL_PORT,$SSL_PORT}, dir=$dir)"
    fi
    format_storage "$dir"
    log "starting Kafka $KAFKA_VERSION on $HOST:$PORT (controller $HOST:$CONTROLLER_PORT${SASL_PORT:+, sasl_plaintext $HOST:$SASL_PORT, sasl_ssl $HOST:$SSL_PORT}, dir=$dir)"
    launch_broker "$dir"
    if wait_ready "$dir"; then
      log "ready in $((SECONDS - started))s"
      echo "$HOST:$PORT"
      return 0
    fi
    kill_all "$dir"
    if [ "$fresh" = 1 ] && [ "$attempt" -lt 3 ] && grep -qE 'BindException|Address already in use' "$dir/kafka.out" "$dir/logs/server.log" 2>/dev/null; then
      log "port taken meanwhile, picking others (ports=$PORT,$CONTROLLER_PORT${SASL_PORT:+,$SASL_PORT,$SSL_PORT})"
      continue
    fi
    die "the broker exited during startup (dir=$dir, log=$dir/logs/server.log): $(broker_log_tail "$dir")"
  done
}

cmd_stop() {
  local dir
  dir=$(resolve_dir "${1:-}")
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    [ -z "${1:-}" ] && rm -f "$STATE_FILE"
    log "nothing to stop${dir:+ (dir=$dir)}"
    return 0
  fi
  [ -f "$dir/$MARKER" ] || die "not a Kafka dir made by this script, refusing to touch it (dir=$dir)"
  kill_all "$dir"
  rm -rf -- "$dir"
  if [ -r "$STATE_FILE" ] && [ "$(head -n1 "$STATE_FILE")" = "$dir" ]; then rm -f "$STATE_FILE"; fi
  log "stopped (dir=$dir)"
}

cmd_status() {
  local dir pid
  dir=$(resolve_dir "${1:-}")
  if [ -z "$dir" ] || [ ! -f "$dir/$MARKER" ]; then
    echo "kafka: not running${dir:+ (dir=$dir)}"
    return 3
  fi
  load_conf "$dir"
  pid=$(broker_pid "$dir")
  if [ -z "$pid" ]; then
    echo "kafka: stopped (dir=$dir)"
    return 3
  fi
  echo "kafka: running (pid=$pid, version=$VERSION, bootstrap=$HOST:$PORT, controller=$HOST:$CONTROLLER_PORT${SASL_PORT:+, sasl_plaintext=$HOST:$SASL_PORT, sasl_ssl=$HOST:$SSL_PORT, security=$dir/security}, dir=$dir)"
}

cmd_address() {
  local dir='' listener=plaintext port
  case ${1:-} in --* | '') ;; *) dir=$1; shift ;; esac
  while [ $# -gt 0 ]; do
    case $1 in
      --listener) listener=$(tr 'A-Z' 'a-z' <<<"${2:-}"); shift 2 || shift ;;
      *) die "unknown option for address (option=$1); see --help" ;;
    esac
  done
  case $listener in plaintext | sasl_plaintext | sasl_ssl) ;; *) echo "kafka: unknown listener, expected plaintext, sasl_plaintext or sasl_ssl (listener=$listener)" >&2; return 2 ;; esac
  dir=$(resolve_dir "$dir")
  if [ -n "$dir" ] && [ -f "$dir/$MARKER" ] && [ -n "$(broker_pid "$dir")" ]; then
    load_conf "$dir"
    case $listener in plaintext) port=$PORT ;; sasl_plaintext) port=$SASL_PORT ;; sasl_ssl) port=$SSL_PORT ;; esac
    if [ -z "$port" ]; then
      echo "kafka: the broker has no $listener listener; start it with --security (dir=$dir)" >&2
      return 2
    fi
    echo "$HOST:$port"
    return 0
  fi
  echo "kafka: not running${dir:+ (dir=$dir)}" >&2
  return 3
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    address) cmd_address "$@" ;;
    fetch) find_java; ensure_classpath; log "classpath ready (dir=$LIB_DIR)" ;;
    classpath) find_java; ensure_classpath; echo "$LIB_DIR/*" ;;
    -h | --help | help) usage ;;
    '') usage >&2; exit 2 ;;
    *) die "unknown command (command=$cmd); see --help" ;;
  esac
}

main "$@"
