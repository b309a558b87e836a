/**
 * IPv6 (RFC 8200) and its extension headers.
 *
 *   |ver:4 tc:8 flow label:20                  |
 *   | payload length (2)  | next hdr | hop lim  |
 *   | source address (16)                      |
 *   | destination address (16)                 |
 * Extension headers walked (next header, then their own length):
 *   0 hop-by-hop, 43 routing, 60 destination options: | next | len | … | → (len + 1) * 8 bytes
 *   44 fragment: | next | res | offset:13 res:2 M:1 | identification (4) | → 8 bytes
 *   51 AH:                                        | next | len | … | → (len + 2) * 4 bytes
 * `protocol` is the first next-header value that is not one of these (6 TCP, 17 UDP, 58 ICMPv6, 59
 * no next header, anything else: "other"). A later fragment (offset > 0) stops the walk.
 */
import { readU16, readU32 } from './bytes.js';
import { DecodeError, type DecodeErrorCode, type DecodedFrame } from './frame.js';

export const IPV6_HEADER_BYTES = 40;
/** More extension headers than this is treated as hostile. */
export const MAX_IPV6_EXTENSION_HEADERS = 8;

export function decodeIpv6(d: Uint8Array, p: number, end: number, wireEnd: number, out: DecodedFrame): DecodeErrorCode {
  out.l3Offset = p;
  if (end - p < 1) return DecodeError['ipv6-truncated'];
  if (d[p]! >>> 4 !== 6) return DecodeError['ipv6-bad-version'];
  if (end - p < IPV6_HEADER_BYTES) return DecodeError['ipv6-truncated'];
  out.ipVersion = 6;
  for (let i = 0; i < 4; i++) {
    out.srcIp[i] = readU32(d, p + 8 + 4 * i);
    out.dstIp[i] = readU32(d, p + 24 + 4 * i);
  }
  out.ttl = d[p + 7]!;
  out.ipId = 0;
  let next = d[p + 6]!;
  out.protocol = next;
  let payloadLength = readU16(d, p + 4);
  // Payload length 0 in a frame longer than 64 KiB: a jumbogram or a BIG TCP super-packet captured
  // on the host (with or without the hop-by-hop jumbo option); the frame says how long it is.
  if (payloadLength === 0 && wireEnd - p - IPV6_HEADER_BYTES > 65535) payloadLength = wireEnd - p - IPV6_HEADER_BYTES;
  if (payloadLength > wireEnd - p - IPV6_HEADER_BYTES) return DecodeError['ipv6-bad-payload-length'];
  const payloadEnd = p + IPV6_HEADER_BYTES + payloadLength;
  let q = p + IPV6_HEADER_BYTES;
  let count = 0;
  for (;;) {
    let hdrLen: number;
    if (next === 0 || next === 43 || next === 60) {
      if (payloadEnd - q < 2) return DecodeError['ipv6-bad-extension-header'];
      if (end - q < 2) return DecodeError['ipv6-truncated'];
      hdrLen = (d[q + 1]! + 1) << 3;
    } else if (next === 44) {
      hdrLen = 8;
    } else if (next === 51) {
      if (payloadEnd - q < 2) return DecodeError['ipv6-bad-extension-header'];
      if (end - q < 2) return DecodeError['ipv6-truncated'];
      hdrLen = (d[q + 1]! + 2) << 2;
    } else {
      break;
    }
    if (++count > MAX_IPV6_EXTENSION_HEADERS) return DecodeError['ipv6-too-many-extension-headers'];
    if (payloadEnd - q < hdrLen) return DecodeError['ipv6-bad-extension-header'];
    if (end - q < hdrLen) return DecodeError['ipv6-truncated'];
    const following = d[q]!;
    if (next === 44) {
      const offM = readU16(d, q + 2);
      out.fragOffset = offM & 0xfff8;
      out.moreFragments = (offM & 1) !== 0;
      out.ipId = readU32(d, q + 4);
    }
    next = following;
    out.protocol = next;
    q += hdrLen;
    if (out.fragOffset > 0) break;
  }
  out.l4Offset = q;
  out.l4Length = payloadEnd - q;
  return DecodeError.ok;
}
