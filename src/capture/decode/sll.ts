/**
 * Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 113), 16 bytes:
 *   | packet type (2) | ARPHRD type (2) | address length (2) | address (8) | protocol (2) |
 * The address is the sender's; with length 6 it is kept as srcMac (dstMac stays 0). A protocol of
 * 0x0600 or more is an EtherType (VLAN tags may follow); below it, "other" traffic.
 */
import { readMac, readU16 } from './bytes.js';
import { decodeVlanTags } from './ethernet.js';
import { DecodeError, type DecodeErrorCode, type DecodedFrame } from './frame.js';

export const SLL_HEADER_BYTES = 16;

export function decodeSll(d: Uint8Array, p: number, end: number, out: DecodedFrame): DecodeErrorCode {
  if (end - p < SLL_HEADER_BYTES) return DecodeError['truncated-sll'];
  out.hasL2 = true;
  out.dstMac = 0;
  out.srcMac = readU16(d, p + 4) === 6 ? readMac(d, p + 6) : 0;
  const proto = readU16(d, p + 14);
  if (proto < 0x0600) {
    out.etherType = proto;
    out.l3Offset = p + SLL_HEADER_BYTES;
    return DecodeError.ok;
  }
  return decodeVlanTags(d, p + 14, end, out);
}
