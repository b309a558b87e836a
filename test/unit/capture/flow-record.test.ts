import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import {
  FLOW_RECORD_SPEC,
  PAIR_WINDOW_SPEC,
  pairWindowToProto3Json,
  summarizeSketch,
  toProto3Json,
  type FlowRecord,
  type MessageSpec,
  type PairWindow,
} from '../../../src/capture/flow-record.js';
import { FlowTable } from '../../../src/capture/flow-table.js';
import { RttSketch } from '../../../src/capture/rtt-sketch.js';
import { TcpConv, US, MS } from '../../helpers/synth-flows.js';

function tcpRecord(): FlowRecord {
  const c = new TcpConv({ ip: '10.0.0.1', port: 41000, mac: 0x0a0000000001 }, { ip: '10.0.0.2', port: 22, mac: 0x0a0000000002 }, { l2: { vni: 0 } });
  c.handshake(0, 100 * US, 20 * US);
  c.data('c2s', 1 * MS, 100);
  c.data('c2s', 2 * MS, 100, { seq: c.nxt.c2s - 100 });
  const out: FlowRecord[] = [];
  const t = new FlowTable({ onRecord: (r) => out.push(r), agentId: 'hv1', epochUs: 1_700_000_000_000_000, observation: { bridge: 'br-int' } });
  for (const { f, tNs } of c.frames) t.addFrame(f, tNs);
  t.flush();
  return out[0]!;
}

// ---- a small .proto reader: message name → fields
interface ProtoField {
  name: string;
  number: number;
  type: string;
  repeated: boolean;
  optional: boolean;
}
function readProto(): Map<string, ProtoField[]> {
  const text = readFileSync(new URL('../../../proto/mirrorflow.proto', import.meta.url), 'utf8').replace(/\/\/.*$/gm, '');
  const out = new Map<string, ProtoField[]>();
  for (const m of text.matchAll(/message\s+(\w+)\s*\{([^}]*)\}/g)) {
    const fields: ProtoField[] = [];
    for (const f of m[2]!.matchAll(/(repeated\s+|optional\s+)?(\w+)\s+(\w+)\s*=\s*(\d+)\s*;/g)) {
      fields.push({ name: f[3]!, number: Number(f[4]), type: f[2]!, repeated: f[1]?.trim() === 'repeated', optional: f[1]?.trim() === 'optional' });
    }
    out.set(m[1]!, fields);
  }
  return out;
}
const lowerCamel = (s: string): string => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function checkAgainstProto(spec: MessageSpec, proto: Map<string, ProtoField[]>, seen = new Set<string>()): void {
  if (seen.has(spec.name)) return;
  seen.add(spec.name);
  const pf = proto.get(spec.name);
  expect(pf, `message ${spec.name} in the .proto`).to.not.equal(undefined);
  expect(pf!.map((f) => f.number), `${spec.name} field numbers`).to.deep.equal(spec.fields.map((f) => f.number));
  expect(new Set(pf!.map((f) => f.number)).size).to.equal(pf!.length);
  for (let i = 0; i < pf!.length; i++) {
    const p = pf![i]!;
    const s = spec.fields[i]!;
    expect(lowerCamel(p.name), `${spec.name}.${p.name}`).to.equal(s.name);
    expect(p.repeated, `${spec.name}.${p.name} repeated`).to.equal(s.repeated === true);
    expect(p.optional, `${spec.name}.${p.name} optional`).to.equal(s.optional === true);
    if (typeof s.type === 'string') expect(p.type, `${spec.name}.${p.name} type`).to.equal(s.type);
    else if ('message' in s.type) {
      expect(p.type).to.equal(s.type.message.name);
      checkAgainstProto(s.type.message, proto, seen);
    }
  }
}

function checkAgainstAvro(spec: MessageSpec, avro: { name: string; fields: { name: string; type: unknown }[] }, named: Map<string, unknown>): void {
  expect(avro.name).to.equal(spec.name);
  expect(avro.fields.map((f) => f.name)).to.deep.equal(spec.fields.map((f) => f.name));
  spec.fields.forEach((f, i) => {
    if (typeof f.type === 'object' && 'message' in f.type) {
      let t = (avro.fields[i]!.type as unknown[])[1];
      if (typeof t === 'string') t = named.get(t);
      else named.set((t as { name: string }).name, t);
      checkAgainstAvro(f.type.message, t as typeof avro, named);
    }
  });
}

describe('capture/flow-record', () => {
  it('maps a record to canonical proto3 JSON: lowerCamelCase, int64 as strings, enums by name, defaults omitted', () => {
    const r = tcpRecord();
    const j = toProto3Json(r);
    expect(j.id).to.equal('hv1-1');
    expect(j.schemaVersion).to.equal(2);
    expect(j.sequence).to.equal('1');
    expect(j.flowId).to.equal('1');
    expect(j.exportReason).to.equal('EXPORT_REASON_FLUSH');
    expect(j.startUs).to.equal('1700000000000000');
    expect(j.observation).to.deep.equal({ agentId: 'hv1', bridge: 'br-int' });
    const key = j.key as Record<string, unknown>;
    expect(key).to.deep.equal({
      tunnel: 'TUNNEL_VXLAN',
      vni: 0, // proto3 optional: present even when zero
      ipVersion: 4,
      protocol: 6,
      etherType: 2048,
      clientIp: '10.0.0.1',
      serverIp: '10.0.0.2',
      clientPort: 41000,
      serverPort: 22,
      clientMac: '0a:00:00:00:00:01',
      serverMac: '0a:00:00:00:00:02',
    });
    const c2s = j.clientToServer as Record<string, unknown>;
    expect(c2s.packets).to.equal('4');
    expect(c2s.bytes).to.equal(String(54 * 4 + 200));
    expect(c2s.firstUs).to.equal('1700000000000000');
    expect(c2s.tcpFlags).to.equal(0x1a);
    const tcp = j.tcp as Record<string, Record<string, unknown>>;
    expect(tcp.handshakeRttUs).to.equal(120);
    expect(tcp.clientToServer).to.deep.equal({ dataSegments: 2, retransmits: 1 });
    expect(tcp.serverToClient).to.deep.equal({}); // a present sub-message is written, even when all its fields are default
    expect(j.lossRate).to.equal(0.5);
    expect('icmp' in j).to.equal(false);
    expect(JSON.parse(JSON.stringify(j))).to.deep.equal(j);
  });

  it('writes NaN/Infinity doubles as strings and rejects unknown enum values', () => {
    const r = tcpRecord();
    expect(toProto3Json({ ...r, lossRate: NaN }).lossRate).to.equal('NaN');
    expect(() => toProto3Json({ ...r, exportReason: 'bogus' as never })).to.throw(/unknown enum value/);
  });

  it('maps a PairWindow', () => {
    const s = new RttSketch();
    for (const v of [100_000, 200_000, 300_000]) s.add(v);
    const w: PairWindow = {
      id: 'agg-1',
      schemaVersion: 1,
      windowStartUs: 1_700_000_000_000_000,
      windowEndUs: 1_700_000_060_000_000,
      a: '10.0.0.1',
      b: '10.0.0.2',
      aToB: { packets: 10, bytes: 1000 },
      bToA: { packets: 0, bytes: 0 },
      flows: 2,
      tcp: { handshakes: 2, failedHandshakes: 0, handshakeRttUs: summarizeSketch(s), retransmits: 0, gapFills: 0, dataSegments: 8 },
      icmp: { echoRequests: 0, echoReplies: 0, rttUs: summarizeSketch(new RttSketch()) },
      lossRate: 0,
      throughputBps: 133.33,
    };
    const j = pairWindowToProto3Json(w);
    expect(Math.abs(s.quantileUs(0.5) - 200) / 200).to.be.below(0.004);
    expect(j).to.deep.equal({
      id: 'agg-1',
      schemaVersion: 1,
      windowStartUs: '1700000000000000',
      windowEndUs: '1700000060000000',
      a: '10.0.0.1',
      b: '10.0.0.2',
      aToB: { packets: '10', bytes: '1000' },
      bToA: {},
      flows: 2,
      tcp: { handshakes: 2, handshakeRttUs: { count: 3, min: 100, p50: s.quantileUs(0.5), p95: 300, max: 300 }, dataSegments: 8 },
      icmp: { rttUs: {} },
      throughputBps: 133.33,
    });
  });

  it('the field tables match proto/mirrorflow.proto (names, numbers, types, labels)', () => {
    const proto = readProto();
    checkAgainstProto(FLOW_RECORD_SPEC, proto);
    checkAgainstProto(PAIR_WINDOW_SPEC, proto);
  });

  it('the Avro twins match the field tables', () => {
    for (const [file, spec] of [
      ['flow_record.avsc', FLOW_RECORD_SPEC],
      ['pair_window.avsc', PAIR_WINDOW_SPEC],
    ] as const) {
      const avro = JSON.parse(readFileSync(new URL(`../../../proto/${file}`, import.meta.url), 'utf8'));
      expect(avro.namespace).to.equal('mirrorflow.v1');
      checkAgainstAvro(spec, avro, new Map());
    }
  });
});
