/**
 * Synthetic conversations as sequences of DecodedFrame inputs with KNOWN truth, for the flow
 * table tests. Nothing here is parsed from bytes: each frame is a fresh DecodedFrame with the
 * fields the decoders would set.
 *
 * TcpConv keeps both sides' sequence state, so a scenario is written as what the hosts do, and
 * `mirrored: false` removes a frame from what the mirror sees (loss BEFORE the mirror) while the
 * sequence space still advances. Each emitted frame is also added to the per-direction truth
 * (packets, bytes). With `ts: true` every segment carries a timestamp option: TSval = the
 * sender's millisecond clock (tNs / 1e6, plus a per-side base), TSecr = the last TSval the sender
 * received from the peer ("TS.Recent") — exact enough to compute expected RTT samples.
 */
import {
  DecodedFrame,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  Tunnel,
} from '../../src/capture/decode/frame.js';

export interface SynthFrame {
  f: DecodedFrame;
  tNs: number;
}

export interface Endpoint {
  ip: string;
  port?: number;
  mac?: number;
}

export interface L2Opts {
  vlans?: number[];
  vni?: number;
  tunnel?: Tunnel;
}

export const US = 1000;
export const MS = 1_000_000;
export const S = 1_000_000_000;

export function ip4(s: string): number {
  const p = s.split('.').map(Number);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

/** IPv6 text (with optional ::) → four uint32 words. */
export function ip6(s: string): number[] {
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':').filter(Boolean) : [];
  const t = tail ? tail.split(':').filter(Boolean) : [];
  const groups = [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t].map((g) => parseInt(g, 16));
  const w: number[] = [];
  for (let i = 0; i < 8; i += 2) w.push(((groups[i]! << 16) | groups[i + 1]!) >>> 0);
  return w;
}

function setIp(arr: Uint32Array, ip: string): number {
  if (ip.includes(':')) {
    arr.set(ip6(ip));
    return 6;
  }
  arr[0] = ip4(ip);
  return 4;
}

/** A bare IP frame between two endpoints (L4 fields to be filled by the caller). */
export function ipFrame(src: Endpoint, dst: Endpoint, protocol: number, len: number, l2: L2Opts = {}): DecodedFrame {
  const f = new DecodedFrame();
  f.len = f.caplen = len;
  f.srcMac = src.mac ?? 0x020000000001;
  f.dstMac = dst.mac ?? 0x020000000002;
  const vl = l2.vlans ?? [];
  f.vlanCount = vl.length;
  vl.forEach((v, i) => (f.vlans[i] = v));
  f.ipVersion = setIp(f.srcIp, src.ip);
  setIp(f.dstIp, dst.ip);
  f.etherType = f.ipVersion === 4 ? 0x0800 : 0x86dd;
  f.protocol = protocol;
  f.srcPort = src.port ?? 0;
  f.dstPort = dst.port ?? 0;
  if (l2.vni !== undefined) {
    f.tunnel = l2.tunnel ?? Tunnel.Vxlan;
    f.vni = l2.vni;
  }
  return f;
}

export function udpFrame(src: Endpoint, dst: Endpoint, payload: number, l2: L2Opts = {}): DecodedFrame {
  return ipFrame(src, dst, IPPROTO_UDP, 42 + payload, l2);
}

export function otherFrame(srcMac: number, dstMac: number, etherType: number, len: number): DecodedFrame {
  const f = new DecodedFrame();
  f.len = f.caplen = len;
  f.srcMac = srcMac;
  f.dstMac = dstMac;
  f.etherType = etherType;
  return f;
}

export interface DirTruth {
  packets: number;
  bytes: number;
  firstNs: number;
  lastNs: number;
}

function newTruth(): DirTruth {
  return { packets: 0, bytes: 0, firstNs: -1, lastNs: -1 };
}

export type Dir = 'c2s' | 's2c';

export interface SegOpts {
  /** Override the sequence number (a resend of older data). */
  seq?: number;
  /** false: the frame never reaches the mirror (lost before it); state still advances. */
  mirrored?: boolean;
  flags?: number;
  ack?: number;
  window?: number;
  sackBlocks?: number;
}

export class TcpConv {
  readonly frames: SynthFrame[] = [];
  readonly truth: Record<Dir, DirTruth> = { c2s: newTruth(), s2c: newTruth() };
  /** Next sequence number each side will send. */
  readonly nxt: Record<Dir, number>;
  /** Highest sequence each side has received (what it acks). */
  readonly rcv: Record<Dir, number>;
  private readonly tsRecent: Record<Dir, number> = { c2s: 0, s2c: 0 };
  private readonly tsBase: Record<Dir, number> = { c2s: 1000, s2c: 500000 };
  readonly isn: Record<Dir, number>;

  constructor(
    readonly client: Endpoint,
    readonly server: Endpoint,
    readonly opts: { clientIsn?: number; serverIsn?: number; ts?: boolean; l2?: L2Opts; window?: number } = {},
  ) {
    this.isn = { c2s: (opts.clientIsn ?? 1_000_000) >>> 0, s2c: (opts.serverIsn ?? 7_000_000) >>> 0 };
    this.nxt = { c2s: this.isn.c2s, s2c: this.isn.s2c };
    this.rcv = { c2s: 0, s2c: 0 };
  }

  /** TSval a side would put on a frame at time t. */
  tsValAt(dir: Dir, tNs: number): number {
    return (this.tsBase[dir] + Math.floor(tNs / MS)) >>> 0;
  }

  /** Emits one segment (low level). Returns the frame. */
  segment(dir: Dir, tNs: number, payload: number, flags: number, o: SegOpts = {}): DecodedFrame {
    const from = dir === 'c2s' ? this.client : this.server;
    const to = dir === 'c2s' ? this.server : this.client;
    const other: Dir = dir === 'c2s' ? 's2c' : 'c2s';
    const ts = this.opts.ts === true;
    const f = ipFrame(from, to, IPPROTO_TCP, 54 + (ts ? 12 : 0) + payload, this.opts.l2);
    const seq = (o.seq ?? this.nxt[dir]) >>> 0;
    f.seq = seq;
    f.tcpFlags = o.flags ?? flags;
    f.ack = f.tcpFlags & TCP_ACK ? (o.ack ?? this.rcv[dir]) >>> 0 : 0;
    f.window = o.window ?? this.opts.window ?? 1000;
    f.payloadLength = payload;
    f.sackBlocks = o.sackBlocks ?? 0;
    f.l4Length = 20 + (ts ? 12 : 0) + payload;
    if (ts) {
      f.hasTimestamp = true;
      f.tsVal = this.tsValAt(dir, tNs);
      f.tsEcr = f.tcpFlags & TCP_ACK ? this.tsRecent[dir] : 0;
    }
    const end = (seq + payload + (f.tcpFlags & TCP_SYN ? 1 : 0) + (f.tcpFlags & TCP_FIN ? 1 : 0)) >>> 0;
    if (o.seq === undefined || ((end - this.nxt[dir]) | 0) > 0) this.nxt[dir] = end;
    // the peer receives it (in this model every frame the host sent eventually arrives unless lost
    // before the mirror; tests that need otherwise set ack explicitly)
    if (o.mirrored !== false) {
      if (((end - this.rcv[other]) | 0) > 0 || this.rcv[other] === 0) this.rcv[other] = end;
      if (ts) this.tsRecent[other] = f.tsVal;
      this.frames.push({ f, tNs });
      const t = this.truth[dir];
      t.packets++;
      t.bytes += f.len;
      if (t.firstNs < 0) t.firstNs = tNs;
      t.lastNs = tNs;
    }
    return f;
  }

  syn(tNs: number, o: SegOpts = {}): DecodedFrame {
    const f = this.segment('c2s', tNs, 0, TCP_SYN, { seq: this.isn.c2s, ...o });
    f.mss = 1460;
    f.sackPermitted = true;
    return f;
  }

  synAck(tNs: number, o: SegOpts = {}): DecodedFrame {
    this.rcv.s2c = (this.isn.c2s + 1) >>> 0;
    return this.segment('s2c', tNs, 0, TCP_SYN | TCP_ACK, { seq: this.isn.s2c, ...o });
  }

  /** The client's ACK completing the handshake. */
  ack3(tNs: number): DecodedFrame {
    this.rcv.c2s = (this.isn.s2c + 1) >>> 0;
    return this.segment('c2s', tNs, 0, TCP_ACK);
  }

  handshake(t0: number, serverNs: number, clientNs: number): void {
    this.syn(t0);
    this.synAck(t0 + serverNs);
    this.ack3(t0 + serverNs + clientNs);
  }

  data(dir: Dir, tNs: number, payload: number, o: SegOpts = {}): DecodedFrame {
    return this.segment(dir, tNs, payload, TCP_ACK | TCP_PSH, o);
  }

  /** A pure ACK from dir (acks what dir has received unless o.ack). */
  ack(dir: Dir, tNs: number, o: SegOpts = {}): DecodedFrame {
    return this.segment(dir, tNs, 0, TCP_ACK, o);
  }

  fin(dir: Dir, tNs: number): DecodedFrame {
    return this.segment(dir, tNs, 0, TCP_FIN | TCP_ACK);
  }

  rst(dir: Dir, tNs: number, withAck = true): DecodedFrame {
    return this.segment(dir, tNs, 0, TCP_RST | (withAck ? TCP_ACK : 0));
  }

  /** Keep-alive: 0 or 1 byte at nxt − 1. */
  keepAlive(dir: Dir, tNs: number, bytes: 0 | 1): DecodedFrame {
    return this.segment(dir, tNs, bytes, TCP_ACK, { seq: (this.nxt[dir] - 1) >>> 0 });
  }
}

export class EchoConv {
  readonly frames: SynthFrame[] = [];
  readonly truth: Record<Dir, DirTruth> = { c2s: newTruth(), s2c: newTruth() };
  private readonly proto: number;

  constructor(
    readonly client: Endpoint,
    readonly server: Endpoint,
    readonly id: number,
    readonly l2: L2Opts = {},
  ) {
    this.proto = client.ip.includes(':') ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
  }

  private emit(dir: Dir, tNs: number, type: number, seq: number): DecodedFrame {
    const from = dir === 'c2s' ? this.client : this.server;
    const to = dir === 'c2s' ? this.server : this.client;
    const f = ipFrame({ ip: from.ip, mac: from.mac }, { ip: to.ip, mac: to.mac }, this.proto, 98, this.l2);
    f.icmpType = type;
    f.icmpCode = 0;
    f.icmpId = this.id;
    f.icmpSeq = seq;
    this.frames.push({ f, tNs });
    const t = this.truth[dir];
    t.packets++;
    t.bytes += f.len;
    if (t.firstNs < 0) t.firstNs = tNs;
    t.lastNs = tNs;
    return f;
  }

  request(tNs: number, seq: number): DecodedFrame {
    return this.emit('c2s', tNs, this.proto === IPPROTO_ICMP ? 8 : 128, seq);
  }

  reply(tNs: number, seq: number): DecodedFrame {
    return this.emit('s2c', tNs, this.proto === IPPROTO_ICMP ? 0 : 129, seq);
  }
}

/** Merges frame lists by time (stable). */
export function mergeByTime(...lists: SynthFrame[][]): SynthFrame[] {
  return lists
    .flat()
    .map((x, i) => ({ x, i }))
    .sort((a, b) => a.x.tNs - b.x.tNs || a.i - b.i)
    .map((y) => y.x);
}
