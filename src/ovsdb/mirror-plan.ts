/**
 * Mirror planning: desired MirrorSpec + observed OVSDB rows → one transaction as plain data.
 * Pure: no sockets, no clock. The controller transacts the ops; when a `wait` fails (someone else
 * changed what we read) it re-reads its cache and plans again.
 *
 * What a plan reads, it guards with `wait ... until "=="` on the observed values:
 *   - Bridge ports + mirrors of the bridge (membership of every port and mirror we rely on),
 *   - the Mirror row's managed columns when updating it,
 *   - Interface external_ids and Port interfaces behind each selected VM,
 *   - Port external_ids of an owned internal port we reuse or remove, Mirror external_ids of a mirror we remove.
 * Rows disappear by garbage collection: Mirror rows are referenced (strongly) only by Bridge.mirrors,
 * Port rows by Bridge.ports, Interface rows by Port.interfaces, so removing the reference is the delete.
 * Weak references to a removed Port (other mirrors' select_*_port / output_port) are dropped by the server.
 *
 * Direction (ovs-vswitchd.conf.db(5)): select_src_port = ports whose arriving packets are mirrored
 * (sent by the VM: 'from-vm'), select_dst_port = ports whose departing packets are mirrored
 * (sent to the VM: 'to-vm').
 *
 * 'all' and 'vlans' selections: with direction 'both' they use select_all=true (OVS then selects every
 * port of the bridge except the mirror's output port, in both directions). OVS has no select_all per
 * direction, so with 'from-vm' / 'to-vm' they list every port of the bridge explicitly (except the output
 * port and ports mirrorflow owns), which the controller refreshes on port churn. A VLAN selection also
 * sets select_vlan; OVS mirrors a packet only when it is on a selected port AND in a selected VLAN, so
 * select_vlan alone (without ports or select_all) would mirror nothing.
 */
import { kv } from '../errors.js';
import { mapToRecord, namedUuid, optionalAtom, setAtoms, setUuids, uuid, uuidSet, wireMap, wireSet, type WireAtom, type WireDatum } from './datum.js';
import { OvsdbError } from './errors.js';
import { byUuid, commentOp, insertOp, mutateOp, selectOp, updateOp, waitOp, type Mutation, type Operation, type Row } from './ops.js';
import { MIRROR_KEY, OWNER_KEY, SPEC_KEY, internalOutputPortName, isMac, specHash, type MirrorSpec } from './mirror-spec.js';

// ---------------------------------------------------------------------------------------------
// Errors

export type MirrorPlanErrorCode =
  | 'bridge-not-found'
  | 'port-not-found'
  | 'vm-not-found'
  | 'mirror-name-taken'
  | 'port-name-taken'
  | 'mirror-not-owned'
  | 'mirror-not-found'
  | 'invalid-owner';

/** Planning failed because of what is (or is not) in OVSDB. Not retriable by itself; re-plan on change. */
export class MirrorPlanError extends OvsdbError {
  declare readonly code: MirrorPlanErrorCode;
  constructor(code: MirrorPlanErrorCode, what: string, fields: Record<string, unknown>) {
    super(code, `ovsdb: ${what}${kv(fields)}`, { details: fields });
  }
}

// ---------------------------------------------------------------------------------------------
// Observed state

/** Rows in wire form, as the client's cache holds them: table → uuid → column → datum. */
export type TableRows = ReadonlyMap<string, ReadonlyMap<string, Readonly<Record<string, unknown>>>>;

export interface ObservedOpenVswitch {
  uuid: string;
  bridges: string[];
  nextCfg: number;
  curCfg: number;
}
export interface ObservedBridge {
  uuid: string;
  name: string;
  /** Port uuids, sorted. */
  ports: string[];
  /** Mirror uuids, sorted. */
  mirrors: string[];
  datapathType: string;
  externalIds: Record<string, string>;
}
export interface ObservedPort {
  uuid: string;
  name: string;
  interfaces: string[];
  tag?: number;
  externalIds: Record<string, string>;
}
export interface ObservedInterface {
  uuid: string;
  name: string;
  type: string;
  externalIds: Record<string, string>;
  macInUse?: string;
  ofport?: number;
}
export interface ObservedMirror {
  uuid: string;
  name: string;
  selectAll: boolean;
  selectSrcPort: string[];
  selectDstPort: string[];
  selectVlan: number[];
  outputPort?: string;
  outputVlan?: number;
  snaplen?: number;
  externalIds: Record<string, string>;
}
export interface ObservedState {
  openVswitch?: ObservedOpenVswitch;
  bridges: Map<string, ObservedBridge>;
  ports: Map<string, ObservedPort>;
  interfaces: Map<string, ObservedInterface>;
  mirrors: Map<string, ObservedMirror>;
  /** Indexes: bridge / port / interface name → uuid (names are unique in the schema), interface → port. */
  bridgeByName: Map<string, string>;
  portByName: Map<string, string>;
  interfaceByName: Map<string, string>;
  portOfInterface: Map<string, string>;
}

/** Reads the cached wire rows of Open_vSwitch, Bridge, Port, Interface and Mirror into typed views. */
export function observedFromTables(tables: TableRows): ObservedState {
  const rows = (t: string) => tables.get(t) ?? new Map<string, Readonly<Record<string, unknown>>>();
  const state: ObservedState = {
    bridges: new Map(),
    ports: new Map(),
    interfaces: new Map(),
    mirrors: new Map(),
    bridgeByName: new Map(),
    portByName: new Map(),
    interfaceByName: new Map(),
    portOfInterface: new Map(),
  };
  for (const [id, r] of rows('Open_vSwitch')) {
    if (state.openVswitch) break;
    state.openVswitch = { uuid: id, bridges: sortedUuids(r.bridges), nextCfg: intOr(r.next_cfg, 0), curCfg: intOr(r.cur_cfg, 0) };
  }
  for (const [id, r] of rows('Bridge')) {
    const b: ObservedBridge = {
      uuid: id,
      name: String(r.name ?? ''),
      ports: sortedUuids(r.ports),
      mirrors: sortedUuids(r.mirrors),
      datapathType: String(r.datapath_type ?? ''),
      externalIds: mapToRecord(r.external_ids),
    };
    state.bridges.set(id, b);
    state.bridgeByName.set(b.name, id);
  }
  for (const [id, r] of rows('Port')) {
    const p: ObservedPort = { uuid: id, name: String(r.name ?? ''), interfaces: sortedUuids(r.interfaces), externalIds: mapToRecord(r.external_ids) };
    const tag = optionalAtom(r.tag);
    if (typeof tag === 'number') p.tag = tag;
    state.ports.set(id, p);
    state.portByName.set(p.name, id);
    for (const i of p.interfaces) state.portOfInterface.set(i, id);
  }
  for (const [id, r] of rows('Interface')) {
    const i: ObservedInterface = { uuid: id, name: String(r.name ?? ''), type: String(r.type ?? ''), externalIds: mapToRecord(r.external_ids) };
    const mac = optionalAtom(r.mac_in_use);
    if (typeof mac === 'string') i.macInUse = mac;
    const ofport = optionalAtom(r.ofport);
    if (typeof ofport === 'number') i.ofport = ofport;
    state.interfaces.set(id, i);
    state.interfaceByName.set(i.name, id);
  }
  for (const [id, r] of rows('Mirror')) {
    const m: ObservedMirror = {
      uuid: id,
      name: String(r.name ?? ''),
      selectAll: r.select_all === true,
      selectSrcPort: sortedUuids(r.select_src_port),
      selectDstPort: sortedUuids(r.select_dst_port),
      selectVlan: setAtoms(r.select_vlan)
        .filter((a): a is number => typeof a === 'number')
        .sort((a, b) => a - b),
      externalIds: mapToRecord(r.external_ids),
    };
    const out = setUuids(r.output_port)[0];
    if (out !== undefined) m.outputPort = out;
    const ovlan = optionalAtom(r.output_vlan);
    if (typeof ovlan === 'number') m.outputVlan = ovlan;
    const snaplen = optionalAtom(r.snaplen);
    if (typeof snaplen === 'number') m.snaplen = snaplen;
    state.mirrors.set(id, m);
  }
  return state;
}

// ---------------------------------------------------------------------------------------------
// Plans

export interface PlanOptions {
  /** Owner id written to external_ids `mirrorflow-owner`; rows with another owner are never touched. */
  owner: string;
  /**
   * Selected ports / VMs that are not (or no longer) on the bridge are left out instead of failing
   * (follow mode: a VM whose interfaces are all gone leaves a valid mirror with no ports, which OVS
   * keeps but which mirrors nothing). They are listed in `missing`.
   */
  allowMissing?: boolean;
}

interface PlanBase {
  /** The transaction, empty when nothing changes. */
  ops: Operation[];
  changed: boolean;
  /** One line per change, for logs. */
  summary: string[];
  /** true when ops increment Open_vSwitch.next_cfg; wait for cur_cfg >= the new value to know vswitchd applied it. */
  bumpsNextCfg: boolean;
  /** Index of the `select` op whose result row holds the incremented next_cfg. */
  nextCfgOpIndex?: number;
}

export interface Plan extends PlanBase {
  action: 'create' | 'update' | 'none';
  /** uuid of the existing owned Mirror row (absent when the plan creates it). */
  mirrorUuid?: string;
  /** Names of the ports whose traffic is mirrored (for 'all'/'vlans': every port except the output), sorted. */
  selectedPorts: string[];
  /** Name of the output port (absent for an output VLAN). */
  outputPort?: string;
  outputVlan?: number;
  /** true when the plan creates the internal output port. */
  createsOutputPort: boolean;
  /** Ports / VMs of the selection not found on the bridge (only with allowMissing). */
  missing: string[];
}

export interface RemovedRow {
  bridge: string;
  name: string;
  uuid: string;
}

export interface RemovalPlan extends PlanBase {
  removedMirrors: RemovedRow[];
  removedPorts: RemovedRow[];
}

/** Mirror columns mirrorflow manages (statistics changes all the time and is not ours). */
export const MIRROR_COLUMNS = [
  'name',
  'select_all',
  'select_src_port',
  'select_dst_port',
  'select_vlan',
  'output_port',
  'output_vlan',
  'snaplen',
  'external_ids',
] as const;
type MirrorColumn = (typeof MIRROR_COLUMNS)[number];

const N_MIRROR = 'mf_mirror';
const N_PORT = 'mf_port';
const N_IFACE = 'mf_iface';

type OutputRef = { uuid: string } | { named: string };

interface DesiredMirror {
  name: string;
  selectAll: boolean;
  selectSrcPort: string[];
  selectDstPort: string[];
  selectVlan: number[];
  outputPort?: OutputRef;
  outputVlan?: number;
  snaplen?: number;
  externalIds: Record<string, string>;
}

/** Plans create-or-update of one mirror so OVSDB matches `desired`. Throws MirrorPlanError. */
export function planMirror(desired: MirrorSpec, observed: ObservedState, opts: PlanOptions): Plan {
  checkOwner(opts.owner);
  const owner = opts.owner;
  const bridge = findBridge(observed, desired.bridge);
  const waits: Operation[] = [];
  const summary: string[] = [];
  const removeMirrors: ObservedMirror[] = [];
  const removePorts: ObservedPort[] = [];

  // The mirror: ours (update), foreign (refuse) or absent (insert).
  const sameName = bridge.mirrors.map((id) => observed.mirrors.get(id)).filter((m): m is ObservedMirror => m?.name === desired.name);
  const foreign = sameName.find((m) => m.externalIds[OWNER_KEY] !== owner);
  if (foreign) {
    const fields: Record<string, unknown> = { bridge: bridge.name, mirror: desired.name };
    if (foreign.externalIds[OWNER_KEY] !== undefined) fields.owner = foreign.externalIds[OWNER_KEY];
    throw new MirrorPlanError('mirror-name-taken', 'mirror name taken by a mirror mirrorflow does not own', fields);
  }
  const existing = sameName[0];
  for (const extra of sameName.slice(1)) {
    removeMirrors.push(extra);
    summary.push(`remove duplicate mirror ${extra.name} (${extra.uuid}) on ${bridge.name}`);
  }

  // Ports on this bridge that we created for this mirror earlier.
  const bridgePorts = bridge.ports.map((id) => observed.ports.get(id)).filter((p): p is ObservedPort => p !== undefined);
  const ownedForMirror = bridgePorts.filter((p) => isOwned(p.externalIds, owner) && p.externalIds[MIRROR_KEY] === desired.name);

  // Output.
  let outputRef: OutputRef | undefined;
  let outputPortName: string | undefined;
  let outputPortUuid: string | undefined;
  let outputVlan: number | undefined;
  let createsOutputPort = false;
  const inserts: Operation[] = [];
  const out = desired.output;
  if (out.kind === 'port') {
    const p = portOnBridge(observed, bridge, out.port);
    if (!p) throw new MirrorPlanError('port-not-found', 'output port not found on bridge', { bridge: bridge.name, port: out.port });
    outputRef = { uuid: p.uuid };
    outputPortName = p.name;
    outputPortUuid = p.uuid;
  } else if (out.kind === 'internal') {
    const name = internalOutputPortName(desired) as string;
    const reuse = ownedForMirror.find((p) => p.name === name);
    if (reuse) {
      outputRef = { uuid: reuse.uuid };
      outputPortUuid = reuse.uuid;
      waits.push(waitOp('Port', byUuid(reuse.uuid), ['name', 'external_ids'], [{ name: reuse.name, external_ids: wireMap(reuse.externalIds) }]));
    } else {
      const takenPort = observed.portByName.get(name);
      const takenIface = observed.interfaceByName.get(name);
      if (takenPort !== undefined || takenIface !== undefined) {
        const row = takenPort !== undefined ? observed.ports.get(takenPort) : observed.interfaces.get(takenIface as string);
        const fields: Record<string, unknown> = { bridge: bridge.name, mirror: desired.name, port: name };
        if (row?.externalIds[OWNER_KEY] !== undefined) fields.owner = row.externalIds[OWNER_KEY];
        if (row?.externalIds[MIRROR_KEY] !== undefined) fields.usedBy = row.externalIds[MIRROR_KEY];
        throw new MirrorPlanError('port-name-taken', 'internal output port name already in use', fields);
      }
      const mark = wireMap({ [OWNER_KEY]: owner, [MIRROR_KEY]: desired.name });
      inserts.push(insertOp('Interface', { name, type: 'internal', external_ids: mark }, N_IFACE));
      inserts.push(insertOp('Port', { name, interfaces: wireSet([namedUuid(N_IFACE)]), external_ids: mark }, N_PORT));
      outputRef = { named: N_PORT };
      createsOutputPort = true;
      summary.push(`create internal port ${name} on ${bridge.name}`);
    }
    outputPortName = name;
  } else {
    outputVlan = out.vlan;
  }
  for (const p of ownedForMirror) {
    if (p.uuid === outputPortUuid) continue;
    removePorts.push(p);
    summary.push(`remove unused internal port ${p.name} on ${bridge.name}`);
  }

  // Selection.
  const sel = desired.selection;
  const missing: string[] = [];
  let selectAll = false;
  let selectVlan: number[] = [];
  let selected: ObservedPort[] = [];
  if (sel.kind === 'all' || sel.kind === 'vlans') {
    if (sel.kind === 'vlans') selectVlan = [...new Set(sel.vlans)].sort((a, b) => a - b);
    if (desired.direction === 'both') {
      selectAll = true;
      // What OVS will select: every port but the output port.
      selected = bridgePorts.filter((p) => p.uuid !== outputPortUuid);
    } else {
      selected = bridgePorts.filter((p) => p.uuid !== outputPortUuid && !isOwned(p.externalIds, owner));
    }
  } else if (sel.kind === 'ports') {
    for (const name of sel.ports) {
      const p = portOnBridge(observed, bridge, name);
      if (p) selected.push(p);
      else missing.push(name);
    }
    if (missing.length && !opts.allowMissing) {
      throw new MirrorPlanError('port-not-found', 'port not found on bridge', { bridge: bridge.name, port: missing[0], ...(missing.length > 1 ? { missing } : {}) });
    }
  } else {
    const onBridge = new Set(bridge.ports);
    for (const vm of sel.vms) {
      const found: { iface: ObservedInterface; port: ObservedPort }[] = [];
      for (const iface of observed.interfaces.values()) {
        if (!interfaceMatchesVm(iface, vm)) continue;
        const portId = observed.portOfInterface.get(iface.uuid);
        const port = portId !== undefined ? observed.ports.get(portId) : undefined;
        if (port && onBridge.has(port.uuid)) found.push({ iface, port });
      }
      if (!found.length) {
        missing.push(vm);
        continue;
      }
      for (const { iface, port } of found.sort((a, b) => cmp(a.iface.uuid, b.iface.uuid))) {
        selected.push(port);
        waits.push(waitOp('Interface', byUuid(iface.uuid), ['external_ids'], [{ external_ids: wireMap(iface.externalIds) }]));
      }
    }
    if (missing.length && !opts.allowMissing) {
      throw new MirrorPlanError('vm-not-found', 'VM has no interface on bridge', { bridge: bridge.name, vm: missing[0], ...(missing.length > 1 ? { missing } : {}) });
    }
    for (const port of uniqueBy(selected, (p) => p.uuid).sort((a, b) => cmp(a.uuid, b.uuid))) {
      waits.push(waitOp('Port', byUuid(port.uuid), ['interfaces'], [{ interfaces: uuidSet(port.interfaces) }]));
    }
  }
  selected = uniqueBy(selected, (p) => p.uuid);
  if (outputPortUuid !== undefined && sel.kind !== 'all' && sel.kind !== 'vlans' && selected.some((p) => p.uuid === outputPortUuid)) {
    summary.push(`leave output port ${outputPortName} out of the selection`);
    selected = selected.filter((p) => p.uuid !== outputPortUuid);
  }
  const selectedUuids = selectAll ? [] : selected.map((p) => p.uuid).sort();
  const wantSrc = desired.direction !== 'to-vm';
  const wantDst = desired.direction !== 'from-vm';

  const want: DesiredMirror = {
    name: desired.name,
    selectAll,
    selectSrcPort: wantSrc ? selectedUuids : [],
    selectDstPort: wantDst ? selectedUuids : [],
    selectVlan,
    externalIds: { ...(existing?.externalIds ?? {}), [OWNER_KEY]: owner, [SPEC_KEY]: specHash(desired) },
  };
  if (outputRef) want.outputPort = outputRef;
  if (outputVlan !== undefined) want.outputVlan = outputVlan;
  if (desired.snaplen !== undefined) want.snaplen = desired.snaplen;

  // Mirror insert or update of the columns that differ.
  const mirrorOps: Operation[] = [];
  const bridgeMutations: Mutation[] = [];
  if (createsOutputPort) bridgeMutations.push(['ports', 'insert', wireSet([namedUuid(N_PORT)])]);
  let action: Plan['action'] = 'none';
  if (!existing) {
    action = 'create';
    mirrorOps.push(insertOp('Mirror', mirrorRow(want, MIRROR_COLUMNS), N_MIRROR));
    bridgeMutations.push(['mirrors', 'insert', wireSet([namedUuid(N_MIRROR)])]);
    summary.unshift(`create mirror ${desired.name} on ${bridge.name}: ${describe(desired, selected, outputPortName)}`);
  } else {
    const changedCols = diffMirror(existing, want);
    if (changedCols.length) {
      action = 'update';
      waits.push(waitOp('Mirror', byUuid(existing.uuid), [...MIRROR_COLUMNS], [mirrorRow(observedAsDesired(existing), MIRROR_COLUMNS)]));
      mirrorOps.push(updateOp('Mirror', byUuid(existing.uuid), mirrorRow(want, changedCols)));
      summary.unshift(`update mirror ${desired.name} on ${bridge.name} (${changedCols.join(', ')}): ${describe(desired, selected, outputPortName)}`);
    }
  }
  if (removeMirrors.length) bridgeMutations.push(['mirrors', 'delete', uuidSet(removeMirrors.map((m) => m.uuid))]);
  if (removePorts.length) bridgeMutations.push(['ports', 'delete', uuidSet(removePorts.map((p) => p.uuid))]);
  for (const m of removeMirrors) waits.push(waitOp('Mirror', byUuid(m.uuid), ['name', 'external_ids'], [{ name: m.name, external_ids: wireMap(m.externalIds) }]));
  for (const p of removePorts) waits.push(waitOp('Port', byUuid(p.uuid), ['name', 'external_ids'], [{ name: p.name, external_ids: wireMap(p.externalIds) }]));

  const base: Omit<Plan, keyof PlanBase> = {
    action,
    selectedPorts: selected.map((p) => p.name).sort(),
    createsOutputPort,
    missing,
  };
  if (existing) base.mirrorUuid = existing.uuid;
  if (outputPortName !== undefined) base.outputPort = outputPortName;
  if (outputVlan !== undefined) base.outputVlan = outputVlan;

  const changed = inserts.length > 0 || mirrorOps.length > 0 || bridgeMutations.length > 0;
  if (!changed) return { ops: [], changed: false, summary: [], bumpsNextCfg: false, ...base };

  const ops: Operation[] = [commentOp(`mirrorflow: ${action === 'none' ? 'tidy' : action} mirror ${desired.name} on ${bridge.name} (owner ${owner})`)];
  ops.push(bridgeWait(bridge), ...waits, ...inserts, ...mirrorOps);
  if (bridgeMutations.length) ops.push(mutateOp('Bridge', byUuid(bridge.uuid), bridgeMutations));
  return { ...finish(ops, summary, observed), ...base };
}

/** Plans removal of one owned mirror and its internal output port. */
export function planDelete(bridgeName: string, name: string, observed: ObservedState, opts: PlanOptions): RemovalPlan {
  checkOwner(opts.owner);
  const owner = opts.owner;
  const bridgeId = observed.bridgeByName.get(bridgeName);
  const bridge = bridgeId !== undefined ? observed.bridges.get(bridgeId) : undefined;
  if (!bridge) {
    if (opts.allowMissing) return emptyRemoval();
    throw new MirrorPlanError('bridge-not-found', 'bridge not found', { bridge: bridgeName });
  }
  const sameName = bridge.mirrors.map((id) => observed.mirrors.get(id)).filter((m): m is ObservedMirror => m?.name === name);
  const owned = sameName.filter((m) => isOwned(m.externalIds, owner));
  const ports = bridge.ports
    .map((id) => observed.ports.get(id))
    .filter((p): p is ObservedPort => p !== undefined && isOwned(p.externalIds, owner) && p.externalIds[MIRROR_KEY] === name);
  if (!owned.length && sameName.length) {
    const theirs = sameName[0]?.externalIds[OWNER_KEY];
    throw new MirrorPlanError('mirror-not-owned', 'mirror not owned by mirrorflow', { bridge: bridge.name, mirror: name, ...(theirs !== undefined ? { owner: theirs } : {}) });
  }
  if (!owned.length && !ports.length) {
    if (opts.allowMissing) return emptyRemoval();
    throw new MirrorPlanError('mirror-not-found', 'mirror not found', { bridge: bridge.name, mirror: name });
  }
  return removalPlan(observed, [{ bridge, mirrors: owned, ports }], `delete mirror ${name} on ${bridge.name} (owner ${owner})`);
}

/**
 * Plans removal of everything this owner left behind that is not wanted any more: owned mirrors not
 * in `keep`, and owned internal ports whose mirror is gone (or no longer outputs to them).
 */
export function planOrphanCleanup(observed: ObservedState, keep: Iterable<{ bridge: string; name: string }>, opts: PlanOptions): RemovalPlan {
  checkOwner(opts.owner);
  const owner = opts.owner;
  const keepSet = new Set<string>();
  for (const k of keep) keepSet.add(JSON.stringify([k.bridge, k.name]));
  const removals: { bridge: ObservedBridge; mirrors: ObservedMirror[]; ports: ObservedPort[] }[] = [];
  const bridges = [...observed.bridges.values()].sort((a, b) => cmp(a.name, b.name));
  for (const bridge of bridges) {
    const ownedMirrors = bridge.mirrors
      .map((id) => observed.mirrors.get(id))
      .filter((m): m is ObservedMirror => m !== undefined && isOwned(m.externalIds, owner));
    const goMirrors = ownedMirrors.filter((m) => !keepSet.has(JSON.stringify([bridge.name, m.name])));
    const staying = ownedMirrors.filter((m) => !goMirrors.includes(m));
    const goPorts = bridge.ports
      .map((id) => observed.ports.get(id))
      .filter((p): p is ObservedPort => p !== undefined && isOwned(p.externalIds, owner))
      .filter((p) => !staying.some((m) => m.name === p.externalIds[MIRROR_KEY] && m.outputPort === p.uuid));
    if (goMirrors.length || goPorts.length) removals.push({ bridge, mirrors: goMirrors, ports: goPorts });
  }
  if (!removals.length) return emptyRemoval();
  return removalPlan(observed, removals, `remove orphaned mirrors and ports (owner ${owner})`);
}

// ---------------------------------------------------------------------------------------------
// Helpers

function checkOwner(owner: unknown): void {
  if (typeof owner !== 'string' || owner.length === 0) {
    throw new MirrorPlanError('invalid-owner', 'owner id must be a non-empty string', { owner: owner === undefined ? 'undefined' : owner });
  }
}

function findBridge(observed: ObservedState, name: string): ObservedBridge {
  const id = observed.bridgeByName.get(name);
  const bridge = id !== undefined ? observed.bridges.get(id) : undefined;
  if (!bridge) throw new MirrorPlanError('bridge-not-found', 'bridge not found', { bridge: name });
  return bridge;
}

function portOnBridge(observed: ObservedState, bridge: ObservedBridge, name: string): ObservedPort | undefined {
  const id = observed.portByName.get(name);
  if (id === undefined || !bridge.ports.includes(id)) return undefined;
  return observed.ports.get(id);
}

function isOwned(externalIds: Record<string, string>, owner: string): boolean {
  return externalIds[OWNER_KEY] === owner;
}

/** vm-uuid, vm-id, iface-id equal; or attached-mac equal ignoring case when `vm` is a MAC. */
export function interfaceMatchesVm(iface: ObservedInterface, vm: string): boolean {
  const ids = iface.externalIds;
  if (ids['vm-uuid'] === vm || ids['vm-id'] === vm || ids['iface-id'] === vm) return true;
  const mac = ids['attached-mac'];
  return mac !== undefined && isMac(vm) && mac.toLowerCase() === vm.toLowerCase();
}

function bridgeWait(bridge: ObservedBridge): Operation {
  return waitOp('Bridge', byUuid(bridge.uuid), ['ports', 'mirrors'], [{ ports: uuidSet(bridge.ports), mirrors: uuidSet(bridge.mirrors) }]);
}

function refAtom(r: OutputRef): WireAtom {
  return 'uuid' in r ? uuid(r.uuid) : namedUuid(r.named);
}

function optionalSet(v: WireAtom | undefined): WireDatum {
  return wireSet(v === undefined ? [] : [v]);
}

function mirrorRow(m: DesiredMirror, columns: readonly MirrorColumn[]): Row {
  const row: Row = {};
  for (const c of columns) {
    switch (c) {
      case 'name':
        row.name = m.name;
        break;
      case 'select_all':
        row.select_all = m.selectAll;
        break;
      case 'select_src_port':
        row.select_src_port = uuidSet(m.selectSrcPort);
        break;
      case 'select_dst_port':
        row.select_dst_port = uuidSet(m.selectDstPort);
        break;
      case 'select_vlan':
        row.select_vlan = wireSet(m.selectVlan);
        break;
      case 'output_port':
        row.output_port = optionalSet(m.outputPort && refAtom(m.outputPort));
        break;
      case 'output_vlan':
        row.output_vlan = optionalSet(m.outputVlan);
        break;
      case 'snaplen':
        row.snaplen = optionalSet(m.snaplen);
        break;
      case 'external_ids':
        row.external_ids = wireMap(sortedRecord(m.externalIds));
        break;
    }
  }
  return row;
}

function observedAsDesired(m: ObservedMirror): DesiredMirror {
  const d: DesiredMirror = {
    name: m.name,
    selectAll: m.selectAll,
    selectSrcPort: m.selectSrcPort,
    selectDstPort: m.selectDstPort,
    selectVlan: m.selectVlan,
    externalIds: m.externalIds,
  };
  if (m.outputPort !== undefined) d.outputPort = { uuid: m.outputPort };
  if (m.outputVlan !== undefined) d.outputVlan = m.outputVlan;
  if (m.snaplen !== undefined) d.snaplen = m.snaplen;
  return d;
}

function diffMirror(have: ObservedMirror, want: DesiredMirror): MirrorColumn[] {
  const cols: MirrorColumn[] = [];
  if (have.selectAll !== want.selectAll) cols.push('select_all');
  if (!sameList(have.selectSrcPort, want.selectSrcPort)) cols.push('select_src_port');
  if (!sameList(have.selectDstPort, want.selectDstPort)) cols.push('select_dst_port');
  if (!sameList(have.selectVlan, want.selectVlan)) cols.push('select_vlan');
  const wantOut = want.outputPort;
  if (wantOut === undefined ? have.outputPort !== undefined : !('uuid' in wantOut) || wantOut.uuid !== have.outputPort) cols.push('output_port');
  if (have.outputVlan !== want.outputVlan) cols.push('output_vlan');
  if (have.snaplen !== want.snaplen) cols.push('snaplen');
  if (!sameRecord(have.externalIds, want.externalIds)) cols.push('external_ids');
  return cols;
}

function sameList<T extends string | number>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  const sa = [...a].sort();
  const sb = [...b].sort();
  return sa.every((x, i) => x === sb[i]);
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}

function sortedRecord(r: Record<string, string>): [string, string][] {
  return Object.entries(r).sort(([a], [b]) => cmp(a, b));
}

function sortedUuids(v: unknown): string[] {
  return setUuids(v).sort();
}

function intOr(v: unknown, dflt: number): number {
  const a = optionalAtom(v);
  return typeof a === 'number' ? a : dflt;
}

function uniqueBy<T>(xs: T[], key: (x: T) => string): T[] {
  const seen = new Set<string>();
  return xs.filter((x) => (seen.has(key(x)) ? false : (seen.add(key(x)), true)));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function describe(spec: MirrorSpec, selected: ObservedPort[], outputPort: string | undefined): string {
  const sel = spec.selection;
  const what =
    sel.kind === 'all'
      ? 'all ports'
      : sel.kind === 'vlans'
        ? `vlans ${sel.vlans.join(',')}`
        : `${selected.length} port${selected.length === 1 ? '' : 's'} (${selected.map((p) => p.name).sort().join(',') || 'none'})`;
  const to = spec.output.kind === 'vlan' ? `vlan ${spec.output.vlan}` : `port ${outputPort}`;
  return `select ${what}, direction ${spec.direction}, output ${to}${spec.snaplen !== undefined ? `, snaplen ${spec.snaplen}` : ''}`;
}

/** Appends next_cfg += 1 and a select of the new value when an Open_vSwitch row is known. */
function finish(ops: Operation[], summary: string[], observed: ObservedState): PlanBase {
  const ovs = observed.openVswitch;
  if (!ovs) return { ops, changed: true, summary, bumpsNextCfg: false };
  ops.push(mutateOp('Open_vSwitch', byUuid(ovs.uuid), [['next_cfg', '+=', 1]]));
  ops.push(selectOp('Open_vSwitch', byUuid(ovs.uuid), ['next_cfg']));
  return { ops, changed: true, summary, bumpsNextCfg: true, nextCfgOpIndex: ops.length - 1 };
}

function emptyRemoval(): RemovalPlan {
  return { ops: [], changed: false, summary: [], bumpsNextCfg: false, removedMirrors: [], removedPorts: [] };
}

function removalPlan(
  observed: ObservedState,
  removals: { bridge: ObservedBridge; mirrors: ObservedMirror[]; ports: ObservedPort[] }[],
  comment: string,
): RemovalPlan {
  const ops: Operation[] = [commentOp(`mirrorflow: ${comment}`)];
  const summary: string[] = [];
  const removedMirrors: RemovedRow[] = [];
  const removedPorts: RemovedRow[] = [];
  const mutates: Operation[] = [];
  for (const { bridge, mirrors, ports } of removals) {
    const mutations: Mutation[] = [];
    for (const m of mirrors) {
      ops.push(waitOp('Mirror', byUuid(m.uuid), ['name', 'external_ids'], [{ name: m.name, external_ids: wireMap(m.externalIds) }]));
      removedMirrors.push({ bridge: bridge.name, name: m.name, uuid: m.uuid });
      summary.push(`remove mirror ${m.name} on ${bridge.name}`);
    }
    for (const p of ports) {
      ops.push(waitOp('Port', byUuid(p.uuid), ['name', 'external_ids'], [{ name: p.name, external_ids: wireMap(p.externalIds) }]));
      removedPorts.push({ bridge: bridge.name, name: p.name, uuid: p.uuid });
      summary.push(`remove internal port ${p.name} on ${bridge.name}`);
    }
    if (mirrors.length) mutations.push(['mirrors', 'delete', uuidSet(mirrors.map((m) => m.uuid))]);
    if (ports.length) mutations.push(['ports', 'delete', uuidSet(ports.map((p) => p.uuid))]);
    if (mutations.length) mutates.push(mutateOp('Bridge', byUuid(bridge.uuid), mutations));
  }
  ops.push(...mutates);
  return { ...finish(ops, summary, observed), removedMirrors, removedPorts };
}
