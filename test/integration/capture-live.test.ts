import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { quietVms, type NetnsVm } from '../helpers/netns-vm.js';
import { startSandbox, type Sandbox } from '../helpers/ovs-sandbox.js';
import { waitFor } from '../helpers/wait.js';

interface PairJson {
  a: string;
  b: string;
  aToB: { packets?: string; bytes?: string };
  bToA: { packets?: string; bytes?: string };
  flows?: number;
  tcp: { handshakes?: number; handshakeRttUs: { count?: number; p50?: number } };
  icmp: { echoRequests?: number; echoReplies?: number; rttUs: { count?: number } };
}

async function counters(vm: NetnsVm): Promise<{ tx: number; rx: number; txPackets: number; rxPackets: number }> {
  const read = async (what: string) => Number((await vm.exec(['cat', `/sys/class/net/eth0/statistics/${what}`])).stdout.trim());
  return { tx: await read('tx_bytes'), rx: await read('rx_bytes'), txPackets: await read('tx_packets'), rxPackets: await read('rx_packets') };
}

describe('live capture on a mirror of two namespace VMs', function () {
  this.timeout(120_000);
  let sb: Sandbox;
  let br: string;
  let vmA: NetnsVm;
  let vmB: NetnsVm;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mf-live-'));
    sb = await startSandbox();
    br = sb.uniqueName('br');
    await sb.addBridge(br);
    vmA = await sb.addVm({ name: sb.uniqueName('a'), bridge: br, ip: '10.62.0.1/24' });
    vmB = await sb.addVm({ name: sb.uniqueName('b'), bridge: br, ip: '10.62.0.2/24' });
    // only the traffic the test makes: no IPv6 chatter, no ARP (static neighbours), paced sender
    await quietVms([vmA, vmB], { paceMbit: 40 });
  });
  after(async () => {
    await sb?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('names both VMs from OVSDB, counts bytes as the VMs do, measures the handshake, loses nothing', async () => {
    const mk = await cli(['mirror', 'create', '--bridge', br, '--name', 'live', '--select-vm', vmA.vmUuid, vmB.vmUuid, '--output-internal', '--json']);
    expect(mk.code, mk.err).to.equal(0);
    const list = JSON.parse((await cli(['mirror', 'list', '--json'])).out) as { name: string; outputPort: { name: string } }[];
    const out = list.find((m) => m.name === 'live')!.outputPort.name;

    const pairsFile = join(dir, 'pairs.json');
    const stop = new AbortController();
    const errLines: string[] = [];
    const running = main(['capture', '--interface', out, '--db', sb.dbUrl, '--mirror', 'live', '--window', '0', '--pairs-out', pairsFile, '--agent-id', 'test-agent'], {
      out: () => undefined,
      err: (l) => errLines.push(l),
      env: {},
      signal: stop.signal,
    });
    await waitFor(() => errLines.some((l) => l.startsWith('capture: listening')), { what: 'capture listening' });
    const a0 = await counters(vmA);
    const server = vmB.spawn(['python3', '-c', SERVER, vmB.ip]);
    const serverDone = new Promise<void>((r) => server.once('exit', () => r()));
    await waitFor(async () => (await vmB.exec(['ss', '-ltn'])).stdout.includes(':5001'), { what: 'TCP server listening' });
    const ping = await vmA.ping(vmB.ip, 5);
    expect(ping.received).to.equal(5);
    const sent = await vmA.exec(['python3', '-c', CLIENT, vmB.ip, String(2_000_000)], { timeoutMs: 60_000 });
    expect(sent.stdout.trim()).to.equal('2000000');
    await serverDone;
    const a1 = await counters(vmA);
    // stopping drains what libpcap already holds, so the last frames are counted
    stop.abort();
    expect(await running, errLines.join('\n')).to.equal(0);

    const pairs = readFileSync(pairsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as PairJson);
    const names = [vmA.vmUuid, vmB.vmUuid].sort();
    const pair = pairs.find((p) => p.a === names[0] && p.b === names[1]);
    expect(pair, JSON.stringify(pairs)).to.not.equal(undefined);
    // nothing else was on the wire: one pair only
    expect(pairs).to.have.length(1);
    const capturedBytes = Number(pair!.aToB.bytes ?? 0) + Number(pair!.bToA.bytes ?? 0);
    const vmBytes = a1.tx - a0.tx + (a1.rx - a0.rx);
    expect(Math.abs(capturedBytes - vmBytes) / vmBytes, `captured ${capturedBytes} vs VM counters ${vmBytes}`).to.be.below(0.01);
    expect(pair!.tcp.handshakes).to.equal(1);
    expect(pair!.tcp.handshakeRttUs.count).to.equal(1);
    expect(pair!.tcp.handshakeRttUs.p50).to.be.above(0);
    expect(pair!.icmp.echoRequests).to.equal(5);
    expect(pair!.icmp.echoReplies).to.equal(5);

    const summary = errLines.join('\n');
    const m = /libpcap received=(\d+) dropped=(\d+) ifdropped=(\d+)/.exec(summary);
    expect(m, summary).to.not.equal(null);
    expect(Number(m![2])).to.equal(0);
    expect(Number(m![3])).to.equal(0);
    const frames = Number(/capture: (\d+) frames/.exec(summary)![1]);
    expect(frames).to.equal(Number(m![1]));
    expect(summary).to.match(/ 0 undecodable/);
  });

  async function cli(argv: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l), env: { MIRRORFLOW_DB: sb.dbUrl }, signal: new AbortController().signal });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }
});

const SERVER = `
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 5001)); s.listen(1)
c, _ = s.accept(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    n += len(b)
c.sendall(str(n).encode()); c.close()
`;
const CLIENT = `
import socket, sys
s = socket.create_connection((sys.argv[1], 5001), timeout=30); total = int(sys.argv[2]); chunk = b'x' * 65536; sent = 0
while sent < total:
    k = min(len(chunk), total - sent); s.sendall(chunk[:k]); sent += k
s.shutdown(socket.SHUT_WR); print(s.recv(100).decode()); s.close()
`;
