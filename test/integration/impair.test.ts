// The impairment forwarder (src/capture/native/impair.cc, scripts/impair.ts) is itself measured:
// two namespaces linked only through it, sequence-numbered UDP both ways at a steady pace, tcpdump
// on both of its interfaces (nanosecond kernel timestamps), every frame matched entering and
// leaving. No OVS needed.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeCaptureError, startImpairment, type Impairment, type ImpairmentStats } from '../../src/capture/native-binding.js';
import {
  IMPAIR_TEST_PORT,
  createImpairLink,
  matchDirection,
  readPcap,
  sendSequences,
  seqFrames,
  startTcpdump,
  type DirectionResult,
  type ImpairLink,
} from '../helpers/impair-link.js';
import { waitFor } from '../helpers/wait.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

interface Run {
  aToB: DirectionResult;
  bToA: DirectionResult;
  stats: ImpairmentStats;
  tcpdumpDropped: number;
}

/**
 * Forwards between the link's host ends with the given impairment while both namespaces send
 * `count` frames to each other (one every intervalUs), captures both host ends, and matches.
 */
async function measure(link: ImpairLink, dir: string, opts: { delayUs: number; lossProb: number; seed: number; count: number; intervalUs: number }): Promise<Run> {
  const filter = `udp port ${IMPAIR_TEST_PORT}`;
  const capA = await startTcpdump(link.a.hostIface, join(dir, `a-${opts.delayUs}-${opts.lossProb}.pcap`), filter);
  const capB = await startTcpdump(link.b.hostIface, join(dir, `b-${opts.delayUs}-${opts.lossProb}.pcap`), filter);
  let imp: Impairment | undefined;
  let stats: ImpairmentStats | undefined;
  let tcpdumpDropped = 0;
  try {
    imp = startImpairment({ a: link.a.hostIface, b: link.b.hostIface, delayUs: opts.delayUs, lossProb: opts.lossProb, seed: opts.seed });
    await sendSequences(link, [link.a, link.b], opts.count, opts.intervalUs, opts.delayUs / 1000 + 300);
    // Every frame read has been dropped or sent (or counted as a failure).
    const settled = (d: ImpairmentStats['aToB']) =>
      d.received >= opts.count && d.queued === 0 && d.dropped + d.forwarded + d.queueOverflow + d.injectErrors + d.truncated === d.received;
    await waitFor(
      () => {
        const s = imp!.stats();
        return settled(s.aToB) && settled(s.bToA);
      },
      { what: 'the forwarder to have sent or dropped every frame', timeoutMs: 10_000 + opts.delayUs / 1000 },
    );
    // ... and tcpdump has written what the forwarder read and sent.
    const s = imp.stats();
    const written = () => {
      const atA = seqFrames(readPcap(capA.file));
      const atB = seqFrames(readPcap(capB.file));
      const n = (frames: typeof atA, tag: string) => frames.filter((f) => f.tag === tag).length;
      return n(atA, 'A') >= s.aToB.received && n(atB, 'A') >= s.aToB.forwarded && n(atB, 'B') >= s.bToA.received && n(atA, 'B') >= s.bToA.forwarded;
    };
    await waitFor(written, { what: 'tcpdump to have written every frame', timeoutMs: 10_000 }).catch(() => undefined); // the assertions say what is missing
  } finally {
    stats = imp?.stop();
    for (const cap of [capA, capB]) tcpdumpDropped += (await cap.stop()).droppedByKernel;
  }
  if (!stats) throw new Error('impair test: the forwarder did not start');
  const atA = seqFrames(readPcap(capA.file));
  const atB = seqFrames(readPcap(capB.file));
  // A's frames enter at a.hostIface and leave at b.hostIface; B's the other way.
  return { aToB: matchDirection(atA, atB, 'A'), bToA: matchDirection(atB, atA, 'B'), stats, tcpdumpDropped };
}

function describeRun(label: string, r: DirectionResult, delayUs: number, lossProb: number): string {
  const err = (v: number) => `${v - delayUs >= 0 ? '+' : ''}${((v - delayUs) / 1000).toFixed(3)} ms`;
  return (
    `      ${label}: frames=${r.sent} delivered=${r.delivered} loss=${(r.lossRate * 100).toFixed(2)}% (configured ${(lossProb * 100).toFixed(2)}%) ` +
    `delay median ${err(r.medianUs)} p95 ${err(r.p95Us)} p99 ${err(r.p99Us)} max ${err(r.maxUs)} (configured ${(delayUs / 1000).toFixed(3)} ms)`
  );
}

describe('impairment forwarder (native threads in the capture addon)', function () {
  this.timeout(180_000);
  let link: ImpairLink;
  let dir: string;

  before(async function () {
    if (process.getuid?.() !== 0) throw new Error('impair test: must run as root (namespaces, packet sockets)');
    dir = mkdtempSync(join(tmpdir(), 'mf-impair-'));
    link = await createImpairLink({ net: 97 });
  });
  after(async () => {
    await link?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('nothing passes without the forwarder (the link has no other path)', async () => {
    const cap = await startTcpdump(link.b.hostIface, join(dir, 'none.pcap'), `udp port ${IMPAIR_TEST_PORT}`);
    await sendSequences(link, [link.a], 20, 1000, 100);
    await cap.stop();
    expect(seqFrames(readPcap(cap.file)).filter((f) => f.tag === 'A')).to.have.length(0);
  });

  it('delays by D = 20 ms within 0.2 ms (median and p95) and drops p = 5 % within 1 point, both ways, 10,000 frames each', async () => {
    const delayUs = 20_000;
    const lossProb = 0.05;
    const r = await measure(link, dir, { delayUs, lossProb, seed: 20240501, count: 10_000, intervalUs: 1000 });
    console.log(describeRun('a->b', r.aToB, delayUs, lossProb));
    console.log(describeRun('b->a', r.bToA, delayUs, lossProb));
    console.log(`      forwarder: realtime=${r.stats.realtime} lateUsMean a->b ${r.stats.aToB.lateUsMean.toFixed(1)} b->a ${r.stats.bToA.lateUsMean.toFixed(1)}`);
    expect(r.tcpdumpDropped, 'tcpdump dropped frames: the measurement is incomplete').to.equal(0);
    for (const [name, d, s] of [
      ['a->b', r.aToB, r.stats.aToB],
      ['b->a', r.bToA, r.stats.bToA],
    ] as const) {
      expect(d.sent, `${name}: frames seen entering`).to.equal(10_000);
      expect(d.unexpected, `${name}: frames that left without entering, or twice`).to.equal(0);
      expect(d.reordered, `${name}: reordered frames`).to.equal(0);
      expect(Math.abs(d.lossRate - lossProb), `${name}: loss ${d.lossRate}`).to.be.at.most(0.01);
      expect(Math.abs(d.medianUs - delayUs), `${name}: median delay ${d.medianUs} us`).to.be.at.most(200);
      expect(Math.abs(d.p95Us - delayUs), `${name}: p95 delay ${d.p95Us} us`).to.be.at.most(200);
      expect(d.delaysUs[0]!, `${name}: no frame leaves early`).to.be.at.least(delayUs - 50);
      // The forwarder's own counters agree with what was captured.
      expect(s.received, `${name}: received`).to.equal(d.sent);
      expect(s.forwarded, `${name}: forwarded`).to.equal(d.delivered);
      expect(s.dropped, `${name}: dropped`).to.equal(d.sent - d.delivered);
      expect(s.queueOverflow + s.injectErrors + s.truncated + s.captureDropped, `${name}: failures`).to.equal(0);
    }
    expect(r.stats.error).to.equal(null);
    expect(r.stats.seed).to.equal(20240501);
  });

  it('forwards everything at D = 0 and p = 0, without reordering, in well under 0.2 ms', async () => {
    const r = await measure(link, dir, { delayUs: 0, lossProb: 0, seed: 1, count: 2000, intervalUs: 500 });
    console.log(describeRun('a->b', r.aToB, 0, 0));
    console.log(describeRun('b->a', r.bToA, 0, 0));
    expect(r.tcpdumpDropped).to.equal(0);
    for (const [name, d, s] of [
      ['a->b', r.aToB, r.stats.aToB],
      ['b->a', r.bToA, r.stats.bToA],
    ] as const) {
      expect(d.sent, name).to.equal(2000);
      expect(d.delivered, name).to.equal(2000);
      expect(d.reordered + d.unexpected, name).to.equal(0);
      expect(d.medianUs, `${name}: median delay`).to.be.below(200);
      expect(s.dropped + s.queueOverflow + s.injectErrors, name).to.equal(0);
    }
  });

  it('the same seed drops the same frames', async () => {
    const one = await measure(link, dir, { delayUs: 0, lossProb: 0.3, seed: 77, count: 300, intervalUs: 300 });
    const two = await measure(link, dir, { delayUs: 0, lossProb: 0.3, seed: 77, count: 300, intervalUs: 300 });
    console.log(`      seed 77: dropped a->b ${one.stats.aToB.dropped}/${one.stats.aToB.received}, ${two.stats.aToB.dropped}/${two.stats.aToB.received}; b->a ${one.stats.bToA.dropped}/${one.stats.bToA.received}, ${two.stats.bToA.dropped}/${two.stats.bToA.received}`);
    expect(one.stats.aToB.dropped).to.be.within(45, 135);
    expect(one.aToB.lostSeqs).to.have.length(one.stats.aToB.dropped);
    expect(two.aToB.lostSeqs, 'a->b: the same frames dropped').to.deep.equal(one.aToB.lostSeqs);
    expect(two.bToA.lostSeqs, 'b->a: the same frames dropped').to.deep.equal(one.bToA.lostSeqs);
    expect(one.bToA.lostSeqs, 'the directions draw from different streams').to.not.deep.equal(one.aToB.lostSeqs);
    const other = await measure(link, dir, { delayUs: 0, lossProb: 0.3, seed: 78, count: 300, intervalUs: 300 });
    expect(other.aToB.lostSeqs, 'another seed, other frames').to.not.deep.equal(one.aToB.lostSeqs);
  });

  it('carries a TCP transfer (wire-sized frames: nothing too long to send, nothing truncated)', async () => {
    const imp = startImpairment({ a: link.a.hostIface, b: link.b.hostIface, delayUs: 2000, lossProb: 0 });
    try {
      const server = spawn('ip', ['netns', 'exec', link.b.ns, 'python3', '-c', TCP_SERVER, link.b.ip], { stdio: ['ignore', 'pipe', 'pipe'] });
      let got = '';
      server.stdout.setEncoding('utf8').on('data', (s: string) => (got += s));
      const serverDone = new Promise<void>((resolve) => server.once('exit', () => resolve()));
      try {
        await waitFor(async () => (await link.exec(link.b, ['ss', '-ltn'])).includes(':5001'), { what: 'TCP server listening' });
        const out = await link.exec(link.a, ['python3', '-c', TCP_CLIENT, link.b.ip, String(2_000_000)]);
        expect(out.trim()).to.equal('2000000');
        await serverDone;
      } finally {
        server.kill('SIGKILL');
      }
      expect(got.trim()).to.equal('2000000');
    } finally {
      const s = imp.stop();
      for (const d of [s.aToB, s.bToA]) {
        expect(d.injectErrors, `${d.from}: ${d.lastInjectError}`).to.equal(0);
        expect(d.truncated + d.queueOverflow + d.dropped, d.from).to.equal(0);
        expect(d.forwarded, d.from).to.equal(d.received);
      }
      expect(s.aToB.forwarded).to.be.above(1300); // 2 MB in segments of at most 1448 bytes
    }
  });

  it('rejects a missing interface and bad options with one clear error', () => {
    const fails = (opts: Parameters<typeof startImpairment>[0]) => {
      try {
        startImpairment(opts).stop();
      } catch (err) {
        return err as NativeCaptureError;
      }
      throw new Error('expected startImpairment to throw');
    };
    const missing = fails({ a: link.a.hostIface, b: 'mfnosuch0' });
    expect(missing).to.be.instanceOf(NativeCaptureError);
    expect(missing.code).to.equal('impair-open');
    expect(missing.message).to.match(/^impair: cannot open interface \(interface=mfnosuch0, error=/);
    const badDelay = fails({ a: link.a.hostIface, b: link.b.hostIface, delayUs: -1 });
    expect(badDelay.code).to.equal('impair-option');
    expect(badDelay.message).to.equal('impair: bad option (option=delayUs, expected="integer 0..60000000")');
    const badLoss = fails({ a: link.a.hostIface, b: link.b.hostIface, lossProb: 1.5 });
    expect(badLoss.message).to.equal('impair: bad option (option=lossProb, expected="number 0..1")');
    const same = fails({ a: link.a.hostIface, b: link.a.hostIface });
    expect(same.message).to.equal('impair: bad option (option=b, expected="an interface other than a")');
  });

  it('scripts/impair.ts forwards with the delay until SIGTERM, then prints its counters', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/impair.ts', '--a', link.a.hostIface, '--b', link.b.hostIface, '--delay-ms', '5', '--loss', '0%', '--seed', '3', '--json'],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(() => err.includes('impair: forwarding ('), { what: 'scripts/impair.ts forwarding', timeoutMs: 30_000 });
      expect(err).to.match(/delayMs=5, loss=0, seed=3/);
      const ping = await link.exec(link.a, ['ping', '-n', '-c', '10', '-i', '0.05', '-W', '2', link.b.ip]);
      const m = /(\d+) received.*\n.*= ([\d.]+)\/([\d.]+)\/([\d.]+)/s.exec(ping);
      expect(m, ping).to.not.equal(null);
      expect(Number(m![1])).to.equal(10);
      const avgMs = Number(m![3]);
      expect(avgMs, 'RTT through the forwarder: 2 x 5 ms').to.be.within(10, 10.5);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).to.equal(0);
    const stats = JSON.parse(out) as ImpairmentStats;
    expect(stats.aToB.forwarded).to.be.at.least(10);
    expect(stats.bToA.forwarded).to.be.at.least(10);
    expect(stats.aToB.dropped + stats.bToA.dropped).to.equal(0);
    expect(stats.running).to.equal(false);
  });
});

const TCP_SERVER = `
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 5001)); s.listen(1)
c, _ = s.accept(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    n += len(b)
c.sendall(str(n).encode()); c.close(); print(n)
`;
const TCP_CLIENT = `
import socket, sys
s = socket.create_connection((sys.argv[1], 5001), timeout=30); total = int(sys.argv[2]); chunk = b'x' * 65536; sent = 0
while sent < total:
    k = min(len(chunk), total - sent); s.sendall(chunk[:k]); sent += k
s.shutdown(socket.SHUT_WR); print(s.recv(100).decode()); s.close()
`;
