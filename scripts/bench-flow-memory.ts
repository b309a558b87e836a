/**
 * Flow-table memory and speed (not a test).
 *
 *   node --expose-gc --import tsx scripts/bench-flow-memory.ts [flows=1000000]
 *
 * Memory: builds N concurrent flows of several kinds (one fresh table each) and prints
 * (heapUsed + arrayBuffers) delta / N after a full GC, against the goal of 200 bytes per flow at
 * 1,000,000 flows (issue: "memory per active flow at 1,000,000 concurrent flows"). Speed: frames/s of addFrame on a warm table
 * (TCP conversations: in-order data + ACKs with timestamps, 100k flows), against a peer loop that
 * only builds the flow key (the floor for any table) measured in the same run.
 * One DecodedFrame is reused throughout: no per-frame allocation on the caller side either.
 * IPv6 rows: every flow has its own client address (a pseudo-random 64-bit interface id); the
 * usual rows put the clients in 8 /64 subnets (VMs on a few tenant networks), the worst-case row
 * gives every client its own /64 (no prefix sharing: the table keeps the client address whole and
 * interns the server's). A last row, outside the goal, shares nothing at all: every flow between a
 * client and a server that each have a /64 of their own (both addresses whole).
 */
import { DecodedFrame, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_PSH, TCP_SYN } from '../src/capture/decode/frame.js';
import { FlowTable } from '../src/capture/flow-table.js';
import { KeyScratch, buildFlowKey } from '../src/capture/flow-key.js';

const N = Number(process.argv[2] ?? 1_000_000);
const GOAL_BYTES = 200;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with: node --expose-gc --import tsx scripts/bench-flow-memory.ts');
  process.exit(2);
}

function mem(): number {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const f = new DecodedFrame();
function setTcp(i: number, c2s: boolean, flags: number, seq: number, ack: number, payload: number, tsVal = -1, tsEcr = 0): void {
  f.reset();
  f.len = 66 + payload;
  f.ipVersion = 4;
  f.etherType = 0x0800;
  f.protocol = IPPROTO_TCP;
  const cip = (0x0a000000 + (i >>> 8)) >>> 0;
  const cport = 1024 + (i & 255);
  f.srcIp[0] = c2s ? cip : 0x0b000001;
  f.dstIp[0] = c2s ? 0x0b000001 : cip;
  f.srcPort = c2s ? cport : 443;
  f.dstPort = c2s ? 443 : cport;
  f.srcMac = c2s ? 0x020000000001 : 0x020000000002;
  f.dstMac = c2s ? 0x020000000002 : 0x020000000001;
  f.tcpFlags = flags;
  f.seq = seq >>> 0;
  f.ack = ack >>> 0;
  f.window = 1000;
  f.payloadLength = payload;
  if (tsVal >= 0) {
    f.hasTimestamp = true;
    f.tsVal = tsVal;
    f.tsEcr = tsEcr;
  }
}

function setUdp(i: number, c2s: boolean): void {
  f.reset();
  f.len = 100;
  f.ipVersion = 4;
  f.etherType = 0x0800;
  f.protocol = IPPROTO_UDP;
  const cip = (0x0a000000 + (i >>> 8)) >>> 0;
  f.srcIp[0] = c2s ? cip : 0x0b000001;
  f.dstIp[0] = c2s ? 0x0b000001 : cip;
  f.srcPort = c2s ? 1024 + (i & 255) : 53;
  f.dstPort = c2s ? 53 : 1024 + (i & 255);
}

/** A pseudo-random 32-bit word (murmur3 finaliser): interface ids look like RFC 7217 / privacy ids. */
function scramble(x: number, salt: number): number {
  let h = (x ^ salt) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * IPv6 addressing of the IPv6 scenarios. Every flow has its own client address: a full 64-bit
 * pseudo-random interface id (no two flows share one, none is small or sequential).
 *   'subnets': the clients spread over 8 /64 subnets (2001:db8:0:10::/64 … :17::/64), the server in
 *              a ninth (2001:db8:0:ff::53) — VMs on a few tenant networks, the case mirrorflow is for.
 *   'distinct': every client in a /64 of its own (2001:db8:<i>::/64 style): no prefix sharing at
 *              all, the worst case for the flow table's prefix interning (internet-facing servers).
 *   'unshared': as 'distinct', and every flow's server in a /64 of its own too (3001:<i>::53).
 */
type V6Plan = 'subnets' | 'distinct' | 'unshared';
const SERVER6 = [0x20010db8, 0x000000ff, 0, 0x53];
const s6: number[] = [0, 0, 0, 0];
function server6(i: number, plan: V6Plan, out: number[]): void {
  for (let w = 0; w < 4; w++) out[w] = SERVER6[w]!;
  if (plan === 'unshared') {
    out[0] = (0x30010000 | (i >>> 16)) >>> 0;
    out[1] = ((i & 0xffff) << 16) >>> 0;
  }
}
function client6(i: number, plan: V6Plan, out: number[]): void {
  if (plan === 'subnets') {
    out[0] = 0x20010db8;
    out[1] = 0x10 + (scramble(i, 0x51) & 7);
  } else {
    out[0] = (0x20010000 | (i >>> 16)) >>> 0; // 2001:<i high>:<i low>::/64 — a /64 per flow
    out[1] = ((i & 0xffff) << 16) >>> 0;
  }
  out[2] = scramble(i, 0x1d);
  out[3] = scramble(i, 0x2e);
}
const c6: number[] = [0, 0, 0, 0];
function setIp6(i: number, c2s: boolean, plan: V6Plan): void {
  f.ipVersion = 6;
  f.etherType = 0x86dd;
  client6(i, plan === 'unshared' ? 'distinct' : plan, c6);
  server6(i, plan, s6);
  for (let w = 0; w < 4; w++) {
    f.srcIp[w] = c2s ? c6[w]! : s6[w]!;
    f.dstIp[w] = c2s ? s6[w]! : c6[w]!;
  }
}

function setUdp6(i: number, c2s: boolean, plan: V6Plan): void {
  f.reset();
  f.len = 120;
  f.protocol = IPPROTO_UDP;
  setIp6(i, c2s, plan);
  f.srcPort = c2s ? 1024 + (i & 255) : 53;
  f.dstPort = c2s ? 53 : 1024 + (i & 255);
}

function setTcp6(i: number, c2s: boolean, flags: number, seq: number, ack: number, payload: number, tsVal: number, tsEcr: number): void {
  setTcp(i, c2s, flags, seq, ack, payload, tsVal, tsEcr);
  f.len = 86 + payload;
  setIp6(i, c2s, 'subnets');
}

function setEcho(i: number, request: boolean): void {
  f.reset();
  f.len = 98;
  f.ipVersion = 4;
  f.etherType = 0x0800;
  f.protocol = IPPROTO_ICMP;
  const cip = (0x0a000000 + (i >>> 8)) >>> 0;
  f.srcIp[0] = request ? cip : 0x0b000001;
  f.dstIp[0] = request ? 0x0b000001 : cip;
  f.icmpType = request ? 8 : 0;
  f.icmpCode = 0;
  f.icmpId = i & 0xffff;
  f.icmpSeq = 1;
}

/** `beyondGoal`: a case the goal does not cover (printed without the comparison). */
type Scenario = { name: string; beyondGoal?: boolean; build: (t: FlowTable, n: number) => void };
const scenarios: Scenario[] = [
  {
    name: 'UDP request + reply',
    build: (t, n) => {
      for (let i = 0; i < n; i++) {
        setUdp(i, true);
        t.addFrame(f, i * 1000);
        setUdp(i, false);
        t.addFrame(f, i * 1000 + 100);
      }
    },
  },
  {
    name: 'TCP handshake + 1 data segment each way (no timestamps)',
    build: (t, n) => {
      for (let i = 0; i < n; i++) {
        const ts = i * 1000;
        setTcp(i, true, TCP_SYN, 100, 0, 0);
        t.addFrame(f, ts);
        setTcp(i, false, TCP_SYN | TCP_ACK, 900, 101, 0);
        t.addFrame(f, ts + 100);
        setTcp(i, true, TCP_ACK, 101, 901, 0);
        t.addFrame(f, ts + 150);
        setTcp(i, true, TCP_ACK | TCP_PSH, 101, 901, 200);
        t.addFrame(f, ts + 200);
        setTcp(i, false, TCP_ACK | TCP_PSH, 901, 301, 500);
        t.addFrame(f, ts + 300);
      }
    },
  },
  {
    name: 'TCP as above with timestamps (TS-RTT samples both ways)',
    build: (t, n) => {
      for (let i = 0; i < n; i++) {
        const ts = i * 1000;
        setTcp(i, true, TCP_SYN, 100, 0, 0, 5, 0);
        t.addFrame(f, ts);
        setTcp(i, false, TCP_SYN | TCP_ACK, 900, 101, 0, 70, 5);
        t.addFrame(f, ts + 100);
        setTcp(i, true, TCP_ACK, 101, 901, 0, 6, 70);
        t.addFrame(f, ts + 150);
        setTcp(i, true, TCP_ACK | TCP_PSH, 101, 901, 200, 6, 70);
        t.addFrame(f, ts + 200);
        setTcp(i, false, TCP_ACK | TCP_PSH, 901, 301, 500, 71, 6);
        t.addFrame(f, ts + 300);
        setTcp(i, true, TCP_ACK, 301, 1401, 0, 7, 71);
        t.addFrame(f, ts + 350);
      }
    },
  },
  {
    name: 'UDP over IPv6 request + reply (8 client /64s)',
    build: (t, n) => {
      for (let i = 0; i < n; i++) {
        setUdp6(i, true, 'subnets');
        t.addFrame(f, i * 1000);
        setUdp6(i, false, 'subnets');
        t.addFrame(f, i * 1000 + 100);
      }
    },
  },
  {
    name: 'TCP over IPv6 with timestamps (8 client /64s)',
    build: (t, n) => {
      for (let i = 0; i < n; i++) {
        const ts = i * 1000;
        setTcp6(i, true, TCP_SYN, 100, 0, 0, 5, 0);
        t.addFrame(f, ts);
        setTcp6(i, false, TCP_SYN | TCP_ACK, 900, 101, 0, 70, 5);
        t.addFrame(f, ts + 100);
        setTcp6(i, true, TCP_ACK, 101, 901, 0, 6, 70);
        t.addFrame(f, ts + 150);
        setTcp6(i, true, TCP_ACK | TCP_PSH, 101, 901, 200, 6, 70);
        t.addFrame(f, ts + 200);
        setTcp6(i, false, TCP_ACK | TCP_PSH, 901, 301, 500, 71, 6);
        t.addFrame(f, ts + 300);
      }
    },
  },
  {
    name: 'UDP over IPv6, a /64 per client (worst case)',
    build: (t, n) => {
      for (let i = 0; i < n; i++) {
        setUdp6(i, true, 'distinct');
        t.addFrame(f, i * 1000);
        setUdp6(i, false, 'distinct');
        t.addFrame(f, i * 1000 + 100);
      }
    },
  },
  {
    name: 'UDP over IPv6, a /64 per client and server (nothing shared)',
    beyondGoal: true,
    build: (t, n) => {
      for (let i = 0; i < n; i++) {
        setUdp6(i, true, 'unshared');
        t.addFrame(f, i * 1000);
        setUdp6(i, false, 'unshared');
        t.addFrame(f, i * 1000 + 100);
      }
    },
  },
  {
    name: 'ICMP echo request + reply (one RTT sample)',
    build: (t, n) => {
      for (let i = 0; i < n; i++) {
        setEcho(i, true);
        t.addFrame(f, i * 1000);
        setEcho(i, false);
        t.addFrame(f, i * 1000 + 100);
      }
    },
  },
  {
    name: 'TCP SYN only (scan / flood)',
    build: (t, n) => {
      for (let i = 0; i < n; i++) {
        setTcp(i, true, TCP_SYN, 100, 0, 0, 5, 0);
        t.addFrame(f, i * 1000);
      }
    },
  },
];

console.log(`flow-table memory at ${N} concurrent flows (maxFlows ${N}; heapUsed + arrayBuffers delta after GC)`);
for (const sc of scenarios) {
  const before = mem();
  let records = 0;
  let t: FlowTable | null = new FlowTable({ onRecord: () => records++, maxFlows: N, idleTimeoutMs: 3_600_000, tcpEstablishedIdleTimeoutMs: 3_600_000, activeTimeoutMs: 3_600_000 });
  const t0 = performance.now();
  sc.build(t, N);
  const ms = performance.now() - t0;
  const after = mem();
  const size = t.size;
  const perFlow = (after - before) / size;
  console.log(
    `  ${sc.name.padEnd(62)} ${perFlow.toFixed(1).padStart(7)} bytes/flow ${(sc.beyondGoal ? '(no goal)' : `${perFlow <= GOAL_BYTES ? '≤' : '>'} ${GOAL_BYTES}`).padEnd(9)}  (flows ${size}, capacity ${t.capacity}, evictions ${t.stats.evictions}, records ${records}, build ${(t.stats.framesAccounted / (ms / 1000) / 1e6).toFixed(2)} M frames/s)`,
  );
  t = null;
}

// ---- speed on a warm table
const FLOWS = 100_000;
const FRAMES = 10_000_000;
const table = new FlowTable({ onRecord: () => {}, maxFlows: 1_000_000 });
const seqC = new Uint32Array(FLOWS);
const seqS = new Uint32Array(FLOWS);
for (let i = 0; i < FLOWS; i++) {
  setTcp(i, true, TCP_SYN, 100, 0, 0, 1, 0);
  table.addFrame(f, i);
  setTcp(i, false, TCP_SYN | TCP_ACK, 900, 101, 0, 1, 1);
  table.addFrame(f, i + 50);
  setTcp(i, true, TCP_ACK, 101, 901, 0, 1, 1);
  table.addFrame(f, i + 100);
  seqC[i] = 101;
  seqS[i] = 901;
}
function speedRun(add: boolean, burst: number): number {
  const k = new KeyScratch();
  const t0 = performance.now();
  let now = 1_000_000;
  for (let n = 0; n < FRAMES; n++) {
    const i = (Math.floor(n / burst) * 7919) % FLOWS; // flows in random order, `burst` frames each
    now += 100;
    const tick = (now / 1e6) | 0;
    if (n & 1) {
      setTcp(i, false, TCP_ACK, seqS[i]!, seqC[i]!, 0, tick, tick);
    } else {
      setTcp(i, true, TCP_ACK | TCP_PSH, seqC[i]!, seqS[i]!, 1400, tick, tick);
      if (add) seqC[i] = (seqC[i]! + 1400) >>> 0;
    }
    if (add) table.addFrame(f, now);
    else buildFlowKey(f, k, false);
  }
  return FRAMES / ((performance.now() - t0) / 1000);
}
const floor = speedRun(false, 1);
console.log(`flow-table speed (${FLOWS} TCP flows, data + ACKs with timestamps, ${FRAMES / 1e6} M frames each):`);
console.log(`  peer (key only):                     ${(floor / 1e6).toFixed(2)} M frames/s`);
for (const burst of [1, 8]) {
  const rate = speedRun(true, burst);
  console.log(`  addFrame, ${String(burst).padStart(2)} frame(s) per flow visit:  ${(rate / 1e6).toFixed(2)} M frames/s  (ratio to peer ${(rate / floor).toFixed(2)})`);
}
