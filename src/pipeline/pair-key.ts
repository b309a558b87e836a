/**
 * The Kafka key of a FlowRecord: the unordered identity of its two endpoints, so that all records
 * of one VM pair land on one partition of the flows topic (the pipeline aggregates a pair in one
 * place) — also when two hypervisors report the same flow, each from its own mirror.
 *
 * What the two reports of one flow have in common, and what they do not:
 *   - IP addresses: the same on both hypervisors (the VMs' own addresses; no NAT between VMs).
 *   - MACs: NOT the same for routed traffic (hypervisor 1 sees vm-a ↔ router MAC, hypervisor 2
 *     sees router MAC ↔ vm-b); the same only within one L2 segment.
 *   - VLAN tags: hypervisor-local (e.g. OpenStack's local VLAN ids on br-int differ per host), so
 *     they are left out. VNI: only visible where the mirror sees the tunnel port, so left out too.
 *   - client/server: each table decides by the first packet it saw; the key is unordered.
 * So an endpoint is named, in this order: its VM (through the resolver, when one is given: the same
 * rule as the pipeline's pair identity — MAC first, then IP — so the key equals the PairWindow's
 * (a, b)), else its IP (IPv4/IPv6 records), else its MAC (non-IP frames). The two names are sorted
 * and joined with '|'.
 *
 * Collisions only co-locate: tenants with overlapping address space, or names containing '|', may
 * share a key, which puts their records on one partition — the pipeline still tells them apart by
 * its own aggregation key. Without a resolver, a VM pair talking over both IPv4 and IPv6 has two
 * keys; give the agent's resolver (its inventory) to keep them together.
 */
import type { FlowRecord } from '../capture/flow-record.js';

/** Names an endpoint from the record's text fields (EndpointResolver.nameFromText satisfies it). */
export interface EndpointNamer {
  nameFromText(mac: string | undefined, ip: string | undefined): string;
}

/** The unordered key of two endpoint names. */
export function unorderedPairKey(x: string, y: string): string {
  return x <= y ? `${x}|${y}` : `${y}|${x}`;
}

/** The endpoint names of a record's client and server (VM, else IP, else MAC). */
export function recordEndpoints(r: FlowRecord, namer?: EndpointNamer): [string, string] {
  const k = r.key;
  const ip = k.ipVersion === 4 || k.ipVersion === 6;
  if (namer) {
    return [namer.nameFromText(k.clientMac || undefined, ip ? k.clientIp : undefined), namer.nameFromText(k.serverMac || undefined, ip ? k.serverIp : undefined)];
  }
  return ip ? [k.clientIp, k.serverIp] : [k.clientMac, k.serverMac];
}

/** The Kafka key of a flow record (see the module comment). */
export function flowPairKey(r: FlowRecord, namer?: EndpointNamer): string {
  const [c, s] = recordEndpoints(r, namer);
  return unorderedPairKey(c, s);
}
