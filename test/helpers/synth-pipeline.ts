/**
 * Synthetic FlowRecords for the pipeline tests and benchmark: deterministic (seeded), in event-time
 * order with a little jitter, over a set of endpoint pairs, with TCP and ICMP records and the odd
 * zero-packet record. Keyed like the producer keys the flows topic: the unordered IP pair.
 */
import { FLOW_RECORD_SCHEMA_VERSION, type FlowRecord, type PairWindow } from '../../src/capture/flow-record.js';
import { RttSketch } from '../../src/capture/rtt-sketch.js';
import { EndpointResolver } from '../../src/pipeline/endpoint-resolver.js';
import { SketchDistribution } from '../../src/pipeline/observation.js';
import { PairWindowAggregator } from '../../src/pipeline/pair-window.js';
import { pairObservationOf } from '../../src/pipeline/pipeline-core.js';
import { rng } from './rng.js';

export { rng };

export const SYNTH_T0_US = 1_700_000_000_000_000;

export interface SynthOptions {
  records: number;
  pairs?: number;
  /** Event-time span of all records, µs (default 10 s). */
  spanUs?: number;
  /** Out-of-order jitter of record end times, µs (default 0). */
  jitterUs?: number;
  seed?: number;
  agentId?: string;
  /** First sequence number (ids are `<agentId>-<sequence>`). */
  firstSequence?: number;
  /** Event time of the first record (default SYNTH_T0_US). */
  t0Us?: number;
}

export function pairIps(i: number): [string, string] {
  return [`10.${(i >> 8) & 255}.${i & 255}.1`, `10.${(i >> 8) & 255}.${i & 255}.2`];
}

/** The flows topic key of a record: the unordered endpoint pair. */
export function flowKey(r: FlowRecord): string {
  return [r.key.clientIp, r.key.serverIp].sort().join('|');
}

export function synthRecords(o: SynthOptions): FlowRecord[] {
  const rand = rng(o.seed ?? 1);
  const pairs = o.pairs ?? 20;
  const spanUs = o.spanUs ?? 10_000_000;
  const jitter = o.jitterUs ?? 0;
  const t0 = o.t0Us ?? SYNTH_T0_US;
  const agent = o.agentId ?? 'hv-synth';
  const out: FlowRecord[] = [];
  for (let i = 0; i < o.records; i++) {
    const seq = (o.firstSequence ?? 1) + i;
    const p = Math.floor(rand() * pairs);
    let [clientIp, serverIp] = pairIps(p);
    if (rand() < 0.3) [clientIp, serverIp] = [serverIp, clientIp];
    const endUs = Math.max(t0, Math.round(t0 + (i / Math.max(o.records, 1)) * spanUs - rand() * jitter));
    const startUs = endUs - Math.floor(rand() * 50_000);
    const kind = rand();
    const c2sPackets = kind < 0.02 ? 0 : 1 + Math.floor(rand() * 50);
    const s2cPackets = kind < 0.02 ? 0 : Math.floor(rand() * 40);
    const r: FlowRecord = {
      id: `${agent}-${seq}`,
      schemaVersion: FLOW_RECORD_SCHEMA_VERSION,
      sequence: seq,
      flowId: 1000 + (i % 5000),
      observation: { agentId: agent, bridge: 'br-int', mirror: 'mf-tap', interface: 'mf0' },
      exportReason: kind < 0.5 ? 'active-timeout' : 'idle-timeout',
      key: {
        vlans: [],
        tunnel: 'none',
        ipVersion: 4,
        protocol: kind < 0.9 ? 6 : 1,
        etherType: 0x0800,
        clientIp,
        serverIp,
        clientPort: kind < 0.9 ? 30000 + (i % 200) : 0,
        serverPort: kind < 0.9 ? 443 : 0,
        clientMac: '',
        serverMac: '',
        fragmentsOnly: false,
      },
      startUs,
      endUs,
      clientToServer: { packets: c2sPackets, bytes: c2sPackets * 700, firstUs: c2sPackets ? startUs : 0, lastUs: c2sPackets ? endUs : 0, tcpFlags: 0x18 },
      serverToClient: { packets: s2cPackets, bytes: s2cPackets * 90, firstUs: s2cPackets ? startUs + 10 : 0, lastUs: s2cPackets ? endUs : 0, tcpFlags: 0x10 },
      lossRate: 0,
    };
    if (kind < 0.9) {
      const failed = kind < 0.02 ? rand() < 0.5 : false;
      r.tcp = {
        ...(kind > 0.7 ? { handshakeRttUs: 100 + Math.floor(rand() * 900) } : {}),
        synOnly: failed,
        rstAnswered: false,
        failed,
        clientToServer: { dataSegments: c2sPackets, retransmits: rand() < 0.1 ? 1 : 0, gapFills: 0, outOfOrder: 0, dupAcks: 0, zeroWindows: 0, rsts: 0, synRetransmits: 0 },
        serverToClient: { dataSegments: s2cPackets, retransmits: 0, gapFills: rand() < 0.05 ? 1 : 0, outOfOrder: 0, dupAcks: 0, zeroWindows: 0, rsts: 0, synRetransmits: 0 },
      };
    } else {
      const s = new RttSketch();
      const n = Math.min(c2sPackets, 3);
      for (let k = 0; k < n; k++) s.add(200_000 + Math.floor(rand() * 800_000));
      r.icmp = { echoRequests: c2sPackets, echoReplies: s2cPackets, unanswered: 0, ...(n ? { rtt: s.toData() } : {}) };
    }
    out.push(r);
  }
  return out;
}

/** The embedded aggregation of records (one in-process aggregator, flushed at the end). */
export function embeddedPairs(records: FlowRecord[], windowUs: number, allowedLatenessUs = 0): PairWindow[] {
  const resolver = new EndpointResolver();
  const agg = new PairWindowAggregator({ windowUs, allowedLatenessUs, newDistribution: () => new SketchDistribution() });
  const out: PairWindow[] = [];
  for (const r of records) {
    const o = pairObservationOf(r, resolver);
    if (o) out.push(...agg.add(o));
  }
  out.push(...agg.flush());
  return out;
}

/** `<windowStartUs> <a>|<b>` of a PairWindow. */
export const pairWindowKey = (w: PairWindow): string => `${w.windowStartUs} ${w.a}|${w.b}`;

/** PairWindows by (window, pair), without their ids (which differ between runs of different code). */
export function byPairWindow(ws: PairWindow[]): Map<string, Omit<PairWindow, 'id'>> {
  const m = new Map<string, Omit<PairWindow, 'id'>>();
  for (const w of ws) {
    const { id: _id, ...rest } = w;
    m.set(pairWindowKey(w), rest);
  }
  return m;
}

/** Sorted `(window, pair)` keys, with duplicates kept (so a doubled window shows). */
export function pairWindowKeys(ws: PairWindow[]): string[] {
  return ws.map(pairWindowKey).sort();
}
