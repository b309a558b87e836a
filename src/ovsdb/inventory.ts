/**
 * The VM inventory: which VM sits behind which OVS interface, read from Interface.external_ids
 * as OpenStack (vm-uuid, iface-id, attached-mac) and libvirt (vm-id, iface-id, attached-mac) set them.
 * Pure: takes the cached tables (wire form), returns plain entries.
 */
import { mapToRecord, optionalAtom, setUuids, type WireDatum } from './datum.js';

export type WireTables = ReadonlyMap<string, ReadonlyMap<string, Readonly<Record<string, WireDatum>>>>;

export interface InventoryEntry {
  /** VM identity: vm-uuid, else vm-id. */
  vm: string;
  /** Display name when the platform gives one (external_ids vm-name), else the VM identity. */
  vmName: string;
  ifaceId?: string;
  /** attached-mac, else the interface's mac_in_use. */
  mac?: string;
  interface: string;
  port?: string;
  bridge?: string;
  ofport?: number;
  /** IPs are not in OVSDB; filled later from other sources (inventory file, ARP). */
  ips: string[];
}

export function buildInventory(tables: WireTables): InventoryEntry[] {
  const interfaces = tables.get('Interface') ?? new Map();
  const ports = tables.get('Port') ?? new Map();
  const bridges = tables.get('Bridge') ?? new Map();
  const portOfIface = new Map<string, string>();
  for (const [portUuid, port] of ports) for (const i of setUuids(port.interfaces)) portOfIface.set(i, portUuid);
  const bridgeOfPort = new Map<string, string>();
  for (const [bridgeUuid, br] of bridges) for (const p of setUuids(br.ports)) bridgeOfPort.set(p, bridgeUuid);

  const out: InventoryEntry[] = [];
  for (const [ifaceUuid, iface] of interfaces) {
    const ids = mapToRecord(iface.external_ids);
    const vm = ids['vm-uuid'] ?? ids['vm-id'];
    if (!vm) continue;
    const portUuid = portOfIface.get(ifaceUuid);
    const bridgeUuid = portUuid ? bridgeOfPort.get(portUuid) : undefined;
    const ofport = optionalAtom<number>(iface.ofport);
    const mac = ids['attached-mac'] ?? optionalAtom<string>(iface.mac_in_use);
    const entry: InventoryEntry = {
      vm,
      vmName: ids['vm-name'] ?? vm,
      interface: String(iface.name),
      ips: [],
    };
    if (ids['iface-id']) entry.ifaceId = ids['iface-id'];
    if (mac) entry.mac = mac.toLowerCase();
    if (portUuid) entry.port = String(ports.get(portUuid)?.name);
    if (bridgeUuid) entry.bridge = String(bridges.get(bridgeUuid)?.name);
    if (typeof ofport === 'number' && ofport >= 0) entry.ofport = ofport;
    out.push(entry);
  }
  out.sort((a, b) => a.vm.localeCompare(b.vm) || a.interface.localeCompare(b.interface));
  return out;
}
