import { expect } from 'chai';
import { buildInventory, type WireTables } from '../../../src/ovsdb/inventory.js';
import type { WireDatum } from '../../../src/ovsdb/datum.js';

type Row = Record<string, WireDatum>;
const tables = (t: Record<string, Record<string, Row>>): WireTables =>
  new Map(Object.entries(t).map(([name, rows]) => [name, new Map(Object.entries(rows))]));

describe('ovsdb/inventory', () => {
  const base = {
    Bridge: { b1: { name: 'br-int', ports: ['set', [['uuid', 'p1'], ['uuid', 'p2'], ['uuid', 'p3']]] } as Row },
    Port: {
      p1: { name: 'tap1', interfaces: ['uuid', 'i1'] } as Row,
      p2: { name: 'vnet0', interfaces: ['set', [['uuid', 'i2']]] } as Row,
      p3: { name: 'br-int', interfaces: ['uuid', 'i3'] } as Row,
    },
    Interface: {
      // OpenStack style: vm-uuid + iface-id + attached-mac
      i1: {
        name: 'tap1',
        ofport: ['set', [5]],
        mac_in_use: ['set', ['aa:bb:cc:00:00:01']],
        external_ids: ['map', [['vm-uuid', 'u-1'], ['iface-id', 'port-1'], ['attached-mac', '52:54:00:AA:00:01']]],
      } as Row,
      // libvirt style: vm-id, ofport -1 (not attached yet), mac from mac_in_use
      i2: { name: 'vnet0', ofport: -1, mac_in_use: '52:54:00:aa:00:02', external_ids: ['map', [['vm-id', 'dom-2'], ['vm-name', 'web-2']]] } as Row,
      // the bridge's own internal interface: no VM
      i3: { name: 'br-int', ofport: 65534, external_ids: ['map', []] } as Row,
    },
  };

  it('reads OpenStack and libvirt external_ids, skips interfaces of no VM', () => {
    const inv = buildInventory(tables(base));
    expect(inv).to.deep.equal([
      { vm: 'dom-2', vmName: 'web-2', interface: 'vnet0', ips: [], mac: '52:54:00:aa:00:02', port: 'vnet0', bridge: 'br-int' },
      { vm: 'u-1', vmName: 'u-1', interface: 'tap1', ips: [], ifaceId: 'port-1', mac: '52:54:00:aa:00:01', port: 'tap1', bridge: 'br-int', ofport: 5 },
    ]);
  });

  it('keeps an interface not yet in a port, without port and bridge', () => {
    const t = { ...base, Port: {}, Bridge: {} };
    const inv = buildInventory(tables(t));
    expect(inv.map((e) => [e.vm, e.port, e.bridge])).to.deep.equal([
      ['dom-2', undefined, undefined],
      ['u-1', undefined, undefined],
    ]);
  });
});
