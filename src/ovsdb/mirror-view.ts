/**
 * Mirrors as users see them (`mirror list`, `mirror stats`): pure, from the cached tables.
 */
import { mapToRecord, optionalAtom, setAtoms, setUuids, type WireDatum } from './datum.js';
import { OWNER_KEY } from './mirror-spec.js';

type Tables = ReadonlyMap<string, ReadonlyMap<string, Readonly<Record<string, WireDatum>>>>;

export interface PortRef {
  uuid: string;
  /** Port name; undefined when the row is not (or no longer) in the database. */
  name: string | undefined;
}

export interface MirrorView {
  uuid: string;
  name: string;
  /** Bridge holding the mirror (undefined for a row no bridge refers to, about to be collected). */
  bridge: string | undefined;
  /** Owner id from external_ids mirrorflow-owner, undefined when mirrorflow did not create it. */
  owner: string | undefined;
  selectAll: boolean;
  selectSrcPort: PortRef[];
  selectDstPort: PortRef[];
  selectVlan: number[];
  outputPort: PortRef | undefined;
  outputVlan: number | undefined;
  snaplen: number | undefined;
  statistics: Record<string, number>;
  externalIds: Record<string, string>;
}

export function viewMirrors(tables: Tables): MirrorView[] {
  const ports = tables.get('Port') ?? new Map();
  const bridgeOfMirror = new Map<string, string>();
  for (const br of (tables.get('Bridge') ?? new Map()).values()) for (const m of setUuids(br.mirrors)) bridgeOfMirror.set(m, String(br.name));
  const ref = (uuid: string): PortRef => ({ uuid, name: ports.get(uuid) ? String(ports.get(uuid)!.name) : undefined });
  const out: MirrorView[] = [];
  for (const [uuid, row] of tables.get('Mirror') ?? new Map()) {
    const ext = mapToRecord(row.external_ids);
    const outUuid = setUuids(row.output_port)[0];
    const statistics: Record<string, number> = {};
    if (Array.isArray(row.statistics) && row.statistics[0] === 'map') {
      for (const [k, v] of row.statistics[1] as [string, number][]) statistics[k] = v;
    }
    out.push({
      uuid,
      name: String(row.name),
      bridge: bridgeOfMirror.get(uuid),
      owner: ext[OWNER_KEY],
      selectAll: row.select_all === true,
      selectSrcPort: setUuids(row.select_src_port).map(ref).sort(byName),
      selectDstPort: setUuids(row.select_dst_port).map(ref).sort(byName),
      selectVlan: setAtoms(row.select_vlan)
        .filter((v): v is number => typeof v === 'number')
        .sort((a, b) => a - b),
      outputPort: outUuid ? ref(outUuid) : undefined,
      outputVlan: optionalAtom<number>(row.output_vlan),
      snaplen: optionalAtom<number>(row.snaplen),
      statistics,
      externalIds: ext,
    });
  }
  out.sort((a, b) => (a.bridge ?? '').localeCompare(b.bridge ?? '') || a.name.localeCompare(b.name) || a.uuid.localeCompare(b.uuid));
  return out;
}

function byName(a: PortRef, b: PortRef): number {
  return (a.name ?? a.uuid).localeCompare(b.name ?? b.uuid);
}

/** Renders rows as an aligned text table. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
