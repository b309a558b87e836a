// Batch framing of the flows topic (FlowRecordBatch) and the fast paths around it: the field-by-field
// protobuf encoder (same bytes as the spec-driven one), batch round trips in every format, framing
// checked at every cut, corrupt batches refused whole, the pipeline's view decoder against the full
// decoder, the partitioner against kafkajs', and spool entries carrying record counts.
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from '../../../src/pipeline/kafkajs.js';
import type { FlowRecord } from '../../../src/capture/flow-record.js';
import {
  FLOW_BATCH_SCHEMA,
  RECORD_COUNT_HEADER,
  decodeFlowBatch,
  decodeFlowMessage,
  describeFlowMessage,
  encodeFlowBatch,
  encodeFlowRecordScratch,
  FlowBatchBuilder,
  flowBatchHeaders,
  frameJsonBatch,
  frameProtobufBatch,
} from '../../../src/pipeline/codec-batch.js';
import { decodeFlowView, FlowView, StringInterner, textHash } from '../../../src/pipeline/codec-flow-view.js';
import { flowKeyIdentity } from '../../../src/pipeline/observation.js';
import { CodecError, RECORD_FORMATS, decodeRecord, encodeRecord, schemaHeaders } from '../../../src/pipeline/codec.js';
import { protoRoot } from '../../../src/pipeline/codec-schemas.js';
import { decodeSpoolEntry, encodeSpoolEntry, murmur2, partitionOfKey, spoolEntryCount } from '../../../src/pipeline/kafka-producer.js';
import { FlowKeyIdentities, PipelineCore } from '../../../src/pipeline/pipeline-core.js';
import { Spool } from '../../../src/pipeline/spool.js';
import { synthRecords } from '../../helpers/synth-pipeline.js';
import { flowRecords, icmpRecord, otherRecord, tcpRecord } from './codec.fixture.js';

const { Partitioners } = kafkajs;

/** A record's bytes with field 2 (schema_version, one-byte varint) set to `version` (< 128). */
function withSchemaVersion(bytes: Buffer, version: number): Buffer {
  const b = Buffer.from(bytes);
  // field 1 (id): tag 0x0a, one-byte length; field 2 follows
  const at = 2 + b[1]!;
  expect(b[at]).to.equal(0x10);
  b[at + 1] = version;
  return b;
}

/** The record as the full decoder returns it (what a round trip must give). */
const canonical = (r: FlowRecord): FlowRecord => decodeRecord('flow-record', encodeRecord('flow-record', r, 'protobuf'), 'protobuf');

function records(): FlowRecord[] {
  const big = tcpRecord(40);
  big.key = { ...big.key, clientIp: 'fe80::1234:5678:9abc:def0', serverIp: 'fe80::1', vlans: [100, 200, 4094] };
  big.observation = { ...big.observation, agentId: 'hv-ü-😀' }; // non-ASCII strings
  big.startUs = -5; // negative int64
  big.tcp!.serverTsRttSummary = { count: 3, minUs: 1.5, maxUs: 90, sumUs: 100 };
  return [tcpRecord(1), icmpRecord(2), otherRecord(3), big, ...flowRecords(200), ...synthRecords({ records: 300, pairs: 7, seed: 9 })];
}

describe('codec-batch', () => {
  it('the field-by-field encoder writes exactly the bytes of encodeRecord', () => {
    for (const r of records()) expect(Buffer.from(encodeFlowRecordScratch(r)).equals(encodeRecord('flow-record', r, 'protobuf')), r.id).to.equal(true);
  });

  it('a batch frames each record with its own length (one, two or three bytes); a refused record leaves the batch as it was', () => {
    const tiny = otherRecord(1);
    tiny.observation = { agentId: 'a', bridge: '', mirror: '', interface: '' };
    tiny.startUs = tiny.endUs = 0;
    tiny.clientToServer = { packets: 1, bytes: 60, firstUs: 0, lastUs: 0, tcpFlags: 0 };
    tiny.serverToClient = { packets: 0, bytes: 0, firstUs: 0, lastUs: 0, tcpFlags: 0 };
    const huge = icmpRecord(2);
    huge.icmp!.rtt = { ...huge.icmp!.rtt!, bucketDeltas: Array.from({ length: 6000 }, () => 1), bucketCounts: Array.from({ length: 6000 }, () => 300) };
    const rs = [tiny, tcpRecord(3), huge, tiny, tcpRecord(4)];
    const sizes = rs.map((r) => encodeRecord('flow-record', r, 'protobuf').length);
    expect(Math.min(...sizes)).to.be.below(128);
    expect(Math.max(...sizes)).to.be.above(16383);
    const bad = tcpRecord(5);
    (bad.key as { serverPort: number }).serverPort = 70000.5;
    const b = new FlowBatchBuilder('protobuf', 64);
    for (const r of rs) {
      b.add(r);
      expect(() => b.add(bad)).to.throw(CodecError, /key\.serverPort/);
    }
    expect(b.count).to.equal(rs.length);
    const value = b.take();
    const got: Buffer[] = [];
    expect(frameProtobufBatch(value, rs.length, (start, end) => got.push(value.subarray(start, end)))).to.equal(rs.length);
    got.forEach((bytes, i) => expect(bytes.equals(encodeRecord('flow-record', rs[i]!, 'protobuf')), `record ${i}`).to.equal(true));
    expect(b.count).to.equal(0);
    expect(b.take().length).to.equal(0);
  });

  it('the encoder refuses what encodeRecord refuses, naming the field', () => {
    const bad = tcpRecord(5);
    (bad.key as { clientPort: number }).clientPort = -1;
    expect(() => encodeFlowRecordScratch(bad)).to.throw(CodecError, /key\.clientPort/);
    const big = tcpRecord(6);
    big.sequence = 2 ** 60;
    expect(() => encodeFlowRecordScratch(big)).to.throw(CodecError, /sequence/);
    const noKey = tcpRecord(7) as Partial<FlowRecord>;
    delete noKey.key;
    expect(() => encodeFlowRecordScratch(noKey as FlowRecord)).to.throw(CodecError);
    expect(() => encodeRecord('flow-record', noKey as FlowRecord, 'protobuf')).to.throw(CodecError);
  });

  it('the encoder writes -0 integers as the codec does (present, not a default) and refuses wrong types with the codec\'s message', () => {
    const r = tcpRecord(8);
    r.sequence = -0;
    r.key = { ...r.key, clientPort: -0, vlans: [-0, 5], vni: -0 };
    r.clientToServer = { ...r.clientToServer, firstUs: -0, bytes: -0 };
    r.tcp = { ...r.tcp!, clientToServer: { ...r.tcp!.clientToServer, retransmits: -0 } };
    const bytes = Buffer.from(encodeFlowRecordScratch(r));
    expect(bytes.equals(encodeRecord('flow-record', r, 'protobuf'))).to.equal(true);
    expect(bytes.length).to.be.above(encodeRecord('flow-record', { ...r, sequence: 0 }, 'protobuf').length);
    const wrong: [string, FlowRecord][] = [
      ['uint32', { ...tcpRecord(9), key: { ...tcpRecord(9).key, serverPort: '80' as never } }],
      ['uint64', { ...tcpRecord(9), flowId: '7' as never }],
      ['int64', { ...tcpRecord(9), startUs: true as never }],
    ];
    for (const [what, bad] of wrong) {
      const codec = (() => {
        try {
          encodeRecord('flow-record', bad, 'protobuf');
        } catch (e) {
          return (e as Error).message;
        }
        return '';
      })();
      expect(codec, what).to.match(/^codec: cannot encode FlowRecord.*not a/);
      expect(() => encodeFlowRecordScratch(bad), what).to.throw(CodecError, codec);
    }
  });

  for (const format of RECORD_FORMATS) {
    it(`round trip of a batch (${format}), with headers describing it`, () => {
      const rs = records();
      const value = encodeFlowBatch(rs, format);
      const h = flowBatchHeaders(format, rs.length);
      const d = describeFlowMessage(h);
      expect(d).to.include({ batch: true, format, count: rs.length, kind: 'flow-record' });
      const got = decodeFlowBatch(value, format, rs.length);
      expect(got.errors).to.deep.equal([]);
      expect(got.records).to.deep.equal(rs.map(canonical));
      expect(decodeFlowMessage(h, value)).to.deep.equal(got.records);
    });
  }

  it('a protobuf batch is a FlowRecordBatch for protobufjs (a consumer with the .proto)', () => {
    const rs = records().slice(0, 20);
    const msg = protoRoot().lookupType(FLOW_BATCH_SCHEMA).decode(encodeFlowBatch(rs, 'protobuf')) as unknown as { records: unknown[] };
    expect(msg.records).to.have.length(20);
  });

  it('single-record messages still describe as single records', () => {
    const d = describeFlowMessage(schemaHeaders('flow-record', 'protobuf'));
    expect(d).to.include({ batch: false, kind: 'flow-record', format: 'protobuf' });
    expect(decodeFlowMessage(schemaHeaders('flow-record', 'protobuf'), encodeRecord('flow-record', tcpRecord(3), 'protobuf'))).to.deep.equal([canonical(tcpRecord(3))]);
  });

  it('split batches: a protobuf batch cut at every offset is refused, or (at a record boundary, count unknown) gives the records before the cut', () => {
    const rs = [tcpRecord(1), icmpRecord(2), otherRecord(3)];
    const value = encodeFlowBatch(rs, 'protobuf');
    const boundaries = new Map<number, number>();
    let n = 0;
    frameProtobufBatch(value, undefined, (_s, e) => boundaries.set(e, ++n));
    boundaries.set(0, 0);
    for (let cut = 0; cut < value.length; cut++) {
      const part = value.subarray(0, cut);
      expect(frameProtobufBatch(part, rs.length), `cut ${cut} with count`).to.be.instanceOf(CodecError);
      const got = frameProtobufBatch(part, undefined);
      if (boundaries.has(cut)) expect(got, `cut ${cut}`).to.equal(boundaries.get(cut));
      else expect(got, `cut ${cut}`).to.be.instanceOf(CodecError);
    }
    expect(frameProtobufBatch(value, 3)).to.equal(3);
  });

  it('split batches: two batch values concatenated frame as one batch of both (protobuf repeated field)', () => {
    const a = encodeFlowBatch([tcpRecord(1)], 'protobuf');
    const b = encodeFlowBatch([icmpRecord(2), otherRecord(3)], 'protobuf');
    const got = decodeFlowBatch(Buffer.concat([a, b]), 'protobuf', 3);
    expect(got.records.map((r) => r.id)).to.deep.equal([tcpRecord(1).id, icmpRecord(2).id, otherRecord(3).id]);
  });

  it('a corrupt batch is refused whole with a reason: count mismatch, wrong tag, a length past the end, a bad count header', () => {
    const value = encodeFlowBatch([tcpRecord(1), icmpRecord(2)], 'protobuf');
    expect(() => decodeFlowBatch(value, 'protobuf', 3)).to.throw(CodecError, /corrupt batch.*record count differs/);
    const wrongTag = Buffer.from(value);
    wrongTag[0] = 0x07; // field 0, wire type 7
    expect(frameProtobufBatch(wrongTag, undefined)).to.be.instanceOf(CodecError);
    const long = Buffer.from(value);
    long[1] = 0x7f; // first record's length: 127 (past the end of the first record, not of the value) …
    const r = frameProtobufBatch(Buffer.concat([long.subarray(0, 2), Buffer.alloc(10)]), undefined);
    expect(r).to.be.instanceOf(CodecError);
    expect((r as CodecError).message).to.match(/runs past the end/);
    expect(() => describeFlowMessage({ ...flowBatchHeaders('protobuf', 2), [RECORD_COUNT_HEADER]: 'two' })).to.throw(CodecError, /corrupt batch/);
    expect(frameJsonBatch(Buffer.from('{}\n{}\n'), 3)).to.be.instanceOf(CodecError);
    expect(() => decodeFlowBatch(Buffer.from('garbage'), 'avro', 1)).to.throw(CodecError, /corrupt batch/);
  });

  it('a bad record inside a well-framed batch is reported alone; the others decode', () => {
    const good = encodeRecord('flow-record', tcpRecord(1), 'protobuf');
    const bad = withSchemaVersion(encodeRecord('flow-record', tcpRecord(2), 'protobuf'), 99);
    const frame = (b: Buffer) => Buffer.concat([Buffer.from(b.length < 128 ? [0x0a, b.length] : [0x0a, (b.length & 127) | 128, b.length >> 7]), b]);
    const value = Buffer.concat([frame(good), frame(bad), frame(good)]);
    const got = decodeFlowBatch(value, 'protobuf', 3);
    expect(got.records).to.have.length(2);
    expect(got.errors.map((e) => e.index)).to.deep.equal([1]);
    expect(got.errors[0]!.error.message).to.match(/schema version/);
  });

  it('the view decoder reads what the full decoder reads, and never throws on damaged bytes', () => {
    const v = new FlowView();
    const strings = new StringInterner(64);
    for (const r of records()) {
      const bytes = encodeRecord('flow-record', r, 'protobuf');
      expect(decodeFlowView(bytes, 0, bytes.length, v, strings), r.id).to.equal(undefined);
      const c = canonical(r);
      const suffix = `-${c.sequence}`;
      expect(v.agent).to.equal(c.id.endsWith(suffix) ? c.id.slice(0, -suffix.length) : c.observation.agentId);
      expect({ seq: v.sequence, agentId: v.agentId, cip: v.clientIp, sip: v.serverIp, cmac: v.clientMac, smac: v.serverMac, cport: v.clientPort, sport: v.serverPort }).to.deep.equal({
        seq: c.sequence,
        agentId: c.observation.agentId,
        cip: c.key.clientIp,
        sip: c.key.serverIp,
        cmac: c.key.clientMac,
        smac: c.key.serverMac,
        cport: c.key.clientPort,
        sport: c.key.serverPort,
      });
      expect([v.ipVersion, v.protocol, v.etherType, [...v.vlans], v.vni, v.icmpId, v.icmpType, v.icmpCode]).to.deep.equal([
        c.key.ipVersion,
        c.key.protocol,
        c.key.etherType,
        c.key.vlans,
        c.key.vni ?? -1,
        c.key.icmpId ?? -1,
        c.key.icmpType ?? -1,
        c.key.icmpCode ?? -1,
      ]);
      expect([v.startUs, v.endUs, v.c2sPackets, v.c2sBytes, v.s2cPackets, v.s2cBytes]).to.deep.equal([
        c.startUs,
        c.endUs,
        c.clientToServer.packets,
        c.clientToServer.bytes,
        c.serverToClient.packets,
        c.serverToClient.bytes,
      ]);
      expect(v.hasTcp).to.equal(c.tcp !== undefined);
      if (c.tcp) {
        expect(v.tcpFailed).to.equal(c.tcp.failed);
        expect(Number.isNaN(v.handshakeRttUs) ? undefined : v.handshakeRttUs).to.equal(c.tcp.handshakeRttUs);
        expect(v.retransmits).to.equal(c.tcp.clientToServer.retransmits + c.tcp.serverToClient.retransmits);
        expect(v.dataSegments).to.equal(c.tcp.clientToServer.dataSegments + c.tcp.serverToClient.dataSegments);
      }
      expect(v.hasIcmp).to.equal(c.icmp !== undefined);
      if (c.icmp) expect(v.icmpRtt).to.deep.equal(c.icmp.rtt);
    }
    // damaged: every truncation and a byte flipped everywhere; a status, never an exception
    const bytes = encodeRecord('flow-record', icmpRecord(4), 'protobuf');
    // (a cut at a field boundary is a valid shorter record, as for any protobuf decoder)
    let refused = 0;
    for (let cut = 0; cut < bytes.length; cut++) {
      const res = decodeFlowView(bytes, 0, cut, v, strings);
      if (res !== undefined) refused++;
      expect(() => decodeRecord('flow-record', bytes.subarray(0, cut), 'protobuf'), `cut ${cut}`)[res === undefined ? 'not' : 'to'].throw();
    }
    expect(refused).to.be.greaterThan(bytes.length / 2);
    for (let i = 0; i < bytes.length; i++) {
      const b = Buffer.from(bytes);
      b[i] ^= 0xff;
      const res = decodeFlowView(b, 0, b.length, v, strings);
      expect(res === undefined || typeof res === 'string').to.equal(true);
    }
    const old = withSchemaVersion(encodeRecord('flow-record', tcpRecord(9), 'protobuf'), 1);
    expect(decodeFlowView(old, 0, old.length, v, strings)).to.match(/schema version/);
  });

  it('the interner gives the same string for the same bytes, with its textHash, however many strings pass', () => {
    const strings = new StringInterner(64);
    const texts = Array.from({ length: 3000 }, (_, i) => (i % 5 ? `10.${i >> 8}.${i & 255}.${i % 7}` : `fa:16:3e:ü${i}`));
    texts.push('', 'x'.repeat(65), 'y'.repeat(64));
    for (let round = 0; round < 2; round++) {
      for (const t of texts) {
        const b = Buffer.concat([Buffer.from('pad'), Buffer.from(t)]);
        expect(strings.get(b, 3, b.length)).to.equal(t);
        expect(strings.lastHash, t).to.equal(textHash(t));
      }
    }
    const b = Buffer.from('10.0.0.1');
    expect(strings.get(b, 0, b.length)).to.equal(strings.get(Buffer.from(b), 0, b.length));
  });

  it('flow key identities of views are flowKeyIdentity of the records, also when the cache is small', () => {
    const rs = records();
    for (const slots of [4, 1 << 16]) {
      const keys = new FlowKeyIdentities(slots);
      const v = new FlowView();
      const strings = new StringInterner();
      for (let round = 0; round < 2; round++) {
        for (const r of rs) {
          const bytes = encodeRecord('flow-record', r, 'protobuf');
          expect(decodeFlowView(bytes, 0, bytes.length, v, strings)).to.equal(undefined);
          expect(keys.of(v), r.id).to.equal(flowKeyIdentity(canonical(r)));
        }
      }
    }
  });

  it('the pipeline core aggregates views exactly as records', () => {
    const rs = synthRecords({ records: 5000, pairs: 30, spanUs: 8_000_000, seed: 3, jitterUs: 200_000 });
    const viaRecords = new PipelineCore({ windowUs: 1_000_000, allowedLatenessUs: 500_000, clean: true, idPrefix: 'x' });
    const viaViews = new PipelineCore({ windowUs: 1_000_000, allowedLatenessUs: 500_000, clean: true, idPrefix: 'x' });
    viaRecords.assign(0, 0);
    viaViews.assign(0, 0);
    const a = [];
    const b = [];
    const v = new FlowView();
    const strings = new StringInterner();
    // every record twice in a row half of the time: duplicates dropped alike
    let offset = 0;
    for (const r of rs) {
      for (let k = 0; k < (offset % 2 ? 2 : 1); k++) {
        a.push(...viaRecords.addRecord(0, offset, r, 0));
        const bytes = encodeRecord('flow-record', r, 'protobuf');
        expect(decodeFlowView(bytes, 0, bytes.length, v, strings)).to.equal(undefined);
        b.push(...viaViews.addView(0, offset, v, 0));
      }
      offset++;
    }
    a.push(...viaRecords.partition(0).closeAll());
    b.push(...viaViews.partition(0).closeAll());
    expect(b).to.deep.equal(a);
    expect(viaViews.stats).to.deep.equal(viaRecords.stats);
    expect(viaViews.cleanCounters).to.deep.equal(viaRecords.cleanCounters);
    expect(viaViews.stats.cleanDropped).to.be.greaterThan(1000);
  });
});

describe('flow batches on Kafka: partitions and spool entries', () => {
  it('partitionOfKey is kafkajs\' default partitioner', () => {
    const partitioner = Partitioners.DefaultPartitioner();
    for (const n of [1, 3, 12, 7]) {
      const partitionMetadata = Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
      for (let i = 0; i < 500; i++) {
        const key = i % 3 ? `10.${i >> 8}.${i & 255}.1|10.${i >> 8}.${i & 255}.2` : `vm-${'x'.repeat(i % 7)}${i}|vm-ü${i}`;
        expect(partitionOfKey(key, n), key).to.equal(partitioner({ topic: 't', partitionMetadata, message: { key, value: null } }));
      }
    }
    expect(murmur2(Buffer.from(''))).to.be.a('number');
  });

  it('spool entries carry the partition and record count; version 1 entries are still read', () => {
    const e = decodeSpoolEntry(encodeSpoolEntry(Buffer.from('k'), Buffer.from('value'), 16, 500, 7));
    expect(e).to.deep.equal({ key: Buffer.from('k'), value: Buffer.from('value'), tag: 16, count: 500, partition: 7 });
    expect(spoolEntryCount(encodeSpoolEntry(null, Buffer.from('v'), 1, 42))).to.equal(42);
    const v1 = Buffer.concat([Buffer.from([1, 2, 0, 1, 0]), Buffer.from('kv')]);
    expect(decodeSpoolEntry(v1)).to.deep.equal({ key: Buffer.from('k'), value: Buffer.from('v'), tag: 2, count: 1, partition: undefined });
    expect(spoolEntryCount(v1)).to.equal(1);
  });

  it('the spool counts records of batch entries (pending, after reopening, dropped)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mf-spool-w-'));
    try {
      const s = Spool.open(dir, { limitBytes: 1 << 20, weigh: spoolEntryCount });
      s.append([encodeSpoolEntry(null, Buffer.from('a'), 16, 100), encodeSpoolEntry(null, Buffer.from('b'), 16, 50), encodeSpoolEntry(null, Buffer.from('c'), 0)]);
      expect([s.pending, s.pendingWeight]).to.deep.equal([3, 151]);
      expect(s.peek(1, 1 << 20)).to.have.length(1);
      s.ack(1);
      expect(s.pendingWeight).to.equal(51);
      s.close();
      const again = Spool.open(dir, { limitBytes: 1 << 20, weigh: spoolEntryCount });
      expect([again.pending, again.pendingWeight]).to.deep.equal([2, 51]);
      again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
