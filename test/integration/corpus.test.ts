/**
 * Every capture of the tcpdump test corpus (../shared/corpus/tcpdump-ethernet/, hundreds of real and
 * fuzzed files) is read and decoded without throwing, hanging or growing memory; damaged files end
 * with a CaptureFileError naming an offset. Copies of some files cut mid-record must end that way too.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { decodeFrame } from '../../src/capture/decode/decode.js';
import { DECODE_ERROR_NAMES, DecodedFrame } from '../../src/capture/decode/frame.js';
import { CaptureFileError } from '../../src/capture/file-error.js';
import { openCaptureFile } from '../../src/capture/open-file.js';

const CORPUS = resolve(process.cwd(), '../shared/corpus/tcpdump-ethernet');
const PER_FILE_DEADLINE_MS = 2000;

interface FileResult {
  frames: number;
  ok: number;
  reasons: Map<string, number>;
  error?: Error;
  elapsedMs: number;
}

async function decodeFile(path: string, chunkBytes?: number): Promise<FileResult> {
  const t0 = performance.now();
  const size = statSync(path).size;
  const res: FileResult = { frames: 0, ok: 0, reasons: new Map(), elapsedMs: 0 };
  const f = new DecodedFrame();
  let src;
  try {
    src = await openCaptureFile(path, chunkBytes ? { chunkBytes } : {});
  } catch (e) {
    res.error = e as Error;
    res.elapsedMs = performance.now() - t0;
    return res;
  }
  try {
    for (;;) {
      const b = await src.next();
      if (!b) break;
      for (let i = 0; i < b.count; i++) {
        const r = decodeFrame(b.data, b.offset[i]!, b.caplen[i]!, b.len[i]!, src.linkType(b.ifIndex[i]!), f);
        if (r === 0) res.ok++;
        else res.reasons.set(DECODE_ERROR_NAMES[r]!, (res.reasons.get(DECODE_ERROR_NAMES[r]!) ?? 0) + 1);
      }
      res.frames += b.count;
      // a reader that stopped advancing would hand out frames forever: every record takes ≥ 12 bytes
      if (res.frames > size / 12) throw new Error(`more frames than the file can hold (file=${path}, frames=${res.frames})`);
      if (performance.now() - t0 > PER_FILE_DEADLINE_MS) throw new Error(`deadline exceeded (file=${path})`);
    }
  } catch (e) {
    if (!(e instanceof CaptureFileError)) throw e;
    res.error = e;
  } finally {
    await src.close();
  }
  res.elapsedMs = performance.now() - t0;
  return res;
}

describe('capture corpus (tcpdump-ethernet)', function () {
  this.timeout(60_000);

  before(function () {
    if (!existsSync(CORPUS)) throw new Error(`corpus missing: run from the repo root so that ${CORPUS} exists`);
  });

  it('reads and decodes every file within its deadline and bounded memory', async () => {
    const files = readdirSync(CORPUS).filter((n) => /\.(pcap|pcapng)$/.test(n)).sort();
    expect(files.length).to.be.greaterThan(400);
    const t0 = performance.now();
    const rss0 = process.memoryUsage().rss;
    const totals = new Map<string, number>();
    let frames = 0;
    let ok = 0;
    let withFrames = 0;
    const damaged: string[] = [];
    for (const name of files) {
      const r = await decodeFile(join(CORPUS, name));
      expect(r.elapsedMs, name).to.be.below(PER_FILE_DEADLINE_MS);
      if (r.error) {
        expect(r.error, name).to.be.instanceOf(CaptureFileError);
        expect(r.error.message, name).to.match(/\(file=.*, offset=\d+, problem=.+\)$/);
        damaged.push(`${name}: ${r.error.message}`);
      }
      frames += r.frames;
      ok += r.ok;
      if (r.frames > 0) withFrames++;
      for (const [k, v] of r.reasons) totals.set(k, (totals.get(k) ?? 0) + v);
    }
    const elapsedMs = performance.now() - t0;
    const rssGrowthMb = (process.memoryUsage().rss - rss0) / 1e6;
    const reasonList = [...totals].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(' ');
    console.log(`      corpus: files=${files.length} withFrames=${withFrames} frames=${frames} ok=${ok} damaged=${damaged.length} ${reasonList} (${elapsedMs.toFixed(0)} ms, rss +${rssGrowthMb.toFixed(0)} MB)`);
    for (const d of damaged) console.log(`      damaged: ${d}`);
    expect(withFrames / files.length).to.be.greaterThan(0.95);
    expect(frames).to.be.greaterThan(5000);
    // it is an Ethernet corpus of mostly well-formed traffic (with fuzzed files among it)
    expect(ok / frames).to.be.greaterThan(0.9);
    expect(totals.get('unsupported-linktype') ?? 0).to.be.below(frames * 0.05);
    expect(elapsedMs).to.be.below(30_000);
    expect(rssGrowthMb).to.be.below(300);
  });

  it('ends copies cut mid-record with a CaptureFileError at the cut record, after its good frames', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mf-corpus-'));
    try {
      const picks = readdirSync(CORPUS).filter((n) => /\.(pcap|pcapng)$/.test(n) && statSync(join(CORPUS, n)).size > 4000).sort().filter((_, i) => i % 10 === 0);
      expect(picks.length).to.be.greaterThan(5);
      let damaged = 0;
      for (const name of picks) {
        const whole = readFileSync(join(CORPUS, name));
        const full = await decodeFile(join(CORPUS, name));
        const cutFile = join(dir, name);
        const cut = Math.floor(whole.length * 0.6) + 1;
        writeFileSync(cutFile, whole.subarray(0, cut));
        for (const chunkBytes of [97, 1 << 20]) {
          const r = await decodeFile(cutFile, chunkBytes);
          // a cut exactly between records leaves a valid shorter file; otherwise it is damaged
          if (r.error) {
            expect(r.error, name).to.be.instanceOf(CaptureFileError);
            const offset = (r.error as CaptureFileError).offset;
            expect(offset, name).to.be.below(cut);
            expect(offset, name).to.be.above(0);
            if (chunkBytes === 97) damaged++;
          }
          expect(r.frames, name).to.be.below(full.frames + 1);
        }
      }
      expect(damaged).to.be.greaterThan(picks.length / 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
