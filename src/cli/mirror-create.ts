import { UsageError } from '../errors.js';
import { createLogger } from '../log.js';
import { MirrorController } from '../ovsdb/mirror-controller.js';
import { validateMirrorSpec, type MirrorOutput, type MirrorSelection } from '../ovsdb/mirror-spec.js';
import { openOvsdbSession } from '../ovsdb/session.js';
import { intOption, stringsOption, type Command, type Values } from './command.js';
import { ovsdbConfigFrom, ovsdbOptions } from './ovsdb-options.js';

export const mirrorCreateCommand: Command = {
  name: 'mirror create',
  summary: 'Create a port mirror, or update it in place when its spec changed (idempotent)',
  usage:
    'mirror create --bridge BR --name NAME (--select-all | --select-port P… | --select-vm ID… | --select-vlan V…) [--direction both|to-vm|from-vm] (--output-port P | --output-internal [PORT] | --output-vlan V) [--snaplen N] [--db URL] [--json]',
  description: [
    'A VM is selected by its vm-uuid, vm-id, iface-id or attached-mac (Interface external_ids).',
    'Direction: to-vm mirrors frames the bridge sends to the selected ports, from-vm frames they send.',
    '--output-internal creates an internal port owned by mirrorflow for capture (IPv6 disabled);',
    "'mirror delete' removes it again. A mirror of the same name not made by mirrorflow is never touched.",
  ].join('\n'),
  options: {
    bridge: { type: 'string', arg: 'BR', description: 'Bridge to mirror on' },
    name: { type: 'string', arg: 'NAME', description: 'Mirror name' },
    'select-all': { type: 'boolean', description: 'Mirror every port of the bridge' },
    'select-port': { type: 'string', multiple: true, arg: 'P', description: 'Mirror these ports (by name)' },
    'select-vm': { type: 'string', multiple: true, arg: 'ID', description: 'Mirror the ports of these VMs (vm-uuid, vm-id, iface-id or MAC)' },
    'select-vlan': { type: 'string', multiple: true, arg: 'V', description: 'Mirror these VLANs (0..4095)' },
    direction: { type: 'string', arg: 'DIR', description: 'both, to-vm or from-vm', default: 'both' },
    'output-port': { type: 'string', arg: 'P', description: 'Send mirrored frames to this existing port' },
    'output-internal': { type: 'string', optionalValue: true, arg: 'PORT', description: 'Send mirrored frames to an internal port mirrorflow creates' },
    'output-vlan': { type: 'string', arg: 'V', description: 'Send mirrored frames out tagged with this VLAN (1..4095)' },
    snaplen: { type: 'string', arg: 'N', description: 'Bytes kept of each mirrored frame (14..65535)' },
    timeout: { type: 'string', arg: 'SECONDS', description: 'How long to wait for ovs-vswitchd to apply the change (0: do not wait)', default: '10' },
    json: { type: 'boolean', description: 'Print the result as JSON' },
    ...ovsdbOptions,
  },
  async run(values, _positionals, io) {
    const spec = specFromFlags(values);
    const config = ovsdbConfigFrom(values, io.env);
    const timeoutS = intOption(values, 'timeout', 0, 3600) ?? 10;
    const logger = createLogger(io.env);
    const session = await openOvsdbSession(config, { logger, reconnect: false });
    try {
      const controller = new MirrorController(session, { logger, confirmTimeoutMs: timeoutS * 1000 });
      const result = await controller.apply(spec);
      await controller.stop();
      const action = !result.changed ? 'unchanged' : result.plan && 'action' in result.plan ? result.plan.action : 'changed';
      if (values.json) {
        io.out(JSON.stringify({ bridge: spec.bridge, name: spec.name, action: action === 'create' ? 'created' : action === 'update' ? 'updated' : action, summary: result.summary, confirmed: result.confirmed }));
      } else {
        io.out(`mirror ${spec.name} on ${spec.bridge}: ${action === 'create' ? 'created' : action === 'update' ? 'updated' : action}`);
      }
      return 0;
    } finally {
      await session.close();
    }
  },
};

export function specFromFlags(values: Values) {
  const need = (k: string) => {
    const v = values[k];
    if (v === undefined || v === '') throw new UsageError(`mirror create: --${k} is required`);
    return String(v);
  };
  const bridge = need('bridge');
  const name = need('name');
  const selections: MirrorSelection[] = [];
  if (values['select-all']) selections.push({ kind: 'all' });
  const ports = stringsOption(values, 'select-port');
  if (ports.length) selections.push({ kind: 'ports', ports });
  const vms = stringsOption(values, 'select-vm');
  if (vms.length) selections.push({ kind: 'vms', vms });
  const vlans = stringsOption(values, 'select-vlan');
  if (vlans.length) selections.push({ kind: 'vlans', vlans: vlans.map((v) => vlanNumber(v, 'select-vlan', 0)) });
  if (selections.length !== 1) {
    throw new UsageError(`mirror create: give exactly one of --select-all, --select-port, --select-vm, --select-vlan (given=${selections.length})`);
  }
  const outputs: MirrorOutput[] = [];
  if (values['output-port'] !== undefined) outputs.push({ kind: 'port', port: String(values['output-port']) });
  if (values['output-internal'] !== undefined) {
    const p = String(values['output-internal']);
    outputs.push(p ? { kind: 'internal', port: p } : { kind: 'internal' });
  }
  if (values['output-vlan'] !== undefined) outputs.push({ kind: 'vlan', vlan: vlanNumber(String(values['output-vlan']), 'output-vlan', 1) });
  if (outputs.length !== 1) {
    throw new UsageError(`mirror create: give exactly one of --output-port, --output-internal, --output-vlan (given=${outputs.length})`);
  }
  const direction = String(values.direction ?? 'both');
  if (!['both', 'to-vm', 'from-vm'].includes(direction)) throw new UsageError(`invalid --direction, expected both, to-vm or from-vm (direction=${direction})`);
  const snaplen = intOption(values, 'snaplen', 14, 65535);
  const raw: Record<string, unknown> = { bridge, name, selection: selections[0], direction, output: outputs[0] };
  if (snaplen !== undefined) raw.snaplen = snaplen;
  try {
    return validateMirrorSpec(raw);
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^config: /, ''));
  }
}

function vlanNumber(v: string, flag: string, min: number): number {
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > 4095) throw new UsageError(`invalid --${flag}, expected a VLAN ${min}..4095 (${flag}=${v})`);
  return Number(v);
}
