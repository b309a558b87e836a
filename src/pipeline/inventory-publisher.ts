/**
 * Publishes an agent's VMs to the compacted inventory topic, so that every agent and pipeline
 * process can name endpoints of VMs on other hypervisors.
 *
 * One message per VM and agent: key `<agentId>/<vm>`, value a JSON VmInventory (all interfaces of
 * the VM as this agent sees them), headers content-type application/json, mirrorflow-schema
 * mirrorflow.v1.VmInventory, version 1, mirrorflow-kind inventory. A VM that is gone gets a
 * tombstone (null value) under the same key; compaction then forgets it.
 *
 * Why the agent id is part of the key (and not the VM id alone): a VM that migrates from agent A to
 * agent B is published by B while A, a moment later, notices it is gone. Keyed by VM id alone, A's
 * tombstone could land after B's entry and delete a live VM from everyone's inventory. Keyed per
 * agent, each agent only ever deletes its own entries; readers map MAC/IP → VM from all entries
 * (two entries of one VM during a migration name the same VM).
 *
 * Republishing an unchanged VM is skipped; publish() is meant to be called with the whole current
 * inventory after every change. Known gap: VMs that vanished while the agent was not running are not
 * tombstoned after its restart (it does not read back its old keys).
 */
import type { IHeaders } from 'kafkajs';
import { CONTENT_TYPE_HEADER, SCHEMA_HEADER, SCHEMA_VERSION_HEADER } from './codec.js';
import type { InventoryEntry } from '../ovsdb/inventory.js';
import { ConfigError, MirrorflowError, kv } from '../errors.js';
import { KIND_HEADER, openTopicSink, type KafkaProducerClient, type KafkaTopicSink, type OpenTopicSinkOptions } from './kafka-producer.js';

export const INVENTORY_SCHEMA = 'mirrorflow.v1.VmInventory';
export const INVENTORY_SCHEMA_VERSION = 1;

export interface VmInventory {
  schemaVersion: number;
  vm: string;
  vmName: string;
  agentId: string;
  /** When this agent published it, µs since the epoch. */
  publishedUs: number;
  interfaces: InventoryEntry[];
}

export function inventoryHeaders(): IHeaders {
  return {
    [CONTENT_TYPE_HEADER]: Buffer.from('application/json'),
    [SCHEMA_HEADER]: Buffer.from(INVENTORY_SCHEMA),
    [SCHEMA_VERSION_HEADER]: Buffer.from(String(INVENTORY_SCHEMA_VERSION)),
    [KIND_HEADER]: Buffer.from('inventory'),
  };
}

export function inventoryKey(agentId: string, vm: string): string {
  return `${agentId}/${vm}`;
}

/** `<agentId>/<vm>` → its parts (the agent id has no '/'). */
export function parseInventoryKey(key: string): { agentId: string; vm: string } {
  const i = key.indexOf('/');
  if (i <= 0) throw new MirrorflowError('inventory-key', `inventory: malformed key${kv({ key })}`);
  return { agentId: key.slice(0, i), vm: key.slice(i + 1) };
}

/** Decodes an inventory message; a null value is a tombstone (the VM is gone from that agent). */
export function decodeInventoryMessage(key: Buffer | string, value: Buffer | null): { agentId: string; vm: string; inventory: VmInventory | null } {
  const k = parseInventoryKey(key.toString());
  if (value === null) return { ...k, inventory: null };
  let v: VmInventory;
  try {
    v = JSON.parse(value.toString('utf8')) as VmInventory;
  } catch (e) {
    throw new MirrorflowError('inventory-decode', `inventory: malformed message${kv({ key: key.toString(), problem: (e as Error).message })}`);
  }
  if (typeof v !== 'object' || v === null || typeof v.vm !== 'string' || !Array.isArray(v.interfaces)) {
    throw new MirrorflowError('inventory-decode', `inventory: malformed message${kv({ key: key.toString(), problem: 'expected {vm, interfaces[]}' })}`);
  }
  return { ...k, inventory: v };
}

/** Groups per-interface entries into one VmInventory per VM (sorted by VM). */
export function groupInventory(entries: readonly InventoryEntry[], agentId: string, nowUs: number): VmInventory[] {
  const byVm = new Map<string, InventoryEntry[]>();
  for (const e of entries) {
    const list = byVm.get(e.vm);
    if (list) list.push(e);
    else byVm.set(e.vm, [e]);
  }
  return [...byVm.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([vm, list]) => ({
      schemaVersion: INVENTORY_SCHEMA_VERSION,
      vm,
      vmName: list[0]!.vmName,
      agentId,
      publishedUs: nowUs,
      interfaces: [...list].sort((a, b) => (a.interface < b.interface ? -1 : a.interface > b.interface ? 1 : 0)),
    }));
}

export interface PublishResult {
  published: number;
  unchanged: number;
  tombstones: number;
}

export class InventoryPublisher {
  readonly sink: KafkaTopicSink;
  /** What was last published per VM (content without the time), to skip unchanged VMs. */
  private last = new Map<string, string>();

  constructor(
    client: KafkaProducerClient,
    readonly agentId: string,
    o: OpenTopicSinkOptions = {},
  ) {
    if (agentId === '' || agentId.includes('/')) throw new ConfigError(`inventory: agent id must be non-empty without "/"${kv({ agentId })}`);
    this.sink = openTopicSink(client, 'inventory', [inventoryHeaders()], o);
  }

  /** Publishes the whole current inventory: changed VMs, and tombstones for VMs no longer in it. */
  publish(entries: readonly InventoryEntry[], nowUs = Date.now() * 1000): PublishResult {
    const result: PublishResult = { published: 0, unchanged: 0, tombstones: 0 };
    const next = new Map<string, string>();
    for (const v of groupInventory(entries, this.agentId, nowUs)) {
      const content = JSON.stringify({ ...v, publishedUs: 0 });
      next.set(v.vm, content);
      if (this.last.get(v.vm) === content) {
        result.unchanged++;
        continue;
      }
      this.sink.enqueue(inventoryKey(this.agentId, v.vm), Buffer.from(JSON.stringify(v)));
      result.published++;
    }
    for (const vm of this.last.keys()) {
      if (next.has(vm)) continue;
      this.sink.enqueue(inventoryKey(this.agentId, vm), null);
      result.tombstones++;
    }
    this.last = next;
    return result;
  }

  flush(timeoutMs?: number): Promise<boolean> {
    return this.sink.flush(timeoutMs);
  }

  close(): Promise<void> {
    return this.sink.close();
  }
}

/** Inventory-file entries ({vm, mac, ips}) as InventoryEntry (one interface each, named by the file). */
export function inventoryFromFile(vms: readonly { vm: string; mac?: string; ips: readonly string[] }[]): InventoryEntry[] {
  return vms.map((v) => ({ vm: v.vm, vmName: v.vm, interface: '', ips: [...v.ips], ...(v.mac ? { mac: v.mac } : {}) }));
}
