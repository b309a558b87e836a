/**
 * Runs one capture: a frame source through the capture worker into flow records, aggregated per
 * VM pair in windows, written to outputs. Used by `replay` (a file) and `capture` (live).
 */
import type { FlowRecord, PairWindow } from '../capture/flow-record.js';
import type { FrameSource } from '../capture/source.js';
import { CaptureWorker, type CaptureLedger, type CaptureWorkerOptions } from '../capture/worker.js';
import type { EndpointResolver } from '../pipeline/endpoint-resolver.js';
import { ObservationScratch, SketchDistribution } from '../pipeline/observation.js';
import { PairWindowAggregator } from '../pipeline/pair-window.js';
import type { RecordOutput } from './record-output.js';

export interface CaptureRunOptions {
  source: FrameSource;
  /** Aggregation window in µs; 0: one window over the whole capture. */
  windowUs: number;
  resolver: EndpointResolver;
  flowsOut?: RecordOutput<FlowRecord>;
  pairsOut?: RecordOutput<PairWindow>;
  table?: CaptureWorkerOptions['table'];
  agentId?: string;
  signal?: AbortSignal;
  /** Live sources: advance event time from the wall clock this often while no frame comes. */
  wallClockTickMs?: number;
  /** Called for every window emitted (e.g. a live table on a terminal). */
  onPairs?: (windows: PairWindow[]) => void;
}

export interface CaptureRunResult {
  ledger: CaptureLedger;
  flowRecords: number;
  pairWindows: number;
  lateRecords: number;
  seconds: number;
}

export async function runCapture(o: CaptureRunOptions): Promise<CaptureRunResult> {
  const started = process.hrtime.bigint();
  const aggregator = new PairWindowAggregator({
    windowUs: o.windowUs,
    newDistribution: () => new SketchDistribution(),
    summarizeOne: SketchDistribution.summarizeOne,
    idPrefix: `${o.agentId ?? 'mirrorflow'}-pairs`,
    // one PairWindow object for all when the only reader encodes each at once
    reuseWindows: o.onPairs === undefined && o.pairsOut?.copiesRecords === true,
  });
  let flowRecords = 0;
  // per-pair windows only when someone reads them
  const aggregate = o.pairsOut !== undefined || o.onPairs !== undefined;
  let pairWindows = 0;
  // windows go out one by one as they close (none is kept once written); onPairs gets them by batch
  let batch: PairWindow[] | undefined;
  const emitPair = (w: PairWindow) => {
    pairWindows++;
    o.pairsOut?.write(w);
    if (o.onPairs) (batch ??= []).push(w);
  };
  const endBatch = () => {
    if (!batch) return;
    const ws = batch;
    batch = undefined;
    o.onPairs!(ws);
  };
  const obs = new ObservationScratch();
  const worker: CaptureWorker = new CaptureWorker({
    windowUs: o.windowUs,
    table: { ...o.table, ...(o.agentId ? { agentId: o.agentId } : {}) },
    onRecord: (r) => {
      flowRecords++;
      o.flowsOut?.write(r);
      if (!aggregate) return;
      obs.fill(r, o.resolver, true);
      if (r.clientToServer.packets + r.serverToClient.packets === 0) {
        // a closing record without packets (a flow that timed out after its last interim record):
        // its counters restarted at that record, so only a failed handshake is news; its time is
        // when the flow ended (the flow table's rule), so it goes to that window, as in the
        // pipeline (pipeline-core.ts: pairObservationOf). Anything else would add the pair to a
        // window in which it sent nothing.
        if (!r.tcp?.failed) return;
        obs.firstUs = obs.lastUs;
      }
      aggregator.addTo(obs, emitPair);
      endBatch();
    },
  });
  let timer: NodeJS.Timeout | undefined;
  if (o.wallClockTickMs) {
    timer = setInterval(() => {
      worker.tickWallClock(Date.now());
      aggregator.advanceTo(worker.eventTimeUs, emitPair);
      endBatch();
    }, o.wallClockTickMs);
  }
  let failure: unknown;
  try {
    await worker.run(o.source, o.signal, () => {
      const f = o.flowsOut?.behind ? o.flowsOut.drained() : undefined;
      const p = o.pairsOut?.behind ? o.pairsOut.drained() : undefined;
      return f || p ? Promise.all([f, p]).then(() => undefined) : undefined;
    });
  } catch (e) {
    // a damaged file: everything before the damage was accounted (run() flushed the table);
    // emit and write it all, then report the damage
    failure = e;
  } finally {
    if (timer) clearInterval(timer);
  }
  aggregator.flushTo(emitPair);
  endBatch();
  await o.flowsOut?.close();
  await o.pairsOut?.close();
  if (failure) throw failure;
  return {
    ledger: worker.ledger(),
    flowRecords,
    pairWindows,
    lateRecords: aggregator.lateRecords,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  };
}
