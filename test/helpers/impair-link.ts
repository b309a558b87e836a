// Test fixtures for the impairment forwarder (src/capture/native/impair.cc, scripts/impair.ts):
// two namespaces whose eth0 peers (host side) are NOT connected to each other, so that whatever
// forwards between the two host-side interfaces (the forwarder) is the only path; a paced UDP
// sender with sequence numbers; tcpdump captures with nanosecond timestamps; a pcap reader and the
// frame matching that turns two captures into per-frame delays and a loss rate.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import { runFile } from './exec.js';
import { TEST_NAME_PREFIX, TEST_REGISTRY_ENV } from './ovs-sandbox.js';
import { waitFor } from './wait.js';

/** UDP port the sender uses (source and destination). */
export const IMPAIR_TEST_PORT = 9000;

export interface LinkEnd {
  ns: string;
  /** The host-side peer of the namespace's eth0: where the forwarder attaches. */
  hostIface: string;
  ip: string;
  mac: string;
}

export interface ImpairLink {
  a: LinkEnd;
  b: LinkEnd;
  /** Runs a command in a namespace; rejects on a non-zero exit. */
  exec(end: LinkEnd, cmd: readonly string[], timeoutMs?: number): Promise<string>;
  /** Removes both namespaces and host interfaces; safe to call twice. */
  destroy(): Promise<void>;
}

function record(kind: 'netns' | 'iface', name: string): void {
  const file = process.env[TEST_REGISTRY_ENV];
  if (file) appendFileSync(file, `${kind} ${name}\n`);
}

async function sh(cmd: string, args: readonly string[]): Promise<string> {
  return (await runFile(cmd, args, { timeoutMs: 30_000 })).stdout;
}

/**
 * Two namespaces (10.<net>.0.1 and .2 /24, static neighbours, IPv6 off, tx checksum offload off)
 * whose host-side veth ends are up, IPv6-less, with GRO/GSO/TSO off (wire-sized frames), and not
 * joined to anything.
 */
export async function createImpairLink(opts: { net: number }): Promise<ImpairLink> {
  const id = `${TEST_NAME_PREFIX}${randomBytes(3).toString('hex').slice(0, 5)}`;
  const ends: LinkEnd[] = [
    { ns: `${id}-ia`, hostIface: `${id}-ia`, ip: `10.${opts.net}.0.1`, mac: '52:54:00:99:00:01' },
    { ns: `${id}-ib`, hostIface: `${id}-ib`, ip: `10.${opts.net}.0.2`, mac: '52:54:00:99:00:02' },
  ];
  const destroy = async (): Promise<void> => {
    for (const end of ends) {
      await runFile('ip', ['link', 'del', end.hostIface]).catch(() => undefined);
      const pids = await runFile('ip', ['netns', 'pids', end.ns]).then(
        (r) => r.stdout.split(/\s+/).filter(Boolean),
        () => [] as string[],
      );
      for (const pid of pids) await runFile('kill', ['-KILL', pid]).catch(() => undefined);
      await runFile('ip', ['netns', 'del', end.ns]).catch(() => undefined);
    }
  };
  try {
    for (const end of ends) {
      record('netns', end.ns);
      record('iface', end.hostIface);
      await sh('ip', ['netns', 'add', end.ns]);
      await sh('ip', ['link', 'add', end.hostIface, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', end.ns]);
      const nsx = (args: string[]) => sh('ip', ['netns', 'exec', end.ns, ...args]);
      await nsx(['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
      await nsx(['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']);
      await nsx(['ip', 'link', 'set', 'lo', 'up']);
      await nsx(['ip', 'link', 'set', 'eth0', 'address', end.mac]);
      await nsx(['ip', 'addr', 'add', `${end.ip}/24`, 'dev', 'eth0']);
      await nsx(['ip', 'link', 'set', 'eth0', 'up']);
      await nsx(['ethtool', '-K', 'eth0', 'tx', 'off']);
      await sh('sysctl', ['-q', '-w', `net.ipv6.conf.${end.hostIface}.disable_ipv6=1`]).catch(() => undefined);
      await sh('ethtool', ['-K', end.hostIface, 'gro', 'off', 'gso', 'off', 'tso', 'off']);
      await sh('ip', ['link', 'set', end.hostIface, 'up']);
    }
    const [a, b] = ends as [LinkEnd, LinkEnd];
    for (const [end, peer] of [
      [a, b],
      [b, a],
    ] as const) {
      await sh('ip', ['netns', 'exec', end.ns, 'ip', 'neigh', 'replace', peer.ip, 'lladdr', peer.mac, 'dev', 'eth0', 'nud', 'permanent']);
    }
    return {
      a,
      b,
      exec: async (end, cmd, timeoutMs = 60_000) => (await runFile('ip', ['netns', 'exec', end.ns, ...cmd], { timeoutMs })).stdout,
      destroy,
    };
  } catch (err) {
    await destroy();
    throw err;
  }
}

// Binds SRC:PORT, prints "bound", waits for a line on stdin, then sends COUNT UDP datagrams to
// DST:PORT on an absolute schedule (one every INTERVAL_US), payload `MFIMP` + TAG (one byte) + seq
// (uint32 BE) + padding to 64 bytes. The socket is never read: datagrams to it are dropped quietly
// (no ICMP port unreachable, which would be extra frames through the forwarder); it stays open
// LINGER_MS after the last send, so the peer's last (delayed) datagrams find it.
const SENDER = `
import socket, struct, sys, time
src, dst, port, count, interval_us, tag, linger_ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6].encode(), int(sys.argv[7])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind((src, port))
print('bound', flush=True)
sys.stdin.readline()
step = interval_us / 1e6
t = time.monotonic()
for i in range(count):
    s.sendto(b'MFIMP' + tag + struct.pack('!I', i) + bytes(54), (dst, port))
    t += step
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)
time.sleep(linger_ms / 1000)
print('sent', count, flush=True)
`;

/**
 * Each end in `from` sends `count` sequence-numbered datagrams to the other end, one every
 * `intervalUs`, all starting together once every sender's port is bound (so no datagram meets a
 * closed port); resolves `lingerMs` after the last send.
 */
export async function sendSequences(link: ImpairLink, from: readonly LinkEnd[], count: number, intervalUs: number, lingerMs = 500): Promise<void> {
  const timeoutMs = 30_000 + lingerMs + (count * intervalUs) / 1000;
  const runs = from.map((end) => {
    const to = end === link.a ? link.b : link.a;
    const tag = end === link.a ? 'A' : 'B';
    const args = [end.ip, to.ip, String(IMPAIR_TEST_PORT), String(count), String(intervalUs), tag, String(Math.round(lingerMs))];
    const child = spawn('ip', ['netns', 'exec', end.ns, 'python3', '-c', SENDER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { end, child, exited, out: () => out, err: () => err };
  });
  const timer = setTimeout(() => runs.forEach((r) => r.child.kill('SIGKILL')), timeoutMs);
  try {
    await waitFor(
      () => {
        for (const r of runs) if (r.child.exitCode !== null) throw new Error(`sender exited early (ns=${r.end.ns}): ${r.err().trim()}`);
        return runs.every((r) => r.out().includes('bound'));
      },
      { what: 'the senders to bind their ports', timeoutMs: 20_000 },
    );
    for (const r of runs) r.child.stdin.end('go\n');
    for (const r of runs) {
      const code = await r.exited;
      if (code !== 0 || !r.out().includes(`sent ${count}`)) {
        throw new Error(`impair-link: sender failed (ns=${r.end.ns}, code=${code}): ${r.err().trim() || r.out().trim()}`);
      }
    }
  } finally {
    clearTimeout(timer);
    for (const r of runs) if (r.child.exitCode === null) r.child.kill('SIGKILL');
  }
}

export interface Tcpdump {
  file: string;
  /** Stops the capture (SIGINT) and resolves with what tcpdump says it dropped. */
  stop(): Promise<{ droppedByKernel: number; captured: number }>;
}

/** Starts tcpdump on a host interface (nanosecond timestamps, both directions) and waits until it listens. */
export async function startTcpdump(iface: string, file: string, filter: string): Promise<Tcpdump> {
  const child: ChildProcess = spawn(
    'tcpdump',
    ['-i', iface, '-nn', '-U', '--immediate-mode', '-s', '128', '-B', '16384', '--time-stamp-precision=nano', '-w', file, filter],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => (stderr += s));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  await waitFor(
    () => {
      if (gone) throw new Error(`tcpdump exited: ${stderr.trim()}`);
      return stderr.includes('listening on');
    },
    { what: `tcpdump listening on ${iface}`, timeoutMs: 15_000 },
  ).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  return {
    file,
    stop: async () => {
      child.kill('SIGINT');
      await exited;
      const num = (re: RegExp) => Number(re.exec(stderr)?.[1] ?? NaN);
      return { droppedByKernel: num(/(\d+) packets? dropped by kernel/), captured: num(/(\d+) packets? captured/) };
    },
  };
}

export interface PcapFrame {
  /** Capture time in nanoseconds since the epoch. */
  tsNs: bigint;
  data: Buffer;
}

/** Reads a classic pcap file (either byte order, micro- or nanosecond timestamps). */
export function readPcap(file: string): PcapFrame[] {
  const buf = readFileSync(file);
  if (buf.length < 24) throw new Error(`pcap: file too short (file=${file}, bytes=${buf.length})`);
  const magicLe = buf.readUInt32LE(0);
  let le: boolean;
  let nano: boolean;
  if (magicLe === 0xa1b2c3d4 || magicLe === 0xa1b23c4d) {
    le = true;
    nano = magicLe === 0xa1b23c4d;
  } else {
    const magicBe = buf.readUInt32BE(0);
    if (magicBe !== 0xa1b2c3d4 && magicBe !== 0xa1b23c4d) throw new Error(`pcap: bad magic (file=${file}, magic=${magicLe.toString(16)})`);
    le = false;
    nano = magicBe === 0xa1b23c4d;
  }
  const u32 = (off: number) => (le ? buf.readUInt32LE(off) : buf.readUInt32BE(off));
  const frames: PcapFrame[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const caplen = u32(off + 8);
    if (off + 16 + caplen > buf.length) break; // a record cut short by the capture's end
    frames.push({ tsNs: BigInt(sec) * 1_000_000_000n + BigInt(nano ? frac : frac * 1000), data: buf.subarray(off + 16, off + 16 + caplen) });
    off += 16 + caplen;
  }
  return frames;
}

export interface SeqFrame {
  /** 'A' or 'B': which sender. */
  tag: string;
  seq: number;
  tsNs: bigint;
}

/** The test datagrams among the frames (Ethernet / IPv4 / UDP to IMPAIR_TEST_PORT, payload MFIMP...). */
export function seqFrames(frames: readonly PcapFrame[]): SeqFrame[] {
  const out: SeqFrame[] = [];
  for (const f of frames) {
    const d = f.data;
    if (d.length < 14 + 20 + 8 + 10 || d.readUInt16BE(12) !== 0x0800) continue;
    const ihl = (d[14]! & 0x0f) * 4;
    if (d[14 + 9] !== 17) continue;
    const udp = 14 + ihl;
    if (d.length < udp + 8 + 10 || d.readUInt16BE(udp + 2) !== IMPAIR_TEST_PORT) continue;
    const p = udp + 8;
    if (d.toString('latin1', p, p + 5) !== 'MFIMP') continue;
    out.push({ tag: String.fromCharCode(d[p + 5]!), seq: d.readUInt32BE(p + 6), tsNs: f.tsNs });
  }
  return out;
}

export interface DirectionResult {
  /** Frames seen entering the forwarder. */
  sent: number;
  /** Of those, frames seen leaving it. */
  delivered: number;
  lossRate: number;
  /** Per delivered frame: leave time - enter time, sorted ascending. */
  delaysUs: number[];
  medianUs: number;
  p95Us: number;
  p99Us: number;
  maxUs: number;
  /** Frames seen leaving that never entered, or left twice. */
  unexpected: number;
  /** Delivered frames that left before a frame that entered earlier. */
  reordered: number;
  /** Sequence numbers seen entering and never leaving, ascending. */
  lostSeqs: number[];
}

/** Nearest-rank percentile of an ascending array (q in 0..1). */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Matches one sender's frames (`tag`) seen entering and leaving the forwarder. */
export function matchDirection(entering: readonly SeqFrame[], leaving: readonly SeqFrame[], tag: string): DirectionResult {
  const inBySeq = new Map<number, bigint>();
  for (const f of entering) if (f.tag === tag && !inBySeq.has(f.seq)) inBySeq.set(f.seq, f.tsNs);
  const seen = new Set<number>();
  const delays: number[] = [];
  let unexpected = 0;
  let reordered = 0;
  let lastSeq = -1;
  for (const f of leaving) {
    if (f.tag !== tag) continue;
    const t0 = inBySeq.get(f.seq);
    if (t0 === undefined || seen.has(f.seq)) {
      unexpected++;
      continue;
    }
    seen.add(f.seq);
    if (f.seq < lastSeq) reordered++;
    lastSeq = Math.max(lastSeq, f.seq);
    delays.push(Number(f.tsNs - t0) / 1000);
  }
  delays.sort((x, y) => x - y);
  const sent = inBySeq.size;
  const lostSeqs = [...inBySeq.keys()].filter((seq) => !seen.has(seq)).sort((x, y) => x - y);
  return {
    sent,
    delivered: delays.length,
    lossRate: sent === 0 ? NaN : 1 - delays.length / sent,
    delaysUs: delays,
    medianUs: percentile(delays, 0.5),
    p95Us: percentile(delays, 0.95),
    p99Us: percentile(delays, 0.99),
    maxUs: delays.length ? delays[delays.length - 1]! : NaN,
    unexpected,
    reordered,
    lostSeqs,
  };
}
