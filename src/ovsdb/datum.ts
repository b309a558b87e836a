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
