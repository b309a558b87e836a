/**
 * Database schemas as returned by `get_schema` (RFC 7047 §3.2), parsed into typed plain data.
 *
 *   <database-schema>  {"name", "version", "cksum"?, "tables": {name: <table-schema>}}
 *   <table-schema>     {"columns": {name: <column-schema>}, "maxRows"?, "isRoot"?, "indexes"?}
 *   <column-schema>    {"type": <type>, "ephemeral"?, "mutable"?}
 *   <type>             <atomic-type> | {"key": <base-type>, "value"?: <base-type>, "min"?: 0|1, "max"?: <integer>|"unlimited"}
 *   <base-type>        <atomic-type> | {"type": <atomic-type>, "enum"?: <datum>, "minInteger"?, "maxInteger"?,
 *                       "minReal"?, "maxReal"?, "minLength"?, "maxLength"?, "refTable"?, "refType"?: "strong"|"weak"}
 */
import { OvsdbSchemaError } from './errors.js';
import { setAtoms, type WireAtom } from './datum.js';

export type AtomicType = 'integer' | 'real' | 'boolean' | 'string' | 'uuid';

export interface BaseType {
  type: AtomicType;
  enum?: WireAtom[];
  minInteger?: number;
  maxInteger?: number;
  minReal?: number;
  maxReal?: number;
  minLength?: number;
  maxLength?: number;
  refTable?: string;
  refType?: 'strong' | 'weak';
}

export interface ColumnType {
  key: BaseType;
  value?: BaseType;
  min: number;
  /** Infinity for "unlimited". */
  max: number;
}

export interface ColumnSchema {
  name: string;
  type: ColumnType;
  ephemeral: boolean;
  mutable: boolean;
}

export interface TableSchema {
  name: string;
  columns: Map<string, ColumnSchema>;
  maxRows?: number;
  isRoot: boolean;
  indexes: string[][];
}

export interface DbSchema {
  name: string;
  version: string;
  cksum?: string;
  tables: Map<string, TableSchema>;
}

const ATOMIC: readonly string[] = ['integer', 'real', 'boolean', 'string', 'uuid'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses get_schema output. Throws OvsdbSchemaError naming the table and column on malformed input. */
export function parseSchema(json: unknown): DbSchema {
  if (!isObject(json) || typeof json.name !== 'string' || !isObject(json.tables)) {
    throw new OvsdbSchemaError('schema is not an object with name and tables', { got: typeof json });
  }
  const tables = new Map<string, TableSchema>();
  for (const [tname, tjson] of Object.entries(json.tables)) tables.set(tname, parseTable(tname, tjson));
  const schema: DbSchema = { name: json.name, version: typeof json.version === 'string' ? json.version : '', tables };
  if (typeof json.cksum === 'string') schema.cksum = json.cksum;
  return schema;
}

function parseTable(name: string, json: unknown): TableSchema {
  if (!isObject(json) || !isObject(json.columns)) throw new OvsdbSchemaError('table schema without columns', { table: name });
  const columns = new Map<string, ColumnSchema>();
  const uuidType: ColumnType = { key: { type: 'uuid' }, min: 1, max: 1 };
  columns.set('_uuid', { name: '_uuid', type: uuidType, ephemeral: false, mutable: false });
  columns.set('_version', { name: '_version', type: uuidType, ephemeral: false, mutable: false });
  for (const [cname, cjson] of Object.entries(json.columns)) {
    if (!isObject(cjson)) throw new OvsdbSchemaError('column schema is not an object', { table: name, column: cname });
    columns.set(cname, {
      name: cname,
      type: parseColumnType(cjson.type, { table: name, column: cname }),
      ephemeral: cjson.ephemeral === true,
      mutable: cjson.mutable !== false,
    });
  }
  const table: TableSchema = {
    name,
    columns,
    isRoot: json.isRoot === true,
    indexes: Array.isArray(json.indexes) ? (json.indexes as unknown[]).filter(Array.isArray).map((ix) => (ix as unknown[]).map(String)) : [],
  };
  if (typeof json.maxRows === 'number') table.maxRows = json.maxRows;
  return table;
}

export function parseColumnType(json: unknown, where: { table: string; column: string }): ColumnType {
  if (typeof json === 'string') return { key: parseBaseType(json, where), min: 1, max: 1 };
  if (!isObject(json)) throw new OvsdbSchemaError('bad column type', { ...where, type: JSON.stringify(json) });
  const t: ColumnType = { key: parseBaseType(json.key, where), min: 1, max: 1 };
  if (json.value !== undefined) t.value = parseBaseType(json.value, where);
  if (json.min !== undefined) {
    if (json.min !== 0 && json.min !== 1) throw new OvsdbSchemaError('bad column type min', { ...where, min: json.min });
    t.min = json.min;
  }
  if (json.max !== undefined) {
    if (json.max === 'unlimited') t.max = Infinity;
    else if (typeof json.max === 'number' && Number.isInteger(json.max) && json.max >= 1) t.max = json.max;
    else throw new OvsdbSchemaError('bad column type max', { ...where, max: json.max });
  }
  if (t.min > t.max) throw new OvsdbSchemaError('column type min above max', { ...where, min: t.min, max: t.max });
  return t;
}

function parseBaseType(json: unknown, where: { table: string; column: string }): BaseType {
  if (typeof json === 'string') {
    if (!ATOMIC.includes(json)) throw new OvsdbSchemaError('unknown atomic type', { ...where, type: json });
    return { type: json as AtomicType };
  }
  if (!isObject(json) || typeof json.type !== 'string' || !ATOMIC.includes(json.type)) {
    throw new OvsdbSchemaError('bad base type', { ...where, type: JSON.stringify(json) });
  }
  const b: BaseType = { type: json.type as AtomicType };
  if (json.enum !== undefined) b.enum = setAtoms(json.enum);
  for (const k of ['minInteger', 'maxInteger', 'minReal', 'maxReal', 'minLength', 'maxLength'] as const) {
    const v = json[k];
    if (typeof v === 'number') b[k] = v;
  }
  if (typeof json.refTable === 'string') b.refTable = json.refTable;
  if (json.refType === 'strong' || json.refType === 'weak') b.refType = json.refType;
  else if (b.refTable) b.refType = 'strong';
  return b;
}

/** The table, or OvsdbSchemaError naming the database and table. */
export function schemaTable(schema: DbSchema, table: string): TableSchema {
  const t = schema.tables.get(table);
  if (!t) throw new OvsdbSchemaError('no such table', { db: schema.name, table });
  return t;
}

/** The column, or OvsdbSchemaError naming the table and column. */
export function schemaColumn(table: TableSchema, column: string): ColumnSchema {
  const c = table.columns.get(column);
  if (!c) throw new OvsdbSchemaError('no such column', { table: table.name, column });
  return c;
}

export const isMapType = (t: ColumnType): boolean => t.value !== undefined;
/** A set or map: more than one element possible (update2 diffs are element-wise). */
export const isCompositeType = (t: ColumnType): boolean => t.max > 1;
