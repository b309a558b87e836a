/**
 * IPv4 (RFC 791).
 *
 *   0          1          2          3
 *   |ver:4 ihl:4| tos      | total length (2)    |
 *   | identification (2)  |flags:3 frag off:13  |
 *   | ttl      | protocol | header checksum (2) |
 *   | source address (4)                       |
 *   | destination address (4)                  |
 *   | options (ihl*4 - 20) …                   |
 * A fragment with offset > 0 has no L4 header: protocol and ipId are set, ports stay 0.
 * The checksum is not verified.
 */
import { readU16, readU32 } from './bytes.js';
import { DecodeError, type DecodeErrorCode, type DecodedFrame } from './frame.js';

export const IPV4_MIN_HEADER_BYTES = 20;

/**
 * Decodes the IPv4 header at `p`; `end` is the end of the captured bytes and `wireEnd` the end of
 * the bytes on the wire (≥ end). Sets addresses, protocol, ttl, ipId, fragment fields, l3Offset,
 * l4Offset and l4Length (what the total length announces after the header).
 */
export function decodeIpv4(d: Uint8Array, p: number, end: number, wireEnd: number, out: DecodedFrame): DecodeErrorCode {
  out.l3Offset = p;
  if (end - p < 1) return DecodeError['ipv4-truncated'];
  const vihl = d[p]!;
  if (vihl >>> 4 !== 4) return DecodeError['ipv4-bad-version'];
  const ihlBytes = (vihl & 0x0f) << 2;
  if (ihlBytes < IPV4_MIN_HEADER_BYTES) return DecodeError['ipv4-bad-header-length'];
  if (end - p < IPV4_MIN_HEADER_BYTES) return DecodeError['ipv4-truncated'];
  out.ipVersion = 4;
  out.srcIp[0] = readU32(d, p + 12);
  out.dstIp[0] = readU32(d, p + 16);
  out.protocol = d[p + 9]!;
  out.ttl = d[p + 8]!;
  out.ipId = readU16(d, p + 4);
  const ff = readU16(d, p + 6);
  out.fragOffset = (ff & 0x1fff) << 3;
  out.moreFragments = (ff & 0x2000) !== 0;
  let total = readU16(d, p + 2);
  // Total length 0 in a frame longer than 64 KiB: a BIG TCP super-packet captured on the host; the
  // frame says how long it is.
  if (total === 0 && wireEnd - p > 65535) total = wireEnd - p;
  if (total < ihlBytes) return DecodeError['ipv4-bad-total-length'];
  if (total > wireEnd - p) return DecodeError['ipv4-bad-total-length'];
  if (end - p < ihlBytes) return DecodeError['ipv4-truncated'];
  out.l4Offset = p + ihlBytes;
  out.l4Length = total - ihlBytes;
  return DecodeError.ok;
}
