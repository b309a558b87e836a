/**
 * One decoded frame as the JSON object `mirrorflow decode` prints (off the hot path).
 *
 * Fields, in this order, each left out when it does not apply:
 *   frame     1-based frame number in the file
 *   tsUs      capture time, integer microseconds since the epoch (nanosecond captures are truncated
 *             towards zero; the exact value is tsSec * 1e6 + floor(tsNsec / 1000))
 *   len, caplen
 *   ifIndex   interface (pcapng files with several interfaces only; omitted when 0)
 *   srcMac, dstMac, vlans (outermost first; only when tagged), etherType (number)
 *   arpOp, arpSenderIp, arpTargetIp (ARP)
 *   ipVersion, srcIp, dstIp, protocol, fragOffset (later fragments only)
 *   srcPort, dstPort, tcpFlags (number, FIN 0x01 … CWR 0x80) for TCP/UDP
 *   icmpType, icmpCode (ICMP / ICMPv6)
 *   tunnel ('vxlan' | 'geneve' | 'gre'), vni (VNI or GRE key, when the header has one),
 *   outerSrcIp, outerDstIp: when tunnelled, every field above describes the INNER frame
 *   error     the reason name, only for a frame that could not be decoded in full
 */
import { DECODE_ERROR_NAMES, formatIp, formatIpv4, formatMac, IPPROTO_TCP, IPPROTO_UDP, Tunnel, type DecodedFrame } from './decode/frame.js';

export interface DecodedFrameJson {
  frame: number;
  tsUs: number;
  len: number;
  caplen: number;
  ifIndex?: number;
  srcMac?: string;
  dstMac?: string;
  vlans?: number[];
  etherType?: number;
  arpOp?: number;
  arpSenderIp?: string;
  arpTargetIp?: string;
  ipVersion?: number;
  srcIp?: string;
  dstIp?: string;
  protocol?: number;
  fragOffset?: number;
  srcPort?: number;
  dstPort?: number;
  tcpFlags?: number;
  icmpType?: number;
  icmpCode?: number;
  tunnel?: 'vxlan' | 'geneve' | 'gre';
  vni?: number;
  outerSrcIp?: string;
  outerDstIp?: string;
  error?: string;
}

const TUNNEL_NAMES = ['', 'vxlan', 'geneve', 'gre'] as const;

export function frameToJson(frameNumber: number, f: DecodedFrame): DecodedFrameJson {
  const o: DecodedFrameJson = { frame: frameNumber, tsUs: f.tsSec * 1_000_000 + Math.floor(f.tsNsec / 1000), len: f.len, caplen: f.caplen };
  if (f.ifIndex) o.ifIndex = f.ifIndex;
  if (f.hasL2) {
    o.srcMac = formatMac(f.srcMac);
    o.dstMac = formatMac(f.dstMac);
    if (f.vlanCount > 0) o.vlans = Array.from(f.vlans.subarray(0, f.vlanCount));
  }
  if (f.hasL2 || f.etherType) o.etherType = f.etherType;
  if (f.etherType === 0x0806 && f.arpOp) {
    o.arpOp = f.arpOp;
    o.arpSenderIp = formatIpv4(f.arpSenderIp);
    o.arpTargetIp = formatIpv4(f.arpTargetIp);
  }
  if (f.ipVersion) {
    o.ipVersion = f.ipVersion;
    o.srcIp = formatIp(f.ipVersion, f.srcIp);
    o.dstIp = formatIp(f.ipVersion, f.dstIp);
    o.protocol = f.protocol;
    if (f.fragOffset > 0) o.fragOffset = f.fragOffset;
  }
  if (f.hasL4) {
    if (f.protocol === IPPROTO_TCP || f.protocol === IPPROTO_UDP) {
      o.srcPort = f.srcPort;
      o.dstPort = f.dstPort;
      if (f.protocol === IPPROTO_TCP) o.tcpFlags = f.tcpFlags;
    } else {
      o.icmpType = f.icmpType;
      o.icmpCode = f.icmpCode;
    }
  }
  if (f.tunnel !== Tunnel.None) {
    o.tunnel = TUNNEL_NAMES[f.tunnel] as 'vxlan' | 'geneve' | 'gre';
    if (f.vni >= 0) o.vni = f.vni;
    o.outerSrcIp = formatIp(f.outerIpVersion, f.outerSrcIp);
    o.outerDstIp = formatIp(f.outerIpVersion, f.outerDstIp);
  }
  if (f.error) o.error = DECODE_ERROR_NAMES[f.error];
  return o;
}
