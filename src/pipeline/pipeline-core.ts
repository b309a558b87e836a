/**
 * The pipeline's aggregation state machine, per input partition (pure: no Kafka, no clock; offsets
 * and processing time come with the calls).
 *
 * Each partition of the flows topic has its own event-time state: a PairWindowAggregator (its own
 * watermark: partitions progress independently), and, per open window, the lowest offset of a record
 * it holds. From that follows the partition's COMMIT POINT, the offset a restarted consumer must read
 * from so that nothing held in memory is lost:
 *
 *   commit offset = the lowest offset of any record held in an open (unemitted) window,
 *                   or, when no window is open, one past the last record processed.
 *
 * (Kafka's committed offset is the next offset to read, so the held record itself is re-read.) It
 * never moves backwards: windows only lose records when they are emitted, and new records have
 * higher offsets.
 *
 * Re-reading from the commit point also re-reads records of windows that were already emitted
 * (records of different windows interleave within the allowed lateness). So the commit carries the
 * partition's watermark too (Checkpoint, stored as the offset's metadata): a partition restored from
 * a checkpoint starts at that watermark, which marks exactly the windows already emitted (windows
 * close in order of their start, and closing is "start + window + lateness <= watermark"; an idle
 * close advances the watermark past every window it closes). Re-read records of closed windows are
 * dropped (counted as `replayedRecords` when they lie before the checkpoint's position, else as late),
 * records of open windows are aggregated again, and from the checkpoint's position on the partition
 * is in exactly the state it had then. So: emitted output + checkpoint, made durable together (one
 * Kafka transaction), are always consistent, and restoring the checkpoint and re-reading yields
 * every (pair, window) once.
 *
 * Idle partitions: a partition that has had no record for `idleTimeoutMs` of processing time closes
 * its open windows (tick()), so the last window of a finished replay is emitted.
 *
 * Records of one pair must all come through one partition (the flows topic is keyed by the
 * unordered endpoint pair): a PairWindow is built from one partition's records only.
 *
 * Cleaning (optional, `clean`): each partition passes its records through a Cleaner (clean.ts)
 * before aggregation: repeated record ids (a producer retry, a replayed spool), the collector's own
 * capture-port traffic and the same flow reported by a second agent are dropped and counted
 * (cleanDropped; by reason in cleanCounters). A dropped record only moves the position, like a
 * skipped message. The Cleaner is used without an agent→MAC inventory, so it never holds a record
 * (every push returns the record or nothing, at its own offset; holding would need the held
 * records' offsets in the commit point). Its memory is per incarnation like the windows: after a
 * restore, a duplicate whose original lies before the commit point lies in an emitted window too
 * (duplicates share event time), so it is dropped as replayed/late instead; a second agent's
 * observation of a flow whose first observation was before the commit point, in an emitted
 * window, but which itself falls in a still open window, would be kept (a rare difference from an
 * uninterrupted run).
 *
 * Analysis (optional, `rules`): each partition also has a TrendTracker and an AlertEngine (the same
 * classes the embedded path uses). Every window the partition emits is annotated with its trend and
 * judged by the alert engine (failed handshakes of accepted records feed the scan rule; a window
 * start is closed for the scan rule once its windows are emitted); the alerts wait in the partition
 * until takeAlerts(), so the adapter can produce them in the same transaction as the windows. This
 * model state is NOT part of the checkpoint: a partition restored from a commit (restart, rebalance,
 * failed transaction) starts its trend and alert models afresh at the restored watermark (EWMA,
 * Holt, Poisson λ, RTT moments, threshold streaks, known pairs, firing alerts are forgotten). Alert
 * ids are deterministic (`<idPrefix>:<rule>:<subject>:<windowStartUs>:<state>`), so windows judged
 * again after a failed transaction yield the same ids; but after a restore an alert firing before
 * it is not resolved by the new incarnation, a streak restarts, and an anomaly model warms up again.
 */
import { TUNNEL_NAMES, type FlowKeyRecord, type FlowRecord, type PairWindow } from '../capture/flow-record.js';
import { AlertEngine, type Alert } from './alerts.js';
import { Cleaner, type CleanerOptions } from './clean.js';
import type { FlowView } from './codec-flow-view.js';
import { EndpointResolver } from './endpoint-resolver.js';
import { observationFromRecord, SketchDistribution } from './observation.js';
import { PairWindowAggregator, flowKeyIdentityOf, type Distribution, type PairObservation } from './pair-window.js';
import type { RulesConfig } from './rules-config.js';
import { TrendTracker } from './trend.js';

export interface PipelineCoreOptions {
  /** Tumbling event-time window, µs (> 0). */
  windowUs: number;
  /** Event time after a window's end during which its records are still accepted, µs (default 0). */
  allowedLatenessUs?: number;
  /** Processing time without records after which a partition closes its open windows (default 2 × window). */
  idleTimeoutMs?: number;
  /** Names endpoints after VMs (default: an empty inventory, endpoints named by IP). */
  resolver?: EndpointResolver;
  newDistribution?: () => Distribution;
  /** PairWindow ids are `<idPrefix>-<windowStartUs>-<a>|<b>` (deterministic: the same after a replay). */
  idPrefix?: string;
  /** Trend and alert rules: when given, windows carry a trend and alerts are raised (takeAlerts). */
  rules?: RulesConfig;
  /** Records pass a Cleaner per partition first (true: default options); localMacs is not supported. */
  clean?: boolean | Omit<CleanerOptions, 'localMacs'>;
}

/** What a partition's commit stores besides the offset (as the offset's metadata). */
export interface Checkpoint {
  /** The partition's watermark, µs (-Infinity before the first record). */
  watermarkUs: number;
  /** One past the last offset processed when the checkpoint was taken. */
  position: number;
}

export interface CommitPoint {
  /** The offset to commit (the next one a restarted consumer reads). */
  offset: number;
  checkpoint: Checkpoint;
}

export interface PartitionStats {
  /** Records aggregated into a window. */
  records: number;
  /** Records that came after their window was emitted (beyond the allowed lateness). */
  lateRecords: number;
  /** Records re-read after a restore whose window had been emitted before (not late: already counted). */
  replayedRecords: number;
  /** Records without packets that carry nothing for a window (the end of a flow after its last interim record). */
  emptyRecords: number;
  /** Messages the adapter skipped (undecodable, wrong schema). */
  skippedMessages: number;
  windowsEmitted: number;
  idleCloses: number;
  /** Alerts raised (firing and resolved), re-raised ones after a restore included. */
  alerts: number;
  /** Records the Cleaner dropped (duplicates, capture-port traffic). */
  cleanDropped: number;
}

const CHECKPOINT_PREFIX = 'mfp1;';

/** The (shared, frozen) result of a call that closed no window: most calls, so no allocation for them. */
const NO_WINDOWS: PairWindow[] = Object.freeze([]) as unknown as PairWindow[];

/** The offset metadata text of a checkpoint (`mfp1;wm=<µs>;pos=<offset>`, a few dozen bytes). */
export function encodeCheckpoint(c: Checkpoint): string {
  const wm = Number.isFinite(c.watermarkUs) ? String(c.watermarkUs) : '-';
  return `${CHECKPOINT_PREFIX}wm=${wm};pos=${c.position}`;
}

/** Parses offset metadata written by encodeCheckpoint; anything else (null, '', foreign) → undefined. */
export function decodeCheckpoint(text: string | null | undefined): Checkpoint | undefined {
  if (!text || !text.startsWith(CHECKPOINT_PREFIX)) return undefined;
  const m = /^wm=(-|-?\d+(?:\.\d+)?);pos=(\d+)$/.exec(text.slice(CHECKPOINT_PREFIX.length));
  if (!m) return undefined;
  return { watermarkUs: m[1] === '-' ? -Infinity : Number(m[1]), position: Number(m[2]) };
}

/**
 * The observation a FlowRecord contributes to its pair's window, or undefined when it carries
 * nothing: a record without packets (a flow that ended after its last interim record) only counts
 * when its handshake failed, at its end time. The embedded path and the pipeline use this alike.
 */
export function pairObservationOf(r: FlowRecord, resolver: EndpointResolver): PairObservation | undefined {
  const o = observationFromRecord(r, resolver);
  if (r.clientToServer.packets + r.serverToClient.packets === 0) {
    if (!r.tcp?.failed) return undefined;
    o.firstUs = o.lastUs;
  }
  return o;
}

export function emptyPartitionStats(): PartitionStats {
  return { records: 0, lateRecords: 0, replayedRecords: 0, emptyRecords: 0, skippedMessages: 0, windowsEmitted: 0, idleCloses: 0, alerts: 0, cleanDropped: 0 };
}

/** One partition's state. */
export class PartitionState {
  private readonly aggregator: PairWindowAggregator;
  /** Open window start → lowest offset of a record it holds. */
  private readonly held = new Map<number, number>();
  /** The last (start, lowest offset) set in `held` (NaN: none): most records add to the same window. */
  private heldStart = NaN;
  private heldOffset = 0;
  private watermarkUs: number;
  /** One past the last offset processed (records and skipped messages). */
  private position: number;
  /** Offsets below this were processed before the checkpoint this state was restored from. */
  private readonly replayBelow: number;
  private lastRecordMs: number | undefined;
  private readonly trend: TrendTracker | undefined;
  private readonly alertEngine: AlertEngine | undefined;
  /** Drops duplicates before aggregation (see the header), when enabled. */
  readonly cleaner: Cleaner | undefined;
  /** Alerts raised and not yet taken. */
  private alertsOut: Alert[] = [];
  readonly stats = emptyPartitionStats();
  /** Windows the aggregator closed during the current add() (addTo: no closure or array per record). */
  private closing: PairWindow[] = [];
  private readonly onClosed = (w: PairWindow): void => {
    this.closing.push(w);
  };

  constructor(
    private readonly opts: Required<Pick<PipelineCoreOptions, 'windowUs' | 'allowedLatenessUs' | 'idleTimeoutMs' | 'idPrefix'>> & {
      newDistribution: () => Distribution;
      rules?: RulesConfig;
      clean?: Omit<CleanerOptions, 'localMacs'>;
    },
    /** The committed offset this partition restarts from (0 or the topic's start when nothing was committed). */
    startOffset: number,
    restored?: Checkpoint,
  ) {
    this.aggregator = new PairWindowAggregator({
      windowUs: opts.windowUs,
      allowedLatenessUs: opts.allowedLatenessUs,
      newDistribution: opts.newDistribution,
    });
    this.watermarkUs = restored?.watermarkUs ?? -Infinity;
    if (Number.isFinite(this.watermarkUs)) this.aggregator.advance(this.watermarkUs);
    this.position = startOffset;
    this.replayBelow = restored?.position ?? 0;
    if (opts.clean) this.cleaner = new Cleaner(opts.clean);
    if (opts.rules) {
      this.trend = new TrendTracker({ ...opts.rules.trend, pairIdleUs: opts.rules.pairIdleSeconds * 1e6, maxPairs: opts.rules.maxPairs });
      this.alertEngine = new AlertEngine(opts.rules, { idPrefix: opts.idPrefix });
    }
  }

  /**
   * Adds the record at `offset` (undefined: a record that carries nothing); returns the windows it
   * closed. `serverPort`: the flow's server port, for the scan rule (failed handshakes).
   */
  add(offset: number, o: PairObservation | undefined, nowMs: number, serverPort = 0): PairWindow[] {
    this.position = Math.max(this.position, offset + 1);
    this.lastRecordMs = nowMs;
    if (!o) {
      this.stats.emptyRecords++;
      return NO_WINDOWS;
    }
    const w = this.opts.windowUs;
    const start = Math.floor(o.lastUs / w) * w;
    if (start + w + this.opts.allowedLatenessUs <= this.watermarkUs) {
      if (offset < this.replayBelow) this.stats.replayedRecords++;
      else this.stats.lateRecords++;
      return NO_WINDOWS;
    }
    if (this.alertEngine && o.tcp?.failedHandshake) this.alertEngine.observeFailedHandshake(o.client, o.server, serverPort, start);
    const lateBefore = this.aggregator.lateRecords;
    this.aggregator.addTo(o, this.onClosed);
    if (this.aggregator.lateRecords !== lateBefore) throw new Error('pipeline-core: aggregator and partition disagree on lateness');
    let out = NO_WINDOWS;
    if (this.closing.length) {
      out = this.closing;
      this.closing = [];
    }
    this.stats.records++;
    if (o.lastUs > this.watermarkUs) this.watermarkUs = o.lastUs;
    if (start !== this.heldStart || offset < this.heldOffset) {
      const h = this.held.get(start);
      if (h === undefined || offset < h) this.held.set(start, offset);
      this.heldStart = start;
      this.heldOffset = h === undefined || offset < h ? offset : h;
    }
    return this.emitted(out);
  }

  /** A record the Cleaner dropped: only moves the position. */
  cleaned(offset: number, nowMs: number): void {
    this.position = Math.max(this.position, offset + 1);
    this.lastRecordMs = nowMs;
    this.stats.cleanDropped++;
  }

  /** A message that was skipped (undecodable, wrong schema): only moves the position. */
  skip(offset: number, nowMs: number): void {
    this.position = Math.max(this.position, offset + 1);
    this.lastRecordMs = nowMs;
    this.stats.skippedMessages++;
  }

  /**
   * Moves the position past offsets that carried no record for us (transaction markers at the end
   * of a batch): lets the commit point pass them when no window is open.
   */
  seen(nextOffset: number): void {
    this.position = Math.max(this.position, nextOffset);
  }

  /** Closes every open window when no record came for idleTimeoutMs. */
  tick(nowMs: number): PairWindow[] {
    if (this.held.size === 0 || this.lastRecordMs === undefined) return [];
    if (nowMs - this.lastRecordMs < this.opts.idleTimeoutMs) return [];
    return this.closeAll();
  }

  /**
   * Moves the watermark to `watermarkUs` (never back) and emits the windows it closes: for an
   * in-process source whose event time is known exactly (the agent's capture cuts every flow at
   * window boundaries, so nothing for a window comes after its end has passed).
   */
  advance(watermarkUs: number): PairWindow[] {
    if (!(watermarkUs > this.watermarkUs)) return [];
    this.watermarkUs = watermarkUs;
    return this.emitted(this.aggregator.advance(watermarkUs));
  }

  /** Emits every open window and moves the watermark past them (idle close). */
  closeAll(): PairWindow[] {
    if (this.held.size === 0) return [];
    let last = -Infinity;
    for (const s of this.held.keys()) if (s > last) last = s;
    const wm = last + this.opts.windowUs + this.opts.allowedLatenessUs;
    if (wm > this.watermarkUs) this.watermarkUs = wm;
    this.stats.idleCloses++;
    return this.emitted(this.aggregator.advance(this.watermarkUs));
  }

  get openWindows(): number {
    return this.held.size;
  }

  /** Milliseconds (processing time) of the last record, undefined before the first. */
  get lastActivityMs(): number | undefined {
    return this.lastRecordMs;
  }

  commitPoint(): CommitPoint {
    let offset = this.position;
    for (const h of this.held.values()) if (h < offset) offset = h;
    return { offset, checkpoint: { watermarkUs: this.watermarkUs, position: this.position } };
  }

  /** Alerts raised since the last call (in the order raised); the partition forgets them. */
  takeAlerts(): Alert[] {
    const a = this.alertsOut;
    this.alertsOut = [];
    return a;
  }

  /** Alerts raised and not yet taken. */
  get pendingAlerts(): number {
    return this.alertsOut.length;
  }

  private emitted(ws: PairWindow[]): PairWindow[] {
    if (ws.length === 0) return NO_WINDOWS;
    this.heldStart = NaN;
    for (const pw of ws) {
      this.held.delete(pw.windowStartUs);
      pw.id = `${this.opts.idPrefix}-${pw.windowStartUs}-${pw.a}|${pw.b}`;
    }
    this.stats.windowsEmitted += ws.length;
    if (!this.trend || !this.alertEngine) return ws;
    // windows come ordered by start; a start is closed for the scan rule after its last window
    const out: PairWindow[] = new Array(ws.length);
    const raised = this.alertsOut;
    const before = raised.length;
    for (let i = 0; i < ws.length; i++) {
      const w = (out[i] = this.trend.annotate(ws[i]!));
      raised.push(...this.alertEngine.observeWindow(w));
      const next = ws[i + 1];
      if (!next || next.windowStartUs !== w.windowStartUs) raised.push(...this.alertEngine.closeWindow(w.windowStartUs, w.windowEndUs));
    }
    this.stats.alerts += raised.length - before;
    return out;
  }
}

/**
 * A flow key seen in views: the key record its identity text was made from (flowKeyIdentityOf), the
 * view's raw numbers the record keeps in another form (tunnel number; -1 for an absent vni, ICMP id
 * or type), and the hash that picked its set. Never changed once made.
 */
interface FlowKeyEntry {
  hash: number;
  key: FlowKeyRecord;
  tunnel: number;
  vni: number;
  icmpId: number;
  icmpType: number;
  identity: string;
}

/** Entries per set of the FlowKeyIdentities cache. */
const WAYS = 4;

/**
 * The identity of a FlowView's flow key (flowKeyIdentityOf, as the FlowRecord path computes it), from
 * a set-associative cache of the keys seen last (4 entries per set, the oldest replaced): a key seen
 * before costs a hash of numbers (the interner's string hashes) and a comparison, no text; the same
 * flow gives the same string object, which the aggregator compares by reference.
 */
export class FlowKeyIdentities {
  private readonly slots: (FlowKeyEntry | undefined)[];
  private readonly mask: number;
  /** Per set: the way the next new entry takes (round robin: the oldest). */
  private readonly nextWay: Uint8Array;

  constructor(slots = 1 << 16) {
    let n = WAYS;
    while (n < slots) n <<= 1;
    this.mask = n - WAYS;
    this.slots = new Array<FlowKeyEntry | undefined>(n).fill(undefined);
    this.nextWay = new Uint8Array(n / WAYS);
  }

  of(v: FlowView): string {
    let h = Math.imul(v.clientIpHash ^ Math.imul(v.clientPort + 1, 0x9e3779b1), 0x85ebca6b);
    h = Math.imul(h ^ v.serverIpHash ^ Math.imul(v.serverPort + 1, 0x27d4eb2f), 0xc2b2ae35);
    h = Math.imul(h ^ v.clientMacHash, 0x165667b1);
    h = Math.imul(h ^ v.serverMacHash, 0x9e3779b1);
    h = Math.imul(h ^ (v.protocol | (v.ipVersion << 8) | (v.tunnel << 12) | (v.etherType << 16)), 0x85ebca6b);
    h = Math.imul(h ^ (v.vni + 1) ^ Math.imul(v.icmpId + 2, 0x27d4eb2f) ^ Math.imul(v.icmpType + 3, 0xc2b2ae35), 0x165667b1);
    const vlans = v.vlans;
    for (let i = 0; i < vlans.length; i++) h = Math.imul(h ^ vlans[i]!, 0x9e3779b1);
    h ^= h >>> 15;
    const set = (h << 2) & this.mask;
    for (let way = 0; way < WAYS; way++) {
      const e = this.slots[set + way];
      if (e === undefined) break;
      const k = e.key;
      if (
        e.hash === h &&
        k.clientIp === v.clientIp &&
        k.serverIp === v.serverIp &&
        k.clientPort === v.clientPort &&
        k.serverPort === v.serverPort &&
        k.protocol === v.protocol &&
        k.clientMac === v.clientMac &&
        k.serverMac === v.serverMac &&
        k.ipVersion === v.ipVersion &&
        k.etherType === v.etherType &&
        e.tunnel === v.tunnel &&
        e.vni === v.vni &&
        e.icmpId === v.icmpId &&
        e.icmpType === v.icmpType &&
        sameNumbers(k.vlans, vlans)
      ) {
        return e.identity;
      }
    }
    const key: FlowKeyRecord = {
      vlans: vlans.slice(),
      tunnel: TUNNEL_NAMES[v.tunnel] ?? 'none',
      ipVersion: v.ipVersion,
      protocol: v.protocol,
      etherType: v.etherType,
      clientIp: v.clientIp,
      serverIp: v.serverIp,
      clientPort: v.clientPort,
      serverPort: v.serverPort,
      clientMac: v.clientMac,
      serverMac: v.serverMac,
      fragmentsOnly: false,
    };
    if (v.vni >= 0) key.vni = v.vni;
    if (v.icmpId >= 0) key.icmpId = v.icmpId;
    if (v.icmpType >= 0) key.icmpType = v.icmpType;
    const identity = flowKeyIdentityOf(key);
    const way = this.nextWay[set / WAYS]!;
    this.nextWay[set / WAYS] = (way + 1) % WAYS;
    this.slots[set + way] = { hash: h, key, tunnel: v.tunnel, vni: v.vni, icmpId: v.icmpId, icmpType: v.icmpType, identity };
    return identity;
  }
}

function sameNumbers(x: readonly number[], y: readonly number[]): boolean {
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * Builds the PairObservation of a FlowView into reused objects (what pairObservationOf does for a
 * FlowRecord). The aggregator and the alert engine read an observation during add() and keep none
 * of its objects (they copy counters and merge distributions), so one scratch object serves every
 * record.
 */
class ViewObservations {
  private readonly o: PairObservation = {
    flowKey: '',
    client: '',
    server: '',
    firstUs: 0,
    lastUs: 0,
    clientToServer: { packets: 0, bytes: 0 },
    serverToClient: { packets: 0, bytes: 0 },
  };
  private readonly tcp: NonNullable<PairObservation['tcp']> = { failedHandshake: false, retransmits: 0, gapFills: 0, dataSegments: 0 };
  private readonly icmp: NonNullable<PairObservation['icmp']> = { echoRequests: 0, echoReplies: 0 };
  private readonly keys = new FlowKeyIdentities();

  constructor(private readonly resolver: EndpointResolver) {}

  of(v: FlowView): PairObservation | undefined {
    if (v.c2sPackets + v.s2cPackets === 0 && !(v.hasTcp && v.tcpFailed)) return undefined;
    const o = this.o;
    const ip = v.ipVersion === 4 || v.ipVersion === 6;
    o.flowKey = this.keys.of(v);
    o.client = this.resolver.nameFromText(v.clientMac || undefined, ip ? v.clientIp : undefined);
    o.server = this.resolver.nameFromText(v.serverMac || undefined, ip ? v.serverIp : undefined);
    o.lastUs = v.endUs;
    o.firstUs = v.c2sPackets + v.s2cPackets === 0 ? v.endUs : v.startUs;
    o.clientToServer.packets = v.c2sPackets;
    o.clientToServer.bytes = v.c2sBytes;
    o.serverToClient.packets = v.s2cPackets;
    o.serverToClient.bytes = v.s2cBytes;
    if (v.hasTcp) {
      const t = this.tcp;
      t.handshakeRttUs = Number.isNaN(v.handshakeRttUs) ? undefined : v.handshakeRttUs;
      t.failedHandshake = v.tcpFailed;
      t.retransmits = v.retransmits;
      t.gapFills = v.gapFills;
      t.dataSegments = v.dataSegments;
      o.tcp = t;
    } else o.tcp = undefined;
    if (v.hasIcmp) {
      const i = this.icmp;
      i.echoRequests = v.echoRequests;
      i.echoReplies = v.echoReplies;
      i.rtt = v.icmpRtt ? SketchDistribution.fromData(v.icmpRtt) : undefined;
      o.icmp = i;
    } else o.icmp = undefined;
    return o;
  }
}

/** The state of every partition this process holds. */
export class PipelineCore {
  private readonly parts = new Map<number, PartitionState>();
  private readonly resolver: EndpointResolver;
  private readonly partitionOpts: ConstructorParameters<typeof PartitionState>[0];
  /** Stats of partitions dropped (revoked), so totals survive a rebalance. */
  private readonly retired = emptyPartitionStats();
  private readonly retiredClean: Record<string, number> = {};
  private readonly views: ViewObservations;

  constructor(opts: PipelineCoreOptions) {
    if (!(opts.windowUs > 0)) throw new RangeError(`pipeline-core: window must be > 0 (windowUs=${opts.windowUs})`);
    this.resolver = opts.resolver ?? new EndpointResolver();
    this.views = new ViewObservations(this.resolver);
    this.partitionOpts = {
      windowUs: opts.windowUs,
      allowedLatenessUs: opts.allowedLatenessUs ?? 0,
      idleTimeoutMs: opts.idleTimeoutMs ?? (2 * opts.windowUs) / 1000,
      idPrefix: opts.idPrefix ?? 'pairs',
      newDistribution: opts.newDistribution ?? (() => new SketchDistribution()),
      ...(opts.rules ? { rules: opts.rules } : {}),
      ...(opts.clean ? { clean: opts.clean === true ? {} : opts.clean } : {}),
    };
  }

  /** Starts (or restarts) a partition from its committed offset and the checkpoint stored with it. */
  assign(partition: number, startOffset: number, restored?: Checkpoint): PartitionState {
    this.revoke(partition);
    const p = new PartitionState(this.partitionOpts, startOffset, restored);
    this.parts.set(partition, p);
    return p;
  }

  /** Drops a partition's state (revoked, or a failed transaction: it is rebuilt from the commit). */
  revoke(partition: number): void {
    const p = this.parts.get(partition);
    if (!p) return;
    for (const k of Object.keys(this.retired) as (keyof PartitionStats)[]) this.retired[k] += p.stats[k];
    if (p.cleaner) for (const [k, n] of Object.entries(p.cleaner.counters.dropped)) this.retiredClean[k] = (this.retiredClean[k] ?? 0) + n;
    this.parts.delete(partition);
  }

  has(partition: number): boolean {
    return this.parts.has(partition);
  }

  partition(partition: number): PartitionState {
    const p = this.parts.get(partition);
    if (!p) throw new Error(`pipeline-core: partition not assigned (partition=${partition})`);
    return p;
  }

  get partitions(): number[] {
    return [...this.parts.keys()].sort((a, b) => a - b);
  }

  addRecord(partition: number, offset: number, r: FlowRecord, nowMs: number): PairWindow[] {
    const p = this.partition(partition);
    if (!p.cleaner) return p.add(offset, pairObservationOf(r, this.resolver), nowMs, r.key.serverPort);
    const kept = p.cleaner.push(r);
    if (kept.length === 0) {
      p.cleaned(offset, nowMs);
      return [];
    }
    // without localMacs the Cleaner holds nothing: `kept` is [r]
    const out: PairWindow[] = [];
    for (const k of kept) out.push(...p.add(offset, pairObservationOf(k, this.resolver), nowMs, k.key.serverPort));
    return out;
  }

  /**
   * addRecord() for a decoded FlowView (the Kafka pipeline's path: no FlowRecord object). The
   * returned array may be shared when empty: do not modify it.
   */
  addView(partition: number, offset: number, v: FlowView, nowMs: number): PairWindow[] {
    const p = this.partition(partition);
    if (p.cleaner) {
      if (!p.cleaner.judge(v)) {
        p.cleaned(offset, nowMs);
        return NO_WINDOWS;
      }
    }
    return p.add(offset, this.views.of(v), nowMs, v.serverPort);
  }

  /** The Cleaners' drops by reason, over current and dropped partitions (empty without cleaning). */
  get cleanCounters(): Record<string, number> {
    const out: Record<string, number> = { ...this.retiredClean };
    for (const p of this.parts.values()) {
      if (!p.cleaner) continue;
      for (const [k, n] of Object.entries(p.cleaner.counters.dropped)) out[k] = (out[k] ?? 0) + n;
    }
    return out;
  }

  /** The partition's alerts raised since the last call (empty without rules). */
  takeAlerts(partition: number): Alert[] {
    return this.partition(partition).takeAlerts();
  }

  skip(partition: number, offset: number, nowMs: number): void {
    this.partition(partition).skip(offset, nowMs);
  }

  /** Idle closes of every partition, by partition (only partitions that emitted something). */
  tick(nowMs: number): Map<number, PairWindow[]> {
    const out = new Map<number, PairWindow[]>();
    for (const [n, p] of this.parts) {
      const ws = p.tick(nowMs);
      if (ws.length) out.set(n, ws);
    }
    return out;
  }

  commitPoint(partition: number): CommitPoint {
    return this.partition(partition).commitPoint();
  }

  /** Totals over current and dropped partitions. Note: records re-read after a restore count again. */
  get stats(): PartitionStats & { openWindows: number } {
    const s = { ...this.retired, openWindows: 0 };
    for (const p of this.parts.values()) {
      for (const k of Object.keys(this.retired) as (keyof PartitionStats)[]) s[k] += p.stats[k];
      s.openWindows += p.openWindows;
    }
    return s;
  }
}
