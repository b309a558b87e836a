import { UsageError } from '../errors.js';
import { createLogger } from '../log.js';
import { MirrorController } from '../ovsdb/mirror-controller.js';
import { openOvsdbSession } from '../ovsdb/session.js';
import { intOption, type Command } from './command.js';
import { ovsdbConfigFrom, ovsdbOptions } from './ovsdb-options.js';

export const mirrorDeleteCommand: Command = {
  name: 'mirror delete',
  summary: 'Delete a mirror made by mirrorflow, and the internal port it created for it',
  usage: 'mirror delete --bridge BR --name NAME [--db URL] [--json]',
  options: {
    bridge: { type: 'string', arg: 'BR', description: 'Bridge of the mirror' },
    name: { type: 'string', arg: 'NAME', description: 'Mirror name' },
    'if-exists': { type: 'boolean', description: 'Succeed when there is no such mirror' },
    timeout: { type: 'string', arg: 'SECONDS', description: 'How long to wait for ovs-vswitchd to apply the change (0: do not wait)', default: '10' },
    json: { type: 'boolean', description: 'Print the result as JSON' },
    ...ovsdbOptions,
  },
  async run(values, _positionals, io) {
    for (const k of ['bridge', 'name']) if (!values[k]) throw new UsageError(`mirror delete: --${k} is required`);
    const bridge = String(values.bridge);
    const name = String(values.name);
    const config = ovsdbConfigFrom(values, io.env);
    const timeoutS = intOption(values, 'timeout', 0, 3600) ?? 10;
    const logger = createLogger(io.env);
    const session = await openOvsdbSession(config, { logger, reconnect: false });
    try {
      const controller = new MirrorController(session, { logger, confirmTimeoutMs: timeoutS * 1000 });
      let deleted = true;
      try {
        await controller.remove(bridge, name);
      } catch (e) {
        if (!(values['if-exists'] && (e as { code?: string }).code === 'mirror-not-found')) throw e;
        deleted = false;
      }
      await controller.stop();
      if (values.json) io.out(JSON.stringify({ bridge, name, action: deleted ? 'deleted' : 'absent' }));
      else io.out(`mirror ${name} on ${bridge}: ${deleted ? 'deleted' : 'absent'}`);
      return 0;
    } finally {
      await session.close();
    }
  },
};
