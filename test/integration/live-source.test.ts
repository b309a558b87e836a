// The live frame source against the real kernel: libpcap through our addon on veth pairs.
// Needs root (veth pairs, network namespaces, packet sockets) and the built addon (`npm ci`).
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { openLiveSource, type LiveSource } from '../../src/capture/live-source.js';
import { NativeCaptureError, loadPcapBinding } from '../../src/capture/native-binding.js';
import { LINKTYPE_ETHERNET, type FrameSource } from '../../src/capture/source.js';
import { runFile } from '../helpers/exec.js';

interface Captured {
  caplen: number;
  len: number;
  tsSec: number;
  tsNsec: number;
  bytes: Buffer;
}

/** Rejects after `timeoutMs` with a message naming what we waited for (a deadline, not a sleep). */
function withDeadline<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`live-source test: timed out waiting for ${what} (timeoutMs=${timeoutMs})`)), timeoutMs);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** Reads batches, copying every frame, until `done` says the last frame was the one we waited for. */
async function collectUntil(src: FrameSource, done: (f: Captured) => boolean, timeoutMs: number, what: string): Promise<Captured[]> {
  const out: Captured[] = [];
  const run = async (): Promise<Captured[]> => {
    for (;;) {
      const b = await src.next();
      if (!b) throw new Error(`live-source test: source closed before ${what}`);
      expect(b.count).to.be.greaterThan(0);
      for (let i = 0; i < b.count; i++) {
        const f: Captured = {
          caplen: b.caplen[i]!,
          len: b.len[i]!,
          tsSec: b.tsSec[i]!,
          tsNsec: b.tsNsec[i]!,
          bytes: Buffer.from(b.data.subarray(b.offset[i]!, b.offset[i]! + b.caplen[i]!)),
        };
        out.push(f);
        if (done(f)) return out;
      }
    }
  };
  return withDeadline(run(), timeoutMs, what);
}

const ETH_HEADER = 14;
const IPV4_HEADER = 20; // no options in what we send
const UDP_HEADER = 8;
const ICMP_ECHO_HEADER = 8;

function isIpv4(f: Captured): boolean {
  return f.bytes.readUInt16BE(12) === 0x0800;
}
function ipProto(f: Captured): number {
  return f.bytes[ETH_HEADER + 9]!;
}
function udpDstPort(f: Captured): number {
  return f.bytes.readUInt16BE(ETH_HEADER + IPV4_HEADER + 2);
}
function udpPayloadLength(f: Captured): number {
  return f.bytes.readUInt16BE(ETH_HEADER + IPV4_HEADER + 4) - UDP_HEADER;
}

/** The payload byte pattern the namespace's sender uses: byte i of an n-byte payload. */
function payloadByte(n: number, i: number): number {
  return (i * 7 + n) & 0xff;
}

const UDP_SENDER = [
  'import socket, sys',
  'ip, port = sys.argv[1], int(sys.argv[2])',
  's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
  'for n in [int(x) for x in sys.argv[3].split(",")]:',
  '    s.sendto(bytes(((i * 7 + n) & 255) for i in range(n)), (ip, port))',
  's.sendto(b"END", (ip, port))',
].join('\n');

/** Sends `count` datagrams with a 4-byte sequence number and `padBytes` zeros, then "END". */
const UDP_BURST_SENDER = [
  'import socket, struct, sys',
  'ip, port, count, pad = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])',
  's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
  'tail = bytes(pad)',
  'for i in range(count):',
  '    s.sendto(struct.pack("!I", i) + tail, (ip, port))',
  's.sendto(b"END", (ip, port))',
].join('\n');

function isEndMarker(port: number): (f: Captured) => boolean {
  return (f) => isIpv4(f) && ipProto(f) === 17 && udpDstPort(f) === port && udpPayloadLength(f) === 3;
}

async function ip(...args: string[]): Promise<void> {
  await runFile('ip', args, { timeoutMs: 10_000 });
}

async function macOf(iface: string): Promise<Buffer> {
  const text = (await readFile(`/sys/class/net/${iface}/address`, 'utf8')).trim();
  return Buffer.from(text.split(':').map((h) => parseInt(h, 16)));
}

describe('live frame source (libpcap addon, veth pairs)', function () {
  this.timeout(60_000);

  const tag = randomBytes(4).toString('hex');
  const ns = `mftl${tag}`;
  const hostIf = `mfh${tag}`; // root namespace end
  const peerIf = `mfp${tag}`; // moved into the namespace
  const injA = `mfa${tag}`; // injection pair, both ends in the root namespace
  const injB = `mfb${tag}`;
  // A random /30 in 10.253.0.0/16, so parallel runs do not collide.
  const third = randomBytes(1)[0]!;
  const fourth = (randomBytes(1)[0]! & 0xfc) >>> 0;
  const hostIp = `10.253.${third}.${fourth + 1}`;
  const peerIp = `10.253.${third}.${fourth + 2}`;
  const port = 20_000 + (randomBytes(2).readUInt16BE(0) % 20_000);
  let listener: dgram.Socket | undefined;
  const sources: LiveSource[] = [];

  async function open(opts: Parameters<typeof openLiveSource>[0]): Promise<LiveSource> {
    const src = await openLiveSource(opts);
    sources.push(src);
    return src;
  }

  function inNs(cmd: string[], timeoutMs = 20_000): Promise<unknown> {
    return runFile('ip', ['netns', 'exec', ns, ...cmd], { timeoutMs });
  }

  before(async function () {
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      throw new Error('live-source test: needs root (veth pairs, network namespaces, packet sockets); run as root');
    }
    loadPcapBinding(); // fails with "native addon not built ...; run npm ci or npm run build:native"
    await ip('netns', 'add', ns);
    await ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', peerIf);
    await ip('link', 'set', peerIf, 'netns', ns);
    await ip('addr', 'add', `${hostIp}/30`, 'dev', hostIf);
    await ip('link', 'set', hostIf, 'up');
    await ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${peerIp}/30`, 'dev', peerIf);
    await ip('netns', 'exec', ns, 'ip', 'link', 'set', peerIf, 'up');
    await ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
    await ip('link', 'add', injA, 'type', 'veth', 'peer', 'name', injB);
    await ip('link', 'set', injA, 'up');
    await ip('link', 'set', injB, 'up');
    // A receiver on the host side, so the datagrams draw no ICMP port-unreachable (which the filter would catch).
    listener = dgram.createSocket('udp4');
    const l = listener;
    await new Promise<void>((resolve, reject) => {
      l.once('error', reject);
      l.bind(port, hostIp, () => resolve());
    });
    l.on('message', () => undefined);
  });

  afterEach(async function () {
    for (const s of sources.splice(0)) await s.close();
  });

  after(async function () {
    listener?.close();
    await runFile('ip', ['netns', 'del', ns]).catch(() => undefined); // takes the veth pair with it
    await runFile('ip', ['link', 'del', hostIf]).catch(() => undefined);
    await runFile('ip', ['link', 'del', injA]).catch(() => undefined);
  });

  it('captures exactly the filtered frames with on-wire lengths, snaplen-cut caplens and nanosecond kernel timestamps', async function () {
    const snaplen = 64;
    const src = await open({ interface: hostIf, filter: `icmp or udp port ${port}`, snaplen });
    // A second capture of the same traffic, whole frames: checks the bytes themselves.
    const whole = await open({ interface: hostIf, filter: `udp port ${port}` });
    expect(src.linkType(0)).to.equal(LINKTYPE_ETHERNET);
    expect(src.description).to.equal(`interface=${hostIf}`);
    expect(src.tstampPrecision()).to.equal('nano');
    expect(src.options.snaplen).to.equal(snaplen);

    const wallBeforeMs = Date.now();
    const captured = collectUntil(src, isEndMarker(port), 30_000, 'the END datagram (snaplen 64 capture)');
    const capturedWhole = collectUntil(whole, isEndMarker(port), 30_000, 'the END datagram (whole-frame capture)');
    // 5 echo requests from the namespace and the host's 5 replies, 100-byte ICMP payload each.
    const pingPayload = 100;
    await inNs(['ping', '-n', '-c', '5', '-i', '0.2', '-W', '2', '-s', String(pingPayload), hostIp]);
    const udpSizes = [10, 100, 1000, 1472];
    await inNs(['python3', '-c', UDP_SENDER, hostIp, String(port), udpSizes.join(',')]);
    const frames = await captured;
    const framesWhole = await capturedWhole;
    const wallAfterMs = Date.now();

    const beforeEnd = frames.slice(0, -1);
    const icmp = beforeEnd.filter((f) => isIpv4(f) && ipProto(f) === 1);
    const udp = beforeEnd.filter((f) => isIpv4(f) && ipProto(f) === 17 && udpDstPort(f) === port);
    // Nothing else got through the filter (ARP, IPv6 router solicitations, ...).
    expect(icmp.length + udp.length).to.equal(beforeEnd.length);
    expect(icmp).to.have.length(10);
    expect(udp).to.have.length(udpSizes.length);

    const icmpFrameLen = ETH_HEADER + IPV4_HEADER + ICMP_ECHO_HEADER + pingPayload; // 142
    expect(icmpFrameLen).to.equal(142);
    for (const f of icmp) {
      expect(f.len).to.equal(icmpFrameLen);
      expect(f.caplen).to.equal(snaplen);
      expect(f.bytes).to.have.length(snaplen);
    }
    // ICMP types: 5 echo requests (8) in, 5 replies (0) out.
    expect(icmp.map((f) => f.bytes[ETH_HEADER + IPV4_HEADER]).sort()).to.deep.equal([0, 0, 0, 0, 0, 8, 8, 8, 8, 8]);

    expect(udp.map((f) => f.len)).to.deep.equal(udpSizes.map((n) => ETH_HEADER + IPV4_HEADER + UDP_HEADER + n)); // 52, 142, 1042, 1514
    for (const f of udp) {
      expect(f.caplen).to.equal(Math.min(f.len, snaplen));
      const n = f.len - (ETH_HEADER + IPV4_HEADER + UDP_HEADER);
      const payload = f.bytes.subarray(ETH_HEADER + IPV4_HEADER + UDP_HEADER);
      for (let i = 0; i < payload.length; i++) expect(payload[i]).to.equal(payloadByte(n, i));
    }

    // The whole-frame capture holds every byte the namespace sent.
    const wholeUdp = framesWhole.slice(0, -1);
    expect(wholeUdp.map((f) => f.len)).to.deep.equal(udpSizes.map((n) => 42 + n));
    for (const f of wholeUdp) {
      expect(f.caplen).to.equal(f.len);
      const n = f.len - 42;
      const expected = Buffer.from(Array.from({ length: n }, (_, i) => payloadByte(n, i)));
      expect(f.bytes.subarray(42).equals(expected)).to.equal(true);
    }

    // Timestamps: nanosecond resolution (not all whole microseconds), in capture order, and wall-clock time.
    const nsOf = (f: Captured): bigint => BigInt(f.tsSec) * 1_000_000_000n + BigInt(f.tsNsec);
    for (const f of frames) expect(f.tsNsec).to.be.lessThan(1_000_000_000);
    expect(frames.some((f) => f.tsNsec % 1000 !== 0)).to.equal(true);
    for (let i = 1; i < frames.length; i++) expect(nsOf(frames[i]!) >= nsOf(frames[i - 1]!)).to.equal(true);
    for (const f of frames) {
      const ms = f.tsSec * 1000 + f.tsNsec / 1e6;
      expect(ms).to.be.within(wallBeforeMs - 1000, wallAfterMs + 1000);
    }

    const stats = src.stats();
    expect(stats.frames).to.equal(frames.length);
    expect(stats.pcapReceived).to.be.a('number');
    expect(stats.pcapReceived!).to.be.at.least(frames.length);
    expect(stats.pcapDropped).to.be.a('number');
    expect(stats.pcapIfDropped).to.be.a('number');
  });

  it('hands out a burst in order without loss through small batches (frames carried over between reads)', async function () {
    const count = 20_000;
    const padBytes = 60; // UDP payload 64 bytes: frame 106
    // batchBytes 1000 holds 7 frames of snaplen 128 surely and then as many as fit: most reads end
    // with a frame that does not fit and is handed out first by the next read.
    const src = await open({ interface: hostIf, filter: `udp port ${port}`, snaplen: 128, batchFrames: 64, batchBytes: 1000 });
    const collected = collectUntil(src, isEndMarker(port), 50_000, 'the END datagram after the burst');
    const started = process.hrtime.bigint();
    await inNs(['python3', '-c', UDP_BURST_SENDER, hostIp, String(port), String(count), String(padBytes)], 50_000);
    const frames = await collected;
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    const burst = frames.slice(0, -1);
    expect(burst).to.have.length(count);
    for (let i = 0; i < burst.length; i++) {
      const f = burst[i]!;
      expect(f.len).to.equal(106);
      expect(f.caplen).to.equal(106);
      if (f.bytes.readUInt32BE(42) !== i) expect.fail(`frame ${i} carries sequence ${f.bytes.readUInt32BE(42)}`);
    }
    const stats = src.stats();
    expect(stats.frames).to.equal(count + 1);
    expect(stats.pcapDropped).to.equal(0);
    console.log(`      (${count} frames in ${elapsedMs.toFixed(0)} ms incl. the python sender)`);
  });

  it('injects frames that arrive at the other end of the wire', async function () {
    const ethertype = 0x88b5; // IEEE local experimental
    const rx = await open({ interface: injB, filter: `ether proto 0x${ethertype.toString(16)}`, immediate: true });
    const tx = await open({ interface: injA, filter: `ether proto 0x${ethertype.toString(16)}` });
    const dst = await macOf(injB);
    const srcMac = await macOf(injA);
    const nonce = randomBytes(8);
    const frames = [0, 1, 2, 3, 4].map((i) => {
      const payload = Buffer.alloc(100, i);
      nonce.copy(payload, 0);
      return Buffer.concat([dst, srcMac, Buffer.from([ethertype >> 8, ethertype & 0xff]), payload]);
    });
    const received = collectUntil(rx, (f) => f.bytes.length > 22 && f.bytes[22] === 4 && f.bytes.subarray(14, 22).equals(nonce), 15_000, 'the injected frames');
    for (const f of frames) expect(tx.inject(f)).to.equal(114);
    const got = (await received).filter((f) => f.bytes.subarray(14, 22).equals(nonce));
    expect(got.map((f) => f.len)).to.deep.equal([114, 114, 114, 114, 114]);
    got.forEach((f, i) => expect(f.bytes.equals(frames[i]!)).to.equal(true));
  });

  it('names the interface and pcap error when the interface does not exist', async function () {
    const name = `nosuch${tag}`.slice(0, 15);
    const err = await openLiveSource({ interface: name }).then(
      () => expect.fail('opened a missing interface'),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(NativeCaptureError);
    expect((err as NativeCaptureError).code).to.equal('capture-open');
    expect((err as Error).message).to.match(new RegExp(`^capture: cannot open interface \\(interface=${name}, error=.*(No such device|doesn't exist)`));
  });

  it('names the filter and pcap error when the filter does not compile', async function () {
    const err = await openLiveSource({ interface: hostIf, filter: 'udp port' }).then(
      () => expect.fail('accepted a bad filter'),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(NativeCaptureError);
    expect((err as NativeCaptureError).code).to.equal('capture-filter');
    expect((err as Error).message).to.match(new RegExp(`^capture: bad filter \\(interface=${hostIf}, filter="udp port", error=.*syntax error`));
  });

  it('ends a waiting next() with null on close, and survives double close, next, stats and inject after close', async function () {
    const src = await openLiveSource({ interface: hostIf, filter: 'udp port 9' });
    const waiting = src.next();
    await src.close();
    expect(await withDeadline(waiting, 5_000, 'next() to end after close')).to.equal(null);
    await src.close();
    expect(await src.next()).to.equal(null);
    expect(src.stats().frames).to.equal(0);
    expect(src.stats().pcapReceived).to.be.a('number');
    expect(() => src.inject(Buffer.alloc(60))).to.throw(NativeCaptureError, /^capture: source closed \(interface=/);
  });

  it('rejects a second next() while one is pending', async function () {
    const src = await open({ interface: hostIf, filter: 'udp port 9' });
    const first = src.next();
    const err = await src.next().then(
      () => expect.fail('a concurrent next() resolved'),
      (e: unknown) => e,
    );
    expect((err as Error).message).to.match(/^capture: next\(\) called while another next\(\) is pending/);
    await src.close();
    expect(await first).to.equal(null);
  });
});
