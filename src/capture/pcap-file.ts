/**
 * Classic libpcap files, read in chunks.
 *
 * File header (24 bytes, in the writer's byte order):
 *   | magic (4) | version major (2) | minor (2) | thiszone (4) | sigfigs (4) | snaplen (4) | link type (4) |
 *   magic a1b2c3d4: µs timestamps; a1b23c4d: ns timestamps; a1b2cd34: Kuznetzov's modified format
 *   (24-byte record headers, µs); read byte-swapped, the file is in the other byte order.
 * Record header (16 bytes; 24 in the modified format):
 *   | ts seconds (4) | ts µs or ns (4) | captured length (4) | original length (4) | frame bytes …
 */
import { ChunkedFileSource, MAX_FRAME_BYTES, openForReading, ParseStop, type FileSourceOptions } from './chunked-reader.js';
import type { FileHandle } from 'node:fs/promises';

export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
export const PCAP_MAGIC_MODIFIED = 0xa1b2cd34;
export const PCAP_FILE_HEADER_BYTES = 24;

export class PcapFileSource extends ChunkedFileSource {
  private littleEndian = true;
  private nanos = false;
  private recordHeaderBytes = 16;
  /** The file header's snapshot length and link type. */
  snaplen = 0;
  private link = 0;

  private constructor(fh: FileHandle, name: string, opts: FileSourceOptions) {
    super(fh, name, 'pcap', opts);
  }

  /** Opens a pcap file and reads its header; rejects with a CaptureFileError if it is not one. */
  static async open(path: string, opts: FileSourceOptions = {}): Promise<PcapFileSource> {
    const name = opts.name ?? path;
    const fh = await openForReading(path, name);
    const src = new PcapFileSource(fh, name, opts);
    try {
      await src.readHeader();
    } catch (e) {
      await src.close();
      throw e;
    }
    return src;
  }

  private async readHeader(): Promise<void> {
    if (!(await this.ensure(PCAP_FILE_HEADER_BYTES))) throw this.damagedError(0, `file header truncated (${this.end - this.start} of 24 bytes present)`);
    const b = this.buf;
    const h = this.start;
    const be = b.readUInt32BE(h);
    const le = b.readUInt32LE(h);
    if (be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS || be === PCAP_MAGIC_MODIFIED) this.littleEndian = false;
    else if (le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS || le === PCAP_MAGIC_MODIFIED) this.littleEndian = true;
    else throw this.damagedError(0, `bad magic 0x${be.toString(16).padStart(8, '0')}`);
    const magic = this.littleEndian ? le : be;
    this.nanos = magic === PCAP_MAGIC_NS;
    this.recordHeaderBytes = magic === PCAP_MAGIC_MODIFIED ? 24 : 16;
    this.snaplen = this.u32(h + 16);
    this.link = this.u32(h + 20) & 0xffff;
    this.start = h + PCAP_FILE_HEADER_BYTES;
  }

  linkType(_ifIndex: number): number {
    return this.link;
  }

  private u32(p: number): number {
    const b = this.buf;
    return this.littleEndian
      ? ((b[p + 3]! << 24) | (b[p + 2]! << 16) | (b[p + 1]! << 8) | b[p]!) >>> 0
      : ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }

  protected parse(): ParseStop {
    const batch = this.batch;
    const cap = this.batchLimit;
    const hdr = this.recordHeaderBytes;
    let n = batch.count;
    let p = this.start;
    const end = this.end;
    let stop: ParseStop = ParseStop.full;
    while (n < cap) {
      if (end - p < hdr) {
        this.need = hdr;
        stop = ParseStop.more;
        break;
      }
      const caplen = this.u32(p + 8);
      // A record longer than the snaplen is kept whole, as libpcap and Wireshark do (some writers
      // get the header's snaplen wrong); only the absolute bound says the file is damaged.
      if (caplen > MAX_FRAME_BYTES) {
        this.start = p;
        this.problem = `record length ${caplen} exceeds ${MAX_FRAME_BYTES}`;
        batch.count = n;
        return ParseStop.damaged;
      }
      if (end - p < hdr + caplen) {
        this.need = hdr + caplen;
        stop = ParseStop.more;
        break;
      }
      let sec = this.u32(p);
      let frac = this.u32(p + 4);
      if (!this.nanos) {
        if (frac >= 1_000_000) {
          sec += Math.floor(frac / 1_000_000);
          frac %= 1_000_000;
        }
        frac *= 1000;
      } else if (frac >= 1_000_000_000) {
        sec += Math.floor(frac / 1_000_000_000);
        frac %= 1_000_000_000;
      }
      batch.tsSec[n] = sec;
      batch.tsNsec[n] = frac;
      batch.caplen[n] = caplen;
      batch.len[n] = this.u32(p + 12);
      batch.offset[n] = p + hdr;
      batch.ifIndex[n] = 0;
      n++;
      p += hdr + caplen;
    }
    this.start = p;
    batch.count = n;
    return stop;
  }
}
