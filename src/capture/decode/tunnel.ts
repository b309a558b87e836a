/**
 * Tunnel headers: VXLAN, Geneve, GRE. Each function reads one header and says where the inner
 * packet starts and what it is (an EtherType: 0x6558 for an Ethernet frame, 0x0800 / 0x86dd for a
 * bare IP packet); decode.ts then decodes the inner packet as the frame's flow.
 *
 * VXLAN (RFC 7348, UDP 4789), 8 bytes:
 *   | flags (I = 0x08) | reserved (3) | VNI (3) | reserved |              → inner Ethernet
 * Geneve (RFC 8926, UDP 6081), 8 bytes + options:
 *   |ver:2 opt len:6| O:1 C:1 rsv:6 | protocol type (2) | VNI (3) | rsv |
 *   | options (opt len * 4) …                                          → inner by protocol type
 * GRE (RFC 2784 / 2890), version 0 only:
 *   |C R K S s recur:3 | flags:5 ver:3 | protocol type (2) |
 *   | checksum (2) | offset (2) |   if C or R
 *   | key (4) |                     if K (kept as the VNI)
 *   | sequence (4) |                if S
 *   (R — source routing — is obsolete and reported as 'gre-unsupported')
 *   protocol 0x6558 → inner Ethernet, 0x0800 / 0x86dd → inner IP,
 *   0x88be ERSPAN I (no S bit: Ethernet follows) / II (S bit: | ver=1:4 vlan:12 | cos:3 en:2 t:1 session:10 | rsv:12 index:20 |),
 *   0x22eb ERSPAN III (| ver=2:4 vlan:12 | cos bso t session | timestamp (4) | sgt (2) | P ft:5 hw:6 D gra:2 O |
 *   [+ 8-byte platform sub-header when O]; frame type 0 = Ethernet).
 */
import { readU16, readU24, readU32 } from './bytes.js';
import { DecodeError, type DecodeErrorCode } from './frame.js';

export const UDP_PORT_VXLAN = 4789;
export const UDP_PORT_GENEVE = 6081;

/** Where a tunnel's inner packet starts; filled by the functions below (reused, no allocation). */
export class TunnelHeader {
  innerOffset = 0;
  /** EtherType of the inner packet (0x6558 Ethernet, 0x0800 IPv4, 0x86dd IPv6). */
  innerType = 0;
  /** VNI or GRE key, -1 when the header carries none. */
  vni = -1;
}

export const INNER_ETHERNET = 0x6558;
/** ERSPAN (port mirroring over GRE): type I/II and type III. The mirrored frame is decoded as the inner frame. */
export const GRE_PROTO_ERSPAN_2 = 0x88be;
export const GRE_PROTO_ERSPAN_3 = 0x22eb;

export function decodeVxlan(d: Uint8Array, p: number, end: number, t: TunnelHeader): DecodeErrorCode {
  if (end - p < 8) return DecodeError['tunnel-truncated'];
  t.vni = readU24(d, p + 4);
  t.innerType = INNER_ETHERNET;
  t.innerOffset = p + 8;
  return DecodeError.ok;
}

export function decodeGeneve(d: Uint8Array, p: number, end: number, t: TunnelHeader): DecodeErrorCode {
  if (end - p < 8) return DecodeError['tunnel-truncated'];
  const b0 = d[p]!;
  t.vni = readU24(d, p + 4);
  if (b0 >>> 6 !== 0) return DecodeError['tunnel-unsupported'];
  const hdr = 8 + ((b0 & 0x3f) << 2);
  if (end - p < hdr) return DecodeError['tunnel-truncated'];
  t.innerType = readU16(d, p + 2);
  t.innerOffset = p + hdr;
  return DecodeError.ok;
}

export function decodeGre(d: Uint8Array, p: number, end: number, t: TunnelHeader): DecodeErrorCode {
  if (end - p < 4) return DecodeError['tunnel-truncated'];
  const flags = readU16(d, p);
  t.vni = -1;
  if ((flags & 0x0007) !== 0 || (flags & 0x4000) !== 0) return DecodeError['gre-unsupported'];
  let q = p + 4;
  if (flags & 0x8000) q += 4;
  if (flags & 0x2000) {
    if (end - q < 4) return DecodeError['tunnel-truncated'];
    t.vni = readU32(d, q);
    q += 4;
  }
  if (flags & 0x1000) q += 4;
  if (end - q < 0) return DecodeError['tunnel-truncated'];
  const proto = readU16(d, p + 2);
  if (proto === GRE_PROTO_ERSPAN_2) {
    // type I has no sequence number and no ERSPAN header; type II has both (8-byte header, version 1)
    if (flags & 0x1000) {
      if (end - q < 8) return DecodeError['tunnel-truncated'];
      if (d[q]! >>> 4 !== 1) return DecodeError['tunnel-unsupported'];
      q += 8;
    }
    t.innerType = INNER_ETHERNET;
  } else if (proto === GRE_PROTO_ERSPAN_3) {
    // 12-byte header (version 2), + 8-byte platform sub-header when O is set; frame type 0 = Ethernet
    if (end - q < 12) return DecodeError['tunnel-truncated'];
    if (d[q]! >>> 4 !== 2 || ((d[q + 10]! >>> 2) & 0x1f) !== 0) return DecodeError['tunnel-unsupported'];
    q += d[q + 11]! & 1 ? 20 : 12;
    if (end - q < 0) return DecodeError['tunnel-truncated'];
    t.innerType = INNER_ETHERNET;
  } else {
    t.innerType = proto;
  }
  t.innerOffset = q;
  return DecodeError.ok;
}
