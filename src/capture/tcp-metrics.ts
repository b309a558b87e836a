/**
 * TCP quality per flow, as seen at the mirror. State lives in typed-array columns indexed by the
 * flow table's slot (direction d: 0 client→server, 1 server→client; column index slot*2+d): 87
 * bytes per slot, timestamp-RTT summaries included; the rare parts (anomaly counters, sequence
 * holes) live in a TcpExtra object allocated only for flows that need one.
 *
 * Times kept per slot (handshake, pending TSval) are uint32 µs on a wrapping clock (floor(ns/1000)
 * mod 2^32): a difference of two of them is exact to the µs for any span below 71 minutes, which
 * every measured span is (the longest timeout is 60 minutes). Handshake figures and timestamp RTTs
 * are therefore whole µs.
 *
 * Handshake (as seen at the mirror):
 *   server part = the answered SYN → the first SYN/ACK. "Answered SYN" is the LAST client SYN
 *                 before that SYN/ACK: an earlier SYN was lost or unanswered, its wait is loss,
 *                 not latency. (A client SYN after a SYN/ACK restarts the measurement.)
 *   client part = the LAST SYN/ACK → the client's first ACK after it (a retransmitted SYN/ACK
 *                 means the first was lost before the client).
 *   rtt         = server part + client part (equals ACK − SYN when nothing was retransmitted).
 *   A flow whose first packet is the SYN/ACK gets only the client part.
 *   Failed: SYN-only (no SYN/ACK by the end of the flow) or the SYN answered by a RST.
 *
 * Sequence tracking per sending direction (all arithmetic modulo 2^32):
 *   nxt = highest sequence end seen (snd.nxt). A data segment is one with payload that is neither
 *   a keep-alive (≤ 1 byte at nxt−1, no SYN/FIN) nor a window probe (≤ 1 byte while the peer's
 *   last advertised window is 0). For a data segment starting at s, ending at e:
 *     s == nxt            in order;
 *     s after nxt         opens a hole [nxt, s) (at most `maxHoles` per direction: the lowest is
 *                         dropped when full);
 *     s before nxt, overlapping a hole: fills it. It is a GAP FILL (the original was lost before
 *                         the mirror) when, before it arrived, the receiver had sent at least
 *                         `gapFillDupAcks` (3, the sender's fast-retransmit threshold) duplicate
 *                         ACKs at or below the hole's start (with SACK one run of duplicates
 *                         reports every hole above its ack), or the hole had been open at least
 *                         half the handshake RTT (gapFillMinAgeNs = 10 ms when the flow has none):
 *                         a resend reaches the mirror a full round trip after the hole opened at
 *                         the earliest (the receiver's duplicate ACKs travel to the sender, the
 *                         resend back); otherwise OUT-OF-ORDER (reordering resolves sooner; a
 *                         single dup ACK is the receiver's normal reaction to any reordering).
 *     s before nxt, no hole overlap: RETRANSMIT (data already seen at the mirror: lost after it).
 *   Holes the receiver acknowledges without the mirror seeing their data are dropped.
 *   A duplicate ACK: no payload, no SYN/FIN/RST, same ack and window as the sender's previous ACK,
 *   window ≠ 0 and data outstanding (the peer's nxt is beyond the ack).
 *   Zero windows: counted when a direction's advertised window becomes 0 (not on SYN/RST).
 *
 * Timestamp RTT (RFC 7323 option): for each direction, the first time a new TSval is seen starts a
 * sample (one outstanding at a time; TSvals on SYNs are skipped — the handshake covers them); the
 * first packet of the other direction whose TSecr equals it ends the sample. An echo of a later
 * value drops the sample. Client TSvals give `serverTsRttSummary` (mirror → server → mirror),
 * server TSvals `clientTsRttSummary`. Samples include the echoing host's delayed-ACK time. Per
 * direction and record the samples are summarised in four uint32 columns: count, sum, min and max
 * (µs; the sum saturates at 2^32 − 1 µs, which the samples of one record cannot reach: they are
 * disjoint in time, so their sum is below the record's span plus one sample).
 */
import type { DecodedFrame } from './decode/frame.js';

// Local copies of the TCP flag bits (decode/frame.ts): imported bindings cost a getter call per
// access under the tsx loader, and this is the hot path.
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;
import type { RttSummary } from './flow-record.js';

// handshake state (low 3 bits of hs[])
export const HS_NONE = 0;
export const HS_SYN = 1;
export const HS_SYNACK = 2;
export const HS_DONE = 3;
export const HS_RST_ANSWERED = 4;
const HS_MASK = 7;
const HS_SERVER_VALID = 8;
const HS_REPORTED = 16;
const HS_HAS_EXTRA = 32;

// per-direction flags
const D_SEQ = 1;
const D_ACK = 2;
const D_TS_PEND = 4;
const D_TS_SEEN = 8;
const D_FIN = 16;
const D_FIN_ACKED = 32;

/** Result of a segment for the flow's lifetime. */
export const TCP_CONTINUE = 0;
export const TCP_END_RST = 1;
export const TCP_END_FIN = 2;
/** Both FINs seen, the last not yet acknowledged: linger. */
export const TCP_CLOSING = 3;

// counter indexes in TcpExtra.c (×2 + direction)
export const C_RETRANSMITS = 0;
export const C_GAP_FILLS = 1;
export const C_OUT_OF_ORDER = 2;
export const C_DUP_ACKS = 3;
export const C_ZERO_WINDOWS = 4;
export const C_RSTS = 5;
export const C_SYN_RETRANSMITS = 6;
const N_COUNTERS = 7;

export class TcpExtra {
  /** Counters, index counter*2 + direction. */
  readonly c: number[] = new Array(N_COUNTERS * 2).fill(0);
  /** Holes per direction, flat [start, end, openedNs, dupAcks] × n, ascending. */
  holes: [number[], number[]] | null = null;
}

export interface TcpOptions {
  maxHoles: number;
  gapFillDupAcks: number;
  gapFillMinAgeNs: number;
}

export const DEFAULT_TCP_OPTIONS: TcpOptions = { maxHoles: 8, gapFillDupAcks: 3, gapFillMinAgeNs: 10_000_000 };

export class TcpTracker {
  /**
   * Per slot × direction (i = slot*2 + d), rows of 4 (one cache line per flow for both
   * directions): [nxt (highest sequence end seen), lastAck, dataSegments, pending TSval].
   */
  private u: Uint32Array;
  /**
   * Per slot, rows of 4, wrapping µs (see above): [pending TSval time d=0, d=1, hsA, hsB].
   * Handshake: while HS_SYN, hsA = SYN time, after the SYN/ACK the server part; while HS_SYNACK,
   * hsB = SYN/ACK time, after the ACK the client part.
   */
  private t: Uint32Array;
  /**
   * Timestamp-RTT summary of the current record per slot × TSval sender (i = slot*2 + owner),
   * rows of 4: [count, sum µs, min µs, max µs] (min/max valid when count > 0).
   */
  private ts: Uint32Array;
  lastWin: Uint16Array;
  dflags: Uint8Array;
  hs: Uint8Array;
  readonly extras = new Map<number, TcpExtra>();
  readonly opts: TcpOptions;

  constructor(capacity: number, opts: Partial<TcpOptions> = {}) {
    this.opts = { ...DEFAULT_TCP_OPTIONS, ...opts };
    this.u = new Uint32Array(capacity * 8);
    this.t = new Uint32Array(capacity * 4);
    this.ts = new Uint32Array(capacity * 8);
    this.lastWin = new Uint16Array(capacity * 2);
    this.dflags = new Uint8Array(capacity * 2);
    this.hs = new Uint8Array(capacity);
  }

  grow(capacity: number): void {
    const g = <T extends Uint32Array | Int32Array | Uint16Array | Uint8Array | Float64Array>(a: T, n: number): T => {
      const b = new (a.constructor as new (n: number) => T)(n);
      b.set(a);
      return b;
    };
    this.u = g(this.u, capacity * 8);
    this.t = g(this.t, capacity * 4);
    this.ts = g(this.ts, capacity * 8);
    this.lastWin = g(this.lastWin, capacity * 2);
    this.dflags = g(this.dflags, capacity * 2);
    this.hs = g(this.hs, capacity);
  }

  /** Clears a slot for a new flow. */
  reset(slot: number): void {
    const i = slot * 2;
    this.u[i * 4 + 2] = this.u[(i + 1) * 4 + 2] = 0;
    this.dflags[i] = this.dflags[i + 1] = 0;
    this.hs[slot] = 0;
    if (this.extras.size !== 0) this.extras.delete(slot);
    this.ts[slot * 8] = this.ts[slot * 8 + 4] = 0;
  }

  release(slot: number): void {
    if (this.hs[slot]! & HS_HAS_EXTRA) this.extras.delete(slot);
    this.hs[slot] = 0;
  }

  /**
   * Timestamp-RTT summary of the TSvals sent by direction `owner` in the current record
   * (0: serverTsRttSummary, 1: clientTsRttSummary); undefined without samples.
   */
  tsRtt(slot: number, owner: number): RttSummary | undefined {
    const r = (slot * 2 + owner) * 4;
    const n = this.ts[r]!;
    return n === 0 ? undefined : { count: n, minUs: this.ts[r + 2]!, maxUs: this.ts[r + 3]!, sumUs: this.ts[r + 1]! };
  }

  /**
   * The timestamp-RTT summary words, 8 uint32 per slot (row slot*8): a slot that is not a TCP flow
   * never uses its row, so the flow table lends it to other per-flow state (ICMP echo). reset()
   * makes the row a TCP row again. The array is replaced when the tracker grows: fetch it anew.
   */
  get sharedWords(): Uint32Array {
    return this.ts;
  }

  extra(slot: number): TcpExtra {
    let x = this.hs[slot]! & HS_HAS_EXTRA ? this.extras.get(slot) : undefined;
    if (x === undefined) {
      x = new TcpExtra();
      this.extras.set(slot, x);
      this.hs[slot]! |= HS_HAS_EXTRA;
    }
    return x;
  }

  peekExtra(slot: number): TcpExtra | undefined {
    return this.hs[slot]! & HS_HAS_EXTRA ? this.extras.get(slot) : undefined;
  }

  /** Data segments of direction d in the current record. */
  dataSegments(slot: number, d: number): number {
    return this.u[(slot * 2 + d) * 4 + 2]!;
  }

  /** Established for the idle timeout: handshake done, or a mid-stream flow seen both ways. */
  isEstablished(slot: number): boolean {
    const st = this.hs[slot]! & HS_MASK;
    if (st === HS_DONE) return true;
    return st === HS_NONE && (this.dflags[slot * 2]! & D_SEQ) !== 0 && (this.dflags[slot * 2 + 1]! & D_SEQ) !== 0;
  }

  handshakeState(slot: number): number {
    return this.hs[slot]! & HS_MASK;
  }

  /** Handshake RTT in ns when known (both parts), else -1. */
  handshakeRttNs(slot: number): number {
    const h = this.hs[slot]!;
    if ((h & HS_MASK) !== HS_DONE || !(h & HS_SERVER_VALID)) return -1;
    return (this.t[slot * 4 + 2]! + this.t[slot * 4 + 3]!) * 1000;
  }

  /**
   * Processes one segment of direction d at nowNs (nowUs: the same time in whole µs, as the flow
   * table already has it). Returns TCP_CONTINUE / TCP_END_RST / TCP_END_FIN / TCP_CLOSING.
   */
  onSegment(slot: number, d: number, f: DecodedFrame, nowNs: number, nowUs = Math.floor(nowNs / 1000)): number {
    const flags = f.tcpFlags;
    const syn = (flags & TCP_SYN) !== 0;
    const ackf = (flags & TCP_ACK) !== 0;
    const rst = (flags & TCP_RST) !== 0;
    const fin = (flags & TCP_FIN) !== 0;
    const i = slot * 2 + d;
    const io = slot * 2 + (d ^ 1);
    const dflags = this.dflags;

    // ---- handshake
    let h = this.hs[slot]!;
    const st = h & HS_MASK;
    // µs times go into Uint32Array columns, which keep them mod 2^32 (the wrapping clock)
    if (syn && !ackf && !rst) {
      if (d === 0) {
        if (st === HS_NONE) {
          h = (h & ~HS_MASK) | HS_SYN;
          this.t[slot * 4 + 2] = nowUs;
        } else if (st === HS_SYN || st === HS_SYNACK) {
          this.extra(slot).c[C_SYN_RETRANSMITS * 2]!++;
          h = (this.hs[slot]! & ~HS_MASK) | HS_SYN;
          this.t[slot * 4 + 2] = nowUs;
        }
      }
    } else if (syn && ackf && !rst) {
      if (d === 1) {
        if (st === HS_SYN) {
          this.t[slot * 4 + 2] = nowUs - this.t[slot * 4 + 2]!; // wraps: Uint32Array stores mod 2^32
          this.t[slot * 4 + 3] = nowUs;
          h = (h & ~HS_MASK) | HS_SYNACK | HS_SERVER_VALID;
        } else if (st === HS_SYNACK) {
          this.extra(slot).c[C_SYN_RETRANSMITS * 2 + 1]!++;
          h = this.hs[slot]!;
          this.t[slot * 4 + 3] = nowUs;
        } else if (st === HS_NONE) {
          this.t[slot * 4 + 3] = nowUs;
          h = (h & ~HS_MASK & ~HS_SERVER_VALID) | HS_SYNACK;
        }
      }
    } else if (rst) {
      if (st === HS_SYN && d === 1) h = (h & ~HS_MASK) | HS_RST_ANSWERED;
    } else if (st === HS_SYNACK && d === 0 && ackf) {
      this.t[slot * 4 + 3] = nowUs - this.t[slot * 4 + 3]!;
      h = (h & ~HS_MASK) | HS_DONE;
    }
    this.hs[slot] = h;

    if (rst) {
      this.extra(slot).c[C_RSTS * 2 + d]!++;
      return TCP_END_RST;
    }

    // ---- timestamps
    if (f.hasTimestamp) this.onTimestamp(i, io, f, ackf, syn, nowUs);

    // ---- sequence space of d
    const payload = f.payloadLength;
    const seq = f.seq >>> 0;
    const end = (seq + payload + (syn ? 1 : 0) + (fin ? 1 : 0)) >>> 0;
    const df = dflags[i]!;
    if (!(df & D_SEQ)) {
      this.u[i * 4] = end;
      dflags[i] = df | D_SEQ;
      if (payload > 0) this.u[i * 4 + 2]!++;
    } else {
      const nxt = this.u[i * 4]!;
      const rel = (seq - nxt) | 0;
      if (payload <= 1 && rel === -1 && !syn && !fin) {
        // keep-alive: not data, no effect
      } else if (payload === 1 && (dflags[io]! & D_ACK) !== 0 && this.lastWin[io] === 0) {
        // zero-window probe: not data, and nxt stays: a refused probe byte is sent again with the
        // data once the window opens (not a retransmission); an accepted one leaves a one-byte hole
        // that the receiver's next ACK drops
      } else if (payload > 0) {
        this.u[i * 4 + 2]!++;
        if (rel === 0) this.u[i * 4] = end;
        else if (rel > 0) {
          this.openHole(slot, d, nxt, seq, nowNs);
          this.u[i * 4] = end;
        } else {
          const kind = this.fillHoles(slot, d, seq, end, nowNs);
          this.extra(slot).c[(kind === 0 ? C_RETRANSMITS : kind === 1 ? C_GAP_FILLS : C_OUT_OF_ORDER) * 2 + d]!++;
          if (((end - nxt) | 0) > 0) this.u[i * 4] = end;
        }
      } else if (((end - nxt) | 0) > 0) {
        this.u[i * 4] = end; // SYN/FIN without payload
      }
    }

    // ---- acknowledgements sent by d
    if (ackf) {
      const a = f.ack >>> 0;
      const win = f.window & 0xffff;
      const dfa = dflags[i]!;
      if (dfa & D_ACK) {
        if (
          payload === 0 &&
          !syn &&
          !fin &&
          a === this.u[i * 4 + 1] &&
          win === this.lastWin[i] &&
          win !== 0 &&
          (dflags[io]! & D_SEQ) !== 0 &&
          ((this.u[io * 4]! - a) | 0) > 0
        ) {
          const x = this.extra(slot);
          x.c[C_DUP_ACKS * 2 + d]!++;
          // the receiver still misses the data at `a`, and every hole above it (with SACK the
          // sender learns of all of them from these duplicates)
          const holes = x.holes?.[d ^ 1];
          if (holes) {
            for (let k = 0; k < holes.length; k += 4) if (((holes[k]! - a) | 0) >= 0) holes[k + 3]!++;
          }
        }
        if (win === 0 && !syn && this.lastWin[i] !== 0) this.extra(slot).c[C_ZERO_WINDOWS * 2 + d]!++;
      } else if (win === 0 && !syn) {
        this.extra(slot).c[C_ZERO_WINDOWS * 2 + d]!++;
      }
      if (this.hs[slot]! & HS_HAS_EXTRA) this.dropAckedHoles(slot, d ^ 1, a);
      this.u[i * 4 + 1] = a;
      this.lastWin[i] = win;
      dflags[i]! |= D_ACK;
      const dfo = dflags[io]!;
      if (dfo & D_FIN && ((a - this.u[io * 4]!) | 0) >= 0) dflags[io] = dfo | D_FIN_ACKED;
    }
    if (fin) dflags[i]! |= D_FIN;

    const f0 = dflags[slot * 2]!;
    const f1 = dflags[slot * 2 + 1]!;
    if (f0 & D_FIN && f1 & D_FIN) {
      return f0 & D_FIN_ACKED && f1 & D_FIN_ACKED ? TCP_END_FIN : TCP_CLOSING;
    }
    return TCP_CONTINUE;
  }

  /** i / io: column index of the segment's direction / the other one; nowUs: whole µs (stored mod 2^32). */
  private onTimestamp(i: number, io: number, f: DecodedFrame, ackf: boolean, syn: boolean, nowUs: number): void {
    const dflags = this.dflags;
    const dfo = dflags[io]!;
    if (ackf && dfo & D_TS_PEND) {
      const diff = ((f.tsEcr >>> 0) - this.u[io * 4 + 3]!) | 0;
      if (diff === 0) {
        this.addTsSample(io, (nowUs - this.t[io * 2 - (io & 1)]!) >>> 0); // summary of the TSval's sender
        dflags[io] = dfo & ~D_TS_PEND;
      } else if (diff > 0) {
        dflags[io] = dfo & ~D_TS_PEND;
      }
    }
    const df = dflags[i]!;
    const v = f.tsVal >>> 0;
    if (syn) {
      this.u[i * 4 + 3] = v;
      dflags[i] = (df | D_TS_SEEN) & ~D_TS_PEND;
    } else if (!(df & D_TS_PEND) && (!(df & D_TS_SEEN) || ((v - this.u[i * 4 + 3]!) | 0) > 0)) {
      this.u[i * 4 + 3] = v;
      this.t[i * 2 - (i & 1)] = nowUs;
      dflags[i] = df | D_TS_PEND | D_TS_SEEN;
    }
  }

  private addTsSample(i: number, us: number): void {
    const ts = this.ts;
    const r = i * 4;
    const n = ts[r]!;
    if (n === 0) {
      ts[r] = 1;
      ts[r + 1] = ts[r + 2] = ts[r + 3] = us;
      return;
    }
    if (n === 0xffffffff) return;
    ts[r] = n + 1;
    const sum = ts[r + 1]! + us;
    ts[r + 1] = sum > 0xffffffff ? 0xffffffff : sum;
    if (us < ts[r + 2]!) ts[r + 2] = us;
    if (us > ts[r + 3]!) ts[r + 3] = us;
  }

  private openHole(slot: number, d: number, start: number, end: number, nowNs: number): void {
    const x = this.extra(slot);
    if (x.holes === null) x.holes = [[], []];
    const holes = x.holes[d]!;
    holes.push(start, end, nowNs, 0);
    if (holes.length > this.opts.maxHoles * 4) holes.splice(0, 4);
  }

  /** 0: no hole overlapped (retransmit); 1: gap fill; 2: out-of-order. */
  private fillHoles(slot: number, d: number, s: number, e: number, nowNs: number): number {
    const x = this.peekExtra(slot);
    const holes = x?.holes?.[d];
    if (!holes || holes.length === 0) return 0;
    let kind = 0;
    const rtt = this.handshakeRttNs(slot);
    // a resend of data lost before the mirror reaches the mirror one round trip (as the mirror sees
    // it: the handshake RTT) after the hole opened at the earliest; reordering resolves sooner
    const minAge = rtt > 0 ? rtt / 2 : this.opts.gapFillMinAgeNs;
    for (let k = 0; k < holes.length; ) {
      const hs = holes[k]!;
      const he = holes[k + 1]!;
      if (((s - he) | 0) < 0 && ((e - hs) | 0) > 0) {
        const late = holes[k + 3]! >= this.opts.gapFillDupAcks || nowNs - holes[k + 2]! >= minAge;
        if (late) kind = 1;
        else if (kind === 0) kind = 2;
        const coversStart = ((s - hs) | 0) <= 0;
        const coversEnd = ((e - he) | 0) >= 0;
        if (coversStart && coversEnd) {
          holes.splice(k, 4);
          continue;
        }
        if (coversStart) holes[k] = e >>> 0;
        else if (coversEnd) holes[k + 1] = s >>> 0;
        else {
          holes[k + 1] = s >>> 0;
          holes.splice(k + 4, 0, e >>> 0, he, holes[k + 2]!, holes[k + 3]!);
          if (holes.length > this.opts.maxHoles * 4) holes.splice(0, 4);
          break;
        }
      }
      k += 4;
    }
    return kind;
  }

  private dropAckedHoles(slot: number, owner: number, ack: number): void {
    const holes = this.extras.get(slot)?.holes?.[owner];
    if (!holes) return;
    while (holes.length > 0 && ((ack - holes[1]!) | 0) >= 0) holes.splice(0, 4);
  }

  /** Counter value for the record (0 without extra). */
  counter(slot: number, counter: number, d: number): number {
    const x = this.peekExtra(slot);
    return x ? x.c[counter * 2 + d]! : 0;
  }

  /** Handshake figures to report now (once per flow), in whole µs; null when none. */
  takeHandshake(slot: number): { serverUs: number; clientUs: number; complete: boolean } | null {
    const h = this.hs[slot]!;
    if ((h & HS_MASK) !== HS_DONE || h & HS_REPORTED) return null;
    this.hs[slot] = h | HS_REPORTED;
    return { serverUs: h & HS_SERVER_VALID ? this.t[slot * 4 + 2]! : -1, clientUs: this.t[slot * 4 + 3]!, complete: (h & HS_SERVER_VALID) !== 0 };
  }

  /** After an interim record: counters and TS-RTT summaries restart (deltas); holes and state stay. */
  resetInterval(slot: number): void {
    this.u[(slot * 2) * 4 + 2] = this.u[(slot * 2 + 1) * 4 + 2] = 0;
    const x = this.peekExtra(slot);
    if (x) x.c.fill(0);
    this.ts[slot * 8] = this.ts[slot * 8 + 4] = 0;
  }
}
