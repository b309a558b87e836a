import { MirrorflowError } from '../errors.js';

/**
 * A capture file that cannot be read on: damaged (bad magic, a record or block whose lengths make no
 * sense, a truncated last record) or unreadable. Always names the file and the byte offset where
 * reading stopped; every frame before that offset was handed out.
 *
 * Message: `capture: damaged pcap file (file=x.pcap, offset=1234, problem=record length 4294967295 exceeds 262144)`.
 */
export class CaptureFileError extends MirrorflowError {
  readonly file: string;
  readonly offset: number;
  readonly problem: string;

  constructor(what: string, file: string, offset: number, problem: string, opts: { code?: string; cause?: unknown } = {}) {
    super(opts.code ?? 'capture-file-damaged', `capture: ${what} (file=${file}, offset=${offset}, problem=${problem})`, {
      details: { file, offset, problem },
      cause: opts.cause,
    });
    this.file = file;
    this.offset = offset;
    this.problem = problem;
  }
}
