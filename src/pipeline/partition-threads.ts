/**
 * The Kafka pipeline's partitions processed in worker threads (partition-thread.ts): partition p
 * goes to thread p % threads, so one pipeline process decodes, cleans and aggregates on several
 * cores while its main thread keeps the consumer, the fencing and the transactions.
 *
 * Calls for one partition are answered in the order they were made (one thread, one port, FIFO),
 * and the pipeline makes them under the partition's lock, so a partition sees the same sequence of
 * operations as in-process. The messages of a batch are packed into one buffer and transferred
 * (one copy of their bytes); the answers carry the windows and alerts already encoded.
 *
 * A call that throws in its thread is rejected (the pipeline restarts the partition from its
 * commit, as for an in-process failure). A thread that dies rejects every call waiting on it and
 * every later one; `onFatal` is told once, and the pipeline stops: nothing was committed past what
 * the lost state had emitted, so a restarted process continues exactly.
 */
import type { Worker } from 'node:worker_threads';
import { MirrorflowError, kv } from '../errors.js';
import { startModuleWorker } from '../worker-boot.js';
import type { HeaderValues } from './codec-batch.js';
import type { EndpointResolver } from './endpoint-resolver.js';
import { emptyPartitionStats, type Checkpoint, type PartitionStats } from './pipeline-core.js';
import type { PackedMessages, PartitionThreadAnswer, PartitionThreadCall, PartitionThreadConfig } from './partition-thread.js';
import { MESSAGES_PER_TURN, addWorkCounters, emptyWorkCounters, type FlowTopicMessage, type PartitionHost, type PartitionSnapshot, type PartitionWorkOptions, type WorkResult, type WorkStats } from './partition-work.js';

export class PartitionThreadError extends MirrorflowError {}

/** An answered call without its id (the id is given when it is posted). */
type CallBody = Extract<PartitionThreadCall, { id: number }> extends infer C ? (C extends unknown ? Omit<C, 'id'> : never) : never;

interface Waiting {
  resolve(v: PartitionSnapshot | WorkResult): void;
  reject(e: Error): void;
}

interface Thread {
  index: number;
  worker: Worker;
  waiting: Map<number, Waiting>;
  stats: WorkStats | undefined;
  /** Set once the thread died or was stopped: calls are refused with it. */
  dead: Error | undefined;
}

/** Header values as text (what describeFlowMessage reads them as), to cross to a thread. */
function headerText(h: HeaderValues): HeaderValues {
  const out: HeaderValues = {};
  for (const k of Object.keys(h)) {
    const v = h[k];
    if (v !== undefined && v !== null) out[k] = String(v);
  }
  return out;
}

/** The messages of a batch in one transferable buffer (see PackedMessages). */
export function packMessages(messages: FlowTopicMessage[]): PackedMessages {
  let total = 0;
  for (const m of messages) total += m.value?.length ?? 0;
  const bytes = new Uint8Array(total);
  const offsets = new Float64Array(messages.length);
  const ends = new Int32Array(messages.length);
  const headers: HeaderValues[] = [];
  let at = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    offsets[i] = m.offset;
    if (m.value) {
      bytes.set(m.value, at);
      at += m.value.length;
      ends[i] = at;
    } else ends[i] = -1;
    headers.push(headerText(m.headers));
  }
  return { offsets, ends, bytes, headers };
}

export interface PartitionThreadsOptions {
  threads: number;
  work: PartitionWorkOptions;
  /** The pipeline's resolver: its inventory, and every replacement of it, goes to each thread. */
  resolver: EndpointResolver;
  /** A thread died (once). */
  onFatal(e: PartitionThreadError): void;
}

export class PartitionThreads implements PartitionHost {
  /**
   * By index (partition % threads), each started at the first call for one of its partitions: a
   * pipeline that never starts leaves no thread behind, and threads beyond the partitions this
   * process holds cost nothing.
   */
  private readonly threads: (Thread | undefined)[] = [];
  private nextId = 1;
  private fatal = false;
  private unsubscribe: (() => void) | undefined;
  private closing = false;

  constructor(private readonly opts: PartitionThreadsOptions) {
    if (!Number.isInteger(opts.threads) || opts.threads < 1) throw new RangeError(`partition-threads: threads must be a positive integer (threads=${opts.threads})`);
  }


  private start(index: number): Thread {
    const cfg: PartitionThreadConfig = { work: this.opts.work, inventory: this.opts.resolver.identities };
    const worker = startModuleWorker('pipeline/partition-thread', import.meta.url, cfg);
    const t: Thread = { index, worker, waiting: new Map(), stats: undefined, dead: undefined };
    worker.on('message', (a: PartitionThreadAnswer) => {
      t.stats = a.stats;
      const w = t.waiting.get(a.id);
      if (!w) return;
      t.waiting.delete(a.id);
      if (a.ok) w.resolve(a.value);
      else w.reject(new PartitionThreadError('pipeline-thread-call', `pipeline: partition work failed${kv({ thread: index, reason: a.error })}`, { retriable: true }));
    });
    worker.on('error', (e) => this.died(t, `pipeline: partition thread failed${kv({ thread: index, reason: e.message })}`, e));
    // an answer that cannot be read: the call it was for would wait for ever
    worker.on('messageerror', (e) => this.died(t, `pipeline: partition thread answer unreadable${kv({ thread: index, reason: e.message })}`, e));
    worker.on('exit', (code) => this.died(t, `pipeline: partition thread exited${kv({ thread: index, code })}`));
    return t;
  }

  private died(t: Thread, message: string, cause?: Error): void {
    if (t.dead) return;
    const e = new PartitionThreadError('pipeline-thread', message, cause ? { cause } : {});
    t.dead = e;
    for (const w of t.waiting.values()) w.reject(e);
    t.waiting.clear();
    if (!this.closing && !this.fatal) {
      this.fatal = true;
      this.opts.onFatal(e);
    }
  }

  private threadOf(partition: number): Thread | undefined {
    if (this.closing) return undefined;
    const i = partition % this.opts.threads;
    let t = this.threads[i];
    if (!t) {
      this.unsubscribe ??= this.opts.resolver.onReplace((vms) => {
        for (const x of this.threads) if (x && !x.dead) x.worker.postMessage({ op: 'inventory', vms } satisfies PartitionThreadCall);
      });
      t = this.threads[i] = this.start(i);
    }
    return t;
  }

  /** Threads started so far. */
  get running(): number {
    return this.threads.filter((t) => t !== undefined && !t.dead).length;
  }

  private call<T extends PartitionSnapshot | WorkResult>(partition: number, c: CallBody, transfer: ArrayBuffer[] = []): Promise<T> {
    const t = this.threadOf(partition);
    if (!t) return Promise.reject(new PartitionThreadError('pipeline-thread', 'pipeline: partition threads closed'));
    if (t.dead) return Promise.reject(t.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      t.waiting.set(id, { resolve: resolve as (v: PartitionSnapshot | WorkResult) => void, reject });
      t.worker.postMessage({ ...c, id } as PartitionThreadCall, transfer);
    });
  }

  assign(partition: number, startOffset: number, checkpoint: Checkpoint | undefined): Promise<PartitionSnapshot> {
    return this.call(partition, { op: 'assign', partition, startOffset, checkpoint });
  }

  revoke(partition: number): void {
    const t = this.threadOf(partition);
    if (t && !t.dead) t.worker.postMessage({ op: 'revoke', partition } satisfies PartitionThreadCall);
  }

  async process(partition: number, messages: FlowTopicMessage[], seenUpTo: number, now: () => number, cancelled: () => boolean): Promise<WorkResult | undefined> {
    // a few messages per call, one call at a time: the thread's other partitions (their restores
    // above all) wait for one chunk, not for a whole batch
    const out: WorkResult = { windows: [], alerts: [], snapshot: undefined as unknown as PartitionSnapshot, counters: emptyWorkCounters() };
    for (let i = 0; i === 0 || i < messages.length; i += MESSAGES_PER_TURN) {
      const chunk = messages.slice(i, i + MESSAGES_PER_TURN);
      const last = i + MESSAGES_PER_TURN >= messages.length;
      const packed = packMessages(chunk);
      const r = await this.call<WorkResult>(partition, { op: 'process', partition, messages: packed, seenUpTo: last ? seenUpTo : 0, nowMs: now() }, [packed.bytes.buffer as ArrayBuffer]);
      if (cancelled()) return undefined;
      for (const w of r.windows) out.windows.push(w);
      for (const a of r.alerts) out.alerts.push(a);
      addWorkCounters(out.counters, r.counters);
      out.snapshot = r.snapshot;
    }
    return out;
  }

  tick(partition: number, nowMs: number): Promise<WorkResult> {
    return this.call(partition, { op: 'tick', partition, nowMs });
  }

  stats(): WorkStats {
    let core: (PartitionStats & { openWindows: number }) | undefined;
    const cleaned: Record<string, number> = {};
    for (const t of this.threads) {
      if (!t?.stats) continue;
      if (!core) core = { ...t.stats.core };
      else for (const k of Object.keys(core) as (keyof typeof core)[]) core[k] += t.stats.core[k];
      for (const [k, n] of Object.entries(t.stats.cleaned)) cleaned[k] = (cleaned[k] ?? 0) + n;
    }
    return {
      core: core ?? { ...emptyPartitionStats(), openWindows: 0 },
      cleaned,
    };
  }

  async close(): Promise<void> {
    this.closing = true;
    this.unsubscribe?.();
    await Promise.all(this.threads.map((t) => t?.worker.terminate()));
  }
}
