import { expect } from 'chai';
import type { FlowRecord } from '../../../src/capture/flow-record.js';
import { EndpointResolver } from '../../../src/pipeline/endpoint-resolver.js';
import { flowPairKey, unorderedPairKey } from '../../../src/pipeline/pair-key.js';
import { otherRecord, tcpRecord } from './codec.fixture.js';

/** The same flow with client and server the other way round. */
function swapped(r: FlowRecord): FlowRecord {
  const k = r.key;
  return {
    ...r,
    key: { ...k, clientIp: k.serverIp, serverIp: k.clientIp, clientMac: k.serverMac, serverMac: k.clientMac, clientPort: k.serverPort, serverPort: k.clientPort },
  };
}

describe('pipeline/pair-key', () => {
  it('is unordered', () => {
    expect(unorderedPairKey('b', 'a')).to.equal('a|b');
    expect(unorderedPairKey('a', 'b')).to.equal('a|b');
    const r = tcpRecord(1);
    expect(flowPairKey(r)).to.equal('10.0.0.1|10.0.0.2');
    expect(flowPairKey(swapped(r))).to.equal(flowPairKey(r));
  });

  it('is the same for the reports of two hypervisors: other MACs (routed), VLANs, tunnel, ports, agent', () => {
    const hv1 = tcpRecord(1); // vm-a side: vm-a MAC ↔ router MAC, local VLAN 100, over VXLAN
    const hv2: FlowRecord = {
      ...tcpRecord(7),
      observation: { agentId: 'hv-09', bridge: 'br-int', mirror: 'm', interface: 'x' },
      key: { ...tcpRecord(1).key, vlans: [7], tunnel: 'none', clientMac: 'fa:16:3e:99:99:99', serverMac: 'fa:16:3e:00:00:02' },
    };
    delete hv2.key.vni;
    expect(flowPairKey(hv2)).to.equal(flowPairKey(hv1));
    expect(flowPairKey(swapped(hv2))).to.equal(flowPairKey(hv1));
  });

  it('differs between different pairs', () => {
    const r = tcpRecord(1);
    const other: FlowRecord = { ...r, key: { ...r.key, serverIp: '10.0.0.3' } };
    expect(flowPairKey(other)).to.not.equal(flowPairKey(r));
  });

  it('non-IP records are keyed by MACs', () => {
    const r = otherRecord(3);
    expect(flowPairKey(r)).to.equal('fa:16:3e:00:00:01|ff:ff:ff:ff:ff:ff');
    expect(flowPairKey(swapped(r))).to.equal(flowPairKey(r));
  });

  it('with a resolver, names VMs the way the pipeline does (MAC first, then IP): v4 and v6 of one pair share a key', () => {
    const resolver = new EndpointResolver([
      { vm: 'vm-a', mac: 'fa:16:3e:00:00:01', ips: ['10.0.0.1', 'fd00::1'] },
      { vm: 'vm-b', ips: ['10.0.0.2', 'fd00::2'] },
    ]);
    const v4 = tcpRecord(1);
    const v6: FlowRecord = { ...v4, key: { ...v4.key, ipVersion: 6, clientIp: 'fd00::2', serverIp: 'fd00::1', clientMac: 'fa:16:3e:00:00:77', serverMac: 'fa:16:3e:00:00:01' } };
    expect(flowPairKey(v4, resolver)).to.equal('vm-a|vm-b');
    expect(flowPairKey(v6, resolver)).to.equal('vm-a|vm-b');
    // unknown endpoints fall back to the IP
    const ext: FlowRecord = { ...v4, key: { ...v4.key, serverIp: '203.0.113.9', serverMac: 'fa:16:3e:00:00:fe' } };
    expect(flowPairKey(ext, resolver)).to.equal('203.0.113.9|vm-a');
  });
});
