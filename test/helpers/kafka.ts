// A real Apache Kafka broker for integration tests, started by scripts/kafka.sh (one node, KRaft
// combined mode, 127.0.0.1, its own temp dir). By default one broker is shared by all tests of a
// mocha run (a start costs seconds); `{ shared: false }` gives a private one that stop() ends.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from '../../src/pipeline/kafkajs.js';
import type { Admin } from 'kafkajs';
import type { FlowRecord } from '../../src/capture/flow-record.js';
import { decodeFlowMessage } from '../../src/pipeline/codec-batch.js';
import { decodeRecord, describeMessage, type RecordKind, type RecordOfKind } from '../../src/pipeline/codec.js';
import { runFile } from './exec.js';
import { waitFor } from './wait.js';
import { findSandboxProcesses, TEST_REGISTRY_ENV } from './ovs-sandbox.js';

export const KAFKA_SCRIPT = fileURLToPath(new URL('../../scripts/kafka.sh', import.meta.url));
/** Broker dirs made by tests start with this. */
export const KAFKA_TEST_DIR_PREFIX = '/tmp/mf-kafka-test.';
/** The first start may fetch the Kafka jars with Maven (about a minute on a cold cache). */
export const KAFKA_START_TIMEOUT_MS = 240_000;
/** A shared broker that no test holds is stopped after this long (and at process exit anyway). */
const SHARED_IDLE_STOP_MS = 15_000;

export interface StartKafkaOptions {
  /** Share one broker per mocha run (default true); false starts a private broker. */
  shared?: boolean;
  /**
   * Also listen with SASL/SCRAM (SCRAM-SHA-256 and -512) on SASL_PLAINTEXT and SASL_SSL, the TLS
   * certificate signed by a private CA (`scripts/kafka.sh start --security`). Needs `shared: false`.
   */
  security?: boolean;
}

export interface KafkaScramUser {
  username: string;
  password: string;
}

/** The secured listeners of a broker started with `security: true`. */
export interface KafkaSecurity {
  /** 127.0.0.1:PORT of the SASL_PLAINTEXT listener (SCRAM, no TLS). */
  saslPlaintext: string;
  /** 127.0.0.1:PORT of the SASL_SSL listener (SCRAM over TLS). */
  saslSsl: string;
  /** PEM of the private CA that signed the broker's certificate (tls.caFile). */
  caFile: string;
  /** SCRAM users (both mechanisms each); the first is the one in the client configs. */
  users: KafkaScramUser[];
  /** Ready-made `{"kafka": {brokers, tls, sasl}}` files for `--config` / `--kafka-config`. */
  clientConfigFiles: { saslSsl: string; saslPlaintext: string };
}

export interface KafkaBroker {
  /** 127.0.0.1:PORT, for `brokers: [bootstrap]`. */
  bootstrap: string;
  /** The broker's directory (data/, logs/server.log, server.properties). */
  dir: string;
  /** Pid of the broker JVM. */
  pid: number;
  /** With `security: true`: the SASL listeners, the CA file and the SCRAM users. */
  security?: KafkaSecurity;
  /**
   * Private broker: stops it and removes its dir (nothing is left running when this resolves).
   * Shared broker: releases this handle; the broker stops once no handle holds it for a while, or
   * at process exit. Safe to call twice.
   */
  stop(): Promise<void>;
}

interface RunningBroker {
  bootstrap: string;
  dir: string;
  pid: number;
  security?: KafkaSecurity;
}

const live = new Set<string>();
let safetyNetInstalled = false;

function installSafetyNet(): void {
  if (safetyNetInstalled) return;
  safetyNetInstalled = true;
  process.on('exit', stopAllSync);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stopAllSync();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

/** Synchronous last-resort cleanup ('exit' runs no async work). */
function stopAllSync(): void {
  for (const dir of live) {
    try {
      execFileSync('bash', [KAFKA_SCRIPT, 'stop', dir], { stdio: 'ignore', timeout: 60_000 });
    } catch {
      // best effort: scripts/test.sh reports leftover processes of recorded dirs
    }
  }
  live.clear();
}

async function launch(security = false): Promise<RunningBroker> {
  installSafetyNet();
  const dir = await mkdtemp(KAFKA_TEST_DIR_PREFIX);
  const registry = process.env[TEST_REGISTRY_ENV];
  if (registry) appendFileSync(registry, `dir ${dir}\n`);
  live.add(dir);
  let stdout: string;
  try {
    ({ stdout } = await runFile('bash', [KAFKA_SCRIPT, 'start', dir, ...(security ? ['--security'] : [])], { timeoutMs: KAFKA_START_TIMEOUT_MS }));
  } catch (err) {
    await stopDir(dir).catch(() => undefined);
    throw new Error(`kafka: broker start failed (dir=${dir}): ${(err as Error).message}`, { cause: err });
  }
  const bootstrap = lastLine(stdout);
  if (!/^127\.0\.0\.1:\d+$/.test(bootstrap)) {
    await stopDir(dir).catch(() => undefined);
    throw new Error(`kafka: start printed no bootstrap address (dir=${dir}, stdout=${JSON.stringify(stdout)})`);
  }
  const pid = Number((await readFile(join(dir, 'kafka.pid'), 'utf8')).trim());
  if (!security) return { bootstrap, dir, pid };
  try {
    return { bootstrap, dir, pid, security: await readSecurity(dir) };
  } catch (err) {
    await stopDir(dir).catch(() => undefined);
    throw err;
  }
}

/** The secured listeners (`kafka.sh address DIR --listener …`) and DIR/security/ files. */
async function readSecurity(dir: string): Promise<KafkaSecurity> {
  const address = async (listener: string): Promise<string> => {
    const { stdout } = await runFile('bash', [KAFKA_SCRIPT, 'address', dir, '--listener', listener], { timeoutMs: 30_000 });
    const a = lastLine(stdout);
    if (!/^127\.0\.0\.1:\d+$/.test(a)) throw new Error(`kafka: no ${listener} address (dir=${dir}, stdout=${JSON.stringify(stdout)})`);
    return a;
  };
  const sec = join(dir, 'security');
  const users = (await readFile(join(sec, 'users'), 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [username = '', password = ''] = l.trim().split(/\s+/);
      return { username, password };
    });
  if (!users.length) throw new Error(`kafka: no SCRAM users (file=${join(sec, 'users')})`);
  return {
    saslPlaintext: await address('sasl_plaintext'),
    saslSsl: await address('sasl_ssl'),
    caFile: join(sec, 'ca.pem'),
    users,
    clientConfigFiles: { saslSsl: join(sec, 'client-sasl_ssl.json'), saslPlaintext: join(sec, 'client-sasl_plaintext.json') },
  };
}

async function stopDir(dir: string): Promise<void> {
  await runFile('bash', [KAFKA_SCRIPT, 'stop', dir], { timeoutMs: 60_000 });
  live.delete(dir);
}

/** The last non-empty line of a script's output. */
export function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return (lines[lines.length - 1] ?? '').trim();
}

// The shared broker: started on first use, reference-counted, stopped when idle or at exit.
let shared: Promise<RunningBroker> | undefined;
let sharedHolders = 0;
let idleTimer: NodeJS.Timeout | undefined;

function acquireShared(): Promise<RunningBroker> {
  if (idleTimer) {
    clearTimeout(idleTimer);
    idleTimer = undefined;
  }
  if (!shared) {
    const starting = launch();
    shared = starting;
    starting.catch(() => {
      if (shared === starting) shared = undefined;
    });
  }
  sharedHolders++;
  return shared;
}

function releaseShared(): void {
  sharedHolders = Math.max(0, sharedHolders - 1);
  if (sharedHolders > 0 || idleTimer || !shared) return;
  idleTimer = setTimeout(() => {
    idleTimer = undefined;
    void stopSharedKafka().catch(() => undefined);
  }, SHARED_IDLE_STOP_MS);
  idleTimer.unref(); // never keeps mocha alive; the exit safety net stops the broker then
}

/** Stops the shared broker now (whoever holds it). Resolves when nothing of it is left running. */
export async function stopSharedKafka(): Promise<void> {
  if (idleTimer) {
    clearTimeout(idleTimer);
    idleTimer = undefined;
  }
  const current = shared;
  shared = undefined;
  sharedHolders = 0;
  if (!current) return;
  const broker = await current.catch(() => undefined);
  if (broker) await stopDir(broker.dir);
}

/** Starts (or, shared, joins) a real single-node Kafka broker; see StartKafkaOptions. */
export async function startKafka(opts: StartKafkaOptions = {}): Promise<KafkaBroker> {
  const security = opts.security ?? false;
  if (security && opts.shared === true) throw new Error('kafka: a secured broker is private: startKafka({ shared: false, security: true })');
  const isShared = security ? false : (opts.shared ?? true);
  let released = false;
  if (isShared) {
    let broker: RunningBroker;
    try {
      broker = await acquireShared();
    } catch (err) {
      releaseShared();
      throw err;
    }
    return {
      ...broker,
      stop: async () => {
        if (released) return;
        released = true;
        releaseShared();
      },
    };
  }
  const broker = await launch(security);
  return {
    ...broker,
    stop: async () => {
      if (released) return;
      await stopDir(broker.dir);
      released = true;
    },
  };
}

/** Pids of live processes whose command line mentions the broker's dir (empty once it stopped). */
export function kafkaProcesses(dir: string): Promise<number[]> {
  return findSandboxProcesses(`${dir}/`);
}

/** A topic / group / transactional id unique to this run: `mft<5 hex>-<base>`. */
export function uniqueKafkaName(base: string): string {
  return `mft${randomBytes(3).toString('hex').slice(0, 5)}-${base}`;
}

/**
 * Every flow record on `topic` now (messages may be batches): reads from the beginning until the
 * consumer reached each partition's end offset as it was when called.
 */
export async function readAllFlowRecords(bootstrap: string, topic: string, timeoutMs = 60_000): Promise<FlowRecord[]> {
  const kafka = new Kafka({ clientId: 'mf-test-read', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    ends = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  } finally {
    await admin.disconnect();
  }
  const records: FlowRecord[] = [];
  const reached = new Map<number, bigint>();
  const consumer = kafka.consumer({ groupId: uniqueKafkaName('read'), maxBytes: 64 << 20 });
  const done = () => [...ends].every(([p, end]) => end === 0n || (reached.get(p) ?? -1n) >= end - 1n);
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(Array.isArray(v) ? v[0] : v);
        if (message.value) records.push(...decodeFlowMessage(headers, message.value));
        reached.set(partition, BigInt(message.offset));
      },
    });
    // (an idempotent, non-transactional producer: the last offset of a partition holds data)
    await waitFor(() => done(), { what: `all of ${topic}`, timeoutMs, intervalMs: 100 });
  } finally {
    await consumer.disconnect();
  }
  return records;
}

/** Total messages in a topic (sum of high watermarks; no transactions, so offsets are dense). */
export async function topicCount(admin: Admin, topic: string): Promise<number> {
  // right after a topic is created its leaders may not be known yet ("not the leader", retriable):
  // ask again until the broker answers, within a deadline
  const offsets = await waitFor(
    async () => {
      try {
        return await admin.fetchTopicOffsets(topic);
      } catch (e) {
        if ((e as { retriable?: boolean }).retriable) return undefined;
        throw e;
      }
    },
    { what: `offsets of ${topic}`, timeoutMs: 30_000, intervalMs: 100 },
  );
  return offsets!.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
}

/** Header of the sentinel messages readCommitted appends (not a mirrorflow record). */
export const SENTINEL_HEADER = 'mirrorflow-test-sentinel';

/**
 * Everything committed on `topic` now, read with read_committed, each message decoded by its
 * headers as a `kind` record (a message of another kind fails the read): a sentinel is appended to
 * every partition and the topic is read until each partition's sentinel. `kafka` carries the
 * connection settings (TLS, SASL) of the caller.
 */
export async function readCommitted<K extends RecordKind>(kafka: Kafka, topic: string, kind: K, timeoutMs = 60_000): Promise<{ key: string; value: RecordOfKind[K] }[]> {
  const admin = kafka.admin();
  const producer = kafka.producer();
  let parts: number[];
  await admin.connect();
  await producer.connect();
  try {
    parts = (await admin.fetchTopicOffsets(topic)).map((p) => p.partition);
    await producer.send({ topic, acks: -1, messages: parts.map((partition) => ({ partition, key: 'sentinel', value: 'sentinel', headers: { [SENTINEL_HEADER]: '1' } })) });
  } finally {
    await producer.disconnect();
    await admin.disconnect();
  }
  // (short fetch waits: once the last sentinel is in, the consumer stops without a long poll pending)
  const consumer = kafka.consumer({ groupId: uniqueKafkaName('reader'), readUncommitted: false, maxWaitTimeInMs: 100 });
  const got: { key: string; value: RecordOfKind[K] }[] = [];
  const done = new Set<number>();
  let failure: unknown;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`readCommitted: timed out reading ${topic} (partitions done=${[...done].join(',')})`)), timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        resolve();
      };
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            if (message.headers?.[SENTINEL_HEADER]) {
              done.add(partition);
              if (done.size === parts.length) finish();
              return;
            }
            try {
              const headers: Record<string, string> = {};
              for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
              const d = describeMessage(headers);
              if (d.kind !== kind) throw new Error(`readCommitted: a ${d.kind} message on ${topic} (expected ${kind})`);
              got.push({ key: message.key?.toString() ?? '', value: decodeRecord(kind, message.value!, d.format) });
            } catch (e) {
              failure ??= e;
              finish();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  if (failure) throw failure;
  return got;
}
