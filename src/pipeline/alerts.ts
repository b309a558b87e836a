/**
 * Alerts from per-pair windows (pure: event time comes with the windows, never from the clock).
 *
 * Feed every PairWindow, in event-time order per pair, to observeWindow(); feed the failed TCP
 * handshakes of each window to observeFailedHandshake() and call closeWindow() once a window is
 * complete (after the aggregator emitted it). Both return the alerts to publish.
 *
 * Rules (configured by rules-config.ts):
 *   threshold   `<metric> <op> <value>` for N consecutive windows of the pair (a gap between two
 *               windows of the pair restarts the count). Fires once when the condition has held N
 *               windows, resolves once at the first window where it does not hold.
 *   poisson-burst  anomaly: packets k of the window against λ, the pair's EWMA of packets per
 *               active window (windows without traffic are not averaged in): fires when
 *               P(X ≥ k; λ) < tailProbability, after warmupWindows windows, for k ≥ minPackets;
 *               resolves at the next window that is not anomalous. Every window updates λ.
 *               With overdispersion (default), the counts are scaled by the pair's dispersion
 *               φ = max(1, variance / mean) of its recent windows (quasi-Poisson: k/φ against
 *               λ/φ), so a pair whose traffic always swings widely is judged by its own swings.
 *   rtt-zscore  anomaly: z = (x − mean) / std of the pair's RTT median (handshake or ICMP echo)
 *               against exponentially forgetting moments of its recent windows; fires when |z| >
 *               threshold after warm-up, resolves when back within. Windows without RTT samples
 *               neither update the model nor change the alert state.
 *   new-pair    security: the first learningPeriodSeconds of event time (from the first window the
 *               engine sees) learn the pairs; afterwards a pair never seen before fires once (an
 *               event: no resolved alert follows). Known pairs are bounded (LRU).
 *   scan        security: one source with failed handshakes to ≥ minDistinctTargets distinct
 *               (host, port) targets in one window fires; resolves at the first closed window in
 *               which the source does not scan.
 *
 * State is bounded (aging-map.ts): a pair with no window for pairIdleSeconds of event time is
 * forgotten within 2× that time (its firing alerts resolve); at most maxPairs pairs are kept (the
 * least recently seen half goes first, resolving likewise); at most maxKnownPairs known pairs.
 * Known pairs live in this process only: after a rebalance hands this process partitions it never
 * saw, their pairs look new (no learning period restarts).
 */
import type { PairWindow } from '../capture/flow-record.js';
import { AgingMap, type DropReason } from './aging-map.js';
import { ALERT_SCHEMA_VERSION, type Alert, type AlertKind, type AlertState } from './alert-record.js';
import { compare, metricGetter, type MetricGetter, type RulesConfig, type Severity, type ThresholdRule } from './rules-config.js';
import { ForgettingMoments, logGammaP, logPoissonTail } from './stats.js';

export type { Alert, AlertKind, AlertState } from './alert-record.js';
export { ALERT_SCHEMA_VERSION, ALERT_SPEC, alertToProto3Json } from './alert-record.js';

export const POISSON_RULE = 'poisson-burst';
export const RTT_ZSCORE_RULE = 'rtt-zscore';
export const NEW_PAIR_RULE = 'new-pair';
export const SCAN_RULE = 'scan';

export interface AlertEngineOptions {
  /** First part of alert ids (e.g. the pipeline group). Default 'alerts'. */
  idPrefix?: string;
}

export interface AlertEngineStats {
  /** Windows that came for a pair at or before its last window (skipped). */
  outOfOrderWindows: number;
  /** Pairs forgotten after pairIdleSeconds. */
  expiredPairs: number;
  /** Pairs forgotten because maxPairs was reached. */
  evictedPairs: number;
  /** Failed handshakes reported for a window already closed. */
  lateFailedHandshakes: number;
  /** Sources not tracked because a window already tracked maxSourcesPerWindow. */
  droppedScanSources: number;
  /** Open scan windows dropped unjudged because more than MAX_OPEN_SCAN_WINDOWS were open (closeWindow not called). */
  droppedScanWindows: number;
}

/** Scan windows open at once at most (closeWindow closes them; a caller that forgets is bounded). */
export const MAX_OPEN_SCAN_WINDOWS = 16;

interface ThresholdState {
  streak: number;
  firing: boolean;
}

interface PairState {
  a: string;
  b: string;
  lastStartUs: number;
  lastEndUs: number;
  thresholds: ThresholdState[];
  lambda: number;
  /**
   * Window packet counts: mean and variance with forgetting, for the dispersion φ. A variance
   * needs more windows than a mean: its memory is 4× λ's (an underestimated φ is a false alarm).
   */
  counts: ForgettingMoments;
  poissonWindows: number;
  poissonFiring: boolean;
  rtt: ForgettingMoments;
  rttFiring: boolean;
}

interface CompiledThreshold {
  rule: ThresholdRule;
  get: MetricGetter;
}

/** A source's failed-handshake targets in one window ("host|port"), capped. */
type ScanTargets = Set<string>;

/** Dispersion φ = variance / mean of a pair's window counts, at least 1 (Poisson: 1). */
function dispersion(m: ForgettingMoments): number {
  if (!(m.mean > 0)) return 1;
  const phi = m.variance / m.mean;
  return Number.isFinite(phi) && phi > 1 ? phi : 1;
}

const fmt = (x: number): string => (Number.isInteger(x) ? String(x) : Math.abs(x) >= 1e-3 && Math.abs(x) < 1e9 ? x.toFixed(3).replace(/\.?0+$/, '') : x.toExponential(3));

export class AlertEngine {
  private readonly pairs: AgingMap<string, PairState>;
  /** Known pairs for new-pair detection. */
  private readonly known: AgingMap<string, true>;
  /** Where alerts of pairs dropped by `pairs` go (the current call's output). */
  private sink: Alert[] = [];
  private learningEndUs: number | undefined;
  private readonly thresholds: CompiledThreshold[];
  private readonly idPrefix: string;
  /** windowStartUs → source → targets */
  private readonly scanWindows = new Map<number, Map<string, ScanTargets>>();
  /** Windows before this start are closed. */
  private closedBeforeUs = -Infinity;
  /** Sources with a firing scan alert. */
  private readonly scanning = new Map<string, true>();
  readonly stats: AlertEngineStats = { outOfOrderWindows: 0, expiredPairs: 0, evictedPairs: 0, lateFailedHandshakes: 0, droppedScanSources: 0, droppedScanWindows: 0 };

  constructor(
    private readonly config: RulesConfig,
    opts: AlertEngineOptions = {},
  ) {
    this.thresholds = config.thresholds.map((rule) => {
      const get = metricGetter(rule.metric);
      if (!get) throw new Error(`alerts: unknown metric (metric=${rule.metric})`);
      return { rule, get };
    });
    this.pairs = new AgingMap(config.pairIdleSeconds * 1e6, config.maxPairs, (_k, st, why) => this.forget(st, why));
    this.known = new AgingMap(Infinity, config.security.newPair.maxKnownPairs);
    this.idPrefix = opts.idPrefix ?? 'alerts';
  }

  /** Pairs with model state. */
  get pairCount(): number {
    return this.pairs.size;
  }

  /** Pairs remembered for new-pair detection. */
  get knownPairCount(): number {
    return this.known.size;
  }

  /** Judges one closed window of a pair; windows of one pair must come in event-time order. */
  observeWindow(w: PairWindow): Alert[] {
    const out: Alert[] = (this.sink = []);
    this.pairs.advance(w.windowEndUs);
    const key = `${w.a}\u0000${w.b}`;
    this.checkNewPair(key, w, out);
    let st = this.pairs.get(key);
    if (st && w.windowStartUs < st.lastEndUs) {
      this.stats.outOfOrderWindows++;
      return out;
    }
    if (!st) this.pairs.set(key, (st = this.newPair(w)));
    const contiguous = st.lastEndUs === w.windowStartUs;
    st.lastStartUs = w.windowStartUs;
    st.lastEndUs = w.windowEndUs;
    this.judgeThresholds(st, w, contiguous, out);
    if (this.config.anomaly.poisson.enabled) this.judgePoisson(st, w, out);
    if (this.config.anomaly.rttZScore.enabled) this.judgeRtt(st, w, out);
    return out;
  }

  /** Records one failed TCP handshake (client `source` → `target`:`port`) of the window starting at windowStartUs. */
  observeFailedHandshake(source: string, target: string, port: number, windowStartUs: number): void {
    const cfg = this.config.security.scan;
    if (!cfg.enabled) return;
    if (windowStartUs < this.closedBeforeUs) {
      this.stats.lateFailedHandshakes++;
      return;
    }
    let w = this.scanWindows.get(windowStartUs);
    if (!w) {
      if (this.scanWindows.size >= MAX_OPEN_SCAN_WINDOWS) {
        const oldest = Math.min(...this.scanWindows.keys());
        this.scanWindows.delete(oldest);
        this.stats.droppedScanWindows++;
      }
      this.scanWindows.set(windowStartUs, (w = new Map()));
    }
    let targets = w.get(source);
    if (!targets) {
      if (w.size >= cfg.maxSourcesPerWindow) {
        this.stats.droppedScanSources++;
        return;
      }
      w.set(source, (targets = new Set()));
    }
    // enough to judge and report; a scanner's thousands of targets need not be kept
    if (targets.size < cfg.minDistinctTargets * 4) targets.add(`${target}|${port}`);
  }

  /**
   * Closes the scan windows starting at or before windowStartUs (each `windowEndUs − windowStartUs`
   * long) and moves event time to windowEndUs; returns scan alerts and resolutions of idle pairs.
   */
  closeWindow(windowStartUs: number, windowEndUs: number): Alert[] {
    const out: Alert[] = (this.sink = []);
    const lengthUs = windowEndUs - windowStartUs;
    let judged = false;
    for (const start of [...this.scanWindows.keys()].filter((s) => s <= windowStartUs).sort((x, y) => x - y)) {
      this.judgeScan(start, start + lengthUs, this.scanWindows.get(start)!, out);
      this.scanWindows.delete(start);
      if (start === windowStartUs) judged = true;
    }
    if (windowStartUs >= this.closedBeforeUs) {
      // a closed window without any failed handshake ends every scan
      if (!judged) this.judgeScan(windowStartUs, windowEndUs, new Map(), out);
      this.closedBeforeUs = windowStartUs + 1;
    }
    this.pairs.advance(windowEndUs);
    return out;
  }

  /** Moves event time forward (an idle pipeline); returns resolutions of pairs that expired. */
  advance(nowUs: number): Alert[] {
    const out: Alert[] = (this.sink = []);
    this.pairs.advance(nowUs);
    return out;
  }

  // ---- rules

  private judgeThresholds(st: PairState, w: PairWindow, contiguous: boolean, out: Alert[]): void {
    for (let i = 0; i < this.thresholds.length; i++) {
      const { rule, get } = this.thresholds[i]!;
      const ts = st.thresholds[i]!;
      const v = get(w);
      const holds = v !== undefined && compare(rule.operator, v, rule.value);
      if (!contiguous) ts.streak = 0;
      if (holds) {
        ts.streak++;
        if (!ts.firing && ts.streak >= rule.forWindows) {
          ts.firing = true;
          const held = rule.forWindows > 1 ? ` for ${ts.streak} windows` : '';
          out.push(this.pairAlert(rule.name, 'threshold', rule.severity, 'firing', st, w, v!, rule.value, `${rule.metric} ${fmt(v!)} ${rule.operator} ${fmt(rule.value)}${held}`));
        }
      } else {
        ts.streak = 0;
        if (ts.firing) {
          ts.firing = false;
          const shown = v === undefined ? 'no value' : fmt(v);
          out.push(this.pairAlert(rule.name, 'threshold', rule.severity, 'resolved', st, w, v ?? NaN, rule.value, `${rule.metric} ${shown}, no longer ${rule.operator} ${fmt(rule.value)}`));
        }
      }
    }
  }

  private judgePoisson(st: PairState, w: PairWindow, out: Alert[]): void {
    const cfg = this.config.anomaly.poisson;
    const k = w.aToB.packets + w.bToA.packets;
    let anomalous = false;
    let logP = 0;
    let phi = 1;
    if (st.poissonWindows >= cfg.warmupWindows && k >= cfg.minPackets && k > st.lambda) {
      phi = cfg.overdispersion ? dispersion(st.counts) : 1;
      // P(X ≥ k) = P(Gamma(k, 1) ≤ λ): the regularised lower incomplete gamma, also for k/φ not whole
      logP = phi === 1 ? logPoissonTail(k, st.lambda) : logGammaP(k / phi, st.lambda / phi);
      anomalous = logP < Math.log(cfg.tailProbability);
    }
    if (anomalous && !st.poissonFiring) {
      st.poissonFiring = true;
      out.push(
        this.pairAlert(POISSON_RULE, 'anomaly', cfg.severity, 'firing', st, w, Math.exp(logP), cfg.tailProbability, `${k} packets against a rate of ${fmt(st.lambda)} per window${phi > 1 ? ` (dispersion ${fmt(phi)})` : ''}: P(X >= ${k}) = e^${fmt(logP)}`),
      );
    } else if (!anomalous && st.poissonFiring) {
      st.poissonFiring = false;
      out.push(this.pairAlert(POISSON_RULE, 'anomaly', cfg.severity, 'resolved', st, w, Math.exp(logP), cfg.tailProbability, `${k} packets against a rate of ${fmt(st.lambda)} per window`));
    }
    // EWMA, the exact mean while fewer than 1/alpha windows were seen
    const weight = Math.max(cfg.alpha, 1 / ++st.poissonWindows);
    st.lambda += weight * (k - st.lambda);
    st.counts.add(k);
  }

  private judgeRtt(st: PairState, w: PairWindow, out: Alert[]): void {
    const cfg = this.config.anomaly.rttZScore;
    const summary = cfg.metric === 'tcp.handshakeRttUs.p50' ? w.tcp.handshakeRttUs : w.icmp.rttUs;
    if (summary.count < cfg.minSamples) return;
    const x = summary.p50;
    const m = st.rtt;
    if (m.count >= cfg.warmupWindows) {
      const std = Math.max(m.std, cfg.minStdUs, cfg.minStdFraction * Math.abs(m.mean));
      const z = std > 0 ? (x - m.mean) / std : 0;
      const anomalous = Math.abs(z) > cfg.threshold;
      if (anomalous !== st.rttFiring) {
        st.rttFiring = anomalous;
        const state: AlertState = anomalous ? 'firing' : 'resolved';
        const msg = `${cfg.metric} ${fmt(x)} us against ${fmt(m.mean)} ± ${fmt(std)} us: z = ${fmt(z)}`;
        out.push(this.pairAlert(RTT_ZSCORE_RULE, 'anomaly', cfg.severity, state, st, w, z, cfg.threshold, msg));
      }
    }
    m.add(x);
  }

  private checkNewPair(key: string, w: PairWindow, out: Alert[]): void {
    const cfg = this.config.security.newPair;
    if (!cfg.enabled) return;
    if (this.learningEndUs === undefined) this.learningEndUs = w.windowStartUs + cfg.learningPeriodSeconds * 1e6;
    if (this.known.get(key)) return;
    if (w.windowStartUs >= this.learningEndUs) {
      const st = { a: w.a, b: w.b };
      out.push(this.pairAlert(NEW_PAIR_RULE, 'security', cfg.severity, 'firing', st, w, 1, 0, `pair ${w.a} <-> ${w.b} never seen before started talking`));
    }
    this.known.set(key, true);
  }

  private judgeScan(startUs: number, endUs: number, sources: Map<string, ScanTargets>, out: Alert[]): void {
    const cfg = this.config.security.scan;
    const win = { windowStartUs: startUs, windowEndUs: endUs };
    for (const [source, targets] of sources) {
      if (targets.size < cfg.minDistinctTargets || this.scanning.has(source)) continue;
      this.scanning.set(source, true);
      const hosts = new Set<string>();
      const ports = new Set<string>();
      for (const t of targets) {
        const i = t.lastIndexOf('|');
        hosts.add(t.slice(0, i));
        ports.add(t.slice(i + 1));
      }
      const capped = targets.size >= cfg.minDistinctTargets * 4 ? 'at least ' : '';
      const msg = `${source} failed handshakes to ${capped}${targets.size} distinct targets (${hosts.size} hosts, ${ports.size} ports) in one window`;
      out.push(this.alert(SCAN_RULE, 'security', cfg.severity, 'firing', { a: '', b: '', source }, win, targets.size, cfg.minDistinctTargets, msg));
    }
    for (const source of [...this.scanning.keys()]) {
      const t = sources.get(source);
      if (t && t.size >= cfg.minDistinctTargets) continue;
      this.scanning.delete(source);
      const msg = `${source} failed handshakes to ${t?.size ?? 0} distinct targets in one window`;
      out.push(this.alert(SCAN_RULE, 'security', cfg.severity, 'resolved', { a: '', b: '', source }, win, t?.size ?? 0, cfg.minDistinctTargets, msg));
    }
  }

  // ---- state

  private newPair(w: PairWindow): PairState {
    return {
      a: w.a,
      b: w.b,
      lastStartUs: -Infinity,
      lastEndUs: -Infinity,
      thresholds: this.thresholds.map(() => ({ streak: 0, firing: false })),
      lambda: 0,
      counts: new ForgettingMoments(this.config.anomaly.poisson.alpha / 4),
      poissonWindows: 0,
      poissonFiring: false,
      rtt: new ForgettingMoments(this.config.anomaly.rttZScore.alpha),
      rttFiring: false,
    };
  }

  /** A pair's state was dropped: resolves its firing alerts. */
  private forget(st: PairState, why: DropReason): void {
    const out = this.sink;
    if (why === 'expired') this.stats.expiredPairs++;
    else this.stats.evictedPairs++;
    const win = { windowStartUs: st.lastStartUs, windowEndUs: st.lastEndUs };
    const msg = why === 'expired' ? 'pair inactive: model state dropped' : 'too many pairs: model state dropped';
    this.thresholds.forEach(({ rule }, i) => {
      if (st.thresholds[i]!.firing) out.push(this.pairAlert(rule.name, 'threshold', rule.severity, 'resolved', st, win, NaN, rule.value, msg));
    });
    const p = this.config.anomaly.poisson;
    if (st.poissonFiring) out.push(this.pairAlert(POISSON_RULE, 'anomaly', p.severity, 'resolved', st, win, NaN, p.tailProbability, msg));
    const r = this.config.anomaly.rttZScore;
    if (st.rttFiring) out.push(this.pairAlert(RTT_ZSCORE_RULE, 'anomaly', r.severity, 'resolved', st, win, NaN, r.threshold, msg));
  }

  private pairAlert(
    rule: string,
    kind: AlertKind,
    severity: Severity,
    state: AlertState,
    pair: { a: string; b: string },
    win: { windowStartUs: number; windowEndUs: number },
    value: number,
    threshold: number,
    message: string,
  ): Alert {
    return this.alert(rule, kind, severity, state, { a: pair.a, b: pair.b, source: '' }, win, value, threshold, `${pair.a} <-> ${pair.b}: ${message}`);
  }

  private alert(
    rule: string,
    kind: AlertKind,
    severity: Severity,
    state: AlertState,
    subject: { a: string; b: string; source: string },
    win: { windowStartUs: number; windowEndUs: number },
    value: number,
    threshold: number,
    message: string,
  ): Alert {
    const who = subject.source || `${subject.a}~${subject.b}`;
    return {
      id: `${this.idPrefix}:${rule}:${who}:${win.windowStartUs}:${state}`,
      schemaVersion: ALERT_SCHEMA_VERSION,
      rule,
      kind,
      severity,
      state,
      a: subject.a,
      b: subject.b,
      source: subject.source,
      windowStartUs: win.windowStartUs,
      windowEndUs: win.windowEndUs,
      value,
      threshold,
      message,
    };
  }
}
