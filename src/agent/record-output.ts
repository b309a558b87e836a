/**
 * Where records go when they are written to a file or stdout (replay, capture): JSON lines, or
 * length-delimited protobuf / an Avro container file through the pipeline's codecs. Buffered;
 * respects backpressure; close() waits until everything is written.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { ConfigError, kv } from '../errors.js';
import { ProtoSink } from '../capture/record-protobuf.js';
import { jsonLineWriterOf } from '../capture/record-json.js';

export type OutputFormat = 'json' | 'protobuf' | 'avro';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['json', 'protobuf', 'avro'];

export interface RecordOutput<T> {
  write(record: T): void;
  /**
   * true when write() is done with the record once it returns (encoded it at once): the caller may
   * then reuse the record object for the next one.
   */
  readonly copiesRecords?: boolean;
  /** true when the output holds more than it should: call drained() before producing more. */
  readonly behind?: boolean;
  /** Resolves when buffered records may be written again (backpressure). */
  drained(): Promise<void>;
  close(): Promise<void>;
}

export interface OutputEncoder<T> {
  /** Encodes one record into bytes framed for a stream (JSON line, delimited protobuf, …). */
  frame(record: T): Buffer | string;
  /**
   * Optional, preferred when present: appends the framed record to the output's byte buffer
   * (no Buffer per record). Must leave `out` as it was when it throws.
   */
  frameInto?(record: T, out: ProtoSink): void;
  /** Bytes to write before the first record (Avro header) and after the last. */
  header?(): Buffer | undefined;
  trailer?(): Buffer | undefined;
}

/** Opens `-` (stdout) or a file path for writing. */
export function openStream(path: string): Writable {
  if (path === '-') return process.stdout;
  const s: WriteStream = createWriteStream(path);
  return s;
}

/**
 * Records framed into one byte buffer, handed to the stream in chunks of about `flushBytes`
 * (one write per chunk, no copy per record).
 */
export class StreamRecordOutput<T> implements RecordOutput<T> {
  /** Records are framed into the buffer by write() itself. */
  readonly copiesRecords = true;
  private out: ProtoSink;
  private error: Error | undefined;
  private readonly ownsStream: boolean;

  constructor(
    private readonly stream: Writable,
    private readonly encoder: OutputEncoder<T>,
    private readonly description: string,
    private readonly flushBytes = 1 << 20,
  ) {
    this.ownsStream = stream !== process.stdout;
    this.out = new ProtoSink(flushBytes + (flushBytes >>> 4));
    stream.on('error', (e) => (this.error = e));
    const h = encoder.header?.();
    if (h) this.append(h);
  }

  write(record: T): void {
    if (this.error) throw new ConfigError(`output: cannot write${kv({ output: this.description, cause: this.error.message })}`);
    if (this.encoder.frameInto) this.encoder.frameInto(record, this.out);
    else this.append(this.encoder.frame(record));
    if (this.out.length >= this.flushBytes) this.flush();
  }

  get behind(): boolean {
    return this.stream.writableNeedDrain || this.stream.writableLength > 8 * this.flushBytes;
  }

  async drained(): Promise<void> {
    this.flush();
    if (this.stream.writableNeedDrain) await once(this.stream, 'drain');
  }

  async close(): Promise<void> {
    const t = this.encoder.trailer?.();
    if (t) this.append(t);
    this.flush();
    if (this.ownsStream) {
      this.stream.end();
      await once(this.stream, 'finish');
    } else if (this.stream.writableNeedDrain) {
      await once(this.stream, 'drain');
    }
    if (this.error) throw new ConfigError(`output: cannot write${kv({ output: this.description, cause: this.error.message })}`);
  }

  private append(b: Buffer | string): void {
    const out = this.out;
    if (typeof b === 'string') {
      out.ensure(b.length * 3);
      out.pos += out.buf.write(b, out.pos, 'utf8');
    } else {
      out.ensure(b.length);
      b.copy(out.buf, out.pos);
      out.pos += b.length;
    }
  }

  private flush(): void {
    if (this.out.length === 0) return;
    this.stream.write(this.out.take());
  }
}

export function jsonLinesEncoder<T>(toJson: (r: T) => unknown): OutputEncoder<T> {
  return { frame: (r) => `${JSON.stringify(toJson(r))}\n` };
}

/**
 * JSON lines from a function that writes a record's JSON text itself (record-json.ts). For the
 * record-json.ts writers, lines are written as bytes straight into the output's buffer (their
 * byte twins: the same characters, no string per line).
 */
export function jsonTextLinesEncoder<T>(toJsonText: (r: T) => string): OutputEncoder<T> {
  const into = jsonLineWriterOf(toJsonText);
  const frame = (r: T) => `${toJsonText(r)}\n`;
  return into ? { frame, frameInto: (r, out) => into(out, r) } : { frame };
}
