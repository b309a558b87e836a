import type { OutputEncoder, OutputFormat } from '../agent/record-output.js';
import { UsageError } from '../errors.js';

/** Binary encoders come with the pipeline codecs (protobuf, Avro). */
export function recordEncoder<T>(_kind: 'flow' | 'pair', format: OutputFormat): OutputEncoder<T> {
  throw new UsageError(`output format not available yet (format=${format})`);
}
