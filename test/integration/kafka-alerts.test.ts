// Alerts through the pipeline against a real Kafka broker (scripts/kafka.sh): windows judged by the
// rules of the config, alerts produced to the alerts topic in the same transactions as the windows,
// read back with read_committed.
import { expect } from 'chai';
import { Kafka, logLevel, Partitioners } from '../../src/pipeline/kafkajs.js';
import { type Admin, type Producer } from 'kafkajs';
import type { FlowRecord, PairWindow } from '../../src/capture/flow-record.js';
import type { Alert } from '../../src/pipeline/alert-record.js';
import { encodeRecord, schemaHeaders } from '../../src/pipeline/codec.js';
import { KafkaPipeline } from '../../src/pipeline/kafka-pipeline.js';
import { parseRulesConfig } from '../../src/pipeline/rules-config.js';
import { KAFKA_START_TIMEOUT_MS, readCommitted, startKafka, uniqueKafkaName, type KafkaBroker } from '../helpers/kafka.js';
import { flowKey, rng, synthRecords, SYNTH_T0_US } from '../helpers/synth-pipeline.js';
import { waitFor } from '../helpers/wait.js';

const W_US = 1_000_000;
const T0 = SYNTH_T0_US - (SYNTH_T0_US % W_US);

/** One TCP record of pair i (10.7.i.1 → 10.7.i.2) in window `win`: `packets` data segments, `retransmits` of them lost. */
function record(i: number, win: number, packets: number, retransmits: number, seq: number): FlowRecord {
  const [tpl] = synthRecords({ records: 1, pairs: 1, seed: 5 });
  const r = structuredClone(tpl!);
  const endUs = T0 + win * W_US + 500_000 + i;
  r.id = `hv-alerts-${seq}`;
  r.sequence = seq;
  r.key.clientIp = `10.7.${i}.1`;
  r.key.serverIp = `10.7.${i}.2`;
  r.key.protocol = 6;
  r.startUs = endUs - 1000;
  r.endUs = endUs;
  r.clientToServer = { packets, bytes: packets * 1000, firstUs: r.startUs, lastUs: endUs, tcpFlags: 0x18 };
  r.serverToClient = { packets: 0, bytes: 0, firstUs: 0, lastUs: 0, tcpFlags: 0 };
  delete r.icmp;
  r.tcp = {
    synOnly: false,
    rstAnswered: false,
    failed: false,
    clientToServer: { dataSegments: packets, retransmits, gapFills: 0, outOfOrder: 0, dupAcks: 0, zeroWindows: 0, rsts: 0, synRetransmits: 0 },
    serverToClient: { dataSegments: 0, retransmits: 0, gapFills: 0, outOfOrder: 0, dupAcks: 0, zeroWindows: 0, rsts: 0, synRetransmits: 0 },
  };
  return r;
}

describe('kafka pipeline alerts (real broker)', function () {
  this.timeout(KAFKA_START_TIMEOUT_MS + 180_000);

  let broker: KafkaBroker | undefined;
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;

  before(async () => {
    broker = await startKafka();
    kafka = new Kafka({ clientId: 'mirrorflow-alerts-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
  });

  after(async () => {
    await producer?.disconnect();
    await admin?.disconnect();
    await broker?.stop();
  });


  it('a threshold fires once and resolves once; a packet burst is flagged by the Poisson rule, steady pairs are not', async () => {
    const prefix = `${uniqueKafkaName('alerts')}.`;
    const t = { flows: `${prefix}flows`, pairs: `${prefix}pairs`, alerts: `${prefix}alerts`, group: uniqueKafkaName('alerts-group') };
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: t.flows, numPartitions: 3 },
        { topic: t.pairs, numPartitions: 1 },
        { topic: t.alerts, numPartitions: 2 },
      ],
    });
    // rules as the config file's "rules" section gives them
    const rules = parseRulesConfig({
      thresholds: [{ name: 'high-loss', metric: 'lossRate', operator: '>', value: 0.05, forWindows: 2, severity: 'critical' }],
      anomaly: { poisson: { tailProbability: 1e-6, warmupWindows: 5, minPackets: 50 }, rttZScore: { enabled: false } },
      security: { newPair: { enabled: false }, scan: { enabled: false } },
    });
    // pair 0: lossy in windows 4..7 (fires at 5, the 2nd consecutive window; resolves at 8);
    // pair 1: a burst of 1500 packets in window 12; pairs 2..5: steady, about 100 packets a window
    const WINDOWS = 16;
    const rand = rng(31);
    const records: FlowRecord[] = [];
    let seq = 1;
    for (let win = 0; win < WINDOWS; win++) {
      for (let i = 0; i < 6; i++) {
        const packets = i === 1 && win === 12 ? 1500 : 90 + Math.floor(rand() * 21);
        const lost = i === 0 && win >= 4 && win <= 7 ? Math.ceil(packets * 0.1) : i >= 2 && rand() < 0.3 ? 1 : 0;
        records.push(record(i, win, packets, lost, seq++));
      }
    }
    await producer.send({ topic: t.flows, acks: -1, messages: records.map((r) => ({ key: flowKey(r), value: encodeRecord('flow-record', r, 'protobuf'), headers: schemaHeaders('flow-record', 'protobuf') })) });

    const pipeline = new KafkaPipeline({ kafka, flowsTopic: t.flows, pairsTopic: t.pairs, alertsTopic: t.alerts, rules, groupId: t.group, windowUs: W_US, idleTimeoutMs: 1500 });
    await pipeline.start();
    try {
      await waitFor(
        async () => {
          const ends = await admin.fetchTopicOffsets(t.flows);
          const [c] = await admin.fetchOffsets({ groupId: t.group, topics: [t.flows] });
          return ends.every((e) => Number(c?.partitions.find((p) => p.partition === e.partition)?.offset) === Number(e.high));
        },
        { what: 'the pipeline to commit every partition to its end', timeoutMs: 60_000, intervalMs: 200 },
      );
      expect(pipeline.stats.pairsProduced).to.equal(6 * WINDOWS);
    } finally {
      await pipeline.stop();
    }

    const alerts = await readCommitted(kafka, t.alerts, 'alert');
    const summary = alerts.map(({ value: a }) => `${a.rule} ${a.state} ${a.a}|${a.b} ${(a.windowStartUs - T0) / W_US}`).sort();
    expect(summary).to.deep.equal([
      'high-loss firing 10.7.0.1|10.7.0.2 5',
      'high-loss resolved 10.7.0.1|10.7.0.2 8',
      'poisson-burst firing 10.7.1.1|10.7.1.2 12',
      'poisson-burst resolved 10.7.1.1|10.7.1.2 13',
    ]);
    const byRule = new Map(alerts.map(({ key, value }) => [`${value.rule} ${value.state}`, { key, value }]));
    const fired: Alert = byRule.get('high-loss firing')!.value;
    expect(byRule.get('high-loss firing')!.key).to.equal('10.7.0.1|10.7.0.2');
    expect(fired).to.include({ kind: 'threshold', severity: 'critical', threshold: 0.05, id: `${t.group}:high-loss:10.7.0.1~10.7.0.2:${T0 + 5 * W_US}:firing` });
    expect(fired.value).to.be.greaterThan(0.05);
    expect(byRule.get('poisson-burst firing')!.value.value).to.be.lessThan(1e-6);
    expect(new Set(alerts.map((a) => a.value.id)).size).to.equal(alerts.length);
    expect(pipeline.stats.alertsProduced).to.equal(4);

    // the windows carry their trend
    const pairs = (await readCommitted(kafka, t.pairs, 'pair-window')).map((x) => x.value as PairWindow);
    expect(pairs).to.have.length(6 * WINDOWS);
    for (const w of pairs) expect(w.trend?.forecastBps, `${w.a}|${w.b} ${w.windowStartUs}`).to.have.length(rules.trend.horizonWindows);
  });
});
