// The agent's composition against the real sandbox: OVSDB → mirror → capture thread → embedded
// pipeline, and its survival of ovsdb-server and ovs-vswitchd restarts (record counts before and
// after each), then an orderly stop that removes its mirror.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PairWindow } from '../../src/capture/flow-record.js';
import { Agent, agentOwner, type AgentOptions } from '../../src/agent/agent.js';
import { EmbeddedSink } from '../../src/agent/embedded-sink.js';
import { createLogger } from '../../src/log.js';
import { internalOutputPortName, type MirrorSpec } from '../../src/ovsdb/mirror-spec.js';
import { quietVms, type NetnsVm } from '../helpers/netns-vm.js';
import { hostIfaceExists, startSandbox, type Sandbox } from '../helpers/ovs-sandbox.js';
import { MemoryOutput } from '../helpers/memory-output.js';
import { waitFor } from '../helpers/wait.js';

function echoTotals(pairs: PairWindow[], a: string, b: string): { requests: number; replies: number } {
  const [x, y] = [a, b].sort();
  let requests = 0;
  let replies = 0;
  for (const p of pairs) {
    if (p.a !== x || p.b !== y) continue;
    requests += p.icmp.echoRequests;
    replies += p.icmp.echoReplies;
  }
  return { requests, replies };
}

describe('agent on the sandbox (embedded pipeline)', function () {
  this.timeout(180_000);
  let sb: Sandbox;
  let br: string;
  let vmA: NetnsVm;
  let vmB: NetnsVm;

  before(async () => {
    sb = await startSandbox();
    br = sb.uniqueName('br');
    await sb.addBridge(br);
    vmA = await sb.addVm({ name: sb.uniqueName('a'), bridge: br, ip: '10.63.0.1/24' });
    vmB = await sb.addVm({ name: sb.uniqueName('b'), bridge: br, ip: '10.63.0.2/24' });
    await quietVms([vmA, vmB]);
  });
  after(async () => {
    await sb?.stop();
  });

  function options(spec: MirrorSpec, pairs: MemoryOutput<PairWindow>, over: Partial<AgentOptions> = {}): AgentOptions {
    return {
      agentId: 'hv-test',
      ovsdb: { url: sb.dbUrl },
      mirrors: [spec],
      capture: {},
      flows: { idleTimeoutMs: 15_000, activeTimeoutMs: 60_000, maxFlows: 100_000 },
      windowUs: 1_000_000,
      openSink: async ({ resolver, agentId }) => {
        const sink = new EmbeddedSink({ windowUs: 1_000_000, resolver, agentId, pairsOut: pairs });
        return {
          kind: 'embedded' as const,
          write: (r, t) => sink.write(r, t),
          advance: (t) => sink.advance(t),
          get behind() {
            return sink.behind;
          },
          close: () => sink.close(),
          stats: () => ({ pairWindows: sink.pairWindows }),
        };
      },
      logger: createLogger({}, 'silent'),
      ...over,
    };
  }

  it('mirrors the VMs, names them from OVSDB, survives ovsdb-server and ovs-vswitchd restarts, removes its mirror on stop', async () => {
    const spec: MirrorSpec = { bridge: br, name: 'agent-e2e', selection: { kind: 'vms', vms: [vmA.vmUuid, vmB.vmUuid] }, direction: 'both', output: { kind: 'internal' } };
    const port = internalOutputPortName(spec)!;
    const pairs = new MemoryOutput<PairWindow>();
    const agent = new Agent(options(spec, pairs));
    await agent.start();
    let stopped = false;
    try {
      expect(agent.interfaceName).to.equal(port);
      await waitFor(() => agent.status().ready, { what: `agent ready (${agent.status().notReady.join('; ')})`, timeoutMs: 20_000 });
      const owned = await sb.vsctl(['--format=json', '--columns=name,external_ids', 'list', 'Mirror']);
      expect(owned).to.include('agent-e2e').and.to.include(agentOwner('hv-test'));

      // phase 1: before any fault
      expect((await vmA.ping(vmB.ip, 5)).received).to.equal(5);
      await waitFor(() => echoTotals(pairs.items, vmA.vmUuid, vmB.vmUuid).requests >= 5, { what: 'phase 1 echoes in a window', timeoutMs: 15_000 });
      const afterPhase1 = echoTotals(pairs.items, vmA.vmUuid, vmB.vmUuid);
      expect(afterPhase1).to.deep.equal({ requests: 5, replies: 5 });

      // phase 2: ovsdb-server killed and restarted
      await sb.killOvsdb();
      await waitFor(() => !agent.status().ovsdbConnected, { what: 'agent notices the lost OVSDB connection', timeoutMs: 15_000 });
      await sb.restartOvsdb();
      await waitFor(() => agent.status().ovsdbConnected && agent.status().ovsdbReconnects >= 1, { what: 'agent reconnected to OVSDB', timeoutMs: 30_000 });
      expect((await vmA.ping(vmB.ip, 5)).received).to.equal(5);
      await waitFor(() => echoTotals(pairs.items, vmA.vmUuid, vmB.vmUuid).requests >= 10, { what: 'phase 2 echoes', timeoutMs: 15_000 });
      expect(echoTotals(pairs.items, vmA.vmUuid, vmB.vmUuid)).to.deep.equal({ requests: 10, replies: 10 });

      // phase 3: ovs-vswitchd restarted (its taps persist: the capture goes on)
      await sb.restartVswitchd();
      await waitFor(async () => (await vmA.ping(vmB.ip, 1)).received === 1, { what: 'datapath forwarding again', timeoutMs: 20_000 });
      const beforePhase3 = echoTotals(pairs.items, vmA.vmUuid, vmB.vmUuid).requests;
      expect((await vmA.ping(vmB.ip, 5)).received).to.equal(5);
      await waitFor(() => echoTotals(pairs.items, vmA.vmUuid, vmB.vmUuid).requests >= beforePhase3 + 5, { what: 'phase 3 echoes', timeoutMs: 15_000 });

      // phase 4: the capture interface vanishes (its port deleted behind the agent's back) and
      // comes back (the controller restores the port): the capture reopens on the new device
      const opensBefore = agent.status().capture.status.opens;
      await sb.vsctl(['del-port', br, port]);
      await waitFor(() => agent.status().capture.status.opens > opensBefore && agent.status().capture.status.open, {
        what: 'capture reopened on the recreated port',
        timeoutMs: 30_000,
      });
      await waitFor(async () => (await vmA.ping(vmB.ip, 1)).received === 1, { what: 'forwarding after the port came back', timeoutMs: 20_000 });
      const beforePhase4 = echoTotals(pairs.items, vmA.vmUuid, vmB.vmUuid).requests;
      expect((await vmA.ping(vmB.ip, 5)).received).to.equal(5);
      await waitFor(() => echoTotals(pairs.items, vmA.vmUuid, vmB.vmUuid).requests >= beforePhase4 + 5, { what: 'phase 4 echoes', timeoutMs: 15_000 });

      const t0 = Date.now();
      const summary = await agent.stop();
      stopped = true;
      expect(Date.now() - t0).to.be.below(10_000);
      expect(summary.timedOut).to.equal(false);
      expect(summary.mirrorsRemoved).to.equal(true);
      const total = echoTotals(pairs.items, vmA.vmUuid, vmB.vmUuid);
      expect(total.requests).to.equal(total.replies);
      expect(summary.ledger?.pcapDropped ?? 0).to.equal(0);
      const left = await sb.vsctl(['--format=json', '--columns=name', 'list', 'Mirror']);
      expect(left).to.not.include('agent-e2e');
      await waitFor(() => !hostIfaceExists(port), { what: 'internal port removed', timeoutMs: 10_000 });
    } finally {
      if (!stopped) await agent.stop();
    }
  });

  it('`mirrorflow agent` as a process: pairs as JSON lines, /metrics and /readyz, SIGHUP reload, SIGTERM exits 0 within 10 s and removes its mirror', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mf-agent-cli-'));
    const pairsFile = join(dir, 'pairs.json');
    const configFile = join(dir, 'agent.yaml');
    writeFileSync(configFile, 'capture:\n  filter: ""\n');
    const bin = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [bin, 'agent', '--config', configFile, '--bridge', br, '--select-vm', vmA.vmUuid, '--select-vm', vmB.vmUuid, '--db', sb.dbUrl, '--window', '1', '--pairs-out', pairsFile, '--metrics', '127.0.0.1:0', '--agent-id', 'hv-cli'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MIRRORFLOW_LOG_LEVEL: 'warn' } },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await waitFor(() => /agent: running/.test(stderr) || child.exitCode !== null, { what: 'agent running', timeoutMs: 30_000 });
      expect(stderr).to.match(/agent: running/);
      const url = /metrics=(http:\/\/[^/]+)\/metrics/.exec(stderr)![1]!;
      await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, { what: 'readyz 200', timeoutMs: 20_000 });
      expect((await vmA.ping(vmB.ip, 4)).received).to.equal(4);
      const pairs = () =>
        readFileSync(pairsFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as PairJson);
      await waitFor(() => echoSum(pairs(), vmA.vmUuid, vmB.vmUuid) >= 4, { what: 'echoes in the pairs file', timeoutMs: 15_000 });
      // the ledger reaches /metrics about once a second
      let metrics = '';
      await waitFor(
        async () => {
          metrics = await (await fetch(`${url}/metrics`)).text();
          return Number(/^mirrorflow_capture_frames_total (\d+)/m.exec(metrics)?.[1] ?? 0) >= 8;
        },
        { what: 'frames counted on /metrics', timeoutMs: 10_000 },
      );
      expect(metrics).to.match(/^mirrorflow_ovsdb_connected 1$/m);

      // SIGHUP with a changed capture filter: the capture restarts after flushing its flows, nothing is lost
      writeFileSync(configFile, 'capture:\n  filter: "icmp or tcp"\n');
      child.kill('SIGHUP');
      await waitFor(() => /agent: configuration reloaded/.test(stderr), { what: 'reload acknowledged', timeoutMs: 10_000 });
      expect(stderr).to.match(/agent: configuration reloaded \(changes=capture\)/);
      expect((await vmA.ping(vmB.ip, 3)).received).to.equal(3);
      await waitFor(() => echoSum(pairs(), vmA.vmUuid, vmB.vmUuid) >= 7, { what: 'echoes after the reload', timeoutMs: 15_000 });

      const t0 = Date.now();
      child.kill('SIGTERM');
      expect(await exited, stderr).to.equal(0);
      expect(Date.now() - t0).to.be.below(10_000);
      expect(stderr).to.match(/agent: stopped \(records=\d+, .*mirrors removed\)/);
      expect(echoSum(pairs(), vmA.vmUuid, vmB.vmUuid)).to.equal(7);
      const left = await sb.vsctl(['--format=json', '--columns=name', 'list', 'Mirror']);
      expect(left).to.not.include(`mirrorflow-${br}`);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

interface PairJson {
  a: string;
  b: string;
  icmp: { echoRequests?: number };
}

function echoSum(pairs: PairJson[], x: string, y: string): number {
  const [a, b] = [x, y].sort();
  return pairs.filter((p) => p.a === a && p.b === b).reduce((n, p) => n + (p.icmp.echoRequests ?? 0), 0);
}
