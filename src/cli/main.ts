import { MirrorflowError, UsageError, ConfigError } from '../errors.js';
import { kafkaSecurityFailure } from '../pipeline/kafka-retry.js';
import { formatHelp, parseCommandArgs, type Io } from './command.js';
import { commands, type CommandEntry } from './commands.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

function topLevelHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: mirrorflow <command> [options]',
    '',
    'VM-to-VM traffic, latency and loss on Open vSwitch hypervisors.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'mirrorflow <command> --help' for the options of one command.",
  ].join('\n');
}

/** Finds the longest command name that prefixes argv (`mirror create` before `mirror`). */
function findCommand(argv: string[]): { cmd: CommandEntry; rest: string[] } | undefined {
  let best: { cmd: CommandEntry; rest: string[] } | undefined;
  for (const cmd of commands) {
    const words = cmd.name.split(' ');
    if (words.every((w, i) => argv[i] === w) && (!best || words.length > best.cmd.name.split(' ').length)) {
      best = { cmd, rest: argv.slice(words.length) };
    }
  }
  return best;
}

export async function main(argv: string[], io?: Partial<Io>): Promise<number> {
  const controller = new AbortController();
  const full: Io = {
    out: io?.out ?? ((l) => process.stdout.write(`${l}\n`)),
    err: io?.err ?? ((l) => process.stderr.write(`${l}\n`)),
    env: io?.env ?? process.env,
    signal: io?.signal ?? controller.signal,
  };
  const onSignal = () => controller.abort();
  if (!io?.signal) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  try {
    if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
      full.out(topLevelHelp());
      return argv.length === 0 ? EXIT_USAGE : EXIT_OK;
    }
    if (argv[0] === '--version' || argv[0] === '-V') argv = ['version'];
    const found = findCommand(argv);
    if (!found) {
      const group = commands.filter((c) => c.name.startsWith(`${argv[0]} `));
      if (group.length && (argv.length === 1 || argv[1]!.startsWith('-'))) {
        if (argv.includes('--help') || argv.includes('-h')) {
          full.out([`Usage: mirrorflow ${argv[0]} <subcommand> [options]`, '', 'Subcommands:', ...group.map((c) => `  ${c.name}  ${c.summary}`)].join('\n'));
          return EXIT_OK;
        }
        throw new UsageError(`missing subcommand for '${argv[0]}', expected one of ${group.map((c) => c.name.split(' ')[1]).join('|')}`);
      }
      if (group.length) throw new UsageError(`unknown subcommand, expected one of ${group.map((c) => c.name.split(' ')[1]).join('|')} (subcommand=${argv[1]})`);
      throw new UsageError(`unknown command, expected one of ${[...new Set(commands.map((c) => c.name.split(' ')[0]))].join('|')} (command=${argv[0]})`);
    }
    const cmd = await found.cmd.load();
    const { values, positionals, help } = parseCommandArgs(cmd, found.rest);
    if (help) {
      full.out(formatHelp(cmd));
      return EXIT_OK;
    }
    return await cmd.run(values, positionals, full);
  } catch (e) {
    return reportError(e, full);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function reportError(e: unknown, io: Pick<Io, 'err' | 'env'>): number {
  // By shape, not instanceof: a command module loaded on demand may see its own copy of errors.ts
  // under a TypeScript loader, and an error is ours when it carries our code and retriable flag.
  const err = e as Partial<MirrorflowError> | undefined;
  const ours = e instanceof MirrorflowError || (typeof err?.code === 'string' && typeof err?.retriable === 'boolean');
  // a wrong SASL password or an untrusted broker certificate, however deep it is wrapped: one line
  const kafka = kafkaSecurityFailure(e);
  if (kafka) {
    io.err(`mirrorflow: ${kafka.message}`);
    if (io.env.MIRRORFLOW_DEBUG) io.err(String(err?.stack));
    return EXIT_FAILURE;
  }
  if (e instanceof UsageError || e instanceof ConfigError || (ours && (err!.code === 'usage' || err!.code === 'config'))) {
    io.err(`mirrorflow: ${err!.message}`);
    return EXIT_USAGE;
  }
  if (ours) {
    io.err(`mirrorflow: ${err!.message}`);
    if (io.env.MIRRORFLOW_DEBUG) io.err(String(err!.stack));
    return EXIT_FAILURE;
  }
  const x = e as Error;
  io.err(`mirrorflow: internal error: ${x?.message ?? String(e)}`);
  if (io.env.MIRRORFLOW_DEBUG) io.err(String(x?.stack));
  return EXIT_FAILURE;
}
