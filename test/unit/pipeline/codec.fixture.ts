/** Realistic FlowRecords and PairWindows for the codec tests and the codec benchmark. */
import { FLOW_RECORD_SCHEMA_VERSION, PAIR_WINDOW_SCHEMA_VERSION, summarizeSketch, type FlowRecord, type PairWindow } from '../../../src/capture/flow-record.js';
import { RttSketch } from '../../../src/capture/rtt-sketch.js';

/** µs since the epoch, well beyond 2^32 (and 2^50): 2023-11-14T22:13:20Z. */
export const T0_US = 1_700_000_000_000_000;

function sketch(valuesNs: number[]): ReturnType<RttSketch['toData']> {
  const s = new RttSketch();
  for (const v of valuesNs) s.add(v);
  return s.toData();
}

/** A TCP flow over VXLAN with VLAN tags, handshake, loss and both timestamp-RTT summaries. */
export function tcpRecord(seq = 1): FlowRecord {
  return {
    id: `hv-07-${seq}`,
    schemaVersion: FLOW_RECORD_SCHEMA_VERSION,
    sequence: seq,
    flowId: 4_294_967_296 + seq, // beyond 2^32
    observation: { agentId: 'hv-07', bridge: 'br-int', mirror: 'mf-tap0', interface: 'mf0' },
    exportReason: 'end-fin',
    key: {
      vlans: [100, 4094],
      tunnel: 'vxlan',
      vni: 5001,
      ipVersion: 4,
      protocol: 6,
      etherType: 0x0800,
      clientIp: '10.0.0.1',
      serverIp: '10.0.0.2',
      clientPort: 41000 + (seq % 20000),
      serverPort: 443,
      clientMac: 'fa:16:3e:00:00:01',
      serverMac: 'fa:16:3e:00:00:02',
      fragmentsOnly: false,
    },
    startUs: T0_US + seq * 1000,
    endUs: T0_US + seq * 1000 + 2_500_123,
    clientToServer: { packets: 1200, bytes: 5_000_000_000 + seq, firstUs: T0_US + seq * 1000, lastUs: T0_US + seq * 1000 + 2_500_000, tcpFlags: 0x1b },
    serverToClient: { packets: 900, bytes: 70_000, firstUs: T0_US + seq * 1000 + 120, lastUs: T0_US + seq * 1000 + 2_500_123, tcpFlags: 0x13 },
    tcp: {
      handshakeRttUs: 231.5,
      handshakeServerUs: 180.25,
      handshakeClientUs: 51.25,
      synOnly: false,
      rstAnswered: false,
      failed: false,
      clientToServer: { dataSegments: 1000, retransmits: 3, gapFills: 1, outOfOrder: 2, dupAcks: 0, zeroWindows: 0, rsts: 0, synRetransmits: 1 },
      serverToClient: { dataSegments: 0, retransmits: 0, gapFills: 0, outOfOrder: 0, dupAcks: 7, zeroWindows: 1, rsts: 0, synRetransmits: 0 },
      serverTsRttSummary: { count: 5, minUs: 150, maxUs: 35_000, sumUs: 37_540 },
      clientTsRttSummary: { count: 2, minUs: 40, maxUs: 41, sumUs: 81 },
    },
    lossRate: 4 / 1000,
  };
}

/** An ICMPv6 echo flow on an IPv6 key, no tunnel, no VLAN, interim record. */
export function icmpRecord(seq = 2): FlowRecord {
  return {
    id: `hv-07-${seq}`,
    schemaVersion: FLOW_RECORD_SCHEMA_VERSION,
    sequence: seq,
    flowId: seq,
    observation: { agentId: 'hv-07', bridge: 'br-int', mirror: 'mf-tap0', interface: '' },
    exportReason: 'active-timeout',
    key: {
      vlans: [],
      tunnel: 'none',
      ipVersion: 6,
      protocol: 58,
      etherType: 0x86dd,
      clientIp: '2001:db8::1',
      serverIp: 'fe80::f816:3eff:fe00:2',
      clientPort: 0,
      serverPort: 0,
      clientMac: 'fa:16:3e:00:00:01',
      serverMac: 'fa:16:3e:00:00:02',
      icmpId: 0, // present and zero: proto3 optional keeps it
      fragmentsOnly: false,
    },
    startUs: T0_US + 60_000_000,
    endUs: T0_US + 120_000_000,
    clientToServer: { packets: 60, bytes: 6000, firstUs: T0_US + 60_000_000, lastUs: T0_US + 119_000_000, tcpFlags: 0 },
    serverToClient: { packets: 58, bytes: 5800, firstUs: T0_US + 60_000_400, lastUs: T0_US + 119_000_380, tcpFlags: 0 },
    icmp: { echoRequests: 60, echoReplies: 58, unanswered: 2, rtt: sketch(Array.from({ length: 58 }, (_, i) => 350_000 + i * 1_000)) },
    lossRate: 0,
  };
}

/** Non-IP traffic (ARP), GRE key 0, unanswered-SYN-like flags: many defaults. */
export function otherRecord(seq = 3): FlowRecord {
  return {
    id: `hv-07-${seq}`,
    schemaVersion: FLOW_RECORD_SCHEMA_VERSION,
    sequence: seq,
    flowId: seq,
    observation: { agentId: 'hv-07', bridge: '', mirror: '', interface: '' },
    exportReason: 'idle-timeout',
    key: {
      vlans: [0],
      tunnel: 'gre',
      vni: 0,
      ipVersion: 0,
      protocol: 0,
      etherType: 0x0806,
      clientIp: '',
      serverIp: '',
      clientPort: 0,
      serverPort: 0,
      clientMac: 'fa:16:3e:00:00:01',
      serverMac: 'ff:ff:ff:ff:ff:ff',
      icmpType: 3,
      icmpCode: 0,
      fragmentsOnly: true,
    },
    startUs: T0_US,
    endUs: T0_US,
    clientToServer: { packets: 1, bytes: 42, firstUs: T0_US, lastUs: T0_US, tcpFlags: 0 },
    serverToClient: { packets: 0, bytes: 0, firstUs: 0, lastUs: 0, tcpFlags: 0 },
    tcp: {
      synOnly: true,
      rstAnswered: false,
      failed: true,
      clientToServer: { dataSegments: 0, retransmits: 0, gapFills: 0, outOfOrder: 0, dupAcks: 0, zeroWindows: 0, rsts: 0, synRetransmits: 2 },
      serverToClient: { dataSegments: 0, retransmits: 0, gapFills: 0, outOfOrder: 0, dupAcks: 0, zeroWindows: 0, rsts: 0, synRetransmits: 0 },
    },
    lossRate: 0,
  };
}

export function pairWindow(seq = 1): PairWindow {
  const s = new RttSketch();
  for (const v of [100_000, 200_000, 300_000, 1_250_000]) s.add(v);
  return {
    id: `pipeline-a-${seq}`,
    schemaVersion: PAIR_WINDOW_SCHEMA_VERSION,
    windowStartUs: T0_US + seq * 60_000_000,
    windowEndUs: T0_US + (seq + 1) * 60_000_000,
    a: 'vm-0a1b',
    b: 'vm-ff02',
    aToB: { packets: 123_456, bytes: 9_876_543_210 },
    bToA: { packets: 0, bytes: 0 },
    flows: 17,
    tcp: { handshakes: 4, failedHandshakes: 1, handshakeRttUs: summarizeSketch(s), retransmits: 5, gapFills: 2, dataSegments: 90_000 },
    icmp: { echoRequests: 0, echoReplies: 0, rttUs: { count: 0, min: 0, p50: 0, p95: 0, max: 0 } },
    lossRate: 7 / 90_000,
    throughputBps: (9_876_543_210 * 8) / 60,
  };
}

/** A mixed batch of n FlowRecords with distinct ids. */
export function flowRecords(n: number): FlowRecord[] {
  const makers = [tcpRecord, icmpRecord, otherRecord];
  return Array.from({ length: n }, (_, i) => makers[i % 3]!(i + 1));
}
