import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { ConfigError, kv } from '../errors.js';

/** One VM of an inventory file: `{"vm": "name", "mac": "52:54:00:…", "ips": ["10.0.0.5"]}`. */
export interface InventoryFileEntry {
  vm: string;
  mac?: string;
  ips: string[];
}

const MAC_RE = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/;

/** Checks parsed inventory JSON; every problem names the entry index, the field and the value. */
export function parseInventory(data: unknown, source = 'inventory'): InventoryFileEntry[] {
  if (!Array.isArray(data)) throw new ConfigError(`${source}: expected a JSON array of {vm, mac, ips}${kv({ got: typeof data })}`);
  return data.map((raw, i) => {
    const at = (field: string, value: unknown, expected: string) =>
      new ConfigError(`${source}: invalid entry${kv({ index: i, field, value: typeof value === 'string' ? value : JSON.stringify(value) ?? 'undefined', expected })}`);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw at('entry', raw, 'an object');
    const e = raw as Record<string, unknown>;
    for (const k of Object.keys(e)) if (!['vm', 'mac', 'ips'].includes(k)) throw at(k, e[k], 'only vm, mac and ips');
    if (typeof e.vm !== 'string' || !e.vm.trim()) throw at('vm', e.vm, 'a non-empty name');
    const out: InventoryFileEntry = { vm: e.vm, ips: [] };
    if (e.mac !== undefined) {
      if (typeof e.mac !== 'string' || !MAC_RE.test(e.mac)) throw at('mac', e.mac, 'a MAC like 52:54:00:12:34:56');
      out.mac = e.mac.toLowerCase().replace(/-/g, ':');
    }
    if (e.ips !== undefined) {
      if (!Array.isArray(e.ips)) throw at('ips', e.ips, 'an array of IP addresses');
      for (const ip of e.ips) {
        if (typeof ip !== 'string' || !isIP(ip)) throw at('ips', ip, 'an IPv4 or IPv6 address');
        out.ips.push(ip);
      }
    }
    if (!out.mac && !out.ips.length) throw at('mac', undefined, 'a mac or at least one ip');
    return out;
  });
}

export async function loadInventoryFile(path: string): Promise<InventoryFileEntry[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`inventory: cannot read file${kv({ file: path, cause: (e as NodeJS.ErrnoException).code ?? (e as Error).message })}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`inventory: not valid JSON${kv({ file: path, error: (e as Error).message })}`);
  }
  return parseInventory(data, `inventory ${path}`);
}
