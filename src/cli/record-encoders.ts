import type { Writable } from 'node:stream';
import { StreamRecordOutput, type OutputFormat, type RecordOutput } from '../agent/record-output.js';
import { createRecordWriter, encodeRecordDelimited, type RecordKind } from '../pipeline/codec.js';

/**
 * A RecordOutput for binary formats: length-delimited protobuf is encoded synchronously and
 * written in large buffered chunks; Avro goes through the pipeline's container-file writer, its
 * writes queued in order (drained()/close() wait for them).
 */
export function codecOutput<T>(stream: Writable, kind: RecordKind, format: OutputFormat, description: string): RecordOutput<T> {
  if (format === 'protobuf') {
    return new StreamRecordOutput<T>(stream, { frame: (r) => encodeRecordDelimited(kind, r as never) }, description);
  }
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
