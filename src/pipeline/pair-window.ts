/**
 * Per-VM-pair aggregation in event-time tumbling windows (pure; time comes with the records).
 *
 * Input is one flow observation per call (a flow record, already named after VMs); output is one
 * PairWindow per unordered endpoint pair per window. A record belongs to the window holding its
 * last packet (`lastUs`); the capture worker cuts records at window boundaries, so a record never
 * spans two windows when it comes from mirrorflow's own worker.
 */

import { PAIR_WINDOW_SCHEMA_VERSION, type LatencySummary, type PairWindow } from '../capture/flow-record.js';

export type { LatencySummary, PairWindow };

/** A mergeable latency distribution (the capture's RTT sketch satisfies it). */
export interface Distribution {
  readonly count: number;
  readonly min: number;
  readonly max: number;
  add(value: number): void;
  merge(other: Distribution): void;
  quantile(q: number): number;
}

/** What the aggregator needs of one flow observation. */
export interface PairObservation {
  /** Stable identity of the bidirectional flow key (for counting distinct flows). */
  flowKey: string;
  /** Endpoint names of the flow's client and server. */
  client: string;
  server: string;
  /** First and last packet of the observation, µs since the epoch. */
  firstUs: number;
  lastUs: number;
  clientToServer: { packets: number; bytes: number };
  serverToClient: { packets: number; bytes: number };
  tcp?: {
    /** Handshake completed in this observation: its RTT in µs. */
    handshakeRttUs?: number;
    failedHandshake?: boolean;
    retransmits: number;
    gapFills: number;
    dataSegments: number;
  };
  icmp?: { echoRequests: number; echoReplies: number; rtt?: Distribution };
}

export interface PairWindowOptions {
  /** Window length in µs; 0: one window spanning everything (closed only by flush()). */
  windowUs: number;
  /** How long after a window's end records for it are still accepted (event time), µs. Default 0. */
  allowedLatenessUs?: number;
  /** Makes an empty distribution. */
  newDistribution: () => Distribution;
  /** Prefix of PairWindow ids (e.g. the agent or pipeline id); ids are `<prefix>-<sequence>`. */
  idPrefix?: string;
}

interface Acc {
  a: string;
  b: string;
  aToB: { packets: number; bytes: number };
  bToA: { packets: number; bytes: number };
  /** The first flow key; a set only once a second distinct key comes (most pairs have one flow). */
  flowKey: string | undefined;
  flowKeys: Set<string> | undefined;
  handshakes: number;
  failedHandshakes: number;
  handshakeRtt: Distribution | undefined;
  retransmits: number;
  gapFills: number;
  dataSegments: number;
  echoRequests: number;
  echoReplies: number;
  echoRtt: Distribution | undefined;
  minUs: number;
  maxUs: number;
}

export class PairWindowAggregator {
  private readonly windows = new Map<number, Map<string, Acc>>();
  private watermarkUs = -Infinity;
  /** Records that came after their window was emitted. */
  lateRecords = 0;
  private sequence = 0;

  constructor(private readonly opts: PairWindowOptions) {}

  /** Adds one observation; returns the windows it closed (the watermark advanced past them). */
  add(o: PairObservation): PairWindow[] {
    const start = this.windowStart(o.lastUs);
    if (this.opts.windowUs > 0 && start + this.opts.windowUs + (this.opts.allowedLatenessUs ?? 0) <= this.watermarkUs) {
      this.lateRecords++;
      return [];
    }
    let w = this.windows.get(start);
    if (!w) this.windows.set(start, (w = new Map()));
    const forward = o.client <= o.server;
    const a = forward ? o.client : o.server;
    const b = forward ? o.server : o.client;
    const key = `${a}\u0000${b}`;
    let acc = w.get(key);
    if (!acc) w.set(key, (acc = this.newAcc(a, b)));
    const ab = forward ? o.clientToServer : o.serverToClient;
    const ba = forward ? o.serverToClient : o.clientToServer;
    acc.aToB.packets += ab.packets;
    acc.aToB.bytes += ab.bytes;
    acc.bToA.packets += ba.packets;
    acc.bToA.bytes += ba.bytes;
    if (acc.flowKey === undefined) acc.flowKey = o.flowKey;
    else if (acc.flowKey !== o.flowKey) (acc.flowKeys ??= new Set([acc.flowKey])).add(o.flowKey);
    if (o.tcp) {
      if (o.tcp.handshakeRttUs !== undefined) {
        acc.handshakes++;
        (acc.handshakeRtt ??= this.opts.newDistribution()).add(o.tcp.handshakeRttUs);
      }
      if (o.tcp.failedHandshake) acc.failedHandshakes++;
      acc.retransmits += o.tcp.retransmits;
      acc.gapFills += o.tcp.gapFills;
      acc.dataSegments += o.tcp.dataSegments;
    }
    if (o.icmp) {
      acc.echoRequests += o.icmp.echoRequests;
      acc.echoReplies += o.icmp.echoReplies;
      if (o.icmp.rtt && o.icmp.rtt.count > 0) (acc.echoRtt ??= this.opts.newDistribution()).merge(o.icmp.rtt);
    }
    acc.minUs = Math.min(acc.minUs, o.firstUs);
    acc.maxUs = Math.max(acc.maxUs, o.lastUs);
    return this.advance(o.lastUs);
  }

  /** Moves event time forward (e.g. an idle partition); returns windows that closed. */
  advance(nowUs: number): PairWindow[] {
    if (nowUs > this.watermarkUs) this.watermarkUs = nowUs;
    if (this.opts.windowUs <= 0) return [];
    const out: PairWindow[] = [];
    const lateness = this.opts.allowedLatenessUs ?? 0;
    for (const start of [...this.windows.keys()].sort((x, y) => x - y)) {
      if (start + this.opts.windowUs + lateness > this.watermarkUs) break;
      out.push(...this.emit(start));
    }
    return out;
  }

  /** Emits every open window (end of a replay, shutdown). */
  flush(): PairWindow[] {
    const out: PairWindow[] = [];
    for (const start of [...this.windows.keys()].sort((x, y) => x - y)) out.push(...this.emit(start));
    return out;
  }

  get openWindows(): number {
    return this.windows.size;
  }

  private windowStart(us: number): number {
    const w = this.opts.windowUs;
    return w > 0 ? Math.floor(us / w) * w : 0;
  }

  private newAcc(a: string, b: string): Acc {
    return {
      a,
      b,
      aToB: { packets: 0, bytes: 0 },
      bToA: { packets: 0, bytes: 0 },
      flowKey: undefined,
      flowKeys: undefined,
      handshakes: 0,
      failedHandshakes: 0,
      handshakeRtt: undefined,
      retransmits: 0,
      gapFills: 0,
      dataSegments: 0,
      echoRequests: 0,
      echoReplies: 0,
      echoRtt: undefined,
      minUs: Infinity,
      maxUs: -Infinity,
    };
  }

  private emit(start: number): PairWindow[] {
    const w = this.windows.get(start);
    this.windows.delete(start);
    if (!w) return [];
    const out: PairWindow[] = [];
    let startUs = start;
    let endUs = start + this.opts.windowUs;
    if (this.opts.windowUs <= 0) {
      // one window over everything: span the observations of all pairs
      startUs = Infinity;
      endUs = -Infinity;
      for (const x of w.values()) {
        if (x.minUs < startUs) startUs = x.minUs;
        if (x.maxUs > endUs) endUs = x.maxUs;
      }
    }
    for (const acc of [...w.values()].sort((x, y) => (x.a === y.a ? (x.b < y.b ? -1 : 1) : x.a < y.a ? -1 : 1))) {
      const seconds = Math.max(endUs - startUs, 1) / 1e6;
      const bytes = acc.aToB.bytes + acc.bToA.bytes;
      out.push({
        id: `${this.opts.idPrefix ?? 'pairs'}-${++this.sequence}`,
        schemaVersion: PAIR_WINDOW_SCHEMA_VERSION,
        windowStartUs: startUs,
        windowEndUs: endUs,
        a: acc.a,
        b: acc.b,
        aToB: acc.aToB,
        bToA: acc.bToA,
        flows: acc.flowKeys ? acc.flowKeys.size : acc.flowKey === undefined ? 0 : 1,
        tcp: {
          handshakes: acc.handshakes,
          failedHandshakes: acc.failedHandshakes,
          handshakeRttUs: summarize(acc.handshakeRtt),
          retransmits: acc.retransmits,
          gapFills: acc.gapFills,
          dataSegments: acc.dataSegments,
        },
        icmp: { echoRequests: acc.echoRequests, echoReplies: acc.echoReplies, rttUs: summarize(acc.echoRtt) },
        lossRate: acc.dataSegments > 0 ? (acc.retransmits + acc.gapFills) / acc.dataSegments : 0,
        throughputBps: (bytes * 8) / seconds,
      });
    }
    return out;
  }
}

export function summarize(d: Distribution | undefined): LatencySummary {
  if (!d || d.count === 0) return { count: 0, min: 0, p50: 0, p95: 0, max: 0 };
  return { count: d.count, min: d.min, p50: d.quantile(0.5), p95: d.quantile(0.95), max: d.max };
}
