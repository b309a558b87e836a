// `mirrorflow tail` against a real broker (scripts/kafka.sh): records of every kind and format,
// produced with the headers the agent and pipeline write, come out as canonical proto3 JSON lines;
// garbage and header-less messages become one warning each and tail goes on; --max stops it; a
// named group starts at the end of the topic; aborting (what SIGINT/SIGTERM do) stops it cleanly.
import { expect } from 'chai';
import { Kafka, logLevel } from '../../src/pipeline/kafkajs.js';
import { type Admin, type Producer } from 'kafkajs';
import { pairWindowToProto3Json, toProto3Json } from '../../src/capture/flow-record.js';
import type { Io, Values } from '../../src/cli/command.js';
import { tailCommand } from '../../src/cli/tail.js';
import { ALERT_SPEC, alertToProto3Json, type Alert } from '../../src/pipeline/alert-record.js';
import { encodeRecord } from '../../src/pipeline/codec.js';
import { protoRoot } from '../../src/pipeline/codec-schemas.js';
import { toPbObject } from '../../src/pipeline/codec-values.js';
import { inventoryHeaders, inventoryKey, type VmInventory } from '../../src/pipeline/inventory-publisher.js';
import { recordHeaders } from '../../src/pipeline/kafka-producer.js';
import { KAFKA_START_TIMEOUT_MS, startKafka, uniqueKafkaName, type KafkaBroker } from '../helpers/kafka.js';
import { waitFor } from '../helpers/wait.js';
import { icmpRecord, pairWindow, tcpRecord } from '../unit/pipeline/codec.fixture.js';

interface Run {
  out: string[];
  err: string[];
  code: Promise<number>;
  abort: () => void;
}

/** Runs tailCommand in-process (as main would after registering it) with captured output. */
function tail(values: Values, env: NodeJS.ProcessEnv = {}): Run {
  const controller = new AbortController();
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), env, signal: controller.signal };
  const code = tailCommand.run({ 'format-out': 'json', ...values }, [], io);
  return { out, err, code, abort: () => controller.abort() };
}

const alert: Alert = {
  id: 'mf:rtt-high:vm-a|vm-b:1700000000000000:firing',
  schemaVersion: 1,
  rule: 'rtt-high',
  kind: 'threshold',
  severity: 'warning',
  state: 'firing',
  a: 'vm-a',
  b: 'vm-b',
  source: '',
  windowStartUs: 1_700_000_000_000_000,
  windowEndUs: 1_700_000_010_000_000,
  value: 12.5,
  threshold: 10,
  message: 'handshake p95 above 10 ms',
};

describe('mirrorflow tail (real broker)', function () {
  this.timeout(KAFKA_START_TIMEOUT_MS + 120_000);
  let broker: KafkaBroker;
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;

  const createTopic = async (base: string): Promise<string> => {
    const topic = uniqueKafkaName(base);
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    return topic;
  };

  before(async () => {
    broker = await startKafka();
    kafka = new Kafka({ clientId: 'mf-tail-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    producer = kafka.producer();
    await producer.connect();
  });

  after(async () => {
    await producer?.disconnect();
    await admin?.disconnect();
    await broker?.stop();
  });

  it('prints flow records and pair windows of every format as proto3 JSON; garbage gives a warning and tail goes on', async () => {
    const topic = await createTopic('flows');
    const r1 = tcpRecord(1);
    const r2 = icmpRecord(2);
    const r3 = tcpRecord(3);
    const w = pairWindow(1);
    await producer.send({
      topic,
      messages: [
        { key: 'k', value: encodeRecord('flow-record', r1, 'protobuf'), headers: recordHeaders('flow-record', 'protobuf') },
        { key: 'k', value: Buffer.from('\x0a\xff\xff garbage'), headers: recordHeaders('flow-record', 'protobuf') },
        { key: 'k', value: encodeRecord('flow-record', r2, 'avro'), headers: recordHeaders('flow-record', 'avro') },
        { key: 'k', value: Buffer.from('no headers at all') },
        { key: 'k', value: encodeRecord('pair-window', w, 'protobuf'), headers: recordHeaders('pair-window', 'protobuf') },
        { key: 'k', value: encodeRecord('flow-record', r3, 'json'), headers: recordHeaders('flow-record', 'json') },
      ],
    });
    const run = tail({ brokers: broker.bootstrap, topic, 'from-beginning': true, max: '6' });
    expect(await run.code).to.equal(0);
    expect(run.out.map((l) => JSON.parse(l))).to.deep.equal([
      JSON.parse(JSON.stringify(toProto3Json(r1))),
      JSON.parse(JSON.stringify(toProto3Json(r2))),
      JSON.parse(JSON.stringify(pairWindowToProto3Json(w))),
      JSON.parse(JSON.stringify(toProto3Json(r3))),
    ]);
    // 64-bit integers are strings in proto3 JSON
    expect(JSON.parse(run.out[0]!).flowId).to.equal('4294967297');
    const warnings = run.err.filter((l) => l.startsWith('tail: warning:'));
    expect(warnings).to.have.length(2);
    expect(warnings[0]).to.match(/cannot decode message \(topic=\S+, partition=0, offset=1, reason=.*malformed FlowRecord/);
    expect(warnings[1]).to.match(/offset=3, reason=.*unknown message schema/);
    expect(run.err[run.err.length - 1]).to.match(/^tail: 6 messages, 4 printed, 2 undecodable/);
  });

  it('prints alerts and inventory (including a tombstone); envelope output names topic, offset and schema', async () => {
    const alerts = await createTopic('alerts');
    const inventory = await createTopic('inventory');
    const alertType = protoRoot().lookupType('mirrorflow.v1.Alert');
    const alertHeaders = {
      'content-type': 'application/x-protobuf',
      'mirrorflow-schema': 'mirrorflow.v1.Alert',
      'mirrorflow-schema-version': '1',
    };
    await producer.send({
      topic: alerts,
      messages: [
        { key: 'vm-a|vm-b', value: Buffer.from(alertType.encode(toPbObject(ALERT_SPEC, alert as unknown as Record<string, unknown>)).finish()), headers: alertHeaders },
        { key: 'vm-a|vm-b', value: Buffer.from(JSON.stringify(alertToProto3Json({ ...alert, state: 'resolved' }))), headers: { ...alertHeaders, 'content-type': 'application/json' } },
      ],
    });
    const vm: VmInventory = {
      schemaVersion: 1,
      vm: 'vm-a',
      vmName: 'web-1',
      agentId: 'hv-1',
      publishedUs: 1_700_000_000_000_000,
      interfaces: [{ vm: 'vm-a', vmName: 'web-1', interface: 'tap1', mac: 'fa:16:3e:00:00:01', ips: ['10.0.0.1'] }],
    };
    await producer.send({
      topic: inventory,
      messages: [
        { key: inventoryKey('hv-1', 'vm-a'), value: Buffer.from(JSON.stringify(vm)), headers: inventoryHeaders() },
        { key: inventoryKey('hv-1', 'vm-b'), value: null, headers: inventoryHeaders() },
      ],
    });

    const a = tail({ brokers: broker.bootstrap, topic: alerts, 'from-beginning': true, max: '2' });
    expect(await a.code).to.equal(0);
    expect(a.out.map((l) => JSON.parse(l))).to.deep.equal([
      JSON.parse(JSON.stringify(alertToProto3Json(alert))),
      JSON.parse(JSON.stringify(alertToProto3Json({ ...alert, state: 'resolved' }))),
    ]);

    const i = tail({ brokers: broker.bootstrap, topic: inventory, 'from-beginning': true, max: '2', 'format-out': 'envelope' });
    expect(await i.code).to.equal(0);
    const lines = i.out.map((l) => JSON.parse(l));
    expect(lines).to.deep.equal([
      { topic: inventory, partition: 0, offset: '0', key: 'hv-1/vm-a', schema: 'mirrorflow.v1.VmInventory', value: vm },
      { topic: inventory, partition: 0, offset: '1', key: 'hv-1/vm-b', schema: 'mirrorflow.v1.VmInventory', value: { agentId: 'hv-1', vm: 'vm-b', deleted: true } },
    ]);
    expect(i.err.filter((l) => l.includes('warning'))).to.deep.equal([]);
  });

  it('with a named group starts at the end, stops cleanly when aborted (SIGINT), and resumes after what it printed', async () => {
    const topic = await createTopic('pairs');
    const group = uniqueKafkaName('tail');
    const old = pairWindow(1);
    await producer.send({ topic, messages: [{ key: 'p', value: encodeRecord('pair-window', old, 'protobuf'), headers: recordHeaders('pair-window', 'protobuf') }] });

    const run = tail({ topic, group }, { MIRRORFLOW_BROKERS: broker.bootstrap });
    // joined and positioned: the group is stable with one member
    await waitFor(
      async () => {
        const d = await admin.describeGroups([group]);
        return d.groups[0]?.state === 'Stable' && d.groups[0].members.length === 1;
      },
      { what: `group ${group} stable`, timeoutMs: 30_000, intervalMs: 100 },
    );
    const fresh = pairWindow(2);
    const sendFresh = () => producer.send({ topic, messages: [{ key: 'p', value: encodeRecord('pair-window', fresh, 'protobuf'), headers: recordHeaders('pair-window', 'protobuf') }] });
    // the consumer may still be fetching its start offset after the group became stable: send the
    // same window again until one arrives (tail starts at the end, so never at offset 0)
    let freshSent = 0;
    await waitFor(
      async () => {
        if (run.out.length > 0) return true;
        await sendFresh();
        freshSent++;
        return waitFor(() => run.out.length > 0, { what: 'a line', timeoutMs: 2000, intervalMs: 50 }).catch(() => false);
      },
      { what: 'tail printing the new window', timeoutMs: 30_000, intervalMs: 10 },
    );
    run.abort();
    expect(await run.code).to.equal(0);
    const freshJson = JSON.parse(JSON.stringify(pairWindowToProto3Json(fresh)));
    const printed = run.out.map((l) => JSON.parse(l));
    expect(printed.length).to.be.within(1, freshSent);
    for (const p of printed) expect(p).to.deep.equal(freshJson);
    expect(run.err[run.err.length - 1]).to.match(/^tail: \d+ messages, \d+ printed, 0 undecodable/);

    // committed: the same group resumes right after what it printed (copies it did not print yet, then the last)
    const last = pairWindow(3);
    await producer.send({ topic, messages: [{ key: 'p', value: encodeRecord('pair-window', last, 'protobuf'), headers: recordHeaders('pair-window', 'protobuf') }] });
    const again = tail({ brokers: broker.bootstrap, topic, group, max: String(freshSent - printed.length + 1) });
    expect(await again.code).to.equal(0);
    expect(again.out.map((l) => JSON.parse(l))).to.deep.equal([
      ...Array.from({ length: freshSent - printed.length }, () => freshJson),
      JSON.parse(JSON.stringify(pairWindowToProto3Json(last))),
    ]);
  });

  it('a missing topic or --brokers is one clear error', async () => {
    const missing = tail({ brokers: broker.bootstrap, topic: uniqueKafkaName('nope') });
    await missing.code.then(
      () => expect.fail('expected an error'),
      (e: Error) => expect(e.message).to.match(/^tail: topic not found \(topic=mft\w+-nope, brokers=127\.0\.0\.1:\d+\)$/),
    );
    const noBrokers = tail({ topic: 'x' });
    await noBrokers.code.then(
      () => expect.fail('expected an error'),
      (e: Error) => expect(e.message).to.match(/^tail: missing --brokers/),
    );
  });
});
