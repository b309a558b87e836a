/**
 * The desired state of one OVS port mirror (what the user asks for), its validation, and the
 * marks mirrorflow leaves in OVSDB to recognise what it owns. Pure: no I/O, no clock.
 *
 * Direction, in OVS terms (ovs-vswitchd.conf.db(5), table Mirror):
 *   select_src_port  ports on which ARRIVING packets are mirrored  = packets the VM sends   → 'from-vm'
 *   select_dst_port  ports on which DEPARTING packets are mirrored = packets sent to the VM → 'to-vm'
 *
 * VM matching ('vms' selection): an entry matches an Interface when it equals one of its
 * external_ids vm-uuid, vm-id or iface-id, or, when the entry is a MAC address, its attached-mac
 * (compared case-insensitively). A vm-uuid / vm-id selects every interface of that VM on the bridge;
 * an iface-id or a MAC selects one interface.
 */
import { createHash } from 'node:crypto';
import { ConfigError, kv } from '../errors.js';

export type MirrorSelection =
  | { kind: 'all' }
  | { kind: 'ports'; ports: string[] }
  | { kind: 'vms'; vms: string[] }
  | { kind: 'vlans'; vlans: number[] };
export type MirrorDirection = 'both' | 'to-vm' | 'from-vm';
/**
 * Where mirrored packets go: an existing port of the bridge, an internal port mirrorflow creates
 * and owns (named `port`, else a generated name, see internalPortName), or an RSPAN VLAN.
 */
export type MirrorOutput = { kind: 'port'; port: string } | { kind: 'internal'; port?: string } | { kind: 'vlan'; vlan: number };

export interface MirrorSpec {
  bridge: string;
  name: string;
  selection: MirrorSelection;
  direction: MirrorDirection;
  output: MirrorOutput;
  /** Bytes kept of each mirrored packet (OVS truncates in the datapath); absent: whole packets. */
  snaplen?: number;
}

/** external_ids key on Mirror, Port and Interface rows: the owner id of the mirrorflow instance. */
export const OWNER_KEY = 'mirrorflow-owner';
/** external_ids key on Mirror rows: specHash() of the spec the row was written for. */
export const SPEC_KEY = 'mirrorflow-spec';
/** external_ids key on the owned internal Port / Interface: the name of the mirror it serves. */
export const MIRROR_KEY = 'mirrorflow-mirror';

export const SELECT_VLAN_MIN = 0;
export const SELECT_VLAN_MAX = 4095;
export const OUTPUT_VLAN_MIN = 1;
export const OUTPUT_VLAN_MAX = 4095;
export const SNAPLEN_MIN = 14;
export const SNAPLEN_MAX = 65535;
/** Linux IFNAMSIZ - 1: an internal port is a kernel (or tap) network device. */
export const IFNAME_MAX_CHARS = 15;
export const NAME_MAX_CHARS = 64;
export const VM_ID_MAX_CHARS = 128;

const NAME_RE = /^[A-Za-z0-9_.@+-][A-Za-z0-9_.:@+-]*$/;
/** Linux rejects '/', ':' and whitespace in device names; keep to a safe set. */
const IFNAME_RE = /^[A-Za-z0-9_.@+-]+$/;
const VM_ID_RE = /^[A-Za-z0-9_.:@+-]+$/;
const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

export function isMac(s: string): boolean {
  return MAC_RE.test(s);
}

/**
 * Checks a mirror spec read from configuration or flags and returns a normalised copy: lists
 * de-duplicated (first occurrence kept), VLAN lists sorted. Throws ConfigError naming the field,
 * the value and what was expected. Unknown keys are rejected (they are usually typos).
 */
export function validateMirrorSpec(input: unknown): MirrorSpec {
  const obj = asObject(input, 'mirror', undefined);
  const mirrorName = typeof obj.name === 'string' ? obj.name : undefined;
  const ctx = mirrorName === undefined ? {} : { mirror: mirrorName };
  rejectUnknown(obj, ['bridge', 'name', 'selection', 'direction', 'output', 'snaplen'], '', ctx);

  const bridge = checkName(obj.bridge, 'bridge', NAME_MAX_CHARS, NAME_RE, ctx);
  const name = checkName(obj.name, 'name', NAME_MAX_CHARS, NAME_RE, ctx);

  const selIn = asObject(obj.selection, 'selection', ctx);
  let selection: MirrorSelection;
  switch (selIn.kind) {
    case 'all':
      rejectUnknown(selIn, ['kind'], 'selection.', ctx);
      selection = { kind: 'all' };
      break;
    case 'ports': {
      rejectUnknown(selIn, ['kind', 'ports'], 'selection.', ctx);
      const ports = nonEmptyList(selIn.ports, 'selection.ports', 'port names', ctx).map((p, i) =>
        checkName(p, `selection.ports[${i}]`, NAME_MAX_CHARS, NAME_RE, ctx),
      );
      selection = { kind: 'ports', ports: dedupe(ports) };
      break;
    }
    case 'vms': {
      rejectUnknown(selIn, ['kind', 'vms'], 'selection.', ctx);
      const vms = nonEmptyList(selIn.vms, 'selection.vms', 'VM ids (vm-uuid, vm-id, iface-id or MAC)', ctx).map((v, i) =>
        checkName(v, `selection.vms[${i}]`, VM_ID_MAX_CHARS, VM_ID_RE, ctx),
      );
      selection = { kind: 'vms', vms: dedupe(vms) };
      break;
    }
    case 'vlans': {
      rejectUnknown(selIn, ['kind', 'vlans'], 'selection.', ctx);
      const vlans = nonEmptyList(selIn.vlans, 'selection.vlans', 'VLAN ids', ctx).map((v, i) =>
        checkInt(v, `selection.vlans[${i}]`, SELECT_VLAN_MIN, SELECT_VLAN_MAX, ctx),
      );
      selection = { kind: 'vlans', vlans: dedupe(vlans).sort((a, b) => a - b) };
      break;
    }
    default:
      throw invalid('selection kind not supported', { ...ctx, field: 'selection.kind', value: selIn.kind, expected: 'all|ports|vms|vlans' });
  }

  const direction = obj.direction === undefined ? 'both' : obj.direction;
  if (direction !== 'both' && direction !== 'to-vm' && direction !== 'from-vm') {
    throw invalid('direction not supported', { ...ctx, field: 'direction', value: direction, expected: 'both|to-vm|from-vm' });
  }

  const outIn = asObject(obj.output, 'output', ctx);
  let output: MirrorOutput;
  switch (outIn.kind) {
    case 'port':
      rejectUnknown(outIn, ['kind', 'port'], 'output.', ctx);
      output = { kind: 'port', port: checkName(outIn.port, 'output.port', NAME_MAX_CHARS, NAME_RE, ctx) };
      break;
    case 'internal':
      rejectUnknown(outIn, ['kind', 'port'], 'output.', ctx);
      output =
        outIn.port === undefined
          ? { kind: 'internal' }
          : { kind: 'internal', port: checkName(outIn.port, 'output.port', IFNAME_MAX_CHARS, IFNAME_RE, ctx) };
      break;
    case 'vlan':
      rejectUnknown(outIn, ['kind', 'vlan'], 'output.', ctx);
      output = { kind: 'vlan', vlan: checkInt(outIn.vlan, 'output.vlan', OUTPUT_VLAN_MIN, OUTPUT_VLAN_MAX, ctx) };
      break;
    default:
      throw invalid('output kind not supported', { ...ctx, field: 'output.kind', value: outIn.kind, expected: 'port|internal|vlan' });
  }

  const spec: MirrorSpec = { bridge, name, selection, direction, output };
  if (obj.snaplen !== undefined) spec.snaplen = checkInt(obj.snaplen, 'snaplen', SNAPLEN_MIN, SNAPLEN_MAX, ctx);
  return spec;
}

/**
 * A short, stable digest of the spec (16 hex chars). Order of list entries does not matter.
 * Stored in the Mirror's external_ids so a changed spec is visible in OVSDB.
 */
export function specHash(spec: MirrorSpec): string {
  return sha256Hex(canonicalSpecJson(spec)).slice(0, 16);
}

/** The spec as JSON with fixed key order and sorted, de-duplicated lists. */
export function canonicalSpecJson(spec: MirrorSpec): string {
  const sel = spec.selection;
  const selection =
    sel.kind === 'all'
      ? { kind: 'all' }
      : sel.kind === 'ports'
        ? { kind: 'ports', ports: sortedUnique(sel.ports) }
        : sel.kind === 'vms'
          ? { kind: 'vms', vms: sortedUnique(sel.vms) }
          : { kind: 'vlans', vlans: dedupe(sel.vlans).sort((a, b) => a - b) };
  const out = spec.output;
  const output =
    out.kind === 'port'
      ? { kind: 'port', port: out.port }
      : out.kind === 'internal'
        ? { kind: 'internal', port: out.port ?? null }
        : { kind: 'vlan', vlan: out.vlan };
  return JSON.stringify({
    bridge: spec.bridge,
    name: spec.name,
    selection,
    direction: spec.direction,
    output,
    snaplen: spec.snaplen ?? null,
  });
}

/**
 * Name of the internal port created for a mirror when the user gives none: `mf` + 13 hex chars
 * of sha256(bridge NUL mirror), 15 chars, the Linux interface name limit. Deterministic, so a
 * restarted agent finds the port it created before.
 */
export function internalPortName(bridge: string, mirror: string): string {
  return `mf${sha256Hex(`${bridge}\0${mirror}`).slice(0, IFNAME_MAX_CHARS - 2)}`;
}

/** The output port name of an 'internal' output: the user's, else the generated one. */
export function internalOutputPortName(spec: Pick<MirrorSpec, 'bridge' | 'name' | 'output'>): string | undefined {
  if (spec.output.kind !== 'internal') return undefined;
  return spec.output.port ?? internalPortName(spec.bridge, spec.name);
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

function dedupe<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

function sortedUnique(xs: readonly string[]): string[] {
  return dedupe(xs).sort();
}

function invalid(what: string, fields: Record<string, unknown>): ConfigError {
  return new ConfigError(`config: mirror ${what}${kv(fields)}`, fields);
}

function asObject(v: unknown, field: string, ctx: Record<string, unknown> | undefined): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw invalid(`${field} must be an object`, { ...ctx, field, value: v === undefined ? 'undefined' : v, expected: 'object' });
  }
  return v as Record<string, unknown>;
}

function rejectUnknown(obj: Record<string, unknown>, allowed: string[], prefix: string, ctx: Record<string, unknown>): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw invalid('has an unknown key', { ...ctx, field: `${prefix}${key}`, expected: allowed.map((k) => prefix + k).join('|') });
    }
  }
}

function checkName(v: unknown, field: string, maxChars: number, re: RegExp, ctx: Record<string, unknown>): string {
  if (typeof v !== 'string') throw invalid(`${field} must be a string`, { ...ctx, field, value: v === undefined ? 'undefined' : v, expected: 'string' });
  if (v.length === 0) throw invalid(`${field} is empty`, { ...ctx, field, expected: 'non-empty' });
  if (v.length > maxChars) throw invalid(`${field} is too long`, { ...ctx, field, value: v, chars: v.length, maxChars });
  if (!re.test(v)) throw invalid(`${field} has characters that are not allowed`, { ...ctx, field, value: v, expected: re.source });
  return v;
}

function checkInt(v: unknown, field: string, min: number, max: number, ctx: Record<string, unknown>): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw invalid(`${field} must be an integer`, { ...ctx, field, value: v === undefined ? 'undefined' : v, expected: `${min}..${max}` });
  }
  if (v < min || v > max) throw invalid(`${field} out of range`, { ...ctx, field, value: v, expected: `${min}..${max}` });
  return v;
}

function nonEmptyList(v: unknown, field: string, what: string, ctx: Record<string, unknown>): unknown[] {
  if (!Array.isArray(v)) throw invalid(`${field} must be a list`, { ...ctx, field, value: v === undefined ? 'undefined' : v, expected: `list of ${what}` });
  if (v.length === 0) throw invalid(`${field} is empty`, { ...ctx, field, expected: `at least one of ${what}` });
  if (v.length > 4096) throw invalid(`${field} is too long`, { ...ctx, field, entries: v.length, expected: 'at most 4096 entries' });
  return v;
}
