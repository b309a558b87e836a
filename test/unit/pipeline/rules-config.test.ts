import { expect } from 'chai';
import { ConfigError } from '../../../src/errors.js';
import { DEFAULT_RULES_CONFIG, METRIC_PATHS, metricGetter, parseRulesConfig } from '../../../src/pipeline/rules-config.js';
import { pairWindow } from './alerts.fixture.js';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('pipeline/rules-config', () => {
  it('an empty or absent config gives the defaults', () => {
    expect(parseRulesConfig({})).to.deep.equal(DEFAULT_RULES_CONFIG);
    expect(parseRulesConfig(undefined)).to.deep.equal(DEFAULT_RULES_CONFIG);
  });

  it('parses threshold rules with defaults for name, forWindows and severity', () => {
    const c = parseRulesConfig({
      thresholds: [
        { metric: 'lossRate', operator: '>', value: 0.02 },
        { name: 'slow-handshakes', metric: 'tcp.handshakeRttUs.p95', operator: '>=', value: 5000, forWindows: 3, severity: 'critical' },
      ],
    });
    expect(c.thresholds).to.deep.equal([
      { name: 'lossRate > 0.02', metric: 'lossRate', operator: '>', value: 0.02, forWindows: 1, severity: 'warning' },
      { name: 'slow-handshakes', metric: 'tcp.handshakeRttUs.p95', operator: '>=', value: 5000, forWindows: 3, severity: 'critical' },
    ]);
  });

  it('names the rule index, field, value and what was expected', () => {
    const rules = [
      { metric: 'lossRate', operator: '>', value: 0.02 },
      { metric: 'throughputBps', operator: '<', value: 1 },
      { metric: 'lossRate', operator: '>>', value: 1 },
    ];
    expect(configError(() => parseRulesConfig({ thresholds: rules })).message).to.equal(
      'config: invalid rule (index=2, field=operator, value=">>", expected=one of > >= < <= == !=)',
    );
    const cases: [unknown, RegExp][] = [
      [{ metric: 'lossrate', operator: '>', value: 1 }, /index=0, field=metric, value="lossrate", expected=a PairWindow metric: one of .*lossRate/],
      [{ metric: 'lossRate', operator: '>', value: '1' }, /index=0, field=value, value="1", expected=a number\)/],
      [{ metric: 'lossRate', operator: '>', value: 1, forWindows: 0 }, /field=forWindows, value=0, expected=an integer >= 1/],
      [{ metric: 'lossRate', operator: '>', value: 1, forWindows: 1.5 }, /field=forWindows, value=1.5/],
      [{ metric: 'lossRate', operator: '>', value: 1, severity: 'fatal' }, /field=severity, value="fatal", expected=one of info warning critical/],
      [{ metric: 'lossRate', operator: '>', value: 1, window: 3 }, /field=window, value=3, expected=one of name, metric/],
      [{ metric: 'lossRate', operator: '>', value: 1, name: 'has space' }, /field=name, value="has space"/],
      ['lossRate > 1', /index=0, field=rule, value="lossRate > 1", expected=an object/],
    ];
    for (const [rule, re] of cases) expect(configError(() => parseRulesConfig({ thresholds: [rule] })).message).to.match(re);
    expect(configError(() => parseRulesConfig({ thresholds: [{ metric: 'lossRate', operator: '>', value: 1 }, { metric: 'lossRate', operator: '>', value: 1 }] })).message).to.match(
      /index=1, field=name, value="lossRate > 1", expected=a name no other rule has/,
    );
  });

  it('validates the other sections, naming the field path', () => {
    const cases: [unknown, string][] = [
      [{ anomaly: { poisson: { tailProbability: 0 } } }, 'config: invalid setting (field=anomaly.poisson.tailProbability, value=0, expected=a number in (0, 1))'],
      [{ anomaly: { poisson: { alpha: 1.5 } } }, 'config: invalid setting (field=anomaly.poisson.alpha, value=1.5, expected=a number in (0, 1])'],
      [{ anomaly: { rttZScore: { metric: 'rtt' } } }, 'config: invalid setting (field=anomaly.rttZScore.metric, value="rtt", expected=one of tcp.handshakeRttUs.p50 icmp.rttUs.p50)'],
      [{ anomaly: { rttZscore: {} } }, 'config: invalid setting (field=anomaly.rttZscore, value={}, expected=one of poisson, rttZScore)'],
      [{ security: { scan: { minDistinctTargets: 1 } } }, 'config: invalid setting (field=security.scan.minDistinctTargets, value=1, expected=an integer >= 2)'],
      [{ security: { newPair: { enabled: 'yes' } } }, 'config: invalid setting (field=security.newPair.enabled, value="yes", expected=true or false)'],
      [{ trend: { horizonWindows: 0 } }, 'config: invalid setting (field=trend.horizonWindows, value=0, expected=an integer in [1, 1000])'],
      [{ pairIdleSeconds: -1 }, 'config: invalid setting (field=pairIdleSeconds, value=-1, expected=a number > 0)'],
      [{ thresholds: {} }, 'config: invalid setting (field=thresholds, value={}, expected=an array of rules)'],
      [{ alerts: [] }, 'config: invalid setting (field=alerts, value=[], expected=one of thresholds, anomaly, security, trend, pairIdleSeconds, maxPairs)'],
      [[], 'config: invalid setting (field=, value=[], expected=an object)'],
    ];
    for (const [raw, msg] of cases) expect(configError(() => parseRulesConfig(raw)).message).to.equal(msg);
  });

  it('overrides single settings and keeps the other defaults', () => {
    const c = parseRulesConfig({ anomaly: { poisson: { tailProbability: 1e-9, enabled: false } }, trend: { horizonWindows: 3 } });
    expect(c.anomaly.poisson).to.deep.equal({ ...DEFAULT_RULES_CONFIG.anomaly.poisson, tailProbability: 1e-9, enabled: false });
    expect(c.anomaly.rttZScore).to.deep.equal(DEFAULT_RULES_CONFIG.anomaly.rttZScore);
    expect(c.trend.horizonWindows).to.equal(3);
    expect(c.trend.alpha).to.equal(DEFAULT_RULES_CONFIG.trend.alpha);
  });

  it('metric paths come from the PairWindow schema, plus packets and bytes', () => {
    for (const p of ['lossRate', 'throughputBps', 'tcp.retransmits', 'tcp.handshakeRttUs.p95', 'icmp.rttUs.p50', 'aToB.packets', 'flows', 'trend.ewmaBps', 'packets', 'bytes']) {
      expect(METRIC_PATHS, p).to.include(p);
    }
    for (const p of ['id', 'a', 'schemaVersion', 'windowStartUs', 'trend.forecastBps', 'tcp', 'tcp.handshakeRttUs']) expect(METRIC_PATHS, p).to.not.include(p);
    const w = pairWindow({ aToB: { packets: 3, bytes: 300 }, bToA: { packets: 2, bytes: 100 }, tcpRetransmits: 7, rttP50: 120 });
    expect(metricGetter('packets')!(w)).to.equal(5);
    expect(metricGetter('bytes')!(w)).to.equal(400);
    expect(metricGetter('tcp.retransmits')!(w)).to.equal(7);
    expect(metricGetter('tcp.handshakeRttUs.p50')!(w)).to.equal(120);
    // an empty latency summary has no p50 (not 0), a window without trend no ewma
    expect(metricGetter('icmp.rttUs.p50')!(w)).to.equal(undefined);
    expect(metricGetter('icmp.rttUs.count')!(w)).to.equal(0);
    expect(metricGetter('trend.ewmaBps')!(w)).to.equal(undefined);
    expect(metricGetter('nope')).to.equal(undefined);
  });
});
