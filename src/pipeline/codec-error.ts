/**
 * Errors of the record codecs. Decoding untrusted bytes never throws anything else: a malformed
 * message, an unsupported schema version or a record that fails validation is a CodecError with
 * code 'codec-decode'. Encoding a value that does not fit the schema (a programming error) is
 * 'codec-encode'; a schema file that cannot be loaded is 'codec-schema'.
 */
import { MirrorflowError, kv } from '../errors.js';

export type CodecErrorCode = 'codec-decode' | 'codec-encode' | 'codec-schema';

export class CodecError extends MirrorflowError {
  declare readonly code: CodecErrorCode;

  constructor(code: CodecErrorCode, what: string, details: Record<string, unknown>, cause?: unknown) {
    super(code, `codec: ${what}${kv(details)}`, { details, cause });
  }
}

/** A problem found while walking a value: where (dotted field path) and what. Internal. */
export class FieldProblem extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(path ? `${path}: ${problem}` : problem);
  }
}
