/**
 * The main thread's side of the capture thread (capture-thread.ts): starts it, hands its record
 * batches to a callback, keeps its latest ledger, and stops it in order (drain, flush, done).
 */
import type { FlowRecord } from '../capture/flow-record.js';
import type { CaptureLedger } from '../capture/worker.js';
import { MirrorflowError, kv } from '../errors.js';
import { startModuleWorker } from '../worker-boot.js';
import type { CaptureThreadCommand, CaptureThreadConfig, CaptureThreadMessage, CaptureThreadStatus } from './capture-thread.js';
import type { CaptureSourceState } from './reopening-source.js';

export class CaptureThreadError extends MirrorflowError {}

export interface CaptureThreadHandlers {
  /** A batch of flow records in emission order; `eventTimeUs` is the capture's event time after them. */
  onRecords(records: FlowRecord[], eventTimeUs: number): void;
  onSource?(event: CaptureSourceState): void;
  /** The capture failed for good after it had started (it ends; 'done' still follows). */
  onFatal?(error: CaptureThreadError): void;
}

export interface CaptureSnapshot {
  ledger: CaptureLedger | undefined;
  status: CaptureThreadStatus;
  eventTimeUs: number;
}

export interface CaptureThread {
  /** The latest ledger the thread posted (about once a second) and its source status. */
  snapshot(): CaptureSnapshot;
  /** Tells the thread that `n` records were handed to the sink (backpressure accounting). */
  ack(n: number): void;
  /** Stops capturing, flushes every flow (their records arrive through onRecords first) and ends the thread. */
  stop(timeoutMs?: number): Promise<CaptureSnapshot>;
}

/**
 * Starts the capture thread and resolves once its libpcap handle is open (rejects with the
 * thread's one-line error when the interface cannot be opened or the filter does not compile).
 */
export function startCaptureThread(cfg: CaptureThreadConfig, h: CaptureThreadHandlers): Promise<CaptureThread> {
  const worker = startModuleWorker('agent/capture-thread', import.meta.url, cfg);
  let snap: CaptureSnapshot = { ledger: undefined, status: { open: false, opens: 0, backpressureRecords: 0, maxInFlight: 0 }, eventTimeUs: 0 };
  let done: ((s: CaptureSnapshot) => void) | undefined;
  const finished = new Promise<CaptureSnapshot>((r) => (done = r));
  let started = false;
  return new Promise<CaptureThread>((resolve, reject) => {
    const fail = (e: CaptureThreadError) => {
      if (!started) {
        started = true;
        reject(e);
        void worker.terminate();
      } else h.onFatal?.(e);
    };
    const send = (c: CaptureThreadCommand) => {
      try {
        worker.postMessage(c);
      } catch {
        // the thread has ended
      }
    };
    worker.on('message', (m: CaptureThreadMessage) => {
      switch (m.type) {
        case 'records':
          snap.eventTimeUs = m.eventTimeUs;
          h.onRecords(m.records, m.eventTimeUs);
          break;
        case 'ledger':
          snap = { ledger: m.ledger, status: m.status, eventTimeUs: m.eventTimeUs };
          break;
        case 'source':
          snap.status.open = m.event.state === 'open';
          if (m.event.state === 'open') {
            snap.status.opens = m.event.opens;
            if (!started) {
              started = true;
              resolve(handle);
            }
          }
          h.onSource?.(m.event);
          break;
        case 'fatal':
          fail(new CaptureThreadError(m.code ?? 'capture-failed', m.message));
          break;
        case 'done':
          snap = { ledger: m.ledger, status: m.status, eventTimeUs: m.eventTimeUs };
          done?.(snap);
          break;
      }
    });
    worker.on('error', (err) => fail(new CaptureThreadError('capture-thread', `capture: thread failed${kv({ error: err.message })}`, { cause: err })));
    worker.on('exit', (code) => {
      if (!started) fail(new CaptureThreadError('capture-thread', `capture: thread ended before the capture opened${kv({ exitCode: code })}`));
      done?.(snap);
    });
    const handle: CaptureThread = {
      snapshot: () => snap,
      ack: (n) => send({ type: 'ack', records: n }),
      async stop(timeoutMs = 5000) {
        send({ type: 'stop' });
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
        const r = await Promise.race([finished, timedOut]);
        clearTimeout(timer);
        if (r === 'timeout') {
          await worker.terminate();
          return snap;
        }
        return r;
      },
    };
  });
}
