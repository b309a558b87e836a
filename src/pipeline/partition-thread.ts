/**
 * A worker thread of the Kafka pipeline (partition-threads.ts): holds a PartitionWork for its share
 * of the partitions and answers the main thread's calls in the order they come.
 *
 * Protocol (structured clone over the worker's port):
 *   main → thread  PartitionThreadCall: assign / process / tick (answered, by id), revoke and
 *                  inventory (not answered)
 *   thread → main  PartitionThreadAnswer: the call's result or its error, with the thread's totals
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { HeaderValues } from './codec-batch.js';
import { EndpointResolver, type VmIdentity } from './endpoint-resolver.js';
import type { Checkpoint } from './pipeline-core.js';
import { PartitionWork, type FlowTopicMessage, type PartitionSnapshot, type PartitionWorkOptions, type WorkResult, type WorkStats } from './partition-work.js';

export interface PartitionThreadConfig {
  work: PartitionWorkOptions;
  inventory: readonly VmIdentity[];
}

/** The messages of one batch, packed: values back to back in `bytes` (transferred, not copied). */
export interface PackedMessages {
  offsets: Float64Array;
  /** Message i's value is bytes[ends[i-1] .. ends[i]) (from 0 for the first); -1: no value. */
  ends: Int32Array;
  bytes: Uint8Array;
  headers: HeaderValues[];
}

export type PartitionThreadCall =
  | { op: 'assign'; id: number; partition: number; startOffset: number; checkpoint: Checkpoint | undefined }
  | { op: 'process'; id: number; partition: number; messages: PackedMessages; seenUpTo: number; nowMs: number }
  | { op: 'tick'; id: number; partition: number; nowMs: number }
  | { op: 'revoke'; partition: number }
  | { op: 'inventory'; vms: readonly VmIdentity[] };

export type PartitionThreadAnswer =
  | { id: number; ok: true; value: PartitionSnapshot | WorkResult; stats: WorkStats }
  | { id: number; ok: false; error: string; stats: WorkStats };

/** The messages of a packed batch (values are views of `bytes`). */
export function unpackMessages(p: PackedMessages): FlowTopicMessage[] {
  const out: FlowTopicMessage[] = [];
  let start = 0;
  for (let i = 0; i < p.offsets.length; i++) {
    const end = p.ends[i]!;
    out.push({ offset: p.offsets[i]!, value: end < 0 ? null : Buffer.from(p.bytes.buffer, p.bytes.byteOffset + start, end - start), headers: p.headers[i]! });
    if (end >= 0) start = end;
  }
  return out;
}

function serve(cfg: PartitionThreadConfig): void {
  const port = parentPort!;
  const resolver = new EndpointResolver(cfg.inventory);
  const work = new PartitionWork(cfg.work, resolver);
  // a call that cannot be read would never be answered: end the thread (the pipeline stops)
  port.on('messageerror', (e) => {
    throw e;
  });
  port.on('message', (c: PartitionThreadCall) => {
    if (c.op === 'revoke') return work.revoke(c.partition);
    if (c.op === 'inventory') return resolver.replace(c.vms);
    let answer: PartitionThreadAnswer;
    try {
      const value =
        c.op === 'assign'
          ? work.assignNow(c.partition, c.startOffset, c.checkpoint)
          : c.op === 'process'
            ? work.processNow(c.partition, unpackMessages(c.messages), c.seenUpTo, c.nowMs)
            : work.tickNow(c.partition, c.nowMs);
      answer = { id: c.id, ok: true, value, stats: work.stats() };
    } catch (e) {
      answer = { id: c.id, ok: false, error: e instanceof Error ? e.message : String(e), stats: work.stats() };
    }
    port.postMessage(answer);
  });
}

if (parentPort && workerData) serve(workerData as PartitionThreadConfig);
