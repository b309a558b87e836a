/**
 * FlowRecord → protobuf bytes, written field by field (the producer's hot path). The same bytes as
 * writePb(FLOW_RECORD_SPEC, …) — field order, proto3 defaults omitted, `optional` fields written
 * when present, packed repeated numbers, sub-messages always written when present — and the same
 * checks (types, uint32 range, 64-bit integers within ±2^53, known enum values, required
 * sub-messages), throwing a FieldProblem naming the field. Equality with writePb is tested on the
 * codec fixtures (test/unit/pipeline/codec-batch.test.ts); when the schema changes, change both.
 */
import { EXPORT_REASONS, TUNNEL_NAMES, type DirectionCounters, type FlowRecord, type RttSummary, type TcpDirectionRecord } from '../capture/flow-record.js';
import type { RttSketchData } from '../capture/rtt-sketch.js';
import { FieldProblem } from './codec-error.js';
import type { PbBufferWriter } from './codec-pb-writer.js';

const EXPORT_REASON_NUMBER = new Map<string, number>(EXPORT_REASONS.map((v, i) => [v, i + 1]));
const TUNNEL_NUMBER = new Map<string, number>(TUNNEL_NAMES.map((v, i) => [v, i]));

function u32(p: string, name: string, v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return v;
  const path = p ? `${p}.${name}` : name;
  if (v === undefined || v === null) throw new FieldProblem(path, 'required field missing');
  if (typeof v !== 'number') throw new FieldProblem(path, `expected a uint32 (got ${typeof v})`);
  throw new FieldProblem(path, `not a uint32 (value=${String(v)})`);
}
function u64(p: string, name: string, v: unknown): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  const path = p ? `${p}.${name}` : name;
  if (v === undefined || v === null) throw new FieldProblem(path, 'required field missing');
  if (typeof v !== 'number') throw new FieldProblem(path, `expected a uint64 (got ${typeof v})`);
  throw new FieldProblem(path, `not a uint64 below 2^53 (value=${String(v)})`);
}
function i64(p: string, name: string, v: unknown): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  const path = p ? `${p}.${name}` : name;
  if (v === undefined || v === null) throw new FieldProblem(path, 'required field missing');
  if (typeof v !== 'number') throw new FieldProblem(path, `expected a int64 (got ${typeof v})`);
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
  const path = p ? `${p}.${name}` : name;
  if (v === undefined || v === null) throw new FieldProblem(path, 'required sub-message missing');
  if (typeof v !== 'object') throw new FieldProblem(path, 'expected an object');
  return v;
}

// tag bytes: (field << 3) | wire type; all fields here are below 16, so one byte
const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const tag = (f: number, wt: number): number => (f << 3) | wt;

function wU32(w: PbBufferWriter, f: number, v: number): void {
  if (v !== 0) w.uint32(tag(f, VARINT)).uint32(v);
}
function wU64(w: PbBufferWriter, f: number, v: number): void {
  if (v !== 0) w.uint32(tag(f, VARINT)).uint64(v);
}
function wI64(w: PbBufferWriter, f: number, v: number): void {
  if (v !== 0) w.uint32(tag(f, VARINT)).int64(v);
}
function wDbl(w: PbBufferWriter, f: number, v: number, optional = false): void {
  if (optional || v !== 0 || Object.is(v, -0)) w.uint32(tag(f, FIXED64)).double(v);
}
function wStr(w: PbBufferWriter, f: number, v: string): void {
  if (v !== '') w.uint32(tag(f, LEN)).string(v);
}
function wBool(w: PbBufferWriter, f: number, v: boolean): void {
  if (v) w.uint32(tag(f, VARINT)).bool(true);
}
function wPacked(w: PbBufferWriter, f: number, p: string, name: string, v: unknown): void {
  if (v === undefined || v === null) return;
  if (!Array.isArray(v)) throw new FieldProblem(`${p}.${name}`, 'expected an array');
  if (v.length === 0) return;
  for (const x of v) u32(p, name, x);
  w.uint32(tag(f, LEN)).fork();
  for (const x of v as number[]) w.uint32(x);
  w.ldelim();
}

function writeDirection(w: PbBufferWriter, p: string, d: DirectionCounters): void {
  wU64(w, 1, u64(p, 'packets', d.packets));
  wU64(w, 2, u64(p, 'bytes', d.bytes));
  wI64(w, 3, i64(p, 'firstUs', d.firstUs));
  wI64(w, 4, i64(p, 'lastUs', d.lastUs));
  wU32(w, 5, u32(p, 'tcpFlags', d.tcpFlags));
}

function writeTcpDirection(w: PbBufferWriter, p: string, d: TcpDirectionRecord): void {
  wU32(w, 1, u32(p, 'dataSegments', d.dataSegments));
  wU32(w, 2, u32(p, 'retransmits', d.retransmits));
  wU32(w, 3, u32(p, 'gapFills', d.gapFills));
  wU32(w, 4, u32(p, 'outOfOrder', d.outOfOrder));
  wU32(w, 5, u32(p, 'dupAcks', d.dupAcks));
  wU32(w, 6, u32(p, 'zeroWindows', d.zeroWindows));
  wU32(w, 7, u32(p, 'rsts', d.rsts));
  wU32(w, 8, u32(p, 'synRetransmits', d.synRetransmits));
}

function writeSummary(w: PbBufferWriter, p: string, s: RttSummary): void {
  wU32(w, 1, u32(p, 'count', s.count));
  wDbl(w, 2, dbl(p, 'minUs', s.minUs));
  wDbl(w, 3, dbl(p, 'maxUs', s.maxUs));
  wDbl(w, 4, dbl(p, 'sumUs', s.sumUs));
}

function writeSketch(w: PbBufferWriter, p: string, s: RttSketchData): void {
  wU32(w, 1, u32(p, 'count', s.count));
  wDbl(w, 2, dbl(p, 'minUs', s.minUs));
  wDbl(w, 3, dbl(p, 'maxUs', s.maxUs));
  wDbl(w, 4, dbl(p, 'sumUs', s.sumUs));
  wPacked(w, 5, p, 'bucketDeltas', s.bucketDeltas);
  wPacked(w, 6, p, 'bucketCounts', s.bucketCounts);
}

const open = (w: PbBufferWriter, f: number): void => {
  w.uint32(tag(f, LEN)).fork();
};

/** Writes the FlowRecord's fields (no length prefix) into `w`; throws FieldProblem on a bad value. */
export function writeFlowRecordPb(w: PbBufferWriter, r: FlowRecord): void {
  wStr(w, 1, str('', 'id', r.id));
  wU32(w, 2, u32('', 'schemaVersion', r.schemaVersion));
  wU64(w, 3, u64('', 'sequence', r.sequence));
  wU64(w, 4, u64('', 'flowId', r.flowId));
  const o = obj('', 'observation', r.observation);
  open(w, 5);
  wStr(w, 1, str('observation', 'agentId', o.agentId));
  wStr(w, 2, str('observation', 'bridge', o.bridge));
  wStr(w, 3, str('observation', 'mirror', o.mirror));
  wStr(w, 4, str('observation', 'interface', o.interface));
  w.ldelim();
  const reason = EXPORT_REASON_NUMBER.get(r.exportReason as string);
  if (reason === undefined) {
    if ((r.exportReason as unknown) === undefined || (r.exportReason as unknown) === null) throw new FieldProblem('exportReason', 'required field missing');
    if ((r.exportReason as string) !== 'unspecified') throw new FieldProblem('exportReason', `unknown enum value (value=${String(r.exportReason)})`);
  } else w.uint32(tag(6, VARINT)).int32(reason);
  const k = obj('', 'key', r.key);
  open(w, 7);
  wPacked(w, 1, 'key', 'vlans', k.vlans);
  const t = TUNNEL_NUMBER.get(k.tunnel as string);
  if (t === undefined) {
    if ((k.tunnel as unknown) === undefined || (k.tunnel as unknown) === null) throw new FieldProblem('key.tunnel', 'required field missing');
    throw new FieldProblem('key.tunnel', `unknown enum value (value=${String(k.tunnel)})`);
  }
  if (t !== 0) w.uint32(tag(2, VARINT)).int32(t);
  if (k.vni !== undefined && k.vni !== null) w.uint32(tag(3, VARINT)).uint32(u32('key', 'vni', k.vni));
  wU32(w, 4, u32('key', 'ipVersion', k.ipVersion));
  wU32(w, 5, u32('key', 'protocol', k.protocol));
  wU32(w, 6, u32('key', 'etherType', k.etherType));
  wStr(w, 7, str('key', 'clientIp', k.clientIp));
  wStr(w, 8, str('key', 'serverIp', k.serverIp));
  wU32(w, 9, u32('key', 'clientPort', k.clientPort));
  wU32(w, 10, u32('key', 'serverPort', k.serverPort));
  wStr(w, 11, str('key', 'clientMac', k.clientMac));
  wStr(w, 12, str('key', 'serverMac', k.serverMac));
  if (k.icmpId !== undefined && k.icmpId !== null) w.uint32(tag(13, VARINT)).uint32(u32('key', 'icmpId', k.icmpId));
  if (k.icmpType !== undefined && k.icmpType !== null) w.uint32(tag(14, VARINT)).uint32(u32('key', 'icmpType', k.icmpType));
  if (k.icmpCode !== undefined && k.icmpCode !== null) w.uint32(tag(15, VARINT)).uint32(u32('key', 'icmpCode', k.icmpCode));
  wBool(w, 16, bool('key', 'fragmentsOnly', k.fragmentsOnly));
  w.ldelim();
  wI64(w, 8, i64('', 'startUs', r.startUs));
  wI64(w, 9, i64('', 'endUs', r.endUs));
  open(w, 10);
  writeDirection(w, 'clientToServer', obj('', 'clientToServer', r.clientToServer));
  w.ldelim();
  open(w, 11);
  writeDirection(w, 'serverToClient', obj('', 'serverToClient', r.serverToClient));
  w.ldelim();
  if (r.tcp !== undefined && r.tcp !== null) {
    const tcp = obj('', 'tcp', r.tcp);
    open(w, 12);
    if (tcp.handshakeRttUs !== undefined && tcp.handshakeRttUs !== null) wDbl(w, 1, dbl('tcp', 'handshakeRttUs', tcp.handshakeRttUs), true);
    if (tcp.handshakeServerUs !== undefined && tcp.handshakeServerUs !== null) wDbl(w, 2, dbl('tcp', 'handshakeServerUs', tcp.handshakeServerUs), true);
    if (tcp.handshakeClientUs !== undefined && tcp.handshakeClientUs !== null) wDbl(w, 3, dbl('tcp', 'handshakeClientUs', tcp.handshakeClientUs), true);
    wBool(w, 4, bool('tcp', 'synOnly', tcp.synOnly));
    wBool(w, 5, bool('tcp', 'rstAnswered', tcp.rstAnswered));
    wBool(w, 6, bool('tcp', 'failed', tcp.failed));
    open(w, 7);
    writeTcpDirection(w, 'tcp.clientToServer', obj('tcp', 'clientToServer', tcp.clientToServer));
    w.ldelim();
    open(w, 8);
    writeTcpDirection(w, 'tcp.serverToClient', obj('tcp', 'serverToClient', tcp.serverToClient));
    w.ldelim();
    if (tcp.serverTsRttSummary !== undefined && tcp.serverTsRttSummary !== null) {
      open(w, 11);
      writeSummary(w, 'tcp.serverTsRttSummary', obj('tcp', 'serverTsRttSummary', tcp.serverTsRttSummary));
      w.ldelim();
    }
    if (tcp.clientTsRttSummary !== undefined && tcp.clientTsRttSummary !== null) {
      open(w, 12);
      writeSummary(w, 'tcp.clientTsRttSummary', obj('tcp', 'clientTsRttSummary', tcp.clientTsRttSummary));
      w.ldelim();
    }
    w.ldelim();
  }
  if (r.icmp !== undefined && r.icmp !== null) {
    const i = obj('', 'icmp', r.icmp);
    open(w, 13);
    wU32(w, 1, u32('icmp', 'echoRequests', i.echoRequests));
    wU32(w, 2, u32('icmp', 'echoReplies', i.echoReplies));
    wU32(w, 3, u32('icmp', 'unanswered', i.unanswered));
    if (i.rtt !== undefined && i.rtt !== null) {
      open(w, 4);
      writeSketch(w, 'icmp.rtt', obj('icmp', 'rtt', i.rtt));
      w.ldelim();
    }
    w.ldelim();
  }
  wDbl(w, 14, dbl('', 'lossRate', r.lossRate));
}
