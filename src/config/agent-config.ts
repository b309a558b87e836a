/**
 * The agent's configuration: a YAML or JSON file, env `MIRRORFLOW_…`, and flags → one typed
 * AgentConfig, or one ConfigError listing every bad setting at once.
 *
 * Precedence: flags > env > file > defaults. Every problem is one line
 * `<source>: <path>: <what was expected> (got <value>)`, where source is the file, the env variable
 * or the flag the value came from:
 *
 *   config: 2 invalid settings in agent.yaml
 *   agent.yaml: capture.snaplen: expected an integer 14..262144 (got 9)
 *   --window: sink.windowS: expected a number > 0 and <= 86400 (got "ten")
 *
 * Unknown keys are errors too (with a "did you mean" when a known key is close). Blocks owned by
 * other modules are checked by their own validators (mirror specs: src/ovsdb/mirror-spec.ts, Kafka:
 * src/pipeline/kafka-config.ts, rules: src/pipeline/rules-config.ts, the OVSDB remote:
 * src/config/ovsdb-config.ts, the inventory file: src/config/inventory-file.ts); they stop at their
 * first problem, so each is called again with the offending value removed or replaced until it
 * passes, which collects all their problems too.
 *
 * AGENT_SETTINGS is the table of every scalar setting (path, env, flag, default, meaning): it drives
 * env and flag mapping, the flag table the CLI parser gets (AGENT_FLAGS) and the README section.
 * Anything without its own flag or env var can be given as `--set PATH=VALUE` (repeatable).
 */
import { access, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError, MirrorflowError, kv } from '../errors.js';
import { internalOutputPortName, validateMirrorSpec, type MirrorSpec } from '../ovsdb/mirror-spec.js';
import { KAFKA_DEFAULTS, parseKafkaConfig, type KafkaConfig, type KafkaConfigInput } from '../pipeline/kafka-config.js';
import { parseRulesConfig, type RulesConfig } from '../pipeline/rules-config.js';
import { checkDbUrl, DEFAULT_DB_URL, type OvsdbConnectConfig } from './ovsdb-config.js';
import { parseInventory, type InventoryFileEntry } from './inventory-file.js';

// ---------------------------------------------------------------------------------------------
// The typed result

export type SinkKind = 'embedded' | 'kafka';
export type SinkFileFormat = 'json' | 'protobuf' | 'avro';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface AgentConfig {
  /** In record ids and the observation point. Default: the host name. */
  agentId: string;
  ovsdb: {
    /** unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT (comma-separated list allowed). */
    remote: string;
    /** Required for an ssl: remote. */
    tls?: { caFile: string; certFile: string; keyFile: string };
  };
  /** The mirrors the agent owns (created at start, removed at exit unless keepMirrors). */
  mirrors: MirrorSpec[];
  capture: {
    /** Where to capture: given, else the first mirror's output port (its internal port). */
    interface: string;
    /** BPF filter; '' for every frame. */
    filter: string;
    snaplen: number;
    bufferBytes: number;
    immediate: boolean;
  };
  flows: { idleTimeoutS: number; tcpIdleTimeoutS: number; activeTimeoutS: number; maxFlows: number };
  sink: {
    kind: SinkKind;
    windowS: number;
    allowedLatenessS: number;
    /** File or '-' (stdout). Default '-' with the embedded sink, none with Kafka. */
    pairsOut?: string;
    alertsOut?: string;
    flowsOut?: string;
    /** Format of the *Out files. */
    format: SinkFileFormat;
    rules: RulesConfig;
    /** Present exactly when kind is 'kafka' (spoolDir / spoolMaxBytes folded in). */
    kafka?: KafkaConfig;
    spoolDir?: string;
    spoolMaxBytes: number;
  };
  inventory: {
    /** Publish the OVSDB inventory to the inventory topic (Kafka only). */
    publish: boolean;
    /** Static inventory file (JSON [{vm, mac, ips}]); its entries are read by loadAgentConfig. */
    file?: string;
    entries?: InventoryFileEntry[];
  };
  metrics: {
    /** false when address is 'off'. */
    enabled: boolean;
    /** HOST:PORT as configured ('off' when disabled). */
    address: string;
    host: string;
    port: number;
  };
  keepMirrors: boolean;
  logLevel: LogLevel;
  /** The config file, if any (for logs). */
  file?: string;
}

/** One bad setting. */
export interface ConfigProblem {
  /** The file, `MIRRORFLOW_…` or `--flag` the value came from. */
  source: string;
  /** Dotted path in the config, e.g. `capture.snaplen`, `mirrors[0].selection.vms[2]`. */
  path: string;
  /** `expected …` or `unknown setting …`. */
  message: string;
  /** The value as shown, absent for unknown keys and secrets. */
  got?: string;
}

export const DEFAULT_METRICS_ADDRESS = '127.0.0.1:9477';
export const CAPTURE_SNAPLEN_MIN = 14;
export const CAPTURE_SNAPLEN_MAX = 262_144;
export const CAPTURE_BUFFER_MIN_BYTES = 65_536;
export const CAPTURE_BUFFER_MAX_BYTES = 2 ** 31 - 1;

// ---------------------------------------------------------------------------------------------
// The settings table (docs, env and flags)

export type SettingType = 'string' | 'integer' | 'number' | 'boolean' | 'list' | 'enum' | 'object' | 'array';

export interface SettingDoc {
  path: string;
  type: SettingType;
  /** Env variable; absent: file or `--set` only. */
  env?: string;
  /** Flag name without dashes; absent: file, env or `--set` only. */
  flag?: string;
  /** Placeholder of a string flag in --help. */
  arg?: string;
  /** Flag value → config value (e.g. MiB → bytes); the flag table describes the flag's unit. */
  fromFlag?: (s: string) => unknown;
  default: string;
  description: string;
}

const mib = (s: string): unknown => (/^\d+$/.test(s.trim()) ? Number(s) * 1024 * 1024 : s);

/** Every setting with its env var, flag and default; README's "Agent configuration" lists the same. */
export const AGENT_SETTINGS: readonly SettingDoc[] = [
  { path: 'agentId', type: 'string', env: 'MIRRORFLOW_AGENT_ID', flag: 'agent-id', arg: 'ID', default: 'the host name', description: 'Agent id in record ids and the observation point' },
  { path: 'ovsdb.remote', type: 'string', env: 'MIRRORFLOW_DB', flag: 'db', arg: 'URL', default: DEFAULT_DB_URL, description: 'OVSDB server: unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT' },
  { path: 'ovsdb.tls.caFile', type: 'string', env: 'MIRRORFLOW_SSL_CA', flag: 'ssl-ca', arg: 'FILE', default: 'none', description: 'CA certificate the OVSDB server must be signed by (ssl: remotes)' },
  { path: 'ovsdb.tls.certFile', type: 'string', env: 'MIRRORFLOW_SSL_CERT', flag: 'ssl-cert', arg: 'FILE', default: 'none', description: 'Client certificate for an ssl: remote' },
  { path: 'ovsdb.tls.keyFile', type: 'string', env: 'MIRRORFLOW_SSL_KEY', flag: 'ssl-key', arg: 'FILE', default: 'none', description: 'Private key for an ssl: remote' },
  { path: 'mirrors', type: 'array', default: 'none (or the one --bridge makes)', description: 'Mirror specs the agent owns: {name, bridge, selection, direction, output, snaplen} as `mirror create` takes them' },
  { path: 'capture.interface', type: 'string', env: 'MIRRORFLOW_CAPTURE_INTERFACE', flag: 'interface', arg: 'IF', default: "the first mirror's output port", description: 'Interface to capture on' },
  { path: 'capture.filter', type: 'string', env: 'MIRRORFLOW_CAPTURE_FILTER', flag: 'filter', arg: 'BPF', default: 'none', description: 'libpcap filter expression' },
  { path: 'capture.snaplen', type: 'integer', env: 'MIRRORFLOW_CAPTURE_SNAPLEN', flag: 'snaplen', arg: 'N', default: String(CAPTURE_SNAPLEN_MAX), description: `Bytes kept of each frame (${CAPTURE_SNAPLEN_MIN}..${CAPTURE_SNAPLEN_MAX})` },
  { path: 'capture.bufferBytes', type: 'integer', env: 'MIRRORFLOW_CAPTURE_BUFFER_BYTES', flag: 'buffer-size', arg: 'MIB', fromFlag: mib, default: '33554432 (32 MiB)', description: 'Kernel capture buffer (the flag takes MiB)' },
  { path: 'capture.immediate', type: 'boolean', env: 'MIRRORFLOW_CAPTURE_IMMEDIATE', flag: 'immediate', default: 'false', description: 'Hand frames over one by one instead of per filled ring block' },
  { path: 'flows.idleTimeoutS', type: 'number', env: 'MIRRORFLOW_FLOWS_IDLE_TIMEOUT_S', flag: 'idle-timeout', arg: 'SECONDS', default: '15', description: 'End a flow after this long without packets' },
  { path: 'flows.tcpIdleTimeoutS', type: 'number', env: 'MIRRORFLOW_FLOWS_TCP_IDLE_TIMEOUT_S', flag: 'tcp-idle-timeout', arg: 'SECONDS', default: '300', description: 'Idle timeout of an established TCP connection' },
  { path: 'flows.activeTimeoutS', type: 'number', env: 'MIRRORFLOW_FLOWS_ACTIVE_TIMEOUT_S', flag: 'active-timeout', arg: 'SECONDS', default: '60', description: 'Long flows emit interim records this often' },
  { path: 'flows.maxFlows', type: 'integer', env: 'MIRRORFLOW_FLOWS_MAX_FLOWS', flag: 'max-flows', arg: 'N', default: '1000000', description: 'Most flows held at once; beyond it the least recently active are evicted (counted)' },
  { path: 'sink.kind', type: 'enum', env: 'MIRRORFLOW_SINK_KIND', flag: 'sink', arg: 'embedded|kafka', default: 'kafka when brokers are given, else embedded', description: 'embedded: the pipeline in-process, JSON lines out; kafka: flow records to Kafka' },
  { path: 'sink.windowS', type: 'number', env: 'MIRRORFLOW_SINK_WINDOW_S', flag: 'window', arg: 'SECONDS', default: '10', description: 'Aggregation window of the embedded pipeline (and of flow cuts)' },
  { path: 'sink.allowedLatenessS', type: 'number', env: 'MIRRORFLOW_SINK_ALLOWED_LATENESS_S', flag: 'allowed-lateness', arg: 'SECONDS', default: '0', description: 'Accept records this long after their window ended' },
  { path: 'sink.pairsOut', type: 'string', env: 'MIRRORFLOW_SINK_PAIRS_OUT', flag: 'pairs-out', arg: 'FILE|-', default: '- (stdout) with the embedded sink, none with Kafka', description: 'Write PairWindows here' },
  { path: 'sink.alertsOut', type: 'string', env: 'MIRRORFLOW_SINK_ALERTS_OUT', flag: 'alerts-out', arg: 'FILE|-', default: 'none', description: 'Write alerts here' },
  { path: 'sink.flowsOut', type: 'string', env: 'MIRRORFLOW_SINK_FLOWS_OUT', flag: 'flows-out', arg: 'FILE|-', default: 'none', description: 'Write flow records here' },
  { path: 'sink.format', type: 'enum', env: 'MIRRORFLOW_SINK_FORMAT', flag: 'format', arg: 'json|protobuf|avro', default: 'json', description: 'Format of the *Out files (json: proto3 JSON lines)' },
  { path: 'sink.rules', type: 'object', default: 'the built-in rules', description: 'Alert and trend rules (thresholds, anomaly, security, trend), as `pipeline` takes them' },
  { path: 'sink.spoolDir', type: 'string', env: 'MIRRORFLOW_SINK_SPOOL_DIR', flag: 'spool-dir', arg: 'DIR', default: 'none (memory, then backpressure)', description: 'On-disk spool for records Kafka cannot take (Kafka only)' },
  { path: 'sink.spoolMaxBytes', type: 'integer', env: 'MIRRORFLOW_SINK_SPOOL_MAX_BYTES', flag: 'spool-max-bytes', arg: 'BYTES', default: String(KAFKA_DEFAULTS.spoolLimitBytes), description: 'Most bytes of the spool; the oldest records go first (counted)' },
  { path: 'sink.kafka.brokers', type: 'list', env: 'MIRRORFLOW_BROKERS', flag: 'brokers', arg: 'HOST:PORT[,...]', default: 'none', description: 'Kafka bootstrap brokers (makes the sink kafka)' },
  { path: 'sink.kafka.topicPrefix', type: 'string', env: 'MIRRORFLOW_KAFKA_TOPIC_PREFIX', flag: 'topic-prefix', arg: 'P', default: KAFKA_DEFAULTS.topicPrefix, description: 'Topic name prefix' },
  { path: 'sink.kafka.format', type: 'enum', env: 'MIRRORFLOW_KAFKA_FORMAT', default: KAFKA_DEFAULTS.format, description: 'Record format on the topics: protobuf, avro or json' },
  { path: 'sink.kafka.clientId', type: 'string', env: 'MIRRORFLOW_KAFKA_CLIENT_ID', default: 'mirrorflow-<agentId>', description: 'Kafka client id' },
  { path: 'sink.kafka.tls.caFile', type: 'string', env: 'MIRRORFLOW_KAFKA_TLS_CA_FILE', default: "the system's CAs", description: 'CA file to trust (setting any tls key turns TLS on; `tls: true` for system CAs)' },
  { path: 'sink.kafka.tls.certFile', type: 'string', env: 'MIRRORFLOW_KAFKA_TLS_CERT_FILE', default: 'none', description: 'Client certificate (mutual TLS)' },
  { path: 'sink.kafka.tls.keyFile', type: 'string', env: 'MIRRORFLOW_KAFKA_TLS_KEY_FILE', default: 'none', description: 'Client key (mutual TLS)' },
  { path: 'sink.kafka.sasl.mechanism', type: 'string', env: 'MIRRORFLOW_KAFKA_SASL_MECHANISM', default: 'none', description: 'plain, scram-sha-256 or scram-sha-512' },
  { path: 'sink.kafka.sasl.username', type: 'string', env: 'MIRRORFLOW_KAFKA_SASL_USERNAME', default: 'none', description: 'SASL user' },
  { path: 'sink.kafka.sasl.password', type: 'string', env: 'MIRRORFLOW_KAFKA_SASL_PASSWORD', default: 'none', description: 'SASL password (prefer the env variable to a file; never printed)' },
  { path: 'sink.kafka', type: 'object', default: 'see src/pipeline/kafka-config.ts', description: 'Every other Kafka setting (compression, lingerMs, batchBytes, partitions, retentionMs, …), as `pipeline` takes them' },
  { path: 'inventory.publish', type: 'boolean', env: 'MIRRORFLOW_INVENTORY_PUBLISH', default: 'true with Kafka, else false', description: 'Publish the OVSDB inventory (VM names, MACs, IPs) to the inventory topic' },
  { path: 'inventory.file', type: 'string', env: 'MIRRORFLOW_INVENTORY_FILE', flag: 'inventory', arg: 'FILE', default: 'none', description: 'Static inventory JSON [{"vm", "mac", "ips"}] added to what OVSDB knows' },
  { path: 'metrics.address', type: 'string', env: 'MIRRORFLOW_METRICS_ADDRESS', flag: 'metrics', arg: 'HOST:PORT|off', default: DEFAULT_METRICS_ADDRESS, description: '/metrics, /healthz and /readyz; off disables' },
  { path: 'keepMirrors', type: 'boolean', env: 'MIRRORFLOW_KEEP_MIRRORS', flag: 'keep-mirrors', default: 'false', description: 'Leave the mirrors (and their ports) in place at exit' },
  { path: 'logLevel', type: 'enum', env: 'MIRRORFLOW_LOG_LEVEL', flag: 'log-level', arg: 'LEVEL', default: 'info', description: LOG_LEVELS.join(', ') },
];

/** The common case: one mirror from flags (or env). */
export const MIRROR_SHORTHAND: readonly { flag: string; env: string; arg?: string; description: string }[] = [
  { flag: 'bridge', env: 'MIRRORFLOW_BRIDGE', arg: 'BR', description: 'Mirror this bridge into an internal port of the agent (replaces the config file\'s mirrors)' },
  { flag: 'select-all', env: 'MIRRORFLOW_SELECT_ALL', description: 'Mirror every port of --bridge' },
  { flag: 'select-vm', env: 'MIRRORFLOW_SELECT_VM', arg: 'ID', description: 'Mirror these VMs (vm-uuid, vm-id, iface-id or MAC; env: comma-separated)' },
  { flag: 'direction', env: 'MIRRORFLOW_DIRECTION', arg: 'both|to-vm|from-vm', description: 'Which packets of the selection (default both)' },
  { flag: 'mirror-name', env: 'MIRRORFLOW_MIRROR_NAME', arg: 'NAME', description: 'Name of that mirror (default mirrorflow-<bridge>)' },
];

/** A flag as the CLI parser takes it (structurally src/cli/command.ts OptionSpec). */
export interface AgentFlagSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  arg?: string;
  description: string;
}

function buildFlags(): Record<string, AgentFlagSpec> {
  const flags: Record<string, AgentFlagSpec> = {
    config: { type: 'string', arg: 'FILE', description: 'Config file, YAML or JSON (env MIRRORFLOW_CONFIG)' },
  };
  for (const m of MIRROR_SHORTHAND) {
    flags[m.flag] =
      m.flag === 'select-all'
        ? { type: 'boolean', description: `${m.description} (env ${m.env})` }
        : { type: 'string', ...(m.flag === 'select-vm' ? { multiple: true } : {}), arg: m.arg!, description: `${m.description} (env ${m.env})` };
  }
  for (const s of AGENT_SETTINGS) {
    if (!s.flag) continue;
    const env = s.env ? `env ${s.env}; ` : '';
    flags[s.flag] =
      s.type === 'boolean'
        ? { type: 'boolean', description: `${s.description} (${env}${s.path})` }
        : { type: 'string', arg: s.arg ?? 'VALUE', description: `${s.description} (${env}${s.path}; default ${s.default})` };
  }
  flags.set = { type: 'string', multiple: true, arg: 'PATH=VALUE', description: 'Any setting by its config path, e.g. --set sink.kafka.lingerMs=50 (VALUE may be JSON)' };
  return flags;
}

/** The agent's flags, for the CLI parser (no defaults here: defaults apply after env and file). */
export const AGENT_FLAGS: Readonly<Record<string, AgentFlagSpec>> = Object.freeze(buildFlags());

// ---------------------------------------------------------------------------------------------
// Paths and the raw tree

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `a.b[2].c` → ['a', 'b', 2, 'c']. */
function splitPath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const part of path.split('.')) {
    if (!part) continue;
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) {
      out.push(part);
      continue;
    }
    if (m[1]) out.push(m[1]);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

function joinPath(prefix: string, rel: string): string {
  if (!rel) return prefix;
  if (!prefix) return rel;
  return rel.startsWith('[') ? prefix + rel : `${prefix}.${rel}`;
}

function parentPath(path: string): string {
  const m = /^(.*)(\.[^.[\]]+|\[\d+\])$/.exec(path);
  return m ? m[1]! : '';
}

function getAt(root: unknown, path: string): unknown {
  let v: unknown = root;
  for (const k of splitPath(path)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Obj)[k as string];
  }
  return v;
}

function setAt(root: Obj, path: string, value: unknown): void {
  const parts = splitPath(path);
  let o: Obj = root;
  for (let i = 0; i < parts.length - 1; i++) {
    const k = parts[i] as string;
    if (!isObject(o[k]) && !Array.isArray(o[k])) o[k] = typeof parts[i + 1] === 'number' ? [] : {};
    o = o[k] as Obj;
  }
  o[parts[parts.length - 1] as string] = value;
}

function deleteAt(root: unknown, path: string): void {
  const parts = splitPath(path);
  let o: unknown = root;
  for (const k of parts.slice(0, -1)) {
    if (o === null || typeof o !== 'object') return;
    o = (o as Obj)[k as string];
  }
  if (o !== null && typeof o === 'object') delete (o as Obj)[parts[parts.length - 1] as string];
}

function clone<T>(v: T): T {
  return v === undefined ? v : (structuredClone(v) as T);
}

// ---------------------------------------------------------------------------------------------
// Problems

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

const SECRET_RE = /password|secret/i;

class Problems {
  readonly list: ConfigProblem[] = [];
  constructor(
    private readonly origins: Map<string, string>,
    private readonly fileSource: string,
  ) {}

  sourceOf(path: string): string {
    for (let p = path; ; p = parentPath(p)) {
      const o = this.origins.get(p);
      if (o) return o;
      if (!p) return this.fileSource || 'config';
    }
  }

  /** `expected` reads `expected …`; the value is shown unless the path is a secret. */
  add(path: string, message: string, value?: unknown, opts: { noValue?: boolean; source?: string } = {}): void {
    const p: ConfigProblem = { source: opts.source ?? this.sourceOf(path), path, message };
    if (!opts.noValue) p.got = SECRET_RE.test(path) ? '(hidden)' : show(value);
    this.list.push(p);
  }

  get count(): number {
    return this.list.length;
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.source}: ${p.path}: ${p.message}${p.got !== undefined ? ` (got ${p.got})` : ''}`;
}

/** The one ConfigError for a list of problems: a summary line, then one line per problem. */
export function configErrorFrom(problems: ConfigProblem[], file?: string): ConfigError {
  const n = problems.length;
  const head = `config: ${n} invalid setting${n === 1 ? '' : 's'}${file ? ` in ${file}` : ''}`;
  return new ConfigError([head, ...problems.map(formatProblem)].join('\n'), { problems });
}

// ---------------------------------------------------------------------------------------------
// Did you mean

function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= m; i++) {
    const cur = [i];
    for (let j = 1; j <= n; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
    }
    prev = cur;
  }
  return prev[n]!;
}

/** The closest allowed key, when close enough to be a likely typo. */
export function suggestKey(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const a of allowed) {
    const d = editDistance(key, a);
    if (d < bestD) {
      bestD = d;
      best = a;
    }
  }
  const limit = Math.max(1, Math.min(3, Math.floor(key.length / 3)));
  if (best !== undefined && bestD <= limit) return best;
  // a key that differs only in case or separators: tcp_idle_timeout_s vs tcpIdleTimeoutS
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  return allowed.find((a) => norm(a) === norm(key));
}

// ---------------------------------------------------------------------------------------------
// Reading values

class Reader {
  constructor(
    private readonly raw: Obj,
    readonly problems: Problems,
  ) {}

  get(path: string): unknown {
    return getAt(this.raw, path);
  }

  /** An object section with only `allowed` keys (unknown keys reported); {} when absent or wrong. */
  section(path: string, allowed: readonly string[]): Obj {
    const v = path ? this.get(path) : this.raw;
    if (v === undefined || v === null) return {};
    if (!isObject(v)) {
      this.problems.add(path, `expected an object with ${allowed.join(', ')}`, v);
      return {};
    }
    this.unknownKeys(path, v, allowed);
    return v;
  }

  unknownKeys(path: string, obj: Obj, allowed: readonly string[]): void {
    for (const k of Object.keys(obj)) {
      if (allowed.includes(k)) continue;
      const hint = suggestKey(k, allowed);
      this.problems.add(joinPath(path, k), hint ? `unknown setting; did you mean ${joinPath(path, hint)}?` : `unknown setting; expected one of ${allowed.join(', ')}`, undefined, { noValue: true });
    }
  }

  string(path: string, opts: { re?: RegExp; expected?: string; maxChars?: number } = {}): string | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) return undefined;
    const ok = typeof v === 'string' && v.trim() !== '' && (opts.maxChars === undefined || v.length <= opts.maxChars) && (!opts.re || opts.re.test(v));
    if (!ok) {
      this.problems.add(path, `expected ${opts.expected ?? 'a non-empty string'}`, v);
      return undefined;
    }
    return v as string;
  }

  /** A string that may be empty (e.g. a filter). */
  text(path: string): string | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') {
      this.problems.add(path, 'expected a string', v);
      return undefined;
    }
    return v;
  }

  int(path: string, min: number, max: number): number | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.problems.add(path, `expected an integer ${min}..${max}`, v);
      return undefined;
    }
    return v;
  }

  /** A number in (min, max] (minOpen) or [min, max]. */
  num(path: string, min: number, max: number, minOpen = false): number | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || (minOpen ? v <= min : v < min) || v > max) {
      this.problems.add(path, `expected a number ${minOpen ? `> ${min} and <= ${max}` : `${min}..${max}`}`, v);
      return undefined;
    }
    return v;
  }

  bool(path: string): boolean | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') {
      this.problems.add(path, 'expected true or false', v);
      return undefined;
    }
    return v;
  }

  oneOf<T extends string>(path: string, values: readonly T[]): T | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      this.problems.add(path, `expected one of ${values.join(', ')}`, v);
      return undefined;
    }
    return v as T;
  }
}

// ---------------------------------------------------------------------------------------------
// Calling validators that stop at their first problem

interface Extracted {
  /** An unknown key: shown without its value. */
  unknown?: boolean;
  /** For an unknown key: the likely intended one (relative path). */
  hint?: string;
  /** Path relative to the block. */
  rel: string;
  message: string;
  value?: unknown;
  hasValue: boolean;
}

function isConfigErrorLike(e: unknown): e is MirrorflowError {
  return e instanceof Error && typeof (e as MirrorflowError).code === 'string' && ['config', 'usage'].includes((e as MirrorflowError).code);
}

function expectedFromMessage(msg: string): string | undefined {
  const m = /expected (.+?)(?: \([^()]*\))?$/.exec(msg.split('\n')[0]!);
  return m ? `expected ${m[1]}` : undefined;
}

/**
 * The allowed keys when a validator's error is about an unknown key: mirror-spec says "has an
 * unknown key" (expected a|b|c, prefixed), rules-config expects "one of a, b, c" not holding the key.
 */
function unknownKeyList(message: string, rel: string, expected: unknown): string[] | undefined {
  if (typeof expected !== 'string') return undefined;
  const key = rel.slice(rel.lastIndexOf('.') + 1);
  if (message.includes('unknown key')) return expected.split('|').map((k) => k.slice(k.lastIndexOf('.') + 1));
  const m = /^one of ([A-Za-z0-9]+(?:, [A-Za-z0-9]+)+)$/.exec(expected);
  if (m && !m[1]!.split(', ').includes(key)) return m[1]!.split(', ');
  return undefined;
}

/** What a block validator's ConfigError says: where (relative path), what was expected, the value. */
function extractProblem(e: MirrorflowError): Extracted {
  const d = (e.details ?? {}) as Record<string, unknown>;
  const field = typeof d.field === 'string' ? d.field : typeof d.setting === 'string' ? d.setting : undefined;
  let rel = field ?? '';
  if (typeof d.index === 'number') rel = field === 'rule' ? `thresholds[${d.index}]` : `thresholds[${d.index}].${field}`;
  let message: string;
  const unknown = unknownKeyList(e.message, rel, d.expected);
  if (unknown) {
    const key = rel.slice(rel.lastIndexOf('.') + 1);
    const hint = suggestKey(key, unknown);
    message = hint ? 'unknown setting' : `unknown setting; expected one of ${unknown.join(', ')}`;
    return { rel, message, hasValue: false, unknown: true, ...(hint ? { hint: joinPath(parentPath(rel), hint) } : {}) };
  }
  if (typeof d.expected === 'string') message = d.expected.startsWith('^') ? `expected characters matching /${d.expected}/` : `expected ${d.expected}`;
  else if (typeof d.maxChars === 'number') message = `expected at most ${d.maxChars} characters`;
  else message = expectedFromMessage(e.message) ?? e.message.replace(/^config: /, '');
  const hasValue = 'value' in d && !(d.value === 'undefined' && e.message.startsWith('config: mirror'));
  const out: Extracted = { rel, message, hasValue };
  if (hasValue) out.value = d.value;
  else if ('value' in d) out.value = undefined;
  return out;
}

/**
 * Calls `validate` on a copy of `input` until it passes, recording each problem under `prefix` and
 * then removing (or, via `placeholder`, replacing) the offending value; a problem that comes back
 * after its value was removed removes the enclosing value instead. Returns the validated result
 * when the input had no problems.
 */
function collectAll<T>(validate: (x: unknown) => T, input: unknown, prefix: string, problems: Problems, placeholder: (rel: string) => unknown = () => undefined): T | undefined {
  let data: unknown = clone(input);
  const reported = new Set<string>();
  const removed = new Set<string>();
  for (let round = 0; round < 100; round++) {
    try {
      const r = validate(data);
      return reported.size ? undefined : r;
    } catch (e) {
      if (!isConfigErrorLike(e)) throw e;
      const p = extractProblem(e);
      if (!reported.has(p.rel)) {
        reported.add(p.rel);
        const atPath = getAt(data, p.rel);
        const shown = atPath !== undefined || !p.hasValue ? atPath : p.value;
        const message = p.hint ? `${p.message}; did you mean ${joinPath(prefix, p.hint)}?` : p.message;
        problems.add(joinPath(prefix, p.rel), message, shown, p.unknown || SECRET_RE.test(p.rel) ? { noValue: true } : {});
      }
      let target = p.rel;
      while (target && removed.has(target)) target = parentPath(target);
      if (!target) return undefined;
      removed.add(target);
      const ph = placeholder(target);
      if (!isObject(data) && !Array.isArray(data)) data = {};
      if (ph !== undefined) setAt(data as Obj, target, ph);
      else deleteAt(data, target);
    }
  }
  return undefined;
}

function mirrorPlaceholder(rel: string): unknown {
  if (rel === 'bridge' || rel === 'name' || /^selection\.(ports|vms)\[\d+\]$/.test(rel) || rel === 'output.port') return 'placeholder';
  if (/^selection\.vlans\[\d+\]$/.test(rel) || rel === 'output.vlan') return 1;
  if (rel === 'selection') return { kind: 'all' };
  if (rel === 'output') return { kind: 'internal' };
  return undefined;
}

function kafkaPlaceholder(rel: string): unknown {
  return rel === 'brokers' ? 'localhost:9092' : undefined;
}

function rulePlaceholder(rel: string): unknown {
  if (/^thresholds\[\d+\]\.metric$/.test(rel)) return 'lossRate';
  if (/^thresholds\[\d+\]\.operator$/.test(rel)) return '>';
  if (/^thresholds\[\d+\]\.value$/.test(rel)) return 0;
  if (/^thresholds\[\d+\]$/.test(rel)) return { metric: 'lossRate', operator: '>', value: 0, name: `placeholder-${rel.replace(/\D/g, '')}` };
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Env and flags → the raw tree

function coerce(type: SettingType | undefined, s: string): unknown {
  const t = s.trim();
  switch (type) {
    case 'integer':
    case 'number':
      return t !== '' && Number.isFinite(Number(t)) ? Number(t) : s;
    case 'boolean':
      if (/^(true|1|yes|on)$/i.test(t)) return true;
      if (/^(false|0|no|off)$/i.test(t)) return false;
      return s;
    case 'list':
      return t.split(',').map((x) => x.trim()).filter(Boolean);
    case 'object':
    case 'array':
    case undefined:
      try {
        return JSON.parse(t);
      } catch {
        return s;
      }
    default:
      return s;
  }
}

const SETTINGS_BY_PATH = new Map(AGENT_SETTINGS.map((s) => [s.path, s]));

function flagString(v: unknown): string | undefined {
  if (v === undefined || v === null || v === false) return undefined;
  if (Array.isArray(v)) return v.length ? String(v[v.length - 1]) : undefined;
  return String(v);
}

function setItems(flags: Record<string, unknown>): string[] {
  const v = flags.set;
  if (v === undefined || v === null || v === false) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

function flagList(v: unknown): string[] | undefined {
  if (v === undefined || v === null || v === false) return undefined;
  const list = (Array.isArray(v) ? v : [v]).flatMap((x) => String(x).split(',')).map((x) => x.trim()).filter(Boolean);
  return list;
}

/**
 * Applies env and flags over the file's tree (flags last), recording where each value came from.
 * The mirror shorthand (--bridge …) replaces the file's mirrors.
 */
function overlay(raw: Obj, env: NodeJS.ProcessEnv, flags: Record<string, unknown>, origins: Map<string, string>, early: ConfigProblem[]): void {
  const put = (path: string, value: unknown, source: string) => {
    setAt(raw, path, value);
    origins.set(path, source);
  };
  const envOf = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  // env
  for (const s of AGENT_SETTINGS) {
    const v = s.env ? envOf(s.env) : undefined;
    if (v !== undefined) put(s.path, coerce(s.type, v), s.env!);
  }
  // flags
  for (const s of AGENT_SETTINGS) {
    if (!s.flag) continue;
    const f = flags[s.flag];
    if (f === undefined || f === null || (s.type === 'boolean' && f === false)) continue;
    if (s.type === 'boolean') put(s.path, true, `--${s.flag}`);
    else {
      const str = flagString(f);
      if (str === undefined) continue;
      put(s.path, s.fromFlag ? s.fromFlag(str) : coerce(s.type, str), `--${s.flag}`);
    }
  }
  for (const item of setItems(flags)) {
    const eq = item.indexOf('=');
    const path = eq > 0 ? item.slice(0, eq).trim() : '';
    if (!path || !/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/.test(path)) {
      early.push({ source: '--set', path: path || item, message: 'expected PATH=VALUE with a dotted config path, e.g. sink.kafka.lingerMs=50', got: show(item) });
      continue;
    }
    put(path, coerce(SETTINGS_BY_PATH.get(path)?.type, item.slice(eq + 1)), `--set ${path}`);
  }
  // the mirror shorthand: flags win over env, field by field
  const pick = (flag: string, envName: string): { value: unknown; source: string } | undefined => {
    const f = flags[flag];
    if (f !== undefined && f !== null && f !== false && !(Array.isArray(f) && f.length === 0)) return { value: f, source: `--${flag}` };
    const e = envOf(envName);
    return e === undefined ? undefined : { value: e, source: envName };
  };
  const bridge = pick('bridge', 'MIRRORFLOW_BRIDGE');
  const flagSelect = flags['select-all'] === true || flagList(flags['select-vm'])?.length;
  const all = flagSelect ? (flags['select-all'] === true ? { value: true, source: '--select-all' } : undefined) : pick('select-all', 'MIRRORFLOW_SELECT_ALL');
  const vms = flagSelect ? (flagList(flags['select-vm'])?.length ? { value: flags['select-vm'], source: '--select-vm' } : undefined) : pick('select-vm', 'MIRRORFLOW_SELECT_VM');
  const direction = pick('direction', 'MIRRORFLOW_DIRECTION');
  const name = pick('mirror-name', 'MIRRORFLOW_MIRROR_NAME');
  const selectAll = all !== undefined && (all.value === true || coerce('boolean', String(all.value)) === true);
  if (all && !selectAll && all.value !== false && coerce('boolean', String(all.value)) !== false) {
    early.push({ source: all.source, path: 'mirrors[0].selection', message: 'expected true or false', got: show(all.value) });
  }
  if (!bridge) {
    for (const x of [selectAll ? all : undefined, vms, direction, name]) {
      if (x) early.push({ source: x.source, path: 'mirrors[0].bridge', message: `expected --bridge BR (or MIRRORFLOW_BRIDGE) with ${x.source}` });
    }
    return;
  }
  // the default name is valid whatever the bridge (a bad bridge is reported once, as itself)
  const spec: Obj = { name: name ? flagString(name.value) : `mirrorflow-${String(flagString(bridge.value)).replace(/[^A-Za-z0-9_.:@+-]/g, '-')}`, bridge: flagString(bridge.value), output: { kind: 'internal' } };
  if (selectAll && vms) {
    early.push({ source: vms.source, path: 'mirrors[0].selection', message: `expected either ${all!.source} or ${vms.source}, not both` });
  } else if (selectAll) spec.selection = { kind: 'all' };
  else if (vms) spec.selection = { kind: 'vms', vms: flagList(vms.value) };
  else early.push({ source: bridge.source, path: 'mirrors[0].selection', message: 'expected --select-all or --select-vm ID… with --bridge (or MIRRORFLOW_SELECT_ALL / MIRRORFLOW_SELECT_VM)' });
  if (direction) spec.direction = flagString(direction.value);
  raw.mirrors = [spec];
  origins.set('mirrors', bridge.source);
  if (name) origins.set('mirrors[0].name', name.source);
  if (direction) origins.set('mirrors[0].direction', direction.source);
  if (vms) origins.set('mirrors[0].selection', vms.source);
  else if (all) origins.set('mirrors[0].selection', all.source);
}

// ---------------------------------------------------------------------------------------------
// Resolution

const TOP_KEYS = ['agentId', 'ovsdb', 'mirrors', 'capture', 'flows', 'sink', 'inventory', 'metrics', 'keepMirrors', 'logLevel'] as const;
const KAFKA_KEYS = [
  'brokers', 'clientId', 'tls', 'sasl', 'topicPrefix', 'format', 'compression', 'lingerMs', 'batchBytes', 'batchRecords', 'memoryLimitBytes',
  'spoolDir', 'spoolLimitBytes', 'connectionTimeoutMs', 'requestTimeoutMs', 'closeTimeoutMs', 'partitions', 'replicationFactor', 'retentionMs',
];
const AGENT_ID_RE = /^[A-Za-z0-9_.:@-]{1,128}$/;
const IFNAME_RE = /^[^\s/:]{1,15}$/;

/** Parses a listen address: `HOST:PORT`, `[IPv6]:PORT` or a bare port (on 127.0.0.1); port 0 allowed. */
export function parseListenAddress(address: string): { host: string; port: number } | undefined {
  const s = address.trim();
  if (/^\d+$/.test(s)) {
    const port = Number(s);
    return port <= 65535 ? { host: '127.0.0.1', port } : undefined;
  }
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port };
}

/** `host:port`, IPv6 hosts in brackets. */
export function formatListenAddress(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

interface Resolution {
  config?: AgentConfig;
  problems: ConfigProblem[];
}

function resolve(fileData: unknown, source: string, env: NodeJS.ProcessEnv, flags: Record<string, unknown>): Resolution {
  const origins = new Map<string, string>();
  const early: ConfigProblem[] = [];
  let raw: Obj = {};
  if (fileData !== undefined && fileData !== null) {
    if (isObject(fileData)) raw = clone(fileData);
    else early.push({ source: source || 'config', path: '(top)', message: 'expected a mapping of settings (agentId, ovsdb, mirrors, capture, …)', got: show(fileData) });
  }
  overlay(raw, env, flags, origins, early);
  const problems = new Problems(origins, source);
  problems.list.push(...early);
  const r = new Reader(raw, problems);
  r.section('', TOP_KEYS);

  const agentId = r.string('agentId', { re: AGENT_ID_RE, expected: 'an id of 1..128 letters, digits, _ . : @ -' }) ?? hostname();

  // ovsdb
  r.section('ovsdb', ['remote', 'tls']);
  let remote = DEFAULT_DB_URL;
  const remoteIn = r.string('ovsdb.remote', { expected: 'unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT' });
  if (remoteIn !== undefined) {
    try {
      remote = checkDbUrl(remoteIn);
    } catch (e) {
      if (!isConfigErrorLike(e)) throw e;
      problems.add('ovsdb.remote', expectedFromMessage(e.message) ?? 'expected unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT', remoteIn);
    }
  }
  const tlsIn = r.section('ovsdb.tls', ['caFile', 'certFile', 'keyFile']);
  const caFile = r.string('ovsdb.tls.caFile', { expected: 'a file name' });
  const certFile = r.string('ovsdb.tls.certFile', { expected: 'a file name' });
  const keyFile = r.string('ovsdb.tls.keyFile', { expected: 'a file name' });
  const ssl = remote.split(',').some((x) => x.trim().startsWith('ssl:'));
  let tls: AgentConfig['ovsdb']['tls'];
  if (ssl) {
    if (caFile && certFile && keyFile) tls = { caFile, certFile, keyFile };
    else {
      const missing = (['caFile', 'certFile', 'keyFile'] as const).filter((k) => tlsIn[k] === undefined);
      if (missing.length) problems.add('ovsdb.tls', `expected ${missing.join(', ')} for an ssl: remote (ovsdb.remote=${remote})`, undefined, { noValue: true, source: problems.sourceOf('ovsdb.remote') });
    }
  }

  // mirrors
  const mirrors: MirrorSpec[] = [];
  const mirrorsIn = r.get('mirrors');
  if (mirrorsIn !== undefined && mirrorsIn !== null && !Array.isArray(mirrorsIn)) problems.add('mirrors', 'expected a list of mirror specs', mirrorsIn);
  else if (Array.isArray(mirrorsIn)) {
    mirrorsIn.forEach((m, i) => {
      const spec = collectAll(validateMirrorSpec, m, `mirrors[${i}]`, problems, mirrorPlaceholder);
      if (spec) mirrors.push(spec);
    });
    const seen = new Map<string, number>();
    mirrors.forEach((m) => {
      const i = mirrorsIn.findIndex((x) => isObject(x) && x.name === m.name && x.bridge === m.bridge);
      const first = seen.get(m.name);
      if (first !== undefined) problems.add(`mirrors[${i}].name`, `expected a name no other mirror has (mirrors[${first}] has it)`, m.name);
      else seen.set(m.name, i);
    });
  }

  // capture
  r.section('capture', ['interface', 'filter', 'snaplen', 'bufferBytes', 'immediate']);
  let iface = r.string('capture.interface', { re: IFNAME_RE, expected: 'an interface name of 1..15 characters' });
  if (iface === undefined && r.get('capture.interface') === undefined) {
    const first = mirrors[0];
    if (first) {
      iface = first.output.kind === 'port' ? first.output.port : first.output.kind === 'internal' ? internalOutputPortName(first) : undefined;
      if (iface === undefined) problems.add('capture.interface', `expected an interface name: mirror ${first.name} outputs to a VLAN, which implies none`, undefined);
    } else if (!(Array.isArray(mirrorsIn) && mirrorsIn.length)) {
      problems.add('capture.interface', 'expected an interface name, or a mirror whose output it is (mirrors, or --bridge with --select-all / --select-vm)', undefined);
    }
  }
  const capture: AgentConfig['capture'] = {
    interface: iface ?? '',
    filter: (r.text('capture.filter') ?? '').trim(),
    snaplen: r.int('capture.snaplen', CAPTURE_SNAPLEN_MIN, CAPTURE_SNAPLEN_MAX) ?? CAPTURE_SNAPLEN_MAX,
    bufferBytes: r.int('capture.bufferBytes', CAPTURE_BUFFER_MIN_BYTES, CAPTURE_BUFFER_MAX_BYTES) ?? 32 * 1024 * 1024,
    immediate: r.bool('capture.immediate') ?? false,
  };

  // flows
  r.section('flows', ['idleTimeoutS', 'tcpIdleTimeoutS', 'activeTimeoutS', 'maxFlows']);
  const flows: AgentConfig['flows'] = {
    idleTimeoutS: r.num('flows.idleTimeoutS', 0.001, 3600) ?? 15,
    tcpIdleTimeoutS: r.num('flows.tcpIdleTimeoutS', 0.001, 86_400) ?? 300,
    activeTimeoutS: r.num('flows.activeTimeoutS', 0.001, 3600) ?? 60,
    maxFlows: r.int('flows.maxFlows', 1, 268_435_456) ?? 1_000_000,
  };

  // sink
  r.section('sink', ['kind', 'windowS', 'allowedLatenessS', 'pairsOut', 'alertsOut', 'flowsOut', 'format', 'rules', 'kafka', 'spoolDir', 'spoolMaxBytes']);
  const kafkaIn = r.section('sink.kafka', KAFKA_KEYS);
  for (const [sub, keys] of [
    ['tls', ['caFile', 'certFile', 'keyFile', 'servername', 'rejectUnauthorized']],
    ['sasl', ['mechanism', 'username', 'password']],
    ['partitions', ['flows', 'pairs', 'alerts', 'inventory']],
    ['retentionMs', ['flows', 'pairs', 'alerts']],
  ] as const) {
    const v = kafkaIn[sub];
    if (isObject(v)) r.unknownKeys(`sink.kafka.${sub}`, v, keys);
  }
  const brokersGiven = kafkaIn.brokers !== undefined && !(Array.isArray(kafkaIn.brokers) && kafkaIn.brokers.length === 0);
  const kindIn = r.oneOf<SinkKind>('sink.kind', ['embedded', 'kafka']);
  const kind: SinkKind = kindIn ?? (brokersGiven ? 'kafka' : 'embedded');
  if (kindIn === 'embedded' && brokersGiven) problems.add('sink.kind', 'expected kafka (or no sink.kafka.brokers): brokers are set', kindIn);
  const spoolDir = r.string('sink.spoolDir', { expected: 'a directory name' });
  const spoolMaxBytes = r.int('sink.spoolMaxBytes', 64 * 1024, 2 ** 50) ?? KAFKA_DEFAULTS.spoolLimitBytes;
  let kafka: KafkaConfig | undefined;
  if (kind === 'kafka') {
    if (!brokersGiven) problems.add('sink.kafka.brokers', 'expected HOST:PORT[,HOST:PORT...] with sink.kind kafka (--brokers, MIRRORFLOW_BROKERS)', kafkaIn.brokers, { source: problems.sourceOf('sink.kind') });
    else {
      const input: KafkaConfigInput & Obj = { clientId: `mirrorflow-${agentId}`, ...clone(kafkaIn) };
      if (spoolDir !== undefined) input.spoolDir = spoolDir;
      if (r.get('sink.spoolMaxBytes') !== undefined || input.spoolLimitBytes === undefined) input.spoolLimitBytes = spoolMaxBytes;
      kafka = collectAll((x) => parseKafkaConfig(x as KafkaConfigInput), input, 'sink.kafka', problems, kafkaPlaceholder);
    }
  }
  const outPath = (key: 'pairsOut' | 'alertsOut' | 'flowsOut') => r.string(`sink.${key}`, { expected: 'a file name or - (stdout)' });
  const pairsOut = outPath('pairsOut') ?? (kind === 'embedded' && r.get('sink.pairsOut') === undefined ? '-' : undefined);
  const alertsOut = outPath('alertsOut');
  const flowsOut = outPath('flowsOut');
  const format = r.oneOf<SinkFileFormat>('sink.format', ['json', 'protobuf', 'avro']) ?? 'json';
  const windowS = r.num('sink.windowS', 0, 86_400, true) ?? 10;
  const allowedLatenessS = r.num('sink.allowedLatenessS', 0, 86_400) ?? 0;
  const rulesIn = r.get('sink.rules');
  let rules: RulesConfig | undefined;
  if (rulesIn !== undefined && rulesIn !== null && !isObject(rulesIn)) problems.add('sink.rules', 'expected an object with thresholds, anomaly, security, trend', rulesIn);
  else {
    const ri = (rulesIn ?? {}) as Obj;
    // each threshold rule alone first, so every bad rule is named; then the whole section
    let rulesOk = true;
    if (Array.isArray(ri.thresholds)) {
      ri.thresholds.forEach((t, i) => {
        const before = problems.count;
        collectAll(parseRulesConfig, { thresholds: [t] }, `sink.rules.@${i}`, problems, rulePlaceholder);
        if (problems.count > before) rulesOk = false;
      });
      // a rule's problems were found with the rule alone (as thresholds[0]): name its real index
      for (const p of problems.list) p.path = p.path.replace(/^sink\.rules\.@(\d+)\.thresholds\[0\]/, 'sink.rules.thresholds[$1]');
    }
    if (rulesOk) rules = collectAll(parseRulesConfig, ri, 'sink.rules', problems, rulePlaceholder);
    else collectAll(parseRulesConfig, { ...ri, thresholds: [] }, 'sink.rules', problems, rulePlaceholder);
  }
  const outs = [['pairsOut', pairsOut], ['alertsOut', alertsOut], ['flowsOut', flowsOut]].filter(([, v]) => v !== undefined && v !== '-');
  for (let i = 0; i < outs.length; i++) {
    for (let j = 0; j < i; j++) if (outs[i]![1] === outs[j]![1]) problems.add(`sink.${outs[i]![0]}`, `expected a file other than sink.${outs[j]![0]}'s`, outs[i]![1]);
  }
  if (format !== 'json' && [pairsOut, alertsOut, flowsOut].filter((x) => x === '-').length > 1) {
    problems.add('sink.format', 'expected json when more than one output goes to stdout (-)', format);
  }

  // inventory
  r.section('inventory', ['publish', 'file']);
  const publish = r.bool('inventory.publish');
  if (publish === true && kind !== 'kafka') problems.add('inventory.publish', 'expected false with the embedded sink (publishing needs sink.kind kafka)', publish);
  const invFile = r.string('inventory.file', { expected: 'a file name' });

  // metrics
  r.section('metrics', ['address']);
  const addrIn = r.get('metrics.address');
  let metrics: AgentConfig['metrics'] = { enabled: true, address: DEFAULT_METRICS_ADDRESS, host: '127.0.0.1', port: 9477 };
  if (addrIn === 'off' || addrIn === false) metrics = { enabled: false, address: 'off', host: '', port: 0 };
  else if (addrIn !== undefined && addrIn !== null) {
    const parsed = typeof addrIn === 'string' || typeof addrIn === 'number' ? parseListenAddress(String(addrIn)) : undefined;
    if (!parsed) problems.add('metrics.address', 'expected HOST:PORT (port 0..65535), [IPv6]:PORT, or off', addrIn);
    else metrics = { enabled: true, address: formatListenAddress(parsed.host, parsed.port), ...parsed };
  }

  const keepMirrors = r.bool('keepMirrors') ?? false;
  const logLevel = r.oneOf<LogLevel>('logLevel', LOG_LEVELS) ?? 'info';

  if (problems.count) return { problems: problems.list };
  const sink: AgentConfig['sink'] = { kind, windowS, allowedLatenessS, format, rules: rules!, spoolMaxBytes };
  if (pairsOut !== undefined) sink.pairsOut = pairsOut;
  if (alertsOut !== undefined) sink.alertsOut = alertsOut;
  if (flowsOut !== undefined) sink.flowsOut = flowsOut;
  if (kafka) sink.kafka = kafka;
  if (spoolDir !== undefined) sink.spoolDir = spoolDir;
  const config: AgentConfig = {
    agentId,
    ovsdb: { remote, ...(tls ? { tls } : {}) },
    mirrors,
    capture,
    flows,
    sink,
    inventory: { publish: publish ?? kind === 'kafka', ...(invFile !== undefined ? { file: invFile } : {}) },
    metrics,
    keepMirrors,
    logLevel,
    ...(source ? { file: source } : {}),
  };
  return { config, problems: [] };
}

/**
 * Resolves the agent's configuration from parsed file data (undefined: no file), env and flags
 * (as the CLI parser returns them, keyed by flag name). Pure: reads no file. Throws one ConfigError
 * listing every problem (details.problems: ConfigProblem[]).
 */
export function resolveAgentConfig(fileData: unknown | undefined, source: string, env: NodeJS.ProcessEnv, flags: Record<string, unknown>): AgentConfig {
  const r = resolve(fileData, source, env, flags);
  if (!r.config) throw configErrorFrom(r.problems, source || undefined);
  return r.config;
}

/** Parses config text: JSON when the name ends in .json or the text starts with `{`, else YAML. */
export function parseConfigText(text: string, file: string): unknown {
  const json = extname(file).toLowerCase() === '.json' || /^\s*\{/.test(text);
  try {
    if (json) return JSON.parse(text);
    const data: unknown = parseYaml(text);
    return data === null ? {} : data;
  } catch (e) {
    const err = e as Error & { linePos?: { line: number; col: number }[] };
    const where = err.linePos?.[0] ? `, line=${err.linePos[0].line}, column=${err.linePos[0].col}` : '';
    const reason = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`config: not valid ${json ? 'JSON' : 'YAML'} (file=${file}${where}, reason=${JSON.stringify(reason)})`);
  }
}

/**
 * Loads the agent's configuration: the file (`file`, else flags.config, else MIRRORFLOW_CONFIG; none
 * is fine), env and flags; then checks that the files it names exist and reads the inventory file.
 * Throws one ConfigError listing every problem.
 */
export async function loadAgentConfig(o: { file?: string; env: NodeJS.ProcessEnv; flags: Record<string, unknown> }): Promise<AgentConfig> {
  const fromFlag = flagString(o.flags.config);
  const file = o.file ?? fromFlag ?? (o.env.MIRRORFLOW_CONFIG || undefined);
  let data: unknown;
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new ConfigError(`config: cannot read file${kv({ file, reason: (e as NodeJS.ErrnoException).code ?? (e as Error).message })}`);
    }
    data = parseConfigText(text, file);
  }
  const r = resolve(data, file ?? '', o.env, o.flags);
  // with every value sane: the files it names must be readable
  const origins = new Map<string, string>();
  const problems = new Problems(origins, file ?? '');
  problems.list.push(...r.problems);
  const cfg = r.config;
  if (cfg) {
    const sourceOf = (path: string) => whereFrom(path, o.env, o.flags) ?? file ?? 'config';
    const mustExist: [string, string | undefined][] = [
      ['ovsdb.tls.caFile', cfg.ovsdb.tls?.caFile],
      ['ovsdb.tls.certFile', cfg.ovsdb.tls?.certFile],
      ['ovsdb.tls.keyFile', cfg.ovsdb.tls?.keyFile],
      ['sink.kafka.tls.caFile', cfg.sink.kafka?.tls?.caFile],
      ['sink.kafka.tls.certFile', cfg.sink.kafka?.tls?.certFile],
      ['sink.kafka.tls.keyFile', cfg.sink.kafka?.tls?.keyFile],
    ];
    for (const [path, f] of mustExist) {
      if (f === undefined) continue;
      try {
        await access(f);
      } catch (e) {
        problems.add(path, `expected a readable file (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`, f, { source: sourceOf(path) });
      }
    }
    if (cfg.inventory.file !== undefined) {
      const src = sourceOf('inventory.file');
      try {
        const text = await readFile(cfg.inventory.file, 'utf8');
        cfg.inventory.entries = parseInventory(JSON.parse(text), `inventory ${cfg.inventory.file}`);
      } catch (e) {
        const errno = e as NodeJS.ErrnoException;
        const reason = errno.syscall && errno.code ? errno.code : errno.message.split('\n')[0]!;
        problems.add('inventory.file', `expected a readable inventory file: JSON [{"vm", "mac", "ips"}] (${reason})`, cfg.inventory.file, { source: src });
      }
    }
  }
  if (problems.count) throw configErrorFrom(problems.list, file);
  return cfg!;
}

/** Which env var or flag set `path`, when one did (flags first). */
function whereFrom(path: string, env: NodeJS.ProcessEnv, flags: Record<string, unknown>): string | undefined {
  const s = SETTINGS_BY_PATH.get(path);
  if (s?.flag && flags[s.flag] !== undefined && flags[s.flag] !== false) return `--${s.flag}`;
  if (setItems(flags).some((x) => x.startsWith(`${path}=`))) return `--set ${path}`;
  if (s?.env && env[s.env]) return s.env;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Views for the components

/** What src/ovsdb/session.ts takes. */
export function ovsdbConnectConfig(cfg: AgentConfig): OvsdbConnectConfig {
  const t = cfg.ovsdb.tls;
  return t ? { url: cfg.ovsdb.remote, ssl: { privateKeyFile: t.keyFile, certificateFile: t.certFile, caCertFile: t.caFile } } : { url: cfg.ovsdb.remote };
}

/** The flow table's bounds and timeouts (src/capture/flow-table.ts FlowTableOptions). */
export function flowTableSettings(cfg: AgentConfig): { maxFlows: number; idleTimeoutMs: number; tcpEstablishedIdleTimeoutMs: number; activeTimeoutMs: number } {
  return {
    maxFlows: cfg.flows.maxFlows,
    idleTimeoutMs: cfg.flows.idleTimeoutS * 1000,
    tcpEstablishedIdleTimeoutMs: cfg.flows.tcpIdleTimeoutS * 1000,
    activeTimeoutMs: cfg.flows.activeTimeoutS * 1000,
  };
}

/** The live source's options (src/capture/live-source.ts LiveSourceOptions). */
export function liveSourceSettings(cfg: AgentConfig): { interface: string; filter: string; snaplen: number; bufferSizeBytes: number; immediate: boolean } {
  return { interface: cfg.capture.interface, filter: cfg.capture.filter, snaplen: cfg.capture.snaplen, bufferSizeBytes: cfg.capture.bufferBytes, immediate: cfg.capture.immediate };
}
