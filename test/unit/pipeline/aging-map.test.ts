import { expect } from 'chai';
import { AgingMap, type DropReason } from '../../../src/pipeline/aging-map.js';

describe('pipeline/aging-map', () => {
  it('forgets an entry unused for the period at the second rotation after its last use', () => {
    const dropped: [string, DropReason][] = [];
    const m = new AgingMap<string, number>(100, 1000, (k, _v, why) => dropped.push([k, why]));
    m.advance(0);
    m.set('a', 1);
    m.set('b', 2);
    m.advance(99);
    expect(m.size).to.equal(2);
    m.advance(100); // rotation: a, b old
    expect(m.get('b')).to.equal(2); // used again: young
    m.advance(150);
    m.advance(200); // rotation: a dropped
    expect(dropped).to.deep.equal([['a', 'expired']]);
    expect(m.has('a')).to.equal(false);
    expect(m.peek('b')).to.equal(2);
    m.advance(300);
    expect(dropped).to.deep.equal([
      ['a', 'expired'],
      ['b', 'expired'],
    ]);
    expect(m.size).to.equal(0);
  });

  it('never holds more than maxSize; the most recent half survives', () => {
    let evicted = 0;
    const m = new AgingMap<number, number>(Infinity, 100, (_k, _v, why) => {
      expect(why).to.equal('evicted');
      evicted++;
    });
    for (let i = 0; i < 10_000; i++) {
      m.set(i, i);
      expect(m.size).to.be.at.most(100);
    }
    for (let i = 9950; i < 10_000; i++) expect(m.has(i), String(i)).to.equal(true);
    expect(evicted + m.size).to.equal(10_000);
    const tiny = new AgingMap<number, number>(Infinity, 1);
    tiny.set(1, 1);
    tiny.set(2, 2);
    expect(tiny.size).to.equal(1);
    expect(tiny.get(2)).to.equal(2);
  });

  it('set overwrites, delete removes, values lists both generations', () => {
    const m = new AgingMap<string, number>(10, 100);
    m.advance(0);
    m.set('a', 1);
    m.advance(10);
    m.set('b', 2);
    m.set('a', 3);
    m.set('b', 4);
    expect([...m.values()].sort()).to.deep.equal([3, 4]);
    expect(m.delete('a')).to.equal(true);
    expect(m.delete('a')).to.equal(false);
    expect(m.size).to.equal(1);
  });

  it('setAfterGet after a get is set: new keys bounded by rotation, old ones found again', () => {
    const a = new AgingMap<number, number>(10, 8);
    const b = new AgingMap<number, number>(10, 8);
    a.advance(0);
    b.advance(0);
    for (let i = 0; i < 40; i++) {
      const k = i % 13;
      if (i === 20) {
        a.advance(10);
        b.advance(10);
      }
      const va = a.get(k);
      const vb = b.get(k);
      expect(va).to.equal(vb);
      a.set(k, (va ?? 0) + 1);
      b.setAfterGet(k, (vb ?? 0) + 1);
      expect(b.size).to.equal(a.size).and.to.be.at.most(8);
      expect([...b.values()].sort()).to.deep.equal([...a.values()].sort());
    }
  });

  it('stays O(1) under churn (one Map deleting from its front would not)', () => {
    const m = new AgingMap<number, number>(Infinity, 100_000);
    const t = process.hrtime.bigint();
    for (let i = 0; i < 1_000_000; i++) m.set(i, i);
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    expect(m.size).to.be.at.most(100_000);
    expect(ms).to.be.lessThan(5000);
  });
});
