/**
 * Avro reading for untrusted bytes: a bounds-checking pre-scan of a datum, and an incremental
 * reader of Avro object container files.
 *
 * Why a pre-scan: avsc decodes arrays and maps by trusting the block count it reads (`new
 * Array(n)` then n reads, even past the end of the buffer), so a few garbage bytes claiming 2^30
 * items make it loop for minutes and exhaust memory. The guard walks the same schema over the bytes
 * first, checking every length, count, enum and union index against the bytes actually there, and
 * only then hands the datum to avsc. It costs about one extra pass without allocation.
 *
 * Object container file (Avro 1.11 spec, "Object Container Files"):
 *   header  = magic "Obj\x01", metadata map<bytes> (avro.schema, avro.codec, …), 16-byte sync marker
 *   block*  = long count, long size, size bytes of (compressed) data holding count datums, sync marker
 * Codecs: null and deflate (raw deflate, RFC 1951).
 */
import { inflateRawSync } from 'node:zlib';
import avro from 'avsc';

/** Not enough bytes yet (incremental parsing) or, at the end, a truncated input. */
export class AvroTruncated extends Error {
  constructor() {
    super('truncated');
  }
}
const TRUNCATED = new AvroTruncated();

/** Bytes that cannot be a valid encoding. */
export class AvroMalformed extends Error {}

class Cursor {
  constructor(
    public buf: Buffer,
    public pos: number,
  ) {}

  /** Zigzag varint long; only values within ±2^53 are accepted (what avsc can represent). */
  readLong(): number {
    const buf = this.buf;
    const start = this.pos;
    let result = 0;
    let mul = 1;
    // up to 7 bytes (49 bits) a double holds the value exactly
    for (let i = 0; i < 7; i++) {
      if (this.pos >= buf.length) throw TRUNCATED;
      const b = buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result % 2 === 1 ? -(result + 1) / 2 : result / 2;
      mul *= 128;
    }
    this.pos = start;
    return this.readBigLong();
  }

  private readBigLong(): number {
    let u = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw TRUNCATED;
      const b = this.buf[this.pos++]!;
      u |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) {
        const n = (u >> 1n) ^ -(u & 1n);
        if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < -BigInt(Number.MAX_SAFE_INTEGER)) throw new AvroMalformed('long out of range (beyond 2^53)');
        return Number(n);
      }
    }
    throw new AvroMalformed('varint longer than 10 bytes');
  }

  skip(n: number): void {
    if (this.pos + n > this.buf.length) throw TRUNCATED;
    this.pos += n;
  }

  bytes(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw TRUNCATED;
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}

type Guard = (c: Cursor) => void;

/** Items of an array or map of a type that may encode to zero bytes: cap the count. */
const MAX_ZERO_SIZE_ITEMS = 1 << 20;

interface AvroTypeLike {
  typeName: string;
  fields?: { name: string; type: AvroTypeLike }[];
  itemsType?: AvroTypeLike;
  valuesType?: AvroTypeLike;
  types?: AvroTypeLike[];
  symbols?: string[];
  size?: number;
  underlyingType?: AvroTypeLike;
}

/** Smallest encoded size of a value of the type (0 or 1 is all that matters here). */
function minSize(t: AvroTypeLike, seen = new Set<AvroTypeLike>()): number {
  if (seen.has(t)) return 1; // recursive record: it has at least the bytes seen so far
  seen.add(t);
  switch (t.typeName) {
    case 'null':
      return 0;
    case 'fixed':
      return Math.min(1, t.size ?? 0);
    case 'record':
    case 'error':
      return t.fields!.some((f) => minSize(f.type, seen) > 0) ? 1 : 0;
    default:
      if (t.underlyingType) return minSize(t.underlyingType, seen);
      return 1; // every other type writes at least one byte (a long, a length, an index, 4/8 bytes, 1 byte bool)
  }
}

/**
 * Item count of an array or map block. `complete`: the buffer holds the whole datum, so a count
 * beyond the bytes left is malformed; otherwise (incremental parsing) it means "read more".
 */
function blockCount(c: Cursor, itemMin: number, complete = true): number {
  let n = c.readLong();
  if (n < 0) {
    n = -n;
    if (c.readLong() < 0) throw new AvroMalformed('negative block size');
  }
  const left = c.buf.length - c.pos;
  if (itemMin > 0 ? n > left : n > MAX_ZERO_SIZE_ITEMS) {
    if (!complete && itemMin > 0) throw TRUNCATED;
    throw new AvroMalformed(`block count ${n} exceeds the ${left} bytes left`);
  }
  return n;
}

const guardCache = new WeakMap<object, Guard>();

function compileGuard(t: AvroTypeLike): Guard {
  const cached = guardCache.get(t);
  if (cached) return cached;
  let g: Guard;
  // Recursive schemas: register a trampoline before compiling the children.
  let inner: Guard = () => {
    throw new AvroMalformed('schema recursion');
  };
  guardCache.set(t, (c) => inner(c));
  switch (t.typeName) {
    case 'null':
      g = () => {};
      break;
    case 'boolean':
      g = (c) => {
        if (c.pos >= c.buf.length) throw TRUNCATED;
        const b = c.buf[c.pos++]!;
        if (b > 1) throw new AvroMalformed(`boolean byte ${b}`);
      };
      break;
    case 'int':
      g = (c) => {
        const v = c.readLong();
        if (v < -0x80000000 || v > 0x7fffffff) throw new AvroMalformed('int out of range');
      };
      break;
    case 'long':
      g = (c) => void c.readLong();
      break;
    case 'float':
      g = (c) => c.skip(4);
      break;
    case 'double':
      g = (c) => c.skip(8);
      break;
    case 'string':
    case 'bytes':
      g = (c) => {
        const n = c.readLong();
        if (n < 0) throw new AvroMalformed(`negative ${t.typeName} length`);
        c.skip(n);
      };
      break;
    case 'fixed': {
      const size = t.size!;
      g = (c) => c.skip(size);
      break;
    }
    case 'enum': {
      const count = t.symbols!.length;
      g = (c) => {
        const i = c.readLong();
        if (i < 0 || i >= count) throw new AvroMalformed(`enum index ${i} out of range`);
      };
      break;
    }
    case 'array': {
      const item = compileGuard(t.itemsType!);
      const itemMin = minSize(t.itemsType!);
      g = (c) => {
        for (let n = blockCount(c, itemMin); n !== 0; n = blockCount(c, itemMin)) for (let i = 0; i < n; i++) item(c);
      };
      break;
    }
    case 'map': {
      const value = compileGuard(t.valuesType!);
      const key = compileGuard({ typeName: 'string' });
      g = (c) => {
        for (let n = blockCount(c, 1); n !== 0; n = blockCount(c, 1)) {
          for (let i = 0; i < n; i++) {
            key(c);
            value(c);
          }
        }
      };
      break;
    }
    case 'record':
    case 'error': {
      const fs = t.fields!.map((f) => compileGuard(f.type));
      g = (c) => {
        for (let i = 0; i < fs.length; i++) fs[i]!(c);
      };
      break;
    }
    default:
      if (t.typeName.startsWith('union')) {
        const branches = t.types!.map((b) => compileGuard(b));
        g = (c) => {
          const i = c.readLong();
          if (i < 0 || i >= branches.length) throw new AvroMalformed(`union index ${i} out of range`);
          branches[i]!(c);
        };
      } else if (t.underlyingType) {
        g = compileGuard(t.underlyingType);
      } else {
        throw new AvroMalformed(`unsupported Avro type ${t.typeName}`);
      }
  }
  inner = g;
  guardCache.set(t, g);
  return g;
}

/** Checks that buf[pos…] starts with a well-formed datum of `type`; returns its end offset. */
export function scanAvroDatum(type: avro.Type, buf: Buffer, pos = 0): number {
  const c = new Cursor(buf, pos);
  try {
    compileGuard(type as unknown as AvroTypeLike)(c);
  } catch (err) {
    if (err === TRUNCATED) throw new AvroMalformed('truncated datum');
    throw err;
  }
  return c.pos;
}

/** One datum taking the whole buffer, decoded by avsc after the scan (writer schema = `type`). */
export function decodeAvroDatum(type: avro.Type, buf: Buffer): unknown {
  const end = scanAvroDatum(type, buf, 0);
  if (end !== buf.length) throw new AvroMalformed(`trailing data (${buf.length - end} bytes after the datum)`);
  return type.fromBuffer(buf);
}

// ---- object container files

interface WriterSchema {
  type: avro.Type;
  guard: Guard;
  /** undefined when the writer schema equals the reader's */
  resolver: avro.Resolver | undefined;
  resolverError: string | undefined;
}
/** Writer schemas seen in file headers (parsing one compiles code: worth keeping), per reader type. */
const writerCache = new WeakMap<avro.Type, Map<string, WriterSchema>>();
const WRITER_CACHE_MAX = 16;

function writerOf(schemaText: string, reader: avro.Type): WriterSchema {
  let cache = writerCache.get(reader);
  if (!cache) writerCache.set(reader, (cache = new Map()));
  const hit = cache.get(schemaText);
  if (hit) return hit;
  let type: avro.Type;
  try {
    type = avro.Type.forSchema(JSON.parse(schemaText));
  } catch (err) {
    throw new AvroMalformed(`bad writer schema in the header: ${(err as Error).message}`);
  }
  let resolver: avro.Resolver | undefined;
  let resolverError: string | undefined;
  if (!type.equals(reader)) {
    try {
      resolver = reader.createResolver(type);
    } catch (err) {
      resolverError = (err as Error).message;
    }
  }
  const w = { type, guard: compileGuard(type as unknown as AvroTypeLike), resolver, resolverError };
  if (cache.size >= WRITER_CACHE_MAX) cache.delete(cache.keys().next().value!);
  cache.set(schemaText, w);
  return w;
}

const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]); // "Obj" 1
const SYNC_BYTES = 16;

export interface AvroContainerHeader {
  meta: Map<string, Buffer>;
  writerType: avro.Type;
  codec: string;
}

export interface AvroContainerOptions {
  /** Reader schema: datums come back in its shape (resolved from the writer's schema when they differ). */
  readerType: avro.Type;
  /** Called once with the header; throw to reject the file (e.g. a foreign schema). */
  checkHeader?: (h: AvroContainerHeader) => void;
  /** Largest (decompressed) block accepted. Default 64 MiB. */
  maxBlockBytes?: number;
}

/**
 * Incremental container-file reader: push() bytes as they come, get decoded datums back (a block
 * is handed out only once all of it checked out); end()
 * at the end of input (throws when the input stopped inside the header or a block). Errors are
 * AvroMalformed with the byte offset in the message.
 */
export class AvroContainerReader {
  private buf: Buffer = Buffer.alloc(0);
  /** Absolute offset of buf[0] in the input. */
  private base = 0;
  private header: AvroContainerHeader | undefined;
  private sync: Buffer | undefined;
  private resolver: avro.Resolver | undefined;
  private guard: Guard | undefined;
  private readonly maxBlockBytes: number;
  blocks = 0;

  constructor(private readonly opts: AvroContainerOptions) {
    this.maxBlockBytes = opts.maxBlockBytes ?? 64 * 1024 * 1024;
  }

  /** Appends the datums completed by `chunk` to `out` (even when it then throws on a later block). */
  push(chunk: Buffer, out: unknown[]): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (!this.header && !this.tryHeader()) return;
    while (this.tryBlock(out));
  }

  end(): void {
    if (!this.header) throw new AvroMalformed(this.base + this.buf.length === 0 ? 'empty input (no container header)' : 'truncated container header');
    if (this.buf.length > 0) throw new AvroMalformed(`truncated block at end of input (offset=${this.base}, ${this.buf.length} bytes left)`);
  }

  private consume(n: number): void {
    this.buf = this.buf.subarray(n);
    this.base += n;
  }

  private tryHeader(): boolean {
    const head = this.buf.subarray(0, 4);
    if (!MAGIC.subarray(0, head.length).equals(head)) throw new AvroMalformed('not an Avro object container file (bad magic)');
    const c = new Cursor(this.buf, 4);
    const meta = new Map<string, Buffer>();
    try {
      for (let n = blockCount(c, 1, false); n !== 0; n = blockCount(c, 1, false)) {
        for (let i = 0; i < n; i++) {
          const klen = c.readLong();
          if (klen < 0) throw new AvroMalformed('negative metadata key length');
          const key = c.bytes(klen).toString('utf8');
          const vlen = c.readLong();
          if (vlen < 0) throw new AvroMalformed('negative metadata value length');
          meta.set(key, Buffer.from(c.bytes(vlen)));
        }
      }
      this.sync = Buffer.from(c.bytes(SYNC_BYTES));
    } catch (err) {
      if (err === TRUNCATED) {
        if (this.buf.length > this.maxBlockBytes) throw new AvroMalformed(`container header longer than ${this.maxBlockBytes} bytes`);
        return false;
      }
      throw new AvroMalformed(`bad container header: ${(err as Error).message}`);
    }
    const codec = meta.get('avro.codec')?.toString('utf8') || 'null';
    if (codec !== 'null' && codec !== 'deflate') throw new AvroMalformed(`unsupported codec ${codec}`);
    const schemaText = meta.get('avro.schema');
    if (!schemaText) throw new AvroMalformed('container header without avro.schema');
    const writer = writerOf(schemaText.toString('utf8'), this.opts.readerType);
    const header = { meta, writerType: writer.type, codec };
    this.opts.checkHeader?.(header);
    if (writer.resolverError) throw new AvroMalformed(`writer schema not readable as ${String(this.opts.readerType.name)}: ${writer.resolverError}`);
    this.resolver = writer.resolver;
    this.guard = writer.guard;
    this.header = header;
    this.consume(c.pos);
    return true;
  }

  private tryBlock(out: unknown[]): boolean {
    if (this.buf.length === 0) return false;
    const c = new Cursor(this.buf, 0);
    let count: number;
    let size: number;
    try {
      count = c.readLong();
      size = c.readLong();
    } catch (err) {
      if (err === TRUNCATED) return false;
      throw new AvroMalformed(`bad block header (offset=${this.base}): ${(err as Error).message}`);
    }
    if (count < 0 || size < 0 || size > this.maxBlockBytes) throw new AvroMalformed(`bad block header (offset=${this.base}, count=${count}, size=${size})`);
    if (c.pos + size + SYNC_BYTES > this.buf.length) return false;
    const raw = this.buf.subarray(c.pos, c.pos + size);
    const sync = this.buf.subarray(c.pos + size, c.pos + size + SYNC_BYTES);
    if (!sync.equals(this.sync!)) throw new AvroMalformed(`bad sync marker after block (offset=${this.base})`);
    let data: Buffer;
    if (this.header!.codec === 'deflate') {
      try {
        data = inflateRawSync(raw, { maxOutputLength: this.maxBlockBytes });
      } catch (err) {
        throw new AvroMalformed(`deflate block does not inflate (offset=${this.base}): ${(err as Error).message}`);
      }
    } else data = raw;
    if (count > data.length) throw new AvroMalformed(`block count ${count} exceeds its ${data.length} bytes (offset=${this.base})`);
    const type = this.opts.readerType;
    const dc = new Cursor(data, 0);
    const values: unknown[] = [];
    for (let i = 0; i < count; i++) {
      const start = dc.pos;
      try {
        this.guard!(dc);
      } catch (err) {
        const problem = err === TRUNCATED ? 'truncated datum' : (err as Error).message;
        throw new AvroMalformed(`bad datum ${i} of block ${this.blocks} (offset=${this.base}): ${problem}`);
      }
      values.push(type.decode(data, start, this.resolver).value);
    }
    if (dc.pos !== data.length) throw new AvroMalformed(`block has ${data.length - dc.pos} bytes after its ${count} datums (offset=${this.base})`);
    for (const v of values) out.push(v);
    this.blocks++;
    this.consume(c.pos + size + SYNC_BYTES);
    return true;
  }
}
