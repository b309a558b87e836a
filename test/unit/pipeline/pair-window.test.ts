import { expect } from 'chai';
import { PairWindowAggregator, summarize, type Distribution, type PairObservation } from '../../../src/pipeline/pair-window.js';
import type { FlowRecord, PairWindow } from '../../../src/capture/flow-record.js';
import { EndpointResolver } from '../../../src/pipeline/endpoint-resolver.js';
import { ObservationScratch, SketchDistribution, flowKeyIdentity, observationFromRecord } from '../../../src/pipeline/observation.js';
import { tcpRecord } from './codec.fixture.js';
import { rng } from '../../helpers/rng.js';

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

describe('pipeline/pair-window fast paths (agree with the plain observation path)', () => {

  function randomRecords(n: number): FlowRecord[] {
    const pick = rng(3);
    const hosts = ['10.0.0.1', '10.0.0.2', '10.0.0.3', 'fd00::1'];
    const out: FlowRecord[] = [];
    for (let i = 0; i < n; i++) {
      const r = structuredClone(tcpRecord(i + 1));
      const c = hosts[Math.floor(pick() * hosts.length)]!;
      const s = hosts[Math.floor(pick() * hosts.length)]!;
      r.key.clientIp = c;
      r.key.serverIp = s;
      r.key.clientPort = 40000 + Math.floor(pick() * 3);
      r.key.serverPort = pick() < 0.5 ? 443 : 80;
      r.key.vlans = pick() < 0.3 ? [100] : pick() < 0.5 ? [100, 4094] : [];
      if (pick() < 0.2) r.key.vni = undefined;
      if (pick() < 0.3) {
        // the same flow seen from the other side
        [r.key.clientIp, r.key.serverIp] = [r.key.serverIp, r.key.clientIp];
        [r.key.clientPort, r.key.serverPort] = [r.key.serverPort, r.key.clientPort];
        [r.key.clientMac, r.key.serverMac] = [r.key.serverMac, r.key.clientMac];
      }
      r.endUs = r.startUs + Math.floor(pick() * 30_000_000);
      if (pick() < 0.5) delete r.tcp!.handshakeRttUs;
      else r.tcp!.handshakeRttUs = pick() < 0.1 ? -3 : pick() * 5000;
      out.push(r);
    }
    return out;
  }

  it('counts the same flows and sums the same figures through ObservationScratch + addTo + summarizeOne', () => {
    const resolver = new EndpointResolver([{ vm: 'vm-b', ips: ['10.0.0.2'] }]);
    const opts = { windowUs: 10_000_000, newDistribution: () => new SketchDistribution(), idPrefix: 't' };
    const plain = new PairWindowAggregator(opts);
    const fast = new PairWindowAggregator({ ...opts, summarizeOne: SketchDistribution.summarizeOne });
    const want: PairWindow[] = [];
    const got: PairWindow[] = [];
    const scratch = new ObservationScratch();
    for (const r of randomRecords(3000)) {
      want.push(...plain.add(observationFromRecord(r, resolver)));
      fast.addTo(scratch.fill(r, resolver), (w) => got.push(w));
    }
    want.push(...plain.flush());
    fast.flushTo((w) => got.push(w));
    expect(got.length).to.be.above(10);
    expect(got).to.deep.equal(want);
    expect(got.some((w) => w.flows > 1)).to.equal(true);
    expect(got.some((w) => w.tcp.handshakes === 1)).to.equal(true);
  });

  it('reuseWindows: one object filled anew per window, with the same contents (and a copy of each is all one needs)', () => {
    const resolver = new EndpointResolver([{ vm: 'vm-b', ips: ['10.0.0.2'] }]);
    const opts = { windowUs: 10_000_000, newDistribution: () => new SketchDistribution(), idPrefix: 't', summarizeOne: SketchDistribution.summarizeOne };
    const plain = new PairWindowAggregator(opts);
    const reusing = new PairWindowAggregator({ ...opts, reuseWindows: true });
    const want: PairWindow[] = [];
    const got: PairWindow[] = [];
    const seen = new Set<PairWindow>();
    const keep = (w: PairWindow) => {
      seen.add(w);
      got.push(structuredClone(w));
    };
    const scratch = new ObservationScratch();
    for (const r of randomRecords(3000)) {
      plain.addTo(observationFromRecord(r, resolver), (w) => want.push(w));
      reusing.addTo(scratch.fill(r, resolver, true), keep);
    }
    plain.flushTo((w) => want.push(w));
    reusing.flushTo(keep);
    expect(got.length).to.be.above(10);
    expect(seen.size).to.equal(1);
    expect(got).to.deep.equal(want);
    expect(new Set(want).size).to.equal(want.length); // without the option, a new object each time
  });

  it('summarizeOne is what a SketchDistribution with that one sample summarises to', () => {
    for (const us of [0, -0, -5, NaN, 0.001, 0.1, 1, 12.345, 999.9999, 13184, 1e7, 3.3e9]) {
      const d = new SketchDistribution();
      d.add(us);
      expect(SketchDistribution.summarizeOne(us), String(us)).to.deep.equal(summarize(d));
    }
  });

  it('flowKeyIdentity is unchanged: client/server swapped give one identity, any other field another', () => {
    const r = tcpRecord(1);
    const swapped = structuredClone(r);
    [swapped.key.clientIp, swapped.key.serverIp] = [r.key.serverIp, r.key.clientIp];
    [swapped.key.clientPort, swapped.key.serverPort] = [r.key.serverPort, r.key.clientPort];
    [swapped.key.clientMac, swapped.key.serverMac] = [r.key.serverMac, r.key.clientMac];
    expect(flowKeyIdentity(swapped)).to.equal(flowKeyIdentity(r));
    expect(flowKeyIdentity(r)).to.equal('100.4094/vxlan/5001/4/6/2048///10.0.0.1|41001|fa:16:3e:00:00:01/10.0.0.2|443|fa:16:3e:00:00:02');
    expect(flowKeyIdentity({ ...r, key: { ...r.key, vni: undefined } })).to.not.equal(flowKeyIdentity(r));
  });
});
