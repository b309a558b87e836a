import { expect } from 'chai';
import { ConfigError } from '../../../src/errors.js';
import {
  canonicalSpecJson,
  internalOutputPortName,
  internalPortName,
  specHash,
  validateMirrorSpec,
  type MirrorSpec,
} from '../../../src/ovsdb/mirror-spec.js';

const base = (): Record<string, unknown> => ({
  bridge: 'br0',
  name: 'm1',
  selection: { kind: 'ports', ports: ['vnet0', 'vnet1'] },
  direction: 'both',
  output: { kind: 'internal' },
});

function fails(input: unknown, ...parts: string[]): ConfigError {
  let err: unknown;
  try {
    validateMirrorSpec(input);
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a ConfigError').to.be.instanceOf(ConfigError);
  const ce = err as ConfigError;
  expect(ce.code).to.equal('config');
  for (const p of parts) expect(ce.message).to.include(p);
  return ce;
}

describe('ovsdb/mirror-spec', () => {
  describe('validateMirrorSpec', () => {
    it('accepts a valid spec and returns a normalised copy', () => {
      const spec = validateMirrorSpec({
        ...base(),
        selection: { kind: 'ports', ports: ['vnet1', 'vnet0', 'vnet1'] },
        snaplen: 128,
      });
      expect(spec).to.deep.equal({
        bridge: 'br0',
        name: 'm1',
        selection: { kind: 'ports', ports: ['vnet1', 'vnet0'] },
        direction: 'both',
        output: { kind: 'internal' },
        snaplen: 128,
      });
    });

    it('sorts and de-duplicates VLANs, defaults direction to both', () => {
      const { direction: _d, ...noDir } = base();
      const spec = validateMirrorSpec({ ...noDir, selection: { kind: 'vlans', vlans: [30, 0, 4095, 30] }, output: { kind: 'vlan', vlan: 1 } });
      expect(spec.selection).to.deep.equal({ kind: 'vlans', vlans: [0, 30, 4095] });
      expect(spec.direction).to.equal('both');
      expect(spec.output).to.deep.equal({ kind: 'vlan', vlan: 1 });
    });

    it('accepts every selection, direction and output kind', () => {
      for (const selection of [{ kind: 'all' }, { kind: 'vms', vms: ['6c1e1c1a-0000-4000-8000-000000000001', 'FA:16:3E:00:00:01'] }]) {
        for (const direction of ['both', 'to-vm', 'from-vm']) {
          for (const output of [{ kind: 'port', port: 'span0' }, { kind: 'internal', port: 'mfcap0' }, { kind: 'vlan', vlan: 4095 }]) {
            const spec = validateMirrorSpec({ ...base(), selection, direction, output });
            expect(spec.selection).to.deep.equal(selection);
            expect(spec.direction).to.equal(direction);
            expect(spec.output).to.deep.equal(output);
          }
        }
      }
    });

    it('rejects select VLANs outside 0..4095 naming the value', () => {
      fails({ ...base(), selection: { kind: 'vlans', vlans: [10, 4096] } }, 'out of range', 'value=4096', 'expected=0..4095', 'field=selection.vlans[1]', 'mirror=m1');
      fails({ ...base(), selection: { kind: 'vlans', vlans: [-1] } }, 'value=-1', 'expected=0..4095');
      fails({ ...base(), selection: { kind: 'vlans', vlans: [1.5] } }, 'must be an integer', 'value=1.5');
      fails({ ...base(), selection: { kind: 'vlans', vlans: ['10'] } }, 'must be an integer', 'value=10');
      fails({ ...base(), selection: { kind: 'vlans', vlans: [] } }, 'selection.vlans is empty');
    });

    it('rejects output VLANs outside 1..4095', () => {
      fails({ ...base(), output: { kind: 'vlan', vlan: 0 } }, 'field=output.vlan', 'value=0', 'expected=1..4095');
      fails({ ...base(), output: { kind: 'vlan', vlan: 4096 } }, 'value=4096', 'expected=1..4095');
      fails({ ...base(), output: { kind: 'vlan' } }, 'output.vlan must be an integer', 'value=undefined');
    });

    it('rejects snaplen outside 14..65535', () => {
      fails({ ...base(), snaplen: 13 }, 'snaplen out of range', 'value=13', 'expected=14..65535');
      fails({ ...base(), snaplen: 65536 }, 'value=65536', 'expected=14..65535');
      expect(validateMirrorSpec({ ...base(), snaplen: 14 }).snaplen).to.equal(14);
      expect(validateMirrorSpec({ ...base(), snaplen: 65535 }).snaplen).to.equal(65535);
    });

    it('rejects empty, long and badly spelled names', () => {
      fails({ ...base(), name: '' }, 'name is empty');
      fails({ ...base(), bridge: '' }, 'bridge is empty');
      fails({ ...base(), name: 'x'.repeat(65) }, 'name is too long', 'chars=65', 'maxChars=64');
      fails({ ...base(), name: 'my mirror' }, 'not allowed', 'value="my mirror"');
      fails({ ...base(), bridge: 'br/0' }, 'bridge has characters that are not allowed', 'value=br/0');
      fails({ ...base(), selection: { kind: 'ports', ports: ['ok', 'bad;port'] } }, 'selection.ports[1]', 'value=bad;port');
      fails({ ...base(), selection: { kind: 'vms', vms: ['vm 1'] } }, 'selection.vms[0]');
      fails({ ...base(), output: { kind: 'port', port: '' } }, 'output.port is empty');
      // Internal ports are Linux devices: 15 chars, no ':'.
      fails({ ...base(), output: { kind: 'internal', port: 'a-very-long-name' } }, 'output.port is too long', 'maxChars=15');
      fails({ ...base(), output: { kind: 'internal', port: 'cap:0' } }, 'output.port has characters that are not allowed');
      fails({ ...base(), name: 42 }, 'name must be a string', 'value=42');
    });

    it('rejects unknown kinds, directions and keys', () => {
      fails({ ...base(), selection: { kind: 'macs' } }, 'selection kind not supported', 'value=macs');
      fails({ ...base(), direction: 'ingress' }, 'direction not supported', 'value=ingress', 'expected=both|to-vm|from-vm');
      fails({ ...base(), output: { kind: 'gre' } }, 'output kind not supported');
      fails({ ...base(), selct: {} }, 'unknown key', 'field=selct');
      fails({ ...base(), output: { kind: 'vlan', vlan: 5, port: 'x' } }, 'unknown key', 'field=output.port');
      fails({ ...base(), selection: { kind: 'ports' } }, 'selection.ports must be a list');
      fails(null, 'mirror must be an object');
      fails({ ...base(), selection: undefined }, 'selection must be an object');
    });
  });

  describe('specHash / internalPortName', () => {
    const spec: MirrorSpec = {
      bridge: 'br0',
      name: 'm1',
      selection: { kind: 'vms', vms: ['a', 'b'] },
      direction: 'both',
      output: { kind: 'internal' },
    };

    it('hashes stably regardless of list order, and changes with the spec', () => {
      const h = specHash(spec);
      expect(h).to.match(/^[0-9a-f]{16}$/);
      expect(specHash({ ...spec, selection: { kind: 'vms', vms: ['b', 'a', 'b'] } })).to.equal(h);
      expect(specHash({ ...spec, direction: 'to-vm' })).to.not.equal(h);
      expect(specHash({ ...spec, snaplen: 100 })).to.not.equal(h);
      expect(specHash({ ...spec, output: { kind: 'internal', port: 'cap0' } })).to.not.equal(h);
      expect(canonicalSpecJson(spec)).to.equal(
        '{"bridge":"br0","name":"m1","selection":{"kind":"vms","vms":["a","b"]},"direction":"both","output":{"kind":"internal","port":null},"snaplen":null}',
      );
    });

    it('derives a deterministic internal port name of at most 15 chars', () => {
      const n = internalPortName('br-int', 'mirror-1');
      expect(n).to.match(/^mf[0-9a-f]{13}$/);
      expect(n.length).to.equal(15);
      expect(internalPortName('br-int', 'mirror-1')).to.equal(n);
      expect(internalPortName('br-int', 'mirror-2')).to.not.equal(n);
      expect(internalPortName('br-ex', 'mirror-1')).to.not.equal(n);
      // The separator keeps (bridge, name) pairs apart.
      expect(internalPortName('ab', 'c')).to.not.equal(internalPortName('a', 'bc'));
    });

    it('uses the user-given internal port name when there is one', () => {
      expect(internalOutputPortName(spec)).to.equal(internalPortName('br0', 'm1'));
      expect(internalOutputPortName({ ...spec, output: { kind: 'internal', port: 'cap0' } })).to.equal('cap0');
      expect(internalOutputPortName({ ...spec, output: { kind: 'vlan', vlan: 5 } })).to.equal(undefined);
    });
  });
});
