/**
 * Whole capture files from scenario descriptions, with the truth returned alongside.
 *
 * A CaptureBuilder collects frames as BYTES on the wire (built with pcap-writer.ts layers from the
 * DecodedFrame-like conversations of synth-flows.ts, which keep both TCP sides' sequence state),
 * each with its capture time and an annotation of what it means for the per-pair figures (its flow,
 * whether it is a data segment, a retransmission seen twice at the mirror, the resend that fills a
 * hole left by a loss before the mirror, the ACK that completes a handshake and its RTT, an echo
 * reply and its RTT…). Undecodable frames carry the reason the decoder must give.
 *
 * `truth({ windowUs })` computes per window and VM pair what a replay must report, from the frames
 * as written (lengths on the wire, names from the inventory: MAC first, then IP, else the IP, else
 * the MAC — the resolver's rule). `pcap()` / `pcapng()` write the file (optionally cut by a snaplen)
 * and `recordOffsets()` tells where each record starts in the pcap, to damage a file on purpose.
 *
 *   const cap = new CaptureBuilder({ startUs, inventory });
 *   const s = new TcpSession(cap, hostA, hostB, { sport: 40000, dport: 80 });
 *   s.handshake(0, 300, 70); s.request(1000, 200, 1400); s.close(5000); s.done();
 *   writeFileSync(path, cap.pcap({ snaplen: 128 }));
 *   const truth = cap.truth({ windowUs: 10_000_000 });
 */
import { TcpConv, EchoConv, udpFrame, otherFrame, type Dir, type Endpoint, type L2Opts, MS, US } from './synth-flows.js';
import {
  ETH_IPV4,
  ETH_IPV6,
  ether,
  ipv4,
  ipv6,
  tcp,
  udp,
  icmp,
  vxlan,
  writePcap,
  writePcapng,
  type PcapRecord,
  type TcpOption,
} from './pcap-writer.js';
import {
  DecodedFrame,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  Tunnel,
  formatIp,
  formatMac,
  type DecodeErrorName,
} from '../../src/capture/decode/frame.js';

// ---- randomness (seeded, reproducible)

/** mulberry32 (test/helpers/rng.ts). */
export { rng as seededRandom } from './rng.js';

/** Whole number uniformly in [lo, hi]. */
export function uniformInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

// ---- hosts and inventory

export interface Host {
  mac: string;
  ip: string;
  ip6?: string;
}

export interface InventoryVm {
  vm: string;
  mac?: string;
  ips: string[];
}

export function macNumber(mac: string): number {
  return parseInt(mac.replace(/:/g, ''), 16);
}

function endpoint(h: Host, v6: boolean, port?: number): Endpoint {
  const ip = v6 ? h.ip6 : h.ip;
  if (ip === undefined) throw new Error(`host ${h.mac} has no ${v6 ? 'IPv6' : 'IPv4'} address`);
  return { ip, mac: macNumber(h.mac), ...(port !== undefined ? { port } : {}) };
}

// ---- annotations and frames

export interface Annot {
  /** The flow this frame belongs to (distinct per flow key). */
  flow: string;
  dataSegment?: boolean;
  retransmit?: boolean;
  gapFill?: boolean;
  /** The ACK that completes a handshake: the RTT in µs (server part + client part). */
  handshakeRttUs?: number;
  /** The frame that makes the flow's handshake failed (the last unanswered SYN, the RST). */
  failedHandshake?: boolean;
  /**
   * When the failure is reported, if not at this frame: µs since the Unix epoch (an unanswered SYN
   * fails when its flow times out; the report lands in that window, or at the end of the capture).
   */
  failedAtUs?: number;
  echoRequest?: boolean;
  echoReply?: boolean;
  /** An echo reply answering a request seen: the RTT in µs. */
  echoRttUs?: number;
}

export interface CaptureFrame {
  /** Capture time, µs since the Unix epoch. */
  tUs: number;
  /** The frame as on the wire (length on the wire = bytes.length unless wireLen). */
  bytes: Uint8Array;
  /** Captured bytes written regardless of snaplen (for frames cut inside a header). */
  caplen?: number;
  /** Endpoint names (resolver rule), src and dst of this frame. */
  src?: string;
  dst?: string;
  annot?: Annot;
  /** Undecodable: the reason the decoder must count. */
  undecodable?: DecodeErrorName;
}

export interface DirTotals {
  packets: number;
  bytes: number;
}

export interface PairTruth {
  windowStartUs: number;
  a: string;
  b: string;
  aToB: DirTotals;
  bToA: DirTotals;
  flows: Set<string>;
  handshakeRttsUs: number[];
  failedHandshakes: number;
  retransmits: number;
  gapFills: number;
  dataSegments: number;
  echoRequests: number;
  echoReplies: number;
  echoRttsUs: number[];
}

export interface CaptureTruth {
  /** Per window start and pair (`${windowStartUs}|${a}|${b}`, a < b). */
  pairs: Map<string, PairTruth>;
  frames: number;
  bytes: number;
  undecodableByReason: Record<string, number>;
  /** Distinct flows over the frames considered. */
  flows: number;
}

/** Nearest-rank q-quantile (the ceil(q·n)-th smallest), the definition the RTT sketch approximates. */
export function nearestRank(values: number[], q: number): number {
  const s = [...values].sort((x, y) => x - y);
  return s[Math.max(1, Math.ceil(q * s.length)) - 1]!;
}

export function pairKey(windowStartUs: number, x: string, y: string): string {
  return x <= y ? `${windowStartUs}|${x}|${y}` : `${windowStartUs}|${y}|${x}`;
}

const OUTER_HV = [
  { mac: '02:00:00:00:10:01', ip: '198.51.100.1' },
  { mac: '02:00:00:00:10:02', ip: '198.51.100.2' },
];

export class CaptureBuilder {
  readonly frames: CaptureFrame[] = [];
  readonly startUs: number;
  readonly inventory: InventoryVm[];
  private readonly byMac = new Map<string, string>();
  private readonly byIp = new Map<string, string>();
  private sorted = true;

  constructor(o: { startUs: number; inventory: InventoryVm[] }) {
    this.startUs = o.startUs;
    this.inventory = o.inventory;
    for (const v of o.inventory) {
      if (v.mac) this.byMac.set(v.mac.toLowerCase(), v.vm);
      for (const ip of v.ips) this.byIp.set(ip, v.vm);
    }
  }

  /** The resolver's name for an endpoint: VM by MAC, else VM by IP, else the IP, else the MAC. */
  nameOf(mac: string, ip?: string): string {
    return this.byMac.get(mac) ?? (ip !== undefined ? (this.byIp.get(ip) ?? ip) : mac);
  }

  /** Adds a decoded-frame-like frame at `tNs` after the capture start, serialised to bytes. */
  addDecoded(f: DecodedFrame, tNs: number, annot: Annot): void {
    const ip = f.ipVersion !== 0;
    const srcMac = formatMac(f.srcMac);
    const dstMac = formatMac(f.dstMac);
    this.push({
      tUs: this.startUs + Math.round(tNs / US),
      bytes: frameBytes(f),
      src: this.nameOf(srcMac, ip ? formatIp(f.ipVersion, f.srcIp) : undefined),
      dst: this.nameOf(dstMac, ip ? formatIp(f.ipVersion, f.dstIp) : undefined),
      annot,
    });
  }

  /** An undecodable frame (bytes as on the wire, optionally cut to caplen) at tNs. */
  addUndecodable(tNs: number, bytes: Uint8Array, reason: DecodeErrorName, caplen?: number): void {
    this.push({ tUs: this.startUs + Math.round(tNs / US), bytes, undecodable: reason, ...(caplen !== undefined ? { caplen } : {}) });
  }

  private push(fr: CaptureFrame): void {
    const last = this.frames[this.frames.length - 1];
    if (last && last.tUs > fr.tUs) this.sorted = false;
    this.frames.push(fr);
  }

  /** Frames in capture order (stable by time). */
  ordered(): CaptureFrame[] {
    if (!this.sorted) {
      const idx = this.frames.map((f, i) => ({ f, i }));
      idx.sort((x, y) => x.f.tUs - y.f.tUs || x.i - y.i);
      this.frames.splice(0, this.frames.length, ...idx.map((x) => x.f));
      this.sorted = true;
    }
    return this.frames;
  }

  private records(snaplen: number | undefined): PcapRecord[] {
    return this.ordered().map((fr) => {
      const len = fr.bytes.length;
      let caplen = fr.caplen ?? len;
      if (snaplen !== undefined && caplen > snaplen) caplen = snaplen;
      return { data: fr.bytes, tsSec: Math.floor(fr.tUs / 1e6), tsNsec: (fr.tUs % 1e6) * 1000, len, caplen };
    });
  }

  /** A classic pcap file (µs timestamps); `snaplen` cuts frames like a capture's snapshot length. */
  pcap(o: { snaplen?: number } = {}): Buffer {
    return writePcap(this.records(o.snaplen), o.snaplen !== undefined ? { snaplen: o.snaplen } : {});
  }

  /** The same frames as a pcapng file (one interface, ns resolution). */
  pcapng(o: { snaplen?: number } = {}): Buffer {
    return writePcapng([{ interfaces: [{ tsresol: 9, ...(o.snaplen !== undefined ? { snaplen: o.snaplen } : {}) }], packets: this.records(o.snaplen) }]);
  }

  /** Byte offset of each record header in pcap({ snaplen }). */
  recordOffsets(o: { snaplen?: number } = {}): number[] {
    let p = 24;
    return this.records(o.snaplen).map((r) => {
      const at = p;
      p += 16 + (r.caplen ?? r.data.length);
      return at;
    });
  }

  /** What a replay must report, per window (windowUs 0: one window) and pair, over the first `frames` frames. */
  truth(o: { windowUs: number; frames?: number }): CaptureTruth {
    const list = this.ordered().slice(0, o.frames ?? this.frames.length);
    const pairs = new Map<string, PairTruth>();
    const reasons: Record<string, number> = {};
    const flows = new Set<string>();
    let bytes = 0;
    const lastUs = list.length ? list[list.length - 1]!.tUs : 0;
    const windowOf = (us: number) => (o.windowUs > 0 ? Math.floor(us / o.windowUs) * o.windowUs : 0);
    const late: { src: string; dst: string; atUs: number; flow: string }[] = [];
    for (const fr of list) {
      bytes += fr.bytes.length;
      if (fr.undecodable) {
        reasons[fr.undecodable] = (reasons[fr.undecodable] ?? 0) + 1;
        continue;
      }
      const src = fr.src!;
      const dst = fr.dst!;
      const an = fr.annot!;
      const t = this.pairTruth(pairs, windowOf(fr.tUs), src, dst);
      const d = src === t.a ? t.aToB : t.bToA;
      d.packets++;
      d.bytes += fr.bytes.length;
      t.flows.add(an.flow);
      flows.add(an.flow);
      if (an.handshakeRttUs !== undefined) t.handshakeRttsUs.push(an.handshakeRttUs);
      if (an.failedHandshake && an.failedAtUs !== undefined) late.push({ src, dst, atUs: an.failedAtUs, flow: an.flow });
      else if (an.failedHandshake) t.failedHandshakes++;
      if (an.retransmit) t.retransmits++;
      if (an.gapFill) t.gapFills++;
      if (an.dataSegment) t.dataSegments++;
      if (an.echoRequest) t.echoRequests++;
      if (an.echoReply) t.echoReplies++;
      if (an.echoRttUs !== undefined) t.echoRttsUs.push(an.echoRttUs);
    }
    for (const x of late) {
      const t = this.pairTruth(pairs, windowOf(Math.min(x.atUs, lastUs)), x.src, x.dst);
      t.failedHandshakes++;
      t.flows.add(x.flow);
    }
    return { pairs, frames: list.length, bytes, undecodableByReason: reasons, flows: flows.size };
  }

  private pairTruth(pairs: Map<string, PairTruth>, w: number, src: string, dst: string): PairTruth {
    const key = pairKey(w, src, dst);
    let t = pairs.get(key);
    if (!t) {
      const [a, b] = src <= dst ? [src, dst] : [dst, src];
      t = {
        windowStartUs: w,
        a,
        b,
        aToB: { packets: 0, bytes: 0 },
        bToA: { packets: 0, bytes: 0 },
        flows: new Set(),
        handshakeRttsUs: [],
        failedHandshakes: 0,
        retransmits: 0,
        gapFills: 0,
        dataSegments: 0,
        echoRequests: 0,
        echoReplies: 0,
        echoRttsUs: [],
      };
      pairs.set(key, t);
    }
    return t;
  }
}

// ---- DecodedFrame → bytes

function macText(m: number): string {
  return formatMac(m);
}

/** Serialises what a DecodedFrame describes (as synth-flows.ts fills it) into a frame's bytes. */
export function frameBytes(f: DecodedFrame): Uint8Array {
  const vlans = Array.from(f.vlans.subarray(0, f.vlanCount));
  if (f.ipVersion === 0) {
    const body = new Uint8Array(Math.max(0, f.len - 14));
    return ether({ src: macText(f.srcMac), dst: macText(f.dstMac), vlans }, f.etherType, body);
  }
  const src = formatIp(f.ipVersion, f.srcIp);
  const dst = formatIp(f.ipVersion, f.dstIp);
  let l4: Uint8Array;
  if (f.protocol === IPPROTO_TCP) {
    const options: TcpOption[] = [];
    if (f.mss >= 0) options.push({ kind: 'mss', value: f.mss });
    if (f.sackPermitted) options.push({ kind: 'sackPermitted' });
    if (f.hasTimestamp) options.push({ kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamps', val: f.tsVal >>> 0, ecr: f.tsEcr >>> 0 });
    l4 = tcp({ sport: f.srcPort, dport: f.dstPort, seq: f.seq >>> 0, ack: f.ack >>> 0, flags: f.tcpFlags, window: f.window, options }, new Uint8Array(f.payloadLength));
  } else if (f.protocol === IPPROTO_UDP) {
    l4 = udp({ sport: f.srcPort, dport: f.dstPort }, new Uint8Array(Math.max(0, f.len - 42)));
  } else if (f.protocol === IPPROTO_ICMP || f.protocol === IPPROTO_ICMPV6) {
    l4 = icmp({ type: f.icmpType, code: f.icmpCode, id: f.icmpId, seq: f.icmpSeq }, new Uint8Array(56));
  } else {
    throw new Error(`frameBytes: protocol ${f.protocol} not supported`);
  }
  const l3 = f.ipVersion === 4 ? ipv4({ src, dst, proto: f.protocol }, l4) : ipv6({ src, dst, next: f.protocol }, l4);
  const inner = ether({ src: macText(f.srcMac), dst: macText(f.dstMac), ...(f.tunnel === Tunnel.None ? { vlans } : {}) }, f.ipVersion === 4 ? ETH_IPV4 : ETH_IPV6, l3);
  if (f.tunnel === Tunnel.None) return inner;
  if (f.tunnel !== Tunnel.Vxlan) throw new Error('frameBytes: only VXLAN tunnels');
  const [o1, o2] = f.srcMac < f.dstMac ? [OUTER_HV[0]!, OUTER_HV[1]!] : [OUTER_HV[1]!, OUTER_HV[0]!];
  return ether(
    { src: o1.mac, dst: o2.mac, vlans },
    ETH_IPV4,
    ipv4({ src: o1.ip, dst: o2.ip, proto: IPPROTO_UDP }, udp({ sport: 49152 + (f.vni & 0x3fff), dport: 4789 }, vxlan({ vni: f.vni }, inner))),
  );
}

// ---- conversations with annotated truth

export interface SessionOptions {
  sport: number;
  dport: number;
  /** TCP timestamps option on every segment. */
  ts?: boolean;
  /** Use the hosts' IPv6 addresses. */
  v6?: boolean;
  vlans?: number[];
  /** Carry the conversation in VXLAN with this VNI (the inner endpoints are the flow). */
  vni?: number;
  clientIsn?: number;
  serverIsn?: number;
}

const other = (d: Dir): Dir => (d === 'c2s' ? 's2c' : 'c2s');

/**
 * One TCP conversation written as what the hosts do; times are µs after the capture start. Every
 * method returns the time of its last frame. `done()` hands the mirrored frames to the builder.
 */
export class TcpSession {
  readonly conv: TcpConv;
  readonly flow: string;
  private readonly annots = new Map<DecodedFrame, Partial<Annot>>();

  constructor(
    private readonly cap: CaptureBuilder,
    client: Host,
    server: Host,
    o: SessionOptions,
  ) {
    const l2: L2Opts = {};
    if (o.vlans) l2.vlans = o.vlans;
    if (o.vni !== undefined) {
      l2.vni = o.vni;
      l2.tunnel = Tunnel.Vxlan;
    }
    this.conv = new TcpConv(endpoint(client, o.v6 === true, o.sport), endpoint(server, o.v6 === true, o.dport), {
      ts: o.ts === true,
      l2,
      clientIsn: o.clientIsn ?? 1_000_000 + o.sport * 7919,
      serverIsn: o.serverIsn ?? 3_000_000_000 + o.dport * 104729 + o.sport,
    });
    this.flow = `tcp ${client.mac}/${o.v6 ? client.ip6 : client.ip}:${o.sport} ${server.mac}/${o.v6 ? server.ip6 : server.ip}:${o.dport} vlan=${(o.vlans ?? []).join('.')} vni=${o.vni ?? ''}`;
  }

  private note(f: DecodedFrame, a: Partial<Annot>): DecodedFrame {
    this.annots.set(f, { ...this.annots.get(f), ...a });
    return f;
  }

  private data(dir: Dir, tUs: number, bytes: number, o: Parameters<TcpConv['data']>[3] = {}): DecodedFrame {
    return this.note(this.conv.data(dir, tUs * US, bytes, o), { dataSegment: true });
  }

  /** SYN (and `synRetries` resends every retryGapUs), SYN/ACK serverUs after the last SYN, ACK clientUs later. */
  handshake(tUs: number, serverUs: number, clientUs: number, synRetries = 0, retryGapUs = 1_000_000): number {
    let t = tUs;
    this.conv.syn(t * US);
    for (let i = 0; i < synRetries; i++) {
      t += retryGapUs;
      this.conv.syn(t * US);
    }
    this.conv.synAck((t + serverUs) * US);
    this.note(this.conv.ack3((t + serverUs + clientUs) * US), { handshakeRttUs: serverUs + clientUs });
    return t + serverUs + clientUs;
  }

  /** The client's request, the server's response serverUs later (acking it), the client's ACK ackUs later. */
  request(tUs: number, reqBytes: number, respBytes: number, serverUs = 150, ackUs = 40): number {
    this.data('c2s', tUs, reqBytes);
    this.data('s2c', tUs + serverUs, respBytes);
    this.conv.ack('c2s', (tUs + serverUs + ackUs) * US);
    return tUs + serverUs + ackUs;
  }

  /** A bulk transfer of n segments from dir, every gapUs, acked every second segment. */
  bulk(tUs: number, dir: Dir, n: number, segBytes: number, gapUs = 20): number {
    let t = tUs;
    for (let i = 0; i < n; i++) {
      this.data(dir, t, segBytes);
      if (i % 2 === 1 || i === n - 1) this.conv.ack(other(dir), (t + 5) * US);
      t += gapUs;
    }
    return t;
  }

  /** Lost AFTER the mirror: a segment, no ACK, the same segment again rtoUs later (a retransmit), then its ACK. */
  retransmitAfterRto(tUs: number, dir: Dir, bytes: number, rtoUs = 200_000): number {
    const seq = this.conv.nxt[dir];
    this.data(dir, tUs, bytes);
    this.note(this.data(dir, tUs + rtoUs, bytes, { seq }), { retransmit: true });
    this.conv.ack(other(dir), (tUs + rtoUs + 100) * US);
    return tUs + rtoUs + 100;
  }

  /**
   * Lost AFTER the mirror, fast retransmit: n segments seen, the receiver's three duplicate ACKs
   * for the first, the first again (a retransmit), the cumulative ACK.
   */
  fastRetransmitAfterMirror(tUs: number, dir: Dir, n: number, segBytes: number): number {
    const first = this.conv.nxt[dir];
    let t = tUs;
    for (let i = 0; i < n; i++, t += 10) this.data(dir, t, segBytes);
    for (let i = 0; i < 3; i++, t += 30) this.conv.ack(other(dir), t * US, { ack: first });
    this.note(this.data(dir, t, segBytes, { seq: first }), { retransmit: true });
    t += 100;
    this.conv.ack(other(dir), t * US);
    return t;
  }

  /**
   * Lost BEFORE the mirror, fast retransmit: the first of n segments never reaches the mirror, the
   * receiver's (already sent) ACK for it repeats three times, the resend fills the hole (a gap fill).
   */
  lossBeforeMirrorFast(tUs: number, dir: Dir, n: number, segBytes: number): number {
    const first = this.conv.nxt[dir];
    let t = tUs;
    this.conv.data(dir, t * US, segBytes, { mirrored: false });
    t += 10;
    for (let i = 1; i < n; i++, t += 10) this.data(dir, t, segBytes);
    for (let i = 0; i < 3; i++, t += 30) this.conv.ack(other(dir), t * US, { ack: first });
    this.note(this.data(dir, t, segBytes, { seq: first }), { gapFill: true });
    t += 100;
    this.conv.ack(other(dir), t * US);
    return t;
  }

  /** Lost BEFORE the mirror, resent after a timeout: one dup ACK only, the resend rtoUs later (a gap fill). */
  lossBeforeMirrorRto(tUs: number, dir: Dir, segBytes: number, rtoUs = 250_000): number {
    const first = this.conv.nxt[dir];
    this.conv.data(dir, tUs * US, segBytes, { mirrored: false });
    this.data(dir, tUs + 10, segBytes);
    this.conv.ack(other(dir), (tUs + 60) * US, { ack: first });
    this.note(this.data(dir, tUs + rtoUs, segBytes, { seq: first }), { gapFill: true });
    this.conv.ack(other(dir), (tUs + rtoUs + 100) * US);
    return tUs + rtoUs + 100;
  }

  /** Reordering without loss: the second segment first, the first `swapUs` later, then the ACK. */
  reorder(tUs: number, dir: Dir, b1: number, b2: number, swapUs = 4, withDupAck = false): number {
    const s1 = this.conv.nxt[dir];
    this.data(dir, tUs, b2, { seq: (s1 + b1) >>> 0 });
    this.data(dir, tUs + swapUs, b1, { seq: s1 });
    let t = tUs + swapUs + 50;
    if (withDupAck) {
      this.conv.ack(other(dir), t * US, { ack: s1 });
      t += 10;
    }
    this.conv.ack(other(dir), t * US);
    return t;
  }

  /** A keep-alive (0 or 1 byte at nxt − 1) from dir and the peer's ACK. */
  keepAlive(tUs: number, dir: Dir, bytes: 0 | 1): number {
    this.conv.keepAlive(dir, tUs * US, bytes);
    this.conv.ack(other(dir), (tUs + 80) * US);
    return tUs + 80;
  }

  /**
   * A zero window: the receiver (peer of dir) advertises 0, dir sends 1-byte probes, the receiver
   * answers with window 0 (acking the probe byte when `accepted`, else not: the next probe repeats
   * it), then opens the window; dir sends `bytes` more (from the probe byte when it was refused).
   */
  zeroWindow(tUs: number, dir: Dir, accepted: boolean, bytes = 500): number {
    const rx = other(dir);
    let t = tUs;
    this.conv.ack(rx, t * US, { window: 0 });
    const probeSeq = this.conv.nxt[dir];
    t += 200_000;
    this.conv.data(dir, t * US, 1);
    t += 100;
    this.conv.ack(rx, t * US, { window: 0, ...(accepted ? {} : { ack: probeSeq }) });
    if (!accepted) {
      t += 400_000;
      this.conv.data(dir, t * US, 1, { seq: probeSeq });
      t += 100;
      this.conv.ack(rx, t * US, { window: 0, ack: probeSeq });
    }
    t += 300_000;
    this.conv.ack(rx, t * US, accepted ? {} : { ack: probeSeq }); // window update
    t += 100;
    if (accepted) this.data(dir, t, bytes);
    else this.data(dir, t, bytes + 1, { seq: probeSeq });
    t += 100;
    this.conv.ack(rx, t * US);
    return t;
  }

  /** FIN from the client, FIN/ACK from the server, the client's last ACK. */
  close(tUs: number, gapUs = 60): number {
    this.conv.fin('c2s', tUs * US);
    this.conv.fin('s2c', (tUs + gapUs) * US);
    this.conv.ack('c2s', (tUs + 2 * gapUs) * US);
    return tUs + 2 * gapUs;
  }

  /**
   * A SYN never answered, resent `retries` times (1 s, 2 s, 4 s … apart); the flow fails when it
   * times out, idleTimeoutUs after the last SYN.
   */
  synUnanswered(tUs: number, retries: number, idleTimeoutUs = 15_000_000): number {
    let t = tUs;
    let f = this.conv.syn(t * US);
    for (let i = 0, gap = 1_000_000; i < retries; i++, gap *= 2) {
      t += gap;
      f = this.conv.syn(t * US);
    }
    this.note(f, { failedHandshake: true, failedAtUs: this.cap.startUs + t + idleTimeoutUs });
    return t;
  }

  /** A SYN answered by RST/ACK after serverUs. */
  synRefused(tUs: number, serverUs: number): number {
    this.conv.syn(tUs * US);
    this.note(this.conv.rst('s2c', (tUs + serverUs) * US), { failedHandshake: true });
    return tUs + serverUs;
  }

  /** Hands the frames the mirror saw to the builder. */
  done(): void {
    for (const { f, tNs } of this.conv.frames) {
      this.cap.addDecoded(f, tNs, { ...this.annots.get(f), flow: this.flow });
    }
  }
}

/** ICMP echo between two hosts with one identifier; times in µs after the capture start. */
export class EchoSession {
  readonly conv: EchoConv;
  readonly flow: string;
  private readonly annots = new Map<DecodedFrame, Partial<Annot>>();

  constructor(
    private readonly cap: CaptureBuilder,
    client: Host,
    server: Host,
    id: number,
    o: { v6?: boolean } = {},
  ) {
    this.conv = new EchoConv(endpoint(client, o.v6 === true), endpoint(server, o.v6 === true), id);
    this.flow = `echo ${client.mac}/${o.v6 ? client.ip6 : client.ip} ${server.mac}/${o.v6 ? server.ip6 : server.ip} id=${id}`;
  }

  /** A request; a reply rttUs later unless rttUs is undefined (unanswered). */
  ping(tUs: number, seq: number, rttUs: number | undefined): void {
    this.annots.set(this.conv.request(tUs * US, seq), { echoRequest: true });
    if (rttUs !== undefined) this.annots.set(this.conv.reply((tUs + rttUs) * US, seq), { echoReply: true, echoRttUs: rttUs });
  }

  done(): void {
    for (const { f, tNs } of this.conv.frames) this.cap.addDecoded(f, tNs, { ...this.annots.get(f), flow: this.flow });
  }
}

/** UDP datagrams between two hosts (a flow per port pair); `sends`: [tUs, dir, payload bytes]. */
export function addUdpFlow(cap: CaptureBuilder, client: Host, server: Host, sport: number, dport: number, sends: [number, Dir, number][], o: { vlans?: number[] } = {}): void {
  const flow = `udp ${client.mac}/${client.ip}:${sport} ${server.mac}/${server.ip}:${dport} vlan=${(o.vlans ?? []).join('.')}`;
  const c = endpoint(client, false, sport);
  const s = endpoint(server, false, dport);
  for (const [tUs, dir, n] of sends) {
    const f = dir === 'c2s' ? udpFrame(c, s, n, o.vlans ? { vlans: o.vlans } : {}) : udpFrame(s, c, n, o.vlans ? { vlans: o.vlans } : {});
    cap.addDecoded(f, tUs * US, { flow });
  }
}

/** Non-IP frames (an EtherType other than IP/ARP) between two MACs; `sends`: [tUs, dir, frame bytes]. */
export function addOtherFlow(cap: CaptureBuilder, macA: string, macB: string, etherType: number, sends: [number, Dir, number][]): void {
  const flow = `ether ${macA} ${macB} type=${etherType}`;
  for (const [tUs, dir, len] of sends) {
    const [s, d] = dir === 'c2s' ? [macA, macB] : [macB, macA];
    cap.addDecoded(otherFrame(macNumber(s), macNumber(d), etherType, len), tUs * US, { flow });
  }
}

export { MS, US };
