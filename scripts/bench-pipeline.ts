/**
 * Records per second aggregated by ONE pipeline process (src/pipeline/kafka-pipeline.ts) from a real
 * broker (scripts/kafka.sh, a private one), against its peer measured in the same run: the same
 * decode + aggregate work in-process without Kafka (PipelineCore over the encoded messages).
 *
 *   node --import tsx scripts/bench-pipeline.ts [--records N] [--partitions P] [--pairs N]
 *
 * Prints: produce rate (setup), in-process decode+aggregate rate, pipeline rate (first message to
 * last record aggregated, consume + decode + aggregate + transactions), ratio, peak RSS.
 * The topic holds one FlowRecord per message (what agents wrote before batching); the batched path
 * the agent uses now is measured by scripts/bench-kafka.ts.
 */
import { parseArgs } from 'node:util';
import { Kafka, logLevel, Partitioners } from '../src/pipeline/kafkajs.js';
import { decodeRecord, describeMessage, encodeRecord, schemaHeaders } from '../src/pipeline/codec.js';
import { KafkaPipeline } from '../src/pipeline/kafka-pipeline.js';
import { PipelineCore } from '../src/pipeline/pipeline-core.js';
import { startKafka, uniqueKafkaName } from '../test/helpers/kafka.js';
import { flowKey, synthRecords } from '../test/helpers/synth-pipeline.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '400000' },
    partitions: { type: 'string', default: '6' },
    pairs: { type: 'string', default: '2000' },
  },
});
const N = Number(values.records);
const PARTITIONS = Number(values.partitions);
const WINDOW_US = 10_000_000;

let peakRss = 0;
const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  console.error(`generating ${fmt(N)} records...`);
  // generated in slices and kept only encoded (as on the wire): the records themselves would make
  // the heap of this process, and its garbage collection, dominate what is measured
  const headers = schemaHeaders('flow-record', 'protobuf');
  const messages: { key: string; value: Buffer; headers: Record<string, string> }[] = [];
  const SLICE = 50_000;
  const spanUs = 20 * WINDOW_US;
  for (let i = 0; i < N; i += SLICE) {
    const n = Math.min(SLICE, N - i);
    const slice = synthRecords({ records: n, pairs: Number(values.pairs), spanUs: (spanUs * n) / N, t0Us: 1_700_000_000_000_000 + (spanUs * i) / N, firstSequence: i + 1, seed: 5 + i });
    for (const r of slice) messages.push({ key: flowKey(r), value: encodeRecord('flow-record', r, 'protobuf'), headers });
  }
  const bytes = messages.reduce((s, m) => s + m.value.length, 0);

  // peer: decode + aggregate in-process (what the pipeline does per message, without Kafka)
  let peerRate: number;
  {
    const core = new PipelineCore({ windowUs: WINDOW_US });
    for (let p = 0; p < PARTITIONS; p++) core.assign(p, 0);
    const t0 = process.hrtime.bigint();
    let i = 0;
    for (const m of messages) {
      const d = describeMessage(m.headers);
      core.addRecord(i % PARTITIONS, i++, decodeRecord('flow-record', m.value, d.format), 0);
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`in-process decode+aggregate: ${fmt(N / s)} records/s (${s.toFixed(2)} s)`);
    peerRate = N / s;
  }

  const broker = await startKafka({ shared: false });
  try {
    const kafka = new Kafka({ clientId: 'mirrorflow-bench', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const prefix = `${uniqueKafkaName('bench')}.`;
    const flows = `${prefix}flows`;
    const pairs = `${prefix}pairs`;
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: flows, numPartitions: PARTITIONS }, { topic: pairs, numPartitions: 3 }] });

    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    let t0 = process.hrtime.bigint();
    const CHUNK = 10_000;
    for (let i = 0; i < messages.length; i += CHUNK) await producer.send({ topic: flows, acks: -1, messages: messages.slice(i, i + CHUNK) });
    let s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`produce (setup, kafkajs, uncompressed): ${fmt(N / s)} records/s, ${(bytes / s / 1e6).toFixed(1)} MB/s`);
    await producer.disconnect();

    const pipeline = new KafkaPipeline({ kafka, flowsTopic: flows, pairsTopic: pairs, groupId: uniqueKafkaName('bench-group'), windowUs: WINDOW_US, idleTimeoutMs: 1000 });
    t0 = process.hrtime.bigint();
    let first = 0n;
    await pipeline.start();
    const deadline = Date.now() + 600_000;
    while (pipeline.stats.records + pipeline.stats.emptyRecords < N) {
      if (!first && pipeline.stats.messages > 0) first = process.hrtime.bigint();
      if (Date.now() > deadline) throw new Error(`bench: pipeline did not finish (stats=${JSON.stringify(pipeline.stats)})`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const end = process.hrtime.bigint();
    s = Number(end - (first || t0)) / 1e9;
    const st = pipeline.stats;
    console.log(
      `pipeline (1 process, ${PARTITIONS} partitions, read_committed, transactions): ${fmt(N / s)} records/s (${s.toFixed(2)} s from the first message; ` +
        `${(Number(end - t0) / 1e9).toFixed(2)} s with the group join), ${st.transactions} transactions, ${st.pairsProduced} pair windows so far`,
    );
    console.log(`ratio pipeline / in-process: ${(N / s / peerRate).toFixed(2)}`);
    await pipeline.stop();
    await admin.disconnect();
  } finally {
    await broker.stop();
  }
  clearInterval(rssTimer);
  console.log(`peak RSS: ${(peakRss / 2 ** 20).toFixed(0)} MiB (bench process: records, encoded messages, pipeline)`);
}

await main();
