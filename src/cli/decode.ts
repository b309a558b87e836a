import { stat } from 'node:fs/promises';
import { decodeFrame } from '../capture/decode/decode.js';
import { DECODE_ERROR_NAMES, DecodedFrame } from '../capture/decode/frame.js';
import { frameToJson } from '../capture/decode-json.js';
import { openCaptureFile } from '../capture/open-file.js';
import { UsageError } from '../errors.js';
import type { Command } from './command.js';

export const decodeCommand: Command = {
  name: 'decode',
  summary: 'Decode a pcap/pcapng file: one JSON line per frame, a summary of counts on stderr',
  usage: 'decode --pcap FILE',
  description: [
    'Prints one JSON object per frame: frame (1-based), tsUs (integer µs since the epoch; nanosecond',
    'timestamps are truncated), len, caplen, srcMac, dstMac, vlans, etherType, ipVersion, srcIp, dstIp,',
    'protocol, srcPort, dstPort, tcpFlags, icmpType, icmpCode; for VXLAN/Geneve/GRE frames these',
    'describe the inner frame and tunnel, vni, outerSrcIp, outerDstIp are added; error names the',
    'reason a frame could not be decoded in full. Fields that do not apply are left out.',
    'Exit 1 (after the good frames) when the file is damaged; 2 for usage errors.',
  ].join('\n'),
  options: {
    pcap: { type: 'string', arg: 'FILE', description: 'Capture file (pcap or pcapng, any byte order, µs or ns)' },
  },
  async run(values, _positionals, io) {
    const path = values.pcap;
    if (typeof path !== 'string' || path === '') throw new UsageError('decode: missing --pcap FILE');
    try {
      const st = await stat(path);
      if (!st.isFile()) throw new UsageError(`decode: not a file (file=${path})`);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`decode: cannot read capture file (file=${path}, reason=${(e as NodeJS.ErrnoException).code ?? 'unknown'})`);
    }
    const source = await openCaptureFile(path);
    const frame = new DecodedFrame();
    const reasons = new Map<number, number>();
    let n = 0;
    try {
      for (;;) {
        if (io.signal.aborted) break;
        const batch = await source.next();
        if (!batch) break;
        for (let i = 0; i < batch.count; i++) {
          const ifIndex = batch.ifIndex[i]!;
          decodeFrame(batch.data, batch.offset[i]!, batch.caplen[i]!, batch.len[i]!, source.linkType(ifIndex), frame);
          frame.tsSec = batch.tsSec[i]!;
          frame.tsNsec = batch.tsNsec[i]!;
          frame.ifIndex = ifIndex;
          reasons.set(frame.error, (reasons.get(frame.error) ?? 0) + 1);
          io.out(JSON.stringify(frameToJson(++n, frame)));
        }
      }
    } finally {
      await source.close();
    }
    const ok = reasons.get(0) ?? 0;
    const parts = [`frames=${n}`, `ok=${ok}`];
    for (const [code, count] of [...reasons].sort((a, b) => b[1] - a[1])) if (code !== 0) parts.push(`${DECODE_ERROR_NAMES[code]}=${count}`);
    io.err(`decode: ${parts.join(' ')} (file=${path})`);
    return 0;
  },
};
