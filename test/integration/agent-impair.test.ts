// End to end on the sandbox: three namespace VMs on an OVS bridge, one of them joined through the
// impairment forwarder (D ms each way, loss p each way), the agent mirroring all of them with its
// embedded pipeline. The impaired pair shows the induced delay (handshake RTT ≈ 2 D: the SYN/ACK
// and the ACK each cross the forwarder once) and loss (retransmissions and gap fills over data
// segments ≈ p); the clean pair shows neither; VMs are named from OVSDB.
import { expect } from 'chai';
import type { PairWindow } from '../../src/capture/flow-record.js';
import { Agent } from '../../src/agent/agent.js';
import { EmbeddedSink } from '../../src/agent/embedded-sink.js';
import { createLogger } from '../../src/log.js';
import type { MirrorSpec } from '../../src/ovsdb/mirror-spec.js';
import { quietVms, type NetnsVm } from '../helpers/netns-vm.js';
import { startSandbox, type Sandbox } from '../helpers/ovs-sandbox.js';
import { MemoryOutput } from '../helpers/memory-output.js';
import { waitFor } from '../helpers/wait.js';

const DELAY_MS = 10;
const LOSS = 0.05;

const SERVER = `
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 5001)); s.listen(64)
def serve(c):
    n = 0
    while True:
        b = c.recv(65536)
        if not b: break
        n += len(b)
    try: c.sendall(str(n).encode())
    except OSError: pass
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
`;
// N short connections of 200 bytes, then (optionally) one bulk transfer of SIZE bytes; prints the bytes acknowledged
const CLIENT = `
import socket, sys
host, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def send(total):
    s = socket.create_connection((host, 5001), timeout=60); chunk = b'x' * 65536; sent = 0
    while sent < total:
        k = min(len(chunk), total - sent); s.sendall(chunk[:k]); sent += k
    s.shutdown(socket.SHUT_WR); got = int(s.recv(100).decode() or 0); s.close(); return got
done = sum(send(200) for _ in range(n))
if size: done += send(size)
print(done)
`;

interface PairTotals {
  windows: number;
  handshakes: number;
  /** p50 of each window with at least 5 handshakes (a median of one or two samples is not one). */
  rttP50s: number[];
  retransmits: number;
  gapFills: number;
  dataSegments: number;
}

function totals(pairs: PairWindow[], x: string, y: string): PairTotals {
  const [a, b] = [x, y].sort();
  const t: PairTotals = { windows: 0, handshakes: 0, rttP50s: [], retransmits: 0, gapFills: 0, dataSegments: 0 };
  for (const p of pairs) {
    if (p.a !== a || p.b !== b) continue;
    t.windows++;
    t.handshakes += p.tcp.handshakes;
    if (p.tcp.handshakeRttUs.count >= 5) t.rttP50s.push(p.tcp.handshakeRttUs.p50);
    t.retransmits += p.tcp.retransmits;
    t.gapFills += p.tcp.gapFills;
    t.dataSegments += p.tcp.dataSegments;
  }
  return t;
}

describe('agent end to end: induced delay and loss show on the impaired pair only', function () {
  this.timeout(240_000);
  let sb: Sandbox;
  let br: string;
  let slow: NetnsVm;
  let srv: NetnsVm;
  let peer: NetnsVm;

  before(async () => {
    sb = await startSandbox();
    br = sb.uniqueName('br');
    await sb.addBridge(br);
    slow = await sb.addVm({ name: sb.uniqueName('slow'), bridge: br, ip: '10.64.0.1/24', impair: { delayMs: DELAY_MS, lossProb: LOSS, seed: 20261125 } });
    srv = await sb.addVm({ name: sb.uniqueName('srv'), bridge: br, ip: '10.64.0.2/24' });
    peer = await sb.addVm({ name: sb.uniqueName('peer'), bridge: br, ip: '10.64.0.3/24' });
    // paced senders: the userspace datapath drops unpaced bursts (real loss this test must not see)
    await quietVms([slow, srv, peer], { paceMbit: 40 });
  });
  after(async () => {
    await sb?.stop();
  });

  it(`impaired pair: handshake RTT within 10 % of 2 × ${DELAY_MS} ms, loss rate within 2 points of ${LOSS * 100} %; clean pair: neither`, async () => {
    const pairs = new MemoryOutput<PairWindow>();
    const spec: MirrorSpec = { bridge: br, name: 'e2e', selection: { kind: 'all' }, direction: 'both', output: { kind: 'internal' } };
    const windowUs = 60_000_000;
    const agent = new Agent({
      agentId: 'hv-e2e',
      ovsdb: { url: sb.dbUrl },
      mirrors: [spec],
      capture: {},
      flows: { idleTimeoutMs: 15_000, activeTimeoutMs: 60_000, maxFlows: 100_000 },
      windowUs,
      openSink: async ({ resolver, agentId }) => {
        const sink = new EmbeddedSink({ windowUs, resolver, agentId, pairsOut: pairs });
        return { kind: 'embedded' as const, write: (r, t) => sink.write(r, t), advance: (t) => sink.advance(t), behind: false, close: () => sink.close(), stats: () => ({}) };
      },
      logger: createLogger({}, 'silent'),
    });
    await agent.start();
    let stopped = false;
    try {
      await waitFor(() => agent.status().ready, { what: 'agent ready', timeoutMs: 20_000 });
      const server = srv.spawn(['python3', '-c', SERVER, srv.ip]);
      try {
        await waitFor(async () => (await srv.exec(['ss', '-ltn'])).stdout.includes(':5001'), { what: 'server listening' });
        // the impaired VM: 20 short connections (handshakes) and a 3 MB transfer (its data crosses the forwarder before the mirror: gap fills)
        const slowRun = await slow.exec(['python3', '-c', CLIENT, srv.ip, '20', String(3_000_000)], { timeoutMs: 120_000 });
        expect(Number(slowRun.stdout.trim())).to.equal(20 * 200 + 3_000_000);
        // the clean pair: 20 short connections and a 1 MB transfer
        const peerRun = await peer.exec(['python3', '-c', CLIENT, srv.ip, '20', String(1_000_000)], { timeoutMs: 60_000 });
        expect(Number(peerRun.stdout.trim())).to.equal(20 * 200 + 1_000_000);
      } finally {
        server.kill('SIGKILL');
      }
      const summary = await agent.stop();
      stopped = true;
      expect(summary.ledger?.pcapDropped ?? 0, 'no capture loss').to.equal(0);
    } finally {
      if (!stopped) await agent.stop();
    }

    // VM names from OVSDB (vm-uuid in external_ids), not IPs
    const names = new Set(pairs.items.flatMap((p) => [p.a, p.b]));
    expect(names.has(slow.vmUuid) && names.has(srv.vmUuid) && names.has(peer.vmUuid), [...names].join(' ')).to.equal(true);

    const impaired = totals(pairs.items, slow.vmUuid, srv.vmUuid);
    const clean = totals(pairs.items, peer.vmUuid, srv.vmUuid);
    const expectedRttUs = 2 * DELAY_MS * 1000;
    const lossRate = (impaired.retransmits + impaired.gapFills) / impaired.dataSegments;
    console.log(
      `      impaired: handshakes=${impaired.handshakes} rtt p50=${impaired.rttP50s.map((x) => (x / 1000).toFixed(2)).join('/')} ms ` +
        `loss=${(lossRate * 100).toFixed(2)} % (retransmits=${impaired.retransmits} gapFills=${impaired.gapFills} dataSegments=${impaired.dataSegments}); ` +
        `clean: rtt p50=${clean.rttP50s.map((x) => (x / 1000).toFixed(3)).join('/')} ms retransmits=${clean.retransmits} gapFills=${clean.gapFills} dataSegments=${clean.dataSegments}`,
    );
    expect(impaired.handshakes).to.equal(21);
    expect(impaired.rttP50s.length).to.be.greaterThan(0);
    for (const p50 of impaired.rttP50s) expect(Math.abs(p50 - expectedRttUs) / expectedRttUs, `handshake RTT p50 ${p50} µs vs ${expectedRttUs}`).to.be.below(0.1);
    expect(impaired.dataSegments).to.be.greaterThan(1500);
    expect(Math.abs(lossRate - LOSS), `loss rate ${lossRate}`).to.be.below(0.02);
    // loss before the mirror (the impaired VM's own data dropped on its way in) shows as gap fills
    expect(impaired.gapFills).to.be.greaterThan(0);

    expect(clean.handshakes).to.equal(21);
    expect(clean.rttP50s.length).to.be.greaterThan(0);
    for (const p50 of clean.rttP50s) expect(p50, 'clean handshake RTT').to.be.below(expectedRttUs * 0.1);
    expect(clean.retransmits + clean.gapFills, 'clean pair loses nothing').to.equal(0);
    expect(clean.dataSegments).to.be.greaterThan(500);
  });
});
