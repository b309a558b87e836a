/**
 * Flow records per second from our Kafka sink to a real broker (scripts/kafka.sh, started and
 * stopped here unless MIRRORFLOW_BENCH_BROKER=HOST:PORT is given). Not a test.
 * Run: npx tsx scripts/bench-kafka-produce.ts [records=300000]
 *
 * Measured, each on its own fresh topic (12 partitions), from the first write until the broker
 * acknowledged the last record (acks=-1, idempotent):
 *   sink/protobuf/none    openFlowSink: encode + pair key + FlowRecordBatch messages per partition, no compression
 *   sink/protobuf/gzip    the same, gzip (the default)
 *   sink/json/none        JSON values
 *   peer: kafkajs/none    the same pre-encoded values and keys with headers sent by kafkajs
 *                         producer.sendBatch in batches of 5 000 (what kafkajs costs without us)
 * Ratios are against the peer. scripts/bench-kafka.ts is the full benchmark (each side in its own
 * process with its peak RSS, and the pipeline); this one stays as a quick in-process check.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import kafkajs from '../src/pipeline/kafkajs.js';

const { CompressionTypes, Kafka, logLevel } = kafkajs;
import { encodeRecord } from '../src/pipeline/codec.js';
import { parseKafkaConfig, type KafkaCompression } from '../src/pipeline/kafka-config.js';
import { KafkaProducerClient, openFlowSink, recordHeaders } from '../src/pipeline/kafka-producer.js';
import { flowPairKey } from '../src/pipeline/pair-key.js';
import type { RecordFormat } from '../src/pipeline/codec.js';
import { flowRecords } from '../test/unit/pipeline/codec.fixture.js';

const total = Number(process.argv[2] ?? 300_000);
const script = fileURLToPath(new URL('./kafka.sh', import.meta.url));
const records = flowRecords(3000).map((r, i) => {
  // many pairs, so all partitions are used
  const p = i % 500;
  if (r.key.ipVersion === 4) r.key = { ...r.key, clientIp: `10.2.${p >> 8}.${p & 255}`, serverIp: `10.3.${p >> 8}.${p & 255}` };
  return r;
});

let ownDir: string | undefined;
function startBroker(): string {
  if (process.env.MIRRORFLOW_BENCH_BROKER) return process.env.MIRRORFLOW_BENCH_BROKER;
  ownDir = execFileSync('mktemp', ['-d', '/tmp/mf-kafka-bench.XXXXXX']).toString().trim();
  const out = execFileSync('bash', [script, 'start', ownDir], { stdio: ['ignore', 'pipe', 'inherit'] }).toString();
  return out.trim().split('\n').pop()!;
}

function stopBroker(): void {
  if (ownDir) execFileSync('bash', [script, 'stop', ownDir], { stdio: 'ignore' });
}

const fmt = (n: number): string => `${Math.round(n).toLocaleString('en-US')}`;

async function benchSink(bootstrap: string, format: RecordFormat, compression: KafkaCompression, n: number): Promise<number> {
  const cfg = parseKafkaConfig({ brokers: bootstrap, topicPrefix: `bench-${process.pid}-${format}-${compression}-${Date.now()}.`, format, compression });
  const client = await KafkaProducerClient.create(cfg);
  await client.ensureTopics(['flows']);
  await client.ensureConnected();
  const sink = openFlowSink(client);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const r = records[i % records.length]!;
    sink.write(r);
    if (sink.behind) await sink.drained();
  }
  await sink.close();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const m = sink.metrics();
  await client.disconnect();
  if (m.sent !== n) throw new Error(`bench: sent ${m.sent} of ${n}`);
  return n / s;
}

async function benchPeer(bootstrap: string, n: number): Promise<number> {
  const cfg = parseKafkaConfig({ brokers: bootstrap, topicPrefix: `bench-${process.pid}-peer-${Date.now()}.` });
  const client = await KafkaProducerClient.create(cfg);
  await client.ensureTopics(['flows']);
  await client.disconnect();
  const kafka = new Kafka({ clientId: 'bench', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
  await producer.connect();
  const headers = recordHeaders('flow-record', 'protobuf');
  const msgs = records.map((r) => ({ key: Buffer.from(flowPairKey(r)), value: encodeRecord('flow-record', r, 'protobuf'), headers }));
  const t0 = process.hrtime.bigint();
  for (let sent = 0; sent < n; ) {
    const batch = [];
    for (let j = 0; j < 5_000 && sent < n; j++, sent++) batch.push(msgs[sent % msgs.length]!);
    await producer.sendBatch({ topicMessages: [{ topic: `${cfg.topicPrefix}flows`, messages: batch }], acks: -1, compression: CompressionTypes.None });
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await producer.disconnect();
  return n / s;
}

const bootstrap = startBroker();
try {
  console.log(`bench-kafka-produce: ${fmt(total)} flow records per run, broker ${bootstrap}, node ${process.version}`);
  await benchSink(bootstrap, 'protobuf', 'none', Math.min(total, 30_000)); // warm-up (JIT, broker)
  const peer = await benchPeer(bootstrap, total);
  const rows: [string, number][] = [
    ['peer: kafkajs sendBatch/protobuf/none', peer],
    ['sink/protobuf/none', await benchSink(bootstrap, 'protobuf', 'none', total)],
    ['sink/protobuf/gzip', await benchSink(bootstrap, 'protobuf', 'gzip', total)],
    ['sink/json/none', await benchSink(bootstrap, 'json', 'none', total)],
  ];
  for (const [name, rate] of rows) console.log(`  ${name.padEnd(40)} ${fmt(rate).padStart(10)} records/s  ${(rate / peer).toFixed(2)}× peer`);
  console.log(`  peak RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB (now), max ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
} finally {
  stopBroker();
}
