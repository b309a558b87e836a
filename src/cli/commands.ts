import type { Command } from './command.js';
import { inventoryCommand } from './inventory.js';
import { mirrorCreateCommand } from './mirror-create.js';
import { mirrorDeleteCommand } from './mirror-delete.js';
import { mirrorListCommand } from './mirror-list.js';
import { mirrorStatsCommand } from './mirror-stats.js';
import { versionCommand } from './version.js';

/** Every command of `mirrorflow`, in the order `--help` lists them. */
export const commands: Command[] = [mirrorCreateCommand, mirrorListCommand, mirrorDeleteCommand, mirrorStatsCommand, inventoryCommand, versionCommand];
