// The agent with a Kafka sink, as a process, on the sandbox: flow records to the flows topic and the
// VM inventory to the inventory topic; the broker stopped while the VMs talk and started again:
// every echo the VMs exchanged before, during and after the outage is on the topic once (record
// counts before and after), no record id twice.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FlowRecord } from '../../src/capture/flow-record.js';
import { runFile } from '../helpers/exec.js';
import { KAFKA_SCRIPT, KAFKA_START_TIMEOUT_MS, readAllFlowRecords, startKafka, uniqueKafkaName, type KafkaBroker } from '../helpers/kafka.js';
import { quietVms, type NetnsVm } from '../helpers/netns-vm.js';
import { startSandbox, type Sandbox } from '../helpers/ovs-sandbox.js';
import { waitFor } from '../helpers/wait.js';

function echoes(records: FlowRecord[], a: NetnsVm, b: NetnsVm): number {
  const ips = new Set([a.ip, b.ip]);
  return records.filter((r) => ips.has(r.key.clientIp) && ips.has(r.key.serverIp)).reduce((n, r) => n + (r.icmp?.echoRequests ?? 0), 0);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('agent with Kafka: a broker outage loses and doubles nothing', function () {
  this.timeout(KAFKA_START_TIMEOUT_MS * 2 + 180_000);
  let sb: Sandbox;
  let broker: KafkaBroker;
  let br: string;
  let vmA: NetnsVm;
  let vmB: NetnsVm;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mf-agent-kafka-'));
    broker = await startKafka({ shared: false });
    sb = await startSandbox();
    br = sb.uniqueName('br');
    await sb.addBridge(br);
    vmA = await sb.addVm({ name: sb.uniqueName('a'), bridge: br, ip: '10.65.0.1/24' });
    vmB = await sb.addVm({ name: sb.uniqueName('b'), bridge: br, ip: '10.65.0.2/24' });
    await quietVms([vmA, vmB]);
  });
  after(async () => {
    await sb?.stop();
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('records made while the broker is down are spooled and delivered once it is back', async () => {
    const prefix = `${uniqueKafkaName('agent')}.`;
    const bin = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [
        bin, 'agent', '--bridge', br, '--select-vm', vmA.vmUuid, '--select-vm', vmB.vmUuid, '--db', sb.dbUrl, '--window', '1',
        '--brokers', broker.bootstrap, '--set', `sink.kafka.topicPrefix=${prefix}`, '--spool-dir', join(dir, 'spool'),
        '--metrics', '127.0.0.1:0', '--agent-id', 'hv-kafka',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, MIRRORFLOW_LOG_LEVEL: 'error' } },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await waitFor(() => /agent: running/.test(stderr) || child.exitCode !== null, { what: 'agent running', timeoutMs: 60_000 });
      expect(stderr, stderr).to.match(/agent: running \(agent=hv-kafka, .*sink=kafka/);
      const url = /metrics=(http:\/\/[^/]+)\/metrics/.exec(stderr)![1]!;
      const flowRecordsSent = async () => Number(/^mirrorflow_sink_emitted_records_total\{kind="flow"\} (\d+)/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? 0);

      // before: 5 echoes, delivered
      expect((await vmA.ping(vmB.ip, 5)).received).to.equal(5);
      await waitFor(async () => echoes(await readAllFlowRecords(broker.bootstrap, `${prefix}flows`), vmA, vmB) >= 5, { what: 'phase 1 on the topic', timeoutMs: 30_000, intervalMs: 500 });
      const sentBefore = await flowRecordsSent();

      // during: the broker is down; 5 more echoes
      process.kill(broker.pid, 'SIGTERM');
      await waitFor(() => !alive(broker.pid), { what: 'the broker JVM to exit', timeoutMs: 60_000, intervalMs: 100 });
      expect((await vmA.ping(vmB.ip, 5)).received).to.equal(5);
      // their records leave the flow table at the next window cut and wait in the spool
      await new Promise((r) => setTimeout(r, 3000));
      expect(alive(broker.pid)).to.equal(false);

      // after: the broker is back; 5 more
      const { stdout } = await runFile('bash', [KAFKA_SCRIPT, 'start', broker.dir], { timeoutMs: KAFKA_START_TIMEOUT_MS });
      expect(stdout.trim().split('\n').pop()).to.equal(broker.bootstrap);
      expect((await vmA.ping(vmB.ip, 5)).received).to.equal(5);
      child.kill('SIGTERM');
      expect(await exited, stderr).to.equal(0);
      const records = await readAllFlowRecords(broker.bootstrap, `${prefix}flows`);
      const ids = new Map<string, number>();
      for (const r of records) ids.set(r.id, (ids.get(r.id) ?? 0) + 1);
      expect([...ids].filter(([, n]) => n > 1), 'no id twice').to.deep.equal([]);
      expect(echoes(records, vmA, vmB), `records before the outage: ${sentBefore}, after: ${records.length}`).to.equal(15);
      expect(records.length).to.be.greaterThan(sentBefore);
      expect(records.every((r) => r.id.startsWith('hv-kafka@'))).to.equal(true);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
