// The producing side against a real broker (scripts/kafka.sh): topics created with the right
// configs, an incompatible existing topic refused, records batched per partition so one pair stays
// on one partition (FlowRecordBatch messages, keyed by their first record's pair),
// headers that describeMessage decodes, `replay --brokers` putting exactly the capture's records on
// the flows topic, a broker stopped for 20 s mid-stream losing and doubling nothing, and a spool
// left by a stopped agent delivered by the next one.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigResourceTypes, Kafka, logLevel } from '../../src/pipeline/kafkajs.js';
import { type Admin, type IHeaders } from 'kafkajs';
import { main } from '../../src/cli/main.js';
import type { FlowRecord } from '../../src/capture/flow-record.js';
import { decodeRecord, describeMessage, readRecords } from '../../src/pipeline/codec.js';
import { decodeFlowMessage, RECORD_COUNT_HEADER } from '../../src/pipeline/codec-batch.js';
import { parseKafkaConfig, type KafkaConfig, type KafkaConfigInput } from '../../src/pipeline/kafka-config.js';
import { KafkaProducerClient, openFlowSink, openPairSink, partitionOfKey } from '../../src/pipeline/kafka-producer.js';
import { ensureTopics, KafkaTopicError, topicNames } from '../../src/pipeline/kafka-topics.js';
import { decodeInventoryMessage } from '../../src/pipeline/inventory-publisher.js';
import { flowPairKey } from '../../src/pipeline/pair-key.js';
import { KAFKA_SCRIPT, KAFKA_START_TIMEOUT_MS, startKafka, topicCount, uniqueKafkaName, type KafkaBroker } from '../helpers/kafka.js';
import { runFile } from '../helpers/exec.js';
import { waitFor } from '../helpers/wait.js';
import { CaptureBuilder, EchoSession, TcpSession, addUdpFlow, type Host } from '../helpers/synth-capture.js';
import { pairWindow, tcpRecord } from '../unit/pipeline/codec.fixture.js';

interface Got {
  key: string;
  value: Buffer | null;
  headers: IHeaders;
  partition: number;
  timestampMs: number;
}

/** Reads a topic from the beginning until `count` messages came. */
async function readTopic(kafka: Kafka, topic: string, count: number, timeoutMs = 60_000): Promise<Got[]> {
  const consumer = kafka.consumer({ groupId: uniqueKafkaName('g'), maxBytes: 64 << 20 });
  const got: Got[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        got.push({
          key: message.key?.toString() ?? '',
          value: message.value,
          headers: message.headers ?? {},
          partition,
          timestampMs: Number(message.timestamp),
        });
      },
    });
    await waitFor(() => got.length >= count, { what: `${count} messages on ${topic} (got ${got.length})`, timeoutMs, intervalMs: 100 });
  } finally {
    await consumer.disconnect();
  }
  return got;
}

function headerText(h: IHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k] = String(v);
  return out;
}

function decodeFlows(got: Got[]): FlowRecord[] {
  return got.flatMap((m) => decodeFlowMessage(headerText(m.headers), m.value!));
}

/** Records on the flows topic (messages may be batches): reads until `count` records came. */
async function readFlowRecords(kafka: Kafka, topic: string, count: number, timeoutMs = 60_000): Promise<{ messages: Got[]; records: FlowRecord[] }> {
  const consumer = kafka.consumer({ groupId: uniqueKafkaName('g'), maxBytes: 64 << 20 });
  const messages: Got[] = [];
  const records: FlowRecord[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        const m = { key: message.key?.toString() ?? '', value: message.value, headers: message.headers ?? {}, partition, timestampMs: Number(message.timestamp) };
        messages.push(m);
        records.push(...decodeFlows([m]));
      },
    });
    await waitFor(() => records.length >= count, { what: `${count} records on ${topic} (got ${records.length})`, timeoutMs, intervalMs: 100 });
  } finally {
    await consumer.disconnect();
  }
  return { messages, records };
}

/** Records in a topic of flow batches: the sum of the messages' record-count headers (every message read). */
async function topicRecordCount(kafka: Kafka, admin: Admin, topic: string): Promise<number> {
  const messages = await topicCount(admin, topic);
  const got = await readTopic(kafka, topic, messages);
  return got.reduce((n, m) => n + Number(headerText(m.headers)[RECORD_COUNT_HEADER] ?? 1), 0);
}

/** A record with its own id and a pair chosen from `pairs` VM pairs, either orientation. */
function record(i: number, pairs = 16): FlowRecord {
  const r = tcpRecord(i + 1);
  const p = i % pairs;
  const a = `10.1.${p}.1`;
  const b = `10.1.${p}.2`;
  r.id = `agent-${i}`;
  r.key = { ...r.key, clientIp: i % 2 ? a : b, serverIp: i % 2 ? b : a };
  return r;
}

function countIds(records: FlowRecord[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of records) m.set(r.id, (m.get(r.id) ?? 0) + 1);
  return m;
}

describe('kafka producer (real broker)', function () {
  this.timeout(KAFKA_START_TIMEOUT_MS + 120_000);
  let broker: KafkaBroker;
  let kafka: Kafka;
  let admin: Admin;
  const tmpDirs: string[] = [];
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'mf-kprod-'));
    tmpDirs.push(d);
    return d;
  };
  const cfgFor = (bootstrap: string, extra: Omit<KafkaConfigInput, 'brokers'> = {}): KafkaConfig =>
    parseKafkaConfig({ brokers: bootstrap, topicPrefix: `${uniqueKafkaName('p')}.`, lingerMs: 5, ...extra });

  before(async () => {
    broker = await startKafka();
    kafka = new Kafka({ clientId: 'mf-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
  });

  after(async () => {
    await admin?.disconnect();
    await broker?.stop();
    for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
  });

  it('creates the topics with their partitions and configs, and accepts them the second time', async () => {
    const cfg = cfgFor(broker.bootstrap);
    const first = await ensureTopics(admin, cfg);
    const names = topicNames(cfg.topicPrefix);
    expect(first.created.sort()).to.deep.equal(Object.values(names).sort());
    const meta = await admin.fetchTopicMetadata({ topics: Object.values(names) });
    const parts = Object.fromEntries(meta.topics.map((t) => [t.name, t.partitions.length]));
    expect(parts).to.deep.equal({ [names.flows]: 12, [names.pairs]: 6, [names.alerts]: 3, [names.inventory]: 1 });
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: Object.values(names).map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ['cleanup.policy', 'retention.ms'] })),
    });
    const conf = (topic: string, name: string) =>
      described.resources.find((r) => r.resourceName === topic)!.configEntries.find((e) => e.configName === name)!.configValue;
    expect(conf(names.inventory, 'cleanup.policy')).to.equal('compact');
    expect(conf(names.flows, 'cleanup.policy')).to.equal('delete');
    expect(conf(names.flows, 'retention.ms')).to.equal('86400000');
    expect(conf(names.pairs, 'retention.ms')).to.equal(String(30 * 86_400_000));
    const second = await ensureTopics(admin, cfg);
    expect(second.created).to.deep.equal([]);
    expect(second.existing).to.have.length(4);
  });

  it('refuses an existing topic with an incompatible config, naming topic and setting', async () => {
    const cfg = cfgFor(broker.bootstrap);
    const names = topicNames(cfg.topicPrefix);
    await admin.createTopics({
      waitForLeaders: false,
      topics: [
        { topic: names.inventory, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'delete' }] },
        { topic: names.flows, numPartitions: 2, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
      ],
    });
    await waitFor(async () => (await admin.listTopics()).includes(names.flows) && (await admin.listTopics()).includes(names.inventory), { what: 'the test topics' });
    let err: unknown;
    try {
      await ensureTopics(admin, cfg);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(KafkaTopicError);
    const msg = (err as Error).message;
    expect(msg).to.match(/^kafka: existing topic has an incompatible config \(/);
    expect(msg).to.contain(`topic=${names.inventory}: cleanup.policy=delete (expected compact`);
    expect(msg).to.contain(`topic=${names.flows}: cleanup.policy=compact (expected delete`);
    expect(msg).to.not.contain('\n');
  });

  it('keys records by the unordered pair (one pair, one partition), headers decode, timestamp = send time', async () => {
    const cfg = cfgFor(broker.bootstrap);
    const client = await KafkaProducerClient.create(cfg);
    await client.ensureTopics(['flows', 'pairs']);
    const flows = openFlowSink(client);
    const pairs = openPairSink(client);
    const n = 2000;
    const sentAtMs = Date.now();
    try {
      for (let i = 0; i < n; i++) flows.write(record(i));
      pairs.write(pairWindow(1));
      await flows.close();
      await pairs.close();
    } finally {
      await client.disconnect();
    }
    expect(flows.metrics()).to.include({ sent: n, dropped: 0, spooled: 0 });
    const names = topicNames(cfg.topicPrefix);
    const { messages: got, records: recs } = await readFlowRecords(kafka, names.flows, n);
    expect(await topicRecordCount(kafka, admin, names.flows)).to.equal(n);
    // batched: far fewer messages than records
    expect(got.length).to.be.lessThan(n / 10);
    expect([...countIds(recs).values()].every((c) => c === 1)).to.equal(true);
    expect(countIds(recs).size).to.equal(n);
    const partitionsOfPair = new Map<string, Set<number>>();
    for (const m of got) {
      const inside = decodeFlows([m]);
      // a batch is keyed by its first record's pair; every record in it maps to its partition,
      // exactly as a single keyed record would (kafkajs' default partitioner)
      expect(m.key).to.equal(flowPairKey(inside[0]!));
      for (const r of inside) {
        const key = flowPairKey(r);
        expect(partitionOfKey(key, 12)).to.equal(m.partition);
        (partitionsOfPair.get(key) ?? partitionsOfPair.set(key, new Set()).get(key)!).add(m.partition);
      }
      // event time is 2023; the record's Kafka timestamp is when we sent it
      expect(m.timestampMs).to.be.within(sentAtMs - 1000, Date.now() + 1000);
      expect(headerText(m.headers)[RECORD_COUNT_HEADER]).to.equal(String(inside.length));
    }
    expect(partitionsOfPair.size).to.equal(16);
    for (const [, ps] of partitionsOfPair) expect(ps.size).to.equal(1);
    // 16 keys over 12 partitions: more than one partition is used
    expect(new Set(got.map((m) => m.partition)).size).to.be.greaterThan(1);
    const h = headerText(got[0]!.headers);
    expect(h).to.include({ 'content-type': 'application/x-protobuf', 'mirrorflow-schema': 'mirrorflow.v1.FlowRecordBatch', 'mirrorflow-schema-version': '2', 'mirrorflow-kind': 'flow-record-batch' });
    const pw = await readTopic(kafka, names.pairs, 1);
    const d = describeMessage(headerText(pw[0]!.headers));
    expect(d.kind).to.equal('pair-window');
    expect(decodeRecord('pair-window', pw[0]!.value!, d.format)).to.deep.equal(pairWindow(1));
    expect(pw[0]!.key).to.equal('vm-0a1b|vm-ff02');
  });

  it('replay --brokers puts exactly the capture\'s flow records on the flows topic, and the inventory', async () => {
    const dir = tmp();
    const A: Host = { mac: '52:54:00:00:00:0a', ip: '10.0.0.10' };
    const B: Host = { mac: '52:54:00:00:00:0b', ip: '10.0.0.11' };
    const C: Host = { mac: '52:54:00:00:00:0c', ip: '10.0.0.12' };
    const inventory = [
      { vm: 'vm-a', mac: A.mac, ips: [A.ip] },
      { vm: 'vm-b', mac: B.mac, ips: [B.ip] },
      { vm: 'vm-c', mac: C.mac, ips: [C.ip] },
    ];
    const cap = new CaptureBuilder({ startUs: 1_700_000_000_000_000, inventory });
    for (let i = 0; i < 40; i++) {
      const s = new TcpSession(cap, i % 2 ? A : C, B, { sport: 40000 + i, dport: 80 });
      let t = s.handshake(i * 500_000, 300, 60);
      t = s.request(t + 200, 100, 1200);
      s.close(t + 500);
      s.done();
    }
    const e = new EchoSession(cap, A, C, 7);
    for (let i = 0; i < 10; i++) e.ping(i * 1_000_000, i, 250);
    e.done();
    addUdpFlow(cap, A, C, 5000, 53, [
      [0, 'c2s', 60],
      [1000, 's2c', 120],
    ]);
    writeFileSync(join(dir, 'c.pcap'), cap.pcap());
    writeFileSync(join(dir, 'inventory.json'), JSON.stringify(inventory));
    const prefix = `${uniqueKafkaName('replay')}.`;
    const err: string[] = [];
    const code = await main(
      ['replay', '--pcap', join(dir, 'c.pcap'), '--inventory', join(dir, 'inventory.json'), '--flows-out', join(dir, 'flows.json'), '--agent-id', 'hv-1', '--window', '10', '--brokers', broker.bootstrap, '--topic-prefix', prefix],
      { out: () => undefined, err: (l) => err.push(l), env: {}, signal: new AbortController().signal },
    );
    expect(code, err.join('\n')).to.equal(0);
    const expected: FlowRecord[] = [];
    for await (const r of readRecords(join(dir, 'flows.json'), 'flow-record', 'json')) expected.push(r);
    expect(expected.length).to.be.greaterThan(40);
    const names = topicNames(prefix);
    expect(await topicRecordCount(kafka, admin, names.flows)).to.equal(expected.length);
    const { messages: got, records: recs } = await readFlowRecords(kafka, names.flows, expected.length);
    expect(recs.map((r) => r.id).sort()).to.deep.equal(expected.map((r) => r.id).sort());
    // the same records, not just the same ids
    const byId = new Map(recs.map((r) => [r.id, r]));
    for (const r of expected) expect(byId.get(r.id)).to.deep.equal(r);
    // keyed by VM pair through the inventory (a batch by its first record's pair; every record's pair maps to its partition)
    expect(new Set(recs.map((r) => flowPairKey(r, { nameFromText: (mac) => inventory.find((v) => v.mac === mac)?.vm ?? '?' })))).to.deep.equal(new Set(['vm-b|vm-c', 'vm-a|vm-b', 'vm-a|vm-c']));
    for (const m of got) expect(['vm-b|vm-c', 'vm-a|vm-b', 'vm-a|vm-c']).to.include(m.key);
    expect(err.join('\n')).to.contain(`kafka topic=${names.flows} sent=${expected.length}`);
    const inv = await readTopic(kafka, names.inventory, 3);
    const decoded = inv.map((m) => decodeInventoryMessage(m.key, m.value));
    expect(decoded.map((d) => d.vm).sort()).to.deep.equal(['vm-a', 'vm-b', 'vm-c']);
    expect(decoded.every((d) => d.agentId === 'hv-1' && d.inventory!.interfaces[0]!.mac !== undefined)).to.equal(true);
  });

  it('a spool left by a stopped agent is delivered by the next one, exactly', async () => {
    const spoolDir = tmp();
    const prefix = `${uniqueKafkaName('spool')}.`;
    // first agent: the broker is unreachable; close() gives up and spools everything
    const down = await KafkaProducerClient.create(parseKafkaConfig({ brokers: '127.0.0.1:1', topicPrefix: prefix, spoolDir, closeTimeoutMs: 300, connectionTimeoutMs: 200 }));
    const sinkA = openFlowSink(down, { outageAfterMs: 100 });
    const n = 3000;
    for (let i = 0; i < n; i++) sinkA.write(record(i));
    await sinkA.close();
    await down.disconnect();
    const mA = sinkA.metrics();
    expect(mA.sent).to.equal(0);
    expect(mA.spoolPending).to.equal(n);
    // second agent: same spool dir, broker reachable
    const cfg = parseKafkaConfig({ brokers: broker.bootstrap, topicPrefix: prefix, spoolDir, lingerMs: 5 });
    const up = await KafkaProducerClient.create(cfg);
    await up.ensureTopics(['flows']);
    const sinkB = openFlowSink(up);
    try {
      expect(await sinkB.sink.flush(60_000)).to.equal(true);
      await sinkB.close();
    } finally {
      await up.disconnect();
    }
    expect(sinkB.metrics()).to.include({ sent: n, spoolPending: 0, dropped: 0 });
    const names = topicNames(prefix);
    expect(await topicRecordCount(kafka, admin, names.flows)).to.equal(n);
    const { records: recs } = await readFlowRecords(kafka, names.flows, n);
    const counts = countIds(recs);
    expect(counts.size).to.equal(n);
    expect([...counts.values()].every((c) => c === 1)).to.equal(true);
  });
});

describe('kafka producer: broker stopped for 20 s mid-stream (private broker)', function () {
  this.timeout(KAFKA_START_TIMEOUT_MS * 2 + 120_000);
  let broker: KafkaBroker | undefined;
  const dirs: string[] = [];

  after(async () => {
    await broker?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('delivers every record exactly once (idempotent producer, memory, spool)', async () => {
    broker = await startKafka({ shared: false });
    const b = broker;
    const spoolDir = mkdtempSync(join(tmpdir(), 'mf-kprod-spool-'));
    dirs.push(spoolDir);
    const cfg = parseKafkaConfig({
      brokers: b.bootstrap,
      topicPrefix: `${uniqueKafkaName('outage')}.`,
      spoolDir,
      lingerMs: 5,
      batchBytes: 16 * 1024,
      memoryLimitBytes: 64 * 1024,
      connectionTimeoutMs: 500,
      requestTimeoutMs: 5000,
      closeTimeoutMs: 120_000,
    });
    const client = await KafkaProducerClient.create(cfg);
    await client.ensureTopics(['flows']);
    const sink = openFlowSink(client, { outageAfterMs: 500 });
    let written = 0;
    const rateHz = 1000;
    const started = Date.now();
    // a steady stream, as a live capture produces it (it does not wait for the broker)
    const writeUntil = async (untilMs: number) => {
      while (Date.now() < untilMs) {
        const due = Math.floor(((Date.now() - started) * rateHz) / 1000);
        while (written < due) sink.write(record(written++, 64));
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await writeUntil(Date.now() + 3000);
    expect(sink.metrics().sent).to.be.greaterThan(0);
    // stop the broker (SIGTERM to its JVM), keep writing 20 s, start it again on the same dir and ports
    process.kill(b.pid, 'SIGTERM');
    const stoppedAt = Date.now();
    await waitFor(
      async () => {
        try {
          process.kill(b.pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      { what: 'the broker JVM to exit', timeoutMs: 60_000, intervalMs: 100 },
    );
    await writeUntil(stoppedAt + 20_000);
    const during = sink.metrics();
    expect(during.outage).to.equal(true);
    expect(during.spooled).to.be.greaterThan(0);
    const { stdout } = await runFile('bash', [KAFKA_SCRIPT, 'start', b.dir], { timeoutMs: KAFKA_START_TIMEOUT_MS });
    expect(stdout.trim().split('\n').pop()).to.equal(b.bootstrap);
    await writeUntil(Date.now() + 3000);
    await sink.close();
    await client.disconnect();
    const m = sink.metrics();
    expect(m.dropped).to.equal(0);
    expect(m.sent).to.equal(written);
    expect(m.retried).to.be.greaterThan(0);
    const kafka = new Kafka({ clientId: 'mf-test', brokers: [b.bootstrap], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      expect(await topicRecordCount(kafka, admin, `${cfg.topicPrefix}flows`)).to.equal(written);
    } finally {
      await admin.disconnect();
    }
    const { records: recs } = await readFlowRecords(kafka, `${cfg.topicPrefix}flows`, written, 120_000);
    const counts = countIds(recs);
    expect(counts.size).to.equal(written);
    expect([...counts.entries()].filter(([, c]) => c !== 1)).to.deep.equal([]);
  });
});
