/**
 * The fuzz loop, run in a worker thread so that the supervisor (scripts/fuzz.ts) can watch it:
 * before each case the input is copied into a SharedArrayBuffer and a progress counter is bumped
 * after it, so a case that hangs (no progress for the deadline) or blows the heap can be saved by
 * the supervisor even though this thread is stuck or gone.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { Rng } from './rng.js';
import { createTarget, DecodeTarget, Finding, FUZZ_ROOT, CodecTarget, FileTarget, WorkerTarget, type Case, type Target, type TargetName } from './targets.js';
import { pcapFields, pcapngFields } from './fields.js';

/** SharedArrayBuffer layout: int32 [progress, byteLength, metaCount, ready], float64 meta at 64, bytes at 256. */
export const SAB_META_AT = 64;
export const SAB_BYTES_AT = 256;
export const SAB_BYTES = 4 * 1024 * 1024;

export interface RunnerData {
  target: TargetName;
  seconds: number;
  seed: number;
  sab: SharedArrayBuffer;
}

export type RunnerMessage =
  | { type: 'ready'; seeds: string }
  | { type: 'finding'; line: string }
  | { type: 'done'; execs: number; seconds: number; findings: number; unique: number; slow: number };

export function publish(sab: SharedArrayBuffer, c: Case): void {
  const ints = new Int32Array(sab, 0, 4);
  const meta = new Float64Array(sab, SAB_META_AT, 16);
  const n = Math.min(c.bytes.length, SAB_BYTES);
  new Uint8Array(sab, SAB_BYTES_AT, n).set(n === c.bytes.length ? c.bytes : c.bytes.subarray(0, n));
  ints[1] = n;
  ints[2] = Math.min(c.meta.length, 16);
  for (let i = 0; i < ints[2]!; i++) meta[i] = c.meta[i]!;
}

export function published(sab: SharedArrayBuffer): Case {
  const ints = new Int32Array(sab, 0, 4);
  const meta = new Float64Array(sab, SAB_META_AT, 16);
  return { bytes: new Uint8Array(sab, SAB_BYTES_AT, ints[1]!).slice(), meta: Array.from(meta.subarray(0, ints[2]!)) };
}

/** Saves a case as a commented hex file (the format replay and the regression tests read). */
export function saveCase(target: string, kind: string, c: Case, message: string, tag: string): string {
  const dir = join(FUZZ_ROOT, target);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${kind}-${tag}.hex`);
  const hex = Buffer.from(c.bytes).toString('hex');
  const lines = [`# target=${target}`, `# meta=${c.meta.join(',')}`, `# finding=${kind}: ${message.split('\n')[0]}`];
  for (let i = 0; i < hex.length; i += 64) lines.push(hex.slice(i, i + 64));
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

/** Reads a file written by saveCase. */
export function loadCase(path: string): { target: TargetName; c: Case } {
  const text = readFileSync(path, 'utf8');
  const header = (k: string) => text.match(new RegExp(`^# ${k}=(.*)$`, 'm'))?.[1] ?? '';
  const hex = text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('')
    .replace(/[^0-9a-fA-F]/g, '');
  const meta = header('meta') === '' ? [] : header('meta').split(',').map(Number);
  return { target: header('target') as TargetName, c: { bytes: new Uint8Array(Buffer.from(hex, 'hex')), meta } };
}

/** A target without seeds, enough to run saved cases. */
export function replayTarget(name: TargetName): Target {
  switch (name) {
    case 'decode':
      return new DecodeTarget([]);
    case 'pcap':
      return new FileTarget('pcap', [], pcapFields);
    case 'pcapng':
      return new FileTarget('pcapng', [], pcapngFields);
    case 'worker':
      return new WorkerTarget([]);
    case 'codec':
      return new CodecTarget();
  }
}

export function signature(kind: string, message: string): string {
  const norm = `${kind}:${message.split('\n').slice(0, 2).join('|').replace(/\d+/g, 'N').slice(0, 200)}`;
  return createHash('sha1').update(norm).digest('hex').slice(0, 10);
}

async function runCase(t: Target, c: Case): Promise<void> {
  const r = t.run(c);
  if (r) await r;
}

async function main(data: RunnerData): Promise<void> {
  const port = parentPort!;
  const post = (m: RunnerMessage) => port.postMessage(m);
  const t = await createTarget(data.target);
  const ints = new Int32Array(data.sab, 0, 4);
  post({ type: 'ready', seeds: describe(t) });
  Atomics.store(ints, 3, 1);
  const rng = new Rng(data.seed);
  const seen = new Map<string, number>();
  let findings = 0;
  let slow = 0;
  let execs = 0;
  const start = performance.now();
  const stopAt = start + data.seconds * 1000;
  while (performance.now() < stopAt) {
    for (let k = 0; k < 64; k++) {
      const c = t.generate(rng);
      publish(data.sab, c);
      const t0 = performance.now();
      let failure: Finding | undefined;
      try {
        await runCase(t, c);
      } catch (e) {
        failure = e instanceof Finding ? e : new Finding('harness', `harness error: ${(e as Error)?.stack ?? String(e)}`);
      }
      const dt = performance.now() - t0;
      if (!failure && dt > t.slowMs) {
        // a GC pause or a busy machine, or really slow? run it again twice
        let best = dt;
        for (let r = 0; r < 2 && best > t.slowMs; r++) {
          const t1 = performance.now();
          await runCase(t, c).catch(() => undefined);
          best = Math.min(best, performance.now() - t1);
        }
        if (best > t.slowMs) failure = new Finding('slow', `${t.name} case took ${best.toFixed(1)} ms (limit ${t.slowMs} ms)`);
        if (best > t.slowMs) slow++;
      }
      if (failure) {
        findings++;
        const sig = signature(failure.kind, failure.message);
        const n = (seen.get(sig) ?? 0) + 1;
        seen.set(sig, n);
        if (n <= 3) {
          const path = saveCase(t.name, failure.kind, c, failure.message, `${sig}-${n}`);
          post({ type: 'finding', line: `FINDING ${t.name} ${failure.kind} ${failure.message.split('\n')[0]!.slice(0, 300)} → ${path}` });
        }
      }
      execs++;
      Atomics.add(ints, 0, 1);
    }
  }
  post({ type: 'done', execs, seconds: (performance.now() - start) / 1000, findings, unique: seen.size, slow });
}

function describe(t: Target): string {
  const x = t as unknown as { seeds?: unknown[]; convs?: unknown[] };
  return `${(x.seeds ?? x.convs ?? []).length} seeds`;
}

if (parentPort && workerData && (workerData as RunnerData).sab) {
  main(workerData as RunnerData).catch((e) => {
    parentPort!.postMessage({ type: 'finding', line: `FINDING harness crashed: ${(e as Error)?.stack ?? String(e)}` });
    process.exit(3);
  });
}
