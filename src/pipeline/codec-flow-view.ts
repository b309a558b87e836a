/**
 * The pipeline's decoder: a protobuf FlowRecord straight into a reused FlowView holding only what
 * cleaning and aggregation need (no FlowRecord object tree, no protobufjs message, no strings for
 * fields nobody reads). Strings that are read (agent, IPs, MACs) come from a StringInterner, so a
 * record of a known pair allocates no string at all.
 *
 * Untrusted bytes: decodeFlowView never throws on them; it returns a problem text (the record is
 * skipped and counted) or undefined when the record is good. It checks what decodeRecord checks
 * (field types and ranges, enum values, int64 within ±2^53, id not empty, a supported schema
 * version, an export reason, IP version 0/4/6, sketch arrays of equal length) and is stricter in
 * one way: a known field with the wrong wire type is refused. Unknown fields are skipped (a newer
 * writer's additions).
 */
import { FLOW_RECORD_SCHEMA_VERSION } from '../capture/flow-record.js';
import type { RttSketchData } from '../capture/rtt-sketch.js';

/** What the pipeline reads of a FlowRecord. Reused: valid until the next decode into it. */
export class FlowView {
  /** The id without its `-<sequence>` suffix, else observation.agentId (the duplicate-id rule's agent). */
  agent = '';
  sequence = 0;
  schemaVersion = 0;
  /** proto enum value (1..6). */
  exportReason = 0;
  agentId = '';
  // key
  vlans: number[] = [];
  /** proto enum value (0 none, 1 vxlan, 2 geneve, 3 gre). */
  tunnel = 0;
  /** -1: absent. */
  vni = -1;
  ipVersion = 0;
  protocol = 0;
  etherType = 0;
  clientIp = '';
  serverIp = '';
  clientPort = 0;
  serverPort = 0;
  clientMac = '';
  serverMac = '';
  /** textHash of clientIp, serverIp, clientMac, serverMac (from the interner: no hashing per record). */
  clientIpHash = EMPTY_TEXT_HASH;
  serverIpHash = EMPTY_TEXT_HASH;
  clientMacHash = EMPTY_TEXT_HASH;
  serverMacHash = EMPTY_TEXT_HASH;
  /** -1: absent. */
  icmpId = -1;
  icmpType = -1;
  icmpCode = -1;
  startUs = 0;
  endUs = 0;
  c2sPackets = 0;
  c2sBytes = 0;
  s2cPackets = 0;
  s2cBytes = 0;
  hasTcp = false;
  /** NaN: absent. */
  handshakeRttUs = NaN;
  tcpFailed = false;
  /** Both directions summed. */
  retransmits = 0;
  gapFills = 0;
  dataSegments = 0;
  hasIcmp = false;
  echoRequests = 0;
  echoReplies = 0;
  /** The echo RTT sketch when present (a fresh object: the aggregator may keep a merge of it). */
  icmpRtt: RttSketchData | undefined;

  reset(): void {
    this.agent = '';
    this.sequence = 0;
    this.schemaVersion = 0;
    this.exportReason = 0;
    this.agentId = '';
    this.vlans.length = 0;
    this.tunnel = 0;
    this.vni = -1;
    this.ipVersion = 0;
    this.protocol = 0;
    this.etherType = 0;
    this.clientIp = '';
    this.serverIp = '';
    this.clientPort = 0;
    this.serverPort = 0;
    this.clientMac = '';
    this.serverMac = '';
    this.clientIpHash = EMPTY_TEXT_HASH;
    this.serverIpHash = EMPTY_TEXT_HASH;
    this.clientMacHash = EMPTY_TEXT_HASH;
    this.serverMacHash = EMPTY_TEXT_HASH;
    this.icmpId = -1;
    this.icmpType = -1;
    this.icmpCode = -1;
    this.startUs = 0;
    this.endUs = 0;
    this.c2sPackets = 0;
    this.c2sBytes = 0;
    this.s2cPackets = 0;
    this.s2cBytes = 0;
    this.hasTcp = false;
    this.handshakeRttUs = NaN;
    this.tcpFailed = false;
    this.retransmits = 0;
    this.gapFills = 0;
    this.dataSegments = 0;
    this.hasIcmp = false;
    this.echoRequests = 0;
    this.echoReplies = 0;
    this.icmpRtt = undefined;
  }
}

/**
 * A 32-bit hash of a string's text (FNV-1a over its UTF-16 code units): what the cleaner and the
 * pipeline's flow-key cache hash strings with. The interner keeps it with each string, so a record
 * of known endpoints costs no hashing.
 */
export function textHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h | 0;
}

/** textHash(''). */
export const EMPTY_TEXT_HASH = 0x811c9dc5 | 0;

/** Bytes of a string the interner keeps at most (longer ones are decoded every time). */
const INTERN_MAX_BYTES = 64;
/** Entries per set of the interner (the oldest of a set is replaced). */
const INTERN_WAYS = 4;

/**
 * Strings from bytes, the same bytes giving the same string object without decoding again: a
 * set-associative table (FNV-1a over the bytes picks a set of 4 entries; the oldest entry of a set
 * is replaced), the bytes of each entry kept in one arena. Each string's textHash is kept with it:
 * `lastHash` after get().
 */
export class StringInterner {
  /** Per entry: INTERN_MAX_BYTES bytes of the key. */
  private readonly arena: Uint8Array;
  /** Per entry: the key's length + 1 (0: empty). */
  private readonly lengths: Uint8Array;
  private readonly fnv: Int32Array;
  private readonly values: string[];
  private readonly hashes: Int32Array;
  private readonly nextWay: Uint8Array;
  private readonly mask: number;
  /** textHash of the string the last get() returned. */
  lastHash = EMPTY_TEXT_HASH;

  constructor(slots = 16384) {
    let n = INTERN_WAYS;
    while (n < slots) n <<= 1;
    this.mask = n - INTERN_WAYS;
    this.arena = new Uint8Array(n * INTERN_MAX_BYTES);
    this.lengths = new Uint8Array(n);
    this.fnv = new Int32Array(n);
    this.values = new Array<string>(n).fill('');
    this.hashes = new Int32Array(n);
    this.nextWay = new Uint8Array(n / INTERN_WAYS);
  }

  get(b: Buffer, start: number, end: number): string {
    const len = end - start;
    if (len === 0) {
      this.lastHash = EMPTY_TEXT_HASH;
      return '';
    }
    if (len > INTERN_MAX_BYTES) {
      const long = b.toString('utf8', start, end);
      this.lastHash = textHash(long);
      return long;
    }
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
    const set = ((h ^ (h >>> 15)) << 2) & this.mask;
    const arena = this.arena;
    for (let way = 0; way < INTERN_WAYS; way++) {
      const slot = set + way;
      if (this.lengths[slot] !== len + 1 || this.fnv[slot] !== h) continue;
      let at = slot * INTERN_MAX_BYTES;
      let i = start;
      while (i < end && arena[at] === b[i]) {
        at++;
        i++;
      }
      if (i === end) {
        this.lastHash = this.hashes[slot]!;
        return this.values[slot]!;
      }
    }
    const s = b.toString('utf8', start, end);
    const way = this.nextWay[set / INTERN_WAYS]!;
    this.nextWay[set / INTERN_WAYS] = (way + 1) % INTERN_WAYS;
    const slot = set + way;
    arena.set(b.subarray(start, end), slot * INTERN_MAX_BYTES);
    this.lengths[slot] = len + 1;
    this.fnv[slot] = h;
    this.values[slot] = s;
    this.lastHash = this.hashes[slot] = textHash(s);
    return s;
  }
}

// ---- reading

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** A small cursor over one buffer; readers set `bad` instead of throwing. */
class Reader {
  b!: Buffer;
  pos = 0;
  end = 0;
  bad: string | undefined;

  varint32(): number {
    const b = this.b;
    let p = this.pos;
    if (p + 5 <= this.end) {
      // fast path: the whole varint is inside the buffer
      let c = b[p++]!;
      let v = c & 127;
      if (c < 128) {
        this.pos = p;
        return v;
      }
      c = b[p++]!;
      v |= (c & 127) << 7;
      if (c < 128) {
        this.pos = p;
        return v;
      }
      c = b[p++]!;
      v |= (c & 127) << 14;
      if (c < 128) {
        this.pos = p;
        return v;
      }
      c = b[p++]!;
      v |= (c & 127) << 21;
      if (c < 128) {
        this.pos = p;
        return v;
      }
      c = b[p++]!;
      if (c < 16) {
        this.pos = p;
        return v + c * 268435456;
      }
      this.pos = p;
      this.bad = 'varint beyond 32 bits';
      return 0;
    }
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      if (p >= this.end) {
        this.bad = 'truncated varint';
        return 0;
      }
      const c = b[p++]!;
      v += (c & 127) * mul;
      mul *= 128;
      if (c < 128) {
        this.pos = p;
        if (v > 0xffffffff) {
          this.bad = 'varint beyond 32 bits';
          return 0;
        }
        return v;
      }
    }
    this.pos = p;
    this.bad = 'varint beyond 32 bits';
    return 0;
  }

  /** A varint as an unsigned (signed: two's complement int64) number within ±2^53; else sets bad. */
  varint64(signed: boolean): number {
    const b = this.b;
    const start = this.pos;
    if (start + 8 <= this.end) {
      // fast path: up to 8 bytes (56 bits: every timestamp and counter) in two 28-bit halves
      let p = start;
      let c = b[p++]!;
      let lo = c & 127;
      if (c < 128) {
        this.pos = p;
        return lo;
      }
      c = b[p++]!;
      lo |= (c & 127) << 7;
      if (c < 128) {
        this.pos = p;
        return lo;
      }
      c = b[p++]!;
      lo |= (c & 127) << 14;
      if (c < 128) {
        this.pos = p;
        return lo;
      }
      c = b[p++]!;
      lo |= (c & 127) << 21;
      if (c < 128) {
        this.pos = p;
        return lo;
      }
      c = b[p++]!;
      let hi = c & 127;
      if (c >= 128) {
        c = b[p++]!;
        hi |= (c & 127) << 7;
        if (c >= 128) {
          c = b[p++]!;
          hi |= (c & 127) << 14;
          if (c >= 128) {
            c = b[p++]!;
            hi |= (c & 127) << 21;
          }
        }
      }
      if (c < 128) {
        this.pos = p;
        const v = lo + hi * 268435456;
        if (v > MAX_SAFE) this.bad = 'integer beyond 2^53';
        return v;
      }
      // 9 or 10 bytes: below
    }
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) {
        this.bad = 'truncated varint';
        return 0;
      }
      const c = b[this.pos++]!;
      v += (c & 127) * mul;
      mul *= 128;
      if (c < 128) {
        if (v > MAX_SAFE) this.bad = 'integer beyond 2^53';
        return v;
      }
    }
    // 9 or 10 bytes: large or negative; rare, exact through BigInt
    let x = 0n;
    this.pos = start;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.end) {
        this.bad = 'truncated varint';
        return 0;
      }
      const c = b[this.pos++]!;
      x |= BigInt(c & 127) << shift;
      if (c < 128) {
        const n = Number(signed ? BigInt.asIntN(64, x) : BigInt.asUintN(64, x));
        if (!Number.isSafeInteger(n)) this.bad = 'integer beyond 2^53';
        return n;
      }
    }
    this.bad = 'varint too long';
    return 0;
  }

  double(): number {
    if (this.pos + 8 > this.end) {
      this.bad = 'truncated double';
      return 0;
    }
    const v = this.b.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Length of a length-delimited field; checks it fits. */
  len(): number {
    const n = this.varint32();
    if (this.bad) return 0;
    if (this.pos + n > this.end) {
      this.bad = 'length runs past the end';
      return 0;
    }
    return n;
  }

  skip(wt: number): void {
    switch (wt) {
      case 0:
        while (this.pos < this.end) if (this.b[this.pos++]! < 128) return;
        this.bad = 'truncated varint';
        return;
      case 1:
        this.pos += 8;
        break;
      case 2: {
        const n = this.len();
        this.pos += n;
        return;
      }
      case 5:
        this.pos += 4;
        break;
      default:
        this.bad = `bad wire type ${wt}`;
        return;
    }
    if (this.pos > this.end) this.bad = 'truncated field';
  }

  /** Reads packed (or single unpacked) uint32 values into `out`. */
  uint32s(wt: number, out: number[]): void {
    if (wt === 0) {
      out.push(this.varint32());
      return;
    }
    if (wt !== 2) {
      this.bad = 'wrong wire type';
      return;
    }
    const n = this.len();
    const end = this.pos + n;
    const outer = this.end;
    this.end = end;
    while (this.pos < end && !this.bad) out.push(this.varint32());
    this.end = outer;
  }
}

const r = new Reader();

function expectWt(got: number, want: number): boolean {
  if (got === want) return true;
  r.bad = `wrong wire type for a known field (got ${got}, expected ${want})`;
  return false;
}

/** Enters the sub-message at the reader's position (after its tag): returns the outer end, or -1. */
function enter(wt: number): number {
  if (!expectWt(wt, 2)) return -1;
  const n = r.len();
  if (r.bad) return -1;
  const outer = r.end;
  r.end = r.pos + n;
  return outer;
}

/** Leaves a sub-message entered with enter(). */
function leave(outer: number): void {
  if (outer < 0) return;
  if (!r.bad && r.pos !== r.end) r.bad = 'sub-message length mismatch';
  r.end = outer;
}

function uint32Field(wt: number): number {
  return expectWt(wt, 0) ? r.varint32() : 0;
}

function boolField(wt: number): boolean {
  if (!expectWt(wt, 0)) return false;
  // protobufjs reads a bool as a varint != 0
  return r.varint64(false) !== 0;
}

function readObservation(v: FlowView, strings: StringInterner): void {
  while (r.pos < r.end && !r.bad) {
    const tag = r.varint32();
    const f = tag >>> 3;
    const wt = tag & 7;
    if (f === 1 && expectWt(wt, 2)) {
      const n = r.len();
      v.agentId = strings.get(r.b, r.pos, r.pos + n);
      r.pos += n;
    } else if (f >= 1 && f <= 4) {
      if (expectWt(wt, 2)) r.skip(2);
    } else r.skip(wt);
  }
}

function readKey(v: FlowView, strings: StringInterner): void {
  while (r.pos < r.end && !r.bad) {
    const tag = r.varint32();
    const f = tag >>> 3;
    const wt = tag & 7;
    switch (f) {
      case 1:
        r.uint32s(wt, v.vlans);
        break;
      case 2: {
        const t = uint32Field(wt);
        if (t > 3) r.bad = `unknown tunnel ${t}`;
        v.tunnel = t;
        break;
      }
      case 3:
        v.vni = uint32Field(wt);
        break;
      case 4:
        v.ipVersion = uint32Field(wt);
        break;
      case 5:
        v.protocol = uint32Field(wt);
        break;
      case 6:
        v.etherType = uint32Field(wt);
        break;
      case 7:
      case 8:
      case 11:
      case 12: {
        if (!expectWt(wt, 2)) break;
        const n = r.len();
        const s = strings.get(r.b, r.pos, r.pos + n);
        r.pos += n;
        if (f === 7) {
          v.clientIp = s;
          v.clientIpHash = strings.lastHash;
        } else if (f === 8) {
          v.serverIp = s;
          v.serverIpHash = strings.lastHash;
        } else if (f === 11) {
          v.clientMac = s;
          v.clientMacHash = strings.lastHash;
        } else {
          v.serverMac = s;
          v.serverMacHash = strings.lastHash;
        }
        break;
      }
      case 9:
        v.clientPort = uint32Field(wt);
        break;
      case 10:
        v.serverPort = uint32Field(wt);
        break;
      case 13:
        v.icmpId = uint32Field(wt);
        break;
      case 14:
        v.icmpType = uint32Field(wt);
        break;
      case 15:
        v.icmpCode = uint32Field(wt);
        break;
      case 16:
        boolField(wt);
        break;
      default:
        r.skip(wt);
    }
  }
}

function readDirection(v: FlowView, c2s: boolean): void {
  while (r.pos < r.end && !r.bad) {
    const tag = r.varint32();
    const f = tag >>> 3;
    const wt = tag & 7;
    if (f === 1 || f === 2) {
      if (!expectWt(wt, 0)) return;
      const n = r.varint64(false);
      if (c2s) {
        if (f === 1) v.c2sPackets = n;
        else v.c2sBytes = n;
      } else if (f === 1) v.s2cPackets = n;
      else v.s2cBytes = n;
    } else if (f === 3 || f === 4) {
      if (expectWt(wt, 0)) r.varint64(true);
    } else if (f === 5) uint32Field(wt);
    else r.skip(wt);
  }
}

function readTcpDirection(v: FlowView): void {
  while (r.pos < r.end && !r.bad) {
    const tag = r.varint32();
    const f = tag >>> 3;
    const wt = tag & 7;
    if (f >= 1 && f <= 8) {
      const n = uint32Field(wt);
      if (f === 1) v.dataSegments += n;
      else if (f === 2) v.retransmits += n;
      else if (f === 3) v.gapFills += n;
    } else r.skip(wt);
  }
}

function readSummary(): void {
  while (r.pos < r.end && !r.bad) {
    const tag = r.varint32();
    const f = tag >>> 3;
    const wt = tag & 7;
    if (f === 1) uint32Field(wt);
    else if (f >= 2 && f <= 4) {
      if (expectWt(wt, 1)) r.double();
    } else r.skip(wt);
  }
}

function readTcp(v: FlowView): void {
  v.hasTcp = true;
  while (r.pos < r.end && !r.bad) {
    const tag = r.varint32();
    const f = tag >>> 3;
    const wt = tag & 7;
    switch (f) {
      case 1:
        if (expectWt(wt, 1)) v.handshakeRttUs = r.double();
        break;
      case 2:
      case 3:
        if (expectWt(wt, 1)) r.double();
        break;
      case 4:
      case 5:
        boolField(wt);
        break;
      case 6:
        v.tcpFailed = boolField(wt);
        break;
      case 7:
      case 8:
        { const o = enter(wt); if (o >= 0) readTcpDirection(v); leave(o); }
        break;
      case 11:
      case 12:
        { const o = enter(wt); if (o >= 0) readSummary(); leave(o); }
        break;
      default:
        r.skip(wt);
    }
  }
}

function readSketch(): RttSketchData {
  const s: RttSketchData = { count: 0, minUs: 0, maxUs: 0, sumUs: 0, bucketDeltas: [], bucketCounts: [] };
  while (r.pos < r.end && !r.bad) {
    const tag = r.varint32();
    const f = tag >>> 3;
    const wt = tag & 7;
    switch (f) {
      case 1:
        s.count = uint32Field(wt);
        break;
      case 2:
        if (expectWt(wt, 1)) s.minUs = r.double();
        break;
      case 3:
        if (expectWt(wt, 1)) s.maxUs = r.double();
        break;
      case 4:
        if (expectWt(wt, 1)) s.sumUs = r.double();
        break;
      case 5:
        r.uint32s(wt, s.bucketDeltas);
        break;
      case 6:
        r.uint32s(wt, s.bucketCounts);
        break;
      default:
        r.skip(wt);
    }
  }
  if (!r.bad && s.bucketDeltas.length !== s.bucketCounts.length) r.bad = 'icmp.rtt: bucketDeltas and bucketCounts differ in length';
  return s;
}

function readIcmp(v: FlowView): void {
  v.hasIcmp = true;
  while (r.pos < r.end && !r.bad) {
    const tag = r.varint32();
    const f = tag >>> 3;
    const wt = tag & 7;
    if (f === 1) v.echoRequests = uint32Field(wt);
    else if (f === 2) v.echoReplies = uint32Field(wt);
    else if (f === 3) uint32Field(wt);
    else if (f === 4) {
      const o = enter(wt);
      if (o >= 0) v.icmpRtt = readSketch();
      leave(o);
    }
    else r.skip(wt);
  }
}

/**
 * Decodes the FlowRecord in bytes [start, end) of `b` into `v`. Returns undefined when the record
 * is good, else what is wrong with it (v then holds garbage).
 */
export function decodeFlowView(b: Buffer, start: number, end: number, v: FlowView, strings: StringInterner): string | undefined {
  v.reset();
  r.b = b;
  r.pos = start;
  r.end = end;
  r.bad = undefined;
  let idStart = -1;
  let idEnd = -1;
  while (r.pos < r.end && !r.bad) {
    const tag = r.varint32();
    const f = tag >>> 3;
    const wt = tag & 7;
    switch (f) {
      case 1:
        if (expectWt(wt, 2)) {
          const n = r.len();
          idStart = r.pos;
          idEnd = r.pos + n;
          r.pos += n;
        }
        break;
      case 2:
        v.schemaVersion = uint32Field(wt);
        break;
      case 3:
        if (expectWt(wt, 0)) v.sequence = r.varint64(false);
        break;
      case 4:
        if (expectWt(wt, 0)) r.varint64(false);
        break;
      case 5:
        { const o = enter(wt); if (o >= 0) readObservation(v, strings); leave(o); }
        break;
      case 6: {
        const e = uint32Field(wt);
        if (!r.bad && e > 6) r.bad = `unknown export reason ${e}`;
        v.exportReason = e;
        break;
      }
      case 7:
        { const o = enter(wt); if (o >= 0) readKey(v, strings); leave(o); }
        break;
      case 8:
        if (expectWt(wt, 0)) v.startUs = r.varint64(true);
        break;
      case 9:
        if (expectWt(wt, 0)) v.endUs = r.varint64(true);
        break;
      case 10:
        { const o = enter(wt); if (o >= 0) readDirection(v, true); leave(o); }
        break;
      case 11:
        { const o = enter(wt); if (o >= 0) readDirection(v, false); leave(o); }
        break;
      case 12:
        { const o = enter(wt); if (o >= 0) readTcp(v); leave(o); }
        break;
      case 13:
        { const o = enter(wt); if (o >= 0) readIcmp(v); leave(o); }
        break;
      case 14:
        if (expectWt(wt, 1)) r.double();
        break;
      default:
        if (f === 0) r.bad = 'field number 0';
        else r.skip(wt);
    }
  }
  if (r.bad) return r.bad;
  if (r.pos !== end) return 'record runs past its end';
  if (idStart < 0 || idEnd === idStart) return 'id: empty';
  if (v.schemaVersion !== FLOW_RECORD_SCHEMA_VERSION) return `schemaVersion: unsupported schema version ${v.schemaVersion} (supported: ${FLOW_RECORD_SCHEMA_VERSION})`;
  if (v.exportReason === 0) return 'exportReason: unspecified';
  if (v.ipVersion !== 0 && v.ipVersion !== 4 && v.ipVersion !== 6) return `key.ipVersion: not 0, 4 or 6 (value=${v.ipVersion})`;
  v.agent = agentOfId(b, idStart, idEnd, v.sequence, strings) ?? v.agentId;
  return undefined;
}

/** The id without its `-<sequence>` suffix (as Cleaner's agentKey), or undefined when it has none. */
function agentOfId(b: Buffer, start: number, end: number, sequence: number, strings: StringInterner): string | undefined {
  let dash = end - 1;
  while (dash >= start && b[dash] !== 0x2d) dash--;
  if (dash < start || dash === end - 1 || end - dash - 1 > 16) return undefined;
  if (b[dash + 1] === 0x30 && end - dash - 1 > 1) return undefined; // "-012" is not "-12"
  let n = 0;
  for (let i = dash + 1; i < end; i++) {
    const c = b[i]! - 0x30;
    if (c < 0 || c > 9) return undefined;
    n = n * 10 + c;
  }
  if (n !== sequence) return undefined;
  return strings.get(b, start, dash);
}
