import { expect } from 'chai';
import { decodePairWindow, encodePairWindow, RECORD_FORMATS } from '../../../src/pipeline/codec.js';
import { DEFAULT_RULES_CONFIG } from '../../../src/pipeline/rules-config.js';
import { TrendTracker, type TrendTrackerOptions } from '../../../src/pipeline/trend.js';
import { pairWindow, T0, WINDOW_US } from './alerts.fixture.js';

const tracker = (o: Partial<TrendTrackerOptions> = {}) => new TrendTracker({ ...DEFAULT_RULES_CONFIG.trend, ...o });
const win = (index: number, throughputBps: number, a = 'vm-a') => pairWindow({ index, throughputBps, a });

describe('pipeline/trend', () => {
  it('a linear ramp is forecast exactly from its second window on', () => {
    const t = tracker({ alpha: 0.3, beta: 0.2, horizonWindows: 4 });
    const x = (i: number) => 1e6 + 2.5e5 * i;
    expect(t.update(win(0, x(0)))!.forecastBps).to.deep.equal([x(0), x(0), x(0), x(0)]);
    for (let i = 1; i < 30; i++) {
      const tr = t.update(win(i, x(i)))!;
      tr.forecastBps.forEach((f, h) => expect(f, `window ${i}, h=${h + 1}`).to.be.closeTo(x(i + h + 1), 1e-6));
    }
  });

  it('a constant series gives a constant forecast and EWMA', () => {
    const t = tracker({ horizonWindows: 6 });
    for (let i = 0; i < 20; i++) {
      const tr = t.update(win(i, 8e6))!;
      expect(tr.ewmaBps).to.equal(8e6);
      expect(tr.forecastBps).to.deep.equal(Array(6).fill(8e6));
    }
  });

  it('follows Holt’s recurrences on a known series', () => {
    const t = tracker({ alpha: 0.5, beta: 0.5, ewmaAlpha: 0.5, horizonWindows: 2 });
    expect(t.update(win(0, 10))).to.deep.equal({ ewmaBps: 10, forecastBps: [10, 10] });
    expect(t.update(win(1, 12))).to.deep.equal({ ewmaBps: 11, forecastBps: [14, 16] });
    // ℓ = .5·15 + .5·(12 + 2) = 14.5, s = .5·(14.5 − 12) + .5·2 = 2.25
    expect(t.update(win(2, 15))).to.deep.equal({ ewmaBps: 13, forecastBps: [16.75, 19] });
  });

  it('forecasts are floored at zero', () => {
    const t = tracker({ horizonWindows: 5 });
    t.update(win(0, 300));
    expect(t.update(win(1, 200))!.forecastBps).to.deep.equal([100, 0, 0, 0, 0]);
  });

  it('missing windows count as zero throughput; a long gap restarts the model', () => {
    const t = tracker({ alpha: 0.5, beta: 0.5, ewmaAlpha: 0.5, horizonWindows: 1, maxGapWindows: 2 });
    t.update(win(0, 100));
    t.update(win(1, 100));
    // window 2 missing: as if 0 came: ℓ = 50, s = −25; then 100: ℓ = .5·100 + .5·25 = 62.5, s = .5·12.5 + .5·(−25) = −6.25
    expect(t.update(win(3, 100))).to.deep.equal({ ewmaBps: 75, forecastBps: [56.25] });
    // 3 windows missing > maxGapWindows: a new model
    expect(t.update(win(7, 40))).to.deep.equal({ ewmaBps: 40, forecastBps: [40] });
  });

  it('pairs are separate; state is bounded by idleness and maxPairs; out-of-order windows are left alone', () => {
    const t = tracker({ pairIdleUs: 60e6, maxPairs: 50 });
    for (let i = 0; i < 200; i++) t.update(win(0, 100, `vm-${i}`));
    expect(t.pairCount).to.be.within(25, 50);
    t.update(win(1, 5, 'vm-199'));
    expect(t.update(win(0, 5, 'vm-199'))).to.equal(undefined);
    expect(t.outOfOrderWindows).to.equal(1);
    // idle for 60 s: gone within 120 s
    t.update(win(8, 1, 'vm-x'));
    t.update(win(20, 1, 'vm-x'));
    expect(t.pairCount).to.equal(1);
    const w = t.annotate(win(21, 3, 'vm-x'));
    expect(w.trend!.forecastBps).to.have.length(DEFAULT_RULES_CONFIG.trend.horizonWindows);
    expect(w.windowStartUs).to.equal(T0 + 21 * WINDOW_US);
  });

  it('PairWindow.trend round-trips through every codec, and stays absent when absent', () => {
    const t = tracker({ horizonWindows: 3 });
    t.update(win(0, 1000));
    const w = t.annotate(win(1, 1500.5));
    expect(w.trend).to.deep.equal({ ewmaBps: 1000 + 0.3 * 500.5, forecastBps: [2001, 2501.5, 3002] });
    for (const format of RECORD_FORMATS) {
      expect(decodePairWindow(encodePairWindow(w, format), format), format).to.deep.equal(w);
      const plain = win(2, 7);
      expect(decodePairWindow(encodePairWindow(plain, format), format), format).to.deep.equal(plain);
    }
  });
});
