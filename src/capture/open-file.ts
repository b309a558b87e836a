/**
 * Opens a capture file as a FrameSource, choosing the reader by the file's first four bytes:
 * a1b2c3d4 / a1b23c4d / a1b2cd34 (either byte order) → pcap, 0a0d0d0a → pcapng.
 */
import { CaptureFileError } from './file-error.js';
import { openForReading, type FileSourceOptions } from './chunked-reader.js';
import { PcapFileSource, PCAP_MAGIC_MODIFIED, PCAP_MAGIC_NS, PCAP_MAGIC_US } from './pcap-file.js';
import { PcapngFileSource, PCAPNG_SHB } from './pcapng-file.js';

export type CaptureFileFormat = 'pcap' | 'pcapng';

const swap32 = (x: number) => (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;

/** Says which format `magic` (the first four bytes, big-endian) announces, or undefined. */
export function sniffCaptureFormat(magic: number): CaptureFileFormat | undefined {
  if (magic === PCAPNG_SHB) return 'pcapng';
  for (const m of [PCAP_MAGIC_US, PCAP_MAGIC_NS, PCAP_MAGIC_MODIFIED]) if (magic === m || magic === swap32(m)) return 'pcap';
  return undefined;
}

/** Opens a pcap or pcapng file; rejects with a CaptureFileError when it is missing, unreadable or neither format. */
export async function openCaptureFile(path: string, opts: FileSourceOptions = {}): Promise<PcapFileSource | PcapngFileSource> {
  const name = opts.name ?? path;
  const fh = await openForReading(path, name);
  let magic: number;
  let got: number;
  const head = Buffer.alloc(4);
  try {
    got = (await fh.read(head, 0, 4, 0)).bytesRead;
    magic = head.readUInt32BE(0);
  } finally {
    await fh.close();
  }
  if (got < 4) throw new CaptureFileError('not a capture file', name, 0, `file shorter than 4 bytes (${got})`, { code: 'capture-file-format' });
  const format = sniffCaptureFormat(magic);
  if (format === 'pcap') return PcapFileSource.open(path, opts);
  if (format === 'pcapng') return PcapngFileSource.open(path, opts);
  throw new CaptureFileError('not a pcap or pcapng file', name, 0, `magic 0x${magic.toString(16).padStart(8, '0')}`, { code: 'capture-file-format' });
}

