/**
 * Field maps: where the lengths, counts and types live in a frame, a pcap file and a pcapng file.
 * These walkers are deliberately independent of the decoders under test (and forgiving: they map
 * whatever they can and stop at the first thing that does not fit), so that a mutation can aim at
 * IPv4 IHL / total length, IPv6 payload and extension-header lengths, TCP data offset and option
 * lengths, UDP length, VXLAN / Geneve / GRE headers, pcap record lengths and pcapng block and
 * option lengths.
 */
import type { Field } from './mutate.js';

const MAX_DEPTH = 4;

export function frameFields(b: Uint8Array, linkType: number, base = 0, out: Field[] = []): Field[] {
  if (linkType === 1) walkEther(b, base, out, 0);
  else if (linkType === 113) {
    if (b.length - base >= 16) {
      out.push({ offset: base + 4, width: 2 }, { offset: base + 14, width: 2 });
      walkTags(b, base + 14, out, 0);
    }
  } else {
    out.push({ offset: base, width: 1, mask: 0xf0 });
    const v = (b[base] ?? 0) >>> 4;
    walkL3(b, base, v === 6 ? 0x86dd : 0x0800, out, 0);
  }
  return out;
}

const u16 = (b: Uint8Array, p: number) => ((b[p] ?? 0) << 8) | (b[p + 1] ?? 0);

function walkEther(b: Uint8Array, p: number, out: Field[], depth: number): void {
  if (b.length - p < 14 || depth > MAX_DEPTH) return;
  walkTags(b, p + 12, out, depth);
}

function walkTags(b: Uint8Array, q: number, out: Field[], depth: number): void {
  out.push({ offset: q, width: 2 });
  let type = u16(b, q);
  for (let i = 0; i < 6 && (type === 0x8100 || type === 0x88a8 || type === 0x9100); i++) {
    out.push({ offset: q + 2, width: 2 }, { offset: q + 4, width: 2 });
    q += 4;
    type = u16(b, q);
  }
  walkL3(b, q + 2, type, out, depth);
}

function walkL3(b: Uint8Array, p: number, type: number, out: Field[], depth: number): void {
  if (p >= b.length) return;
  if (type === 0x0800) {
    out.push({ offset: p, width: 1, mask: 0x0f }, { offset: p, width: 1, mask: 0xf0 }, { offset: p + 2, width: 2 }, { offset: p + 6, width: 2 }, { offset: p + 9, width: 1 });
    const ihl = ((b[p] ?? 0) & 15) * 4;
    if (ihl < 20) return;
    walkL4(b, p + ihl, b[p + 9] ?? 0, out, depth);
  } else if (type === 0x86dd) {
    out.push({ offset: p, width: 1, mask: 0xf0 }, { offset: p + 4, width: 2 }, { offset: p + 6, width: 1 });
    let next = b[p + 6] ?? 0;
    let q = p + 40;
    for (let i = 0; i < 10 && q < b.length; i++) {
      if (next === 0 || next === 43 || next === 60) {
        out.push({ offset: q, width: 1 }, { offset: q + 1, width: 1 });
        next = b[q]!;
        q += ((b[q + 1] ?? 0) + 1) * 8;
      } else if (next === 44) {
        out.push({ offset: q, width: 1 }, { offset: q + 2, width: 2 });
        next = b[q]!;
        q += 8;
      } else if (next === 51) {
        out.push({ offset: q, width: 1 }, { offset: q + 1, width: 1 });
        next = b[q]!;
        q += ((b[q + 1] ?? 0) + 2) * 4;
      } else break;
    }
    walkL4(b, q, next, out, depth);
  } else if (type === 0x0806) {
    out.push({ offset: p + 2, width: 2 }, { offset: p + 4, width: 1 }, { offset: p + 5, width: 1 }, { offset: p + 6, width: 2 });
  }
}

function walkL4(b: Uint8Array, p: number, proto: number, out: Field[], depth: number): void {
  if (p >= b.length) return;
  if (proto === 6) {
    out.push(
      { offset: p + 12, width: 1, mask: 0xf0 },
      { offset: p + 13, width: 1 },
      { offset: p + 4, width: 4 },
      { offset: p + 8, width: 4 },
      { offset: p + 14, width: 2 },
    );
    const stop = Math.min(b.length, p + ((b[p + 12] ?? 0) >>> 4) * 4);
    let q = p + 20;
    while (q < stop) {
      const kind = b[q]!;
      if (kind === 0) break;
      if (kind === 1) {
        out.push({ offset: q, width: 1 });
        q++;
        continue;
      }
      out.push({ offset: q, width: 1 }, { offset: q + 1, width: 1 });
      const len = b[q + 1] ?? 0;
      if (kind === 5) for (let k = q + 2; k + 4 <= q + len; k += 4) out.push({ offset: k, width: 4 });
      if (kind === 8) out.push({ offset: q + 2, width: 4 }, { offset: q + 6, width: 4 });
      if (kind === 2) out.push({ offset: q + 2, width: 2 });
      if (len < 2) break;
      q += len;
    }
  } else if (proto === 17) {
    out.push({ offset: p + 4, width: 2 }, { offset: p + 2, width: 2 });
    const dport = u16(b, p + 2);
    const t = p + 8;
    if (dport === 4789) {
      out.push({ offset: t, width: 1 });
      walkEther(b, t + 8, out, depth + 1);
    } else if (dport === 6081) {
      out.push({ offset: t, width: 1, mask: 0x3f }, { offset: t, width: 1, mask: 0xc0 }, { offset: t + 2, width: 2 });
      const stop = t + 8 + ((b[t] ?? 0) & 0x3f) * 4;
      let q = t + 8;
      for (let i = 0; i < 16 && q + 4 <= stop; i++) {
        out.push({ offset: q + 3, width: 1, mask: 0x1f });
        q += 4 + ((b[q + 3] ?? 0) & 0x1f) * 4;
      }
      const inner = u16(b, t + 2);
      if (inner === 0x6558) walkEther(b, stop, out, depth + 1);
      else walkL3(b, stop, inner, out, depth + 1);
    }
  } else if (proto === 1 || proto === 58) {
    out.push({ offset: p, width: 1 }, { offset: p + 4, width: 2 }, { offset: p + 6, width: 2 });
  } else if (proto === 47) {
    out.push({ offset: p, width: 2 }, { offset: p + 2, width: 2 });
    const flags = u16(b, p);
    let q = p + 4;
    if (flags & 0x8000) q += 4;
    if (flags & 0x2000) q += 4;
    if (flags & 0x1000) q += 4;
    const inner = u16(b, p + 2);
    if (inner === 0x88be) {
      if (flags & 0x1000) {
        out.push({ offset: q, width: 1, mask: 0xf0 });
        q += 8;
      }
      walkEther(b, q, out, depth + 1);
    } else if (inner === 0x22eb) {
      out.push({ offset: q, width: 1, mask: 0xf0 }, { offset: q + 10, width: 1 }, { offset: q + 11, width: 1 });
      walkEther(b, q + ((b[q + 11] ?? 0) & 1 ? 20 : 12), out, depth + 1);
    } else if (inner === 0x6558) walkEther(b, q, out, depth + 1);
    else walkL3(b, q, inner, out, depth + 1);
  }
}

/** Fields of a classic pcap file: the header, each record header and (some) frames. */
export function pcapFields(b: Uint8Array): Field[] {
  const out: Field[] = [{ offset: 0, width: 4 }];
  if (b.length < 24) return out;
  const magicBe = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  const le = !(magicBe === 0xa1b2c3d4 || magicBe === 0xa1b23c4d || magicBe === 0xa1b2cd34);
  const modified = magicBe === 0xa1b2cd34 || magicBe === 0x34cdb2a1;
  const hdr = modified ? 24 : 16;
  out.push({ offset: 16, width: 4, littleEndian: le }, { offset: 20, width: 4, littleEndian: le });
  const linkType = le ? b[20]! | (b[21]! << 8) : (b[22]! << 8) | b[23]!;
  const r32 = (p: number) => (le ? (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0 : ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0);
  let p = 24;
  for (let i = 0; i < 4000 && p + hdr <= b.length; i++) {
    out.push({ offset: p + 8, width: 4, littleEndian: le }, { offset: p + 12, width: 4, littleEndian: le }, { offset: p + 4, width: 4, littleEndian: le }, { offset: p, width: 4, littleEndian: le });
    const caplen = r32(p + 8);
    if (i < 64 && p + hdr + caplen <= b.length) frameFields(b.subarray(0, p + hdr + caplen), linkType, p + hdr, out);
    p += hdr + caplen;
  }
  return out;
}

/** Fields of a pcapng file: block lengths and trailers, SHB magic/version, IDB options, packet lengths. */
export function pcapngFields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let le = true;
  const links: number[] = [];
  let p = 0;
  for (let i = 0; i < 4000 && p + 12 <= b.length; i++) {
    const typeBe = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
    if (typeBe === 0x0a0d0d0a) {
      le = b[p + 8] === 0x4d;
      links.length = 0;
      out.push({ offset: p + 8, width: 4 }, { offset: p + 12, width: 2, littleEndian: le });
    }
    const r32 = (q: number) => (le ? (b[q]! | (b[q + 1]! << 8) | (b[q + 2]! << 16) | (b[q + 3]! << 24)) >>> 0 : ((b[q]! << 24) | (b[q + 1]! << 16) | (b[q + 2]! << 8) | b[q + 3]!) >>> 0);
    const r16 = (q: number) => (le ? b[q]! | (b[q + 1]! << 8) : (b[q]! << 8) | b[q + 1]!);
    const type = r32(p);
    const total = r32(p + 4);
    out.push({ offset: p, width: 4, littleEndian: le }, { offset: p + 4, width: 4, littleEndian: le });
    if (total < 12 || p + total > b.length) break;
    out.push({ offset: p + total - 4, width: 4, littleEndian: le });
    const options = (q: number, stop: number) => {
      for (let k = 0; k < 32 && q + 4 <= stop; k++) {
        const code = r16(q);
        const len = r16(q + 2);
        out.push({ offset: q, width: 2, littleEndian: le }, { offset: q + 2, width: 2, littleEndian: le });
        if (code === 9) out.push({ offset: q + 4, width: 1 });
        if (code === 14) out.push({ offset: q + 4, width: 4, littleEndian: le }, { offset: q + 8, width: 4, littleEndian: le });
        if (code === 0) break;
        q += 4 + ((len + 3) & ~3);
      }
    };
    if (type === 0x0a0d0d0a) options(p + 24, p + total - 4);
    else if (type === 1) {
      links.push(r16(p + 8));
      out.push({ offset: p + 8, width: 2, littleEndian: le }, { offset: p + 12, width: 4, littleEndian: le });
      options(p + 16, p + total - 4);
    } else if (type === 6 || type === 2) {
      out.push(
        { offset: p + 8, width: type === 6 ? 4 : 2, littleEndian: le },
        { offset: p + 12, width: 4, littleEndian: le },
        { offset: p + 16, width: 4, littleEndian: le },
        { offset: p + 20, width: 4, littleEndian: le },
        { offset: p + 24, width: 4, littleEndian: le },
      );
      const caplen = r32(p + 20);
      const ifId = type === 6 ? r32(p + 8) : r16(p + 8);
      if (p + 28 + caplen <= p + total - 4) {
        if (i < 256) frameFields(b.subarray(0, p + 28 + caplen), links[ifId] ?? 1, p + 28, out);
        options(p + 28 + ((caplen + 3) & ~3), p + total - 4);
      }
    } else if (type === 3) {
      out.push({ offset: p + 8, width: 4, littleEndian: le });
    }
    p += total;
  }
  return out;
}
