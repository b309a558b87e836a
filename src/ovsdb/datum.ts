/**
 * OVSDB datum notation (RFC 7047 §5.1) as plain data, plus conversion between wire form and
 * JavaScript values.
 *
 * Wire forms:  atom            string | number | boolean | ["uuid", U] | ["named-uuid", N]
 *              set             atom | ["set", [atom...]]     (a 1-element set may be a bare atom)
 *              map             ["map", [[key, value]...]]
 * JavaScript:  uuids stay tagged (`{ uuid }` / `{ namedUuid }`) so they never mix with strings;
 *              sets become arrays, maps become Map.
 */
import { OvsdbDatumError } from './errors.js';
import type { BaseType, ColumnType, TableSchema } from './schema.js';

export type WireUuid = ['uuid', string];
export type WireNamedUuid = ['named-uuid', string];
export type WireAtom = string | number | boolean | WireUuid | WireNamedUuid;
export type WireSet = ['set', WireAtom[]];
export type WireMap = ['map', [WireAtom, WireAtom][]];
export type WireDatum = WireAtom | WireSet | WireMap;

export interface Uuid {
  readonly uuid: string;
}
export interface NamedUuid {
  readonly namedUuid: string;
}
export type Atom = string | number | boolean | Uuid | NamedUuid;

export const uuid = (id: string): WireUuid => ['uuid', id];
export const namedUuid = (name: string): WireNamedUuid => ['named-uuid', name];
export const wireSet = (atoms: readonly WireAtom[]): WireSet => ['set', [...atoms]];
export const wireMap = (entries: Iterable<readonly [WireAtom, WireAtom]> | Record<string, string>): WireMap => {
  const list: [WireAtom, WireAtom][] = [];
  if (Symbol.iterator in Object(entries)) {
    for (const [k, v] of entries as Iterable<readonly [WireAtom, WireAtom]>) list.push([k, v]);
  } else {
    for (const [k, v] of Object.entries(entries as Record<string, string>)) list.push([k, v]);
  }
  return ['map', list];
};
export const uuidSet = (ids: readonly string[]): WireSet => wireSet(ids.map(uuid));
export const emptySet = (): WireSet => ['set', []];

export function isWireUuid(v: unknown): v is WireUuid {
  return Array.isArray(v) && v.length === 2 && v[0] === 'uuid' && typeof v[1] === 'string';
}

/** Reads a wire set (or a bare atom standing for a 1-element set) as an array of atoms. */
export function setAtoms(v: unknown): WireAtom[] {
  if (Array.isArray(v) && v[0] === 'set' && Array.isArray(v[1])) return v[1] as WireAtom[];
  if (v === undefined) return [];
  return [v as WireAtom];
}

/** Reads a wire set of uuids as an array of uuid strings. */
export function setUuids(v: unknown): string[] {
  return setAtoms(v)
    .filter(isWireUuid)
    .map((a) => a[1]);
}

/** Reads a wire map with string keys and values as a Record. */
export function mapToRecord(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(v) && v[0] === 'map' && Array.isArray(v[1])) {
    for (const pair of v[1] as unknown[]) {
      if (Array.isArray(pair) && pair.length === 2) out[String(atomText(pair[0]))] = String(atomText(pair[1]));
    }
  }
  return out;
}

function atomText(a: unknown): unknown {
  return isWireUuid(a) ? a[1] : a;
}

/** Reads an optional scalar column (a set of 0 or 1 atoms) as value or undefined. */
export function optionalAtom<T extends WireAtom = WireAtom>(v: unknown): T | undefined {
  const atoms = setAtoms(v);
  return atoms.length ? (atoms[0] as T) : undefined;
}

/* ---------------------------------------------------------------------------------------------
 * Typed conversion (JS value <-> wire datum) checked against a column type from the schema,
 * equality, defaults, and the update2 "modify" diff.
 * ------------------------------------------------------------------------------------------- */

/**
 * JavaScript forms accepted by toWireDatum:
 *   scalar column (min 1, max 1)      an atom
 *   optional column (min 0, max 1)    an atom, or undefined / null / [] for "no value"
 *   set column                        an array or Set of atoms (a bare atom stands for a 1-element set)
 *   map column                        a Map, an array of [key, value] pairs, or (string keys) a plain object
 * uuids are `{ uuid }` / `{ namedUuid }` (or their wire forms ['uuid', U] / ['named-uuid', N]).
 */
export type JsDatum = Atom | undefined | null | readonly Atom[] | ReadonlySet<Atom> | ReadonlyMap<Atom, Atom> | Record<string, Atom> | readonly (readonly [Atom, Atom])[];

export interface DatumWhere {
  table: string;
  column: string;
}

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const NAMED_UUID_RE = /^[_a-zA-Z][_a-zA-Z0-9]*$/;

function shortJson(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v, (_k, x) => (x instanceof Map ? [...x.entries()] : x instanceof Set ? [...x] : x)) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/** For reasons: strings in single quotes (no JSON escaping inside the message), the rest as JSON. */
function show(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return `[${v.map((x) => `'${x}'`).join(', ')}]`;
  return shortJson(v);
}

function datumError(where: DatumWhere, value: unknown, reason: string): OvsdbDatumError {
  return new OvsdbDatumError('value does not fit column', { table: where.table, column: where.column, value: shortJson(value), reason });
}

function describeType(t: ColumnType): string {
  const base = (b: BaseType) => b.type + (b.refTable ? `->${b.refTable}` : '');
  const max = t.max === Infinity ? 'unlimited' : String(t.max);
  if (t.value) return `map ${base(t.key)}->${base(t.value)} [${t.min},${max}]`;
  if (t.min === 1 && t.max === 1) return base(t.key);
  return `set of ${base(t.key)} [${t.min},${max}]`;
}

function isJsUuid(v: unknown): v is Uuid {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as Uuid).uuid === 'string';
}
function isJsNamedUuid(v: unknown): v is NamedUuid {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as NamedUuid).namedUuid === 'string';
}
function isWireNamedUuid(v: unknown): v is WireNamedUuid {
  return Array.isArray(v) && v.length === 2 && v[0] === 'named-uuid' && typeof v[1] === 'string';
}
function isAtomLike(v: unknown): boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || isJsUuid(v) || isJsNamedUuid(v) || isWireUuid(v) || isWireNamedUuid(v);
}

/** Converts one JS atom to a wire atom of base type `b`, checking enum, range and length. */
export function toWireAtom(b: BaseType, v: unknown, where: DatumWhere, whole: unknown = v): WireAtom {
  let atom: WireAtom;
  switch (b.type) {
    case 'integer':
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw datumError(where, whole, `expected an integer, got ${show(v)}`);
      if (b.minInteger !== undefined && v < b.minInteger) throw datumError(where, whole, `integer ${v} below minimum ${b.minInteger}`);
      if (b.maxInteger !== undefined && v > b.maxInteger) throw datumError(where, whole, `integer ${v} above maximum ${b.maxInteger}`);
      atom = v;
      break;
    case 'real':
      if (typeof v !== 'number' || !Number.isFinite(v)) throw datumError(where, whole, `expected a real, got ${show(v)}`);
      if (b.minReal !== undefined && v < b.minReal) throw datumError(where, whole, `real ${v} below minimum ${b.minReal}`);
      if (b.maxReal !== undefined && v > b.maxReal) throw datumError(where, whole, `real ${v} above maximum ${b.maxReal}`);
      atom = v;
      break;
    case 'boolean':
      if (typeof v !== 'boolean') throw datumError(where, whole, `expected a boolean, got ${show(v)}`);
      atom = v;
      break;
    case 'string': {
      if (typeof v !== 'string') throw datumError(where, whole, `expected a string, got ${show(v)}`);
      const len = [...v].length; // RFC 7047: length in Unicode characters
      if (b.minLength !== undefined && len < b.minLength) throw datumError(where, whole, `string shorter than ${b.minLength}`);
      if (b.maxLength !== undefined && len > b.maxLength) throw datumError(where, whole, `string longer than ${b.maxLength}`);
      atom = v;
      break;
    }
    case 'uuid':
      if (isJsUuid(v) || isWireUuid(v)) {
        const id = isJsUuid(v) ? v.uuid : v[1];
        if (!UUID_RE.test(id)) throw datumError(where, whole, `malformed uuid ${JSON.stringify(id)}`);
        atom = ['uuid', id];
      } else if (isJsNamedUuid(v) || isWireNamedUuid(v)) {
        const name = isJsNamedUuid(v) ? v.namedUuid : v[1];
        if (!NAMED_UUID_RE.test(name)) throw datumError(where, whole, `malformed named-uuid ${JSON.stringify(name)}`);
        atom = ['named-uuid', name];
      } else throw datumError(where, whole, `expected a uuid ({ uuid } or { namedUuid }), got ${show(v)}`);
      break;
  }
  if (b.enum && !b.enum.some((e) => atomKey(e) === atomKey(atom))) {
    throw datumError(where, whole, `${show(atom)} not one of ${show(b.enum)}`);
  }
  return atom;
}

/** A stable string for an atom (for set membership and map keys). */
export function atomKey(a: unknown): string {
  return JSON.stringify(a);
}

/**
 * Converts a JS value to the wire datum for a column of type `t`, checking base types, cardinality,
 * ranges, enums and duplicates. Errors name table, column and value.
 */
export function toWireDatum(t: ColumnType, value: unknown, where: DatumWhere): WireDatum {
  if (t.value) {
    let pairs: [unknown, unknown][];
    if (value instanceof Map) pairs = [...value.entries()];
    else if (Array.isArray(value) && value.every((p) => Array.isArray(p) && p.length === 2) && !isWireUuid(value) && value[0] !== 'map') pairs = value as [unknown, unknown][];
    else if (value === undefined || value === null) pairs = [];
    else if (typeof value === 'object' && !Array.isArray(value) && !isJsUuid(value) && !isJsNamedUuid(value)) {
      if (t.key.type !== 'string') throw datumError(where, value, `map keys are ${t.key.type}: pass a Map`);
      pairs = Object.entries(value as Record<string, unknown>);
    } else throw datumError(where, value, `expected ${describeType(t)}`);
    const out: [WireAtom, WireAtom][] = [];
    const seen = new Set<string>();
    for (const [k, v] of pairs) {
      const wk = toWireAtom(t.key, k, where, value);
      const key = atomKey(wk);
      if (seen.has(key)) throw datumError(where, value, `duplicate map key ${show(wk)}`);
      seen.add(key);
      out.push([wk, toWireAtom(t.value, v, where, value)]);
    }
    checkCount(t, out.length, where, value);
    return ['map', out];
  }
  let atoms: unknown[];
  if (value instanceof Set) atoms = [...value];
  else if (Array.isArray(value) && !isWireUuid(value) && !isWireNamedUuid(value)) atoms = value;
  else if (value === undefined || value === null) atoms = [];
  else if (isAtomLike(value)) atoms = [value];
  else throw datumError(where, value, `expected ${describeType(t)}`);
  const out: WireAtom[] = [];
  const seen = new Set<string>();
  for (const a of atoms) {
    const w = toWireAtom(t.key, a, where, value);
    const key = atomKey(w);
    if (seen.has(key)) throw datumError(where, value, `duplicate set element ${show(w)}`);
    seen.add(key);
    out.push(w);
  }
  checkCount(t, out.length, where, value);
  return out.length === 1 ? out[0]! : ['set', out];
}

function checkCount(t: ColumnType, n: number, where: DatumWhere, value: unknown): void {
  if (n < t.min || n > t.max) {
    const max = t.max === Infinity ? 'unlimited' : t.max;
    throw datumError(where, value, `${n} element(s) where the column takes ${t.min}..${max} (${describeType(t)})`);
  }
}

function fromWireAtom(b: BaseType, a: unknown, where: DatumWhere): Atom {
  const ok =
    (b.type === 'integer' && typeof a === 'number' && Number.isInteger(a)) ||
    (b.type === 'real' && typeof a === 'number') ||
    (b.type === 'boolean' && typeof a === 'boolean') ||
    (b.type === 'string' && typeof a === 'string') ||
    (b.type === 'uuid' && (isWireUuid(a) || isWireNamedUuid(a)));
  if (!ok) throw datumError(where, a, `wire atom is not ${b.type}`);
  if (isWireUuid(a)) return { uuid: a[1] };
  if (isWireNamedUuid(a)) return { namedUuid: a[1] };
  return a as Atom;
}

/**
 * Converts a wire datum to JS for a column of type `t`: scalar → atom, optional → atom | undefined,
 * set → array, map → Map. uuids become `{ uuid }`.
 */
export function fromWireDatum(t: ColumnType, wire: unknown, where: DatumWhere): Atom | undefined | Atom[] | Map<Atom, Atom> {
  if (t.value) {
    if (!(Array.isArray(wire) && wire[0] === 'map' && Array.isArray(wire[1]))) throw datumError(where, wire, 'wire value is not a map');
    const m = new Map<Atom, Atom>();
    for (const p of wire[1] as unknown[]) {
      if (!Array.isArray(p) || p.length !== 2) throw datumError(where, wire, 'bad map pair');
      m.set(fromWireAtom(t.key, p[0], where), fromWireAtom(t.value, p[1], where));
    }
    return m;
  }
  if (Array.isArray(wire) && wire[0] === 'map') throw datumError(where, wire, 'wire value is a map, column is not');
  const atoms = setAtoms(wire).map((a) => fromWireAtom(t.key, a, where));
  if (t.max === 1) {
    if (atoms.length > 1) throw datumError(where, wire, 'more than one element for a single-valued column');
    return t.min === 1 ? atoms[0] : atoms[0] ?? undefined;
  }
  return atoms;
}

/** Encodes a JS row against a table schema (each column checked). */
export function encodeRow(table: TableSchema, row: Record<string, unknown>): Record<string, WireDatum> {
  const out: Record<string, WireDatum> = {};
  for (const [column, v] of Object.entries(row)) {
    const col = table.columns.get(column);
    if (!col) throw new OvsdbDatumError('no such column', { table: table.name, column });
    out[column] = toWireDatum(col.type, v, { table: table.name, column });
  }
  return out;
}

/** Decodes a wire row against a table schema. Unknown columns are kept as-is. */
export function decodeRow(table: TableSchema, row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [column, v] of Object.entries(row)) {
    const col = table.columns.get(column);
    out[column] = col ? fromWireDatum(col.type, v, { table: table.name, column }) : v;
  }
  return out;
}

/** The value a column has when a row omits it (update2 initial/insert rows omit defaults). */
export function defaultDatum(t: ColumnType): WireDatum {
  const atom = (b: BaseType): WireAtom => {
    switch (b.type) {
      case 'integer':
      case 'real':
        return 0;
      case 'boolean':
        return false;
      case 'string':
        return '';
      case 'uuid':
        return ['uuid', ZERO_UUID];
    }
  };
  if (t.value) return t.min === 0 ? ['map', []] : ['map', [[atom(t.key), atom(t.value)]]];
  if (t.min === 0) return ['set', []];
  return atom(t.key);
}

/** Reads a wire map's pairs (empty for anything else). */
export function mapPairs(v: unknown): [WireAtom, WireAtom][] {
  return Array.isArray(v) && v[0] === 'map' && Array.isArray(v[1]) ? (v[1] as [WireAtom, WireAtom][]) : [];
}

const isWireMapValue = (v: unknown): boolean => Array.isArray(v) && v[0] === 'map';

/** A set in the form ovsdb-server sends it: one element bare, otherwise ['set', [...]]. */
export function canonicalSet(atoms: readonly WireAtom[]): WireDatum {
  return atoms.length === 1 ? atoms[0]! : ['set', [...atoms]];
}

/** Equality of two wire datums, ignoring set element and map pair order and 1-element set spelling. */
export function datumEquals(a: unknown, b: unknown): boolean {
  if (isWireMapValue(a) || isWireMapValue(b)) {
    if (!isWireMapValue(a) || !isWireMapValue(b)) return false;
    const pa = mapPairs(a);
    const pb = mapPairs(b);
    if (pa.length !== pb.length) return false;
    const m = new Map(pa.map(([k, v]) => [atomKey(k), atomKey(v)]));
    return pb.every(([k, v]) => m.get(atomKey(k)) === atomKey(v));
  }
  const sa = setAtoms(a);
  const sb = setAtoms(b);
  if (sa.length !== sb.length) return false;
  const keys = new Set(sa.map(atomKey));
  return sb.every((x) => keys.has(atomKey(x)));
}

/**
 * Applies an update2/update3 "modify" diff to an old value (ovsdb-server(7) §4.1.14):
 *   single-valued columns (max 1): the diff is the new value;
 *   sets: the diff holds the elements that changed membership (symmetric difference);
 *   maps: a key absent from the old map is added; a key present with the same value is removed;
 *         a key present with another value takes the new value.
 * Without a type, the shape of the old and diff values decides (a bare old atom is replaced).
 */
export function applyDatumDiff(t: ColumnType | undefined, old: WireDatum | undefined, diff: WireDatum): WireDatum {
  const isMap = t ? t.value !== undefined : isWireMapValue(old) || isWireMapValue(diff);
  const isSetForm = (v: unknown) => Array.isArray(v) && v[0] === 'set';
  const composite = t ? t.max > 1 : isMap || isSetForm(old) || isSetForm(diff);
  if (!composite) {
    // python-ovs applies element-wise when the old value is empty; the result is the same as replacing.
    return diff;
  }
  if (isMap) {
    const m = new Map<string, [WireAtom, WireAtom]>();
    for (const p of mapPairs(old)) m.set(atomKey(p[0]), p);
    for (const [k, v] of mapPairs(diff)) {
      const key = atomKey(k);
      const cur = m.get(key);
      if (cur && atomKey(cur[1]) === atomKey(v)) m.delete(key);
      else m.set(key, [k, v]);
    }
    return ['map', [...m.values()]];
  }
  const s = new Map<string, WireAtom>();
  for (const a of setAtoms(old)) s.set(atomKey(a), a);
  for (const a of setAtoms(diff)) {
    const key = atomKey(a);
    if (s.has(key)) s.delete(key);
    else s.set(key, a);
  }
  return canonicalSet([...s.values()]);
}
