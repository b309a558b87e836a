import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  /** Placeholder shown in help, e.g. `BR`. */
  arg?: string;
  description: string;
  default?: string | boolean;
  /** A string option whose value may be left out (`--output-internal [PORT]`): then it is ''. */
  optionalValue?: boolean;
}

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  /** Resolves when the user asks the command to stop (SIGINT/SIGTERM). */
  signal: AbortSignal;
}

export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface Command {
  /** Full command path, e.g. `mirror create`. */
  name: string;
  summary: string;
  usage: string;
  description?: string;
  options: Record<string, OptionSpec>;
  /** Accept positional arguments (named in usage). */
  positionals?: boolean;
  run(values: Values, positionals: string[], io: Io): Promise<number>;
}

/** Renders `--help` for one command. */
export function formatHelp(cmd: Command): string {
  const lines = [`Usage: mirrorflow ${cmd.usage}`, '', cmd.summary];
  if (cmd.description) lines.push('', cmd.description);
  const opts = Object.entries(cmd.options);
  lines.push('', 'Options:');
  const rows = opts.map(([name, o]) => {
    const placeholder = o.type === 'string' ? (o.optionalValue ? ` [${o.arg ?? 'VALUE'}]` : ` ${o.arg ?? 'VALUE'}`) : '';
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${placeholder}`;
    const extra = [o.multiple ? '(repeatable)' : '', o.default !== undefined && o.default !== false ? `(default: ${String(o.default)})` : '']
      .filter(Boolean)
      .join(' ');
    return [flag, `${o.description}${extra ? ` ${extra}` : ''}`] as const;
  });
  rows.push(['-h, --help', 'Show this help']);
  const width = Math.max(...rows.map(([f]) => f.length));
  for (const [f, d] of rows) lines.push(`  ${f.padEnd(width)}  ${d}`);
  return lines.join('\n');
}

/** Parses argv for a command; every problem is a UsageError naming the flag. */
export function parseCommandArgs(cmd: Command, argv: string[]): { values: Values; positionals: string[]; help: boolean } {
  const options: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, o] of Object.entries(cmd.options)) {
    options[name] = { type: o.type, multiple: o.multiple ?? false, ...(o.short ? { short: o.short } : {}) };
  }
  // A repeatable option also takes several values after one flag: `--select-port a b c`.
  const expanded: string[] = [];
  let current: OptionSpec | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const optional = a.startsWith('--') && !a.includes('=') ? cmd.options[a.slice(2)] : undefined;
    if (optional?.optionalValue) {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('-')) {
        expanded.push(`${a}=${next}`);
        i++;
      } else {
        expanded.push(`${a}=`);
      }
      current = undefined;
      continue;
    }
    const prevFlag = expanded[expanded.length - 1];
    if (/^-\d/.test(a) && current?.type === 'string' && prevFlag !== undefined && prevFlag.startsWith('-') && !prevFlag.includes('=')) {
      // a negative number right after a flag that takes a value is that value (`--window -3`),
      // so the option's own check can name it, rather than the parser calling it ambiguous
      expanded[expanded.length - 1] = `${prevFlag}=${a}`;
      current = undefined;
      continue;
    }
    if (a.startsWith('-')) {
      const name = a.replace(/^--?/, '').split('=')[0]!;
      current = a.includes('=') ? undefined : cmd.options[name];
      expanded.push(a);
      continue;
    }
    if (current?.multiple && current.type === 'string' && expanded.length > 0 && !expanded[expanded.length - 1]!.startsWith('-')) {
      // second or later value of a repeatable flag: re-insert the flag
      const prev = findLastFlag(expanded);
      if (prev) expanded.push(prev);
    }
    expanded.push(a);
  }
  let parsed;
  try {
    parsed = parseArgs({ args: expanded, options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError(`${cmd.name}: ${describeParseError(e as Error)}`);
  }
  if (parsed.values.help) return { values: parsed.values as Values, positionals: parsed.positionals, help: true };
  // Positionals that are really extra values of a repeatable flag were re-inserted above, so
  // anything left is a positional argument.
  if (!cmd.positionals && parsed.positionals.length > 0) {
    throw new UsageError(`${cmd.name}: unexpected argument (argument=${parsed.positionals[0]}); see --help`);
  }
  const values: Values = { ...parsed.values };
  for (const [name, o] of Object.entries(cmd.options)) {
    if (values[name] === undefined && o.default !== undefined) values[name] = o.default;
  }
  return { values, positionals: parsed.positionals, help: false };
}

function findLastFlag(args: string[]): string | undefined {
  for (let i = args.length - 1; i >= 0; i--) if (args[i]!.startsWith('-')) return args[i];
  return undefined;
}

function describeParseError(e: Error): string {
  const m = e.message;
  let match = /Unknown option '([^']+)'/.exec(m);
  if (match) return `unknown option (option=${match[1]}); see --help`;
  match = /Option '([^']+?)(?: <value>)?' argument missing/.exec(m);
  if (match) return `option needs a value (option=${match[1]!.split(',').pop()!.trim()})`;
  match = /Option '([^']+?)' does not take an argument/.exec(m);
  if (match) return `option takes no value (option=${match[1]!.split(',').pop()!.trim()})`;
  return m.split('\n')[0]!;
}

/** Reads a string option as an integer within bounds. */
export function intOption(values: Values, name: string, min: number, max: number): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const s = String(v);
  if (!/^-?\d+$/.test(s)) throw new UsageError(`invalid --${name}, expected an integer ${min}..${max} (${name}=${s})`);
  const n = Number(s);
  if (n < min || n > max) throw new UsageError(`invalid --${name}, expected an integer ${min}..${max} (${name}=${s})`);
  return n;
}

export function stringsOption(values: Values, name: string): string[] {
  const v = values[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}
