import type { Writable } from 'node:stream';
import { StreamRecordOutput, type OutputFormat, type RecordOutput } from '../agent/record-output.js';
import { ProtoSink, writeFlowRecordDelimited, writePairWindowDelimited } from '../capture/record-protobuf.js';
import type { RecordKind, RecordWriter } from '../pipeline/codec.js';

/**
 * A RecordOutput for binary formats. Length-delimited protobuf of flow records and pair windows is
 * written straight into the output's buffer (record-protobuf.ts: the codec's bytes, tested) and
 * handed to the stream in large chunks. Avro (and protobuf of other kinds) goes through the
 * pipeline's writer, loaded on first use (the codecs pull in protobufjs and avsc), its writes
 * queued in order (drained()/close() wait for them).
 */
export function codecOutput<T>(stream: Writable, kind: RecordKind, format: OutputFormat, description: string): RecordOutput<T> {
  if (format === 'protobuf' && (kind === 'flow-record' || kind === 'pair-window')) {
    const into = (kind === 'flow-record' ? writeFlowRecordDelimited : writePairWindowDelimited) as (out: ProtoSink, r: T) => void;
    return new StreamRecordOutput<T>(
      stream,
      {
        frame(r) {
          const s = new ProtoSink(512);
          into(s, r);
          return s.take();
        },
        frameInto: (r, out) => into(out, r),
      },
      description,
    );
  }
  const writer: Promise<RecordWriter<T>> = import('../pipeline/codec.js').then(
    (c) => c.createRecordWriter(stream, kind, format, { end: stream !== process.stdout }) as unknown as RecordWriter<T>,
  );
  let chain: Promise<void> = writer.then(() => undefined);
  // a failure surfaces from drained()/close(); never as an unhandled rejection meanwhile
  const quiet = () => void chain.catch(() => undefined);
  quiet();
  return {
    write(record: T) {
      chain = chain.then(() => writer).then((w) => w.write(record));
      quiet();
    },
    drained: () => chain,
    async close() {
      await chain;
      await (await writer).close();
    },
  };
}
