/** PairWindow builders and a seeded random generator for the alert, trend and rules tests. */
import type { PairWindow } from '../../../src/capture/flow-record.js';

export const WINDOW_US = 10_000_000;

export interface WindowSpec {
  a?: string;
  b?: string;
  /** Window index: start = index * WINDOW_US (plus T0). */
  index?: number;
  aToB?: { packets: number; bytes: number };
  bToA?: { packets: number; bytes: number };
  lossRate?: number;
  throughputBps?: number;
  tcpRetransmits?: number;
  /** Handshake RTT median (µs); absent: no handshake in the window. */
  rttP50?: number;
  failedHandshakes?: number;
}

export const T0 = 1_700_000_000_000_000;

export function pairWindow(s: WindowSpec = {}): PairWindow {
  const start = T0 + (s.index ?? 0) * WINDOW_US;
  const rtt = s.rttP50 === undefined ? { count: 0, min: 0, p50: 0, p95: 0, max: 0 } : { count: 5, min: s.rttP50 * 0.9, p50: s.rttP50, p95: s.rttP50 * 1.2, max: s.rttP50 * 1.3 };
  const aToB = s.aToB ?? { packets: 10, bytes: 1000 };
  const bToA = s.bToA ?? { packets: 10, bytes: 1000 };
  return {
    id: `test-${s.index ?? 0}`,
    schemaVersion: 1,
    windowStartUs: start,
    windowEndUs: start + WINDOW_US,
    a: s.a ?? 'vm-a',
    b: s.b ?? 'vm-b',
    aToB,
    bToA,
    flows: 1,
    tcp: {
      handshakes: rtt.count,
      failedHandshakes: s.failedHandshakes ?? 0,
      handshakeRttUs: rtt,
      retransmits: s.tcpRetransmits ?? 0,
      gapFills: 0,
      dataSegments: 100,
    },
    icmp: { echoRequests: 0, echoReplies: 0, rttUs: { count: 0, min: 0, p50: 0, p95: 0, max: 0 } },
    lossRate: s.lossRate ?? 0,
    throughputBps: s.throughputBps ?? ((aToB.bytes + bToA.bytes) * 8) / (WINDOW_US / 1e6),
  };
}

/** mulberry32 (test/helpers/rng.ts). */
export { rng as seededRandom } from '../../helpers/rng.js';

/** Exact Poisson(λ) samples by inversion of the CDF (tabulated up to λ + 20√λ + 20). */
export function poissonSampler(lambda: number, rnd: () => number): () => number {
  const cdf: number[] = [];
  let logPmf = -lambda; // ln P(X = 0)
  let sum = 0;
  const top = Math.ceil(lambda + 20 * Math.sqrt(lambda) + 20);
  for (let k = 0; k <= top; k++) {
    if (k > 0) logPmf += Math.log(lambda / k);
    sum += Math.exp(logPmf);
    cdf.push(sum);
  }
  return () => {
    const u = rnd() * sum;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}
