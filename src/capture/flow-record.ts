/**
 * FlowRecord and PairWindow as TypeScript values, plus their canonical proto3 JSON mapping.
 *
 * The shapes mirror proto/mirrorflow.proto (message FlowRecord / PairWindow) field by field, with
 * the proto3 JSON names (lowerCamelCase). Differences from the wire form:
 *   - 64-bit integers are JS numbers here (µs timestamps and counters stay below 2^53);
 *     toProto3Json() writes them as decimal strings.
 *   - enums are short strings here ('idle-timeout', 'vxlan'); JSON uses the proto value names.
 *   - proto3 `optional` fields are `?:` properties (absent = not present).
 *
 * Interim records (exportReason 'active-timeout') carry DELTAS since the previous record of the
 * same flow (same flowId): packets, bytes, tcpFlags, all TCP/ICMP counters, sketches and summaries
 * cover only that record's span, and the handshake figures appear once, in the record where the
 * handshake completed. Summing the records of a flow gives its totals. start/end and first/last are the
 * packet times within the record. Every flow ends with exactly one non-interim record.
 */
import { RttSketch, type RttSketchData } from './rtt-sketch.js';

/** 2: TcpMetrics.server/client_ts_rtt (RttSketch, fields 9/10) became *_ts_rtt_summary (RttSummary, 11/12). */
export const FLOW_RECORD_SCHEMA_VERSION = 2;
export const PAIR_WINDOW_SCHEMA_VERSION = 1;

export type ExportReason = 'idle-timeout' | 'active-timeout' | 'end-fin' | 'end-rst' | 'evicted' | 'flush';
export const EXPORT_REASONS: readonly ExportReason[] = ['idle-timeout', 'active-timeout', 'end-fin', 'end-rst', 'evicted', 'flush'];
export type TunnelName = 'none' | 'vxlan' | 'geneve' | 'gre';
export const TUNNEL_NAMES: readonly TunnelName[] = ['none', 'vxlan', 'geneve', 'gre'];

export interface ObservationPoint {
  agentId: string;
  bridge: string;
  mirror: string;
  interface: string;
}

export interface FlowKeyRecord {
  vlans: number[];
  tunnel: TunnelName;
  vni?: number;
  ipVersion: number;
  protocol: number;
  etherType: number;
  clientIp: string;
  serverIp: string;
  clientPort: number;
  serverPort: number;
  clientMac: string;
  serverMac: string;
  icmpId?: number;
  icmpType?: number;
  icmpCode?: number;
  fragmentsOnly: boolean;
}

export interface DirectionCounters {
  packets: number;
  bytes: number;
  /** 0 when the direction has no packet in this record. */
  firstUs: number;
  lastUs: number;
  tcpFlags: number;
}

export interface TcpDirectionRecord {
  dataSegments: number;
  retransmits: number;
  gapFills: number;
  outOfOrder: number;
  dupAcks: number;
  zeroWindows: number;
  rsts: number;
  synRetransmits: number;
}

/**
 * Count, min, max and sum of latency samples (µs) — what a flow keeps per direction for its TCP
 * timestamp RTT: a few bytes per flow at a million concurrent flows, where a mergeable sketch per
 * flow costs too much. The mean is sumUs / count; summaries add up (count, sum) and combine
 * (min, max) across records and flows.
 */
export interface RttSummary {
  count: number;
  minUs: number;
  maxUs: number;
  sumUs: number;
}

export interface TcpRecord {
  handshakeRttUs?: number;
  handshakeServerUs?: number;
  handshakeClientUs?: number;
  synOnly: boolean;
  rstAnswered: boolean;
  failed: boolean;
  clientToServer: TcpDirectionRecord;
  serverToClient: TcpDirectionRecord;
  /** TCP timestamps: client TSval seen → first server TSecr echoing it (whole µs). */
  serverTsRttSummary?: RttSummary;
  /** TCP timestamps: server TSval seen → first client TSecr echoing it (whole µs). */
  clientTsRttSummary?: RttSummary;
}

export interface IcmpRecord {
  echoRequests: number;
  echoReplies: number;
  unanswered: number;
  rtt?: RttSketchData;
}

export interface FlowRecord {
  id: string;
  schemaVersion: number;
  sequence: number;
  flowId: number;
  observation: ObservationPoint;
  exportReason: ExportReason;
  key: FlowKeyRecord;
  /**
   * First and last packet of this record; a record without packets (a flow that ended after its
   * last interim record: a SYN never answered and cut at a window boundary) has both at the time
   * the flow table ended the flow, so its failed handshake counts in that window.
   */
  startUs: number;
  endUs: number;
  clientToServer: DirectionCounters;
  serverToClient: DirectionCounters;
  tcp?: TcpRecord;
  icmp?: IcmpRecord;
  lossRate: number;
}

// ---- PairWindow (defined here, built by the pipeline's aggregator)

export interface LatencySummary {
  count: number;
  min: number;
  p50: number;
  p95: number;
  max: number;
}

export interface TrafficCounters {
  packets: number;
  bytes: number;
}

export interface PairWindow {
  id: string;
  schemaVersion: number;
  windowStartUs: number;
  windowEndUs: number;
  /** Endpoints with a < b. */
  a: string;
  b: string;
  aToB: TrafficCounters;
  bToA: TrafficCounters;
  flows: number;
  tcp: {
    handshakes: number;
    failedHandshakes: number;
    handshakeRttUs: LatencySummary;
    retransmits: number;
    gapFills: number;
    dataSegments: number;
  };
  icmp: {
    echoRequests: number;
    echoReplies: number;
    rttUs: LatencySummary;
  };
  lossRate: number;
  throughputBps: number;
  /** Throughput trend of the pair (src/pipeline/trend.ts); absent when not computed. */
  trend?: PairTrend;
}

export interface PairTrend {
  /** EWMA of throughputBps over the pair's windows, this one included. */
  ewmaBps: number;
  /** Holt linear forecast of throughputBps for the next windows (index 0: the next one). */
  forecastBps: number[];
}

/** Summary of a sketch in µs, as PairWindow carries it (zeros when empty). */
export function summarizeSketch(s: RttSketch): LatencySummary {
  if (s.count === 0) return { count: 0, min: 0, p50: 0, p95: 0, max: 0 };
  return { count: s.count, min: s.minNs / 1000, p50: s.quantileUs(0.5), p95: s.quantileUs(0.95), max: s.maxNs / 1000 };
}

// ---- canonical proto3 JSON mapping, driven by a field table that mirrors the .proto

type Scalar = 'string' | 'bool' | 'uint32' | 'int64' | 'uint64' | 'double';
export interface FieldSpec {
  /** proto3 JSON name (lowerCamelCase of the proto field name). */
  name: string;
  /** proto field number (kept equal to proto/mirrorflow.proto; tested). */
  number: number;
  type: Scalar | { enumPrefix: string; values: readonly string[] } | { message: MessageSpec };
  repeated?: boolean;
  /** proto3 `optional`: written whenever present, even when zero. */
  optional?: boolean;
}
export interface MessageSpec {
  name: string;
  fields: FieldSpec[];
}

const enumOf = (prefix: string, values: readonly string[]) => ({ enumPrefix: prefix, values });

const SKETCH: MessageSpec = {
  name: 'RttSketch',
  fields: [
    { name: 'count', number: 1, type: 'uint32' },
    { name: 'minUs', number: 2, type: 'double' },
    { name: 'maxUs', number: 3, type: 'double' },
    { name: 'sumUs', number: 4, type: 'double' },
    { name: 'bucketDeltas', number: 5, type: 'uint32', repeated: true },
    { name: 'bucketCounts', number: 6, type: 'uint32', repeated: true },
  ],
};

const SUMMARY: MessageSpec = {
  name: 'RttSummary',
  fields: [
    { name: 'count', number: 1, type: 'uint32' },
    { name: 'minUs', number: 2, type: 'double' },
    { name: 'maxUs', number: 3, type: 'double' },
    { name: 'sumUs', number: 4, type: 'double' },
  ],
};

const TCP_DIRECTION: MessageSpec = {
  name: 'TcpDirection',
  fields: [
    { name: 'dataSegments', number: 1, type: 'uint32' },
    { name: 'retransmits', number: 2, type: 'uint32' },
    { name: 'gapFills', number: 3, type: 'uint32' },
    { name: 'outOfOrder', number: 4, type: 'uint32' },
    { name: 'dupAcks', number: 5, type: 'uint32' },
    { name: 'zeroWindows', number: 6, type: 'uint32' },
    { name: 'rsts', number: 7, type: 'uint32' },
    { name: 'synRetransmits', number: 8, type: 'uint32' },
  ],
};

const DIRECTION: MessageSpec = {
  name: 'DirectionCounters',
  fields: [
    { name: 'packets', number: 1, type: 'uint64' },
    { name: 'bytes', number: 2, type: 'uint64' },
    { name: 'firstUs', number: 3, type: 'int64' },
    { name: 'lastUs', number: 4, type: 'int64' },
    { name: 'tcpFlags', number: 5, type: 'uint32' },
  ],
};

export const FLOW_RECORD_SPEC: MessageSpec = {
  name: 'FlowRecord',
  fields: [
    { name: 'id', number: 1, type: 'string' },
    { name: 'schemaVersion', number: 2, type: 'uint32' },
    { name: 'sequence', number: 3, type: 'uint64' },
    { name: 'flowId', number: 4, type: 'uint64' },
    {
      name: 'observation',
      number: 5,
      type: {
        message: {
          name: 'ObservationPoint',
          fields: [
            { name: 'agentId', number: 1, type: 'string' },
            { name: 'bridge', number: 2, type: 'string' },
            { name: 'mirror', number: 3, type: 'string' },
            { name: 'interface', number: 4, type: 'string' },
          ],
        },
      },
    },
    { name: 'exportReason', number: 6, type: enumOf('EXPORT_REASON_', ['unspecified', ...EXPORT_REASONS]) },
    {
      name: 'key',
      number: 7,
      type: {
        message: {
          name: 'FlowKey',
          fields: [
            { name: 'vlans', number: 1, type: 'uint32', repeated: true },
            { name: 'tunnel', number: 2, type: enumOf('TUNNEL_', TUNNEL_NAMES) },
            { name: 'vni', number: 3, type: 'uint32', optional: true },
            { name: 'ipVersion', number: 4, type: 'uint32' },
            { name: 'protocol', number: 5, type: 'uint32' },
            { name: 'etherType', number: 6, type: 'uint32' },
            { name: 'clientIp', number: 7, type: 'string' },
            { name: 'serverIp', number: 8, type: 'string' },
            { name: 'clientPort', number: 9, type: 'uint32' },
            { name: 'serverPort', number: 10, type: 'uint32' },
            { name: 'clientMac', number: 11, type: 'string' },
            { name: 'serverMac', number: 12, type: 'string' },
            { name: 'icmpId', number: 13, type: 'uint32', optional: true },
            { name: 'icmpType', number: 14, type: 'uint32', optional: true },
            { name: 'icmpCode', number: 15, type: 'uint32', optional: true },
            { name: 'fragmentsOnly', number: 16, type: 'bool' },
          ],
        },
      },
    },
    { name: 'startUs', number: 8, type: 'int64' },
    { name: 'endUs', number: 9, type: 'int64' },
    { name: 'clientToServer', number: 10, type: { message: DIRECTION } },
    { name: 'serverToClient', number: 11, type: { message: DIRECTION } },
    {
      name: 'tcp',
      number: 12,
      type: {
        message: {
          name: 'TcpMetrics',
          fields: [
            { name: 'handshakeRttUs', number: 1, type: 'double', optional: true },
            { name: 'handshakeServerUs', number: 2, type: 'double', optional: true },
            { name: 'handshakeClientUs', number: 3, type: 'double', optional: true },
            { name: 'synOnly', number: 4, type: 'bool' },
            { name: 'rstAnswered', number: 5, type: 'bool' },
            { name: 'failed', number: 6, type: 'bool' },
            { name: 'clientToServer', number: 7, type: { message: TCP_DIRECTION } },
            { name: 'serverToClient', number: 8, type: { message: TCP_DIRECTION } },
            // 9, 10: server_ts_rtt / client_ts_rtt (RttSketch) until schema version 1, reserved
            { name: 'serverTsRttSummary', number: 11, type: { message: SUMMARY } },
            { name: 'clientTsRttSummary', number: 12, type: { message: SUMMARY } },
          ],
        },
      },
    },
    {
      name: 'icmp',
      number: 13,
      type: {
        message: {
          name: 'IcmpMetrics',
          fields: [
            { name: 'echoRequests', number: 1, type: 'uint32' },
            { name: 'echoReplies', number: 2, type: 'uint32' },
            { name: 'unanswered', number: 3, type: 'uint32' },
            { name: 'rtt', number: 4, type: { message: SKETCH } },
          ],
        },
      },
    },
    { name: 'lossRate', number: 14, type: 'double' },
  ],
};

const LATENCY: MessageSpec = {
  name: 'LatencySummary',
  fields: [
    { name: 'count', number: 1, type: 'uint32' },
    { name: 'min', number: 2, type: 'double' },
    { name: 'p50', number: 3, type: 'double' },
    { name: 'p95', number: 4, type: 'double' },
    { name: 'max', number: 5, type: 'double' },
  ],
};
const TRAFFIC: MessageSpec = {
  name: 'TrafficCounters',
  fields: [
    { name: 'packets', number: 1, type: 'uint64' },
    { name: 'bytes', number: 2, type: 'uint64' },
  ],
};

export const PAIR_WINDOW_SPEC: MessageSpec = {
  name: 'PairWindow',
  fields: [
    { name: 'id', number: 1, type: 'string' },
    { name: 'schemaVersion', number: 2, type: 'uint32' },
    { name: 'windowStartUs', number: 3, type: 'int64' },
    { name: 'windowEndUs', number: 4, type: 'int64' },
    { name: 'a', number: 5, type: 'string' },
    { name: 'b', number: 6, type: 'string' },
    { name: 'aToB', number: 7, type: { message: TRAFFIC } },
    { name: 'bToA', number: 8, type: { message: TRAFFIC } },
    { name: 'flows', number: 9, type: 'uint32' },
    {
      name: 'tcp',
      number: 10,
      type: {
        message: {
          name: 'PairTcp',
          fields: [
            { name: 'handshakes', number: 1, type: 'uint32' },
            { name: 'failedHandshakes', number: 2, type: 'uint32' },
            { name: 'handshakeRttUs', number: 3, type: { message: LATENCY } },
            { name: 'retransmits', number: 4, type: 'uint32' },
            { name: 'gapFills', number: 5, type: 'uint32' },
            { name: 'dataSegments', number: 6, type: 'uint32' },
          ],
        },
      },
    },
    {
      name: 'icmp',
      number: 11,
      type: {
        message: {
          name: 'PairIcmp',
          fields: [
            { name: 'echoRequests', number: 1, type: 'uint32' },
            { name: 'echoReplies', number: 2, type: 'uint32' },
            { name: 'rttUs', number: 3, type: { message: LATENCY } },
          ],
        },
      },
    },
    { name: 'lossRate', number: 12, type: 'double' },
    { name: 'throughputBps', number: 13, type: 'double' },
    {
      name: 'trend',
      number: 14,
      type: {
        message: {
          name: 'PairTrend',
          fields: [
            { name: 'ewmaBps', number: 1, type: 'double' },
            { name: 'forecastBps', number: 2, type: 'double', repeated: true },
          ],
        },
      },
    },
  ],
};

type JsonValue = string | number | boolean | JsonValue[] | { [k: string]: JsonValue };

function scalarJson(type: Scalar, v: unknown): JsonValue {
  switch (type) {
    case 'string':
      return String(v);
    case 'bool':
      return Boolean(v);
    case 'uint32':
      return Number(v) >>> 0;
    case 'int64':
    case 'uint64': {
      if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
      const n = typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v)));
      return n.toString();
    }
    case 'double': {
      const n = Number(v);
      if (Number.isNaN(n)) return 'NaN';
      if (n === Infinity) return 'Infinity';
      if (n === -Infinity) return '-Infinity';
      return n;
    }
  }
}

function isDefault(type: FieldSpec['type'], v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (typeof type === 'string') {
    if (type === 'string') return v === '';
    if (type === 'bool') return v === false;
    return Number(v) === 0 && !Object.is(Number(v), -0);
  }
  if ('enumPrefix' in type) return v === type.values[0];
  return false; // a present sub-message is written even when empty
}

function enumJson(type: { enumPrefix: string; values: readonly string[] }, v: unknown): string {
  const name = String(v);
  if (!type.values.includes(name)) throw new Error(`flow-record: unknown enum value (value=${name})`);
  return type.enumPrefix + name.toUpperCase().replace(/-/g, '_');
}

/** Encodes a value of the given message per the canonical proto3 JSON mapping. */
export function messageToProto3Json(spec: MessageSpec, value: object): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  const obj = value as Record<string, unknown>;
  for (const f of spec.fields) {
    const v = obj[f.name];
    if (f.repeated) {
      if (!Array.isArray(v) || v.length === 0) continue;
      out[f.name] = v.map((x) => fieldJson(f.type, x));
      continue;
    }
    if (v === undefined || v === null) continue;
    if (!f.optional && isDefault(f.type, v)) continue;
    out[f.name] = fieldJson(f.type, v);
  }
  return out;
}

function fieldJson(type: FieldSpec['type'], v: unknown): JsonValue {
  if (typeof type === 'string') return scalarJson(type, v);
  if ('enumPrefix' in type) return enumJson(type, v);
  return messageToProto3Json(type.message, v as object);
}

/** The canonical proto3 JSON object of a FlowRecord (JSON.stringify it for a JSON line). */
export function toProto3Json(record: FlowRecord): Record<string, JsonValue> {
  return messageToProto3Json(FLOW_RECORD_SPEC, record);
}

export function pairWindowToProto3Json(w: PairWindow): Record<string, JsonValue> {
  return messageToProto3Json(PAIR_WINDOW_SPEC, w);
}

/** A FlowRecord's sketch back as an RttSketch (for merging). */
export function sketchFromRecord(d: RttSketchData | undefined): RttSketch {
  return d ? RttSketch.fromData(d) : new RttSketch();
}
