/**
 * The shared machinery of the file sources: read a file in large chunks into one buffer, let a
 * format parser take whole records out of it into a FrameBatch (the batch's `data` IS this buffer:
 * no copy per frame), and move an incomplete tail record to the front before reading on. A record
 * may straddle any number of chunks; the buffer grows to hold the largest record (bounded by the
 * parser's sanity limits).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { allocBatch, type FrameBatch, type FrameSource, type SourceStats } from './source.js';
import { CaptureFileError } from './file-error.js';

export interface FileSourceOptions {
  /** Bytes per read() call (default 4 MiB). Tests use tiny values to make records straddle chunks. */
  chunkBytes?: number;
  /** Most frames per batch (default 8192). */
  batchFrames?: number;
  /** Name for messages (default: the path). */
  name?: string;
}

export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;
export const DEFAULT_BATCH_FRAMES = 8192;
/** Frames in the first batch (then ×4 per batch up to the batch size): see batchLimit. */
const FIRST_BATCH_FRAMES = 8;
/** Largest frame any reader accepts (libpcap's maximum snapshot length). */
export const MAX_FRAME_BYTES = 262144;
/** Head room in front of each read: an incomplete record carried over to the next chunk fits in it. */
const READ_RESERVE = 64 * 1024;

/** What a parse step stopped on. */
export const ParseStop = {
  /** The batch is full. */
  full: 0,
  /** The next record is not complete in the buffer: `need` bytes from `start` are wanted. */
  more: 1,
  /** The file is damaged at `start`: `problem` says why. */
  damaged: 2,
} as const;
export type ParseStop = (typeof ParseStop)[keyof typeof ParseStop];

export abstract class ChunkedFileSource implements FrameSource {
  readonly description: string;
  protected readonly name: string;
  protected buf: Buffer;
  /** Parse position and end of valid data in buf. */
  protected start = 0;
  protected end = 0;
  /** File offset of buf[0]. */
  protected bufFileOffset = 0;
  /** Bytes wanted from `start` before the parser can go on (set by parse on ParseStop.more). */
  protected need = 0;
  /** Why the file is damaged (set by parse on ParseStop.damaged). */
  protected problem = '';
  /** Damage found at a file offset, to report once the good frames were handed out. */
  private pending: CaptureFileError | undefined;
  private eof = false;
  private done = false;
  private closed = false;
  private readPos = 0;
  private frames = 0;
  private readonly chunkBytes: number;
  protected readonly batch: FrameBatch;
  /**
   * Most frames parse() puts in the batch now. The first batch is filled in steps (8 frames, then
   * ×4 up to its capacity): the parser's path after its frame loop runs a few times before the JIT
   * compiles the loop while it runs, instead of being compiled without type feedback and thrown
   * away when first reached (a deoptimisation and a recompile). Batches are the same as without.
   */
  protected batchLimit: number;

  protected constructor(
    private readonly fh: FileHandle,
    name: string,
    /** e.g. 'pcap' or 'pcapng', for messages. */
    private readonly format: string,
    opts: FileSourceOptions,
  ) {
    this.name = name;
    this.description = `file=${name}`;
    this.chunkBytes = Math.max(1, opts.chunkBytes ?? DEFAULT_CHUNK_BYTES);
    this.buf = Buffer.allocUnsafe(READ_RESERVE + this.chunkBytes);
    this.batch = allocBatch(Math.max(1, opts.batchFrames ?? DEFAULT_BATCH_FRAMES), 0);
    this.batch.data = this.buf;
    this.batchLimit = Math.min(FIRST_BATCH_FRAMES, this.batch.offset.length);
  }

  abstract linkType(ifIndex: number): number;

  /**
   * Takes records from buf[start..end) into this.batch (count already 0 or partly filled),
   * advancing `start` past each one, until the batch is full, a record is incomplete or damage is
   * found. Synchronous and allocation-free.
   */
  protected abstract parse(): ParseStop;

  protected damagedError(offset: number, problem: string): CaptureFileError {
    return new CaptureFileError(`damaged ${this.format} file`, this.name, offset, problem);
  }

  /** File offset of buf[start]. */
  protected get offset(): number {
    return this.bufFileOffset + this.start;
  }

  /** Makes `need` bytes from `start` available (or hits end of file). For headers read at open. */
  protected async ensure(need: number): Promise<boolean> {
    while (this.end - this.start < need && !this.eof) await this.readChunk(need);
    return this.end - this.start >= need;
  }

  async next(): Promise<FrameBatch | null> {
    if (this.pending) throw this.pending;
    if (this.done || this.closed) return null;
    const batch = this.batch;
    batch.count = 0;
    for (;;) {
      batch.data = this.buf;
      let stop = this.parse();
      while (stop === ParseStop.full && this.batchLimit < batch.offset.length) {
        this.batchLimit = Math.min(this.batchLimit * 4, batch.offset.length);
        stop = this.parse();
      }
      if (stop === ParseStop.damaged) {
        this.pending = this.damagedError(this.offset, this.problem);
        if (batch.count > 0) return this.handOut(batch);
        throw this.pending;
      }
      if (batch.count > 0) return this.handOut(batch);
      // stop === more with nothing parsed: read on (the buffer holds no frame of a batch now)
      if (this.eof) {
        if (this.end > this.start) {
          const have = this.end - this.start;
          this.pending = this.damagedError(this.offset, `truncated record (${have} of ${this.need} bytes present)`);
          throw this.pending;
        }
        this.done = true;
        return null;
      }
      await this.readChunk(this.need);
    }
  }

  private handOut(batch: FrameBatch): FrameBatch {
    this.frames += batch.count;
    return batch;
  }

  /**
   * Makes more of the file available from `start`: `need` bytes if one chunk brings them. Reads are
   * double-buffered (ping-pong): the next chunk is already being read into the spare buffer, after
   * a reserved head, while the caller parses this one, so I/O and decoding overlap; when it is
   * needed, the unparsed tail of this buffer (an incomplete record, usually a few bytes) is copied
   * in front of it and the buffers swap — no copy of the chunk itself. A tail longer than the
   * reserve, or a record longer than a chunk, takes the general path: compact, grow, append.
   */
  private async readChunk(need: number): Promise<void> {
    if (this.eof) {
      this.compact(need);
      return;
    }
    if (!this.prefetch) this.startPrefetch();
    const n = await this.prefetch!;
    this.prefetch = undefined;
    if (n === 0) {
      this.eof = true;
      this.compact(need);
      return;
    }
    const tail = this.end - this.start;
    const spare = this.spare!;
    if (tail <= READ_RESERVE && need <= READ_RESERVE + n) {
      this.buf.copy(spare, READ_RESERVE - tail, this.start, this.end);
      this.bufFileOffset += this.start - (READ_RESERVE - tail);
      this.spare = this.buf;
      this.buf = spare;
      this.start = READ_RESERVE - tail;
      this.end = READ_RESERVE + n;
    } else {
      this.compact(need);
      if (this.buf.length - this.end < n) {
        const bigger = Buffer.allocUnsafe(this.end + n);
        this.buf.copy(bigger, 0, 0, this.end);
        this.buf = bigger;
      }
      spare.copy(this.buf, this.end, READ_RESERVE, READ_RESERVE + n);
      this.end += n;
    }
    this.readPos += n;
    this.startPrefetch();
  }

  /** Moves the unparsed tail to the front of the buffer, growing it when `need` is more than fits. */
  private compact(need: number): void {
    if (this.start > 0) {
      this.buf.copyWithin(0, this.start, this.end);
      this.bufFileOffset += this.start;
      this.end -= this.start;
      this.start = 0;
    }
    if (need > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(bigger, 0, 0, this.end);
      this.buf = bigger;
    }
  }

  /** The buffer the next chunk is read into (after READ_RESERVE bytes), not the one being parsed. */
  private spare: Buffer | undefined;
  private prefetch: Promise<number> | undefined;

  private startPrefetch(): void {
    if (this.eof || this.prefetch || this.closed) return;
    this.spare ??= Buffer.allocUnsafe(READ_RESERVE + this.chunkBytes);
    this.prefetch = this.fh.read(this.spare, READ_RESERVE, this.chunkBytes, this.readPos).then((r) => r.bytesRead);
    // a failed read is reported by the readChunk that awaits it; never as an unhandled rejection
    this.prefetch.catch(() => undefined);
  }

  stats(): SourceStats {
    return { frames: this.frames };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.prefetch) await this.prefetch.catch(() => 0);
    this.prefetch = undefined;
    await this.fh.close();
  }
}

/** Opens `path` for reading; a missing or unreadable file is a CaptureFileError (code capture-file-open). */
export async function openForReading(path: string, name: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new CaptureFileError('cannot open capture file', name, 0, code === 'ENOENT' ? 'no such file' : code, { code: 'capture-file-open', cause: e });
  }
}
