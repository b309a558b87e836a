/**
 * Small numerics for the anomaly rules (pure): the Poisson upper tail in log space, the normal CDF
 * in log space, and an exponentially forgetting mean/variance.
 *
 * P(X ≥ k; λ) for X ~ Poisson(λ) equals the regularized lower incomplete gamma P(k, λ) (k ≥ 1).
 * It is computed as ln P(k, λ) — by its series when λ < k + 1 (the tail is small there and the
 * series needs no subtraction), else as ln(1 − Q(k, λ)) with Q from Lentz's continued fraction —
 * so tails far below the double range (e^-1000) stay exact in log form. For k above 1e7, where the
 * series would need too many terms, the Wilson–Hilferty normal approximation of the gamma
 * distribution is used (relative error in ln P well under 1 % there).
 */

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  const z = x - 1;
  let a = c[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

const EPS = 1e-15;

/** ln P(a, x), the regularized lower incomplete gamma function, a > 0, x ≥ 0. */
export function logGammaP(a: number, x: number): number {
  if (x <= 0) return -Infinity;
  const front = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    // series: P = e^front · Σ x^n / (a (a+1) … (a+n))
    let ap = a;
    let del = 1 / a;
    let sum = del;
    for (let n = 0; n < 100_000; n++) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (del < sum * EPS) break;
    }
    return front + Math.log(sum);
  }
  // continued fraction for Q (modified Lentz)
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 100_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  const q = Math.exp(front) * h;
  return Math.log1p(-Math.min(q, 1));
}

/** ln Φ(z), the standard normal CDF, accurate far into the lower tail. */
export function logNormalCdf(z: number): number {
  if (z > 6) return Math.log1p(-0.5 * erfc(z / Math.SQRT2));
  if (z > -20) return Math.log(0.5 * erfc(-z / Math.SQRT2));
  // asymptotic: Φ(z) ≈ φ(z)/|z| · (1 − 1/z² + 3/z⁴ − 15/z⁶)
  const z2 = z * z;
  return -0.5 * z2 - Math.log(-z) - 0.5 * Math.log(2 * Math.PI) + Math.log(1 - 1 / z2 + 3 / (z2 * z2) - 15 / (z2 * z2 * z2));
}

/** erfc(x), relative error < 1.2e-7 (Chebyshev fit, Numerical Recipes' erfcc). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

const SERIES_LIMIT = 1e7;

/** ln P(X ≥ k) for X ~ Poisson(λ): 0 for k ≤ 0, −∞ for λ = 0 and k > 0. */
export function logPoissonTail(k: number, lambda: number): number {
  if (k <= 0) return 0;
  if (!(lambda > 0)) return -Infinity;
  const kk = Math.ceil(k);
  if (kk <= SERIES_LIMIT) return logGammaP(kk, lambda);
  // Wilson–Hilferty: (G/k)^(1/3) ~ N(1 − 1/(9k), 1/(9k)) for G ~ Gamma(k, 1); P(X ≥ k) = P(G ≤ λ)
  const v = 1 / (9 * kk);
  const z = (Math.cbrt(lambda / kk) - (1 - v)) / Math.sqrt(v);
  return logNormalCdf(z);
}

/** P(X ≥ k) for X ~ Poisson(λ) (may underflow to 0; compare logs for tiny thresholds). */
export function poissonTail(k: number, lambda: number): number {
  return Math.exp(logPoissonTail(k, lambda));
}

/**
 * Mean and variance with exponential forgetting: diff = x − mean, mean += w·diff,
 * var = (1 − w)(var + w·diff²), with w = max(alpha, 1/n) for the n-th value — the exact (population)
 * running mean and variance while n < 1/alpha (Welford's), forgetting with weight alpha after.
 */
export class ForgettingMoments {
  mean = 0;
  variance = 0;
  count = 0;
  constructor(readonly alpha: number) {}

  add(x: number): void {
    const w = Math.max(this.alpha, 1 / ++this.count);
    const diff = x - this.mean;
    const incr = w * diff;
    this.mean += incr;
    this.variance = (1 - w) * (this.variance + diff * incr);
  }

  get std(): number {
    return Math.sqrt(this.variance);
  }
}
