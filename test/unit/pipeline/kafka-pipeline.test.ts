// KafkaPipeline's partition bookkeeping across rebalances, without a broker: the consumer group's
// callbacks are driven directly and kafkajs' producer and admin are fakes.
import { expect } from 'chai';
import type { Kafka } from 'kafkajs';
import { KafkaPipeline } from '../../../src/pipeline/kafka-pipeline.js';
import { waitFor } from '../../helpers/wait.js';

interface Internals {
  admin: unknown;
  host: { has(partition: number): boolean };
  parts: Map<number, { needsRestore: boolean; committing: Promise<void> | undefined; lock: Promise<void> }>;
  onGroupJoin(assignment: Record<string, number[]>): void;
  onCrash(error: Error, restart: boolean): void;
}

function pipeline(): { p: KafkaPipeline; internals: Internals } {
  const producer = { connect: async () => undefined, disconnect: async () => undefined };
  const kafka = { producer: () => producer } as unknown as Kafka;
  const p = new KafkaPipeline({ kafka, flowsTopic: 'f', pairsTopic: 'p', groupId: 'g', windowUs: 1_000_000 });
  const internals = p as unknown as Internals;
  internals.admin = {
    fetchOffsets: async () => [{ topic: 'f', partitions: [{ partition: 0, offset: '-1', metadata: null }] }],
    fetchTopicOffsets: async () => [{ partition: 0, low: '0', high: '0', offset: '0' }],
  };
  return { p, internals };
}

describe('pipeline/kafka-pipeline rebalances', () => {
  it('a partition revoked while its transaction is in flight and assigned again keeps its new state', async () => {
    const { p, internals } = pipeline();
    internals.onGroupJoin({ f: [0] });
    const first = internals.parts.get(0)!;
    await waitFor(() => !first.needsRestore && internals.host.has(0), { timeoutMs: 5000, what: 'partition 0 restored' });
    // a transaction of the first owner is in flight …
    let release!: () => void;
    first.committing = new Promise<void>((resolve) => {
      release = () => {
        first.committing = undefined;
        resolve();
      };
    });
    // … when the partition goes to another member and comes back
    internals.onGroupJoin({ f: [] });
    internals.onGroupJoin({ f: [0] });
    const second = internals.parts.get(0)!;
    expect(second).to.not.equal(first);
    await waitFor(() => !second.needsRestore, { timeoutMs: 5000, what: 'partition 0 restored again' });
    release();
    await first.lock;
    // the partition is held and restored: its state must still be there for its next batch
    expect(p.readiness).to.deep.equal({ joined: true, partitions: 1, held: 1 });
    expect(internals.host.has(0), 'the restored state of the partition held now').to.equal(true);
  });

  it('is not ready between a consumer crash kafkajs restarts from and the next group join', async () => {
    const { p, internals } = pipeline();
    expect(p.readiness.joined).to.equal(false);
    internals.onGroupJoin({ f: [0] });
    await waitFor(() => p.readiness.held === 1, { timeoutMs: 5000, what: 'partition 0 held' });
    expect(p.readiness).to.deep.equal({ joined: true, partitions: 1, held: 1 });
    internals.onCrash(new Error('connection lost'), true);
    expect(p.readiness.joined).to.equal(false);
    expect(p.error, 'a crash kafkajs restarts from is not a failure').to.equal(undefined);
    internals.onGroupJoin({ f: [0] });
    expect(p.readiness.joined).to.equal(true);
  });
});
