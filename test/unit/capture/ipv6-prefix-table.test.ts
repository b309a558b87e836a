import { expect } from 'chai';
import { Ipv6PrefixTable, MAX_PREFIX_IDS } from '../../../src/capture/ipv6-prefix-table.js';

describe('capture/ipv6-prefix-table', () => {
  it('gives one id per /64 prefix and counts references', () => {
    const t = new Ipv6PrefixTable();
    const a = t.intern(0x20010db8, 0x00000010);
    const b = t.intern(0x20010db8, 0x00000011);
    expect(b).to.not.equal(a);
    expect(t.intern(0x20010db8, 0x00000010)).to.equal(a);
    expect(t.refCount(a)).to.equal(2);
    expect(t.size).to.equal(2);
    expect([t.words[a * 2], t.words[a * 2 + 1]]).to.deep.equal([0x20010db8, 0x10]);
    t.release(a);
    expect(t.refCount(a)).to.equal(1);
    expect(t.size).to.equal(2);
    t.release(a);
    expect(t.refCount(a)).to.equal(0);
    expect(t.size).to.equal(1);
    // the freed id is reused, and the old prefix is no longer found under it
    const c = t.intern(0xfd000000, 0);
    expect(c).to.equal(a);
    expect(t.intern(0x20010db8, 0x00000010)).to.not.equal(a);
  });

  it('returns -1 for a new prefix when full, and accepts new ones again after a release', () => {
    const t = new Ipv6PrefixTable(3, 1);
    const ids = [t.intern(1, 1), t.intern(1, 2), t.intern(0xffffffff, 0xffffffff)];
    expect(new Set(ids).size).to.equal(3);
    expect(t.intern(1, 3)).to.equal(-1);
    expect(t.intern(1, 2)).to.equal(ids[1]); // a known prefix still gets a reference
    t.release(ids[0]!);
    expect(t.intern(1, 3)).to.equal(ids[0]);
    expect(t.intern(1, 1)).to.equal(-1);
  });

  it('finds every prefix again across growth (rehash) and frees all of them', () => {
    const t = new Ipv6PrefixTable(MAX_PREFIX_IDS, 2);
    const n = MAX_PREFIX_IDS;
    const ids = new Int32Array(n);
    for (let i = 0; i < n; i++) ids[i] = t.intern(0x20010000 | (i >>> 16), (i * 0x9e3779b1) >>> 0);
    expect(new Set(ids).size).to.equal(n);
    expect(t.intern(0x30000000, 0)).to.equal(-1);
    for (let i = 0; i < n; i++) expect(t.intern(0x20010000 | (i >>> 16), (i * 0x9e3779b1) >>> 0)).to.equal(ids[i]);
    for (let i = 0; i < n; i++) {
      t.release(ids[i]!);
      t.release(ids[i]!);
    }
    expect(t.size).to.equal(0);
    expect(t.intern(0x30000000, 0)).to.be.within(0, n - 1);
  });

  it('rejects a bad size', () => {
    expect(() => new Ipv6PrefixTable(0)).to.throw(RangeError);
    expect(() => new Ipv6PrefixTable(MAX_PREFIX_IDS + 1)).to.throw(RangeError);
  });
});
