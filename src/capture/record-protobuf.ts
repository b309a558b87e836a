/**
 * Direct length-delimited protobuf writers of FlowRecord and PairWindow (proto/mirrorflow.proto)
 * into one growing byte buffer: the bytes of the codec's encodeRecordDelimited
 * (src/pipeline/codec.ts, protobufjs' Writer driven by the field tables) without a Writer
 * operation list, a Buffer per record or the spec walk — the per-record cost of protobuf output in
 * replay/capture. A FlowRecord is written by the pipeline's field-by-field writer
 * (writeFlowRecordDelimitedPb, src/pipeline/codec-flow-pb.ts, which also builds Kafka batches);
 * a PairWindow by the writers below. Same canonical choices, field by field, in field-number
 * order: proto3 defaults not written (-0 is not a default), `optional` scalars written whenever
 * present, present sub-messages always written (even empty), repeated numbers packed, 64-bit
 * integers as varints of their two's complement.
 * Same checks too (a record that does not fit the schema is a programming error): the codec's
 * validation, then type and range per field, reported as the codec reports them (CodecError
 * 'codec-encode' naming the field), before any byte of the record is kept.
 * test/unit/capture/record-json.test.ts compares the bytes with the codec's on many records.
 * (Strings are written as UTF-8 by Buffer; a string holding a lone UTF-16 surrogate gets U+FFFD
 * where protobufjs writes the surrogate's raw 3-byte form. Well-formed strings are identical.)
 */
import { CodecError, FieldProblem } from '../pipeline/codec-error.js';
import { checkFlowRecord, writeFlowRecordDelimitedPb } from '../pipeline/codec-flow-pb.js';
import { PbBufferWriter } from '../pipeline/codec-pb-writer.js';
import { PAIR_WINDOW_SCHEMA_VERSION, type FlowRecord, type LatencySummary, type PairWindow, type TrafficCounters } from './flow-record.js';

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;

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

// ---- checked field writers of PairWindow (parent path, field name, field number, value)

function u32(w: ProtoSink, path: string, name: string, no: number, v: unknown): void {
  if (typeof v === 'number' && v >>> 0 === v) {
    // the usual case, checked at once: a uint32 (-0 too: written, not a default)
    if (v === 0 && 1 / v > 0) return;
    w.varint32((no << 3) | WIRE_VARINT);
    w.varint32(v);
    return;
  }
  if (v === undefined || v === null) throw new FieldProblem(join(path, name), 'required field missing');
  throw new FieldProblem(join(path, name), `not a uint32 (value=${String(v)})`);
}

function u64(w: ProtoSink, path: string, name: string, no: number, v: unknown, signed: boolean): void {
  // the usual case, below 2^32 (either signedness): the bytes of a uint32
  if (typeof v === 'number' && v >>> 0 === v) return u32(w, path, name, no, v);
  if (v === undefined || v === null) throw new FieldProblem(join(path, name), 'required field missing');
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || (!signed && v < 0)) {
    throw new FieldProblem(join(path, name), signed ? `not an int64 within ±2^53 (value=${String(v)})` : `not a uint64 below 2^53 (value=${String(v)})`);
  }
  w.varint32((no << 3) | WIRE_VARINT);
  w.varint64(v);
}

function dbl(w: ProtoSink, path: string, name: string, no: number, v: unknown): void {
  if (v === undefined || v === null) throw new FieldProblem(join(path, name), 'required field missing');
  if (typeof v !== 'number') throw new FieldProblem(join(path, name), `expected a double (got ${typeof v})`);
  if (v === 0 && !Object.is(v, -0)) return;
  w.varint32((no << 3) | WIRE_FIXED64);
  w.double(v);
}

function str(w: ProtoSink, path: string, name: string, no: number, v: unknown): void {
  if (v === undefined || v === null) throw new FieldProblem(join(path, name), 'required field missing');
  if (typeof v !== 'string') throw new FieldProblem(join(path, name), `expected a string (got ${typeof v})`);
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

/** A packed repeated double. */
function packedDoubles(w: ProtoSink, path: string, name: string, no: number, v: unknown): void {
  if (v === undefined || v === null) return;
  if (!Array.isArray(v)) throw new FieldProblem(join(path, name), 'expected an array');
  if (v.length === 0) return;
  for (const x of v) if (typeof x !== 'number') throw new FieldProblem(join(path, name), `expected a double (got ${typeof x})`);
  w.varint32((no << 3) | WIRE_LEN);
  const m = w.begin();
  for (const x of v) w.double(x as number);
  w.end(m);
}

/** Opens a sub-message field; returns its mark, or -1 when absent and optional. */
function sub(w: ProtoSink, path: string, name: string, no: number, v: unknown, optional: boolean): number {
  if (v === undefined || v === null) {
    if (optional) return -1;
    throw new FieldProblem(join(path, name), 'required sub-message missing');
  }
  if (typeof v !== 'object') throw new FieldProblem(join(path, name), 'expected an object');
  w.varint32((no << 3) | WIRE_LEN);
  return w.begin();
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
  if (x.id === '') throw new FieldProblem('id', 'empty');
  if (x.schemaVersion !== PAIR_WINDOW_SCHEMA_VERSION) {
    throw new FieldProblem('schemaVersion', `unsupported schema version ${x.schemaVersion} (supported: ${PAIR_WINDOW_SCHEMA_VERSION})`);
  }
  if (x.windowEndUs < x.windowStartUs) throw new FieldProblem('windowEndUs', `before windowStartUs (${x.windowEndUs} < ${x.windowStartUs})`);
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
    packedDoubles(w, 'trend', 'forecastBps', 2, tr!.forecastBps);
    w.end(m);
  }
}

/** The codec's error for a record that does not fit the schema. */
function encodeError(what: string, e: unknown): CodecError {
  if (e instanceof FieldProblem) {
    const details = { format: 'protobuf', problem: e.problem, ...(e.path ? { field: e.path } : {}) };
    return new CodecError('codec-encode', `cannot encode ${what}`, details, e);
  }
  return new CodecError('codec-encode', `cannot encode ${what}`, { format: 'protobuf', problem: e instanceof Error ? e.message : String(e) }, e);
}

/** Appends a FlowRecord as one length-delimited protobuf message (the bytes of encodeRecordDelimited). */
export function writeFlowRecordDelimited(w: ProtoSink, r: FlowRecord): void {
  try {
    checkFlowRecord(r);
    writeFlowRecordDelimitedPb(w, r); // on a problem, w is left as it was
  } catch (e) {
    throw encodeError('FlowRecord', e);
  }
}

/** Appends a PairWindow as one length-delimited protobuf message (the bytes of encodeRecordDelimited). */
export function writePairWindowDelimited(w: ProtoSink, x: PairWindow): void {
  const mark = w.begin();
  try {
    validatePairWindow(x);
    writePairWindowBody(w, x);
  } catch (e) {
    w.pos = mark;
    throw encodeError('PairWindow', e);
  }
  w.end(mark);
}
