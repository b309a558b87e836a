// scripts/kafka.sh and test/helpers/kafka.ts against a real Kafka broker: metadata answers, a topic
// takes and returns a message, a transaction commits with one broker, and stop leaves nothing running.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Kafka, logLevel, Partitioners } from '../../src/pipeline/kafkajs.js';
import { type Admin, type Consumer, type Producer } from 'kafkajs';
import { runFile } from '../helpers/exec.js';
import {
  KAFKA_SCRIPT,
  KAFKA_START_TIMEOUT_MS,
  kafkaProcesses,
  lastLine,
  startKafka,
  stopSharedKafka,
  uniqueKafkaName,
  type KafkaBroker,
} from '../helpers/kafka.js';

/** Exit code of `scripts/kafka.sh ARGS...` (0 when it succeeded). */
async function scriptExit(args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await runFile('bash', [KAFKA_SCRIPT, ...args], { timeoutMs: 60_000 });
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '' };
  }
}

/** Is `pid` a live (non-zombie) process? */
async function processAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Consumes from the beginning of `topic` until `count` messages arrived (or the deadline passes). */
async function consumeN(
  kafka: Kafka,
  topic: string,
  count: number,
  opts: { readUncommitted?: boolean; timeoutMs?: number } = {},
): Promise<Array<{ key: string; value: string }>> {
  const consumer: Consumer = kafka.consumer({ groupId: uniqueKafkaName('g'), readUncommitted: opts.readUncommitted ?? false });
  const got: Array<{ key: string; value: string }> = [];
  const timeoutMs = opts.timeoutMs ?? 30_000;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`kafka: timed out consuming (topic=${topic}, want=${count}, got=${got.length}, timeoutMs=${timeoutMs})`)),
        timeoutMs,
      );
      consumer
        .run({
          eachMessage: async ({ message }) => {
            got.push({ key: message.key?.toString() ?? '', value: message.value?.toString() ?? '' });
            if (got.length >= count) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch((err: unknown) => {
          clearTimeout(timer);
          reject(err as Error);
        });
    });
  } finally {
    await consumer.disconnect();
  }
  return got;
}

describe('kafka broker (scripts/kafka.sh)', function () {
  this.timeout(KAFKA_START_TIMEOUT_MS + 60_000);

  let broker: KafkaBroker | undefined;
  let kafka: Kafka;
  let admin: Admin | undefined;

  before(async () => {
    broker = await startKafka({ shared: false });
    kafka = new Kafka({ clientId: 'mirrorflow-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  });

  after(async () => {
    await admin?.disconnect();
    await broker?.stop();
  });

  it('starts on 127.0.0.1 and answers metadata', async () => {
    const b = broker!;
    expect(b.bootstrap).to.match(/^127\.0\.0\.1:\d+$/);
    expect(await kafkaProcesses(b.dir)).to.include(b.pid);
    admin = kafka.admin();
    await admin.connect();
    const cluster = await admin.describeCluster();
    expect(cluster.brokers).to.have.length(1);
    expect(`${cluster.brokers[0]!.host}:${cluster.brokers[0]!.port}`).to.equal(b.bootstrap);
    expect(cluster.controller).to.equal(cluster.brokers[0]!.nodeId);
  });

  it('creates a topic, produces and consumes a message', async () => {
    const topic = uniqueKafkaName('flows');
    expect(await admin!.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true })).to.equal(true);
    const meta = await admin!.fetchTopicMetadata({ topics: [topic] });
    expect(meta.topics[0]!.partitions).to.have.length(3);

    const producer: Producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    try {
      const [res] = await producer.send({ topic, acks: -1, messages: [{ key: 'vm-a|vm-b', value: 'hello' }] });
      expect(res!.errorCode).to.equal(0);
    } finally {
      await producer.disconnect();
    }
    expect(await consumeN(kafka, topic, 1)).to.deep.equal([{ key: 'vm-a|vm-b', value: 'hello' }]);
  });

  it('commits and aborts transactions with one broker', async () => {
    const topic = uniqueKafkaName('txn');
    await admin!.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const producer = kafka.producer({
      transactionalId: uniqueKafkaName('tx'),
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    try {
      const aborted = await producer.transaction();
      await aborted.send({ topic, messages: [{ key: 'k', value: 'aborted' }] });
      await aborted.abort();
      const committed = await producer.transaction();
      await committed.send({ topic, messages: [{ key: 'k', value: 'committed' }] });
      await committed.commit();
    } finally {
      await producer.disconnect();
    }
    // read_committed sees only the committed record; read_uncommitted sees both.
    expect((await consumeN(kafka, topic, 1)).map((m) => m.value)).to.deep.equal(['committed']);
    expect((await consumeN(kafka, topic, 2, { readUncommitted: true })).map((m) => m.value)).to.deep.equal([
      'aborted',
      'committed',
    ]);
  });

  it('status exits 0 and start again prints the running broker', async () => {
    const b = broker!;
    const status = await scriptExit(['status', b.dir]);
    expect(status.code).to.equal(0);
    expect(status.stdout).to.include(`bootstrap=${b.bootstrap}`);
    const again = await runFile('bash', [KAFKA_SCRIPT, 'start', b.dir], { timeoutMs: 60_000 });
    expect(lastLine(again.stdout)).to.equal(b.bootstrap);
    expect(lastLine((await runFile('bash', [KAFKA_SCRIPT, 'address', b.dir])).stdout)).to.equal(b.bootstrap);
  });

  it('stop leaves nothing running, and is safe to repeat', async () => {
    const b = broker!;
    await admin?.disconnect();
    admin = undefined;
    await b.stop();
    expect(await kafkaProcesses(b.dir)).to.deep.equal([]);
    expect(await processAlive(b.pid)).to.equal(false);
    expect(existsSync(b.dir)).to.equal(false);
    expect((await scriptExit(['status', b.dir])).code).to.equal(3);
    expect((await scriptExit(['address', b.dir])).code).to.equal(3);
    expect((await scriptExit(['stop', b.dir])).code).to.equal(0);
    await b.stop();
  });
});

describe('kafka test helper (shared broker)', function () {
  this.timeout(KAFKA_START_TIMEOUT_MS + 60_000);

  after(async () => {
    await stopSharedKafka();
  });

  it('gives every caller of one run the same broker, and stopSharedKafka ends it', async () => {
    const [a, b] = await Promise.all([startKafka(), startKafka()]);
    expect(a.bootstrap).to.equal(b.bootstrap);
    expect(a.dir).to.equal(b.dir);
    await a.stop();
    const c = await startKafka();
    expect(c.bootstrap).to.equal(a.bootstrap);
    const admin = new Kafka({ brokers: [c.bootstrap], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      expect((await admin.describeCluster()).brokers).to.have.length(1);
    } finally {
      await admin.disconnect();
    }
    await b.stop();
    await c.stop();
    await stopSharedKafka();
    expect(await kafkaProcesses(a.dir)).to.deep.equal([]);
    expect(existsSync(a.dir)).to.equal(false);
  });
});
