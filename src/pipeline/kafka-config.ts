/**
 * Kafka connection and producing settings, checked once: every bad value is one ConfigError naming
 * the setting and the value (`kafka: invalid lingerMs, expected a whole number 0..60000 (lingerMs=-1)`).
 * Input comes from a config file, flags or the environment as strings or numbers; the result is a
 * typed KafkaConfig. kafkaClientOptions() turns it into kafkajs client options (reads TLS files).
 */
import { readFile } from 'node:fs/promises';
import { readJsonObjectFile } from '../config/json-file.js';
import { ConfigError, kv } from '../errors.js';
import { RECORD_FORMATS, type RecordFormat } from './codec-schemas.js';
import { isKafkaSecurityLog, rememberKafkaClient } from './kafka-retry.js';

/** kafkajs' logCreator contract (its numeric levels: ERROR 1, WARN 2, INFO 4, DEBUG 5); typed here so kafkajs is not loaded. */
export interface KafkaLogEntry {
  namespace: string;
  level: number;
  label: string;
  log: { message: string; error?: string; [key: string]: unknown };
}
export type KafkaLogCreator = (level: number) => (entry: KafkaLogEntry) => void;

/**
 * kafkajs' own console logger (one JSON object per line), minus the lines about SASL and TLS
 * failures: those end the command with one clear line of their own (src/cli/main.ts), which
 * a stack trace of kafkajs' retries would bury.
 */
export const kafkaLogCreator: KafkaLogCreator = () => (entry) => {
  const { namespace, level, label, log } = entry;
  if (isKafkaSecurityLog(String(log.message), typeof log.error === 'string' ? log.error : undefined)) return;
  const line = JSON.stringify({ level: label, ...log, message: `${namespace ? `[${namespace}] ` : ''}${log.message}` });
  if (level <= 2) console.error(line);
  else console.log(line);
};

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';
export const SASL_MECHANISMS: readonly SaslMechanism[] = ['plain', 'scram-sha-256', 'scram-sha-512'];
/** gzip is built into kafkajs; lz4/zstd would need a codec package (not installed, see the report). */
export type KafkaCompression = 'none' | 'gzip';
export const KAFKA_COMPRESSIONS: readonly KafkaCompression[] = ['none', 'gzip'];

export interface KafkaTlsConfig {
  /** PEM file of the CA(s) to trust; default: the system's. */
  caFile?: string;
  /** Client certificate and key (PEM) for mutual TLS. */
  certFile?: string;
  keyFile?: string;
  /** Name checked against the broker's certificate (default: the broker host). */
  servername?: string;
  /** false only for tests against a throwaway CA-less broker. Default true. */
  rejectUnauthorized: boolean;
}

export interface KafkaSaslConfig {
  mechanism: SaslMechanism;
  username: string;
  password: string;
}

export interface KafkaTopicSettings {
  /** Partitions of topics created by ensureTopics (existing topics keep theirs). */
  partitions: { flows: number; pairs: number; alerts: number; inventory: number };
  /** Replication factor of created topics; 0: min(3, brokers in the cluster). */
  replicationFactor: number;
  /** retention.ms of created topics (inventory is compacted, not retained by time). */
  retentionMs: { flows: number; pairs: number; alerts: number };
}

export interface KafkaConfig {
  brokers: string[];
  clientId: string;
  tls?: KafkaTlsConfig;
  sasl?: KafkaSaslConfig;
  /** Prepended to topic names: `${topicPrefix}flows`. Default 'mirrorflow.'. */
  topicPrefix: string;
  format: RecordFormat;
  compression: KafkaCompression;
  /** How long a record may wait for more to fill its batch. */
  lingerMs: number;
  /** A produce request carries at most this many bytes of values (and at most batchRecords records). */
  batchBytes: number;
  batchRecords: number;
  /** Records waiting in memory (encoded bytes) before they go to the spool (or backpressure without one). */
  memoryLimitBytes: number;
  /** On-disk spool for records the broker cannot take; none: memory and backpressure only. */
  spoolDir?: string;
  spoolLimitBytes: number;
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
  /** close() waits this long for delivery before spooling what is left. */
  closeTimeoutMs: number;
  topics: KafkaTopicSettings;
}

/** What a config file, flags or env give: anything may be missing; numbers may be strings. */
export interface KafkaConfigInput {
  brokers?: string | string[];
  clientId?: string;
  tls?: boolean | { caFile?: string; certFile?: string; keyFile?: string; servername?: string; rejectUnauthorized?: boolean | string };
  sasl?: { mechanism?: string; username?: string; password?: string };
  topicPrefix?: string;
  format?: string;
  compression?: string;
  lingerMs?: number | string;
  batchBytes?: number | string;
  batchRecords?: number | string;
  memoryLimitBytes?: number | string;
  spoolDir?: string;
  spoolLimitBytes?: number | string;
  connectionTimeoutMs?: number | string;
  requestTimeoutMs?: number | string;
  closeTimeoutMs?: number | string;
  partitions?: Partial<Record<'flows' | 'pairs' | 'alerts' | 'inventory', number | string>>;
  replicationFactor?: number | string;
  retentionMs?: Partial<Record<'flows' | 'pairs' | 'alerts', number | string>>;
}

const DAY_MS = 86_400_000;

export const KAFKA_DEFAULTS = {
  clientId: 'mirrorflow',
  topicPrefix: 'mirrorflow.',
  format: 'protobuf' as RecordFormat,
  compression: 'none' as KafkaCompression,
  lingerMs: 20,
  batchBytes: 1 << 20,
  batchRecords: 20_000,
  memoryLimitBytes: 32 << 20,
  spoolLimitBytes: 1 << 30,
  connectionTimeoutMs: 3000,
  requestTimeoutMs: 30_000,
  closeTimeoutMs: 30_000,
  // flows: 12 partitions = parallelism for up to 12 pipeline processes; 12 divides evenly among
  // groups of 1, 2, 3, 4, 6 and 12 members, so partitions stay balanced as the group grows.
  // pairs / alerts: a few records per pair per window, two orders of magnitude below flows.
  // inventory: one partition, so "read it all" is one end offset to reach; it is tiny.
  partitions: { flows: 12, pairs: 6, alerts: 3, inventory: 1 },
  replicationFactor: 0,
  // flows are bulky raw data: a day; pairs are the report: 30 days; alerts are the audit trail: 90.
  retentionMs: { flows: DAY_MS, pairs: 30 * DAY_MS, alerts: 90 * DAY_MS },
} as const;

const HOST_PORT_RE = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;
const TOPIC_CHARS_RE = /^[A-Za-z0-9._-]*$/;

function bad(setting: string, value: unknown, expected: string): ConfigError {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? 'undefined';
  return new ConfigError(`kafka: invalid ${setting}, expected ${expected}${kv({ [setting]: text })}`, { setting, value: text });
}

function intSetting(setting: string, value: number | string | undefined, dflt: number, min: number, max: number): number {
  if (value === undefined) return dflt;
  const n = typeof value === 'number' ? value : value.trim() === '' ? NaN : Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw bad(setting, value, `a whole number ${min}..${max}`);
  return n;
}

function textSetting(setting: string, value: unknown, dflt?: string): string | undefined {
  if (value === undefined) return dflt;
  if (typeof value !== 'string' || value.trim() === '') throw bad(setting, value, 'a non-empty string');
  return value;
}

/** Splits `a:9092,b:9092` (or takes a list) and checks every HOST:PORT. */
export function parseBrokers(value: string | string[] | undefined): string[] {
  if (value === undefined) throw bad('brokers', value, 'HOST:PORT[,HOST:PORT...]');
  const list = (Array.isArray(value) ? value : value.split(',')).map((b) => (typeof b === 'string' ? b.trim() : b));
  if (!list.length || list.every((b) => b === '')) throw bad('brokers', Array.isArray(value) ? value.join(',') : value, 'HOST:PORT[,HOST:PORT...]');
  for (const b of list) {
    const m = typeof b === 'string' ? HOST_PORT_RE.exec(b) : null;
    const port = m ? Number(m[1]) : 0;
    if (!m || port < 1 || port > 65535) throw bad('brokers', b, 'HOST:PORT with a port 1..65535');
  }
  return list as string[];
}

/** A prefix such that `${prefix}inventory` is a legal topic name (≤ 249 of [A-Za-z0-9._-]). */
export function checkTopicPrefix(prefix: string): string {
  if (!TOPIC_CHARS_RE.test(prefix)) throw bad('topicPrefix', prefix, 'only letters, digits, ".", "_" and "-"');
  if (prefix.length > 200) throw bad('topicPrefix', prefix, 'at most 200 characters');
  return prefix;
}

function parseBool(setting: string, value: boolean | string | undefined, dflt: boolean): boolean {
  if (value === undefined) return dflt;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw bad(setting, value, 'true or false');
}

export function parseKafkaConfig(input: KafkaConfigInput): KafkaConfig {
  const d = KAFKA_DEFAULTS;
  const brokers = parseBrokers(input.brokers);
  const format = (input.format ?? d.format) as RecordFormat;
  if (!RECORD_FORMATS.includes(format)) throw bad('format', input.format, RECORD_FORMATS.join(', '));
  const compression = (input.compression ?? d.compression) as KafkaCompression;
  if (!KAFKA_COMPRESSIONS.includes(compression)) throw bad('compression', input.compression, KAFKA_COMPRESSIONS.join(', '));
  const cfg: KafkaConfig = {
    brokers,
    clientId: textSetting('clientId', input.clientId, d.clientId)!,
    topicPrefix: checkTopicPrefix(input.topicPrefix ?? d.topicPrefix),
    format,
    compression,
    lingerMs: intSetting('lingerMs', input.lingerMs, d.lingerMs, 0, 60_000),
    batchBytes: intSetting('batchBytes', input.batchBytes, d.batchBytes, 1024, 64 << 20),
    batchRecords: intSetting('batchRecords', input.batchRecords, d.batchRecords, 1, 1_000_000),
    memoryLimitBytes: intSetting('memoryLimitBytes', input.memoryLimitBytes, d.memoryLimitBytes, 64 * 1024, 2 ** 40),
    spoolLimitBytes: intSetting('spoolLimitBytes', input.spoolLimitBytes, d.spoolLimitBytes, 64 * 1024, 2 ** 50),
    connectionTimeoutMs: intSetting('connectionTimeoutMs', input.connectionTimeoutMs, d.connectionTimeoutMs, 100, 600_000),
    requestTimeoutMs: intSetting('requestTimeoutMs', input.requestTimeoutMs, d.requestTimeoutMs, 100, 600_000),
    closeTimeoutMs: intSetting('closeTimeoutMs', input.closeTimeoutMs, d.closeTimeoutMs, 0, 3_600_000),
    topics: {
      partitions: {
        flows: intSetting('partitions.flows', input.partitions?.flows, d.partitions.flows, 1, 10_000),
        pairs: intSetting('partitions.pairs', input.partitions?.pairs, d.partitions.pairs, 1, 10_000),
        alerts: intSetting('partitions.alerts', input.partitions?.alerts, d.partitions.alerts, 1, 10_000),
        inventory: intSetting('partitions.inventory', input.partitions?.inventory, d.partitions.inventory, 1, 10_000),
      },
      replicationFactor: intSetting('replicationFactor', input.replicationFactor, d.replicationFactor, 0, 32),
      retentionMs: {
        flows: intSetting('retentionMs.flows', input.retentionMs?.flows, d.retentionMs.flows, 60_000, Number.MAX_SAFE_INTEGER),
        pairs: intSetting('retentionMs.pairs', input.retentionMs?.pairs, d.retentionMs.pairs, 60_000, Number.MAX_SAFE_INTEGER),
        alerts: intSetting('retentionMs.alerts', input.retentionMs?.alerts, d.retentionMs.alerts, 60_000, Number.MAX_SAFE_INTEGER),
      },
    },
  };
  const spoolDir = textSetting('spoolDir', input.spoolDir);
  if (spoolDir !== undefined) cfg.spoolDir = spoolDir;
  if (cfg.memoryLimitBytes < cfg.batchBytes) {
    throw bad('memoryLimitBytes', String(cfg.memoryLimitBytes), `at least batchBytes (batchBytes=${cfg.batchBytes})`);
  }
  if (input.tls !== undefined && input.tls !== false) {
    const t = input.tls === true ? {} : input.tls;
    if (typeof t !== 'object' || t === null) throw bad('tls', input.tls, 'true or {caFile, certFile, keyFile, servername, rejectUnauthorized}');
    const tls: KafkaTlsConfig = { rejectUnauthorized: parseBool('tls.rejectUnauthorized', t.rejectUnauthorized, true) };
    const ca = textSetting('tls.caFile', t.caFile);
    const cert = textSetting('tls.certFile', t.certFile);
    const key = textSetting('tls.keyFile', t.keyFile);
    const sn = textSetting('tls.servername', t.servername);
    if ((cert === undefined) !== (key === undefined)) {
      throw bad(cert === undefined ? 'tls.certFile' : 'tls.keyFile', undefined, `a file, given together with ${cert === undefined ? 'tls.keyFile' : 'tls.certFile'}`);
    }
    if (ca !== undefined) tls.caFile = ca;
    if (cert !== undefined) tls.certFile = cert;
    if (key !== undefined) tls.keyFile = key;
    if (sn !== undefined) tls.servername = sn;
    cfg.tls = tls;
  }
  if (input.sasl !== undefined) {
    const s = input.sasl;
    const mechanism = String(s.mechanism ?? '').toLowerCase() as SaslMechanism;
    if (!SASL_MECHANISMS.includes(mechanism)) throw bad('sasl.mechanism', s.mechanism, SASL_MECHANISMS.join(', '));
    const username = textSetting('sasl.username', s.username);
    if (username === undefined) throw bad('sasl.username', s.username, 'a non-empty string');
    if (typeof s.password !== 'string' || s.password === '') {
      // the password itself never goes into a message
      throw new ConfigError(`kafka: invalid sasl.password, expected a non-empty string${kv({ 'sasl.username': username })}`, { setting: 'sasl.password' });
    }
    cfg.sasl = { mechanism, username, password: s.password };
  }
  return cfg;
}

/** Options for `new Kafka(...)` from kafkajs: brokers, client id, TLS (files read here), SASL, timeouts. */
export async function kafkaClientOptions(cfg: KafkaConfig): Promise<{
  clientId: string;
  brokers: string[];
  connectionTimeout: number;
  requestTimeout: number;
  ssl?: boolean | { ca?: string[]; cert?: string; key?: string; servername?: string; rejectUnauthorized: boolean };
  sasl?: { mechanism: SaslMechanism; username: string; password: string };
  logCreator: KafkaLogCreator;
}> {
  // for error messages: kafkajs' SASL errors name neither the user nor the broker
  rememberKafkaClient({
    brokers: cfg.brokers,
    tls: cfg.tls !== undefined,
    ...(cfg.tls?.caFile ? { caFile: cfg.tls.caFile } : {}),
    ...(cfg.sasl ? { mechanism: cfg.sasl.mechanism, username: cfg.sasl.username } : {}),
  });
  const out: Awaited<ReturnType<typeof kafkaClientOptions>> = {
    clientId: cfg.clientId,
    brokers: cfg.brokers,
    connectionTimeout: cfg.connectionTimeoutMs,
    requestTimeout: cfg.requestTimeoutMs,
    logCreator: kafkaLogCreator,
  };
  if (cfg.tls) {
    const read = async (setting: string, file: string): Promise<string> => {
      try {
        return await readFile(file, 'utf8');
      } catch (e) {
        throw new ConfigError(`kafka: cannot read ${setting}${kv({ [setting]: file, reason: (e as NodeJS.ErrnoException).code ?? (e as Error).message })}`);
      }
    };
    const ssl: { ca?: string[]; cert?: string; key?: string; servername?: string; rejectUnauthorized: boolean } = { rejectUnauthorized: cfg.tls.rejectUnauthorized };
    if (cfg.tls.caFile) ssl.ca = [await read('tls.caFile', cfg.tls.caFile)];
    if (cfg.tls.certFile) ssl.cert = await read('tls.certFile', cfg.tls.certFile);
    if (cfg.tls.keyFile) ssl.key = await read('tls.keyFile', cfg.tls.keyFile);
    if (cfg.tls.servername) ssl.servername = cfg.tls.servername;
    out.ssl = ssl;
  }
  if (cfg.sasl) out.sasl = { ...cfg.sasl };
  return out;
}

/**
 * The `kafka` object of a JSON config file (`{"kafka": {brokers, tls, sasl, topicPrefix, ...}}`,
 * the file `mirrorflow pipeline --config` reads; other top-level sections are ignored here), as
 * input for parseKafkaConfig. A missing file, bad JSON or a `kafka` that is not an object: one
 * ConfigError naming the file.
 */
export async function loadKafkaConfigFile(path: string): Promise<KafkaConfigInput> {
  const kafka = (await readJsonObjectFile(path)).kafka;
  if (kafka === undefined) return {};
  if (typeof kafka !== 'object' || kafka === null || Array.isArray(kafka)) throw new ConfigError(`config: expected an object${kv({ file: path, field: 'kafka' })}`);
  return { ...(kafka as KafkaConfigInput) };
}
