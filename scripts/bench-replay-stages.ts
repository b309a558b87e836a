/**
 * Where replay's time goes, stage by stage, on one capture (in-process, after startup):
 *   read      the pcap reader alone (batches walked, nothing decoded)
 *   worker    + decode + flow table (records built, dropped)
 *   flows     + flow records encoded as length-delimited protobuf (to nothing)
 *   pairs     + per-pair aggregation and PairWindow JSON lines (to nothing)
 *   both      flow records (protobuf) and PairWindow JSON lines
 *   both-pb   flow records and PairWindows, both protobuf (what `npm run bench` times as "both")
 * Main-thread wall time and the process's CPU time (all threads: GC and compiler helpers too), each
 * the best of --runs, after startup: compare stages of one run with each other
 * (the whole-process comparison with peers is `npm run bench`). Not a test.
 * Run: node --import tsx scripts/bench-replay-stages.ts FILE [--window 10] [--runs 3] [--only STAGE]
 */
import { parseArgs } from 'node:util';
import { PcapFileSource } from '../src/capture/pcap-file.js';
import { runCapture } from '../src/agent/capture-run.js';
import { EndpointResolver } from '../src/pipeline/endpoint-resolver.js';
import { CaptureWorker } from '../src/capture/worker.js';
import type { RecordOutput } from '../src/agent/record-output.js';
import { codecOutput } from '../src/cli/record-encoders.js';
import { StreamRecordOutput, jsonTextLinesEncoder } from '../src/agent/record-output.js';
import { pairWindowJsonText } from '../src/capture/record-json.js';
import { Writable } from 'node:stream';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { window: { type: 'string', default: '10' }, runs: { type: 'string', default: '3' }, only: { type: 'string' } },
});
const file = positionals[0];
if (!file) throw new Error('usage: bench-replay-stages.ts FILE');
const windowUs = Number(values.window) * 1e6;
const runs = Number(values.runs);

const nullStream = () => new Writable({ write: (_c, _e, cb) => cb() });

async function stage(name: string, fn: () => Promise<number>): Promise<void> {
  if (values.only && values.only !== name) return;
  let best = Infinity;
  let bestCpu = Infinity;
  let frames = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    frames = await fn();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    if (s < best) best = s;
    bestCpu = Math.min(bestCpu, (c.user + c.system) / 1e6);
  }
  console.log(`${name.padEnd(8)} ${best.toFixed(3)} s  ${(frames / best / 1e6).toFixed(2)} M frames/s  (cpu ${bestCpu.toFixed(3)} s, all threads)`);
}

await stage('read', async () => {
  const src = await PcapFileSource.open(file);
  let n = 0;
  let sink = 0;
  for (;;) {
    const b = await src.next();
    if (!b) break;
    n += b.count;
    for (let i = 0; i < b.count; i++) sink += b.data[b.offset[i]!]!;
  }
  await src.close();
  return n + (sink & 0);
});

await stage('worker', async () => {
  const src = await PcapFileSource.open(file);
  const w = new CaptureWorker({ windowUs, onRecord: () => undefined });
  await w.run(src);
  await src.close();
  return w.ledger().frames;
});

async function viaRun(flows: boolean, pairs: boolean | 'protobuf'): Promise<number> {
  const src = await PcapFileSource.open(file);
  const r = await runCapture({
    source: src,
    windowUs,
    resolver: new EndpointResolver([]),
    ...(flows ? { flowsOut: codecOutput(nullStream(), 'flow-record', 'protobuf', 'null') as RecordOutput<never> } : {}),
    ...(pairs === 'protobuf'
      ? { pairsOut: codecOutput(nullStream(), 'pair-window', 'protobuf', 'null') as RecordOutput<never> }
      : pairs
        ? { pairsOut: new StreamRecordOutput(nullStream(), jsonTextLinesEncoder(pairWindowJsonText), 'null') as RecordOutput<never> }
        : {}),
    agentId: 'bench',
  });
  await src.close();
  return r.ledger.frames;
}
await stage('flows', () => viaRun(true, false));
await stage('pairs', () => viaRun(false, true));
await stage('both', () => viaRun(true, true));
await stage('both-pb', () => viaRun(true, 'protobuf'));
