/**
 * pcapng files (draft-ietf-opsawg-pcapng), read in chunks.
 *
 * Every block: | type (4) | total length (4) | body … | total length (4) |, lengths multiple of 4.
 *   SHB 0x0A0D0D0A: | byte-order magic 0x1A2B3C4D (4) | major (2) | minor (2) | section length (8) | options |
 *        starts a section; its magic says the byte order of the whole section; interfaces restart.
 *   IDB 1: | link type (2) | reserved (2) | snaplen (4) | options |  (if_tsresol 9, if_tsoffset 14)
 *   EPB 6: | interface id (4) | ts high (4) | ts low (4) | captured len (4) | original len (4) | data, padded | options |
 *   SPB 3: | original len (4) | data, padded |  (interface 0; captured = min(original, snaplen, room))
 *   OPB 2: | interface id (2) | drops (2) | ts high (4) | ts low (4) | captured len (4) | original len (4) | data | options |
 *   anything else (NRB, ISB, DSB, custom…) is skipped.
 * Options: | code (2) | length (2) | value, padded to 4 | … | 0 (end) |.
 *
 * ifIndex in batches numbers interfaces across the whole file (section 2's interface 0 comes after
 * section 1's interfaces), so linkType(ifIndex) is unambiguous.
 */
import type { FileHandle } from 'node:fs/promises';
import { ChunkedFileSource, MAX_FRAME_BYTES, openForReading, ParseStop, type FileSourceOptions } from './chunked-reader.js';

export const PCAPNG_SHB = 0x0a0d0d0a;
export const PCAPNG_IDB = 1;
export const PCAPNG_OPB = 2;
export const PCAPNG_SPB = 3;
export const PCAPNG_EPB = 6;
export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;
/** Largest non-packet block accepted (name resolution, custom blocks…). */
export const MAX_PCAPNG_BLOCK_BYTES = 16 * 1024 * 1024;
/** At most this many interfaces in a file (ifIndex is a Uint16). */
export const MAX_PCAPNG_INTERFACES = 65535;

interface Interface {
  linkType: number;
  snaplen: number;
  /** Timestamp units per second (10^n or 2^n). */
  unitsPerSec: number;
  /** Nanoseconds per unit when that is a whole number (≥ 1), else 0. */
  nsPerUnit: number;
  /** Units per nanosecond when that is a whole number (> 1), else 0. */
  unitsPerNs: number;
  /** if_tsoffset, seconds. */
  offsetSec: number;
}

export class PcapngFileSource extends ChunkedFileSource {
  private littleEndian = true;
  private readonly interfaces: Interface[] = [];
  /** Index (in `interfaces`) of the current section's interface 0. */
  private sectionBase = 0;
  private inSection = false;

  private constructor(fh: FileHandle, name: string, opts: FileSourceOptions) {
    super(fh, name, 'pcapng', opts);
  }

  static async open(path: string, opts: FileSourceOptions = {}): Promise<PcapngFileSource> {
    const name = opts.name ?? path;
    const fh = await openForReading(path, name);
    const src = new PcapngFileSource(fh, name, opts);
    try {
      if (!(await src.ensure(12))) throw src.damagedError(0, `section header truncated (${src.end - src.start} of 12 bytes present)`);
      const magic = src.buf.readUInt32BE(src.start);
      if (magic !== PCAPNG_SHB) throw src.damagedError(0, `bad magic 0x${magic.toString(16).padStart(8, '0')}`);
    } catch (e) {
      await src.close();
      throw e;
    }
    return src;
  }

  /** Link type of interface `ifIndex` (numbered across sections), or -1 when there is no such interface. */
  linkType(ifIndex: number): number {
    const i = this.interfaces[ifIndex];
    return i ? i.linkType : -1;
  }

  /** Number of interfaces seen so far (all sections). */
  interfaceCount(): number {
    return this.interfaces.length;
  }

  private u32(p: number): number {
    const b = this.buf;
    return this.littleEndian
      ? ((b[p + 3]! << 24) | (b[p + 2]! << 16) | (b[p + 1]! << 8) | b[p]!) >>> 0
      : ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }

  private u16(p: number): number {
    const b = this.buf;
    return this.littleEndian ? (b[p + 1]! << 8) | b[p]! : (b[p]! << 8) | b[p + 1]!;
  }

  private damaged(p: number, problem: string): ParseStop {
    this.start = p;
    this.problem = problem;
    return ParseStop.damaged;
  }

  protected parse(): ParseStop {
    const batch = this.batch;
    const cap = this.batchLimit;
    const end = this.end;
    let p = this.start;
    let stop: ParseStop = ParseStop.full;
    while (batch.count < cap) {
      if (end - p < 8) {
        this.need = 8;
        stop = ParseStop.more;
        break;
      }
      const b = this.buf;
      const rawType = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
      if (rawType === PCAPNG_SHB) {
        if (end - p < 12) {
          this.need = 12;
          stop = ParseStop.more;
          break;
        }
        const magicBe = ((b[p + 8]! << 24) | (b[p + 9]! << 16) | (b[p + 10]! << 8) | b[p + 11]!) >>> 0;
        if (magicBe === PCAPNG_BYTE_ORDER_MAGIC) this.littleEndian = false;
        else if (magicBe === 0x4d3c2b1a) this.littleEndian = true;
        else return this.damaged(p, `bad byte-order magic 0x${magicBe.toString(16).padStart(8, '0')}`);
      } else if (!this.inSection) {
        return this.damaged(p, 'block before the first section header');
      }
      const type = this.u32(p);
      const total = this.u32(p + 4);
      if (total < 12 || total % 4 !== 0) return this.damaged(p, `block length ${total} invalid`);
      const isPacket = type === PCAPNG_EPB || type === PCAPNG_SPB || type === PCAPNG_OPB;
      const max = isPacket ? MAX_FRAME_BYTES + 4096 : MAX_PCAPNG_BLOCK_BYTES;
      if (total > max) return this.damaged(p, `block length ${total} exceeds ${max}`);
      if (end - p < total) {
        this.need = total;
        stop = ParseStop.more;
        break;
      }
      const trailer = this.u32(p + total - 4);
      if (trailer !== total) return this.damaged(p, `block trailer length ${trailer} differs from ${total}`);
      let r: string | null = null;
      if (type === PCAPNG_EPB) r = this.packet(p, total, this.u32(p + 8), 12, 28);
      else if (type === PCAPNG_OPB) r = this.packet(p, total, this.u16(p + 8), 12, 28);
      else if (type === PCAPNG_SPB) r = this.simplePacket(p, total);
      else if (type === PCAPNG_IDB) r = this.interfaceBlock(p, total);
      else if (type === PCAPNG_SHB) r = this.sectionHeader(p, total);
      if (r !== null) return this.damaged(p, r);
      p += total;
    }
    this.start = p;
    return stop;
  }

  private sectionHeader(p: number, total: number): string | null {
    if (total < 28) return `section header length ${total} below 28`;
    const major = this.u16(p + 12);
    if (major !== 1) return `unsupported pcapng version ${major}.${this.u16(p + 14)}`;
    this.sectionBase = this.interfaces.length;
    this.inSection = true;
    return null;
  }

  private interfaceBlock(p: number, total: number): string | null {
    if (total < 20) return `interface block length ${total} below 20`;
    if (this.interfaces.length >= MAX_PCAPNG_INTERFACES) return `more than ${MAX_PCAPNG_INTERFACES} interfaces`;
    const iface: Interface = { linkType: this.u16(p + 8), snaplen: this.u32(p + 12), unitsPerSec: 1e6, nsPerUnit: 1000, unitsPerNs: 0, offsetSec: 0 };
    // options
    let q = p + 16;
    const stop = p + total - 4;
    while (stop - q >= 4) {
      const code = this.u16(q);
      const len = this.u16(q + 2);
      if (code === 0) break;
      if (q + 4 + len > stop) return `interface option ${code} length ${len} overruns the block`;
      if (code === 9 && len >= 1) {
        const v = this.buf[q + 4]!;
        const exp = v & 0x7f;
        if (v & 0x80) {
          if (exp > 63) return `if_tsresol 2^-${exp} out of range`;
          iface.unitsPerSec = 2 ** exp;
        } else {
          if (exp > 18) return `if_tsresol 10^-${exp} out of range`;
          iface.unitsPerSec = 10 ** exp;
        }
        const u = iface.unitsPerSec;
        iface.nsPerUnit = u <= 1e9 && 1e9 % u === 0 ? 1e9 / u : 0;
        iface.unitsPerNs = u > 1e9 && u % 1e9 === 0 ? u / 1e9 : 0;
      } else if (code === 14 && len >= 8) {
        const hi = this.u32(q + 4 + (this.littleEndian ? 4 : 0));
        const lo = this.u32(q + 4 + (this.littleEndian ? 0 : 4));
        iface.offsetSec = (hi | 0) * 4294967296 + lo;
      }
      q += 4 + ((len + 3) & ~3);
    }
    this.interfaces.push(iface);
    return null;
  }

  /** EPB and OPB: interface id given, timestamps at p+ts, lengths at p+ts+8, data at p+data. */
  private packet(p: number, total: number, ifId: number, ts: number, data: number): string | null {
    const ifIndex = this.sectionBase + ifId;
    const iface = this.interfaces[ifIndex];
    if (ifId >= this.interfaces.length - this.sectionBase || !iface) return `packet on unknown interface ${ifId}`;
    if (total < data + 4) return `packet block length ${total} below ${data + 4}`;
    const caplen = this.u32(p + ts + 8);
    if (caplen > total - data - 4) return `captured length ${caplen} exceeds the block`;
    if (caplen > MAX_FRAME_BYTES) return `record length ${caplen} exceeds ${MAX_FRAME_BYTES}`;
    const n = this.batch.count;
    this.setTimestamp(n, iface, this.u32(p + ts), this.u32(p + ts + 4));
    this.batch.caplen[n] = caplen;
    this.batch.len[n] = this.u32(p + ts + 12);
    this.batch.offset[n] = p + data;
    this.batch.ifIndex[n] = ifIndex;
    this.batch.count = n + 1;
    return null;
  }

  private simplePacket(p: number, total: number): string | null {
    const iface = this.interfaces[this.sectionBase];
    if (this.interfaces.length === this.sectionBase || !iface) return 'simple packet block without an interface';
    if (total < 16) return `simple packet block length ${total} below 16`;
    const len = this.u32(p + 8);
    let caplen = Math.min(len, total - 16);
    if (iface.snaplen > 0 && caplen > iface.snaplen) caplen = iface.snaplen;
    if (caplen > MAX_FRAME_BYTES) return `record length ${caplen} exceeds ${MAX_FRAME_BYTES}`;
    const n = this.batch.count;
    this.batch.tsSec[n] = 0;
    this.batch.tsNsec[n] = 0;
    this.batch.caplen[n] = caplen;
    this.batch.len[n] = len;
    this.batch.offset[n] = p + 12;
    this.batch.ifIndex[n] = this.sectionBase;
    this.batch.count = n + 1;
    return null;
  }

  /** Converts a 64-bit count of interface units into seconds + nanoseconds, exactly and without BigInt on common resolutions. */
  private setTimestamp(n: number, iface: Interface, hi: number, lo: number): void {
    const u = iface.unitsPerSec;
    let sec: number;
    let rem: number;
    if (hi < 0x200000) {
      // below 2^53: plain double arithmetic is exact
      const t = hi * 4294967296 + lo;
      sec = Math.floor(t / u);
      rem = t - sec * u;
    } else if (u <= 4294967296) {
      // long division by 16-bit limbs: every intermediate stays below 2^48
      let r = 0;
      let q = 0;
      for (let i = 0; i < 4; i++) {
        const limb = i === 0 ? hi >>> 16 : i === 1 ? hi & 0xffff : i === 2 ? lo >>> 16 : lo & 0xffff;
        const cur = r * 65536 + limb;
        const qd = Math.floor(cur / u);
        r = cur - qd * u;
        q = q * 65536 + qd;
      }
      sec = q;
      rem = r;
    } else {
      const t = (BigInt(hi) << 32n) | BigInt(lo);
      const U = BigInt(u);
      sec = Number(t / U);
      rem = Number(t % U);
    }
    let nsec: number;
    if (iface.nsPerUnit > 0) nsec = rem * iface.nsPerUnit;
    else if (iface.unitsPerNs > 0) nsec = Math.floor(rem / iface.unitsPerNs);
    else nsec = Math.floor((rem * 1e9) / u);
    if (nsec > 999_999_999) nsec = 999_999_999;
    this.batch.tsSec[n] = sec + iface.offsetSec;
    this.batch.tsNsec[n] = nsec;
  }
}
