// Runs `mirrorflow pipeline ARGS...` in this process, the way src/cli/main.ts runs a command (for
// tests that SIGKILL the pipeline: `node --import tsx test/helpers/pipeline-child.ts ARGS...`).
// Once `pipeline` is registered in src/cli/commands.ts, `node src/cli/bin.js pipeline ARGS...` is
// the same.
import { parseCommandArgs, type Io } from '../../src/cli/command.js';
import { reportError } from '../../src/cli/main.js';
import { pipelineCommand } from '../../src/cli/pipeline.js';

const controller = new AbortController();
for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => controller.abort());
const io: Io = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
  env: process.env,
  signal: controller.signal,
};
try {
  const { values, positionals } = parseCommandArgs(pipelineCommand, process.argv.slice(2));
  process.exitCode = await pipelineCommand.run(values, positionals, io);
} catch (e) {
  process.exitCode = reportError(e, io);
}
