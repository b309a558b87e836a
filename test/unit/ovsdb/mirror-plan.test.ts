import { expect } from 'chai';
import { uuidSet, wireMap, wireSet } from '../../../src/ovsdb/datum.js';
import {
  MirrorPlanError,
  observedFromTables,
  planDelete,
  planMirror,
  planOrphanCleanup,
  type ObservedState,
  type Plan,
} from '../../../src/ovsdb/mirror-plan.js';
import { internalPortName, specHash, type MirrorDirection, type MirrorSpec } from '../../../src/ovsdb/mirror-spec.js';
import type { Operation } from '../../../src/ovsdb/ops.js';
import { applyOps, Fixture, WaitFailed, type Tables } from './mirror-fixtures.js';

const OWNER = 'mirrorflow';
const OPTS = { owner: OWNER };
const MF = internalPortName('br0', 'm1');

/**
 * br0: vnet0, vnet1 (VM vm-a, two NICs, vm-uuid), vnet2 (VM vm-b, libvirt vm-id), span0 (plain).
 * br1: vnet9 (VM vm-c).
 */
function world(opts: { ovs?: boolean } = {}) {
  const fx = new Fixture(opts);
  const br0 = fx.bridge('br0');
  const vnet0 = fx.port(br0, 'vnet0', { ids: { 'vm-uuid': 'vm-a', 'iface-id': 'if-a0', 'attached-mac': 'fa:16:3e:00:00:a0' } });
  const vnet1 = fx.port(br0, 'vnet1', { ids: { 'vm-uuid': 'vm-a', 'iface-id': 'if-a1', 'attached-mac': 'fa:16:3e:00:00:a1' } });
  const vnet2 = fx.port(br0, 'vnet2', { ids: { 'vm-id': 'vm-b', 'iface-id': 'if-b0', 'attached-mac': 'fa:16:3e:00:00:b0' } });
  const span0 = fx.port(br0, 'span0');
  const br1 = fx.bridge('br1');
  const vnet9 = fx.port(br1, 'vnet9', { ids: { 'vm-uuid': 'vm-c' } });
  return { fx, br0, br1, vnet0, vnet1, vnet2, span0, vnet9 };
}

function spec(over: Partial<MirrorSpec> = {}): MirrorSpec {
  return {
    bridge: 'br0',
    name: 'm1',
    selection: { kind: 'ports', ports: ['vnet0'] },
    direction: 'both',
    output: { kind: 'internal' },
    ...over,
  };
}

const obs = (t: Tables): ObservedState => observedFromTables(t);
const opsOf = (p: { ops: Operation[] }, op: Operation['op'], table?: string) =>
  p.ops.filter((o) => o.op === op && (table === undefined || ('table' in o && o.table === table)));
type InsertOp = Extract<Operation, { op: 'insert' }>;
type UpdateOp = Extract<Operation, { op: 'update' }>;
type MutateOp = Extract<Operation, { op: 'mutate' }>;
type WaitOp = Extract<Operation, { op: 'wait' }>;

function mirrorInsert(p: Plan): InsertOp {
  const ins = opsOf(p, 'insert', 'Mirror');
  expect(ins, 'one Mirror insert').to.have.length(1);
  return ins[0] as InsertOp;
}

function caught(fn: () => unknown): MirrorPlanError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(MirrorPlanError);
    return e as MirrorPlanError;
  }
  throw new Error('expected a MirrorPlanError');
}

/** Plans, applies (checking every wait against the state planned from), plans again: must be a no-op. */
function converge(tables: Tables, s: MirrorSpec, opts: { owner: string; allowMissing?: boolean } = OPTS): { tables: Tables; first: Plan; second: Plan } {
  const first = planMirror(s, obs(tables), opts);
  const applied = applyOps(tables, first.ops).tables;
  const second = planMirror(s, obs(applied), opts);
  expect(second.ops, `second plan of ${s.name} is a no-op`).to.deep.equal([]);
  expect(second.changed).to.equal(false);
  return { tables: applied, first, second };
}

function onlyMirror(t: Tables) {
  const mirrors = [...obs(t).mirrors.values()];
  expect(mirrors).to.have.length(1);
  return mirrors[0] as NonNullable<(typeof mirrors)[0]>;
}

describe('ovsdb/mirror-plan', () => {
  describe('observedFromTables', () => {
    it('reads wire rows into typed views with indexes', () => {
      const w = world();
      w.fx.mirror(w.br0, 'x', { owner: OWNER, select_src_port: ['uuid', w.vnet0], output_port: ['uuid', w.span0], snaplen: 100, select_vlan: ['set', [20, 10]] });
      const o = obs(w.fx.tables);
      expect(o.openVswitch).to.deep.equal({ uuid: 'ovs-0', bridges: [w.br0, w.br1].sort(), nextCfg: 7, curCfg: 7 });
      expect(o.bridgeByName.get('br0')).to.equal(w.br0);
      expect(o.bridges.get(w.br0)?.ports).to.deep.equal([w.vnet0, w.vnet1, w.vnet2, w.span0].sort());
      expect(o.portByName.get('vnet2')).to.equal(w.vnet2);
      expect(o.portOfInterface.get('if-vnet1')).to.equal(w.vnet1);
      expect(o.interfaces.get('if-vnet0')?.externalIds['vm-uuid']).to.equal('vm-a');
      const m = [...o.mirrors.values()][0];
      expect(m).to.deep.include({ name: 'x', selectAll: false, selectSrcPort: [w.vnet0], selectDstPort: [], selectVlan: [10, 20], outputPort: w.span0, snaplen: 100 });
      expect(m?.outputVlan).to.equal(undefined);
      expect(m?.externalIds).to.deep.equal({ 'mirrorflow-owner': OWNER });
    });

    it('tolerates missing tables and columns', () => {
      const o = observedFromTables(new Map([['Bridge', new Map([['b1', { name: 'br9' }]])]]));
      expect(o.openVswitch).to.equal(undefined);
      expect(o.bridges.get('b1')).to.deep.equal({ uuid: 'b1', name: 'br9', ports: [], mirrors: [], datapathType: '', externalIds: {} });
    });
  });

  describe('planMirror: create', () => {
    it('creates an internal output port and a mirror in one guarded transaction', () => {
      const w = world();
      const s = spec({ selection: { kind: 'all' } });
      const p = planMirror(s, obs(w.fx.tables), OPTS);
      const bridgePorts = uuidSet([w.vnet0, w.vnet1, w.vnet2, w.span0].sort());
      const mark = wireMap({ 'mirrorflow-owner': OWNER, 'mirrorflow-mirror': 'm1' });
      expect(p.ops).to.deep.equal([
        { op: 'comment', comment: 'mirrorflow: create mirror m1 on br0 (owner mirrorflow)' },
        {
          op: 'wait',
          table: 'Bridge',
          where: [['_uuid', '==', ['uuid', w.br0]]],
          columns: ['ports', 'mirrors'],
          until: '==',
          rows: [{ ports: bridgePorts, mirrors: uuidSet([]) }],
          timeout: 0,
        },
        { op: 'insert', table: 'Interface', row: { name: MF, type: 'internal', external_ids: mark }, 'uuid-name': 'mf_iface' },
        { op: 'insert', table: 'Port', row: { name: MF, interfaces: ['set', [['named-uuid', 'mf_iface']]], external_ids: mark }, 'uuid-name': 'mf_port' },
        {
          op: 'insert',
          table: 'Mirror',
          row: {
            name: 'm1',
            select_all: true,
            select_src_port: uuidSet([]),
            select_dst_port: uuidSet([]),
            select_vlan: wireSet([]),
            output_port: ['set', [['named-uuid', 'mf_port']]],
            output_vlan: wireSet([]),
            snaplen: wireSet([]),
            external_ids: wireMap([
              ['mirrorflow-owner', OWNER],
              ['mirrorflow-spec', specHash(s)],
            ]),
          },
          'uuid-name': 'mf_mirror',
        },
        {
          op: 'mutate',
          table: 'Bridge',
          where: [['_uuid', '==', ['uuid', w.br0]]],
          mutations: [
            ['ports', 'insert', ['set', [['named-uuid', 'mf_port']]]],
            ['mirrors', 'insert', ['set', [['named-uuid', 'mf_mirror']]]],
          ],
        },
        { op: 'mutate', table: 'Open_vSwitch', where: [['_uuid', '==', ['uuid', 'ovs-0']]], mutations: [['next_cfg', '+=', 1]] },
        { op: 'select', table: 'Open_vSwitch', where: [['_uuid', '==', ['uuid', 'ovs-0']]], columns: ['next_cfg'] },
      ]);
      expect(p).to.deep.include({ changed: true, action: 'create', createsOutputPort: true, outputPort: MF, bumpsNextCfg: true, nextCfgOpIndex: 7, missing: [] });
      expect(p.selectedPorts).to.deep.equal(['span0', 'vnet0', 'vnet1', 'vnet2']);
      expect(p.summary[0]).to.match(/^create mirror m1 on br0: select all ports, direction both, output port mf/);

      const { tables, named, results } = applyOps(w.fx.tables, p.ops);
      expect(results[7]).to.deep.equal({ rows: [{ next_cfg: 8 }] });
      const o = obs(tables);
      const portId = named.get('mf_port') as string;
      expect(o.bridges.get(w.br0)?.ports).to.include(portId);
      expect(o.ports.get(portId)?.name).to.equal(MF);
      expect(onlyMirror(tables).outputPort).to.equal(portId);
    });

    const directions: [MirrorDirection, boolean, boolean][] = [
      ['both', true, true],
      ['from-vm', true, false],
      ['to-vm', false, true],
    ];
    for (const [direction, src, dst] of directions) {
      it(`ports selection, direction ${direction}: src=${src} dst=${dst}, existing output port`, () => {
        const w = world();
        const s = spec({ selection: { kind: 'ports', ports: ['vnet0', 'vnet2'] }, direction, output: { kind: 'port', port: 'span0' }, snaplen: 256 });
        const p = planMirror(s, obs(w.fx.tables), OPTS);
        const row = mirrorInsert(p).row;
        const sel = uuidSet([w.vnet0, w.vnet2].sort());
        expect(row.select_all).to.equal(false);
        expect(row.select_src_port).to.deep.equal(src ? sel : uuidSet([]));
        expect(row.select_dst_port).to.deep.equal(dst ? sel : uuidSet([]));
        expect(row.output_port).to.deep.equal(['set', [['uuid', w.span0]]]);
        expect(row.snaplen).to.deep.equal(['set', [256]]);
        expect(opsOf(p, 'insert', 'Port')).to.have.length(0);
        expect(p.selectedPorts).to.deep.equal(['vnet0', 'vnet2']);
        expect(p.outputPort).to.equal('span0');
        expect(p.createsOutputPort).to.equal(false);
        converge(w.fx.tables, s);
      });

      it(`vms selection, direction ${direction}: all NICs of the VM on the bridge`, () => {
        const w = world();
        const s = spec({ selection: { kind: 'vms', vms: ['vm-a'] }, direction });
        const p = planMirror(s, obs(w.fx.tables), OPTS);
        const row = mirrorInsert(p).row;
        const sel = uuidSet([w.vnet0, w.vnet1].sort());
        expect(row.select_src_port).to.deep.equal(src ? sel : uuidSet([]));
        expect(row.select_dst_port).to.deep.equal(dst ? sel : uuidSet([]));
        expect(p.selectedPorts).to.deep.equal(['vnet0', 'vnet1']);
        converge(w.fx.tables, s);
      });
    }

    it('matches VMs by vm-uuid, vm-id, iface-id and attached-mac (any case)', () => {
      const w = world();
      const cases: [string, string[]][] = [
        ['vm-a', ['vnet0', 'vnet1']],
        ['vm-b', ['vnet2']],
        ['if-a1', ['vnet1']],
        ['FA:16:3E:00:00:B0', ['vnet2']],
        ['fa:16:3e:00:00:a0', ['vnet0']],
      ];
      for (const [vm, ports] of cases) {
        const p = planMirror(spec({ selection: { kind: 'vms', vms: [vm] } }), obs(w.fx.tables), OPTS);
        expect(p.selectedPorts, vm).to.deep.equal(ports);
      }
      const p = planMirror(spec({ selection: { kind: 'vms', vms: ['vm-a', 'if-a0', 'vm-b'] } }), obs(w.fx.tables), OPTS);
      expect(p.selectedPorts).to.deep.equal(['vnet0', 'vnet1', 'vnet2']);
      expect(mirrorInsert(p).row.select_src_port).to.deep.equal(uuidSet([w.vnet0, w.vnet1, w.vnet2].sort()));
    });

    it('vlans selection with direction both: select_all plus select_vlan, output VLAN', () => {
      const w = world();
      const s = spec({ selection: { kind: 'vlans', vlans: [30, 10] }, output: { kind: 'vlan', vlan: 999 } });
      const p = planMirror(s, obs(w.fx.tables), OPTS);
      const row = mirrorInsert(p).row;
      expect(row.select_all).to.equal(true);
      expect(row.select_vlan).to.deep.equal(wireSet([10, 30]));
      expect(row.output_vlan).to.deep.equal(['set', [999]]);
      expect(row.output_port).to.deep.equal(wireSet([]));
      expect(p.outputPort).to.equal(undefined);
      expect(p.outputVlan).to.equal(999);
      expect(opsOf(p, 'insert', 'Port')).to.have.length(0);
      converge(w.fx.tables, s);
    });

    it('all / vlans with one direction list every port explicitly except the output port and owned ports', () => {
      const w = world();
      w.fx.port(w.br0, 'mfother', { portIds: { 'mirrorflow-owner': OWNER, 'mirrorflow-mirror': 'other' } });
      const p = planMirror(spec({ selection: { kind: 'vlans', vlans: [5] }, direction: 'from-vm', output: { kind: 'port', port: 'span0' } }), obs(w.fx.tables), OPTS);
      const row = mirrorInsert(p).row;
      expect(row.select_all).to.equal(false);
      expect(row.select_vlan).to.deep.equal(wireSet([5]));
      expect(row.select_src_port).to.deep.equal(uuidSet([w.vnet0, w.vnet1, w.vnet2].sort()));
      expect(row.select_dst_port).to.deep.equal(uuidSet([]));
      expect(p.selectedPorts).to.deep.equal(['vnet0', 'vnet1', 'vnet2']);

      const q = planMirror(spec({ selection: { kind: 'all' }, direction: 'to-vm' }), obs(w.fx.tables), OPTS);
      const qrow = mirrorInsert(q).row;
      expect(qrow.select_all).to.equal(false);
      expect(qrow.select_dst_port).to.deep.equal(uuidSet([w.vnet0, w.vnet1, w.vnet2, w.span0].sort()));
      expect(qrow.select_src_port).to.deep.equal(uuidSet([]));
    });

    it('uses a user-named internal port', () => {
      const w = world();
      const s = spec({ output: { kind: 'internal', port: 'cap0' } });
      const p = planMirror(s, obs(w.fx.tables), OPTS);
      expect((opsOf(p, 'insert', 'Port')[0] as InsertOp).row.name).to.equal('cap0');
      expect((opsOf(p, 'insert', 'Interface')[0] as InsertOp).row.type).to.equal('internal');
      expect(p.outputPort).to.equal('cap0');
      converge(w.fx.tables, s);
    });

    it('leaves out the ovs next_cfg bump when there is no Open_vSwitch row', () => {
      const w = world({ ovs: false });
      const p = planMirror(spec(), obs(w.fx.tables), OPTS);
      expect(p.bumpsNextCfg).to.equal(false);
      expect(p.nextCfgOpIndex).to.equal(undefined);
      expect(opsOf(p, 'mutate', 'Open_vSwitch')).to.have.length(0);
      expect(opsOf(p, 'select')).to.have.length(0);
      expect(p.changed).to.equal(true);
    });
  });

  describe('planMirror: output port is never selected', () => {
    it('drops a named output port from a ports selection', () => {
      const w = world();
      const p = planMirror(spec({ selection: { kind: 'ports', ports: ['vnet0', 'span0'] }, output: { kind: 'port', port: 'span0' } }), obs(w.fx.tables), OPTS);
      const row = mirrorInsert(p).row;
      expect(row.select_src_port).to.deep.equal(uuidSet([w.vnet0]));
      expect(row.select_dst_port).to.deep.equal(uuidSet([w.vnet0]));
      expect(p.selectedPorts).to.deep.equal(['vnet0']);
      expect(p.summary.join('\n')).to.include('leave output port span0 out of the selection');
    });

    it('drops the output port from a VM selection', () => {
      const w = world();
      const p = planMirror(spec({ selection: { kind: 'vms', vms: ['vm-a'] }, output: { kind: 'port', port: 'vnet1' } }), obs(w.fx.tables), OPTS);
      expect(mirrorInsert(p).row.select_src_port).to.deep.equal(uuidSet([w.vnet0]));
      expect(p.selectedPorts).to.deep.equal(['vnet0']);
    });

    it('drops a reused internal output port and keeps select_all for all', () => {
      const w = world();
      const { tables } = converge(w.fx.tables, spec({ selection: { kind: 'all' } }));
      const o = obs(tables);
      const mf = o.portByName.get(MF) as string;
      // Even a user listing the generated port by name does not get it selected.
      const p = planMirror(spec({ selection: { kind: 'ports', ports: ['vnet0', MF] } }), o, OPTS);
      const upd = opsOf(p, 'update', 'Mirror')[0] as UpdateOp;
      expect(upd.row.select_src_port).to.deep.equal(uuidSet([w.vnet0]));
      expect(p.selectedPorts).to.deep.equal(['vnet0']);
      expect(p.selectedPorts).to.not.include(MF);
      expect(onlyMirror(tables).outputPort).to.equal(mf);
      expect(planMirror(spec({ selection: { kind: 'all' } }), o, OPTS).selectedPorts).to.not.include(MF);
    });
  });

  describe('planMirror: idempotence and updates', () => {
    it('a second plan after applying is empty for every selection and output kind', () => {
      const specs: MirrorSpec[] = [
        spec({ selection: { kind: 'all' } }),
        spec({ selection: { kind: 'ports', ports: ['vnet0', 'vnet1'] }, direction: 'from-vm', output: { kind: 'port', port: 'span0' } }),
        spec({ selection: { kind: 'vms', vms: ['vm-b'] }, direction: 'to-vm', snaplen: 64 }),
        spec({ selection: { kind: 'vlans', vlans: [1, 2] }, output: { kind: 'vlan', vlan: 7 } }),
      ];
      for (const s of specs) {
        const { first, second } = converge(world().fx.tables, s);
        expect(first.changed).to.equal(true);
        expect(second).to.deep.include({ action: 'none', changed: false, summary: [], bumpsNextCfg: false });
        expect(second.mirrorUuid).to.be.a('string');
        expect(second.selectedPorts).to.deep.equal(first.selectedPorts);
        expect(second.outputPort).to.equal(first.outputPort);
      }
    });

    it('updates exactly the columns that changed, guarded by a wait on the observed row', () => {
      const w = world();
      const s1 = spec({ selection: { kind: 'ports', ports: ['vnet0', 'vnet1'] } });
      const { tables } = converge(w.fx.tables, s1);
      const before = onlyMirror(tables);

      const s2 = { ...s1, direction: 'from-vm' as const };
      const p = planMirror(s2, obs(tables), OPTS);
      expect(p.action).to.equal('update');
      expect(p.mirrorUuid).to.equal(before.uuid);
      const upd = opsOf(p, 'update');
      expect(upd).to.have.length(1);
      expect(upd[0]).to.deep.equal({
        op: 'update',
        table: 'Mirror',
        where: [['_uuid', '==', ['uuid', before.uuid]]],
        row: {
          select_dst_port: uuidSet([]),
          external_ids: wireMap([
            ['mirrorflow-owner', OWNER],
            ['mirrorflow-spec', specHash(s2)],
          ]),
        },
      });
      expect(opsOf(p, 'insert')).to.have.length(0);
      expect(opsOf(p, 'mutate', 'Bridge')).to.have.length(0);
      const mwait = opsOf(p, 'wait', 'Mirror')[0] as WaitOp;
      expect(mwait.columns).to.include.members(['select_src_port', 'select_dst_port', 'output_port', 'external_ids']);
      expect(mwait.columns).to.not.include('statistics');
      expect(mwait.rows[0]?.select_dst_port).to.deep.equal(uuidSet(before.selectDstPort));
      expect(mwait.rows[0]?.output_port).to.deep.equal(['set', [['uuid', before.outputPort as string]]]);
      expect(p.summary[0]).to.match(/^update mirror m1 on br0 \(select_dst_port, external_ids\)/);
      const after = converge(tables, s2).tables;
      expect(onlyMirror(after).selectDstPort).to.deep.equal([]);
      expect(onlyMirror(after).selectSrcPort).to.deep.equal([w.vnet0, w.vnet1].sort());

      const s3 = { ...s2, snaplen: 100 };
      const p3 = planMirror(s3, obs(after), OPTS);
      expect(Object.keys((opsOf(p3, 'update')[0] as UpdateOp).row).sort()).to.deep.equal(['external_ids', 'snaplen']);
    });

    it('keeps external_ids keys others added to an owned mirror', () => {
      const w = world();
      const s = spec();
      const { tables } = converge(w.fx.tables, s);
      const m = onlyMirror(tables);
      (tables.get('Mirror')?.get(m.uuid) as Record<string, unknown>).external_ids = wireMap({ ...m.externalIds, note: 'hi' });
      expect(planMirror(s, obs(tables), OPTS).ops).to.deep.equal([]);
      const p = planMirror({ ...s, snaplen: 50 }, obs(tables), OPTS);
      const ids = (opsOf(p, 'update')[0] as UpdateOp).row.external_ids as ['map', [string, string][]];
      expect(Object.fromEntries(ids[1])).to.deep.include({ note: 'hi', 'mirrorflow-owner': OWNER });
    });

    it('switching output internal → vlan removes the internal port; back again recreates it', () => {
      const w = world();
      const s1 = spec();
      const t1 = converge(w.fx.tables, s1).tables;
      const mf = obs(t1).portByName.get(MF) as string;
      const s2 = spec({ output: { kind: 'vlan', vlan: 5 } });
      const p = planMirror(s2, obs(t1), OPTS);
      expect((opsOf(p, 'update')[0] as UpdateOp).row).to.include.keys('output_port', 'output_vlan');
      expect((opsOf(p, 'update')[0] as UpdateOp).row.output_port).to.deep.equal(wireSet([]));
      const mut = opsOf(p, 'mutate', 'Bridge')[0] as MutateOp;
      expect(mut.mutations).to.deep.equal([['ports', 'delete', uuidSet([mf])]]);
      const t2 = converge(t1, s2).tables;
      expect(obs(t2).portByName.has(MF)).to.equal(false);
      const p3 = planMirror(s1, obs(t2), OPTS);
      expect(p3.createsOutputPort).to.equal(true);
      expect((opsOf(p3, 'update')[0] as UpdateOp).row.output_port).to.deep.equal(['set', [['named-uuid', 'mf_port']]]);
      converge(t2, s1);
    });

    it('re-plans when the selected VM moves to other ports (follow mode)', () => {
      const w = world();
      const s = spec({ selection: { kind: 'vms', vms: ['vm-b'] } });
      const t1 = converge(w.fx.tables, s).tables;
      // vm-b gets a second NIC.
      const f2 = new Fixture();
      f2.tables.clear();
      for (const [k, v] of t1) f2.tables.set(k, v);
      const vnet3 = f2.port(w.br0, 'vnet3', { ids: { 'vm-id': 'vm-b' } });
      const p = planMirror(s, obs(f2.tables), OPTS);
      expect(p.selectedPorts).to.deep.equal(['vnet2', 'vnet3']);
      expect((opsOf(p, 'update')[0] as UpdateOp).row).to.deep.equal({
        select_src_port: uuidSet([w.vnet2, vnet3].sort()),
        select_dst_port: uuidSet([w.vnet2, vnet3].sort()),
      });
    });
  });

  describe('planMirror: errors', () => {
    it('bridge not found', () => {
      const e = caught(() => planMirror(spec({ bridge: 'br-x' }), obs(world().fx.tables), OPTS));
      expect(e.code).to.equal('bridge-not-found');
      expect(e.message).to.equal('ovsdb: bridge not found (bridge=br-x)');
      expect(e.retriable).to.equal(false);
    });

    it('port not found, or on another bridge, names the port', () => {
      const o = obs(world().fx.tables);
      const e = caught(() => planMirror(spec({ selection: { kind: 'ports', ports: ['vnet0', 'nope'] } }), o, OPTS));
      expect(e.code).to.equal('port-not-found');
      expect(e.message).to.equal('ovsdb: port not found on bridge (bridge=br0, port=nope)');
      const e2 = caught(() => planMirror(spec({ selection: { kind: 'ports', ports: ['vnet9'] } }), o, OPTS));
      expect(e2.message).to.include('port=vnet9');
      const e3 = caught(() => planMirror(spec({ output: { kind: 'port', port: 'vnet9' } }), o, OPTS));
      expect(e3.code).to.equal('port-not-found');
      expect(e3.message).to.equal('ovsdb: output port not found on bridge (bridge=br0, port=vnet9)');
    });

    it('VM not found (or only on another bridge) names the VM', () => {
      const o = obs(world().fx.tables);
      const e = caught(() => planMirror(spec({ selection: { kind: 'vms', vms: ['vm-a', 'vm-zzz'] } }), o, OPTS));
      expect(e.code).to.equal('vm-not-found');
      expect(e.message).to.equal('ovsdb: VM has no interface on bridge (bridge=br0, vm=vm-zzz)');
      expect(caught(() => planMirror(spec({ selection: { kind: 'vms', vms: ['vm-c'] } }), o, OPTS)).message).to.include('vm=vm-c');
    });

    it('allowMissing: a VM without interfaces leaves a valid, empty mirror', () => {
      const w = world();
      const s = spec({ selection: { kind: 'vms', vms: ['vm-gone'] } });
      const { first } = converge(w.fx.tables, s, { owner: OWNER, allowMissing: true });
      const row = mirrorInsert(first).row;
      expect(row.select_all).to.equal(false);
      expect(row.select_src_port).to.deep.equal(uuidSet([]));
      expect(row.select_dst_port).to.deep.equal(uuidSet([]));
      expect(row.select_vlan).to.deep.equal(wireSet([]));
      expect(first.missing).to.deep.equal(['vm-gone']);
      expect(first.selectedPorts).to.deep.equal([]);

      // The VM's last NIC goes away from an existing mirror: the update empties the port sets.
      const t1 = converge(w.fx.tables, spec({ selection: { kind: 'vms', vms: ['vm-b'] } })).tables;
      const br = t1.get('Bridge')?.get(w.br0) as Record<string, unknown>;
      br.ports = uuidSet(obs(t1).bridges.get(w.br0)?.ports.filter((id) => id !== w.vnet2) as string[]);
      const p = planMirror(spec({ selection: { kind: 'vms', vms: ['vm-b'] } }), obs(t1), { owner: OWNER, allowMissing: true });
      expect((opsOf(p, 'update')[0] as UpdateOp).row).to.deep.equal({ select_src_port: uuidSet([]), select_dst_port: uuidSet([]) });
      expect(p.missing).to.deep.equal(['vm-b']);
      expect(() => planMirror(spec({ selection: { kind: 'vms', vms: ['vm-b'] } }), obs(t1), OPTS)).to.throw(MirrorPlanError, 'vm=vm-b');
    });

    it('allowMissing also covers named ports', () => {
      const p = planMirror(spec({ selection: { kind: 'ports', ports: ['vnet0', 'gone0'] } }), obs(world().fx.tables), { owner: OWNER, allowMissing: true });
      expect(p.selectedPorts).to.deep.equal(['vnet0']);
      expect(p.missing).to.deep.equal(['gone0']);
    });

    it('a mirror with the same name that we do not own is never touched', () => {
      const w = world();
      w.fx.mirror(w.br0, 'm1', { output_port: ['uuid', w.span0] });
      const e = caught(() => planMirror(spec(), obs(w.fx.tables), OPTS));
      expect(e.code).to.equal('mirror-name-taken');
      expect(e.message).to.equal('ovsdb: mirror name taken by a mirror mirrorflow does not own (bridge=br0, mirror=m1)');

      const w2 = world();
      w2.fx.mirror(w2.br0, 'm1', { owner: 'someone-else' });
      expect(caught(() => planMirror(spec(), obs(w2.fx.tables), OPTS)).message).to.include('owner=someone-else');
      // The same name on another bridge is fine.
      expect(planMirror(spec({ bridge: 'br1', selection: { kind: 'all' } }), obs(w.fx.tables), OPTS).action).to.equal('create');
    });

    it('an internal port name used by a port we do not own is refused', () => {
      const w = world();
      w.fx.port(w.br1, 'cap0');
      const e = caught(() => planMirror(spec({ output: { kind: 'internal', port: 'cap0' } }), obs(w.fx.tables), OPTS));
      expect(e.code).to.equal('port-name-taken');
      expect(e.message).to.include('port=cap0');
      // Owned, but for another mirror.
      const w2 = world();
      w2.fx.port(w2.br0, 'cap0', { portIds: { 'mirrorflow-owner': OWNER, 'mirrorflow-mirror': 'm2' } });
      expect(caught(() => planMirror(spec({ output: { kind: 'internal', port: 'cap0' } }), obs(w2.fx.tables), OPTS)).message).to.include('usedBy=m2');
    });

    it('an empty owner id is refused', () => {
      expect(caught(() => planMirror(spec(), obs(world().fx.tables), { owner: '' })).code).to.equal('invalid-owner');
    });
  });

  describe('planMirror: concurrency guards', () => {
    it('waits on the bridge, the selected VM interfaces and their ports with the observed values', () => {
      const w = world();
      const p = planMirror(spec({ selection: { kind: 'vms', vms: ['vm-a'] } }), obs(w.fx.tables), OPTS);
      const waits = opsOf(p, 'wait') as WaitOp[];
      const bw = waits.find((x) => x.table === 'Bridge') as WaitOp;
      expect(bw.until).to.equal('==');
      expect(bw.rows).to.deep.equal([{ ports: uuidSet([w.vnet0, w.vnet1, w.vnet2, w.span0].sort()), mirrors: uuidSet([]) }]);
      const iw = waits.filter((x) => x.table === 'Interface');
      expect(iw.map((x) => x.where)).to.deep.equal([[['_uuid', '==', ['uuid', 'if-vnet0']]], [['_uuid', '==', ['uuid', 'if-vnet1']]]]);
      expect(iw[0]?.columns).to.deep.equal(['external_ids']);
      expect(iw[0]?.rows).to.deep.equal([{ external_ids: wireMap({ 'vm-uuid': 'vm-a', 'iface-id': 'if-a0', 'attached-mac': 'fa:16:3e:00:00:a0' }) }]);
      const pw = waits.filter((x) => x.table === 'Port');
      expect(pw.map((x) => x.rows)).to.deep.equal([[{ interfaces: uuidSet(['if-vnet0']) }], [{ interfaces: uuidSet(['if-vnet1']) }]]);
      // Waits come before any change.
      const firstChange = p.ops.findIndex((o) => o.op === 'insert' || o.op === 'update' || o.op === 'mutate');
      expect(p.ops.slice(0, firstChange).map((o) => o.op)).to.deep.equal(['comment', 'wait', 'wait', 'wait', 'wait', 'wait']);
    });

    it('a concurrent change to what the plan read makes the transaction fail', () => {
      const w = world();
      const s = spec({ selection: { kind: 'vms', vms: ['vm-a'] } });
      const p = planMirror(s, obs(w.fx.tables), OPTS);
      // Someone adds a port to the bridge.
      const t1 = applyOps(w.fx.tables, []).tables;
      const f = new Fixture();
      f.tables.clear();
      for (const [k, v] of t1) f.tables.set(k, v);
      f.port(w.br0, 'vnet7');
      expect(() => applyOps(f.tables, p.ops)).to.throw(WaitFailed, 'Bridge');
      // Someone re-labels a selected interface.
      const t2 = applyOps(w.fx.tables, []).tables;
      (t2.get('Interface')?.get('if-vnet1') as Record<string, unknown>).external_ids = wireMap({ 'vm-uuid': 'vm-z' });
      expect(() => applyOps(t2, p.ops)).to.throw(WaitFailed, 'Interface');
      // Someone edits the mirror we are about to update.
      const t3 = converge(w.fx.tables, s).tables;
      const pu = planMirror({ ...s, snaplen: 99 }, obs(t3), OPTS);
      const m = onlyMirror(t3);
      (t3.get('Mirror')?.get(m.uuid) as Record<string, unknown>).select_vlan = wireSet([5]);
      expect(() => applyOps(t3, pu.ops)).to.throw(WaitFailed, 'Mirror');
      // Statistics updates do not disturb it.
      const t4 = converge(w.fx.tables, s).tables;
      const pu4 = planMirror({ ...s, snaplen: 99 }, obs(t4), OPTS);
      (t4.get('Mirror')?.get(onlyMirror(t4).uuid) as Record<string, unknown>).statistics = ['map', [['tx_packets', 42]]];
      expect(() => applyOps(t4, pu4.ops)).to.not.throw();
    });
  });

  describe('planDelete', () => {
    it('removes an owned mirror and its internal port', () => {
      const w = world();
      const t1 = converge(w.fx.tables, spec()).tables;
      const o = obs(t1);
      const m = onlyMirror(t1);
      const mf = o.portByName.get(MF) as string;
      const p = planDelete('br0', 'm1', o, OPTS);
      expect(p.changed).to.equal(true);
      expect(p.removedMirrors).to.deep.equal([{ bridge: 'br0', name: 'm1', uuid: m.uuid }]);
      expect(p.removedPorts).to.deep.equal([{ bridge: 'br0', name: MF, uuid: mf }]);
      expect(opsOf(p, 'delete')).to.have.length(0); // garbage collection removes the rows
      expect(opsOf(p, 'mutate', 'Bridge')).to.deep.equal([
        {
          op: 'mutate',
          table: 'Bridge',
          where: [['_uuid', '==', ['uuid', w.br0]]],
          mutations: [
            ['mirrors', 'delete', uuidSet([m.uuid])],
            ['ports', 'delete', uuidSet([mf])],
          ],
        },
      ]);
      expect((opsOf(p, 'wait', 'Mirror')[0] as WaitOp).rows).to.deep.equal([{ name: 'm1', external_ids: wireMap(m.externalIds) }]);
      expect(p.bumpsNextCfg).to.equal(true);
      const t2 = applyOps(t1, p.ops).tables;
      expect(t2.get('Mirror')?.size).to.equal(0);
      expect(obs(t2).portByName.has(MF)).to.equal(false);
      expect(obs(t2).interfaceByName.has(MF)).to.equal(false);
      expect(obs(t2).bridges.get(w.br0)?.ports).to.have.length(4);
    });

    it('refuses a mirror we do not own, reports a missing one', () => {
      const w = world();
      w.fx.mirror(w.br0, 'theirs', { owner: 'other' });
      const e = caught(() => planDelete('br0', 'theirs', obs(w.fx.tables), OPTS));
      expect(e.code).to.equal('mirror-not-owned');
      expect(e.message).to.equal('ovsdb: mirror not owned by mirrorflow (bridge=br0, mirror=theirs, owner=other)');
      const e2 = caught(() => planDelete('br0', 'nope', obs(w.fx.tables), OPTS));
      expect(e2.code).to.equal('mirror-not-found');
      expect(e2.message).to.equal('ovsdb: mirror not found (bridge=br0, mirror=nope)');
      expect(caught(() => planDelete('br-x', 'm1', obs(w.fx.tables), OPTS)).code).to.equal('bridge-not-found');
      expect(planDelete('br0', 'nope', obs(w.fx.tables), { owner: OWNER, allowMissing: true })).to.deep.include({ ops: [], changed: false });
    });

    it('removes a leftover internal port even when its mirror is already gone', () => {
      const w = world();
      const pid = w.fx.port(w.br0, 'mfleft', { portIds: { 'mirrorflow-owner': OWNER, 'mirrorflow-mirror': 'm1' } });
      const p = planDelete('br0', 'm1', obs(w.fx.tables), OPTS);
      expect(p.removedMirrors).to.deep.equal([]);
      expect(p.removedPorts.map((r) => r.uuid)).to.deep.equal([pid]);
    });
  });

  describe('planOrphanCleanup', () => {
    it('removes owned mirrors not kept and owned ports without a mirror; leaves the rest', () => {
      const w = world();
      let t = converge(w.fx.tables, spec({ name: 'keep' })).tables;
      t = converge(t, spec({ name: 'drop' })).tables;
      t = converge(t, spec({ bridge: 'br1', name: 'drop1', selection: { kind: 'all' }, output: { kind: 'vlan', vlan: 3 } })).tables;
      const f = new Fixture();
      f.tables.clear();
      for (const [k, v] of t) f.tables.set(k, v);
      const foreign = f.mirror(w.br0, 'foreign', { owner: 'other' });
      const unmarked = f.mirror(w.br0, 'unmarked');
      const stray = f.port(w.br1, 'mfstray', { portIds: { 'mirrorflow-owner': OWNER, 'mirrorflow-mirror': 'long-gone' } });
      f.port(w.br1, 'otherport', { portIds: { 'mirrorflow-owner': 'other', 'mirrorflow-mirror': 'x' } });

      const o = obs(f.tables);
      const p = planOrphanCleanup(o, [{ bridge: 'br0', name: 'keep' }], OPTS);
      expect(p.removedMirrors.map((r) => `${r.bridge}/${r.name}`).sort()).to.deep.equal(['br0/drop', 'br1/drop1']);
      expect(p.removedPorts.map((r) => `${r.bridge}/${r.name}`).sort()).to.deep.equal([`br0/${internalPortName('br0', 'drop')}`, 'br1/mfstray'].sort());
      expect(p.removedPorts.map((r) => r.uuid)).to.include(stray);
      expect(opsOf(p, 'mutate', 'Bridge')).to.have.length(2);

      const after = applyOps(f.tables, p.ops).tables;
      const left = [...obs(after).mirrors.values()].map((m) => m.name).sort();
      expect(left).to.deep.equal(['foreign', 'keep', 'unmarked']);
      expect(obs(after).mirrors.has(foreign) && obs(after).mirrors.has(unmarked)).to.equal(true);
      expect(obs(after).portByName.has(internalPortName('br0', 'keep'))).to.equal(true);
      expect(obs(after).portByName.has('otherport')).to.equal(true);
      // Nothing left to clean, and the kept mirror still converges.
      expect(planOrphanCleanup(obs(after), [{ bridge: 'br0', name: 'keep' }], OPTS)).to.deep.include({ ops: [], changed: false });
      expect(planMirror(spec({ name: 'keep' }), obs(after), OPTS).ops).to.deep.equal([]);
    });

    it('accepts specs as the keep list and does nothing when all is wanted', () => {
      const w = world();
      const s = spec();
      const t = converge(w.fx.tables, s).tables;
      expect(planOrphanCleanup(obs(t), [s], OPTS).ops).to.deep.equal([]);
      const all = planOrphanCleanup(obs(t), [], OPTS);
      expect(all.removedMirrors.map((r) => r.name)).to.deep.equal(['m1']);
      expect(all.removedPorts.map((r) => r.name)).to.deep.equal([MF]);
      expect(all.ops[0]).to.deep.equal({ op: 'comment', comment: 'mirrorflow: remove orphaned mirrors and ports (owner mirrorflow)' });
    });
  });
});
