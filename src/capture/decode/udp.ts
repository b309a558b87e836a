/**
 * UDP (RFC 768).
 *
 *   | src port (2) | dst port (2) | length (2) | checksum (2) |
 * The length must cover the header and fit in what the IP layer announces (out.l4Length), except
 * in a first fragment, whose IP payload is only part of the datagram.
 */
import { readU16 } from './bytes.js';
import { DecodeError, type DecodeErrorCode, type DecodedFrame } from './frame.js';

export const UDP_HEADER_BYTES = 8;

export function decodeUdp(d: Uint8Array, p: number, end: number, out: DecodedFrame): DecodeErrorCode {
  if (end - p < UDP_HEADER_BYTES) return out.l4Length < UDP_HEADER_BYTES && end - p >= out.l4Length ? DecodeError['udp-bad-length'] : DecodeError['udp-truncated'];
  out.srcPort = readU16(d, p);
  out.dstPort = readU16(d, p + 2);
  out.hasL4 = true;
  const len = readU16(d, p + 4);
  if (out.moreFragments) {
    out.payloadLength = len >= UDP_HEADER_BYTES ? len - UDP_HEADER_BYTES : 0;
    return len < UDP_HEADER_BYTES ? DecodeError['udp-bad-length'] : DecodeError.ok;
  }
  // Length 0 over 64 KiB of IP payload: a jumbogram / BIG TCP tunnel super-packet; take the IP payload length.
  const effective = len === 0 && out.l4Length > 65535 ? out.l4Length : len;
  if (effective < UDP_HEADER_BYTES || effective > out.l4Length) return DecodeError['udp-bad-length'];
  out.payloadLength = effective - UDP_HEADER_BYTES;
  return DecodeError.ok;
}
