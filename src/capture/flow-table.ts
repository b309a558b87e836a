/**
 * The flow table: bidirectional flows with traffic counters and TCP / ICMP quality, bounded in
 * size, driven entirely by the time passed in (it never reads a clock).
 *
 * Feeding it:
 *   const table = new FlowTable({ onRecord: (r) => sink.write(r), epochUs: epochSec * 1e6, ... });
 *   for each decoded frame f:  table.addFrame(f, frameTimeNs(f, epochSec));
 *   every now and then:        table.tick(nowNs);       // timeouts (any rate; see sweepIntervalMs)
 *   on shutdown:               table.flush();           // every flow out, reason 'flush'
 * Time is a number of nanoseconds since a caller-chosen epoch (`epochUs`, µs since the Unix epoch,
 * e.g. the first frame's second): keep it below 2^53 ns (104 days) so it stays exact. Records
 * carry µs since the Unix epoch. Records are delivered synchronously through `onRecord`.
 *
 * Flows: keyed by VLANs, tunnel + VNI, the IP pair, protocol and ports (ICMP echo: identifier;
 * other ICMP: type + code); non-IP traffic by its MAC pair + EtherType (flow-key.ts). The client
 * is the sender of the first packet, except when that packet is a TCP SYN/ACK or an ICMP echo
 * reply (then it is the receiver). A later IP fragment (offset > 0, no ports) joins the flow of its
 * first fragment by (src, dst, protocol, IP ID) through a small direct-mapped fragment map;
 * without a match it goes to a "fragmentsOnly" flow of the address pair.
 *
 * Life of a flow:
 *   - idle timeout: no packet for idleTimeoutMs (15 s), tcpEstablishedIdleTimeoutMs (300 s) for
 *     established TCP, finLingerMs (1 s) once both FINs are seen but the last is unacknowledged
 *     (reason end-fin);
 *   - active timeout (60 s): a long flow emits an interim record (deltas, see flow-record.ts) and
 *     goes on; an interval without packets emits nothing;
 *   - a RST ends the flow at once (end-rst); both FINs acknowledged end it at once (end-fin);
 *     later stray packets start a new flow;
 *   - at most maxFlows flows: a new flow first evicts one — the least recently active of
 *     `evictionSample` (8) flows sampled round-robin (sampled LRU); it is emitted with reason
 *     'evicted' (or its timeout reason if it had already expired) and counted in stats.evictions.
 * Timeouts are checked lazily on each packet of a flow (exact) and by tick(), which sweeps the
 * slots incrementally so that every flow is visited at least once per sweepIntervalMs (1 s) of
 * the time passed in; a tick after a longer pause sweeps everything.
 *
 * Memory: typed-array columns, grouped into small rows where a frame touches the fields together
 * (flow id + key in one 32-byte row; packets/bytes/first/last of both directions in one 32-byte
 * row; TCP sequence state and timestamp-RTT summaries in tcp-metrics.ts likewise): 91 bytes per
 * slot here (hash buckets included) + 87 in the TcpTracker ≈ 179 bytes per flow of any kind,
 * growing by doubling up to maxFlows and never past it (scripts/bench-flow-memory.ts measures it:
 * 179 bytes at 1,000,000 IPv4 flows). Byte counters are uint32 per direction and record; the rare
 * high part past 2^32 goes to a map (exact). Interval anchors are uint32 µs from a table-wide base
 * that moves with time (see `anchor`). The hash is not stored: it is recomputed from the key when a
 * flow is freed or the buckets grow. Per-flow objects only for TCP flows with anomalies (counters,
 * holes) and ICMP echo flows. IPv6 flows add 16 bytes (195 per flow in all): the halves of their
 * addresses are interned where they are shared (a 16-bit id each, in the key's kB word;
 * ipv6-prefix-table.ts) and the rest takes one 16-byte pool entry — both /64 prefixes interned and
 * the two interface ids in the entry, or, when prefixes cannot be shared (65,536 distinct /64s
 * live: every client in a /64 of its own), one address whole in the entry and the other (the
 * server its clients share) interned as prefix + interface id (196 per flow with the intern
 * tables). Only a flow with neither address internable keeps both whole (32 bytes).
 *
 * Flow ids count the flows created (1, 2, …); a slot keeps the low 32 bits and the record
 * restores the rest from the counter: exact unless 2^32 flows were created during one flow's life.
 */
import { formatIpv4, formatIpv6, formatMac, type DecodedFrame } from './decode/frame.js';
import * as flowKey from './flow-key.js';
import { KeyScratch, finishHash, macFromParts, mixWord } from './flow-key.js';
import {
  FLOW_RECORD_SCHEMA_VERSION,
  TUNNEL_NAMES,
  type DirectionCounters,
  type ExportReason,
  type FlowKeyRecord,
  type FlowRecord,
  type ObservationPoint,
  type TcpDirectionRecord,
} from './flow-record.js';
import { IcmpTracker, type IcmpOptions } from './icmp-metrics.js';
import { Ipv6PrefixTable, MAX_PREFIX_IDS } from './ipv6-prefix-table.js';
import * as tcpm from './tcp-metrics.js';
import { TcpTracker, type TcpOptions } from './tcp-metrics.js';
import { MirrorflowError, kv } from '../errors.js';

export interface FlowTableOptions {
  /** Receives every record, synchronously. */
  onRecord: (record: FlowRecord) => void;
  /** µs since the Unix epoch that nowNs = 0 stands for. Default 0. */
  epochUs?: number;
  agentId?: string;
  /**
   * A run's mark in record ids: `<agentId>@<runId>-<sequence>` instead of `<agentId>-<sequence>`.
   * Sequences restart at 1 with every run, so a daemon that restarts must give each run its own
   * mark (the pipeline drops a repeated id as a duplicate). Replays leave it out: their ids stay
   * the same from run to run.
   */
  runId?: string;
  observation?: Partial<Omit<ObservationPoint, 'agentId'>>;
  maxFlows?: number;
  initialCapacity?: number;
  idleTimeoutMs?: number;
  tcpEstablishedIdleTimeoutMs?: number;
  activeTimeoutMs?: number;
  finLingerMs?: number;
  sweepIntervalMs?: number;
  evictionSample?: number;
  /** Fragment map entries (rounded up to a power of two) and how long an entry stays valid. */
  fragmentSlots?: number;
  fragmentTimeoutMs?: number;
  tcp?: Partial<TcpOptions>;
  icmp?: Partial<Omit<IcmpOptions, 'echoTimeoutNs'>> & { echoTimeoutMs?: number };
}

export interface FlowTableStats {
  framesAccounted: number;
  framesSkipped: number;
  flowsCreated: number;
  evictions: number;
  records: number;
  interimRecords: number;
  fragmentsJoined: number;
  fragmentsUnmatched: number;
}

/** Nanoseconds of a frame's capture time since `epochSec` (the caller's epoch, whole seconds). */
export function frameTimeNs(f: DecodedFrame, epochSec: number): number {
  return (f.tsSec - epochSec) * 1e9 + f.tsNsec;
}

// Hot-path bindings resolved once: imported bindings cost a getter call per access under tsx.
const buildFlowKey = flowKey.buildFlowKey;
const fragmentHash = flowKey.fragmentHash;
const isEchoRequest = flowKey.isEchoRequest;
const macHigh16 = flowKey.macHigh16;
const FLAG_FRAGMENTS_ONLY = flowKey.FLAG_FRAGMENTS_ONLY;
const FLAG_ICMP_ECHO = flowKey.FLAG_ICMP_ECHO;
const FLAG_ICMP_OTHER = flowKey.FLAG_ICMP_OTHER;
const KIND_IPV4 = flowKey.KIND_IPV4;
const KIND_IPV6 = flowKey.KIND_IPV6;
const { C_DUP_ACKS, C_GAP_FILLS, C_OUT_OF_ORDER, C_RETRANSMITS, C_RSTS, C_SYN_RETRANSMITS, C_ZERO_WINDOWS } = tcpm;
const { HS_RST_ANSWERED, HS_SYN, TCP_CLOSING, TCP_END_FIN, TCP_END_RST } = tcpm;
const IPPROTO_TCP = 6;
const TCP_SYN = 0x02;
const TCP_ACK = 0x10;

// key row layout
const KEY_WORDS = 8;
const K_ID = 0; // flow id, low 32 bits
const K_META = 1;
const K_VLAN01 = 2;
const K_VLAN23 = 3;
const K_VNI = 4;
const K_A = 5;
const K_B = 6;
const K_PORTS = 7;

// slot state bits
const S_USED = 1;
const S_CLIENT_LOW = 2;
const S_CLOSING = 4;
const S_TCP = 8;
const S_ECHO = 16;
/** IPv6 storage form (two state bits; see `v6`). */
const S_V6_FORM = 32 | 64;
const V6_PREFIXES = 0;
const V6_FULL = 32;
const V6_LOW_WHOLE = 64;
const V6_HIGH_WHOLE = 96;

// expiry verdicts
const X_NONE = 0;
const X_IDLE = 1;
const X_ACTIVE = 2;
const X_FIN = 3;

const MAX_TIMEOUT_MS = 3_600_000; // offsets are uint32 µs: keep every interval far below 71 minutes
const TWO32 = 4294967296;
const HASH_SEED = 0x9747b28c; // flow-key.ts buildFlowKey

/**
 * Text of addresses, cached (direct-mapped, bounded): records of flows between the same hosts get
 * the same string instances — no new string per record, and their hash is computed once for the
 * Map lookups downstream (endpoint naming, per-pair aggregation).
 */
class TextCache {
  private readonly keys: Float64Array;
  private readonly texts: (string | undefined)[];
  private readonly shift: number;

  constructor(bits: number) {
    this.keys = new Float64Array(1 << bits);
    this.texts = new Array<string | undefined>(1 << bits).fill(undefined);
    this.shift = 32 - bits;
  }

  /** Text of a uint32 IPv4 address. */
  ipv4(ip: number): string {
    const j = Math.imul(ip, 0x9e3779b1) >>> this.shift;
    const t = this.texts[j];
    if (t !== undefined && this.keys[j] === ip) return t;
    const x = formatIpv4(ip);
    this.keys[j] = ip;
    this.texts[j] = x;
    return x;
  }

  /** Text of a MAC given as its high 16 and low 32 bits. */
  mac(hi16: number, lo32: number): string {
    const j = Math.imul((lo32 ^ Math.imul(hi16, 0x85ebca6b)) | 0, 0x9e3779b1) >>> this.shift;
    const key = macFromParts(hi16, lo32);
    const t = this.texts[j];
    if (t !== undefined && this.keys[j] === key) return t;
    const x = formatMac(key);
    this.keys[j] = key;
    this.texts[j] = x;
    return x;
  }
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function grown<T extends Uint32Array | Int32Array | Uint16Array | Uint8Array | Float64Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a.subarray(0, Math.min(a.length, n)));
  return b;
}

export class FlowTable {
  readonly stats: FlowTableStats = {
    framesAccounted: 0,
    framesSkipped: 0,
    flowsCreated: 0,
    evictions: 0,
    records: 0,
    interimRecords: 0,
    fragmentsJoined: 0,
    fragmentsUnmatched: 0,
  };
  readonly tcp: TcpTracker;
  readonly icmp: IcmpTracker;

  private readonly onRecord: (r: FlowRecord) => void;
  private readonly epochUs: number;
  private readonly observation: ObservationPoint;
  /** `<agentId>` or `<agentId>@<runId>`: record ids are `<idPrefix>-<sequence>`. */
  private readonly idPrefix: string;
  private readonly maxFlows: number;
  private readonly idleUs: number;
  private readonly estIdleUs: number;
  private readonly activeUs: number;
  private readonly lingerUs: number;
  private readonly sweepUs: number;
  private readonly evictionSample: number;

  private cap: number;
  private count = 0;
  private highWater = 0;
  private freeHead = -1;
  private sequence = 0;
  private flowCounter = 0;
  private sweepCursor = 0;
  private evictCursor = 0;
  private lastTickUs = -Infinity;

  // hash index: bucket heads + per-slot chain links (the free list reuses `next`)
  private buckets: Int32Array;
  private bucketMask: number;
  private next: Int32Array;
  /**
   * Flow id + key, one row of KEY_WORDS per slot (a lookup touches one cache line, not eight):
   * [flow id low 32 bits, meta, vlan01, vlan23, vni, a, b, ports] (flow-key.ts).
   */
  private keys: Uint32Array;
  /** Per slot: [clientHi16 << 16 | serverHi16, clientLo32, serverLo32]. */
  private mac: Uint32Array;
  /**
   * Per slot × direction (i = slot*2 + d), rows of 4 (one 16-byte row per frame):
   * [packets, bytes mod 2^32, firstOff, lastOff]; the offsets are µs after the slot's interval
   * anchor. The bytes beyond 2^32 (rare: 4 GiB in one direction of one record) are kept in
   * `bytesHigh`, so counts stay exact.
   */
  private cnt: Uint32Array;
  /** Per column index i: the multiple of 2^32 to add to the bytes column (only when it wrapped). */
  private readonly bytesHigh = new Map<number, number>();
  /**
   * Per slot: the interval anchor, µs since the epoch of nowNs, stored as `anchorBase + anchor[s]`:
   * uint32 offsets from a table-wide base while every live anchor lies within 2^32 µs (71 minutes)
   * of it — always so when tick() runs (timeouts are at most 60 minutes) — the base moving forward
   * as time passes (setAnchor). If a live anchor falls further behind (no tick and no packet for
   * that flow in over an hour) the column becomes a Float64Array of whole anchors (base 0), until a
   * tick's sweep finds them within 2^32 µs again (narrowAnchors).
   */
  private anchor: Uint32Array | Float64Array;
  private anchorBase = 0;
  private anchorWide = false;
  private fl: Uint8Array;
  // per slot
  private state: Uint8Array;
  /**
   * IPv6 addresses, kept aside in a pool of 4-word entries (free entries are chained through their
   * first word), in one of four forms (state & S_V6_FORM), the 64-bit halves of addresses interned
   * in `prefixes` (/64 prefixes) and `iids` (interface ids), 16-bit ids each:
   *   V6_PREFIXES   (usual: VMs in a few subnets) kB = lowPrefixId << 16 | highPrefixId,
   *                 kA = one entry with the interface ids [low hi, low lo, high hi, high lo];
   *   V6_LOW_WHOLE  (a prefix could not be interned: 65,536 distinct /64s live, e.g. every client
   *                 in a /64 of its own) kA = one entry with the whole low address, kB = the high
   *                 address as highPrefixId << 16 | highIid (typically the server: one id pair for
   *                 all its clients);
   *   V6_HIGH_WHOLE the same with low and high swapped;
   *   V6_FULL       (neither address could be interned) kA and kB = two entries with the whole low
   *                 and high addresses.
   */
  private v6: Uint32Array = new Uint32Array(64 * 4);
  private v6Top = 0;
  private v6FreeHead = -1;
  private readonly prefixes = new Ipv6PrefixTable();
  private readonly iids = new Ipv6PrefixTable(MAX_PREFIX_IDS, 4);
  private readonly v6Scratch = new Uint32Array(8);
  // fragment map (direct-mapped)
  private readonly fragMask: number;
  private readonly fragTimeoutUs: number;
  private readonly fValid: Uint8Array;
  private readonly fHash: Uint32Array;
  private readonly fIpId: Uint32Array;
  private readonly fMeta: Uint32Array;
  private readonly fAddr: Uint32Array;
  private readonly fSlot: Int32Array;
  private readonly fFlowId: Uint32Array;
  private readonly fDir: Uint8Array;
  private readonly fTimeUs: Float64Array;
  private fragDir = 0;

  private readonly k = new KeyScratch();
  private readonly ipText = new TextCache(14);
  private readonly macText = new TextCache(14);

  constructor(opts: FlowTableOptions) {
    const ms = (name: string, v: number | undefined, def: number, max = MAX_TIMEOUT_MS): number => {
      const x = v ?? def;
      if (!(x > 0) || x > max) throw new MirrorflowError('flow-table', `flow-table: bad option${kv({ [name]: x, max })}`);
      return x;
    };
    this.onRecord = opts.onRecord;
    this.epochUs = opts.epochUs ?? 0;
    this.observation = Object.freeze({
      agentId: opts.agentId ?? '',
      bridge: opts.observation?.bridge ?? '',
      mirror: opts.observation?.mirror ?? '',
      interface: opts.observation?.interface ?? '',
    }); // shared by every record
    if (opts.runId !== undefined && !/^[A-Za-z0-9._]+$/.test(opts.runId)) throw new MirrorflowError('flow-table', `flow-table: bad option${kv({ runId: opts.runId, expected: 'letters, digits, . and _' })}`);
    this.idPrefix = opts.runId ? `${this.observation.agentId}@${opts.runId}` : this.observation.agentId;
    this.maxFlows = Math.floor(ms('maxFlows', opts.maxFlows, 1_000_000, 2 ** 28));
    this.idleUs = ms('idleTimeoutMs', opts.idleTimeoutMs, 15_000) * 1000;
    this.estIdleUs = ms('tcpEstablishedIdleTimeoutMs', opts.tcpEstablishedIdleTimeoutMs, 300_000) * 1000;
    this.activeUs = ms('activeTimeoutMs', opts.activeTimeoutMs, 60_000) * 1000;
    this.lingerUs = ms('finLingerMs', opts.finLingerMs, 1_000) * 1000;
    this.sweepUs = ms('sweepIntervalMs', opts.sweepIntervalMs, 1_000) * 1000;
    this.evictionSample = Math.floor(ms('evictionSample', opts.evictionSample, 8, 1024));
    const cap = Math.min(this.maxFlows, Math.floor(ms('initialCapacity', opts.initialCapacity, 1024, 2 ** 28)));
    this.cap = cap;
    const nb = nextPow2(cap);
    this.buckets = new Int32Array(nb).fill(-1);
    this.bucketMask = nb - 1;
    this.next = new Int32Array(cap);
    this.keys = new Uint32Array(cap * KEY_WORDS);
    this.mac = new Uint32Array(cap * 3);
    this.cnt = new Uint32Array(cap * 8);
    this.anchor = new Uint32Array(cap);
    this.fl = new Uint8Array(cap * 2);
    this.state = new Uint8Array(cap);
    this.tcp = new TcpTracker(cap, opts.tcp);
    const { echoTimeoutMs, ...icmpRest } = opts.icmp ?? {};
    this.icmp = new IcmpTracker({ ...icmpRest, echoTimeoutNs: ms('icmp.echoTimeoutMs', echoTimeoutMs, 5_000) * 1e6 }, () => this.tcp.sharedWords);
    const nf = nextPow2(Math.floor(ms('fragmentSlots', opts.fragmentSlots, 4096, 2 ** 20)));
    this.fragMask = nf - 1;
    this.fragTimeoutUs = ms('fragmentTimeoutMs', opts.fragmentTimeoutMs, 30_000) * 1000;
    this.fValid = new Uint8Array(nf);
    this.fHash = new Uint32Array(nf);
    this.fIpId = new Uint32Array(nf);
    this.fMeta = new Uint32Array(nf);
    this.fAddr = new Uint32Array(nf * 8);
    this.fSlot = new Int32Array(nf);
    this.fFlowId = new Uint32Array(nf);
    this.fDir = new Uint8Array(nf);
    this.fTimeUs = new Float64Array(nf);
  }

  /** Active flows. */
  get size(): number {
    return this.count;
  }

  /** Slots allocated (grows by doubling up to maxFlows). */
  get capacity(): number {
    return this.cap;
  }

  /**
   * Accounts one decoded frame at time nowNs. Frames with a decode error are skipped (false); the
   * caller counts the reasons. Records due (RST/FIN ends, lazy timeouts, evictions) are emitted
   * through onRecord before this returns.
   */
  addFrame(f: DecodedFrame, nowNs: number): boolean {
    if (f.error !== 0) {
      this.stats.framesSkipped++;
      return false;
    }
    this.stats.framesAccounted++;
    const nowUs = Math.floor(nowNs / 1000);
    const later = f.ipVersion !== 0 && f.fragOffset > 0;
    if (later) {
      const s = this.fragLookup(f, nowUs);
      // the flow's timeouts, as for any packet (offsets after the anchor stay below the active timeout)
      if (s >= 0 && this.applyTimeouts(s, nowUs)) {
        this.stats.fragmentsJoined++;
        this.account(s, this.fragDir, f, nowUs);
        return true;
      }
      this.stats.fragmentsUnmatched++;
    }
    const k = this.k;
    buildFlowKey(f, k, later);
    let s = this.find(k);
    if (s >= 0 && !this.applyTimeouts(s, nowUs)) s = -1;
    if (s < 0) s = this.create(f, k, nowUs, later);
    const st = this.state[s]!;
    const d = ((st & S_CLIENT_LOW) !== 0) === k.srcIsLow ? 0 : 1;
    this.account(s, d, f, nowUs);
    if (later) return true;
    if (f.moreFragments && f.fragOffset === 0) this.fragInsert(f, s, d, nowUs);
    if (st & S_TCP) {
      const r = this.tcp.onSegment(s, d, f, nowNs, nowUs);
      if (r !== 0) {
        if (r === TCP_END_RST) this.finish(s, 'end-rst', nowUs);
        else if (r === TCP_END_FIN) this.finish(s, 'end-fin', nowUs);
        else if (r === TCP_CLOSING) this.state[s] = st | S_CLOSING;
      }
    } else if (st & S_ECHO) {
      this.icmp.onEcho(s, d, f.protocol, f.icmpType, f.icmpSeq, nowNs);
    }
    return true;
  }

  /**
   * Emits the flows whose timeouts have passed at nowNs. Sweeps a share of the slots proportional
   * to the time since the previous tick (all of them after sweepIntervalMs or more).
   */
  tick(nowNs: number): void {
    const nowUs = Math.floor(nowNs / 1000);
    const elapsed = nowUs - this.lastTickUs;
    this.lastTickUs = nowUs;
    const hw = this.highWater;
    if (hw === 0 || elapsed <= 0) return;
    const n = elapsed >= this.sweepUs ? hw : Math.min(hw, Math.ceil((hw * elapsed) / this.sweepUs));
    let c = this.sweepCursor;
    let wrapped = n === hw;
    for (let j = 0; j < n; j++) {
      if (c >= hw) {
        c = 0;
        wrapped = true;
      }
      const s = c++;
      if (this.state[s]! & S_USED) this.applyTimeouts(s, nowUs);
    }
    this.sweepCursor = c;
    // whole anchors (a pause without ticks, a frame stamped far off): once a sweep has gone round,
    // the flows that held them back have usually timed out
    if (this.anchorWide && wrapped) this.narrowAnchors(nowUs);
  }

  /**
   * Applies the timeout due for flow s at nowUs (lazily on its packets, and from tick): past the
   * active timeout an interim record, and the flow goes on (true); idle or finished, its end (false).
   */
  private applyTimeouts(s: number, nowUs: number): boolean {
    const x = this.expiry(s, nowUs);
    if (x === X_NONE) return true;
    if (x === X_ACTIVE) {
      this.emitInterim(s, nowUs);
      return true;
    }
    this.finish(s, x === X_FIN ? 'end-fin' : 'idle-timeout', nowUs);
    return false;
  }

  /**
   * Cuts every flow at a window boundary: flows that timed out end, every other flow with packets
   * since its last record emits an interim record (deltas) and goes on. The worker calls it when
   * event time crosses a window boundary, so no record spans two windows.
   */
  cutAll(nowNs: number): void {
    const nowUs = Math.floor(nowNs / 1000);
    for (let s = 0; s < this.highWater; s++) {
      if (!(this.state[s]! & S_USED)) continue;
      const x = this.expiry(s, nowUs);
      if (x === X_IDLE || x === X_FIN) this.finish(s, x === X_FIN ? 'end-fin' : 'idle-timeout', nowUs);
      else if (this.cnt[s * 8]! + this.cnt[s * 8 + 4]! > 0) this.emitInterim(s, nowUs);
    }
  }

  /** Emits every flow with reason 'flush' and empties the table (shutdown). */
  flush(): void {
    // the time of the flush: the latest the table has seen (a tick, or any flow's last packet)
    let nowUs = this.lastTickUs;
    for (let s = 0; s < this.highWater; s++) if (this.state[s]! & S_USED) nowUs = Math.max(nowUs, this.lastSeenUs(s));
    for (let s = 0; s < this.highWater; s++) if (this.state[s]! & S_USED) this.finish(s, 'flush', nowUs);
    this.fValid.fill(0);
  }

  // ---- internals

  private expiry(s: number, nowUs: number): number {
    const a = this.anchorBase + this.anchor[s]!;
    const l0 = this.cnt[s * 8 + 3]!;
    const l1 = this.cnt[s * 8 + 7]!;
    const last = a + (l0 > l1 ? l0 : l1);
    const st = this.state[s]!;
    const limit = st & S_CLOSING ? this.lingerUs : st & S_TCP && this.tcp.isEstablished(s) ? this.estIdleUs : this.idleUs;
    if (nowUs - last >= limit) return st & S_CLOSING ? X_FIN : X_IDLE;
    if (nowUs - a >= this.activeUs && this.cnt[s * 8]! + this.cnt[s * 8 + 4]! > 0) return X_ACTIVE;
    return X_NONE;
  }

  private lastSeenUs(s: number): number {
    const l0 = this.cnt[s * 8 + 3]!;
    const l1 = this.cnt[s * 8 + 7]!;
    return this.anchorBase + this.anchor[s]! + (l0 > l1 ? l0 : l1);
  }

  private find(k: KeyScratch): number {
    const h = k.hash;
    let s = this.buckets[h & this.bucketMask]!;
    const v6 = k.meta >>> 30 === KIND_IPV6;
    const keys = this.keys;
    while (s >= 0) {
      const r = s * KEY_WORDS;
      if (
        keys[r + K_PORTS] === k.ports &&
        keys[r + K_META] === k.meta &&
        keys[r + K_VNI] === k.vni &&
        keys[r + K_VLAN01] === k.vlan01 &&
        keys[r + K_VLAN23] === k.vlan23 &&
        (v6 ? this.v6Equal(s, r, k) : keys[r + K_A] === k.a && keys[r + K_B] === k.b)
      ) {
        return s;
      }
      s = this.next[s]!;
    }
    return -1;
  }

  private v6Equal(s: number, r: number, k: KeyScratch): boolean {
    const w = this.v6;
    const L = k.lowIp;
    const H = k.highIp;
    const e = this.keys[r + K_A]! * 4;
    const form = this.state[s]! & S_V6_FORM;
    const ids = this.keys[r + K_B]!;
    if (form === V6_PREFIXES) {
      if (w[e] !== L[2] || w[e + 1] !== L[3] || w[e + 2] !== H[2] || w[e + 3] !== H[3]) return false;
      const p = this.prefixes.words;
      const lo = (ids >>> 16) * 2;
      const hi = (ids & 0xffff) * 2;
      return p[lo] === L[0] && p[lo + 1] === L[1] && p[hi] === H[0] && p[hi + 1] === H[1];
    }
    if (form === V6_FULL) {
      const e2 = ids * 4;
      return (
        w[e] === L[0] && w[e + 1] === L[1] && w[e + 2] === L[2] && w[e + 3] === L[3] &&
        w[e2] === H[0] && w[e2 + 1] === H[1] && w[e2 + 2] === H[2] && w[e2 + 3] === H[3]
      );
    }
    // one address whole in the entry, the other interned (prefix id << 16 | interface id id)
    const W = form === V6_LOW_WHOLE ? L : H;
    const I = form === V6_LOW_WHOLE ? H : L;
    if (w[e] !== W[0] || w[e + 1] !== W[1] || w[e + 2] !== W[2] || w[e + 3] !== W[3]) return false;
    const p = (ids >>> 16) * 2;
    const q = (ids & 0xffff) * 2;
    const pw = this.prefixes.words;
    const qw = this.iids.words;
    return pw[p] === I[0] && pw[p + 1] === I[1] && qw[q] === I[2] && qw[q + 1] === I[3];
  }

  /**
   * Stores the IPv6 addresses of a new flow (kA, kB); returns the storage form's state bits. Both
   * /64 prefixes interned: the usual form. Else one address whole and the other interned as prefix
   * + interface id (a server many clients talk to, when each client has a /64 of its own). Else
   * both whole.
   */
  private storeV6(r: number, k: KeyScratch): number {
    const L = k.lowIp;
    const H = k.highIp;
    const keys = this.keys;
    const prefixes = this.prefixes;
    const lowId = prefixes.intern(L[0]!, L[1]!);
    const highId = prefixes.intern(H[0]!, H[1]!);
    if (lowId >= 0 && highId >= 0) {
      const e = this.allocV6();
      const w = this.v6;
      w[e * 4] = L[2]!;
      w[e * 4 + 1] = L[3]!;
      w[e * 4 + 2] = H[2]!;
      w[e * 4 + 3] = H[3]!;
      keys[r + K_A] = e;
      keys[r + K_B] = ((lowId << 16) | highId) >>> 0;
      return V6_PREFIXES;
    }
    if (highId >= 0) {
      const iid = this.iids.intern(H[2]!, H[3]!);
      if (iid >= 0) {
        const e = this.allocV6();
        this.v6.set(L, e * 4);
        keys[r + K_A] = e;
        keys[r + K_B] = ((highId << 16) | iid) >>> 0;
        return V6_LOW_WHOLE;
      }
      prefixes.release(highId);
    } else if (lowId >= 0) {
      const iid = this.iids.intern(L[2]!, L[3]!);
      if (iid >= 0) {
        const e = this.allocV6();
        this.v6.set(H, e * 4);
        keys[r + K_A] = e;
        keys[r + K_B] = ((lowId << 16) | iid) >>> 0;
        return V6_HIGH_WHOLE;
      }
      prefixes.release(lowId);
    }
    const e1 = this.allocV6();
    const e2 = this.allocV6();
    this.v6.set(L, e1 * 4);
    this.v6.set(H, e2 * 4);
    keys[r + K_A] = e1;
    keys[r + K_B] = e2;
    return V6_FULL;
  }

  /** The 8 address words (low, high) of an IPv6 slot, into `out`. */
  private v6Words(s: number, out: Uint32Array): Uint32Array {
    const r = s * KEY_WORDS;
    const w = this.v6;
    const e = this.keys[r + K_A]! * 4;
    const ids = this.keys[r + K_B]!;
    const form = this.state[s]! & S_V6_FORM;
    if (form === V6_PREFIXES) {
      const p = this.prefixes.words;
      const lo = (ids >>> 16) * 2;
      const hi = (ids & 0xffff) * 2;
      out[0] = p[lo]!;
      out[1] = p[lo + 1]!;
      out[2] = w[e]!;
      out[3] = w[e + 1]!;
      out[4] = p[hi]!;
      out[5] = p[hi + 1]!;
      out[6] = w[e + 2]!;
      out[7] = w[e + 3]!;
      return out;
    }
    if (form === V6_FULL) {
      const e2 = ids * 4;
      for (let j = 0; j < 4; j++) {
        out[j] = w[e + j]!;
        out[4 + j] = w[e2 + j]!;
      }
      return out;
    }
    const wo = form === V6_LOW_WHOLE ? 0 : 4; // the whole address's place in out
    const io = 4 - wo;
    for (let j = 0; j < 4; j++) out[wo + j] = w[e + j]!;
    const p = (ids >>> 16) * 2;
    const q = (ids & 0xffff) * 2;
    out[io] = this.prefixes.words[p]!;
    out[io + 1] = this.prefixes.words[p + 1]!;
    out[io + 2] = this.iids.words[q]!;
    out[io + 3] = this.iids.words[q + 1]!;
    return out;
  }

  private releaseV6(s: number): void {
    const r = s * KEY_WORDS;
    const form = this.state[s]! & S_V6_FORM;
    const ids = this.keys[r + K_B]!;
    this.freeV6(this.keys[r + K_A]!);
    if (form === V6_FULL) this.freeV6(ids);
    else if (form === V6_PREFIXES) {
      this.prefixes.release(ids >>> 16);
      this.prefixes.release(ids & 0xffff);
    } else {
      this.prefixes.release(ids >>> 16);
      this.iids.release(ids & 0xffff);
    }
  }

  private create(f: DecodedFrame, k: KeyScratch, nowUs: number, later: boolean): number {
    if (this.count >= this.maxFlows) this.evictOne(nowUs);
    let s: number;
    if (this.freeHead >= 0) {
      s = this.freeHead;
      this.freeHead = this.next[s]!;
    } else {
      if (this.highWater === this.cap) this.grow();
      s = this.highWater++;
    }
    const r = s * KEY_WORDS;
    const keys = this.keys;
    keys[r + K_ID] = ++this.flowCounter; // stored mod 2^32
    keys[r + K_META] = k.meta;
    keys[r + K_VLAN01] = k.vlan01;
    keys[r + K_VLAN23] = k.vlan23;
    keys[r + K_VNI] = k.vni;
    keys[r + K_PORTS] = k.ports;
    let v6Form = 0;
    if (k.meta >>> 30 === KIND_IPV6) v6Form = this.storeV6(r, k);
    else {
      keys[r + K_A] = k.a;
      keys[r + K_B] = k.b;
    }

    const low16 = k.meta & 0xffff;
    const isIp = f.ipVersion !== 0;
    const isTcp = isIp && !later && f.protocol === IPPROTO_TCP;
    const isEcho = isIp && !later && (low16 & FLAG_ICMP_ECHO) !== 0;
    let srcIsClient = true;
    if (isTcp && (f.tcpFlags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK)) srcIsClient = false;
    else if (isEcho && !isEchoRequest(f.protocol, f.icmpType)) srcIsClient = false;
    const clientLow = srcIsClient === k.srcIsLow;
    this.state[s] = S_USED | (clientLow ? S_CLIENT_LOW : 0) | (isTcp ? S_TCP : 0) | (isEcho ? S_ECHO : 0) | v6Form;
    const cm = srcIsClient ? f.srcMac : f.dstMac;
    const sm = srcIsClient ? f.dstMac : f.srcMac;
    this.mac[s * 3] = ((macHigh16(cm) << 16) | macHigh16(sm)) >>> 0;
    this.mac[s * 3 + 1] = cm >>> 0;
    this.mac[s * 3 + 2] = sm >>> 0;
    this.clearCounters(s);
    this.setAnchor(s, nowUs);
    if (isTcp) this.tcp.reset(s);
    else if (isEcho) this.icmp.reset(s);
    const b = k.hash & this.bucketMask;
    this.next[s] = this.buckets[b]!;
    this.buckets[b] = s;
    this.count++;
    this.stats.flowsCreated++;
    return s;
  }

  private account(s: number, d: number, f: DecodedFrame, nowUs: number): void {
    const i = s * 2 + d;
    const r = i * 4;
    const c = this.cnt;
    let off = nowUs - this.anchorBase - this.anchor[s]!;
    if (off < 0) off = 0;
    const n = c[r]!;
    if (n === 0) {
      c[r + 2] = off;
      c[r + 3] = off;
    } else if (off > c[r + 3]!) c[r + 3] = off;
    c[r] = n + 1;
    const b = c[r + 1]! + f.len;
    c[r + 1] = b; // stored mod 2^32
    if (b > 0xffffffff) this.carryBytes(i, b);
    this.fl[i]! |= f.tcpFlags;
  }

  /** The bytes column of i passed 2^32 (b: the unwrapped sum): keep the high part aside. */
  private carryBytes(i: number, b: number): void {
    const high = b - (b % TWO32);
    this.bytesHigh.set(i, (this.bytesHigh.get(i) ?? 0) + high);
  }

  /** Exact bytes of column i in the current record. */
  private bytesOf(i: number): number {
    const low = this.cnt[i * 4 + 1]!;
    return this.bytesHigh.size === 0 ? low : low + (this.bytesHigh.get(i) ?? 0);
  }

  /** Zeroes both directions' counters of slot s (new flow, or after an interim record). */
  private clearCounters(s: number): void {
    const c = this.cnt;
    const r = s * 8;
    c[r] = c[r + 1] = c[r + 2] = c[r + 3] = c[r + 4] = c[r + 5] = c[r + 6] = c[r + 7] = 0;
    this.fl[s * 2] = this.fl[s * 2 + 1] = 0;
    if (this.bytesHigh.size !== 0) {
      this.bytesHigh.delete(s * 2);
      this.bytesHigh.delete(s * 2 + 1);
    }
  }

  private grow(): void {
    const n = Math.min(this.cap * 2, this.maxFlows);
    if (n <= this.cap) throw new MirrorflowError('flow-table', `flow-table: cannot grow${kv({ capacity: this.cap, maxFlows: this.maxFlows })}`);
    this.next = grown(this.next, n);
    this.keys = grown(this.keys, n * KEY_WORDS);
    this.mac = grown(this.mac, n * 3);
    this.cnt = grown(this.cnt, n * 8);
    this.anchor = grown(this.anchor, n);
    this.fl = grown(this.fl, n * 2);
    this.state = grown(this.state, n);
    this.tcp.grow(n);
    this.cap = n;
    const nb = nextPow2(n);
    if (nb > this.buckets.length) {
      this.buckets = new Int32Array(nb).fill(-1);
      this.bucketMask = nb - 1;
      for (let s = 0; s < this.highWater; s++) {
        if (!(this.state[s]! & S_USED)) continue;
        const b = this.slotHash(s) & this.bucketMask;
        this.next[s] = this.buckets[b]!;
        this.buckets[b] = s;
      }
    }
  }

  /** Sets slot s's interval anchor to v (µs since the epoch of nowNs; a whole number). */
  private setAnchor(s: number, v: number): void {
    const x = v - this.anchorBase;
    if (this.anchorWide || (x >= 0 && x <= 0xffffffff)) this.anchor[s] = x;
    else this.rebaseAnchors(s, v);
  }

  /**
   * v does not fit the uint32 anchors: moves the base so that v and every live anchor fit, rewriting
   * the live anchors (one pass; with ticks, once per tens of minutes of table time at most), or
   * switches to whole Float64 anchors when they span 2^32 µs or more.
   */
  private rebaseAnchors(s: number, v: number): void {
    const hw = this.highWater;
    const st = this.state;
    const a = this.anchor;
    const base = this.anchorBase;
    let min = v;
    let max = v;
    for (let j = 0; j < hw; j++) {
      if (j === s || !(st[j]! & S_USED)) continue;
      const x = base + a[j]!;
      if (x < min) min = x;
      if (x > max) max = x;
    }
    const room = 0xffffffff - (max - min);
    if (room >= 0) {
      // most of the room above (time moves forward), a little below for slightly late frames
      const nb = min - Math.min(2 ** 28, Math.floor(room / 4));
      for (let j = 0; j < hw; j++) if (j !== s && st[j]! & S_USED) a[j] = base + a[j]! - nb;
      a[s] = v - nb;
      this.anchorBase = nb;
      return;
    }
    const wide = new Float64Array(a.length);
    for (let j = 0; j < hw; j++) if (j !== s && st[j]! & S_USED) wide[j] = base + a[j]!;
    wide[s] = v;
    this.anchor = wide;
    this.anchorBase = 0;
    this.anchorWide = true;
  }

  /**
   * Back from whole Float64 anchors to uint32 offsets (the memory of one sweep's pass) when nowUs
   * and every live anchor lie within 2^32 µs again; otherwise they stay whole until a later sweep.
   */
  private narrowAnchors(nowUs: number): void {
    const hw = this.highWater;
    const st = this.state;
    const a = this.anchor;
    let min = nowUs;
    let max = nowUs;
    for (let j = 0; j < hw; j++) {
      if (!(st[j]! & S_USED)) continue;
      const x = a[j]!;
      if (x < min) min = x;
      if (x > max) max = x;
    }
    const room = 0xffffffff - (max - min);
    if (room < 0) return;
    const nb = min - Math.min(2 ** 28, Math.floor(room / 4)); // as rebaseAnchors
    const narrow = new Uint32Array(a.length);
    for (let j = 0; j < hw; j++) if (st[j]! & S_USED) narrow[j] = a[j]! - nb;
    this.anchor = narrow;
    this.anchorBase = nb;
    this.anchorWide = false;
  }

  /** A free 4-word entry of the IPv6 pool. */
  private allocV6(): number {
    const h = this.v6FreeHead;
    if (h >= 0) {
      this.v6FreeHead = this.v6[h * 4]! === 0xffffffff ? -1 : this.v6[h * 4]!;
      return h;
    }
    const entries = this.v6.length >>> 2;
    if (this.v6Top === entries) {
      // at most one entry per flow until some flow needs two (V6_FULL): then up to two per flow
      let n = Math.min(entries * 2, this.maxFlows);
      if (n <= entries) n = Math.min(entries * 2, this.maxFlows * 2);
      this.v6 = grown(this.v6, n * 4);
    }
    return this.v6Top++;
  }

  private freeV6(e: number): void {
    this.v6[e * 4] = this.v6FreeHead < 0 ? 0xffffffff : this.v6FreeHead;
    this.v6FreeHead = e;
  }

  /** The key hash of a used slot, as buildFlowKey computed it (flow-key.ts: same words, same order). */
  private slotHash(s: number): number {
    const r = s * KEY_WORDS;
    const keys = this.keys;
    const meta = keys[r + K_META]!;
    let h = HASH_SEED;
    if (meta >>> 30 === KIND_IPV6) {
      const w8 = this.v6Words(s, this.v6Scratch);
      for (let w = 0; w < 8; w++) h = mixWord(h, w8[w]!);
    } else {
      h = mixWord(h, keys[r + K_A]!);
      h = mixWord(h, keys[r + K_B]!);
    }
    h = mixWord(h, meta);
    h = mixWord(h, keys[r + K_PORTS]!);
    h = mixWord(h, keys[r + K_VNI]!);
    h = mixWord(h, keys[r + K_VLAN01]!);
    h = mixWord(h, keys[r + K_VLAN23]!);
    return finishHash(h);
  }

  /** The flow id of a slot: its low 32 bits are stored, the rest comes from the counter. */
  private flowIdOf(s: number): number {
    const c = this.flowCounter; // ≥ the id, and ≥ its low bits
    return c - ((c - this.keys[s * KEY_WORDS + K_ID]!) % TWO32);
  }

  private free(s: number): void {
    const b = this.slotHash(s) & this.bucketMask;
    let p = this.buckets[b]!;
    if (p === s) this.buckets[b] = this.next[s]!;
    else {
      while (p >= 0 && this.next[p] !== s) p = this.next[p]!;
      if (p >= 0) this.next[p] = this.next[s]!;
    }
    const st = this.state[s]!;
    if (this.keys[s * KEY_WORDS + K_META]! >>> 30 === KIND_IPV6) this.releaseV6(s);
    if (st & S_TCP) this.tcp.release(s);
    if (st & S_ECHO) this.icmp.release(s);
    if (this.bytesHigh.size !== 0) {
      this.bytesHigh.delete(s * 2);
      this.bytesHigh.delete(s * 2 + 1);
    }
    this.state[s] = 0;
    this.next[s] = this.freeHead;
    this.freeHead = s;
    this.count--;
  }

  private evictOne(nowUs: number): void {
    const hw = this.highWater;
    let best = -1;
    let bestSeen = Infinity;
    let c = this.evictCursor;
    let seen = 0;
    for (let j = 0; j < hw && seen < this.evictionSample; j++) {
      if (c >= hw) c = 0;
      const s = c++;
      if (!(this.state[s]! & S_USED)) continue;
      seen++;
      const t = this.lastSeenUs(s);
      if (t < bestSeen) {
        bestSeen = t;
        best = s;
      }
    }
    this.evictCursor = c;
    if (best < 0) return;
    const x = this.expiry(best, nowUs);
    if (x === X_IDLE) this.finish(best, 'idle-timeout', nowUs);
    else if (x === X_FIN) this.finish(best, 'end-fin', nowUs);
    else {
      this.stats.evictions++;
      this.finish(best, 'evicted', nowUs);
    }
  }

  private fragInsert(f: DecodedFrame, s: number, d: number, nowUs: number): void {
    const fh = fragmentHash(f);
    const j = fh & this.fragMask;
    this.fValid[j] = 1;
    this.fHash[j] = fh;
    this.fIpId[j] = f.ipId >>> 0;
    this.fMeta[j] = (f.ipVersion << 8) | (f.protocol & 255);
    const n = f.ipVersion === 6 ? 4 : 1;
    for (let w = 0; w < 4; w++) {
      this.fAddr[j * 8 + w] = w < n ? f.srcIp[w]! : 0;
      this.fAddr[j * 8 + 4 + w] = w < n ? f.dstIp[w]! : 0;
    }
    this.fSlot[j] = s;
    this.fFlowId[j] = this.keys[s * KEY_WORDS + K_ID]!;
    this.fDir[j] = d;
    this.fTimeUs[j] = nowUs;
  }

  private fragLookup(f: DecodedFrame, nowUs: number): number {
    const fh = fragmentHash(f);
    const j = fh & this.fragMask;
    if (!this.fValid[j] || this.fHash[j] !== fh || this.fIpId[j] !== f.ipId >>> 0) return -1;
    if (this.fMeta[j] !== ((f.ipVersion << 8) | (f.protocol & 255))) return -1;
    if (nowUs - this.fTimeUs[j]! > this.fragTimeoutUs) return -1;
    const n = f.ipVersion === 6 ? 4 : 1;
    for (let w = 0; w < n; w++) {
      if (this.fAddr[j * 8 + w] !== f.srcIp[w] || this.fAddr[j * 8 + 4 + w] !== f.dstIp[w]) return -1;
    }
    const s = this.fSlot[j]!;
    if (!(this.state[s]! & S_USED) || this.keys[s * KEY_WORDS + K_ID] !== this.fFlowId[j]) return -1;
    this.fragDir = this.fDir[j]!;
    return s;
  }

  // ---- records

  private emitInterim(s: number, nowUs: number): void {
    if (this.state[s]! & S_ECHO) this.icmp.expire(s, nowUs * 1000, false);
    this.onRecord(this.buildRecord(s, 'active-timeout', false, nowUs));
    this.stats.records++;
    this.stats.interimRecords++;
    this.setAnchor(s, this.lastSeenUs(s));
    this.clearCounters(s);
    const st = this.state[s]!;
    if (st & S_TCP) this.tcp.resetInterval(s);
    if (st & S_ECHO) this.icmp.resetInterval(s);
  }

  /** Ends flow s at nowUs (table time: when the table ended it, for a record without packets). */
  private finish(s: number, reason: ExportReason, nowUs: number): void {
    const st = this.state[s]!;
    if (st & S_ECHO) this.icmp.expire(s, 0, true);
    this.onRecord(this.buildRecord(s, reason, true, nowUs));
    this.stats.records++;
    this.free(s);
  }

  private direction(s: number, d: number): DirectionCounters {
    const i = s * 2 + d;
    const n = this.cnt[i * 4]!;
    const base = this.epochUs + this.anchorBase + this.anchor[s]!;
    return {
      packets: n,
      bytes: this.bytesOf(i),
      firstUs: n ? base + this.cnt[i * 4 + 2]! : 0,
      lastUs: n ? base + this.cnt[i * 4 + 3]! : 0,
      tcpFlags: this.fl[i]!,
    };
  }

  private tcpDirection(s: number, d: number): TcpDirectionRecord {
    const t = this.tcp;
    return {
      dataSegments: t.dataSegments(s, d),
      retransmits: t.counter(s, C_RETRANSMITS, d),
      gapFills: t.counter(s, C_GAP_FILLS, d),
      outOfOrder: t.counter(s, C_OUT_OF_ORDER, d),
      dupAcks: t.counter(s, C_DUP_ACKS, d),
      zeroWindows: t.counter(s, C_ZERO_WINDOWS, d),
      rsts: t.counter(s, C_RSTS, d),
      synRetransmits: t.counter(s, C_SYN_RETRANSMITS, d),
    };
  }

  /** The key of a slot in record form (client/server oriented). */
  private keyRecord(s: number): FlowKeyRecord {
    const r = s * KEY_WORDS;
    const keys = this.keys;
    const meta = keys[r + K_META]!;
    const kind = meta >>> 30;
    const tunnel = (meta >>> 28) & 3;
    const vc = (meta >>> 25) & 7;
    const proto = (meta >>> 16) & 255;
    const low16 = meta & 0xffff;
    const vlans: number[] = [];
    if (vc > 0) {
      const v01 = keys[r + K_VLAN01]!;
      const v23 = keys[r + K_VLAN23]!;
      vlans.push(v01 >>> 16);
      if (vc > 1) vlans.push(v01 & 0xffff);
      if (vc > 2) vlans.push(v23 >>> 16);
      if (vc > 3) vlans.push(v23 & 0xffff);
    }
    const clientLow = (this.state[s]! & S_CLIENT_LOW) !== 0;
    const m0 = this.mac[s * 3]!;
    const key: FlowKeyRecord = {
      vlans,
      tunnel: TUNNEL_NAMES[tunnel]!,
      ipVersion: 0,
      protocol: 0,
      etherType: 0,
      clientIp: '',
      serverIp: '',
      clientPort: 0,
      serverPort: 0,
      clientMac: this.macText.mac(m0 >>> 16, this.mac[s * 3 + 1]!),
      serverMac: this.macText.mac(m0 & 0xffff, this.mac[s * 3 + 2]!),
      fragmentsOnly: false,
    };
    if (tunnel !== 0) key.vni = keys[r + K_VNI]!;
    if (kind === KIND_IPV4 || kind === KIND_IPV6) {
      key.ipVersion = kind === KIND_IPV4 ? 4 : 6;
      key.etherType = kind === KIND_IPV4 ? 0x0800 : 0x86dd;
      key.protocol = proto;
      let lowIp: string;
      let highIp: string;
      if (kind === KIND_IPV4) {
        lowIp = this.ipText.ipv4(keys[r + K_A]!);
        highIp = this.ipText.ipv4(keys[r + K_B]!);
      } else {
        const w8 = this.v6Words(s, this.v6Scratch);
        lowIp = formatIpv6(w8.subarray(0, 4));
        highIp = formatIpv6(w8.subarray(4, 8));
      }
      key.clientIp = clientLow ? lowIp : highIp;
      key.serverIp = clientLow ? highIp : lowIp;
      const ports = keys[r + K_PORTS]!;
      const lowPort = ports >>> 16;
      const highPort = ports & 0xffff;
      if (low16 & FLAG_ICMP_ECHO) key.icmpId = lowPort;
      else if (low16 & FLAG_ICMP_OTHER) {
        key.icmpType = (highPort >>> 8) & 255;
        key.icmpCode = highPort & 255;
      } else if (low16 & FLAG_FRAGMENTS_ONLY) key.fragmentsOnly = true;
      else {
        key.clientPort = clientLow ? lowPort : highPort;
        key.serverPort = clientLow ? highPort : lowPort;
      }
    } else {
      key.etherType = low16;
    }
    return key;
  }

  /**
   * The record of flow s. One without packets (a flow that ends after its last interim record, e.g.
   * a SYN never answered, cut at a window boundary, then timed out) spans nothing: its start and
   * end are the time the table ended it (`nowUs`, table time), so that consumers place what it
   * carries (a failed handshake) where the flow ended, not in a window that closed long before.
   */
  private buildRecord(s: number, reason: ExportReason, final: boolean, nowUs: number): FlowRecord {
    const seq = ++this.sequence;
    const c2s = this.direction(s, 0);
    const s2c = this.direction(s, 1);
    let startUs: number;
    let endUs: number;
    if (c2s.packets && s2c.packets) {
      startUs = Math.min(c2s.firstUs, s2c.firstUs);
      endUs = Math.max(c2s.lastUs, s2c.lastUs);
    } else if (c2s.packets || s2c.packets) {
      const d = c2s.packets ? c2s : s2c;
      startUs = d.firstUs;
      endUs = d.lastUs;
    } else startUs = endUs = this.epochUs + Math.max(this.anchorBase + this.anchor[s]!, final ? nowUs : -Infinity);
    const rec: FlowRecord = {
      id: `${this.idPrefix}-${seq}`,
      schemaVersion: FLOW_RECORD_SCHEMA_VERSION,
      sequence: seq,
      flowId: this.flowIdOf(s),
      observation: this.observation,
      exportReason: reason,
      key: this.keyRecord(s),
      startUs,
      endUs,
      clientToServer: c2s,
      serverToClient: s2c,
      lossRate: 0,
    };
    const st = this.state[s]!;
    if (st & S_TCP) {
      const t = this.tcp;
      const hsState = t.handshakeState(s);
      const synOnly = final && hsState === HS_SYN;
      const rstAnswered = final && hsState === HS_RST_ANSWERED;
      const tcp: FlowRecord['tcp'] = {
        synOnly,
        rstAnswered,
        failed: synOnly || rstAnswered,
        clientToServer: this.tcpDirection(s, 0),
        serverToClient: this.tcpDirection(s, 1),
      };
      const hs = t.takeHandshake(s);
      if (hs) {
        tcp.handshakeClientUs = hs.clientUs;
        if (hs.complete) {
          tcp.handshakeServerUs = hs.serverUs;
          tcp.handshakeRttUs = hs.serverUs + hs.clientUs;
        }
      }
      const sts = t.tsRtt(s, 0);
      if (sts) tcp.serverTsRttSummary = sts;
      const cts = t.tsRtt(s, 1);
      if (cts) tcp.clientTsRttSummary = cts;
      const data = tcp.clientToServer.dataSegments + tcp.serverToClient.dataSegments;
      const lost =
        tcp.clientToServer.retransmits + tcp.clientToServer.gapFills + tcp.serverToClient.retransmits + tcp.serverToClient.gapFills;
      rec.lossRate = data > 0 ? lost / data : 0;
      rec.tcp = tcp;
    } else if (st & S_ECHO) {
      rec.icmp = this.icmp.record(s);
      rec.lossRate = rec.icmp.echoRequests > 0 ? rec.icmp.unanswered / rec.icmp.echoRequests : 0;
    }
    return rec;
  }
}
