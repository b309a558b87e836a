import { expect } from 'chai';
import { FlowTable, frameTimeNs, type FlowTableOptions } from '../../../src/capture/flow-table.js';
import type { FlowRecord } from '../../../src/capture/flow-record.js';
import { DecodedFrame, IPPROTO_UDP } from '../../../src/capture/decode/frame.js';
import { EchoConv, MS, S, US, TcpConv, ipFrame, otherFrame, udpFrame } from '../../helpers/synth-flows.js';

const A = { ip: '10.1.0.1', port: 5000, mac: 0x0200000000a1 };
const B = { ip: '10.1.0.2', port: 53, mac: 0x0200000000b2 };

function table(opts: Partial<FlowTableOptions> = {}): { t: FlowTable; out: FlowRecord[] } {
  const out: FlowRecord[] = [];
  const t = new FlowTable({ onRecord: (r) => out.push(r), agentId: 'agent-7', ...opts });
  return { t, out };
}

/** An IPv6 address as its eight groups, for comparing regardless of "::" compression. */
function expand6(ip: string): string {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => parseInt(g, 16).toString(16)).join(':');
}

function sum(records: FlowRecord[], pick: (r: FlowRecord) => number): number {
  return records.reduce((a, r) => a + pick(r), 0);
}

describe('capture/flow-table', () => {
  it('marks record ids with the run (a restarted daemon does not repeat ids); the pipeline keeps both runs', async () => {
    const { Cleaner } = await import('../../../src/pipeline/clean.js');
    const runs = ['lq2x1', 'lq2x9'].map((runId) => {
      const { t, out } = table({ runId });
      t.addFrame(udpFrame(A, B, 30), 1 * MS);
      t.flush();
      return out[0]!;
    });
    expect(runs.map((r) => r.id)).to.deep.equal(['agent-7@lq2x1-1', 'agent-7@lq2x9-1']);
    expect(runs.map((r) => r.sequence)).to.deep.equal([1, 1]);
    const cleaner = new Cleaner({});
    expect(cleaner.push(runs[0]!)).to.have.length(1);
    expect(cleaner.push(runs[1]!), 'the second run is not a duplicate').to.have.length(1);
    expect(cleaner.push(runs[1]!), 'a repeat of the same id is').to.have.length(0);
    expect(() => table({ runId: 'a b' })).to.throw(/flow-table: bad option \(runId=/);
  });

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

  it('checks a flow\'s timeouts on a later fragment as on any packet: an interim record first past the active timeout (offsets stay below 2^32 µs), no join to a flow that idled out', () => {
    const laterFragment = (ipId: number, len: number): ReturnType<typeof ipFrame> => {
      const g = ipFrame({ ip: A.ip, mac: A.mac }, { ip: B.ip, mac: B.mac }, IPPROTO_UDP, len);
      g.ipId = ipId;
      g.fragOffset = 1480;
      return g;
    };
    const first = (ipId: number): ReturnType<typeof udpFrame> => {
      const f = udpFrame(A, B, 1472);
      f.ipId = ipId;
      f.moreFragments = true;
      return f;
    };
    {
      // the longest timeouts: the later fragment comes 118 minutes after the flow's interval began
      const { t, out } = table({ idleTimeoutMs: 3_600_000, activeTimeoutMs: 3_600_000, fragmentTimeoutMs: 3_600_000 });
      const M = 60 * S;
      t.addFrame(udpFrame(A, B, 10), 0);
      t.addFrame(first(7), 59 * M);
      t.addFrame(laterFragment(7, 600), 118 * M);
      t.flush();
      expect(out.map((r) => [r.exportReason, r.clientToServer.packets, r.clientToServer.firstUs, r.clientToServer.lastUs])).to.deep.equal([
        ['active-timeout', 2, 0, 59 * 60e6],
        ['flush', 1, 118 * 60e6, 118 * 60e6],
      ]);
      expect(t.stats.fragmentsJoined).to.equal(1);
    }
    {
      // defaults (idle 15 s, fragments 30 s): a fragment 20 s after the flow's last packet finds it idled out,
      // as it would have been had a tick swept it first
      const { t, out } = table();
      t.addFrame(first(8), 0);
      t.addFrame(laterFragment(8, 600), 20 * S);
      t.flush();
      expect(out.map((r) => [r.exportReason, r.key.fragmentsOnly, r.clientToServer.packets, r.startUs])).to.deep.equal([
        ['idle-timeout', false, 1, 0],
        ['flush', true, 1, 20e6],
      ]);
      expect([t.stats.fragmentsJoined, t.stats.fragmentsUnmatched]).to.deep.equal([0, 1]);
    }
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
      expect((t as unknown as { prefixes: { size: number } }).prefixes.size).to.equal(0); // fd00::/64 used twice per flow, released twice
    }
    expect(out).to.have.length(600);
    expect(out.every((r) => r.clientToServer.packets === 1 && r.serverToClient.packets === 1 && r.key.serverIp === 'fd00::ffff')).to.equal(true);
    expect(new Set(out.slice(300).map((r) => r.key.clientIp)).size).to.equal(300);
    expect(out.slice(300).some((r) => r.key.clientIp === 'fd00::12c')).to.equal(true);
  });

  it('recomputes each key hash when it grows and frees (IPv4, IPv6, non-IP, VLANs, tunnels)', () => {
    // the hash is not stored: growth rehashes from the key words, freeing unlinks by the recomputed
    // bucket; a wrong recomputation loses flows (a second packet would start a new one)
    const { t, out } = table({ initialCapacity: 2, idleTimeoutMs: 1000 });
    const kinds = (i: number, back: boolean): ReturnType<typeof udpFrame> => {
      const c = { ip: `10.7.${i >> 8}.${i & 255}`, port: 1000 + i, mac: 0x020000000100 + i };
      const c6 = { ip: `fd00::7:${i.toString(16)}`, port: 1000 + i, mac: 0x020000000100 + i };
      const sv = { ip: '10.7.255.1', port: 53, mac: 0x0200000000ff };
      const sv6 = { ip: 'fd00::ff', port: 53, mac: 0x0200000000ff };
      switch (i % 5) {
        case 0:
          return back ? udpFrame(sv, c, 10) : udpFrame(c, sv, 10);
        case 1:
          return back ? udpFrame(sv6, c6, 10) : udpFrame(c6, sv6, 10);
        case 2:
          return back ? udpFrame(sv, c, 10, { vlans: [i & 4095, 7] }) : udpFrame(c, sv, 10, { vlans: [i & 4095, 7] });
        case 3:
          return back ? udpFrame(sv, c, 10, { vni: 9000 + i }) : udpFrame(c, sv, 10, { vni: 9000 + i });
        default:
          return back ? otherFrame(0x0200000000ff, 0x020000000100 + i, 0x88b5, 60) : otherFrame(0x020000000100 + i, 0x0200000000ff, 0x88b5, 60);
      }
    };
    const n = 1500;
    for (let round = 0; round < 2; round++) {
      const t0 = round * 10 * S;
      for (let i = 0; i < n; i++) t.addFrame(kinds(i, false), t0 + i);
      for (let i = 0; i < n; i++) t.addFrame(kinds(i, true), t0 + n + i);
      expect(t.size).to.equal(n);
      t.tick(t0 + 5 * S); // frees every flow (unlinked through the recomputed bucket)
      expect(t.size).to.equal(0);
    }
    expect(out).to.have.length(2 * n);
    expect(out.every((r) => r.clientToServer.packets === 1 && r.serverToClient.packets === 1)).to.equal(true);
  });

  it('counts bytes past 2^32 exactly, per direction and per record (the rare overflow store), and does not leak them to the next flow of the slot', () => {
    const { t, out } = table();
    const big = udpFrame(A, B, 65535 - 42); // len 65,535 (a GSO/TSO-sized mirrored frame)
    const back = udpFrame(B, A, 58); // len 100
    const n = 140_000; // 9,174,900,000 bytes: past 2^33, two carries
    for (let i = 0; i < n; i++) {
      t.addFrame(big, i * 400 * US); // over 56 s: never idle, all in the first interval
      if (i % 50_000 === 0) t.addFrame(back, i * 400 * US + 1);
    }
    t.addFrame(back, 61 * S); // past the active timeout: interim record, then a new interval
    t.addFrame(big, 61 * S + 1 * US);
    t.flush();
    expect(out.map((r) => r.exportReason)).to.deep.equal(['active-timeout', 'flush']);
    expect(out[0]!.clientToServer.bytes).to.equal(n * 65535);
    expect(out[0]!.clientToServer.bytes).to.be.greaterThan(2 * 2 ** 32);
    expect(out[0]!.clientToServer.packets).to.equal(n);
    expect(out[0]!.serverToClient.bytes).to.equal(3 * 100);
    expect(out[1]!.clientToServer.bytes).to.equal(65535); // the interval restarted: no high part left
    expect(out[1]!.serverToClient.bytes).to.equal(100);
    // the freed slot is reused by the next flow: it starts from zero
    for (let i = 0; i < 70_000; i++) t.addFrame(big, 100 * S + i * US);
    t.flush();
    const C = { ip: '10.1.0.3', port: 7, mac: 0x0200000000c3 };
    t.addFrame(udpFrame(C, B, 10), 200 * S);
    t.flush();
    expect(out[2]!.clientToServer.bytes).to.equal(70_000 * 65535);
    expect(out[3]!.clientToServer.bytes).to.equal(52);
    expect(out[3]!.serverToClient.bytes).to.equal(0);
  });

  it('stores IPv6 flows by interned /64 prefix, and once 65,536 prefixes are live the client whole and the server interned (prefix + interface id); both forms find, report and free correctly', () => {
    const { t, out } = table({ idleTimeoutMs: 1000 });
    const prefixes = (t as unknown as { prefixes: { size: number } }).prefixes;
    const iids = (t as unknown as { iids: { size: number } }).iids;
    const server = { ip: '2001:db8:0:ff::53', port: 53 };
    const n = 65536 + 300; // the server's /64 takes one id: the last 301 clients are stored whole
    const client = (i: number): { ip: string; port: number } => ({
      ip: `2001:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}:0:${((i * 7919) & 0xffff).toString(16)}:1:0:${(i & 0xffff).toString(16)}`,
      port: 1000 + (i & 1023),
    });
    // one frame per direction, its client address and port rewritten per flow (the words of client(i))
    const fwd = udpFrame(client(0), server, 10);
    const bwd = udpFrame(server, client(0), 20);
    const setClient = (ip: Uint32Array, f: DecodedFrame, i: number, isSrc: boolean): void => {
      ip[0] = (0x20010000 | (i >>> 16)) >>> 0;
      ip[1] = ((i & 0xffff) << 16) >>> 0;
      ip[2] = ((((i * 7919) & 0xffff) << 16) | 1) >>> 0;
      ip[3] = i & 0xffff;
      if (isSrc) f.srcPort = 1000 + (i & 1023);
      else f.dstPort = 1000 + (i & 1023);
    };
    expect(expand6(client(70_000).ip)).to.equal(expand6('2001:1:1170:0:' + ((70_000 * 7919) & 0xffff).toString(16) + ':1:0:1170'));
    for (let round = 0; round < 2; round++) {
      const t0 = round * 10 * S;
      for (let i = 0; i < n; i++) {
        setClient(fwd.srcIp, fwd, i, true);
        t.addFrame(fwd, t0 + i);
      }
      expect(prefixes.size).to.equal(65536);
      expect(iids.size).to.equal(1); // the server's interface id, shared by the 301 whole clients
      for (let i = 0; i < n; i++) {
        setClient(bwd.dstIp, bwd, i, false);
        t.addFrame(bwd, t0 + n + i);
      }
      expect(t.size).to.equal(n); // every reply found its flow, in either form
      t.tick(t0 + 5 * S);
      expect(t.size).to.equal(0);
      expect(prefixes.size).to.equal(0); // every reference released
      expect(iids.size).to.equal(0);
    }
    expect(out).to.have.length(2 * n);
    const want = new Map<string, number>();
    for (let i = 0; i < n; i++) want.set(expand6(client(i).ip), client(i).port);
    for (const round of [out.slice(0, n), out.slice(n)]) {
      const seen = new Set<string>();
      const bad: string[] = []; // plain checks: 66k records
      for (const r of round) {
        const ip = expand6(r.key.clientIp);
        seen.add(ip);
        const ok =
          want.get(ip) === r.key.clientPort &&
          !/(^|:)0+[0-9a-f]/.test(r.key.clientIp) && // RFC 5952: no leading zeros
          r.key.serverIp === '2001:db8:0:ff::53' &&
          r.clientToServer.packets === 1 &&
          r.serverToClient.packets === 1 &&
          r.serverToClient.bytes === 62;
        if (!ok && bad.length < 5) bad.push(JSON.stringify(r.key));
      }
      expect(bad).to.deep.equal([]);
      expect(seen.size).to.equal(n);
    }
  });

  it('stores IPv6 flows in each form (prefixes, low whole, high whole, both whole) and finds, reports and frees them', async () => {
    const { Ipv6PrefixTable } = await import('../../../src/capture/ipv6-prefix-table.js');
    const { t, out } = table({ initialCapacity: 2 });
    // small intern tables, so that every form occurs with a few flows
    const inner = t as unknown as { prefixes: InstanceType<typeof Ipv6PrefixTable>; iids: InstanceType<typeof Ipv6PrefixTable> };
    inner.prefixes = new Ipv6PrefixTable(3, 1);
    inner.iids = new Ipv6PrefixTable(2, 1);
    const flows: [string, string][] = [
      ['fd00:0:0:1::a', 'fd00:0:0:2::b'], // prefixes (ids 0, 1)
      ['fd00:0:0:1::c', 'fd00:0:0:2::d'], // prefixes (shared ids)
      ['fd00:0:0:3::e', 'fd00:0:0:2::b'], // prefixes (id 2: the table is full now)
      ['fd00:0:0:4:1:2:3:4', 'fd00:0:0:1::a'], // client high and new: client whole, server interned (low prefix + iid)
      ['fd00:0:0:5::1', 'fd00:0:0:1::a'], // the same server: its iid is shared
      ['fc00::7', 'fd00:0:0:2::b'], // client low and new: client whole, server interned
      ['fc00::8', 'fc00::9'], // no prefix known: both whole
      ['fc00::10', 'fd00:0:0:3::f'], // the server's prefix is known but the iid table is full: both whole
      ['fd00:0:0:1::a', 'fd00:0:0:6::1'], // the client's prefix and iid are known, the server is new and high: server whole
    ];
    for (const [i, [c, sv]] of flows.entries()) t.addFrame(udpFrame({ ip: c, port: 1000 + i }, { ip: sv, port: 53 }, 10 + i), i * MS);
    for (const [i, [c, sv]] of flows.entries()) t.addFrame(udpFrame({ ip: sv, port: 53 }, { ip: c, port: 1000 + i }, 20 + i), 100 * MS + i * MS);
    expect(t.size).to.equal(flows.length); // every reply found its flow
    const forms = ((t as unknown as { state: Uint8Array }).state.slice(0, flows.length) as Uint8Array).map((x) => (x >> 5) & 3);
    expect([...forms]).to.deep.equal([0, 0, 0, 3, 3, 2, 1, 1, 3]);
    t.flush();
    expect(inner.prefixes.size).to.equal(0);
    expect(inner.iids.size).to.equal(0);
    expect(out).to.have.length(flows.length);
    for (const [i, [c, sv]] of flows.entries()) {
      const r = out.find((x) => x.key.clientPort === 1000 + i)!;
      expect([expand6(r.key.clientIp), expand6(r.key.serverIp)]).to.deep.equal([expand6(c), expand6(sv)]);
      expect(r.key.serverPort).to.equal(53);
      expect([r.clientToServer.bytes, r.serverToClient.bytes]).to.deep.equal([42 + 10 + i, 42 + 20 + i]);
    }
    // the pool entries were freed and are reused: the same flows again, found and reported alike
    out.length = 0;
    for (const [i, [c, sv]] of flows.entries()) t.addFrame(udpFrame({ ip: c, port: 1000 + i }, { ip: sv, port: 53 }, 10), S + i * MS);
    for (const [i, [c, sv]] of flows.entries()) t.addFrame(udpFrame({ ip: sv, port: 53 }, { ip: c, port: 1000 + i }, 10), 2 * S + i * MS);
    expect(t.size).to.equal(flows.length);
    t.flush();
    expect(out.every((r) => r.clientToServer.packets === 1 && r.serverToClient.packets === 1)).to.equal(true);
  });

  it('keeps interval anchors exact across hours of table time (rebased uint32 anchors), before the epoch, and without ticks (whole anchors)', () => {
    const epochUs = 1_700_000_000_000_000;
    const H = 3600 * S;
    const inner = (t: FlowTable): { anchorWide: boolean; anchorBase: number } => t as unknown as { anchorWide: boolean; anchorBase: number };
    {
      // ticked every 10 s over 5 hours: anchors move with the base; every record's times are exact
      const { t, out } = table({ epochUs, idleTimeoutMs: 20_000, activeTimeoutMs: 60_000 });
      for (let now = 0; now <= 5 * H; now += 10 * S) {
        t.addFrame(udpFrame(A, B, 10), now + 7 * US); // one long flow: an interim record every minute
        if (now % (30 * 60 * S) === 0) t.addFrame(udpFrame({ ...A, port: 6000 + now / S }, B, 10), now + 3 * US); // short flows
        t.tick(now + 5 * S);
      }
      expect(inner(t)).to.deep.include({ anchorWide: false }); // rebased, not widened
      expect(inner(t).anchorBase).to.be.greaterThan(4 * 3600e6);
      t.flush();
      // the long flow: a packet every 10 s (at 7 µs past), records of consecutive packets
      const long = out.filter((r) => r.key.clientPort === 5000);
      expect(long.length).to.be.greaterThan(300);
      expect(sum(long, (r) => r.clientToServer.packets)).to.equal(5 * 360 + 1);
      let next = 7;
      for (const [j, r] of long.entries()) {
        const n = r.clientToServer.packets;
        expect([r.startUs, r.clientToServer.firstUs, r.endUs], `record ${j}`).to.deep.equal([epochUs + next, epochUs + next, epochUs + next + (n - 1) * 10e6]);
        next += n * 10e6;
      }
      const short = out.filter((r) => r.key.clientPort !== 5000);
      expect(short.map((r) => r.startUs - epochUs)).to.deep.equal(Array.from({ length: 11 }, (_, j) => (j * 30 * 60 * S + 3 * US) / 1000));
      expect(short.map((r) => r.exportReason)).to.deep.equal([...new Array(10).fill('idle-timeout'), 'flush']);
      expect(short.every((r) => r.endUs === r.startUs)).to.equal(true);
    }
    {
      // no tick: a flow untouched for 3 hours, flows before the epoch, and many flows after the switch
      const { t, out } = table({ epochUs, initialCapacity: 2 });
      t.addFrame(udpFrame(A, B, 10), 1 * S);
      t.addFrame(udpFrame({ ...A, port: 5001 }, B, 10), -2 * S);
      t.addFrame(udpFrame({ ...A, port: 5002 }, B, 10), 3 * H);
      for (let i = 0; i < 100; i++) t.addFrame(udpFrame({ ...A, port: 7000 + i }, B, 10), 3 * H + i * MS);
      t.addFrame(udpFrame(B, { ...A, port: 5002 }, 10), 3 * H + 5 * S);
      t.addFrame(udpFrame(B, A, 10), 3 * H + 6 * S); // the first flow timed out long ago: a record, then a new flow
      expect(inner(t)).to.deep.include({ anchorWide: true, anchorBase: 0 });
      t.flush();
      const byPort = (p: number): FlowRecord[] => out.filter((r) => r.key.clientPort === p || (r.key.serverPort === p && r.key.serverIp === A.ip));
      expect(byPort(5001).map((r) => [r.exportReason, r.startUs - epochUs, r.endUs - epochUs])).to.deep.equal([['flush', -2_000_000, -2_000_000]]);
      expect(byPort(5002).map((r) => [r.startUs - epochUs, r.serverToClient.lastUs - epochUs])).to.deep.equal([[3 * 3600e6, 3 * 3600e6 + 5e6]]);
      const first = byPort(5000);
      expect(first.map((r) => [r.exportReason, r.startUs - epochUs, r.clientToServer.packets, r.serverToClient.packets])).to.deep.equal([
        ['idle-timeout', 1e6, 1, 0],
        ['flush', 3 * 3600e6 + 6e6, 1, 0], // B sent first: B is the client
      ]);
      for (let i = 0; i < 100; i++) expect(byPort(7000 + i)[0]!.startUs - epochUs).to.equal(3 * 3600e6 + i * 1000);
    }
  });

  it('holds exactly one intern reference per interned half of a live IPv6 flow in every form, through evictions (maxFlows), timeouts and flush', async () => {
    const { Ipv6PrefixTable } = await import('../../../src/capture/ipv6-prefix-table.js');
    const { t, out } = table({ maxFlows: 3, initialCapacity: 1, idleTimeoutMs: 500 });
    type Table = InstanceType<typeof Ipv6PrefixTable>;
    const inner = t as unknown as { prefixes: Table; iids: Table; state: Uint8Array; keys: Uint32Array; highWater: number };
    inner.prefixes = new Ipv6PrefixTable(3, 1);
    inner.iids = new Ipv6PrefixTable(2, 1);
    const pool = ['fd00:0:0:1::a', 'fd00:0:0:1::b', 'fd00:0:0:2::a', 'fd00:0:0:3::c', 'fc00::1', 'fc00::2', 'fe80::5:6:7:8', '2001:db8::1'];
    const refs = (x: Table): number => Array.from({ length: x.maxEntries }, (_, id) => x.refCount(id)).reduce((a, b) => a + b, 0);
    const seenForms = new Set<number>();
    let seed = 7;
    const rnd = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    const sent: [string, string, number][] = [];
    for (let i = 0; i < 400; i++) {
      const c = pool[rnd(pool.length)]!;
      const sv = pool[rnd(pool.length)]!;
      const port = 1000 + i;
      t.addFrame(udpFrame({ ip: c, port }, { ip: sv, port: 53 }, 10), i * 100 * MS);
      sent.push([c, sv, port]);
      if (i % 7 === 0) t.tick(i * 100 * MS);
      if (i % 97 === 0) t.flush();
      // the references the live flows need, by form: both prefixes (0), low or high whole (a prefix
      // and an interface id), both whole (none)
      let wantP = 0;
      let wantI = 0;
      for (let s = 0; s < inner.highWater; s++) {
        const st = inner.state[s]!;
        if (!(st & 1)) continue;
        const form = (st >> 5) & 3;
        seenForms.add(form);
        if (form === 0) wantP += 2;
        else if (form !== 1) {
          wantP++;
          wantI++;
        }
      }
      expect([refs(inner.prefixes), refs(inner.iids)], `after frame ${i}`).to.deep.equal([wantP, wantI]);
    }
    t.flush();
    expect([inner.prefixes.size, inner.iids.size, refs(inner.prefixes), refs(inner.iids)]).to.deep.equal([0, 0, 0, 0]);
    expect([...seenForms].sort()).to.deep.equal([0, 1, 2, 3]);
    expect(t.stats.evictions).to.be.greaterThan(50);
    expect(out).to.have.length(sent.length);
    for (const [c, sv, port] of sent) {
      const r = out.find((x) => x.key.clientPort === port)!;
      expect([expand6(r.key.clientIp), expand6(r.key.serverIp)], `flow ${port}`).to.deep.equal([expand6(c), expand6(sv)]);
    }
  });

  it('goes back to uint32 anchors once the live anchors fit again (a pause of hours without ticks, or a frame stamped hours back, widens them only for a while); records stay exact throughout', () => {
    const epochUs = 1_700_000_000_000_000;
    const H = 3600 * S;
    type Inner = { anchorWide: boolean; anchorBase: number; anchor: Uint32Array | Float64Array };
    const inner = (t: FlowTable): Inner => t as unknown as Inner;
    const fits = (t: FlowTable, nowNs: number): boolean => {
      const x = Math.floor(nowNs / 1000) - inner(t).anchorBase;
      return x >= 0 && x <= 0xffffffff;
    };
    {
      // a pause of 3 hours without ticks (a replay's gap, without windows): the first frame after it
      // creates a flow while the old ones are still live (expired, not yet swept)
      const { t, out } = table({ epochUs, activeTimeoutMs: 60_000 });
      t.addFrame(udpFrame(A, B, 10), 1 * S);
      t.addFrame(udpFrame({ ...A, port: 5001 }, B, 10), 2 * S);
      t.tick(2 * S);
      t.addFrame(udpFrame({ ...A, port: 5002 }, B, 10), 3 * H); // a flow that lives on across the switch back
      expect(inner(t).anchorWide).to.equal(true);
      t.tick(3 * H + 1 * S); // sweeps the two old flows out: every live anchor fits uint32 again
      expect(t.size).to.equal(1);
      expect(inner(t).anchorWide, 'back to uint32 anchors').to.equal(false);
      expect(inner(t).anchor).to.be.an.instanceOf(Uint32Array);
      expect(fits(t, 3 * H + 1 * S)).to.equal(true);
      for (let j = 1; j <= 90; j++) {
        t.addFrame(udpFrame(B, { ...A, port: 5002 }, 10), 3 * H + j * S); // interim records at 60 s
        t.tick(3 * H + j * S);
      }
      t.flush();
      const late = out.filter((r) => r.key.clientPort === 5002);
      expect(late.map((r) => [r.exportReason, r.startUs - epochUs, r.endUs - epochUs, r.clientToServer.packets + r.serverToClient.packets])).to.deep.equal([
        ['active-timeout', 3 * 3600e6, 3 * 3600e6 + 59e6, 60],
        ['flush', 3 * 3600e6 + 60e6, 3 * 3600e6 + 90e6, 31],
      ]);
      expect(out.filter((r) => r.key.clientPort !== 5002).map((r) => [r.exportReason, r.startUs - epochUs])).to.deep.equal([
        ['idle-timeout', 1e6],
        ['idle-timeout', 2e6],
      ]);
    }
    {
      // ticked every second; one frame stamped 2 hours back (a clock step) starts a flow of its own
      const { t, out } = table({ epochUs, idleTimeoutMs: 10_000 });
      const t0 = 5 * H;
      for (let j = 0; j < 20; j++) {
        t.addFrame(udpFrame(A, B, 10), t0 + j * S);
        if (j === 5) t.addFrame(udpFrame({ ...A, port: 6000 }, B, 10), t0 + j * S - 2 * H);
        t.tick(t0 + j * S);
      }
      expect(inner(t).anchorWide, 'the stray flow is gone after one sweep: back to uint32').to.equal(false);
      expect(fits(t, t0 + 20 * S)).to.equal(true);
      t.flush();
      expect(out.map((r) => [r.key.clientPort, r.exportReason, r.startUs - epochUs, r.endUs - epochUs])).to.deep.equal([
        [6000, 'idle-timeout', (t0 + 5 * S - 2 * H) / 1000, (t0 + 5 * S - 2 * H) / 1000],
        [5000, 'flush', t0 / 1000, (t0 + 19 * S) / 1000],
      ]);
    }
  });

  it('keeps flow ids exact past 2^32 (a slot stores the low 32 bits)', () => {
    const { t, out } = table();
    (t as unknown as { flowCounter: number }).flowCounter = 2 ** 32 - 2;
    for (let i = 0; i < 4; i++) t.addFrame(udpFrame({ ip: `10.8.0.${i + 1}`, port: 1 }, B, 10), i);
    t.flush();
    expect(out.map((r) => r.flowId)).to.deep.equal([2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 32 + 2]);
  });

  it('keeps a single-exchange ICMP echo flow inline, and moves it to an object on the second pending request or RTT sample', () => {
    const { t, out } = table();
    const single = new EchoConv({ ip: '10.4.0.1', mac: 1 }, { ip: '10.4.0.2', mac: 2 }, 1);
    single.request(0, 5);
    single.reply(150 * US, 5);
    const unanswered = new EchoConv({ ip: '10.4.0.1', mac: 1 }, { ip: '10.4.0.2', mac: 2 }, 2);
    unanswered.request(0, 1);
    unanswered.reply(10 * US, 2); // a reply to nothing: counted, no sample
    const two = new EchoConv({ ip: '10.4.0.1', mac: 1 }, { ip: '10.4.0.2', mac: 2 }, 3);
    two.request(0, 1);
    two.request(1 * MS, 2); // second pending request
    two.reply(1 * MS + 300 * US, 1);
    two.reply(1 * MS + 400 * US, 2);
    for (const e of [single, unanswered, two]) for (const { f, tNs } of e.frames) t.addFrame(f, tNs);
    expect(t.icmp.states.size).to.equal(1); // only `two` has an object
    t.flush();
    expect(t.icmp.states.size).to.equal(0);
    const byId = new Map(out.map((r) => [r.key.icmpId, r]));
    expect(byId.get(1)!.icmp).to.deep.include({ echoRequests: 1, echoReplies: 1, unanswered: 0 });
    expect(byId.get(1)!.icmp!.rtt).to.include({ count: 1, minUs: 150, maxUs: 150, sumUs: 150 });
    expect(byId.get(1)!.lossRate).to.equal(0);
    expect(byId.get(2)!.icmp).to.deep.equal({ echoRequests: 1, echoReplies: 1, unanswered: 1 });
    expect(byId.get(3)!.icmp).to.deep.include({ echoRequests: 2, echoReplies: 2, unanswered: 0 });
    expect(byId.get(3)!.icmp!.rtt).to.include({ count: 2, minUs: 400, maxUs: 1300, sumUs: 1700 });
  });

  it('inline ICMP echo state survives an interim record (pending request kept, counters restart)', () => {
    const { t, out } = table({ activeTimeoutMs: 10_000, icmp: { echoTimeoutMs: 20_000 } });
    const e = new EchoConv({ ip: '10.4.1.1' }, { ip: '10.4.1.2' }, 7);
    e.request(0, 1);
    e.reply(200 * US, 1);
    e.request(9 * S, 2); // pending across the interim record at 10 s
    for (const { f, tNs } of e.frames) t.addFrame(f, tNs);
    t.tick(10 * S);
    const late = new EchoConv({ ip: '10.4.1.1' }, { ip: '10.4.1.2' }, 7);
    late.reply(9 * S + 700 * MS, 2);
    for (const { f, tNs } of late.frames) t.addFrame(f, tNs);
    t.flush();
    expect(t.icmp.states.size).to.equal(0);
    expect(out.map((r) => r.exportReason)).to.deep.equal(['active-timeout', 'flush']);
    expect(out[0]!.icmp).to.deep.include({ echoRequests: 2, echoReplies: 1, unanswered: 0 });
    expect(out[0]!.icmp!.rtt).to.include({ count: 1, minUs: 200 });
    expect(out[1]!.icmp).to.deep.include({ echoRequests: 0, echoReplies: 1, unanswered: 0 });
    expect(out[1]!.icmp!.rtt).to.include({ count: 1, minUs: 700_000 });
  });

  it('reuses a slot between ICMP echo and TCP flows without leaking state (they share per-slot words)', () => {
    const { t, out } = table({ initialCapacity: 1, maxFlows: 1 });
    const C = { ip: '10.5.0.1', port: 40000, mac: 1 };
    const SV = { ip: '10.5.0.2', port: 80, mac: 2 };
    const tcp = (t0: number): TcpConv => {
      const c = new TcpConv(C, SV, { ts: true });
      c.handshake(t0, 100 * US, 100 * US);
      c.data('c2s', t0 + 1 * MS, 100);
      c.ack('s2c', t0 + 1 * MS + 250 * US);
      c.rst('c2s', t0 + 2 * MS);
      return c;
    };
    const echo = (t0: number): EchoConv => {
      const e = new EchoConv({ ip: '10.5.0.1' }, { ip: '10.5.0.2' }, 11);
      e.request(t0, 1);
      e.reply(t0 + 90 * US, 1);
      return e;
    };
    for (const { f, tNs } of tcp(0).frames) t.addFrame(f, tNs);
    for (const { f, tNs } of echo(1 * S).frames) t.addFrame(f, tNs);
    for (const { f, tNs } of tcp(2 * S).frames) t.addFrame(f, tNs); // evicts the echo flow
    t.flush();
    expect(out.map((r) => (r.tcp ? 'tcp' : 'icmp'))).to.deep.equal(['tcp', 'icmp', 'tcp']);
    expect(out[0]!.tcp!.serverTsRttSummary).to.deep.equal({ count: 1, minUs: 250, maxUs: 250, sumUs: 250 });
    expect(out[1]!.icmp).to.deep.include({ echoRequests: 1, echoReplies: 1, unanswered: 0 });
    expect(out[1]!.icmp!.rtt).to.include({ count: 1, minUs: 90 });
    expect(out[2]!.tcp!.serverTsRttSummary).to.deep.equal({ count: 1, minUs: 250, maxUs: 250, sumUs: 250 });
    expect(out[2]!.tcp!.clientTsRttSummary).to.equal(undefined);
  });

  it('rejects bad options with a MirrorflowError', () => {
    expect(() => new FlowTable({ onRecord: () => {}, idleTimeoutMs: 0 })).to.throw(/flow-table: bad option \(idleTimeoutMs=0/);
    expect(() => new FlowTable({ onRecord: () => {}, activeTimeoutMs: 5_000_000 })).to.throw(/activeTimeoutMs/);
  });
});
