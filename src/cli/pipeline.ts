/**
 * `mirrorflow pipeline`: the consumer group that turns the flows topic into PairWindows on the pairs
 * topic, exactly once (src/pipeline/kafka-pipeline.ts). Runs until SIGINT/SIGTERM, then prints a
 * summary line to stderr. With --metrics HOST:PORT (pipeline.metrics) it serves /metrics (the
 * pipeline's counters, src/pipeline/pipeline-metrics.ts), /healthz and /readyz
 * (src/pipeline/pipeline-health.ts) through the agent's endpoint (src/agent/http-server.ts).
 *
 * Config file (JSON; every key optional, flags win):
 *   { "kafka": { …kafka settings (src/pipeline/kafka-config.ts): brokers, tls, sasl, topicPrefix, format, partitions… },
 *     "pipeline": { "group": "mirrorflow-pipeline", "windowSeconds": 10, "allowedLatenessSeconds": 0,
 *                   "idleTimeoutSeconds": 20, "sessionTimeoutMs": 30000, "transactionTimeoutMs": 30000,
 *                   "progressSeconds": 10, "metrics": "127.0.0.1:9478", "threads": 2 },
 *     "rules": { …alert and trend rules (src/pipeline/rules-config.ts): thresholds, anomaly, security, trend… } }
 *
 * Alerts go to <prefix>alerts in the same transactions as the PairWindows; endpoints are named
 * after the VMs of <prefix>inventory (read whole at start, then followed).
 */
import { startHttpEndpoint, type HttpEndpoint } from '../agent/http-server.js';
import { formatListenAddress, parseListenAddress } from '../config/agent-config.js';
import { readJsonObjectFile } from '../config/json-file.js';
import { Kafka, logLevel } from '../pipeline/kafkajs.js';
import { ConfigError, UsageError, kv } from '../errors.js';
import { createLogger } from '../log.js';
import { kafkaClientOptions, parseKafkaConfig, type KafkaConfigInput } from '../pipeline/kafka-config.js';
import { KafkaPipeline, type KafkaPipelineStats } from '../pipeline/kafka-pipeline.js';
import { ensureTopics, topicNames } from '../pipeline/kafka-topics.js';
import { evaluatePipelineReadiness } from '../pipeline/pipeline-health.js';
import { createPipelineMetrics } from '../pipeline/pipeline-metrics.js';
import { parseRulesConfig, type RulesConfig } from '../pipeline/rules-config.js';
import type { Command, Values } from './command.js';
import { availableParallelism } from 'node:os';

export const DEFAULT_PIPELINE_GROUP = 'mirrorflow-pipeline';

export interface PipelineSettings {
  group: string;
  windowSeconds: number;
  allowedLatenessSeconds: number;
  /** Default: twice the window. */
  idleTimeoutSeconds: number;
  sessionTimeoutMs: number;
  transactionTimeoutMs: number;
  /** A progress line (counters so far) this often; 0: none. */
  progressSeconds: number;
  /** /metrics, /healthz and /readyz on this HOST:PORT; undefined: no endpoint. */
  metrics: string | undefined;
  /** Worker threads aggregating the partitions; 0: the main thread (default: see defaultPipelineThreads). */
  threads: number;
}

interface ConfigFile {
  kafka?: KafkaConfigInput;
  pipeline?: Partial<Record<keyof PipelineSettings, number | string>>;
  rules?: unknown;
}

const PIPELINE_KEYS: readonly (keyof PipelineSettings)[] = [
  'group',
  'windowSeconds',
  'allowedLatenessSeconds',
  'idleTimeoutSeconds',
  'sessionTimeoutMs',
  'transactionTimeoutMs',
  'progressSeconds',
  'metrics',
  'threads',
];

/** Most worker threads --threads takes. */
export const MAX_PIPELINE_THREADS = 64;

/**
 * Worker threads by default: one per core, at most 8; none on a single core (the main thread
 * aggregates there: a thread would only add the hand-over).
 */
export function defaultPipelineThreads(cores = availableParallelism()): number {
  return cores < 2 ? 0 : Math.min(cores, 8);
}

async function loadConfigFile(path: string): Promise<ConfigFile> {
  const cfg = (await readJsonObjectFile(path)) as ConfigFile;
  for (const k of Object.keys(cfg.pipeline ?? {})) {
    if (!PIPELINE_KEYS.includes(k as keyof PipelineSettings)) throw new ConfigError(`config: unknown setting${kv({ file: path, field: `pipeline.${k}` })}`);
  }
  return cfg;
}

function num(name: string, v: number | string | boolean | undefined, min: number, max: number, flag: boolean): number | undefined {
  if (v === undefined) return undefined;
  const s = String(v);
  const n = Number(s);
  if (s.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    const msg = `invalid ${flag ? `--${name}` : `pipeline.${name}`}, expected a number ${min}..${max} (${name}=${s})`;
    throw flag ? new UsageError(msg) : new ConfigError(`config: ${msg}`);
  }
  return n;
}

/**
 * A metrics address (--metrics or pipeline.metrics): HOST:PORT, [IPv6]:PORT or PORT (127.0.0.1),
 * normalised; `off` (or nothing): undefined. Parsed as the agent's metrics.address is.
 */
export function parseMetricsAddress(v: number | string | boolean | undefined, flag: boolean): string | undefined {
  if (v === undefined) return undefined;
  const s = String(v).trim();
  if (s === 'off') return undefined;
  const parsed = typeof v === 'boolean' ? undefined : parseListenAddress(s);
  if (!parsed) {
    const msg = `invalid ${flag ? '--metrics' : 'pipeline.metrics'}, expected HOST:PORT (port 0..65535), [IPv6]:PORT, or off${kv({ metrics: s })}`;
    throw flag ? new UsageError(msg) : new ConfigError(`config: ${msg}`);
  }
  return formatListenAddress(parsed.host, parsed.port);
}

/** Seconds between progress lines: 0 (none) or 0.01..86400; the flag over the file over 10. */
function progressSeconds(flag: string | undefined, fromFile: number | string | undefined): number {
  const v = num('progress', flag, 0, 86_400, true) ?? num('progressSeconds', fromFile, 0, 86_400, false) ?? 10;
  if (v > 0 && v < 0.01) {
    const msg = `invalid ${flag !== undefined ? '--progress' : 'pipeline.progressSeconds'}, expected 0 (no progress lines) or 0.01..86400 seconds${kv({ progress: v })}`;
    throw flag !== undefined ? new UsageError(msg) : new ConfigError(`config: ${msg}`);
  }
  return v;
}

/** A thread count (already within range) when it is a whole number (or undefined), else the flag's or the file's error. */
function wholeThreads(v: number | undefined, flag: boolean): number | undefined {
  if (v === undefined || Number.isInteger(v)) return v;
  const msg = `invalid ${flag ? '--threads' : 'pipeline.threads'}, expected a whole number (threads=${v})`;
  throw flag ? new UsageError(msg) : new ConfigError(`config: ${msg}`);
}

/** Flags over the config file over defaults. */
export function pipelineSettings(values: Values, file: ConfigFile['pipeline'] = {}): PipelineSettings {
  const pick = (flag: string, key: keyof PipelineSettings, min: number, max: number): number | undefined =>
    num(flag, values[flag] as string | undefined, min, max, true) ?? num(key, file[key], min, max, false);
  const windowSeconds = pick('window', 'windowSeconds', 0.001, 86_400) ?? 10;
  const group = values.group !== undefined ? String(values.group) : file.group !== undefined ? String(file.group) : DEFAULT_PIPELINE_GROUP;
  if (group.trim() === '') throw new UsageError('invalid --group, expected a non-empty name (group=)');
  return {
    group,
    windowSeconds,
    allowedLatenessSeconds: pick('allowed-lateness', 'allowedLatenessSeconds', 0, 86_400) ?? 0,
    idleTimeoutSeconds: pick('idle-timeout', 'idleTimeoutSeconds', 0.001, 86_400) ?? 2 * windowSeconds,
    sessionTimeoutMs: num('sessionTimeoutMs', file.sessionTimeoutMs, 6000, 1_800_000, false) ?? 30_000,
    transactionTimeoutMs: num('transactionTimeoutMs', file.transactionTimeoutMs, 1000, 900_000, false) ?? 30_000,
    progressSeconds: progressSeconds(values.progress as string | undefined, file.progressSeconds),
    metrics: values.metrics !== undefined ? parseMetricsAddress(values.metrics as string, true) : parseMetricsAddress(file.metrics, false),
    threads: wholeThreads(pick('threads', 'threads', 0, MAX_PIPELINE_THREADS), values.threads !== undefined) ?? defaultPipelineThreads(),
  };
}

export function formatPipelineSummary(s: KafkaPipelineStats, seconds: number): string {
  const skipped = Object.entries(s.skipped)
    .filter(([, n]) => n > 0)
    .map(([r, n]) => `${r}=${n}`)
    .join(' ');
  const rate = seconds > 0 ? Math.round(s.flowRecords / seconds) : 0;
  return (
    `pipeline: ${s.messages} messages, ${s.records} records aggregated, ${s.skippedMessages} skipped${skipped ? ` (${skipped})` : ''}, ` +
    `${s.lateRecords} late, ${s.cleanDropped} dropped by cleaning, ${s.replayedRecords} re-read, ${s.pairsProduced} pair windows and ${s.alertsProduced} alerts in ${s.transactions} transactions ` +
    `(${s.failedTransactions} failed), ${s.openWindows} windows open, ${s.rebalances} rebalances, ${seconds.toFixed(1)} s, ${s.flowRecords} flow records read, ${rate} flow records/s`
  );
}

export const pipelineCommand: Command = {
  name: 'pipeline',
  summary: 'Aggregate the flows topic per VM pair into the pairs topic, exactly once (a Kafka consumer group)',
  usage: 'pipeline [--config FILE] [--brokers B] [--topic-prefix P] [--window SECONDS] [--group G] [--allowed-lateness S] [--idle-timeout S] [--progress S] [--metrics HOST:PORT] [--threads N]',
  description: [
    'Reads <prefix>flows, writes PairWindows (with trends) to <prefix>pairs and alerts to <prefix>alerts inside Kafka',
    'transactions (rules: the config file\'s "rules" section); offsets advance only past',
    'records whose windows were emitted, so a restart (even after SIGKILL) loses and doubles nothing.',
    'More processes with the same --group share the partitions. Runs until SIGINT/SIGTERM.',
    'Broker list: --brokers, else MIRRORFLOW_BROKERS, else the config file (kafka.brokers).',
    'With --metrics HOST:PORT: GET /metrics (Prometheus, mirrorflow_pipeline_*), /healthz (200 while running) and',
    '/readyz (200 once the consumer joined its group and holds its partitions\' producers; else 503 with a JSON body).',
  ].join('\n'),
  options: {
    config: { type: 'string', arg: 'FILE', description: 'JSON config: {"kafka": {...}, "pipeline": {...}, "rules": {...}}' },
    brokers: { type: 'string', arg: 'HOST:PORT[,...]', description: 'Kafka bootstrap brokers' },
    'topic-prefix': { type: 'string', arg: 'P', description: 'Topic name prefix (default: mirrorflow.)' },
    window: { type: 'string', arg: 'SECONDS', description: 'Event-time window (default: 10)' },
    group: { type: 'string', arg: 'G', description: `Consumer group (default: ${DEFAULT_PIPELINE_GROUP})` },
    'allowed-lateness': { type: 'string', arg: 'S', description: 'Accept records this long after their window ended (default: 0)' },
    'idle-timeout': { type: 'string', arg: 'S', description: 'Close the windows of a partition idle this long (default: twice the window)' },
    progress: { type: 'string', arg: 'S', description: 'Log a progress line (counters so far) this often; 0: none (default: 10)' },
    metrics: { type: 'string', arg: 'HOST:PORT', description: 'Serve /metrics, /healthz, /readyz here (port 0: a free one, logged; off: none; default: none)' },
    threads: { type: 'string', arg: 'N', description: 'Worker threads that aggregate the partitions; 0: the main thread (default: one per core, at most 8; 0 on one core)' },
  },
  async run(values, _positionals, io) {
    const file: ConfigFile = values.config !== undefined ? await loadConfigFile(String(values.config)) : {};
    const kafkaInput: KafkaConfigInput = { ...(file.kafka ?? {}) };
    const brokers = values.brokers ?? io.env.MIRRORFLOW_BROKERS;
    if (brokers !== undefined) kafkaInput.brokers = String(brokers);
    if (values['topic-prefix'] !== undefined) kafkaInput.topicPrefix = String(values['topic-prefix']);
    if (kafkaInput.brokers === undefined) throw new UsageError('pipeline: missing --brokers HOST:PORT (or MIRRORFLOW_BROKERS, or kafka.brokers in --config)');
    const cfg = parseKafkaConfig(kafkaInput);
    const settings = pipelineSettings(values, file.pipeline);
    const rules: RulesConfig = parseRulesConfig(file.rules ?? {});
    const logger = createLogger(io.env, 'info');
    const kafka = new Kafka({ ...(await kafkaClientOptions(cfg)), logLevel: logLevel.ERROR } as ConstructorParameters<typeof Kafka>[0]);
    const topics = topicNames(cfg.topicPrefix);
    const pipeline = new KafkaPipeline({
      kafka,
      flowsTopic: topics.flows,
      pairsTopic: topics.pairs,
      alertsTopic: topics.alerts,
      inventoryTopic: topics.inventory,
      rules,
      groupId: settings.group,
      windowUs: Math.round(settings.windowSeconds * 1e6),
      allowedLatenessUs: Math.round(settings.allowedLatenessSeconds * 1e6),
      idleTimeoutMs: settings.idleTimeoutSeconds * 1000,
      format: cfg.format,
      sessionTimeoutMs: settings.sessionTimeoutMs,
      transactionTimeoutMs: settings.transactionTimeoutMs,
      threads: settings.threads,
      logger,
    });
    // the endpoint comes up first (a bad or busy address fails before any broker is contacted); stats are read when scraped
    const state = { started: false, stopping: false, failed: false };
    let http: HttpEndpoint | undefined;
    if (settings.metrics !== undefined) {
      const health = () => evaluatePipelineReadiness({ ...state, ...pipeline.readiness });
      const metrics = createPipelineMetrics({
        stats: () => pipeline.stats,
        ready: () => health().ready,
        info: { group: settings.group, flowsTopic: topics.flows, pairsTopic: topics.pairs, format: cfg.format },
      });
      http = await startHttpEndpoint({ address: settings.metrics, area: 'pipeline', metrics, health });
      logger.info({ address: http.address }, 'pipeline: metrics listening');
    }
    let failure: unknown;
    let started = process.hrtime.bigint();
    try {
      const admin = kafka.admin();
      await admin.connect();
      try {
        await ensureTopics(admin, cfg, ['flows', 'pairs', 'alerts', 'inventory']);
      } finally {
        await admin.disconnect();
      }
      started = process.hrtime.bigint();
      if (io.signal.aborted) return 0;
      try {
        await pipeline.start();
      } catch (e) {
        // what start() connected (inventory reader, admin, consumer) must not keep the process alive
        state.stopping = true;
        await pipeline.stop().catch(() => undefined);
        throw e;
      }
      state.started = true;
      logger.info(
        { group: settings.group, flows: topics.flows, pairs: topics.pairs, windowSeconds: settings.windowSeconds, threads: settings.threads, ...(http ? { metrics: http.address } : {}) },
        'pipeline: running',
      );
      const progress =
        settings.progressSeconds > 0
          ? setInterval(() => {
              const s = pipeline.stats;
              logger.info({ messages: s.messages, flowRecords: s.flowRecords, records: s.records, pairs: s.pairsProduced, skipped: s.skippedMessages, late: s.lateRecords, partitions: s.assignedPartitions }, 'pipeline: progress');
            }, settings.progressSeconds * 1000)
          : undefined;
      progress?.unref();
      try {
        await Promise.race([
          new Promise<void>((resolve) => {
            if (io.signal.aborted) resolve();
            else io.signal.addEventListener('abort', () => resolve(), { once: true });
          }),
          pipeline.failed,
        ]);
      } catch (e) {
        failure = e;
        state.failed = true;
      } finally {
        state.stopping = true;
        if (progress) clearInterval(progress);
        await pipeline.stop();
      }
    } finally {
      state.stopping = true;
      await http?.close();
    }
    io.err(formatPipelineSummary(pipeline.stats, Number(process.hrtime.bigint() - started) / 1e9));
    if (failure) throw failure;
    return 0;
  },
};
