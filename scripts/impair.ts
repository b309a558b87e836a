// The impairment forwarder as a command: copies frames both ways between two interfaces, each
// delayed by --delay-ms and dropped with probability --loss (the kernel has no netem). The
// forwarding runs in the capture addon's native threads (src/capture/native/impair.cc); this
// script only starts it, watches it, and prints its counters when it ends.
//
//   node --import tsx scripts/impair.ts --a IF --b IF --delay-ms D --loss P [--seed N] [--json]
//
// Runs until SIGINT/SIGTERM (exit 0) or until a direction fails (exit 1, e.g. an interface was
// removed). Prints `impair: forwarding (...)` on stderr once frames flow (scripts/vm.sh waits for
// it), and the counters at exit (and on SIGUSR1): one line per direction, or one JSON object with
// --json.
import process from 'node:process';
import { startImpairment, type Impairment, type ImpairmentDirectionStats, type ImpairmentStats } from '../src/capture/native-binding.js';

const USAGE = `usage: node --import tsx scripts/impair.ts --a IF --b IF [--delay-ms D] [--loss P] [--seed N]
                  [--queue-limit N] [--no-realtime] [--spin-max-us N] [--json] [--stats-interval-s S]

Forwards frames both ways between interfaces IF (a) and IF (b), each delayed by D ms (default 0,
fractions allowed) and dropped with probability P (0..1, or N% ; default 0), independently per
frame (PRNG seeded with N; random when absent, printed at start). Runs until SIGINT/SIGTERM, then
prints the counters (received, dropped, forwarded, queueOverflow, injectErrors, ...) per direction
(SIGUSR1: the counters so far).
--stats-interval-s S also prints them every S seconds on stderr.`;

interface Args {
  a: string;
  b: string;
  delayUs: number;
  lossProb: number;
  seed?: number;
  queueLimit?: number;
  realtime: boolean;
  spinMaxUs?: number;
  json: boolean;
  statsIntervalS: number;
}

class BadArgs extends Error {}

function bad(option: string, value: string | undefined, expected: string): never {
  throw new BadArgs(`impair: bad option (option=${option}, value=${JSON.stringify(value ?? '')}, expected=${expected})`);
}

function parseArgs(argv: string[]): Args {
  const out: Partial<Args> & { realtime: boolean; json: boolean; delayUs: number; lossProb: number; statsIntervalS: number } = {
    realtime: true,
    json: false,
    delayUs: 0,
    lossProb: 0,
    statsIntervalS: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) bad(flag, v, 'a value');
      return v;
    };
    const num = (expected: string, min: number, max: number, integer = false): number => {
      const raw = value();
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) bad(flag, raw, expected);
      return n;
    };
    switch (flag) {
      case '--a':
        out.a = value();
        break;
      case '--b':
        out.b = value();
        break;
      case '--delay-ms':
        out.delayUs = Math.round(num('milliseconds 0..60000', 0, 60_000) * 1000);
        break;
      case '--loss': {
        const raw = value();
        const pct = raw.endsWith('%');
        const n = Number(pct ? raw.slice(0, -1) : raw);
        const p = pct ? n / 100 : n;
        if (raw.trim() === '' || !Number.isFinite(p) || p < 0 || p > 1) bad(flag, raw, 'probability 0..1 or percent 0%..100%');
        out.lossProb = p;
        break;
      }
      case '--seed':
        out.seed = num('integer 0..2^53-1', 0, Number.MAX_SAFE_INTEGER, true);
        break;
      case '--queue-limit':
        out.queueLimit = num('integer 1..1048576', 1, 1 << 20, true);
        break;
      case '--spin-max-us':
        out.spinMaxUs = num('integer 0..10000', 0, 10_000, true);
        break;
      case '--no-realtime':
        out.realtime = false;
        break;
      case '--json':
        out.json = true;
        break;
      case '--stats-interval-s':
        out.statsIntervalS = num('seconds 0..86400', 0, 86_400);
        break;
      case '-h':
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new BadArgs(`impair: unknown option (option=${flag}); see --help`);
    }
  }
  if (!out.a) bad('--a', out.a, 'interface name');
  if (!out.b) bad('--b', out.b, 'interface name');
  return out as Args;
}

function directionLine(d: ImpairmentDirectionStats): string {
  return (
    `impair: ${d.from} -> ${d.to}: received=${d.received} dropped=${d.dropped} forwarded=${d.forwarded} ` +
    `queueOverflow=${d.queueOverflow} injectErrors=${d.injectErrors} truncated=${d.truncated} queued=${d.queued} ` +
    `captureDropped=${d.captureDropped} lateUsMean=${d.lateUsMean.toFixed(1)} lateUsMax=${d.lateUsMax.toFixed(1)}` +
    (d.lastInjectError ? ` lastInjectError=${JSON.stringify(d.lastInjectError)}` : '')
  );
}

function printFinal(stats: ImpairmentStats, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(stats)}\n`);
    return;
  }
  process.stdout.write(`${directionLine(stats.aToB)}\n${directionLine(stats.bToA)}\n`);
}

function main(): number | undefined {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof BadArgs) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  let imp: Impairment;
  try {
    imp = startImpairment({
      a: args.a,
      b: args.b,
      delayUs: args.delayUs,
      lossProb: args.lossProb,
      seed: args.seed,
      queueLimit: args.queueLimit,
      realtime: args.realtime,
      spinMaxUs: args.spinMaxUs,
    });
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  const first = imp.stats();
  process.stderr.write(
    `impair: forwarding (a=${args.a}, b=${args.b}, delayMs=${args.delayUs / 1000}, loss=${args.lossProb}, seed=${first.seed}, realtime=${first.realtime}, pid=${process.pid})\n`,
  );
  let lastPrint = Date.now();
  // The forwarder runs on native threads; this timer keeps the process alive and notices failures.
  const timer = setInterval(() => {
    const s = imp.stats();
    if (!s.running) {
      finish(1, `impair: forwarding failed (error=${JSON.stringify(s.error)})`);
      return;
    }
    if (args.statsIntervalS > 0 && Date.now() - lastPrint >= args.statsIntervalS * 1000) {
      lastPrint = Date.now();
      process.stderr.write(`${directionLine(s.aToB)}\n${directionLine(s.bToA)}\n`);
    }
  }, 200);
  let done = false;
  const finish = (code: number, message?: string): void => {
    if (done) return;
    done = true;
    clearInterval(timer);
    const stats = imp.stop();
    if (message) process.stderr.write(`${message}\n`);
    printFinal(stats, args.json);
    process.exitCode = code;
  };
  process.once('SIGINT', () => finish(0));
  process.once('SIGTERM', () => finish(0));
  // SIGUSR1: the counters now, as at exit (scripts/vm.sh impair-stats uses it).
  process.on('SIGUSR1', () => {
    if (!done) printFinal(imp.stats(), args.json);
  });
  return undefined;
}

const code = main();
if (code !== undefined) process.exitCode = code;
