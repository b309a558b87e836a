/**
 * A protobuf writer straight into one growable Buffer (the PbWriter subset writePb uses), for the
 * hot encoding paths: no operation list as protobufjs' Writer builds, no allocation per field.
 * Bytes are the same as protobufjs writes (minimal varints; sub-message lengths as varint32;
 * doubles little-endian; negative int32/int64 as ten-byte two's complement varints), checked by
 * test/unit/pipeline/codec-batch.test.ts against encodeRecord.
 *
 * fork() / begin() reserve one byte for the sub-message length; ldelim() / end(mark) fill it in
 * and, when the message is 128 bytes or longer, move its bytes up to make room for the longer
 * varint (rare: the sub-messages of a FlowRecord are short). beginWide() / endWide(mark) reserve
 * two bytes instead, for parts usually 128 to 16383 bytes long (whole FlowRecords). Replay output
 * (ProtoSink in src/capture/record-protobuf.ts) writes through the same class.
 */
import type { PbWriter } from './codec-values.js';

const TWO_32 = 4294967296;

export class PbBufferWriter implements PbWriter {
  buf: Buffer;
  pos = 0;
  private readonly forks: number[] = [];

  constructor(initialBytes = 1024) {
    this.buf = Buffer.allocUnsafe(Math.max(16, initialBytes));
  }

  /** Empties the writer (keeps its buffer). */
  reset(): void {
    this.pos = 0;
    this.forks.length = 0;
  }

  /** The bytes written so far (a view, valid until the next write or reset). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = Buffer.allocUnsafe(size);
    this.buf.copy(b, 0, 0, this.pos);
    this.buf = b;
  }

  uint32(v: number): this {
    this.ensure(5);
    this.pos = putVarint32(this.buf, this.pos, v >>> 0);
    return this;
  }

  int32(v: number): this {
    if (v < 0) return this.negative64(v);
    return this.uint32(v);
  }

  uint64(v: number): this {
    if (v < TWO_32) return this.uint32(v);
    this.ensure(10);
    this.pos = putVarint64(this.buf, this.pos, v);
    return this;
  }

  int64(v: number): this {
    if (v < 0) return this.negative64(v);
    return this.uint64(v);
  }

  bool(v: boolean): this {
    this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 0;
    return this;
  }

  double(v: number): this {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
    return this;
  }

  string(v: string): this {
    const n = v.length;
    this.ensure(5 + n * 3);
    // ASCII (IPs, MACs, ids): length known, bytes are the char codes
    let ascii = n < 128;
    if (ascii) {
      for (let i = 0; i < n; i++) {
        if (v.charCodeAt(i) > 127) {
          ascii = false;
          break;
        }
      }
    }
    if (ascii) {
      const b = this.buf;
      let p = this.pos;
      b[p++] = n;
      for (let i = 0; i < n; i++) b[p++] = v.charCodeAt(i);
      this.pos = p;
      return this;
    }
    const len = Buffer.byteLength(v, 'utf8');
    this.uint32(len);
    this.buf.write(v, this.pos, len, 'utf8');
    this.pos += len;
    return this;
  }

  /** Raw bytes (already encoded). */
  bytes(src: Uint8Array): this {
    this.ensure(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
    return this;
  }

  /** Starts a length-delimited part: reserves one length byte; returns its mark for end(). */
  begin(): number {
    this.ensure(1);
    return this.pos++;
  }

  /** Ends the part begun at `mark`: writes its length there (moving the body up when it needs more bytes). */
  end(mark: number): void {
    const len = this.pos - mark - 1;
    if (len < 128) {
      this.buf[mark] = len;
      return;
    }
    this.ensure(varint32Size(len) - 1);
    this.pos = putLength(this.buf, mark, 1, this.pos);
  }

  /**
   * Starts a length-delimited part expected to be 128 to 16383 bytes long (a whole FlowRecord):
   * reserves two length bytes; returns its mark for endWide().
   */
  beginWide(): number {
    this.ensure(2);
    const mark = this.pos;
    this.pos += 2;
    return mark;
  }

  /** Ends the part begun with beginWide() at `mark`: its length there, the body moved when that takes other than two bytes. */
  endWide(mark: number): void {
    const size = varint32Size(this.pos - mark - 2);
    if (size > 2) this.ensure(size - 2);
    this.pos = putLength(this.buf, mark, 2, this.pos);
  }

  fork(): this {
    this.forks.push(this.begin());
    return this;
  }

  ldelim(): this {
    const start = this.forks.pop();
    if (start === undefined) throw new Error('PbBufferWriter: ldelim without fork');
    this.end(start);
    return this;
  }

  private negative64(v: number): this {
    this.ensure(10);
    this.pos = putNegative64(this.buf, this.pos, v);
    return this;
  }
}

// The varint stores, shared with the in-place FlowRecord writer (codec-flow-pb.ts): each writes at
// `p` in `b` (the room is the caller's to ensure) and returns the position after what it wrote.

/** A uint32 as a varint (at most 5 bytes). */
export function putVarint32(b: Buffer, p: number, v: number): number {
  while (v > 127) {
    b[p++] = (v & 127) | 128;
    v >>>= 7;
  }
  b[p++] = v;
  return p;
}

/** A safe integer ≥ 0 as a varint (at most 8 bytes below 2^53). */
export function putVarint64(b: Buffer, p: number, v: number): number {
  if (v < TWO_32) return putVarint32(b, p, v);
  let hi = Math.floor(v / TWO_32);
  let lo = (v - hi * TWO_32) >>> 0;
  while (hi) {
    b[p++] = (lo & 127) | 128;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  return putVarint32(b, p, lo);
}

/** A negative int32/int64 as protobufjs writes it: two's complement over 64 bits, ten bytes. */
export function putNegative64(b: Buffer, p: number, v: number): number {
  let x = BigInt.asUintN(64, BigInt(v));
  while (x > 127n) {
    b[p++] = Number(x & 127n) | 128;
    x >>= 7n;
  }
  b[p++] = Number(x);
  return p;
}

/**
 * Closes a length-delimited part: `reserved` length bytes at `mark`, its body from there to `end`.
 * Writes the length there, moving the body when the length takes another number of bytes (room up
 * to 5 length bytes assumed); returns the part's new end.
 */
export function putLength(b: Buffer, mark: number, reserved: number, end: number): number {
  const len = end - mark - reserved;
  const size = varint32Size(len);
  if (size !== reserved) {
    b.copyWithin(mark + size, mark + reserved, end);
    end += size - reserved;
  }
  putVarint32(b, mark, len);
  return end;
}

export function varint32Size(v: number): number {
  v >>>= 0;
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}
