/**
 * Names flow endpoints after VMs: by MAC first (what the mirror sees on the VM's own port), else by
 * IP (traffic routed to or from a VM elsewhere); an endpoint that is no known VM is named by its IP,
 * or by its MAC for non-IP frames. Pure; called per record, not per frame.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { formatIp, formatMac } from '../capture/decode/frame.js';

export interface VmIdentity {
  /** The name endpoints get: a VM name or id. */
  vm: string;
  mac?: string;
  ips?: readonly string[];
}

export class EndpointResolver {
  private byMac = new Map<number, string>();
  /** The same, keyed by the MAC's text as formatMac writes it (records carry text). */
  private byMacText = new Map<string, string>();
  private byIp = new Map<string, string>();
  /** Canonical text of IPs seen in records (bounded cache: most records repeat endpoints). */
  private readonly canonical = new Map<string, string>();
  /** The inventory as last given to replace(). */
  private vms: readonly VmIdentity[] = [];
  private readonly listeners = new Set<(vms: readonly VmIdentity[]) => void>();

  constructor(vms: Iterable<VmIdentity> = []) {
    this.replace(vms);
  }

  /** Replaces the whole inventory (e.g. after an OVSDB change). */
  replace(vms: Iterable<VmIdentity>): void {
    const list = [...vms];
    this.vms = list;
    this.byMac = new Map();
    this.byMacText = new Map();
    this.byIp = new Map();
    for (const v of list) {
      if (v.mac) {
        const m = parseMac(v.mac);
        this.byMac.set(m, v.vm);
        this.byMacText.set(formatMac(m), v.vm);
      }
      for (const ip of v.ips ?? []) this.byIp.set(canonicalIp(ip), v.vm);
    }
    for (const l of this.listeners) l(list);
  }

  /** The inventory as last given to replace() (for a copy of this resolver in another thread). */
  get identities(): readonly VmIdentity[] {
    return this.vms;
  }

  /** Calls `fn` with the new inventory after every replace(); returns the unsubscribe function. */
  onReplace(fn: (vms: readonly VmIdentity[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get size(): number {
    return new Set([...this.byMac.values(), ...this.byIp.values()]).size;
  }

  /** The VM behind this MAC / IP, or undefined. */
  vmOf(mac: number, ipVersion: number, ip: ArrayLike<number>): string | undefined {
    const byMac = this.byMac.get(mac);
    if (byMac !== undefined) return byMac;
    if (ipVersion === 4 || ipVersion === 6) return this.byIp.get(formatIp(ipVersion, ip));
    return undefined;
  }

  /** The endpoint's name: its VM, else its IP, else its MAC. */
  name(mac: number, ipVersion: number, ip: ArrayLike<number>): string {
    return this.vmOf(mac, ipVersion, ip) ?? (ipVersion === 4 || ipVersion === 6 ? formatIp(ipVersion, ip) : formatMac(mac));
  }

  /**
   * Same, from text fields of a record. Text as the capture writes it (formatMac, formatIp) is
   * looked up directly; other spellings are canonicalised first.
   */
  nameFromText(mac: string | undefined, ip: string | undefined): string {
    return this.lookupText(mac, ip, false);
  }

  /**
   * Same as nameFromText, for text written by the capture itself (flow-table.ts: formatMac,
   * formatIp): it is canonical already, so it is looked up as it is (no canonicalising cache).
   */
  nameFromCapturedText(mac: string | undefined, ip: string | undefined): string {
    if (ip && this.byIp.size === 0 && this.byMacText.size === 0) return ip;
    return this.lookupText(mac, ip, true);
  }

  private lookupText(mac: string | undefined, ip: string | undefined, canonicalText: boolean): string {
    if (mac && this.byMacText.size) {
      const v = this.byMacText.get(mac) ?? (canonicalText ? undefined : this.byMac.get(parseMac(mac)));
      if (v !== undefined) return v;
    }
    if (ip) {
      const withIps = this.byIp.size !== 0;
      if (withIps) {
        const direct = this.byIp.get(ip);
        if (direct !== undefined) return direct;
      }
      if (canonicalText) return withIps ? (this.byIp.get(ip) ?? ip) : ip;
      let c = this.canonical.get(ip);
      if (c === undefined) {
        if (this.canonical.size >= 65536) this.canonical.clear();
        this.canonical.set(ip, (c = canonicalIp(ip)));
      }
      return withIps ? (this.byIp.get(c) ?? c) : c;
    }
    return mac ?? 'unknown';
  }
}

export function parseMac(mac: string): number {
  return parseInt(mac.replace(/[:-]/g, ''), 16);
}

/** The text form formatIp produces, so lookups by text and by words agree. */
export function canonicalIp(ip: string): string {
  if (isIPv4(ip)) return ip.split('.').map((o) => String(Number(o))).join('.');
  if (!isIPv6(ip)) return ip;
  const words = ipv6Words(ip);
  return formatIp(6, words);
}

function ipv6Words(ip: string): Uint32Array {
  let text = ip.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const w = new Uint32Array(4);
  for (let i = 0; i < 4; i++) w[i] = ((parseInt(groups[2 * i]!, 16) << 16) | parseInt(groups[2 * i + 1]!, 16)) >>> 0;
  return w;
}
