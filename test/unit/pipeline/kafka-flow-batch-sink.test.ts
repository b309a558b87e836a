// KafkaFlowBatchSink's pair routes (src/pipeline/kafka-producer.ts): every record of a pair goes to
// the partition kafkajs' default partitioner gives the pair's unordered key, whichever end is the
// client, however the names repeat, and after the partition count changed or the table was dropped.
import { expect } from 'chai';
import type { FlowRecord } from '../../../src/capture/flow-record.js';
import { unorderedPairKey } from '../../../src/pipeline/pair-key.js';
import { KafkaFlowBatchSink, partitionOfKey, type KafkaProducerClient, type KafkaTopicSink } from '../../../src/pipeline/kafka-producer.js';
import { tcpRecord } from './codec.fixture.js';
import { rng } from '../../helpers/rng.js';

interface Sent {
  key: string;
  partition: number | undefined;
  count: number;
}

/** A flow sink over a fake topic sink (records what it is handed) and a client with a settable partition count. */
function harness(partitions: number | undefined) {
  const sent: Sent[] = [];
  const counts = new Map<string, number>();
  if (partitions !== undefined) counts.set('t.flows', partitions);
  const topic = {
    topic: 't.flows',
    enqueue(key: string | Buffer | null, _value: Buffer | null, _tag?: number, count = 1, partition?: number) {
      sent.push({ key: String(key), partition, count });
    },
  };
  const client = { partitionCounts: counts, learnPartitions() {}, cfg: { lingerMs: 60_000 } };
  const sink = new KafkaFlowBatchSink(topic as unknown as KafkaTopicSink, client as unknown as KafkaProducerClient, 'protobuf', undefined, { maxRecords: 1 });
  return { sent, counts, sink };
}

function record(client: string, server: string, seq: number): FlowRecord {
  const r = tcpRecord(seq);
  r.key.clientIp = client;
  r.key.serverIp = server;
  return r;
}


describe('pipeline/kafka-producer KafkaFlowBatchSink routes', () => {
  it('sends every record of a pair, in both orders and interleaved with other pairs, to its key’s partition', () => {
    const h = harness(12);
    const names = Array.from({ length: 40 }, (_, i) => `10.1.${i >> 4}.${i & 15}`);
    const next = rng(7);
    const want: { key: string; partition: number }[] = [];
    for (let i = 0; i < 5000; i++) {
      const a = names[Math.floor(next() * names.length)]!;
      // mostly the same peer again (the remembered route), sometimes another one, sometimes reversed
      const b = next() < 0.6 && i > 0 ? names[(names.indexOf(a) + 1) % names.length]! : names[Math.floor(next() * names.length)]!;
      const [c, s] = next() < 0.5 ? [a, b] : [b, a];
      if (i === 2500) h.counts.set('t.flows', 7); // the partition count changes: routes are learnt again
      h.sink.write(record(c, s, i + 1));
      const key = unorderedPairKey(c, s);
      want.push({ key, partition: partitionOfKey(key, i >= 2500 ? 7 : 12) });
    }
    expect(h.sent.map((x) => ({ key: x.key, partition: x.partition }))).to.deep.equal(want);
  });

  it('keeps routing right after the table is dropped at its size limit', () => {
    const h = harness(5);
    const route = (x: string, y: string) => (h.sink as unknown as { route(x: string, y: string, n: number): { key: string; partition: number } }).route(x, y, 5);
    // 131,072 pairs fill the table (two entries each); the next new pair drops it
    for (let i = 0; i < 131_072; i++) route(`a${i}`, `b${i}`);
    for (const [x, y] of [
      ['a1', 'b1'],
      ['b1', 'a1'],
      ['new', 'a1'],
      ['a1', 'new'],
      ['a1', 'b1'],
      ['same', 'same'],
      ['same', 'same'],
    ] as const) {
      const key = unorderedPairKey(x, y);
      expect(route(x, y), `${x} ${y}`).to.deep.equal({ key, partition: partitionOfKey(key, 5) });
    }
  });

  it('keys batches by the pair while the partition count is unknown (kafkajs partitions them by that key)', () => {
    const h = harness(undefined);
    h.sink.write(record('10.0.0.9', '10.0.0.1', 1));
    h.sink.write(record('10.0.0.1', '10.0.0.9', 2));
    expect(h.sent).to.deep.equal([
      { key: '10.0.0.1|10.0.0.9', partition: undefined, count: 1 },
      { key: '10.0.0.1|10.0.0.9', partition: undefined, count: 1 },
    ]);
  });
});
