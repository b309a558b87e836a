import { expect } from 'chai';
import { EndpointResolver, canonicalIp, parseMac } from '../../../src/pipeline/endpoint-resolver.js';
import { parseInventory } from '../../../src/config/inventory-file.js';
import { formatIp, formatMac } from '../../../src/capture/decode/frame.js';

describe('pipeline/endpoint-resolver', () => {
  const r = new EndpointResolver([
    { vm: 'web', mac: '52:54:00:00:00:01', ips: ['10.0.0.5'] },
    { vm: 'db', ips: ['2001:db8::7'] },
  ]);
  const v4 = (a: number, b: number, c: number, d: number) => [((a << 24) | (b << 16) | (c << 8) | d) >>> 0, 0, 0, 0];

  it('names by MAC first', () => {
    expect(r.name(parseMac('52:54:00:00:00:01'), 4, v4(192, 168, 1, 1))).to.equal('web');
  });
  it('falls back to the IP', () => {
    expect(r.name(0x020000000099, 4, v4(10, 0, 0, 5))).to.equal('web');
    expect(r.name(0x020000000099, 6, [0x20010db8, 0, 0, 7])).to.equal('db');
  });
  it('names an unknown endpoint by its IP, or by its MAC without IP', () => {
    expect(r.name(0x020000000099, 4, v4(10, 0, 0, 9))).to.equal('10.0.0.9');
    expect(r.name(0x020000000099, 0, [0, 0, 0, 0])).to.equal('02:00:00:00:00:99');
  });
  it('canonicalises IPv6 text', () => {
    expect(canonicalIp('2001:0DB8:0:0:0:0:0:7')).to.equal('2001:db8::7');
    expect(canonicalIp('::ffff:10.0.0.1')).to.equal('::ffff:a00:1');
    expect(r.nameFromText(undefined, '2001:db8:0::7')).to.equal('db');
  });
  it('names the capture’s own (canonical) text as nameFromText does, with and without an inventory', () => {
    const empty = new EndpointResolver([]);
    const macs = [parseMac('52:54:00:00:00:01'), 0x020000000099, 0];
    const ips: [number, number[]][] = [
      [4, v4(10, 0, 0, 5)],
      [4, v4(10, 0, 0, 9)],
      [6, [0x20010db8, 0, 0, 7]],
      [6, [0, 0, 0xffff, 0x0a000001]],
      [6, [0xfe800000, 0, 0x02000000, 0x99]],
      [0, [0, 0, 0, 0]],
    ];
    for (const resolver of [r, empty]) {
      for (const m of macs) {
        for (const [version, words] of ips) {
          const mac = m === 0 ? undefined : formatMac(m);
          const ip = version === 0 ? undefined : formatIp(version, words);
          expect(resolver.nameFromCapturedText(mac, ip), `${mac} ${ip}`).to.equal(resolver.nameFromText(mac, ip));
        }
      }
    }
  });
});

describe('config/inventory-file', () => {
  it('accepts the documented form', () => {
    expect(parseInventory([{ vm: 'a', mac: '52:54:00:AA:BB:CC', ips: ['10.0.0.1'] }])).to.deep.equal([{ vm: 'a', mac: '52:54:00:aa:bb:cc', ips: ['10.0.0.1'] }]);
  });
  it('names the bad entry, field and value', () => {
    expect(() => parseInventory({})).to.throw('expected a JSON array');
    expect(() => parseInventory([{ vm: 'a', mac: 'zz' }])).to.throw(/index=0, field=mac, value=zz/);
    expect(() => parseInventory([{ vm: 'a', ips: ['10.0.0.1'] }, { vm: 'b', ips: ['300.1.1.1'] }])).to.throw(/index=1, field=ips, value=300.1.1.1/);
    expect(() => parseInventory([{ vm: '', ips: ['10.0.0.1'] }])).to.throw(/field=vm/);
    expect(() => parseInventory([{ vm: 'a' }])).to.throw(/a mac or at least one ip/);
    expect(() => parseInventory([{ vm: 'a', ip: '10.0.0.1' }])).to.throw(/field=ip\b/);
  });
});

describe('pipeline/endpoint-resolver replacements', () => {
  it('keeps the inventory it was given and tells each listener of every replacement until it unsubscribes', () => {
    const r = new EndpointResolver([{ vm: 'a', ips: ['10.0.0.1'] }]);
    expect(r.identities).to.deep.equal([{ vm: 'a', ips: ['10.0.0.1'] }]);
    const seen: unknown[] = [];
    const off = r.onReplace((vms) => seen.push(vms));
    r.replace(new Set([{ vm: 'b', mac: '52:54:00:00:00:02' }]));
    expect(seen).to.deep.equal([[{ vm: 'b', mac: '52:54:00:00:00:02' }]]);
    expect(r.identities).to.deep.equal([{ vm: 'b', mac: '52:54:00:00:00:02' }]);
    expect(r.nameFromText('52:54:00:00:00:02', '10.0.0.9')).to.equal('b');
    off();
    r.replace([]);
    expect(seen).to.have.length(1);
    expect(r.identities).to.deep.equal([]);
  });
});
