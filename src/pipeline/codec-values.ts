/**
 * Spec-driven conversions between the TypeScript record shapes (FlowRecord, PairWindow) and the
 * values the wire libraries take and give, driven by the field tables in src/capture/flow-record.ts
 * (which mirror proto/mirrorflow.proto and the Avro twins):
 *
 *   toPbObject    TS → plain object for protobufjs Type.encode: enums as numbers, 64-bit integers
 *                 as numbers, proto3 defaults omitted (canonical bytes), `optional` kept when set.
 *   toAvroValue   TS → avsc value: every field present, enums by proto name, absent optional
 *                 fields and sub-messages as null.
 *   fromWireValue any of: a protobufjs message, an avsc value, a proto3 JSON object → TS shape
 *                 (int64 strings or Longs → numbers, enum names or numbers → short names, omitted
 *                 defaults restored). Accepts the proto field names (snake_case) as well in JSON.
 *
 * Every conversion checks types and ranges (uint32 range, int64 within ±2^53) and throws a
 * FieldProblem naming the field path; the codec turns that into a CodecError.
 */
import {
  FLOW_RECORD_SPEC,
  PAIR_WINDOW_SPEC,
  type FieldSpec,
  type FlowRecord,
  type MessageSpec,
  type PairWindow,
} from '../capture/flow-record.js';
import { FieldProblem } from './codec-error.js';

type Obj = Record<string, unknown>;
type EnumType = { enumPrefix: string; values: readonly string[] };
type Scalar = Exclude<FieldSpec['type'], object>;

/**
 * Sub-message fields that the TypeScript types declare optional (`?:`): absent on the wire, they
 * stay absent. Every other sub-message is always present in a valid record; when a message omits
 * it (proto3: absent = default), decoding restores it with all-default fields.
 */
const OPTIONAL_MESSAGES: ReadonlySet<string> = new Set([
  'FlowRecord.tcp',
  'FlowRecord.icmp',
  'TcpMetrics.serverTsRttSummary',
  'TcpMetrics.clientTsRttSummary',
  'IcmpMetrics.rtt',
  'PairWindow.trend',
]);

// ---- per-spec lookups, computed once

interface EnumMaps {
  /** short name → proto value number */
  toNumber: Map<string, number>;
  /** short name → proto value name ('EXPORT_REASON_FLUSH') */
  toProtoName: Map<string, string>;
  /** proto value name → short name */
  fromProtoName: Map<string, string>;
}
const enumCache = new WeakMap<EnumType, EnumMaps>();
function enumMaps(t: EnumType): EnumMaps {
  let m = enumCache.get(t);
  if (!m) {
    m = { toNumber: new Map(), toProtoName: new Map(), fromProtoName: new Map() };
    t.values.forEach((v, i) => {
      const protoName = t.enumPrefix + v.toUpperCase().replace(/-/g, '_');
      m!.toNumber.set(v, i);
      m!.toProtoName.set(v, protoName);
      m!.fromProtoName.set(protoName, v);
    });
    enumCache.set(t, m);
  }
  return m;
}

interface FieldInfo {
  f: FieldSpec;
  /** proto field name (snake_case), accepted in JSON input as well */
  protoName: string;
  kind: 'scalar' | 'enum' | 'message';
  /** for messages: absent allowed in the TS shape */
  optionalMessage: boolean;
}
const fieldCache = new WeakMap<MessageSpec, FieldInfo[]>();
function fields(spec: MessageSpec): FieldInfo[] {
  let fs = fieldCache.get(spec);
  if (!fs) {
    fs = spec.fields.map((f) => ({
      f,
      protoName: f.name.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase()),
      kind: typeof f.type === 'string' ? 'scalar' : 'enumPrefix' in f.type ? 'enum' : 'message',
      optionalMessage: OPTIONAL_MESSAGES.has(`${spec.name}.${f.name}`),
    }));
    fieldCache.set(spec, fs);
  }
  return fs;
}

const join = (path: string, name: string): string => (path ? `${path}.${name}` : name);

// ---- TS → wire

function checkScalarOut(type: Scalar, v: unknown, parent: string, name: string): void {
  switch (type) {
    case 'string':
      if (typeof v === 'string') return;
      break;
    case 'bool':
      if (typeof v === 'boolean') return;
      break;
    case 'double':
      if (typeof v === 'number') return;
      break;
    case 'uint32':
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return;
      throw new FieldProblem(join(parent, name), `not a uint32 (value=${String(v)})`);
    case 'uint64':
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return;
      throw new FieldProblem(join(parent, name), `not a uint64 below 2^53 (value=${String(v)})`);
    case 'int64':
      if (typeof v === 'number' && Number.isSafeInteger(v)) return;
      throw new FieldProblem(join(parent, name), `not an int64 within ±2^53 (value=${String(v)})`);
  }
  throw new FieldProblem(join(parent, name), `expected a ${type} (got ${typeof v})`);
}

function isScalarDefault(type: Scalar, v: unknown): boolean {
  if (type === 'string') return v === '';
  if (type === 'bool') return v === false;
  return v === 0 && !Object.is(v, -0);
}

/** TS value → plain object for protobufjs `Type.encode` (canonical: proto3 defaults omitted). */
export function toPbObject(spec: MessageSpec, value: Obj, path = ''): Obj {
  const out: Obj = {};
  for (const fi of fields(spec)) {
    const f = fi.f;
    const v = value[f.name];
    if (f.repeated) {
      if (v === undefined || v === null) continue;
      if (!Array.isArray(v)) throw new FieldProblem(join(path, f.name), 'expected an array');
      if (v.length === 0) continue;
      if (fi.kind !== 'scalar') throw new FieldProblem(join(path, f.name), 'repeated non-scalar fields are not supported');
      for (const x of v) checkScalarOut(f.type as Scalar, x, path, f.name);
      out[f.name] = v;
      continue;
    }
    if (fi.kind === 'message') {
      if (v === undefined || v === null) {
        if (fi.optionalMessage) continue;
        throw new FieldProblem(join(path, f.name), 'required sub-message missing');
      }
      if (typeof v !== 'object') throw new FieldProblem(join(path, f.name), 'expected an object');
      out[f.name] = toPbObject((f.type as { message: MessageSpec }).message, v as Obj, join(path, f.name));
      continue;
    }
    if (v === undefined || v === null) {
      if (f.optional) continue;
      throw new FieldProblem(join(path, f.name), 'required field missing');
    }
    if (fi.kind === 'enum') {
      const n = enumMaps(f.type as EnumType).toNumber.get(v as string);
      if (n === undefined) throw new FieldProblem(join(path, f.name), `unknown enum value (value=${String(v)})`);
      if (n !== 0 || f.optional) out[f.name] = n;
      continue;
    }
    checkScalarOut(f.type as Scalar, v, path, f.name);
    if (f.optional || !isScalarDefault(f.type as Scalar, v)) out[f.name] = v;
  }
  return out;
}

/** The writer subset writePb needs (protobufjs Writer). */
export interface PbWriter {
  uint32(v: number): PbWriter;
  int32(v: number): PbWriter;
  uint64(v: number): PbWriter;
  int64(v: number): PbWriter;
  bool(v: boolean): PbWriter;
  double(v: number): PbWriter;
  string(v: string): PbWriter;
  fork(): PbWriter;
  ldelim(): PbWriter;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;

function writeScalarValue(w: PbWriter, type: Scalar, v: unknown): void {
  switch (type) {
    case 'string':
      w.string(v as string);
      return;
    case 'bool':
      w.bool(v as boolean);
      return;
    case 'uint32':
      w.uint32(v as number);
      return;
    case 'uint64':
      w.uint64(v as number);
      return;
    case 'int64':
      w.int64(v as number);
      return;
    case 'double':
      w.double(v as number);
      return;
  }
}

const wireTypeOf = (type: Scalar): number => (type === 'string' ? WIRE_LEN : type === 'double' ? WIRE_FIXED64 : WIRE_VARINT);

/**
 * TS value → protobuf bytes written straight into a protobufjs Writer, with the same checks and
 * the same canonical choices as toPbObject + Type.encode (proto3 defaults omitted, `optional`
 * fields written when present, repeated numbers packed), without building an object tree first.
 */
export function writePb(spec: MessageSpec, value: Obj, w: PbWriter, path = ''): void {
  for (const fi of fields(spec)) {
    const f = fi.f;
    const v = value[f.name];
    if (f.repeated) {
      if (v === undefined || v === null) continue;
      if (!Array.isArray(v)) throw new FieldProblem(join(path, f.name), 'expected an array');
      if (v.length === 0) continue;
      if (fi.kind !== 'scalar') throw new FieldProblem(join(path, f.name), 'repeated non-scalar fields are not supported');
      const type = f.type as Scalar;
      for (const x of v) checkScalarOut(type, x, path, f.name);
      if (type === 'string') {
        for (const x of v) w.uint32((f.number << 3) | WIRE_LEN).string(x as string);
      } else {
        w.uint32((f.number << 3) | WIRE_LEN).fork();
        for (const x of v) writeScalarValue(w, type, x);
        w.ldelim();
      }
      continue;
    }
    if (fi.kind === 'message') {
      if (v === undefined || v === null) {
        if (fi.optionalMessage) continue;
        throw new FieldProblem(join(path, f.name), 'required sub-message missing');
      }
      if (typeof v !== 'object') throw new FieldProblem(join(path, f.name), 'expected an object');
      w.uint32((f.number << 3) | WIRE_LEN).fork();
      writePb((f.type as { message: MessageSpec }).message, v as Obj, w, join(path, f.name));
      w.ldelim();
      continue;
    }
    if (v === undefined || v === null) {
      if (f.optional) continue;
      throw new FieldProblem(join(path, f.name), 'required field missing');
    }
    if (fi.kind === 'enum') {
      const n = enumMaps(f.type as EnumType).toNumber.get(v as string);
      if (n === undefined) throw new FieldProblem(join(path, f.name), `unknown enum value (value=${String(v)})`);
      if (n !== 0 || f.optional) w.uint32((f.number << 3) | WIRE_VARINT).int32(n);
      continue;
    }
    const type = f.type as Scalar;
    checkScalarOut(type, v, path, f.name);
    if (f.optional || !isScalarDefault(type, v)) {
      w.uint32((f.number << 3) | wireTypeOf(type));
      writeScalarValue(w, type, v);
    }
  }
}

/** TS value → avsc value of the generated .avsc (all fields present; absent → null). */
export function toAvroValue(spec: MessageSpec, value: Obj, path = ''): Obj {
  const out: Obj = {};
  for (const fi of fields(spec)) {
    const f = fi.f;
    const v = value[f.name];
    if (f.repeated) {
      if (v === undefined || v === null) {
        out[f.name] = [];
        continue;
      }
      if (!Array.isArray(v)) throw new FieldProblem(join(path, f.name), 'expected an array');
      for (const x of v) checkScalarOut(f.type as Scalar, x, path, f.name);
      out[f.name] = v;
      continue;
    }
    if (fi.kind === 'message') {
      if (v === undefined || v === null) {
        if (fi.optionalMessage) {
          out[f.name] = null;
          continue;
        }
        throw new FieldProblem(join(path, f.name), 'required sub-message missing');
      }
      if (typeof v !== 'object') throw new FieldProblem(join(path, f.name), 'expected an object');
      out[f.name] = toAvroValue((f.type as { message: MessageSpec }).message, v as Obj, join(path, f.name));
      continue;
    }
    if (v === undefined || v === null) {
      if (f.optional) {
        out[f.name] = null;
        continue;
      }
      throw new FieldProblem(join(path, f.name), 'required field missing');
    }
    if (fi.kind === 'enum') {
      const name = enumMaps(f.type as EnumType).toProtoName.get(v as string);
      if (name === undefined) throw new FieldProblem(join(path, f.name), `unknown enum value (value=${String(v)})`);
      out[f.name] = name;
      continue;
    }
    checkScalarOut(f.type as Scalar, v, path, f.name);
    out[f.name] = v;
  }
  return out;
}

// ---- wire → TS

const INT_RE = /^-?\d+$/;

interface LongLike {
  low: number;
  high: number;
  unsigned: boolean;
  toNumber(): number;
}
const isLong = (v: unknown): v is LongLike =>
  typeof v === 'object' && v !== null && typeof (v as LongLike).low === 'number' && typeof (v as LongLike).high === 'number' && typeof (v as LongLike).toNumber === 'function';

function readInteger(v: unknown, path: string, what: string): number {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && INT_RE.test(v)) n = Number(v);
  else if (isLong(v)) n = v.toNumber();
  else if (typeof v === 'bigint') n = Number(v);
  else throw new FieldProblem(path, `expected ${what} (got ${typeof v})`);
  if (!Number.isSafeInteger(n)) throw new FieldProblem(path, `${what} out of range (value=${String(v)})`);
  return n;
}

function readScalar(type: Scalar, v: unknown, path: string): unknown {
  switch (type) {
    case 'string':
      if (typeof v !== 'string') throw new FieldProblem(path, `expected a string (got ${typeof v})`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw new FieldProblem(path, `expected a bool (got ${typeof v})`);
      return v;
    case 'double':
      if (typeof v === 'number') return v;
      if (typeof v === 'string') {
        if (v === 'NaN') return NaN;
        if (v === 'Infinity') return Infinity;
        if (v === '-Infinity') return -Infinity;
        const n = v.trim() === '' ? NaN : Number(v);
        if (!Number.isNaN(n)) return n;
      }
      throw new FieldProblem(path, `expected a double (value=${JSON.stringify(v) ?? typeof v})`);
    case 'uint32': {
      const n = readInteger(v, path, 'a uint32');
      if (n < 0 || n > 0xffffffff) throw new FieldProblem(path, `uint32 out of range (value=${n})`);
      return n;
    }
    case 'uint64': {
      const n = readInteger(v, path, 'a uint64');
      if (n < 0) throw new FieldProblem(path, `uint64 out of range (value=${n})`);
      return n;
    }
    case 'int64':
      return readInteger(v, path, 'an int64');
  }
}

function scalarDefault(type: Scalar): unknown {
  return type === 'string' ? '' : type === 'bool' ? false : 0;
}

function readEnum(t: EnumType, v: unknown, path: string): string {
  if (typeof v === 'string') {
    const name = enumMaps(t).fromProtoName.get(v);
    if (name !== undefined) return name;
  } else if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < t.values.length) {
    return t.values[v]!;
  }
  throw new FieldProblem(path, `unknown enum value (value=${String(v)})`);
}

/**
 * A decoded protobufjs message, an avsc value or a proto3 JSON object → the TS shape of `spec`.
 * Unknown fields are ignored (a newer writer's additions); absent fields get their defaults.
 */
export function fromWireValue(spec: MessageSpec, value: unknown, path = ''): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FieldProblem(path, `expected a ${spec.name} object`);
  const obj = value as Obj;
  const out: Obj = {};
  for (const fi of fields(spec)) {
    const f = fi.f;
    let v = obj[f.name];
    if (v === undefined && fi.protoName !== f.name) v = obj[fi.protoName];
    if (f.repeated) {
      if (v === undefined || v === null) {
        out[f.name] = [];
        continue;
      }
      if (!Array.isArray(v)) throw new FieldProblem(join(path, f.name), 'expected an array');
      const p = join(path, f.name);
      const arr = new Array<unknown>(v.length);
      for (let i = 0; i < v.length; i++) arr[i] = readScalar(f.type as Scalar, v[i], p);
      out[f.name] = arr;
      continue;
    }
    if (fi.kind === 'message') {
      const sub = (f.type as { message: MessageSpec }).message;
      if (v === undefined || v === null) {
        if (!fi.optionalMessage) out[f.name] = fromWireValue(sub, {}, join(path, f.name));
        continue;
      }
      out[f.name] = fromWireValue(sub, v, join(path, f.name));
      continue;
    }
    if (v === undefined || v === null) {
      if (!f.optional) out[f.name] = fi.kind === 'enum' ? (f.type as EnumType).values[0] : scalarDefault(f.type as Scalar);
      continue;
    }
    out[f.name] = fi.kind === 'enum' ? readEnum(f.type as EnumType, v, join(path, f.name)) : readScalar(f.type as Scalar, v, join(path, f.name));
  }
  return out;
}

/**
 * Canonical proto3 JSON (as written by toProto3Json / pairWindowToProto3Json, or by any proto3 JSON
 * printer) → the TS shape. Does not validate the record; the codec does (see validateRecord).
 */
export function fromProto3Json(json: unknown): FlowRecord {
  return fromWireValue(FLOW_RECORD_SPEC, json) as unknown as FlowRecord;
}

export function pairWindowFromProto3Json(json: unknown): PairWindow {
  return fromWireValue(PAIR_WINDOW_SPEC, json) as unknown as PairWindow;
}
