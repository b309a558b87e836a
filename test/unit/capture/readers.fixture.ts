import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FrameSource } from '../../../src/capture/source.js';
import { ether, ETH_IPV4, ipv4, udp } from '../../helpers/pcap-writer.js';

/** A temp dir for capture files, removed by cleanup(). */
export function tempDir(): { path: (name: string) => string; write: (name: string, b: Buffer) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'mf-capture-'));
  return {
    path: (name) => join(dir, name),
    write: (name, b) => {
      const p = join(dir, name);
      writeFileSync(p, b);
      return p;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A UDP frame whose payload is `n` bytes of value n & 255, so tests can tell frames apart. */
export function numberedFrame(n: number, payloadBytes = 10 + (n % 50)): Uint8Array {
  return ether({}, ETH_IPV4, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, id: n }, udp({ sport: 1000 + n, dport: 2000 }, new Uint8Array(payloadBytes).fill(n & 255))));
}

export interface ReadFrame {
  bytes: Buffer;
  len: number;
  tsSec: number;
  tsNsec: number;
  ifIndex: number;
  linkType: number;
}

/** Reads every batch, copying frames out (batches are only valid until next()). */
export async function readAll(src: FrameSource): Promise<{ frames: ReadFrame[]; error?: Error; batches: number }> {
  const frames: ReadFrame[] = [];
  let batches = 0;
  try {
    for (;;) {
      const b = await src.next();
      if (!b) break;
      batches++;
      for (let i = 0; i < b.count; i++) {
        frames.push({
          bytes: Buffer.from(b.data.subarray(b.offset[i]!, b.offset[i]! + b.caplen[i]!)),
          len: b.len[i]!,
          tsSec: b.tsSec[i]!,
          tsNsec: b.tsNsec[i]!,
          ifIndex: b.ifIndex[i]!,
          linkType: src.linkType(b.ifIndex[i]!),
        });
      }
    }
    return { frames, batches };
  } catch (e) {
    return { frames, error: e as Error, batches };
  } finally {
    await src.close();
  }
}
