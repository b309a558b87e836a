/**
 * Ethernet II with 802.1Q / 802.1ad / QinQ tags.
 *
 *   0      6      12           14
 *   | dst  | src  | type (2)   | payload …
 *   type 0x8100 (802.1Q), 0x88a8 (802.1ad S-tag), 0x9100 (old QinQ): a 4-byte tag follows
 *   | TPID (2) | PCP:3 DEI:1 VID:12 | next type (2) |
 * A type below 0x0600 is an 802.3 length (LLC frame): "other" traffic with that value as etherType.
 */
import { readMac, readU16 } from './bytes.js';
import { DecodeError, MAX_VLANS, type DecodeErrorCode, type DecodedFrame } from './frame.js';

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_QINQ = 0x88a8;
export const ETHERTYPE_QINQ_OLD = 0x9100;
export const ETHERTYPE_TEB = 0x6558;

export const ETHERNET_HEADER_BYTES = 14;

export function isVlanTpid(type: number): boolean {
  return type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ || type === ETHERTYPE_QINQ_OLD;
}

/**
 * Decodes the Ethernet header at `p` (captured bytes end at `end`). Sets MACs, VLANs, etherType
 * and l3Offset (the byte after the last tag).
 */
export function decodeEthernet(d: Uint8Array, p: number, end: number, out: DecodedFrame): DecodeErrorCode {
  if (end - p < ETHERNET_HEADER_BYTES) return DecodeError['truncated-ethernet'];
  out.dstMac = readMac(d, p);
  out.srcMac = readMac(d, p + 6);
  out.hasL2 = true;
  return decodeVlanTags(d, p + 12, end, out);
}

/**
 * Reads the type at `p` and, while it is a VLAN TPID, the tags after it. Sets etherType and
 * l3Offset. Shared by Ethernet and Linux SLL (whose protocol field may also be a TPID).
 */
export function decodeVlanTags(d: Uint8Array, p: number, end: number, out: DecodedFrame): DecodeErrorCode {
  let type = readU16(d, p);
  p += 2;
  out.etherType = type;
  while (isVlanTpid(type)) {
    if (out.vlanCount >= MAX_VLANS) return DecodeError['vlan-too-deep'];
    if (end - p < 4) return DecodeError['truncated-vlan'];
    out.vlans[out.vlanCount++] = readU16(d, p) & 0x0fff;
    type = readU16(d, p + 2);
    p += 4;
    out.etherType = type;
  }
  out.l3Offset = p;
  return DecodeError.ok;
}
