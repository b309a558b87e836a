import type { Command } from './command.js';
import { versionCommand } from './version.js';

/** Every command of `mirrorflow`, in the order `--help` lists them. */
export const commands: Command[] = [versionCommand];
