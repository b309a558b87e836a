/**
 * Byte mutations, blind and structure-aware. A Field names where a length / type / count lives in
 * an input (found by the field maps in fields.ts); the targeted mutation sets it to a value that
 * sits on a boundary (0, ±1 around the current value, the type's maximum, a sign bit…), which is
 * where length checks go wrong.
 */
import type { Rng } from './rng.js';

export interface Field {
  offset: number;
  /** Bytes: 1, 2 or 4. */
  width: 1 | 2 | 4;
  /** Byte order of the field (network order unless the file format says otherwise). */
  littleEndian?: boolean;
  /** Only the bits in this mask belong to the field (e.g. the IHL nibble), default all. */
  mask?: number;
}

const I8 = [0, 1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 0x1f, 0x20, 0x3f, 0x40, 0x45, 0x46, 0x4f, 0x50, 0x5f, 0x60, 0x7f, 0x80, 0x81, 0xc0, 0xf0, 0xfe, 0xff];
const I16 = [
  0, 1, 2, 3, 4, 7, 8, 9, 11, 12, 13, 16, 19, 20, 21, 39, 40, 41, 59, 60, 0x5dc, 0x5dd, 0x600, 0x800, 0x806, 0x86dd, 0x8100, 0x88a8, 0x9100, 0x6558, 0x88be, 0x22eb,
  4789, 6081, 0x7fff, 0x8000, 0xfffe, 0xffff,
];
const I32 = [
  0, 1, 2, 3, 4, 8, 11, 12, 13, 16, 20, 24, 28, 32, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 262143, 262144, 262145, 266240, 266244, 0x1000000, 0x1000004, 0x7fffffff,
  0x80000000, 0xfffffffc, 0xfffffffe, 0xffffffff, 0x0a0d0d0a, 0x1a2b3c4d, 0x4d3c2b1a, 0xa1b2c3d4, 0xa1b23c4d, 0xa1b2cd34, 0xd4c3b2a1,
];

export function readField(b: Uint8Array, f: Field): number {
  if (f.offset + f.width > b.length) return 0;
  let v = 0;
  for (let i = 0; i < f.width; i++) {
    const byte = b[f.offset + (f.littleEndian ? f.width - 1 - i : i)]!;
    v = v * 256 + byte;
  }
  return f.mask === undefined ? v : v & f.mask;
}

export function writeField(b: Uint8Array, f: Field, value: number): void {
  if (f.offset + f.width > b.length || f.offset < 0) return;
  const max = f.width === 4 ? 4294967296 : 2 ** (8 * f.width);
  let v = ((value % max) + max) % max;
  if (f.mask !== undefined) {
    const old = readField(b, { offset: f.offset, width: f.width, littleEndian: f.littleEndian });
    const shift = Math.log2(f.mask & -f.mask);
    v = ((old & ~f.mask) | ((v << shift) & f.mask)) >>> 0;
  }
  for (let i = f.width - 1; i >= 0; i--) {
    b[f.offset + (f.littleEndian ? f.width - 1 - i : i)] = v % 256;
    v = Math.floor(v / 256);
  }
}

/** A boundary value for a field, often relative to its current value. */
export function interestingFor(rng: Rng, f: Field, current: number): number {
  const width = f.mask !== undefined ? Math.log2((f.mask >>> Math.log2(f.mask & -f.mask)) + 1) : f.width * 8;
  const max = 2 ** width - 1;
  switch (rng.int(8)) {
    case 0:
      return 0;
    case 1:
      return max;
    case 2:
      return current + rng.pick([-1, 1, -2, 2, -4, 4, -8, 8]);
    case 3:
      return current * 2;
    case 4:
      return Math.floor(current / 2);
    case 5:
      return rng.int(max + 1);
    case 6:
      return 2 ** (width - 1); // sign bit
    default:
      return rng.pick(f.width === 1 ? I8 : f.width === 2 ? I16 : I32);
  }
}

/** Sets one mapped field to a boundary value (in place). */
export function mutateField(rng: Rng, b: Uint8Array, fields: readonly Field[]): void {
  if (fields.length === 0) return;
  const f = rng.pick(fields);
  writeField(b, f, interestingFor(rng, f, readField(b, f)));
}

/** One blind mutation; may return a new array (length changes). */
export function mutateBlind(rng: Rng, b: Uint8Array, other?: Uint8Array): Uint8Array {
  const n = b.length;
  switch (rng.int(11)) {
    case 0: {
      // bit flips
      if (n === 0) return b;
      for (let k = rng.small(8); k > 0; k--) b[rng.int(n)]! ^= 1 << rng.int(8);
      return b;
    }
    case 1: {
      if (n === 0) return b;
      b[rng.int(n)] = rng.pick(I8);
      return b;
    }
    case 2: {
      if (n < 2) return b;
      const f: Field = { offset: rng.int(n - 1), width: 2, littleEndian: rng.chance(0.5) };
      writeField(b, f, rng.pick(I16));
      return b;
    }
    case 3: {
      if (n < 4) return b;
      const f: Field = { offset: rng.int(n - 3), width: 4, littleEndian: rng.chance(0.5) };
      writeField(b, f, rng.pick(I32));
      return b;
    }
    case 4: {
      // truncate
      return b.slice(0, rng.int(n + 1));
    }
    case 5: {
      // extend with zeros, random bytes or a copy of the tail
      const add = rng.chance(0.7) ? rng.small(64) : rng.int(4096);
      const out = new Uint8Array(n + add);
      out.set(b);
      const how = rng.int(3);
      if (how === 1) rng.fill(out, n);
      else if (how === 2 && n > 0) for (let i = n; i < out.length; i++) out[i] = out[i - n]!;
      return out;
    }
    case 6: {
      // splice: our head, the other's tail
      if (!other || other.length === 0) return b;
      const cut = rng.int(n + 1);
      const from = rng.int(other.length);
      const out = new Uint8Array(cut + other.length - from);
      out.set(b.subarray(0, cut));
      out.set(other.subarray(from), cut);
      return out;
    }
    case 7: {
      // delete a run
      if (n === 0) return b;
      const at = rng.int(n);
      const len = Math.min(n - at, rng.small(16));
      const out = new Uint8Array(n - len);
      out.set(b.subarray(0, at));
      out.set(b.subarray(at + len), at);
      return out;
    }
    case 8: {
      // insert a run (random or duplicated)
      const at = rng.int(n + 1);
      const len = rng.small(16);
      const out = new Uint8Array(n + len);
      out.set(b.subarray(0, at));
      if (rng.chance(0.5) && n > 0) for (let i = 0; i < len; i++) out[at + i] = b[(at + i) % n]!;
      else rng.fill(out, at, at + len);
      out.set(b.subarray(at), at + len);
      return out;
    }
    case 9: {
      // overwrite a run with a copy of another part
      if (n < 2) return b;
      const len = rng.small(32);
      const from = rng.int(n);
      const to = rng.int(n);
      b.copyWithin(to, from, Math.min(n, from + len));
      return b;
    }
    default: {
      // random bytes over a run
      if (n === 0) return b;
      const at = rng.int(n);
      rng.fill(b, at, Math.min(n, at + rng.small(8)));
      return b;
    }
  }
}

/**
 * 1–4 mutations: targeted field mutations (when fields are given) about as often as blind ones.
 * `fieldsOf` re-maps the structure after a length change (offsets move).
 */
export function mutate(rng: Rng, input: Uint8Array, fieldsOf: (b: Uint8Array) => Field[], other?: Uint8Array): Uint8Array {
  let b: Uint8Array = input.slice();
  const rounds = rng.small(4);
  for (let r = 0; r < rounds; r++) {
    if (rng.chance(0.55)) {
      const fields = fieldsOf(b);
      if (fields.length > 0) {
        mutateField(rng, b, fields);
        continue;
      }
    }
    b = mutateBlind(rng, b, other);
  }
  return b;
}
