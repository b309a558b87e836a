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
// not plain printable ASCII, and numbers that are neither safe integers nor decimals of one to
// three places (putFewDecimals), go through the same JSON.stringify / String as the text writers.

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

// Every writer below takes the output and the write position `p` and returns the position after
// what it wrote: the output's own position moves once, when the whole line is written (a line
// that throws part-way leaves nothing behind). Each writer makes room for what it writes (room(),
// which may replace the buffer), so none holds the buffer across a call. A field needs a comma
// before it unless it is the first of its object, and then the byte before it is the object's `{`.

/** Room made with every key for the value after it: a number (≤ 24 characters), quotes, a `{`. */
const VALUE_ROOM = 32;

/** The output's buffer with room for n bytes at p (the bytes before p kept). */
function room(o: ProtoSink, p: number, n: number): Buffer {
  if (p + n > o.buf.length) {
    o.pos = p; // what ensure() keeps; the line's writer resets it when the line fails
    o.ensure(n);
  }
  return o.buf;
}

/** `,"name":` (no comma first in an object), with room for a number after it. */
function putKey(o: ProtoSink, p: number, k: Uint8Array): number {
  const n = k.length;
  const b = room(o, p, n + 1 + VALUE_ROOM);
  if (b[p - 1] !== 0x7b) b[p++] = 0x2c; // ,
  for (let i = 0; i < n; i++) b[p + i] = k[i]!;
  return p + n;
}

function putAscii(o: ProtoSink, p: number, s: string): number {
  const n = s.length;
  const b = room(o, p, n);
  for (let i = 0; i < n; i++) b[p + i] = s.charCodeAt(i);
  return p + n;
}

function putByte(o: ProtoSink, p: number, c: number): number {
  room(o, p, 1)[p] = c;
  return p + 1;
}

/** Digits of an integer 0 ≤ n ≤ 2^53 (String(n) for those), into room already made. */
function putUint(b: Uint8Array, p: number, n: number): number {
  if (n < 0x80000000) return putSmall(b, p, n | 0);
  // up to 16 digits: the high part, then the low 8 digits zero-padded (integer arithmetic each)
  const hi = Math.floor(n / 1e8);
  p = putSmall(b, p, hi | 0) + 8;
  let lo = (n - hi * 1e8) | 0;
  for (let i = 1; i <= 8; i++) {
    const q = (lo / 10) | 0;
    b[p - i] = 48 + lo - q * 10;
    lo = q;
  }
  return p;
}

/** Digits of an int32 0 ≤ n < 2^31, into room already made. */
function putSmall(b: Uint8Array, p: number, n: number): number {
  const len = n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : n < 100000 ? 5 : n < 1000000 ? 6 : n < 10000000 ? 7 : n < 100000000 ? 8 : n < 1000000000 ? 9 : 10;
  let q = p + len;
  do {
    const d = (n / 10) | 0;
    b[--q] = 48 + n - d * 10;
    n = d;
  } while (n > 0);
  return p + len;
}

/** doubleText(v) as bytes, into room already made. */
function putDouble(b: Uint8Array, p: number, v: unknown): number {
  const n = Number(v);
  if (Number.isSafeInteger(n)) {
    if (n >= 0) return putUint(b, p, n); // -0 too: JSON.stringify(-0) is "0"
    b[p] = 45; // -
    return putUint(b, p + 1, -n);
  }
  const q = putFewDecimals(b, p, n);
  if (q >= 0) return q;
  const s = doubleText(n);
  for (let i = 0; i < s.length; i++) b[p + i] = s.charCodeAt(i);
  return p + s.length;
}

/**
 * JSON.stringify(n) as bytes for a number that is exactly as a decimal with one to three places
 * is read (a throughput over a 10 s window, a latency in µs of a ns clock), below 10^12 in
 * magnitude: the digits of m = n × 10^d for the fewest such places d. Those digits are the
 * shortest that read back as n (no integer does: n is not one), and the only ones with d places
 * (doubles below 10^12 lie closer together than 10^-3), so they are what JSON.stringify writes.
 * Returns -1 (nothing written) for any other number.
 */
function putFewDecimals(b: Uint8Array, p: number, n: number): number {
  const a = n < 0 ? -n : n;
  if (!(a < 1e12)) return -1;
  let d = 1;
  let scale = 10;
  let m = Math.round(a * scale);
  while (m / scale !== a) {
    if (d === 3) return -1;
    d++;
    scale *= 10;
    m = Math.round(a * scale);
  }
  if (n < 0) b[p++] = 45; // -
  const whole = Math.floor(m / scale);
  p = putUint(b, p, whole);
  b[p++] = 46; // .
  let frac = m - whole * scale;
  for (let i = d; i > 0; i--) {
    const x = (frac / 10) | 0;
    b[p + i - 1] = 48 + frac - x * 10;
    frac = x;
  }
  return p + d;
}

/** str(v) (a JSON string literal) as bytes: printable ASCII without `"` or `\` as is, else through JSON.stringify. */
function putString(o: ProtoSink, p: number, v: unknown): number {
  if (typeof v === 'string') {
    const n = v.length;
    const b = room(o, p, n + 2);
    b[p] = 0x22;
    let i = 0;
    for (; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) break;
      b[p + 1 + i] = c;
    }
    if (i === n) {
      b[p + 1 + n] = 0x22;
      return p + n + 2;
    }
  }
  const t = str(v);
  return p + room(o, p, t.length * 3).write(t, p, 'utf8');
}

function jU32(o: ProtoSink, p: number, name: Uint8Array, v: number): number {
  if (v === undefined || v === null) return p;
  const n = Number(v);
  if (n === 0 && !Object.is(n, -0)) return p;
  p = putKey(o, p, name);
  return putUint(o.buf, p, n >>> 0);
}
function jU32Opt(o: ProtoSink, p: number, name: Uint8Array, v: number | undefined): number {
  if (v === undefined || v === null) return p;
  p = putKey(o, p, name);
  return putUint(o.buf, p, Number(v) >>> 0);
}
function jI64(o: ProtoSink, p: number, name: Uint8Array, v: number): number {
  if (v === undefined || v === null) return p;
  const n = Number(v);
  if (n === 0 && !Object.is(n, -0)) return p;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    const t = int64Text(v); // may throw, as the text writer does
    p = putKey(o, p, name);
    p = putByte(o, p, 0x22);
    p = putAscii(o, p, t);
    return putByte(o, p, 0x22);
  }
  p = putKey(o, p, name);
  const b = o.buf;
  b[p++] = 0x22;
  if (v < 0) {
    b[p++] = 45;
    p = putUint(b, p, -v);
  } else p = putUint(b, p, v);
  b[p] = 0x22;
  return p + 1;
}
function jDbl(o: ProtoSink, p: number, name: Uint8Array, v: number): number {
  if (v === undefined || v === null) return p;
  const n = Number(v);
  if (n === 0 && !Object.is(n, -0)) return p;
  p = putKey(o, p, name);
  return putDouble(o.buf, p, v);
}
function jDblOpt(o: ProtoSink, p: number, name: Uint8Array, v: number | undefined): number {
  if (v === undefined || v === null) return p;
  p = putKey(o, p, name);
  return putDouble(o.buf, p, v);
}
function jText(o: ProtoSink, p: number, name: Uint8Array, v: string): number {
  if (v === undefined || v === null || v === '') return p;
  return putString(o, putKey(o, p, name), v);
}
function jBool(o: ProtoSink, p: number, name: Uint8Array, v: boolean): number {
  if (v === undefined || v === null || v === false) return p;
  return putAscii(o, putKey(o, p, name), Boolean(v) ? 'true' : 'false');
}
/** Opens a sub-message field `"name":{`; close with jClose. */
function jOpen(o: ProtoSink, p: number, name: Uint8Array): number {
  p = putKey(o, p, name);
  o.buf[p] = 0x7b;
  return p + 1;
}
function jClose(o: ProtoSink, p: number): number {
  return putByte(o, p, 0x7d);
}
function jRepeated(o: ProtoSink, p: number, name: Uint8Array, v: readonly number[] | undefined, asDouble: boolean): number {
  if (!Array.isArray(v) || v.length === 0) return p;
  p = putKey(o, p, name);
  p = putByte(o, p, 0x5b);
  for (let i = 0; i < v.length; i++) {
    const b = room(o, p, VALUE_ROOM);
    if (i) b[p++] = 44;
    p = asDouble ? putDouble(b, p, v[i]) : putUint(b, p, Number(v[i]) >>> 0);
  }
  return putByte(o, p, 0x5d);
}
function jLatency(o: ProtoSink, p: number, name: Uint8Array, l: LatencySummary | undefined): number {
  if (l === undefined || l === null) return p;
  p = jOpen(o, p, name);
  p = jU32(o, p, K.count, l.count);
  p = jDbl(o, p, K.min, l.min);
  p = jDbl(o, p, K.p50, l.p50);
  p = jDbl(o, p, K.p95, l.p95);
  p = jDbl(o, p, K.max, l.max);
  return jClose(o, p);
}
function jTraffic(o: ProtoSink, p: number, name: Uint8Array, t: TrafficCounters | undefined): number {
  if (t === undefined || t === null) return p;
  p = jOpen(o, p, name);
  p = jI64(o, p, K.packets, t.packets);
  p = jI64(o, p, K.bytes, t.bytes);
  return jClose(o, p);
}

/** Writes one line: `{`, the body, `}\n`; on a throw, leaves `o` as it was. */
function line<T>(o: ProtoSink, x: T, body: (o: ProtoSink, p: number, x: T) => number): void {
  const start = o.pos;
  try {
    let p = putByte(o, start, 0x7b);
    p = body(o, p, x);
    const b = room(o, p, 2);
    b[p] = 0x7d;
    b[p + 1] = 0x0a;
    o.pos = p + 2;
  } catch (e) {
    o.pos = start;
    throw e;
  }
}

function pairWindowBody(o: ProtoSink, p: number, w: PairWindow): number {
  p = jText(o, p, K.id, w.id);
  p = jU32(o, p, K.schemaVersion, w.schemaVersion);
  p = jI64(o, p, K.windowStartUs, w.windowStartUs);
  p = jI64(o, p, K.windowEndUs, w.windowEndUs);
  p = jText(o, p, K.a, w.a);
  p = jText(o, p, K.b, w.b);
  p = jTraffic(o, p, K.aToB, w.aToB);
  p = jTraffic(o, p, K.bToA, w.bToA);
  p = jU32(o, p, K.flows, w.flows);
  const t = w.tcp;
  if (t !== undefined && t !== null) {
    p = jOpen(o, p, K.tcp);
    p = jU32(o, p, K.handshakes, t.handshakes);
    p = jU32(o, p, K.failedHandshakes, t.failedHandshakes);
    p = jLatency(o, p, K.handshakeRttUs, t.handshakeRttUs);
    p = jU32(o, p, K.retransmits, t.retransmits);
    p = jU32(o, p, K.gapFills, t.gapFills);
    p = jU32(o, p, K.dataSegments, t.dataSegments);
    p = jClose(o, p);
  }
  const i = w.icmp;
  if (i !== undefined && i !== null) {
    p = jOpen(o, p, K.icmp);
    p = jU32(o, p, K.echoRequests, i.echoRequests);
    p = jU32(o, p, K.echoReplies, i.echoReplies);
    p = jLatency(o, p, K.rttUs, i.rttUs);
    p = jClose(o, p);
  }
  p = jDbl(o, p, K.lossRate, w.lossRate);
  p = jDbl(o, p, K.throughputBps, w.throughputBps);
  const tr = w.trend;
  if (tr !== undefined && tr !== null) {
    p = jOpen(o, p, K.trend);
    p = jDbl(o, p, K.ewmaBps, tr.ewmaBps);
    p = jRepeated(o, p, K.forecastBps, tr.forecastBps, true);
    p = jClose(o, p);
  }
  return p;
}

/** pairWindowJsonText(w) + '\n', appended to `o` as UTF-8 bytes (o unchanged when it throws). */
export function writePairWindowJsonLine(o: ProtoSink, w: PairWindow): void {
  line(o, w, pairWindowBody);
}

function jDirection(o: ProtoSink, p: number, name: Uint8Array, d: DirectionCounters): number {
  if (d === undefined || d === null) return p;
  p = jOpen(o, p, name);
  p = jI64(o, p, K.packets, d.packets);
  p = jI64(o, p, K.bytes, d.bytes);
  p = jI64(o, p, K.firstUs, d.firstUs);
  p = jI64(o, p, K.lastUs, d.lastUs);
  p = jU32(o, p, K.tcpFlags, d.tcpFlags);
  return jClose(o, p);
}
function jTcpDirection(o: ProtoSink, p: number, name: Uint8Array, d: TcpDirectionRecord): number {
  if (d === undefined || d === null) return p;
  p = jOpen(o, p, name);
  p = jU32(o, p, K.dataSegments, d.dataSegments);
  p = jU32(o, p, K.retransmits, d.retransmits);
  p = jU32(o, p, K.gapFills, d.gapFills);
  p = jU32(o, p, K.outOfOrder, d.outOfOrder);
  p = jU32(o, p, K.dupAcks, d.dupAcks);
  p = jU32(o, p, K.zeroWindows, d.zeroWindows);
  p = jU32(o, p, K.rsts, d.rsts);
  p = jU32(o, p, K.synRetransmits, d.synRetransmits);
  return jClose(o, p);
}
function jSummary(o: ProtoSink, p: number, name: Uint8Array, x: RttSummary | undefined): number {
  if (x === undefined || x === null) return p;
  p = jOpen(o, p, name);
  p = jU32(o, p, K.count, x.count);
  p = jDbl(o, p, K.minUs, x.minUs);
  p = jDbl(o, p, K.maxUs, x.maxUs);
  p = jDbl(o, p, K.sumUs, x.sumUs);
  return jClose(o, p);
}

function flowRecordBody(o: ProtoSink, p: number, r: FlowRecord): number {
  p = jText(o, p, K.id, r.id);
  p = jU32(o, p, K.schemaVersion, r.schemaVersion);
  p = jI64(o, p, K.sequence, r.sequence);
  p = jI64(o, p, K.flowId, r.flowId);
  const ob = r.observation;
  if (ob !== undefined && ob !== null) {
    p = jOpen(o, p, K.observation);
    p = jText(o, p, K.agentId, ob.agentId);
    p = jText(o, p, K.bridge, ob.bridge);
    p = jText(o, p, K.mirror, ob.mirror);
    p = jText(o, p, K.interface, ob.interface);
    p = jClose(o, p);
  }
  const reason = r.exportReason;
  if (reason !== undefined && reason !== null && reason !== EXPORT_REASON_VALUES[0]) {
    const t = EXPORT_REASON_TEXT.get(reason) ?? enumText('EXPORT_REASON_', EXPORT_REASON_VALUES, reason);
    p = putAscii(o, putKey(o, p, K.exportReason), t);
  }
  const k = r.key;
  if (k !== undefined && k !== null) {
    p = jOpen(o, p, K.key);
    p = jRepeated(o, p, K.vlans, k.vlans, false);
    const tunnel = k.tunnel;
    if (tunnel !== undefined && tunnel !== null && tunnel !== TUNNEL_NAMES[0]) {
      const t = enumText('TUNNEL_', TUNNEL_NAMES, tunnel);
      p = putAscii(o, putKey(o, p, K.tunnel), t);
    }
    p = jU32Opt(o, p, K.vni, k.vni);
    p = jU32(o, p, K.ipVersion, k.ipVersion);
    p = jU32(o, p, K.protocol, k.protocol);
    p = jU32(o, p, K.etherType, k.etherType);
    p = jText(o, p, K.clientIp, k.clientIp);
    p = jText(o, p, K.serverIp, k.serverIp);
    p = jU32(o, p, K.clientPort, k.clientPort);
    p = jU32(o, p, K.serverPort, k.serverPort);
    p = jText(o, p, K.clientMac, k.clientMac);
    p = jText(o, p, K.serverMac, k.serverMac);
    p = jU32Opt(o, p, K.icmpId, k.icmpId);
    p = jU32Opt(o, p, K.icmpType, k.icmpType);
    p = jU32Opt(o, p, K.icmpCode, k.icmpCode);
    p = jBool(o, p, K.fragmentsOnly, k.fragmentsOnly);
    p = jClose(o, p);
  }
  p = jI64(o, p, K.startUs, r.startUs);
  p = jI64(o, p, K.endUs, r.endUs);
  p = jDirection(o, p, K.clientToServer, r.clientToServer);
  p = jDirection(o, p, K.serverToClient, r.serverToClient);
  const t = r.tcp;
  if (t !== undefined && t !== null) {
    p = jOpen(o, p, K.tcp);
    p = jDblOpt(o, p, K.handshakeRttUs, t.handshakeRttUs);
    p = jDblOpt(o, p, K.handshakeServerUs, t.handshakeServerUs);
    p = jDblOpt(o, p, K.handshakeClientUs, t.handshakeClientUs);
    p = jBool(o, p, K.synOnly, t.synOnly);
    p = jBool(o, p, K.rstAnswered, t.rstAnswered);
    p = jBool(o, p, K.failed, t.failed);
    p = jTcpDirection(o, p, K.clientToServer, t.clientToServer);
    p = jTcpDirection(o, p, K.serverToClient, t.serverToClient);
    p = jSummary(o, p, K.serverTsRttSummary, t.serverTsRttSummary);
    p = jSummary(o, p, K.clientTsRttSummary, t.clientTsRttSummary);
    p = jClose(o, p);
  }
  const i = r.icmp;
  if (i !== undefined && i !== null) {
    p = jOpen(o, p, K.icmp);
    p = jU32(o, p, K.echoRequests, i.echoRequests);
    p = jU32(o, p, K.echoReplies, i.echoReplies);
    p = jU32(o, p, K.unanswered, i.unanswered);
    const x = i.rtt;
    if (x !== undefined && x !== null) {
      p = jOpen(o, p, K.rtt);
      p = jU32(o, p, K.count, x.count);
      p = jDbl(o, p, K.minUs, x.minUs);
      p = jDbl(o, p, K.maxUs, x.maxUs);
      p = jDbl(o, p, K.sumUs, x.sumUs);
      p = jRepeated(o, p, K.bucketDeltas, x.bucketDeltas, false);
      p = jRepeated(o, p, K.bucketCounts, x.bucketCounts, false);
      p = jClose(o, p);
    }
    p = jClose(o, p);
  }
  return jDbl(o, p, K.lossRate, r.lossRate);
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
