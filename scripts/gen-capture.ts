/**
 * Writes a synthetic classic-pcap capture for benchmarks: many concurrent TCP flows (handshake,
 * data both ways, FIN), some UDP and ICMP echo, between hosts of a /16, deterministic (seeded).
 *
 *   npx tsx scripts/gen-capture.ts --out FILE [--frames 2000000] [--flows 50000] [--snaplen 96] [--seed 1]
 *
 * Prints a JSON summary (frames, flows, bytes on the wire) on stdout.
 */
import { openSync, writeSync, closeSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    frames: { type: 'string', default: '2000000' },
    flows: { type: 'string', default: '50000' },
    snaplen: { type: 'string', default: '96' },
    seed: { type: 'string', default: '1' },
  },
});
if (!values.out) {
  console.error('gen-capture: --out FILE is required');
  process.exit(2);
}
const totalFrames = Number(values.frames);
const totalFlows = Number(values.flows);
const snaplen = Number(values.snaplen);
let seed = Number(values.seed) >>> 0 || 1;
const rand = () => {
  // xorshift32
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 4294967296;
};

const fd = openSync(values.out, 'w');
const out = Buffer.alloc(8 << 20);
let pos = 0;
const flush = () => {
  writeSync(fd, out, 0, pos);
  pos = 0;
};
// global header: µs, snaplen, Ethernet
out.writeUInt32LE(0xa1b2c3d4, 0);
out.writeUInt16LE(2, 4);
out.writeUInt16LE(4, 6);
out.writeUInt32LE(0, 8);
out.writeUInt32LE(0, 12);
out.writeUInt32LE(snaplen, 16);
out.writeUInt32LE(1, 20);
pos = 24;

const frame = Buffer.alloc(1600);
function ipChecksum(b: Buffer, off: number): number {
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += b.readUInt16BE(off + i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Builds an Ethernet/IPv4 frame into `frame`; returns its length on the wire. */
function build(srcHost: number, dstHost: number, proto: number, sport: number, dport: number, flags: number, seq: number, ack: number, payload: number, icmpSeq: number): number {
  const srcMac = 0x525400000000 + srcHost;
  const dstMac = 0x525400000000 + dstHost;
  frame.writeUIntBE(dstMac, 0, 6);
  frame.writeUIntBE(srcMac, 6, 6);
  frame.writeUInt16BE(0x0800, 12);
  const l4len = proto === 6 ? 20 + payload : proto === 17 ? 8 + payload : 8 + payload;
  const total = 20 + l4len;
  frame[14] = 0x45;
  frame[15] = 0;
  frame.writeUInt16BE(total, 16);
  frame.writeUInt16BE(Math.floor(rand() * 65536), 18);
  frame.writeUInt16BE(0x4000, 20);
  frame[22] = 64;
  frame[23] = proto;
  frame.writeUInt16BE(0, 24);
  frame.writeUInt32BE((0x0a000000 + srcHost) >>> 0, 26);
  frame.writeUInt32BE((0x0a000000 + dstHost) >>> 0, 30);
  frame.writeUInt16BE(ipChecksum(frame, 14), 24);
  const l4 = 34;
  if (proto === 6) {
    frame.writeUInt16BE(sport, l4);
    frame.writeUInt16BE(dport, l4 + 2);
    frame.writeUInt32BE(seq >>> 0, l4 + 4);
    frame.writeUInt32BE(ack >>> 0, l4 + 8);
    frame[l4 + 12] = 0x50;
    frame[l4 + 13] = flags;
    frame.writeUInt16BE(502, l4 + 14);
    frame.writeUInt32BE(0, l4 + 16);
  } else if (proto === 17) {
    frame.writeUInt16BE(sport, l4);
    frame.writeUInt16BE(dport, l4 + 2);
    frame.writeUInt16BE(8 + payload, l4 + 4);
    frame.writeUInt16BE(0, l4 + 6);
  } else {
    frame[l4] = flags; // 8 request, 0 reply
    frame[l4 + 1] = 0;
    frame.writeUInt16BE(0, l4 + 2);
    frame.writeUInt16BE(sport, l4 + 4);
    frame.writeUInt16BE(icmpSeq, l4 + 6);
  }
  return Math.max(60, 14 + total);
}

function emit(tUs: number, wireLen: number): void {
  const cap = Math.min(wireLen, snaplen);
  if (pos + 16 + cap > out.length) flush();
  out.writeUInt32LE(Math.floor(tUs / 1e6), pos);
  out.writeUInt32LE(tUs % 1e6, pos + 4);
  out.writeUInt32LE(cap, pos + 8);
  out.writeUInt32LE(wireLen, pos + 12);
  frame.copy(out, pos + 16, 0, cap);
  pos += 16 + cap;
}

// Each flow: a script of frames. Flows start spread over the capture; frames of concurrent flows
// interleave by a round-robin over a window of active flows.
interface Flow {
  kind: number; // 0 tcp, 1 udp, 2 icmp
  a: number;
  b: number;
  sport: number;
  dport: number;
  left: number;
  step: number;
  seqA: number;
  seqB: number;
}
const framesPerFlow = Math.max(4, Math.floor(totalFrames / totalFlows));
const t0Us = 1_700_000_000_000_000;
let tUs = t0Us;
let written = 0;
let wireBytes = 0;
let flowsStarted = 0;
const active: Flow[] = [];
const concurrent = Math.min(2000, totalFlows);
function newFlow(): Flow {
  const r = rand();
  const kind = r < 0.8 ? 0 : r < 0.95 ? 1 : 2;
  flowsStarted++;
  return {
    kind,
    a: 1 + Math.floor(rand() * 4000),
    b: 4001 + Math.floor(rand() * 4000),
    sport: 1024 + Math.floor(rand() * 60000),
    dport: kind === 0 ? [80, 443, 5432, 8080][Math.floor(rand() * 4)]! : kind === 1 ? 53 : Math.floor(rand() * 65535),
    left: framesPerFlow,
    step: 0,
    seqA: Math.floor(rand() * 4294967295),
    seqB: Math.floor(rand() * 4294967295),
  };
}
while (written < totalFrames) {
  while (active.length < concurrent && flowsStarted < totalFlows) active.push(newFlow());
  if (!active.length) active.push(newFlow());
  const i = Math.floor(rand() * active.length);
  const f = active[i]!;
  let len: number;
  const remaining = f.left;
  if (f.kind === 0) {
    if (f.step === 0) len = build(f.a, f.b, 6, f.sport, f.dport, 0x02, f.seqA, 0, 0, 0);
    else if (f.step === 1) len = build(f.b, f.a, 6, f.dport, f.sport, 0x12, f.seqB, f.seqA + 1, 0, 0);
    else if (f.step === 2) len = build(f.a, f.b, 6, f.sport, f.dport, 0x10, f.seqA + 1, f.seqB + 1, 0, 0);
    else if (remaining === 2) len = build(f.a, f.b, 6, f.sport, f.dport, 0x11, f.seqA + 1, f.seqB + 1, 0, 0);
    else if (remaining === 1) len = build(f.b, f.a, 6, f.dport, f.sport, 0x11, f.seqB + 1, f.seqA + 2, 0, 0);
    else {
      const fromA = f.step % 2 === 1;
      const payload = 64 + Math.floor(rand() * 1300);
      if (fromA) {
        len = build(f.a, f.b, 6, f.sport, f.dport, 0x18, f.seqA + 1, f.seqB + 1, payload, 0);
        f.seqA = (f.seqA + payload) >>> 0;
      } else {
        len = build(f.b, f.a, 6, f.dport, f.sport, 0x18, f.seqB + 1, f.seqA + 1, payload, 0);
        f.seqB = (f.seqB + payload) >>> 0;
      }
    }
  } else if (f.kind === 1) {
    const fromA = f.step % 2 === 0;
    len = fromA ? build(f.a, f.b, 17, f.sport, f.dport, 0, 0, 0, 40 + Math.floor(rand() * 60), 0) : build(f.b, f.a, 17, f.dport, f.sport, 0, 0, 0, 80 + Math.floor(rand() * 400), 0);
  } else {
    const req = f.step % 2 === 0;
    len = req ? build(f.a, f.b, 1, f.sport & 0xffff, 0, 8, 0, 0, 56, f.step >> 1) : build(f.b, f.a, 1, f.sport & 0xffff, 0, 0, 0, 0, 56, f.step >> 1);
  }
  tUs += 1 + Math.floor(rand() * 4);
  emit(tUs, len);
  written++;
  wireBytes += len;
  f.step++;
  f.left--;
  if (f.left === 0) {
    active[i] = active[active.length - 1]!;
    active.pop();
  }
}
flush();
closeSync(fd);
console.log(JSON.stringify({ file: values.out, frames: written, flows: flowsStarted, wireBytes, durationS: (tUs - t0Us) / 1e6 }));
