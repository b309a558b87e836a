import { createLogger } from '../log.js';
import { formatTable } from '../ovsdb/mirror-view.js';
import { openOvsdbSession } from '../ovsdb/session.js';
import type { Command } from './command.js';
import { ovsdbConfigFrom, ovsdbOptions } from './ovsdb-options.js';

export const inventoryCommand: Command = {
  name: 'inventory',
  summary: 'List the VMs on this hypervisor (Interface external_ids vm-uuid/vm-id, iface-id, attached-mac)',
  usage: 'inventory [--bridge BR] [--db URL] [--json]',
  options: {
    bridge: { type: 'string', arg: 'BR', description: 'Only VMs on this bridge' },
    json: { type: 'boolean', description: 'Print a JSON array' },
    ...ovsdbOptions,
  },
  async run(values, _positionals, io) {
    const config = ovsdbConfigFrom(values, io.env);
    const session = await openOvsdbSession(config, { logger: createLogger(io.env), reconnect: false });
    try {
      const { buildInventory } = await import('../ovsdb/inventory.js');
      let inv = buildInventory(session.tables());
      if (values.bridge !== undefined) inv = inv.filter((e) => e.bridge === values.bridge);
      if (values.json) io.out(JSON.stringify(inv, null, 2));
      else if (!inv.length) io.out('no VMs');
      else
        io.out(
          formatTable(
            ['VM', 'INTERFACE', 'MAC', 'IFACE-ID', 'BRIDGE', 'OFPORT'],
            inv.map((e) => [e.vmName, e.interface, e.mac ?? '-', e.ifaceId ?? '-', e.bridge ?? '-', e.ofport === undefined ? '-' : String(e.ofport)]),
          ),
        );
      return 0;
    } finally {
      await session.close();
    }
  },
};
