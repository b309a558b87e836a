/**
 * Direct writers of the canonical proto3 JSON text of a PairWindow and a FlowRecord: the same text
 * as JSON.stringify(pairWindowToProto3Json(w)) / JSON.stringify(toProto3Json(r)) (flow-record.ts,
 * driven by the field tables), built as one string without the intermediate object tree — the
 * per-record cost of JSON lines output. Same rules, field for field, in field-number order:
 *   - scalars equal to their proto3 default are omitted (0, '', false; -0 is not a default), except
 *     `optional` fields, written whenever present;
 *   - 64-bit integers as decimal strings, doubles as numbers (NaN/Infinity/-Infinity as strings),
 *     uint32 as `value >>> 0`, enums by proto value name, present sub-messages always (even `{}`),
 *     empty repeated fields omitted.
 * test/unit/capture/record-json.test.ts checks the text against the table-driven mapping (and
 * protobufjs' toJSON) on many records, edge values included; a field added to the .proto must be
 * added here too (the test fails until it is).
 */
import {
  EXPORT_REASONS,
  TUNNEL_NAMES,
  type DirectionCounters,
  type FlowRecord,
  type LatencySummary,
  type PairWindow,
  type RttSummary,
  type TcpDirectionRecord,
  type TrafficCounters,
} from './flow-record.js';
import type { RttSketchData } from './rtt-sketch.js';

const str = (v: unknown): string => JSON.stringify(String(v));

/** A uint32 field: `,"name":n`, or '' when the value is the default. */
function u32(name: string, v: number): string {
  if (v === undefined || v === null) return '';
  const n = Number(v);
  if (n === 0 && !Object.is(n, -0)) return '';
  return `,"${name}":${n >>> 0}`;
}
function u32Opt(name: string, v: number | undefined): string {
  return v === undefined || v === null ? '' : `,"${name}":${Number(v) >>> 0}`;
}

function int64Text(v: unknown): string {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  const n = typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v)));
  return n.toString();
}
/** An int64/uint64 field (as a JSON string). */
function i64(name: string, v: number): string {
  if (v === undefined || v === null) return '';
  const n = Number(v);
  if (n === 0 && !Object.is(n, -0)) return '';
  return `,"${name}":"${int64Text(v)}"`;
}

function doubleText(v: unknown): string {
  const n = Number(v);
  if (Number.isNaN(n)) return '"NaN"';
  if (n === Infinity) return '"Infinity"';
  if (n === -Infinity) return '"-Infinity"';
  return JSON.stringify(n);
}
function dbl(name: string, v: number): string {
  if (v === undefined || v === null) return '';
  const n = Number(v);
  if (n === 0 && !Object.is(n, -0)) return '';
  return `,"${name}":${doubleText(v)}`;
}
function dblOpt(name: string, v: number | undefined): string {
  return v === undefined || v === null ? '' : `,"${name}":${doubleText(v)}`;
}
function text(name: string, v: string): string {
  if (v === undefined || v === null || v === '') return '';
  return `,"${name}":${str(v)}`;
}
function bool(name: string, v: boolean): string {
  if (v === undefined || v === null || v === false) return '';
  return `,"${name}":${Boolean(v)}`;
}
/** A sub-message: `,"name":{…}` (written when present, even empty). */
function msg(name: string, body: string): string {
  return `,"${name}":{${body.length ? body.slice(1) : ''}}`;
}
function repeatedNumbers(name: string, v: readonly number[] | undefined, each: (x: number) => string): string {
  if (!Array.isArray(v) || v.length === 0) return '';
  let s = '';
  for (let i = 0; i < v.length; i++) s += (i ? ',' : '') + each(v[i]!);
  return `,"${name}":[${s}]`;
}

const uint32Text = (x: number): string => String(Number(x) >>> 0);

function enumText(prefix: string, values: readonly string[], v: string): string {
  if (!values.includes(v)) throw new Error(`flow-record: unknown enum value (value=${String(v)})`);
  return `"${prefix}${v.toUpperCase().replace(/-/g, '_')}"`;
}
/** Enum field: omitted when it is the first value (the proto default). */
function enumField(name: string, prefix: string, values: readonly string[], v: string): string {
  if (v === undefined || v === null || v === values[0]) return '';
  return `,"${name}":${enumText(prefix, values, v)}`;
}
const EXPORT_REASON_VALUES: readonly string[] = ['unspecified', ...EXPORT_REASONS];
const EXPORT_REASON_TEXT = new Map(EXPORT_REASONS.map((r) => [r as string, enumText('EXPORT_REASON_', EXPORT_REASON_VALUES, r)]));

// ---- PairWindow

function latency(name: string, l: LatencySummary | undefined): string {
  if (l === undefined || l === null) return '';
  return msg(name, u32('count', l.count) + dbl('min', l.min) + dbl('p50', l.p50) + dbl('p95', l.p95) + dbl('max', l.max));
}
function traffic(name: string, t: TrafficCounters | undefined): string {
  if (t === undefined || t === null) return '';
  return msg(name, i64('packets', t.packets) + i64('bytes', t.bytes));
}

/** The canonical proto3 JSON text of a PairWindow (no newline). */
export function pairWindowJsonText(w: PairWindow): string {
  let s =
    text('id', w.id) +
    u32('schemaVersion', w.schemaVersion) +
    i64('windowStartUs', w.windowStartUs) +
    i64('windowEndUs', w.windowEndUs) +
    text('a', w.a) +
    text('b', w.b) +
    traffic('aToB', w.aToB) +
    traffic('bToA', w.bToA) +
    u32('flows', w.flows);
  const t = w.tcp;
  if (t !== undefined && t !== null) {
    s += msg(
      'tcp',
      u32('handshakes', t.handshakes) +
        u32('failedHandshakes', t.failedHandshakes) +
        latency('handshakeRttUs', t.handshakeRttUs) +
        u32('retransmits', t.retransmits) +
        u32('gapFills', t.gapFills) +
        u32('dataSegments', t.dataSegments),
    );
  }
  const i = w.icmp;
  if (i !== undefined && i !== null) s += msg('icmp', u32('echoRequests', i.echoRequests) + u32('echoReplies', i.echoReplies) + latency('rttUs', i.rttUs));
  s += dbl('lossRate', w.lossRate) + dbl('throughputBps', w.throughputBps);
  const tr = w.trend;
  if (tr !== undefined && tr !== null) s += msg('trend', dbl('ewmaBps', tr.ewmaBps) + repeatedNumbers('forecastBps', tr.forecastBps, doubleText));
  return `{${s.length ? s.slice(1) : ''}}`;
}

// ---- FlowRecord

function direction(name: string, d: DirectionCounters): string {
  if (d === undefined || d === null) return '';
  return msg(name, i64('packets', d.packets) + i64('bytes', d.bytes) + i64('firstUs', d.firstUs) + i64('lastUs', d.lastUs) + u32('tcpFlags', d.tcpFlags));
}
function tcpDirection(name: string, d: TcpDirectionRecord): string {
  if (d === undefined || d === null) return '';
  return msg(
    name,
    u32('dataSegments', d.dataSegments) +
      u32('retransmits', d.retransmits) +
      u32('gapFills', d.gapFills) +
      u32('outOfOrder', d.outOfOrder) +
      u32('dupAcks', d.dupAcks) +
      u32('zeroWindows', d.zeroWindows) +
      u32('rsts', d.rsts) +
      u32('synRetransmits', d.synRetransmits),
  );
}
function summary(name: string, x: RttSummary | undefined): string {
  if (x === undefined || x === null) return '';
  return msg(name, u32('count', x.count) + dbl('minUs', x.minUs) + dbl('maxUs', x.maxUs) + dbl('sumUs', x.sumUs));
}
function sketch(name: string, x: RttSketchData | undefined): string {
  if (x === undefined || x === null) return '';
  return msg(
    name,
    u32('count', x.count) +
      dbl('minUs', x.minUs) +
      dbl('maxUs', x.maxUs) +
      dbl('sumUs', x.sumUs) +
      repeatedNumbers('bucketDeltas', x.bucketDeltas, uint32Text) +
      repeatedNumbers('bucketCounts', x.bucketCounts, uint32Text),
  );
}

/** The canonical proto3 JSON text of a FlowRecord (no newline). */
export function flowRecordJsonText(r: FlowRecord): string {
  let s = text('id', r.id) + u32('schemaVersion', r.schemaVersion) + i64('sequence', r.sequence) + i64('flowId', r.flowId);
  const o = r.observation;
  if (o !== undefined && o !== null) s += msg('observation', text('agentId', o.agentId) + text('bridge', o.bridge) + text('mirror', o.mirror) + text('interface', o.interface));
  const reason = r.exportReason;
  if (reason !== undefined && reason !== null && reason !== EXPORT_REASON_VALUES[0]) {
    s += `,"exportReason":${EXPORT_REASON_TEXT.get(reason) ?? enumText('EXPORT_REASON_', EXPORT_REASON_VALUES, reason)}`;
  }
  const k = r.key;
  if (k !== undefined && k !== null) {
    s += msg(
      'key',
      repeatedNumbers('vlans', k.vlans, uint32Text) +
        enumField('tunnel', 'TUNNEL_', TUNNEL_NAMES, k.tunnel) +
        u32Opt('vni', k.vni) +
        u32('ipVersion', k.ipVersion) +
        u32('protocol', k.protocol) +
        u32('etherType', k.etherType) +
        text('clientIp', k.clientIp) +
        text('serverIp', k.serverIp) +
        u32('clientPort', k.clientPort) +
        u32('serverPort', k.serverPort) +
        text('clientMac', k.clientMac) +
        text('serverMac', k.serverMac) +
        u32Opt('icmpId', k.icmpId) +
        u32Opt('icmpType', k.icmpType) +
        u32Opt('icmpCode', k.icmpCode) +
        bool('fragmentsOnly', k.fragmentsOnly),
    );
  }
  s += i64('startUs', r.startUs) + i64('endUs', r.endUs) + direction('clientToServer', r.clientToServer) + direction('serverToClient', r.serverToClient);
  const t = r.tcp;
  if (t !== undefined && t !== null) {
    s += msg(
      'tcp',
      dblOpt('handshakeRttUs', t.handshakeRttUs) +
        dblOpt('handshakeServerUs', t.handshakeServerUs) +
        dblOpt('handshakeClientUs', t.handshakeClientUs) +
        bool('synOnly', t.synOnly) +
        bool('rstAnswered', t.rstAnswered) +
        bool('failed', t.failed) +
        tcpDirection('clientToServer', t.clientToServer) +
        tcpDirection('serverToClient', t.serverToClient) +
        summary('serverTsRttSummary', t.serverTsRttSummary) +
        summary('clientTsRttSummary', t.clientTsRttSummary),
    );
  }
  const i = r.icmp;
  if (i !== undefined && i !== null) {
    s += msg('icmp', u32('echoRequests', i.echoRequests) + u32('echoReplies', i.echoReplies) + u32('unanswered', i.unanswered) + sketch('rtt', i.rtt));
  }
  s += dbl('lossRate', r.lossRate);
  return `{${s.length ? s.slice(1) : ''}}`;
}
