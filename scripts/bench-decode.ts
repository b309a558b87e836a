/**
 * Micro-benchmark of the offline path: pcap reader + decodeFrame, frames per second on one core.
 * Not a test. Run: npx tsx scripts/bench-decode.ts [frames=2000000]
 * Peer (same run): a loop that only walks the batch and touches each frame's first byte, i.e. the
 * cost of reading alone; the ratio says what decoding adds.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeFrame } from '../src/capture/decode/decode.js';
import { DecodedFrame } from '../src/capture/decode/frame.js';
import { PcapFileSource } from '../src/capture/pcap-file.js';
import { ether, ETH_IPV4, ETH_IPV6, icmp, ipv4, ipv6, tcp, TCP_FLAGS, udp, vxlan, writePcap } from '../test/helpers/pcap-writer.js';

const total = Number(process.argv[2] ?? 2_000_000);
const payload = new Uint8Array(0);
const mix = [
  ether({}, ETH_IPV4, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6 }, tcp({ sport: 40000, dport: 443, flags: TCP_FLAGS.ACK, options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamps', val: 1, ecr: 2 }] }, payload))),
  ether({ vlans: [10] }, ETH_IPV4, ipv4({ src: '10.0.0.2', dst: '10.0.0.1', proto: 6 }, tcp({ sport: 443, dport: 40000, flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH }, new Uint8Array(100)))),
  ether({}, ETH_IPV6, ipv6({ src: 'fd00::1', dst: 'fd00::2', next: 17 }, udp({ sport: 5000, dport: 53 }, new Uint8Array(40)))),
  ether({}, ETH_IPV4, ipv4({ src: '10.0.0.1', dst: '10.0.0.3', proto: 1 }, icmp({ type: 8, id: 1, seq: 1 }))),
  ether({}, ETH_IPV4, ipv4({ src: '172.16.0.1', dst: '172.16.0.2', proto: 17 }, udp({ sport: 49152, dport: 4789 }, vxlan({ vni: 42 }, ether({}, ETH_IPV4, ipv4({ src: '192.168.0.1', dst: '192.168.0.2', proto: 6 }, tcp({ sport: 1, dport: 2 }))))))),
];
const dir = mkdtempSync(join(tmpdir(), 'mf-bench-'));
const file = join(dir, 'bench.pcap');
const distinct = 100_000;
writeFileSync(file, writePcap(Array.from({ length: distinct }, (_, i) => ({ data: mix[i % mix.length]!, tsSec: 1_700_000_000, tsNsec: i }))));
const rounds = Math.max(1, Math.round(total / distinct));

async function pass(decode: boolean): Promise<{ frames: number; ns: bigint; ok: number }> {
  const out = new DecodedFrame();
  let frames = 0;
  let ok = 0;
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) {
    const src = await PcapFileSource.open(file);
    for (;;) {
      const b = await src.next();
      if (!b) break;
      const n = b.count;
      if (decode) {
        for (let i = 0; i < n; i++) if (decodeFrame(b.data, b.offset[i]!, b.caplen[i]!, b.len[i]!, 1, out) === 0) ok++;
      } else {
        for (let i = 0; i < n; i++) sink += b.data[b.offset[i]!]!;
      }
      frames += n;
    }
    await src.close();
  }
  const ns = process.hrtime.bigint() - t0;
  if (sink === -1) console.log(sink);
  return { frames, ns, ok };
}

await pass(true); // warm-up
const read = await pass(false);
const both = await pass(true);
// decode only, from one batch held in memory
const src = await PcapFileSource.open(file);
const batch = (await src.next())!;
const out = new DecodedFrame();
let decoded = 0;
const t0 = process.hrtime.bigint();
for (let r = 0; r < Math.ceil(total / batch.count); r++) {
  for (let i = 0; i < batch.count; i++) decodeFrame(batch.data, batch.offset[i]!, batch.caplen[i]!, batch.len[i]!, 1, out);
  decoded += batch.count;
}
const decodeNs = process.hrtime.bigint() - t0;
await src.close();
rmSync(dir, { recursive: true, force: true });

const rate = (frames: number, ns: bigint) => (frames / (Number(ns) / 1e9) / 1e6).toFixed(2);
console.log(`read only (peer):   ${rate(read.frames, read.ns)} M frames/s (${read.frames} frames)`);
console.log(`read + decode:      ${rate(both.frames, both.ns)} M frames/s (${both.ok}/${both.frames} ok); ratio to peer ${(Number(both.ns) / Number(read.ns)).toFixed(2)}x time`);
console.log(`decode only (warm): ${rate(decoded, decodeNs)} M frames/s (${decoded} frames)`);
