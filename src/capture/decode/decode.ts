/**
 * Frame decoding entry point: link layer → VLANs → ARP / IPv4 / IPv6 → TCP / UDP / ICMP, and
 * through VXLAN, Geneve and GRE into the inner packet. Zero-copy and allocation-free: every layer
 * reads the buffer by index and writes into the caller's DecodedFrame. Nothing here throws on
 * packet bytes: every length is checked against the captured end (`end`) and the length on the
 * wire (`wireEnd`), and a frame that cannot be decoded returns a reason code with the fields of
 * the layers before the failure still set.
 */
import { decodeArp } from './arp.js';
import { decodeEthernet, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from './ethernet.js';
import { DecodeError, IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, Tunnel, type DecodeErrorCode, type DecodedFrame } from './frame.js';
import { decodeIcmp, decodeIcmpv6 } from './icmp.js';
import { decodeIpv4 } from './ipv4.js';
import { decodeIpv6 } from './ipv6.js';
import { decodeSll } from './sll.js';
import { decodeTcp } from './tcp.js';
import { decodeGeneve, decodeGre, decodeVxlan, INNER_ETHERNET, TunnelHeader, UDP_PORT_GENEVE, UDP_PORT_VXLAN } from './tunnel.js';
import { decodeUdp, UDP_HEADER_BYTES } from './udp.js';

import { LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_RAW } from '../source.js';

export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;

/** Tunnels inside tunnels deeper than this are 'tunnel-too-deep'. */
export const MAX_TUNNEL_DEPTH = 2;

const tunnelHeader = new TunnelHeader();

/**
 * Decodes frame `data[offset .. offset + caplen)` (`len` bytes on the wire) of link type
 * `linkType` into `out` (reset first; len/caplen set; the timestamp and ifIndex are the caller's).
 * Returns out.error: 0 or a DecodeError code.
 */
export function decodeFrame(
  data: Uint8Array,
  offset: number,
  caplen: number,
  len: number,
  linkType: number,
  out: DecodedFrame,
): DecodeErrorCode {
  out.reset();
  out.len = len;
  out.caplen = caplen;
  let end = offset + caplen;
  if (end > data.length) end = data.length;
  if (offset > end) offset = end;
  const wireEnd = offset + (len > caplen ? len : caplen);
  let r: DecodeErrorCode;
  if (linkType === LINKTYPE_ETHERNET) {
    r = decodeEthernetFrame(data, offset, end, wireEnd, out, 0);
  } else if (linkType === LINKTYPE_LINUX_SLL) {
    r = decodeSll(data, offset, end, out);
    if (r === DecodeError.ok) r = decodeL3(data, out.l3Offset, end, wireEnd, out, 0, out.etherType);
  } else if (linkType === LINKTYPE_RAW || linkType === LINKTYPE_IPV4 || linkType === LINKTYPE_IPV6) {
    r = decodeRawIp(data, offset, end, wireEnd, out);
  } else {
    r = DecodeError['unsupported-linktype'];
  }
  out.error = r;
  return r;
}

function decodeRawIp(d: Uint8Array, p: number, end: number, wireEnd: number, out: DecodedFrame): DecodeErrorCode {
  out.l3Offset = p;
  if (end - p < 1) return DecodeError['ipv4-truncated'];
  const version = d[p]! >>> 4;
  if (version === 4) out.etherType = ETHERTYPE_IPV4;
  else if (version === 6) out.etherType = ETHERTYPE_IPV6;
  else return DecodeError['raw-bad-version'];
  return decodeL3(d, p, end, wireEnd, out, 0, out.etherType);
}

function decodeEthernetFrame(d: Uint8Array, p: number, end: number, wireEnd: number, out: DecodedFrame, depth: number): DecodeErrorCode {
  const r = decodeEthernet(d, p, end, out);
  if (r !== DecodeError.ok) return r;
  return decodeL3(d, out.l3Offset, end, wireEnd, out, depth, out.etherType);
}

function decodeL3(d: Uint8Array, p: number, end: number, wireEnd: number, out: DecodedFrame, depth: number, etherType: number): DecodeErrorCode {
  let r: DecodeErrorCode;
  if (etherType === ETHERTYPE_IPV4) {
    r = decodeIpv4(d, p, end, wireEnd, out);
  } else if (etherType === ETHERTYPE_IPV6) {
    r = decodeIpv6(d, p, end, wireEnd, out);
  } else if (etherType === ETHERTYPE_ARP) {
    out.l3Offset = p;
    return decodeArp(d, p, end, out);
  } else {
    out.l3Offset = p;
    return DecodeError.ok;
  }
  if (r !== DecodeError.ok || out.fragOffset > 0) return r;
  return decodeL4(d, end, out, depth);
}

function decodeL4(d: Uint8Array, end: number, out: DecodedFrame, depth: number): DecodeErrorCode {
  const p = out.l4Offset;
  const l4End = p + out.l4Length;
  const capEnd = end < l4End ? end : l4End;
  const proto = out.protocol;
  if (proto === IPPROTO_TCP) return decodeTcp(d, p, capEnd, out);
  if (proto === IPPROTO_UDP) {
    const r = decodeUdp(d, p, capEnd, out);
    if (r !== DecodeError.ok || out.moreFragments) return r;
    const port = out.dstPort;
    if (port !== UDP_PORT_VXLAN && port !== UDP_PORT_GENEVE) return r;
    const udpEnd = p + UDP_HEADER_BYTES + out.payloadLength;
    const tEnd = capEnd < udpEnd ? capEnd : udpEnd;
    const t = port === UDP_PORT_VXLAN ? decodeVxlan(d, p + UDP_HEADER_BYTES, tEnd, tunnelHeader) : decodeGeneve(d, p + UDP_HEADER_BYTES, tEnd, tunnelHeader);
    if (t !== DecodeError.ok) return t;
    return enterTunnel(d, tEnd, udpEnd, out, depth, port === UDP_PORT_VXLAN ? Tunnel.Vxlan : Tunnel.Geneve);
  }
  if (proto === IPPROTO_ICMP) return decodeIcmp(d, p, capEnd, out);
  if (proto === IPPROTO_ICMPV6) return decodeIcmpv6(d, p, capEnd, out);
  if (proto === IPPROTO_GRE) {
    if (out.moreFragments) return DecodeError.ok;
    const t = decodeGre(d, p, capEnd, tunnelHeader);
    if (t !== DecodeError.ok) return t;
    return enterTunnel(d, capEnd, l4End, out, depth, Tunnel.Gre);
  }
  return DecodeError.ok;
}

/**
 * Moves the current L3 addresses to the outer fields, clears the per-frame state and decodes the
 * inner packet described by `tunnelHeader`. When the inner packet has no Ethernet header (IP in
 * GRE/Geneve) the outer MACs and VLANs stay.
 */
function enterTunnel(d: Uint8Array, end: number, wireEnd: number, out: DecodedFrame, depth: number, kind: Tunnel): DecodeErrorCode {
  const innerType = tunnelHeader.innerType;
  if (innerType !== INNER_ETHERNET && innerType !== ETHERTYPE_IPV4 && innerType !== ETHERTYPE_IPV6) return DecodeError['tunnel-unsupported'];
  if (depth >= MAX_TUNNEL_DEPTH) return DecodeError['tunnel-too-deep'];
  const innerOffset = tunnelHeader.innerOffset;
  const vni = tunnelHeader.vni;
  const outerVersion = out.ipVersion;
  for (let i = 0; i < 4; i++) {
    out.outerSrcIp[i] = out.srcIp[i]!;
    out.outerDstIp[i] = out.dstIp[i]!;
  }
  const hasL2 = out.hasL2;
  const srcMac = out.srcMac;
  const dstMac = out.dstMac;
  const vlanCount = out.vlanCount;
  out.reset();
  out.tunnel = kind;
  out.vni = vni;
  out.outerIpVersion = outerVersion;
  if (innerType === INNER_ETHERNET) return decodeEthernetFrame(d, innerOffset, end, wireEnd, out, depth + 1);
  out.hasL2 = hasL2;
  out.srcMac = srcMac;
  out.dstMac = dstMac;
  out.vlanCount = vlanCount;
  out.etherType = innerType;
  return decodeL3(d, innerOffset, end, wireEnd, out, depth + 1, innerType);
}
