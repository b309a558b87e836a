import { expect } from 'chai';
import { RttSketch, bucketIndex, bucketLowerNs, bucketWidthNs } from '../../../src/capture/rtt-sketch.js';
import { rng } from '../../helpers/rng.js';


function nearestRank(sorted: number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

describe('capture/rtt-sketch', () => {
  it('buckets are contiguous, each value inside its bucket, width ≤ 1/128 of the lower bound', () => {
    let prevEnd = 0;
    for (let b = 0; b < 128 * 40; b++) {
      const lo = bucketLowerNs(b);
      const w = bucketWidthNs(b);
      expect(lo, `bucket ${b}`).to.equal(prevEnd);
      prevEnd = lo + w;
      if (lo >= 256) expect(w / lo).to.be.at.most(1 / 128);
      expect(bucketIndex(lo)).to.equal(b);
      expect(bucketIndex(lo + w - 1)).to.equal(b);
    }
    for (const v of [2 ** 31 - 1, 2 ** 31, 2 ** 32 + 5, 3.7e12]) {
      const b = bucketIndex(v);
      expect(v).to.be.at.least(bucketLowerNs(b));
      expect(v).to.be.below(bucketLowerNs(b) + bucketWidthNs(b));
    }
  });

  it('keeps exact count/min/max/sum and answers quantiles within 0.5 % (log-normal data)', () => {
    const r = rng(42);
    const s = new RttSketch();
    const xs: number[] = [];
    for (let i = 0; i < 20000; i++) {
      // Box-Muller log-normal around 200 µs
      const z = Math.sqrt(-2 * Math.log(r() || 1e-12)) * Math.cos(2 * Math.PI * r());
      const v = Math.round(200_000 * Math.exp(0.8 * z));
      xs.push(v);
      s.add(v);
    }
    xs.sort((a, b) => a - b);
    expect(s.count).to.equal(xs.length);
    expect(s.minNs).to.equal(xs[0]);
    expect(s.maxNs).to.equal(xs[xs.length - 1]);
    expect(s.sumNs).to.equal(xs.reduce((a, b) => a + b, 0));
    for (const q of [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999]) {
      const exact = nearestRank(xs, q);
      expect(Math.abs(s.quantileNs(q) - exact) / exact, `q=${q}`).to.be.at.most(0.005);
    }
  });

  it('merged sketches of many flows give p50/p95 within 1 % of the pooled data, also after serialization', () => {
    const r = rng(7);
    const merged = new RttSketch();
    const all: number[] = [];
    for (let flow = 0; flow < 500; flow++) {
      const s = new RttSketch();
      const base = 20_000 + r() * 2_000_000; // 20 µs … 2 ms per flow
      const n = 1 + Math.floor(r() * 40);
      for (let i = 0; i < n; i++) {
        const v = Math.floor(base * (0.8 + 0.6 * r()));
        s.add(v);
        all.push(v);
      }
      merged.merge(RttSketch.fromData(JSON.parse(JSON.stringify(s.toData()))));
    }
    all.sort((a, b) => a - b);
    expect(merged.count).to.equal(all.length);
    for (const q of [0.5, 0.95]) {
      const exact = nearestRank(all, q);
      expect(Math.abs(merged.quantileNs(q) - exact) / exact, `q=${q}`).to.be.at.most(0.01);
    }
    expect(merged.minNs).to.equal(all[0]);
    expect(merged.maxNs).to.equal(all[all.length - 1]);
  });

  it('is exact below 256 ns, empty gives NaN, serializes compactly (delta-encoded buckets)', () => {
    const s = new RttSketch();
    expect(s.quantileNs(0.5)).to.be.NaN;
    for (const v of [10, 10, 11, 200]) s.add(v);
    expect(s.quantileNs(0.5)).to.equal(10);
    expect(s.quantileNs(0.75)).to.equal(11);
    const d = s.toData();
    expect(d.bucketDeltas).to.deep.equal([10, 1, 189]);
    expect(d.bucketCounts).to.deep.equal([2, 1, 1]);
    expect(d).to.include({ count: 4, minUs: 0.01, maxUs: 0.2 });
    const back = RttSketch.fromData(d);
    expect(back.quantileNs(0.75)).to.equal(11);
  });
});
