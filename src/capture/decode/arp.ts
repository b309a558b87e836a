/**
 * ARP (RFC 826).
 *
 *   | htype (2) | ptype (2) | hlen (1) | plen (1) | op (2) |
 *   | sender hw (hlen) | sender proto (plen) | target hw (hlen) | target proto (plen) |
 * Sender/target IPs are read only for IPv4 over Ethernet-sized addresses (plen 4).
 */
import { readU16, readU32 } from './bytes.js';
import { DecodeError, type DecodeErrorCode, type DecodedFrame } from './frame.js';

export function decodeArp(d: Uint8Array, p: number, end: number, out: DecodedFrame): DecodeErrorCode {
  if (end - p < 8) return DecodeError['truncated-arp'];
  const hlen = d[p + 4]!;
  const plen = d[p + 5]!;
  out.arpOp = readU16(d, p + 6);
  if (end - p < 8 + 2 * hlen + 2 * plen) return DecodeError['truncated-arp'];
  if (plen === 4 && readU16(d, p + 2) === 0x0800) {
    out.arpSenderIp = readU32(d, p + 8 + hlen);
    out.arpTargetIp = readU32(d, p + 8 + 2 * hlen + 4);
  } else {
    out.arpSenderIp = 0;
    out.arpTargetIp = 0;
  }
  return DecodeError.ok;
}
