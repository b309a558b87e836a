/**
 * ICMP / ICMPv6 echo quality per flow. An echo flow is keyed by the address pair and the echo
 * identifier.
 *
 * A request (ICMP 8 / ICMPv6 128) is pending until the reply (0 / 129) with the same sequence
 * number comes from the other side; RTT = reply time − request time, as seen at the mirror. A
 * request is UNANSWERED when: the flow ends with it pending; it is older than `echoTimeoutNs` when
 * an interim record is written; or the pending list (`maxPending`, default 64) overflows (the
 * oldest goes). A reply without a pending request counts as a reply without an RTT sample.
 *
 * State: when the flow table lends its per-slot words (`slotWords`: 8 uint32 per slot that a
 * non-TCP slot does not use, see TcpTracker.sharedWords), an echo flow starts INLINE there —
 * counters, one pending request and one RTT sample, no object — so a ping sweep or flood of
 * single exchanges costs no more than any other flow. The second pending request or the second
 * RTT sample in a record moves the flow to an IcmpEchoState object (a bounded pending list and a
 * full RttSketch) for the rest of its life. Without `slotWords` every echo flow has an object.
 */
import type { IcmpRecord } from './flow-record.js';
import { RttSketch } from './rtt-sketch.js';

const IPPROTO_ICMP = 1; // local copy (decode/frame.ts): no import getter on the hot path

export interface IcmpOptions {
  maxPending: number;
  echoTimeoutNs: number;
}

export const DEFAULT_ICMP_OPTIONS: IcmpOptions = { maxPending: 64, echoTimeoutNs: 5_000_000_000 };

export class IcmpEchoState {
  requests = 0;
  replies = 0;
  unanswered = 0;
  rtt: RttSketch | null = null;
  /** Pending requests, flat [sequence, direction, timeNs] × n, oldest first. */
  readonly pending: number[] = [];
}

// inline row: words [requests, replies, unanswered, flags | sequence << 16, -, -, -, -]; as
// float64 (index slot*4 + k): k = 2 pending request time (ns), k = 3 the RTT sample (ns)
const W_REQ = 0;
const W_REP = 1;
const W_UNANS = 2;
const W_FLAGS = 3;
const F_PEND_NS = 2;
const F_SAMPLE_NS = 3;
const I_PEND = 1;
const I_PEND_DIR = 2;
const I_SAMPLE = 4;
const I_OBJECT = 8;

export class IcmpTracker {
  /** Echo flows that left the inline form (all of them without slotWords). */
  readonly states = new Map<number, IcmpEchoState>();
  readonly opts: IcmpOptions;
  private readonly slotWords: (() => Uint32Array) | null;
  private f64: Float64Array = new Float64Array(0);

  constructor(opts: Partial<IcmpOptions> = {}, slotWords?: () => Uint32Array) {
    this.opts = { ...DEFAULT_ICMP_OPTIONS, ...opts };
    this.slotWords = slotWords ?? null;
  }

  /** The lent words, or null when the slot's state is an object. */
  private inline(slot: number): Uint32Array | null {
    if (this.slotWords === null) return null;
    const w = this.slotWords();
    if (w[slot * 8 + W_FLAGS]! & I_OBJECT) return null;
    if (this.f64.buffer !== w.buffer) this.f64 = new Float64Array(w.buffer, w.byteOffset, w.length >>> 1);
    return w;
  }

  /** Clears a slot for a new echo flow. */
  reset(slot: number): void {
    if (this.states.size !== 0) this.states.delete(slot);
    if (this.slotWords === null) return;
    const w = this.slotWords();
    const r = slot * 8;
    w[r + W_REQ] = w[r + W_REP] = w[r + W_UNANS] = w[r + W_FLAGS] = 0;
  }

  /** An echo request or reply of direction d (0 client→server) in flow slot. */
  onEcho(slot: number, d: number, protocol: number, type: number, sequence: number, nowNs: number): void {
    const isRequest = protocol === IPPROTO_ICMP ? type === 8 : type === 128;
    const isReply = protocol === IPPROTO_ICMP ? type === 0 : type === 129;
    if (!isRequest && !isReply) return;
    const w = this.inline(slot);
    if (w !== null) {
      const r = slot * 8;
      const fl = w[r + W_FLAGS]!;
      const seq = sequence & 0xffff;
      if (isRequest) {
        if (!(fl & I_PEND)) {
          w[r + W_REQ]!++;
          w[r + W_FLAGS] = (fl & I_SAMPLE) | I_PEND | (d ? I_PEND_DIR : 0) | (seq << 16);
          this.f64[slot * 4 + F_PEND_NS] = nowNs;
          return;
        }
      } else {
        const matches = fl & I_PEND && fl >>> 16 === seq && ((fl & I_PEND_DIR) !== 0 ? 1 : 0) !== d;
        if (!matches) {
          w[r + W_REP]!++;
          return;
        }
        if (!(fl & I_SAMPLE)) {
          w[r + W_REP]!++;
          this.f64[slot * 4 + F_SAMPLE_NS] = nowNs - this.f64[slot * 4 + F_PEND_NS]!;
          w[r + W_FLAGS] = I_SAMPLE;
          return;
        }
      }
      this.toObject(slot, w);
    }
    this.onEchoObject(slot, d, isRequest, sequence, nowNs);
  }

  private toObject(slot: number, w: Uint32Array): IcmpEchoState {
    const r = slot * 8;
    const fl = w[r + W_FLAGS]!;
    const s = new IcmpEchoState();
    s.requests = w[r + W_REQ]!;
    s.replies = w[r + W_REP]!;
    s.unanswered = w[r + W_UNANS]!;
    if (fl & I_PEND) s.pending.push(fl >>> 16, fl & I_PEND_DIR ? 1 : 0, this.f64[slot * 4 + F_PEND_NS]!);
    if (fl & I_SAMPLE) (s.rtt = new RttSketch()).add(this.f64[slot * 4 + F_SAMPLE_NS]!);
    w[r + W_FLAGS] = I_OBJECT;
    this.states.set(slot, s);
    return s;
  }

  private onEchoObject(slot: number, d: number, isRequest: boolean, sequence: number, nowNs: number): void {
    let s = this.states.get(slot);
    if (s === undefined) {
      s = new IcmpEchoState();
      this.states.set(slot, s);
    }
    const p = s.pending;
    if (isRequest) {
      s.requests++;
      p.push(sequence, d, nowNs);
      if (p.length > this.opts.maxPending * 3) {
        p.splice(0, 3);
        s.unanswered++;
      }
      return;
    }
    s.replies++;
    for (let k = 0; k < p.length; k += 3) {
      if (p[k] === sequence && p[k + 1] !== d) {
        const rtt = nowNs - p[k + 2]!;
        if (s.rtt === null) s.rtt = new RttSketch();
        s.rtt.add(rtt);
        p.splice(k, 3);
        return;
      }
    }
  }

  /** The object state of an echo flow; undefined while it is inline (or unknown). */
  get(slot: number): IcmpEchoState | undefined {
    return this.states.get(slot);
  }

  /** The echo part of the slot's record (current record's counters and RTT sketch). */
  record(slot: number): IcmpRecord {
    const w = this.inline(slot);
    if (w !== null) {
      const r = slot * 8;
      const rec: IcmpRecord = { echoRequests: w[r + W_REQ]!, echoReplies: w[r + W_REP]!, unanswered: w[r + W_UNANS]! };
      if (w[r + W_FLAGS]! & I_SAMPLE) {
        const s = new RttSketch();
        s.add(this.f64[slot * 4 + F_SAMPLE_NS]!);
        rec.rtt = s.toData();
      }
      return rec;
    }
    const e = this.states.get(slot);
    const rec: IcmpRecord = { echoRequests: e?.requests ?? 0, echoReplies: e?.replies ?? 0, unanswered: e?.unanswered ?? 0 };
    if (e?.rtt) rec.rtt = e.rtt.toData();
    return rec;
  }

  /**
   * Before a record: requests pending for at least the echo timeout (all of them when the flow
   * ends) become unanswered.
   */
  expire(slot: number, nowNs: number, final: boolean): void {
    const w = this.inline(slot);
    if (w !== null) {
      const r = slot * 8;
      const fl = w[r + W_FLAGS]!;
      if (fl & I_PEND && (final || nowNs - this.f64[slot * 4 + F_PEND_NS]! >= this.opts.echoTimeoutNs)) {
        w[r + W_UNANS]!++;
        w[r + W_FLAGS] = fl & I_SAMPLE;
      }
      return;
    }
    const s = this.states.get(slot);
    if (!s) return;
    const p = s.pending;
    if (final) {
      s.unanswered += p.length / 3;
      p.length = 0;
      return;
    }
    let k = 0;
    while (k < p.length && nowNs - p[k + 2]! >= this.opts.echoTimeoutNs) k += 3;
    if (k > 0) {
      s.unanswered += k / 3;
      p.splice(0, k);
    }
  }

  /** After an interim record: counters restart; pending requests stay. */
  resetInterval(slot: number): void {
    const w = this.inline(slot);
    if (w !== null) {
      const r = slot * 8;
      w[r + W_REQ] = w[r + W_REP] = w[r + W_UNANS] = 0;
      w[r + W_FLAGS]! &= ~I_SAMPLE;
      return;
    }
    const s = this.states.get(slot);
    if (!s) return;
    s.requests = s.replies = s.unanswered = 0;
    s.rtt = null;
  }

  release(slot: number): void {
    this.states.delete(slot);
  }
}
