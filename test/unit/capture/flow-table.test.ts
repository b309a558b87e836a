import { expect } from 'chai';
import { FlowTable, frameTimeNs, type FlowTableOptions } from '../../../src/capture/flow-table.js';
import type { FlowRecord } from '../../../src/capture/flow-record.js';
import { DecodedFrame, IPPROTO_UDP } from '../../../src/capture/decode/frame.js';
import { MS, S, US, TcpConv, ipFrame, otherFrame, udpFrame } from '../../helpers/synth-flows.js';

const A = { ip: '10.1.0.1', port: 5000, mac: 0x0200000000a1 };
const B = { ip: '10.1.0.2', port: 53, mac: 0x0200000000b2 };

function table(opts: Partial<FlowTableOptions> = {}): { t: FlowTable; out: FlowRecord[] } {
  const out: FlowRecord[] = [];
  const t = new FlowTable({ onRecord: (r) => out.push(r), agentId: 'agent-7', ...opts });
  return { t, out };
}

function sum(records: FlowRecord[], pick: (r: FlowRecord) => number): number {
  return records.reduce((a, r) => a + pick(r), 0);
}

describe('capture/flow-table', () => {
  it('keeps both directions of a UDP conversation in one flow, the first sender as client', () => {
    const { t, out } = table({ epochUs: 1_700_000_000_000_000, observation: { bridge: 'br-int', mirror: 'm1', interface: 'mf0' } });
    t.addFrame(udpFrame(A, B, 30), 1 * MS);
    t.addFrame(udpFrame(B, A, 120), 1 * MS + 300 * US);
    t.addFrame(udpFrame(A, B, 30), 2 * MS);
    expect(t.size).to.equal(1);
    t.flush();
    expect(out).to.have.length(1);
    const r = out[0]!;
    expect(r.exportReason).to.equal('flush');
    expect(r.id).to.equal('agent-7-1');
    expect(r.observation).to.deep.equal({ agentId: 'agent-7', bridge: 'br-int', mirror: 'm1', interface: 'mf0' });
    expect(r.key).to.include({ clientIp: '10.1.0.1', serverIp: '10.1.0.2', clientPort: 5000, serverPort: 53, protocol: IPPROTO_UDP, ipVersion: 4 });
    expect(r.clientToServer).to.deep.equal({ packets: 2, bytes: 144, firstUs: 1_700_000_000_001_000, lastUs: 1_700_000_000_002_000, tcpFlags: 0 });
    expect(r.serverToClient).to.deep.equal({ packets: 1, bytes: 162, firstUs: 1_700_000_000_001_300, lastUs: 1_700_000_000_001_300, tcpFlags: 0 });
    expect(r.startUs).to.equal(1_700_000_000_001_000);
    expect(r.endUs).to.equal(1_700_000_000_002_000);
    expect(r.tcp).to.equal(undefined);
    expect(t.size).to.equal(0);
  });

  it('frameTimeNs turns capture seconds/nanoseconds into ns since the caller epoch', () => {
    const f = new DecodedFrame();
    f.tsSec = 1_700_000_123;
    f.tsNsec = 456_789;
    expect(frameTimeNs(f, 1_700_000_000)).to.equal(123 * S + 456_789);
  });

  it('skips frames with a decode error', () => {
    const { t } = table();
    const f = udpFrame(A, B, 10);
    f.error = 17;
    expect(t.addFrame(f, 0)).to.equal(false);
    expect(t.stats.framesSkipped).to.equal(1);
    expect(t.size).to.equal(0);
  });

  it('expires an idle flow after 15 s (lazily on the next packet, or by tick)', () => {
    const { t, out } = table();
    t.addFrame(udpFrame(A, B, 10), 0);
    t.tick(14 * S);
    expect(out).to.have.length(0);
    t.addFrame(udpFrame(A, B, 10), 14 * S); // keeps it alive
    t.tick(28 * S);
    expect(out).to.have.length(0);
    t.tick(29 * S);
    expect(out.map((r) => r.exportReason)).to.deep.equal(['idle-timeout']);
    expect(out[0]!.clientToServer.packets).to.equal(2);
    // lazily: a packet after the idle timeout ends the old flow and starts a new one
    t.addFrame(udpFrame(A, B, 10), 40 * S);
    t.addFrame(udpFrame(B, A, 10), 56 * S);
    expect(out).to.have.length(2);
    expect(out[1]!.exportReason).to.equal('idle-timeout');
    expect(out[1]!.flowId).to.not.equal(out[0]!.flowId);
    t.flush();
    expect(out[2]!.key.clientIp).to.equal('10.1.0.2'); // the new flow's first sender
  });

  it('writes interim records at the active timeout whose deltas sum to the totals', () => {
    const { t, out } = table();
    let packets = 0;
    let bytes = 0;
    for (let i = 0; i <= 150; i++) {
      const f = udpFrame(A, B, 100 + i);
      t.addFrame(f, i * S);
      packets++;
      bytes += f.len;
      if (i % 2 === 0) {
        const g = udpFrame(B, A, 10);
        t.addFrame(g, i * S + 10 * US);
        packets++;
        bytes += g.len;
      }
      t.tick(i * S + 500 * MS);
    }
    t.tick(200 * S);
    const reasons = out.map((r) => r.exportReason);
    expect(reasons).to.deep.equal(['active-timeout', 'active-timeout', 'idle-timeout']);
    expect(new Set(out.map((r) => r.flowId)).size).to.equal(1);
    expect(sum(out, (r) => r.clientToServer.packets + r.serverToClient.packets)).to.equal(packets);
    expect(sum(out, (r) => r.clientToServer.bytes + r.serverToClient.bytes)).to.equal(bytes);
    // records cover consecutive spans
    for (let i = 1; i < out.length; i++) expect(out[i]!.startUs).to.be.greaterThan(out[i - 1]!.endUs);
    expect(out[0]!.startUs).to.equal(0);
    expect(out[2]!.endUs).to.equal(150 * 1e6 + 10);
    expect(t.stats.interimRecords).to.equal(2);
  });

  it('interim TCP records carry deltas: the handshake once, loss counters summing to the totals', () => {
    const C = { ip: '10.2.0.1', port: 33000 };
    const SV = { ip: '10.2.0.2', port: 443 };
    const c = new TcpConv(C, SV);
    c.handshake(0, 100 * US, 50 * US);
    let t0 = 1 * MS;
    let retrans = 0;
    for (let k = 0; k < 5; k++) {
      for (let i = 0; i < 4; i++) {
        c.data('c2s', t0, 1000);
        c.ack('s2c', t0 + 5 * US);
        t0 += 10 * US;
      }
      c.data('c2s', t0, 1000, { seq: c.nxt.c2s - 1000 });
      retrans++;
      t0 += 30 * S;
    }
    const { t, out } = table();
    for (const { f, tNs } of c.frames) t.addFrame(f, tNs);
    t.flush();
    expect(out.length).to.be.greaterThan(1);
    expect(out.slice(0, -1).every((r) => r.exportReason === 'active-timeout')).to.equal(true);
    expect(out.filter((r) => r.tcp!.handshakeRttUs !== undefined).map((r) => r.tcp!.handshakeRttUs)).to.deep.equal([150]);
    expect(sum(out, (r) => r.tcp!.clientToServer.retransmits)).to.equal(retrans);
    expect(sum(out, (r) => r.tcp!.clientToServer.dataSegments)).to.equal(25);
    expect(sum(out, (r) => r.clientToServer.packets)).to.equal(c.truth.c2s.packets);
    expect(sum(out, (r) => r.serverToClient.bytes)).to.equal(c.truth.s2c.bytes);
  });

  it('evicts the least recently active of a sample at the bound, counts it, and does not grow', () => {
    const { t, out } = table({ maxFlows: 4, initialCapacity: 2 });
    for (let i = 0; i < 4; i++) t.addFrame(udpFrame({ ...A, port: 1000 + i }, B, 10), i * MS);
    t.addFrame(udpFrame({ ...A, port: 1000 }, B, 10), 10 * MS); // flow 0 is now the most recent
    expect(t.capacity).to.equal(4);
    t.addFrame(udpFrame({ ...A, port: 2000 }, B, 10), 11 * MS);
    expect(t.size).to.equal(4);
    expect(t.capacity).to.equal(4);
    expect(t.stats.evictions).to.equal(1);
    expect(out).to.have.length(1);
    expect(out[0]!.exportReason).to.equal('evicted');
    expect(out[0]!.key.clientPort).to.equal(1001);
    for (let i = 0; i < 20; i++) t.addFrame(udpFrame({ ...A, port: 3000 + i }, B, 10), (20 + i) * MS);
    expect(t.size).to.equal(4);
    expect(t.capacity).to.equal(4);
    expect(t.stats.evictions).to.equal(21);
    t.flush();
    expect(out).to.have.length(25);
    expect(t.stats.flowsCreated).to.equal(25);
  });

  it('joins later IP fragments to the flow of their first fragment by (src, dst, protocol, IP ID)', () => {
    const { t, out } = table();
    const first = udpFrame(A, B, 1472);
    first.ipId = 0x1234;
    first.moreFragments = true;
    t.addFrame(first, 0);
    for (const off of [1480, 2960]) {
      const g = ipFrame({ ip: A.ip, mac: A.mac }, { ip: B.ip, mac: B.mac }, IPPROTO_UDP, 1514);
      g.ipId = 0x1234;
      g.fragOffset = off;
      g.moreFragments = off < 2960;
      t.addFrame(g, off * US);
    }
    // a later fragment of an unknown datagram goes to a fragments-only flow
    const stray = ipFrame({ ip: A.ip }, { ip: B.ip }, IPPROTO_UDP, 600);
    stray.ipId = 0x9999;
    stray.fragOffset = 1480;
    t.addFrame(stray, 5 * MS);
    t.flush();
    expect(out).to.have.length(2);
    const main = out.find((r) => !r.key.fragmentsOnly)!;
    expect(main.clientToServer.packets).to.equal(3);
    expect(main.clientToServer.bytes).to.equal(first.len + 2 * 1514);
    expect(main.key.clientPort).to.equal(5000);
    const frag = out.find((r) => r.key.fragmentsOnly)!;
    expect(frag.clientToServer.packets).to.equal(1);
    expect(t.stats.fragmentsJoined).to.equal(2);
    expect(t.stats.fragmentsUnmatched).to.equal(1);
  });

  it('keeps flows apart by VLAN and by VNI', () => {
    const { t, out } = table();
    t.addFrame(udpFrame(A, B, 10), 0);
    t.addFrame(udpFrame(A, B, 10, { vlans: [100] }), 0);
    t.addFrame(udpFrame(B, A, 10, { vlans: [100] }), 1);
    t.addFrame(udpFrame(A, B, 10, { vlans: [100, 200] }), 0);
    t.addFrame(udpFrame(A, B, 10, { vni: 5001 }), 0);
    t.addFrame(udpFrame(B, A, 10, { vni: 5001 }), 2);
    t.addFrame(udpFrame(A, B, 10, { vni: 5002 }), 0);
    expect(t.size).to.equal(5);
    t.flush();
    const byKey = new Map(out.map((r) => [JSON.stringify([r.key.vlans, r.key.vni ?? null]), r]));
    expect([...byKey.keys()].sort()).to.deep.equal(['[[],5001]', '[[],5002]', '[[],null]', '[[100,200],null]', '[[100],null]'].sort());
    expect(byKey.get('[[100],null]')!.serverToClient.packets).to.equal(1);
    expect(byKey.get('[[],5001]')!.key.tunnel).to.equal('vxlan');
    expect(byKey.get('[[],5001]')!.serverToClient.packets).to.equal(1);
  });

  it('keys non-IP traffic by MAC pair and EtherType', () => {
    const { t, out } = table();
    t.addFrame(otherFrame(0x0a0000000001, 0xffffffffffff, 0x0806, 60), 0);
    t.addFrame(otherFrame(0xffffffffffff, 0x0a0000000001, 0x0806, 60), 1 * US);
    t.addFrame(otherFrame(0x0a0000000001, 0xffffffffffff, 0x88cc, 60), 2 * US);
    t.flush();
    expect(out).to.have.length(2);
    const arp = out.find((r) => r.key.etherType === 0x0806)!;
    expect(arp.key.clientMac).to.equal('0a:00:00:00:00:01');
    expect(arp.key.serverMac).to.equal('ff:ff:ff:ff:ff:ff');
    expect(arp.key.ipVersion).to.equal(0);
    expect(arp.clientToServer.packets).to.equal(1);
    expect(arp.serverToClient.packets).to.equal(1);
  });

  it('handles IPv6 flows (addresses kept aside, formatted per RFC 5952)', () => {
    const { t, out } = table();
    const x = { ip: 'fd00::1', port: 1111 };
    const y = { ip: 'fd00::2:0:0:5', port: 2222 };
    t.addFrame(udpFrame(x, y, 10), 0);
    t.addFrame(udpFrame(y, x, 10), 1);
    t.addFrame(udpFrame(x, { ...y, port: 2223 }, 10), 1);
    expect(t.size).to.equal(2);
    t.flush();
    expect(out[0]!.key).to.include({ ipVersion: 6, clientIp: 'fd00::1', serverIp: 'fd00::2:0:0:5', clientPort: 1111, serverPort: 2222 });
    expect(out[0]!.serverToClient.packets).to.equal(1);
  });

  it('grows to many flows and finds each again', () => {
    const { t, out } = table({ initialCapacity: 16 });
    const n = 5000;
    for (let i = 0; i < n; i++) t.addFrame(udpFrame({ ip: `10.9.${i >> 8}.${i & 255}`, port: i }, B, 10), i);
    for (let i = 0; i < n; i++) t.addFrame(udpFrame(B, { ip: `10.9.${i >> 8}.${i & 255}`, port: i }, 10), n + i);
    expect(t.size).to.equal(n);
    t.flush();
    expect(out).to.have.length(n);
    expect(out.every((r) => r.clientToServer.packets === 1 && r.serverToClient.packets === 1)).to.equal(true);
  });

  it('finds many IPv6 flows again (each with its own address-pool entry) and reuses freed entries', () => {
    const { t, out } = table({ initialCapacity: 4, idleTimeoutMs: 1000 });
    const peer = { ip: 'fd00::ffff', port: 443 };
    for (let round = 0; round < 2; round++) {
      const t0 = round * 10 * S;
      for (let i = 0; i < 300; i++) t.addFrame(udpFrame({ ip: `fd00::${(i + 1).toString(16)}`, port: 1000 + i }, peer, 10), t0 + i);
      for (let i = 0; i < 300; i++) t.addFrame(udpFrame(peer, { ip: `fd00::${(i + 1).toString(16)}`, port: 1000 + i }, 10), t0 + 1000 + i);
      expect(t.size).to.equal(300);
      t.tick(t0 + 5 * S);
      expect(t.size).to.equal(0);
    }
    expect(out).to.have.length(600);
    expect(out.every((r) => r.clientToServer.packets === 1 && r.serverToClient.packets === 1 && r.key.serverIp === 'fd00::ffff')).to.equal(true);
    expect(new Set(out.slice(300).map((r) => r.key.clientIp)).size).to.equal(300);
    expect(out.slice(300).some((r) => r.key.clientIp === 'fd00::12c')).to.equal(true);
  });

  it('rejects bad options with a MirrorflowError', () => {
    expect(() => new FlowTable({ onRecord: () => {}, idleTimeoutMs: 0 })).to.throw(/flow-table: bad option \(idleTimeoutMs=0/);
    expect(() => new FlowTable({ onRecord: () => {}, activeTimeoutMs: 5_000_000 })).to.throw(/activeTimeoutMs/);
  });
});
