/**
 * Structure-aware mutation fuzzer for the capture decoders, the pcap / pcapng readers, the capture
 * worker (decode → flow table → TCP / ICMP metrics) and the record codecs. Not part of CI.
 *
 *   npx tsx scripts/fuzz.ts --target decode|pcap|pcapng|worker|codec|all --seconds N --seed S
 *   npx tsx scripts/fuzz.ts --replay /tmp/mirrorflow-fuzz/<target>/<finding>.hex
 *
 * Seeds: the real captures in ../shared/corpus/tcpdump-ethernet/ plus frames, conversations and
 * files made with test/helpers/pcap-writer.ts. Mutations: bit flips, interesting bytes/words,
 * splice, truncate, extend, insert/delete, and field-targeted ones (IPv4 IHL / total length, IPv6
 * payload / extension lengths, TCP data offset / options, UDP length, VXLAN / Geneve / GRE,
 * pcap caplen / len, pcapng block / option lengths / if_tsresol). Oracles: see scripts/fuzz/targets.ts;
 * plus, here: a case with no progress for --hang-seconds is a hang, and the process RSS must stay
 * below --max-rss-mb (sampled every 2 s; the fuzz thread's heap is also capped).
 *
 * Each target runs in a worker thread, one at a time (`all` splits the seconds: decode 30 %,
 * pcap 20 %, pcapng 20 %, worker 20 %, codec 10 %). A failing input is saved under
 * /tmp/mirrorflow-fuzz/<target>/ (commented hex + meta) with a one-line summary; at the end one
 * JSON line gives executions and executions/s per target and the totals. Exit code 1 when
 * anything was found.
 */
import { Worker } from 'node:worker_threads';
import { loadCase, published, replayTarget, SAB_BYTES, SAB_BYTES_AT, saveCase, signature, type RunnerData, type RunnerMessage } from './fuzz/runner.js';
import { FUZZ_ROOT, TARGET_NAMES, type TargetName } from './fuzz/targets.js';

interface Args {
  target: TargetName | 'all';
  seconds: number;
  seed: number;
  maxRssMb: number;
  hangSeconds: number;
  replay?: string;
}

const SHARE: Record<TargetName, number> = { decode: 0.3, pcap: 0.2, pcapng: 0.2, worker: 0.2, codec: 0.1 };

function parseArgs(argv: string[]): Args {
  const a: Args = { target: 'all', seconds: 60, seed: Date.now() >>> 0, maxRssMb: 2048, hangSeconds: 30 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[i + 1];
    const num = () => {
      const n = Number(v);
      if (v === undefined || !Number.isFinite(n)) fail(`${k} needs a number`);
      i++;
      return n;
    };
    if (k === '--target') {
      if (v !== 'all' && !TARGET_NAMES.includes(v as TargetName)) fail(`--target must be one of all, ${TARGET_NAMES.join(', ')}`);
      a.target = v as Args['target'];
      i++;
    } else if (k === '--seconds') a.seconds = num();
    else if (k === '--seed') a.seed = num() >>> 0;
    else if (k === '--max-rss-mb') a.maxRssMb = num();
    else if (k === '--hang-seconds') a.hangSeconds = num();
    else if (k === '--replay') {
      if (!v) fail('--replay needs a file');
      a.replay = v;
      i++;
    } else if (k === '--help' || k === '-h') {
      process.stdout.write('usage: npx tsx scripts/fuzz.ts [--target all|decode|pcap|pcapng|worker|codec] [--seconds N] [--seed S] [--max-rss-mb M] [--hang-seconds H] | --replay FILE\n');
      process.exit(0);
    } else fail(`unknown argument ${k}`);
  }
  return a;
}

function fail(msg: string): never {
  process.stderr.write(`fuzz: ${msg}\n`);
  process.exit(2);
}

interface TargetStats {
  target: TargetName;
  execs: number;
  seconds: number;
  execsPerSec: number;
  findings: number;
  unique: number;
  hangs: number;
  memory: number;
  slow: number;
  restarts: number;
  rssStartMb: number;
  rssMaxMb: number;
  seed: number;
}

/**
 * The fuzz thread's entry: a data: URL module that loads runner.ts through tsx's API (a worker
 * does not inherit the tsx loader the main thread runs under).
 */
const RUNNER_BOOT = new URL(
  `data:text/javascript,${encodeURIComponent(
    `import { tsImport } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; await tsImport(${JSON.stringify(new URL('./fuzz/runner.ts', import.meta.url).href)}, ${JSON.stringify(import.meta.url)});`,
  )}`,
);

const mb = (b: number) => Math.round(b / 1048576);

/** Runs one target for `seconds` of fuzzing, restarting its thread after a hang or a memory blow-up. */
async function runTarget(target: TargetName, seconds: number, seed: number, args: Args): Promise<TargetStats> {
  const st: TargetStats = { target, execs: 0, seconds: 0, execsPerSec: 0, findings: 0, unique: 0, hangs: 0, memory: 0, slow: 0, restarts: 0, rssStartMb: mb(process.memoryUsage().rss), rssMaxMb: 0, seed };
  let left = seconds;
  let round = 0;
  while (left > 0.5) {
    const sab = new SharedArrayBuffer(SAB_BYTES_AT + SAB_BYTES);
    const ints = new Int32Array(sab, 0, 4);
    const data: RunnerData = { target, seconds: left, seed: (seed + round * 0x9e3779b9) >>> 0, sab };
    const started = Date.now();
    let readyAt = 0;
    const outcome = await new Promise<{ done?: Extract<RunnerMessage, { type: 'done' }>; stopped?: string }>((resolve) => {
      const w = new Worker(RUNNER_BOOT, { workerData: data, resourceLimits: { maxOldGenerationSizeMb: 1536 } });
      let lastProgress = -1;
      let lastChange = Date.now();
      let settled = false;
      const finish = (r: { done?: Extract<RunnerMessage, { type: 'done' }>; stopped?: string }) => {
        if (settled) return;
        settled = true;
        clearInterval(timer);
        resolve(r);
      };
      const stop = (kind: 'hang' | 'memory', why: string) => {
        const c = published(sab);
        const sig = signature(kind, why);
        const path = saveCase(target, kind, c, why, sig);
        process.stdout.write(`FINDING ${target} ${kind} ${why} → ${path}\n`);
        if (kind === 'hang') st.hangs++;
        else st.memory++;
        st.findings++;
        st.unique++;
        void w.terminate();
        finish({ stopped: kind });
      };
      const timer = setInterval(() => {
        const rss = process.memoryUsage().rss;
        if (mb(rss) > st.rssMaxMb) st.rssMaxMb = mb(rss);
        if (rss > args.maxRssMb * 1048576) return stop('memory', `rss ${mb(rss)} MiB above ${args.maxRssMb} MiB`);
        if (Atomics.load(ints, 3) !== 1) return; // still loading seeds
        const p = Atomics.load(ints, 0);
        if (p !== lastProgress) {
          lastProgress = p;
          lastChange = Date.now();
        } else if (Date.now() - lastChange > args.hangSeconds * 1000) {
          stop('hang', `no progress for ${args.hangSeconds} s`);
        }
      }, 2000);
      w.on('message', (m: RunnerMessage) => {
        if (m.type === 'ready') {
          readyAt = Date.now();
          process.stdout.write(`fuzz: ${target}: ${m.seeds}, ${left.toFixed(0)} s, seed ${data.seed}\n`);
        } else if (m.type === 'finding') process.stdout.write(`${m.line}\n`);
        else if (m.type === 'done') finish({ done: m });
      });
      w.on('error', (e: Error & { code?: string }) => {
        const why = e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'heap limit reached' : `fuzz thread died: ${e.stack ?? e.message}`;
        if (e.code === 'ERR_WORKER_OUT_OF_MEMORY') stop('memory', why);
        else {
          process.stdout.write(`FINDING ${target} harness ${why}\n`);
          st.findings++;
          finish({ stopped: 'error' });
        }
      });
      w.on('exit', () => finish({ stopped: 'exit' }));
    });
    const ran = readyAt ? (Date.now() - readyAt) / 1000 : 0;
    if (outcome.done) {
      st.execs += outcome.done.execs;
      st.seconds += outcome.done.seconds;
      st.findings += outcome.done.findings;
      st.unique += outcome.done.unique;
      st.slow += outcome.done.slow;
      break;
    }
    // stopped: count what ran (progress counter), go on with the time left
    st.execs += Atomics.load(ints, 0);
    st.seconds += ran;
    left -= Math.max(ran, (Date.now() - started) / 1000 - 30);
    if (outcome.stopped === 'error' || outcome.stopped === 'exit') break;
    st.restarts++;
    round++;
  }
  st.execsPerSec = st.seconds > 0 ? Math.round(st.execs / st.seconds) : 0;
  return st;
}

async function replay(path: string): Promise<number> {
  const { target, c } = loadCase(path);
  if (!TARGET_NAMES.includes(target)) fail(`${path}: no target in the header`);
  const t = replayTarget(target);
  const t0 = performance.now();
  try {
    await t.run(c);
    process.stdout.write(`replay ${target}: ok (${(performance.now() - t0).toFixed(2)} ms, ${c.bytes.length} bytes, meta=${c.meta.join(',')})\n`);
    return 0;
  } catch (e) {
    const kind = (e as { kind?: string }).kind ?? 'error';
    process.stdout.write(`replay ${target}: ${kind}: ${(e as Error).message}\n`);
    return 1;
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.replay) process.exit(await replay(args.replay));
  const targets: TargetName[] = args.target === 'all' ? [...TARGET_NAMES] : [args.target];
  process.stdout.write(`fuzz: targets ${targets.join(', ')}, ${args.seconds} s, seed ${args.seed}, findings under ${FUZZ_ROOT}/\n`);
  const results: TargetStats[] = [];
  for (const [i, t] of targets.entries()) {
    const secs = args.target === 'all' ? args.seconds * SHARE[t] : args.seconds;
    const r = await runTarget(t, secs, (args.seed + i) >>> 0, args);
    process.stdout.write(`fuzz: ${t}: ${r.execs} execs in ${r.seconds.toFixed(1)} s (${r.execsPerSec}/s), ${r.findings} findings (${r.unique} distinct, ${r.hangs} hangs, ${r.memory} memory, ${r.slow} slow), rss max ${r.rssMaxMb} MiB\n`);
    results.push(r);
  }
  const total = results.reduce(
    (a, r) => ({ execs: a.execs + r.execs, seconds: a.seconds + r.seconds, findings: a.findings + r.findings }),
    { execs: 0, seconds: 0, findings: 0 },
  );
  const summary = {
    seed: args.seed,
    targets: Object.fromEntries(
      results.map((r) => [r.target, { execs: r.execs, seconds: +r.seconds.toFixed(1), execsPerSec: r.execsPerSec, findings: r.findings, distinct: r.unique, hangs: r.hangs, memory: r.memory, slow: r.slow, rssMaxMb: r.rssMaxMb }]),
    ),
    total: { execs: total.execs, seconds: +total.seconds.toFixed(1), execsPerSec: total.seconds > 0 ? Math.round(total.execs / total.seconds) : 0, findings: total.findings },
    rssMaxMb: Math.max(0, ...results.map((r) => r.rssMaxMb)),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exit(total.findings > 0 ? 1 : 0);
}

await main();
