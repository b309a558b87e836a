import { expect } from 'chai';
import { pairWindowToProto3Json, toProto3Json, type FlowRecord, type PairWindow } from '../../../src/capture/flow-record.js';
import { FlowTable } from '../../../src/capture/flow-table.js';
import { flowRecordJsonText, jsonLineWriterOf, pairWindowJsonText, writeFlowRecordJsonLine, writePairWindowJsonLine } from '../../../src/capture/record-json.js';
import { ProtoSink, writeFlowRecordDelimited, writePairWindowDelimited } from '../../../src/capture/record-protobuf.js';
import { encodeRecordDelimited } from '../../../src/pipeline/codec.js';
import { protoType } from '../../../src/pipeline/codec-schemas.js';
import { EchoConv, TcpConv, US, MS, udpFrame } from '../../helpers/synth-flows.js';
import { icmpRecord, otherRecord, pairWindow, tcpRecord } from '../pipeline/codec.fixture.js';
import { rng } from '../../helpers/rng.js';

const TO_JSON = { longs: String, enums: String, defaults: false, json: true } as const;


const U32 = [0, -0, 1, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32 - 1];
const U64 = [0, -0, 1, 127, 128, 2 ** 32 - 1, 2 ** 32, 2 ** 35 + 7, 2 ** 53 - 1, 1_700_000_000_123_456];
const I64 = [...U64, -1, -128, -(2 ** 32), -(2 ** 53 - 1)];
const DOUBLES = [0, -0, 1, 0.5, 1e-7, 1e21, 123.456, -2.5, NaN, Infinity, -Infinity, Number.MAX_VALUE, 5e-324];
const STRINGS = ['', 'a', '10.0.0.1', 'fd00::1', 'vm-é', 'say "hi"\n\\', 'tab\there', '日本語-vm', 'emoji-😀', 'x'.repeat(127), 'x'.repeat(128), 'x'.repeat(200)];

/** Every numeric / string leaf of a record replaced, at random, by an edge value of its kind. */
function mutate<T>(value: T, pick: () => number, kinds: Record<string, 'u32' | 'u64' | 'i64' | 'double' | 'string'>, path = ''): T {
  if (Array.isArray(value)) return value.map((x) => mutate(x, pick, kinds, `${path}[]`)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = mutate(v, pick, kinds, path ? `${path}.${k}` : k);
    return out as T;
  }
  const kind = kinds[path];
  if (!kind || pick() < 0.4) return value;
  const from = kind === 'u32' ? U32 : kind === 'u64' ? U64 : kind === 'i64' ? I64 : kind === 'double' ? DOUBLES : STRINGS;
  return from[Math.floor(pick() * from.length)] as T;
}

const FLOW_KINDS: Record<string, 'u32' | 'u64' | 'i64' | 'double' | 'string'> = {
  sequence: 'u64',
  flowId: 'u64',
  'observation.bridge': 'string',
  'observation.mirror': 'string',
  'observation.interface': 'string',
  'key.vlans[]': 'u32',
  'key.vni': 'u32',
  'key.protocol': 'u32',
  'key.etherType': 'u32',
  'key.clientIp': 'string',
  'key.serverIp': 'string',
  'key.clientPort': 'u32',
  'key.serverPort': 'u32',
  'key.clientMac': 'string',
  'key.icmpId': 'u32',
  'key.icmpType': 'u32',
  startUs: 'i64',
  endUs: 'i64',
  'clientToServer.packets': 'u64',
  'clientToServer.bytes': 'u64',
  'clientToServer.firstUs': 'i64',
  'clientToServer.lastUs': 'i64',
  'clientToServer.tcpFlags': 'u32',
  'serverToClient.bytes': 'u64',
  'tcp.handshakeRttUs': 'double',
  'tcp.handshakeClientUs': 'double',
  'tcp.clientToServer.retransmits': 'u32',
  'tcp.serverToClient.dupAcks': 'u32',
  'tcp.serverTsRttSummary.minUs': 'double',
  'tcp.serverTsRttSummary.count': 'u32',
  'icmp.echoRequests': 'u32',
  'icmp.unanswered': 'u32',
  'icmp.rtt.sumUs': 'double',
  'icmp.rtt.bucketCounts[]': 'u32',
  lossRate: 'double',
};
const PAIR_KINDS: Record<string, 'u32' | 'u64' | 'i64' | 'double' | 'string'> = {
  windowStartUs: 'i64',
  a: 'string',
  b: 'string',
  'aToB.packets': 'u64',
  'aToB.bytes': 'u64',
  'bToA.bytes': 'u64',
  flows: 'u32',
  'tcp.handshakes': 'u32',
  'tcp.handshakeRttUs.min': 'double',
  'tcp.handshakeRttUs.p95': 'double',
  'tcp.dataSegments': 'u32',
  'icmp.rttUs.count': 'u32',
  'icmp.rttUs.max': 'double',
  lossRate: 'double',
  throughputBps: 'double',
  'trend.ewmaBps': 'double',
  'trend.forecastBps[]': 'double',
};

/** Records as the flow table writes them: TCP with handshake and loss, ICMP echo, UDP. */
function tableRecords(): FlowRecord[] {
  const out: FlowRecord[] = [];
  const t = new FlowTable({ onRecord: (r) => out.push(r), agentId: 'hv1', epochUs: 1_700_000_000_000_000, observation: { bridge: 'br-int', interface: 'mf0' } });
  const c = new TcpConv({ ip: '10.0.0.1', port: 41000, mac: 0x0a0000000001 }, { ip: '10.0.0.2', port: 22, mac: 0x0a0000000002 }, { l2: { vlans: [7] }, ts: true });
  c.handshake(0, 100 * US, 20 * US);
  c.data('c2s', 1 * MS, 100);
  c.data('c2s', 2 * MS, 100, { seq: c.nxt.c2s - 100 });
  c.data('s2c', 3 * MS, 1400);
  for (const { f, tNs } of c.frames) t.addFrame(f, tNs);
  const e = new EchoConv({ ip: 'fd00::1', mac: 0x0a0000000003 }, { ip: 'fd00::2', mac: 0x0a0000000004 }, 77);
  for (let i = 0; i < 5; i++) {
    e.request(10 * MS + i * MS, i);
    if (i !== 3) e.reply(10 * MS + i * MS + 150 * US + i * US, i);
  }
  for (const { f, tNs } of e.frames) t.addFrame(f, tNs);
  t.addFrame(udpFrame({ ip: '10.0.0.9', port: 5353 }, { ip: '10.0.0.10', port: 53 }, 30), 20 * MS);
  t.flush();
  return out;
}

function flowRecordsUnderTest(): FlowRecord[] {
  const base = [tcpRecord(), icmpRecord(), otherRecord(), ...tableRecords()];
  const pick = rng(7);
  const out = [...base];
  for (let i = 0; i < 400; i++) out.push(mutate(base[i % base.length]!, pick, FLOW_KINDS));
  return out;
}

function pairWindowsUnderTest(): PairWindow[] {
  const withTrend: PairWindow = { ...pairWindow(2), trend: { ewmaBps: 1234.5, forecastBps: [1, 2.5, 0, -0, NaN] } };
  const emptyTrend: PairWindow = { ...pairWindow(3), trend: { ewmaBps: 0, forecastBps: [] } };
  const base = [pairWindow(), withTrend, emptyTrend];
  const pick = rng(11);
  const out = [...base];
  for (let i = 0; i < 300; i++) out.push(mutate(base[i % base.length]!, pick, PAIR_KINDS));
  return out;
}

function sinkBytes(write: (w: ProtoSink) => void): Buffer {
  const w = new ProtoSink(64);
  write(w);
  return Buffer.from(w.take());
}

describe('capture/record-json and record-protobuf (direct writers)', () => {
  it('FlowRecord JSON text equals the table-driven proto3 JSON mapping, edge values included', () => {
    for (const r of flowRecordsUnderTest()) expect(flowRecordJsonText(r)).to.equal(JSON.stringify(toProto3Json(r)));
  });

  it('PairWindow JSON text equals the table-driven proto3 JSON mapping, edge values included', () => {
    for (const w of pairWindowsUnderTest()) expect(pairWindowJsonText(w)).to.equal(JSON.stringify(pairWindowToProto3Json(w)));
  });

  it('JSON lines written as bytes equal the text writers’ lines (UTF-8), in one growing buffer', () => {
    const lines = (xs: unknown[], text: (x: never) => string, into: (o: ProtoSink, x: never) => void) => {
      const w = new ProtoSink(64); // small: grows while writing
      const expected: string[] = [];
      for (const x of xs) {
        let t: string | undefined;
        try {
          t = `${text(x as never)}\n`;
        } catch {
          t = undefined;
        }
        const before = w.length;
        if (t === undefined) {
          expect(() => into(w, x as never)).to.throw();
          expect(w.length).to.equal(before); // nothing of a failed line is kept
          continue;
        }
        into(w, x as never);
        expect(Buffer.from(w.buf.subarray(before, w.length)).toString('utf8')).to.equal(t);
        expected.push(t);
      }
      expect(Buffer.from(w.take()).equals(Buffer.from(expected.join(''), 'utf8'))).to.equal(true);
    };
    const weird = { ...pairWindow(5), a: 'vm-é"\\\u0001\u007f😀', b: '\ud800lone', aToB: { packets: 2 ** 60, bytes: -5 }, bToA: { packets: 1e8, bytes: 2 ** 53 }, flows: 2 ** 31, throughputBps: 1e21 + 0.5 };
    lines([...pairWindowsUnderTest(), weird], pairWindowJsonText, writePairWindowJsonLine);
    // windows of one span one after the other (as an aggregator emits them), with failed lines and
    // edge values between them
    const same = (over: Partial<PairWindow>): PairWindow => ({ ...pairWindow(6), ...over });
    lines(
      [
        same({}),
        same({ a: 'vm-2' }),
        same({ windowEndUs: NaN }),
        same({ a: 'vm-3' }),
        same({ windowStartUs: -0 }),
        same({ windowStartUs: 0 }),
        same({ windowStartUs: 0, id: '' }),
        same({ windowStartUs: 0 }),
        same({ schemaVersion: -0 }),
        same({ schemaVersion: 0 }),
        same({ a: 'vm-4' }),
        same({ windowStartUs: 5, aToB: { packets: NaN, bytes: 1 } }), // fails part-way through
        same({ windowStartUs: 5, id: 'a-longer-id-written-over-the-failed-line' }),
      ],
      pairWindowJsonText,
      writePairWindowJsonLine,
    );
    const badInt = { ...tcpRecord(), startUs: NaN };
    lines([...flowRecordsUnderTest(), badInt, { ...tcpRecord(), exportReason: 'bogus' as never }], flowRecordJsonText, writeFlowRecordJsonLine);
    expect(jsonLineWriterOf(pairWindowJsonText)).to.equal(writePairWindowJsonLine);
    expect(jsonLineWriterOf(flowRecordJsonText)).to.equal(writeFlowRecordJsonLine);
    expect(jsonLineWriterOf((x: unknown) => String(x))).to.equal(undefined);
  });

  it('doubles are written as JSON.stringify writes them, those with one to three decimal places (digits written directly) included', () => {
    const pick = rng(23);
    const values: number[] = [0.1, -0.1, 0.05, 0.001, 0.3, 0.1 + 0.2, 1.005, 2.675, 1e12 - 0.001, 1e12 - 0.5, 1e12 + 0.5, 999999999999.9, 7078.4, 14624.8, 13184.123];
    for (let i = 0; i < 20_000; i++) {
      const d = 10 ** (1 + (i % 3));
      const magnitude = 10 ** Math.floor(pick() * 13);
      const v = Math.round(pick() * magnitude * d) / d; // one to three places, up to about 10^12
      values.push(i % 5 === 0 ? -v : v, pick() * magnitude, v + 1e-9);
    }
    const w = new ProtoSink(64);
    for (const v of values) {
      const before = w.length;
      writePairWindowJsonLine(w, { ...pairWindow(), throughputBps: v });
      const text = Buffer.from(w.buf.subarray(before, w.length)).toString('utf8');
      const written = /"throughputBps":([^,}]*)/.exec(text)?.[1];
      if (Object.is(v, 0)) expect(written, String(v)).to.equal(undefined); // the proto3 default (-0 is not)
      else expect(written, String(v)).to.equal(JSON.stringify(v));
    }
  });

  it('FlowRecord protobuf bytes equal the codec’s delimited encoding (one buffer, many records)', () => {
    const rs = flowRecordsUnderTest();
    const w = new ProtoSink(64); // small: grows and moves bodies while writing
    const expected: Buffer[] = [];
    for (const r of rs) {
      expect(sinkBytes((s) => writeFlowRecordDelimited(s, r)).equals(encodeRecordDelimited('flow-record', r)), r.id).to.equal(true);
      writeFlowRecordDelimited(w, r);
      expected.push(encodeRecordDelimited('flow-record', r));
    }
    expect(Buffer.from(w.take()).equals(Buffer.concat(expected))).to.equal(true);
  });

  it('PairWindow protobuf bytes equal the codec’s delimited encoding', () => {
    let failed = 0;
    for (const x of pairWindowsUnderTest()) {
      const outcome = (f: () => Buffer): string => {
        try {
          return f().toString('hex');
        } catch (e) {
          return (e as Error).message;
        }
      };
      const mine = outcome(() => sinkBytes((s) => writePairWindowDelimited(s, x)));
      const codec = outcome(() => encodeRecordDelimited('pair-window', x));
      expect(mine, x.id).to.equal(codec);
      if (codec.startsWith('codec:')) failed++;
    }
    expect(failed).to.be.below(100); // some mutations put the end before the start: both refuse
  });

  it('protobufjs reads the bytes back to the same proto3 JSON as the text writer', () => {
    const T = protoType('flow-record');
    for (const r of [tcpRecord(), icmpRecord(), otherRecord(), ...tableRecords()]) {
      const bytes = sinkBytes((s) => writeFlowRecordDelimited(s, r));
      expect(T.toObject(T.decodeDelimited(bytes), TO_JSON)).to.deep.equal(JSON.parse(flowRecordJsonText(r)));
    }
    const P = protoType('pair-window');
    const w = { ...pairWindow(4), trend: { ewmaBps: 10, forecastBps: [1, 2] } };
    expect(P.toObject(P.decodeDelimited(sinkBytes((s) => writePairWindowDelimited(s, w))), TO_JSON)).to.deep.equal(JSON.parse(pairWindowJsonText(w)));
  });

  it('a record that does not fit the schema fails as the codec fails, and leaves no bytes behind', () => {
    const bad: [string, FlowRecord][] = [
      ['empty id', { ...tcpRecord(), id: '' }],
      ['schema version', { ...tcpRecord(), schemaVersion: 99 }],
      ['uint32 range', { ...tcpRecord(), key: { ...tcpRecord().key, clientPort: 70000.5 } }],
      ['uint64 sign', { ...tcpRecord(), clientToServer: { ...tcpRecord().clientToServer, bytes: -1 } }],
      ['int64 range', { ...tcpRecord(), startUs: 2 ** 60 }],
      ['enum', { ...tcpRecord(), exportReason: 'bogus' as never }],
      ['missing sub-message', { ...tcpRecord(), serverToClient: undefined as never }],
      ['sketch lengths', { ...icmpRecord(), icmp: { ...icmpRecord().icmp!, rtt: { ...icmpRecord().icmp!.rtt!, bucketCounts: [] } } }],
    ];
    for (const [what, r] of bad) {
      let codecMessage = '';
      try {
        encodeRecordDelimited('flow-record', r);
      } catch (e) {
        codecMessage = (e as Error).message;
      }
      expect(codecMessage, what).to.match(/^codec: cannot encode FlowRecord/);
      const w = new ProtoSink(64);
      writeFlowRecordDelimited(w, tcpRecord());
      const before = w.length;
      expect(() => writeFlowRecordDelimited(w, r), what).to.throw(codecMessage);
      expect(w.length, what).to.equal(before);
    }
    let codecMessage = '';
    const wbad = { ...pairWindow(), windowEndUs: 0 };
    try {
      encodeRecordDelimited('pair-window', wbad);
    } catch (e) {
      codecMessage = (e as Error).message;
    }
    expect(() => writePairWindowDelimited(new ProtoSink(), wbad)).to.throw(codecMessage);
  });
});
