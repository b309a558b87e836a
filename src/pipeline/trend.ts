/**
 * Throughput trend per pair (pure): an EWMA of throughputBps and a Holt linear (double exponential
 * smoothing) forecast of the next `horizonWindows` windows, carried on PairWindow as `trend`.
 *
 * Holt: level ℓ and slope s per window; the first window sets ℓ = x, s = 0, the second s = x₂ − x₁,
 * ℓ = x₂; after that ℓ' = αx + (1 − α)(ℓ + s), s' = β(ℓ' − ℓ) + (1 − β)s, and the forecast h windows
 * ahead is ℓ + h·s, floored at 0 (throughput is never negative). A linear series is forecast exactly
 * from its second window on; a constant one gives a constant forecast.
 *
 * Windows of a pair must come in event-time order. Windows the pair had no traffic in (gaps between
 * two of its windows) count as zero throughput when at most maxGapWindows are missing; a longer gap
 * restarts the pair's model. State is bounded like the alert engine's (aging-map.ts): pairs idle
 * for pairIdleUs are forgotten within twice that, at most maxPairs kept.
 */
import type { PairTrend, PairWindow } from '../capture/flow-record.js';
import { AgingMap } from './aging-map.js';
import type { TrendConfig } from './rules-config.js';

export type { PairTrend };

export interface TrendTrackerOptions extends TrendConfig {
  /** Default: 10 minutes. */
  pairIdleUs?: number;
  /** Default: 1,000,000. */
  maxPairs?: number;
}

interface Model {
  lastEndUs: number;
  windows: number;
  ewma: number;
  level: number;
  slope: number;
}

export class TrendTracker {
  private readonly models: AgingMap<string, Model>;
  /** Windows that came for a pair at or before its last one (left without trend). */
  outOfOrderWindows = 0;

  constructor(private readonly opts: TrendTrackerOptions) {
    this.models = new AgingMap(opts.pairIdleUs ?? 600e6, opts.maxPairs ?? 1_000_000);
  }

  get pairCount(): number {
    return this.models.size;
  }

  /** The window with its `trend` set (a new object; the input is not changed). */
  annotate(w: PairWindow): PairWindow {
    const trend = this.update(w);
    return trend ? { ...w, trend } : w;
  }

  /** Feeds one window of a pair; returns its trend (undefined for an out-of-order window). */
  update(w: PairWindow): PairTrend | undefined {
    this.models.advance(w.windowEndUs);
    const key = `${w.a}\u0000${w.b}`;
    let m = this.models.get(key);
    if (m && w.windowStartUs < m.lastEndUs) {
      this.outOfOrderWindows++;
      return undefined;
    }
    const lengthUs = w.windowEndUs - w.windowStartUs;
    if (m) {
      const missing = lengthUs > 0 ? Math.round((w.windowStartUs - m.lastEndUs) / lengthUs) : 0;
      if (missing > this.opts.maxGapWindows) m = undefined;
      else for (let i = 0; i < missing; i++) this.step(m, 0);
    }
    if (!m) this.models.set(key, (m = { lastEndUs: 0, windows: 0, ewma: 0, level: 0, slope: 0 }));
    m.lastEndUs = w.windowEndUs;
    this.step(m, w.throughputBps);
    const forecastBps: number[] = new Array(this.opts.horizonWindows);
    for (let h = 1; h <= this.opts.horizonWindows; h++) forecastBps[h - 1] = Math.max(0, m.level + h * m.slope);
    return { ewmaBps: m.ewma, forecastBps };
  }

  private step(m: Model, x: number): void {
    const { alpha, beta, ewmaAlpha } = this.opts;
    m.windows++;
    if (m.windows === 1) {
      m.ewma = x;
      m.level = x;
      m.slope = 0;
      return;
    }
    m.ewma += ewmaAlpha * (x - m.ewma);
    if (m.windows === 2) {
      m.slope = x - m.level;
      m.level = x;
      return;
    }
    const level = alpha * x + (1 - alpha) * (m.level + m.slope);
    m.slope = beta * (level - m.level) + (1 - beta) * m.slope;
    m.level = level;
  }
}
