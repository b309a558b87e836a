/**
 * kafkajs as mirrorflow uses it: import kafkajs' values from here, never from 'kafkajs' directly
 * (types may come from 'kafkajs'). Before kafkajs is first loaded, two of its internal modules are
 * replaced in Node's module cache (kafkajs is pinned in package-lock.json; each replacement checks
 * that kafkajs has the module at that path, and test/unit/pipeline/kafkajs.test.ts checks that
 * kafkajs uses them):
 *   - consumer/filterAbortedMessages.js → kafka-aborted-filter.ts: read_committed readers no longer
 *     see messages of aborted transactions when a fetch starts inside two or more of them;
 *   - recordBatch/crc32C → kafka-crc32c.ts: record batches checksummed by the capture addon's native
 *     CRC-32C (when the addon is built; else kafkajs' own).
 * When kafkajs was loaded before this module (a program importing 'kafkajs' first), the consumer
 * fix cannot be applied: kafkajsFixes() says so.
 */
import Module, { createRequire } from 'node:module';
import type * as KafkaJs from 'kafkajs';
import { filterAbortedMessages } from './kafka-aborted-filter.js';
import { installNativeCrc32c, type Crc32cSource } from './kafka-crc32c.js';

const require = createRequire(import.meta.url);

const FILTER_MODULE = 'kafkajs/src/consumer/filterAbortedMessages.js';

let abortedFilter: 'mirrorflow' | 'kafkajs' = 'kafkajs';
let abortedFilterReason = '';

function installAbortedFilter(): void {
  let path: string;
  try {
    path = require.resolve(FILTER_MODULE);
  } catch {
    abortedFilterReason = `kafkajs has no ${FILTER_MODULE}`;
    return;
  }
  const existing = require.cache[path];
  if (existing) {
    if (existing.exports === filterAbortedMessages) abortedFilter = 'mirrorflow';
    else abortedFilterReason = 'kafkajs was loaded before src/pipeline/kafkajs.ts';
    return;
  }
  const m = new Module(path);
  m.filename = path;
  m.loaded = true;
  m.exports = filterAbortedMessages;
  require.cache[path] = m;
  abortedFilter = 'mirrorflow';
}

installAbortedFilter();
installNativeCrc32c();

const kafkajs = require('kafkajs') as typeof KafkaJs;

/** Which of the replacements kafkajs uses, and why not where it does not. */
export function kafkajsFixes(): { abortedFilter: 'mirrorflow' | 'kafkajs'; abortedFilterReason: string; crc32c: Crc32cSource } {
  return { abortedFilter, abortedFilterReason, crc32c: installNativeCrc32c() };
}

export default kafkajs;
export const Kafka = kafkajs.Kafka;
export type Kafka = KafkaJs.Kafka;
export const logLevel = kafkajs.logLevel;
export const Partitioners = kafkajs.Partitioners;
export const CompressionTypes = kafkajs.CompressionTypes;
export const ConfigResourceTypes = kafkajs.ConfigResourceTypes;
