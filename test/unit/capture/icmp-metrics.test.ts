import { expect } from 'chai';
import { FlowTable } from '../../../src/capture/flow-table.js';
import type { FlowRecord } from '../../../src/capture/flow-record.js';
import { RttSketch } from '../../../src/capture/rtt-sketch.js';
import { IcmpTracker } from '../../../src/capture/icmp-metrics.js';
import { IPPROTO_ICMP } from '../../../src/capture/decode/frame.js';
import { EchoConv, MS, S, US, ipFrame } from '../../helpers/synth-flows.js';

const A = { ip: '10.3.0.1', mac: 0x02000000000a };
const B = { ip: '10.3.0.2', mac: 0x02000000000b };

function feed(frames: { f: import('../../../src/capture/decode/frame.js').DecodedFrame; tNs: number }[], t: FlowTable): void {
  for (const { f, tNs } of frames) t.addFrame(f, tNs);
}

describe('capture/icmp-metrics', () => {
  it('matches echo replies by (identifier, sequence) with exact RTTs and counts the unanswered', () => {
    const e = new EchoConv(A, B, 0x4d2);
    const rtts = [120, 95, 310, 88]; // µs; request 3 gets no reply
    for (let i = 0; i < 5; i++) {
      e.request(i * S, i + 1);
      if (i < rtts.length && i !== 2) e.reply(i * S + rtts[i]! * US, i + 1);
    }
    const out: FlowRecord[] = [];
    const t = new FlowTable({ onRecord: (r) => out.push(r) });
    feed(e.frames, t);
    t.flush();
    expect(out).to.have.length(1);
    const r = out[0]!;
    expect(r.key).to.include({ icmpId: 0x4d2, protocol: IPPROTO_ICMP, clientIp: '10.3.0.1', serverIp: '10.3.0.2' });
    expect(r.icmp).to.include({ echoRequests: 5, echoReplies: 3, unanswered: 2 });
    const s = RttSketch.fromData(r.icmp!.rtt!);
    expect(s.count).to.equal(3);
    expect(s.minNs).to.equal(88_000);
    expect(s.maxNs).to.equal(120_000);
    expect(r.icmp!.rtt!.sumUs).to.equal(120 + 95 + 88);
    expect(r.clientToServer.packets).to.equal(e.truth.c2s.packets);
    expect(r.serverToClient.bytes).to.equal(e.truth.s2c.bytes);
    expect(r.lossRate).to.equal(2 / 5);
  });

  it('separates echo flows by identifier and handles ICMPv6', () => {
    const e1 = new EchoConv({ ip: 'fd00::a' }, { ip: 'fd00::b' }, 1);
    const e2 = new EchoConv({ ip: 'fd00::a' }, { ip: 'fd00::b' }, 2);
    e1.request(0, 1);
    e2.request(10 * US, 1);
    e2.reply(50 * US, 1);
    e1.reply(70 * US, 1);
    const out: FlowRecord[] = [];
    const t = new FlowTable({ onRecord: (r) => out.push(r) });
    feed([...e1.frames.slice(0, 1), ...e2.frames, ...e1.frames.slice(1)], t);
    t.flush();
    expect(out).to.have.length(2);
    const r1 = out.find((r) => r.key.icmpId === 1)!;
    const r2 = out.find((r) => r.key.icmpId === 2)!;
    expect(r1.icmp!.rtt!.minUs).to.equal(70);
    expect(r2.icmp!.rtt!.minUs).to.equal(40);
    expect(r1.key.protocol).to.equal(58);
  });

  it('a flow first seen at an echo reply takes the requester as client', () => {
    const e = new EchoConv(A, B, 9);
    e.reply(0, 1);
    const out: FlowRecord[] = [];
    const t = new FlowTable({ onRecord: (r) => out.push(r) });
    feed(e.frames, t);
    t.flush();
    expect(out[0]!.key.clientIp).to.equal('10.3.0.1');
    expect(out[0]!.icmp).to.include({ echoRequests: 0, echoReplies: 1, unanswered: 0 });
  });

  it('interim records count requests older than the echo timeout as unanswered', () => {
    const e = new EchoConv(A, B, 7);
    for (let i = 0; i < 70; i++) {
      e.request(i * S, i);
      if (i !== 10 && i !== 65) e.reply(i * S + 200 * US, i);
    }
    const out: FlowRecord[] = [];
    const t = new FlowTable({ onRecord: (r) => out.push(r) });
    feed(e.frames, t);
    t.flush();
    expect(out.map((r) => r.exportReason)).to.deep.equal(['active-timeout', 'flush']);
    expect(out[0]!.icmp!.unanswered).to.equal(1);
    expect(out.reduce((a, r) => a + r.icmp!.unanswered, 0)).to.equal(2);
    expect(out.reduce((a, r) => a + r.icmp!.echoRequests, 0)).to.equal(70);
    expect(out.reduce((a, r) => a + (r.icmp!.rtt?.count ?? 0), 0)).to.equal(68);
  });

  it('bounds the pending requests per flow (the oldest become unanswered)', () => {
    const tr = new IcmpTracker({ maxPending: 4 });
    for (let i = 0; i < 10; i++) tr.onEcho(3, 0, IPPROTO_ICMP, 8, i, i * MS);
    const s = tr.get(3)!;
    expect(s.pending.length / 3).to.equal(4);
    expect(s.unanswered).to.equal(6);
    tr.onEcho(3, 1, IPPROTO_ICMP, 0, 9, 10 * MS);
    expect(s.rtt!.count).to.equal(1);
    expect(s.rtt!.minNs).to.equal(1 * MS);
  });

  it('non-echo ICMP gets one flow per (type, code) without echo metrics', () => {
    const out: FlowRecord[] = [];
    const t = new FlowTable({ onRecord: (r) => out.push(r) });
    for (const [type, code] of [[3, 1], [3, 1], [3, 3]] as const) {
      const f = ipFrame(B, A, IPPROTO_ICMP, 70);
      f.icmpType = type;
      f.icmpCode = code;
      t.addFrame(f, 0);
    }
    t.flush();
    expect(out).to.have.length(2);
    expect(out[0]!.key).to.include({ icmpType: 3, icmpCode: 1 });
    expect(out[0]!.icmp).to.equal(undefined);
  });
});
