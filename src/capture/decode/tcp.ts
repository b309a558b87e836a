/**
 * TCP (RFC 9293) header and the options flow metrics use.
 *
 *   | src port (2)        | dst port (2)        |
 *   | sequence number (4)                       |
 *   | acknowledgement number (4)                |
 *   |doff:4 rsv:4| flags  | window (2)          |
 *   | checksum (2)        | urgent pointer (2)  |
 *   | options ((doff - 5) * 4) …                |
 * Options: 0 end, 1 NOP, else | kind | len | data |: 2 MSS (len 4), 3 window scale (3),
 * 4 SACK permitted (2), 5 SACK (2 + 8n), 8 timestamps (10). A known kind with the wrong length is
 * ignored; a length below 2 or past the header is 'tcp-bad-option' (the fixed header stays valid).
 */
import { readU16, readU32 } from './bytes.js';
import { DecodeError, type DecodeErrorCode, type DecodedFrame } from './frame.js';

export const TCP_MIN_HEADER_BYTES = 20;

/**
 * Decodes the TCP header at `p` (captured bytes end at `end`); out.l4Length (set by the IP layer)
 * is the segment length on the wire, from which payloadLength is computed.
 */
export function decodeTcp(d: Uint8Array, p: number, end: number, out: DecodedFrame): DecodeErrorCode {
  const segment = out.l4Length;
  if (segment < TCP_MIN_HEADER_BYTES) return DecodeError['tcp-bad-header-length'];
  if (end - p < TCP_MIN_HEADER_BYTES) return DecodeError['tcp-truncated'];
  out.srcPort = readU16(d, p);
  out.dstPort = readU16(d, p + 2);
  out.seq = readU32(d, p + 4);
  out.ack = readU32(d, p + 8);
  out.tcpFlags = d[p + 13]!;
  out.window = readU16(d, p + 14);
  out.hasL4 = true;
  const hdr = (d[p + 12]! >>> 4) << 2;
  if (hdr < TCP_MIN_HEADER_BYTES || hdr > segment) return DecodeError['tcp-bad-header-length'];
  out.payloadLength = segment - hdr;
  if (end - p < hdr) return DecodeError['tcp-truncated'];
  return decodeTcpOptions(d, p + TCP_MIN_HEADER_BYTES, p + hdr, out);
}

function decodeTcpOptions(d: Uint8Array, q: number, stop: number, out: DecodedFrame): DecodeErrorCode {
  while (q < stop) {
    const kind = d[q]!;
    if (kind === 0) break;
    if (kind === 1) {
      q++;
      continue;
    }
    if (stop - q < 2) return DecodeError['tcp-bad-option'];
    const len = d[q + 1]!;
    if (len < 2 || len > stop - q) return DecodeError['tcp-bad-option'];
    if (kind === 2) {
      if (len === 4) out.mss = readU16(d, q + 2);
    } else if (kind === 3) {
      if (len === 3) out.windowScale = d[q + 2]!;
    } else if (kind === 4) {
      if (len === 2) out.sackPermitted = true;
    } else if (kind === 5) {
      if ((len - 2) % 8 === 0) out.sackBlocks = (len - 2) >>> 3;
    } else if (kind === 8) {
      if (len === 10) {
        out.hasTimestamp = true;
        out.tsVal = readU32(d, q + 2);
        out.tsEcr = readU32(d, q + 6);
      }
    }
    q += len;
  }
  return DecodeError.ok;
}
