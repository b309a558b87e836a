// The native CRC-32C (src/capture/native/crc32c.cc) against kafkajs' own, and its installation
// into kafkajs (src/pipeline/kafka-crc32c.ts) in fresh processes. Batches checksummed this way are
// accepted by a real broker in every Kafka integration test.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { loadPcapBinding } from '../../../src/capture/native-binding.js';

const require = createRequire(import.meta.url);
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
/** kafkajs' own CRC-32C, loaded from its file directly (not through the module the installer replaces). */
const kafkajsCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C/crc32C.js') as (b: Buffer) => number;

/** Runs `code` (TypeScript, ESM) in a fresh node process; returns its stdout. */
function fresh(code: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  }).trim();
}

describe('pipeline/kafka-crc32c', () => {
  const native = loadPcapBinding().crc32c!;

  it('gives the standard check value and what kafkajs computes, on the CPU instruction and the table path', () => {
    expect(native(Buffer.from('123456789'))).to.equal(0xe3069283);
    expect(native(Buffer.from('123456789'), true)).to.equal(0xe3069283);
    expect(native(Buffer.alloc(0))).to.equal(0);
    for (const n of [1, 3, 7, 8, 9, 15, 16, 17, 255, 4096, 65_537, 1_000_003]) {
      const b = randomBytes(n);
      const want = kafkajsCrc32c(b);
      expect(native(b), `length ${n}`).to.equal(want);
      expect(native(b, true), `length ${n} (table)`).to.equal(want);
      // an unaligned view into a larger buffer
      const view = new Uint8Array(b.buffer, b.byteOffset + 1, Math.max(0, n - 1));
      expect(native(view), `unaligned length ${n - 1}`).to.equal(kafkajsCrc32c(Buffer.from(view)));
    }
  });

  it('refuses what is not bytes with one line', () => {
    expect(() => (native as (x: unknown) => number)('text')).to.throw(TypeError, /crc32c: expected a Uint8Array or Buffer/);
    expect(() => (native as (x: unknown) => number)(new Uint16Array(4))).to.throw(TypeError, /crc32c: expected a Uint8Array or Buffer/);
  });

  it('is what kafkajs record batches use once kafkajs is loaded through src/pipeline/kafkajs.ts', () => {
    const out = fresh(`
      import { createRequire } from 'node:module';
      import { kafkajsFixes } from './src/pipeline/kafkajs.ts';
      const require = createRequire(import.meta.url);
      const crcPath = require.resolve('kafkajs/src/protocol/recordBatch/crc32C/index.js');
      const batchPath = require.resolve('kafkajs/src/protocol/recordBatch/v0/index.js');
      require(batchPath);
      const ours = require.cache[crcPath];
      console.log(JSON.stringify({
        source: kafkajsFixes().crc32c,
        batchUsesIt: require.cache[batchPath].children.includes(ours),
        check: require(crcPath)(Buffer.from('123456789')),
      }));
    `);
    expect(JSON.parse(out)).to.deep.equal({ source: 'native', batchUsesIt: true, check: 0xe3069283 });
  });

  it('leaves kafkajs its own when disabled, or when kafkajs loaded its own first', () => {
    const disabled = fresh(
      `import { installNativeCrc32c, crc32cFallbackReason } from './src/pipeline/kafka-crc32c.ts';
       console.log(installNativeCrc32c(), crc32cFallbackReason());`,
      { MIRRORFLOW_NATIVE_CRC32C: '0' },
    );
    expect(disabled).to.equal('kafkajs MIRRORFLOW_NATIVE_CRC32C=0');
    const late = fresh(`
      import { createRequire } from 'node:module';
      createRequire(import.meta.url)('kafkajs/src/protocol/recordBatch/v0/index.js');
      const { installNativeCrc32c, crc32cFallbackReason } = await import('./src/pipeline/kafka-crc32c.ts');
      console.log(installNativeCrc32c(), crc32cFallbackReason());`);
    expect(late).to.equal('kafkajs kafkajs loaded its own CRC-32C first');
  });
});
