/**
 * ICMP / ICMPv6 echo quality per flow. An echo flow is keyed by the address pair and the echo
 * identifier; the state (a bounded list of pending requests, counters, an RTT sketch) is allocated
 * per echo flow, off the typed columns (echo flows are few).
 *
 * A request (ICMP 8 / ICMPv6 128) is pending until the reply (0 / 129) with the same sequence
 * number comes from the other side; RTT = reply time − request time, as seen at the mirror. A
 * request is UNANSWERED when: the flow ends with it pending; it is older than `echoTimeoutNs` when
 * an interim record is written; or the pending list (`maxPending`, default 64) overflows (the
 * oldest goes). A reply without a pending request counts as a reply without an RTT sample.
 */
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

export class IcmpTracker {
  readonly states = new Map<number, IcmpEchoState>();
  readonly opts: IcmpOptions;

  constructor(opts: Partial<IcmpOptions> = {}) {
    this.opts = { ...DEFAULT_ICMP_OPTIONS, ...opts };
  }

  /** An echo request or reply of direction d (0 client→server) in flow slot. */
  onEcho(slot: number, d: number, protocol: number, type: number, sequence: number, nowNs: number): void {
    const isRequest = protocol === IPPROTO_ICMP ? type === 8 : type === 128;
    const isReply = protocol === IPPROTO_ICMP ? type === 0 : type === 129;
    if (!isRequest && !isReply) return;
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

  get(slot: number): IcmpEchoState | undefined {
    return this.states.get(slot);
  }

  /**
   * Before a record: requests pending for at least the echo timeout (all of them when the flow
   * ends) become unanswered.
   */
  expire(slot: number, nowNs: number, final: boolean): void {
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
    const s = this.states.get(slot);
    if (!s) return;
    s.requests = s.replies = s.unanswered = 0;
    s.rtt = null;
  }

  release(slot: number): void {
    this.states.delete(slot);
  }
}
