/**
 * ICMP (RFC 792) and ICMPv6 (RFC 4443): type and code, and the echo identifier/sequence.
 *
 *   | type | code | checksum (2) | (echo: identifier (2) | sequence (2)) | …
 * Echo is type 8/0 for ICMP and 128/129 for ICMPv6.
 */
import { readU16 } from './bytes.js';
import { DecodeError, type DecodeErrorCode, type DecodedFrame } from './frame.js';

export function decodeIcmp(d: Uint8Array, p: number, end: number, out: DecodedFrame): DecodeErrorCode {
  return decodeIcmpAny(d, p, end, out, 8, 0, DecodeError['icmp-truncated']);
}

export function decodeIcmpv6(d: Uint8Array, p: number, end: number, out: DecodedFrame): DecodeErrorCode {
  return decodeIcmpAny(d, p, end, out, 128, 129, DecodeError['icmpv6-truncated']);
}

function decodeIcmpAny(
  d: Uint8Array,
  p: number,
  end: number,
  out: DecodedFrame,
  echoRequest: number,
  echoReply: number,
  truncated: DecodeErrorCode,
): DecodeErrorCode {
  if (end - p < 4) return truncated;
  const type = d[p]!;
  out.icmpType = type;
  out.icmpCode = d[p + 1]!;
  out.hasL4 = true;
  out.payloadLength = out.l4Length >= 4 ? out.l4Length - 4 : 0;
  if (type === echoRequest || type === echoReply) {
    if (end - p < 8) return truncated;
    out.icmpId = readU16(d, p + 4);
    out.icmpSeq = readU16(d, p + 6);
    out.payloadLength = out.l4Length >= 8 ? out.l4Length - 8 : 0;
  }
  return DecodeError.ok;
}
