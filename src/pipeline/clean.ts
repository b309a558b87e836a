/**
 * Cleaning of flow records before aggregation (pure; event time comes with the records).
 *
 * Drops, counted by reason:
 *   (caller's)      records that failed decoding or validation: the caller passes the reason to
 *                   reject() / rejectError(); they never reach push().
 *   capture-port    the collector's own traffic: a record whose client or server MAC is one of the
 *                   capture / internal ports' MACs.
 *   duplicate-id    the same record again (a producer retry, a spool replayed after a restart).
 *                   A record id is `<agent>-<sequence>`; per agent (the id without its sequence)
 *                   the cleaner keeps the highest sequence and a bitmap of the `sequenceWindow`
 *                   sequences below it (8 KiB per agent by default). A sequence below that window
 *                   cannot be checked: it is kept and counted in `staleSequences`.
 *   duplicate-flow  the same flow reported by two agents (both hypervisors of a VM pair mirror it).
 *                   "The same flow": equal crossAgentFlowIdentity and overlapping time spans
 *                   [startUs, endUs] (± overlapSlackUs for clock skew between hypervisors) from
 *                   different agents. The identity is flowKeyIdentity (observation.ts) without
 *                   what differs between two hypervisors' views of one connection: VLAN tags (OVS
 *                   local VLANs are per host), MACs of IP flows (a routed flow has the gateway's MAC
 *                   on each side) and the tunnel. So it is protocol + the unordered pair of
 *                   (IP, port) (+ ICMP id/type/code) for IP, the MAC pair + EtherType + VLANs for
 *                   non-IP frames. (Two tenants with overlapping address space, the same 5-tuple
 *                   at the same time, seen by different agents, would be taken for one flow.)
 *                   The kept observation is the one from the agent local to the flow's client
 *                   (inventory: agent → its VMs' MACs), else the one from the lowest agent id.
 *
 * Deciding duplicate-flow in a stream: a record from agent X is released at once unless the
 * inventory names another agent that may report the same flow and would rank better (the agent
 * local to the client, or a lower agent id local to the server). Then it is held until event time
 * passes its end + holdUs: if the better agent's overlapping record arrives meanwhile, the held one
 * is dropped; otherwise it is released. Once a record is released, any overlapping record of the
 * same flow from another agent is dropped, whatever its rank — a flow is never counted twice. The
 * aggregator downstream should allow lateness of at least holdUs.
 *
 * Flows are kept by a 30-bit hash of their identity's fields (no identity text per record: the
 * pipeline's decoder hands over the hashes of its interned strings), each entry holding the whole
 * identity, compared field by field; flows whose hashes collide share an entry as a short chain.
 *
 * State is bounded (aging-map.ts): agents (maxAgents; the least recently seen half goes first),
 * flow spans (maxFlows; forgotten between 1× and 2× flowMemoryUs of event time after their last
 * record), held records (maxHeld; beyond it the earliest due is released early, counted in
 * `heldOverflow`).
 */
import type { FlowRecord } from '../capture/flow-record.js';
import { AgingMap } from './aging-map.js';
import { CodecError } from './codec-error.js';
import { textHash, type FlowView } from './codec-flow-view.js';

export type CleanDropReason = 'capture-port' | 'duplicate-id' | 'duplicate-flow';

export interface CleanerOptions {
  /** Agent id → MACs of the VMs on its hypervisor (the agent is "local" to those MACs). */
  localMacs?: ReadonlyMap<string, Iterable<string>> | Readonly<Record<string, Iterable<string>>>;
  /** MACs of the capture / internal ports: their traffic is the collector's own. */
  capturePortMacs?: Iterable<string>;
  /** Sequences per agent checked for repeats below the highest one. Default 65536 (multiple of 32). */
  sequenceWindow?: number;
  /** Agents tracked for duplicate ids. Default 10,000. */
  maxAgents?: number;
  /** How long (event time) a record that a better-ranked agent may also report waits. Default 5 s. */
  holdUs?: number;
  /** Clock skew between hypervisors tolerated when matching spans. Default 1 s. */
  overlapSlackUs?: number;
  /** How long (event time) released spans of a flow are remembered. Default 120 s. */
  flowMemoryUs?: number;
  /** Flows remembered. Default 1,000,000. */
  maxFlows?: number;
  /** Records held at most. Default 1,000,000. */
  maxHeld?: number;
}

export interface CleanerCounters {
  /** Records released to aggregation. */
  kept: number;
  /** Dropped or rejected records by reason. */
  dropped: Record<string, number>;
  /** Kept records whose sequence was too far below the agent's highest to be checked. */
  staleSequences: number;
  /** Held records released before their time because maxHeld was reached. */
  heldOverflow: number;
}

interface SequenceWindow {
  highest: number;
  bits: Uint32Array;
}

interface Span {
  agent: string;
  startUs: number;
  endUs: number;
}

interface Held {
  record: FlowRecord;
  agent: string;
  /** The flow it belongs to (its identity: the flow is looked up again on release). */
  flow: FlowState;
  releaseAtUs: number;
  dropped: boolean;
}

/**
 * The fields of crossAgentFlowIdentity. IP flows: protocol, the two (IP, port) sides in either
 * order, ICMP id/type/code (-1 when absent; all three -1 when id and type are). Non-IP frames
 * (`l2`): EtherType, VLANs, the two MACs in either order (ports 0, ICMP fields -1).
 */
interface Identity {
  hash: number;
  l2: boolean;
  /** Protocol, or the EtherType of a non-IP frame. */
  proto: number;
  a: string;
  aPort: number;
  b: string;
  bPort: number;
  /** Non-IP frames only (else empty). */
  vlans: readonly number[];
  icmpId: number;
  icmpType: number;
  icmpCode: number;
}

interface FlowState extends Identity {
  released: Span[];
  held: Held[];
  /** Another flow whose identity hash is the same (a chain in one map entry). */
  next: FlowState | undefined;
}

const NO_VLANS: readonly number[] = Object.freeze([]) as readonly number[];

/** One side of a flow in the identity hash: its text's hash and its port. */
function sideHash(text: number, port: number): number {
  let h = Math.imul(text ^ Math.imul(port + 1, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  return Math.imul(h, 0xc2b2ae35) | 0;
}

/**
 * Fills `id` with a record's identity; `*Hash` are the textHash of the strings. Returns `id`.
 * The hash is the same whichever side is the client.
 */
function identityInto(
  id: Identity,
  ipVersion: number,
  protocol: number,
  etherType: number,
  vlans: readonly number[],
  clientIp: string,
  clientIpHash: number,
  clientPort: number,
  serverIp: string,
  serverIpHash: number,
  serverPort: number,
  clientMac: string,
  clientMacHash: number,
  serverMac: string,
  serverMacHash: number,
  icmpId: number,
  icmpType: number,
  icmpCode: number,
): Identity {
  let x: number;
  let y: number;
  let h: number;
  if (ipVersion !== 4 && ipVersion !== 6) {
    id.l2 = true;
    id.proto = etherType;
    id.a = clientMac;
    id.b = serverMac;
    id.aPort = id.bPort = 0;
    id.vlans = vlans;
    id.icmpId = id.icmpType = id.icmpCode = -1;
    x = sideHash(clientMacHash, 0);
    y = sideHash(serverMacHash, 0);
    h = Math.imul(etherType + 0x10000, 0x27d4eb2f);
    for (let i = 0; i < vlans.length; i++) h = Math.imul(h ^ vlans[i]!, 0x165667b1);
  } else {
    id.l2 = false;
    id.proto = protocol;
    id.a = clientIp;
    id.aPort = clientPort;
    id.b = serverIp;
    id.bPort = serverPort;
    id.vlans = NO_VLANS;
    const noIcmp = icmpId < 0 && icmpType < 0;
    id.icmpId = icmpId < 0 ? -1 : icmpId;
    id.icmpType = icmpType < 0 ? -1 : icmpType;
    id.icmpCode = noIcmp || icmpCode < 0 ? -1 : icmpCode;
    x = sideHash(clientIpHash, clientPort);
    y = sideHash(serverIpHash, serverPort);
    h = Math.imul(protocol + 1, 0x27d4eb2f) ^ Math.imul(id.icmpId + 2, 0x165667b1) ^ Math.imul(id.icmpType + 3, 0x9e3779b1) ^ Math.imul(id.icmpCode + 4, 0x85ebca6b);
  }
  const lo = x < y ? x : y;
  const hi = x < y ? y : x;
  h = Math.imul(h ^ lo, 0xcc9e2d51);
  h = Math.imul(h ^ (h >>> 15) ^ hi, 0x1b873593);
  h ^= h >>> 16;
  id.hash = h & 0x3fffffff; // a small integer: cheap map keys
  return id;
}

function sameIdentity(x: Identity, y: Identity): boolean {
  if (x.proto !== y.proto || x.l2 !== y.l2 || x.icmpId !== y.icmpId || x.icmpType !== y.icmpType || x.icmpCode !== y.icmpCode) return false;
  if (x.l2) {
    if (x.vlans.length !== y.vlans.length) return false;
    for (let i = 0; i < x.vlans.length; i++) if (x.vlans[i] !== y.vlans[i]) return false;
  }
  if (x.a === y.a && x.aPort === y.aPort && x.b === y.b && x.bPort === y.bPort) return true;
  return x.a === y.b && x.aPort === y.bPort && x.b === y.a && x.bPort === y.aPort;
}

const newIdentity = (): Identity => ({ hash: 0, l2: false, proto: 0, a: '', aPort: 0, b: '', bPort: 0, vlans: NO_VLANS, icmpId: -1, icmpType: -1, icmpCode: -1 });

/** The held list of a flow that holds nothing (shared: most flows never hold a record). */
const NO_HELD: Held[] = [];

/** Spans remembered per flow (the most recent). */
const MAX_SPANS = 8;

const normalizeMac = (mac: string): string => mac.trim().toLowerCase().replace(/-/g, ':');

/** What makes two agents' records one flow (with overlapping time); see the header. */
export function crossAgentFlowIdentity(r: FlowRecord): string {
  const k = r.key;
  return crossAgentIdentityOf(
    k.ipVersion,
    k.protocol,
    k.etherType,
    k.vlans,
    k.clientIp,
    k.clientPort,
    k.serverIp,
    k.serverPort,
    k.clientMac,
    k.serverMac,
    k.icmpId ?? -1,
    k.icmpType ?? -1,
    k.icmpCode ?? -1,
  );
}

/** crossAgentFlowIdentity from the fields (the pipeline's FlowView); icmp fields: -1 when absent. */
export function crossAgentIdentityOf(
  ipVersion: number,
  protocol: number,
  etherType: number,
  vlans: readonly number[],
  clientIp: string,
  clientPort: number,
  serverIp: string,
  serverPort: number,
  clientMac: string,
  serverMac: string,
  icmpId: number,
  icmpType: number,
  icmpCode: number,
): string {
  if (ipVersion !== 4 && ipVersion !== 6) {
    const [x, y] = clientMac <= serverMac ? [clientMac, serverMac] : [serverMac, clientMac];
    return `L2|${etherType}|${vlans.join('.')}|${x}|${y}`;
  }
  const icmp = icmpId < 0 && icmpType < 0 ? '' : `|${icmpId < 0 ? '' : icmpId}|${icmpType < 0 ? '' : icmpType}|${icmpCode < 0 ? '' : icmpCode}`;
  // the two sides in a canonical order (by IP, then port), without building and comparing side strings
  const clientFirst = clientIp !== serverIp ? clientIp < serverIp : clientPort <= serverPort;
  return clientFirst ? `${protocol}|${clientIp}|${clientPort}|${serverIp}|${serverPort}${icmp}` : `${protocol}|${serverIp}|${serverPort}|${clientIp}|${clientPort}${icmp}`;
}

/** The drop reason for an error of decodeRecord / describeMessage. */
export function rejectReasonOf(err: unknown): string {
  if (err instanceof CodecError) {
    const field = err.details?.field;
    if (field === 'schemaVersion' || /schema version/.test(err.message)) return 'schema-version';
    if (/unknown message schema|unknown content type/.test(err.message)) return 'wrong-schema';
    return typeof field === 'string' ? 'invalid' : 'malformed';
  }
  return 'malformed';
}

export class Cleaner {
  private macAgent = new Map<string, string>();
  private capturePortMacs = new Set<string>();
  private readonly agents: AgingMap<string, SequenceWindow>;
  /** Identity hash → flow (and the flows whose identities hash alike, chained). */
  private readonly flows: AgingMap<number, FlowState>;
  /** The identity of the record being judged (reused). */
  private readonly probe = newIdentity();
  /** The map entry findFlow last looked at (the chain a new flow joins). */
  private foundHead: FlowState | undefined;
  private readonly heap: Held[] = [];
  private readonly droppedCounts = new Map<string, number>();
  private kept = 0;
  private staleSequences = 0;
  private heldOverflow = 0;
  private watermarkUs = -Infinity;
  private readonly sequenceWindow: number;
  private readonly holdUs: number;
  private readonly slackUs: number;
  private readonly maxHeld: number;

  constructor(opts: CleanerOptions = {}) {
    this.sequenceWindow = Math.max(32, Math.ceil((opts.sequenceWindow ?? 65536) / 32) * 32);
    this.agents = new AgingMap(Infinity, opts.maxAgents ?? 10_000);
    this.holdUs = opts.holdUs ?? 5e6;
    this.slackUs = opts.overlapSlackUs ?? 1e6;
    this.flows = new AgingMap(Math.max(opts.flowMemoryUs ?? 120e6, this.holdUs + 2 * this.slackUs), opts.maxFlows ?? 1_000_000);
    this.maxHeld = opts.maxHeld ?? 1_000_000;
    if (opts.localMacs) this.setLocalMacs(opts.localMacs);
    if (opts.capturePortMacs) this.setCapturePortMacs(opts.capturePortMacs);
  }

  /** Replaces the inventory: agent id → MACs of its VMs. */
  setLocalMacs(localMacs: ReadonlyMap<string, Iterable<string>> | Readonly<Record<string, Iterable<string>>>): void {
    const m = new Map<string, string>();
    const entries = localMacs instanceof Map ? localMacs.entries() : Object.entries(localMacs);
    for (const [agent, macs] of entries) for (const mac of macs as Iterable<string>) m.set(normalizeMac(mac), agent as string);
    this.macAgent = m;
  }

  /** Replaces the set of capture / internal port MACs. */
  setCapturePortMacs(macs: Iterable<string>): void {
    this.capturePortMacs = new Set([...macs].map(normalizeMac));
  }

  /** Counts a record that never became a FlowRecord (decode or validation failure) under `reason`. */
  reject(reason: string, n = 1): void {
    this.droppedCounts.set(reason, (this.droppedCounts.get(reason) ?? 0) + n);
  }

  /** Counts a decode error (see rejectReasonOf); returns the reason used. */
  rejectError(err: unknown): string {
    const reason = rejectReasonOf(err);
    this.reject(reason);
    return reason;
  }

  get counters(): CleanerCounters {
    return { kept: this.kept, dropped: Object.fromEntries(this.droppedCounts), staleSequences: this.staleSequences, heldOverflow: this.heldOverflow };
  }

  /** Records waiting for a possibly better-ranked duplicate. */
  get heldCount(): number {
    let n = 0;
    for (const h of this.heap) if (!h.dropped) n++;
    return n;
  }

  get agentCount(): number {
    return this.agents.size;
  }

  /** Flows remembered. */
  get flowCount(): number {
    let n = 0;
    for (const head of this.flows.values()) for (let fs: FlowState | undefined = head; fs; fs = fs.next) n++;
    return n;
  }

  /** The flow with this identity (`touch`: marks it used), or undefined. */
  private findFlow(id: Identity, touch: boolean): FlowState | undefined {
    let fs = touch ? this.flows.get(id.hash) : this.flows.peek(id.hash);
    this.foundHead = fs;
    while (fs !== undefined && !sameIdentity(fs, id)) fs = fs.next;
    return fs;
  }

  /** Remembers a new flow with this identity, right after findFlow(id, true) did not find it. */
  private addFlow(id: Identity, released: Span[], held: Held[]): FlowState {
    const fs: FlowState = {
      hash: id.hash,
      l2: id.l2,
      proto: id.proto,
      a: id.a,
      aPort: id.aPort,
      b: id.b,
      bPort: id.bPort,
      vlans: id.vlans.length === 0 ? NO_VLANS : id.vlans.slice(),
      icmpId: id.icmpId,
      icmpType: id.icmpType,
      icmpCode: id.icmpCode,
      released,
      held,
      next: this.foundHead,
    };
    this.flows.setAfterGet(id.hash, fs);
    return fs;
  }

  /** The identity of a FlowRecord, in the reused probe. */
  private identityOfRecord(r: FlowRecord): Identity {
    const k = r.key;
    const ip = k.ipVersion === 4 || k.ipVersion === 6;
    return identityInto(
      this.probe,
      k.ipVersion,
      k.protocol,
      k.etherType,
      k.vlans,
      k.clientIp,
      ip ? textHash(k.clientIp) : 0,
      k.clientPort,
      k.serverIp,
      ip ? textHash(k.serverIp) : 0,
      k.serverPort,
      k.clientMac,
      ip ? 0 : textHash(k.clientMac),
      k.serverMac,
      ip ? 0 : textHash(k.serverMac),
      k.icmpId ?? -1,
      k.icmpType ?? -1,
      k.icmpCode ?? -1,
    );
  }

  /** Judges one decoded record; returns the records to keep now (it, and/or held ones now due). */
  push(r: FlowRecord): FlowRecord[] {
    const out: FlowRecord[] = [];
    if (this.isCapturePort(r)) this.drop('capture-port');
    else if (this.isRepeatedId(this.agentKey(r), r.sequence)) this.drop('duplicate-id');
    else this.judgeFlow(r, out);
    if (r.endUs > this.watermarkUs) this.watermarkUs = r.endUs;
    this.releaseDue(out);
    this.flows.advance(this.watermarkUs);
    return out;
  }

  /**
   * push() for a decoded record that is not a FlowRecord object (the pipeline's FlowView), when no
   * agent inventory is set (so no record is ever held): true to keep it, false when it is dropped
   * (counted). The duplicate-id rule's agent is `v.agent` (the id without its `-<sequence>`
   * suffix, else the observation's agent id).
   */
  judge(v: FlowView): boolean {
    if (this.macAgent.size > 0) throw new Error('Cleaner.judge: not with an agent inventory (records may be held); use push()');
    const clientMac = v.clientMac;
    const serverMac = v.serverMac;
    const startUs = v.startUs;
    const endUs = v.endUs;
    let keep = false;
    if (this.capturePortMacs.size > 0 && ((clientMac !== '' && this.capturePortMacs.has(this.macOf(clientMac))) || (serverMac !== '' && this.capturePortMacs.has(this.macOf(serverMac))))) {
      this.drop('capture-port');
    } else if (this.isRepeatedId(v.agent, v.sequence)) {
      this.drop('duplicate-id');
    } else {
      const agentId = v.agentId;
      const id = identityInto(
        this.probe,
        v.ipVersion,
        v.protocol,
        v.etherType,
        v.vlans,
        v.clientIp,
        v.clientIpHash,
        v.clientPort,
        v.serverIp,
        v.serverIpHash,
        v.serverPort,
        clientMac,
        v.clientMacHash,
        serverMac,
        v.serverMacHash,
        v.icmpId,
        v.icmpType,
        v.icmpCode,
      );
      let fs = this.findFlow(id, true);
      if (fs) {
        const slack = this.slackUs;
        for (const sp of fs.released) {
          if (sp.agent !== agentId && sp.startUs - slack <= endUs && startUs - slack <= sp.endUs) {
            this.drop('duplicate-flow');
            fs = undefined;
            break;
          }
        }
        if (fs) {
          for (const h of fs.held) {
            if (h.dropped || h.agent === agentId || !(h.record.startUs - slack <= endUs && startUs - slack <= h.record.endUs)) continue;
            this.drop('duplicate-flow');
            fs = undefined;
            break;
          }
        }
        if (fs) {
          this.rememberSpan(fs, agentId, startUs, endUs);
          keep = true;
        }
      } else {
        // a new flow: its first span inline (one allocation fewer per flow)
        this.addFlow(id, [{ agent: agentId, startUs, endUs }], NO_HELD);
        keep = true;
      }
      if (keep) this.kept++;
    }
    if (endUs > this.watermarkUs) this.watermarkUs = endUs;
    if (this.heap.length) throw new Error('Cleaner.judge: records are held (an inventory was set before)');
    this.flows.advance(this.watermarkUs);
    return keep;
  }

  /** Moves event time forward (an idle partition); returns held records now due. */
  advance(nowUs: number): FlowRecord[] {
    const out: FlowRecord[] = [];
    if (nowUs > this.watermarkUs) this.watermarkUs = nowUs;
    this.releaseDue(out);
    this.flows.advance(this.watermarkUs);
    return out;
  }

  /** Releases every held record (end of a replay, shutdown). */
  flush(): FlowRecord[] {
    const out: FlowRecord[] = [];
    while (this.heap.length) this.release(this.popHeap(), out);
    return out;
  }

  // ---- rules

  private drop(reason: CleanDropReason): void {
    this.droppedCounts.set(reason, (this.droppedCounts.get(reason) ?? 0) + 1);
  }

  private macOf(mac: string): string {
    return /[A-F-]/.test(mac) ? normalizeMac(mac) : mac;
  }

  private isCapturePort(r: FlowRecord): boolean {
    if (this.capturePortMacs.size === 0) return false;
    return this.capturePortMacs.has(this.macOf(r.key.clientMac)) || this.capturePortMacs.has(this.macOf(r.key.serverMac));
  }

  /** The agent part of the record id (`<agent>-<sequence>`), else observation.agentId. */
  private agentKey(r: FlowRecord): string {
    const suffix = `-${r.sequence}`;
    return r.id.endsWith(suffix) ? r.id.slice(0, -suffix.length) : r.observation.agentId;
  }

  /** True when this (agent, sequence) was seen; marks it seen otherwise. */
  private isRepeatedId(agent: string, seq: number): boolean {
    const size = this.sequenceWindow;
    let w = this.agents.get(agent);
    if (!w) {
      this.agents.set(agent, (w = { highest: seq, bits: new Uint32Array(size / 32) }));
      setBit(w.bits, seq % size);
      return false;
    }
    if (seq > w.highest) {
      if (seq - w.highest >= size) w.bits.fill(0);
      else for (let s = w.highest + 1; s <= seq; s++) clearBit(w.bits, s % size);
      w.highest = seq;
      setBit(w.bits, seq % size);
      return false;
    }
    if (w.highest - seq >= size) {
      this.staleSequences++;
      return false;
    }
    const i = seq % size;
    if (testBit(w.bits, i)) return true;
    setBit(w.bits, i);
    return false;
  }

  private judgeFlow(r: FlowRecord, out: FlowRecord[]): void {
    const agent = r.observation.agentId;
    const id = this.identityOfRecord(r);
    const clientAgent = r.key.clientMac ? this.macAgent.get(this.macOf(r.key.clientMac)) : undefined;
    let fs = this.findFlow(id, true);
    if (fs) {
      for (const s of fs.released) {
        if (s.agent !== agent && this.overlaps(s, r)) {
          this.drop('duplicate-flow');
          return;
        }
      }
      for (const h of fs.held) {
        if (h.dropped || h.agent === agent || !this.overlaps({ startUs: h.record.startUs, endUs: h.record.endUs }, r)) continue;
        if (ranksBefore(agent, h.agent, clientAgent)) {
          h.dropped = true;
          this.drop('duplicate-flow');
        } else {
          this.drop('duplicate-flow');
          return;
        }
      }
      if (fs.held.length) fs.held = fs.held.filter((h) => !h.dropped);
    } else {
      fs = this.addFlow(id, [], NO_HELD);
    }

    const serverAgent = r.key.serverMac ? this.macAgent.get(this.macOf(r.key.serverMac)) : undefined;
    const mayBeBeaten =
      (clientAgent !== undefined && clientAgent !== agent) || (serverAgent !== undefined && serverAgent !== agent && ranksBefore(serverAgent, agent, clientAgent));
    if (!mayBeBeaten) {
      this.remember(fs, agent, r);
      this.kept++;
      out.push(r);
      return;
    }
    const h: Held = { record: r, agent, flow: fs, releaseAtUs: r.endUs + this.holdUs, dropped: false };
    if (fs.held === NO_HELD) fs.held = [];
    fs.held.push(h);
    this.pushHeap(h);
    if (this.heap.length > this.maxHeld) {
      this.heldOverflow++;
      this.release(this.popHeap(), out);
    }
  }

  private overlaps(s: { startUs: number; endUs: number }, r: FlowRecord): boolean {
    return s.startUs - this.slackUs <= r.endUs && r.startUs - this.slackUs <= s.endUs;
  }

  private remember(fs: FlowState, agent: string, r: FlowRecord): void {
    this.rememberSpan(fs, agent, r.startUs, r.endUs);
  }

  /**
   * Remembers a released span. A span of the same agent as the last one, less than 2 × slack away
   * from it, is merged into it: a record of another agent overlaps the merged span (± slack) exactly
   * when it overlaps one of the two, so nothing changes but the memory (the interim records of a
   * long flow stay one span instead of a list).
   */
  private rememberSpan(fs: FlowState, agent: string, startUs: number, endUs: number): void {
    const last = fs.released[fs.released.length - 1];
    if (last && last.agent === agent && Math.max(last.startUs, startUs) - Math.min(last.endUs, endUs) <= 2 * this.slackUs) {
      if (startUs < last.startUs) last.startUs = startUs;
      if (endUs > last.endUs) last.endUs = endUs;
      return;
    }
    fs.released.push({ agent, startUs, endUs });
    if (fs.released.length > MAX_SPANS) fs.released.shift();
  }

  private release(h: Held, out: FlowRecord[]): void {
    if (h.dropped) return;
    h.dropped = true; // no longer pending
    // the flow as remembered now (it may have been forgotten, or forgotten and seen again)
    const fs = this.findFlow(h.flow, false);
    if (fs) {
      fs.held = fs.held.filter((x) => x !== h);
      this.remember(fs, h.agent, h.record);
    }
    this.kept++;
    out.push(h.record);
  }

  private releaseDue(out: FlowRecord[]): void {
    while (this.heap.length && this.heap[0]!.releaseAtUs <= this.watermarkUs) this.release(this.popHeap(), out);
  }

  // ---- binary min-heap of held records by releaseAtUs

  private pushHeap(h: Held): void {
    const a = this.heap;
    a.push(h);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.releaseAtUs <= a[i]!.releaseAtUs) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }

  private popHeap(): Held {
    const a = this.heap;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]!.releaseAtUs < a[m]!.releaseAtUs) m = l;
        if (r < a.length && a[r]!.releaseAtUs < a[m]!.releaseAtUs) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

/** Whether agent x's observation is preferred over agent y's: the client's local agent first, else the lower id. */
export function ranksBefore(x: string, y: string, clientAgent: string | undefined): boolean {
  if (x === y) return false;
  if (x === clientAgent) return true;
  if (y === clientAgent) return false;
  return x < y;
}

const setBit = (b: Uint32Array, i: number): void => {
  b[i >>> 5]! |= 1 << (i & 31);
};
const clearBit = (b: Uint32Array, i: number): void => {
  b[i >>> 5]! &= ~(1 << (i & 31));
};
const testBit = (b: Uint32Array, i: number): boolean => (b[i >>> 5]! & (1 << (i & 31))) !== 0;
