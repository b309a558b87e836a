import { createLogger } from '../log.js';
import { formatTable, viewMirrors, type MirrorView, type PortRef } from '../ovsdb/mirror-view.js';
import { openOvsdbSession } from '../ovsdb/session.js';
import type { Command } from './command.js';
import { ovsdbConfigFrom, ovsdbOptions } from './ovsdb-options.js';

export const mirrorListCommand: Command = {
  name: 'mirror list',
  summary: 'List the mirrors of the database (all of them; OWNER says which mirrorflow made)',
  usage: 'mirror list [--bridge BR] [--db URL] [--json]',
  options: {
    bridge: { type: 'string', arg: 'BR', description: 'Only mirrors of this bridge' },
    json: { type: 'boolean', description: 'Print a JSON array' },
    ...ovsdbOptions,
  },
  async run(values, _positionals, io) {
    const config = ovsdbConfigFrom(values, io.env);
    const session = await openOvsdbSession(config, { logger: createLogger(io.env), reconnect: false });
    try {
      let mirrors = viewMirrors(session.tables());
      if (values.bridge !== undefined) mirrors = mirrors.filter((m) => m.bridge === values.bridge);
      if (values.json) {
        io.out(JSON.stringify(mirrors, null, 2));
        return 0;
      }
      if (!mirrors.length) {
        io.out('no mirrors');
        return 0;
      }
      io.out(formatTable(['BRIDGE', 'NAME', 'OWNER', 'SELECT', 'DIRECTION', 'OUTPUT', 'SNAPLEN'], mirrors.map(row)));
      return 0;
    } finally {
      await session.close();
    }
  },
};

const names = (refs: PortRef[]) => refs.map((r) => r.name ?? r.uuid.slice(0, 8)).join(',');

function row(m: MirrorView): string[] {
  const src = names(m.selectSrcPort);
  const dst = names(m.selectDstPort);
  let select: string;
  let direction: string;
  if (m.selectAll) [select, direction] = ['all', 'both'];
  else if (m.selectVlan.length) [select, direction] = [`vlan ${m.selectVlan.join(',')}`, 'both'];
  else if (src === dst) [select, direction] = [src || '-', 'both'];
  else if (!src) [select, direction] = [dst, 'to-vm'];
  else if (!dst) [select, direction] = [src, 'from-vm'];
  else [select, direction] = [`from ${src}; to ${dst}`, 'mixed'];
  const output = m.outputPort ? (m.outputPort.name ?? m.outputPort.uuid) : m.outputVlan !== undefined ? `vlan ${m.outputVlan}` : '-';
  return [m.bridge ?? '-', m.name, m.owner ?? '-', select, direction, output, m.snaplen === undefined ? '-' : String(m.snaplen)];
}
