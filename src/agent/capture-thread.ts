/**
 * The agent's capture, off the main event loop: a worker thread that reads the mirror's output
 * interface with libpcap, decodes, keeps the flow table and posts flow records to the main thread
 * in batches. Kafka, OVSDB and HTTP work on the main thread never delays a read, so the kernel ring
 * does not overflow because the sink is busy.
 *
 * Protocol (structured clone over the worker's port):
 *   main → thread  { type: 'stop' }         drain what the kernel holds, flush every flow, then 'done'
 *                  { type: 'ack', records }  the main thread has handed that many records to the sink
 *   thread → main  CaptureThreadMessage (records, ledger, source state, fatal error, done)
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { FlowRecord } from '../capture/flow-record.js';
import { openLiveSource, type LiveSourceOptions } from '../capture/live-source.js';
import { CaptureWorker, type CaptureLedger } from '../capture/worker.js';
import type { FlowTableOptions } from '../capture/flow-table.js';
import { prepareCapturePort } from '../ovsdb/mirror-controller.js';
import { ReopeningLiveSource, type CaptureSourceState } from './reopening-source.js';

export interface CaptureThreadConfig {
  live: LiveSourceOptions;
  /**
   * The interface is the mirror's internal port that mirrorflow created: bring it up with IPv6
   * disabled before every open (ovs-vswitchd recreates it down after a restart).
   */
  prepareInterface?: boolean;
  table: Omit<FlowTableOptions, 'onRecord' | 'epochUs'>;
  /** Cut flows at window boundaries (µs; 0: no cuts). */
  windowUs: number;
  /** Advance event time from the wall clock this often while no frame comes (default 250). */
  wallClockTickMs?: number;
  /** Post records at least this often (default 100 ms) or once this many are waiting (default 2048). */
  postEveryMs?: number;
  postEveryRecords?: number;
  /** Post the ledger this often (default 1000 ms). */
  ledgerEveryMs?: number;
  /** Records posted and not yet acknowledged above which the sink counts as behind (default 100000). */
  backpressureRecords?: number;
}

export interface CaptureThreadStatus {
  /** A libpcap handle is open on the interface. */
  open: boolean;
  /** Handles opened so far (1 + reopenings after the interface vanished). */
  opens: number;
  /** Records posted while more than backpressureRecords were still unacknowledged. */
  backpressureRecords: number;
  /** Most records in flight at once. */
  maxInFlight: number;
}

export type CaptureThreadMessage =
  | { type: 'records'; records: FlowRecord[]; eventTimeUs: number }
  | { type: 'ledger'; ledger: CaptureLedger; status: CaptureThreadStatus; eventTimeUs: number }
  | { type: 'source'; event: CaptureSourceState }
  | { type: 'fatal'; message: string; code?: string }
  | { type: 'done'; ledger: CaptureLedger; status: CaptureThreadStatus; eventTimeUs: number };

export type CaptureThreadCommand = { type: 'stop' } | { type: 'ack'; records: number };

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('capture-thread: must run in a worker thread');
  const cfg = workerData as CaptureThreadConfig;
  const postEveryMs = cfg.postEveryMs ?? 100;
  const postEveryRecords = cfg.postEveryRecords ?? 2048;
  const backpressureAt = cfg.backpressureRecords ?? 100_000;
  let pending: FlowRecord[] = [];
  let posted = 0;
  let acked = 0;
  const status: CaptureThreadStatus = { open: false, opens: 0, backpressureRecords: 0, maxInFlight: 0 };
  const send = (m: CaptureThreadMessage) => port.postMessage(m);

  const worker = new CaptureWorker({
    windowUs: cfg.windowUs,
    table: cfg.table,
    onRecord: (r) => {
      pending.push(r);
      if (pending.length >= postEveryRecords) flushRecords();
    },
  });
  const flushRecords = () => {
    if (!pending.length) return;
    const inFlight = posted - acked;
    if (inFlight > backpressureAt) status.backpressureRecords += pending.length;
    posted += pending.length;
    if (posted - acked > status.maxInFlight) status.maxInFlight = posted - acked;
    send({ type: 'records', records: pending, eventTimeUs: worker.eventTimeUs });
    pending = [];
  };

  let source: ReopeningLiveSource;
  try {
    source = await ReopeningLiveSource.open({
      live: cfg.live,
      open: async (o) => {
        if (cfg.prepareInterface) await prepareCapturePort(o.interface);
        return openLiveSource(o);
      },
      onState: (event) => {
        status.open = event.state === 'open';
        if (event.state === 'open') status.opens = event.opens;
        send({ type: 'source', event });
      },
    });
  } catch (err) {
    const e = err as { message?: string; code?: string };
    send({ type: 'fatal', message: e.message ?? String(err), ...(e.code ? { code: e.code } : {}) });
    return;
  }

  const stop = new AbortController();
  port.on('message', (m: CaptureThreadCommand) => {
    if (m.type === 'stop') stop.abort();
    else if (m.type === 'ack') acked += m.records;
  });
  const tick = setInterval(() => {
    worker.tickWallClock(Date.now());
    flushRecords();
  }, cfg.wallClockTickMs ?? 250);
  const postTimer = setInterval(flushRecords, postEveryMs);
  const ledgerTimer = setInterval(
    () => send({ type: 'ledger', ledger: worker.ledger(), status: { ...status }, eventTimeUs: worker.eventTimeUs }),
    cfg.ledgerEveryMs ?? 1000,
  );
  try {
    await worker.run(source, stop.signal);
  } catch (err) {
    const e = err as { message?: string; code?: string };
    send({ type: 'fatal', message: e.message ?? String(err), ...(e.code ? { code: e.code } : {}) });
  } finally {
    clearInterval(tick);
    clearInterval(postTimer);
    clearInterval(ledgerTimer);
    await source.close();
    status.open = false;
    flushRecords();
    send({ type: 'done', ledger: worker.ledger(), status: { ...status }, eventTimeUs: worker.eventTimeUs });
    port.close();
  }
}

void main();
