/**
 * Record codecs: FlowRecord, PairWindow and Alert as bytes, in three formats.
 *
 *   json      the canonical proto3 JSON mapping (toProto3Json in src/capture/flow-record.ts):
 *             lowerCamelCase names, 64-bit integers as strings, enums by value name, defaults
 *             omitted; UTF-8, one object per message.
 *   protobuf  proto/mirrorflow.proto through protobufjs (canonical: proto3 defaults not written).
 *   avro      one Avro binary datum per message, per proto/flow_record.avsc / pair_window.avsc / alert.avsc
 *             (no header; the schema travels out of band, see schemaHeaders()).
 *
 * Decoding takes untrusted bytes: whatever is wrong (truncated, garbage, wrong types, an
 * unsupported schema version, a record failing validation) comes back as a CodecError with code
 * 'codec-decode' naming the format, the message and the problem. Encoding checks types and ranges
 * and throws 'codec-encode' (a programming error: the record does not fit the schema).
 *
 * File framing (JSON lines, length-delimited protobuf, Avro object container files) lives in
 * codec-stream.ts and is re-exported here.
 */
import { type FlowRecord, type PairWindow, toProto3Json, pairWindowToProto3Json } from '../capture/flow-record.js';
import type { RttSketchData } from '../capture/rtt-sketch.js';
import { alertToProto3Json, type Alert } from './alert-record.js';
import { decodeAvroDatum } from './codec-avro.js';
import { CodecError, FieldProblem } from './codec-error.js';
import {
  CONTENT_TYPES,
  RECORD_FORMATS,
  RECORD_KINDS,
  RECORD_SCHEMAS,
  avroType,
  protoType,
  schemaFingerprint,
  type RecordFormat,
  type RecordKind,
  type RecordOfKind,
} from './codec-schemas.js';
import { fromWireValue, toAvroValue, toPbObject, writePb, type PbWriter } from './codec-values.js';
import protobuf from 'protobufjs';

export { CodecError, type CodecErrorCode } from './codec-error.js';
export {
  CONTENT_TYPES,
  RECORD_FORMATS,
  RECORD_KINDS,
  RECORD_SCHEMAS,
  schemaFingerprint,
  type RecordFormat,
  type RecordKind,
  type RecordOfKind,
  type RecordSchemaInfo,
} from './codec-schemas.js';
export { fromProto3Json, pairWindowFromProto3Json } from './codec-values.js';
export { createRecordWriter, readRecords, readRecordStream, type RecordWriter, type RecordWriterOptions, type RecordReaderOptions } from './codec-stream.js';

/** Short message name for error texts ('FlowRecord'). */
export const messageName = (kind: RecordKind): string => RECORD_SCHEMAS[kind].spec.name;

function problemOf(err: unknown): { problem: string; field?: string } {
  if (err instanceof FieldProblem) return err.path ? { problem: err.problem, field: err.path } : { problem: err.problem };
  if (err instanceof Error) return { problem: err.message };
  return { problem: String(err) };
}

export function decodeError(kind: RecordKind, format: RecordFormat, err: unknown, extra: Record<string, unknown> = {}): CodecError {
  if (err instanceof CodecError) return err;
  return new CodecError('codec-decode', `malformed ${messageName(kind)}`, { format, ...extra, ...problemOf(err) }, err);
}

export function encodeError(kind: RecordKind, format: RecordFormat, err: unknown): CodecError {
  if (err instanceof CodecError) return err;
  return new CodecError('codec-encode', `cannot encode ${messageName(kind)}`, { format, ...problemOf(err) }, err);
}

// ---- validation (after decode, before encode)

function checkSketch(s: RttSketchData | undefined, path: string): void {
  if (!s) return;
  if (s.bucketDeltas.length !== s.bucketCounts.length) {
    throw new FieldProblem(path, `bucketDeltas and bucketCounts differ in length (${s.bucketDeltas.length} != ${s.bucketCounts.length})`);
  }
}

function checkCommon(kind: RecordKind, r: { id: string; schemaVersion: number }): void {
  if (r.id === '') throw new FieldProblem('id', 'empty');
  const supported = RECORD_SCHEMAS[kind].supportedVersions;
  if (!supported.includes(r.schemaVersion)) {
    throw new FieldProblem('schemaVersion', `unsupported schema version ${r.schemaVersion} (supported: ${supported.join(', ')})`);
  }
}

/** Throws a FieldProblem when a record (already shaped) breaks an invariant the schema cannot express. */
export function validateRecord<K extends RecordKind>(kind: K, value: RecordOfKind[K]): void {
  if (kind === 'flow-record') {
    const r = value as FlowRecord;
    checkCommon(kind, r);
    if ((r.exportReason as string) === 'unspecified') throw new FieldProblem('exportReason', 'unspecified');
    if (r.key.ipVersion !== 0 && r.key.ipVersion !== 4 && r.key.ipVersion !== 6) throw new FieldProblem('key.ipVersion', `not 0, 4 or 6 (value=${r.key.ipVersion})`);
    checkSketch(r.icmp?.rtt, 'icmp.rtt');
  } else if (kind === 'pair-window') {
    const w = value as PairWindow;
    checkCommon(kind, w);
    if (w.windowEndUs < w.windowStartUs) throw new FieldProblem('windowEndUs', `before windowStartUs (${w.windowEndUs} < ${w.windowStartUs})`);
  } else {
    const a = value as Alert;
    checkCommon(kind, a);
    if (a.state !== 'firing' && a.state !== 'resolved') throw new FieldProblem('state', `not firing or resolved (value=${a.state})`);
    if (a.windowEndUs < a.windowStartUs) throw new FieldProblem('windowEndUs', `before windowStartUs (${a.windowEndUs} < ${a.windowStartUs})`);
  }
}

// ---- single messages

const asBuffer = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

/** The protobufjs-ready plain object of a record (checked); shared with the delimited writer. */
export function protobufObject<K extends RecordKind>(kind: K, value: RecordOfKind[K]): Record<string, unknown> {
  try {
    validateRecord(kind, value);
    return toPbObject(RECORD_SCHEMAS[kind].spec, value as unknown as Record<string, unknown>);
  } catch (err) {
    throw encodeError(kind, 'protobuf', err);
  }
}

/** The avsc value of a record (checked); shared with the container-file writer. */
export function avroValue<K extends RecordKind>(kind: K, value: RecordOfKind[K]): Record<string, unknown> {
  try {
    validateRecord(kind, value);
    return toAvroValue(RECORD_SCHEMAS[kind].spec, value as unknown as Record<string, unknown>);
  } catch (err) {
    throw encodeError(kind, 'avro', err);
  }
}

/** The canonical proto3 JSON text of a record (checked), without a newline. */
export function jsonText<K extends RecordKind>(kind: K, value: RecordOfKind[K]): string {
  try {
    validateRecord(kind, value);
    // Checks types and ranges the way the binary formats do (toProto3Json itself coerces),
    // writing the protobuf form nowhere.
    writePb(RECORD_SCHEMAS[kind].spec, value as unknown as Record<string, unknown>, NULL_WRITER);
    const json = kind === 'flow-record' ? toProto3Json(value as FlowRecord) : kind === 'pair-window' ? pairWindowToProto3Json(value as PairWindow) : alertToProto3Json(value as Alert);
    return JSON.stringify(json);
  } catch (err) {
    throw encodeError(kind, 'json', err);
  }
}

/** Swallows what writePb writes: its checks without the bytes. */
const NULL_WRITER: PbWriter = {
  uint32: () => NULL_WRITER,
  int32: () => NULL_WRITER,
  uint64: () => NULL_WRITER,
  int64: () => NULL_WRITER,
  bool: () => NULL_WRITER,
  double: () => NULL_WRITER,
  string: () => NULL_WRITER,
  fork: () => NULL_WRITER,
  ldelim: () => NULL_WRITER,
};

/**
 * A record's protobuf bytes (checked), written straight from the record; `delimited` prefixes
 * them with their length as a varint (the framing of a protobuf stream).
 */
function protobufBytes<K extends RecordKind>(kind: K, value: RecordOfKind[K], delimited: boolean): Buffer {
  try {
    validateRecord(kind, value);
    const w = protobuf.Writer.create();
    if (delimited) w.fork();
    writePb(RECORD_SCHEMAS[kind].spec, value as unknown as Record<string, unknown>, w);
    if (delimited) w.ldelim();
    return asBuffer(w.finish());
  } catch (err) {
    throw encodeError(kind, 'protobuf', err);
  }
}

/** A record as one length-delimited protobuf message (for streams and files). */
export function encodeRecordDelimited<K extends RecordKind>(kind: K, value: RecordOfKind[K]): Buffer {
  return protobufBytes(kind, value, true);
}

export function encodeRecord<K extends RecordKind>(kind: K, value: RecordOfKind[K], format: RecordFormat): Buffer {
  switch (format) {
    case 'json':
      return Buffer.from(jsonText(kind, value), 'utf8');
    case 'protobuf': {
      // written straight from the record (no intermediate object tree); same bytes' meaning as
      // protoType(kind).encode(protobufObject(kind, value)), checked by the codec tests
      return protobufBytes(kind, value, false);
    }
    case 'avro': {
      const v = avroValue(kind, value);
      try {
        return avroType(kind).toBuffer(v);
      } catch (err) {
        throw encodeError(kind, format, err);
      }
    }
    default:
      throw new CodecError('codec-encode', 'unknown record format', { format: String(format) });
  }
}

/** Wire value (parsed JSON, protobufjs message, avsc value) → checked TS record. */
export function recordFromWire<K extends RecordKind>(kind: K, wire: unknown, format: RecordFormat, where: Record<string, unknown> = {}): RecordOfKind[K] {
  try {
    const r = fromWireValue(RECORD_SCHEMAS[kind].spec, wire) as unknown as RecordOfKind[K];
    validateRecord(kind, r);
    return r;
  } catch (err) {
    throw decodeError(kind, format, err, where);
  }
}

/** Decodes one message; `where` (e.g. `{ line: 12 }`) goes into the error details and message. */
export function decodeRecord<K extends RecordKind>(kind: K, bytes: Uint8Array, format: RecordFormat, where: Record<string, unknown> = {}): RecordOfKind[K] {
  let wire: unknown;
  try {
    switch (format) {
      case 'json':
        wire = JSON.parse(asBuffer(bytes).toString('utf8'));
        break;
      case 'protobuf':
        wire = protoType(kind).decode(bytes);
        break;
      case 'avro':
        wire = decodeAvroDatum(avroType(kind), asBuffer(bytes));
        break;
      default:
        throw new Error(`unknown record format ${String(format)}`);
    }
  } catch (err) {
    if (err instanceof CodecError && err.code === 'codec-schema') throw err;
    throw decodeError(kind, format, err, { ...where, bytes: bytes.byteLength });
  }
  return recordFromWire(kind, wire, format, where);
}

export const encodeFlowRecord = (r: FlowRecord, format: RecordFormat): Buffer => encodeRecord('flow-record', r, format);
export const decodeFlowRecord = (bytes: Uint8Array, format: RecordFormat): FlowRecord => decodeRecord('flow-record', bytes, format);
export const encodePairWindow = (w: PairWindow, format: RecordFormat): Buffer => encodeRecord('pair-window', w, format);
export const decodePairWindow = (bytes: Uint8Array, format: RecordFormat): PairWindow => decodeRecord('pair-window', bytes, format);
export const encodeAlert = (a: Alert, format: RecordFormat): Buffer => encodeRecord('alert', a, format);
export const decodeAlert = (bytes: Uint8Array, format: RecordFormat): Alert => decodeRecord('alert', bytes, format);

// ---- headers (Kafka)

export const SCHEMA_HEADER = 'mirrorflow-schema';
export const SCHEMA_VERSION_HEADER = 'mirrorflow-schema-version';
export const SCHEMA_FINGERPRINT_HEADER = 'mirrorflow-schema-fingerprint';
export const CONTENT_TYPE_HEADER = 'content-type';

/**
 * Headers describing a message of `kind` encoded as `format`: content-type, the fully qualified
 * schema name (mirrorflow.v1.FlowRecord), the schema version this build writes, and the schema
 * fingerprint (see schemaFingerprint).
 */
export function schemaHeaders(kind: RecordKind, format: RecordFormat): Record<string, string> {
  const s = RECORD_SCHEMAS[kind];
  return {
    [CONTENT_TYPE_HEADER]: CONTENT_TYPES[format],
    [SCHEMA_HEADER]: s.schemaName,
    [SCHEMA_VERSION_HEADER]: String(s.schemaVersion),
    [SCHEMA_FINGERPRINT_HEADER]: schemaFingerprint(kind, format),
  };
}

export interface DescribedMessage {
  kind: RecordKind;
  format: RecordFormat;
  schemaVersion: number;
  fingerprint: string | undefined;
}

/** Reads headers written by schemaHeaders (values as strings or Buffers); unknown or unsupported → codec-decode. */
export function describeMessage(headers: Record<string, string | Buffer | undefined | null>): DescribedMessage {
  const get = (k: string): string | undefined => {
    const v = headers[k];
    return v === undefined || v === null ? undefined : String(v);
  };
  const fail = (what: string, details: Record<string, unknown>): CodecError => new CodecError('codec-decode', what, details);
  const name = get(SCHEMA_HEADER);
  const kind = RECORD_KINDS.find((k) => RECORD_SCHEMAS[k].schemaName === name);
  if (!kind) throw fail('unknown message schema', { [SCHEMA_HEADER]: name ?? '(none)' });
  const ct = get(CONTENT_TYPE_HEADER);
  const format = RECORD_FORMATS.find((f) => CONTENT_TYPES[f] === ct);
  if (!format) throw fail('unknown content type', { [CONTENT_TYPE_HEADER]: ct ?? '(none)', schema: name });
  const versionText = get(SCHEMA_VERSION_HEADER);
  const version = Number(versionText);
  if (!RECORD_SCHEMAS[kind].supportedVersions.includes(version)) {
    throw fail('unsupported schema version', { schema: name, version: versionText ?? '(none)', supported: RECORD_SCHEMAS[kind].supportedVersions.join(',') });
  }
  return { kind, format, schemaVersion: version, fingerprint: get(SCHEMA_FINGERPRINT_HEADER) };
}
