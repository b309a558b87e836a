/**
 * Seed inputs: frames and files from the real captures in ../shared/corpus/tcpdump-ethernet/, and
 * frames, conversations and files generated with test/helpers/pcap-writer.ts (every layer the
 * decoders know: VLAN/QinQ, IPv4 options and fragments, IPv6 extension headers, TCP options,
 * VXLAN, Geneve with options, GRE, ERSPAN II/III, Linux SLL, raw IP, ICMP echo, ARP).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCaptureFile } from '../../src/capture/open-file.js';
import {
  arp,
  concat,
  ether,
  ETH_ARP,
  ETH_IPV4,
  ETH_IPV6,
  geneve,
  geneveOption,
  gre,
  icmp,
  ipv4,
  ipv6,
  tcp,
  TCP_FLAGS,
  udp,
  vxlan,
  writePcap,
  writePcapng,
} from '../../test/helpers/pcap-writer.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CORPUS_DIR = resolve(REPO_ROOT, '..', 'shared', 'corpus', 'tcpdump-ethernet');

export interface SeedFrame {
  linkType: number;
  data: Uint8Array;
  len: number;
}

export interface TimedFrame extends SeedFrame {
  tsSec: number;
  tsNsec: number;
}

export interface Corpus {
  frames: SeedFrame[];
  pcapFiles: Uint8Array[];
  pcapngFiles: Uint8Array[];
  /** Runs of consecutive frames of one file (one link type), for the worker target. */
  conversations: TimedFrame[][];
  filesRead: number;
  filesRejected: number;
}

/** Largest seed file kept (cut at a record / block boundary): small files keep executions fast. */
const MAX_SEED_FILE_BYTES = 16 * 1024;

function cutPcap(b: Buffer): Buffer {
  if (b.length <= MAX_SEED_FILE_BYTES || b.length < 24) return b;
  const magic = b.readUInt32BE(0);
  const le = !(magic === 0xa1b2c3d4 || magic === 0xa1b23c4d || magic === 0xa1b2cd34);
  const hdr = magic === 0xa1b2cd34 || magic === 0x34cdb2a1 ? 24 : 16;
  let p = 24;
  for (;;) {
    if (p + hdr > b.length) break;
    const caplen = le ? b.readUInt32LE(p + 8) : b.readUInt32BE(p + 8);
    const next = p + hdr + caplen;
    if (next > MAX_SEED_FILE_BYTES || next > b.length) break;
    p = next;
  }
  return b.subarray(0, Math.max(p, 24));
}

function cutPcapng(b: Buffer): Buffer {
  if (b.length <= MAX_SEED_FILE_BYTES) return b;
  let p = 0;
  let le = true;
  for (;;) {
    if (p + 12 > b.length) break;
    if (b.readUInt32BE(p) === 0x0a0d0d0a) le = b[p + 8] === 0x4d;
    const total = le ? b.readUInt32LE(p + 4) : b.readUInt32BE(p + 4);
    if (total < 12 || p + total > b.length || p + total > MAX_SEED_FILE_BYTES) break;
    p += total;
  }
  return b.subarray(0, p);
}

/** Reads the corpus (every file; at most `perFile` frames from each). */
export async function loadCorpus(perFile = 48): Promise<Corpus> {
  const c: Corpus = { frames: [], pcapFiles: [], pcapngFiles: [], conversations: [], filesRead: 0, filesRejected: 0 };
  let names: string[] = [];
  try {
    names = readdirSync(CORPUS_DIR)
      .filter((n) => n.endsWith('.pcap') || n.endsWith('.pcapng'))
      .sort();
  } catch {
    process.stderr.write(`fuzz: corpus not found (dir=${CORPUS_DIR}); using generated seeds only\n`);
  }
  for (const n of names) {
    const path = join(CORPUS_DIR, n);
    const bytes = readFileSync(path);
    if (bytes.length >= 4 && bytes.readUInt32BE(0) === 0x0a0d0d0a) c.pcapngFiles.push(new Uint8Array(cutPcapng(bytes)));
    else c.pcapFiles.push(new Uint8Array(cutPcap(bytes)));
    let conv: TimedFrame[] = [];
    try {
      const src = await openCaptureFile(path, {});
      try {
        let taken = 0;
        for (;;) {
          const batch = await src.next();
          if (!batch) break;
          for (let i = 0; i < batch.count; i++) {
            const off = batch.offset[i]!;
            const data = new Uint8Array(batch.data.subarray(off, off + batch.caplen[i]!));
            const linkType = src.linkType(batch.ifIndex[i]!);
            if (taken < perFile) c.frames.push({ linkType, data, len: batch.len[i]! });
            if (conv.length < 200 && (conv.length === 0 || conv[0]!.linkType === linkType)) {
              conv.push({ linkType, data, len: batch.len[i]!, tsSec: batch.tsSec[i]!, tsNsec: batch.tsNsec[i]! });
            }
            taken++;
          }
        }
      } finally {
        await src.close();
      }
      c.filesRead++;
    } catch {
      c.filesRejected++;
    }
    if (conv.length > 0) c.conversations.push(conv);
    conv = [];
  }
  return c;
}

const NO = new Uint8Array(0);
const bytes = (n: number, v = 0x61) => new Uint8Array(n).fill(v);
const A = '10.0.0.1';
const B = '10.0.0.2';

function sllHeader(proto: number): Uint8Array {
  return concat(Uint8Array.of(0, 4, 0, 1, 0, 6), Uint8Array.of(2, 0, 0, 0, 0, 1, 0, 0), Uint8Array.of(proto >>> 8, proto & 255));
}

function erspan2(inner: Uint8Array): Uint8Array {
  return gre({ protocol: 0x88be, seq: 7 }, concat(Uint8Array.of(0x10, 0x0a, 0x00, 0x05, 0, 0, 0, 1), inner));
}

function erspan3(inner: Uint8Array, platform: boolean): Uint8Array {
  const h = concat(Uint8Array.of(0x20, 0x0a, 0x00, 0x05), Uint8Array.of(1, 2, 3, 4), Uint8Array.of(0, 0, 0, platform ? 1 : 0));
  return gre({ protocol: 0x22eb, seq: 9 }, concat(h, platform ? new Uint8Array(8) : NO, inner));
}

/** Frames of every shape the decoders know. */
export function generatedFrames(): SeedFrame[] {
  const tcpSyn = tcp({
    sport: 40000,
    dport: 443,
    flags: TCP_FLAGS.SYN,
    options: [{ kind: 'mss', value: 1460 }, { kind: 'sackPermitted' }, { kind: 'timestamps', val: 1, ecr: 0 }, { kind: 'nop' }, { kind: 'wscale', value: 7 }],
  });
  const tcpSack = tcp(
    { sport: 443, dport: 40000, seq: 5000, ack: 1101, flags: TCP_FLAGS.ACK, options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'sack', blocks: [[1201, 1301], [1401, 1501], [1601, 1701]] }] },
    NO,
  );
  const tcpData = tcp({ sport: 40000, dport: 443, seq: 1001, ack: 5001, flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH, options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamps', val: 5, ecr: 9 }] }, bytes(100));
  const innerTcp = ether({}, ETH_IPV4, ipv4({ src: '192.168.0.1', dst: '192.168.0.2', proto: 6 }, tcpData));
  const v4 = (proto: number, payload: Uint8Array, o: Partial<Parameters<typeof ipv4>[0]> = {}) => ipv4({ src: A, dst: B, proto, ...o }, payload);
  const v6 = (next: number, payload: Uint8Array, ext: Parameters<typeof ipv6>[0]['ext'] = []) => ipv6({ src: 'fd00::1', dst: 'fd00::2', next, ext }, payload);
  const vx3 = ether({}, ETH_IPV4, v4(17, udp({ sport: 3, dport: 4789 }, vxlan({ vni: 3 }, innerTcp))));
  const eth: Uint8Array[] = [
    ether({}, ETH_IPV4, v4(6, tcpSyn)),
    ether({}, ETH_IPV4, v4(6, tcpSack)),
    ether({ vlans: [10] }, ETH_IPV4, v4(6, tcpData)),
    ether({ vlans: [{ vid: 100, tpid: 0x88a8 }, 200] }, ETH_IPV4, v4(17, udp({ sport: 5000, dport: 53 }, bytes(30)))),
    ether({ vlans: [1, 2, 3] }, ETH_IPV6, v6(17, udp({ sport: 1, dport: 2 }, bytes(8)))),
    ether({}, ETH_IPV4, v4(6, tcpData, { options: Uint8Array.of(0x94, 4, 0, 0, 1, 1, 1, 0) })),
    ether({}, ETH_IPV4, v4(17, udp({ sport: 7, dport: 9 }, bytes(40)), { moreFragments: true, id: 77 })),
    ether({}, ETH_IPV4, v4(17, bytes(40), { fragOffset: 48, id: 77 })),
    ether({}, ETH_IPV6, v6(6, tcpSyn, [{ type: 0 }, { type: 43, data: new Uint8Array(14) }, { type: 60 }])),
    ether({}, ETH_IPV6, v6(6, tcpData, [{ type: 51 }])),
    ether({}, ETH_IPV6, v6(17, udp({ sport: 3, dport: 4 }, bytes(64)), [{ type: 44, moreFragments: true, id: 5 }])),
    ether({}, ETH_IPV6, v6(17, bytes(64), [{ type: 44, fragOffset: 72, id: 5 }])),
    ether({}, ETH_IPV6, v6(59, NO)),
    ether({}, ETH_IPV4, v4(17, udp({ sport: 49152, dport: 4789 }, vxlan({ vni: 42 }, innerTcp)))),
    ether({}, ETH_IPV4, v4(17, udp({ sport: 49152, dport: 4789 }, vxlan({ vni: 43 }, ether({ vlans: [7] }, ETH_IPV6, v6(58, icmp({ type: 128, id: 1, seq: 2 }))))))),
    ether({}, ETH_IPV4, v4(17, udp({ sport: 1, dport: 4789 }, vxlan({ vni: 1 }, ether({}, ETH_IPV4, v4(17, udp({ sport: 2, dport: 4789 }, vxlan({ vni: 2 }, vx3)))))))),
    ether({}, ETH_IPV6, v6(17, udp({ sport: 5, dport: 6081 }, geneve({ vni: 9, options: concat(geneveOption(0x0102, 3, new Uint8Array(8)), geneveOption(0xffff, 1, NO)) }, innerTcp)))),
    ether({}, ETH_IPV4, v4(17, udp({ sport: 5, dport: 6081 }, geneve({ vni: 10, protocol: ETH_IPV4 }, v4(1, icmp({ type: 8, id: 3, seq: 4 })))))),
    ether({}, ETH_IPV4, v4(47, gre({ protocol: ETH_IPV4, key: 99, seq: 1, checksum: true }, v4(6, tcpSyn)))),
    ether({}, ETH_IPV4, v4(47, gre({ protocol: 0x6558, key: 5 }, innerTcp))),
    ether({}, ETH_IPV4, v4(47, gre({ protocol: ETH_IPV6 }, v6(6, tcpData)))),
    ether({}, ETH_IPV4, v4(47, erspan2(innerTcp))),
    ether({}, ETH_IPV4, v4(47, gre({ protocol: 0x88be }, innerTcp))),
    ether({}, ETH_IPV4, v4(47, erspan3(innerTcp, false))),
    ether({}, ETH_IPV4, v4(47, erspan3(innerTcp, true))),
    ether({}, ETH_IPV4, v4(1, icmp({ type: 8, id: 7, seq: 1 }, bytes(56)))),
    ether({}, ETH_IPV4, v4(1, icmp({ type: 3, code: 3 }, v4(17, udp({ sport: 1, dport: 2 }))))),
    ether({}, ETH_IPV6, v6(58, icmp({ type: 129, id: 7, seq: 1 }, bytes(56)))),
    ether({}, ETH_ARP, arp({ op: 1, senderIp: A, targetIp: B })),
    concat(ether({}, 0x0026, NO), Uint8Array.of(0x42, 0x42, 0x03), bytes(35)),
  ];
  const out: SeedFrame[] = eth.map((data) => ({ linkType: 1, data, len: data.length }));
  const sll = [concat(sllHeader(ETH_IPV4), v4(17, udp({ sport: 1, dport: 2 }, bytes(10)))), concat(sllHeader(0x8100), Uint8Array.of(0, 5, 0x86, 0xdd), v6(6, tcpSyn)), concat(sllHeader(0x0004), bytes(20))];
  for (const data of sll) out.push({ linkType: 113, data, len: data.length });
  for (const [lt, data] of [
    [101, v4(6, tcpData)],
    [101, v6(17, udp({ sport: 9, dport: 4789 }, vxlan({ vni: 1 }, innerTcp)))],
    [228, v4(1, icmp({ type: 0, id: 1, seq: 1 }))],
    [229, v6(58, icmp({ type: 128, id: 2, seq: 2 }))],
  ] as const) {
    out.push({ linkType: lt, data, len: data.length });
  }
  return out;
}

/** TCP, ICMP, UDP, fragment and tunnelled conversations with timestamps (µs apart), for the worker target. */
export function generatedConversations(): TimedFrame[][] {
  const t0 = 1_700_000_000;
  const F = TCP_FLAGS;
  const ts = (val: number, ecr: number) => [{ kind: 'nop' as const }, { kind: 'nop' as const }, { kind: 'timestamps' as const, val, ecr }];
  const c2s = (seq: number, ack: number, flags: number, payload = 0, extra: Parameters<typeof tcp>[0]['options'] = []) =>
    ether({}, ETH_IPV4, ipv4({ src: A, dst: B, proto: 6 }, tcp({ sport: 40000, dport: 80, seq, ack, flags, options: [...ts(seq, ack), ...extra] }, bytes(payload))));
  const s2c = (seq: number, ack: number, flags: number, payload = 0, win = 65535, extra: Parameters<typeof tcp>[0]['options'] = []) =>
    ether({}, ETH_IPV4, ipv4({ src: B, dst: A, proto: 6 }, tcp({ sport: 80, dport: 40000, seq, ack, flags, window: win, options: [...ts(seq, ack), ...extra] }, bytes(payload))));
  const tcpConv = [
    c2s(1000, 0, F.SYN),
    c2s(1000, 0, F.SYN),
    s2c(5000, 1001, F.SYN | F.ACK),
    c2s(1001, 5001, F.ACK),
    c2s(1001, 5001, F.ACK | F.PSH, 100),
    c2s(1201, 5001, F.ACK | F.PSH, 100),
    s2c(5001, 1101, F.ACK, 0, 65535, [{ kind: 'sack', blocks: [[1201, 1301]] }]),
    s2c(5001, 1101, F.ACK, 0, 65535, [{ kind: 'sack', blocks: [[1201, 1301]] }]),
    s2c(5001, 1101, F.ACK, 0, 65535, [{ kind: 'sack', blocks: [[1201, 1301]] }]),
    c2s(1101, 5001, F.ACK, 100),
    c2s(1101, 5001, F.ACK, 100),
    s2c(5001, 1301, F.ACK, 50, 0),
    c2s(1301, 5051, F.ACK, 1),
    c2s(1300, 5051, F.ACK, 0),
    s2c(5051, 1302, F.ACK | F.FIN),
    c2s(1302, 5052, F.ACK | F.FIN),
    s2c(5052, 1303, F.ACK),
    c2s(9000, 0, F.SYN),
    s2c(0, 9001, F.RST | F.ACK),
  ];
  const echo = [1, 2, 3].flatMap((seq) => [
    ether({}, ETH_IPV4, ipv4({ src: A, dst: B, proto: 1 }, icmp({ type: 8, id: 7, seq }, bytes(56)))),
    ether({}, ETH_IPV4, ipv4({ src: B, dst: A, proto: 1 }, icmp({ type: 0, id: 7, seq }, bytes(56)))),
  ]);
  const v6conv = [
    ether({}, ETH_IPV6, ipv6({ src: 'fd00::1', dst: 'fd00::2', next: 6 }, tcp({ sport: 1, dport: 2, seq: 1, flags: F.SYN }))),
    ether({}, ETH_IPV6, ipv6({ src: 'fd00::2', dst: 'fd00::1', next: 6 }, tcp({ sport: 2, dport: 1, seq: 7, ack: 2, flags: F.SYN | F.ACK }))),
    ether({}, ETH_IPV6, ipv6({ src: 'fd00::1', dst: 'fd00::2', next: 6 }, tcp({ sport: 1, dport: 2, seq: 2, ack: 8, flags: F.ACK }))),
    ether({}, ETH_IPV6, ipv6({ src: 'fd00::1', dst: 'fd00::2', next: 58 }, icmp({ type: 128, id: 1, seq: 1 }))),
    ether({}, ETH_IPV6, ipv6({ src: 'fd00::2', dst: 'fd00::1', next: 58 }, icmp({ type: 129, id: 1, seq: 1 }))),
  ];
  const frags = [
    ether({}, ETH_IPV4, ipv4({ src: A, dst: B, proto: 17, id: 77, moreFragments: true }, udp({ sport: 7, dport: 9, length: 1008 }, bytes(40)))),
    ether({}, ETH_IPV4, ipv4({ src: A, dst: B, proto: 17, id: 77, fragOffset: 48 }, bytes(40))),
    ether({}, ETH_IPV4, ipv4({ src: A, dst: B, proto: 17, id: 78, fragOffset: 48 }, bytes(40))),
    ether({}, ETH_IPV4, ipv4({ src: A, dst: B, proto: 17 }, udp({ sport: 7, dport: 9 }, bytes(10)))),
  ];
  const tunnelled = [0, 1, 2].map((k) =>
    ether(
      {},
      ETH_IPV4,
      ipv4({ src: '172.16.0.1', dst: '172.16.0.2', proto: 17 }, udp({ sport: 49152, dport: 4789 }, vxlan({ vni: 42 }, ether({}, ETH_IPV4, ipv4({ src: A, dst: B, proto: 6 }, tcp({ sport: 3, dport: 4, seq: 10 + k, flags: k === 0 ? F.SYN : F.ACK })))))),
    ),
  );
  const timed = (frames: Uint8Array[], stepUs: number): TimedFrame[] =>
    frames.map((data, i) => {
      const ns = i * stepUs * 1000;
      return { linkType: 1, data, len: data.length, tsSec: t0 + Math.floor(ns / 1e9), tsNsec: ns % 1e9 };
    });
  return [timed(tcpConv, 1500), timed(echo, 200_000), timed(v6conv, 700), timed(frags, 50), timed(tunnelled, 10), timed([...tcpConv, ...echo, ...frags], 20_000_000)];
}

/** Small pcap and pcapng files covering the format variants (byte orders, ns, tsresol, tsoffset, SPB/OPB, sections, NRB/ISB). */
export function generatedFiles(): { pcap: Uint8Array[]; pcapng: Uint8Array[] } {
  const frames = generatedFrames().filter((f) => f.linkType === 1);
  const recs = frames.slice(0, 8).map((f, i) => ({ data: f.data, tsSec: 1_700_000_000 + i, tsNsec: i * 1001 }));
  const pcap = [
    writePcap(recs),
    writePcap(recs, { nanos: true, bigEndian: true }),
    writePcap(recs.map((r) => ({ ...r, caplen: Math.min(r.data.length, 40), len: r.data.length })), { snaplen: 40 }),
    writePcap(generatedFrames().filter((f) => f.linkType === 113).map((f) => ({ data: f.data })), { linkType: 113 }),
    writePcap(generatedFrames().filter((f) => f.linkType === 101).map((f) => ({ data: f.data })), { linkType: 101 }),
  ];
  const pkts = recs.slice(0, 5);
  const pcapng = [
    writePcapng([{ interfaces: [{}], packets: pkts }]),
    writePcapng([{ bigEndian: true, interfaces: [{ tsresol: 9 }, { tsresol: 0x80 | 20, linkType: 101 }], packets: [...pkts, { data: generatedFrames().find((f) => f.linkType === 101)!.data, ifId: 1 }] }]),
    writePcapng([
      { interfaces: [{ tsoffset: 100, snaplen: 64 }], packets: pkts.map((p, i) => ({ ...p, block: (['epb', 'spb', 'opb'] as const)[i % 3] })), extraBlocks: true },
      { bigEndian: true, interfaces: [{ tsresol: 3 }, {}], packets: pkts.map((p, i) => ({ ...p, ifId: i % 2 })) },
    ]),
  ];
  return { pcap: pcap.map((b) => new Uint8Array(b)), pcapng: pcapng.map((b) => new Uint8Array(b)) };
}

/** A classic pcap (little-endian, ns) of timed frames: the worker target's input format. */
export function pcapOf(frames: readonly TimedFrame[], linkType: number): Uint8Array {
  return new Uint8Array(writePcap(frames.map((f) => ({ data: f.data, tsSec: f.tsSec, tsNsec: f.tsNsec, len: f.len })), { nanos: true, linkType }));
}
