// The pipeline against a real Kafka broker (scripts/kafka.sh): exactly-once aggregation of flow
// records into PairWindows, through restarts after SIGKILL and a dead group member, and skipping
// garbage. The truth is the embedded aggregation (PairWindowAggregator in-process) of the same records.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, Partitioners } from '../../src/pipeline/kafkajs.js';
import { type Admin, type Producer } from 'kafkajs';
import type { FlowRecord, PairWindow } from '../../src/capture/flow-record.js';
import { encodeRecord, schemaHeaders, SCHEMA_VERSION_HEADER } from '../../src/pipeline/codec.js';
import { InventoryPublisher, inventoryFromFile } from '../../src/pipeline/inventory-publisher.js';
import { InventoryReader } from '../../src/pipeline/inventory-reader.js';
import { parseKafkaConfig } from '../../src/pipeline/kafka-config.js';
import { KafkaPipeline } from '../../src/pipeline/kafka-pipeline.js';
import { KafkaProducerClient, openFlowSink } from '../../src/pipeline/kafka-producer.js';
import { encodeFlowBatch, flowBatchHeaders } from '../../src/pipeline/codec-batch.js';
import { ensureTopics } from '../../src/pipeline/kafka-topics.js';
import { KAFKA_START_TIMEOUT_MS, readCommitted, startKafka, uniqueKafkaName, type KafkaBroker } from '../helpers/kafka.js';
import { byPairWindow, embeddedPairs, flowKey, pairIps, pairWindowKeys, rng, synthRecords } from '../helpers/synth-pipeline.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = join(ROOT, 'test/helpers/pipeline-child.ts');
const W_US = 1_000_000;
const LATENESS = ['--allowed-lateness', '0.5'];

interface Topics {
  prefix: string;
  flows: string;
  pairs: string;
  group: string;
}

function flowMessage(r: FlowRecord) {
  return { key: flowKey(r), value: encodeRecord('flow-record', r, 'protobuf'), headers: schemaHeaders('flow-record', 'protobuf') };
}

describe('kafka pipeline (real broker)', function () {
  this.timeout(KAFKA_START_TIMEOUT_MS + 240_000);

  let broker: KafkaBroker | undefined;
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;
  const children = new Set<ChildProcess>();
  let tmp: string;

  before(async () => {
    broker = await startKafka();
    kafka = new Kafka({ clientId: 'mirrorflow-pipeline-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    tmp = await mkdtemp(join(tmpdir(), 'mf-pipeline-test.'));
  });

  afterEach(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    children.clear();
  });

  after(async () => {
    await producer?.disconnect();
    await admin?.disconnect();
    await broker?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  async function makeTopics(base: string, flowsPartitions = 4, pairsPartitions = 2): Promise<Topics> {
    const prefix = `${uniqueKafkaName(base)}.`;
    const t = { prefix, flows: `${prefix}flows`, pairs: `${prefix}pairs`, group: uniqueKafkaName(`${base}-group`) };
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: t.flows, numPartitions: flowsPartitions },
        { topic: t.pairs, numPartitions: pairsPartitions },
      ],
    });
    return t;
  }

  async function produce(topic: string, records: FlowRecord[], chunk = 2000): Promise<void> {
    for (let i = 0; i < records.length; i += chunk) {
      await producer.send({ topic, acks: -1, messages: records.slice(i, i + chunk).map(flowMessage) });
    }
  }

  /** The group committed every partition of the flows topic up to its end: all windows emitted and committed. */
  async function settled(t: Topics): Promise<boolean> {
    const ends = await admin.fetchTopicOffsets(t.flows);
    const [committed] = await admin.fetchOffsets({ groupId: t.group, topics: [t.flows] });
    return ends.every((e) => {
      const c = committed?.partitions.find((p) => p.partition === e.partition);
      return c !== undefined && Number(c.offset) === Number(e.high);
    });
  }

  /** Everything committed on the pairs topic (read_committed). */
  async function readPairs(t: Topics): Promise<PairWindow[]> {
    return (await readCommitted(kafka, t.pairs, 'pair-window')).map((x) => x.value);
  }

  /**
   * The embedded truth has no trend: the pipeline's windows carry one (its model restarts with a
   * restored partition, so it is not compared, only required).
   */
  function withoutTrend(ws: PairWindow[]): PairWindow[] {
    return ws.map((w) => {
      expect(w.trend, `trend of ${w.a}|${w.b} ${w.windowStartUs}`).to.not.equal(undefined);
      const { trend: _trend, ...rest } = w;
      return rest;
    });
  }

  function expectSamePairs(gotWithTrend: PairWindow[], expected: PairWindow[]): void {
    const got = withoutTrend(gotWithTrend);
    expect(expected.length).to.be.greaterThan(50);
    const gotKeys = pairWindowKeys(got);
    const dups = gotKeys.filter((k, i) => i > 0 && gotKeys[i - 1] === k);
    expect(dups, 'doubled (pair, window)s').to.deep.equal([]);
    expect(gotKeys).to.deep.equal(pairWindowKeys(expected));
    expect(byPairWindow(got)).to.deep.equal(byPairWindow(expected));
  }

  function startChild(t: Topics, name: string, extra: string[] = []): { child: ChildProcess; log: () => string } {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CHILD, '--config', join(tmp, `${t.group}.json`), '--brokers', broker!.bootstrap, '--topic-prefix', t.prefix, '--group', t.group, '--window', '1', '--idle-timeout', '3', ...extra],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MIRRORFLOW_LOG_LEVEL: 'info' } },
    );
    children.add(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    return { child, log: () => `--- ${name} ---\n${out.slice(-4000)}` };
  }

  async function writeChildConfig(t: Topics): Promise<void> {
    // a dead member leaves the group after 6 s (the broker's minimum); its open transaction is aborted after 10 s
    await writeFile(join(tmp, `${t.group}.json`), JSON.stringify({ kafka: { partitions: { flows: 4, pairs: 2 } }, pipeline: { sessionTimeoutMs: 6000, transactionTimeoutMs: 10_000 } }));
  }

  const killed = (c: ChildProcess) => new Promise<void>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve())));

  /** Producing in the background, chunk by chunk, as a capture would; `progress` counts records sent. */
  function produceContinuously(topic: string, records: FlowRecord[], chunk: number): { progress: () => number; done: Promise<void> } {
    let sent = 0;
    const done = (async () => {
      for (let i = 0; i < records.length; i += chunk) {
        await producer.send({ topic, acks: -1, messages: records.slice(i, i + chunk).map(flowMessage) });
        sent = Math.min(records.length, i + chunk);
      }
    })();
    return { progress: () => sent, done };
  }

  for (const threads of [0, 2]) {
    it(`aggregates records from several partitions into the same pairs as the embedded run (${threads ? `${threads} worker threads` : 'main thread'})`, async () => {
      const t = await makeTopics(`agg${threads}`);
      const records = synthRecords({ records: 20_000, pairs: 40, spanUs: 20 * W_US, seed: 21 });
      await produce(t.flows, records);
      const pipeline = new KafkaPipeline({ kafka, flowsTopic: t.flows, pairsTopic: t.pairs, groupId: t.group, windowUs: W_US, idleTimeoutMs: 1500, threads });
      await pipeline.start();
      try {
        await waitFor(() => settled(t), { what: 'the pipeline to commit every partition to its end', timeoutMs: 60_000, intervalMs: 200 });
        const s = pipeline.stats;
        expect(s.messages).to.equal(records.length);
        expect(s.records + s.emptyRecords).to.equal(records.length);
        expect(s.lateRecords).to.equal(0);
        expect(s.assignedPartitions).to.deep.equal([0, 1, 2, 3]);
      } finally {
        await pipeline.stop();
      }
      const expected = embeddedPairs(records, W_US);
      const got = await readPairs(t);
      expectSamePairs(got, expected);
      // ids are deterministic: the group, the window, the pair
      expect(got[0]!.id).to.equal(`${t.group}-${got[0]!.windowStartUs}-${got[0]!.a}|${got[0]!.b}`);
    });
  }

  it('a pipeline SIGKILLed mid-stream and restarted: every (pair, window) exactly once, same totals', async () => {
    const t = await makeTopics('kill');
    await writeChildConfig(t);
    // out of order within the allowed lateness: a restart re-reads records of windows already emitted
    const records = synthRecords({ records: 60_000, pairs: 30, spanUs: 30 * W_US, jitterUs: 300_000, seed: 22 });
    // the killed process aggregates in its main thread, its successor in worker threads (the
    // next test the other way round)
    const first = startChild(t, 'first', [...LATENESS, '--threads', '0']);
    const feed = produceContinuously(t.flows, records, 1000);
    const rand = rng(Date.now() % 1_000_000);
    const killAt = Math.floor(records.length * (0.2 + 0.5 * rand()));
    try {
      await waitFor(() => feed.progress() >= killAt, { what: `${killAt} records produced`, timeoutMs: 60_000, intervalMs: 20 });
      // let it get somewhere first: some windows committed
      await waitFor(async () => (await admin.fetchTopicOffsets(t.pairs)).some((p) => Number(p.high) > 0), { what: 'first pair windows', timeoutMs: 60_000, intervalMs: 50 });
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${first.log()}`);
    }
    first.child.kill('SIGKILL');
    await killed(first.child);
    const second = startChild(t, 'second', [...LATENESS, '--threads', '2']);
    await feed.done;
    try {
      await waitFor(() => settled(t), { what: 'the restarted pipeline to commit everything', timeoutMs: 120_000, intervalMs: 250 });
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${first.log()}\n${second.log()}`);
    }
    second.child.kill('SIGTERM');
    await killed(second.child);
    expect(second.log()).to.match(/pipeline: \d+ messages, \d+ records aggregated, 0 skipped, 0 late/);
    expectSamePairs(await readPairs(t), embeddedPairs(records, W_US, 500_000));
  });

  it('two pipelines in one group, one SIGKILLed: the survivor takes over its partitions, totals exact', async () => {
    const t = await makeTopics('pair');
    await writeChildConfig(t);
    const records = synthRecords({ records: 60_000, pairs: 30, spanUs: 30 * W_US, jitterUs: 300_000, seed: 23 });
    const a = startChild(t, 'a', [...LATENESS, '--threads', '0']);
    const b = startChild(t, 'b', [...LATENESS, '--threads', '2']);
    const feed = produceContinuously(t.flows, records, 1000);
    try {
      // both members hold partitions and have committed some
      await waitFor(() => /"partitions":\[\d+(,\d+)?\][^\n]*partitions assigned/.test(a.log()) && /"partitions":\[\d+(,\d+)?\][^\n]*partitions assigned/.test(b.log()), {
        what: 'both members to hold partitions',
        timeoutMs: 60_000,
        intervalMs: 100,
      });
      await waitFor(() => feed.progress() >= records.length / 3, { what: 'a third of the records produced', timeoutMs: 60_000, intervalMs: 20 });
      await waitFor(async () => (await admin.fetchTopicOffsets(t.pairs)).some((p) => Number(p.high) > 0), { what: 'first pair windows', timeoutMs: 60_000, intervalMs: 50 });
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${a.log()}\n${b.log()}`);
    }
    b.child.kill('SIGKILL');
    await killed(b.child);
    await feed.done;
    try {
      await waitFor(() => settled(t), { what: 'the survivor to commit every partition', timeoutMs: 120_000, intervalMs: 250 });
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${a.log()}\n${b.log()}`);
    }
    expect(a.log()).to.match(/"partitions":\[0,1,2,3\][^\n]*partitions assigned/);
    a.child.kill('SIGTERM');
    await killed(a.child);
    expectSamePairs(await readPairs(t), embeddedPairs(records, W_US, 500_000));
  });

  it('skips and counts garbage and wrong-schema messages, and keeps running', async () => {
    const t = await makeTopics('garbage', 2, 1);
    const records = synthRecords({ records: 6000, pairs: 12, spanUs: 8 * W_US, seed: 24 });
    const flowHeaders = schemaHeaders('flow-record', 'protobuf');
    const bad = [
      { key: 'x', value: Buffer.from('not a protobuf at all \xff\xfe', 'latin1'), headers: flowHeaders }, // undecodable
      { key: 'x', value: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), headers: flowHeaders }, // truncated
      { key: 'x', value: Buffer.from('{}'), headers: {} }, // no schema headers
      { key: 'x', value: encodeRecord('pair-window', embeddedPairs(records.slice(0, 50), W_US)[0]!, 'protobuf'), headers: schemaHeaders('pair-window', 'protobuf') }, // wrong schema
      { key: 'x', value: encodeRecord('flow-record', records[0]!, 'protobuf'), headers: { ...flowHeaders, [SCHEMA_VERSION_HEADER]: '999' } }, // unsupported version
      { key: 'x', value: encodeRecord('flow-record', records[0]!, 'protobuf'), headers: { ...flowHeaders, 'content-type': 'application/x-nope' } }, // unknown content type
      { key: 'x', value: null, headers: flowHeaders }, // no value
    ];
    // garbage first, then the records with garbage in between, then garbage last
    await producer.send({ topic: t.flows, acks: -1, messages: bad });
    await produce(t.flows, records.slice(0, 3000));
    await producer.send({ topic: t.flows, acks: -1, messages: bad.map((m) => ({ ...m, key: flowKey(records[0]!) })) });
    await produce(t.flows, records.slice(3000));
    await producer.send({ topic: t.flows, acks: -1, messages: bad });
    const pipeline = new KafkaPipeline({ kafka, flowsTopic: t.flows, pairsTopic: t.pairs, groupId: t.group, windowUs: W_US, idleTimeoutMs: 1500, format: 'json' });
    await pipeline.start();
    try {
      await waitFor(() => settled(t), { what: 'the pipeline to commit past the garbage', timeoutMs: 60_000, intervalMs: 200 });
      const s = pipeline.stats;
      expect(s.skipped).to.deep.equal({ 'no-value': 3, 'unknown-schema': 3, 'unknown-content-type': 3, 'unsupported-version': 3, 'wrong-schema': 3, undecodable: 6 });
      expect(s.skippedMessages).to.equal(bad.length * 3);
      expect(s.messages).to.equal(records.length + bad.length * 3);
    } finally {
      await pipeline.stop();
    }
    const got = await readPairs(t);
    expectSamePairs(got, embeddedPairs(records, W_US));
  });

  it('reads FlowRecordBatch messages of the flow sink; a corrupt batch is skipped and counted, a bad record alone, progress kept', async () => {
    const t = await makeTopics('batch', 3, 1);
    const records = synthRecords({ records: 20_000, pairs: 25, spanUs: 10 * W_US, seed: 27 });
    const cfg = parseKafkaConfig({ brokers: broker!.bootstrap, topicPrefix: t.prefix, lingerMs: 5 });
    const client = await KafkaProducerClient.create(cfg);
    await client.ensureTopics(['flows']);
    const write = async (rs: FlowRecord[]) => {
      const sink = openFlowSink(client, { batch: { maxRecords: 700 } });
      for (const r of rs) sink.write(r);
      await sink.close();
      expect(sink.metrics()).to.include({ sent: rs.length, dropped: 0 });
    };
    try {
      await write(records.slice(0, 10_000));
      // a batch whose framing is broken (cut short), one whose count header lies, one with a bad record inside
      const whole = encodeFlowBatch(records.slice(0, 3), 'protobuf');
      const good = encodeRecord('flow-record', records[0]!, 'protobuf');
      const badRecord = Buffer.from(good);
      badRecord[2 + badRecord[1]! + 1] = 99; // schema_version 99
      const frame = (b: Buffer) => Buffer.concat([Buffer.from([0x0a, (b.length & 127) | 128, b.length >> 7]), b]);
      await producer.send({
        topic: t.flows,
        acks: -1,
        messages: [0, 1, 2].flatMap((partition) => [
          { partition, key: 'x', value: whole.subarray(0, whole.length - 5), headers: flowBatchHeaders('protobuf', 3) },
          { partition, key: 'x', value: whole, headers: flowBatchHeaders('protobuf', 4) },
          { partition, key: 'x', value: Buffer.concat([frame(badRecord)]), headers: flowBatchHeaders('protobuf', 1) },
        ]),
      });
      await write(records.slice(10_000));
    } finally {
      await client.disconnect();
    }
    const pipeline = new KafkaPipeline({ kafka, flowsTopic: t.flows, pairsTopic: t.pairs, groupId: t.group, windowUs: W_US, idleTimeoutMs: 1500 });
    await pipeline.start();
    try {
      await waitFor(() => settled(t), { what: 'the pipeline to commit every partition to its end', timeoutMs: 60_000, intervalMs: 200 });
      const s = pipeline.stats;
      expect(s.skipped.undecodable).to.equal(9);
      expect(s.flowRecords).to.equal(records.length + 3);
      expect(s.batchMessages).to.be.greaterThan(10).and.lessThan(records.length / 100);
      expect(s.records + s.emptyRecords).to.equal(records.length);
      expect(s.lateRecords).to.equal(0);
    } finally {
      await pipeline.stop();
    }
    expectSamePairs(await readPairs(t), embeddedPairs(records, W_US));
  });

  it('names endpoints after the VMs of the inventory topic (published by InventoryPublisher, read whole, then followed)', async () => {
    const t = await makeTopics('inv', 2, 1);
    const cfg = parseKafkaConfig({ brokers: broker!.bootstrap, topicPrefix: t.prefix, lingerMs: 5 });
    await ensureTopics(admin, cfg, ['inventory']);
    const inventoryTopic = `${t.prefix}inventory`;
    // pairs 0..5 of the synthetic records; pairs 0..3 are VMs on two agents, a MAC-only entry is ignored by IP lookups
    const client = await KafkaProducerClient.create(cfg);
    const hvA = new InventoryPublisher(client, 'hv-a');
    const hvB = new InventoryPublisher(client, 'hv-b');
    try {
      hvA.publish(inventoryFromFile([0, 1].flatMap((p) => pairIps(p).map((ip, side) => ({ vm: `vm-${p}${side ? 'b' : 'a'}`, ips: [ip] })))));
      hvB.publish(inventoryFromFile([2, 3].flatMap((p) => pairIps(p).map((ip, side) => ({ vm: `vm-${p}${side ? 'b' : 'a'}`, ips: [ip] })))));
      hvB.publish(inventoryFromFile([2].flatMap((p) => pairIps(p).map((ip, side) => ({ vm: `vm-${p}${side ? 'b' : 'a'}`, ips: [ip] }))))); // pair 3's VMs gone: tombstones
      expect(await hvA.flush(30_000)).to.equal(true);
      expect(await hvB.flush(30_000)).to.equal(true);
    } finally {
      await hvA.close();
      await hvB.close();
      await client.disconnect();
    }
    const records = synthRecords({ records: 3000, pairs: 6, spanUs: 6 * W_US, seed: 25 });
    await produce(t.flows, records);
    const pipeline = new KafkaPipeline({ kafka, flowsTopic: t.flows, pairsTopic: t.pairs, inventoryTopic, groupId: t.group, windowUs: W_US, idleTimeoutMs: 1500 });
    await pipeline.start();
    try {
      expect(pipeline.stats.inventoryVms).to.equal(6); // loaded before consuming
      await waitFor(() => settled(t), { what: 'the pipeline to commit every partition to its end', timeoutMs: 60_000, intervalMs: 200 });
    } finally {
      await pipeline.stop();
    }
    const got = withoutTrend(await readPairs(t));
    const names = new Set(got.map((w) => `${w.a}|${w.b}`));
    expect([...names].sort()).to.deep.equal(['10.0.3.1|10.0.3.2', '10.0.4.1|10.0.4.2', '10.0.5.1|10.0.5.2', 'vm-0a|vm-0b', 'vm-1a|vm-1b', 'vm-2a|vm-2b']);
    // the same totals as the embedded run with that inventory
    const byIp = new Map([0, 1, 2].flatMap((p) => pairIps(p).map((ip, side) => [ip, `vm-${p}${side ? 'b' : 'a'}`] as [string, string])));
    const named = records.map((r) => {
      const x = structuredClone(r);
      // the embedded truth names by IP: rename the IPs of known VMs the way the resolver would
      x.key.clientIp = byIp.get(x.key.clientIp) ?? x.key.clientIp;
      x.key.serverIp = byIp.get(x.key.serverIp) ?? x.key.serverIp;
      return x;
    });
    const expected = embeddedPairs(named, W_US);
    expect(pairWindowKeys(got)).to.deep.equal(pairWindowKeys(expected));
    for (const w of got) expect(w.aToB.packets + w.bToA.packets).to.be.greaterThan(0);
  });

  it('the inventory reader follows the topic: new VMs resolve, tombstoned ones no longer do, malformed messages are counted', async () => {
    const prefix = `${uniqueKafkaName('invr')}.`;
    const cfg = parseKafkaConfig({ brokers: broker!.bootstrap, topicPrefix: prefix, lingerMs: 5 });
    await ensureTopics(admin, cfg, ['inventory']);
    const topic = `${prefix}inventory`;
    const reader = new InventoryReader({ kafka, topic });
    await reader.start(); // an empty topic: ready at once
    const client = await KafkaProducerClient.create(cfg);
    const pub = new InventoryPublisher(client, 'hv-x');
    try {
      expect(reader.resolver.nameFromText(undefined, '10.1.1.1')).to.equal('10.1.1.1');
      pub.publish(inventoryFromFile([{ vm: 'web', ips: ['10.1.1.1'], mac: '02:00:00:00:00:01' }, { vm: 'db', ips: ['10.1.1.2'] }]));
      await pub.flush(30_000);
      await waitFor(() => reader.resolver.nameFromText(undefined, '10.1.1.2') === 'db', { what: 'db to resolve', timeoutMs: 30_000, intervalMs: 50 });
      expect(reader.resolver.nameFromText('02:00:00:00:00:01', undefined)).to.equal('web');
      pub.publish(inventoryFromFile([{ vm: 'web', ips: ['10.1.1.1'] }]));
      await pub.flush(30_000);
      await producer.send({ topic, acks: -1, messages: [{ key: 'no-slash', value: '{}' }, { key: 'hv-y/vm', value: 'not json' }] });
      await waitFor(() => reader.resolver.nameFromText(undefined, '10.1.1.2') === '10.1.1.2' && reader.stats.malformed === 2, { what: 'db gone, malformed counted', timeoutMs: 30_000, intervalMs: 50 });
      expect(reader.resolver.nameFromText(undefined, '10.1.1.1')).to.equal('web');
      expect(reader.stats).to.include({ entries: 1, tombstones: 1, malformed: 2 });
    } finally {
      await pub.close();
      await client.disconnect();
      await reader.stop();
    }
    // a second reader loads the current state before start() resolves
    const again = new InventoryReader({ kafka, topic });
    await again.start();
    try {
      expect(again.resolver.nameFromText(undefined, '10.1.1.1')).to.equal('web');
      expect(again.resolver.nameFromText(undefined, '10.1.1.2')).to.equal('10.1.1.2');
    } finally {
      await again.stop();
    }
  });

  it('drops records produced twice (a producer retry: same record ids), counted; pair totals unchanged', async () => {
    const t = await makeTopics('dup', 3, 1);
    const records = synthRecords({ records: 8000, pairs: 20, spanUs: 8 * W_US, seed: 26 });
    // the first half twice in a row (a retried batch), then the rest, then a tail of 500 again
    await produce(t.flows, records.slice(0, 4000));
    await produce(t.flows, records.slice(0, 4000));
    await produce(t.flows, records.slice(4000));
    await produce(t.flows, records.slice(7000, 7500));
    const doubled = 4500;
    const pipeline = new KafkaPipeline({ kafka, flowsTopic: t.flows, pairsTopic: t.pairs, groupId: t.group, windowUs: W_US, allowedLatenessUs: 500_000, idleTimeoutMs: 1500 });
    await pipeline.start();
    try {
      await waitFor(() => settled(t), { what: 'the pipeline to commit every partition to its end', timeoutMs: 60_000, intervalMs: 200 });
      const s = pipeline.stats;
      expect(s.messages).to.equal(records.length + doubled);
      expect(s.cleanDropped + s.lateRecords).to.equal(doubled);
      // a copy arriving within the lateness is dropped by the cleaner; one whose window was emitted is late
      expect(s.cleaned['duplicate-id']).to.equal(s.cleanDropped);
      expect(s.cleanDropped).to.be.greaterThan(0);
      expect(s.records + s.emptyRecords).to.equal(records.length);
    } finally {
      await pipeline.stop();
    }
    expectSamePairs(await readPairs(t), embeddedPairs(records, W_US, 500_000));
  });
});
