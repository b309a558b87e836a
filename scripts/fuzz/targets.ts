/**
 * The fuzz targets. A case is `{ bytes, meta }` (meta: a few numbers, e.g. link type and lengths),
 * so every case can be saved as a hex file and replayed. `generate` makes a case from the seeds;
 * `run` executes it and throws a Finding when an oracle fails:
 *   decode  decodeFrame never throws, returns a known code, leaves consistent fields, and reads
 *           nothing outside [offset, offset + caplen) (the same frame with different bytes around
 *           it, at another offset, decodes the same);
 *   pcap / pcapng  the readers reject only with CaptureFileError (offset within the file), every
 *           handed-out frame lies inside its batch buffer, and reading with tiny chunks and batches
 *           gives exactly what reading with the defaults gives (frames and error);
 *   worker  CaptureWorker.processBatch + FlowTable on a mutated conversation: no throw, the flow
 *           table stays within maxFlows / maxHoles / maxPending, every decoded frame ends up in
 *           exactly one record after flush (packets and bytes conserved), records are sane and
 *           survive encode → decode → encode in every codec;
 *   codec   decodeFlowRecord / decodePairWindow on random bytes throw only CodecError
 *           ('codec-decode'); what they accept re-encodes and round-trips, and the direct writers
 *           of replay's outputs (record-json.ts JSON lines, record-protobuf.ts) write the bytes the
 *           codec writes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeFrame } from '../../src/capture/decode/decode.js';
import { DECODE_ERROR_NAMES, DecodedFrame, MAX_VLANS } from '../../src/capture/decode/frame.js';
import { CaptureFileError } from '../../src/capture/file-error.js';
import { MAX_FRAME_BYTES } from '../../src/capture/chunked-reader.js';
import type { FlowRecord } from '../../src/capture/flow-record.js';
import type { FlowTable } from '../../src/capture/flow-table.js';
import { openCaptureFile } from '../../src/capture/open-file.js';
import { allocBatch, type FrameBatch } from '../../src/capture/source.js';
import { CaptureWorker } from '../../src/capture/worker.js';
import { CodecError, decodeRecord, encodeRecord, encodeRecordDelimited, RECORD_FORMATS, RECORD_KINDS, type RecordFormat, type RecordKind } from '../../src/pipeline/codec.js';
import { pairWindowToProto3Json, toProto3Json, type PairWindow } from '../../src/capture/flow-record.js';
import { writeFlowRecordJsonLine, writePairWindowJsonLine } from '../../src/capture/record-json.js';
import { ProtoSink, writeFlowRecordDelimited, writePairWindowDelimited } from '../../src/capture/record-protobuf.js';
import { flowRecords, pairWindow } from '../../test/unit/pipeline/codec.fixture.js';
import { frameFields, pcapFields, pcapngFields } from './fields.js';
import { mutate, mutateBlind } from './mutate.js';
import { Rng } from './rng.js';
import { generatedConversations, generatedFiles, generatedFrames, loadCorpus, pcapOf, type Corpus, type SeedFrame, type TimedFrame } from './seeds.js';

export interface Case {
  bytes: Uint8Array;
  meta: number[];
}

/** An oracle failed. `kind` groups findings (throw, invariant, differential, slow, …). */
export class Finding extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Target {
  readonly name: TargetName;
  /** A case taking longer than this (after a re-run) is reported as slow. */
  readonly slowMs: number;
  generate(rng: Rng): Case;
  run(c: Case): void | Promise<void>;
}

export const TARGET_NAMES = ['decode', 'pcap', 'pcapng', 'worker', 'codec'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

export const FUZZ_ROOT = '/tmp/mirrorflow-fuzz';

let corpusPromise: Promise<Corpus> | undefined;
function corpus(): Promise<Corpus> {
  corpusPromise ??= loadCorpus();
  return corpusPromise;
}

export async function createTarget(name: TargetName): Promise<Target> {
  switch (name) {
    case 'decode':
      return new DecodeTarget([...(await corpus()).frames, ...generatedFrames(), ...generatedFrames()]);
    case 'pcap':
      return new FileTarget('pcap', [...(await corpus()).pcapFiles, ...generatedFiles().pcap], pcapFields);
    case 'pcapng':
      return new FileTarget('pcapng', [...(await corpus()).pcapngFiles, ...generatedFiles().pcapng], pcapngFields);
    case 'worker': {
      const gen = generatedConversations();
      // generated conversations are few but rich: weigh them like a tenth of the corpus
      const weight = Math.max(1, Math.round((await corpus()).conversations.length / 10 / gen.length));
      const convs = [...(await corpus()).conversations];
      for (let i = 0; i < weight; i++) convs.push(...gen);
      return new WorkerTarget(convs);
    }
    case 'codec':
      return new CodecTarget();
  }
}

// ---------------------------------------------------------------- decode

const LINK_TYPES = [1, 1, 1, 101, 113, 228, 229, 0, 105, 276];
const INTERESTING_LENS = [0, 1, 13, 14, 20, 40, 59, 60, 1514, 65535, 65536, 65575, 70000, 262144, 0x7fffffff, 0xffffffff];

/** Every field of a DecodedFrame that a decoder sets, offsets relative to `base`. */
export function snapshot(f: DecodedFrame, base: number): number[] {
  return [
    f.error,
    f.len,
    f.caplen,
    +f.hasL2,
    f.srcMac,
    f.dstMac,
    ...f.vlans.subarray(0, f.vlanCount),
    f.vlanCount,
    f.etherType,
    f.arpOp,
    f.arpSenderIp,
    f.arpTargetIp,
    f.ipVersion,
    // an IPv4 address is word 0 only (frame.ts); words 1–3 keep whatever the object held before
    ...f.srcIp.subarray(0, f.ipVersion === 6 ? 4 : 1),
    ...f.dstIp.subarray(0, f.ipVersion === 6 ? 4 : 1),
    f.protocol,
    f.ttl,
    f.ipId,
    f.fragOffset,
    +f.moreFragments,
    // offsets relative to the frame; one below the frame (0 after reset(), or never set) is "unset"
    f.l3Offset < base ? -1 : f.l3Offset - base,
    f.l4Offset < base ? -1 : f.l4Offset - base,
    f.l4Length,
    +f.hasL4,
    f.srcPort,
    f.dstPort,
    f.tcpFlags,
    f.seq,
    f.ack,
    f.window,
    f.payloadLength,
    f.mss,
    f.windowScale,
    +f.sackPermitted,
    f.sackBlocks,
    +f.hasTimestamp,
    f.tsVal,
    f.tsEcr,
    f.icmpType,
    f.icmpCode,
    f.icmpId,
    f.icmpSeq,
    f.tunnel,
    f.vni,
    f.outerIpVersion,
    ...f.outerSrcIp.subarray(0, f.outerIpVersion === 6 ? 4 : f.outerIpVersion === 4 ? 1 : 0),
    ...f.outerDstIp.subarray(0, f.outerIpVersion === 6 ? 4 : f.outerIpVersion === 4 ? 1 : 0),
  ];
}

const SNAPSHOT_NAMES = 'error len caplen hasL2 srcMac dstMac vlans… etherType arpOp arpSenderIp arpTargetIp ipVersion srcIp… dstIp… protocol ttl ipId fragOffset moreFragments l3Offset l4Offset l4Length hasL4 srcPort dstPort tcpFlags seq ack window payloadLength mss windowScale sackPermitted sackBlocks hasTimestamp tsVal tsEcr icmpType icmpCode icmpId icmpSeq tunnel vni outerIpVersion outer…';

const isU = (v: number, max: number) => Number.isInteger(v) && v >= 0 && v <= max;

/**
 * Invariants of one decode of `data[base .. base + caplen)`; returns a problem or null.
 * `end` is where the captured bytes end in the buffer.
 */
export function checkDecoded(f: DecodedFrame, r: number, base: number, caplen: number, len: number, dataLength: number): string | null {
  if (r !== f.error) return `returned ${r} but out.error is ${f.error}`;
  if (!isU(r, DECODE_ERROR_NAMES.length - 1)) return `unknown error code ${r}`;
  if (f.len !== len || f.caplen !== caplen) return `len/caplen not recorded (${f.len}/${f.caplen} for ${len}/${caplen})`;
  if (!isU(f.vlanCount, MAX_VLANS)) return `vlanCount ${f.vlanCount}`;
  if (f.ipVersion !== 0 && f.ipVersion !== 4 && f.ipVersion !== 6) return `ipVersion ${f.ipVersion}`;
  if (f.outerIpVersion !== 0 && f.outerIpVersion !== 4 && f.outerIpVersion !== 6) return `outerIpVersion ${f.outerIpVersion}`;
  if (!isU(f.tunnel, 3)) return `tunnel ${f.tunnel}`;
  if (f.tunnel !== 0 && f.outerIpVersion === 0) return 'tunnel without outer IP version';
  if (f.vni !== -1 && !isU(f.vni, 0xffffffff)) return `vni ${f.vni}`;
  for (const v of snapshot(f, base)) if (!Number.isFinite(v)) return `non-finite field (${SNAPSHOT_NAMES})`;
  if (r !== 0) return null;
  const end = Math.min(base + caplen, dataLength);
  const wireEnd = base + Math.max(len, caplen);
  if (f.hasL2 && (f.l3Offset < base || f.l3Offset > end)) return `l3Offset ${f.l3Offset - base} outside the captured bytes (${end - base})`;
  if (f.ipVersion !== 0) {
    if (f.l3Offset < base || f.l3Offset > end) return `l3Offset ${f.l3Offset - base} outside the captured bytes (${end - base})`;
    if (f.l4Offset < f.l3Offset + (f.ipVersion === 4 ? 20 : 40)) return `l4Offset ${f.l4Offset - base} inside the IP header at ${f.l3Offset - base}`;
    if (f.l4Offset > end) return `l4Offset ${f.l4Offset - base} past the captured end ${end - base}`;
    if (!isU(f.l4Length, 0xffffffff)) return `l4Length ${f.l4Length}`;
    if (f.l4Offset + f.l4Length > wireEnd) return `IP payload end ${f.l4Offset + f.l4Length - base} past the wire length ${wireEnd - base}`;
    if (f.fragOffset < 0 || f.fragOffset > 65528 || f.fragOffset % 8 !== 0) return `fragOffset ${f.fragOffset}`;
    if (f.fragOffset > 0 && f.hasL4) return 'a later fragment with an L4 header';
  }
  if (f.hasL4) {
    if (!isU(f.srcPort, 65535) || !isU(f.dstPort, 65535)) return `ports ${f.srcPort}/${f.dstPort}`;
    if (!isU(f.payloadLength, 0xffffffff)) return `payloadLength ${f.payloadLength}`;
    if (f.ipVersion !== 0 && f.payloadLength > f.l4Length && !f.moreFragments) return `payloadLength ${f.payloadLength} > l4Length ${f.l4Length}`;
    const minHdr = f.protocol === 6 ? 20 : f.protocol === 17 ? 8 : 4;
    if (f.l4Offset + minHdr > end) return `L4 header at ${f.l4Offset - base} (+${minHdr}) past the captured end ${end - base}`;
    if (f.protocol === 6) {
      if (f.sackBlocks > 4 || f.sackBlocks < 0) return `sackBlocks ${f.sackBlocks}`;
      if (f.mss < -1 || f.mss > 65535 || f.windowScale < -1 || f.windowScale > 255) return `mss ${f.mss} / windowScale ${f.windowScale}`;
    }
    if (f.protocol === 1 || f.protocol === 58) {
      if (!isU(f.icmpType, 255) || !isU(f.icmpCode, 255)) return `icmp type/code ${f.icmpType}/${f.icmpCode}`;
    }
  }
  return null;
}

const diffAt = (a: number[], b: number[]): string => {
  if (a.length !== b.length) return `field count ${a.length} vs ${b.length}`;
  const i = a.findIndex((v, k) => !Object.is(v, b[k]));
  return `field #${i}: ${a[i]} vs ${b[i]}`;
};

export class DecodeTarget implements Target {
  readonly name = 'decode' as const;
  /** The whole case (building buffers included); decodeFrame itself is timed per call in decodeOnce. */
  readonly slowMs = 250;
  constructor(private readonly seeds: SeedFrame[]) {}

  generate(rng: Rng): Case {
    const s = rng.pick(this.seeds);
    const linkType = rng.chance(0.05) ? rng.pick(LINK_TYPES) : s.linkType;
    const other = rng.chance(0.2) ? rng.pick(this.seeds).data : undefined;
    const bytes = rng.chance(0.03) ? s.data.slice() : mutate(rng, s.data, (b) => frameFields(b, linkType), other);
    let caplen = bytes.length;
    let len = bytes.length + (s.len - s.data.length);
    const k = rng.int(10);
    if (k === 0) caplen = rng.int(bytes.length + 1);
    else if (k === 1) caplen = bytes.length + rng.small(64);
    else if (k === 2) len = rng.pick(INTERESTING_LENS);
    else if (k === 3) len = rng.int(caplen + 1);
    else if (k === 4) len = caplen + rng.small(100);
    else if (k === 5) len = caplen;
    // meta: link type, caplen, len, offset of the frame in the buffer, tail bytes, tail seed
    return { bytes, meta: [linkType, caplen >>> 0, len >>> 0, rng.chance(0.5) ? 0 : rng.small(64), rng.int(3) === 0 ? 0 : rng.small(256), rng.u32()] };
  }

  run(c: Case): void {
    const [linkType = 1, caplen = 0, len = 0, off0 = 0, tail = 0, tailSeed = 0] = c.meta;
    const off = off0 + 1; // offsets ≥ 1, so that 0 (reset) reads as "unset" in snapshots
    const data = c.bytes;
    // A: the frame at `off`, filler before it, random bytes after it
    const a = new Uint8Array(off + data.length + tail);
    a.fill(0xaa, 0, off);
    a.set(data, off);
    new Rng(tailSeed).fill(a, off + data.length);
    const fa = new DecodedFrame();
    const ra = decodeOnce(a, off, caplen, len, linkType, fa);
    const problem = checkDecoded(fa, ra, off, caplen, len, a.length);
    if (problem) throw new Finding('invariant', `decode ${DECODE_ERROR_NAMES[ra] ?? ra}: ${problem}`);
    // B: the captured bytes only, at another offset, everything else different
    const end = Math.min(off + caplen, a.length);
    if (off + caplen > a.length) return; // caplen claims bytes past the buffer: the tail is captured data
    const off2 = off + 3;
    const b = new Uint8Array(off2 + (a.length - off));
    for (let i = 0; i < b.length; i++) b[i] = ~(a[i - off2 + off] ?? 0x55) & 255;
    b.set(a.subarray(off, end), off2);
    const fb = new DecodedFrame();
    const rb = decodeOnce(b, off2, caplen, len, linkType, fb);
    const sa = snapshot(fa, off);
    const sb = snapshot(fb, off2);
    if (ra !== rb || sa.some((v, i) => !Object.is(v, sb[i])) || sa.length !== sb.length) {
      throw new Finding('differential', `decode reads outside the captured bytes or depends on the offset: ${DECODE_ERROR_NAMES[ra]} vs ${DECODE_ERROR_NAMES[rb]}, ${diffAt(sa, sb)}`);
    }
  }
}

/** decodeFrame per frame must take microseconds: one call over this (after re-runs) is a finding. */
const DECODE_SLOW_MS = 1;

function decodeOnce(d: Uint8Array, off: number, caplen: number, len: number, linkType: number, f: DecodedFrame): number {
  try {
    const t0 = performance.now();
    const r = decodeFrame(d, off, caplen, len, linkType, f);
    let dt = performance.now() - t0;
    for (let k = 0; k < 3 && dt > DECODE_SLOW_MS; k++) {
      // a GC pause or a busy machine, or really slow? again
      const t1 = performance.now();
      decodeFrame(d, off, caplen, len, linkType, f);
      dt = Math.min(dt, performance.now() - t1);
    }
    if (dt > DECODE_SLOW_MS) throw new Finding('slow', `decodeFrame took ${dt.toFixed(3)} ms on one frame (caplen=${caplen})`);
    return r;
  } catch (e) {
    if (e instanceof Finding) throw e;
    throw new Finding('throw', `decodeFrame threw: ${(e as Error)?.stack ?? String(e)}`);
  }
}

// ---------------------------------------------------------------- pcap / pcapng

const CHUNKS = [1, 2, 3, 5, 7, 13, 16, 24, 64, 100, 1000, 4096, 65536];
const BATCHES = [1, 2, 3, 7, 64, 8192];

interface ReadOutcome {
  frames: number;
  hash: number;
  error: string;
}

export class FileTarget implements Target {
  readonly slowMs = 3000;
  private readonly path: string;

  constructor(
    readonly name: 'pcap' | 'pcapng',
    private readonly seeds: Uint8Array[],
    private readonly fieldsOf: (b: Uint8Array) => ReturnType<typeof pcapFields>,
  ) {
    const dir = join(FUZZ_ROOT, 'work');
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `${process.pid}-${name}.bin`);
  }

  generate(rng: Rng): Case {
    const s = rng.pick(this.seeds);
    const other = rng.chance(0.2) ? rng.pick(this.seeds) : undefined;
    let bytes = mutate(rng, s, this.fieldsOf, other);
    if (rng.chance(0.1)) bytes = mutateBlind(rng, bytes, other);
    return { bytes, meta: [rng.pick(CHUNKS), rng.pick(BATCHES)] };
  }

  async run(c: Case): Promise<void> {
    writeFileSync(this.path, c.bytes);
    const [chunk = 1, batchFrames = 1] = c.meta;
    // at most ~128 reads per file (an async read costs ~40 µs): tiny chunks on big files only cost time (records still straddle)
    const chunkBytes = Math.max(chunk, Math.ceil(c.bytes.length / 128));
    const a = await this.read({}, c.bytes.length);
    const b = await this.read({ chunkBytes, batchFrames }, c.bytes.length);
    if (a.frames !== b.frames || a.hash !== b.hash || a.error !== b.error) {
      throw new Finding(
        'differential',
        `${this.name}: reading with chunkBytes=${chunkBytes} batchFrames=${batchFrames} differs from the defaults: ${b.frames} vs ${a.frames} frames, ${b.error} vs ${a.error}`,
      );
    }
  }

  private async read(opts: { chunkBytes?: number; batchFrames?: number }, size: number): Promise<ReadOutcome> {
    const out: ReadOutcome = { frames: 0, hash: 0x811c9dc5, error: 'eof' };
    const f = new DecodedFrame();
    const mix = (v: number) => {
      out.hash = Math.imul(out.hash ^ (v >>> 0), 16777619) >>> 0;
    };
    let src: Awaited<ReturnType<typeof openCaptureFile>>;
    try {
      src = await openCaptureFile(this.path, opts);
    } catch (e) {
      out.error = this.expectFileError(e, size, 'open');
      return out;
    }
    try {
      for (;;) {
        let batch: FrameBatch | null;
        try {
          batch = await src.next();
        } catch (e) {
          out.error = this.expectFileError(e, size, 'next');
          // the error sticks: the next call rejects again with it
          let again: unknown;
          try {
            await src.next();
          } catch (e2) {
            again = e2;
          }
          if (again !== e) throw new Finding('invariant', `${this.name}: next() after a damage error did not reject with the same error (${String(again)})`);
          break;
        }
        if (!batch) {
          if ((await src.next()) !== null) throw new Finding('invariant', `${this.name}: next() after the end returned a batch`);
          break;
        }
        if (batch.count < 1 || batch.count > batch.offset.length) throw new Finding('invariant', `${this.name}: batch count ${batch.count}`);
        for (let i = 0; i < batch.count; i++) {
          const off = batch.offset[i]!;
          const caplen = batch.caplen[i]!;
          if (off + caplen > batch.data.length) throw new Finding('invariant', `${this.name}: frame ${out.frames} [${off}, +${caplen}) outside the batch buffer (${batch.data.length})`);
          if (caplen > MAX_FRAME_BYTES) throw new Finding('invariant', `${this.name}: caplen ${caplen} > ${MAX_FRAME_BYTES}`);
          if (batch.tsNsec[i]! >= 1e9) throw new Finding('invariant', `${this.name}: tsNsec ${batch.tsNsec[i]}`);
          const linkType = src.linkType(batch.ifIndex[i]!);
          if (this.name === 'pcapng' && linkType < 0) throw new Finding('invariant', `pcapng: frame on interface ${batch.ifIndex[i]} without a link type`);
          mix(caplen);
          mix(batch.len[i]!);
          mix(batch.tsSec[i]!);
          mix(batch.tsNsec[i]!);
          mix(batch.ifIndex[i]!);
          mix(linkType);
          for (let k = 0; k < caplen; k += 7) mix(batch.data[off + k]!);
          const r = decodeOnce(batch.data, off, caplen, batch.len[i]!, linkType, f);
          const problem = checkDecoded(f, r, off, caplen, batch.len[i]!, batch.data.length);
          if (problem) throw new Finding('invariant', `${this.name} frame ${out.frames}: decode ${DECODE_ERROR_NAMES[r]}: ${problem}`);
          out.frames++;
        }
        if (out.frames > size / 12 + 1) throw new Finding('invariant', `${this.name}: ${out.frames} frames from ${size} bytes`);
      }
    } finally {
      await src.close();
      await src.close();
    }
    return out;
  }

  private expectFileError(e: unknown, size: number, where: string): string {
    if (e instanceof Finding) throw e;
    if (!(e instanceof CaptureFileError)) throw new Finding('throw', `${this.name}: ${where}() rejected with a non-CaptureFileError: ${(e as Error)?.stack ?? String(e)}`);
    if (!(e.offset >= 0 && e.offset <= size)) throw new Finding('invariant', `${this.name}: error offset ${e.offset} outside the file (${size} bytes): ${e.message}`);
    return `${e.code}|${e.message.replace(this.path, 'F')}`;
  }
}

// ---------------------------------------------------------------- worker

export class WorkerTarget implements Target {
  readonly name = 'worker' as const;
  readonly slowMs = 3000;
  constructor(private readonly convs: TimedFrame[][]) {}

  generate(rng: Rng): Case {
    const conv = rng.pick(this.convs);
    const linkType = conv[0]!.linkType;
    let frames: TimedFrame[] = conv.map((f) => ({ ...f }));
    if (rng.chance(0.2)) {
      // interleave another conversation of the same link type
      const o = rng.pick(this.convs);
      if (o[0]!.linkType === linkType) {
        const merged: TimedFrame[] = [];
        let i = 0;
        let j = 0;
        while (i < frames.length || j < o.length) {
          if (j >= o.length || (i < frames.length && rng.chance(0.5))) merged.push(frames[i++]!);
          else merged.push({ ...o[j++]!, tsSec: frames[Math.min(i, frames.length - 1)]!.tsSec });
        }
        frames = merged;
      }
    }
    for (let m = rng.small(8); m > 0 && frames.length > 0; m--) {
      const i = rng.int(frames.length);
      const f = frames[i]!;
      switch (rng.int(8)) {
        case 0:
        case 1:
        case 2:
          f.data = mutate(rng, f.data, (b) => frameFields(b, linkType));
          f.len = f.data.length;
          break;
        case 3:
          frames.splice(i, 0, { ...f });
          break;
        case 4:
          frames.splice(i, 1);
          break;
        case 5: {
          const j = rng.int(frames.length);
          frames[i] = frames[j]!;
          frames[j] = f;
          break;
        }
        case 6: {
          // time: backwards, a jump (within and beyond every timeout and window), or an extreme
          const k = rng.int(6);
          let ns = (f.tsSec - 1_700_000_000) * 1e9 + f.tsNsec;
          if (k === 0) ns -= rng.int(5e9);
          else if (k === 1) ns += rng.pick([1e6, 999e6, 1e9, 15e9, 60e9, 300e9, 3600e9, 86400e9]);
          else if (k === 2) ns = rng.int(2 ** 32) * 1e9 - 1_700_000_000e9;
          else if (k === 3) ns += rng.int(1e9);
          else ns = -1_700_000_000e9 + rng.pick([0, 1, 2 ** 32 - 1]) * 1e9;
          const sec = Math.min(2 ** 32 - 1, Math.max(0, 1_700_000_000 + Math.floor(ns / 1e9)));
          const shiftSec = sec - f.tsSec;
          const nsec = ((ns % 1e9) + 1e9) % 1e9;
          // move this frame and (often) everything after it
          const all = rng.chance(0.5);
          for (let k2 = i; k2 < (all ? frames.length : i + 1); k2++) {
            const g = frames[k2]!;
            g.tsSec = Math.min(2 ** 32 - 1, Math.max(0, g.tsSec + shiftSec));
            if (k2 === i) g.tsNsec = Math.floor(nsec);
          }
          break;
        }
        default:
          f.len = rng.pick([0, f.data.length - 1, f.data.length + 1, 65536, 0xffffffff]) >>> 0;
      }
    }
    const maxFlows = rng.pick([1, 2, 3, 8, 1024]);
    const meta = [linkType, maxFlows, rng.pick([0, 0, 1000, 60_000_000]), rng.pick([1, 50, 15_000]), rng.pick([1, 2, 5, 8192]), rng.pick([1, 3, 65536]), rng.pick([1, 2, 8]), rng.pick([1, 1000])];
    return { bytes: pcapOf(frames, linkType), meta };
  }

  run(c: Case): void {
    const [linkType = 1, maxFlows = 1024, windowUs = 0, idleTimeoutMs = 15_000, batchFrames = 8192, tickEveryFrames = 65536, maxHoles = 8, finLingerMs = 1000] = c.meta;
    const frames = parsePcapRecords(c.bytes);
    const records: FlowRecord[] = [];
    const worker = new CaptureWorker({
      onRecord: (r) => records.push(r),
      windowUs,
      tickEveryFrames,
      table: { maxFlows, initialCapacity: Math.min(maxFlows, 2), idleTimeoutMs, finLingerMs, activeTimeoutMs: Math.max(idleTimeoutMs, 1), tcp: { maxHoles }, icmp: { maxPending: 4 }, fragmentSlots: 4, agentId: 'fuzz' },
    });
    const source = { linkType: () => linkType };
    try {
      for (let i = 0; i < frames.length; i += batchFrames) {
        const batch = batchOf(c.bytes, frames.slice(i, i + batchFrames));
        worker.processBatch(batch, source);
        const table = (worker as unknown as { table?: FlowTable }).table;
        if (table) checkTable(table, maxFlows, maxHoles);
      }
      worker.flush();
    } catch (e) {
      if (e instanceof Finding) throw e;
      throw new Finding('throw', `worker threw: ${(e as Error)?.stack ?? String(e)}`);
    }
    const l = worker.ledger();
    if (l.frames !== frames.length) throw new Finding('invariant', `ledger frames ${l.frames} != ${frames.length}`);
    if (l.decoded + l.undecodable !== l.frames) throw new Finding('invariant', `decoded ${l.decoded} + undecodable ${l.undecodable} != frames ${l.frames}`);
    if (l.activeFlows !== 0) throw new Finding('invariant', `${l.activeFlows} flows left after flush`);
    let packets = 0;
    for (const r of records) {
      packets += r.clientToServer.packets + r.serverToClient.packets;
      const p = checkRecord(r);
      if (p) throw new Finding('invariant', `record ${r.sequence} (${r.exportReason}): ${p}`);
    }
    if (packets !== l.decoded) throw new Finding('invariant', `records account for ${packets} packets, ${l.decoded} frames were decoded`);
    // every record survives each codec (a sample: the first few)
    for (const r of records.slice(0, 3)) {
      for (const fmt of RECORD_FORMATS) roundTrip('flow-record', r, fmt, 'worker record');
    }
  }
}

function checkTable(t: FlowTable, maxFlows: number, maxHoles: number): void {
  if (t.size > maxFlows) throw new Finding('memory', `flow table holds ${t.size} flows, maxFlows ${maxFlows}`);
  if (t.capacity > maxFlows) throw new Finding('memory', `flow table capacity ${t.capacity}, maxFlows ${maxFlows}`);
  for (const x of t.tcp.extras.values()) {
    for (const h of x.holes ?? []) if (h.length > maxHoles * 4) throw new Finding('memory', `${h.length / 4} holes, maxHoles ${maxHoles}`);
  }
  if (t.tcp.extras.size > t.capacity) throw new Finding('memory', `${t.tcp.extras.size} TCP extras for ${t.capacity} slots`);
  for (const s of t.icmp.states.values()) if (s.pending.length > 4 * 3) throw new Finding('memory', `${s.pending.length / 3} pending echo requests, maxPending 4`);
  if (t.icmp.states.size > t.capacity) throw new Finding('memory', `${t.icmp.states.size} echo states for ${t.capacity} slots`);
}

function checkRecord(r: FlowRecord): string | null {
  const nums: [string, number][] = [
    ['startUs', r.startUs],
    ['endUs', r.endUs],
    ['lossRate', r.lossRate],
  ];
  for (const [name, d] of [
    ['c2s', r.clientToServer],
    ['s2c', r.serverToClient],
  ] as const) {
    nums.push([`${name}.packets`, d.packets], [`${name}.bytes`, d.bytes], [`${name}.firstUs`, d.firstUs], [`${name}.lastUs`, d.lastUs]);
    if (d.packets > 0 && d.firstUs > d.lastUs) return `${name} firstUs ${d.firstUs} > lastUs ${d.lastUs}`;
  }
  for (const [k, v] of nums) if (!Number.isFinite(v) || v < 0) return `${k} = ${v}`;
  if (r.startUs > r.endUs) return `startUs ${r.startUs} > endUs ${r.endUs}`;
  if (r.tcp) {
    for (const d of [r.tcp.clientToServer, r.tcp.serverToClient]) for (const [k, v] of Object.entries(d)) if (!isU(v, 2 ** 53)) return `tcp.${k} = ${v}`;
    for (const v of [r.tcp.handshakeClientUs, r.tcp.handshakeServerUs, r.tcp.handshakeRttUs]) if (v !== undefined && !Number.isFinite(v)) return `handshake figure ${v}`;
  }
  return null;
}

/** Records of a little-endian ns pcap written by pcapOf: [offset, caplen, len, sec, nsec] each. */
function parsePcapRecords(b: Uint8Array): number[][] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: number[][] = [];
  for (let p = 24; p + 16 <= b.length; ) {
    const caplen = v.getUint32(p + 8, true);
    out.push([p + 16, caplen, v.getUint32(p + 12, true), v.getUint32(p, true), v.getUint32(p + 4, true)]);
    p += 16 + caplen;
  }
  return out;
}

function batchOf(data: Uint8Array, recs: number[][]): FrameBatch {
  const b = allocBatch(Math.max(1, recs.length), 0);
  b.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  b.count = recs.length;
  recs.forEach(([off, caplen, len, sec, nsec], i) => {
    b.offset[i] = off!;
    b.caplen[i] = caplen!;
    b.len[i] = len!;
    b.tsSec[i] = sec!;
    b.tsNsec[i] = nsec!;
    b.ifIndex[i] = 0;
  });
  return b;
}

// ---------------------------------------------------------------- codec

function roundTrip(kind: RecordKind, value: unknown, fmt: RecordFormat, what: string): void {
  let enc: Buffer;
  try {
    enc = encodeRecord(kind, value as never, fmt);
  } catch (e) {
    throw new Finding('codec-encode', `${what} cannot be encoded as ${fmt}: ${(e as Error).message}`);
  }
  let again: Buffer;
  let third: Buffer;
  let back: unknown;
  try {
    back = decodeRecord(kind, enc, fmt);
    again = encodeRecord(kind, back as never, fmt);
    third = encodeRecord(kind, decodeRecord(kind, again, fmt) as never, fmt);
  } catch (e) {
    throw new Finding('codec-roundtrip', `${what} encoded as ${fmt} does not decode and re-encode: ${(e as Error).message}`);
  }
  // The value must survive (JSON.stringify equates -0 and 0: a decoded -0 double is written as "0"
  // in proto3 JSON, which reads back as the default 0 — equivalent, so not reported), and the
  // encoding must be stable from the second round on.
  if (canonical(back) !== canonical(value)) throw new Finding('codec-roundtrip', `${what}: ${fmt} encode → decode changed the value`);
  if (!again.equals(third)) throw new Finding('codec-roundtrip', `${what}: ${fmt} encoding not stable (${again.length} → ${third.length} bytes)`);
}

/** replay's direct writers on a record the codec accepted: the codec's bytes (JSON: the table-driven mapping). */
function directWriters(kind: RecordKind, value: unknown, what: string): void {
  if (kind !== 'flow-record' && kind !== 'pair-window') return;
  const flow = kind === 'flow-record';
  const json = `${JSON.stringify(flow ? toProto3Json(value as FlowRecord) : pairWindowToProto3Json(value as PairWindow))}\n`;
  const o = new ProtoSink(16); // small: grows while writing
  try {
    if (flow) writeFlowRecordJsonLine(o, value as FlowRecord);
    else writePairWindowJsonLine(o, value as PairWindow);
  } catch (e) {
    throw new Finding('json-writer', `${what}: the JSON line writer threw: ${(e as Error).message}`);
  }
  if (o.view().toString('utf8') !== json) throw new Finding('json-writer', `${what}: the JSON line writer wrote other text than the proto3 mapping`);
  const pb = new ProtoSink(16);
  try {
    if (flow) writeFlowRecordDelimited(pb, value as FlowRecord);
    else writePairWindowDelimited(pb, value as PairWindow);
  } catch (e) {
    throw new Finding('protobuf-writer', `${what}: the protobuf writer threw: ${(e as Error).message}`);
  }
  if (!pb.view().equals(encodeRecordDelimited(kind, value as never))) throw new Finding('protobuf-writer', `${what}: the protobuf writer wrote other bytes than the codec`);
}

/** JSON text with sorted keys (records built by hand and decoded ones order their fields differently). */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  );
}

export class CodecTarget implements Target {
  readonly name = 'codec' as const;
  readonly slowMs = 500;
  private readonly seeds: { kind: number; fmt: number; bytes: Uint8Array }[] = [];

  constructor() {
    const values: [RecordKind, unknown][] = [...flowRecords(3).map((r) => ['flow-record', r] as [RecordKind, unknown]), ['pair-window', pairWindow(1)], ['pair-window', pairWindow(2)]];
    for (const [kind, v] of values) {
      RECORD_FORMATS.forEach((fmt, fi) => this.seeds.push({ kind: RECORD_KINDS.indexOf(kind), fmt: fi, bytes: new Uint8Array(encodeRecord(kind, v as never, fmt)) }));
    }
  }

  generate(rng: Rng): Case {
    const s = rng.pick(this.seeds);
    const fmt = rng.chance(0.05) ? rng.int(RECORD_FORMATS.length) : s.fmt;
    const kind = rng.chance(0.05) ? rng.int(RECORD_KINDS.length) : s.kind;
    let bytes: Uint8Array;
    if (RECORD_FORMATS[s.fmt] === 'json' && rng.chance(0.5)) bytes = mutateJson(rng, s.bytes);
    else bytes = mutate(rng, s.bytes, () => [], rng.chance(0.2) ? rng.pick(this.seeds).bytes : undefined);
    return { bytes, meta: [kind, fmt] };
  }

  run(c: Case): void {
    const kind = RECORD_KINDS[c.meta[0] ?? 0] ?? 'flow-record';
    const fmt = RECORD_FORMATS[c.meta[1] ?? 0] ?? 'json';
    let value: unknown;
    try {
      value = decodeRecord(kind, c.bytes, fmt);
    } catch (e) {
      if (e instanceof CodecError && e.code === 'codec-decode') return;
      throw new Finding('throw', `decode ${kind} ${fmt} threw a non-CodecError: ${(e as Error)?.stack ?? String(e)}`);
    }
    for (const f of RECORD_FORMATS) roundTrip(kind, value, f, `a ${kind} decoded from ${fmt}`);
    directWriters(kind, value, `a ${kind} decoded from ${fmt}`);
  }
}

const JSON_VALUES: unknown[] = [null, true, 0, -1, 1.5, 2 ** 53, 2 ** 64, -(2 ** 63), 1e308, -0, '', '0', '-1', 'NaN', 'Infinity', '9007199254740993', '18446744073709551616', 'x'.repeat(300), [], {}, [1, 2], { a: 1 }];

/** Parses the JSON text, replaces, deletes or duplicates one value somewhere in it, and prints it again. */
function mutateJson(rng: Rng, bytes: Uint8Array): Uint8Array {
  let root: unknown;
  try {
    root = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return mutateBlind(rng, bytes.slice());
  }
  const holders: [Record<string, unknown> | unknown[], string | number][] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach((x, i) => (holders.push([v, i]), walk(x)));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) holders.push([v as Record<string, unknown>, k]), walk(x);
  };
  walk(root);
  for (let m = rng.small(3); m > 0 && holders.length > 0; m--) {
    const [h, k] = rng.pick(holders);
    const r = rng.int(5);
    const cur = (h as Record<string, unknown>)[k as string];
    if (r === 0 && !Array.isArray(h)) delete (h as Record<string, unknown>)[k as string];
    else if (r === 1 && typeof cur === 'number') (h as Record<string, unknown>)[k as string] = cur + rng.pick([-1, 1, 0.5, 2 ** 32, -(2 ** 53)]);
    else if (r === 2 && Array.isArray(cur)) for (let i = rng.small(3000); i > 0; i--) cur.push(cur[0] ?? 0);
    else (h as Record<string, unknown>)[k as string] = rng.pick(JSON_VALUES);
  }
  return new Uint8Array(Buffer.from(JSON.stringify(root), 'utf8'));
}
