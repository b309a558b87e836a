// `mirrorflow pipeline --metrics HOST:PORT` against a real broker: the child process serves /readyz
// (503 naming what is not ready, then 200 once it joined its group and holds its producers),
// /metrics (the flow records it read and the pair windows it produced) and /healthz, and exits 0 on
// SIGTERM. A busy or bad address is one clear line before any broker is contacted.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, Partitioners } from '../../src/pipeline/kafkajs.js';
import { type Admin, type Producer } from 'kafkajs';
import { encodeRecord, schemaHeaders } from '../../src/pipeline/codec.js';
import { KAFKA_START_TIMEOUT_MS, startKafka, uniqueKafkaName, type KafkaBroker } from '../helpers/kafka.js';
import { embeddedPairs, flowKey, synthRecords } from '../helpers/synth-pipeline.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = join(ROOT, 'test/helpers/pipeline-child.ts');
const W_US = 1_000_000;

interface Reply {
  status: number;
  body: string;
}

function get(address: string, path: string): Promise<Reply> {
  const [, host, port] = /^\[?(.*?)\]?:(\d+)$/.exec(address)!;
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Prometheus text → series → value (sample lines only). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

interface Child {
  child: ChildProcess;
  exited: Promise<number | null>;
  log: () => string;
}

describe('pipeline --metrics (real broker, child process)', function () {
  this.timeout(KAFKA_START_TIMEOUT_MS + 60_000);

  let broker: KafkaBroker | undefined;
  let admin: Admin;
  let producer: Producer;
  const children = new Set<ChildProcess>();

  before(async () => {
    broker = await startKafka();
    const kafka = new Kafka({ clientId: 'mirrorflow-pipeline-metrics-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
  });

  afterEach(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    children.clear();
  });

  after(async () => {
    await producer?.disconnect();
    await admin?.disconnect();
    await broker?.stop();
  });

  function startChild(args: string[]): Child {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MIRRORFLOW_LOG_LEVEL: 'info' },
    });
    children.add(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, exited, log: () => out };
  }

  /** The address of the child's 'pipeline: metrics listening' JSON log line. */
  function boundAddress(log: string): string | undefined {
    for (const line of log.split('\n')) {
      if (!line.startsWith('{')) continue;
      const o = JSON.parse(line) as { msg?: string; address?: string; level?: number };
      if (o.msg === 'pipeline: metrics listening') {
        expect(o.level, 'info').to.equal(30);
        return o.address;
      }
    }
    return undefined;
  }

  it('serves /readyz (503 then 200), /metrics with the flow records read and the pair windows produced, /healthz; SIGTERM exits 0', async () => {
    const prefix = `${uniqueKafkaName('metrics')}.`;
    const group = uniqueKafkaName('metrics-group');
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: `${prefix}flows`, numPartitions: 2 }, { topic: `${prefix}pairs`, numPartitions: 1 }] });
    const records = synthRecords({ records: 2000, pairs: 12, spanUs: 5_000_000, seed: 7 });
    await producer.send({
      topic: `${prefix}flows`,
      acks: -1,
      messages: records.map((r) => ({ key: flowKey(r), value: encodeRecord('flow-record', r, 'protobuf'), headers: schemaHeaders('flow-record', 'protobuf') })),
    });
    const expectedWindows = embeddedPairs(records, W_US).length;
    expect(expectedWindows).to.be.greaterThan(20);

    const t0 = Date.now();
    const p = startChild(['--brokers', broker!.bootstrap, '--topic-prefix', prefix, '--group', group, '--window', '1', '--idle-timeout', '1', '--progress', '0', '--metrics', '127.0.0.1:0', '--threads', '1']);
    const fail = (e: unknown): never => {
      throw new Error(`${(e as Error).message}\n--- pipeline ---\n${p.log().slice(-4000)}`);
    };
    try {
      const address = await waitFor(() => boundAddress(p.log()), { what: 'the metrics address logged', timeoutMs: 20_000, intervalMs: 20 });
      expect(address).to.match(/^127\.0\.0\.1:\d+$/);
      expect(address).not.to.equal('127.0.0.1:0');

      // readiness: every reply before the first 200 is a 503 naming what is not ready
      const notReady: Reply[] = [];
      await waitFor(
        async () => {
          const r = await get(address!, '/readyz');
          if (r.status !== 200) notReady.push(r);
          return r.status === 200 ? r : undefined;
        },
        { what: '/readyz 200', timeoutMs: 20_000, intervalMs: 25 },
      ).then((r) => {
        const body = JSON.parse(r!.body) as Record<string, unknown>;
        expect(body).to.include({ status: 'ready', pipeline: 'running', consumer: 'joined', partitions: 2, producers: 2 });
        expect(body).not.to.have.property('notReady');
      });
      expect(notReady.length, 'a /readyz reply before the pipeline started').to.be.greaterThan(0);
      for (const r of notReady) {
        expect(r.status).to.equal(503);
        const body = JSON.parse(r.body) as { status: string; notReady: string[] };
        expect(body.status).to.equal('not ready');
        expect(body.notReady).to.be.an('array').that.is.not.empty;
        expect(body.notReady.every((x) => ['pipeline', 'consumer', 'producers'].includes(x))).to.equal(true);
      }
      expect(JSON.parse(notReady[0]!.body).notReady).to.include('pipeline');
      expect((await get(address!, '/healthz')).status).to.equal(200);

      // every record read, every (pair, window) produced (the last windows by the idle close)
      const s = (await waitFor(
        async () => {
          const m = samples((await get(address!, '/metrics')).body);
          return m.get('mirrorflow_pipeline_produced_pair_windows_total') === expectedWindows ? m : undefined;
        },
        { what: `${expectedWindows} pair windows produced`, timeoutMs: 20_000, intervalMs: 100 },
      ))!;
      expect(s.get('mirrorflow_pipeline_flow_records_total')).to.equal(records.length);
      expect(s.get('mirrorflow_pipeline_messages_total')).to.equal(records.length);
      expect(s.get('mirrorflow_pipeline_skipped_messages_total{reason="undecodable"}')).to.equal(0);
      expect(s.get('mirrorflow_pipeline_late_records_total')).to.equal(0);
      expect(s.get('mirrorflow_pipeline_transactions_total')).to.be.greaterThan(0);
      expect(s.get('mirrorflow_pipeline_assigned_partitions')).to.equal(2);
      expect(s.get('mirrorflow_pipeline_threads')).to.equal(1);
      expect(s.get('mirrorflow_pipeline_ready')).to.equal(1);
      expect(s.get('mirrorflow_pipeline_rebalances_total')).to.be.greaterThan(0);
      expect(s.get('process_resident_memory_bytes')).to.be.greaterThan(0);

      p.child.kill('SIGTERM');
      expect(await p.exited).to.equal(0);
      expect(p.log()).to.match(new RegExp(`${expectedWindows} pair windows .* ${records.length} flow records read`));
      expect(Date.now() - t0, 'start to exit, ms').to.be.lessThan(30_000);
    } catch (e) {
      fail(e);
    }
  });

  it('a busy or malformed --metrics address: one clear line and a non-zero exit, before any broker is contacted', async () => {
    const holder = await new Promise<import('node:net').Server>((resolve, reject) => {
      import('node:net').then(({ createServer }) => {
        const srv = createServer();
        srv.once('error', reject);
        srv.listen({ host: '127.0.0.1', port: 0 }, () => resolve(srv));
      }, reject);
    });
    try {
      const port = (holder.address() as import('node:net').AddressInfo).port;
      // brokers that answer nothing: the endpoint fails first
      const busy = startChild(['--brokers', '127.0.0.1:1', '--metrics', `127.0.0.1:${port}`]);
      const bad = startChild(['--brokers', '127.0.0.1:1', '--metrics', 'localhost']);
      expect(await busy.exited).to.equal(1);
      expect(busy.log().trim()).to.equal(`mirrorflow: pipeline: cannot listen on metrics address (address=127.0.0.1:${port}, reason=EADDRINUSE)`);
      expect(await bad.exited).to.equal(2);
      expect(bad.log().trim()).to.equal('mirrorflow: invalid --metrics, expected HOST:PORT (port 0..65535), [IPv6]:PORT, or off (metrics=localhost)');
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });
});
