/**
 * Big-endian reads by index arithmetic (no DataView, no allocation). Callers check bounds first:
 * these functions never look at the buffer's length.
 */

export function readU16(d: Uint8Array, p: number): number {
  return (d[p]! << 8) | d[p + 1]!;
}

export function readU24(d: Uint8Array, p: number): number {
  return (d[p]! << 16) | (d[p + 1]! << 8) | d[p + 2]!;
}

export function readU32(d: Uint8Array, p: number): number {
  return ((d[p]! << 24) | (d[p + 1]! << 16) | (d[p + 2]! << 8) | d[p + 3]!) >>> 0;
}

/** A 48-bit MAC address as a number (exact in a double). */
export function readMac(d: Uint8Array, p: number): number {
  return ((d[p]! << 8) | d[p + 1]!) * 4294967296 + readU32(d, p + 2);
}
