/**
 * The result of decoding one frame: a scratch object the decoders fill in place and the caller
 * reuses for every frame (no allocation per frame). Only fields of the layers present are
 * meaningful; `reset()` clears the flags that say which layers are present.
 *
 * Addresses are numbers, never strings, on the hot path: a MAC is a 48-bit integer (exact in a
 * double), an IPv4 address a uint32 in ip[0], an IPv6 address four uint32 words (network order,
 * most significant first). Helpers at the bottom format them for output.
 *
 * When a frame is tunnelled (VXLAN, Geneve, GRE), the L2–L4 fields describe the INNER frame (that is
 * the flow users care about) and `tunnel`/`vni` say how it was carried; the outer addresses are kept
 * in outerSrcIp/outerDstIp.
 */

/** Why a frame could not be decoded (counted per reason; the frame is skipped). */
export const DecodeError = {
  ok: 0,
  'truncated-ethernet': 1,
  'truncated-vlan': 2,
  'vlan-too-deep': 3,
  'truncated-arp': 4,
  'ipv4-truncated': 5,
  'ipv4-bad-version': 6,
  'ipv4-bad-header-length': 7,
  'ipv4-bad-total-length': 8,
  'ipv6-truncated': 9,
  'ipv6-bad-version': 10,
  'ipv6-bad-payload-length': 11,
  'ipv6-bad-extension-header': 12,
  'ipv6-too-many-extension-headers': 13,
  'tcp-truncated': 14,
  'tcp-bad-header-length': 15,
  'tcp-bad-option': 16,
  'udp-truncated': 17,
  'udp-bad-length': 18,
  'icmp-truncated': 19,
  'icmpv6-truncated': 20,
  'tunnel-truncated': 21,
  'tunnel-too-deep': 22,
  'gre-unsupported': 23,
  /** The source's link type is not one the decoder knows (only Ethernet, raw IP and Linux SLL are). */
  'unsupported-linktype': 24,
  /** Linux cooked (SLL) header shorter than 16 bytes. */
  'truncated-sll': 25,
  /** Raw-IP link type whose first nibble is neither 4 nor 6. */
  'raw-bad-version': 26,
  /** Geneve with a version other than 0, or a Geneve/VXLAN/GRE inner protocol the decoder does not know. */
  'tunnel-unsupported': 27,
} as const;
export type DecodeErrorName = keyof typeof DecodeError;
export type DecodeErrorCode = (typeof DecodeError)[DecodeErrorName];
export const DECODE_ERROR_NAMES: readonly DecodeErrorName[] = (() => {
  const names: DecodeErrorName[] = [];
  for (const [k, v] of Object.entries(DecodeError)) names[v] = k as DecodeErrorName;
  return names;
})();

export const Tunnel = { None: 0, Vxlan: 1, Geneve: 2, Gre: 3 } as const;
export type Tunnel = (typeof Tunnel)[keyof typeof Tunnel];

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_GRE = 47;
export const IPPROTO_ICMPV6 = 58;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

export const MAX_VLANS = 4;

export class DecodedFrame {
  // ---- capture metadata (set by the source, not the decoder)
  /** Seconds and nanoseconds of the capture timestamp. */
  tsSec = 0;
  tsNsec = 0;
  /** Length on the wire and bytes captured (caplen ≤ len when cut by snaplen). */
  len = 0;
  caplen = 0;
  /** Interface index within the source (pcapng), 0 otherwise. */
  ifIndex = 0;

  // ---- decode status
  /** 0 (ok) or a DecodeError code; fields of layers below the failing one are still valid. */
  error: DecodeErrorCode = 0;

  // ---- L2
  /** True once the link header (Ethernet or SLL) was read: srcMac/dstMac/vlans are valid. */
  hasL2 = false;
  srcMac = 0;
  dstMac = 0;
  /** VLAN IDs, outermost first (802.1ad S-tag, then 802.1Q C-tags). */
  readonly vlans = new Uint16Array(MAX_VLANS);
  vlanCount = 0;
  /** EtherType after the VLAN tags (0x0800 IPv4, 0x86dd IPv6, 0x0806 ARP, other: "other" traffic). */
  etherType = 0;

  // ---- ARP (etherType 0x0806)
  arpOp = 0;
  arpSenderIp = 0;
  arpTargetIp = 0;

  // ---- L3
  /** 0 when the frame carries no IP, else 4 or 6. */
  ipVersion = 0;
  readonly srcIp = new Uint32Array(4);
  readonly dstIp = new Uint32Array(4);
  /** IP protocol / IPv6 next header after the extension headers (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6…). */
  protocol = 0;
  ttl = 0;
  /** IPv4 identification, or the IPv6 fragment header's identification. */
  ipId = 0;
  /** Fragment offset in bytes; > 0 for a later fragment (no L4 header in it). */
  fragOffset = 0;
  moreFragments = false;
  /** Byte offset of the L3 header in the frame, and of the L4 header. */
  l3Offset = 0;
  l4Offset = 0;
  /** Bytes of L4 payload the IP header announces (may exceed what was captured). */
  l4Length = 0;

  // ---- L4
  /** True once the TCP/UDP/ICMP/ICMPv6 header was read (ports or ICMP type/code are valid). */
  hasL4 = false;
  srcPort = 0;
  dstPort = 0;
  tcpFlags = 0;
  /** TCP sequence and acknowledgement numbers (uint32). */
  seq = 0;
  ack = 0;
  window = 0;
  /** TCP payload bytes (from the IP lengths, not from what was captured). */
  payloadLength = 0;
  /** TCP options: -1 when absent. */
  mss = -1;
  windowScale = -1;
  sackPermitted = false;
  sackBlocks = 0;
  hasTimestamp = false;
  tsVal = 0;
  tsEcr = 0;
  icmpType = -1;
  icmpCode = -1;
  /** ICMP/ICMPv6 echo identifier and sequence (-1 when not an echo). */
  icmpId = -1;
  icmpSeq = -1;

  // ---- tunnel
  tunnel: Tunnel = Tunnel.None;
  /** VXLAN/Geneve VNI or GRE key; -1 when none. */
  vni = -1;
  outerIpVersion = 0;
  readonly outerSrcIp = new Uint32Array(4);
  readonly outerDstIp = new Uint32Array(4);

  /** Clears per-frame state; call before decoding the next frame into this object. */
  reset(): void {
    this.error = 0;
    this.hasL2 = false;
    this.hasL4 = false;
    this.srcMac = 0;
    this.dstMac = 0;
    this.vlanCount = 0;
    this.etherType = 0;
    this.arpOp = 0;
    this.ipVersion = 0;
    this.protocol = 0;
    this.fragOffset = 0;
    this.moreFragments = false;
    this.l4Offset = 0;
    this.l4Length = 0;
    this.srcPort = 0;
    this.dstPort = 0;
    this.tcpFlags = 0;
    this.payloadLength = 0;
    this.mss = -1;
    this.windowScale = -1;
    this.sackPermitted = false;
    this.sackBlocks = 0;
    this.hasTimestamp = false;
    this.icmpType = -1;
    this.icmpCode = -1;
    this.icmpId = -1;
    this.icmpSeq = -1;
    this.tunnel = Tunnel.None;
    this.vni = -1;
    this.outerIpVersion = 0;
  }
}

// ---- formatting helpers (off the hot path)

const HEX2: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function formatMac(mac: number): string {
  const hi = Math.floor(mac / 4294967296);
  const lo = mac >>> 0;
  return `${HEX2[(hi >>> 8) & 255]}:${HEX2[hi & 255]}:${HEX2[lo >>> 24]}:${HEX2[(lo >>> 16) & 255]}:${HEX2[(lo >>> 8) & 255]}:${HEX2[lo & 255]}`;
}

export function formatIpv4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

/** RFC 5952 text of an IPv6 address given as four uint32 words. */
export function formatIpv6(w: ArrayLike<number>): string {
  const groups: number[] = [];
  for (let i = 0; i < 4; i++) groups.push((w[i]! >>> 16) & 0xffff, w[i]! & 0xffff);
  // longest run of ≥2 zero groups, first one on ties
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}

export function formatIp(version: number, w: ArrayLike<number>): string {
  return version === 4 ? formatIpv4(w[0]!) : formatIpv6(w);
}
