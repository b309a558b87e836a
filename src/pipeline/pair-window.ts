/**
 * Per-VM-pair aggregation in event-time tumbling windows (pure; time comes with the records).
 *
 * Input is one flow observation per call (a flow record, already named after VMs); output is one
 * PairWindow per unordered endpoint pair per window. A record belongs to the window holding its
 * last packet (`lastUs`); the capture worker cuts records at window boundaries, so a record never
 * spans two windows when it comes from mirrorflow's own worker.
 */

import { PAIR_WINDOW_SCHEMA_VERSION, type FlowKeyRecord, type LatencySummary, type PairWindow } from '../capture/flow-record.js';

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
  /**
   * Optional: the flow record's key, whose identity `flowKey` is (flowKeyIdentity). When given,
   * the aggregator compares keys field by field and reads `flowKey` only when two keys differ
   * (it may then be computed lazily, e.g. by a getter).
   */
  keyRecord?: FlowKeyRecord;
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
  /**
   * Optional: the summary newDistribution() would give after add(value) once (count 1), without
   * making the distribution — most pairs have one handshake per window. Must agree exactly.
   */
  summarizeOne?: (value: number) => LatencySummary;
  /**
   * Emit one PairWindow object (and its sub-objects), filled anew for every window: for consumers
   * that are done with a window when emit returns (e.g. an output that encodes it at once) — no
   * objects per window. Default false: every window is a new object the consumer may keep.
   */
  reuseWindows?: boolean;
}

/** A PairWindow with every field present (the shape emit() writes). */
function blankWindow(): PairWindow {
  return {
    id: '',
    schemaVersion: PAIR_WINDOW_SCHEMA_VERSION,
    windowStartUs: 0,
    windowEndUs: 0,
    a: '',
    b: '',
    aToB: { packets: 0, bytes: 0 },
    bToA: { packets: 0, bytes: 0 },
    flows: 0,
    tcp: {
      handshakes: 0,
      failedHandshakes: 0,
      handshakeRttUs: { count: 0, min: 0, p50: 0, p95: 0, max: 0 },
      retransmits: 0,
      gapFills: 0,
      dataSegments: 0,
    },
    icmp: { echoRequests: 0, echoReplies: 0, rttUs: { count: 0, min: 0, p50: 0, p95: 0, max: 0 } },
    lossRate: 0,
    throughputBps: 0,
  };
}

function copySummary(to: LatencySummary, from: LatencySummary): void {
  to.count = from.count;
  to.min = from.min;
  to.p50 = from.p50;
  to.p95 = from.p95;
  to.max = from.max;
}

// Accumulator columns, one row of COLS doubles per pair of a window (struct of arrays: no object
// per pair; sums in doubles as before, so the figures are the same to the last bit).
const C_A_PACKETS = 0;
const C_A_BYTES = 1;
const C_B_PACKETS = 2;
const C_B_BYTES = 3;
const C_HANDSHAKES = 4;
const C_FAILED = 5;
const C_RETRANSMITS = 6;
const C_GAP_FILLS = 7;
const C_DATA_SEGMENTS = 8;
const C_ECHO_REQUESTS = 9;
const C_ECHO_REPLIES = 10;
const C_MIN_US = 11;
const C_MAX_US = 12;
/** The first handshake RTT of the pair (a distribution is made only for a second one). */
const C_FIRST_RTT = 13;
/** Distinct flows of the pair. */
const C_FLOWS = 14;
const COLS = 15;
/** Endpoints of one window (int32 ids in typed arrays; far beyond what one window holds in memory). */
const ENDPOINT_LIMIT = 2 ** 26;

/** One open window: its endpoints interned (name ↔ id), one accumulator row per endpoint pair. */
class WindowAcc {
  rows = 0;
  col: Float64Array = new Float64Array(64 * COLS);
  /** Per row: endpoint ids a, b. */
  ends: Int32Array = new Int32Array(64 * 2);
  /** (a, b) → row + 1: open addressing over the row's endpoint ids (0: empty slot). */
  private slots: Int32Array = new Int32Array(256);
  readonly names: string[] = [];
  readonly idOf = new Map<string, number>();
  /**
   * Per row: the first flow key (its identity string, or the record key it is the identity of);
   * the set only once a second distinct key comes (most pairs have one flow).
   */
  readonly flowKey: (string | FlowKeyRecord | undefined)[] = [];
  readonly flowKeys = new Map<number, Set<string>>();
  /** Per row, only for pairs with two or more handshakes / with echo RTT samples. */
  readonly handshakeRtt = new Map<number, Distribution>();
  readonly echoRtt = new Map<number, Distribution>();

  constructor(readonly start: number) {}

  endpoint(name: string): number {
    let id = this.idOf.get(name);
    if (id === undefined) {
      id = this.names.length;
      if (id >= ENDPOINT_LIMIT) throw new RangeError(`pair-window: too many endpoints in one window (limit=${ENDPOINT_LIMIT})`);
      this.names.push(name);
      this.idOf.set(name, id);
    }
    return id;
  }

  row(a: number, b: number): number {
    const ends = this.ends;
    let mask = this.slots.length - 1;
    let j = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 1, 0x85ebca6b)) & mask;
    for (;;) {
      const e = this.slots[j]!;
      if (e === 0) break;
      if (ends[(e - 1) * 2] === a && ends[(e - 1) * 2 + 1] === b) return e - 1;
      j = (j + 1) & mask;
    }
    const r = this.rows++;
    if (r * COLS >= this.col.length) {
      const col = new Float64Array(this.col.length * 2);
      col.set(this.col);
      this.col = col;
      const grown = new Int32Array(this.ends.length * 2);
      grown.set(this.ends);
      this.ends = grown;
    }
    const c = this.col;
    const o = r * COLS;
    c.fill(0, o, o + COLS);
    c[o + C_MIN_US] = Infinity;
    c[o + C_MAX_US] = -Infinity;
    this.ends[r * 2] = a;
    this.ends[r * 2 + 1] = b;
    this.flowKey.push(undefined);
    if (this.rows * 2 > this.slots.length) {
      // keep the table at most half full: rehash every row into twice the slots
      this.slots = new Int32Array(this.slots.length * 2);
      mask = this.slots.length - 1;
      for (let x = 0; x < this.rows; x++) this.place(x, mask);
    } else this.slots[j] = r + 1;
    return r;
  }

  private place(r: number, mask: number): void {
    const a = this.ends[r * 2]!;
    const b = this.ends[r * 2 + 1]!;
    let j = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 1, 0x85ebca6b)) & mask;
    while (this.slots[j] !== 0) j = (j + 1) & mask;
    this.slots[j] = r + 1;
  }
}

export class PairWindowAggregator {
  private readonly windows = new Map<number, WindowAcc>();
  /** Lowest start among open windows (Infinity: none). */
  private minStart = Infinity;
  private watermarkUs = -Infinity;
  /** Records that came after their window was emitted. */
  lateRecords = 0;
  private sequence = 0;
  /** The one PairWindow emitted with reuseWindows. */
  private scratch: PairWindow | undefined;
  private readonly windowUs: number;
  private readonly latenessUs: number;

  constructor(private readonly opts: PairWindowOptions) {
    this.windowUs = opts.windowUs;
    this.latenessUs = opts.allowedLatenessUs ?? 0;
  }

  /** Adds one observation; returns the windows it closed (the watermark advanced past them). */
  add(o: PairObservation): PairWindow[] {
    let out: PairWindow[] | undefined;
    this.addTo(o, (w) => (out ??= []).push(w));
    return out ?? [];
  }

  /**
   * Adds one observation; windows it closed go to `emit`, one by one, in order. The observation is
   * not kept (its numbers are added up; a distribution in it is merged), so callers may reuse it.
   */
  addTo(o: PairObservation, emit: (w: PairWindow) => void): void {
    const lastUs = o.lastUs;
    const start = this.windowStart(lastUs);
    if (this.windowUs > 0 && start + this.windowUs + this.latenessUs <= this.watermarkUs) {
      this.lateRecords++;
      return;
    }
    let w = this.windows.get(start);
    if (!w) {
      this.windows.set(start, (w = new WindowAcc(start)));
      if (start < this.minStart) this.minStart = start;
    }
    const forward = o.client <= o.server;
    const ca = w.endpoint(o.client);
    const cb = w.endpoint(o.server);
    const r = forward ? w.row(ca, cb) : w.row(cb, ca);
    const c = w.col;
    const x = r * COLS;
    const ab = forward ? o.clientToServer : o.serverToClient;
    const ba = forward ? o.serverToClient : o.clientToServer;
    c[x + C_A_PACKETS] += ab.packets;
    c[x + C_A_BYTES] += ab.bytes;
    c[x + C_B_PACKETS] += ba.packets;
    c[x + C_B_BYTES] += ba.bytes;
    const fk = w.flowKey[r];
    if (fk === undefined) {
      w.flowKey[r] = o.keyRecord ?? o.flowKey;
      c[x + C_FLOWS] = 1;
    } else if (typeof fk === 'string' || o.keyRecord === undefined || !sameFlowKey(fk, o.keyRecord)) {
      // keys that are not field-for-field the same flow: compare their identities
      const first = typeof fk === 'string' ? fk : flowKeyIdentityOf(fk);
      const id = o.flowKey;
      if (first !== id) {
        let set = w.flowKeys.get(r);
        if (!set) w.flowKeys.set(r, (set = new Set([first])));
        set.add(id);
        c[x + C_FLOWS] = set.size;
      }
    }
    const t = o.tcp;
    if (t) {
      if (t.handshakeRttUs !== undefined) {
        const n = c[x + C_HANDSHAKES]!;
        if (n === 0) c[x + C_FIRST_RTT] = t.handshakeRttUs;
        else {
          let d = w.handshakeRtt.get(r);
          if (!d) {
            w.handshakeRtt.set(r, (d = this.opts.newDistribution()));
            d.add(c[x + C_FIRST_RTT]!);
          }
          d.add(t.handshakeRttUs);
        }
        c[x + C_HANDSHAKES] = n + 1;
      }
      if (t.failedHandshake) c[x + C_FAILED]++;
      c[x + C_RETRANSMITS] += t.retransmits;
      c[x + C_GAP_FILLS] += t.gapFills;
      c[x + C_DATA_SEGMENTS] += t.dataSegments;
    }
    const i = o.icmp;
    if (i) {
      c[x + C_ECHO_REQUESTS] += i.echoRequests;
      c[x + C_ECHO_REPLIES] += i.echoReplies;
      if (i.rtt && i.rtt.count > 0) {
        let d = w.echoRtt.get(r);
        if (!d) w.echoRtt.set(r, (d = this.opts.newDistribution()));
        d.merge(i.rtt);
      }
    }
    c[x + C_MIN_US] = Math.min(c[x + C_MIN_US]!, o.firstUs);
    c[x + C_MAX_US] = Math.max(c[x + C_MAX_US]!, lastUs);
    this.advanceTo(lastUs, emit);
  }

  /** Moves event time forward (e.g. an idle partition); returns windows that closed. */
  advance(nowUs: number): PairWindow[] {
    let out: PairWindow[] | undefined;
    this.advanceTo(nowUs, (w) => (out ??= []).push(w));
    return out ?? [];
  }

  /** Moves event time forward; windows that closed go to `emit`, in order. */
  advanceTo(nowUs: number, emit: (w: PairWindow) => void): void {
    if (nowUs > this.watermarkUs) this.watermarkUs = nowUs;
    if (this.windowUs <= 0) return;
    if (this.minStart + this.windowUs + this.latenessUs > this.watermarkUs) return;
    for (const start of [...this.windows.keys()].sort((x, y) => x - y)) {
      if (start + this.windowUs + this.latenessUs > this.watermarkUs) break;
      this.emit(start, emit);
    }
    this.minStart = Infinity;
    for (const start of this.windows.keys()) if (start < this.minStart) this.minStart = start;
  }

  /** Emits every open window (end of a replay, shutdown). */
  flush(): PairWindow[] {
    const out: PairWindow[] = [];
    this.flushTo((w) => out.push(w));
    return out;
  }

  /** Emits every open window to `emit`, one PairWindow at a time, in order. */
  flushTo(emit: (w: PairWindow) => void): void {
    for (const start of [...this.windows.keys()].sort((x, y) => x - y)) this.emit(start, emit);
    this.minStart = Infinity;
  }

  get openWindows(): number {
    return this.windows.size;
  }

  private windowStart(us: number): number {
    const w = this.windowUs;
    return w > 0 ? Math.floor(us / w) * w : 0;
  }

  private emit(start: number, emit: (w: PairWindow) => void): void {
    const w = this.windows.get(start);
    this.windows.delete(start);
    if (!w) return;
    const c = w.col;
    let startUs = start;
    let endUs = start + this.windowUs;
    if (this.windowUs <= 0) {
      // one window over everything: span the observations of all pairs
      startUs = Infinity;
      endUs = -Infinity;
      for (let r = 0; r < w.rows; r++) {
        if (c[r * COLS + C_MIN_US]! < startUs) startUs = c[r * COLS + C_MIN_US]!;
        if (c[r * COLS + C_MAX_US]! > endUs) endUs = c[r * COLS + C_MAX_US]!;
      }
    }
    const order = pairOrder(w);
    const { cols, endA, endB } = gatherRows(w, order);
    const prefix = this.opts.idPrefix ?? 'pairs';
    const seconds = Math.max(endUs - startUs, 1) / 1e6;
    const reuse = this.opts.reuseWindows === true;
    const names = w.names;
    for (let k = 0; k < order.length; k++) {
      const out = reuse ? (this.scratch ??= blankWindow()) : blankWindow();
      this.fillWindow(out, w, order[k]!, cols, k * COLS, names[endA[k]!]!, names[endB[k]!]!, prefix, startUs, endUs, seconds);
      emit(out);
    }
  }

  /**
   * Writes the PairWindow of row r of window w into `out` (every field): its figures at
   * cols[x…x+COLS), its endpoints a and b.
   */
  private fillWindow(
    out: PairWindow,
    w: WindowAcc,
    r: number,
    c: Float64Array,
    x: number,
    a: string,
    b: string,
    prefix: string,
    startUs: number,
    endUs: number,
    seconds: number,
  ): void {
    const bytes = c[x + C_A_BYTES]! + c[x + C_B_BYTES]!;
    const handshakes = c[x + C_HANDSHAKES]!;
    const retransmits = c[x + C_RETRANSMITS]!;
    const gapFills = c[x + C_GAP_FILLS]!;
    const dataSegments = c[x + C_DATA_SEGMENTS]!;
    out.id = `${prefix}-${++this.sequence}`;
    out.windowStartUs = startUs;
    out.windowEndUs = endUs;
    out.a = a;
    out.b = b;
    out.aToB.packets = c[x + C_A_PACKETS]!;
    out.aToB.bytes = c[x + C_A_BYTES]!;
    out.bToA.packets = c[x + C_B_PACKETS]!;
    out.bToA.bytes = c[x + C_B_BYTES]!;
    out.flows = c[x + C_FLOWS]!;
    const t = out.tcp;
    t.handshakes = handshakes;
    t.failedHandshakes = c[x + C_FAILED]!;
    // most windows have no pair with two handshakes or echo samples: no lookups then
    const hs = w.handshakeRtt.size === 0 ? undefined : w.handshakeRtt.get(r);
    if (hs) summarizeInto(t.handshakeRttUs, hs);
    else if (handshakes !== 1) summarizeInto(t.handshakeRttUs, undefined);
    else if (this.opts.summarizeOne) copySummary(t.handshakeRttUs, this.opts.summarizeOne(c[x + C_FIRST_RTT]!));
    else {
      const d = this.opts.newDistribution();
      d.add(c[x + C_FIRST_RTT]!);
      summarizeInto(t.handshakeRttUs, d);
    }
    t.retransmits = retransmits;
    t.gapFills = gapFills;
    t.dataSegments = dataSegments;
    const i = out.icmp;
    i.echoRequests = c[x + C_ECHO_REQUESTS]!;
    i.echoReplies = c[x + C_ECHO_REPLIES]!;
    summarizeInto(i.rttUs, w.echoRtt.size === 0 ? undefined : w.echoRtt.get(r));
    out.lossRate = dataSegments > 0 ? (retransmits + gapFills) / dataSegments : 0;
    out.throughputBps = (bytes * 8) / seconds;
  }
}

/**
 * The figures of window w's rows in the given order (cols: COLS per row) and their endpoints,
 * gathered in one tight loop: the rows are visited in an order unrelated to where they lie, and a
 * loop doing nothing else keeps many of those memory reads in flight at once (the windows are
 * then filled from memory read in sequence).
 */
function gatherRows(w: WindowAcc, order: Int32Array): { cols: Float64Array; endA: Int32Array; endB: Int32Array } {
  const rows = order.length;
  const cols = new Float64Array(rows * COLS);
  const endA = new Int32Array(rows);
  const endB = new Int32Array(rows);
  const c = w.col;
  const ends = w.ends;
  for (let k = 0; k < rows; k++) {
    const r = order[k]!;
    const from = r * COLS;
    const to = k * COLS;
    for (let j = 0; j < COLS; j++) cols[to + j] = c[from + j]!;
    endA[k] = ends[r * 2]!;
    endB[k] = ends[r * 2 + 1]!;
  }
  return { cols, endA, endB };
}

/**
 * The rows of window w in (a, b) order: ranks the endpoint names once (sorted as strings compare
 * with <), then orders the rows by (rank of a, rank of b) with two counting-sort passes.
 */
function pairOrder(w: WindowAcc): Int32Array {
  const n = w.names.length;
  const rows = w.rows;
  const byRank = w.names.slice().sort();
  const rank = new Int32Array(n);
  for (let k = 0; k < n; k++) rank[w.idOf.get(byRank[k]!)!] = k;
  const ends = w.ends;
  const count = new Int32Array(n + 1);
  const byB = new Int32Array(rows);
  const order = new Int32Array(rows);
  for (let r = 0; r < rows; r++) count[rank[ends[r * 2 + 1]!]! + 1]!++;
  for (let k = 0; k < n; k++) count[k + 1]! += count[k]!;
  for (let r = 0; r < rows; r++) byB[count[rank[ends[r * 2 + 1]!]!]!++] = r;
  count.fill(0);
  for (let r = 0; r < rows; r++) count[rank[ends[r * 2]!]! + 1]!++;
  for (let k = 0; k < n; k++) count[k + 1]! += count[k]!;
  for (let j = 0; j < rows; j++) {
    const r = byB[j]!;
    order[count[rank[ends[r * 2]!]!]!++] = r;
  }
  return order;
}

/**
 * Identity of a bidirectional flow key: the same whichever side is the client. Equal identities
 * ⇔ the same flow key for counting distinct flows (observation.ts flowKeyIdentity uses it).
 */
export function flowKeyIdentityOf(k: FlowKeyRecord): string {
  const c = `${k.clientIp}|${k.clientPort}|${k.clientMac}`;
  const s = `${k.serverIp}|${k.serverPort}|${k.serverMac}`;
  const vlans = k.vlans.length === 0 ? '' : k.vlans.join('.');
  return `${vlans}/${k.tunnel}/${k.vni ?? ''}/${k.ipVersion}/${k.protocol}/${k.etherType}/${k.icmpId ?? ''}/${k.icmpType ?? ''}/${c <= s ? `${c}/${s}` : `${s}/${c}`}`;
}

/** True when two keys have equal fields (either orientation): then their identities are equal. */
function sameFlowKey(x: FlowKeyRecord, y: FlowKeyRecord): boolean {
  if (x === y) return true;
  if (
    x.tunnel !== y.tunnel ||
    x.vni !== y.vni ||
    x.ipVersion !== y.ipVersion ||
    x.protocol !== y.protocol ||
    x.etherType !== y.etherType ||
    x.icmpId !== y.icmpId ||
    x.icmpType !== y.icmpType ||
    x.vlans.length !== y.vlans.length
  ) {
    return false;
  }
  for (let i = 0; i < x.vlans.length; i++) if (x.vlans[i] !== y.vlans[i]) return false;
  if (x.clientIp === y.clientIp && x.clientPort === y.clientPort && x.clientMac === y.clientMac) {
    return x.serverIp === y.serverIp && x.serverPort === y.serverPort && x.serverMac === y.serverMac;
  }
  return (
    x.clientIp === y.serverIp && x.clientPort === y.serverPort && x.clientMac === y.serverMac &&
    x.serverIp === y.clientIp && x.serverPort === y.clientPort && x.serverMac === y.clientMac
  );
}

/** summarize(d), written into `to`. */
function summarizeInto(to: LatencySummary, d: Distribution | undefined): void {
  if (!d || d.count === 0) {
    to.count = to.min = to.p50 = to.p95 = to.max = 0;
    return;
  }
  copySummary(to, summarize(d));
}

export function summarize(d: Distribution | undefined): LatencySummary {
  if (!d || d.count === 0) return { count: 0, min: 0, p50: 0, p95: 0, max: 0 };
  if (d.count === 1) {
    // every quantile of one sample is that sample (the sketch clamps to its exact min = max)
    const min = d.min;
    if (min === d.max) return { count: 1, min, p50: min, p95: min, max: min };
  }
  return { count: d.count, min: d.min, p50: d.quantile(0.5), p95: d.quantile(0.95), max: d.max };
}
