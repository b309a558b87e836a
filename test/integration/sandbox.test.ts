// The test fixtures themselves, against the real thing: a private ovsdb-server + ovs-vswitchd
// (userspace datapath), two namespace VMs on a netdev bridge, and the SSL PKI.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { readFile } from 'node:fs/promises';
import type { ChildProcess } from 'node:child_process';
import type { NetnsVm } from '../helpers/netns-vm.js';
import { findSandboxProcesses, hostIfaceExists, listNetns, startSandbox, type Sandbox } from '../helpers/ovs-sandbox.js';
import { waitFor } from '../helpers/wait.js';

/** Sends one RFC 7047 list_dbs request over an already connected socket and resolves with the result. */
function listDbsOver(socket: net.Socket): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => fail(new Error('list_dbs: no reply within 5000 ms')), 5_000);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      try {
        const msg = JSON.parse(buf) as { id: unknown; result: string[]; error: unknown };
        clearTimeout(timer);
        socket.end();
        if (msg.error !== null) reject(new Error(`list_dbs: error ${JSON.stringify(msg.error)}`));
        else resolve(msg.result);
      } catch {
        // incomplete JSON text: wait for more bytes
      }
    });
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('list_dbs: connection closed before a reply')));
    socket.write(JSON.stringify({ id: 1, method: 'list_dbs', params: [] }));
  });
}

function listDbsTcp(port: number): Promise<string[]> {
  return listDbsOver(net.connect({ host: '127.0.0.1', port }));
}

function listDbsUnix(path: string): Promise<string[]> {
  return listDbsOver(net.connect({ path }));
}

function tlsConnect(opts: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(opts, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A one-connection TCP echo server (replies upper-cased) inside a VM, written in python3. */
const UPPER_ECHO_SERVER = [
  'import socket, sys',
  's = socket.socket()',
  's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
  's.bind(("0.0.0.0", int(sys.argv[1])))',
  's.listen(4)',
  'while True:',
  '    c, _ = s.accept()',
  '    d = c.recv(1024)',
  '    c.sendall(d.upper())',
  '    c.close()',
].join('\n');

const TCP_CLIENT = [
  'import socket, sys',
  'c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)',
  'c.sendall(sys.argv[3].encode())',
  'print(c.recv(1024).decode())',
].join('\n');

interface ExternalIds {
  [key: string]: string;
}

async function interfaceExternalIds(sb: Sandbox, iface: string): Promise<ExternalIds> {
  const out = await sb.vsctl(['--format=json', '--columns=external_ids', 'list', 'Interface', iface]);
  const parsed = JSON.parse(out) as { data: [[string, [string, string][]]][] };
  const [tag, pairs] = parsed.data[0]![0];
  expect(tag).to.equal('map');
  return Object.fromEntries(pairs);
}

describe('ovs sandbox: real ovsdb-server + ovs-vswitchd with namespace VMs', function () {
  this.timeout(120_000);
  let sb: Sandbox;
  let bridge: string;
  let vmA: NetnsVm;
  let vmB: NetnsVm;
  const servers: ChildProcess[] = [];

  before(async function () {
    sb = await startSandbox();
    bridge = sb.uniqueName('br');
    await sb.addBridge(bridge);
    vmA = await sb.addVm({ name: sb.uniqueName('vm-a'), bridge, ip: '10.66.0.1/24' });
    vmB = await sb.addVm({
      name: sb.uniqueName('vm-b'),
      bridge,
      ip: '10.66.0.2/24',
      mac: '52:54:00:AB:CD:02',
      vmUuid: '0b1c2d3e-0000-4000-8000-00000000000b',
      ifaceId: '1f2e3d4c-0000-4000-8000-00000000000b',
    });
  });

  after(async function () {
    for (const s of servers) s.kill('SIGKILL');
    await sb?.stop();
  });

  it('answers on the unix socket and on tcp with the Open_vSwitch database', async () => {
    expect(sb.dbUrl).to.equal(`unix:${sb.unixSocket}`);
    expect(sb.tcpUrl).to.equal(`tcp:127.0.0.1:${sb.tcpPort}`);
    expect(await listDbsUnix(sb.unixSocket)).to.include('Open_vSwitch');
    expect(await listDbsTcp(sb.tcpPort)).to.include('Open_vSwitch');
    const pids = await sb.pids();
    expect(pids.ovsdbServer, 'ovsdb-server pid').to.be.a('number');
    expect(pids.ovsVswitchd, 'ovs-vswitchd pid').to.be.a('number');
  });

  it('makes the bridge a netdev bridge whose local port is a tap device', async () => {
    expect(await sb.vsctl(['get', 'Bridge', bridge, 'datapath_type'])).to.equal('netdev');
    expect(existsSync(`/sys/class/net/${bridge}/tun_flags`), `tap device ${bridge}`).to.equal(true);
  });

  it('gives each VM its netns, host veth in the bridge and eth0 with the MAC and IP', async () => {
    expect(listNetns()).to.include.members([vmA.ns, vmB.ns]);
    expect(vmA.hostIface.length).to.be.at.most(15);
    expect(vmB.hostIface.length).to.be.at.most(15);
    expect((await sb.vsctl(['list-ports', bridge])).split('\n').sort()).to.deep.equal([vmA.hostIface, vmB.hostIface].sort());
    expect(vmA.mac).to.match(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(vmB.mac).to.equal('52:54:00:ab:cd:02');
    const { stdout } = await vmB.exec(['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(stdout).to.contain('inet 10.66.0.2/24');
    const link = await vmB.exec(['cat', '/sys/class/net/eth0/address']);
    expect(link.stdout.trim()).to.equal('52:54:00:ab:cd:02');
  });

  it('sets Interface external_ids as libvirt/OpenStack do', async () => {
    const idsB = await interfaceExternalIds(sb, vmB.hostIface);
    expect(idsB).to.deep.equal({
      'attached-mac': '52:54:00:ab:cd:02',
      'iface-id': '1f2e3d4c-0000-4000-8000-00000000000b',
      'vm-uuid': '0b1c2d3e-0000-4000-8000-00000000000b',
      'iface-status': 'active',
    });
    const idsA = await interfaceExternalIds(sb, vmA.hostIface);
    expect(idsA['attached-mac']).to.equal(vmA.mac);
    expect(idsA['vm-uuid']).to.equal(vmA.vmUuid).and.match(/^[0-9a-f-]{36}$/);
    expect(idsA['iface-id']).to.equal(vmA.ifaceId).and.match(/^[0-9a-f-]{36}$/);
    expect(idsA['vm-uuid']).to.not.equal(idsB['vm-uuid']);
  });

  it('forwards ICMP between the VMs in both directions', async () => {
    const ab = await vmA.ping(vmB.ip, 3);
    expect(ab.received, ab.stdout).to.equal(3);
    const ba = await vmB.ping(vmA.ip, 3);
    expect(ba.received, ba.stdout).to.equal(3);
  });

  it('reports loss when pinging an address nobody has', async () => {
    const r = await vmA.ping('10.66.0.99', 1);
    expect(r).to.include({ sent: 1, received: 0 });
  });

  it('carries TCP between the VMs in both directions', async () => {
    for (const [client, server, word] of [
      [vmA, vmB, 'hello-from-a'],
      [vmB, vmA, 'hello-from-b'],
    ] as const) {
      const srv = server.spawn(['python3', '-c', UPPER_ECHO_SERVER, '5001']);
      servers.push(srv);
      const reply = await waitFor(
        async () => (await client.exec(['python3', '-c', TCP_CLIENT, server.ip, '5001', word], { timeoutMs: 10_000 })).stdout.trim(),
        { what: `tcp server in ${server.name}`, timeoutMs: 15_000, intervalMs: 100 },
      );
      expect(reply).to.equal(word.toUpperCase());
      srv.kill('SIGKILL');
    }
  });

  it('restarts ovsdb-server on the same socket and port; ovs-vswitchd reconnects', async () => {
    const before = await sb.pids();
    await sb.killOvsdb();
    expect((await sb.pids()).ovsdbServer).to.equal(undefined);
    await waitFor(
      () => listDbsTcp(sb.tcpPort).then(
        () => false,
        () => true,
      ),
      { what: 'tcp port to refuse connections', timeoutMs: 5_000 },
    );
    await sb.restartOvsdb();
    const after = await sb.pids();
    expect(after.ovsdbServer).to.be.a('number').and.not.equal(before.ovsdbServer);
    expect(after.ovsVswitchd).to.equal(before.ovsVswitchd);
    expect(await listDbsTcp(sb.tcpPort)).to.include('Open_vSwitch');
    expect(await listDbsUnix(sb.unixSocket)).to.include('Open_vSwitch');
    // The data survived, and ovs-vsctl (without --no-wait) returns only once ovs-vswitchd applied it.
    expect(await sb.vsctl(['br-exists', bridge])).to.equal('');
    await sb.vsctl(['set', 'Bridge', bridge, 'other_config:mirrorflow-test=1']);
    const ping = await vmA.ping(vmB.ip, 2);
    expect(ping.received, ping.stdout).to.equal(2);
  });

  it('removes a VM: port, veth and netns', async () => {
    const vmC = await sb.addVm({ name: sb.uniqueName('vm-c'), bridge, ip: '10.66.0.3' });
    expect(vmC.prefixLen).to.equal(24);
    expect(hostIfaceExists(vmC.hostIface)).to.equal(true);
    await sb.removeVm(vmC);
    expect(listNetns()).to.not.include(vmC.ns);
    expect(hostIfaceExists(vmC.hostIface)).to.equal(false);
    expect((await sb.vsctl(['list-ports', bridge])).split('\n')).to.not.include(vmC.hostIface);
  });

  it('stop leaves no daemon, namespace, tap device or directory behind', async () => {
    const { dir } = sb;
    expect(await findSandboxProcesses(dir)).to.have.length.greaterThan(0);
    await sb.stop();
    expect(await findSandboxProcesses(dir)).to.deep.equal([]);
    expect(listNetns()).to.not.include.members([vmA.ns]);
    expect(listNetns()).to.not.include.members([vmB.ns]);
    expect(hostIfaceExists(vmA.hostIface)).to.equal(false);
    expect(hostIfaceExists(vmB.hostIface)).to.equal(false);
    expect(hostIfaceExists(bridge)).to.equal(false);
    expect(existsSync(dir)).to.equal(false);
    await sb.stop(); // twice is safe
  });
});

describe('ovs sandbox: ovsdb-server over SSL with a test PKI', function () {
  this.timeout(60_000);
  let sb: Sandbox;

  before(async function () {
    sb = await startSandbox({ ssl: true, vswitchd: false });
  });

  after(async function () {
    await sb?.stop();
  });

  it('runs without ovs-vswitchd when asked', async () => {
    const pids = await sb.pids();
    expect(pids.ovsdbServer).to.be.a('number');
    expect(pids.ovsVswitchd).to.equal(undefined);
  });

  it('accepts a client certificate signed by the CA and verifies the server as 127.0.0.1', async () => {
    expect(sb.sslUrl).to.equal(`ssl:127.0.0.1:${sb.sslPort}`);
    const pki = sb.pki!;
    const socket = await tlsConnect({
      host: '127.0.0.1',
      port: sb.sslPort!,
      ca: await readFile(pki.caCert),
      cert: await readFile(pki.clientCert),
      key: await readFile(pki.clientKey),
    });
    expect(socket.authorized).to.equal(true);
    expect(await listDbsOver(socket)).to.include('Open_vSwitch');
  });

  it('makes a server certificate that a client trusting only the wrong CA rejects', async () => {
    const pki = sb.pki!;
    let error: unknown;
    try {
      const s = await tlsConnect({
        host: '127.0.0.1',
        port: sb.sslPort!,
        ca: await readFile(pki.wrongCaCert),
        cert: await readFile(pki.clientCert),
        key: await readFile(pki.clientKey),
      });
      s.destroy();
    } catch (err) {
      error = err;
    }
    // Node names it after what the server sent: its certificate alone, or with its CA in the chain.
    expect((error as NodeJS.ErrnoException | undefined)?.code).to.be.oneOf(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN']);
  });

  it('makes ovsdb-server refuse a client certificate from the wrong CA', async () => {
    const pki = sb.pki!;
    let outcome: string;
    try {
      const socket = await tlsConnect({
        host: '127.0.0.1',
        port: sb.sslPort!,
        ca: await readFile(pki.caCert),
        cert: await readFile(pki.wrongClientCert),
        key: await readFile(pki.wrongClientKey),
      });
      // TLS 1.3: the server checks the client certificate after the client considers the handshake done.
      outcome = await listDbsOver(socket).then(
        (r) => `answered ${JSON.stringify(r)}`,
        (err: Error) => `refused: ${err.message}`,
      );
    } catch (err) {
      outcome = `refused: ${(err as Error).message}`;
    }
    expect(outcome).to.match(/^refused/);
  });
});
