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
import type { ProtoSink } from './record-protobuf.js';

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

// ---- the same text, written as bytes straight into an output buffer (JSON lines)
//
// Output of replay/capture goes to a byte buffer (record-output.ts): writing the characters there
// directly skips building the line as a string (concatenations, then a UTF-8 encode of the rope).
// Every writer below produces exactly the characters of its string twin above; strings that are
// not plain printable ASCII, and numbers that are not safe integers, go through the same
// JSON.stringify / String as the text writers.

/** `"name":` as bytes, per field name. */
const K = Object.fromEntries(
  [
    'a',
    'aToB',
    'agentId',
    'b',
    'bToA',
    'bridge',
    'bucketCounts',
    'bucketDeltas',
    'bytes',
    'clientIp',
    'clientMac',
    'clientPort',
    'clientToServer',
    'clientTsRttSummary',
    'count',
    'dataSegments',
    'dupAcks',
    'echoReplies',
    'echoRequests',
    'endUs',
    'etherType',
    'ewmaBps',
    'exportReason',
    'failed',
    'failedHandshakes',
    'firstUs',
    'flowId',
    'flows',
    'forecastBps',
    'fragmentsOnly',
    'gapFills',
    'handshakeClientUs',
    'handshakeRttUs',
    'handshakeServerUs',
    'handshakes',
    'icmp',
    'icmpCode',
    'icmpId',
    'icmpType',
    'id',
    'interface',
    'ipVersion',
    'key',
    'lastUs',
    'lossRate',
    'max',
    'maxUs',
    'min',
    'minUs',
    'mirror',
    'observation',
    'outOfOrder',
    'p50',
    'p95',
    'packets',
    'protocol',
    'retransmits',
    'rstAnswered',
    'rsts',
    'rtt',
    'rttUs',
    'schemaVersion',
    'sequence',
    'serverIp',
    'serverMac',
    'serverPort',
    'serverToClient',
    'serverTsRttSummary',
    'startUs',
    'sumUs',
    'synOnly',
    'synRetransmits',
    'tcp',
    'tcpFlags',
    'throughputBps',
    'trend',
    'tunnel',
    'unanswered',
    'vlans',
    'vni',
    'windowEndUs',
    'windowStartUs',
    'zeroWindows',
  ].map((n) => [n, Buffer.from(`"${n}":`, 'latin1')]),
) as Record<string, Uint8Array>;

/** Whether the object being written has no field yet (no comma before the next one). */
let firstField = true;

function putAscii(o: ProtoSink, s: string): void {
  const n = s.length;
  o.ensure(n);
  const b = o.buf;
  const p = o.pos;
  for (let i = 0; i < n; i++) b[p + i] = s.charCodeAt(i);
  o.pos = p + n;
}

function putByte(o: ProtoSink, c: number): void {
  o.ensure(1);
  o.buf[o.pos++] = c;
}

function putKey(o: ProtoSink, k: Uint8Array): void {
  const n = k.length;
  o.ensure(n + 1);
  const b = o.buf;
  let p = o.pos;
  if (!firstField) b[p++] = 44; // ,
  firstField = false;
  for (let i = 0; i < n; i++) b[p + i] = k[i]!;
  o.pos = p + n;
}

/** Digits of an integer 0 ≤ n ≤ 2^53 (String(n) for those). */
function putUint(o: ProtoSink, n: number): void {
  if (n < 0x80000000) {
    putSmall(o, n | 0);
    return;
  }
  // up to 16 digits: the high part, then the low 8 digits zero-padded (integer arithmetic each)
  const hi = Math.floor(n / 1e8);
  putSmall(o, hi | 0);
  let lo = (n - hi * 1e8) | 0;
  o.ensure(8);
  const b = o.buf;
  let p = o.pos + 8;
  o.pos = p;
  for (let i = 0; i < 8; i++) {
    const q = (lo / 10) | 0;
    b[--p] = 48 + lo - q * 10;
    lo = q;
  }
}

/** Digits of an int32 0 ≤ n < 2^31. */
function putSmall(o: ProtoSink, n: number): void {
  let len = 1;
  for (let x = n; x >= 10; x = (x / 10) | 0) len++;
  o.ensure(len);
  const b = o.buf;
  let p = o.pos + len;
  o.pos = p;
  do {
    const q = (n / 10) | 0;
    b[--p] = 48 + n - q * 10;
    n = q;
  } while (n > 0);
}

/** doubleText(v) as bytes. */
function putDouble(o: ProtoSink, v: unknown): void {
  const n = Number(v);
  if (Number.isSafeInteger(n)) {
    if (n < 0) {
      putByte(o, 45); // -
      putUint(o, -n);
    } else putUint(o, n); // -0 too: JSON.stringify(-0) is "0"
    return;
  }
  putAscii(o, doubleText(n));
}

/** str(v) (a JSON string literal) as bytes: printable ASCII without `"` or `\` as is, else through JSON.stringify. */
function putString(o: ProtoSink, v: unknown): void {
  if (typeof v === 'string') {
    // copied as it is checked (one pass); o.pos moves only once the whole string was plain
    const n = v.length;
    o.ensure(n + 2);
    const b = o.buf;
    const p = o.pos;
    b[p] = 0x22;
    let i = 0;
    for (; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) break;
      b[p + 1 + i] = c;
    }
    if (i === n) {
      b[p + 1 + n] = 0x22;
      o.pos = p + n + 2;
      return;
    }
  }
  const t = str(v);
  o.ensure(t.length * 3);
  o.pos += o.buf.write(t, o.pos, 'utf8');
}

function jU32(o: ProtoSink, name: Uint8Array, v: number): void {
  if (v === undefined || v === null) return;
  const n = Number(v);
  if (n === 0 && !Object.is(n, -0)) return;
  putKey(o, name);
  putUint(o, n >>> 0);
}
function jU32Opt(o: ProtoSink, name: Uint8Array, v: number | undefined): void {
  if (v === undefined || v === null) return;
  putKey(o, name);
  putUint(o, Number(v) >>> 0);
}
function jI64(o: ProtoSink, name: Uint8Array, v: number): void {
  if (v === undefined || v === null) return;
  const n = Number(v);
  if (n === 0 && !Object.is(n, -0)) return;
  const safe = typeof v === 'number' && Number.isSafeInteger(v);
  const t = safe ? '' : int64Text(v); // may throw (as the text writer does) before anything is written
  putKey(o, name);
  putByte(o, 0x22);
  if (!safe) putAscii(o, t);
  else if (v < 0) {
    putByte(o, 45);
    putUint(o, -v);
  } else putUint(o, v);
  putByte(o, 0x22);
}
function jDbl(o: ProtoSink, name: Uint8Array, v: number): void {
  if (v === undefined || v === null) return;
  const n = Number(v);
  if (n === 0 && !Object.is(n, -0)) return;
  putKey(o, name);
  putDouble(o, v);
}
function jDblOpt(o: ProtoSink, name: Uint8Array, v: number | undefined): void {
  if (v === undefined || v === null) return;
  putKey(o, name);
  putDouble(o, v);
}
function jText(o: ProtoSink, name: Uint8Array, v: string): void {
  if (v === undefined || v === null || v === '') return;
  putKey(o, name);
  putString(o, v);
}
function jBool(o: ProtoSink, name: Uint8Array, v: boolean): void {
  if (v === undefined || v === null || v === false) return;
  putKey(o, name);
  putAscii(o, Boolean(v) ? 'true' : 'false');
}
/** Opens a sub-message field `"name":{`; close with jClose. */
function jOpen(o: ProtoSink, name: Uint8Array): void {
  putKey(o, name);
  putByte(o, 0x7b);
  firstField = true;
}
function jClose(o: ProtoSink): void {
  putByte(o, 0x7d);
  firstField = false;
}
function jRepeated(o: ProtoSink, name: Uint8Array, v: readonly number[] | undefined, asDouble: boolean): void {
  if (!Array.isArray(v) || v.length === 0) return;
  putKey(o, name);
  putByte(o, 0x5b);
  for (let i = 0; i < v.length; i++) {
    if (i) putByte(o, 44);
    if (asDouble) putDouble(o, v[i]);
    else putUint(o, Number(v[i]) >>> 0);
  }
  putByte(o, 0x5d);
}
function jLatency(o: ProtoSink, name: Uint8Array, l: LatencySummary | undefined): void {
  if (l === undefined || l === null) return;
  jOpen(o, name);
  jU32(o, K.count, l.count);
  jDbl(o, K.min, l.min);
  jDbl(o, K.p50, l.p50);
  jDbl(o, K.p95, l.p95);
  jDbl(o, K.max, l.max);
  jClose(o);
}
function jTraffic(o: ProtoSink, name: Uint8Array, t: TrafficCounters | undefined): void {
  if (t === undefined || t === null) return;
  jOpen(o, name);
  jI64(o, K.packets, t.packets);
  jI64(o, K.bytes, t.bytes);
  jClose(o);
}

/** Runs a line writer; on a throw, leaves `o` as it was. */
function line<T>(o: ProtoSink, x: T, body: (o: ProtoSink, x: T) => void): void {
  const start = o.pos;
  try {
    putByte(o, 0x7b);
    firstField = true;
    body(o, x);
    putByte(o, 0x7d);
    putByte(o, 0x0a);
  } catch (e) {
    o.pos = start;
    throw e;
  }
}

function pairWindowBody(o: ProtoSink, w: PairWindow): void {
  jText(o, K.id, w.id);
  jU32(o, K.schemaVersion, w.schemaVersion);
  jI64(o, K.windowStartUs, w.windowStartUs);
  jI64(o, K.windowEndUs, w.windowEndUs);
  jText(o, K.a, w.a);
  jText(o, K.b, w.b);
  jTraffic(o, K.aToB, w.aToB);
  jTraffic(o, K.bToA, w.bToA);
  jU32(o, K.flows, w.flows);
  const t = w.tcp;
  if (t !== undefined && t !== null) {
    jOpen(o, K.tcp);
    jU32(o, K.handshakes, t.handshakes);
    jU32(o, K.failedHandshakes, t.failedHandshakes);
    jLatency(o, K.handshakeRttUs, t.handshakeRttUs);
    jU32(o, K.retransmits, t.retransmits);
    jU32(o, K.gapFills, t.gapFills);
    jU32(o, K.dataSegments, t.dataSegments);
    jClose(o);
  }
  const i = w.icmp;
  if (i !== undefined && i !== null) {
    jOpen(o, K.icmp);
    jU32(o, K.echoRequests, i.echoRequests);
    jU32(o, K.echoReplies, i.echoReplies);
    jLatency(o, K.rttUs, i.rttUs);
    jClose(o);
  }
  jDbl(o, K.lossRate, w.lossRate);
  jDbl(o, K.throughputBps, w.throughputBps);
  const tr = w.trend;
  if (tr !== undefined && tr !== null) {
    jOpen(o, K.trend);
    jDbl(o, K.ewmaBps, tr.ewmaBps);
    jRepeated(o, K.forecastBps, tr.forecastBps, true);
    jClose(o);
  }
}

/** pairWindowJsonText(w) + '\n', appended to `o` as UTF-8 bytes (o unchanged when it throws). */
export function writePairWindowJsonLine(o: ProtoSink, w: PairWindow): void {
  line(o, w, pairWindowBody);
}

function jDirection(o: ProtoSink, name: Uint8Array, d: DirectionCounters): void {
  if (d === undefined || d === null) return;
  jOpen(o, name);
  jI64(o, K.packets, d.packets);
  jI64(o, K.bytes, d.bytes);
  jI64(o, K.firstUs, d.firstUs);
  jI64(o, K.lastUs, d.lastUs);
  jU32(o, K.tcpFlags, d.tcpFlags);
  jClose(o);
}
function jTcpDirection(o: ProtoSink, name: Uint8Array, d: TcpDirectionRecord): void {
  if (d === undefined || d === null) return;
  jOpen(o, name);
  jU32(o, K.dataSegments, d.dataSegments);
  jU32(o, K.retransmits, d.retransmits);
  jU32(o, K.gapFills, d.gapFills);
  jU32(o, K.outOfOrder, d.outOfOrder);
  jU32(o, K.dupAcks, d.dupAcks);
  jU32(o, K.zeroWindows, d.zeroWindows);
  jU32(o, K.rsts, d.rsts);
  jU32(o, K.synRetransmits, d.synRetransmits);
  jClose(o);
}
function jSummary(o: ProtoSink, name: Uint8Array, x: RttSummary | undefined): void {
  if (x === undefined || x === null) return;
  jOpen(o, name);
  jU32(o, K.count, x.count);
  jDbl(o, K.minUs, x.minUs);
  jDbl(o, K.maxUs, x.maxUs);
  jDbl(o, K.sumUs, x.sumUs);
  jClose(o);
}

function flowRecordBody(o: ProtoSink, r: FlowRecord): void {
  jText(o, K.id, r.id);
  jU32(o, K.schemaVersion, r.schemaVersion);
  jI64(o, K.sequence, r.sequence);
  jI64(o, K.flowId, r.flowId);
  const ob = r.observation;
  if (ob !== undefined && ob !== null) {
    jOpen(o, K.observation);
    jText(o, K.agentId, ob.agentId);
    jText(o, K.bridge, ob.bridge);
    jText(o, K.mirror, ob.mirror);
    jText(o, K.interface, ob.interface);
    jClose(o);
  }
  const reason = r.exportReason;
  if (reason !== undefined && reason !== null && reason !== EXPORT_REASON_VALUES[0]) {
    const t = EXPORT_REASON_TEXT.get(reason) ?? enumText('EXPORT_REASON_', EXPORT_REASON_VALUES, reason);
    putKey(o, K.exportReason);
    putAscii(o, t);
  }
  const k = r.key;
  if (k !== undefined && k !== null) {
    jOpen(o, K.key);
    jRepeated(o, K.vlans, k.vlans, false);
    const tunnel = k.tunnel;
    if (tunnel !== undefined && tunnel !== null && tunnel !== TUNNEL_NAMES[0]) {
      const t = enumText('TUNNEL_', TUNNEL_NAMES, tunnel);
      putKey(o, K.tunnel);
      putAscii(o, t);
    }
    jU32Opt(o, K.vni, k.vni);
    jU32(o, K.ipVersion, k.ipVersion);
    jU32(o, K.protocol, k.protocol);
    jU32(o, K.etherType, k.etherType);
    jText(o, K.clientIp, k.clientIp);
    jText(o, K.serverIp, k.serverIp);
    jU32(o, K.clientPort, k.clientPort);
    jU32(o, K.serverPort, k.serverPort);
    jText(o, K.clientMac, k.clientMac);
    jText(o, K.serverMac, k.serverMac);
    jU32Opt(o, K.icmpId, k.icmpId);
    jU32Opt(o, K.icmpType, k.icmpType);
    jU32Opt(o, K.icmpCode, k.icmpCode);
    jBool(o, K.fragmentsOnly, k.fragmentsOnly);
    jClose(o);
  }
  jI64(o, K.startUs, r.startUs);
  jI64(o, K.endUs, r.endUs);
  jDirection(o, K.clientToServer, r.clientToServer);
  jDirection(o, K.serverToClient, r.serverToClient);
  const t = r.tcp;
  if (t !== undefined && t !== null) {
    jOpen(o, K.tcp);
    jDblOpt(o, K.handshakeRttUs, t.handshakeRttUs);
    jDblOpt(o, K.handshakeServerUs, t.handshakeServerUs);
    jDblOpt(o, K.handshakeClientUs, t.handshakeClientUs);
    jBool(o, K.synOnly, t.synOnly);
    jBool(o, K.rstAnswered, t.rstAnswered);
    jBool(o, K.failed, t.failed);
    jTcpDirection(o, K.clientToServer, t.clientToServer);
    jTcpDirection(o, K.serverToClient, t.serverToClient);
    jSummary(o, K.serverTsRttSummary, t.serverTsRttSummary);
    jSummary(o, K.clientTsRttSummary, t.clientTsRttSummary);
    jClose(o);
  }
  const i = r.icmp;
  if (i !== undefined && i !== null) {
    jOpen(o, K.icmp);
    jU32(o, K.echoRequests, i.echoRequests);
    jU32(o, K.echoReplies, i.echoReplies);
    jU32(o, K.unanswered, i.unanswered);
    const x = i.rtt;
    if (x !== undefined && x !== null) {
      jOpen(o, K.rtt);
      jU32(o, K.count, x.count);
      jDbl(o, K.minUs, x.minUs);
      jDbl(o, K.maxUs, x.maxUs);
      jDbl(o, K.sumUs, x.sumUs);
      jRepeated(o, K.bucketDeltas, x.bucketDeltas, false);
      jRepeated(o, K.bucketCounts, x.bucketCounts, false);
      jClose(o);
    }
    jClose(o);
  }
  jDbl(o, K.lossRate, r.lossRate);
}

/** flowRecordJsonText(r) + '\n', appended to `o` as UTF-8 bytes (o unchanged when it throws). */
export function writeFlowRecordJsonLine(o: ProtoSink, r: FlowRecord): void {
  line(o, r, flowRecordBody);
}

/** The byte writer of a text writer above (record-output.ts jsonTextLinesEncoder uses it when there is one). */
export function jsonLineWriterOf<T>(toJsonText: (r: T) => string): ((o: ProtoSink, r: T) => void) | undefined {
  if ((toJsonText as unknown) === pairWindowJsonText) return writePairWindowJsonLine as unknown as (o: ProtoSink, r: T) => void;
  if ((toJsonText as unknown) === flowRecordJsonText) return writeFlowRecordJsonLine as unknown as (o: ProtoSink, r: T) => void;
  return undefined;
}
