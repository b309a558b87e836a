/**
 * FlowRecord → protobuf bytes, written field by field (the producer's hot path). The same bytes as
 * writePb(FLOW_RECORD_SPEC, …) — field order, proto3 defaults omitted, `optional` fields written
 * when present, packed repeated numbers, sub-messages always written when present — and the same
 * checks (types, uint32 range, 64-bit integers within ±2^53, known enum values, required
 * sub-messages), throwing a FieldProblem naming the field. Equality with writePb is tested on the
 * codec fixtures (test/unit/pipeline/codec-batch.test.ts); when the schema changes, change both.
 *
 * Speed: the record's size is bounded first (fixed fields + strings + arrays), the buffer grown
 * once, and every field written with plain stores at a local position (no capacity check, no
 * method call, no allocation per field). A sub-message reserves one length byte and is moved up
 * when it turns out 128 bytes or longer (rare). On a FieldProblem the writer's position is left
 * where it was.
 */
import { EXPORT_REASONS, FLOW_RECORD_SCHEMA_VERSION, TUNNEL_NAMES, type DirectionCounters, type FlowRecord, type RttSummary, type TcpDirectionRecord } from '../capture/flow-record.js';
import { FieldProblem } from './codec-error.js';
import { putLength, putNegative64, putVarint32, putVarint64, type PbBufferWriter } from './codec-pb-writer.js';

const EXPORT_REASON_NUMBER = new Map<string, number>(EXPORT_REASONS.map((v, i) => [v, i + 1]));
const TUNNEL_NUMBER = new Map<string, number>(TUNNEL_NAMES.map((v, i) => [v, i]));

function u32(p: string, name: string, v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return v;
  const path = p ? `${p}.${name}` : name;
  if (v === undefined || v === null) throw new FieldProblem(path, 'required field missing');
  throw new FieldProblem(path, `not a uint32 (value=${String(v)})`);
}
function u64(p: string, name: string, v: unknown): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  const path = p ? `${p}.${name}` : name;
  if (v === undefined || v === null) throw new FieldProblem(path, 'required field missing');
  throw new FieldProblem(path, `not a uint64 below 2^53 (value=${String(v)})`);
}
function i64(p: string, name: string, v: unknown): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  const path = p ? `${p}.${name}` : name;
  if (v === undefined || v === null) throw new FieldProblem(path, 'required field missing');
  throw new FieldProblem(path, `not an int64 within ±2^53 (value=${String(v)})`);
}
function dbl(p: string, name: string, v: unknown): number {
  if (typeof v === 'number') return v;
  const path = p ? `${p}.${name}` : name;
  if (v === undefined || v === null) throw new FieldProblem(path, 'required field missing');
  throw new FieldProblem(path, `expected a double (got ${typeof v})`);
}
function str(p: string, name: string, v: unknown): string {
  if (typeof v === 'string') return v;
  const path = p ? `${p}.${name}` : name;
  if (v === undefined || v === null) throw new FieldProblem(path, 'required field missing');
  throw new FieldProblem(path, `expected a string (got ${typeof v})`);
}
function bool(p: string, name: string, v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  const path = p ? `${p}.${name}` : name;
  if (v === undefined || v === null) throw new FieldProblem(path, 'required field missing');
  throw new FieldProblem(path, `expected a bool (got ${typeof v})`);
}
function obj<T>(p: string, name: string, v: T | undefined | null): T {
  if (typeof v === 'object' && v !== null) return v;
  const path = p ? `${p}.${name}` : name;
  if (v === undefined || v === null) throw new FieldProblem(path, 'required sub-message missing');
  throw new FieldProblem(path, 'expected an object');
}

// tag bytes: (field << 3) | wire type; all fields but key.fragmentsOnly (16) are below 16, so one byte
const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const tag = (f: number, wt: number): number => (f << 3) | wt;

/** Bytes every FlowRecord may need besides its strings and arrays (tags, numbers, lengths), at most. */
const FIXED_BOUND = 1024;

// The record being written: its buffer (grown to the bound before writing) and position (fields
// of a constant object: faster to reach than module-level variables).
const W: { b: Buffer; p: number } = { b: Buffer.alloc(0), p: 0 };

function vu32(v: number): void {
  W.p = putVarint32(W.b, W.p, v);
}

// integers: 0 is the default (not written), -0 is not (written, as the codec does)
function wU32(t: number, v: number): void {
  if (v !== 0 || 1 / v < 0) {
    W.b[W.p++] = t;
    vu32(v);
  }
}
function wU64(t: number, v: number): void {
  if (v !== 0 || 1 / v < 0) {
    W.b[W.p++] = t;
    W.p = putVarint64(W.b, W.p, v);
  }
}
function wI64(t: number, v: number): void {
  if (v !== 0 || 1 / v < 0) {
    W.b[W.p++] = t;
    W.p = v < 0 ? putNegative64(W.b, W.p, v) : putVarint64(W.b, W.p, v);
  }
}
function wDbl(t: number, v: number): void {
  W.b[W.p++] = t;
  W.b.writeDoubleLE(v, W.p);
  W.p += 8;
}
function wDblNonDefault(t: number, v: number): void {
  if (v !== 0 || Object.is(v, -0)) wDbl(t, v);
}
function wBool(t: number, v: boolean): void {
  if (v) {
    W.b[W.p++] = t;
    W.b[W.p++] = 1;
  }
}
function wStr(t: number, v: string): void {
  const n = v.length;
  if (n === 0) return;
  const b = W.b;
  b[W.p++] = t;
  if (n < 128) {
    // ASCII (ids, IPs, MACs): the length is the char count, the bytes are the char codes
    const at = W.p;
    let p = at;
    b[p++] = n;
    let i = 0;
    for (; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c > 127) break;
      b[p++] = c;
    }
    if (i === n) {
      W.p = p;
      return;
    }
  }
  const len = Buffer.byteLength(v, 'utf8');
  vu32(len);
  W.b.write(v, W.p, len, 'utf8');
  W.p += len;
}

/** Opens a sub-message (field f): returns where its one-byte length goes. */
function open(f: number): number {
  W.b[W.p++] = tag(f, LEN);
  return W.p++;
}
/** Closes the sub-message opened at `at`: its length, the bytes moved up when it needs more than one byte. */
function close(at: number): void {
  const len = W.p - at - 1;
  if (len < 128) W.b[at] = len;
  else W.p = putLength(W.b, at, 1, W.p);
}

function checkedArray(path: string, name: string, v: unknown): number[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new FieldProblem(`${path}.${name}`, 'expected an array');
  for (let i = 0; i < v.length; i++) u32(path, name, v[i]);
  return v as number[];
}
function wPacked(f: number, v: number[] | undefined): void {
  if (!v || v.length === 0) return;
  const at = open(f);
  for (let i = 0; i < v.length; i++) vu32(v[i]!);
  close(at);
}

function writeDirection(path: string, d: DirectionCounters): void {
  wU64(tag(1, VARINT), u64(path, 'packets', d.packets));
  wU64(tag(2, VARINT), u64(path, 'bytes', d.bytes));
  wI64(tag(3, VARINT), i64(path, 'firstUs', d.firstUs));
  wI64(tag(4, VARINT), i64(path, 'lastUs', d.lastUs));
  wU32(tag(5, VARINT), u32(path, 'tcpFlags', d.tcpFlags));
}

function writeTcpDirection(path: string, d: TcpDirectionRecord): void {
  wU32(tag(1, VARINT), u32(path, 'dataSegments', d.dataSegments));
  wU32(tag(2, VARINT), u32(path, 'retransmits', d.retransmits));
  wU32(tag(3, VARINT), u32(path, 'gapFills', d.gapFills));
  wU32(tag(4, VARINT), u32(path, 'outOfOrder', d.outOfOrder));
  wU32(tag(5, VARINT), u32(path, 'dupAcks', d.dupAcks));
  wU32(tag(6, VARINT), u32(path, 'zeroWindows', d.zeroWindows));
  wU32(tag(7, VARINT), u32(path, 'rsts', d.rsts));
  wU32(tag(8, VARINT), u32(path, 'synRetransmits', d.synRetransmits));
}

function writeSummary(path: string, s: RttSummary): void {
  wU32(tag(1, VARINT), u32(path, 'count', s.count));
  wDblNonDefault(tag(2, FIXED64), dbl(path, 'minUs', s.minUs));
  wDblNonDefault(tag(3, FIXED64), dbl(path, 'maxUs', s.maxUs));
  wDblNonDefault(tag(4, FIXED64), dbl(path, 'sumUs', s.sumUs));
}

const strLen = (v: unknown): number => (typeof v === 'string' ? v.length : 0);
const arrLen = (v: unknown): number => (Array.isArray(v) ? v.length : 0);

/** Writes the FlowRecord's fields (no length prefix) into `w`; throws FieldProblem on a bad value. */
export function writeFlowRecordPb(w: PbBufferWriter, r: FlowRecord): void {
  writeRecord(w, r, 0);
}

/**
 * Appends the FlowRecord as one length-delimited message: its length (a varint), then the bytes of
 * writeFlowRecordPb. Two length bytes are reserved (most records are 128 to 16383 bytes long) and
 * the record moved when its length takes another number. Field checks only (see checkFlowRecord);
 * on a FieldProblem the writer is left as it was.
 */
export function writeFlowRecordDelimitedPb(w: PbBufferWriter, r: FlowRecord): void {
  const mark = w.pos;
  writeRecord(w, r, 2);
  w.endWide(mark);
}

/** The record's fields after `lengthBytes` reserved bytes; w.pos moves only once all are written. */
function writeRecord(w: PbBufferWriter, r: FlowRecord, lengthBytes: number): void {
  // checks the writes below do not make: sub-messages are objects (their fields are read first)
  const o = obj('', 'observation', r.observation);
  const k = obj('', 'key', r.key);
  const icmp = r.icmp;
  const sketch = icmp !== undefined && icmp !== null && typeof icmp === 'object' ? icmp.rtt : undefined;
  // the bound: strings at 3 bytes a char (+ tag and length), array elements at 5 bytes
  const chars =
    strLen(r.id) + strLen(o.agentId) + strLen(o.bridge) + strLen(o.mirror) + strLen(o.interface) + strLen(k.clientIp) + strLen(k.serverIp) + strLen(k.clientMac) + strLen(k.serverMac);
  const elements = arrLen(k.vlans) + (sketch && typeof sketch === 'object' ? arrLen(sketch.bucketDeltas) + arrLen(sketch.bucketCounts) : 0);
  w.ensure(lengthBytes + FIXED_BOUND + 3 * chars + 5 * elements);
  W.b = w.buf;
  W.p = w.pos + lengthBytes;
  try {
    writeFields(r, o, k);
  } finally {
    W.b = EMPTY;
  }
  w.pos = W.p;
}

const EMPTY = Buffer.alloc(0);

/**
 * The invariants the schema cannot express, as the codec's validateRecord('flow-record', …) checks
 * them (for writers that do not load the codec: replay output); throws a FieldProblem.
 */
export function checkFlowRecord(r: FlowRecord): void {
  if (r.id === '') throw new FieldProblem('id', 'empty');
  if (r.schemaVersion !== FLOW_RECORD_SCHEMA_VERSION) {
    throw new FieldProblem('schemaVersion', `unsupported schema version ${r.schemaVersion} (supported: ${FLOW_RECORD_SCHEMA_VERSION})`);
  }
  if ((r.exportReason as string) === 'unspecified') throw new FieldProblem('exportReason', 'unspecified');
  if (r.key.ipVersion !== 0 && r.key.ipVersion !== 4 && r.key.ipVersion !== 6) throw new FieldProblem('key.ipVersion', `not 0, 4 or 6 (value=${r.key.ipVersion})`);
  const s = r.icmp?.rtt;
  if (s && s.bucketDeltas.length !== s.bucketCounts.length) {
    throw new FieldProblem('icmp.rtt', `bucketDeltas and bucketCounts differ in length (${s.bucketDeltas.length} != ${s.bucketCounts.length})`);
  }
}

/** The observation last written and its bytes (field 5 with its length). */
let lastObservation: { agentId: unknown; bridge: unknown; mirror: unknown; interface: unknown; bytes: Buffer } = {
  agentId: undefined,
  bridge: undefined,
  mirror: undefined,
  interface: undefined,
  bytes: EMPTY,
};

// The record in a few functions of moderate size: one huge function exhausts the optimizer's
// inlining budget, and the small writers below would then be called instead of inlined.
function writeFields(r: FlowRecord, o: FlowRecord['observation'], k: FlowRecord['key']): void {
  writeHead(r, o);
  writeKey(k);
  writeSpan(r);
  if (r.tcp !== undefined && r.tcp !== null) writeTcp(obj('', 'tcp', r.tcp));
  if (r.icmp !== undefined && r.icmp !== null) writeIcmp(obj('', 'icmp', r.icmp));
  wDblNonDefault(tag(14, FIXED64), dbl('', 'lossRate', r.lossRate));
}

function writeHead(r: FlowRecord, o: FlowRecord['observation']): void {
  wStr(tag(1, LEN), str('', 'id', r.id));
  wU32(tag(2, VARINT), u32('', 'schemaVersion', r.schemaVersion));
  wU64(tag(3, VARINT), u64('', 'sequence', r.sequence));
  wU64(tag(4, VARINT), u64('', 'flowId', r.flowId));
  // the observation: the same for every record of a capture (its bytes are kept from the last one)
  const obs = lastObservation;
  if (o.agentId === obs.agentId && o.bridge === obs.bridge && o.mirror === obs.mirror && o.interface === obs.interface && obs.bytes.length > 0) {
    W.b.set(obs.bytes, W.p);
    W.p += obs.bytes.length;
  } else {
    const from = W.p;
    const at = open(5);
    wStr(tag(1, LEN), str('observation', 'agentId', o.agentId));
    wStr(tag(2, LEN), str('observation', 'bridge', o.bridge));
    wStr(tag(3, LEN), str('observation', 'mirror', o.mirror));
    wStr(tag(4, LEN), str('observation', 'interface', o.interface));
    close(at);
    lastObservation = { agentId: o.agentId, bridge: o.bridge, mirror: o.mirror, interface: o.interface, bytes: Buffer.from(W.b.subarray(from, W.p)) };
  }
  const reason = EXPORT_REASON_NUMBER.get(r.exportReason as string);
  if (reason === undefined) {
    if ((r.exportReason as unknown) === undefined || (r.exportReason as unknown) === null) throw new FieldProblem('exportReason', 'required field missing');
    if ((r.exportReason as string) !== 'unspecified') throw new FieldProblem('exportReason', `unknown enum value (value=${String(r.exportReason)})`);
  } else {
    W.b[W.p++] = tag(6, VARINT);
    vu32(reason);
  }
}

function writeKey(k: FlowRecord['key']): void {
  const at = open(7);
  wPacked(1, checkedArray('key', 'vlans', k.vlans));
  const t = TUNNEL_NUMBER.get(k.tunnel as string);
  if (t === undefined) {
    if ((k.tunnel as unknown) === undefined || (k.tunnel as unknown) === null) throw new FieldProblem('key.tunnel', 'required field missing');
    throw new FieldProblem('key.tunnel', `unknown enum value (value=${String(k.tunnel)})`);
  }
  wU32(tag(2, VARINT), t);
  if (k.vni !== undefined && k.vni !== null) {
    W.b[W.p++] = tag(3, VARINT);
    vu32(u32('key', 'vni', k.vni));
  }
  wU32(tag(4, VARINT), u32('key', 'ipVersion', k.ipVersion));
  wU32(tag(5, VARINT), u32('key', 'protocol', k.protocol));
  wU32(tag(6, VARINT), u32('key', 'etherType', k.etherType));
  wStr(tag(7, LEN), str('key', 'clientIp', k.clientIp));
  wStr(tag(8, LEN), str('key', 'serverIp', k.serverIp));
  wU32(tag(9, VARINT), u32('key', 'clientPort', k.clientPort));
  wU32(tag(10, VARINT), u32('key', 'serverPort', k.serverPort));
  wStr(tag(11, LEN), str('key', 'clientMac', k.clientMac));
  wStr(tag(12, LEN), str('key', 'serverMac', k.serverMac));
  if (k.icmpId !== undefined && k.icmpId !== null) {
    W.b[W.p++] = tag(13, VARINT);
    vu32(u32('key', 'icmpId', k.icmpId));
  }
  if (k.icmpType !== undefined && k.icmpType !== null) {
    W.b[W.p++] = tag(14, VARINT);
    vu32(u32('key', 'icmpType', k.icmpType));
  }
  if (k.icmpCode !== undefined && k.icmpCode !== null) {
    W.b[W.p++] = tag(15, VARINT);
    vu32(u32('key', 'icmpCode', k.icmpCode));
  }
  if (bool('key', 'fragmentsOnly', k.fragmentsOnly)) {
    W.b[W.p++] = 0x80; // field 16, varint: the tag 128 takes two bytes
    W.b[W.p++] = 0x01;
    W.b[W.p++] = 1;
  }
  close(at);
}

function writeSpan(r: FlowRecord): void {
  wI64(tag(8, VARINT), i64('', 'startUs', r.startUs));
  wI64(tag(9, VARINT), i64('', 'endUs', r.endUs));
  let at = open(10);
  writeDirection('clientToServer', obj('', 'clientToServer', r.clientToServer));
  close(at);
  at = open(11);
  writeDirection('serverToClient', obj('', 'serverToClient', r.serverToClient));
  close(at);
}

function writeTcp(tcp: NonNullable<FlowRecord['tcp']>): void {
  let at: number;
  const tat = open(12);
  if (tcp.handshakeRttUs !== undefined && tcp.handshakeRttUs !== null) wDbl(tag(1, FIXED64), dbl('tcp', 'handshakeRttUs', tcp.handshakeRttUs));
  if (tcp.handshakeServerUs !== undefined && tcp.handshakeServerUs !== null) wDbl(tag(2, FIXED64), dbl('tcp', 'handshakeServerUs', tcp.handshakeServerUs));
  if (tcp.handshakeClientUs !== undefined && tcp.handshakeClientUs !== null) wDbl(tag(3, FIXED64), dbl('tcp', 'handshakeClientUs', tcp.handshakeClientUs));
  wBool(tag(4, VARINT), bool('tcp', 'synOnly', tcp.synOnly));
  wBool(tag(5, VARINT), bool('tcp', 'rstAnswered', tcp.rstAnswered));
  wBool(tag(6, VARINT), bool('tcp', 'failed', tcp.failed));
  at = open(7);
  writeTcpDirection('tcp.clientToServer', obj('tcp', 'clientToServer', tcp.clientToServer));
  close(at);
  at = open(8);
  writeTcpDirection('tcp.serverToClient', obj('tcp', 'serverToClient', tcp.serverToClient));
  close(at);
  if (tcp.serverTsRttSummary !== undefined && tcp.serverTsRttSummary !== null) {
    at = open(11);
    writeSummary('tcp.serverTsRttSummary', obj('tcp', 'serverTsRttSummary', tcp.serverTsRttSummary));
    close(at);
  }
  if (tcp.clientTsRttSummary !== undefined && tcp.clientTsRttSummary !== null) {
    at = open(12);
    writeSummary('tcp.clientTsRttSummary', obj('tcp', 'clientTsRttSummary', tcp.clientTsRttSummary));
    close(at);
  }
  close(tat);
}

function writeIcmp(i: NonNullable<FlowRecord['icmp']>): void {
  let at: number;
  const iat = open(13);
  wU32(tag(1, VARINT), u32('icmp', 'echoRequests', i.echoRequests));
  wU32(tag(2, VARINT), u32('icmp', 'echoReplies', i.echoReplies));
  wU32(tag(3, VARINT), u32('icmp', 'unanswered', i.unanswered));
  if (i.rtt !== undefined && i.rtt !== null) {
    const s = obj('icmp', 'rtt', i.rtt);
    at = open(4);
    wU32(tag(1, VARINT), u32('icmp.rtt', 'count', s.count));
    wDblNonDefault(tag(2, FIXED64), dbl('icmp.rtt', 'minUs', s.minUs));
    wDblNonDefault(tag(3, FIXED64), dbl('icmp.rtt', 'maxUs', s.maxUs));
    wDblNonDefault(tag(4, FIXED64), dbl('icmp.rtt', 'sumUs', s.sumUs));
    wPacked(5, checkedArray('icmp.rtt', 'bucketDeltas', s.bucketDeltas));
    wPacked(6, checkedArray('icmp.rtt', 'bucketCounts', s.bucketCounts));
    close(at);
  }
  close(iat);
}
