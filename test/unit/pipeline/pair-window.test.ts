import { expect } from 'chai';
import { PairWindowAggregator, type Distribution, type PairObservation } from '../../../src/pipeline/pair-window.js';

/** An exact distribution for tests (nearest-rank quantiles). */
class Exact implements Distribution {
  values: number[] = [];
  get count() {
    return this.values.length;
  }
  get min() {
    return Math.min(...this.values);
  }
  get max() {
    return Math.max(...this.values);
  }
  add(v: number) {
    this.values.push(v);
  }
  merge(o: Distribution) {
    this.values.push(...(o as Exact).values);
  }
  quantile(q: number) {
    const s = [...this.values].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
  }
}

const obs = (o: Partial<PairObservation> & { lastUs: number }): PairObservation => ({
  flowKey: 'k1',
  client: 'web',
  server: 'db',
  firstUs: o.lastUs,
  clientToServer: { packets: 1, bytes: 100 },
  serverToClient: { packets: 1, bytes: 60 },
  ...o,
});

describe('pipeline/pair-window', () => {
  const make = (windowUs: number, allowedLatenessUs = 0) => new PairWindowAggregator({ windowUs, allowedLatenessUs, newDistribution: () => new Exact() });

  it('orders the pair (a < b) and maps directions accordingly', () => {
    const agg = make(0);
    agg.add(obs({ lastUs: 5, client: 'web', server: 'db', clientToServer: { packets: 3, bytes: 300 }, serverToClient: { packets: 2, bytes: 120 } }));
    const [w] = agg.flush();
    expect([w!.a, w!.b]).to.deep.equal(['db', 'web']);
    expect(w!.aToB).to.deep.equal({ packets: 2, bytes: 120 });
    expect(w!.bToA).to.deep.equal({ packets: 3, bytes: 300 });
  });

  it('sums both directions of one pair whoever is the client, and counts distinct flow keys', () => {
    const agg = make(10_000_000);
    agg.add(obs({ lastUs: 1_000_000, flowKey: 'f1' }));
    agg.add(obs({ lastUs: 2_000_000, flowKey: 'f1' })); // same flow, timed out and re-created
    agg.add(obs({ lastUs: 3_000_000, flowKey: 'f2', client: 'db', server: 'web' }));
    const [w] = agg.flush();
    expect(w!.flows).to.equal(2);
    expect(w!.aToB.packets + w!.bToA.packets).to.equal(6);
    expect(w!.aToB.bytes).to.equal(60 + 60 + 100); // db → web
  });

  it('emits a window once the watermark passes it, and counts late records', () => {
    const agg = make(10_000_000);
    expect(agg.add(obs({ lastUs: 1_000_000 }))).to.deep.equal([]);
    const closed = agg.add(obs({ lastUs: 10_000_001 }));
    expect(closed).to.have.length(1);
    expect(closed[0]!.windowStartUs).to.equal(0);
    expect(closed[0]!.windowEndUs).to.equal(10_000_000);
    expect(agg.add(obs({ lastUs: 9_000_000 }))).to.deep.equal([]);
    expect(agg.lateRecords).to.equal(1);
  });

  it('accepts late records within the allowed lateness', () => {
    const agg = make(10_000_000, 5_000_000);
    agg.add(obs({ lastUs: 1_000_000 }));
    expect(agg.add(obs({ lastUs: 12_000_000 }))).to.deep.equal([]);
    agg.add(obs({ lastUs: 9_000_000 }));
    expect(agg.lateRecords).to.equal(0);
    const closed = agg.advance(15_000_000);
    expect(closed[0]!.aToB.packets + closed[0]!.bToA.packets).to.equal(4);
  });

  it('computes loss rate, handshakes, failures, RTT summaries and throughput', () => {
    const agg = make(1_000_000);
    agg.add(obs({ lastUs: 100, tcp: { handshakeRttUs: 300, retransmits: 1, gapFills: 1, dataSegments: 10 } }));
    agg.add(obs({ lastUs: 200, flowKey: 'k2', tcp: { handshakeRttUs: 100, retransmits: 0, gapFills: 0, dataSegments: 10 } }));
    agg.add(obs({ lastUs: 300, flowKey: 'k3', tcp: { failedHandshake: true, retransmits: 0, gapFills: 0, dataSegments: 0 } }));
    const rtt = new Exact();
    [100, 200, 300, 400].forEach((v) => rtt.add(v));
    agg.add(obs({ lastUs: 400, flowKey: 'k4', icmp: { echoRequests: 5, echoReplies: 4, rtt } }));
    const [w] = agg.flush();
    expect(w!.tcp).to.deep.include({ handshakes: 2, failedHandshakes: 1, retransmits: 1, gapFills: 1, dataSegments: 20 });
    expect(w!.tcp.handshakeRttUs).to.deep.equal({ count: 2, min: 100, p50: 100, p95: 300, max: 300 });
    expect(w!.icmp).to.deep.equal({ echoRequests: 5, echoReplies: 4, rttUs: { count: 4, min: 100, p50: 200, p95: 400, max: 400 } });
    expect(w!.lossRate).to.equal(0.1);
    expect(w!.throughputBps).to.equal((4 * 160 * 8) / 1);
  });

  it('spans all observations with window 0', () => {
    const agg = make(0);
    agg.add(obs({ firstUs: 5_000_000, lastUs: 6_000_000 }));
    agg.add(obs({ firstUs: 7_000_000, lastUs: 9_000_000, client: 'x', server: 'y' }));
    const ws = agg.flush();
    expect(ws.map((w) => [w.windowStartUs, w.windowEndUs])).to.deep.equal([
      [5_000_000, 9_000_000],
      [5_000_000, 9_000_000],
    ]);
  });
});
