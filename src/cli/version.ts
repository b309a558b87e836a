import { readFileSync } from 'node:fs';
import type { Command } from './command.js';

export const versionCommand: Command = {
  name: 'version',
  summary: 'Print the mirrorflow version',
  usage: 'version',
  options: {},
  async run(_values, _positionals, io) {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    io.out(`mirrorflow ${pkg.version}`);
    return 0;
  },
};
