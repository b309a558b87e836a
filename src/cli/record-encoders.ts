import type { Writable } from 'node:stream';
import type { RecordOutput, OutputFormat } from '../agent/record-output.js';
import { createRecordWriter, type RecordKind } from '../pipeline/codec.js';

/**
 * A RecordOutput over the pipeline's stream writer (length-delimited protobuf, Avro container
 * file). Writes are queued in order; drained()/close() wait for them.
 */
export function codecOutput<T>(stream: Writable, kind: RecordKind, format: OutputFormat): RecordOutput<T> {
  const writer = createRecordWriter(stream, kind, format, { end: stream !== process.stdout });
  let chain: Promise<void> = Promise.resolve();
  let queued = 0;
  return {
    write(record: T) {
      queued++;
      const w = () => writer.write(record as never).finally(() => void queued--);
      chain = queued > 1 ? chain.then(w) : w();
    },
    drained: () => chain,
    async close() {
      await chain;
      await writer.close();
    },
  };
}
