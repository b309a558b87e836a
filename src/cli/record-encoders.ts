import type { Writable } from 'node:stream';
import { StreamRecordOutput, type OutputFormat, type RecordOutput } from '../agent/record-output.js';
import { createRecordWriter, encodeRecord, type RecordKind } from '../pipeline/codec.js';

/** Protobuf framing of a stream: each message preceded by its length as a varint. */
function delimited(message: Buffer): Buffer {
  let n = message.length;
  const head: number[] = [];
  while (n > 0x7f) {
    head.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  head.push(n);
  return Buffer.concat([Buffer.from(head), message]);
}

/**
 * A RecordOutput for binary formats: length-delimited protobuf is encoded synchronously and
 * written in large buffered chunks; Avro goes through the pipeline's container-file writer, its
 * writes queued in order (drained()/close() wait for them).
 */
export function codecOutput<T>(stream: Writable, kind: RecordKind, format: OutputFormat, description: string): RecordOutput<T> {
  if (format === 'protobuf') {
    return new StreamRecordOutput<T>(stream, { frame: (r) => delimited(encodeRecord(kind, r as never, 'protobuf')) }, description);
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
