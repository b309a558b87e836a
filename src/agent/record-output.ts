/**
 * Where records go when they are written to a file or stdout (replay, capture): JSON lines, or
 * length-delimited protobuf / an Avro container file through the pipeline's codecs. Buffered;
 * respects backpressure; close() waits until everything is written.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { ConfigError, kv } from '../errors.js';

export type OutputFormat = 'json' | 'protobuf' | 'avro';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['json', 'protobuf', 'avro'];

export interface RecordOutput<T> {
  write(record: T): void;
  /** true when the output holds more than it should: call drained() before producing more. */
  readonly behind?: boolean;
  /** Resolves when buffered records may be written again (backpressure). */
  drained(): Promise<void>;
  close(): Promise<void>;
}

export interface OutputEncoder<T> {
  /** Encodes one record into bytes framed for a stream (JSON line, delimited protobuf, …). */
  frame(record: T): Buffer | string;
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

export class StreamRecordOutput<T> implements RecordOutput<T> {
  private chunks: (Buffer | string)[] = [];
  private pending = 0;
  private error: Error | undefined;
  private readonly ownsStream: boolean;

  constructor(
    private readonly stream: Writable,
    private readonly encoder: OutputEncoder<T>,
    private readonly description: string,
    private readonly flushBytes = 1 << 20,
  ) {
    this.ownsStream = stream !== process.stdout;
    stream.on('error', (e) => (this.error = e));
    const h = encoder.header?.();
    if (h) this.chunks.push(h);
  }

  write(record: T): void {
    if (this.error) throw new ConfigError(`output: cannot write${kv({ output: this.description, cause: this.error.message })}`);
    const b = this.encoder.frame(record);
    this.chunks.push(b);
    this.pending += b.length;
    if (this.pending >= this.flushBytes) this.flush();
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
    if (t) this.chunks.push(t);
    this.flush();
    if (this.ownsStream) {
      this.stream.end();
      await once(this.stream, 'finish');
    } else if (this.stream.writableNeedDrain) {
      await once(this.stream, 'drain');
    }
    if (this.error) throw new ConfigError(`output: cannot write${kv({ output: this.description, cause: this.error.message })}`);
  }

  private flush(): void {
    if (!this.chunks.length) return;
    const parts = this.chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c));
    this.chunks = [];
    this.pending = 0;
    this.stream.write(Buffer.concat(parts));
  }
}

export function jsonLinesEncoder<T>(toJson: (r: T) => unknown): OutputEncoder<T> {
  return { frame: (r) => `${JSON.stringify(toJson(r))}\n` };
}
