import { createLogger } from '../log.js';
import { formatTable, viewMirrors } from '../ovsdb/mirror-view.js';
import { openOvsdbSession } from '../ovsdb/session.js';
import type { Command } from './command.js';
import { ovsdbConfigFrom, ovsdbOptions } from './ovsdb-options.js';

export const mirrorStatsCommand: Command = {
  name: 'mirror stats',
  summary: 'Show what each mirror sent to its output (Mirror.statistics, updated by ovs-vswitchd)',
  usage: 'mirror stats [--bridge BR] [--name NAME] [--db URL] [--json]',
  options: {
    bridge: { type: 'string', arg: 'BR', description: 'Only mirrors of this bridge' },
    name: { type: 'string', arg: 'NAME', description: 'Only the mirror of this name' },
    json: { type: 'boolean', description: 'Print a JSON array' },
    ...ovsdbOptions,
  },
  async run(values, _positionals, io) {
    const config = ovsdbConfigFrom(values, io.env);
    const session = await openOvsdbSession(config, { logger: createLogger(io.env), reconnect: false });
    try {
      let mirrors = viewMirrors(session.tables());
      if (values.bridge !== undefined) mirrors = mirrors.filter((m) => m.bridge === values.bridge);
      if (values.name !== undefined) mirrors = mirrors.filter((m) => m.name === values.name);
      if (values.name !== undefined && !mirrors.length) {
        io.err(`mirrorflow: mirror not found (mirror=${String(values.name)})`);
        return 1;
      }
      const stats = mirrors.map((m) => ({
        bridge: m.bridge,
        name: m.name,
        txPackets: m.statistics.tx_packets ?? 0,
        txBytes: m.statistics.tx_bytes ?? 0,
        statistics: m.statistics,
      }));
      if (values.json) io.out(JSON.stringify(stats, null, 2));
      else if (!stats.length) io.out('no mirrors');
      else io.out(formatTable(['BRIDGE', 'NAME', 'TX_PACKETS', 'TX_BYTES'], stats.map((s) => [s.bridge ?? '-', s.name, String(s.txPackets), String(s.txBytes)])));
      return 0;
    } finally {
      await session.close();
    }
  },
};
