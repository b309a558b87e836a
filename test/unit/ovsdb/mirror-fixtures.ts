/**
 * Test fixtures for mirror planning: small OVSDB tables in wire form, and a tiny in-memory
 * transaction applier (insert / update / mutate / wait / select / comment, `_uuid ==` conditions,
 * named-uuids, garbage collection of unreferenced Mirror / Port / Interface rows) so tests can
 * check that a plan, once applied, converges and that its `wait`s hold on the state it read.
 */
import { uuid, uuidSet, wireMap, wireSet, type WireAtom, type WireDatum } from '../../../src/ovsdb/datum.js';
import type { Operation } from '../../../src/ovsdb/ops.js';

export type Row = Record<string, WireDatum>;
export type Tables = Map<string, Map<string, Row>>;

export const TABLES = ['Open_vSwitch', 'Bridge', 'Port', 'Interface', 'Mirror'] as const;

export class Fixture {
  readonly tables: Tables = new Map(TABLES.map((t) => [t, new Map<string, Row>()]));

  constructor(opts: { ovs?: boolean } = {}) {
    if (opts.ovs !== false) this.t('Open_vSwitch').set('ovs-0', { bridges: uuidSet([]), next_cfg: 7, cur_cfg: 7, external_ids: wireMap({}) });
  }

  t(table: string): Map<string, Row> {
    return this.tables.get(table) as Map<string, Row>;
  }

  bridge(name: string): string {
    const id = `br-${name}`;
    this.t('Bridge').set(id, { name, ports: uuidSet([]), mirrors: uuidSet([]), datapath_type: 'netdev', external_ids: wireMap({}) });
    const ovs = this.t('Open_vSwitch').get('ovs-0');
    if (ovs) ovs.bridges = addToSet(ovs.bridges, id);
    return id;
  }

  /** A port with one interface of the same name; `ids` become the Interface's external_ids. */
  port(bridgeId: string, name: string, opts: { ids?: Record<string, string>; portIds?: Record<string, string>; type?: string; ifaces?: string[] } = {}): string {
    const portId = `port-${name}`;
    const ifaceNames = opts.ifaces ?? [name];
    const ifaceIds = ifaceNames.map((n) => {
      const id = `if-${n}`;
      this.t('Interface').set(id, { name: n, type: opts.type ?? '', external_ids: wireMap(opts.ids ?? {}), ofport: 1 });
      return id;
    });
    this.t('Port').set(portId, { name, interfaces: uuidSet(ifaceIds), external_ids: wireMap(opts.portIds ?? {}) });
    const br = this.t('Bridge').get(bridgeId) as Row;
    br.ports = addToSet(br.ports, portId);
    return portId;
  }

  mirror(bridgeId: string, name: string, cols: Partial<Row> & { owner?: string } = {}): string {
    const id = `mirror-${name}-${this.t('Mirror').size}`;
    const { owner, ...rest } = cols;
    this.t('Mirror').set(id, {
      name,
      select_all: false,
      select_src_port: uuidSet([]),
      select_dst_port: uuidSet([]),
      select_vlan: wireSet([]),
      output_port: wireSet([]),
      output_vlan: wireSet([]),
      snaplen: wireSet([]),
      statistics: ['map', [['tx_packets', 0]]],
      external_ids: wireMap(owner ? { 'mirrorflow-owner': owner } : {}),
      ...rest,
    } as Row);
    const br = this.t('Bridge').get(bridgeId) as Row;
    br.mirrors = addToSet(br.mirrors, id);
    return id;
  }
}

function addToSet(set: WireDatum | undefined, id: string): WireDatum {
  const atoms = set && Array.isArray(set) && set[0] === 'set' ? (set[1] as WireAtom[]) : [];
  return wireSet([...atoms, uuid(id)]);
}

export function cloneTables(t: Tables): Tables {
  return new Map([...t].map(([name, rows]) => [name, new Map([...rows].map(([id, r]) => [id, structuredClone(r)]))]));
}

/** Canonical text of a datum: sets and maps compare regardless of order; a bare atom is a 1-element set. */
export function canon(d: WireDatum | undefined): string {
  if (d === undefined) return 'S[]';
  if (Array.isArray(d) && d[0] === 'set') return `S${JSON.stringify((d[1] as WireAtom[]).map((a) => JSON.stringify(a)).sort())}`;
  if (Array.isArray(d) && d[0] === 'map') return `M${JSON.stringify((d[1] as [WireAtom, WireAtom][]).map((p) => JSON.stringify(p)).sort())}`;
  return `S${JSON.stringify([JSON.stringify(d)])}`;
}

export class WaitFailed extends Error {}

/**
 * Applies ops to a copy of `tables` and returns it. Throws WaitFailed when a wait does not hold,
 * Error on anything the applier does not support. New rows get uuids `new-1`, `new-2`, ... (skipping ones in use)
 */
export function applyOps(tables: Tables, ops: Operation[]): { tables: Tables; named: Map<string, string>; results: unknown[] } {
  const t = cloneTables(tables);
  const named = new Map<string, string>();
  const used = new Set([...t.values()].flatMap((rows) => [...rows.keys()]));
  let counter = 0;
  const fresh = (): string => {
    while (used.has(`new-${++counter}`));
    used.add(`new-${counter}`);
    return `new-${counter}`;
  };
  for (const op of ops) if (op.op === 'insert' && op['uuid-name']) named.set(op['uuid-name'], fresh());
  const resolve = (d: unknown): unknown => {
    if (Array.isArray(d)) {
      if (d[0] === 'named-uuid') {
        const id = named.get(d[1] as string);
        if (!id) throw new Error(`unknown named-uuid ${String(d[1])}`);
        return ['uuid', id];
      }
      return d.map(resolve);
    }
    if (d !== null && typeof d === 'object') return Object.fromEntries(Object.entries(d).map(([k, v]) => [k, resolve(v)]));
    return d;
  };
  const rowsOf = (table: string, where: unknown[]): [string, Row][] => {
    const rows = t.get(table);
    if (!rows) throw new Error(`unknown table ${table}`);
    return [...rows].filter(([id]) =>
      where.every((c) => {
        const [col, fn, val] = c as [string, string, WireDatum];
        if (col !== '_uuid' || fn !== '==') throw new Error(`unsupported condition ${JSON.stringify(c)}`);
        return Array.isArray(val) && val[1] === id;
      }),
    );
  };
  const results: unknown[] = [];
  for (const raw of ops) {
    const op = resolve(raw) as Operation;
    switch (op.op) {
      case 'comment':
        results.push({});
        break;
      case 'insert': {
        const id = op['uuid-name'] ? (named.get(op['uuid-name']) as string) : fresh();
        (t.get(op.table) as Map<string, Row>).set(id, structuredClone(op.row));
        results.push({ uuid: ['uuid', id] });
        break;
      }
      case 'update':
        for (const [, row] of rowsOf(op.table, op.where)) Object.assign(row, structuredClone(op.row));
        results.push({});
        break;
      case 'mutate':
        for (const [, row] of rowsOf(op.table, op.where)) {
          for (const [col, mut, val] of op.mutations) {
            const cur = row[col];
            if (mut === '+=') row[col] = (cur as number) + (val as number);
            else if (mut === 'insert' || mut === 'delete') {
              const have = Array.isArray(cur) && cur[0] === 'set' ? (cur[1] as WireAtom[]) : cur === undefined ? [] : [cur as WireAtom];
              const delta = Array.isArray(val) && val[0] === 'set' ? (val[1] as WireAtom[]) : [val as WireAtom];
              const key = (a: WireAtom) => JSON.stringify(a);
              if (mut === 'insert') row[col] = wireSet([...have, ...delta.filter((a) => !have.some((h) => key(h) === key(a)))]);
              else row[col] = wireSet(have.filter((h) => !delta.some((a) => key(a) === key(h))));
            } else throw new Error(`unsupported mutator ${mut}`);
          }
        }
        results.push({});
        break;
      case 'wait': {
        const actual = rowsOf(op.table, op.where).map(([, r]) => op.columns.map((c) => canon(r[c])).join('|')).sort();
        const expected = op.rows.map((r) => op.columns.map((c) => canon(r[c])).join('|')).sort();
        const equal = JSON.stringify(actual) === JSON.stringify(expected);
        if (equal !== (op.until === '==')) throw new WaitFailed(`wait failed on ${op.table}: actual ${JSON.stringify(actual)} expected ${JSON.stringify(expected)}`);
        results.push({});
        break;
      }
      case 'select':
        results.push({ rows: rowsOf(op.table, op.where).map(([, r]) => Object.fromEntries((op.columns ?? Object.keys(r)).map((c) => [c, r[c]]))) });
        break;
      default:
        throw new Error(`unsupported op ${op.op}`);
    }
  }
  gc(t);
  return { tables: t, named, results };
}

/** Drops Mirror / Port rows no bridge references and Interface rows no port references. */
function gc(t: Tables): void {
  const refs = (table: string, col: string) => {
    const s = new Set<string>();
    for (const r of (t.get(table) as Map<string, Row>).values()) {
      const v = r[col];
      const atoms = Array.isArray(v) && v[0] === 'set' ? (v[1] as WireAtom[]) : v === undefined ? [] : [v as WireAtom];
      for (const a of atoms) if (Array.isArray(a) && a[0] === 'uuid') s.add(a[1]);
    }
    return s;
  };
  const keep = (table: string, live: Set<string>) => {
    const rows = t.get(table) as Map<string, Row>;
    for (const id of [...rows.keys()]) if (!live.has(id)) rows.delete(id);
  };
  keep('Mirror', refs('Bridge', 'mirrors'));
  keep('Port', refs('Bridge', 'ports'));
  keep('Interface', refs('Port', 'interfaces'));
}
