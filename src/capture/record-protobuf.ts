/**
 * Direct length-delimited protobuf writers of FlowRecord and PairWindow (proto/mirrorflow.proto)
 * into one growing byte buffer: the bytes of the codec's encodeRecordDelimited
 * (src/pipeline/codec.ts, protobufjs' Writer driven by the field tables) without a Writer
 * operation list, a Buffer per record or the spec walk — the per-record cost of protobuf output in
 * replay/capture. Same canonical choices, field by field, in field-number order: proto3 defaults
 * not written (-0 is not a default), `optional` scalars written whenever present, present
 * sub-messages always written (even empty), repeated numbers packed, 64-bit integers as varints of
 * their two's complement.
 * Same checks too (a record that does not fit the schema is a programming error): the codec's
 * validation, then type and range per field, reported as the codec reports them (CodecError
 * 'codec-encode' naming the field), before any byte of the record is kept.
 * test/unit/capture/record-protobuf.test.ts compares the bytes with the codec's on many records.
 * (Strings are written as UTF-8 by Buffer; a string holding a lone UTF-16 surrogate gets U+FFFD
 * where protobufjs writes the surrogate's raw 3-byte form. Well-formed strings are identical.)
 */
import { CodecError } from '../pipeline/codec-error.js';
import { PbBufferWriter } from '../pipeline/codec-pb-writer.js';
import {
  EXPORT_REASONS,
  FLOW_RECORD_SCHEMA_VERSION,
  PAIR_WINDOW_SCHEMA_VERSION,
  TUNNEL_NAMES,
  type DirectionCounters,
  type FlowRecord,
  type LatencySummary,
  type ObservationPoint,
  type PairWindow,
  type RttSummary,
  type TcpDirectionRecord,
  type TrafficCounters,
} from './flow-record.js';
import type { RttSketchData } from './rtt-sketch.js';

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;

/** A field that does not fit the schema (internal; becomes a CodecError). */
class Problem extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(problem);
  }
}

const join = (path: string, name: string): string => (path ? `${path}.${name}` : name);

/**
 * The replay outputs' byte buffer: the pipeline's protobuf writer (growable buffer, varints,
 * strings, length-delimited parts by mark) plus take(), which hands the bytes out and starts a
 * fresh buffer. The JSON writers (record-json.ts) use it as a plain byte buffer too.
 */
export class ProtoSink extends PbBufferWriter {
  constructor(initialBytes = 1 << 16) {
    super(initialBytes);
  }

  get length(): number {
    return this.pos;
  }

  /** The bytes written (a view), and a fresh buffer for what follows. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(this.buf.length);
    this.pos = 0;
    return out;
  }

  varint32(v: number): void {
    this.uint32(v);
  }

  /** A safe integer (either sign) as protobufjs writes (u)int64 numbers. */
  varint64(value: number): void {
    this.int64(value);
  }
}

// ---- checked field writers (parent path, field name, field number, value)

function u32(w: ProtoSink, path: string, name: string, no: number, v: unknown, optional = false): void {
  if (typeof v === 'number' && v >>> 0 === v) {
    // the usual case, checked at once: a uint32 (-0 too: written, not a default)
    if (v === 0 && !optional && 1 / v > 0) return;
    w.varint32((no << 3) | WIRE_VARINT);
    w.varint32(v);
    return;
  }
  if (v === undefined || v === null) {
    if (optional) return;
    throw new Problem(join(path, name), 'required field missing');
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Problem(join(path, name), `not a uint32 (value=${String(v)})`);
  if (!optional && v === 0 && !Object.is(v, -0)) return;
  w.varint32((no << 3) | WIRE_VARINT);
  w.varint32(v);
}

function u64(w: ProtoSink, path: string, name: string, no: number, v: unknown, signed: boolean): void {
  if (typeof v === 'number' && v >>> 0 === v) {
    // the usual case, checked at once: below 2^32, either signedness (-0 too: written)
    if (v === 0 && 1 / v > 0) return;
    w.varint32((no << 3) | WIRE_VARINT);
    w.varint32(v);
    return;
  }
  if (v === undefined || v === null) throw new Problem(join(path, name), 'required field missing');
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || (!signed && v < 0)) {
    throw new Problem(join(path, name), signed ? `not an int64 within ±2^53 (value=${String(v)})` : `not a uint64 below 2^53 (value=${String(v)})`);
  }
  if (v === 0 && !Object.is(v, -0)) return;
  w.varint32((no << 3) | WIRE_VARINT);
  w.varint64(v);
}

function dbl(w: ProtoSink, path: string, name: string, no: number, v: unknown, optional = false): void {
  if (v === undefined || v === null) {
    if (optional) return;
    throw new Problem(join(path, name), 'required field missing');
  }
  if (typeof v !== 'number') throw new Problem(join(path, name), `expected a double (got ${typeof v})`);
  if (!optional && v === 0 && !Object.is(v, -0)) return;
  w.varint32((no << 3) | WIRE_FIXED64);
  w.double(v);
}

function str(w: ProtoSink, path: string, name: string, no: number, v: unknown): void {
  if (v === undefined || v === null) throw new Problem(join(path, name), 'required field missing');
  if (typeof v !== 'string') throw new Problem(join(path, name), `expected a string (got ${typeof v})`);
  if (v === '') return;
  const n = v.length;
  if (no < 16 && n < 128) {
    // the usual case (ids, names, addresses): tag, length and characters in one pass, as long as
    // they are ASCII — the bytes w.string writes for those; w.pos moves only once they all were
    w.ensure(n + 2);
    const b = w.buf;
    const p = w.pos;
    b[p] = (no << 3) | WIRE_LEN;
    b[p + 1] = n;
    let i = 0;
    for (; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c > 127) break;
      b[p + 2 + i] = c;
    }
    if (i === n) {
      w.pos = p + 2 + n;
      return;
    }
  }
  w.varint32((no << 3) | WIRE_LEN);
  w.string(v);
}

function bool(w: ProtoSink, path: string, name: string, no: number, v: unknown): void {
  if (v === undefined || v === null) throw new Problem(join(path, name), 'required field missing');
  if (typeof v !== 'boolean') throw new Problem(join(path, name), `expected a bool (got ${typeof v})`);
  if (!v) return;
  w.varint32((no << 3) | WIRE_VARINT);
  w.varint32(1);
}

function enumField(w: ProtoSink, path: string, name: string, no: number, values: readonly string[], v: unknown): void {
  if (v === undefined || v === null) throw new Problem(join(path, name), 'required field missing');
  const n = values.indexOf(v as string);
  if (n < 0) throw new Problem(join(path, name), `unknown enum value (value=${String(v)})`);
  if (n === 0) return;
  w.varint32((no << 3) | WIRE_VARINT);
  w.varint32(n);
}

/** A packed repeated uint32 (double when `asDouble`). */
function packed(w: ProtoSink, path: string, name: string, no: number, v: unknown, asDouble: boolean): void {
  if (v === undefined || v === null) return;
  if (!Array.isArray(v)) throw new Problem(join(path, name), 'expected an array');
  if (v.length === 0) return;
  for (const x of v) {
    if (asDouble) {
      if (typeof x !== 'number') throw new Problem(join(path, name), `expected a double (got ${typeof x})`);
    } else if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new Problem(join(path, name), `not a uint32 (value=${String(x)})`);
  }
  w.varint32((no << 3) | WIRE_LEN);
  const m = w.begin();
  for (const x of v) {
    if (asDouble) w.double(x as number);
    else w.varint32(x as number);
  }
  w.end(m);
}

/** Opens a sub-message field; returns its mark, or -1 when absent and optional. */
function sub(w: ProtoSink, path: string, name: string, no: number, v: unknown, optional: boolean): number {
  if (v === undefined || v === null) {
    if (optional) return -1;
    throw new Problem(join(path, name), 'required sub-message missing');
  }
  if (typeof v !== 'object') throw new Problem(join(path, name), 'expected an object');
  w.varint32((no << 3) | WIRE_LEN);
  return w.begin();
}

// ---- FlowRecord

const EXPORT_REASON_VALUES: readonly string[] = ['unspecified', ...EXPORT_REASONS];

function direction(w: ProtoSink, name: string, no: number, d: DirectionCounters): void {
  const m = sub(w, '', name, no, d, false);
  u64(w, name, 'packets', 1, d.packets, false);
  u64(w, name, 'bytes', 2, d.bytes, false);
  u64(w, name, 'firstUs', 3, d.firstUs, true);
  u64(w, name, 'lastUs', 4, d.lastUs, true);
  u32(w, name, 'tcpFlags', 5, d.tcpFlags);
  w.end(m);
}

const TCP_PATHS: Record<string, string> = { clientToServer: 'tcp.clientToServer', serverToClient: 'tcp.serverToClient' };

function tcpDirection(w: ProtoSink, name: string, no: number, d: TcpDirectionRecord): void {
  const p = TCP_PATHS[name] ?? join('tcp', name);
  const m = sub(w, 'tcp', name, no, d, false);
  u32(w, p, 'dataSegments', 1, d.dataSegments);
  u32(w, p, 'retransmits', 2, d.retransmits);
  u32(w, p, 'gapFills', 3, d.gapFills);
  u32(w, p, 'outOfOrder', 4, d.outOfOrder);
  u32(w, p, 'dupAcks', 5, d.dupAcks);
  u32(w, p, 'zeroWindows', 6, d.zeroWindows);
  u32(w, p, 'rsts', 7, d.rsts);
  u32(w, p, 'synRetransmits', 8, d.synRetransmits);
  w.end(m);
}

function rttSummary(w: ProtoSink, name: string, no: number, x: RttSummary | undefined): void {
  const m = sub(w, 'tcp', name, no, x, true);
  if (m < 0) return;
  const p = join('tcp', name);
  u32(w, p, 'count', 1, x!.count);
  dbl(w, p, 'minUs', 2, x!.minUs);
  dbl(w, p, 'maxUs', 3, x!.maxUs);
  dbl(w, p, 'sumUs', 4, x!.sumUs);
  w.end(m);
}

function rttSketch(w: ProtoSink, x: RttSketchData | undefined): void {
  const m = sub(w, 'icmp', 'rtt', 4, x, true);
  if (m < 0) return;
  const p = 'icmp.rtt';
  u32(w, p, 'count', 1, x!.count);
  dbl(w, p, 'minUs', 2, x!.minUs);
  dbl(w, p, 'maxUs', 3, x!.maxUs);
  dbl(w, p, 'sumUs', 4, x!.sumUs);
  packed(w, p, 'bucketDeltas', 5, x!.bucketDeltas, false);
  packed(w, p, 'bucketCounts', 6, x!.bucketCounts, false);
  w.end(m);
}

function validateFlowRecord(r: FlowRecord): void {
  if (r.id === '') throw new Problem('id', 'empty');
  if (r.schemaVersion !== FLOW_RECORD_SCHEMA_VERSION) {
    throw new Problem('schemaVersion', `unsupported schema version ${r.schemaVersion} (supported: ${FLOW_RECORD_SCHEMA_VERSION})`);
  }
  if ((r.exportReason as string) === 'unspecified') throw new Problem('exportReason', 'unspecified');
  if (r.key.ipVersion !== 0 && r.key.ipVersion !== 4 && r.key.ipVersion !== 6) throw new Problem('key.ipVersion', `not 0, 4 or 6 (value=${r.key.ipVersion})`);
  const s = r.icmp?.rtt;
  if (s && s.bucketDeltas.length !== s.bucketCounts.length) {
    throw new Problem('icmp.rtt', `bucketDeltas and bucketCounts differ in length (${s.bucketDeltas.length} != ${s.bucketCounts.length})`);
  }
}

let lastObservation: ObservationPoint | undefined;
let lastObservationBytes: Buffer = Buffer.alloc(0);

function writeFlowRecordBody(w: ProtoSink, r: FlowRecord): void {
  str(w, '', 'id', 1, r.id);
  u32(w, '', 'schemaVersion', 2, r.schemaVersion);
  u64(w, '', 'sequence', 3, r.sequence, false);
  u64(w, '', 'flowId', 4, r.flowId, false);
  const o = r.observation;
  let m: number;
  if (o === lastObservation && o !== undefined) {
    // the flow table shares one frozen observation point among its records: its bytes are cached
    const b = lastObservationBytes;
    w.ensure(b.length);
    b.copy(w.buf, w.pos);
    w.pos += b.length;
  } else {
    const from = w.pos;
    m = sub(w, '', 'observation', 5, o, false);
    str(w, 'observation', 'agentId', 1, o.agentId);
    str(w, 'observation', 'bridge', 2, o.bridge);
    str(w, 'observation', 'mirror', 3, o.mirror);
    str(w, 'observation', 'interface', 4, o.interface);
    w.end(m);
    if (Object.isFrozen(o)) {
      lastObservation = o;
      lastObservationBytes = Buffer.from(w.buf.subarray(from, w.pos));
    }
  }
  enumField(w, '', 'exportReason', 6, EXPORT_REASON_VALUES, r.exportReason);
  const k = r.key;
  m = sub(w, '', 'key', 7, k, false);
  packed(w, 'key', 'vlans', 1, k.vlans, false);
  enumField(w, 'key', 'tunnel', 2, TUNNEL_NAMES, k.tunnel);
  u32(w, 'key', 'vni', 3, k.vni, true);
  u32(w, 'key', 'ipVersion', 4, k.ipVersion);
  u32(w, 'key', 'protocol', 5, k.protocol);
  u32(w, 'key', 'etherType', 6, k.etherType);
  str(w, 'key', 'clientIp', 7, k.clientIp);
  str(w, 'key', 'serverIp', 8, k.serverIp);
  u32(w, 'key', 'clientPort', 9, k.clientPort);
  u32(w, 'key', 'serverPort', 10, k.serverPort);
  str(w, 'key', 'clientMac', 11, k.clientMac);
  str(w, 'key', 'serverMac', 12, k.serverMac);
  u32(w, 'key', 'icmpId', 13, k.icmpId, true);
  u32(w, 'key', 'icmpType', 14, k.icmpType, true);
  u32(w, 'key', 'icmpCode', 15, k.icmpCode, true);
  bool(w, 'key', 'fragmentsOnly', 16, k.fragmentsOnly);
  w.end(m);
  u64(w, '', 'startUs', 8, r.startUs, true);
  u64(w, '', 'endUs', 9, r.endUs, true);
  direction(w, 'clientToServer', 10, r.clientToServer);
  direction(w, 'serverToClient', 11, r.serverToClient);
  const t = r.tcp;
  m = sub(w, '', 'tcp', 12, t, true);
  if (m >= 0) {
    dbl(w, 'tcp', 'handshakeRttUs', 1, t!.handshakeRttUs, true);
    dbl(w, 'tcp', 'handshakeServerUs', 2, t!.handshakeServerUs, true);
    dbl(w, 'tcp', 'handshakeClientUs', 3, t!.handshakeClientUs, true);
    bool(w, 'tcp', 'synOnly', 4, t!.synOnly);
    bool(w, 'tcp', 'rstAnswered', 5, t!.rstAnswered);
    bool(w, 'tcp', 'failed', 6, t!.failed);
    tcpDirection(w, 'clientToServer', 7, t!.clientToServer);
    tcpDirection(w, 'serverToClient', 8, t!.serverToClient);
    rttSummary(w, 'serverTsRttSummary', 11, t!.serverTsRttSummary);
    rttSummary(w, 'clientTsRttSummary', 12, t!.clientTsRttSummary);
    w.end(m);
  }
  const i = r.icmp;
  m = sub(w, '', 'icmp', 13, i, true);
  if (m >= 0) {
    u32(w, 'icmp', 'echoRequests', 1, i!.echoRequests);
    u32(w, 'icmp', 'echoReplies', 2, i!.echoReplies);
    u32(w, 'icmp', 'unanswered', 3, i!.unanswered);
    rttSketch(w, i!.rtt);
    w.end(m);
  }
  dbl(w, '', 'lossRate', 14, r.lossRate);
}

// ---- PairWindow

function traffic(w: ProtoSink, name: string, no: number, t: TrafficCounters): void {
  const m = sub(w, '', name, no, t, false);
  u64(w, name, 'packets', 1, t.packets, false);
  u64(w, name, 'bytes', 2, t.bytes, false);
  w.end(m);
}

function latency(w: ProtoSink, parent: string, name: string, no: number, l: LatencySummary): void {
  const m = sub(w, parent, name, no, l, false);
  const p = join(parent, name);
  u32(w, p, 'count', 1, l.count);
  dbl(w, p, 'min', 2, l.min);
  dbl(w, p, 'p50', 3, l.p50);
  dbl(w, p, 'p95', 4, l.p95);
  dbl(w, p, 'max', 5, l.max);
  w.end(m);
}

function validatePairWindow(x: PairWindow): void {
  if (x.id === '') throw new Problem('id', 'empty');
  if (x.schemaVersion !== PAIR_WINDOW_SCHEMA_VERSION) {
    throw new Problem('schemaVersion', `unsupported schema version ${x.schemaVersion} (supported: ${PAIR_WINDOW_SCHEMA_VERSION})`);
  }
  if (x.windowEndUs < x.windowStartUs) throw new Problem('windowEndUs', `before windowStartUs (${x.windowEndUs} < ${x.windowStartUs})`);
}

function writePairWindowBody(w: ProtoSink, x: PairWindow): void {
  str(w, '', 'id', 1, x.id);
  u32(w, '', 'schemaVersion', 2, x.schemaVersion);
  u64(w, '', 'windowStartUs', 3, x.windowStartUs, true);
  u64(w, '', 'windowEndUs', 4, x.windowEndUs, true);
  str(w, '', 'a', 5, x.a);
  str(w, '', 'b', 6, x.b);
  traffic(w, 'aToB', 7, x.aToB);
  traffic(w, 'bToA', 8, x.bToA);
  u32(w, '', 'flows', 9, x.flows);
  const t = x.tcp;
  let m = sub(w, '', 'tcp', 10, t, false);
  u32(w, 'tcp', 'handshakes', 1, t.handshakes);
  u32(w, 'tcp', 'failedHandshakes', 2, t.failedHandshakes);
  latency(w, 'tcp', 'handshakeRttUs', 3, t.handshakeRttUs);
  u32(w, 'tcp', 'retransmits', 4, t.retransmits);
  u32(w, 'tcp', 'gapFills', 5, t.gapFills);
  u32(w, 'tcp', 'dataSegments', 6, t.dataSegments);
  w.end(m);
  const i = x.icmp;
  m = sub(w, '', 'icmp', 11, i, false);
  u32(w, 'icmp', 'echoRequests', 1, i.echoRequests);
  u32(w, 'icmp', 'echoReplies', 2, i.echoReplies);
  latency(w, 'icmp', 'rttUs', 3, i.rttUs);
  w.end(m);
  dbl(w, '', 'lossRate', 12, x.lossRate);
  dbl(w, '', 'throughputBps', 13, x.throughputBps);
  const tr = x.trend;
  m = sub(w, '', 'trend', 14, tr, true);
  if (m >= 0) {
    dbl(w, 'trend', 'ewmaBps', 1, tr!.ewmaBps);
    packed(w, 'trend', 'forecastBps', 2, tr!.forecastBps, true);
    w.end(m);
  }
}

/** Runs a writer as one delimited message; on a problem, drops what it wrote and throws the codec's error. */
function delimited<T>(w: ProtoSink, what: string, value: T, validate: (v: T) => void, body: (w: ProtoSink, v: T) => void): void {
  const mark = w.begin();
  try {
    validate(value);
    body(w, value);
  } catch (e) {
    w.pos = mark;
    if (e instanceof Problem) {
      const details = { format: 'protobuf', problem: e.problem, ...(e.field ? { field: e.field } : {}) };
      throw new CodecError('codec-encode', `cannot encode ${what}`, details, e);
    }
    throw new CodecError('codec-encode', `cannot encode ${what}`, { format: 'protobuf', problem: e instanceof Error ? e.message : String(e) }, e);
  }
  w.end(mark);
}

/** Appends a FlowRecord as one length-delimited protobuf message (the bytes of encodeRecordDelimited). */
export function writeFlowRecordDelimited(w: ProtoSink, r: FlowRecord): void {
  delimited(w, 'FlowRecord', r, validateFlowRecord, writeFlowRecordBody);
}

/** Appends a PairWindow as one length-delimited protobuf message (the bytes of encodeRecordDelimited). */
export function writePairWindowDelimited(w: ProtoSink, x: PairWindow): void {
  delimited(w, 'PairWindow', x, validatePairWindow, writePairWindowBody);
}
