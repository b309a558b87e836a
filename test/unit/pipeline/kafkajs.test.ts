// The read_committed filter that replaces kafkajs' (src/pipeline/kafka-aborted-filter.ts) and the
// kafkajs entry (src/pipeline/kafkajs.ts) that installs it, checked in fresh processes.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { filterAbortedMessages, type FetchedMessage } from '../../../src/pipeline/kafka-aborted-filter.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** A message of producer `p` at `offset` (transactional unless said otherwise). */
function msg(offset: number, p: string, o: { inTransaction?: boolean; abort?: boolean; commit?: boolean } = {}): FetchedMessage {
  const control = o.abort === true || o.commit === true;
  return {
    offset: String(offset),
    key: control ? Buffer.from([0, 0, 0, o.abort ? 0 : 1]) : Buffer.from(`k${offset}`),
    isControlRecord: control,
    batchContext: { producerId: p, inTransaction: o.inTransaction ?? true },
  };
}

const data = (ms: FetchedMessage[]) => ms.filter((m) => !m.isControlRecord).map((m) => `${m.offset}/${m.batchContext.producerId}`);

describe('pipeline/kafka-aborted-filter', () => {
  it('passes everything through when the fetch lists no aborted transaction', () => {
    const ms = [msg(1, '7'), msg(2, '8')];
    expect(filterAbortedMessages({ messages: ms, abortedTransactions: [] })).to.equal(ms);
    expect(filterAbortedMessages({ messages: ms })).to.equal(ms);
  });

  it('drops an aborted transaction up to its abort marker and keeps the producer’s later transactions', () => {
    const ms = [msg(10, '1'), msg(11, '2'), msg(12, '1'), msg(13, '1', { abort: true }), msg(14, '2', { commit: true }), msg(15, '1'), msg(16, '1', { commit: true })];
    const out = filterAbortedMessages({ messages: ms, abortedTransactions: [{ producerId: '1', firstOffset: '10' }] });
    expect(data(out)).to.deep.equal(['11/2', '15/1']);
    // control records stay for the caller (kafkajs drops them after filtering)
    expect(out.filter((m) => m.isControlRecord).map((m) => m.offset)).to.deep.equal(['13', '14', '16']);
  });

  it('keeps non-transactional messages of a producer whose transaction aborted', () => {
    const ms = [msg(20, '3'), msg(21, '3', { inTransaction: false }), msg(22, '3', { abort: true })];
    expect(data(filterAbortedMessages({ messages: ms, abortedTransactions: [{ producerId: '3', firstOffset: '20' }] }))).to.deep.equal(['21/3']);
  });

  it('drops every message of aborted transactions that were open where the fetch starts (kafkajs let the later ones through)', () => {
    // the fetch starts at 100, inside transactions of producers 1 (from 90) and 2 (from 95), both aborted
    const ms = [msg(100, '2'), msg(101, '1'), msg(102, '2'), msg(103, '1', { abort: true }), msg(104, '2', { abort: true }), msg(105, '2', { inTransaction: false })];
    const aborted = [
      { producerId: '2', firstOffset: '95' }, // (not in order: sorted by first offset)
      { producerId: '1', firstOffset: '90' },
    ];
    expect(data(filterAbortedMessages({ messages: ms, abortedTransactions: aborted }))).to.deep.equal(['105/2']);
  });

  it('handles offsets beyond 2^53 exactly', () => {
    const big = 2n ** 60n;
    const ms: FetchedMessage[] = [
      { ...msg(0, '5'), offset: String(big - 1n) },
      { ...msg(0, '5'), offset: String(big) },
      { ...msg(0, '5', { abort: true }), offset: String(big + 1n) },
    ];
    expect(filterAbortedMessages({ messages: ms, abortedTransactions: [{ producerId: '5', firstOffset: String(big) }] }).map((m) => m.offset)).to.deep.equal([String(big - 1n), String(big + 1n)]);
  });
});

describe('pipeline/kafkajs (the kafkajs entry)', () => {
  const fresh = (code: string): string =>
    execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8' }).trim();

  it('makes kafkajs’ consumer batches use the filter above and its record batches the native CRC-32C', () => {
    const out = fresh(`
      import { createRequire } from 'node:module';
      import kafkajs, { kafkajsFixes } from './src/pipeline/kafkajs.ts';
      import { filterAbortedMessages } from './src/pipeline/kafka-aborted-filter.ts';
      const require = createRequire(import.meta.url);
      const batchPath = require.resolve('kafkajs/src/consumer/batch.js');
      const filterPath = require.resolve('kafkajs/src/consumer/filterAbortedMessages.js');
      console.log(JSON.stringify({
        fixes: kafkajsFixes(),
        batchUsesIt: require.cache[batchPath].children.includes(require.cache[filterPath]) && require.cache[filterPath].exports === filterAbortedMessages,
        kafka: typeof kafkajs.Kafka,
      }));
    `);
    expect(JSON.parse(out)).to.deep.equal({ fixes: { abortedFilter: 'mirrorflow', abortedFilterReason: '', crc32c: 'native' }, batchUsesIt: true, kafka: 'function' });
  });

  it('is not bypassed by any module of src/ that names kafkajs (type imports load nothing), whichever loads first', () => {
    const importers = execFileSync('grep', ['-rlE', "from 'kafkajs'|import\\('kafkajs'\\)|require\\('kafkajs'\\)", 'src'], { cwd: ROOT, encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter((f) => f !== 'src/pipeline/kafkajs.ts');
    expect(importers).to.include('src/pipeline/kafka-topics.ts');
    for (const file of importers) {
      const out = fresh(`
        await import('./${file}');
        const { kafkajsFixes } = await import('./src/pipeline/kafkajs.ts');
        console.log(JSON.stringify(kafkajsFixes()));
      `);
      expect(JSON.parse(out), file).to.include({ abortedFilter: 'mirrorflow', abortedFilterReason: '' });
    }
  });

  it('says so when kafkajs was loaded first', () => {
    const out = fresh(`
      import { createRequire } from 'node:module';
      createRequire(import.meta.url)('kafkajs');
      const { kafkajsFixes } = await import('./src/pipeline/kafkajs.ts');
      console.log(JSON.stringify(kafkajsFixes()));
    `);
    expect(JSON.parse(out)).to.include({ abortedFilter: 'kafkajs', abortedFilterReason: 'kafkajs was loaded before src/pipeline/kafkajs.ts' });
  });
});
