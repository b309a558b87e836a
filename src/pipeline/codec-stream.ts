/**
 * Record streams in files (replay output, test fixtures), one framing per format:
 *
 *   json      JSON lines: one canonical proto3 JSON object per line, '\n' after each.
 *   protobuf  length-delimited messages: varint32 byte length, then the message (protobufjs
 *             encodeDelimited / decodeDelimited framing, as Java's writeDelimitedTo).
 *   avro      an Avro object container file (avsc BlockEncoder; header with the writer schema,
 *             plus metadata mirrorflow.schema and mirrorflow.schema-version).
 *
 * Readers take untrusted input: a damaged stream ends the iteration with a CodecError
 * ('codec-decode') naming the position (line, message index / byte offset, Avro block); every
 * record before it was handed out.
 */
import { createReadStream } from 'node:fs';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import avro from 'avsc';
import { AvroContainerReader, AvroMalformed } from './codec-avro.js';
import { CodecError } from './codec-error.js';
import { avroValue, decodeError, decodeRecord, encodeRecordDelimited, jsonText, messageName, recordFromWire } from './codec.js';
import { RECORD_SCHEMAS, avroType, type RecordFormat, type RecordKind, type RecordOfKind } from './codec-schemas.js';

export interface RecordWriterOptions {
  /** End the target stream on close() (default true; false for stdout or a shared stream). */
  end?: boolean;
  /** Avro block compression (default 'null'). */
  avroCodec?: 'null' | 'deflate';
  /** Avro uncompressed block size in bytes (default 64 KiB). */
  avroBlockBytes?: number;
}

export interface RecordWriter<T> {
  /** Encodes and writes one record; resolves at once unless the stream asks to wait (backpressure). */
  write(record: T): Promise<void>;
  /** Flushes (Avro: the last block), ends the stream unless `end: false`, and waits until it finished. */
  close(): Promise<void>;
  /** Records written so far. */
  readonly count: number;
}

/** A writer of `kind` records in `format` framing onto `stream`. */
export function createRecordWriter<K extends RecordKind>(
  stream: Writable,
  kind: K,
  format: RecordFormat,
  opts: RecordWriterOptions = {},
): RecordWriter<RecordOfKind[K]> {
  let failure: unknown;
  const onError = (err: unknown): void => {
    failure ??= err;
  };
  stream.on('error', onError);

  let target: Writable = stream;
  let encoder: avro.streams.BlockEncoder | undefined;
  if (format === 'avro') {
    const s = RECORD_SCHEMAS[kind];
    encoder = new avro.streams.BlockEncoder(avroType(kind), {
      codec: opts.avroCodec ?? 'null',
      blockSize: opts.avroBlockBytes ?? 65536,
      writeHeader: true,
      metadata: {
        'mirrorflow.schema': Buffer.from(s.schemaName),
        'mirrorflow.schema-version': Buffer.from(String(s.schemaVersion)),
      },
    } as ConstructorParameters<typeof avro.streams.BlockEncoder>[1]);
    encoder.on('error', onError);
    encoder.pipe(stream, { end: false });
    target = encoder;
  } else if (format !== 'json' && format !== 'protobuf') {
    throw new CodecError('codec-encode', 'unknown record format', { format: String(format) });
  }

  let count = 0;
  let closed = false;
  const check = (): void => {
    if (failure !== undefined) {
      throw new CodecError('codec-encode', `cannot write ${messageName(kind)} stream`, { format, problem: failure instanceof Error ? failure.message : String(failure) }, failure);
    }
  };

  return {
    get count() {
      return count;
    },
    async write(record) {
      if (closed) throw new CodecError('codec-encode', `${messageName(kind)} writer already closed`, { format });
      check();
      let ok: boolean;
      if (format === 'json') ok = target.write(jsonText(kind, record) + '\n');
      else if (format === 'protobuf') ok = target.write(encodeRecordDelimited(kind, record));
      else ok = target.write(avroValue(kind, record));
      count++;
      if (!ok) {
        try {
          await once(target, 'drain');
        } catch (err) {
          onError(err);
        }
        check();
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        if (encoder) {
          encoder.end();
          await finished(encoder);
        }
        check();
        if (opts.end !== false) {
          stream.end();
          await finished(stream);
        }
      } catch (err) {
        onError(err);
      } finally {
        stream.off('error', onError);
      }
      check();
    },
  };
}

export interface RecordReaderOptions {
  /** Largest message (JSON line, protobuf message, Avro block) accepted; default 16 MiB. */
  maxMessageBytes?: number;
}

/** Reads the records of a file written by createRecordWriter (see readRecordStream). */
export async function* readRecords<K extends RecordKind>(
  path: string,
  kind: K,
  format: RecordFormat,
  opts: RecordReaderOptions = {},
): AsyncGenerator<RecordOfKind[K], void, undefined> {
  const input = createReadStream(path);
  try {
    yield* readRecordStream(input, kind, format, { ...opts, file: path });
  } finally {
    input.destroy();
  }
}

/** Reads records from a byte stream (a file, stdin, a socket) in `format` framing. */
export async function* readRecordStream<K extends RecordKind>(
  input: Readable | AsyncIterable<Buffer | string>,
  kind: K,
  format: RecordFormat,
  opts: RecordReaderOptions & { file?: string } = {},
): AsyncGenerator<RecordOfKind[K], void, undefined> {
  const maxBytes = opts.maxMessageBytes ?? 16 * 1024 * 1024;
  const file = opts.file === undefined ? {} : { file: opts.file };
  const chunks = input as AsyncIterable<Buffer | string>;
  if (format === 'json') yield* readJsonLines(chunks, kind, maxBytes, file);
  else if (format === 'protobuf') yield* readDelimited(chunks, kind, maxBytes, file);
  else if (format === 'avro') yield* readAvroContainer(chunks, kind, maxBytes, file);
  else throw new CodecError('codec-decode', 'unknown record format', { format: String(format) });
}

const toBuffer = (c: Buffer | string): Buffer => (typeof c === 'string' ? Buffer.from(c, 'utf8') : c);

async function* readJsonLines<K extends RecordKind>(chunks: AsyncIterable<Buffer | string>, kind: K, maxBytes: number, file: object) {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let line = 0;
  const decodeLine = (text: string): RecordOfKind[K] => {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw decodeError(kind, 'json', err, { ...file, line });
    }
    return recordFromWire(kind, json, 'json', { ...file, line });
  };
  for await (const chunk of chunks) {
    pending += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let start = 0;
    for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n', start)) {
      const text = pending.slice(start, nl);
      start = nl + 1;
      line++;
      if (text.trim() !== '') yield decodeLine(text);
    }
    pending = pending.slice(start);
    if (pending.length > maxBytes) throw decodeError(kind, 'json', new Error(`line longer than ${maxBytes} bytes`), { ...file, line: line + 1 });
  }
  pending += decoder.end();
  if (pending.trim() !== '') {
    line++;
    yield decodeLine(pending);
  }
}

async function* readDelimited<K extends RecordKind>(chunks: AsyncIterable<Buffer | string>, kind: K, maxBytes: number, file: object) {
  let buf: Buffer = Buffer.alloc(0);
  let base = 0; // absolute offset of buf[0]
  let index = 0;
  for await (const chunk of chunks) {
    buf = buf.length === 0 ? toBuffer(chunk) : Buffer.concat([buf, toBuffer(chunk)]);
    let pos = 0;
    for (;;) {
      // varint32 length prefix
      let len = 0;
      let p = pos;
      let complete = false;
      for (let shift = 0; shift < 35 && p < buf.length; shift += 7) {
        const b = buf[p++]!;
        len += (b & 0x7f) * 2 ** shift;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
        if (shift === 28) throw decodeError(kind, 'protobuf', new Error('length prefix longer than 5 bytes'), { ...file, message: index, offset: base + pos });
      }
      if (!complete) break;
      if (len > maxBytes) throw decodeError(kind, 'protobuf', new Error(`message length ${len} exceeds ${maxBytes}`), { ...file, message: index, offset: base + pos });
      if (p + len > buf.length) break;
      yield decodeRecord(kind, buf.subarray(p, p + len), 'protobuf', { ...file, message: index, offset: base + pos });
      index++;
      pos = p + len;
    }
    buf = buf.subarray(pos);
    base += pos;
  }
  if (buf.length > 0) {
    throw decodeError(kind, 'protobuf', new Error(`truncated message at end of input (${buf.length} bytes left)`), { ...file, message: index, offset: base });
  }
}

async function* readAvroContainer<K extends RecordKind>(chunks: AsyncIterable<Buffer | string>, kind: K, maxBytes: number, file: object) {
  const schemaName = RECORD_SCHEMAS[kind].schemaName;
  const reader = new AvroContainerReader({
    readerType: avroType(kind),
    maxBlockBytes: Math.max(maxBytes, 4 * 1024 * 1024),
    checkHeader: (h) => {
      if (h.writerType.name !== schemaName) throw new AvroMalformed(`file holds ${String(h.writerType.name)} records, not ${schemaName}`);
    },
  });
  let index = 0;
  const fail = (err: unknown): CodecError => decodeError(kind, 'avro', err, { ...file, record: index });
  for await (const chunk of chunks) {
    const values: unknown[] = [];
    let failure: unknown;
    try {
      reader.push(toBuffer(chunk), values);
    } catch (err) {
      failure = err;
    }
    for (const v of values) {
      yield recordFromWire(kind, v, 'avro', { ...file, record: index });
      index++;
    }
    if (failure !== undefined) throw fail(failure);
  }
  try {
    reader.end();
  } catch (err) {
    throw fail(err);
  }
}
