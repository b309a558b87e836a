/**
 * A bounded on-disk FIFO of opaque entries: where the Kafka producer keeps records the broker cannot
 * take, so that they survive a restart of the agent and go out in order once the broker is back.
 *
 * Layout of the directory:
 *   <12-digit seq>.seg   append-only segment files; a new one starts when the last reaches
 *                        segmentBytes. Entry framing: u32 BE payload length, u32 BE CRC-32 of the
 *                        payload (zlib.crc32), payload.
 *   cursor               JSON {seq, offset}: the first entry not yet acknowledged, replaced
 *                        atomically (write + rename) at every ack().
 * Fully acknowledged segments are deleted.
 *
 * Bounds: the segments together stay within limitBytes. When an append would exceed it, the OLDEST
 * segment is deleted whole and its unacknowledged entries are counted in `dropped` (never silent).
 * segmentBytes defaults to limitBytes/8, so one drop loses at most an eighth of the spool.
 *
 * Damage: open() reads every segment and checks every entry; at the first entry that is cut short
 * (a crash in the middle of a write) or fails its checksum, the segment is truncated there and the
 * loss is counted (corruptTruncations, corruptBytes). A damaged cursor file restarts from the oldest
 * entry (at-least-once: downstream drops duplicates by record id).
 *
 * Weights: with `weigh`, every entry also has a weight (e.g. the records a batch entry holds), and
 * the spool keeps pendingWeight / droppedWeight beside its entry counts (weigh is called when an
 * entry is appended, scanned at open, and peeked).
 *
 * Delivery is at least once across a crash: an entry sent but whose ack() did not reach the cursor
 * file is sent again after the restart. Writes go to the page cache; sync() (and close()) fsync,
 * so a process restart loses nothing and a machine crash at most the unsynced tail.
 *
 * Synchronous file I/O on purpose: the spool is the degraded path, entries come in batches, and a
 * sync API keeps the producer's bookkeeping free of interleavings.
 */
import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { MirrorflowError, kv } from '../errors.js';

const HEADER_BYTES = 8;
const SEGMENT_RE = /^(\d{12})\.seg$/;

export class SpoolError extends MirrorflowError {}

export interface SpoolOptions {
  /** Most bytes on disk (segments with framing). */
  limitBytes: number;
  /** Segment size at which a new segment starts (default limitBytes/8, at least 4 KiB). */
  segmentBytes?: number;
  /** The weight of an entry (default 1). */
  weigh?: (payload: Buffer) => number;
}

export interface SpoolStats {
  /** Entries appended and not acknowledged. */
  pending: number;
  /** Bytes of the segment files. */
  diskBytes: number;
  appended: number;
  acked: number;
  /** Entries lost to the limit (oldest first) or too large for it. */
  dropped: number;
  /** Weights of the pending and of the dropped entries (see `weigh`; = pending, dropped without it). */
  pendingWeight: number;
  droppedWeight: number;
  /** Segments truncated at a damaged or cut-short entry, and the bytes cut off. */
  corruptTruncations: number;
  corruptBytes: number;
  /** The cursor file was unreadable: replay started from the oldest entry. */
  cursorResets: number;
}

interface Segment {
  seq: number;
  path: string;
  size: number;
  entries: number;
  /** Sum of the entries' weights. */
  weight: number;
}

export class Spool {
  private readonly segments: Segment[] = [];
  /** The first unacknowledged entry: in segments[0], at byte `offset`, `index` entries in. */
  private cursor = { offset: 0, index: 0, weight: 0 };
  private writeFd: number | undefined;
  private readFd: { seq: number; fd: number } | undefined;
  /** Framed sizes of the entries returned by the last peek(). */
  private peeked: number[] = [];
  /** Weights of the entries returned by the last peek(). */
  private peekedWeights: number[] = [];
  private closed = false;
  private readonly stats: Omit<SpoolStats, 'pending' | 'diskBytes' | 'pendingWeight'> = {
    appended: 0,
    acked: 0,
    dropped: 0,
    droppedWeight: 0,
    corruptTruncations: 0,
    corruptBytes: 0,
    cursorResets: 0,
  };
  readonly segmentBytes: number;
  private readonly weigh: (payload: Buffer) => number;

  private constructor(
    readonly dir: string,
    readonly limitBytes: number,
    segmentBytes: number | undefined,
    weigh: ((payload: Buffer) => number) | undefined,
  ) {
    this.weigh = weigh ?? (() => 1);
    this.segmentBytes = Math.max(4096, Math.min(segmentBytes ?? Math.floor(limitBytes / 8), limitBytes));
  }

  /** Opens (creating) the spool in `dir`: checks every entry, truncates damage, finds the cursor. */
  static open(dir: string, opts: SpoolOptions): Spool {
    if (!(opts.limitBytes > 0)) throw new SpoolError('spool-config', `spool: invalid limit${kv({ limitBytes: opts.limitBytes })}`);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new SpoolError('spool-io', `spool: cannot create directory${kv({ dir, reason: (e as NodeJS.ErrnoException).code ?? (e as Error).message })}`, { cause: e });
    }
    const s = new Spool(dir, opts.limitBytes, opts.segmentBytes, opts.weigh);
    s.load();
    return s;
  }

  get pending(): number {
    let n = -this.cursor.index;
    for (const seg of this.segments) n += seg.entries;
    return n;
  }

  /** Sum of the weights of the entries not acknowledged. */
  get pendingWeight(): number {
    let n = -this.cursor.weight;
    for (const seg of this.segments) n += seg.weight;
    return n;
  }

  get diskBytes(): number {
    let n = 0;
    for (const seg of this.segments) n += seg.size;
    return n;
  }

  snapshot(): SpoolStats {
    return { ...this.stats, pending: this.pending, pendingWeight: this.pendingWeight, diskBytes: this.diskBytes };
  }

  /** Appends entries in order (dropping the oldest segments when the limit requires it). */
  append(payloads: readonly Uint8Array[]): void {
    this.checkOpen();
    if (!payloads.length) return;
    let chunks: Buffer[] = [];
    let chunkBytes = 0;
    const flushChunks = () => {
      if (!chunkBytes) return;
      const last = this.segments[this.segments.length - 1]!;
      const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, chunkBytes);
      this.writeAt(this.writeFd!, buf, last.size - chunkBytes, last.path);
      chunks = [];
      chunkBytes = 0;
    };
    for (const p of payloads) {
      const framed = HEADER_BYTES + p.byteLength;
      const pb = Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
      const weight = this.weigh(pb);
      if (framed > this.limitBytes) {
        this.stats.dropped++;
        this.stats.droppedWeight += weight;
        continue;
      }
      let last = this.segments[this.segments.length - 1]!;
      if (last.size > 0 && last.size + framed > this.segmentBytes) {
        flushChunks();
        this.roll();
        last = this.segments[this.segments.length - 1]!;
      }
      while (this.diskBytes + framed > this.limitBytes) {
        if (this.segments.length === 1) {
          flushChunks();
          this.roll();
        }
        this.dropOldest();
      }
      last = this.segments[this.segments.length - 1]!;
      const h = Buffer.allocUnsafe(HEADER_BYTES);
      h.writeUInt32BE(p.byteLength, 0);
      h.writeUInt32BE(crc32(p), 4);
      chunks.push(h, pb);
      chunkBytes += framed;
      last.size += framed;
      last.entries++;
      last.weight += weight;
      this.stats.appended++;
    }
    flushChunks();
  }

  /**
   * The oldest unacknowledged entries, in order, without consuming them: at most maxEntries, and
   * at most maxBytes of payload unless the first entry alone is larger (it comes alone then).
   */
  peek(maxEntries: number, maxBytes: number): Buffer[] {
    this.checkOpen();
    this.peeked = [];
    this.peekedWeights = [];
    this.skipConsumedSegments();
    const seg = this.segments[0]!;
    if (this.cursor.offset >= seg.size) return [];
    const fd = this.readFdOf(seg);
    const want = Math.min(seg.size - this.cursor.offset, maxBytes + HEADER_BYTES * Math.min(maxEntries, 4096));
    let buf = Buffer.allocUnsafe(Math.max(want, HEADER_BYTES));
    let got = readSync(fd, buf, 0, buf.length, this.cursor.offset);
    const out: Buffer[] = [];
    let pos = 0;
    let payloadBytes = 0;
    while (out.length < maxEntries && pos + HEADER_BYTES <= got) {
      const len = buf.readUInt32BE(pos);
      const crc = buf.readUInt32BE(pos + 4);
      if (out.length > 0 && payloadBytes + len > maxBytes) break;
      if (this.cursor.offset + pos + HEADER_BYTES + len > seg.size) {
        this.truncateDamaged(seg, this.cursor.offset + pos);
        break;
      }
      if (pos + HEADER_BYTES + len > got) {
        if (out.length > 0) break;
        // the first entry is larger than what was read: read it alone
        buf = Buffer.allocUnsafe(HEADER_BYTES + len);
        got = readSync(fd, buf, 0, buf.length, this.cursor.offset);
        if (got < buf.length) {
          this.truncateDamaged(seg, this.cursor.offset);
          break;
        }
        pos = 0;
        continue;
      }
      const payload = buf.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + len);
      if (crc32(payload) !== crc) {
        this.truncateDamaged(seg, this.cursor.offset + pos);
        break;
      }
      out.push(payload);
      this.peeked.push(HEADER_BYTES + len);
      this.peekedWeights.push(this.weigh(payload));
      payloadBytes += len;
      pos += HEADER_BYTES + len;
    }
    if (!out.length && this.pending > 0 && this.segments.length > 1) return this.peek(maxEntries, maxBytes);
    return out;
  }

  /**
   * Entries of the last peek() that may still be acknowledged (0 after the limit dropped the
   * segment holding them: they are counted as dropped, and must not be acknowledged twice).
   */
  get peekedCount(): number {
    return this.peeked.length;
  }

  /** Acknowledges the first `count` entries of the last peek(); they will not come again. */
  ack(count: number): void {
    this.checkOpen();
    if (count > this.peeked.length) throw new SpoolError('spool-ack', `spool: ack beyond the last peek${kv({ count, peeked: this.peeked.length })}`);
    for (let i = 0; i < count; i++) {
      this.cursor.offset += this.peeked[i]!;
      this.cursor.index++;
      this.cursor.weight += this.peekedWeights[i]!;
    }
    this.peeked = this.peeked.slice(count);
    this.peekedWeights = this.peekedWeights.slice(count);
    this.stats.acked += count;
    this.skipConsumedSegments();
    if (this.pending === 0) this.reset();
    this.saveCursor();
  }

  /** fsync of the segment being written and of the cursor. */
  sync(): void {
    this.checkOpen();
    if (this.writeFd !== undefined) fsyncSync(this.writeFd);
  }

  close(): void {
    if (this.closed) return;
    try {
      if (this.writeFd !== undefined) fsyncSync(this.writeFd);
    } finally {
      this.closed = true;
      if (this.writeFd !== undefined) closeSync(this.writeFd);
      if (this.readFd) closeSync(this.readFd.fd);
      this.writeFd = undefined;
      this.readFd = undefined;
    }
  }

  // ---- internals

  private checkOpen(): void {
    if (this.closed) throw new SpoolError('spool-closed', `spool: closed${kv({ dir: this.dir })}`);
  }

  private segPath(seq: number): string {
    return join(this.dir, `${String(seq).padStart(12, '0')}.seg`);
  }

  private load(): void {
    const seqs = readdirSync(this.dir)
      .map((f) => SEGMENT_RE.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    let saved: { seq: number; offset: number } | undefined;
    const cursorPath = join(this.dir, 'cursor');
    if (existsSync(cursorPath)) {
      try {
        const c = JSON.parse(readFileSync(cursorPath, 'utf8')) as { seq?: unknown; offset?: unknown };
        if (!Number.isInteger(c.seq) || !Number.isInteger(c.offset) || (c.offset as number) < 0) throw new Error('bad cursor');
        saved = { seq: c.seq as number, offset: c.offset as number };
      } catch {
        this.stats.cursorResets++;
      }
    }
    for (const seq of seqs) {
      const path = this.segPath(seq);
      // segments entirely before the cursor were acknowledged (their deletion was interrupted)
      if (saved && seq < saved.seq) {
        unlinkSync(path);
        continue;
      }
      const { starts, weights } = this.scan(path);
      const seg: Segment = { seq, path, size: statSync(path).size, entries: starts.length, weight: weights.reduce((a, b) => a + b, 0) };
      if (!this.segments.length && saved && seq === saved.seq) {
        // the cursor: the first entry starting at or after the saved offset
        let index = starts.findIndex((o) => o >= saved!.offset);
        if (index < 0) index = starts.length;
        let weight = 0;
        for (let i = 0; i < index; i++) weight += weights[i]!;
        this.cursor = { offset: index < starts.length ? starts[index]! : seg.size, index, weight };
      }
      this.segments.push(seg);
    }
    if (!this.segments.length) {
      const seq = saved ? saved.seq + 1 : 1;
      this.segments.push({ seq, path: this.segPath(seq), size: 0, entries: 0, weight: 0 });
      writeFileSync(this.segPath(seq), '');
      this.cursor = { offset: 0, index: 0, weight: 0 };
    }
    const last = this.segments[this.segments.length - 1]!;
    this.writeFd = openSync(last.path, 'r+');
    this.skipConsumedSegments();
    this.saveCursor();
  }

  /** Entry start offsets (and weights) of a segment file; truncates it at the first damaged entry. */
  private scan(path: string): { starts: number[]; weights: number[] } {
    const data = readFileSync(path);
    const starts: number[] = [];
    const weights: number[] = [];
    let pos = 0;
    while (pos < data.length) {
      if (pos + HEADER_BYTES > data.length) break;
      const len = data.readUInt32BE(pos);
      if (pos + HEADER_BYTES + len > data.length) break;
      if (crc32(data.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + len)) !== data.readUInt32BE(pos + 4)) break;
      starts.push(pos);
      weights.push(this.weigh(data.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + len)));
      pos += HEADER_BYTES + len;
    }
    if (pos < data.length) {
      const fd = openSync(path, 'r+');
      try {
        ftruncateSync(fd, pos);
      } finally {
        closeSync(fd);
      }
      this.stats.corruptTruncations++;
      this.stats.corruptBytes += data.length - pos;
    }
    return { starts, weights };
  }

  private truncateDamaged(seg: Segment, at: number): void {
    const fd = openSync(seg.path, 'r+');
    try {
      ftruncateSync(fd, at);
    } finally {
      closeSync(fd);
    }
    this.stats.corruptTruncations++;
    this.stats.corruptBytes += seg.size - at;
    seg.size = at;
    // what remains: the acknowledged entries and those peeked before `at`
    seg.entries = this.cursor.index + this.peeked.length;
    seg.weight = this.cursor.weight + this.peekedWeights.reduce((a, b) => a + b, 0);
  }

  private writeAt(fd: number, buf: Buffer, position: number, path: string): void {
    let done = 0;
    try {
      while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, position + done);
    } catch (e) {
      throw new SpoolError('spool-io', `spool: cannot write${kv({ file: path, reason: (e as NodeJS.ErrnoException).code ?? (e as Error).message })}`, { cause: e, retriable: true });
    }
  }

  private roll(): void {
    const last = this.segments[this.segments.length - 1]!;
    const seq = last.seq + 1;
    const path = this.segPath(seq);
    if (this.writeFd !== undefined) closeSync(this.writeFd);
    this.writeFd = openSync(path, 'w+');
    this.segments.push({ seq, path, size: 0, entries: 0, weight: 0 });
  }

  private dropOldest(): void {
    const first = this.segments.shift()!;
    this.stats.dropped += first.entries - this.cursor.index;
    this.stats.droppedWeight += first.weight - this.cursor.weight;
    this.closeReadFd(first.seq);
    unlinkSync(first.path);
    this.cursor = { offset: 0, index: 0, weight: 0 };
    this.peeked = [];
    this.peekedWeights = [];
    this.saveCursor();
  }

  /** Deletes leading segments whose entries are all acknowledged (never the one being written). */
  private skipConsumedSegments(): void {
    while (this.segments.length > 1 && this.cursor.index >= this.segments[0]!.entries) {
      const first = this.segments.shift()!;
      this.closeReadFd(first.seq);
      unlinkSync(first.path);
      this.cursor = { offset: 0, index: 0, weight: 0 };
      this.peeked = [];
      this.peekedWeights = [];
    }
  }

  /** Everything acknowledged: start an empty segment so the disk space comes back. */
  private reset(): void {
    const last = this.segments[this.segments.length - 1]!;
    if (last.size === 0) return;
    this.roll();
    const old = this.segments.shift()!;
    this.closeReadFd(old.seq);
    unlinkSync(old.path);
    this.cursor = { offset: 0, index: 0, weight: 0 };
  }

  private closeReadFd(seq: number): void {
    if (this.readFd && this.readFd.seq === seq) {
      closeSync(this.readFd.fd);
      this.readFd = undefined;
    }
  }

  private readFdOf(seg: Segment): number {
    if (this.readFd && this.readFd.seq === seg.seq) return this.readFd.fd;
    if (this.readFd) closeSync(this.readFd.fd);
    this.readFd = { seq: seg.seq, fd: openSync(seg.path, 'r') };
    return this.readFd.fd;
  }

  private saveCursor(): void {
    const path = join(this.dir, 'cursor');
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, JSON.stringify({ seq: this.segments[0]!.seq, offset: this.cursor.offset }));
    renameSync(tmp, path);
  }
}
