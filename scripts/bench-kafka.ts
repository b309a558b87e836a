/**
 * Kafka throughput of mirrorflow against a real broker (scripts/kafka.sh, started and stopped here
 * unless a broker address is given), with a plain kafkajs peer in the same run. Not a test.
 *
 *   node --import tsx scripts/bench-kafka.ts [--records N] [--pairs N] [--compression none,gzip] [--broker HOST:PORT]
 *                                            [--repeat N] [--no-peers] [--cpu-prof DIR] [--help]
 *
 * The machine is shared: --repeat N runs produce + pipeline N times per compression (a fresh topic
 * each time) and reports the best run and every run; the peers run once, in the same run, after.
 *
 * Each measurement runs in its own child process (so its peak RSS is its own):
 *   produce   the agent's path: FlowRecord objects written to openFlowSink (batches per partition of
 *             the pair key, FlowRecordBatch framing, idempotent producer, acks=-1), N unique records
 *             (ids, sequences, event time) onto a fresh flows topic of 12 partitions; from the first
 *             write until the broker acknowledged the last record (close()). One run per compression.
 *   pipeline  `mirrorflow pipeline` (src/cli/bin.js: the compiled CLI) with a fresh group, from
 *             offset 0 of that pre-filled topic until every partition's committed offset reached its
 *             end (all windows emitted, idle close 0.25 s after the last record, committed in
 *             transactions); timed from the group join (its log line) to that commit.
 *   peers     kafkajs alone (as shipped: its own CRC-32C): a producer sending one message per record (pre-encoded values, keys,
 *             headers; sendBatch of 5 000, idempotent, acks=-1); the same producer sending the same
 *             records pre-built into FlowRecordBatch messages per partition (the transport's ceiling
 *             for our framing: no encoding, no batching work in the timed part); and a consumer group reading the
 *             pre-filled topic (eachBatch, read_committed, no decoding: records counted from the
 *             batch headers), both over the same broker in the same run.
 *
 * benchKafka(opts) is the module entry point (npm run bench); run alone it prints a table.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import kafkajs from '../src/pipeline/kafkajs.js';
import type { Producer } from 'kafkajs';
import type { FlowRecord } from '../src/capture/flow-record.js';
import { FlowBatchBuilder, RECORD_COUNT_HEADER, flowBatchHeaders } from '../src/pipeline/codec-batch.js';
import { encodeRecord } from '../src/pipeline/codec.js';
import { parseKafkaConfig, type KafkaCompression } from '../src/pipeline/kafka-config.js';
import { KafkaProducerClient, openFlowSink, partitionOfKey, recordHeaders } from '../src/pipeline/kafka-producer.js';
import { flowPairKey } from '../src/pipeline/pair-key.js';
import { synthRecords } from '../test/helpers/synth-pipeline.js';

const { CompressionTypes, Kafka, logLevel } = kafkajs;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const KAFKA_SH = join(ROOT, 'scripts/kafka.sh');
const BIN = join(ROOT, 'src/cli/bin.js');
const FLOWS_PARTITIONS = 12;
const WINDOW_S = 10;
const SPAN_US = 60_000_000;
const T0_US = 1_700_000_000_000_000;

export interface BenchKafkaOptions {
  /**
   * Flow records produced and aggregated per run (default 2 000 000: several seconds per side, so
   * that the fixed costs of a process — connecting, the group join, the first compilation, the
   * idle close of the last windows — do not stand for its throughput).
   */
  records?: number;
  /** Records the kafkajs producer peer sends (it is slow; default min(records, 150 000)). */
  peerRecords?: number;
  /** VM pairs the records spread over (default 2 000). */
  pairs?: number;
  /** Producer compressions to measure (default ['none', 'gzip']); the first is the headline. */
  compressions?: KafkaCompression[];
  /** An existing broker (HOST:PORT); default: a private one from scripts/kafka.sh. */
  broker?: string;
  /** Produce + pipeline runs per compression (default 1); the best is the headline. */
  repeat?: number;
  /** Skip the kafkajs peers (default: measured). */
  peers?: boolean;
  /** Write CPU profiles of the produce and pipeline children here (node --cpu-prof). */
  cpuProfDir?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface BenchKafkaRun {
  compression: KafkaCompression;
  /** 1-based run number (--repeat). */
  run: number;
  produceRecordsPerSec: number;
  producePeakRssMiB: number;
  /** CPU time of the producer process (all its threads) per record, µs. */
  produceCpuUsPerRecord: number;
  pipelineRecordsPerSec: number;
  /** The pipeline between 10 % and 90 % of the records (see sustainedRate); NaN without progress lines. */
  pipelineSustainedRecordsPerSec: number;
  pipelinePeakRssMiB: number;
  /** Pipeline seconds from the group join to the last commit; and from the process start. */
  pipelineSeconds: number;
  pipelineSecondsWithStart: number;
  /** Batch messages on the topic (records per message = records / messages). */
  messages: number;
}

export interface BenchKafkaResult extends BenchKafkaRun {
  records: number;
  pairs: number;
  /** Every run, in order. The headline (the fields above): the first compression's best produce and best pipeline run. */
  runs: BenchKafkaRun[];
  /** kafkajs producer, one message per record (no mirrorflow code). */
  peerProduceRecordsPerSec: number;
  peerProducePeakRssMiB: number;
  /** kafkajs producer sending pre-built batch messages (1 000 records each) of the same records. */
  peerBatchProduceRecordsPerSec: number;
  /** kafkajs consumer group reading the pre-filled topic (the first run's), no decoding. */
  peerConsumeRecordsPerSec: number;
  peerConsumePeakRssMiB: number;
  produceVsPeer: number;
  pipelineVsPeerConsume: number;
}

// ---- children

interface ChildResult {
  recordsPerSec: number;
  peakRssMiB: number;
  [k: string]: unknown;
}

const peakRssMiB = (): number => process.resourceUsage().maxRSS / 1024;

function runChild(args: string[], nodeArgs: string[] = []): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    // peers are kafkajs as shipped: its own CRC-32C, not the native one mirrorflow installs (kafka-crc32c.ts)
    const env = args[0]!.startsWith('peer-') ? { ...process.env, MIRRORFLOW_NATIVE_CRC32C: '0' } : process.env;
    const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', SELF, '--child', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) reject(new Error(`bench-kafka: child ${args[0]} failed (code=${code}): ${err.slice(-2000)}`));
      else resolve(JSON.parse(line) as ChildResult);
    });
  });
}

/** Writes `n` unique records (ids, sequences, event time over SPAN_US) from a pool of templates. */
function recordSource(n: number, pairs: number): (i: number) => FlowRecord {
  const pool = synthRecords({ records: 20_000, pairs, spanUs: 1, seed: 11, agentId: 'hv-bench' });
  return (i: number) => {
    const r = pool[i % pool.length]!;
    const len = r.endUs - r.startUs;
    const endUs = T0_US + Math.floor((i * SPAN_US) / n);
    r.sequence = i + 1;
    r.id = `hv-bench-${i + 1}`;
    r.endUs = endUs;
    r.startUs = endUs - len;
    if (r.clientToServer.packets) {
      r.clientToServer.firstUs = r.startUs;
      r.clientToServer.lastUs = endUs;
    }
    if (r.serverToClient.packets) {
      r.serverToClient.firstUs = r.startUs;
      r.serverToClient.lastUs = endUs;
    }
    return r;
  };
}

async function childProduce(broker: string, prefix: string, n: number, pairs: number, compression: KafkaCompression): Promise<ChildResult> {
  const cfg = parseKafkaConfig({ brokers: broker, topicPrefix: prefix, compression, partitions: { flows: FLOWS_PARTITIONS } });
  const client = await KafkaProducerClient.create(cfg);
  await client.ensureTopics(['flows']);
  await client.ensureConnected();
  const next = recordSource(n, pairs);
  const sink = openFlowSink(client);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    sink.write(next(i));
    if ((i & 1023) === 0) {
      // as a capture loop does between reads: back to the event loop now and then, so the sink
      // sends the next request while records are encoded (a loop that never yields serialises them)
      if (sink.behind) await sink.drained();
      else if ((i & 4095) === 0) await new Promise((r) => setImmediate(r));
    }
  }
  await sink.close();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const m = sink.metrics();
  await client.disconnect();
  if (m.sent !== n) throw new Error(`bench-kafka: sent ${m.sent} of ${n}`);
  return { recordsPerSec: n / s, peakRssMiB: peakRssMiB(), batches: m.batches, cpuUsPerRecord: (cpu.user + cpu.system) / n };
}

/** The flows topic (as mirrorflow creates it) and a plain kafkajs idempotent producer: the peers' setup. */
async function peerProducer(broker: string, prefix: string): Promise<Producer> {
  const client = await KafkaProducerClient.create(parseKafkaConfig({ brokers: broker, topicPrefix: prefix, partitions: { flows: FLOWS_PARTITIONS } }));
  await client.ensureTopics(['flows']);
  await client.disconnect();
  const producer = new Kafka({ clientId: 'bench-peer', brokers: [broker], logLevel: logLevel.NOTHING }).producer({ idempotent: true, maxInFlightRequests: 5 });
  await producer.connect();
  return producer;
}

async function childPeerProduce(broker: string, prefix: string, n: number, pairs: number): Promise<ChildResult> {
  const producer = await peerProducer(broker, prefix);
  const headers = recordHeaders('flow-record', 'protobuf');
  const next = recordSource(n, pairs);
  // pre-encoded: the peer measures kafkajs alone
  const msgs = Array.from({ length: n }, (_, i) => {
    const r = next(i);
    return { key: Buffer.from(flowPairKey(r)), value: encodeRecord('flow-record', r, 'protobuf'), headers };
  });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i += 5000) {
    await producer.sendBatch({ topicMessages: [{ topic: `${prefix}flows`, messages: msgs.slice(i, i + 5000) }], acks: -1, compression: CompressionTypes.None });
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await producer.disconnect();
  return { recordsPerSec: n / s, peakRssMiB: peakRssMiB() };
}

async function childPeerProduceBatched(broker: string, prefix: string, n: number, pairs: number): Promise<ChildResult> {
  const producer = await peerProducer(broker, prefix);
  const next = recordSource(n, pairs);
  const builders = Array.from({ length: FLOWS_PARTITIONS }, () => ({ b: new FlowBatchBuilder('protobuf'), key: '' }));
  const msgs: { key: string; value: Buffer; partition: number; headers: Record<string, string> }[] = [];
  const seal = (p: number) => {
    const x = builders[p]!;
    if (x.b.count) msgs.push({ key: x.key, partition: p, headers: flowBatchHeaders('protobuf', x.b.count), value: x.b.take() });
  };
  for (let i = 0; i < n; i++) {
    const r = next(i);
    const key = flowPairKey(r);
    const p = partitionOfKey(key, FLOWS_PARTITIONS);
    const x = builders[p]!;
    if (!x.b.count) x.key = key;
    x.b.add(r);
    if (x.b.count >= 1000) seal(p);
  }
  for (let p = 0; p < FLOWS_PARTITIONS; p++) seal(p);
  const t0 = process.hrtime.bigint();
  // requests of about 1 MiB, as the sink sends them
  for (let i = 0; i < msgs.length; ) {
    const chunk = [];
    let bytes = 0;
    while (i < msgs.length && (chunk.length === 0 || bytes + msgs[i]!.value.length <= 1 << 20)) {
      bytes += msgs[i]!.value.length;
      chunk.push(msgs[i++]!);
    }
    await producer.sendBatch({ topicMessages: [{ topic: `${prefix}flows`, messages: chunk }], acks: -1, compression: CompressionTypes.None });
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await producer.disconnect();
  return { recordsPerSec: n / s, peakRssMiB: peakRssMiB() };
}

async function childPeerConsume(broker: string, topic: string, n: number): Promise<ChildResult> {
  const kafka = new Kafka({ clientId: 'bench-peer', brokers: [broker], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: `bench-peer-${process.pid}-${Date.now()}`, readUncommitted: false, maxBytes: 32 << 20, maxBytesPerPartition: 4 << 20 });
  let records = 0;
  let first = 0n;
  const done = new Set<number>();
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      if (!first) first = process.hrtime.bigint();
      for (const m of batch.messages) records += Number(m.headers?.[RECORD_COUNT_HEADER]?.toString() ?? 1);
      if (Number(batch.lastOffset()) + 1 >= (ends.get(batch.partition) ?? 0)) done.add(batch.partition);
      if (done.size === [...ends.values()].filter((e) => e > 0).length) finish();
    },
  });
  await finished;
  const s = Number(process.hrtime.bigint() - first) / 1e9;
  await consumer.disconnect();
  if (records !== n) throw new Error(`bench-kafka: peer consumer read ${records} of ${n} records`);
  return { recordsPerSec: n / s, peakRssMiB: peakRssMiB() };
}

// ---- the pipeline child: the real CLI

function vmHwmMiB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * The sustained rate from the pipeline's progress lines (flow records read so far, every 0.1 s):
 * records between the samples that first reach 10 % and 90 % of `n`, over the time between them —
 * the aggregation rate without the fixed costs at both ends (group join and first fetch; the idle
 * close of the last windows and its commit).
 */
function sustainedRate(samples: { t: bigint; records: number }[], n: number): number {
  const from = samples.find((x) => x.records >= 0.1 * n);
  const to = samples.find((x) => x.records >= 0.9 * n);
  if (!from || !to || to.t <= from.t) return NaN;
  return (to.records - from.records) / (Number(to.t - from.t) / 1e9);
}

async function runPipeline(
  broker: string,
  prefix: string,
  n: number,
  nodeArgs: string[] = [],
): Promise<{ recordsPerSec: number; sustainedRecordsPerSec: number; peakRssMiB: number; seconds: number; secondsWithStart: number }> {
  const kafka = new Kafka({ clientId: 'bench-watch', brokers: [broker], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const flows = `${prefix}flows`;
  const group = `bench-pipeline-${process.pid}-${Date.now()}`;
  const ends = await admin.fetchTopicOffsets(flows);
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [...nodeArgs, BIN, 'pipeline', '--brokers', broker, '--topic-prefix', prefix, '--group', group, '--window', String(WINDOW_S), '--idle-timeout', '0.25', '--progress', '0.1'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MIRRORFLOW_LOG_LEVEL: 'info' },
  });
  let log = '';
  let joined = 0n;
  let peak = 0;
  const samples: { t: bigint; records: number }[] = [];
  let partial = '';
  const onData = (d: Buffer) => {
    const text = d.toString();
    log += text;
    if (!joined && log.includes('partitions assigned')) joined = process.hrtime.bigint();
    if (log.length > 100_000) log = log.slice(-50_000);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const m = /"flowRecords":(\d+).*"msg":"pipeline: progress"/.exec(line);
      if (m) samples.push({ t: process.hrtime.bigint(), records: Number(m[1]) });
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    const deadline = Date.now() + 900_000;
    for (;;) {
      peak = Math.max(peak, vmHwmMiB(child.pid!));
      if (child.exitCode !== null) throw new Error(`bench-kafka: pipeline exited (code=${child.exitCode}): ${log.slice(-2000)}`);
      const [c] = await admin.fetchOffsets({ groupId: group, topics: [flows] });
      const settled = ends.every((e) => Number(c?.partitions.find((p) => p.partition === e.partition)?.offset ?? -1) === Number(e.high));
      if (settled) break;
      if (Date.now() > deadline) throw new Error(`bench-kafka: pipeline did not finish: ${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const end = process.hrtime.bigint();
    peak = Math.max(peak, vmHwmMiB(child.pid!));
    const seconds = Number(end - (joined || started)) / 1e9;
    return { recordsPerSec: n / seconds, sustainedRecordsPerSec: sustainedRate(samples, n), peakRssMiB: peak, seconds, secondsWithStart: Number(end - started) / 1e9 };
  } finally {
    child.kill('SIGTERM');
    await exited;
    await admin.disconnect();
  }
}

async function topicStats(broker: string, topic: string): Promise<{ messages: number }> {
  const kafka = new Kafka({ clientId: 'bench-watch', brokers: [broker], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return { messages: offsets.reduce((s, p) => s + Number(p.high) - Number(p.low), 0) };
  } finally {
    await admin.disconnect();
  }
}

// ---- the module entry point

export async function benchKafka(opts: BenchKafkaOptions = {}): Promise<BenchKafkaResult> {
  const n = opts.records ?? 2_000_000;
  const peerN = opts.peerRecords ?? Math.min(n, 150_000);
  const pairs = opts.pairs ?? 2000;
  const compressions = opts.compressions ?? ['none', 'gzip'];
  const repeat = Math.max(1, Math.floor(opts.repeat ?? 1));
  const log = opts.log ?? (() => undefined);
  const nodeArgs = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : [];
  let dir: string | undefined;
  let broker = opts.broker;
  if (!broker) {
    dir = mkdtempSync(join(tmpdir(), 'mf-bench-kafka.'));
    log(`bench-kafka: starting a broker (scripts/kafka.sh start ${dir})`);
    broker = execFileSync('bash', [KAFKA_SH, 'start', dir], { stdio: ['ignore', 'pipe', 'inherit'] }).toString().trim().split('\n').pop()!;
  }
  try {
    const base = `bench-${process.pid}-${Date.now()}`;
    // warm-up, as a broker in service is: its JIT (produce, fetch, transactions, offset commits) and
    // page cache, our first topic creation — a pipeline pass over the warm-up topic too (on a fresh
    // broker the JVM compiles its fetch and transaction paths during the first pipeline run, taking
    // most of a core from it on this 2-core machine)
    await runChild(['produce', broker, `${base}-warm.`, '30000', String(pairs), 'none']);
    await runPipeline(broker, `${base}-warm.`, 30_000);
    const runs: BenchKafkaRun[] = [];
    let firstTopic = '';
    for (const c of compressions) {
      for (let run = 1; run <= repeat; run++) {
        const prefix = `${base}-${c}-${run}.`;
        log(`bench-kafka: producing ${n} records (${c}, run ${run} of ${repeat})`);
        const p = await runChild(['produce', broker, prefix, String(n), String(pairs), c], nodeArgs);
        const t = await topicStats(broker, `${prefix}flows`);
        log(`bench-kafka: pipeline over ${t.messages} batch messages (${c}, run ${run} of ${repeat})`);
        const q = await runPipeline(broker, prefix, n, nodeArgs);
        log(`bench-kafka:   produce ${fmt(p.recordsPerSec)} records/s, pipeline ${fmt(q.recordsPerSec)} records/s (sustained ${fmt(q.sustainedRecordsPerSec)})`);
        runs.push({
          compression: c,
          run,
          produceRecordsPerSec: p.recordsPerSec,
          producePeakRssMiB: p.peakRssMiB,
          produceCpuUsPerRecord: Number(p.cpuUsPerRecord),
          pipelineRecordsPerSec: q.recordsPerSec,
          pipelineSustainedRecordsPerSec: q.sustainedRecordsPerSec,
          pipelinePeakRssMiB: q.peakRssMiB,
          pipelineSeconds: q.seconds,
          pipelineSecondsWithStart: q.secondsWithStart,
          messages: t.messages,
        });
        if (!firstTopic) firstTopic = `${prefix}flows`;
      }
    }
    const none = { recordsPerSec: NaN, peakRssMiB: NaN };
    const peers = opts.peers ?? true;
    if (peers) log('bench-kafka: peers (kafkajs alone)');
    const peerP = peers ? await runChild(['peer-produce', broker, `${base}-peer.`, String(peerN), String(pairs)]) : none;
    const peerB = peers ? await runChild(['peer-produce-batched', broker, `${base}-peerb.`, String(n), String(pairs)]) : none;
    const peerC = peers ? await runChild(['peer-consume', broker, firstTopic, String(n)]) : none;
    // the headline: the first compression's best produce run and best pipeline run
    const first = runs.filter((r) => r.compression === compressions[0]);
    const bestP = first.reduce((a, b) => (b.produceRecordsPerSec > a.produceRecordsPerSec ? b : a));
    const bestQ = first.reduce((a, b) => (b.pipelineRecordsPerSec > a.pipelineRecordsPerSec ? b : a));
    const head: BenchKafkaRun = {
      ...bestQ,
      produceRecordsPerSec: bestP.produceRecordsPerSec,
      producePeakRssMiB: bestP.producePeakRssMiB,
      messages: bestP.messages,
    };
    return {
      ...head,
      records: n,
      pairs,
      runs,
      peerProduceRecordsPerSec: peerP.recordsPerSec,
      peerProducePeakRssMiB: peerP.peakRssMiB,
      peerBatchProduceRecordsPerSec: peerB.recordsPerSec,
      peerConsumeRecordsPerSec: peerC.recordsPerSec,
      peerConsumePeakRssMiB: peerC.peakRssMiB,
      produceVsPeer: head.produceRecordsPerSec / peerP.recordsPerSec,
      pipelineVsPeerConsume: head.pipelineRecordsPerSec / peerC.recordsPerSec,
    };
  } finally {
    if (dir) {
      execFileSync('bash', [KAFKA_SH, 'stop', dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

// ---- command line

const fmt = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');

async function cli(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    const [, what, broker, a, b, c, d] = argv;
    let r: ChildResult;
    if (what === 'produce') r = await childProduce(broker!, a!, Number(b), Number(c), d as KafkaCompression);
    else if (what === 'peer-produce') r = await childPeerProduce(broker!, a!, Number(b), Number(c));
    else if (what === 'peer-produce-batched') r = await childPeerProduceBatched(broker!, a!, Number(b), Number(c));
    else if (what === 'peer-consume') r = await childPeerConsume(broker!, a!, Number(b));
    else throw new Error(`bench-kafka: unknown child ${what}`);
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  const { values } = parseArgs({
    options: {
      records: { type: 'string' },
      pairs: { type: 'string' },
      compression: { type: 'string' },
      broker: { type: 'string' },
      'peer-records': { type: 'string' },
      repeat: { type: 'string' },
      'no-peers': { type: 'boolean' },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(
      [
        'usage: node --import tsx scripts/bench-kafka.ts [options]',
        '  --records N          flow records produced and aggregated per run (default 2000000)',
        '  --pairs N            VM pairs they spread over (default 2000)',
        '  --compression LIST   producer compressions, comma-separated (default none,gzip); the first is the headline',
        '  --repeat N           produce + pipeline runs per compression (default 1); the best run is the headline',
        '  --broker HOST:PORT   an existing broker (default: a private one from scripts/kafka.sh)',
        '  --peer-records N     records of the one-message-per-record kafkajs peer (default min(records, 150000))',
        '  --no-peers           skip the kafkajs peers',
        '  --cpu-prof DIR       CPU profiles of the produce and pipeline children into DIR',
      ].join('\n'),
    );
    return;
  }
  const res = await benchKafka({
    ...(values.records ? { records: Number(values.records) } : {}),
    ...(values['peer-records'] ? { peerRecords: Number(values['peer-records']) } : {}),
    ...(values.pairs ? { pairs: Number(values.pairs) } : {}),
    ...(values.compression ? { compressions: values.compression.split(',') as KafkaCompression[] } : {}),
    ...(values.broker ? { broker: values.broker } : {}),
    ...(values.repeat ? { repeat: Number(values.repeat) } : {}),
    ...(values['no-peers'] ? { peers: false } : {}),
    ...(values['cpu-prof'] ? { cpuProfDir: values['cpu-prof'] } : {}),
    log: (l) => console.error(l),
  });
  const repeated = res.runs.length > new Set(res.runs.map((r) => r.compression)).size;
  console.log(`bench-kafka: ${fmt(res.records)} flow records over ${fmt(res.pairs)} VM pairs, node ${process.version}${repeated ? `, best of ${res.runs.filter((r) => r.compression === res.compression).length} runs` : ''}`);
  if (repeated) {
    console.log(`  best     (${res.compression.padEnd(4)})  produce ${fmt(res.produceRecordsPerSec)} records/s, pipeline ${fmt(res.pipelineRecordsPerSec)} records/s`);
  }
  for (const r of res.runs) {
    const tag = repeated ? `${r.compression} #${r.run}` : r.compression;
    console.log(
      `  produce  (${tag.padEnd(4)})  ${fmt(r.produceRecordsPerSec).padStart(9)} records/s  peak RSS ${r.producePeakRssMiB.toFixed(0)} MiB  (${fmt(r.messages)} batch messages, ${(res.records / r.messages).toFixed(0)} records each; ${r.produceCpuUsPerRecord.toFixed(2)} µs CPU per record)`,
    );
    console.log(
      `  pipeline (${tag.padEnd(4)})  ${fmt(r.pipelineRecordsPerSec).padStart(9)} records/s  peak RSS ${r.pipelinePeakRssMiB.toFixed(0)} MiB  (${r.pipelineSeconds.toFixed(2)} s from the group join, ${r.pipelineSecondsWithStart.toFixed(2)} s with the process start; sustained ${fmt(r.pipelineSustainedRecordsPerSec)} records/s between 10 % and 90 % of the records)`,
    );
  }
  if (Number.isNaN(res.peerConsumeRecordsPerSec)) return;
  console.log(`  peer: kafkajs producer, one message per record   ${fmt(res.peerProduceRecordsPerSec).padStart(9)} records/s  peak RSS ${res.peerProducePeakRssMiB.toFixed(0)} MiB`);
  console.log(`  peer: kafkajs producer, pre-built batches (ceiling) ${fmt(res.peerBatchProduceRecordsPerSec).padStart(9)} records/s`);
  console.log(`  peer: kafkajs consumer, no decoding               ${fmt(res.peerConsumeRecordsPerSec).padStart(9)} records/s  peak RSS ${res.peerConsumePeakRssMiB.toFixed(0)} MiB`);
  console.log(`  ratios: produce ${res.produceVsPeer.toFixed(1)}× the kafkajs producer peer; pipeline ${res.pipelineVsPeerConsume.toFixed(2)}× the kafkajs consumer peer`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await cli();
}
