// A namespace VM joined to an OVS bridge through the impairment forwarder (scripts/vm.sh add
// --impair-*): the delay shows in the RTT to a plain VM, the forwarder's counters are readable,
// and removing the VM stops the forwarder and removes its interfaces.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import type { NetnsVm } from '../helpers/netns-vm.js';
import { startSandbox, type Sandbox } from '../helpers/ovs-sandbox.js';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a VM behind the impairment forwarder on an OVS bridge', function () {
  this.timeout(180_000);
  let sb: Sandbox;
  let br: string;
  let slow: NetnsVm;
  let plain: NetnsVm;

  before(async () => {
    sb = await startSandbox();
    br = sb.uniqueName('br');
    await sb.addBridge(br);
    slow = await sb.addVm({ name: sb.uniqueName('slow'), bridge: br, ip: '10.63.0.1/24', impair: { delayMs: 10, lossProb: 0, seed: 5 } });
    plain = await sb.addVm({ name: sb.uniqueName('plain'), bridge: br, ip: '10.63.0.2/24' });
  });
  after(async () => {
    await sb?.stop();
  });

  it('adds D to each direction: RTT to a plain VM is 2 D plus the bridge', async () => {
    expect(slow.impair, 'impairment recorded').to.not.equal(undefined);
    expect(slow.impair!.pid).to.be.above(0);
    expect(pidAlive(slow.impair!.pid)).to.equal(true);
    // The bridge port keeps the VM's external_ids: OVSDB still names the VM by it.
    const ids = await sb.vsctl(['get', 'Interface', slow.hostIface, 'external_ids:vm-uuid']);
    expect(ids.replace(/"/g, '')).to.equal(slow.vmUuid);
    await slow.ping(plain.ip, 2); // ARP
    const ping = await slow.ping(plain.ip, 10);
    expect(ping.received).to.equal(10);
    const avg = Number(/= [\d.]+\/([\d.]+)\//.exec(ping.stdout)?.[1]);
    console.log(`      RTT through the forwarder (D = 10 ms each way) and OVS: avg ${avg} ms`);
    expect(avg, ping.stdout).to.be.within(20, 22);
    const plainPing = await plain.ping(slow.ip, 5);
    expect(plainPing.received).to.equal(5);
    const stats = await slow.impairStats();
    expect(stats.running).to.equal(true);
    expect(stats.aToB.from).to.equal(slow.impair!.ifaceA);
    expect(stats.aToB.forwarded).to.be.at.least(12);
    expect(stats.bToA.forwarded).to.be.at.least(12);
    expect(stats.aToB.dropped + stats.bToA.dropped + stats.aToB.injectErrors + stats.bToA.injectErrors).to.equal(0);
  });

  it('removing the VM stops its forwarder and removes its interfaces', async () => {
    const { pid, ifaceA, ifaceB } = slow.impair!;
    await sb.removeVm(slow);
    expect(pidAlive(pid)).to.equal(false);
    for (const iface of [ifaceA, ifaceB, slow.hostIface]) expect(existsSync(`/sys/class/net/${iface}`), iface).to.equal(false);
  });
});
