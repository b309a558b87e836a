import { expect } from 'chai';
import { ForgettingMoments, logGamma, logGammaP, logNormalCdf, logPoissonTail, poissonTail } from '../../../src/pipeline/stats.js';

/** ln P(X ≥ k; λ) by summing the pmf in log space (reference, slow). */
function referenceLogTail(k: number, lambda: number): number {
  let logPmf = -lambda;
  for (let i = 1; i <= k; i++) logPmf += Math.log(lambda / i); // ln P(X = k)
  let m = logPmf;
  let sum = 1; // Σ P(X = j) / P(X = k), j ≥ k
  let ratio = 1;
  for (let j = k + 1; j < k + 100_000; j++) {
    ratio *= lambda / j;
    sum += ratio;
    if (ratio < 1e-18 * sum) break;
  }
  m += Math.log(sum);
  return m;
}

describe('pipeline/stats', () => {
  it('logGamma matches known values', () => {
    expect(logGamma(1)).to.be.closeTo(0, 1e-13);
    expect(logGamma(2)).to.be.closeTo(0, 1e-13);
    expect(logGamma(5)).to.be.closeTo(Math.log(24), 1e-12);
    expect(logGamma(0.5)).to.be.closeTo(0.5 * Math.log(Math.PI), 1e-12);
    let lf = 0;
    for (let i = 2; i < 1000; i++) lf += Math.log(i);
    expect(logGamma(1000)).to.be.closeTo(lf, 1e-9 * lf);
  });

  it('Poisson tail: exact small cases', () => {
    expect(poissonTail(0, 3)).to.equal(1);
    expect(poissonTail(1, 0)).to.equal(0);
    expect(poissonTail(1, 2)).to.be.closeTo(1 - Math.exp(-2), 1e-13);
    expect(poissonTail(3, 2)).to.be.closeTo(1 - 5 * Math.exp(-2), 1e-13);
    expect(poissonTail(1, 1e-9)).to.be.closeTo(1e-9, 1e-17);
  });

  it('Poisson tail in log space agrees with a direct sum, far into the tail', () => {
    const cases: [number, number][] = [
      [500, 500],
      [550, 500],
      [600, 500],
      [700, 500],
      [1000, 500],
      [5000, 500],
      [40, 5],
      [480, 500],
      [300, 500],
      [12, 3.5],
      [100_500, 100_000],
    ];
    for (const [k, lambda] of cases) {
      const ref = referenceLogTail(k, lambda);
      const got = logPoissonTail(k, lambda);
      expect(Number.isFinite(got), `k=${k} λ=${lambda}`).to.equal(true);
      expect(got, `k=${k} λ=${lambda}`).to.be.closeTo(ref, Math.max(1e-9, 1e-9 * Math.abs(ref)));
    }
    // far below the double range as a probability, still a finite log
    expect(logPoissonTail(5000, 500)).to.be.lessThan(-3000);
    expect(poissonTail(5000, 500)).to.equal(0);
  });

  it('Poisson tail is monotone in k and in λ', () => {
    let prev = 0;
    for (let k = 0; k <= 2000; k += 25) {
      const v = logPoissonTail(k, 700);
      expect(v).to.be.at.most(prev);
      prev = v;
    }
    prev = -Infinity;
    for (let lambda = 1; lambda <= 2000; lambda += 37) {
      const v = logPoissonTail(900, lambda);
      expect(v).to.be.at.least(prev);
      prev = v;
    }
  });

  it('huge counts use the Wilson–Hilferty approximation, within 1 % of the series', () => {
    for (const [k, lambda] of [
      [20_030_000, 20_000_000],
      [20_100_000, 20_000_000],
      [19_990_000, 20_000_000],
    ] as const) {
      const series = logGammaP(k, lambda);
      const approx = logPoissonTail(k, lambda);
      expect(approx, `k=${k}`).to.be.closeTo(series, 0.01 * Math.abs(series) + 1e-3);
    }
  });

  it('log normal CDF is accurate in the far tail', () => {
    expect(Math.exp(logNormalCdf(0))).to.be.closeTo(0.5, 1e-7);
    expect(Math.exp(logNormalCdf(-1.959963985))).to.be.closeTo(0.025, 1e-8);
    expect(logNormalCdf(-10)).to.be.closeTo(Math.log(7.6198530241605e-24), 1e-6);
    expect(logNormalCdf(-40)).to.be.closeTo(-804.6084420137538, 1e-6);
    expect(logNormalCdf(8)).to.be.closeTo(-6.22096057427174e-16, 1e-18);
  });

  it('forgetting moments: exact mean and variance at first, then exponentially weighted', () => {
    const m = new ForgettingMoments(0.1);
    const xs = [10, 12, 8, 11, 9];
    for (const x of xs) m.add(x);
    const mean = xs.reduce((s, x) => s + x) / xs.length;
    const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
    expect(m.mean).to.be.closeTo(mean, 1e-12);
    expect(m.variance).to.be.closeTo(variance, 1e-12);
    // a level shift is forgotten at rate alpha
    for (let i = 0; i < 200; i++) m.add(100);
    expect(m.mean).to.be.closeTo(100, 1e-6);
    expect(m.std).to.be.lessThan(0.01);
  });
});
