/**
 * The Kafka pipeline's per-partition work, whichever thread runs it: messages of the flows topic →
 * decoded, cleaned and aggregated by the partition's state (pipeline-core.ts) → the PairWindows and
 * alerts they closed, already encoded for the pairs and alerts topics, with the partition's new
 * commit point. KafkaPipeline (kafka-pipeline.ts) keeps the Kafka side (consumer group, fencing,
 * transactions) and hands each partition's batches to a PartitionHost:
 *   - PartitionWork (this file): in the pipeline's own thread;
 *   - PartitionThreads (partition-threads.ts): in worker threads, each holding a PartitionWork for
 *     its share of the partitions (partition % threads), so one pipeline process aggregates on
 *     several cores. A partition's state lives in one thread only; its calls are answered in order.
 * Both run exactly this code: a partition's output does not depend on where it runs.
 */
import type { PairWindow } from '../capture/flow-record.js';
import type { Alert } from './alert-record.js';
import { decodeFlowBatch, describeFlowMessage, frameProtobufBatch, type FlowMessageInfo, type HeaderValues } from './codec-batch.js';
import { CodecError } from './codec-error.js';
import { decodeFlowView, FlowView, StringInterner } from './codec-flow-view.js';
import { decodeRecord, encodeRecord, schemaHeaders, type RecordFormat } from './codec.js';
import { EndpointResolver } from './endpoint-resolver.js';
import { PipelineCore, type Checkpoint, type CommitPoint, type PartitionStats } from './pipeline-core.js';
import type { RulesConfig } from './rules-config.js';

/**
 * Messages (batches of up to 1,000 records each) handled in one go, a few milliseconds of work:
 * between returns to the event loop here, per call to a worker thread (partition-threads.ts).
 */
export const MESSAGES_PER_TURN = 8;

/** Why a message of the flows topic was skipped. */
export type SkipReason =
  | 'no-value'
  | 'unknown-schema'
  | 'unknown-content-type'
  | 'unsupported-version'
  | 'wrong-schema'
  | 'undecodable';
export const SKIP_REASONS: readonly SkipReason[] = ['no-value', 'unknown-schema', 'unknown-content-type', 'unsupported-version', 'wrong-schema', 'undecodable'];

/** The skip reason of a describeMessage / decodeRecord failure. */
export function skipReasonOf(e: unknown, stage: 'headers' | 'decode'): SkipReason {
  if (stage === 'decode') return 'undecodable';
  const m = String((e as Error)?.message ?? e);
  if (m.includes('unknown content type')) return 'unknown-content-type';
  if (m.includes('unsupported schema version')) return 'unsupported-version';
  return 'unknown-schema';
}

/** What a partition's work needs to know (plain data: it is handed to worker threads as is). */
export interface PartitionWorkOptions {
  windowUs: number;
  allowedLatenessUs: number;
  idleTimeoutMs?: number;
  /** PairWindow and alert ids start with it (the consumer group). */
  idPrefix: string;
  rules: RulesConfig;
  clean: boolean;
  /** Format of the PairWindows and alerts written. */
  format: RecordFormat;
}

/** A message of the flows topic as a partition's work takes it. */
export interface FlowTopicMessage {
  offset: number;
  value: Uint8Array | null;
  /** Header values as kafkajs gives them, or their text. */
  headers: HeaderValues;
}

/** A message for the pairs or alerts topic, encoded. */
export interface OutMessage {
  key: string;
  value: Uint8Array;
}

/** What the Kafka side needs to know of a partition's state between calls. */
export interface PartitionSnapshot {
  commitPoint: CommitPoint;
  openWindows: number;
  lastActivityMs: number | undefined;
}

/** Counts of one call (added to the pipeline's counters). */
export interface WorkCounters {
  messages: number;
  batchMessages: number;
  flowRecords: number;
  skipped: Record<SkipReason, number>;
}

export interface WorkResult {
  /** PairWindows closed, in order, for the pairs topic (keyed `<a>|<b>`). */
  windows: OutMessage[];
  /** Alerts raised, in order, for the alerts topic (keyed by the source for a scan, else `<a>|<b>`). */
  alerts: OutMessage[];
  snapshot: PartitionSnapshot;
  counters: WorkCounters;
}

/** The aggregation's totals (every partition a host held, revoked ones included). */
export interface WorkStats {
  core: PartitionStats & { openWindows: number };
  cleaned: Record<string, number>;
}

/** Where the pipeline's partitions are processed: in its own thread, or in worker threads. */
export interface PartitionHost {
  /** (Re)starts a partition from its committed offset and checkpoint. */
  assign(partition: number, startOffset: number, checkpoint: Checkpoint | undefined): Promise<PartitionSnapshot>;
  /** Drops a partition's state (no answer; later calls for it are ordered after this). */
  revoke(partition: number): void;
  /**
   * The messages of one batch from `from` on (earlier ones were processed already), then the
   * position moves to `seenUpTo` (past transaction markers). Undefined when `cancelled` said so
   * between messages (the partition is being restored or dropped: the result would be thrown away).
   */
  process(partition: number, messages: FlowTopicMessage[], seenUpTo: number, now: () => number, cancelled: () => boolean): Promise<WorkResult | undefined>;
  /** Closes the partition's windows when it has been idle long enough (see PartitionState.tick). */
  tick(partition: number, nowMs: number): Promise<WorkResult>;
  /** Totals, as of the last answer of each thread. */
  stats(): WorkStats;
  /** Stops the threads (if any). */
  close(): Promise<void>;
}

export function emptyWorkCounters(): WorkCounters {
  return { messages: 0, batchMessages: 0, flowRecords: 0, skipped: Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number> };
}

/** Adds `d` into `into`. */
export function addWorkCounters(into: WorkCounters, d: WorkCounters): void {
  into.messages += d.messages;
  into.batchMessages += d.batchMessages;
  into.flowRecords += d.flowRecords;
  for (const r of SKIP_REASONS) into.skipped[r] += d.skipped[r];
}

/** The partitions' work in the calling thread (also what each worker thread runs). */
export class PartitionWork implements PartitionHost {
  private readonly core: PipelineCore;
  private readonly view = new FlowView();
  private readonly strings = new StringInterner();
  private readonly windowHeaders: Record<string, string>;
  private readonly format: RecordFormat;

  constructor(opts: PartitionWorkOptions, readonly resolver: EndpointResolver = new EndpointResolver()) {
    this.format = opts.format;
    this.windowHeaders = schemaHeaders('pair-window', opts.format);
    this.core = new PipelineCore({
      windowUs: opts.windowUs,
      allowedLatenessUs: opts.allowedLatenessUs,
      ...(opts.idleTimeoutMs !== undefined ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
      resolver,
      idPrefix: opts.idPrefix,
      rules: opts.rules,
      clean: opts.clean,
    });
  }

  /** The schema headers of the PairWindows written (the same for every message). */
  get headers(): Record<string, string> {
    return this.windowHeaders;
  }

  async assign(partition: number, startOffset: number, checkpoint: Checkpoint | undefined): Promise<PartitionSnapshot> {
    return this.assignNow(partition, startOffset, checkpoint);
  }

  assignNow(partition: number, startOffset: number, checkpoint: Checkpoint | undefined): PartitionSnapshot {
    this.core.assign(partition, startOffset, checkpoint);
    return this.snapshot(partition);
  }

  revoke(partition: number): void {
    this.core.revoke(partition);
  }

  /** The partition's state is held (assigned and not revoked). */
  has(partition: number): boolean {
    return this.core.has(partition);
  }

  async process(partition: number, messages: FlowTopicMessage[], seenUpTo: number, now: () => number, cancelled: () => boolean): Promise<WorkResult | undefined> {
    // (calls for different partitions interleave at the yields: nothing of a call is kept in `this`)
    const windows: PairWindow[] = [];
    const counters = emptyWorkCounters();
    for (let i = 0; i < messages.length; i += MESSAGES_PER_TURN) {
      if (i > 0) {
        // back to the event loop now and then: the next fetch's bytes are read meanwhile
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (cancelled()) return undefined;
      }
      this.processRange(partition, messages, i, Math.min(i + MESSAGES_PER_TURN, messages.length), now(), windows, counters);
    }
    return this.processed(partition, seenUpTo, windows, counters);
  }

  /** process() in one go, for a thread that answers one call at a time. */
  processNow(partition: number, messages: FlowTopicMessage[], seenUpTo: number, nowMs: number): WorkResult {
    const windows: PairWindow[] = [];
    const counters = emptyWorkCounters();
    this.processRange(partition, messages, 0, messages.length, nowMs, windows, counters);
    return this.processed(partition, seenUpTo, windows, counters);
  }

  private processRange(partition: number, messages: FlowTopicMessage[], from: number, to: number, nowMs: number, windows: PairWindow[], counters: WorkCounters): void {
    for (let i = from; i < to; i++) {
      counters.messages++;
      this.processMessage(partition, messages[i]!, nowMs, windows, counters);
    }
  }

  /** After a batch: the position moves past its end (transaction markers), then the result. */
  private processed(partition: number, seenUpTo: number, windows: PairWindow[], counters: WorkCounters): WorkResult {
    this.core.partition(partition).seen(seenUpTo);
    return this.result(partition, windows, counters);
  }

  async tick(partition: number, nowMs: number): Promise<WorkResult> {
    return this.tickNow(partition, nowMs);
  }

  tickNow(partition: number, nowMs: number): WorkResult {
    return this.result(partition, this.core.partition(partition).tick(nowMs), emptyWorkCounters());
  }

  stats(): WorkStats {
    return { core: this.core.stats, cleaned: this.core.cleanCounters };
  }

  async close(): Promise<void> {}

  private snapshot(partition: number): PartitionSnapshot {
    const p = this.core.partition(partition);
    return { commitPoint: p.commitPoint(), openWindows: p.openWindows, lastActivityMs: p.lastActivityMs };
  }

  private result(partition: number, windows: PairWindow[], counters: WorkCounters): WorkResult {
    const alerts = this.core.takeAlerts(partition);
    return {
      windows: windows.map((w) => ({ key: `${w.a}|${w.b}`, value: encodeRecord('pair-window', w, this.format) })),
      alerts: alerts.map((a: Alert) => ({ key: a.source || `${a.a}|${a.b}`, value: encodeRecord('alert', a, this.format) })),
      snapshot: this.snapshot(partition),
      counters,
    };
  }

  /**
   * One message of the flows topic: a FlowRecord, or a FlowRecordBatch (codec-batch.ts). Windows it
   * closed are appended to `out`. A message that cannot be read at all (headers, or a batch whose
   * framing is broken) is skipped whole and counted once by reason; a bad record inside a
   * well-framed batch is skipped alone (counted as `undecodable`), the others are processed. Either
   * way the partition's position moves past the message, so its progress is not lost.
   */
  private processMessage(partition: number, m: FlowTopicMessage, nowMs: number, out: PairWindow[], c: WorkCounters): void {
    const core = this.core;
    const offset = m.offset;
    const skip = (reason: SkipReason): void => {
      c.skipped[reason]++;
      core.skip(partition, offset, nowMs);
    };
    const add = (ws: PairWindow[]): void => {
      for (let i = 0; i < ws.length; i++) out.push(ws[i]!);
    };
    if (!m.value || m.value.length === 0) return skip('no-value');
    let d: FlowMessageInfo;
    try {
      d = describeFlowMessage(m.headers);
    } catch (e) {
      return skip(e instanceof CodecError && e.message.includes('corrupt batch') ? 'undecodable' : skipReasonOf(e, 'headers'));
    }
    if (d.kind !== 'flow-record') return skip('wrong-schema');
    const value = Buffer.isBuffer(m.value) ? m.value : Buffer.from(m.value.buffer, m.value.byteOffset, m.value.byteLength);
    const v = this.view;
    if (d.format === 'protobuf') {
      if (!d.batch) {
        c.flowRecords++;
        if (decodeFlowView(value, 0, value.length, v, this.strings) !== undefined) return skip('undecodable');
        return add(core.addView(partition, offset, v, nowMs));
      }
      c.batchMessages++;
      const framed = frameProtobufBatch(value, d.count, (start, end) => {
        c.flowRecords++;
        if (decodeFlowView(value, start, end, v, this.strings) !== undefined) skip('undecodable');
        else add(core.addView(partition, offset, v, nowMs));
      });
      if (framed instanceof CodecError) skip('undecodable');
      return;
    }
    // JSON and Avro: full records (debugging formats; not the fast path)
    if (!d.batch) {
      c.flowRecords++;
      let r;
      try {
        r = decodeRecord('flow-record', value, d.format);
      } catch (e) {
        return skip(skipReasonOf(e, 'decode'));
      }
      return add(core.addRecord(partition, offset, r, nowMs));
    }
    c.batchMessages++;
    let res;
    try {
      res = decodeFlowBatch(value, d.format, d.count);
    } catch {
      return skip('undecodable');
    }
    c.flowRecords += res.records.length + res.errors.length;
    for (let i = 0; i < res.errors.length; i++) skip('undecodable');
    for (const r of res.records) add(core.addRecord(partition, offset, r, nowMs));
  }
}
