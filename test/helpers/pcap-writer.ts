/**
 * A small writer of synthetic frames and pcap / pcapng files for tests. Frames are built from the
 * inside out: each layer function takes its options and the payload and returns the bytes, e.g.
 *   ether({ src: '02:00:00:00:00:01', vlans: [10] }, ETH_IPV4, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6 }, tcp({ sport: 1, dport: 2 })))
 * Lengths and checksums are computed unless overridden (to make malformed frames).
 */

export const ETH_IPV4 = 0x0800;
export const ETH_IPV6 = 0x86dd;
export const ETH_ARP = 0x0806;

export function hex(s: string): Uint8Array {
  const clean = s.replace(/\/\*.*?\*\//g, '').replace(/[^0-9a-fA-F]/g, '');
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts.map((p) => Buffer.from(p))));
}

function u16(v: number): Uint8Array {
  return Uint8Array.of((v >>> 8) & 255, v & 255);
}
function u32(v: number): Uint8Array {
  return Uint8Array.of((v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
}

export function macBytes(mac: string): Uint8Array {
  return Uint8Array.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export function ipv4Bytes(ip: string): Uint8Array {
  return Uint8Array.from(ip.split('.').map(Number));
}

export function ipv6Bytes(ip: string): Uint8Array {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >>> 8;
    out[2 * i + 1] = v & 255;
  });
  return out;
}

function checksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface VlanTag {
  vid: number;
  pcp?: number;
  /** 0x8100 (default), 0x88a8 or 0x9100. */
  tpid?: number;
}

export function ether(o: { src?: string; dst?: string; vlans?: (number | VlanTag)[] }, type: number, payload: Uint8Array): Uint8Array {
  const tags = (o.vlans ?? []).map((v) => {
    const t = typeof v === 'number' ? { vid: v } : v;
    return concat(u16(t.tpid ?? 0x8100), u16(((t.pcp ?? 0) << 13) | t.vid));
  });
  return concat(macBytes(o.dst ?? '02:00:00:00:00:02'), macBytes(o.src ?? '02:00:00:00:00:01'), ...tags, u16(type), payload);
}

export interface Ipv4Options {
  src: string;
  dst: string;
  proto: number;
  ttl?: number;
  id?: number;
  dontFragment?: boolean;
  moreFragments?: boolean;
  /** Fragment offset in bytes (multiple of 8). */
  fragOffset?: number;
  /** IP options (padded to 4 bytes). */
  options?: Uint8Array;
  /** Overrides (for malformed frames). */
  totalLength?: number;
  ihl?: number;
  version?: number;
}

export function ipv4(o: Ipv4Options, payload: Uint8Array): Uint8Array {
  const opts = o.options ?? new Uint8Array(0);
  const padded = concat(opts, new Uint8Array((4 - (opts.length % 4)) % 4));
  const ihl = o.ihl ?? (20 + padded.length) / 4;
  const flags = (o.dontFragment ? 0x4000 : 0) | (o.moreFragments ? 0x2000 : 0) | ((o.fragOffset ?? 0) >>> 3);
  const hdr = concat(
    Uint8Array.of(((o.version ?? 4) << 4) | ihl, 0),
    u16(o.totalLength ?? 20 + padded.length + payload.length),
    u16(o.id ?? 1),
    u16(flags),
    Uint8Array.of(o.ttl ?? 64, o.proto),
    u16(0),
    ipv4Bytes(o.src),
    ipv4Bytes(o.dst),
    padded,
  );
  const c = checksum(hdr);
  hdr[10] = c >>> 8;
  hdr[11] = c & 255;
  return concat(hdr, payload);
}

export interface Ipv6Ext {
  /** 0 hop-by-hop, 43 routing, 44 fragment, 60 destination options, 51 AH. */
  type: number;
  /** For 0/43/60/51: the bytes after next-header and length (padded to the header's unit). */
  data?: Uint8Array;
  /** For 44: fragment offset in bytes, more-fragments flag, identification. */
  fragOffset?: number;
  moreFragments?: boolean;
  id?: number;
}

export function ipv6(o: { src: string; dst: string; next: number; hopLimit?: number; ext?: Ipv6Ext[]; payloadLength?: number }, payload: Uint8Array): Uint8Array {
  const exts = o.ext ?? [];
  const parts: Uint8Array[] = [];
  exts.forEach((e, i) => {
    const next = i + 1 < exts.length ? exts[i + 1]!.type : o.next;
    if (e.type === 44) {
      parts.push(concat(Uint8Array.of(next, 0), u16((e.fragOffset ?? 0) | (e.moreFragments ? 1 : 0)), u32(e.id ?? 0x12345678)));
    } else if (e.type === 51) {
      const data = e.data ?? new Uint8Array(10); // SPI, seq, 2 bytes ICV padding → 12 after the first 2
      const total = 2 + data.length;
      const padded = concat(data, new Uint8Array((4 - (total % 4)) % 4));
      parts.push(concat(Uint8Array.of(next, (2 + padded.length) / 4 - 2), padded));
    } else {
      const data = e.data ?? Uint8Array.of(1, 4, 0, 0, 0, 0); // PadN of 4
      const total = 2 + data.length;
      const padded = concat(data, new Uint8Array((8 - (total % 8)) % 8));
      parts.push(concat(Uint8Array.of(next, (2 + padded.length) / 8 - 1), padded));
    }
  });
  const body = concat(...parts, payload);
  const first = exts.length ? exts[0]!.type : o.next;
  return concat(u32(0x60000000), u16(o.payloadLength ?? body.length), Uint8Array.of(first, o.hopLimit ?? 64), ipv6Bytes(o.src), ipv6Bytes(o.dst), body);
}

export type TcpOption =
  | { kind: 'mss'; value: number }
  | { kind: 'wscale'; value: number }
  | { kind: 'sackPermitted' }
  | { kind: 'sack'; blocks: [number, number][] }
  | { kind: 'timestamps'; val: number; ecr: number }
  | { kind: 'nop' }
  | { kind: 'eol' }
  | { kind: 'raw'; bytes: Uint8Array };

export const TCP_FLAGS = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const;

export function tcpOptionBytes(opts: TcpOption[]): Uint8Array {
  const parts = opts.map((o): Uint8Array => {
    switch (o.kind) {
      case 'mss':
        return concat(Uint8Array.of(2, 4), u16(o.value));
      case 'wscale':
        return Uint8Array.of(3, 3, o.value);
      case 'sackPermitted':
        return Uint8Array.of(4, 2);
      case 'sack':
        return concat(Uint8Array.of(5, 2 + 8 * o.blocks.length), ...o.blocks.flatMap(([a, b]) => [u32(a), u32(b)]));
      case 'timestamps':
        return concat(Uint8Array.of(8, 10), u32(o.val), u32(o.ecr));
      case 'nop':
        return Uint8Array.of(1);
      case 'eol':
        return Uint8Array.of(0);
      case 'raw':
        return o.bytes;
    }
  });
  const b = concat(...parts);
  return concat(b, new Uint8Array((4 - (b.length % 4)) % 4));
}

export function tcp(
  o: { sport: number; dport: number; seq?: number; ack?: number; flags?: number; window?: number; options?: TcpOption[]; dataOffset?: number },
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const opts = tcpOptionBytes(o.options ?? []);
  const doff = o.dataOffset ?? (20 + opts.length) / 4;
  return concat(
    u16(o.sport),
    u16(o.dport),
    u32(o.seq ?? 1000),
    u32(o.ack ?? 0),
    Uint8Array.of(doff << 4, o.flags ?? TCP_FLAGS.ACK),
    u16(o.window ?? 65535),
    u16(0),
    u16(0),
    opts,
    payload,
  );
}

export function udp(o: { sport: number; dport: number; length?: number }, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  return concat(u16(o.sport), u16(o.dport), u16(o.length ?? 8 + payload.length), u16(0), payload);
}

/** ICMP or ICMPv6 (same header layout); id/seq are written for echo types. */
export function icmp(o: { type: number; code?: number; id?: number; seq?: number }, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const echo = o.id !== undefined || o.seq !== undefined;
  const body = echo ? concat(u16(o.id ?? 0), u16(o.seq ?? 0), payload) : concat(u32(0), payload);
  const msg = concat(Uint8Array.of(o.type, o.code ?? 0), u16(0), body);
  const c = checksum(msg);
  msg[2] = c >>> 8;
  msg[3] = c & 255;
  return msg;
}

export function arp(o: { op: number; senderMac?: string; senderIp: string; targetMac?: string; targetIp: string }): Uint8Array {
  return concat(
    u16(1),
    u16(0x0800),
    Uint8Array.of(6, 4),
    u16(o.op),
    macBytes(o.senderMac ?? '02:00:00:00:00:01'),
    ipv4Bytes(o.senderIp),
    macBytes(o.targetMac ?? '00:00:00:00:00:00'),
    ipv4Bytes(o.targetIp),
  );
}

export function vxlan(o: { vni: number }, inner: Uint8Array): Uint8Array {
  return concat(Uint8Array.of(0x08, 0, 0, 0), Uint8Array.of((o.vni >>> 16) & 255, (o.vni >>> 8) & 255, o.vni & 255, 0), inner);
}

export function geneve(o: { vni: number; protocol?: number; options?: Uint8Array }, inner: Uint8Array): Uint8Array {
  const opts = o.options ?? new Uint8Array(0);
  if (opts.length % 4) throw new Error('geneve options must be a multiple of 4 bytes');
  return concat(Uint8Array.of(opts.length / 4, 0), u16(o.protocol ?? 0x6558), Uint8Array.of((o.vni >>> 16) & 255, (o.vni >>> 8) & 255, o.vni & 255, 0), opts, inner);
}

/** One Geneve option: | class (2) | type | rsv:3 len:5 | data (len * 4) |. */
export function geneveOption(cls: number, type: number, data: Uint8Array): Uint8Array {
  if (data.length % 4) throw new Error('geneve option data must be a multiple of 4 bytes');
  return concat(u16(cls), Uint8Array.of(type, data.length / 4), data);
}

export function gre(o: { protocol: number; key?: number; seq?: number; checksum?: boolean }, inner: Uint8Array): Uint8Array {
  const flags = (o.checksum ? 0x8000 : 0) | (o.key !== undefined ? 0x2000 : 0) | (o.seq !== undefined ? 0x1000 : 0);
  const parts = [u16(flags), u16(o.protocol)];
  if (o.checksum) parts.push(u32(0));
  if (o.key !== undefined) parts.push(u32(o.key));
  if (o.seq !== undefined) parts.push(u32(o.seq));
  return concat(...parts, inner);
}

// ---- files

export interface PcapRecord {
  data: Uint8Array;
  /** Seconds and nanoseconds (default: 1700000000 + index, 0). */
  tsSec?: number;
  tsNsec?: number;
  /** Length on the wire (default data.length); caplen is data.length unless `caplen` is given. */
  len?: number;
  /** Captured bytes written (default data.length; less cuts the frame like a snaplen would). */
  caplen?: number;
}

export function writePcap(records: PcapRecord[], o: { nanos?: boolean; bigEndian?: boolean; snaplen?: number; linkType?: number } = {}): Buffer {
  const le = !o.bigEndian;
  const w32 = (b: Buffer, v: number, p: number) => (le ? b.writeUInt32LE(v >>> 0, p) : b.writeUInt32BE(v >>> 0, p));
  const w16 = (b: Buffer, v: number, p: number) => (le ? b.writeUInt16LE(v, p) : b.writeUInt16BE(v, p));
  const head = Buffer.alloc(24);
  w32(head, o.nanos ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  w16(head, 2, 4);
  w16(head, 4, 6);
  w32(head, o.snaplen ?? 262144, 16);
  w32(head, o.linkType ?? 1, 20);
  const parts: Buffer[] = [head];
  records.forEach((r, i) => {
    const caplen = r.caplen ?? r.data.length;
    const h = Buffer.alloc(16);
    const sec = r.tsSec ?? 1_700_000_000 + i;
    const nsec = r.tsNsec ?? 0;
    w32(h, sec, 0);
    w32(h, o.nanos ? nsec : Math.floor(nsec / 1000), 4);
    w32(h, caplen, 8);
    w32(h, r.len ?? r.data.length, 12);
    parts.push(h, Buffer.from(r.data.subarray(0, caplen)));
  });
  return Buffer.concat(parts);
}

export interface PcapngInterface {
  linkType?: number;
  snaplen?: number;
  /** Raw if_tsresol byte (default: none = µs). 9 = ns, 0x80 | n = 2^-n. */
  tsresol?: number;
  /** if_tsoffset seconds. */
  tsoffset?: number;
}

export interface PcapngPacket extends PcapRecord {
  /** Interface id within the section (default 0). */
  ifId?: number;
  /** Block type (default 'epb'). SPB carries no timestamp. */
  block?: 'epb' | 'spb' | 'opb';
}

export interface PcapngSection {
  bigEndian?: boolean;
  interfaces: PcapngInterface[];
  packets: PcapngPacket[];
  /** Add a name-resolution block and an interface-statistics block (to be skipped). */
  extraBlocks?: boolean;
}

function unitsPerSec(tsresol: number | undefined): bigint {
  if (tsresol === undefined) return 1_000_000n;
  return tsresol & 0x80 ? 2n ** BigInt(tsresol & 0x7f) : 10n ** BigInt(tsresol);
}

export function writePcapng(sections: PcapngSection[]): Buffer {
  const parts: Buffer[] = [];
  for (const s of sections) {
    const le = !s.bigEndian;
    const block = (type: number, body: Buffer): Buffer => {
      const pad = (4 - (body.length % 4)) % 4;
      const total = 12 + body.length + pad;
      const b = Buffer.alloc(total);
      if (le) {
        b.writeUInt32LE(type, 0);
        b.writeUInt32LE(total, 4);
        b.writeUInt32LE(total, total - 4);
      } else {
        b.writeUInt32BE(type, 0);
        b.writeUInt32BE(total, 4);
        b.writeUInt32BE(total, total - 4);
      }
      body.copy(b, 8);
      return b;
    };
    const w = (size: number, fn: (b: Buffer) => void) => {
      const b = Buffer.alloc(size);
      fn(b);
      return b;
    };
    const W32 = (b: Buffer, v: number, p: number) => (le ? b.writeUInt32LE(v >>> 0, p) : b.writeUInt32BE(v >>> 0, p));
    const W16 = (b: Buffer, v: number, p: number) => (le ? b.writeUInt16LE(v, p) : b.writeUInt16BE(v, p));
    const option = (code: number, value: Buffer) => {
      const pad = (4 - (value.length % 4)) % 4;
      return Buffer.concat([w(4, (b) => (W16(b, code, 0), W16(b, value.length, 2))), value, Buffer.alloc(pad)]);
    };
    // SHB: magic, version 1.0, section length -1, shb_userappl option
    parts.push(
      block(
        0x0a0d0d0a,
        Buffer.concat([
          w(16, (b) => {
            W32(b, 0x1a2b3c4d, 0);
            W16(b, 1, 4);
            W16(b, 0, 6);
            b.writeInt32LE(-1, 8);
            b.writeInt32LE(-1, 12);
          }),
          option(4, Buffer.from('mirrorflow-test')),
          option(0, Buffer.alloc(0)),
        ]),
      ),
    );
    for (const i of s.interfaces) {
      const opts: Buffer[] = [option(2, Buffer.from('eth0'))];
      if (i.tsresol !== undefined) opts.push(option(9, Buffer.of(i.tsresol)));
      if (i.tsoffset !== undefined) opts.push(option(14, w(8, (b) => (le ? b.writeBigInt64LE(BigInt(i.tsoffset!), 0) : b.writeBigInt64BE(BigInt(i.tsoffset!), 0)))));
      opts.push(option(0, Buffer.alloc(0)));
      parts.push(block(1, Buffer.concat([w(8, (b) => (W16(b, i.linkType ?? 1, 0), W32(b, i.snaplen ?? 262144, 4))), ...opts])));
    }
    if (s.extraBlocks) {
      // NRB: one IPv4 record 10.0.0.1 → "host", end record
      parts.push(block(4, Buffer.concat([w(4, (b) => (W16(b, 1, 0), W16(b, 9, 2))), Buffer.from([10, 0, 0, 1, 0x68, 0x6f, 0x73, 0x74, 0, 0, 0, 0]), Buffer.alloc(4)])));
    }
    s.packets.forEach((p, idx) => {
      const iface = s.interfaces[p.ifId ?? 0]!;
      const caplen = p.caplen ?? p.data.length;
      const data = Buffer.from(p.data.subarray(0, caplen));
      const padded = Buffer.concat([data, Buffer.alloc((4 - (data.length % 4)) % 4)]);
      const sec = BigInt(p.tsSec ?? 1_700_000_000 + idx) - BigInt(iface.tsoffset ?? 0);
      const u = unitsPerSec(iface.tsresol);
      const ts = sec * u + (BigInt(p.tsNsec ?? 0) * u) / 1_000_000_000n;
      const hi = Number(ts >> 32n);
      const lo = Number(ts & 0xffffffffn);
      const kind = p.block ?? 'epb';
      if (kind === 'spb') {
        parts.push(block(3, Buffer.concat([w(4, (b) => W32(b, p.len ?? p.data.length, 0)), padded])));
      } else if (kind === 'opb') {
        parts.push(
          block(
            2,
            Buffer.concat([
              w(20, (b) => (W16(b, p.ifId ?? 0, 0), W16(b, 0, 2), W32(b, hi, 4), W32(b, lo, 8), W32(b, caplen, 12), W32(b, p.len ?? p.data.length, 16))),
              padded,
            ]),
          ),
        );
      } else {
        parts.push(
          block(
            6,
            Buffer.concat([
              w(20, (b) => (W32(b, p.ifId ?? 0, 0), W32(b, hi, 4), W32(b, lo, 8), W32(b, caplen, 12), W32(b, p.len ?? p.data.length, 16))),
              padded,
              option(1, Buffer.from('c')), // opt_comment
              option(0, Buffer.alloc(0)),
            ]),
          ),
        );
      }
    });
    if (s.extraBlocks) {
      // ISB for interface 0: id, timestamp, no options
      parts.push(block(5, w(12, (b) => W32(b, 0, 0))));
    }
  }
  return Buffer.concat(parts);
}
