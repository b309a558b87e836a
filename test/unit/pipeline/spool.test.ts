import { expect } from 'chai';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool } from '../../../src/pipeline/spool.js';

const entry = (i: number, size = 20): Buffer => {
  const b = Buffer.alloc(size, i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
};
const ids = (bs: Buffer[]): number[] => bs.map((b) => b.readUInt32BE(0));
const segFiles = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.seg')).sort();

/** Reads everything pending, acknowledging as it goes. */
function drain(s: Spool, batch = 7): number[] {
  const out: number[] = [];
  for (;;) {
    const got = s.peek(batch, 1 << 20);
    if (!got.length) return out;
    out.push(...ids(got));
    s.ack(got.length);
  }
}

describe('pipeline/spool', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mf-spool-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('replays entries in order, across segments, and acknowledged ones never again', () => {
    const s = Spool.open(dir, { limitBytes: 1 << 20, segmentBytes: 4096 });
    const n = 1000;
    s.append(Array.from({ length: n }, (_, i) => entry(i)));
    expect(s.pending).to.equal(n);
    expect(segFiles(dir).length).to.be.greaterThan(3);
    const first = s.peek(10, 1 << 20);
    expect(ids(first)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // peek does not consume
    expect(ids(s.peek(3, 1 << 20))).to.deep.equal([0, 1, 2]);
    s.ack(3);
    expect(ids(s.peek(2, 1 << 20))).to.deep.equal([3, 4]);
    s.ack(2);
    expect(drain(s)).to.deep.equal(Array.from({ length: n - 5 }, (_, i) => i + 5));
    expect(s.pending).to.equal(0);
    // consumed segments are gone: one empty segment remains
    expect(segFiles(dir)).to.have.length(1);
    expect(s.diskBytes).to.equal(0);
    s.close();
  });

  it('respects maxBytes but always returns at least one entry', () => {
    const s = Spool.open(dir, { limitBytes: 1 << 20 });
    s.append([entry(1, 100), entry(2, 100), entry(3, 5000)]);
    expect(ids(s.peek(10, 150))).to.deep.equal([1]);
    s.ack(1);
    expect(ids(s.peek(10, 150))).to.deep.equal([2]);
    s.ack(1);
    const big = s.peek(10, 150);
    expect(ids(big)).to.deep.equal([3]);
    expect(big[0]!.length).to.equal(5000);
    s.close();
  });

  it('survives a restart: unacknowledged entries come back, acknowledged ones do not', () => {
    const s = Spool.open(dir, { limitBytes: 1 << 20, segmentBytes: 2048 });
    s.append(Array.from({ length: 300 }, (_, i) => entry(i)));
    let got = s.peek(120, 1 << 20);
    s.ack(got.length);
    got = s.peek(5, 1 << 20); // peeked, not acknowledged: must come again
    s.close();
    const again = Spool.open(dir, { limitBytes: 1 << 20, segmentBytes: 2048 });
    expect(again.pending).to.equal(180);
    again.append([entry(300), entry(301)]);
    expect(drain(again)).to.deep.equal(Array.from({ length: 182 }, (_, i) => i + 120));
    again.close();
    const third = Spool.open(dir, { limitBytes: 1 << 20 });
    expect(third.pending).to.equal(0);
    third.close();
  });

  it('drops the oldest entries at the limit and counts them', () => {
    const limit = 16 * 1024;
    const s = Spool.open(dir, { limitBytes: limit, segmentBytes: 2048 });
    const n = 2000; // 2000 × 28 framed bytes = 56 000 > 16 KiB
    for (let i = 0; i < n; i++) s.append([entry(i)]);
    const st = s.snapshot();
    expect(st.diskBytes).to.be.at.most(limit);
    expect(st.dropped).to.be.greaterThan(0);
    expect(st.dropped + st.pending).to.equal(n);
    const rest = drain(s);
    expect(rest).to.have.length(st.pending);
    // what is left is the newest, contiguous, in order
    expect(rest).to.deep.equal(Array.from({ length: rest.length }, (_, i) => n - rest.length + i));
    s.close();
  });

  it('counts dropped entries that were partly acknowledged correctly', () => {
    const s = Spool.open(dir, { limitBytes: 8192, segmentBytes: 1024 });
    s.append(Array.from({ length: 30 }, (_, i) => entry(i))); // 840 bytes: first segment
    s.ack(s.peek(10, 1 << 20).length);
    for (let i = 30; i < 600; i++) s.append([entry(i)]);
    const st = s.snapshot();
    expect(st.acked).to.equal(10);
    expect(st.dropped + st.pending + st.acked).to.equal(600);
    expect(drain(s)).to.have.length(st.pending);
    s.close();
  });

  it('drops and counts an entry larger than the whole limit', () => {
    const s = Spool.open(dir, { limitBytes: 65536 });
    s.append([entry(1), Buffer.alloc(70000), entry(2)]);
    expect(s.snapshot().dropped).to.equal(1);
    expect(drain(s)).to.deep.equal([1, 2]);
    s.close();
  });

  it('detects a cut-short tail on open, truncates it and counts it', () => {
    const s = Spool.open(dir, { limitBytes: 1 << 20 });
    s.append(Array.from({ length: 10 }, (_, i) => entry(i)));
    s.close();
    const [seg] = segFiles(dir);
    const path = join(dir, seg!);
    const size = statSync(path).size;
    truncateSync(path, size - 5); // the last entry is cut in the middle
    const again = Spool.open(dir, { limitBytes: 1 << 20 });
    const st = again.snapshot();
    expect(st.corruptTruncations).to.equal(1);
    expect(st.corruptBytes).to.equal(28 - 5);
    expect(statSync(path).size).to.equal(9 * 28);
    again.append([entry(10)]);
    expect(drain(again)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 10]);
    again.close();
  });

  it('detects a checksum mismatch and garbage appended after the last entry', () => {
    const s = Spool.open(dir, { limitBytes: 1 << 20 });
    s.append(Array.from({ length: 10 }, (_, i) => entry(i)));
    s.close();
    const path = join(dir, segFiles(dir)[0]!);
    const data = readFileSync(path);
    data[7 * 28 + 8 + 10] ^= 0xff; // a payload byte of entry 7
    writeFileSync(path, data);
    appendFileSync(path, Buffer.from('garbage'));
    const again = Spool.open(dir, { limitBytes: 1 << 20 });
    expect(again.snapshot().corruptTruncations).to.equal(1);
    expect(again.snapshot().corruptBytes).to.equal(3 * 28 + 7);
    expect(drain(again)).to.deep.equal([0, 1, 2, 3, 4, 5, 6]);
    again.close();
  });

  it('a damaged cursor file restarts from the oldest entry (counted)', () => {
    const s = Spool.open(dir, { limitBytes: 1 << 20 });
    s.append(Array.from({ length: 5 }, (_, i) => entry(i)));
    s.ack(s.peek(2, 1 << 20).length);
    s.close();
    writeFileSync(join(dir, 'cursor'), '{"seq": "x"');
    const again = Spool.open(dir, { limitBytes: 1 << 20 });
    expect(again.snapshot().cursorResets).to.equal(1);
    expect(drain(again)).to.deep.equal([0, 1, 2, 3, 4]);
    again.close();
  });

  it('refuses ack beyond the last peek', () => {
    const s = Spool.open(dir, { limitBytes: 1 << 20 });
    s.append([entry(1)]);
    s.peek(1, 100);
    expect(() => s.ack(2)).to.throw(/ack beyond the last peek/);
    s.close();
  });
});
