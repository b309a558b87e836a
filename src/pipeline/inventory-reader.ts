/**
 * Reads the whole compacted inventory topic (inventory-publisher.ts) into an EndpointResolver and
 * keeps it current, so a pipeline process names the endpoints of VMs of every hypervisor.
 *
 * A plain kafkajs consumer of its own, outside the pipeline's group: every process must read every
 * partition, so it joins a group of its own (`<groupPrefix>-<random uuid>`), reads from the
 * beginning and never commits (an empty group without offsets is dropped by the broker). start()
 * resolves once every partition has been read up to the end offsets it had at start (the
 * inventory as of then is loaded), and the consumer keeps following the topic afterwards.
 *
 * The latest message per key wins (compaction keeps just that; before compaction the log holds
 * older versions, read in order); a tombstone (null value) removes the key. After each batch that
 * changed anything the resolver is rebuilt from every key, in key order: one VmIdentity per
 * interface, named by the VM's display name (vmName, else its id), like the capture's own
 * inventory. A malformed message is counted and skipped.
 *
 * Note on exactly-once: the names a PairWindow gets depend on the inventory loaded when its
 * records are aggregated. A restarted pipeline re-aggregating records of open windows uses the
 * inventory of its own time; if the inventory changed meanwhile, names can differ from the first
 * run's (the windows are still emitted once).
 */
import { retryRetriable } from './kafka-retry.js';
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import { MirrorflowError, kv } from '../errors.js';
import type { Logger } from '../log.js';
import { EndpointResolver, type VmIdentity } from './endpoint-resolver.js';
import { decodeInventoryMessage, type VmInventory } from './inventory-publisher.js';

export class InventoryReaderError extends MirrorflowError {}

export interface InventoryReaderOptions {
  kafka: Kafka;
  topic: string;
  /** Filled and kept current (default: a new one, see `resolver`). */
  resolver?: EndpointResolver;
  /** The consumer's group is `<groupPrefix>-<uuid>` (default 'mirrorflow-inventory'). */
  groupPrefix?: string;
  /** start() gives up after this long (default 60000). */
  startTimeoutMs?: number;
  logger?: Logger;
}

export interface InventoryReaderStats {
  messages: number;
  malformed: number;
  tombstones: number;
  /** Keys (`<agentId>/<vm>`) currently held. */
  entries: number;
  /** Resolver rebuilds. */
  rebuilds: number;
}

/** The VmIdentities of inventory entries, in key order (one per interface, named by vmName). */
export function identitiesOf(entries: ReadonlyMap<string, VmInventory>): VmIdentity[] {
  const out: VmIdentity[] = [];
  for (const key of [...entries.keys()].sort()) {
    const inv = entries.get(key)!;
    const name = inv.vmName || inv.vm;
    for (const i of inv.interfaces) {
      if (!i.mac && !(i.ips?.length)) continue;
      out.push({ vm: name, ...(i.mac ? { mac: i.mac } : {}), ips: [...(i.ips ?? [])] });
    }
  }
  return out;
}

export class InventoryReader {
  readonly resolver: EndpointResolver;
  private readonly entries = new Map<string, VmInventory>();
  private consumer: Consumer | undefined;
  private readonly log: Logger | undefined;
  private readonly counters = { messages: 0, malformed: 0, tombstones: 0, rebuilds: 0 };

  constructor(private readonly opts: InventoryReaderOptions) {
    this.resolver = opts.resolver ?? new EndpointResolver();
    this.log = opts.logger?.child({ component: 'inventory-reader' });
  }

  get stats(): InventoryReaderStats {
    return { ...this.counters, entries: this.entries.size };
  }

  /** Connects and reads the topic up to its current end; keeps following it until stop(). */
  async start(): Promise<void> {
    const { kafka, topic } = this.opts;
    const admin = kafka.admin();
    await admin.connect();
    let ends: Map<number, number>;
    try {
      const offsets = await retryRetriable(() => admin.fetchTopicOffsets(topic));
      ends = new Map(offsets.filter((o) => Number(o.high) > Number(o.low)).map((o) => [o.partition, Number(o.high)]));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    const consumer = kafka.consumer({ groupId: `${this.opts.groupPrefix ?? 'mirrorflow-inventory'}-${randomUUID()}`, maxWaitTimeInMs: 500, allowAutoTopicCreation: false });
    this.consumer = consumer;
    let caughtUp!: () => void;
    const ready = new Promise<void>((resolve) => (caughtUp = resolve));
    const check = (partition: number, next: number): void => {
      const end = ends.get(partition);
      if (end !== undefined && next >= end) ends.delete(partition);
      if (ends.size === 0) caughtUp();
    };
    check(-1, 0);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        let changed = false;
        for (const m of batch.messages) {
          this.counters.messages++;
          if (!m.key) {
            this.counters.malformed++;
            continue;
          }
          try {
            const d = decodeInventoryMessage(m.key, m.value);
            const key = `${d.agentId}/${d.vm}`;
            if (d.inventory === null) {
              this.counters.tombstones++;
              changed = this.entries.delete(key) || changed;
            } else {
              this.entries.set(key, d.inventory);
              changed = true;
            }
          } catch (e) {
            this.counters.malformed++;
            this.log?.warn({ err: e, offset: m.offset, partition: batch.partition }, 'inventory: malformed message skipped');
          }
        }
        if (changed) this.rebuild();
        check(batch.partition, Number(batch.lastOffset()) + 1);
      },
    });
    const timeoutMs = this.opts.startTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        ready,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new InventoryReaderError('inventory-read-timeout', `inventory: topic not read to its end in time${kv({ topic, timeoutMs, partitionsLeft: [...ends.keys()].join(',') })}`, { retriable: true })),
            timeoutMs,
          );
        }),
      ]);
    } catch (e) {
      await this.stop();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    this.log?.info({ topic, entries: this.entries.size, vms: this.resolver.size }, 'inventory: loaded');
  }

  async stop(): Promise<void> {
    const c = this.consumer;
    this.consumer = undefined;
    await c?.disconnect().catch(() => undefined);
  }

  private rebuild(): void {
    this.resolver.replace(identitiesOf(this.entries));
    this.counters.rebuilds++;
  }
}
