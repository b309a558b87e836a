/**
 * The pipeline as a Kafka consumer group, exactly once: flow records from the flows topic are
 * aggregated per VM pair in event-time windows (pipeline-core.ts) and the PairWindows go to the pairs
 * topic, consumed, aggregated and produced inside Kafka transactions. Each window carries its trend
 * and is judged by the alert rules (per partition, pipeline-core.ts); the alerts go to the alerts
 * topic in the same transaction as the windows that raised them.
 *
 * Mechanics
 *   - Consumer: read_committed, autoCommit off, fromBeginning. Each batch belongs to one partition of
 *     the flows topic; it is queued on its partition and processed a moment later, a few messages at
 *     a time with returns to the event loop between, while the consumer fetches the next batches (the
 *     consumer's position runs at most one batch per partition ahead of the processing; the
 *     partition's state decides what it takes, see "Taking a partition"). Its PartitionHost
 *     (partition-work.ts: in this thread, or in worker threads with `threads`) decodes it
 *     (messages that cannot be are skipped and counted by reason: the headers first, through
 *     describeMessage, then the bytes), cleans it (duplicate record ids, capture-port traffic, a
 *     flow reported twice: dropped and counted, see pipeline-core.ts), feeds it to that
 *     partition's state and answers with the windows and alerts it closed, encoded; and
 *     then, in ONE transaction of that partition's producer: the PairWindows closed since the last
 *     transaction are sent to the pairs topic, the alerts they raised to the alerts topic (keyed
 *     `<a>|<b>` for a pair, the source for a scan), and the partition's commit point (offset +
 *     checkpoint metadata) is sent to the group's offsets (sendOffsets); commit.
 *   - Commits run beside the processing, at most one transaction in flight per partition: what a
 *     transaction carries (windows, alerts, commit point) is taken at once, under the partition's
 *     lock, when it starts; batches that arrive meanwhile are processed, and what they close waits
 *     for the next transaction, which starts when the one in flight ended. (A broker's transaction
 *     takes several round trips; waiting for it before the next batch would idle the process.) A
 *     failed transaction drops the partition's state and restores it from the commit (below), at
 *     once, so the records it held are read again even when no new batch comes.
 *   - One transactional producer per input partition, transactionalId
 *     `<prefix>-<flows topic>-<partition>`: the same id whichever process holds the partition, so a
 *     new owner's InitProducerId fences the previous owner (a dead process, or a zombie that lost
 *     the partition in a rebalance but is still running) and aborts its open transaction (kafkajs
 *     speaks TxnOffsetCommit v0/v1, without the group generation of KIP-447, so the broker cannot
 *     fence offsets by generation: the partition-scoped transactional id does it).
 *   - Taking a partition (at once for every partition of a new assignment, all in parallel; after
 *     a failed transaction): init the producer (fencing as above), THEN read the committed offset
 *     and its checkpoint metadata and restore the partition's state from them. So the state always
 *     starts from exactly the committed point, even if a previous owner committed between the
 *     consumer's offset fetch and the fencing. A batch fetched from past where the state ends (the
 *     consumer's own idea of the offset, or fetched before a seek) is dropped and the consumer
 *     seeks to the state's offset; one fetched from there or before is used (records the state
 *     holds already are skipped), so no record is ever passed over. A batch that fails, or a
 *     transaction that fails other than by fencing, restores the partition at once and seeks there
 *     (the consumer's position is past it already).
 *   - A rebalance (GROUP_JOIN) resets every partition this way (kafkajs re-reads the committed
 *     offsets of all assigned partitions then, so in-memory progress past them must be rebuilt).
 *   - Idle partitions are closed by a timer (processing time), under the partition's lock, and
 *     committed the same way.
 *
 * Why nothing is lost: a partition's committed offset never passes a record whose window has not
 * been emitted in a committed transaction: the commit point is the lowest offset held by an open
 * window (pipeline-core.ts). After any failure (SIGKILL, a fenced or failed transaction, a
 * rebalance) the partition's state is rebuilt by re-reading from that offset, so every record
 * either is in a committed PairWindow or is read again.
 *
 * Why nothing is doubled: a PairWindow is produced in the same transaction as the offset and
 * checkpoint that account for it; either both are committed or neither (an aborted transaction's
 * PairWindows are invisible to read_committed readers). The checkpoint carries the partition's
 * watermark, which tells which windows were emitted: re-read records of those windows are dropped,
 * so a restored partition never emits a (pair, window) again. Two processes never commit for one
 * partition concurrently: the partition-scoped transactional id fences the older one.
 *
 * Assumption: every record of one endpoint pair is on ONE partition (the flows topic is keyed by
 * the unordered endpoint pair), so a PairWindow is built from one partition's records; watermarks,
 * windows and commits are per partition. Records of one pair on two partitions would be a producer
 * bug: each partition would emit its own PairWindow for that (pair, window), both committed.
 *
 * Alerts and trend: exactly once in the same sense as the windows (an alert is committed with the
 * window that raised it, and its id is deterministic), but their MODEL state (trend EWMA / Holt,
 * Poisson rate, RTT moments, threshold streaks, known pairs, which alerts are firing) is not
 * checkpointed: it lives in memory per partition and restarts empty whenever a partition is restored
 * from its commit (process restart, SIGKILL, rebalance, failed transaction). After a restore the
 * anomaly rules warm up again, a threshold streak starts over, an alert that was firing is not
 * resolved by the new owner (consumers should treat a firing alert without a resolution as stale
 * after pairIdleSeconds), the new-pair rule learns again, and trends differ from an uninterrupted
 * run for the next windows. Within one incarnation a window is judged once, in order per pair.
 *
 * Inventory: with `inventoryTopic`, an InventoryReader (inventory-reader.ts, a consumer outside the
 * group that reads every partition) loads the whole compacted inventory topic into the resolver
 * before the pipeline joins its group, and keeps it current; PairWindow endpoints are then VM
 * names. Names depend on the inventory at aggregation time (see inventory-reader.ts).
 *
 * Caveats: output is exactly once per committed state, not necessarily identical across runs when
 * processing-time decisions differ (an idle close before or after a late record arrives). Shutdown
 * (stop()) does not emit open windows: the next run continues them from the committed offsets.
 */
import { retryRetriable } from './kafka-retry.js';
import { randomUUID } from 'node:crypto';
import { Partitioners } from './kafkajs.js';
import { type Admin, type Consumer, type EachBatchPayload, type Kafka, type Producer } from 'kafkajs';
import { MirrorflowError, kv } from '../errors.js';
import type { Logger } from '../log.js';
import { schemaHeaders, type RecordFormat } from './codec.js';
import { EndpointResolver } from './endpoint-resolver.js';
import { InventoryReader } from './inventory-reader.js';
import { decodeCheckpoint, encodeCheckpoint, type CommitPoint, type PartitionStats } from './pipeline-core.js';
import { PartitionThreads } from './partition-threads.js';
import {
  PartitionWork,
  addWorkCounters,
  emptyWorkCounters,
  type FlowTopicMessage,
  type OutMessage,
  type PartitionHost,
  type PartitionSnapshot,
  type SkipReason,
  type WorkResult,
} from './partition-work.js';
import { DEFAULT_RULES_CONFIG, type RulesConfig } from './rules-config.js';

export { SKIP_REASONS, skipReasonOf, type SkipReason } from './partition-work.js';

export class KafkaPipelineError extends MirrorflowError {}

export interface KafkaPipelineOptions {
  kafka: Kafka;
  flowsTopic: string;
  pairsTopic: string;
  /** Alerts are produced here (same format and transaction as the windows); without it they are counted only. */
  alertsTopic?: string;
  /** Trend and alert rules (default DEFAULT_RULES_CONFIG). */
  rules?: RulesConfig;
  /** Clean records per partition before aggregation (default true); see pipeline-core.ts. */
  clean?: boolean;
  groupId: string;
  windowUs: number;
  allowedLatenessUs?: number;
  /** Default 2 × window. */
  idleTimeoutMs?: number;
  /** Format of the PairWindows written (default protobuf). */
  format?: RecordFormat;
  resolver?: EndpointResolver;
  /** The compacted inventory topic, read whole into the resolver before consuming and followed afterwards. */
  inventoryTopic?: string;
  /** Transactional ids are `<prefix>-<flows topic>-<partition>` (default `mirrorflow-pipeline-<groupId>`). */
  transactionalIdPrefix?: string;
  /** A broker aborts a transaction left open this long (a dead member's); default 30000. */
  transactionTimeoutMs?: number;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  maxBytesPerPartition?: number;
  /** Batches of different partitions processed at once (default 2). */
  partitionsConsumedConcurrently?: number;
  /** A partition whose commit point moved but that emitted nothing commits at most this often (default 1000). */
  commitIntervalMs?: number;
  /** How often idle partitions are looked for (default min(1000, idleTimeout / 4)). */
  idleCheckIntervalMs?: number;
  logger?: Logger;
  /**
   * Worker threads that decode, clean and aggregate the partitions (partition % threads each;
   * partition-threads.ts); 0 (default): in the pipeline's own thread.
   */
  threads?: number;
  /** Processing time (tests). */
  now?: () => number;
}

export interface KafkaPipelineStats extends PartitionStats {
  /** Messages read from the flows topic (every delivery, re-reads after a restore included). */
  messages: number;
  /** Of those, FlowRecordBatch messages (many records each). */
  batchMessages: number;
  /** Flow records read (single-record messages and records of batches; re-reads included). */
  flowRecords: number;
  skipped: Record<SkipReason, number>;
  /** PairWindows in committed transactions. */
  pairsProduced: number;
  /** Alerts in committed transactions. */
  alertsProduced: number;
  transactions: number;
  failedTransactions: number;
  /** Partitions taken (restored from a commit): assignments, rebalances, failed transactions. */
  partitionRestores: number;
  rebalances: number;
  openWindows: number;
  /** VMs the resolver knows (from the inventory topic, or the resolver given). */
  inventoryVms: number;
  /** Records the Cleaner dropped, by reason (duplicate-id, duplicate-flow, capture-port). */
  cleaned: Record<string, number>;
  assignedPartitions: number[];
  /** Worker threads aggregating the partitions (0: the pipeline's own thread). */
  threads: number;
}

interface PartitionRuntime {
  partition: number;
  producer: Producer | undefined;
  /** Set when the state must be restored from the commit before the next batch. */
  needsRestore: boolean;
  /** Next offset to process (records below it were processed by this incarnation). */
  nextOffset: number;
  /** The partition's state as of the host's last answer (undefined: not held, or being restored). */
  snapshot: PartitionSnapshot | undefined;
  /** Windows closed but not yet committed (encoded, for the pairs topic). */
  pending: OutMessage[];
  /** Alerts raised but not yet committed (encoded, for the alerts topic). */
  pendingAlerts: OutMessage[];
  committedOffset: number;
  lastCommitMs: number;
  /** The last batch reached the partition's high watermark (idle closes only then). */
  caughtUp: boolean;
  lock: Promise<void>;
  /** The transaction in flight (never rejects), if any. */
  committing: Promise<void> | undefined;
  /** A commit was asked for while one was in flight (true: forced, see commitIfDue). */
  commitAgain: boolean | undefined;
  /** Restored, no batch taken since: the next batch's fetch offset is checked against the state's. */
  checkFetched: boolean;
  /** A restore is under way (fencing, reading the commit). */
  restoring: boolean;
}

/** The error kafkajs throws when a newer producer with our transactional id took over. */
function isFenced(e: unknown): boolean {
  const t = (e as { type?: string })?.type;
  return t === 'INVALID_PRODUCER_EPOCH' || t === 'PRODUCER_FENCED' || (e as Error)?.name === 'KafkaJSNonRetriableError' && /fenced|epoch/i.test(String((e as Error).message));
}

export class KafkaPipeline {
  /** Where the partitions are decoded, cleaned and aggregated (this thread, or worker threads). */
  private readonly host: PartitionHost;
  private readonly threads: number;
  private readonly resolver: EndpointResolver;
  private inventory: InventoryReader | undefined;
  private readonly parts = new Map<number, PartitionRuntime>();
  /** Partitions of the flows topic in the current assignment (GROUP_JOIN). */
  private assigned = new Set<number>();
  private consumer: Consumer | undefined;
  private admin: Admin | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly headers: Record<string, string>;
  private readonly alertHeaders: Record<string, string>;
  private readonly now: () => number;
  private readonly log: Logger | undefined;
  private stopping = false;
  /** Joined the group (GROUP_JOIN) and not crashed since. */
  private inGroup = false;
  private failure: unknown;
  private fail!: (e: unknown) => void;
  /** Rejects when the consumer gives up (a crash kafkajs does not restart from); never resolves. */
  readonly failed: Promise<never>;
  /** Messages, records and skips, as the host reported them. */
  private readonly work = emptyWorkCounters();
  private readonly counters = {
    pairsProduced: 0,
    alertsProduced: 0,
    transactions: 0,
    failedTransactions: 0,
    partitionRestores: 0,
    rebalances: 0,
  };

  constructor(private readonly opts: KafkaPipelineOptions) {
    this.failed = new Promise<never>((_, reject) => {
      this.fail = reject;
    });
    this.failed.catch(() => undefined); // observed through `failed` or `error`
    const format: RecordFormat = opts.format ?? 'protobuf';
    this.headers = schemaHeaders('pair-window', format);
    this.alertHeaders = schemaHeaders('alert', format);
    this.now = opts.now ?? Date.now;
    this.log = opts.logger?.child({ component: 'pipeline' });
    this.resolver = opts.resolver ?? new EndpointResolver();
    const work = {
      windowUs: opts.windowUs,
      allowedLatenessUs: opts.allowedLatenessUs ?? 0,
      ...(opts.idleTimeoutMs !== undefined ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
      idPrefix: opts.groupId,
      rules: opts.rules ?? DEFAULT_RULES_CONFIG,
      clean: opts.clean ?? true,
      format,
    };
    const threads = opts.threads ?? 0;
    if (!Number.isInteger(threads) || threads < 0) throw new RangeError(`pipeline: threads must be an integer >= 0 (threads=${threads})`);
    this.threads = threads;
    this.host =
      threads === 0
        ? new PartitionWork(work, this.resolver)
        : new PartitionThreads({
            threads,
            work,
            resolver: this.resolver,
            onFatal: (e) => {
              this.log?.error({ err: e }, 'pipeline: a partition thread died');
              this.failure = e;
              this.fail(new KafkaPipelineError('kafka-pipeline-thread', e.message, { cause: e }));
            },
          });
  }

  private get idleTimeoutMs(): number {
    return this.opts.idleTimeoutMs ?? (2 * this.opts.windowUs) / 1000;
  }

  private get txnPrefix(): string {
    return this.opts.transactionalIdPrefix ?? `mirrorflow-pipeline-${this.opts.groupId}`;
  }

  /** Connects, joins the group and starts consuming; resolves once running (not when stopped). */
  async start(): Promise<void> {
    const k = this.opts.kafka;
    if (this.opts.inventoryTopic) {
      this.inventory = new InventoryReader({ kafka: k, topic: this.opts.inventoryTopic, resolver: this.resolver, ...(this.opts.logger ? { logger: this.opts.logger } : {}) });
      await this.inventory.start();
    }
    this.admin = k.admin();
    await this.admin.connect();
    // kafkajs' admin finds no broker for its first group request until it has metadata, and then
    // retries after 300 ms: every partition's restore would wait for that at the first join
    await this.admin.fetchTopicMetadata({ topics: [this.opts.flowsTopic] }).catch(() => undefined);
    const consumer = k.consumer({
      groupId: this.opts.groupId,
      readUncommitted: false,
      sessionTimeout: this.opts.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: this.opts.heartbeatIntervalMs ?? 3000,
      maxBytesPerPartition: this.opts.maxBytesPerPartition ?? 4 << 20,
      maxBytes: 32 << 20,
      maxWaitTimeInMs: 500,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.REBALANCING, () => this.onRebalancing());
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.onGroupJoin(e.payload.memberAssignment));
    consumer.on(consumer.events.CRASH, (e) => this.onCrash(e.payload.error, e.payload.restart));
    await consumer.connect();
    await consumer.subscribe({ topic: this.opts.flowsTopic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.partitionsConsumedConcurrently ?? 2,
      eachBatch: (p) => this.eachBatch(p),
    });
    const interval = this.opts.idleCheckIntervalMs ?? Math.max(10, Math.min(1000, this.idleTimeoutMs / 4));
    this.idleTimer = setInterval(() => void this.closeIdle(), interval);
    this.idleTimer.unref();
  }

  /** Leaves the group and disconnects. Open windows are not emitted: the next run continues them. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.idleTimer) clearInterval(this.idleTimer);
    await this.consumer?.disconnect().catch((e: unknown) => this.log?.warn({ err: e }, 'pipeline: consumer disconnect failed'));
    // wait for idle closes and transactions in flight, then let the producers go
    await Promise.all([...this.parts.values()].map((rt) => rt.lock));
    await Promise.all([...this.parts.values()].map((rt) => this.settled(rt)));
    await Promise.all([...this.parts.values()].map((rt) => rt.producer?.disconnect().catch(() => undefined)));
    this.parts.clear();
    await this.admin?.disconnect().catch(() => undefined);
    await this.inventory?.stop();
    await this.host.close();
  }

  /** A fatal consumer error (the consumer gave up restarting), if any. */
  get error(): unknown {
    return this.failure;
  }

  get stats(): KafkaPipelineStats {
    const w = this.host.stats();
    return {
      ...w.core,
      inventoryVms: this.resolver.size,
      cleaned: w.cleaned,
      messages: this.work.messages,
      batchMessages: this.work.batchMessages,
      flowRecords: this.work.flowRecords,
      ...this.counters,
      skipped: { ...this.work.skipped },
      assignedPartitions: [...this.parts.keys()].sort((a, b) => a - b),
      threads: this.threads,
    };
  }

  /**
   * For a readiness probe (read-only): the group joined at least once and not stopping (`joined`),
   * the partitions assigned, and how many of them hold their transactional producer with their
   * state restored (`held`; a rebalance under way shows as partitions not held until restored).
   */
  get readiness(): { joined: boolean; partitions: number; held: number } {
    let held = 0;
    for (const n of this.assigned) {
      const rt = this.parts.get(n);
      if (rt?.producer && !rt.needsRestore) held++;
    }
    return { joined: this.inGroup && !this.stopping, partitions: this.assigned.size, held };
  }

  // ---- partitions

  private runtime(partition: number): PartitionRuntime {
    let rt = this.parts.get(partition);
    if (!rt) {
      rt = {
        partition,
        producer: undefined,
        needsRestore: true,
        snapshot: undefined,
        nextOffset: 0,
        pending: [],
        pendingAlerts: [],
        committedOffset: -1,
        lastCommitMs: 0,
        caughtUp: false,
        lock: Promise.resolve(),
        committing: undefined,
        commitAgain: undefined,
        checkFetched: false,
        restoring: false,
      };
      this.parts.set(partition, rt);
    }
    return rt;
  }

  /** Runs fn after everything queued on the partition (batches and idle closes never interleave). */
  private locked<T>(rt: PartitionRuntime, fn: () => Promise<T>): Promise<T> {
    const run = rt.lock.then(fn);
    rt.lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** The consumer crashed: out of the group until kafkajs' restart joins again (or for good). */
  private onCrash(error: Error, restart: boolean): void {
    this.inGroup = false;
    this.log?.error({ err: error, restart }, 'pipeline: consumer crashed');
    if (!restart) {
      this.failure = error;
      this.fail(new KafkaPipelineError('kafka-pipeline-consumer', `pipeline: consumer stopped${kv({ reason: error.message })}`, { cause: error }));
    }
  }

  /** A rebalance started: no idle close until partitions are restored (their state is rebuilt anyway). */
  private onRebalancing(): void {
    for (const rt of this.parts.values()) rt.needsRestore = true;
  }

  private onGroupJoin(assignment: Record<string, number[]>): void {
    this.counters.rebalances++;
    this.inGroup = true;
    const mine = new Set(assignment[this.opts.flowsTopic] ?? []);
    this.assigned = mine;
    this.log?.info({ partitions: [...mine] }, 'pipeline: partitions assigned');
    // Synchronously, before any batch of the new generation: every partition restores from its commit.
    for (const rt of this.parts.values()) rt.needsRestore = true;
    for (const [n, rt] of this.parts) {
      if (mine.has(n)) continue;
      this.parts.delete(n);
      void this.locked(rt, async () => {
        await this.settled(rt);
        // (not when the partition came back meanwhile: its new runtime's restore replaced this state)
        if (!this.parts.has(n)) this.host.revoke(n);
        rt.snapshot = undefined;
        rt.pending = [];
        rt.pendingAlerts = [];
        await rt.producer?.disconnect().catch(() => undefined);
        rt.producer = undefined;
      });
    }
    // take every assigned partition now, in parallel (not one by one as their first batches come)
    for (const n of mine) {
      const rt = this.runtime(n);
      void this.locked(rt, async () => {
        if (rt.needsRestore && !this.stopping && this.assigned.has(n) && this.parts.get(n) === rt) await this.restore(rt);
      }).catch((e: unknown) => {
        if (!this.stopping) this.log?.warn({ err: e, partition: n }, 'pipeline: taking the partition failed; its next batch retries');
        rt.needsRestore = true;
      });
    }
  }

  /** Resolves when the partition has no transaction in flight. */
  private async settled(rt: PartitionRuntime): Promise<void> {
    while (rt.committing) await rt.committing;
  }

  /** Fences the partition's previous owner, then restores its state from the committed offset + checkpoint. */
  private async restore(rt: PartitionRuntime): Promise<number> {
    rt.restoring = true;
    try {
      return await this.restoreNow(rt);
    } finally {
      rt.restoring = false;
    }
  }

  private async restoreNow(rt: PartitionRuntime): Promise<number> {
    const topic = this.opts.flowsTopic;
    // a transaction of the state being dropped ends first: the commit read below must be the last one
    rt.needsRestore = true;
    await this.settled(rt);
    if (!rt.producer) {
      const producer = this.opts.kafka.producer({
        transactionalId: `${this.txnPrefix}-${topic}-${rt.partition}`,
        idempotent: true,
        maxInFlightRequests: 1,
        transactionTimeout: this.opts.transactionTimeoutMs ?? 30_000,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      await producer.connect(); // InitProducerId: fences an older producer with this id, aborts its open transaction
      rt.producer = producer;
    }
    const admin = this.admin!;
    const [committed] = await admin.fetchOffsets({ groupId: this.opts.groupId, topics: [topic] });
    const c = committed?.partitions.find((x) => x.partition === rt.partition);
    let start = c && Number(c.offset) >= 0 ? Number(c.offset) : -1;
    const checkpoint = c && start >= 0 ? decodeCheckpoint(c.metadata) : undefined;
    if (start < 0) {
      const offsets = await retryRetriable(() => admin.fetchTopicOffsets(topic));
      start = Number(offsets.find((x) => x.partition === rt.partition)?.low ?? 0);
    }
    rt.snapshot = await this.host.assign(rt.partition, start, checkpoint);
    rt.pending = [];
    rt.pendingAlerts = [];
    rt.nextOffset = start;
    rt.committedOffset = start;
    rt.lastCommitMs = this.now();
    rt.needsRestore = false;
    rt.checkFetched = true;
    rt.caughtUp = false;
    this.counters.partitionRestores++;
    this.log?.info({ partition: rt.partition, offset: start, checkpoint: c?.metadata ?? null }, 'pipeline: partition restored from its commit');
    return start;
  }

  /**
   * A batch from the consumer: queued on its partition and processed a moment later (after the
   * consumer sent its next fetch, so the broker works while this one is processed); the consumer
   * reads on from past it. At most one batch per partition waits besides the one being processed.
   */
  private async eachBatch(p: EachBatchPayload): Promise<void> {
    const { batch } = p;
    // a batch of a partition no longer ours (dispatched before the rebalance): taking it would fence its new owner
    if (batch.topic !== this.opts.flowsTopic || this.stopping || !this.assigned.has(batch.partition)) return;
    if (p.isStale() || !p.isRunning()) return;
    const rt = this.runtime(batch.partition);
    const before = rt.lock;
    void this.locked(rt, async () => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      await this.processBatch(rt, batch);
    }).catch((e: unknown) => {
      if (this.stopping) return;
      this.log?.warn({ err: e, partition: batch.partition }, 'pipeline: batch failed, partition restarts from its commit');
      this.restart(rt);
    });
    p.resolveOffset(batch.lastOffset());
    await p.heartbeat();
    // (not behind a restore: the consumer fetches on while partitions are taken; the next batch waits)
    if (!rt.restoring) await before;
  }

  /**
   * Processes a batch under the partition's lock. The partition's state decides what it takes: the
   * batch must start at or before the state's next offset (records before it are skipped), else
   * (fetched before a restore or a seek) it is dropped and the consumer seeks to the state's offset.
   */
  private async processBatch(rt: PartitionRuntime, batch: EachBatchPayload['batch']): Promise<void> {
    if (this.stopping || !this.assigned.has(rt.partition) || this.parts.get(rt.partition) !== rt) return;
    if (rt.needsRestore) await this.restore(rt);
    const fetchedText = (batch as unknown as { fetchedOffset?: string }).fetchedOffset;
    // (without the fetch offset, the first batch after a restore is taken as fetched from elsewhere)
    if (fetchedText === undefined ? rt.checkFetched : Number(fetchedText) > rt.nextOffset) {
      rt.checkFetched = false;
      this.consumer!.seek({ topic: batch.topic, partition: batch.partition, offset: String(rt.nextOffset) });
      return;
    }
    rt.checkFetched = false;
    const messages: FlowTopicMessage[] = [];
    for (const m of batch.messages) {
      const offset = Number(m.offset);
      if (offset < rt.nextOffset) continue; // delivered again (a seek): processed already
      messages.push({ offset, value: m.value, headers: (m.headers ?? {}) as FlowTopicMessage['headers'] });
    }
    const last = Number(batch.lastOffset());
    const r = await this.host.process(rt.partition, messages, last + 1, this.now, () => this.stopping || rt.needsRestore || this.parts.get(rt.partition) !== rt);
    if (!r) return;
    this.took(rt, r);
    if (messages.length) rt.nextOffset = messages[messages.length - 1]!.offset + 1;
    if (last + 1 > rt.nextOffset) rt.nextOffset = last + 1;
    rt.caughtUp = Number(batch.highWatermark) <= last + 1;
    this.commitIfDue(rt, false);
  }

  /** A host's answer for the partition: its windows and alerts wait for the next transaction. */
  private took(rt: PartitionRuntime, r: WorkResult): void {
    for (const w of r.windows) rt.pending.push(w);
    for (const a of r.alerts) rt.pendingAlerts.push(a);
    rt.snapshot = r.snapshot;
    addWorkCounters(this.work, r.counters);
  }

  /** Restores the partition from its commit now and reads on from there (after a failure). */
  private restart(rt: PartitionRuntime): void {
    rt.needsRestore = true;
    void this.locked(rt, async () => {
      if (!rt.needsRestore || this.stopping || !this.assigned.has(rt.partition) || this.parts.get(rt.partition) !== rt) return;
      const start = await this.restore(rt);
      this.consumer?.seek({ topic: this.opts.flowsTopic, partition: rt.partition, offset: String(start) });
    }).catch((err: unknown) => {
      if (!this.stopping) this.log?.warn({ err, partition: rt.partition }, 'pipeline: restoring the partition failed; its next batch retries');
      rt.needsRestore = true;
    });
  }

  /**
   * Starts a transaction when windows or alerts wait, or when the commit point moved and the commit
   * interval passed (`force`: whenever it moved); with one in flight, asks for another after it.
   * Called under the partition's lock. Never throws: a failed transaction restores the partition.
   */
  private commitIfDue(rt: PartitionRuntime, force: boolean): void {
    if (rt.needsRestore || this.stopping || !rt.producer || !rt.snapshot) return;
    if (rt.committing) {
      rt.commitAgain = (rt.commitAgain ?? false) || force;
      return;
    }
    const cp = rt.snapshot.commitPoint;
    const moved = cp.offset !== rt.committedOffset;
    if (!rt.pending.length && !rt.pendingAlerts.length && !(moved && (force || this.now() - rt.lastCommitMs >= (this.opts.commitIntervalMs ?? 1000)))) return;
    // what this transaction carries, taken now (processing goes on meanwhile)
    const windows = rt.pending;
    const raised = rt.pendingAlerts;
    rt.pending = [];
    rt.pendingAlerts = [];
    const producer = rt.producer;
    rt.committing = this.transact(rt, producer, windows, raised, cp).then(
      () => {
        rt.committing = undefined;
        const again = rt.commitAgain;
        rt.commitAgain = undefined;
        // windows that closed meanwhile: the next transaction, under the lock (after a restore, if one is queued)
        if (again !== undefined || rt.pending.length || rt.pendingAlerts.length) void this.locked(rt, async () => this.commitIfDue(rt, again ?? false));
      },
      (e: unknown) => {
        rt.committing = undefined;
        rt.commitAgain = undefined;
        rt.needsRestore = true;
        if (this.stopping) return;
        this.log?.warn({ err: e, partition: rt.partition }, 'pipeline: transaction failed, partition restarts from its commit');
        // fenced: another member holds the partition now (a batch of it, if it is still ours, restores it)
        if (isFenced((e as Error).cause)) return;
        // else restore now: the records since the commit are read again even if no new batch comes
        this.restart(rt);
      },
    );
  }

  /** One transaction: windows and alerts to their topics, the commit point to the group's offsets. */
  private async transact(rt: PartitionRuntime, producer: Producer, windows: OutMessage[], raised: OutMessage[], cp: CommitPoint): Promise<void> {
    const alerts = this.opts.alertsTopic ? raised : [];
    const txn = await producer.transaction();
    try {
      if (windows.length) {
        await txn.send({
          topic: this.opts.pairsTopic,
          acks: -1,
          messages: windows.map((w) => ({ key: w.key, value: asBuffer(w.value), headers: this.headers })),
        });
      }
      if (alerts.length) {
        await txn.send({
          topic: this.opts.alertsTopic!,
          acks: -1,
          messages: alerts.map((a) => ({ key: a.key, value: asBuffer(a.value), headers: this.alertHeaders })),
        });
      }
      await txn.sendOffsets({
        consumerGroupId: this.opts.groupId,
        topics: [
          {
            topic: this.opts.flowsTopic,
            partitions: [{ partition: rt.partition, offset: String(cp.offset), metadata: encodeCheckpoint(cp.checkpoint) } as { partition: number; offset: string }],
          },
        ],
      });
      await txn.commit();
    } catch (e) {
      this.counters.failedTransactions++;
      await txn.abort().catch(() => undefined);
      // Fenced (another member took the partition) or anything else: this producer's transaction
      // state is suspect; the partition starts over with a new one (InitProducerId again).
      await producer.disconnect().catch(() => undefined);
      if (rt.producer === producer) rt.producer = undefined;
      if (isFenced(e)) this.log?.info({ partition: rt.partition }, 'pipeline: fenced by a newer owner of the partition');
      throw new KafkaPipelineError('kafka-pipeline-txn', `pipeline: transaction failed${kv({ partition: rt.partition, reason: (e as Error).message })}`, {
        retriable: true,
        cause: e,
      });
    }
    this.counters.transactions++;
    this.counters.pairsProduced += windows.length;
    this.counters.alertsProduced += alerts.length;
    rt.committedOffset = cp.offset;
    rt.lastCommitMs = this.now();
  }

  /** Idle partitions: close their open windows and commit. */
  private async closeIdle(): Promise<void> {
    if (this.stopping) return;
    const nowMs = this.now();
    for (const rt of this.parts.values()) {
      const state = rt.snapshot;
      if (rt.needsRestore || !state) continue;
      const last = state.lastActivityMs;
      const due = (rt.caughtUp && state.openWindows > 0 && last !== undefined && nowMs - last >= this.idleTimeoutMs) || (rt.committedOffset !== state.commitPoint.offset && nowMs - rt.lastCommitMs >= (this.opts.commitIntervalMs ?? 1000));
      if (!due) continue;
      await this.locked(rt, async () => {
        if (rt.needsRestore || this.stopping || !rt.snapshot) return;
        let closed = 0;
        if (rt.caughtUp) {
          const r = await this.host.tick(rt.partition, this.now());
          if (rt.needsRestore || this.stopping || this.parts.get(rt.partition) !== rt) return;
          this.took(rt, r);
          closed = r.windows.length;
        }
        this.commitIfDue(rt, true);
        if (closed) this.log?.debug({ partition: rt.partition, windows: closed }, 'pipeline: idle partition closed its windows');
      }).catch((e: unknown) => {
        if (!this.stopping) this.log?.warn({ err: e, partition: rt.partition }, 'pipeline: idle close failed, partition restarts from its commit');
        rt.needsRestore = true;
      });
    }
  }
}

/** A Buffer over the same bytes (values from a worker thread arrive as Uint8Arrays). */
function asBuffer(v: Uint8Array): Buffer {
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** A transactional id prefix unique to this process (for tests that want several independent pipelines). */
export function randomTransactionalIdPrefix(): string {
  return `mirrorflow-pipeline-${randomUUID()}`;
}
