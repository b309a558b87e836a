import { expect } from 'chai';
import { FLOW_RECORD_SCHEMA_VERSION, type FlowRecord } from '../../../src/capture/flow-record.js';
import { Cleaner, crossAgentFlowIdentity, rejectReasonOf, ranksBefore, type CleanerOptions } from '../../../src/pipeline/clean.js';
import { decodeFlowRecord, encodeFlowRecord, encodeRecord } from '../../../src/pipeline/codec.js';
import { decodeFlowView, FlowView, StringInterner } from '../../../src/pipeline/codec-flow-view.js';

const T0 = 1_700_000_000_000_000;
const WEB_MAC = 'fa:16:3e:00:00:01';
const DB_MAC = 'fa:16:3e:00:00:02';
const TAP_MAC = 'fa:16:3e:ff:ff:01';

interface Spec {
  agent?: string;
  seq?: number;
  clientMac?: string;
  serverMac?: string;
  clientPort?: number;
  /** Span in ms after T0. */
  startMs?: number;
  endMs?: number;
  /** Report the flow the other way round (an agent that took the server for the client). */
  swapped?: boolean;
  id?: string;
}

let autoSeq = 0;
function flow(s: Spec = {}): FlowRecord {
  const agent = s.agent ?? 'hv-a';
  const seq = s.seq ?? ++autoSeq;
  const c = { ip: '10.0.0.1', port: s.clientPort ?? 40000, mac: s.clientMac ?? WEB_MAC };
  const v = { ip: '10.0.0.2', port: 5432, mac: s.serverMac ?? DB_MAC };
  const [x, y] = s.swapped ? [v, c] : [c, v];
  const startUs = T0 + (s.startMs ?? 0) * 1000;
  const endUs = T0 + (s.endMs ?? 1000) * 1000;
  return {
    id: s.id ?? `${agent}-${seq}`,
    schemaVersion: FLOW_RECORD_SCHEMA_VERSION,
    sequence: seq,
    flowId: seq,
    observation: { agentId: agent, bridge: 'br-int', mirror: 'mf', interface: 'mf0' },
    exportReason: 'idle-timeout',
    key: {
      vlans: [],
      tunnel: 'none',
      ipVersion: 4,
      protocol: 6,
      etherType: 0x0800,
      clientIp: x.ip,
      serverIp: y.ip,
      clientPort: x.port,
      serverPort: y.port,
      clientMac: x.mac,
      serverMac: y.mac,
      fragmentsOnly: false,
    },
    startUs,
    endUs,
    clientToServer: { packets: 10, bytes: 1000, firstUs: startUs, lastUs: endUs, tcpFlags: 0x1b },
    serverToClient: { packets: 8, bytes: 800, firstUs: startUs, lastUs: endUs, tcpFlags: 0x1b },
    lossRate: 0,
  };
}

/** hv-a hosts web (the client), hv-b hosts db (the server). */
const inventory = { 'hv-a': [WEB_MAC], 'hv-b': [DB_MAC.toUpperCase()] };
const cleaner = (o: CleanerOptions = {}) => new Cleaner({ localMacs: inventory, holdUs: 5e6, overlapSlackUs: 1e6, ...o });
const ids = (rs: FlowRecord[]) => rs.map((r) => r.id);

describe('pipeline/clean', () => {
  describe('capture-port traffic', () => {
    it('drops records to or from a capture / internal port MAC, however the MAC is spelt in config', () => {
      const c = cleaner({ capturePortMacs: [TAP_MAC.toUpperCase().replace(/:/g, '-')] });
      expect(ids(c.push(flow({ id: 'x-1', seq: 1, clientMac: TAP_MAC })))).to.deep.equal([]);
      expect(ids(c.push(flow({ id: 'x-2', seq: 2, serverMac: TAP_MAC })))).to.deep.equal([]);
      expect(ids(c.push(flow({ id: 'x-3', seq: 3 })))).to.deep.equal(['x-3']);
      expect(c.counters).to.deep.equal({ kept: 1, dropped: { 'capture-port': 2 }, staleSequences: 0, heldOverflow: 0 });
      c.setCapturePortMacs([]);
      expect(ids(c.push(flow({ id: 'x-4', seq: 4, clientMac: TAP_MAC, clientPort: 1 })))).to.deep.equal(['x-4']);
    });
  });

  describe('duplicate record ids', () => {
    it('drops a record seen again (producer retry), in or out of sequence order', () => {
      const c = cleaner();
      const out: string[] = [];
      for (const seq of [5, 3, 4, 5, 3, 6, 1, 6]) out.push(...ids(c.push(flow({ agent: 'hv-a', seq, clientPort: 1000 + seq }))));
      expect(out).to.deep.equal(['hv-a-5', 'hv-a-3', 'hv-a-4', 'hv-a-6', 'hv-a-1']);
      expect(c.counters.dropped).to.deep.equal({ 'duplicate-id': 3 });
    });

    it('agents have separate sequences; an id with a run epoch is its own agent', () => {
      const c = cleaner();
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 1, clientPort: 1 })))).to.have.length(1);
      expect(ids(c.push(flow({ agent: 'hv-c', seq: 1, clientPort: 2, clientMac: TAP_MAC, serverMac: 'fa:16:3e:ff:ff:02' })))).to.have.length(1);
      expect(ids(c.push(flow({ agent: 'hv-a', id: 'hv-a@run2-1', seq: 1, clientPort: 3 })))).to.deep.equal(['hv-a@run2-1']);
      expect(ids(c.push(flow({ agent: 'hv-a', id: 'hv-a@run2-1', seq: 1, clientPort: 3 })))).to.deep.equal([]);
      expect(c.agentCount).to.equal(3);
    });

    it('memory is bounded: a window of sequences per agent, a bounded number of agents', () => {
      const c = cleaner({ sequenceWindow: 64, maxAgents: 10 });
      c.push(flow({ agent: 'hv-a', seq: 1000, clientPort: 1 }));
      // 63 below the highest: checked; 64 or more below: cannot be checked, kept and counted
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 937, clientPort: 2 })))).to.have.length(1);
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 937, clientPort: 2 })))).to.have.length(0);
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 936, clientPort: 3 })))).to.have.length(1);
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 936, clientPort: 3 })))).to.have.length(1);
      expect(c.counters.staleSequences).to.equal(2);
      // a jump beyond the window forgets everything below it
      c.push(flow({ agent: 'hv-a', seq: 5000, clientPort: 4 }));
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 4990, clientPort: 5 })))).to.have.length(1);
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 5000, clientPort: 4 })))).to.have.length(0);
      // sequences advancing one by one reuse the bitmap: a repeat inside the window is still caught
      for (let s = 5001; s < 5300; s++) c.push(flow({ agent: 'hv-a', seq: s, clientPort: 10_000 + s }));
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 5290, clientPort: 10_000 + 5290 })))).to.have.length(0);
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 5200, clientPort: 10_000 + 5200 })))).to.have.length(1); // 99 below: stale
      for (let i = 0; i < 50; i++) c.push(flow({ agent: `hv-${i}`, seq: 1, clientPort: 20_000 + i }));
      // the most recent half of maxAgents at least, maxAgents at most
      expect(c.agentCount).to.be.within(5, 10);
      expect(ids(c.push(flow({ agent: 'hv-49', seq: 1, clientPort: 20_049 })))).to.deep.equal([]);
    });
  });

  describe('the same flow reported by two agents', () => {
    it('keeps the client-local agent’s record when it comes first; drops the other agent’s at once', () => {
      const c = cleaner();
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 1 })))).to.deep.equal(['hv-a-1']);
      // the other hypervisor: 300 ms of clock skew, key oriented the other way round
      expect(ids(c.push(flow({ agent: 'hv-b', seq: 1, startMs: 300, endMs: 1300, swapped: true })))).to.deep.equal([]);
      expect(c.counters.dropped).to.deep.equal({ 'duplicate-flow': 1 });
      expect(c.heldCount).to.equal(0);
    });

    it('holds the other agent’s record when it comes first and drops it when the client-local one arrives', () => {
      const c = cleaner();
      expect(ids(c.push(flow({ agent: 'hv-b', seq: 1 })))).to.deep.equal([]);
      expect(c.heldCount).to.equal(1);
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 1, startMs: 10, endMs: 1010 })))).to.deep.equal(['hv-a-1']);
      expect(c.heldCount).to.equal(0);
      expect(ids(c.advance(T0 + 60e6))).to.deep.equal([]);
      expect(ids(c.flush())).to.deep.equal([]);
      expect(c.counters).to.deep.equal({ kept: 1, dropped: { 'duplicate-flow': 1 }, staleSequences: 0, heldOverflow: 0 });
    });

    it('a record later than the hold time behind the stream is released at once', () => {
      const c = cleaner();
      c.push(flow({ agent: 'hv-a', seq: 9, clientPort: 7, startMs: 30_000, endMs: 30_000 }));
      expect(ids(c.push(flow({ agent: 'hv-b', seq: 1 })))).to.deep.equal(['hv-b-1']);
    });

    it('releases a held record when the preferred agent does not report the flow within the hold time', () => {
      const c = cleaner();
      expect(ids(c.push(flow({ agent: 'hv-b', seq: 1, endMs: 1000 })))).to.deep.equal([]);
      expect(ids(c.advance(T0 + 5_999_999))).to.deep.equal([]);
      expect(ids(c.advance(T0 + 6_000_000))).to.deep.equal(['hv-b-1']);
      // the client-local agent's record comes too late: the flow is already counted
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 1 })))).to.deep.equal([]);
      expect(c.counters.kept).to.equal(1);
      expect(c.counters.dropped).to.deep.equal({ 'duplicate-flow': 1 });
    });

    it('later records of the stream release held ones that are due', () => {
      const c = cleaner();
      c.push(flow({ agent: 'hv-b', seq: 1, endMs: 1000 }));
      const out = c.push(flow({ agent: 'hv-a', seq: 2, clientPort: 999, startMs: 9000, endMs: 9000 }));
      expect(ids(out)).to.deep.equal(['hv-a-2', 'hv-b-1']);
    });

    it('recognises a routed flow: the hypervisors see other MACs and VLAN tags, not other IPs or ports', () => {
      const c = cleaner();
      const local = flow({ agent: 'hv-a', seq: 1 });
      const remote = flow({ agent: 'hv-b', seq: 1, swapped: true, startMs: 2, endMs: 1002 });
      remote.key.clientMac = 'fa:16:3e:aa:aa:aa'; // the router's port on hv-b's side
      remote.key.vlans = [7];
      local.key.vlans = [3];
      expect(crossAgentFlowIdentity(local)).to.equal(crossAgentFlowIdentity(remote));
      expect(ids(c.push(local))).to.deep.equal(['hv-a-1']);
      expect(ids(c.push(remote))).to.deep.equal([]);
      // another protocol or ICMP id is another flow
      const udp = flow({ agent: 'hv-b', seq: 2 });
      udp.key.protocol = 17;
      expect(crossAgentFlowIdentity(udp)).to.not.equal(crossAgentFlowIdentity(local));
      const e1 = { ...flow({ seq: 3 }), key: { ...local.key, protocol: 1, clientPort: 0, serverPort: 0, icmpId: 1 } };
      const e2 = { ...e1, key: { ...e1.key, icmpId: 2 } };
      expect(crossAgentFlowIdentity(e1)).to.not.equal(crossAgentFlowIdentity(e2));
      // non-IP frames: by MACs, EtherType and VLANs
      const arp = { ...flow({ seq: 4 }), key: { ...local.key, ipVersion: 0, etherType: 0x0806, clientIp: '', serverIp: '' } };
      const arpBack = { ...arp, key: { ...arp.key, clientMac: arp.key.serverMac, serverMac: arp.key.clientMac } };
      expect(crossAgentFlowIdentity(arp)).to.equal(crossAgentFlowIdentity(arpBack));
      expect(crossAgentFlowIdentity(arp)).to.not.equal(crossAgentFlowIdentity({ ...arp, key: { ...arp.key, serverMac: TAP_MAC } }));
    });

    it('records judged as decoded views share the flow memory with pushed records (either way round)', () => {
      const c = cleaner({ localMacs: {} });
      const v = new FlowView();
      const strings = new StringInterner();
      const judge = (r: FlowRecord): boolean => {
        const b = encodeRecord('flow-record', r, 'protobuf');
        expect(decodeFlowView(b, 0, b.length, v, strings)).to.equal(undefined);
        return c.judge(v);
      };
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 1 })))).to.deep.equal(['hv-a-1']);
      expect(judge(flow({ agent: 'hv-b', seq: 1, swapped: true, startMs: 5 }))).to.equal(false); // the same flow, another agent
      expect(judge(flow({ agent: 'hv-b', seq: 1, clientPort: 40001 }))).to.equal(false); // the same id again
      expect(judge(flow({ agent: 'hv-b', seq: 2, clientPort: 40001 }))).to.equal(true); // another flow
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 2, clientPort: 40001, swapped: true })))).to.deep.equal([]);
      const arp = { ...flow({ agent: 'hv-a', seq: 3 }), key: { ...flow().key, ipVersion: 0, etherType: 0x0806, clientIp: '', serverIp: '', clientPort: 0, serverPort: 0, vlans: [5] } };
      expect(ids(c.push(arp))).to.deep.equal(['hv-a-3']);
      expect(judge({ ...arp, id: 'hv-b-3', sequence: 3, observation: { ...arp.observation, agentId: 'hv-b' }, key: { ...arp.key, clientMac: arp.key.serverMac, serverMac: arp.key.clientMac } })).to.equal(false);
      expect(judge({ ...arp, id: 'hv-b-4', sequence: 4, observation: { ...arp.observation, agentId: 'hv-b' }, key: { ...arp.key, vlans: [6] } })).to.equal(true);
      expect(c.counters.dropped).to.deep.equal({ 'duplicate-flow': 3, 'duplicate-id': 1 });
      expect(c.flowCount).to.equal(4);
    });

    it('many flows: every one remembered apart (identities that hash alike share an entry)', () => {
      const c = cleaner({ localMacs: {} });
      const n = 100_000;
      const key = (i: number) => ({ ...flow().key, clientIp: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, clientPort: 1024 + (i % 50_000) });
      let kept = 0;
      for (let i = 0; i < n; i++) kept += c.push({ ...flow({ agent: 'hv-a', seq: i + 1 }), key: key(i) }).length;
      expect(kept).to.equal(n);
      expect(c.flowCount).to.equal(n);
      for (let i = 0; i < n; i++) kept += c.push({ ...flow({ agent: 'hv-b', seq: i + 1, startMs: 10 }), key: key(i) }).length;
      expect(kept).to.equal(n);
      expect(c.counters.dropped['duplicate-flow']).to.equal(n);
    });

    it('neither agent local to the client: the lowest agent id among the server’s agents', () => {
      const c = cleaner({ localMacs: { 'hv-a': [DB_MAC] } }); // the client is not a known VM
      expect(ids(c.push(flow({ agent: 'hv-z', seq: 1 })))).to.deep.equal([]); // hv-a may report it and ranks first
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 1 })))).to.deep.equal(['hv-a-1']);
      expect(c.heldCount).to.equal(0);
      expect(ranksBefore('hv-a', 'hv-z', undefined)).to.equal(true);
      expect(ranksBefore('hv-z', 'hv-a', 'hv-z')).to.equal(true);
      expect(ranksBefore('hv-a', 'hv-a', undefined)).to.equal(false);
    });

    it('agents the inventory does not name: the first record released wins, the overlapping second is dropped', () => {
      const c = cleaner({ localMacs: {} });
      expect(ids(c.push(flow({ agent: 'hv-y', seq: 1 })))).to.deep.equal(['hv-y-1']);
      expect(ids(c.push(flow({ agent: 'hv-x', seq: 1, startMs: 500, endMs: 1500 })))).to.deep.equal([]);
    });

    it('is not fooled by the same key at another time, nor by interim records of one agent', () => {
      const c = cleaner();
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 1, startMs: 0, endMs: 1000 })))).to.have.length(1);
      // the same agent, the next interim record touching the first
      expect(ids(c.push(flow({ agent: 'hv-a', seq: 2, startMs: 1000, endMs: 2000 })))).to.have.length(1);
      // another agent: a different key overlapping the first record in time (held: the client's
      // own agent may report it), the same key a minute later (port reused): a different flow
      expect(ids(c.push(flow({ agent: 'hv-b', seq: 1, clientPort: 40001 })))).to.deep.equal([]);
      expect(ids(c.push(flow({ agent: 'hv-b', seq: 2, startMs: 60_000, endMs: 61_000 })))).to.deep.equal(['hv-b-1']);
      expect(ids(c.flush())).to.deep.equal(['hv-b-2']);
      expect(c.counters.dropped).to.deep.equal({});
    });

    it('flow state is bounded: forgotten 1–2× flowMemoryUs of event time after the last record, at most maxFlows', () => {
      const c = cleaner({ flowMemoryUs: 10e6, maxFlows: 100 });
      for (let i = 0; i < 50; i++) c.push(flow({ agent: 'hv-a', seq: i + 1, clientPort: i, startMs: 0, endMs: 1000 }));
      expect(c.flowCount).to.equal(50);
      c.advance(T0 + 10_999_999);
      expect(c.flowCount).to.equal(50);
      c.advance(T0 + 11_000_000);
      c.push(flow({ agent: 'hv-a', seq: 60, clientPort: 60, startMs: 11_000, endMs: 11_000 })); // still in use
      c.advance(T0 + 21_000_000);
      expect(c.flowCount).to.equal(1);
      for (let i = 0; i < 500; i++) c.push(flow({ agent: 'hv-a', seq: 1000 + i, clientPort: 1000 + i, startMs: 22_000, endMs: 22_000 }));
      expect(c.flowCount).to.be.within(50, 100);
    });

    it('held records are bounded: the earliest due is released early when maxHeld is reached', () => {
      const c = cleaner({ maxHeld: 10 });
      const out: FlowRecord[] = [];
      for (let i = 0; i < 25; i++) out.push(...c.push(flow({ agent: 'hv-b', seq: i + 1, clientPort: i, endMs: 1000 + i })));
      expect(c.heldCount).to.equal(10);
      expect(c.counters.heldOverflow).to.equal(15);
      expect(ids(out)).to.deep.equal(Array.from({ length: 15 }, (_, i) => `hv-b-${i + 1}`));
      expect(ids(c.flush())).to.have.length(10);
    });
  });

  describe('records that failed decoding or validation', () => {
    it('are counted by the reason the caller gives or derives from the codec error', () => {
      const c = cleaner();
      const reasonOf = (bytes: Buffer) => {
        try {
          decodeFlowRecord(bytes, 'json');
        } catch (e) {
          return c.rejectError(e);
        }
        throw new Error('decoded');
      };
      expect(reasonOf(Buffer.from('{not json'))).to.equal('malformed');
      const old = JSON.parse(encodeFlowRecord(flow({ seq: 1 }), 'json').toString());
      old.schemaVersion = 1;
      expect(reasonOf(Buffer.from(JSON.stringify(old)))).to.equal('schema-version');
      const bad = JSON.parse(encodeFlowRecord(flow({ seq: 1 }), 'json').toString());
      bad.key.ipVersion = 5;
      expect(reasonOf(Buffer.from(JSON.stringify(bad)))).to.equal('invalid');
      c.reject('wrong-schema', 2);
      expect(rejectReasonOf(new Error('x'))).to.equal('malformed');
      expect(c.counters.dropped).to.deep.equal({ malformed: 1, 'schema-version': 1, invalid: 1, 'wrong-schema': 2 });
    });
  });
});
