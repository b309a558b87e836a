/**
 * Many FlowRecords in one Kafka message: the framing of the flows topic's batch messages.
 *
 *   protobuf  the bytes of `message FlowRecordBatch { repeated FlowRecord records = 1; }`
 *             (proto/mirrorflow.proto): each record as field 1 — tag 0x0a, varint length, the
 *             FlowRecord — so a consumer with the .proto decodes the whole value as a
 *             FlowRecordBatch, and one without it splits the value at the length prefixes.
 *   avro      one Avro datum of type `array` of mirrorflow.v1.FlowRecord (proto/flow_record.avsc).
 *   json      JSON lines: one canonical proto3 JSON FlowRecord per line, '\n' after each
 *             (content-type application/x-ndjson).
 *
 * Headers (flowBatchHeaders): content-type, `mirrorflow-schema: mirrorflow.v1.FlowRecordBatch`,
 * `mirrorflow-schema-version` (the FlowRecord schema version of the records inside),
 * `mirrorflow-schema-fingerprint` (of FlowRecord in that format) and `mirrorflow-record-count`.
 * A message with the FlowRecord schema (one record per message, as before batching) is still a
 * valid message of the flows topic: describeFlowMessage tells them apart.
 *
 * Decoding takes untrusted bytes: a batch whose framing is broken (a length running past the end,
 * a wrong tag, a record count that differs from the header) is refused whole with a CodecError;
 * the records of a well-framed batch are decoded one by one (a bad one is skipped alone).
 */
import avro from 'avsc';
import { FLOW_RECORD_SCHEMA_VERSION, type FlowRecord } from '../capture/flow-record.js';
import { decodeAvroDatum } from './codec-avro.js';
import { CodecError } from './codec-error.js';
import { PbBufferWriter } from './codec-pb-writer.js';
import { RECORD_FORMATS, avroType, schemaFingerprint, type RecordFormat } from './codec-schemas.js';
import { writeFlowRecordDelimitedPb, writeFlowRecordPb } from './codec-flow-pb.js';
import {
  CONTENT_TYPE_HEADER,
  CONTENT_TYPES,
  SCHEMA_FINGERPRINT_HEADER,
  SCHEMA_HEADER,
  SCHEMA_VERSION_HEADER,
  avroValue,
  decodeError,
  decodeRecord,
  describeMessage,
  encodeError,
  jsonText,
  recordFromWire,
  validateRecord,
  type DescribedMessage,
} from './codec.js';

export const FLOW_BATCH_SCHEMA = 'mirrorflow.v1.FlowRecordBatch';
export const RECORD_COUNT_HEADER = 'mirrorflow-record-count';
/** Content types of batch values, by format (JSON batches are JSON lines). */
export const BATCH_CONTENT_TYPES: Readonly<Record<RecordFormat, string>> = {
  json: 'application/x-ndjson',
  protobuf: CONTENT_TYPES.protobuf,
  avro: CONTENT_TYPES.avro,
};
/** Records in one batch message at most (a header claiming more is refused). */
export const MAX_BATCH_RECORDS = 1_000_000;

/** Headers of a batch message of `count` records in `format`. */
export function flowBatchHeaders(format: RecordFormat, count: number): Record<string, string> {
  return {
    [CONTENT_TYPE_HEADER]: BATCH_CONTENT_TYPES[format],
    [SCHEMA_HEADER]: FLOW_BATCH_SCHEMA,
    [SCHEMA_VERSION_HEADER]: String(FLOW_RECORD_SCHEMA_VERSION),
    [SCHEMA_FINGERPRINT_HEADER]: schemaFingerprint('flow-record', format),
    [RECORD_COUNT_HEADER]: String(count),
  };
}

export interface FlowMessageInfo extends DescribedMessage {
  /** A FlowRecordBatch (many records) rather than one FlowRecord. */
  batch: boolean;
  /** Records the batch says it holds (its header); undefined for single records or without the header. */
  count: number | undefined;
}

export type HeaderValues = Record<string, string | Buffer | undefined | null>;

/**
 * What a message of the flows topic holds, from its headers: one FlowRecord (describeMessage) or a
 * FlowRecordBatch. Unknown or unsupported → CodecError ('codec-decode'), as describeMessage.
 */
export function describeFlowMessage(headers: HeaderValues): FlowMessageInfo {
  const get = (k: string): string | undefined => {
    const v = headers[k];
    return v === undefined || v === null ? undefined : String(v);
  };
  if (get(SCHEMA_HEADER) !== FLOW_BATCH_SCHEMA) return { ...describeMessage(headers), batch: false, count: undefined };
  const ct = get(CONTENT_TYPE_HEADER);
  const format = RECORD_FORMATS.find((f) => BATCH_CONTENT_TYPES[f] === ct);
  if (!format) throw new CodecError('codec-decode', 'unknown content type', { [CONTENT_TYPE_HEADER]: ct ?? '(none)', schema: FLOW_BATCH_SCHEMA });
  const versionText = get(SCHEMA_VERSION_HEADER);
  const version = Number(versionText);
  if (version !== FLOW_RECORD_SCHEMA_VERSION) {
    throw new CodecError('codec-decode', 'unsupported schema version', { schema: FLOW_BATCH_SCHEMA, version: versionText ?? '(none)', supported: String(FLOW_RECORD_SCHEMA_VERSION) });
  }
  const countText = get(RECORD_COUNT_HEADER);
  let count: number | undefined;
  if (countText !== undefined) {
    count = Number(countText);
    if (!/^\d+$/.test(countText) || count > MAX_BATCH_RECORDS) throw new CodecError('codec-decode', 'corrupt batch', { problem: 'bad record count header', [RECORD_COUNT_HEADER]: countText });
  }
  return { kind: 'flow-record', format, schemaVersion: version, fingerprint: get(SCHEMA_FINGERPRINT_HEADER), batch: true, count };
}

// ---- encoding

const scratch = new PbBufferWriter(4096);

/** A record's protobuf bytes in the shared scratch writer (checked); valid until the next call. */
export function encodeFlowRecordScratch(r: FlowRecord): Buffer {
  scratch.reset();
  try {
    validateRecord('flow-record', r);
    writeFlowRecordPb(scratch, r);
  } catch (err) {
    scratch.reset();
    throw encodeError('flow-record', 'protobuf', err);
  }
  return scratch.view();
}

let avroBatch: avro.Type | undefined;
/** The Avro type of a batch: array of mirrorflow.v1.FlowRecord. */
export function avroBatchType(): avro.Type {
  avroBatch ??= avro.Type.forSchema({ type: 'array', items: avroType('flow-record') } as unknown as avro.Schema);
  return avroBatch;
}

/**
 * Builds one batch value record by record. add() checks and encodes the record first, so a record
 * that does not fit the schema throws (codec-encode) and leaves the batch as it was.
 */
export class FlowBatchBuilder {
  private readonly pb: PbBufferWriter | undefined;
  private lines: string[] = [];
  private linesBytes = 0;
  private avroValues: Record<string, unknown>[] = [];
  private n = 0;

  constructor(
    readonly format: RecordFormat,
    initialBytes = 64 * 1024,
  ) {
    if (format === 'protobuf') this.pb = new PbBufferWriter(initialBytes);
  }

  get count(): number {
    return this.n;
  }

  /** Encoded bytes so far (Avro: an estimate until take()). */
  get bytes(): number {
    if (this.pb) return this.pb.pos;
    if (this.format === 'json') return this.linesBytes;
    return this.linesBytes;
  }

  add(r: FlowRecord): void {
    if (this.pb) {
      // written in place: tag, then the record with its length
      const w = this.pb;
      const at = w.pos;
      w.ensure(1);
      w.buf[at] = 0x0a; // field 1, length-delimited
      w.pos = at + 1;
      try {
        validateRecord('flow-record', r);
        writeFlowRecordDelimitedPb(w, r);
      } catch (err) {
        w.pos = at;
        throw encodeError('flow-record', 'protobuf', err);
      }
    } else if (this.format === 'json') {
      const line = jsonText('flow-record', r);
      this.lines.push(line);
      this.linesBytes += line.length + 1;
    } else {
      const v = avroValue('flow-record', r);
      this.avroValues.push(v);
      this.linesBytes += 200; // an estimate: the value is encoded in take()
    }
    this.n++;
  }

  /** The batch value (the builder's own buffer when mostly full, else a copy); the builder is empty again. */
  take(): Buffer {
    let out: Buffer;
    if (this.pb) {
      const w = this.pb;
      if (w.pos * 2 >= w.buf.length) {
        // hand the buffer over (no copy) and write the next batch into a new one of the same size
        out = w.buf.subarray(0, w.pos);
        w.buf = Buffer.allocUnsafeSlow(w.buf.length);
      } else out = Buffer.from(w.view());
      w.reset();
    } else if (this.format === 'json') {
      out = Buffer.from(this.lines.length ? this.lines.join('\n') + '\n' : '', 'utf8');
      this.lines = [];
    } else {
      out = avroBatchType().toBuffer(this.avroValues);
      this.avroValues = [];
    }
    this.linesBytes = 0;
    this.n = 0;
    return out;
  }
}

/** One batch value of `records` (tests, tools). */
export function encodeFlowBatch(records: readonly FlowRecord[], format: RecordFormat): Buffer {
  const b = new FlowBatchBuilder(format);
  for (const r of records) b.add(r);
  return b.take();
}

// ---- decoding

function corrupt(format: RecordFormat, problem: string, details: Record<string, unknown> = {}): CodecError {
  return new CodecError('codec-decode', 'corrupt batch', { format, problem, ...details });
}

/** Reads a varint32 at `pos`; returns [value, next] or undefined when it runs past `end` or is too long. */
/** Position after the last readVarint32 (a module field: no tuple allocated per varint). */
let varintEnd = 0;

/** Reads a varint32 at `pos` (its end in varintEnd); -1 when it runs past `end` or does not fit 32 bits. */
function readVarint32(b: Uint8Array, pos: number, end: number): number {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 5 && pos < end; i++) {
    const c = b[pos++]!;
    v += (c & 127) * mul;
    if (c < 128) {
      varintEnd = pos;
      return v > 0xffffffff ? -1 : v;
    }
    mul *= 128;
  }
  return -1;
}

/** Skips a field of wire type `wt` at `pos`; returns the next position or -1 when broken. */
function skipField(b: Uint8Array, wt: number, pos: number, end: number): number {
  switch (wt) {
    case 0: {
      while (pos < end) if (b[pos++]! < 128) return pos;
      return -1;
    }
    case 1:
      return pos + 8 <= end ? pos + 8 : -1;
    case 2: {
      const l = readVarint32(b, pos, end);
      if (l < 0 || varintEnd + l > end) return -1;
      return varintEnd + l;
    }
    case 5:
      return pos + 4 <= end ? pos + 4 : -1;
    default:
      return -1;
  }
}

/** Record ranges found by the framing pass (start, end pairs), reused between calls. */
let ranges = new Int32Array(4096);

/**
 * Calls `each(start, end)` for every FlowRecord of a protobuf batch value, in order, after checking
 * the framing of the whole value (so nothing is handed out of a batch that turns out broken).
 * Unknown fields of FlowRecordBatch (a newer writer's additions) are skipped. Returns the record
 * count, or a CodecError when the framing is broken or the count differs from `expected`.
 */
export function frameProtobufBatch(value: Uint8Array, expected: number | undefined, each?: (start: number, end: number) => void): number | CodecError {
  const end = value.length;
  let pos = 0;
  let n = 0;
  while (pos < end) {
    const tag = readVarint32(value, pos, end);
    if (tag < 0) return corrupt('protobuf', 'bad tag', { byte: pos });
    const next = varintEnd;
    if (tag === 0x0a) {
      const len = readVarint32(value, next, end);
      if (len < 0) return corrupt('protobuf', 'bad record length', { byte: next });
      const start = varintEnd;
      if (start + len > end) return corrupt('protobuf', 'record runs past the end of the batch', { record: n, byte: pos, length: len, bytes: end });
      if (2 * n + 2 > ranges.length) {
        const grown = new Int32Array(ranges.length * 2);
        grown.set(ranges);
        ranges = grown;
      }
      ranges[2 * n] = start;
      ranges[2 * n + 1] = start + len;
      pos = start + len;
      n++;
      continue;
    }
    if (tag >>> 3 === 0) return corrupt('protobuf', 'bad tag', { byte: pos, tag });
    const skipped = skipField(value, tag & 7, next, end);
    if (skipped < 0) return corrupt('protobuf', 'bad field', { byte: pos, tag });
    pos = skipped;
  }
  if (expected !== undefined && expected !== n) return corrupt('protobuf', 'record count differs from the header', { header: expected, records: n });
  if (each) {
    // copied out first (one small array per batch): `each` may frame another batch, reusing `ranges`
    const own = ranges.slice(0, 2 * n);
    for (let i = 0; i < n; i++) each(own[2 * i]!, own[2 * i + 1]!);
  }
  return n;
}

/** The lines of a JSON-lines batch ([start, end) byte ranges, empty lines skipped), or a CodecError. */
export function frameJsonBatch(value: Uint8Array, expected: number | undefined): [number, number][] | CodecError {
  const out: [number, number][] = [];
  let start = 0;
  for (let i = 0; i <= value.length; i++) {
    if (i === value.length || value[i] === 0x0a) {
      let e = i;
      if (e > start && value[e - 1] === 0x0d) e--;
      if (e > start) out.push([start, e]);
      start = i + 1;
    }
  }
  if (expected !== undefined && expected !== out.length) return corrupt('json', 'record count differs from the header', { header: expected, records: out.length });
  return out;
}

export interface BatchRecordResult {
  records: FlowRecord[];
  /** Records of a well-framed batch that failed decoding or validation (skipped), with their errors. */
  errors: { index: number; error: CodecError }[];
}

/**
 * Every FlowRecord of a batch value (full objects: tail, tests, tools; the pipeline decodes to
 * views instead, codec-flow-view.ts). A broken batch → CodecError thrown; a bad record inside a
 * well-framed one → listed in `errors`, the others decoded.
 */
export function decodeFlowBatch(value: Uint8Array, format: RecordFormat, expected?: number): BatchRecordResult {
  const out: BatchRecordResult = { records: [], errors: [] };
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (format === 'protobuf') {
    let index = 0;
    const n = frameProtobufBatch(bytes, expected, (s, e) => {
      try {
        out.records.push(decodeRecord('flow-record', bytes.subarray(s, e), 'protobuf', { record: index }));
      } catch (err) {
        out.errors.push({ index, error: decodeError('flow-record', 'protobuf', err) });
      }
      index++;
    });
    if (n instanceof CodecError) throw n;
    return out;
  }
  if (format === 'json') {
    const lines = frameJsonBatch(bytes, expected);
    if (lines instanceof CodecError) throw lines;
    lines.forEach(([s, e], index) => {
      try {
        out.records.push(decodeRecord('flow-record', bytes.subarray(s, e), 'json', { record: index }));
      } catch (err) {
        out.errors.push({ index, error: decodeError('flow-record', 'json', err) });
      }
    });
    return out;
  }
  let values: unknown;
  try {
    values = decodeAvroDatum(avroBatchType(), bytes);
  } catch (err) {
    throw corrupt('avro', err instanceof Error ? err.message : String(err));
  }
  const arr = values as unknown[];
  if (expected !== undefined && expected !== arr.length) throw corrupt('avro', 'record count differs from the header', { header: expected, records: arr.length });
  arr.forEach((v, index) => {
    try {
      out.records.push(recordFromWire('flow-record', v, 'avro', { record: index }));
    } catch (err) {
      out.errors.push({ index, error: decodeError('flow-record', 'avro', err) });
    }
  });
  return out;
}

/**
 * Every FlowRecord of a flows-topic message, whatever it holds (one record or a batch), by its
 * headers. Throws a CodecError for anything wrong (unknown headers, a broken batch, a bad record).
 */
export function decodeFlowMessage(headers: HeaderValues, value: Uint8Array): FlowRecord[] {
  const d = describeFlowMessage(headers);
  if (d.kind !== 'flow-record') throw new CodecError('codec-decode', 'not a flow record message', { schema: String(headers[SCHEMA_HEADER] ?? '(none)') });
  if (!d.batch) return [decodeRecord('flow-record', value, d.format)];
  const r = decodeFlowBatch(value, d.format, d.count);
  if (r.errors.length) throw r.errors[0]!.error;
  return r.records;
}
