import { expect } from 'chai';
import { FlowTable, type FlowTableOptions } from '../../../src/capture/flow-table.js';
import type { FlowRecord } from '../../../src/capture/flow-record.js';
import { MS, S, US, TcpConv, type SynthFrame } from '../../helpers/synth-flows.js';

const C = { ip: '10.0.0.1', port: 40000, mac: 0x02000000000a };
const SV = { ip: '10.0.0.2', port: 80, mac: 0x02000000000b };

function run(frames: SynthFrame[], opts: Partial<FlowTableOptions> = {}, flushAtNs?: number): FlowRecord[] {
  const out: FlowRecord[] = [];
  const t = new FlowTable({ onRecord: (r) => out.push(r), agentId: 'a1', ...opts });
  for (const { f, tNs } of frames) t.addFrame(f, tNs);
  if (flushAtNs !== undefined) t.tick(flushAtNs);
  t.flush();
  return out;
}

function only(records: FlowRecord[]): FlowRecord {
  expect(records).to.have.length(1);
  return records[0]!;
}

/** Client sends n segments of `mss` bytes at 10 µs spacing; the server acks each. */
function bulk(c: TcpConv, t0: number, n: number, mss = 1000): number {
  let t = t0;
  for (let i = 0; i < n; i++) {
    c.data('c2s', t, mss);
    c.ack('s2c', t + 5 * US);
    t += 10 * US;
  }
  return t;
}

describe('capture/tcp-metrics (through the flow table)', () => {
  it('measures the handshake and its split exactly, with packet/byte truth', () => {
    const c = new TcpConv(C, SV);
    c.handshake(1 * MS, 180 * US, 35 * US);
    bulk(c, 2 * MS, 10);
    const r = only(run(c.frames));
    expect(r.tcp!.handshakeServerUs).to.equal(180);
    expect(r.tcp!.handshakeClientUs).to.equal(35);
    expect(r.tcp!.handshakeRttUs).to.equal(215);
    expect(r.tcp!.failed).to.equal(false);
    expect(r.clientToServer.packets).to.equal(c.truth.c2s.packets);
    expect(r.clientToServer.bytes).to.equal(c.truth.c2s.bytes);
    expect(r.serverToClient.packets).to.equal(c.truth.s2c.packets);
    expect(r.serverToClient.bytes).to.equal(c.truth.s2c.bytes);
    expect(r.clientToServer.firstUs).to.equal(1000);
    expect(r.serverToClient.firstUs).to.equal(1180);
    expect(r.tcp!.clientToServer.dataSegments).to.equal(10);
    expect(r.tcp!.clientToServer.retransmits).to.equal(0);
    expect(r.tcp!.clientToServer.gapFills).to.equal(0);
    expect(r.lossRate).to.equal(0);
    expect(r.key).to.include({ clientIp: '10.0.0.1', serverIp: '10.0.0.2', clientPort: 40000, serverPort: 80, protocol: 6 });
    expect(r.key.clientMac).to.equal('02:00:00:00:00:0a');
  });

  it('with retransmitted SYNs measures from the last SYN before the SYN/ACK', () => {
    const c = new TcpConv(C, SV);
    c.syn(0);
    c.syn(1 * S);
    c.syn(3 * S);
    c.synAck(3 * S + 250 * US);
    c.ack3(3 * S + 300 * US);
    const r = only(run(c.frames));
    expect(r.tcp!.handshakeServerUs).to.equal(250);
    expect(r.tcp!.handshakeClientUs).to.equal(50);
    expect(r.tcp!.handshakeRttUs).to.equal(300);
    expect(r.tcp!.clientToServer.synRetransmits).to.equal(2);
  });

  it('with a retransmitted SYN/ACK measures the client part from the last SYN/ACK', () => {
    const c = new TcpConv(C, SV);
    c.syn(0);
    c.synAck(100 * US);
    c.synAck(1 * S + 100 * US);
    c.ack3(1 * S + 140 * US);
    const r = only(run(c.frames));
    expect(r.tcp!.handshakeServerUs).to.equal(100);
    expect(r.tcp!.handshakeClientUs).to.equal(40);
    expect(r.tcp!.handshakeRttUs).to.equal(140);
    expect(r.tcp!.serverToClient.synRetransmits).to.equal(1);
  });

  it('a flow first seen at its SYN/ACK: the receiver is the client, only the client part is known', () => {
    const c = new TcpConv(C, SV);
    c.synAck(0);
    c.ack3(70 * US);
    const r = only(run(c.frames));
    expect(r.key.clientIp).to.equal('10.0.0.1');
    expect(r.key.serverPort).to.equal(80);
    expect(r.tcp!.handshakeClientUs).to.equal(70);
    expect(r.tcp!.handshakeServerUs).to.equal(undefined);
    expect(r.tcp!.handshakeRttUs).to.equal(undefined);
  });

  it('counts a retransmission of data already seen at the mirror (loss after the mirror)', () => {
    const c = new TcpConv(C, SV);
    c.handshake(0, 100 * US, 100 * US);
    const seg3 = c.nxt.c2s + 2 * 1000;
    bulk(c, 1 * MS, 6);
    c.data('c2s', 50 * MS, 1000, { seq: seg3 });
    const r = only(run(c.frames));
    expect(r.tcp!.clientToServer.dataSegments).to.equal(7);
    expect(r.tcp!.clientToServer.retransmits).to.equal(1);
    expect(r.tcp!.clientToServer.gapFills).to.equal(0);
    expect(r.lossRate).to.equal(1 / 7);
  });

  it('counts a late fill of a hole after 3 duplicate ACKs as a gap fill (loss before the mirror)', () => {
    const c = new TcpConv(C, SV);
    c.handshake(0, 100 * US, 100 * US);
    bulk(c, 1 * MS, 2);
    const holeStart = c.nxt.c2s;
    c.data('c2s', 2 * MS, 1000, { mirrored: false });
    for (let i = 0; i < 3; i++) {
      c.data('c2s', 2 * MS + (i + 1) * 10 * US, 1000);
      c.ack('s2c', 2 * MS + (i + 1) * 10 * US + 5 * US, { ack: holeStart });
    }
    c.data('c2s', 2 * MS + 100 * US, 1000, { seq: holeStart });
    c.ack('s2c', 2 * MS + 110 * US, { ack: c.nxt.c2s });
    const r = only(run(c.frames));
    expect(r.tcp!.clientToServer.gapFills).to.equal(1);
    expect(r.tcp!.clientToServer.retransmits).to.equal(0);
    expect(r.tcp!.clientToServer.outOfOrder).to.equal(0);
    expect(r.tcp!.serverToClient.dupAcks).to.equal(3);
    expect(r.tcp!.clientToServer.dataSegments).to.equal(6);
  });

  it('counts a hole filled after the retransmission-timeout floor (no dup ACKs) as a gap fill', () => {
    const c = new TcpConv(C, SV);
    c.handshake(0, 100 * US, 100 * US);
    bulk(c, 1 * MS, 2);
    const holeStart = c.nxt.c2s;
    c.data('c2s', 2 * MS, 1000, { mirrored: false });
    c.data('c2s', 2 * MS + 10 * US, 1000);
    c.data('c2s', 2 * MS + 300 * MS, 1000, { seq: holeStart });
    const r = only(run(c.frames));
    expect(r.tcp!.clientToServer.gapFills).to.equal(1);
    expect(r.tcp!.clientToServer.outOfOrder).to.equal(0);
  });

  it('with SACK, a second hole above the duplicate ACKs\' point is a gap fill too; a fill one RTT late is a gap fill without them', () => {
    // handshake RTT 20 ms (the path beyond the mirror is slow): resends reach the mirror ≥ 1 RTT after the hole opened
    const c = new TcpConv(C, SV);
    c.handshake(0, 10 * MS, 10 * MS);
    bulk(c, 21 * MS, 2);
    const hole1 = c.nxt.c2s;
    c.data('c2s', 22 * MS, 1000, { mirrored: false });
    c.data('c2s', 22 * MS + 10 * US, 1000);
    const hole2 = c.nxt.c2s;
    c.data('c2s', 22 * MS + 20 * US, 1000, { mirrored: false });
    for (let i = 0; i < 3; i++) {
      c.data('c2s', 22 * MS + (i + 3) * 10 * US, 1000);
      c.ack('s2c', 22 * MS + (i + 3) * 10 * US + 5 * US, { ack: hole1 });
    }
    // both resent about one RTT later (fast retransmit with SACK)
    c.data('c2s', 42 * MS, 1000, { seq: hole1 });
    c.data('c2s', 42 * MS + 10 * US, 1000, { seq: hole2 });
    // a third loss with no duplicate ACKs seen, resent 15 ms (> RTT / 2) after its hole opened
    bulk(c, 43 * MS, 1);
    const hole3 = c.nxt.c2s;
    c.data('c2s', 44 * MS, 1000, { mirrored: false });
    c.data('c2s', 44 * MS + 10 * US, 1000);
    c.data('c2s', 59 * MS, 1000, { seq: hole3 });
    const r = only(run(c.frames));
    expect(r.tcp!.clientToServer.gapFills).to.equal(3);
    expect(r.tcp!.clientToServer.outOfOrder).to.equal(0);
    expect(r.tcp!.clientToServer.retransmits).to.equal(0);
  });

  it('counts reordering that is not loss as out-of-order (one dup ACK, filled quickly)', () => {
    const c = new TcpConv(C, SV);
    c.handshake(0, 100 * US, 100 * US);
    bulk(c, 1 * MS, 2);
    const s3 = c.nxt.c2s;
    c.data('c2s', 2 * MS, 1000, { mirrored: false }); // advances the model; sent below out of order
    c.data('c2s', 2 * MS + 10 * US, 1000);
    c.ack('s2c', 2 * MS + 15 * US, { ack: s3 });
    c.data('c2s', 2 * MS + 20 * US, 1000, { seq: s3 });
    c.ack('s2c', 2 * MS + 25 * US, { ack: c.nxt.c2s });
    const r = only(run(c.frames));
    expect(r.tcp!.clientToServer.outOfOrder).to.equal(1);
    expect(r.tcp!.clientToServer.gapFills).to.equal(0);
    expect(r.tcp!.clientToServer.retransmits).to.equal(0);
    expect(r.tcp!.serverToClient.dupAcks).to.equal(1);
    expect(r.lossRate).to.equal(0);
  });

  it('handles sequence wrap-around at 2^32 (in order, retransmit, gap fill across the wrap)', () => {
    const c = new TcpConv(C, SV, { clientIsn: 0xffffffff - 3500 });
    c.handshake(0, 100 * US, 100 * US);
    bulk(c, 1 * MS, 3); // 0xfffff…: ends just below the wrap
    const beforeWrap = c.nxt.c2s;
    expect(beforeWrap).to.be.greaterThan(0xffff0000);
    bulk(c, 2 * MS, 3); // crosses 2^32
    expect(c.nxt.c2s).to.be.lessThan(0x10000);
    c.data('c2s', 3 * MS, 1000, { seq: beforeWrap }); // retransmit across the wrap
    const hole = c.nxt.c2s;
    c.data('c2s', 4 * MS, 1000, { mirrored: false });
    c.data('c2s', 4 * MS + 10 * US, 1000);
    c.data('c2s', 400 * MS, 1000, { seq: hole });
    const r = only(run(c.frames));
    expect(r.tcp!.clientToServer.dataSegments).to.equal(9);
    expect(r.tcp!.clientToServer.retransmits).to.equal(1);
    expect(r.tcp!.clientToServer.gapFills).to.equal(1);
    expect(r.tcp!.clientToServer.outOfOrder).to.equal(0);
  });

  it('counts a SACK-recovered retransmission once, and not the segments around it', () => {
    const c = new TcpConv(C, SV);
    c.handshake(0, 100 * US, 100 * US);
    bulk(c, 1 * MS, 2);
    const lost = c.nxt.c2s;
    c.data('c2s', 2 * MS, 1000); // seen at the mirror, lost after it
    for (let i = 0; i < 4; i++) {
      c.data('c2s', 2 * MS + (i + 1) * 10 * US, 1000);
      c.ack('s2c', 2 * MS + (i + 1) * 10 * US + 5 * US, { ack: lost, sackBlocks: 1 });
    }
    c.data('c2s', 2 * MS + 80 * US, 1000, { seq: lost });
    c.ack('s2c', 2 * MS + 90 * US, { ack: c.nxt.c2s });
    const r = only(run(c.frames));
    expect(r.tcp!.clientToServer.retransmits).to.equal(1);
    expect(r.tcp!.clientToServer.gapFills).to.equal(0);
    expect(r.tcp!.clientToServer.outOfOrder).to.equal(0);
    expect(r.tcp!.serverToClient.dupAcks).to.equal(4);
    expect(r.tcp!.clientToServer.dataSegments).to.equal(8);
  });

  it('does not count keep-alives (0 and 1 byte at nxt-1) as data or retransmissions', () => {
    const c = new TcpConv(C, SV);
    c.handshake(0, 100 * US, 100 * US);
    bulk(c, 1 * MS, 3);
    c.keepAlive('c2s', 10 * S, 0);
    c.ack('s2c', 10 * S + 100 * US);
    c.keepAlive('c2s', 20 * S, 1);
    c.ack('s2c', 20 * S + 100 * US);
    c.keepAlive('c2s', 30 * S, 1);
    const r = only(run(c.frames));
    expect(r.tcp!.clientToServer.dataSegments).to.equal(3);
    expect(r.tcp!.clientToServer.retransmits).to.equal(0);
    expect(r.tcp!.serverToClient.dupAcks).to.equal(0);
  });

  it('does not count zero-window probes; counts the zero window once', () => {
    const c = new TcpConv(C, SV);
    c.handshake(0, 100 * US, 100 * US);
    bulk(c, 1 * MS, 3);
    c.ack('s2c', 2 * MS, { window: 0 });
    const probe = c.nxt.c2s;
    c.data('c2s', 200 * MS, 1, { seq: probe });
    c.ack('s2c', 200 * MS + 50 * US, { window: 0, ack: probe });
    c.data('c2s', 600 * MS, 1, { seq: probe });
    c.ack('s2c', 600 * MS + 50 * US, { window: 0, ack: probe });
    c.data('c2s', 1400 * MS, 1, { seq: probe });
    c.ack('s2c', 1400 * MS + 50 * US, { window: 1000, ack: probe + 1 });
    c.data('c2s', 1401 * MS, 1000, { seq: probe + 1 });
    const r = only(run(c.frames));
    expect(r.tcp!.clientToServer.dataSegments).to.equal(4);
    expect(r.tcp!.clientToServer.retransmits).to.equal(0);
    expect(r.tcp!.clientToServer.gapFills).to.equal(0);
    expect(r.tcp!.clientToServer.outOfOrder).to.equal(0);
    expect(r.tcp!.serverToClient.zeroWindows).to.equal(1);
    expect(r.tcp!.serverToClient.dupAcks).to.equal(0);
  });

  it('reports an unanswered SYN as synOnly/failed at the idle timeout', () => {
    const c = new TcpConv(C, SV);
    c.syn(0);
    c.syn(1 * S);
    c.syn(3 * S);
    const out: FlowRecord[] = [];
    const t = new FlowTable({ onRecord: (r) => out.push(r) });
    for (const { f, tNs } of c.frames) t.addFrame(f, tNs);
    t.tick(17 * S);
    expect(out).to.have.length(0);
    t.tick(18 * S);
    const r = only(out);
    expect(r.exportReason).to.equal('idle-timeout');
    expect(r.tcp).to.include({ synOnly: true, failed: true, rstAnswered: false });
    expect(r.tcp!.handshakeRttUs).to.equal(undefined);
    expect(r.clientToServer.packets).to.equal(3);
    expect(t.size).to.equal(0);
  });

  it('an unanswered SYN cut at a window boundary: the failure comes in a record without packets, timed when the flow ended', () => {
    const c = new TcpConv(C, SV);
    c.syn(9 * S + 500 * MS);
    const out: FlowRecord[] = [];
    const t = new FlowTable({ onRecord: (r) => out.push(r), epochUs: 1_700_000_000_000_000 });
    for (const { f, tNs } of c.frames) t.addFrame(f, tNs);
    t.cutAll(10 * S); // the window boundary: an interim record with the SYN, not failed yet
    t.tick(20 * S); // not idle for 15 s yet
    t.tick(25 * S); // idle since 9.5 s: ended at 25 s
    expect(out).to.have.length(2);
    const [interim, end] = out as [FlowRecord, FlowRecord];
    expect(interim.exportReason).to.equal('active-timeout');
    expect(interim.clientToServer.packets).to.equal(1);
    expect(interim.tcp).to.include({ synOnly: false, failed: false });
    expect(end.exportReason).to.equal('idle-timeout');
    expect(end.clientToServer.packets + end.serverToClient.packets).to.equal(0);
    expect(end.tcp).to.include({ synOnly: true, failed: true });
    // not at the SYN (9.5 s, a window a pipeline closed long before the record comes)
    expect(end.startUs).to.equal(1_700_000_000_000_000 + 25_000_000);
    expect(end.endUs).to.equal(end.startUs);
  });

  it('reports a SYN answered by RST as failed, ending the flow at once', () => {
    const c = new TcpConv(C, SV);
    c.syn(0);
    c.rst('s2c', 80 * US);
    const out: FlowRecord[] = [];
    const t = new FlowTable({ onRecord: (r) => out.push(r) });
    for (const { f, tNs } of c.frames) t.addFrame(f, tNs);
    const r = only(out);
    expect(r.exportReason).to.equal('end-rst');
    expect(r.tcp).to.include({ rstAnswered: true, failed: true, synOnly: false });
    expect(r.tcp!.serverToClient.rsts).to.equal(1);
  });

  it('ends an established flow on RST', () => {
    const c = new TcpConv(C, SV);
    c.handshake(0, 100 * US, 100 * US);
    bulk(c, 1 * MS, 2);
    c.rst('c2s', 5 * MS);
    const out: FlowRecord[] = [];
    const t = new FlowTable({ onRecord: (r) => out.push(r) });
    for (const { f, tNs } of c.frames) t.addFrame(f, tNs);
    const r = only(out);
    expect(r.exportReason).to.equal('end-rst');
    expect(r.tcp!.clientToServer.rsts).to.equal(1);
    expect(r.tcp!.failed).to.equal(false);
    expect(r.tcp!.handshakeRttUs).to.equal(200);
  });

  it('ends on both FINs plus the last ACK at once; without the last ACK after the linger', () => {
    const c = new TcpConv(C, SV);
    c.handshake(0, 100 * US, 100 * US);
    bulk(c, 1 * MS, 2);
    c.fin('c2s', 5 * MS);
    c.ack('s2c', 5 * MS + 50 * US);
    c.fin('s2c', 6 * MS);
    c.ack('c2s', 6 * MS + 50 * US);
    const out: FlowRecord[] = [];
    const t = new FlowTable({ onRecord: (r) => out.push(r) });
    for (const { f, tNs } of c.frames) t.addFrame(f, tNs);
    expect(only(out).exportReason).to.equal('end-fin');
    expect(out[0]!.clientToServer.packets).to.equal(c.truth.c2s.packets);
    expect(t.size).to.equal(0);

    const d = new TcpConv(C, SV);
    d.handshake(0, 100 * US, 100 * US);
    d.fin('c2s', 5 * MS);
    d.fin('s2c', 6 * MS);
    const out2: FlowRecord[] = [];
    const t2 = new FlowTable({ onRecord: (r) => out2.push(r), finLingerMs: 1000 });
    for (const { f, tNs } of d.frames) t2.addFrame(f, tNs);
    t2.tick(500 * MS);
    expect(out2).to.have.length(0);
    t2.tick(1007 * MS);
    expect(only(out2).exportReason).to.equal('end-fin');
  });

  it('samples RTT from TCP timestamps per direction', () => {
    const c = new TcpConv(C, SV, { ts: true });
    c.handshake(0, 100 * US, 100 * US); // TSvals on SYNs are skipped; the ACK at 200 µs repeats the SYN's TSval
    // server TSval (tick 500002) first seen at 2.04 ms; the client echoes it at 2.07 ms (30 µs)
    c.data('s2c', 2 * MS + 40 * US, 100);
    // that client ACK carries a new TSval (tick 1002): the server echoes it at 2.5 ms (430 µs)
    c.ack('c2s', 2 * MS + 70 * US);
    c.data('s2c', 2 * MS + 500 * US, 100);
    // a second echo of the same value is no new sample
    c.data('s2c', 2 * MS + 600 * US, 100);
    const r = only(run(c.frames));
    expect(r.tcp!.serverTsRttSummary).to.deep.equal({ count: 1, minUs: 430, maxUs: 430, sumUs: 430 });
    expect(r.tcp!.clientTsRttSummary).to.deep.equal({ count: 1, minUs: 30, maxUs: 30, sumUs: 30 });
  });

  it('summarises timestamp RTT samples per record (count, min, max, sum) and restarts after an interim record', () => {
    const c = new TcpConv(C, SV, { ts: true });
    c.handshake(0, 100 * US, 100 * US);
    c.data('c2s', 1 * MS, 100); // client TSval 1001 pending at 1 ms
    c.ack('s2c', 1 * MS + 250 * US); // echoes it: server sample 250; server TSval 500001 pending
    c.data('c2s', 2 * MS, 100); // client sample 750; TSval 1002 pending
    c.ack('s2c', 2 * MS + 400 * US); // server sample 400; TSval 500002 pending
    c.data('c2s', 3 * MS, 100); // client sample 600; TSval 1003 pending
    c.ack('s2c', 3 * MS + 100 * US); // server sample 100; TSval 500003 pending across the interim record
    const first = c.frames.length;
    c.data('c2s', 10 * S + 1 * MS, 100); // client sample 10.001 s − 3.1 ms, in the next record
    c.ack('s2c', 10 * S + 1300 * US); // server sample 300
    const out: FlowRecord[] = [];
    const t = new FlowTable({ onRecord: (r) => out.push(r), activeTimeoutMs: 10_000 });
    c.frames.slice(0, first).forEach(({ f, tNs }) => t.addFrame(f, tNs));
    t.tick(10 * S);
    c.frames.slice(first).forEach(({ f, tNs }) => t.addFrame(f, tNs));
    t.flush();
    expect(out.map((r) => r.exportReason)).to.deep.equal(['active-timeout', 'flush']);
    expect(out[0]!.tcp!.serverTsRttSummary).to.deep.equal({ count: 3, minUs: 100, maxUs: 400, sumUs: 750 });
    expect(out[0]!.tcp!.clientTsRttSummary).to.deep.equal({ count: 2, minUs: 600, maxUs: 750, sumUs: 1350 });
    expect(out[1]!.tcp!.serverTsRttSummary).to.deep.equal({ count: 1, minUs: 300, maxUs: 300, sumUs: 300 });
    expect(out[1]!.tcp!.clientTsRttSummary).to.deep.equal({ count: 1, minUs: 9_997_900, maxUs: 9_997_900, sumUs: 9_997_900 });
  });

  it('keeps an established flow for 300 s and a new one for 15 s', () => {
    const c = new TcpConv(C, SV);
    c.handshake(0, 100 * US, 100 * US);
    const out: FlowRecord[] = [];
    const t = new FlowTable({ onRecord: (r) => out.push(r) });
    for (const { f, tNs } of c.frames) t.addFrame(f, tNs);
    t.tick(59 * S);
    expect(out).to.have.length(0);
    t.tick(100 * S); // still established; the active timeout writes an interim record
    expect(out.map((r) => r.exportReason)).to.deep.equal(['active-timeout']);
    t.tick(299 * S);
    expect(out).to.have.length(1);
    t.tick(301 * S);
    expect(out.map((r) => r.exportReason)).to.deep.equal(['active-timeout', 'idle-timeout']);
    expect(out[1]!.clientToServer.packets).to.equal(0);
    expect(out[1]!.flowId).to.equal(out[0]!.flowId);

    const u = new TcpConv(C, { ...SV, port: 81 });
    u.syn(0);
    u.synAck(100 * US);
    const out2: FlowRecord[] = [];
    const t2 = new FlowTable({ onRecord: (r) => out2.push(r) });
    for (const { f, tNs } of u.frames) t2.addFrame(f, tNs);
    t2.tick(15 * S + 100 * US);
    expect(only(out2).exportReason).to.equal('idle-timeout');
    expect(out2[0]!.tcp!.failed).to.equal(false);
  });
});
