import { expect } from 'chai';
import { KeyScratch, buildFlowKey, FLAG_ICMP_ECHO } from '../../../src/capture/flow-key.js';
import { IPPROTO_ICMP, IPPROTO_UDP } from '../../../src/capture/decode/frame.js';
import { ipFrame, otherFrame, udpFrame } from '../../helpers/synth-flows.js';

function key(f: Parameters<typeof buildFlowKey>[0], frag = false): KeyScratch {
  const k = new KeyScratch();
  buildFlowKey(f, k, frag);
  return k;
}

function words(k: KeyScratch): number[] {
  return [k.meta, k.vlan01, k.vlan23, k.vni, k.a, k.b, k.ports, ...k.lowIp, ...k.highIp, k.hash];
}

const A = { ip: '192.168.1.10', port: 40001 };
const B = { ip: '192.168.1.20', port: 8080 };

describe('capture/flow-key', () => {
  it('gives both directions the same words and hash, and says which side sent', () => {
    const ab = key(udpFrame(A, B, 1));
    const ba = key(udpFrame(B, A, 1));
    expect(words(ab)).to.deep.equal(words(ba));
    expect(ab.srcIsLow).to.equal(true);
    expect(ba.srcIsLow).to.equal(false);
    expect(ab.a).to.equal(0xc0a8010a);
    expect(ab.ports).to.equal(((40001 << 16) | 8080) >>> 0);
  });

  it('orders equal addresses by port', () => {
    const x = key(udpFrame({ ip: '10.0.0.1', port: 9 }, { ip: '10.0.0.1', port: 7 }, 1));
    expect(x.srcIsLow).to.equal(false);
    expect(x.ports).to.equal(((7 << 16) | 9) >>> 0);
  });

  it('differs when any key field differs', () => {
    const base = words(key(udpFrame(A, B, 1)));
    const variants = [
      udpFrame({ ...A, port: 40002 }, B, 1),
      udpFrame({ ...A, ip: '192.168.1.11' }, B, 1),
      udpFrame(A, B, 1, { vlans: [10] }),
      udpFrame(A, B, 1, { vlans: [10, 20] }),
      udpFrame(A, B, 1, { vni: 0 }),
      udpFrame(A, B, 1, { vni: 1 }),
      ipFrame(A, B, 6, 60),
    ];
    const hashes = new Set<number>();
    for (const v of variants) {
      const w = words(key(v));
      expect(w).to.not.deep.equal(base);
      hashes.add(w[w.length - 1]!);
    }
    expect(hashes.size).to.equal(variants.length);
  });

  it('keys ICMP echo by identifier and IPv6 by all address words', () => {
    const f = ipFrame({ ip: '10.0.0.1' }, { ip: '10.0.0.2' }, IPPROTO_ICMP, 98);
    f.icmpId = 77;
    f.icmpSeq = 1;
    f.icmpType = 8;
    const k = key(f);
    expect(k.meta & 0xffff).to.equal(FLAG_ICMP_ECHO);
    expect(k.ports).to.equal(((77 << 16) | 77) >>> 0);
    const v1 = key(udpFrame({ ip: 'fd00::1', port: 1 }, { ip: 'fd00::2', port: 2 }, 1));
    const v2 = key(udpFrame({ ip: 'fd00::1:0:0:0:1', port: 1 }, { ip: 'fd00::2', port: 2 }, 1));
    expect(v1.hash).to.not.equal(v2.hash);
    expect(Array.from(v1.lowIp)).to.deep.equal([0xfd000000, 0, 0, 1]);
    const back = key(udpFrame({ ip: 'fd00::2', port: 2 }, { ip: 'fd00::1', port: 1 }, 1));
    expect(words(back)).to.deep.equal(words(v1));
  });

  it('keys non-IP frames by MAC pair and EtherType', () => {
    const a = key(otherFrame(0x0a0000000001, 0x0b0000000002, 0x0806, 60));
    const b = key(otherFrame(0x0b0000000002, 0x0a0000000001, 0x0806, 60));
    const c = key(otherFrame(0x0a0000000001, 0x0b0000000002, 0x88cc, 60));
    expect(words(a)).to.deep.equal(words(b));
    expect(a.hash).to.not.equal(c.hash);
    expect(a.ports).to.equal(((0x0a00 << 16) | 0x0b00) >>> 0);
    expect(a.a).to.equal(1);
  });

  it('spreads hashes of sequential keys (few collisions in 2^16 buckets)', () => {
    const seen = new Uint8Array(1 << 16);
    let collisions = 0;
    for (let i = 0; i < 20000; i++) {
      const k = key(udpFrame({ ip: '10.0.0.1', port: 1024 + i }, { ip: '10.0.0.2', port: 80 }, 1));
      const b = k.hash & 0xffff;
      if (seen[b]) collisions++;
      seen[b] = 1;
    }
    // expected for a uniform hash: n - m(1 - e^{-n/m}) ≈ 2700
    expect(collisions).to.be.below(3200);
    void IPPROTO_UDP;
  });
});
