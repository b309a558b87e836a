/**
 * A replica of monitored tables, fed by monitor replies and update notifications in the three
 * formats ovsdb-server uses:
 *
 *   format 1 (monitor / "update"):        {table: {uuid: {"old"?: row, "new"?: row}}}
 *       new only = insert/initial, old+new = modify (new holds the monitored columns), old only = delete
 *   format 2 (monitor_cond / "update2",   {table: {uuid: {"initial"|"insert"|"modify": row} | {"delete": null}}}
 *             monitor_cond_since / "update3")
 *       initial/insert rows omit columns equal to their default; modify rows hold diffs
 *       (see applyDatumDiff in datum.ts).
 *
 * Rows are kept in wire form (Map<table, Map<uuid, Record<column, WireDatum>>>) and never mutated in
 * place: an 'update' handler can keep the old row it is given.
 */
import { EventEmitter } from 'node:events';
import { applyDatumDiff, datumEquals, defaultDatum, type WireDatum } from './datum.js';
import type { DbSchema, TableSchema } from './schema.js';

export type CacheRow = Readonly<Record<string, WireDatum>>;
export type TableUpdates = Record<string, Record<string, unknown>>;
export type UpdateFormat = 1 | 2;

export interface RowCacheEvents {
  add: [table: string, uuid: string, row: CacheRow];
  update: [table: string, uuid: string, row: CacheRow, oldRow: CacheRow];
  delete: [table: string, uuid: string, oldRow: CacheRow];
  ready: [];
}

export interface RowCacheOptions {
  /** Used to fill omitted default values and to apply update2 diffs by column type. */
  schema?: DbSchema;
  /** Monitored columns per table (undefined: all columns of the schema). */
  columns?: Record<string, readonly string[] | undefined>;
}

type MutableTables = Map<string, Map<string, CacheRow>>;

export class RowCache extends EventEmitter<RowCacheEvents> {
  private data: MutableTables = new Map();
  private schema: DbSchema | undefined;
  private columns: Record<string, readonly string[] | undefined>;
  private readyFlag = false;

  constructor(opts: RowCacheOptions = {}) {
    super();
    this.schema = opts.schema;
    this.columns = opts.columns ?? {};
    for (const t of Object.keys(this.columns)) this.data.set(t, new Map());
  }

  /** Replaces the schema (e.g. after a reconnect to an upgraded server). */
  setSchema(schema: DbSchema | undefined): void {
    this.schema = schema;
  }

  /** All tables, for readers that take a WireTables (e.g. buildInventory). */
  get tables(): ReadonlyMap<string, ReadonlyMap<string, CacheRow>> {
    return this.data;
  }

  get ready(): boolean {
    return this.readyFlag;
  }

  table(name: string): ReadonlyMap<string, CacheRow> {
    return this.data.get(name) ?? new Map();
  }

  row(table: string, uuid: string): CacheRow | undefined {
    return this.data.get(table)?.get(uuid);
  }

  /** Applies incremental updates (a notification, or a resumed monitor_cond_since reply). */
  applyUpdates(updates: unknown, format: UpdateFormat): void {
    for (const [table, rows] of tableEntries(updates)) {
      const t = this.tableMap(table);
      const ts = this.schema?.tables.get(table);
      for (const [uuid, change] of Object.entries(rows)) {
        const old = t.get(uuid);
        const next = this.nextRow(table, ts, old, change, format);
        if (next === old) continue;
        if (next === undefined) {
          t.delete(uuid);
          if (old) this.emit('delete', table, uuid, old);
        } else {
          t.set(uuid, next);
          if (old) this.emit('update', table, uuid, next, old);
          else this.emit('add', table, uuid, next);
        }
      }
    }
  }

  /**
   * Replaces the whole content with a full snapshot (first monitor reply, or a reconnect without
   * resume) and emits only the differences: 'delete' for rows gone, 'add' for new rows, 'update'
   * for changed rows. Then emits 'ready'.
   */
  resetFrom(snapshot: unknown, format: UpdateFormat): void {
    const fresh: MutableTables = new Map();
    for (const t of this.data.keys()) fresh.set(t, new Map());
    for (const [table, rows] of tableEntries(snapshot)) {
      const t = fresh.get(table) ?? new Map<string, CacheRow>();
      fresh.set(table, t);
      const ts = this.schema?.tables.get(table);
      for (const [uuid, change] of Object.entries(rows)) {
        const row = this.nextRow(table, ts, undefined, change, format);
        if (row) t.set(uuid, row);
      }
    }
    const old = this.data;
    this.data = fresh;
    for (const [table, rows] of old) {
      const now = fresh.get(table);
      for (const [uuid, row] of rows) if (!now?.has(uuid)) this.emit('delete', table, uuid, row);
    }
    for (const [table, rows] of fresh) {
      const before = old.get(table);
      for (const [uuid, row] of rows) {
        const prev = before?.get(uuid);
        if (!prev) this.emit('add', table, uuid, row);
        else if (!rowEquals(prev, row)) this.emit('update', table, uuid, row, prev);
      }
    }
    this.markReady();
  }

  /** Emits 'ready' (after a snapshot, or after a resumed monitor caught up). */
  markReady(): void {
    this.readyFlag = true;
    this.emit('ready');
  }

  private tableMap(table: string): Map<string, CacheRow> {
    let t = this.data.get(table);
    if (!t) {
      t = new Map();
      this.data.set(table, t);
    }
    return t;
  }

  /** The row after `change`: undefined for a delete, `old` itself when nothing applies. */
  private nextRow(table: string, ts: TableSchema | undefined, old: CacheRow | undefined, change: unknown, format: UpdateFormat): CacheRow | undefined {
    if (typeof change !== 'object' || change === null) return old;
    const c = change as Record<string, unknown>;
    if (format === 1) {
      const nu = c.new as Record<string, WireDatum> | undefined;
      if (!nu) return undefined; // old only: delete
      return old ? { ...old, ...nu } : this.withDefaults(table, ts, nu);
    }
    if ('delete' in c) return undefined;
    const ins = (c.initial ?? c.insert) as Record<string, WireDatum> | undefined;
    if (ins) return this.withDefaults(table, ts, ins);
    const mod = c.modify as Record<string, WireDatum> | undefined;
    if (mod) {
      const base: Record<string, WireDatum> = old ? { ...old } : this.withDefaults(table, ts, {});
      for (const [col, diff] of Object.entries(mod)) base[col] = applyDatumDiff(ts?.columns.get(col)?.type, base[col], diff);
      return base;
    }
    return old;
  }

  private withDefaults(table: string, ts: TableSchema | undefined, row: Record<string, WireDatum>): Record<string, WireDatum> {
    if (!ts) return { ...row };
    const out: Record<string, WireDatum> = {};
    const wanted = this.columns[table] ?? [...ts.columns.keys()].filter((c) => !c.startsWith('_'));
    for (const col of wanted) {
      const cs = ts.columns.get(col);
      if (cs && !(col in row)) out[col] = defaultDatum(cs.type);
    }
    return Object.assign(out, row);
  }
}

function tableEntries(updates: unknown): [string, Record<string, unknown>][] {
  if (typeof updates !== 'object' || updates === null) return [];
  return Object.entries(updates as Record<string, unknown>).filter((e): e is [string, Record<string, unknown>] => typeof e[1] === 'object' && e[1] !== null);
}

export function rowEquals(a: CacheRow, b: CacheRow): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => k in b && datumEquals(a[k], b[k]));
}
