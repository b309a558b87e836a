/**
 * A native CRC-32C for kafkajs. Every record batch kafkajs produces carries a CRC-32C of its bytes,
 * which kafkajs computes byte by byte in JavaScript (about 380 MB/s here: a tenth of the
 * producer's CPU time at 250,000 flow records/s). The capture addon has the same checksum on the
 * CPU's crc32 instruction (src/capture/native/crc32c.cc, about 9 GB/s).
 *
 * kafkajs has no option for it, so installNativeCrc32c() puts the native function into Node's
 * module cache under the path of kafkajs' own CRC module (kafkajs/src/protocol/recordBatch/crc32C,
 * whose export is `(buffer) => unsigned crc`) before kafkajs first loads it — kafkajs requires its
 * record-batch encoder lazily, at the first produce request. The result is checked against the
 * known CRC-32C of "123456789" first; without the addon (not built), after kafkajs already loaded
 * its own, or with MIRRORFLOW_NATIVE_CRC32C=0, kafkajs keeps its own code. kafkajs is pinned in
 * package-lock.json; a test checks that kafkajs still loads the module from that path and that
 * the broker accepts batches checksummed this way.
 */
import { createRequire } from 'node:module';
import Module from 'node:module';
import { loadPcapBinding } from '../capture/native-binding.js';

const require = createRequire(import.meta.url);

/** kafkajs' CRC-32C module and its only user (record batch v0), as kafkajs requires them. */
const CRC_MODULE = 'kafkajs/src/protocol/recordBatch/crc32C/index.js';
const BATCH_MODULE = 'kafkajs/src/protocol/recordBatch/v0/index.js';

/** CRC-32C of the ASCII bytes "123456789" (the standard check value). */
const CHECK_VALUE = 0xe3069283;

export type Crc32cSource = 'native' | 'kafkajs';

let installed: Crc32cSource | undefined;
let reason = '';

/**
 * Makes kafkajs use the native CRC-32C when it can (idempotent); returns which one kafkajs uses.
 * Call before kafkajs' first produce request (src/pipeline/kafkajs.ts does, as it loads kafkajs).
 */
export function installNativeCrc32c(): Crc32cSource {
  if (installed) return installed;
  installed = tryInstall();
  return installed;
}

/** Why kafkajs keeps its own CRC-32C ('' when the native one is installed or not yet tried). */
export function crc32cFallbackReason(): string {
  return reason;
}

function tryInstall(): Crc32cSource {
  if (process.env.MIRRORFLOW_NATIVE_CRC32C === '0') {
    reason = 'MIRRORFLOW_NATIVE_CRC32C=0';
    return 'kafkajs';
  }
  let crcPath: string;
  let batchPath: string;
  try {
    crcPath = require.resolve(CRC_MODULE);
    batchPath = require.resolve(BATCH_MODULE);
  } catch {
    reason = `kafkajs has no ${CRC_MODULE}`;
    return 'kafkajs';
  }
  if (require.cache[batchPath] || require.cache[crcPath]) {
    reason = 'kafkajs loaded its own CRC-32C first';
    return 'kafkajs';
  }
  let crc32c: (bytes: Uint8Array) => number;
  try {
    const native = loadPcapBinding().crc32c?.bind(undefined);
    if (typeof native !== 'function') throw new Error('addon without crc32c (rebuild it: npm run build:native)');
    crc32c = (bytes) => native(bytes);
    if (crc32c(Buffer.from('123456789', 'latin1')) !== CHECK_VALUE) throw new Error('wrong check value');
  } catch (err) {
    reason = err instanceof Error ? err.message : String(err);
    return 'kafkajs';
  }
  const m = new Module(crcPath);
  m.filename = crcPath;
  m.loaded = true;
  m.exports = crc32c;
  require.cache[crcPath] = m;
  return 'native';
}
