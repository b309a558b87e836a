/**
 * Producing to Kafka (kafkajs): the sink the agent and `replay --brokers` write records to.
 *
 *   KafkaProducerClient   one kafkajs client + idempotent producer (acks=-1, retries unbounded,
 *                         at most 5 requests in flight — kafkajs serialises idempotent produce
 *                         requests per broker anyway), shared by the topic sinks of a process.
 *   KafkaTopicSink        one topic: a FIFO of encoded messages in memory (bounded), an on-disk
 *                         Spool behind it, and one sender loop that batches (linger, batch bytes /
 *                         records) and sends one request at a time.
 *   KafkaRecordSink       RecordOutput<PairWindow> (one record per message) over a KafkaTopicSink:
 *                         encodes with the codec, keys by the unordered pair, headers from schemaHeaders.
 *   KafkaFlowBatchSink    RecordOutput<FlowRecord>: many records per message (FlowRecordBatch), one
 *                         batch per partition of the pair key, sent to that partition explicitly.
 *                         Messages carry their record count; the counters below count records.
 *
 * Delivery (none lost, none doubled while the process lives):
 *   - A batch handed to kafkajs stays in flight until the broker acknowledged it: kafkajs retries it
 *     forever with the same producer id and sequence numbers, so a retry of a batch the broker had
 *     already written is recognised as a duplicate by the broker (idempotence). It is never copied to
 *     the spool while in flight (a copy re-sent later would get new sequence numbers: a duplicate).
 *   - Meanwhile new records wait in memory; past memoryLimitBytes they go to the spool (when one is
 *     configured; without one, `behind` asks the caller to wait, and a caller that does not wait
 *     loses the oldest records, counted in `dropped`). Records in memory are older than those in the
 *     spool: the sender drains memory first, then the spool, and new records keep going to the spool
 *     until it is empty, so order is kept.
 *   - `behind` is false during an outage (a request pending longer than outageAfterMs, or no
 *     connection) when a spool exists: a live capture must not stall; records go to disk instead.
 *   - close() waits up to closeTimeoutMs for everything to be delivered; what is left (memory, and
 *     the batch in flight, whose fate is unknown — it may be doubled, the pipeline drops duplicates
 *     by record id) goes to the spool, delivered by the next process that opens it.
 *
 * The Kafka record timestamp is the send time (kafkajs stamps it when the request is built); event
 * time travels inside the record, so a replay of an old capture is not deleted by retention at once.
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import kafkajs from './kafkajs.js';
import { type Admin, type IHeaders, type Kafka, type Message, type Producer } from 'kafkajs';
import type { FlowRecord, PairWindow } from '../capture/flow-record.js';
import { MirrorflowError, kv } from '../errors.js';
import type { RecordOutput } from '../agent/record-output.js';
import { encodeRecord, schemaHeaders, RECORD_FORMATS, type RecordFormat, type RecordKind, type RecordOfKind } from './codec.js';
import { FlowBatchBuilder, RECORD_COUNT_HEADER, flowBatchHeaders } from './codec-batch.js';
import { kafkaClientOptions, type KafkaConfig } from './kafka-config.js';
import { ensureTopics, topicNames, type EnsureTopicsResult, type TopicRole } from './kafka-topics.js';
import { unorderedPairKey, type EndpointNamer } from './pair-key.js';
import { Spool, type SpoolStats } from './spool.js';

// kafkajs is CommonJS: values come from its default export (named ESM imports of some fail)
const { CompressionTypes, Kafka: KafkaClient, logLevel } = kafkajs;

/** Header naming the record kind ('flow-record', 'pair-window', 'inventory'). */
export const KIND_HEADER = 'mirrorflow-kind';

export class KafkaProduceError extends MirrorflowError {}

/** A clear one-line reason for a kafkajs error (auth, TLS, connection) — no stack. */
export function describeKafkaError(e: unknown): string {
  const err = e as { name?: string; message?: string; type?: string; cause?: { message?: string; code?: string } };
  const parts = [err.message ?? String(e)];
  if (err.type && !parts[0]!.includes(err.type)) parts.push(err.type);
  if (err.cause?.message && !parts[0]!.includes(err.cause.message)) parts.push(err.cause.message);
  return parts.join(': ');
}

function isFatalKafkaError(e: unknown): boolean {
  const err = e as { name?: string; retriable?: boolean; type?: string; message?: string };
  if (err.name === 'KafkaJSSASLAuthenticationError') return true;
  if (/certificate|self.signed|unable to verify|SSL|TLS/i.test(err.message ?? '')) return true;
  if (err.type === 'TOPIC_AUTHORIZATION_FAILED' || err.type === 'CLUSTER_AUTHORIZATION_FAILED' || err.type === 'MESSAGE_TOO_LARGE') return true;
  return false;
}

// ---- client

export class KafkaProducerClient {
  readonly kafka: Kafka;
  readonly producer: Producer;
  private connecting: Promise<void> | undefined;
  private connected = false;
  /** Partitions of topics, as last learnt (ensureTopics, learnPartitions). */
  readonly partitionCounts = new Map<string, number>();
  private learning: Promise<void> | undefined;
  private learnedAtMs = 0;

  private constructor(
    readonly cfg: KafkaConfig,
    kafka: Kafka,
  ) {
    this.kafka = kafka;
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 5,
      allowAutoTopicCreation: false,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 2000 },
    });
    this.producer.on(this.producer.events.DISCONNECT, () => {
      this.connected = false;
    });
  }

  static async create(cfg: KafkaConfig): Promise<KafkaProducerClient> {
    const opts = await kafkaClientOptions(cfg);
    const kafka = new KafkaClient({
      ...opts,
      logLevel: logLevel.NOTHING,
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
    } as ConstructorParameters<typeof KafkaClient>[0]);
    return new KafkaProducerClient(cfg, kafka);
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Connects once (concurrent callers share the attempt); a failed attempt is retried by the next call. */
  ensureConnected(): Promise<void> {
    if (this.connected) return Promise.resolve();
    if (!this.connecting) {
      const p = this.producer.connect().then(
        () => {
          this.connected = true;
          this.connecting = undefined;
        },
        (e: unknown) => {
          this.connecting = undefined;
          throw e;
        },
      );
      this.connecting = p;
    }
    return this.connecting!;
  }

  /** Creates missing topics and checks existing ones (see kafka-topics.ts). */
  async ensureTopics(roles?: readonly TopicRole[]): Promise<EnsureTopicsResult> {
    const admin: Admin = this.kafka.admin();
    try {
      await admin.connect();
    } catch (e) {
      throw new KafkaProduceError('kafka-connect', `kafka: cannot connect${kv({ brokers: this.cfg.brokers.join(','), reason: describeKafkaError(e) })}`, {
        cause: e,
        retriable: !isFatalKafkaError(e),
      });
    }
    try {
      const result = await ensureTopics(admin, this.cfg, roles);
      const names = topicNames(this.cfg.topicPrefix);
      await this.readPartitions(admin, (roles ?? (Object.keys(names) as TopicRole[])).map((r) => names[r])).catch(() => undefined);
      return result;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  private async readPartitions(admin: Admin, topics: string[]): Promise<void> {
    const meta = await admin.fetchTopicMetadata({ topics });
    for (const t of meta.topics) if (t.partitions.length > 0) this.partitionCounts.set(t.name, t.partitions.length);
  }

  /** Learns a topic's partition count in the background (once at a time; failures ignored: asked again later). */
  learnPartitions(topic: string): void {
    if (this.learning || this.partitionCounts.has(topic) || Date.now() - this.learnedAtMs < 5000) return;
    this.learnedAtMs = Date.now();
    this.learning = (async () => {
      const admin = this.kafka.admin();
      try {
        await admin.connect();
        await this.readPartitions(admin, [topic]);
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    })()
      .catch(() => undefined)
      .finally(() => {
        this.learning = undefined;
      });
  }

  async disconnect(): Promise<void> {
    this.connected = false;
    await this.producer.disconnect().catch(() => undefined);
  }
}

// ---- one topic

export interface TopicSinkMetrics {
  /** Acknowledged by the broker. */
  sent: number;
  /** Written to the spool (each record counted once per trip to disk). */
  spooled: number;
  /** Lost: oldest records dropped from memory (no spool, caller ignored backpressure) or from the spool (its limit). */
  dropped: number;
  /** Failed produce attempts (connect or send) that were retried. */
  retried: number;
  batches: number;
  /** Waiting in memory (records, encoded bytes). */
  queued: number;
  queuedBytes: number;
  /** Waiting in the spool. */
  spoolPending: number;
  outage: boolean;
  lastError?: string;
  spool?: SpoolStats;
}

export interface TopicSinkOptions {
  client: KafkaProducerClient;
  topic: string;
  /** Headers by tag: a message's tag picks its headers (and travels through the spool with it). */
  headerSets: IHeaders[];
  /** Header carrying a message's record count (batches), added to the tag's headers when set. */
  countHeader?: string;
  /** Defaults from the client's config. */
  lingerMs?: number;
  batchBytes?: number;
  batchRecords?: number;
  memoryLimitBytes?: number;
  compression?: KafkaConfig['compression'];
  /** Open spool for this topic (its own directory); none: memory and backpressure only. */
  spool?: Spool;
  /** A request pending this long counts as an outage (default 2000). */
  outageAfterMs?: number;
  closeTimeoutMs?: number;
  /** Called on every failed attempt (for logs). */
  onError?: (e: unknown, fatal: boolean) => void;
}

interface Batch {
  messages: Message[];
  bytes: number;
  /** Records in the messages. */
  records: number;
  fromSpool: boolean;
}

const NULL_KEY = 0xffff;
const NO_PARTITION = -1;

/**
 * Spool entry (version 2): u8 version, u8 tag, u16 key length (0xffff: null key), u8 flags
 * (1: null value), i32 partition (-1: none, the key decides), u32 record count, key, value.
 * Version 1 entries (u8 1, u8 tag, u16 key length, u8 flags, key, value: one record, no partition),
 * written before batching, are still read.
 */
export function encodeSpoolEntry(key: Buffer | null, value: Buffer | null, tag: number, count = 1, partition?: number): Buffer {
  const keyLen = key ? key.length : 0;
  if (keyLen >= NULL_KEY) throw new KafkaProduceError('kafka-key', `kafka: key too long for the spool${kv({ bytes: keyLen })}`);
  const valueLen = value ? value.length : 0;
  const b = Buffer.allocUnsafe(13 + keyLen + valueLen);
  b[0] = 2;
  b[1] = tag;
  b.writeUInt16BE(key ? keyLen : NULL_KEY, 2);
  b[4] = value ? 0 : 1;
  b.writeInt32BE(partition ?? NO_PARTITION, 5);
  b.writeUInt32BE(count, 9);
  if (key) key.copy(b, 13);
  if (value) value.copy(b, 13 + keyLen);
  return b;
}

export interface SpoolEntry {
  key: Buffer | null;
  value: Buffer | null;
  tag: number;
  /** Records the entry's message holds. */
  count: number;
  partition: number | undefined;
}

export function decodeSpoolEntry(b: Buffer): SpoolEntry {
  const v = b[0];
  const head = v === 2 ? 13 : 5;
  if (b.length < head || (v !== 1 && v !== 2)) throw new KafkaProduceError('kafka-spool-entry', `kafka: unknown spool entry${kv({ version: b[0] ?? 'none', bytes: b.length })}`);
  const kl = b.readUInt16BE(2);
  const keyLen = kl === NULL_KEY ? 0 : kl;
  const partition = v === 2 ? b.readInt32BE(5) : NO_PARTITION;
  // copies: the spool's read buffer is reused
  return {
    key: kl === NULL_KEY ? null : Buffer.from(b.subarray(head, head + keyLen)),
    value: b[4]! & 1 ? null : Buffer.from(b.subarray(head + keyLen)),
    tag: b[1]!,
    count: v === 2 ? b.readUInt32BE(9) : 1,
    partition: partition === NO_PARTITION ? undefined : partition,
  };
}

/** Records in a spool entry (its weight in the spool), without copying it. */
export function spoolEntryCount(b: Buffer): number {
  return b[0] === 2 && b.length >= 13 ? b.readUInt32BE(9) : 1;
}

/** Per-record framing in a Kafka record batch (length, attributes, deltas, varint lengths), at most. */
const RECORD_OVERHEAD_BYTES = 24;

/** Bytes a message counts for: key + value + headers + record framing (what it adds to a batch). */
function messageBytes(m: Message): number {
  return ((m.value as Buffer | null)?.length ?? 0) + ((m.key as Buffer | null)?.length ?? 0) + headersBytes(m.headers) + RECORD_OVERHEAD_BYTES;
}

const headerSizes = new WeakMap<object, number>();
function headersBytes(h: IHeaders | undefined): number {
  if (!h) return 0;
  let n = headerSizes.get(h);
  if (n === undefined) {
    n = 0;
    for (const [k, v] of Object.entries(h)) n += Buffer.byteLength(k) + 2 + (v === undefined ? 0 : Buffer.isBuffer(v) ? v.length : Buffer.byteLength(String(v)));
    headerSizes.set(h, n);
  }
  return n;
}

const TAG_SYMBOL = Symbol('tag');
const COUNT_SYMBOL = Symbol('count');
type TaggedMessage = Message & { [TAG_SYMBOL]?: number; [COUNT_SYMBOL]?: number };
const countOf = (m: Message): number => (m as TaggedMessage)[COUNT_SYMBOL] ?? 1;

export class KafkaTopicSink {
  readonly topic: string;
  private readonly client: KafkaProducerClient;
  private readonly headerSets: IHeaders[];
  private readonly countHeader: string | undefined;
  private readonly headerCache = new Map<number, IHeaders>();
  private readonly lingerMs: number;
  private readonly batchBytes: number;
  private readonly batchRecords: number;
  private readonly memoryLimitBytes: number;
  private readonly compression: (typeof CompressionTypes)[keyof typeof CompressionTypes];
  private readonly spool: Spool | undefined;
  private readonly outageAfterMs: number;
  private readonly closeTimeoutMs: number;
  private readonly onError: ((e: unknown, fatal: boolean) => void) | undefined;

  /** FIFO in memory: messages[head..] are waiting. */
  private memory: TaggedMessage[] = [];
  private head = 0;
  private memBytes = 0;
  /** Records in memory (a batch message counts its records). */
  private memRecords = 0;
  private oldestAt = 0;
  /** Entries on their way to the spool (appended in chunks). */
  private spoolBuf: Buffer[] = [];
  private spoolBufBytes = 0;
  private spoolBufRecords = 0;
  /** New records go to the spool (until it is empty again). */
  private spooling = false;
  private inflight: Batch | undefined;
  private inflightSince = 0;
  private connectFailing = false;
  private closing = false;
  private abandoned = false;
  private fatal: unknown;
  private readonly events = new EventEmitter();
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeResolve: (() => void) | undefined;
  private readonly loopDone: Promise<void>;
  private readonly m = { sent: 0, spooled: 0, dropped: 0, retried: 0, batches: 0 };
  private lastError: string | undefined;

  constructor(o: TopicSinkOptions) {
    const c = o.client.cfg;
    this.client = o.client;
    this.topic = o.topic;
    this.headerSets = o.headerSets;
    this.countHeader = o.countHeader;
    this.lingerMs = o.lingerMs ?? c.lingerMs;
    this.batchBytes = o.batchBytes ?? c.batchBytes;
    this.batchRecords = o.batchRecords ?? c.batchRecords;
    this.memoryLimitBytes = o.memoryLimitBytes ?? c.memoryLimitBytes;
    this.compression = (o.compression ?? c.compression) === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
    this.spool = o.spool;
    this.outageAfterMs = o.outageAfterMs ?? 2000;
    this.closeTimeoutMs = o.closeTimeoutMs ?? c.closeTimeoutMs;
    this.onError = o.onError;
    this.events.setMaxListeners(0);
    // a spool left by a previous process: its records go first (they are the oldest)
    if (this.spool && this.spool.pending > 0) this.spooling = true;
    this.loopDone = this.loop();
  }

  /** Headers of a message with `tag` holding `count` records. */
  private headersFor(tag: number, count: number): IHeaders | undefined {
    if (!this.countHeader) return this.headerSets[tag] ?? this.headerSets[0];
    const k = tag * 0x100000000 + count;
    let h = this.headerCache.get(k);
    if (!h) {
      if (this.headerCache.size >= 16_384) this.headerCache.clear();
      h = { ...(this.headerSets[tag] ?? this.headerSets[0]), [this.countHeader]: Buffer.from(String(count)) };
      this.headerCache.set(k, h);
    }
    return h;
  }

  /**
   * Queues one message holding `count` records (a batch) for `partition` (undefined: the key picks
   * it, kafkajs' default partitioner); never blocks (see `behind`).
   */
  enqueue(key: string | Buffer | null, value: Buffer | null, tag = 0, count = 1, partition?: number): void {
    if (this.closing) throw new KafkaProduceError('kafka-closed', `kafka: sink closed${kv({ topic: this.topic })}`);
    const k = key === null ? null : typeof key === 'string' ? Buffer.from(key) : key;
    if (this.spool) {
      if (this.spooling && this.spool.pending === 0 && this.spoolBufBytes === 0 && !this.inflight?.fromSpool) this.spooling = false;
      if (!this.spooling && this.memBytes >= this.memoryLimitBytes) this.spooling = true;
      if (this.spooling) {
        const e = encodeSpoolEntry(k, value, tag, count, partition);
        this.spoolBuf.push(e);
        this.spoolBufBytes += e.length;
        this.spoolBufRecords += count;
        this.m.spooled += count;
        if (this.spoolBufBytes >= 1 << 20) this.flushSpoolBuf();
        this.wake();
        return;
      }
    } else if (this.memBytes >= this.memoryLimitBytes * 2) {
      // the caller ignored backpressure: drop the oldest, counted
      this.dropOldestInMemory();
    }
    const msg: TaggedMessage = { key: k, value, headers: this.headersFor(tag, count) };
    if (partition !== undefined) msg.partition = partition;
    if (tag !== 0) msg[TAG_SYMBOL] = tag;
    if (count !== 1) msg[COUNT_SYMBOL] = count;
    if (this.head === this.memory.length) this.oldestAt = Date.now();
    this.memory.push(msg);
    this.memBytes += messageBytes(msg);
    this.memRecords += count;
    if (this.memRecords >= this.batchRecords || this.memBytes >= this.batchBytes) this.wake();
    else if (this.memory.length - this.head === 1) this.wake();
  }

  /** True during an outage: a request pending longer than outageAfterMs, or no connection. */
  get outage(): boolean {
    return this.connectFailing || (this.inflight !== undefined && Date.now() - this.inflightSince > this.outageAfterMs);
  }

  /** The caller should wait (drained()) before writing more. */
  get behind(): boolean {
    if (this.memBytes < this.memoryLimitBytes / 2) return false;
    return !(this.spool && this.outage);
  }

  /** Resolves once `behind` is false (or the sink failed / closes). */
  async drained(): Promise<void> {
    while (this.behind && !this.fatal && !this.abandoned) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, 100);
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.events.once('progress', done);
      });
    }
    if (this.fatal) throw this.fatalError();
  }

  /** Resolves when everything queued so far (memory and spool) was delivered. */
  async flush(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    this.wake();
    while (this.pendingCount() > 0 && !this.fatal && !this.abandoned) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(left, 100));
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.events.once('progress', done);
      });
    }
    if (this.fatal) throw this.fatalError();
    return this.pendingCount() === 0;
  }

  /** Records not yet acknowledged (memory, spool, in flight). */
  pendingCount(): number {
    const inflightMem = this.inflight && !this.inflight.fromSpool ? this.inflight.records : 0;
    return this.memRecords + (this.spool ? this.spool.pendingWeight + this.spoolBufRecords : 0) + inflightMem;
  }

  metrics(): TopicSinkMetrics {
    const out: TopicSinkMetrics = {
      ...this.m,
      dropped: this.m.dropped + (this.spool?.snapshot().droppedWeight ?? 0),
      queued: this.memRecords,
      queuedBytes: this.memBytes,
      spoolPending: this.spool ? this.spool.pendingWeight + this.spoolBufRecords : 0,
      outage: this.outage,
    };
    if (this.lastError) out.lastError = this.lastError;
    if (this.spool) out.spool = this.spool.snapshot();
    return out;
  }

  /**
   * Delivers what is queued (up to closeTimeoutMs), then spools what is left (or, without a spool,
   * fails naming how many records were not delivered). Does not disconnect the shared client.
   */
  async close(): Promise<void> {
    if (this.closing) {
      await this.loopDone;
      return;
    }
    this.closing = true;
    this.wake();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.loopDone.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), this.closeTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    let left = 0;
    if (timedOut || this.fatal) {
      this.abandoned = true;
      this.wake();
      // the batch in flight first (it is the oldest), then memory
      const rest: TaggedMessage[] = [];
      if (this.inflight && !this.inflight.fromSpool) rest.push(...(this.inflight.messages as TaggedMessage[]));
      rest.push(...this.memory.slice(this.head));
      this.memory = [];
      this.head = 0;
      this.memBytes = 0;
      this.memRecords = 0;
      if (this.spool) {
        for (const msg of rest) {
          const n = countOf(msg);
          this.spoolBuf.push(encodeSpoolEntry((msg.key as Buffer | null) ?? null, (msg.value as Buffer | null) ?? null, msg[TAG_SYMBOL] ?? 0, n, msg.partition ?? undefined));
          this.spoolBufRecords += n;
          this.m.spooled += n;
        }
      } else {
        for (const msg of rest) left += countOf(msg);
        this.m.dropped += left;
      }
    }
    if (this.spool) {
      this.flushSpoolBuf();
      this.spool.close();
    }
    this.events.emit('progress');
    if (this.fatal) throw this.fatalError();
    if (left) {
      throw new KafkaProduceError('kafka-undelivered', `kafka: records not delivered before the close deadline${kv({ topic: this.topic, records: left, closeTimeoutMs: this.closeTimeoutMs, reason: this.lastError ?? 'none' })}`);
    }
  }

  // ---- internals

  private fatalError(): KafkaProduceError {
    return new KafkaProduceError('kafka-produce', `kafka: cannot produce${kv({ topic: this.topic, brokers: this.client.cfg.brokers.join(','), reason: describeKafkaError(this.fatal) })}`, {
      cause: this.fatal,
    });
  }

  private dropOldestInMemory(): void {
    const m = this.memory[this.head]!;
    this.memBytes -= messageBytes(m);
    this.memRecords -= countOf(m);
    this.memory[this.head] = undefined as unknown as TaggedMessage;
    this.head++;
    this.m.dropped += countOf(m);
  }

  private flushSpoolBuf(): void {
    if (!this.spool || !this.spoolBuf.length) return;
    const entries = this.spoolBuf;
    this.spoolBuf = [];
    this.spoolBufBytes = 0;
    this.spoolBufRecords = 0;
    this.spool.append(entries);
  }

  private wake(): void {
    if (this.wakeTimer) {
      clearTimeout(this.wakeTimer);
      this.wakeTimer = undefined;
    }
    const r = this.wakeResolve;
    this.wakeResolve = undefined;
    r?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wakeResolve = resolve;
      if (Number.isFinite(ms)) {
        this.wakeTimer = setTimeout(() => this.wake(), ms);
      }
    });
  }

  private hasWork(): boolean {
    return this.inflight !== undefined || this.memory.length > this.head || this.spoolBuf.length > 0 || (this.spool?.pending ?? 0) > 0;
  }

  private takeBatch(): Batch | undefined {
    if (this.memory.length > this.head) {
      const messages: Message[] = [];
      let bytes = 0;
      let records = 0;
      while (this.head < this.memory.length) {
        const m = this.memory[this.head]!;
        const size = messageBytes(m);
        const n = countOf(m);
        if (messages.length && (bytes + size > this.batchBytes || records + n > this.batchRecords)) break;
        messages.push(m);
        bytes += size;
        records += n;
        this.memory[this.head] = undefined as unknown as TaggedMessage;
        this.head++;
      }
      this.memBytes -= bytes;
      this.memRecords -= records;
      if (this.head === this.memory.length) {
        this.memory = [];
        this.head = 0;
      } else if (this.head > 65_536 && this.head * 2 > this.memory.length) {
        this.memory = this.memory.slice(this.head);
        this.head = 0;
      }
      this.oldestAt = Date.now();
      return { messages, bytes, records, fromSpool: false };
    }
    if (!this.spool) return undefined;
    this.flushSpoolBuf();
    const entries = this.spool.peek(this.batchRecords, this.batchBytes);
    if (!entries.length) return undefined;
    // headers and framing count too: take the prefix that fits (the rest is peeked again next time)
    let bytes = 0;
    let records = 0;
    const messages: Message[] = [];
    for (const b of entries) {
      const e = decodeSpoolEntry(b);
      const msg: TaggedMessage = { key: e.key, value: e.value, headers: this.headersFor(e.tag, e.count) };
      if (e.partition !== undefined) msg.partition = e.partition;
      if (e.tag !== 0) msg[TAG_SYMBOL] = e.tag;
      if (e.count !== 1) msg[COUNT_SYMBOL] = e.count;
      const size = messageBytes(msg);
      if (messages.length && (bytes + size > this.batchBytes || records + e.count > this.batchRecords)) break;
      bytes += size;
      records += e.count;
      messages.push(msg);
    }
    return { messages, bytes, records, fromSpool: true };
  }

  private noteFailure(e: unknown): void {
    this.m.retried++;
    this.lastError = describeKafkaError(e);
    const fatal = isFatalKafkaError(e);
    this.onError?.(e, fatal);
    if (fatal) this.fatal = e;
  }

  private async loop(): Promise<void> {
    let backoffMs = 100;
    for (;;) {
      if (this.abandoned || this.fatal) return;
      if (!this.hasWork()) {
        if (this.closing) return;
        await this.sleep(Number.POSITIVE_INFINITY);
        continue;
      }
      // linger: let a batch fill unless it is full, the spool has a backlog, or we are closing
      if (!this.inflight && !this.closing && !this.spooling && this.memory.length > this.head) {
        const waited = Date.now() - this.oldestAt;
        if (waited < this.lingerMs && this.memRecords < this.batchRecords && this.memBytes < this.batchBytes) {
          await this.sleep(this.lingerMs - waited);
          continue;
        }
      }
      try {
        await this.client.ensureConnected();
        this.connectFailing = false;
      } catch (e) {
        this.connectFailing = true;
        if (this.abandoned) return;
        this.noteFailure(e);
        this.events.emit('progress');
        await this.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 2000);
        continue;
      }
      if (!this.inflight) {
        this.inflight = this.takeBatch();
        if (!this.inflight) continue;
        this.inflightSince = Date.now();
      }
      const batch = this.inflight;
      try {
        await this.client.producer.sendBatch({
          topicMessages: [{ topic: this.topic, messages: batch.messages }],
          acks: -1,
          compression: this.compression,
          timeout: this.client.cfg.requestTimeoutMs,
        });
      } catch (e) {
        if (this.abandoned) return;
        this.noteFailure(e);
        this.events.emit('progress');
        if (this.fatal) return;
        await this.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 2000);
        continue;
      }
      if (this.abandoned) return;
      backoffMs = 100;
      // the spool's limit may have dropped the segment holding the batch meanwhile (counted there)
      if (batch.fromSpool) this.spool!.ack(Math.min(batch.messages.length, this.spool!.peekedCount));
      this.m.sent += batch.records;
      this.m.batches++;
      this.inflight = undefined;
      this.events.emit('progress');
    }
  }
}

// ---- records

/** Headers of every message of `kind` in `format`: schemaHeaders + the record kind. */
export function recordHeaders(kind: RecordKind, format: RecordFormat): IHeaders {
  const h: IHeaders = {};
  for (const [k, v] of Object.entries(schemaHeaders(kind, format))) h[k] = Buffer.from(v);
  h[KIND_HEADER] = Buffer.from(kind);
  return h;
}

/** Header sets of a record topic, indexed by format (the spool entry's tag). */
export function recordHeaderSets(kind: RecordKind): IHeaders[] {
  return RECORD_FORMATS.map((f) => recordHeaders(kind, f));
}

export class KafkaRecordSink<K extends RecordKind> implements RecordOutput<RecordOfKind[K]> {
  private readonly tag: number;
  constructor(
    readonly sink: KafkaTopicSink,
    readonly kind: K,
    readonly format: RecordFormat,
    private readonly keyOf: (r: RecordOfKind[K]) => string | null,
  ) {
    this.tag = RECORD_FORMATS.indexOf(format);
  }

  write(record: RecordOfKind[K]): void {
    this.sink.enqueue(this.keyOf(record), encodeRecord(this.kind, record, this.format), this.tag);
  }

  get behind(): boolean {
    return this.sink.behind;
  }

  drained(): Promise<void> {
    return this.sink.drained();
  }

  close(): Promise<void> {
    return this.sink.close();
  }

  metrics(): TopicSinkMetrics {
    return this.sink.metrics();
  }
}

export interface OpenTopicSinkOptions {
  /** Endpoint names for flow keys (the agent's inventory); see pair-key.ts. */
  namer?: EndpointNamer;
  onError?: (e: unknown, fatal: boolean) => void;
  outageAfterMs?: number;
}

function openSpool(cfg: KafkaConfig, topic: string): Spool | undefined {
  if (!cfg.spoolDir) return undefined;
  // the limit is shared by the topics a process writes: flows take most of it
  return Spool.open(join(cfg.spoolDir, topic), { limitBytes: cfg.spoolLimitBytes, weigh: spoolEntryCount });
}

export function openTopicSink(client: KafkaProducerClient, role: TopicRole, headerSets: IHeaders[], o: OpenTopicSinkOptions & { countHeader?: string; lingerMs?: number } = {}): KafkaTopicSink {
  const topic = topicNames(client.cfg.topicPrefix)[role];
  const spool = openSpool(client.cfg, topic);
  return new KafkaTopicSink({
    client,
    topic,
    headerSets,
    ...(o.countHeader ? { countHeader: o.countHeader } : {}),
    ...(o.lingerMs !== undefined ? { lingerMs: o.lingerMs } : {}),
    ...(spool ? { spool } : {}),
    ...(o.onError ? { onError: o.onError } : {}),
    ...(o.outageAfterMs !== undefined ? { outageAfterMs: o.outageAfterMs } : {}),
  });
}

// ---- flow record batches

/**
 * murmur2 as Kafka's Java client and kafkajs' DefaultPartitioner compute it (32-bit), over bytes.
 * kafkajs partitions a keyed message to (murmur2(key) & 0x7fffffff) % partitions.
 */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  const length = data.length;
  let h = 0x9747b28c ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const tail = length & ~3;
  const rem = length & 3;
  if (rem >= 3) h ^= data[tail + 2]! << 16;
  if (rem >= 2) h ^= data[tail + 1]! << 8;
  if (rem >= 1) {
    h ^= data[tail]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition kafkajs' default partitioner gives a message with this key. */
export function partitionOfKey(key: string | Uint8Array, partitions: number): number {
  const bytes = typeof key === 'string' ? Buffer.from(key) : key;
  return (murmur2(bytes) & 0x7fffffff) % partitions;
}

/** Tag of a batch message in `format` (single-record messages keep tag = format index). */
export const BATCH_TAG_BASE = 16;

export interface FlowBatchOptions {
  /** A batch message is sent once it holds this many records (default 1000)… */
  maxRecords?: number;
  /** …or this many bytes (default 256 KiB)… */
  maxBytes?: number;
  /** …or its first record waited this long (default the config's lingerMs). */
  lingerMs?: number;
}

interface OpenBatch {
  builder: FlowBatchBuilder;
  /** The pair key of the first record: the batch message's key. */
  key: Buffer;
  partition: number | undefined;
}

/** Where a pair's records go: its key and partition (learnt once per pair). */
interface PairRoute {
  key: string;
  partition: number;
}

/** An endpoint's routes: to every peer seen, and the last one used (most records repeat it). */
interface EndpointRoutes {
  peer: string;
  last: PairRoute | undefined;
  all: Map<string, PairRoute>;
}

/**
 * FlowRecords to the flows topic, many per Kafka message (FlowRecordBatch, codec-batch.ts).
 *
 * Records are grouped by the partition their pair key maps to — kafkajs' default partitioner
 * (murmur2 of the key), exactly where a keyed single-record message would go — and each batch is
 * sent to that partition explicitly, so every record of a VM pair still lands on one partition. The
 * message key of a batch is the pair key of its first record (a key that maps to the batch's
 * partition). While the topic's partition count is unknown (the broker was unreachable since the
 * start), records are grouped by pair key instead: such a batch holds one pair and goes where its
 * key hashes, like a single record.
 *
 * A batch is sent when full (maxRecords, maxBytes) or when its first record waited lingerMs;
 * close() and flush() send what is open. Counters (sent, spooled, dropped, queued, spool-pending)
 * count records. A retried or re-spooled batch keeps its records' ids, so the pipeline's
 * duplicate-id rule drops a doubled batch record by record.
 */
export class KafkaFlowBatchSink implements RecordOutput<FlowRecord> {
  /** Batches by partition (or by key while the partition count is unknown); kept (empty) after they are sent. */
  private readonly open = new Map<number | string, OpenBatch>();
  /** Endpoint name → its routes (both ends of a pair learn it): no key text per record. */
  private readonly routes = new Map<string, EndpointRoutes>();
  private routeCount = 0;
  private routesOf = 0;
  private readonly maxRecords: number;
  private readonly maxBytes: number;
  private readonly lingerMs: number;
  private readonly tag: number;
  private timer: NodeJS.Timeout | undefined;
  private openRecords = 0;
  private closed = false;

  constructor(
    readonly sink: KafkaTopicSink,
    private readonly client: KafkaProducerClient,
    readonly format: RecordFormat,
    /** Endpoint names for the pair key (see pair-key.ts: flowPairKey). */
    private readonly namer: EndpointNamer | undefined,
    o: FlowBatchOptions = {},
  ) {
    this.maxRecords = Math.max(1, o.maxRecords ?? 1000);
    this.maxBytes = Math.max(1024, o.maxBytes ?? 256 * 1024);
    this.lingerMs = o.lingerMs ?? client.cfg.lingerMs;
    this.tag = BATCH_TAG_BASE + RECORD_FORMATS.indexOf(format);
  }

  write(record: FlowRecord): void {
    if (this.closed) throw new KafkaProduceError('kafka-closed', `kafka: sink closed${kv({ topic: this.sink.topic })}`);
    // the pair's endpoint names, as flowPairKey (pair-key.ts) names them
    const k = record.key;
    const ip = k.ipVersion === 4 || k.ipVersion === 6;
    let c: string;
    let sv: string;
    if (this.namer) {
      c = this.namer.nameFromText(k.clientMac || undefined, ip ? k.clientIp : undefined);
      sv = this.namer.nameFromText(k.serverMac || undefined, ip ? k.serverIp : undefined);
    } else if (ip) {
      c = k.clientIp;
      sv = k.serverIp;
    } else {
      c = k.clientMac;
      sv = k.serverMac;
    }
    const partitions = this.client.partitionCounts.get(this.sink.topic);
    let slot: number | string;
    let partition: number | undefined;
    let key: string | undefined;
    if (partitions === undefined) {
      this.client.learnPartitions(this.sink.topic);
      slot = key = unorderedPairKey(c, sv);
    } else {
      const route = this.route(c, sv, partitions);
      partition = route.partition;
      slot = partition;
      key = route.key;
    }
    let b = this.open.get(slot);
    if (!b) {
      b = { builder: new FlowBatchBuilder(this.format, 16 * 1024), key: Buffer.from(key), partition };
      this.open.set(slot, b);
    } else if (b.builder.count === 0) b.key = Buffer.from(key);
    b.builder.add(record); // throws (codec-encode) on a record that does not fit the schema: nothing added
    this.openRecords++;
    if (b.builder.count >= this.maxRecords || b.builder.bytes >= this.maxBytes) this.seal(slot, b);
    else if (!this.timer) this.timer = setTimeout(() => this.sealAll(), this.lingerMs);
  }

  /** Records in open batches (not yet handed to the topic sink). */
  get building(): number {
    return this.openRecords;
  }

  get behind(): boolean {
    return this.sink.behind;
  }

  drained(): Promise<void> {
    return this.sink.drained();
  }

  /** Sends the open batches and waits until everything was delivered (see KafkaTopicSink.flush). */
  flush(timeoutMs?: number): Promise<boolean> {
    this.sealAll();
    return this.sink.flush(timeoutMs);
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.sealAll();
      this.closed = true;
    }
    await this.sink.close();
  }

  metrics(): TopicSinkMetrics {
    const m = this.sink.metrics();
    m.queued += this.openRecords;
    return m;
  }

  /**
   * The key and partition of the pair (x, y), learnt once (the table is dropped when it grows
   * large). Per endpoint name: the route to the peer it was last seen with, then every route of it
   * — one Map lookup for most records (V8 keeps a string's hash in the string, and endpoint names
   * come from the flow table's text cache, so no text is hashed per record).
   */
  private route(x: string, y: string, partitions: number): PairRoute {
    if (partitions !== this.routesOf || this.routeCount >= 262_144) {
      this.routes.clear();
      this.routeCount = 0;
      this.routesOf = partitions;
    }
    let e = this.routes.get(x);
    if (e === undefined) this.routes.set(x, (e = { peer: '', last: undefined, all: new Map() }));
    else if (e.peer === y && e.last) return e.last;
    let r = e.all.get(y);
    if (!r) {
      const key = unorderedPairKey(x, y);
      r = { key, partition: partitionOfKey(key, partitions) };
      e.all.set(y, r);
      let back = this.routes.get(y);
      if (!back) this.routes.set(y, (back = { peer: '', last: undefined, all: new Map() }));
      back.all.set(x, r);
      this.routeCount += 2;
    }
    e.peer = y;
    e.last = r;
    return r;
  }

  private seal(slot: number | string, b: OpenBatch): void {
    const count = b.builder.count;
    // batches by key (partition count unknown) go; a partition's batch stays, empty, for the next records
    if (typeof slot === 'string') this.open.delete(slot);
    if (count === 0) return;
    this.openRecords -= count;
    this.sink.enqueue(b.key, b.builder.take(), this.tag, count, b.partition);
  }

  /** Sends every open batch (linger passed, flush, close). */
  sealAll(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    for (const [slot, b] of [...this.open]) if (b.builder.count > 0 || typeof slot === 'string') this.seal(slot, b);
  }
}

/** Header sets of the flows topic: single FlowRecords at tag = format index, batches at BATCH_TAG_BASE + format index. */
export function flowHeaderSets(): IHeaders[] {
  const sets = recordHeaderSets('flow-record');
  RECORD_FORMATS.forEach((f, i) => {
    const h: IHeaders = {};
    for (const [k, v] of Object.entries(flowBatchHeaders(f, 0))) if (k !== RECORD_COUNT_HEADER) h[k] = Buffer.from(v);
    h[KIND_HEADER] = Buffer.from('flow-record-batch');
    sets[BATCH_TAG_BASE + i] = h;
  });
  return sets;
}

/** FlowRecords to `${prefix}flows`, in batches per partition of the unordered endpoint pair's key (see KafkaFlowBatchSink). */
export function openFlowSink(client: KafkaProducerClient, o: OpenTopicSinkOptions & { batch?: FlowBatchOptions } = {}): KafkaFlowBatchSink {
  // batches wait (linger) before they are handed over; the topic sink sends what it has at once
  const sink = openTopicSink(client, 'flows', flowHeaderSets(), { ...o, countHeader: RECORD_COUNT_HEADER, lingerMs: 0 });
  const namer = o.namer;
  return new KafkaFlowBatchSink(sink, client, client.cfg.format, namer, o.batch);
}

/** PairWindows to `${prefix}pairs`, keyed by the unordered pair (a, b). */
export function openPairSink(client: KafkaProducerClient, o: OpenTopicSinkOptions = {}): KafkaRecordSink<'pair-window'> {
  const sink = openTopicSink(client, 'pairs', recordHeaderSets('pair-window'), o);
  return new KafkaRecordSink(sink, 'pair-window', client.cfg.format, (w: PairWindow) => unorderedPairKey(w.a, w.b));
}
