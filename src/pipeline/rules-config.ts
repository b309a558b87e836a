/**
 * Alert and trend rules as configuration: a plain JSON object (what `JSON.parse` of the config
 * file's `rules` section gives) → a typed, validated RulesConfig with defaults filled in.
 *
 *   {
 *     "thresholds": [
 *       { "name": "high-loss", "metric": "lossRate", "operator": ">", "value": 0.02, "forWindows": 3, "severity": "critical" }
 *     ],
 *     "anomaly": {
 *       "poisson": { "tailProbability": 1e-6, "warmupWindows": 10, "alpha": 0.1, "minPackets": 50, "overdispersion": true },
 *       "rttZScore": { "metric": "tcp.handshakeRttUs.p50", "threshold": 4, "warmupWindows": 10, "alpha": 0.05 }
 *     },
 *     "security": {
 *       "newPair": { "learningPeriodSeconds": 3600 },
 *       "scan": { "minDistinctTargets": 20 }
 *     },
 *     "trend": { "alpha": 0.5, "beta": 0.3, "horizonWindows": 6 },
 *     "pairIdleSeconds": 600
 *   }
 *
 * Every section and key is optional; unknown keys are errors (they are typos). Problems are one
 * ConfigError naming where: `config: invalid rule (index=2, field=operator, value=">>", expected=one
 * of > >= < <= == !=)` for a threshold rule, `config: invalid setting (field=anomaly.poisson.alpha,
 * value=2, expected=a number in (0, 1])` elsewhere.
 *
 * Threshold metrics are paths into a PairWindow: every numeric, non-repeated field of the
 * PairWindow schema (`lossRate`, `throughputBps`, `tcp.retransmits`, `tcp.handshakeRttUs.p95`,
 * `icmp.rttUs.p50`, `trend.ewmaBps`, …) plus the derived `packets` and `bytes` (both directions).
 */
import { PAIR_WINDOW_SPEC, type MessageSpec, type PairWindow } from '../capture/flow-record.js';
import { ConfigError } from '../errors.js';

export type Operator = '>' | '>=' | '<' | '<=' | '==' | '!=';
export const OPERATORS: readonly Operator[] = ['>', '>=', '<', '<=', '==', '!='];
export type Severity = 'info' | 'warning' | 'critical';
export const SEVERITIES: readonly Severity[] = ['info', 'warning', 'critical'];

export interface ThresholdRule {
  /** Unique among the rules; default `<metric> <operator> <value>`. */
  name: string;
  metric: string;
  operator: Operator;
  value: number;
  /** The condition must hold this many consecutive windows of the pair before the alert fires. */
  forWindows: number;
  severity: Severity;
}

export interface PoissonRuleConfig {
  enabled: boolean;
  /** Alert when P(X ≥ packets; λ) is below this. */
  tailProbability: number;
  /** Windows of the pair observed before the rule judges any. */
  warmupWindows: number;
  /** EWMA weight of the newest window in λ (packets per active window). */
  alpha: number;
  /** Windows with fewer packets are never flagged. */
  minPackets: number;
  /**
   * Scale by the pair's observed dispersion (variance / mean of its window counts, at least 1):
   * real traffic is burstier than Poisson, and a plain Poisson tail flags its ordinary swings.
   * false: the plain Poisson tail.
   */
  overdispersion: boolean;
  severity: Severity;
}

export type RttMetric = 'tcp.handshakeRttUs.p50' | 'icmp.rttUs.p50';
export const RTT_METRICS: readonly RttMetric[] = ['tcp.handshakeRttUs.p50', 'icmp.rttUs.p50'];

export interface RttZScoreRuleConfig {
  enabled: boolean;
  metric: RttMetric;
  /** Alert when |z| exceeds this. */
  threshold: number;
  warmupWindows: number;
  /** Exponential forgetting of the running mean and variance (weight of the newest window). */
  alpha: number;
  /** Windows whose latency summary holds fewer samples are ignored. */
  minSamples: number;
  /** Floor of the standard deviation: absolute (µs) and relative to the mean. */
  minStdUs: number;
  minStdFraction: number;
  severity: Severity;
}

export interface NewPairRuleConfig {
  enabled: boolean;
  /** Event time from the first window the engine sees during which pairs are learnt, not reported. */
  learningPeriodSeconds: number;
  /** Known pairs kept (least recently seen forgotten first). */
  maxKnownPairs: number;
  severity: Severity;
}

export interface ScanRuleConfig {
  enabled: boolean;
  /** Distinct (host, port) targets with failed handshakes from one source in one window. */
  minDistinctTargets: number;
  /** Sources tracked per window; more are counted as dropped. */
  maxSourcesPerWindow: number;
  severity: Severity;
}

export interface TrendConfig {
  /** Holt level smoothing. */
  alpha: number;
  /** Holt slope smoothing. */
  beta: number;
  /** EWMA weight of the newest window (ewmaBps). */
  ewmaAlpha: number;
  horizonWindows: number;
  /** Gaps of up to this many windows count as zero throughput; longer ones restart the model. */
  maxGapWindows: number;
}

export interface RulesConfig {
  thresholds: ThresholdRule[];
  anomaly: { poisson: PoissonRuleConfig; rttZScore: RttZScoreRuleConfig };
  security: { newPair: NewPairRuleConfig; scan: ScanRuleConfig };
  trend: TrendConfig;
  /** A pair with no window for this long (event time) is forgotten; its firing alerts resolve. */
  pairIdleSeconds: number;
  /** Pairs with model state at most; the least recently seen is forgotten first. */
  maxPairs: number;
}

export const DEFAULT_RULES_CONFIG: Readonly<RulesConfig> = Object.freeze({
  thresholds: [],
  anomaly: {
    poisson: { enabled: true, tailProbability: 1e-6, warmupWindows: 10, alpha: 0.1, minPackets: 50, overdispersion: true, severity: 'warning' },
    rttZScore: {
      enabled: true,
      metric: 'tcp.handshakeRttUs.p50',
      threshold: 4,
      warmupWindows: 10,
      alpha: 0.05,
      minSamples: 1,
      minStdUs: 10,
      minStdFraction: 0.05,
      severity: 'warning',
    },
  },
  security: {
    newPair: { enabled: true, learningPeriodSeconds: 3600, maxKnownPairs: 1_000_000, severity: 'info' },
    scan: { enabled: true, minDistinctTargets: 20, maxSourcesPerWindow: 100_000, severity: 'critical' },
  },
  trend: { alpha: 0.5, beta: 0.3, ewmaAlpha: 0.3, horizonWindows: 6, maxGapWindows: 6 },
  pairIdleSeconds: 600,
  maxPairs: 1_000_000,
} satisfies RulesConfig);

// ---- metric paths

/** Reads one metric of a window (undefined when the window lacks it, e.g. no trend). */
export type MetricGetter = (w: PairWindow) => number | undefined;

const DERIVED: Record<string, MetricGetter> = {
  packets: (w) => w.aToB.packets + w.bToA.packets,
  bytes: (w) => w.aToB.bytes + w.bToA.bytes,
};
const NOT_METRICS = new Set(['schemaVersion', 'windowStartUs', 'windowEndUs']);

function numericPaths(spec: MessageSpec, prefix: string, out: string[]): string[] {
  for (const f of spec.fields) {
    if (f.repeated) continue;
    const path = prefix + f.name;
    if (typeof f.type === 'string') {
      if (f.type !== 'string' && f.type !== 'bool' && !NOT_METRICS.has(path)) out.push(path);
    } else if ('message' in f.type) numericPaths(f.type.message, path + '.', out);
  }
  return out;
}

/** Every metric a threshold rule may name, sorted. */
export const METRIC_PATHS: readonly string[] = [...numericPaths(PAIR_WINDOW_SPEC, '', []), ...Object.keys(DERIVED)].sort();

/** A getter for a metric path (see METRIC_PATHS); undefined for an unknown path. */
export function metricGetter(path: string): MetricGetter | undefined {
  if (DERIVED[path]) return DERIVED[path];
  if (!METRIC_PATHS.includes(path)) return undefined;
  const parts = path.split('.');
  const leaf = parts[parts.length - 1]!;
  return (w) => {
    let v: unknown = w;
    let parent: unknown;
    for (const p of parts) {
      if (v === undefined || v === null) return undefined;
      parent = v;
      v = (v as Record<string, unknown>)[p];
    }
    // a latency summary without samples has no min/p50/p95/max (they read 0)
    if (leaf !== 'count' && typeof (parent as { count?: unknown }).count === 'number' && (parent as { count: number }).count === 0) return undefined;
    return typeof v === 'number' ? v : undefined;
  };
}

export function compare(op: Operator, x: number, y: number): boolean {
  switch (op) {
    case '>':
      return x > y;
    case '>=':
      return x >= y;
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '==':
      return x === y;
    case '!=':
      return x !== y;
  }
}

// ---- parsing

function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  const s = JSON.stringify(value);
  return s === undefined ? String(value) : s.length > 80 ? s.slice(0, 77) + '...' : s;
}

function ruleError(index: number, field: string, value: unknown, expected: string): ConfigError {
  return new ConfigError(`config: invalid rule (index=${index}, field=${field}, value=${show(value)}, expected=${expected})`, { index, field, value, expected });
}

function settingError(field: string, value: unknown, expected: string): ConfigError {
  return new ConfigError(`config: invalid setting (field=${field}, value=${show(value)}, expected=${expected})`, { field, value, expected });
}

type Fail = (field: string, value: unknown, expected: string) => ConfigError;
type Obj = Record<string, unknown>;

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

interface NumberCheck {
  integer?: boolean;
  min?: number;
  /** min excluded */
  minOpen?: boolean;
  max?: number;
  maxOpen?: boolean;
}

function describe(c: NumberCheck): string {
  const lo = c.min === undefined ? '' : `${c.minOpen ? '>' : '>='} ${c.min}`;
  const hi = c.max === undefined ? '' : `${c.maxOpen ? '<' : '<='} ${c.max}`;
  const range = c.min !== undefined && c.max !== undefined ? `in ${c.minOpen ? '(' : '['}${c.min}, ${c.max}${c.maxOpen ? ')' : ']'}` : lo || hi;
  return `${c.integer ? 'an integer' : 'a number'}${range ? ' ' + range : ''}`;
}

function num(v: unknown, field: string, c: NumberCheck, fail: Fail): number {
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (!c.integer || Number.isInteger(v)) &&
    (c.min === undefined || (c.minOpen ? v > c.min : v >= c.min)) &&
    (c.max === undefined || (c.maxOpen ? v < c.max : v <= c.max));
  if (!ok) throw fail(field, v, describe(c));
  return v as number;
}

function oneOf<T extends string>(v: unknown, field: string, values: readonly T[], fail: Fail): T {
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) throw fail(field, v, `one of ${values.join(' ')}`);
  return v as T;
}

function bool(v: unknown, field: string, fail: Fail): boolean {
  if (typeof v !== 'boolean') throw fail(field, v, 'true or false');
  return v;
}

/** Checks that `o` (at `path`) is an object with only `allowed` keys. */
function section(o: unknown, path: string, allowed: readonly string[]): Obj {
  if (o === undefined) return {};
  if (!isObject(o)) throw settingError(path, o, 'an object');
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw settingError(path ? `${path}.${k}` : k, o[k], `one of ${allowed.join(', ')}`);
  return o;
}

/** Fills a flat settings object from defaults, checking each given key with `checks`. */
function settings<T extends object>(raw: unknown, path: string, defaults: T, checks: { [K in keyof T]: (v: unknown, field: string) => T[K] }): T {
  const o = section(raw, path, Object.keys(defaults));
  const out = { ...defaults };
  for (const k of Object.keys(defaults) as (keyof T & string)[]) {
    if (o[k] !== undefined) out[k] = checks[k](o[k], `${path}.${k}`);
  }
  return out;
}

const S: Fail = settingError;
const probability = (v: unknown, f: string) => num(v, f, { min: 0, minOpen: true, max: 1, maxOpen: true }, S);
const weight = (v: unknown, f: string) => num(v, f, { min: 0, minOpen: true, max: 1 }, S);
const count = (min: number) => (v: unknown, f: string) => num(v, f, { integer: true, min }, S);
const nonNegative = (v: unknown, f: string) => num(v, f, { min: 0 }, S);
const positive = (v: unknown, f: string) => num(v, f, { min: 0, minOpen: true }, S);
const flag = (v: unknown, f: string) => bool(v, f, S);
const severity = (v: unknown, f: string) => oneOf(v, f, SEVERITIES, S);

function parseThreshold(raw: unknown, index: number): ThresholdRule {
  const fail: Fail = (field, value, expected) => ruleError(index, field, value, expected);
  if (!isObject(raw)) throw fail('rule', raw, 'an object');
  const allowed = ['name', 'metric', 'operator', 'value', 'forWindows', 'severity'];
  for (const k of Object.keys(raw)) if (!allowed.includes(k)) throw fail(k, raw[k], `one of ${allowed.join(', ')}`);
  if (typeof raw.metric !== 'string' || !metricGetter(raw.metric)) throw fail('metric', raw.metric, `a PairWindow metric: one of ${METRIC_PATHS.join(' ')}`);
  const operator = oneOf(raw.operator, 'operator', OPERATORS, fail);
  const value = num(raw.value, 'value', {}, fail);
  const forWindows = raw.forWindows === undefined ? 1 : num(raw.forWindows, 'forWindows', { integer: true, min: 1 }, fail);
  const sev = raw.severity === undefined ? 'warning' : oneOf(raw.severity, 'severity', SEVERITIES, fail);
  let name = `${raw.metric} ${operator} ${value}`;
  if (raw.name !== undefined) {
    if (typeof raw.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/.test(raw.name)) throw fail('name', raw.name, 'a name of letters, digits, . _ : - (at most 100)');
    name = raw.name;
  }
  return { name, metric: raw.metric, operator, value, forWindows, severity: sev };
}

/** Validates a rules config object and fills in defaults; throws one ConfigError naming the problem. */
export function parseRulesConfig(raw: unknown): RulesConfig {
  const top = section(raw ?? {}, '', ['thresholds', 'anomaly', 'security', 'trend', 'pairIdleSeconds', 'maxPairs']);
  const d = DEFAULT_RULES_CONFIG;
  if (top.thresholds !== undefined && !Array.isArray(top.thresholds)) throw settingError('thresholds', top.thresholds, 'an array of rules');
  const thresholds = ((top.thresholds as unknown[] | undefined) ?? []).map(parseThreshold);
  const names = new Set<string>();
  thresholds.forEach((r, i) => {
    if (names.has(r.name)) throw ruleError(i, 'name', r.name, 'a name no other rule has');
    names.add(r.name);
  });

  const anomaly = section(top.anomaly, 'anomaly', ['poisson', 'rttZScore']);
  const poisson = settings(anomaly.poisson, 'anomaly.poisson', d.anomaly.poisson, {
    enabled: flag,
    tailProbability: probability,
    warmupWindows: count(1),
    alpha: weight,
    minPackets: count(0),
    overdispersion: flag,
    severity,
  });
  const rttZScore = settings(anomaly.rttZScore, 'anomaly.rttZScore', d.anomaly.rttZScore, {
    enabled: flag,
    metric: (v, f) => oneOf(v, f, RTT_METRICS, S),
    threshold: positive,
    warmupWindows: count(2),
    alpha: weight,
    minSamples: count(1),
    minStdUs: nonNegative,
    minStdFraction: nonNegative,
    severity,
  });
  const security = section(top.security, 'security', ['newPair', 'scan']);
  const newPair = settings(security.newPair, 'security.newPair', d.security.newPair, {
    enabled: flag,
    learningPeriodSeconds: nonNegative,
    maxKnownPairs: count(1),
    severity,
  });
  const scan = settings(security.scan, 'security.scan', d.security.scan, {
    enabled: flag,
    minDistinctTargets: count(2),
    maxSourcesPerWindow: count(1),
    severity,
  });
  const trend = settings(top.trend, 'trend', d.trend, {
    alpha: weight,
    beta: weight,
    ewmaAlpha: weight,
    horizonWindows: (v, f) => num(v, f, { integer: true, min: 1, max: 1000 }, S),
    maxGapWindows: count(0),
  });
  const pairIdleSeconds = top.pairIdleSeconds === undefined ? d.pairIdleSeconds : positive(top.pairIdleSeconds, 'pairIdleSeconds');
  const maxPairs = top.maxPairs === undefined ? d.maxPairs : count(1)(top.maxPairs, 'maxPairs');
  return { thresholds, anomaly: { poisson, rttZScore }, security: { newPair, scan }, trend, pairIdleSeconds, maxPairs };
}
