import type { Command } from './command.js';
import { captureCommand } from './capture.js';
import { decodeCommand } from './decode.js';
import { inventoryCommand } from './inventory.js';
import { mirrorCreateCommand } from './mirror-create.js';
import { mirrorDeleteCommand } from './mirror-delete.js';
import { mirrorListCommand } from './mirror-list.js';
import { mirrorStatsCommand } from './mirror-stats.js';
import { pipelineCommand } from './pipeline.js';
import { replayCommand } from './replay.js';
import { tailCommand } from './tail.js';
import { versionCommand } from './version.js';

/** Every command of `mirrorflow`, in the order `--help` lists them. */
export const commands: Command[] = [
  mirrorCreateCommand,
  mirrorListCommand,
  mirrorDeleteCommand,
  mirrorStatsCommand,
  inventoryCommand,
  decodeCommand,
  replayCommand,
  captureCommand,
  pipelineCommand,
  tailCommand,
  versionCommand,
];
