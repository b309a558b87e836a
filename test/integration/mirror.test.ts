import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { main } from '../../src/cli/main.js';
import { MirrorController } from '../../src/ovsdb/mirror-controller.js';
import { viewMirrors, type MirrorView } from '../../src/ovsdb/mirror-view.js';
import { openOvsdbSession, type OvsdbSession } from '../../src/ovsdb/session.js';
import type { MirrorSpec } from '../../src/ovsdb/mirror-spec.js';
import type { NetnsVm } from '../helpers/netns-vm.js';
import { startSandbox, type Sandbox } from '../helpers/ovs-sandbox.js';
import { waitFor } from '../helpers/wait.js';

async function cli(sb: Sandbox, argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { ...process.env, MIRRORFLOW_DB: sb.dbUrl },
    signal: new AbortController().signal,
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function listJson(sb: Sandbox): Promise<MirrorView[]> {
  const r = await cli(sb, ['mirror', 'list', '--json']);
  expect(r.code, r.err).to.equal(0);
  return JSON.parse(r.out) as MirrorView[];
}

/** Captures on `iface` with tcpdump until `count` frames matched `filter` or the deadline passed. */
function capture(iface: string, filter: string, count: number, timeoutMs = 10_000): { ready: Promise<void>; done: Promise<string> } {
  const child = spawn('tcpdump', ['-l', '-n', '-e', '-i', iface, '-c', String(count), filter], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let errText = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const ready = new Promise<void>((resolve) => {
    child.stderr.on('data', (d: Buffer) => {
      errText += d.toString();
      if (errText.includes('listening on')) resolve();
    });
  });
  const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
  const done = new Promise<string>((resolve) =>
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(out);
    }),
  );
  return { ready, done };
}

describe('mirrors against a real OVS (sandbox)', function () {
  this.timeout(120_000);
  let sb: Sandbox;
  let br: string;
  let vmA: NetnsVm;
  let vmB: NetnsVm;

  before(async () => {
    sb = await startSandbox();
    br = sb.uniqueName('br');
    await sb.addBridge(br);
    vmA = await sb.addVm({ name: sb.uniqueName('a'), bridge: br, ip: '10.61.0.1/24' });
    vmB = await sb.addVm({ name: sb.uniqueName('b'), bridge: br, ip: '10.61.0.2/24' });
  });
  after(async () => {
    await sb?.stop();
  });

  describe('mirror CLI', () => {
    it('creates a mirror of one VM to an internal port; frames between the VMs arrive on it', async () => {
      const r = await cli(sb, ['mirror', 'create', '--bridge', br, '--name', 'watch-a', '--select-vm', vmA.vmUuid, '--output-internal', '--json']);
      expect(r.code, r.err).to.equal(0);
      expect(JSON.parse(r.out)).to.include({ action: 'created', confirmed: true });
      const [m] = (await listJson(sb)).filter((x) => x.name === 'watch-a');
      expect(m).to.not.equal(undefined);
      expect(m!.owner).to.equal('mirrorflow');
      expect(m!.selectSrcPort.map((p) => p.name)).to.deep.equal([vmA.hostIface]);
      expect(m!.selectDstPort.map((p) => p.name)).to.deep.equal([vmA.hostIface]);
      const out = m!.outputPort!.name!;
      expect(out).to.match(/^mf[0-9a-f]{13}$/);
      // the capture port is up with IPv6 off: it adds nothing of its own
      const { readFileSync } = await import('node:fs');
      await waitFor(() => readFileSync(`/proc/sys/net/ipv6/conf/${out}/disable_ipv6`, 'utf8').trim() === '1', { what: `IPv6 disabled on ${out}` });

      const cap = capture(out, `icmp and host ${vmA.ip}`, 4);
      await cap.ready;
      const ping = await vmA.ping(vmB.ip, 2);
      expect(ping.received).to.equal(2);
      const text = await cap.done;
      expect(text).to.contain(`${vmA.ip} > ${vmB.ip}: ICMP echo request`);
      expect(text).to.contain(`${vmB.ip} > ${vmA.ip}: ICMP echo reply`);
    });

    it('is a no-op the second time, and updates in place with a changed spec', async () => {
      const before = (await listJson(sb)).find((x) => x.name === 'watch-a')!;
      const again = await cli(sb, ['mirror', 'create', '--bridge', br, '--name', 'watch-a', '--select-vm', vmA.vmUuid, '--output-internal', '--json']);
      expect(JSON.parse(again.out).action).to.equal('unchanged');
      const upd = await cli(sb, ['mirror', 'create', '--bridge', br, '--name', 'watch-a', '--select-vm', vmA.vmUuid, '--direction', 'from-vm', '--output-internal', '--snaplen', '96', '--json']);
      expect(upd.code, upd.err).to.equal(0);
      expect(JSON.parse(upd.out).action).to.equal('updated');
      const after = (await listJson(sb)).find((x) => x.name === 'watch-a')!;
      expect(after.uuid).to.equal(before.uuid);
      expect(after.outputPort!.uuid).to.equal(before.outputPort!.uuid);
      expect(after.selectSrcPort.map((p) => p.name)).to.deep.equal([vmA.hostIface]);
      expect(after.selectDstPort).to.deep.equal([]);
      expect(after.snaplen).to.equal(96);
    });

    it('agrees with ovs-vsctl list mirror', async () => {
      const mine = await listJson(sb);
      const vs = JSON.parse(await sb.vsctl(['--format=json', 'list', 'Mirror'])) as { headings: string[]; data: unknown[][] };
      const col = (row: unknown[], name: string) => row[vs.headings.indexOf(name)];
      const uuidsOf = (d: unknown) => {
        const v = d as [string, unknown];
        if (v[0] === 'uuid') return [v[1] as string];
        return ((v[1] as [string, string][]) ?? []).map((x) => x[1]);
      };
      const scalar = (d: unknown) => (Array.isArray(d) && d[0] === 'set' ? ((d[1] as unknown[])[0] ?? null) : d);
      expect(vs.data.length).to.equal(mine.length);
      for (const row of vs.data) {
        const uuid = (col(row, '_uuid') as [string, string])[1];
        const m = mine.find((x) => x.uuid === uuid);
        expect(m, `mirror ${uuid}`).to.not.equal(undefined);
        expect(m!.name).to.equal(col(row, 'name'));
        expect(m!.selectAll).to.equal(col(row, 'select_all'));
        expect(m!.selectSrcPort.map((p) => p.uuid).sort()).to.deep.equal(uuidsOf(col(row, 'select_src_port')).sort());
        expect(m!.selectDstPort.map((p) => p.uuid).sort()).to.deep.equal(uuidsOf(col(row, 'select_dst_port')).sort());
        const op = scalar(col(row, 'output_port')) as [string, string] | null;
        expect(m!.outputPort?.uuid ?? null).to.equal(op ? op[1] : null);
        expect(m!.snaplen ?? null).to.equal(scalar(col(row, 'snaplen')));
        expect(m!.outputVlan ?? null).to.equal(scalar(col(row, 'output_vlan')));
        expect(m!.externalIds).to.deep.equal(Object.fromEntries((col(row, 'external_ids') as [string, [string, string][]])[1]));
      }
    });

    it('refuses a name taken by a mirror it does not own, leaving the database unchanged', async () => {
      await sb.vsctl(['--', '--id=@m', 'create', 'Mirror', 'name=theirs', 'select_all=true', '--', 'add', 'Bridge', br, 'mirrors', '@m']);
      const before = await listJson(sb);
      const r = await cli(sb, ['mirror', 'create', '--bridge', br, '--name', 'theirs', '--select-all', '--output-internal']);
      expect(r.code).to.equal(1);
      expect(r.err.split('\n')).to.have.length(1);
      expect(r.err).to.contain('mirror=theirs');
      const d = await cli(sb, ['mirror', 'delete', '--bridge', br, '--name', 'theirs']);
      expect(d.code).to.equal(1);
      expect(d.err).to.contain('not owned');
      expect(await listJson(sb)).to.deep.equal(before);
    });

    it('names a missing bridge, an unknown VM and an unknown port; changes nothing', async () => {
      const before = await listJson(sb);
      const cases: [string[], string][] = [
        [['--bridge', 'nosuchbr', '--select-all', '--output-internal'], 'bridge=nosuchbr'],
        [['--bridge', br, '--select-vm', 'no-such-vm', '--output-internal'], 'vm=no-such-vm'],
        [['--bridge', br, '--select-port', 'no-such-port', '--output-internal'], 'no-such-port'],
        [['--bridge', br, '--select-all', '--output-port', 'no-such-out'], 'no-such-out'],
      ];
      for (const [args, needle] of cases) {
        const r = await cli(sb, ['mirror', 'create', '--name', 'bad', ...args]);
        expect(r.code, args.join(' ')).to.equal(1);
        expect(r.err).to.contain(needle);
        expect(r.err.split('\n')).to.have.length(1);
      }
      expect(await listJson(sb)).to.deep.equal(before);
    });

    it('shows the inventory of VMs from OVSDB', async () => {
      const r = await cli(sb, ['inventory', '--json']);
      const inv = JSON.parse(r.out) as { vm: string; interface: string; mac: string; bridge: string; ifaceId: string }[];
      const a = inv.find((e) => e.vm === vmA.vmUuid)!;
      expect(a).to.include({ interface: vmA.hostIface, mac: vmA.mac.toLowerCase(), bridge: br, ifaceId: vmA.ifaceId });
    });

    it('deletes the mirror and the internal port it created', async () => {
      const m = (await listJson(sb)).find((x) => x.name === 'watch-a')!;
      const r = await cli(sb, ['mirror', 'delete', '--bridge', br, '--name', 'watch-a']);
      expect(r.code, r.err).to.equal(0);
      expect((await listJson(sb)).find((x) => x.name === 'watch-a')).to.equal(undefined);
      const ports = (await sb.vsctl(['list-ports', br])).split('\n');
      expect(ports).to.not.include(m.outputPort!.name);
      const again = await cli(sb, ['mirror', 'delete', '--bridge', br, '--name', 'watch-a']);
      expect(again.code).to.equal(1);
      expect((await cli(sb, ['mirror', 'delete', '--bridge', br, '--name', 'watch-a', '--if-exists'])).code).to.equal(0);
      await sb.vsctl(['--', '--id=@m', 'get', 'Mirror', 'theirs', '--', 'remove', 'Bridge', br, 'mirrors', '@m']);
    });
  });

  describe('mirror controller (follow mode)', () => {
    let session: OvsdbSession;
    let controller: MirrorController;
    const portNames = (m: MirrorView | undefined, col: 'selectSrcPort' | 'selectDstPort') => (m ? m[col].map((p) => p.name).sort() : undefined);
    const mirrorNamed = (name: string) => viewMirrors(session.tables()).find((m) => m.name === name && m.bridge === br);

    before(async () => {
      session = await openOvsdbSession({ url: sb.dbUrl }, { reconnect: true, probeIntervalMs: 1000 });
      controller = new MirrorController(session, { owner: 'mf-follow' });
    });
    after(async () => {
      await controller?.stop({ removeMirrors: true });
      await session?.close();
    });

    it('follows a VM port that appears after the mirror, and one that goes, within a second', async () => {
      const lateUuid = `late-${sb.suffix}`;
      const spec: MirrorSpec = { bridge: br, name: 'follow', selection: { kind: 'vms', vms: [vmA.vmUuid, lateUuid] }, direction: 'both', output: { kind: 'internal' } };
      controller.follow([spec]);
      await waitFor(() => JSON.stringify(portNames(mirrorNamed('follow'), 'selectSrcPort')) === JSON.stringify([vmA.hostIface]), { what: 'mirror follow with vm A' });
      const vmC = await sb.addVm({ name: sb.uniqueName('c'), bridge: br, ip: '10.61.0.3/24', vmUuid: lateUuid });
      const t0 = Date.now();
      await waitFor(() => portNames(mirrorNamed('follow'), 'selectSrcPort')?.includes(vmC.hostIface), { what: 'late VM port in mirror', timeoutMs: 5000 });
      expect(Date.now() - t0).to.be.below(1000);
      expect(portNames(mirrorNamed('follow'), 'selectDstPort')).to.include(vmC.hostIface);
      await sb.removeVm(vmC);
      await waitFor(() => !portNames(mirrorNamed('follow'), 'selectSrcPort')?.includes(vmC.hostIface), { what: 'gone VM port out of mirror', timeoutMs: 5000 });
      // all selected ports gone: the mirror stays, valid, with nothing selected
      await controller.settled();
      expect(mirrorNamed('follow')).to.not.equal(undefined);
    });

    it('reconnects after ovsdb-server is killed and restarted, and restores a mirror deleted behind its back', async () => {
      let reconnected = false;
      session.client.once('reconnected', () => (reconnected = true));
      await sb.killOvsdb();
      await sb.restartOvsdb();
      await waitFor(() => reconnected, { what: 'client reconnected', timeoutMs: 20_000 });
      const m = mirrorNamed('follow')!;
      await sb.vsctl(['remove', 'Bridge', br, 'mirrors', m.uuid]);
      await waitFor(
        async () => {
          const now = (await listJson(sb)).find((x) => x.name === 'follow' && x.owner === 'mf-follow');
          return now && now.uuid !== m.uuid && now.selectSrcPort.map((p) => p.name).includes(vmA.hostIface);
        },
        { what: 'mirror restored', timeoutMs: 5000 },
      );
    });

    it('loses no update when two writers race on one bridge', async () => {
      const other = await openOvsdbSession({ url: sb.tcpUrl }, { reconnect: false });
      const c2 = new MirrorController(other, { owner: 'mf-race' });
      try {
        const mk = (i: number): MirrorSpec => ({ bridge: br, name: `race-${i}`, selection: { kind: 'ports', ports: [vmB.hostIface] }, direction: 'to-vm', output: { kind: 'internal' } });
        const results = await Promise.all([
          ...[0, 1, 2, 3, 4].map((i) => controller.apply(mk(i))),
          ...[5, 6, 7, 8, 9].map((i) => c2.apply(mk(i))),
          // a third writer changes the bridge at the same time
          sb.vsctl(['set', 'Bridge', br, `external_ids:race=${sb.suffix}`]),
        ]);
        expect(results.length).to.equal(11);
        const all = await listJson(sb);
        for (let i = 0; i < 10; i++) {
          const m = all.filter((x) => x.name === `race-${i}` && x.bridge === br);
          expect(m, `race-${i}`).to.have.length(1);
          expect(m[0]!.selectDstPort.map((p) => p.name)).to.deep.equal([vmB.hostIface]);
          expect(m[0]!.outputPort?.name).to.match(/^mf/);
        }
        expect(await sb.vsctl(['get', 'Bridge', br, 'external_ids:race'])).to.contain(sb.suffix);
        for (let i = 5; i < 10; i++) await c2.remove(br, `race-${i}`);
        for (let i = 0; i < 5; i++) await controller.remove(br, `race-${i}`);
      } finally {
        await c2.stop();
        await other.close();
      }
    });

    it('re-plans when another writer changes what it read between planning and commit', async () => {
      const s2 = await openOvsdbSession({ url: sb.dbUrl }, { reconnect: false });
      const extra = sb.uniqueName('x');
      let calls = 0;
      const racing = {
        ...s2,
        transact: async (ops: Parameters<OvsdbSession['transact']>[0]) => {
          // the first attempt was planned on a Bridge.ports that another writer now changes
          if (calls++ === 0) await sb.vsctl(['add-port', br, extra, '--', 'set', 'Interface', extra, 'type=internal']);
          return s2.transact(ops);
        },
      };
      const c = new MirrorController(racing, { owner: 'mf-conflict' });
      try {
        const r = await c.apply({ bridge: br, name: 'conflict', selection: { kind: 'all' }, direction: 'from-vm', output: { kind: 'vlan', vlan: 99 } });
        expect(r.attempts).to.equal(2);
        const m = (await listJson(sb)).find((x) => x.name === 'conflict')!;
        // 'all' in one direction lists every port: the one added by the racing writer is not lost
        expect(m.selectSrcPort.map((p) => p.name)).to.include(extra);
        await c.remove(br, 'conflict');
      } finally {
        await c.stop();
        await s2.close();
        await sb.vsctl(['del-port', br, extra]);
      }
    });

    it('removes orphans it owned on start, and nothing else', async () => {
      const c3session = await openOvsdbSession({ url: sb.dbUrl }, { reconnect: false });
      const c3 = new MirrorController(c3session, { owner: 'mf-orphan' });
      try {
        await c3.apply({ bridge: br, name: 'orphan-1', selection: { kind: 'all' }, direction: 'both', output: { kind: 'internal' } });
        await c3.apply({ bridge: br, name: 'keep-1', selection: { kind: 'all' }, direction: 'both', output: { kind: 'internal' } });
        const before = await listJson(sb);
        await c3.removeOrphans([{ bridge: br, name: 'keep-1' }]);
        const after = await listJson(sb);
        expect(after.find((m) => m.name === 'orphan-1')).to.equal(undefined);
        expect(after.find((m) => m.name === 'keep-1')).to.not.equal(undefined);
        expect(after.filter((m) => m.owner !== 'mf-orphan')).to.deep.equal(before.filter((m) => m.owner !== 'mf-orphan').map((m) => ({ ...m, statistics: after.find((x) => x.uuid === m.uuid)!.statistics })));
        await c3.remove(br, 'keep-1');
      } finally {
        await c3.stop();
        await c3session.close();
      }
    });
  });
});
