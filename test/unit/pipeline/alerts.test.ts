import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import avro from 'avsc';
import { AlertEngine, ALERT_SPEC, alertToProto3Json, MAX_OPEN_SCAN_WINDOWS, type Alert } from '../../../src/pipeline/alerts.js';
import { protoRoot } from '../../../src/pipeline/codec-schemas.js';
import { parseRulesConfig, type RulesConfig } from '../../../src/pipeline/rules-config.js';
import { pairWindow, poissonSampler, seededRandom, T0, WINDOW_US, type WindowSpec } from './alerts.fixture.js';

/** Rules with every rule off except what the test turns on. */
function rules(over: Record<string, unknown> = {}): RulesConfig {
  const off = {
    anomaly: { poisson: { enabled: false }, rttZScore: { enabled: false } },
    security: { newPair: { enabled: false }, scan: { enabled: false } },
  };
  const merged = { ...off, ...over } as Record<string, Record<string, unknown>>;
  for (const k of ['anomaly', 'security'] as const) merged[k] = { ...off[k], ...(over[k] as object | undefined) };
  return parseRulesConfig(merged);
}

/** Feeds windows of one pair (index i → window i); returns [index, alert] pairs. */
function feed(engine: AlertEngine, specs: WindowSpec[]): [number, Alert][] {
  const out: [number, Alert][] = [];
  specs.forEach((s, i) => {
    for (const a of engine.observeWindow(pairWindow({ index: i, ...s }))) out.push([s.index ?? i, a]);
  });
  return out;
}

describe('pipeline/alerts', () => {
  describe('threshold rules', () => {
    const config = () => rules({ thresholds: [{ name: 'loss', metric: 'lossRate', operator: '>', value: 0.05, forWindows: 3, severity: 'critical' }] });

    it('a pair pushed over a threshold fires once (after N windows) and resolves once', () => {
      const engine = new AlertEngine(config(), { idPrefix: 'p1' });
      const loss = [0, 0.1, 0.1, 0.1, 0.2, 0.1, 0.1, 0, 0, 0.01];
      const alerts = feed(engine, loss.map((lossRate) => ({ lossRate })));
      expect(alerts.map(([i, a]) => [i, a.state])).to.deep.equal([
        [3, 'firing'],
        [7, 'resolved'],
      ]);
      const [, fired] = alerts[0]!;
      expect(fired).to.deep.include({
        rule: 'loss',
        kind: 'threshold',
        severity: 'critical',
        state: 'firing',
        a: 'vm-a',
        b: 'vm-b',
        source: '',
        windowStartUs: T0 + 3 * WINDOW_US,
        windowEndUs: T0 + 4 * WINDOW_US,
        value: 0.1,
        threshold: 0.05,
        schemaVersion: 1,
      });
      expect(fired.id).to.equal(`p1:loss:vm-a~vm-b:${T0 + 3 * WINDOW_US}:firing`);
      expect(fired.message).to.equal('vm-a <-> vm-b: lossRate 0.1 > 0.05 for 3 windows');
      expect(alerts[1]![1].message).to.equal('vm-a <-> vm-b: lossRate 0, no longer > 0.05');
    });

    it('fires again after resolving when the condition returns', () => {
      const engine = new AlertEngine(rules({ thresholds: [{ metric: 'tcp.retransmits', operator: '>=', value: 10 }] }));
      const r = [0, 10, 12, 0, 11, 11];
      const alerts = feed(engine, r.map((tcpRetransmits) => ({ tcpRetransmits })));
      expect(alerts.map(([i, a]) => `${i}:${a.state}`)).to.deep.equal(['1:firing', '3:resolved', '4:firing']);
    });

    it('a gap between windows of the pair restarts the count', () => {
      const engine = new AlertEngine(config());
      const alerts = feed(engine, [
        { index: 0, lossRate: 0.1 },
        { index: 1, lossRate: 0.1 },
        { index: 3, lossRate: 0.1 },
        { index: 4, lossRate: 0.1 },
        { index: 5, lossRate: 0.1 },
      ]);
      expect(alerts.map(([i, a]) => `${i}:${a.state}`)).to.deep.equal(['5:firing']);
    });

    it('pairs are judged separately; a window without the metric does not hold', () => {
      const engine = new AlertEngine(rules({ thresholds: [{ metric: 'tcp.handshakeRttUs.p95', operator: '<', value: 1000 }] }));
      // no handshake: the p95 is absent, not 0 < 1000
      expect(engine.observeWindow(pairWindow({ index: 0 }))).to.deep.equal([]);
      const x = engine.observeWindow(pairWindow({ index: 1, rttP50: 100 }));
      const y = engine.observeWindow(pairWindow({ index: 1, a: 'vm-c', rttP50: 5000 }));
      expect(x.map((a) => a.state)).to.deep.equal(['firing']);
      expect(y).to.deep.equal([]);
    });

    it('skips a window that comes before the pair’s last one', () => {
      const engine = new AlertEngine(rules({ thresholds: [{ metric: 'lossRate', operator: '>', value: 0 }] }));
      expect(engine.observeWindow(pairWindow({ index: 5, lossRate: 1 }))).to.have.length(1);
      expect(engine.observeWindow(pairWindow({ index: 4, lossRate: 0 }))).to.deep.equal([]);
      expect(engine.observeWindow(pairWindow({ index: 5, lossRate: 0 }))).to.deep.equal([]);
      expect(engine.stats.outOfOrderWindows).to.equal(2);
    });
  });

  describe('Poisson burst rule', () => {
    const config = () => rules({ anomaly: { poisson: { enabled: true, tailProbability: 1e-6, warmupWindows: 10, alpha: 0.1, minPackets: 50 } } });
    const packets = (n: number): WindowSpec => ({ aToB: { packets: Math.ceil(n / 2), bytes: n * 100 }, bToA: { packets: Math.floor(n / 2), bytes: 0 } });

    it('steady Poisson traffic (1000 windows at λ = 500) raises no alert; an injected burst fires once and resolves', () => {
      const engine = new AlertEngine(config());
      const sample = poissonSampler(500, seededRandom(42));
      const counts = Array.from({ length: 1000 }, sample);
      expect(feed(engine, counts.map(packets))).to.deep.equal([]);
      const burst = engine.observeWindow(pairWindow({ index: 1000, ...packets(700) }));
      expect(burst).to.have.length(1);
      expect(burst[0]).to.deep.include({ rule: 'poisson-burst', kind: 'anomaly', state: 'firing', threshold: 1e-6, windowStartUs: T0 + 1000 * WINDOW_US });
      expect(burst[0]!.value).to.be.lessThan(1e-6);
      expect(burst[0]!.message).to.match(/^vm-a <-> vm-b: 700 packets against a rate of (49|50)\d\.\d+ per window( \(dispersion 1\.\d+\))?: P\(X >= 700\) = e\^-\d+/);
      const after = engine.observeWindow(pairWindow({ index: 1001, ...packets(sample()) }));
      expect(after.map((a) => a.state)).to.deep.equal(['resolved']);
      expect(engine.observeWindow(pairWindow({ index: 1002, ...packets(sample()) }))).to.deep.equal([]);
    });

    it('false positives stay rare: at most 1e-5 per window over 100 pairs × 2000 windows at rates 60…725', () => {
      const engine = new AlertEngine(config());
      const rnd = seededRandom(7);
      const samplers = Array.from({ length: 100 }, (_, i) => poissonSampler(60 + (i % 20) * 35, rnd));
      let fired = 0;
      for (let i = 0; i < 2000; i++) {
        samplers.forEach((s, p) => {
          fired += engine.observeWindow(pairWindow({ index: i, a: `vm-${p}`, ...packets(s()) })).filter((a) => a.state === 'firing').length;
        });
      }
      // P(alert) per window ≈ 1e-6 (the threshold, widened a little by the noise of λ's estimate)
      expect(fired).to.be.at.most(2);
    });

    it('overdispersed traffic (rates swinging ±50 % window to window) is judged by its own swings; a 10× burst still fires', () => {
      // k ~ Poisson(λ_i), λ_i ~ Gamma(shape 4, mean μ): a negative binomial, variance ≈ μ + μ²/4
      const rnd = seededRandom(11);
      const gaussian = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
      const count = (mu: number) => {
        let g = 0;
        for (let j = 0; j < 4; j++) g -= Math.log(1 - rnd());
        const lambda = (mu * g) / 4;
        return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * gaussian()));
      };
      const run = (overdispersion: boolean) => {
        const engine = new AlertEngine(rules({ anomaly: { poisson: { enabled: true, tailProbability: 1e-6, warmupWindows: 10, alpha: 0.1, minPackets: 50, overdispersion } } }));
        let fired = 0;
        for (let i = 0; i < 500; i++) {
          for (let p = 0; p < 100; p++) {
            fired += engine.observeWindow(pairWindow({ index: i, a: `vm-${p}`, ...packets(count(200 + p * 10)) })).filter((a) => a.state === 'firing').length;
          }
        }
        const burst = engine.observeWindow(pairWindow({ index: 500, a: 'vm-0', ...packets(2000) }));
        return { fired, burst: burst.filter((a) => a.state === 'firing').length };
      };
      const plain = run(false);
      const scaled = run(true);
      expect(plain.fired, 'the plain Poisson tail flags ordinary swings').to.be.above(1000);
      expect(scaled.fired, 'dispersion-scaled: about tailProbability × windows, widened by the gamma tail').to.be.at.most(10);
      expect(scaled.burst).to.equal(1);
    });

    it('judges nothing during warm-up or below minPackets', () => {
      const engine = new AlertEngine(config());
      const warm = [100, 100, 100, 5000];
      expect(feed(engine, warm.map(packets))).to.deep.equal([]);
      const small = new AlertEngine(config());
      const quiet = Array.from({ length: 20 }, () => 2).concat([40]);
      expect(feed(small, quiet.map(packets))).to.deep.equal([]);
    });
  });

  describe('RTT z-score rule', () => {
    const config = () => rules({ anomaly: { rttZScore: { enabled: true, threshold: 4, warmupWindows: 10, alpha: 0.05 } } });

    it('flags a jump of the handshake RTT median and resolves when it comes back', () => {
      const engine = new AlertEngine(config());
      const rnd = seededRandom(3);
      const normal = () => 200 + (rnd() - 0.5) * 40; // 200 ± 20 µs
      const specs: WindowSpec[] = Array.from({ length: 60 }, () => ({ rttP50: normal() }));
      expect(feed(engine, specs)).to.deep.equal([]);
      const jump = engine.observeWindow(pairWindow({ index: 60, rttP50: 600 }));
      expect(jump).to.have.length(1);
      expect(jump[0]).to.deep.include({ rule: 'rtt-zscore', kind: 'anomaly', state: 'firing', threshold: 4 });
      expect(jump[0]!.value).to.be.greaterThan(4);
      // windows without a handshake change nothing
      expect(engine.observeWindow(pairWindow({ index: 61 }))).to.deep.equal([]);
      const back = engine.observeWindow(pairWindow({ index: 62, rttP50: 200 }));
      expect(back.map((a) => a.state)).to.deep.equal(['resolved']);
    });

    it('a drop is flagged too (|z|), and steady jitter is not', () => {
      const engine = new AlertEngine(config());
      const rnd = seededRandom(11);
      const specs: WindowSpec[] = Array.from({ length: 500 }, () => ({ rttP50: 1000 + (rnd() - 0.5) * 100 }));
      expect(feed(engine, specs)).to.deep.equal([]);
      const drop = engine.observeWindow(pairWindow({ index: 500, rttP50: 300 }));
      expect(drop.map((a) => [a.rule, a.state])).to.deep.equal([['rtt-zscore', 'firing']]);
      expect(drop[0]!.value).to.be.lessThan(-4);
    });

    it('can model the ICMP echo RTT instead', () => {
      const engine = new AlertEngine(rules({ anomaly: { rttZScore: { enabled: true, metric: 'icmp.rttUs.p50', warmupWindows: 5 } } }));
      const echo = (p50: number, index: number) => {
        const w = pairWindow({ index, rttP50: 100_000 }); // the handshake RTT is ignored
        w.icmp.rttUs = { count: 3, min: p50, p50, p95: p50, max: p50 };
        return w;
      };
      const out: Alert[] = [];
      for (let i = 0; i < 20; i++) out.push(...engine.observeWindow(echo(500 + (i % 3), i)));
      expect(out).to.deep.equal([]);
      expect(engine.observeWindow(echo(5000, 20)).map((a) => a.state)).to.deep.equal(['firing']);
    });
  });

  describe('security signals', () => {
    it('a pair never seen during the learning period is flagged once; pairs seen during learning are not', () => {
      const engine = new AlertEngine(rules({ security: { newPair: { enabled: true, learningPeriodSeconds: 60 } } }));
      const out: [number, Alert][] = [];
      for (let i = 0; i < 20; i++) {
        const pairs = i < 6 ? [['vm-a', 'vm-b']] : [['vm-a', 'vm-b'], ['vm-c', 'vm-d']];
        if (i === 3) pairs.push(['vm-a', 'vm-e']); // seen once during learning only
        if (i === 15) pairs.push(['vm-a', 'vm-e']);
        for (const [a, b] of pairs) for (const al of engine.observeWindow(pairWindow({ index: i, a, b }))) out.push([i, al]);
      }
      expect(out.map(([i, a]) => [i, a.rule, a.a, a.b, a.state, a.kind])).to.deep.equal([[6, 'new-pair', 'vm-c', 'vm-d', 'firing', 'security']]);
      expect(out[0]![1].message).to.equal('vm-c <-> vm-d: pair vm-c <-> vm-d never seen before started talking');
    });

    it('one source failing handshakes to many distinct targets in a window is a scan; resolved when it stops', () => {
      const engine = new AlertEngine(rules({ security: { scan: { enabled: true, minDistinctTargets: 20 } } }));
      const w = (i: number) => T0 + i * WINDOW_US;
      // window 0: a vertical scan of one host (25 ports), a client retrying one server 100 times, a few misses
      for (let port = 1; port <= 25; port++) engine.observeFailedHandshake('10.0.0.66', 'vm-db', port, w(0));
      for (let i = 0; i < 100; i++) engine.observeFailedHandshake('vm-web', 'vm-db', 5432, w(0));
      for (let h = 0; h < 5; h++) engine.observeFailedHandshake('vm-app', `vm-${h}`, 80, w(0));
      const first = engine.closeWindow(w(0), w(1));
      expect(first.map((a) => [a.rule, a.kind, a.source, a.state, a.value, a.threshold])).to.deep.equal([['scan', 'security', '10.0.0.66', 'firing', 25, 20]]);
      expect(first[0]!.message).to.equal('10.0.0.66 failed handshakes to 25 distinct targets (1 hosts, 25 ports) in one window');
      expect(first[0]!.a).to.equal('');
      // window 1: the same source sweeps 30 hosts on one port: still scanning, no repeat
      for (let h = 0; h < 30; h++) engine.observeFailedHandshake('10.0.0.66', `10.0.1.${h}`, 22, w(1));
      expect(engine.closeWindow(w(1), w(2))).to.deep.equal([]);
      // window 2: nothing failed: resolved
      const last = engine.closeWindow(w(2), w(3));
      expect(last.map((a) => [a.source, a.state, a.windowStartUs])).to.deep.equal([['10.0.0.66', 'resolved', w(2)]]);
      // a failed handshake for a closed window is late
      engine.observeFailedHandshake('10.0.0.66', 'vm-db', 1, w(1));
      expect(engine.stats.lateFailedHandshakes).to.equal(1);
    });

    it('scan state is bounded: targets per source capped, sources per window capped', () => {
      const engine = new AlertEngine(rules({ security: { scan: { enabled: true, minDistinctTargets: 10, maxSourcesPerWindow: 50 } } }));
      for (let s = 0; s < 80; s++) for (let port = 0; port < 1000; port++) engine.observeFailedHandshake(`src-${s}`, 'vm-db', port, T0);
      expect(engine.stats.droppedScanSources).to.equal(30 * 1000);
      const alerts = engine.closeWindow(T0, T0 + WINDOW_US);
      expect(alerts).to.have.length(50);
      expect(alerts[0]!.value).to.equal(40);
      expect(alerts[0]!.message).to.match(/at least 40 distinct targets/);
      // windows never closed: at most MAX_OPEN_SCAN_WINDOWS kept
      for (let i = 1; i <= 40; i++) engine.observeFailedHandshake('src-0', 'vm-db', 1, T0 + i * WINDOW_US);
      expect(engine.stats.droppedScanWindows).to.equal(40 - MAX_OPEN_SCAN_WINDOWS);
    });
  });

  describe('bounded state', () => {
    it('pairs expire after inactivity (within twice pairIdleSeconds) and their firing alerts resolve', () => {
      const engine = new AlertEngine(rules({ pairIdleSeconds: 60, thresholds: [{ name: 'loss', metric: 'lossRate', operator: '>', value: 0.05 }] }));
      expect(engine.observeWindow(pairWindow({ index: 0, a: 'vm-x', lossRate: 0.5 })).map((a) => a.state)).to.deep.equal(['firing']);
      const out: Alert[] = [];
      for (let i = 1; i <= 20; i++) out.push(...engine.observeWindow(pairWindow({ index: i })));
      expect(out.map((a) => [a.a, a.rule, a.state, a.windowStartUs])).to.deep.equal([['vm-x', 'loss', 'resolved', T0]]);
      expect(out[0]!.message).to.match(/pair inactive/);
      expect(engine.pairCount).to.equal(1);
      expect(engine.stats.expiredPairs).to.equal(1);
      // advance() alone expires too
      expect(engine.advance(T0 + 200 * WINDOW_US)).to.deep.equal([]);
      expect(engine.pairCount).to.equal(1);
      engine.advance(T0 + 206 * WINDOW_US);
      expect(engine.pairCount).to.equal(0);
      expect(engine.stats.expiredPairs).to.equal(2);
    });

    it('at most maxPairs pairs and maxKnownPairs known pairs are kept', () => {
      const engine = new AlertEngine(
        rules({ maxPairs: 100, anomaly: { poisson: { enabled: true } }, security: { newPair: { enabled: true, learningPeriodSeconds: 0, maxKnownPairs: 200 } } }),
      );
      let newPairs = 0;
      for (let i = 0; i < 1000; i++) newPairs += engine.observeWindow(pairWindow({ index: 0, a: `vm-${i}` })).filter((a) => a.rule === 'new-pair').length;
      expect(newPairs).to.equal(1000);
      expect(engine.pairCount).to.be.within(50, 100);
      expect(engine.knownPairCount).to.be.within(100, 200);
      expect(engine.stats.evictedPairs).to.equal(1000 - engine.pairCount);
      // the most recent pairs are still known
      expect(engine.observeWindow(pairWindow({ index: 1, a: 'vm-999' }))).to.deep.equal([]);
    });
  });

  describe('Alert schema', () => {
    const alert: Alert = {
      id: 'p:loss:vm-a~vm-b:1:firing',
      schemaVersion: 1,
      rule: 'loss',
      kind: 'threshold',
      severity: 'critical',
      state: 'firing',
      a: 'vm-a',
      b: 'vm-b',
      source: '',
      windowStartUs: T0,
      windowEndUs: T0 + WINDOW_US,
      value: 0.25,
      threshold: 0.05,
      message: 'vm-a <-> vm-b: lossRate 0.25 > 0.05',
    };

    it('the field table matches message Alert in the .proto, and protobuf round-trips', () => {
      const t = protoRoot().lookupType('mirrorflow.v1.Alert');
      const typeName = (s: string) => ({ uint32: 'uint32', int64: 'int64', double: 'double', string: 'string' })[s];
      expect(t.fieldsArray.map((f) => [f.name, f.id, f.type])).to.deep.equal(ALERT_SPEC.fields.map((f) => [f.name, f.number, typeName(f.type as string)]));
      const decoded = t.toObject(t.decode(t.encode(t.fromObject({ ...alert })).finish()), { longs: Number, defaults: true });
      expect(decoded).to.deep.equal(alert);
    });

    it('proto/alert.avsc matches the field table and round-trips', () => {
      const schema = JSON.parse(readFileSync(new URL('../../../proto/alert.avsc', import.meta.url), 'utf8'));
      expect(schema.name).to.equal('Alert');
      expect(schema.namespace).to.equal('mirrorflow.v1');
      expect(schema.fields.map((f: { name: string; doc: string }) => [f.name, f.doc])).to.deep.equal(ALERT_SPEC.fields.map((f) => [f.name, `proto field ${f.number}`]));
      const type = avro.Type.forSchema(schema);
      expect({ ...type.fromBuffer(type.toBuffer(alert)) }).to.deep.equal(alert);
    });

    it('canonical proto3 JSON: int64 as strings, empty strings omitted', () => {
      const { source: _omitted, ...rest } = alert;
      expect(alertToProto3Json(alert)).to.deep.equal({ ...rest, windowStartUs: String(T0), windowEndUs: String(T0 + WINDOW_US) });
    });
  });
});
