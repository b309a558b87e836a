// The pipeline's partitions in worker threads (PartitionThreads) against the same work in the
// calling thread (PartitionWork): the same messages give the same encoded windows, counters,
// commit points and totals; inventory changes reach the threads; a failing call and a dead thread
// are reported, not hidden.
import { expect } from 'chai';
import type { FlowRecord } from '../../../src/capture/flow-record.js';
import { FlowBatchBuilder, flowBatchHeaders } from '../../../src/pipeline/codec-batch.js';
import { decodeRecord, encodeRecord, schemaHeaders } from '../../../src/pipeline/codec.js';
import { EndpointResolver } from '../../../src/pipeline/endpoint-resolver.js';
import { PartitionThreads, type PartitionThreadError } from '../../../src/pipeline/partition-threads.js';
import { PartitionWork, type FlowTopicMessage, type PartitionHost, type PartitionWorkOptions, type WorkResult } from '../../../src/pipeline/partition-work.js';
import { DEFAULT_RULES_CONFIG } from '../../../src/pipeline/rules-config.js';
import { flowKey, synthRecords } from '../../helpers/synth-pipeline.js';

const W_US = 1_000_000;
const OPTS: PartitionWorkOptions = { windowUs: W_US, allowedLatenessUs: 0, idleTimeoutMs: 1000, idPrefix: 'g', rules: DEFAULT_RULES_CONFIG, clean: true, format: 'protobuf' };
const PARTITIONS = 3;

/** The flows topic's messages per partition: batches of records keyed by pair, plus odd ones. */
function topic(records: FlowRecord[]): FlowTopicMessage[][] {
  const out: FlowTopicMessage[][] = Array.from({ length: PARTITIONS }, () => []);
  const builders = Array.from({ length: PARTITIONS }, () => new FlowBatchBuilder('protobuf'));
  const partitionOf = (r: FlowRecord) => [...flowKey(r)].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % PARTITIONS;
  const seal = (p: number) => {
    const b = builders[p]!;
    const n = b.count;
    if (n) out[p]!.push({ offset: out[p]!.length, headers: flowBatchHeaders('protobuf', n), value: b.take() });
  };
  records.forEach((r, i) => {
    const p = partitionOf(r);
    if (i % 97 === 0) {
      // a single-record JSON message and a garbage one between the batches
      seal(p);
      out[p]!.push({ offset: out[p]!.length, value: encodeRecord('flow-record', r, 'json'), headers: schemaHeaders('flow-record', 'json') });
      out[p]!.push({ offset: out[p]!.length, value: Buffer.from('not a record'), headers: schemaHeaders('flow-record', 'protobuf') });
      return;
    }
    builders[p]!.add(r);
    if (builders[p]!.count >= 40) seal(p);
  });
  for (let p = 0; p < PARTITIONS; p++) seal(p);
  return out;
}

/** Feeds every partition's messages in batches of `batch` (partitions interleaved), then idle-closes. */
async function run(host: PartitionHost, messages: FlowTopicMessage[][], batch: number, nowMs: number): Promise<WorkResult[]> {
  const out: WorkResult[] = [];
  for (let p = 0; p < PARTITIONS; p++) await host.assign(p, 0, undefined);
  const longest = Math.max(...messages.map((m) => m.length));
  for (let at = 0; at < longest; at += batch) {
    const calls = messages.map((m, p) => (at < m.length ? host.process(p, m.slice(at, at + batch), Math.min(at + batch, m.length), () => nowMs, () => false) : undefined));
    for (const r of await Promise.all(calls)) if (r) out.push(r);
  }
  for (let p = 0; p < PARTITIONS; p++) out.push(await host.tick(p, nowMs + 10_000));
  return out;
}

/** A result with its encoded messages as hex (Buffers from this thread, Uint8Arrays from another). */
function plain(r: WorkResult): unknown {
  const hex = (m: { key: string; value: Uint8Array }) => ({ key: m.key, value: Buffer.from(m.value).toString('hex') });
  return { ...r, windows: r.windows.map(hex), alerts: r.alerts.map(hex) };
}

describe('pipeline/partition-threads', function () {
  this.timeout(60_000);
  const records = synthRecords({ records: 3000, pairs: 40, spanUs: 8 * W_US, jitterUs: 50_000, seed: 5, agentId: 'hv-a' });
  const messages = topic(records);

  it('gives the same windows, counters, commit points and totals as the work in this thread', async () => {
    const local = new PartitionWork(OPTS, new EndpointResolver([{ vm: 'vm-x', ips: ['10.0.1.1'] }]));
    const threads = new PartitionThreads({ threads: 2, work: OPTS, resolver: new EndpointResolver([{ vm: 'vm-x', ips: ['10.0.1.1'] }]), onFatal: (e) => expect.fail(e.message) });
    try {
      const a = await run(local, messages, 5, 1000);
      const b = await run(threads, messages, 5, 1000);
      expect(b.map(plain)).to.deep.equal(a.map(plain));
      const windows = a.reduce((n, r) => n + r.windows.length, 0);
      expect(windows, 'windows emitted').to.be.greaterThan(40 * 6);
      const skipped = a.reduce((n, r) => n + r.counters.skipped.undecodable, 0);
      expect(skipped, 'the garbage messages').to.equal(Math.ceil(records.length / 97));
      expect(threads.stats()).to.deep.equal(local.stats());
      // the VM of the inventory names its endpoint in the threads' windows too
      const names = new Set(b.flatMap((r) => r.windows.map((w) => w.key.split('|'))).flat());
      expect(names.has('vm-x')).to.equal(true);
    } finally {
      await threads.close();
    }
  });

  it('hands inventory changes to the threads', async () => {
    const resolver = new EndpointResolver();
    const threads = new PartitionThreads({ threads: 2, work: OPTS, resolver, onFatal: (e) => expect.fail(e.message) });
    try {
      resolver.replace([{ vm: 'vm-late', ips: ['10.0.2.2'] }]);
      const out = await run(threads, messages, 50, 1000);
      const names = new Set(out.flatMap((r) => r.windows.map((w) => w.key.split('|'))).flat());
      expect(names.has('vm-late')).to.equal(true);
      expect(names.has('10.0.2.2')).to.equal(false);
    } finally {
      await threads.close();
    }
  });

  it('rejects a call that fails in its thread, and the thread goes on', async () => {
    const threads = new PartitionThreads({ threads: 2, work: OPTS, resolver: new EndpointResolver(), onFatal: (e) => expect.fail(e.message) });
    try {
      let err: Error | undefined;
      await threads.tick(1, 0).catch((e: Error) => (err = e));
      expect(err?.message).to.equal('pipeline: partition work failed (thread=1, reason="pipeline-core: partition not assigned (partition=1)")');
      const snap = await threads.assign(1, 7, undefined);
      expect(snap.commitPoint.offset).to.equal(7);
    } finally {
      await threads.close();
    }
  });

  it('a thread that dies fails its calls and is reported once', async () => {
    const fatal: PartitionThreadError[] = [];
    const threads = new PartitionThreads({ threads: 2, work: OPTS, resolver: new EndpointResolver(), onFatal: (e) => fatal.push(e) });
    try {
      await threads.assign(0, 0, undefined);
      await threads.assign(1, 0, undefined);
      const workers = (threads as unknown as { threads: { worker: { terminate(): Promise<number> } }[] }).threads;
      await workers[0]!.worker.terminate();
      expect(fatal.map((e) => e.message)).to.deep.equal(['pipeline: partition thread exited (thread=0, code=1)']);
      let err: Error | undefined;
      await threads.process(0, messages[0]!.slice(0, 2), 2, () => 0, () => false).catch((e: Error) => (err = e));
      expect(err?.message).to.equal('pipeline: partition thread exited (thread=0, code=1)');
      // the other thread still answers
      const r = await threads.process(1, messages[1]!.slice(0, 2), 2, () => 0, () => false);
      expect(r?.counters.messages).to.equal(2);
      expect(fatal).to.have.length(1);
    } finally {
      await threads.close();
    }
  });

  it('starts a thread only for partitions it is given (none before the first call)', async () => {
    const threads = new PartitionThreads({ threads: 8, work: OPTS, resolver: new EndpointResolver(), onFatal: (e) => expect.fail(e.message) });
    try {
      expect(threads.running).to.equal(0);
      for (const p of [0, 1, 2, 8]) await threads.assign(p, 0, undefined);
      expect(threads.running, 'threads 0, 1, 2 (partition 8 goes to thread 0)').to.equal(3);
    } finally {
      await threads.close();
    }
    expect(threads.running, 'after close()').to.equal(0);
  });

  it('refuses a thread count that is not a positive integer', () => {
    for (const n of [0, -1, 1.5]) {
      expect(() => new PartitionThreads({ threads: n, work: OPTS, resolver: new EndpointResolver(), onFatal: () => undefined })).to.throw(RangeError, `threads must be a positive integer (threads=${n})`);
    }
  });

  it('a decoded window of a thread is the record the work in this thread wrote', async () => {
    const threads = new PartitionThreads({ threads: 1, work: OPTS, resolver: new EndpointResolver(), onFatal: (e) => expect.fail(e.message) });
    try {
      const out = await run(threads, messages, 1000, 1000);
      const w = out.flatMap((r) => r.windows)[0]!;
      const pw = decodeRecord('pair-window', Buffer.from(w.value), 'protobuf');
      expect(`${pw.a}|${pw.b}`).to.equal(w.key);
    } finally {
      await threads.close();
    }
  });
});
