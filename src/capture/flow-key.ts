/**
 * Numeric flow keys: a bidirectional key is packed into seven uint32 words (plus eight IPv6 address
 * words kept aside) and hashed into one uint32. No strings on the hot path.
 *
 * The key is stored in CANONICAL order (the "low" endpoint first: smaller address, then smaller
 * port), so both directions of a conversation build the same words; `srcIsLow` says which side
 * the frame came from. The flow table stores separately which endpoint is the client.
 *
 *   meta   = kind << 30 | tunnel << 28 | vlanCount << 25 | protocol << 16 | low16
 *            kind 1 IPv4, 2 IPv6, 3 other (non-IP); low16 = EtherType for "other", else FLAG_* bits
 *   vlan01 = vlan[0] << 16 | vlan[1];  vlan23 = vlan[2] << 16 | vlan[3]
 *   vni    = VNI / GRE key (0 when not tunnelled; the tunnel type in meta tells them apart)
 *   a, b   = IPv4: low and high address; IPv6: (words in `lowIp`/`highIp`); other: low 32 bits
 *            of the low and high MAC
 *   ports  = lowPort << 16 | highPort; ICMP echo: identifier in both halves; other ICMP:
 *            type << 8 | code; other: the MACs' high 16 bits (low << 16 | high)
 */
import type { DecodedFrame } from './decode/frame.js';

// Local copies (decode/frame.ts): imported bindings cost a getter call per access under tsx.
const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ICMPV6 = 58;

export const KIND_IPV4 = 1;
export const KIND_IPV6 = 2;
export const KIND_OTHER = 3;

/** meta low16 flags for IP flows. */
export const FLAG_ICMP_ECHO = 1;
export const FLAG_ICMP_OTHER = 2;
export const FLAG_FRAGMENTS_ONLY = 4;

const IPPROTO_SCTP = 132;
const IPPROTO_UDPLITE = 136;
const IPPROTO_DCCP = 33;

/** True for IP protocols whose first four L4 bytes are source and destination ports. */
export function hasPorts(protocol: number): boolean {
  return (
    protocol === IPPROTO_TCP ||
    protocol === IPPROTO_UDP ||
    protocol === IPPROTO_SCTP ||
    protocol === IPPROTO_UDPLITE ||
    protocol === IPPROTO_DCCP
  );
}

export function isIcmp(protocol: number): boolean {
  return protocol === IPPROTO_ICMP || protocol === IPPROTO_ICMPV6;
}

/** ICMP echo request types (ICMP 8, ICMPv6 128). */
export function isEchoRequest(protocol: number, type: number): boolean {
  return protocol === IPPROTO_ICMP ? type === 8 : type === 128;
}

/** Scratch for one frame's key; reused for every frame. */
export class KeyScratch {
  meta = 0;
  vlan01 = 0;
  vlan23 = 0;
  vni = 0;
  a = 0;
  b = 0;
  ports = 0;
  hash = 0;
  /** The frame's sender is the canonical low endpoint. */
  srcIsLow = true;
  readonly lowIp = new Uint32Array(4);
  readonly highIp = new Uint32Array(4);
}

// ---- hashing (murmur3-style mixing of 32-bit words)

export function mixWord(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

export function finishHash(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const TWO32 = 4294967296;

/**
 * Fills `k` with the key of frame `f`. `fragmentsOnly`: a later IP fragment whose first fragment
 * is unknown (keyed by addresses + protocol, ports 0, flagged). Returns false for frames that
 * cannot be keyed (never happens for decoded frames; kept for safety).
 */
export function buildFlowKey(f: DecodedFrame, k: KeyScratch, fragmentsOnly: boolean): boolean {
  const vc = f.vlanCount;
  const vl = f.vlans;
  k.vlan01 = ((vc > 0 ? vl[0]! : 0) << 16) | (vc > 1 ? vl[1]! : 0);
  k.vlan23 = ((vc > 2 ? vl[2]! : 0) << 16) | (vc > 3 ? vl[3]! : 0);
  k.vlan01 >>>= 0;
  k.vlan23 >>>= 0;
  const tunnel = f.tunnel;
  k.vni = tunnel !== 0 && f.vni >= 0 ? f.vni >>> 0 : 0;
  const base = ((tunnel & 3) << 28) | ((vc & 7) << 25);
  const ver = f.ipVersion;
  let h = 0x9747b28c;
  if (ver === 4 || ver === 6) {
    const proto = f.protocol & 255;
    let low16 = 0;
    let sp = 0;
    let dp = 0;
    if (fragmentsOnly) low16 = FLAG_FRAGMENTS_ONLY;
    else if (hasPorts(proto)) {
      sp = f.srcPort;
      dp = f.dstPort;
    } else if (isIcmp(proto)) {
      if (f.icmpId >= 0) {
        low16 = FLAG_ICMP_ECHO;
        sp = dp = f.icmpId & 0xffff;
      } else {
        low16 = FLAG_ICMP_OTHER;
        sp = dp = ((f.icmpType & 255) << 8) | (f.icmpCode & 255);
      }
    }
    if (ver === 4) {
      k.meta = ((KIND_IPV4 << 30) | base | (proto << 16) | low16) >>> 0;
      const s = f.srcIp[0]! >>> 0;
      const d = f.dstIp[0]! >>> 0;
      const srcIsLow = s < d || (s === d && sp <= dp);
      k.srcIsLow = srcIsLow;
      if (srcIsLow) {
        k.a = s;
        k.b = d;
        k.ports = ((sp << 16) | dp) >>> 0;
      } else {
        k.a = d;
        k.b = s;
        k.ports = ((dp << 16) | sp) >>> 0;
      }
      h = mixWord(h, k.a);
      h = mixWord(h, k.b);
    } else {
      k.meta = ((KIND_IPV6 << 30) | base | (proto << 16) | low16) >>> 0;
      const s = f.srcIp;
      const d = f.dstIp;
      let cmp = 0;
      for (let i = 0; i < 4 && cmp === 0; i++) {
        const x = s[i]! >>> 0;
        const y = d[i]! >>> 0;
        cmp = x < y ? -1 : x > y ? 1 : 0;
      }
      const srcIsLow = cmp < 0 || (cmp === 0 && sp <= dp);
      k.srcIsLow = srcIsLow;
      const lo = srcIsLow ? s : d;
      const hi = srcIsLow ? d : s;
      const L = k.lowIp;
      const H = k.highIp;
      for (let i = 0; i < 4; i++) {
        L[i] = lo[i]!;
        H[i] = hi[i]!;
        h = mixWord(h, L[i]!);
      }
      for (let i = 0; i < 4; i++) h = mixWord(h, H[i]!);
      k.a = 0;
      k.b = 0;
      k.ports = srcIsLow ? ((sp << 16) | dp) >>> 0 : ((dp << 16) | sp) >>> 0;
    }
  } else {
    // non-IP: L2 addresses + EtherType
    k.meta = ((KIND_OTHER << 30) | base | (f.etherType & 0xffff)) >>> 0;
    const s = f.srcMac;
    const d = f.dstMac;
    const srcIsLow = s <= d;
    k.srcIsLow = srcIsLow;
    const lo = srcIsLow ? s : d;
    const hi = srcIsLow ? d : s;
    k.a = lo >>> 0;
    k.b = hi >>> 0;
    k.ports = (((Math.floor(lo / TWO32) & 0xffff) << 16) | (Math.floor(hi / TWO32) & 0xffff)) >>> 0;
    h = mixWord(h, k.a);
    h = mixWord(h, k.b);
  }
  h = mixWord(h, k.meta);
  h = mixWord(h, k.ports);
  h = mixWord(h, k.vni);
  h = mixWord(h, k.vlan01);
  h = mixWord(h, k.vlan23);
  k.hash = finishHash(h);
  return true;
}

/** Hash of an IP fragment's identity (src, dst, protocol, IP ID) — directional. */
export function fragmentHash(f: DecodedFrame): number {
  let h = 0x3c6ef372;
  h = mixWord(h, (f.ipVersion << 8) | (f.protocol & 255));
  h = mixWord(h, f.ipId >>> 0);
  const n = f.ipVersion === 6 ? 4 : 1;
  for (let i = 0; i < n; i++) h = mixWord(h, f.srcIp[i]!);
  for (let i = 0; i < n; i++) h = mixWord(h, f.dstIp[i]!);
  return finishHash(h);
}

/** A 48-bit MAC from its high 16 and low 32 bits. */
export function macFromParts(hi16: number, lo32: number): number {
  return (hi16 & 0xffff) * TWO32 + (lo32 >>> 0);
}

export function macHigh16(mac: number): number {
  return Math.floor(mac / TWO32) & 0xffff;
}
