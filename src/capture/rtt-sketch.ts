/**
 * A mergeable latency sketch: log-linear buckets over integer nanoseconds plus the exact count,
 * min, max and sum.
 *
 * Layout ("loglin-ns-128", SKETCH_LAYOUT): a value v ≥ 0 ns (rounded down to an integer) goes to
 *   - bucket v                               when v < 256 (exact to the nanosecond),
 *   - bucket (e - 7) * 128 + floor(v / 2^(e-7)) when 2^e ≤ v < 2^(e+1), e ≥ 8,
 * i.e. 128 linear sub-buckets per power of two. A bucket [lo, lo + w) has w ≤ lo / 128, so its
 * midpoint is within 1/256 ≈ 0.39 % of every value in it. Quantiles are answered with the
 * midpoint of the bucket holding the nearest-rank sample (clamped to the exact min/max), so a
 * quantile over any merge of sketches is within 0.39 % of the true nearest-rank sample.
 *
 * The buckets are kept sparse (sorted index/count arrays): a flow with a few samples costs a few
 * numbers; merging is a sorted merge. `toData()` gives the compact serial form used in records
 * (indexes delta-encoded) and `fromData()` reads it back.
 */

export const SKETCH_LAYOUT = 'loglin-ns-128';
const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // 128 sub-buckets per octave
const LINEAR_LIMIT = 2 * SUB; // values below this are their own bucket

/** Serial form of a sketch as it appears in records (µs for the exact figures, ns buckets). */
export interface RttSketchData {
  count: number;
  minUs: number;
  maxUs: number;
  sumUs: number;
  /** Bucket indexes, ascending, delta-encoded: first absolute, then differences. */
  bucketDeltas: number[];
  /** Samples per bucket, parallel to bucketDeltas. */
  bucketCounts: number[];
}

/** Bucket index of a value in nanoseconds. */
export function bucketIndex(valueNs: number): number {
  if (!(valueNs > 0)) return 0; // also NaN
  if (valueNs < LINEAR_LIMIT) return Math.floor(valueNs);
  if (valueNs < 2147483648) {
    const v = valueNs >>> 0;
    const shift = 31 - Math.clz32(v) - SUB_BITS;
    return (shift << SUB_BITS) + (v >>> shift);
  }
  let e = Math.floor(Math.log2(valueNs));
  if (2 ** e > valueNs) e--;
  else if (2 ** (e + 1) <= valueNs) e++;
  const shift = e - SUB_BITS;
  return shift * SUB + Math.floor(valueNs / 2 ** shift);
}

/** Lowest value (ns) of a bucket. */
export function bucketLowerNs(index: number): number {
  if (index < LINEAR_LIMIT) return index;
  const shift = Math.floor(index / SUB) - 1;
  const sub = index - shift * SUB;
  return sub * 2 ** shift;
}

/** Width (ns) of a bucket. */
export function bucketWidthNs(index: number): number {
  if (index < LINEAR_LIMIT) return 1;
  return 2 ** (Math.floor(index / SUB) - 1);
}

export class RttSketch {
  count = 0;
  sumNs = 0;
  minNs = Infinity;
  maxNs = -Infinity;
  /** Sorted bucket indexes and their counts. */
  private idx: number[] = [];
  private cnt: number[] = [];
  private lastPos = 0;

  /** Adds one sample (nanoseconds, ≥ 0; negative values count as 0). */
  add(valueNs: number): void {
    const v = valueNs > 0 ? valueNs : 0;
    this.count++;
    this.sumNs += v;
    if (v < this.minNs) this.minNs = v;
    if (v > this.maxNs) this.maxNs = v;
    this.addToBucket(bucketIndex(v), 1);
  }

  private addToBucket(b: number, n: number): void {
    const idx = this.idx;
    const p = this.lastPos;
    if (p < idx.length && idx[p] === b) {
      this.cnt[p]! += n;
      return;
    }
    let lo = 0;
    let hi = idx.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (idx[mid]! < b) lo = mid + 1;
      else hi = mid;
    }
    if (lo < idx.length && idx[lo] === b) this.cnt[lo]! += n;
    else {
      idx.splice(lo, 0, b);
      this.cnt.splice(lo, 0, n);
    }
    this.lastPos = lo;
  }

  /** Adds every sample of another sketch into this one. */
  merge(other: RttSketch): this {
    if (other.count === 0) return this;
    this.count += other.count;
    this.sumNs += other.sumNs;
    if (other.minNs < this.minNs) this.minNs = other.minNs;
    if (other.maxNs > this.maxNs) this.maxNs = other.maxNs;
    const ai = this.idx;
    const ac = this.cnt;
    const bi = other.idx;
    const bc = other.cnt;
    const oi: number[] = [];
    const oc: number[] = [];
    let i = 0;
    let j = 0;
    while (i < ai.length || j < bi.length) {
      if (j >= bi.length || (i < ai.length && ai[i]! < bi[j]!)) {
        oi.push(ai[i]!);
        oc.push(ac[i++]!);
      } else if (i >= ai.length || bi[j]! < ai[i]!) {
        oi.push(bi[j]!);
        oc.push(bc[j++]!);
      } else {
        oi.push(ai[i]!);
        oc.push(ac[i++]! + bc[j++]!);
      }
    }
    this.idx = oi;
    this.cnt = oc;
    this.lastPos = 0;
    return this;
  }

  /** Number of non-empty buckets. */
  get bucketCount(): number {
    return this.idx.length;
  }

  /**
   * The nearest-rank q-quantile (0 < q ≤ 1: the ceil(q·count)-th smallest sample), approximated by
   * its bucket's midpoint and clamped to [min, max]; NaN when empty. q ≤ 0 gives min.
   */
  quantileNs(q: number): number {
    if (this.count === 0) return NaN;
    if (q <= 0) return this.minNs;
    if (q >= 1) return this.maxNs;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let k = 0; k < this.idx.length; k++) {
      seen += this.cnt[k]!;
      if (seen >= rank) {
        const b = this.idx[k]!;
        const mid = b < LINEAR_LIMIT ? b : bucketLowerNs(b) + bucketWidthNs(b) / 2;
        return Math.min(this.maxNs, Math.max(this.minNs, mid));
      }
    }
    return this.maxNs;
  }

  quantileUs(q: number): number {
    return this.quantileNs(q) / 1000;
  }

  clear(): void {
    this.count = 0;
    this.sumNs = 0;
    this.minNs = Infinity;
    this.maxNs = -Infinity;
    this.idx = [];
    this.cnt = [];
    this.lastPos = 0;
  }

  /** Compact serial form (µs for the exact figures). */
  toData(): RttSketchData {
    const bucketDeltas: number[] = new Array(this.idx.length);
    let prev = 0;
    for (let k = 0; k < this.idx.length; k++) {
      bucketDeltas[k] = this.idx[k]! - prev;
      prev = this.idx[k]!;
    }
    return {
      count: this.count,
      minUs: this.count ? this.minNs / 1000 : 0,
      maxUs: this.count ? this.maxNs / 1000 : 0,
      sumUs: this.sumNs / 1000,
      bucketDeltas,
      bucketCounts: this.cnt.slice(),
    };
  }

  static fromData(d: RttSketchData): RttSketch {
    return new RttSketch().loadData(d);
  }

  /** Makes this sketch the one `d` describes (what fromData(d) gives), reusing its arrays. */
  loadData(d: RttSketchData): this {
    this.count = d.count;
    this.sumNs = d.sumUs * 1000;
    this.minNs = d.count > 0 ? d.minUs * 1000 : Infinity;
    this.maxNs = d.count > 0 ? d.maxUs * 1000 : -Infinity;
    this.lastPos = 0;
    const idx = this.idx;
    const cnt = this.cnt;
    idx.length = 0;
    cnt.length = 0;
    let b = 0;
    const deltas = d.bucketDeltas ?? [];
    const counts = d.bucketCounts ?? [];
    for (let k = 0; k < deltas.length; k++) {
      b += deltas[k]!;
      idx.push(b);
      cnt.push(counts[k] ?? 0);
    }
    return this;
  }
}
