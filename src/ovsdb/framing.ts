/**
 * Incremental framing of the OVSDB byte stream: ovsdb-server writes JSON values back to back with
 * no delimiter (RFC 7047 §4). Feed Buffer chunks, get complete parsed values.
 *
 * The scanner works on bytes, never on decoded strings: every byte of a multi-byte UTF-8 sequence is
 * >= 0x80, so it can never be mistaken for `"`, `\`, or a bracket, and a character split between two
 * chunks is decoded only once the whole message is there. Scan state (depth, in-string, escape)
 * is kept between chunks, so each byte is looked at once.
 *
 * Grammar tracked:  stream  = ws* (value ws*)*      value = object | array   (top level)
 *                   inside a value, only "..." strings (with \x escapes) and [ ] { } nesting matter.
 */
import { OvsdbFramingError } from './errors.js';
import { kv } from '../errors.js';

export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isWhitespace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

export class JsonFramer {
  readonly maxMessageBytes: number;
  /** Pieces of the message being assembled (chunks already scanned, from the message start). */
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private depth = 0;
  private inString = false;
  private escape = false;
  private failed: OvsdbFramingError | undefined;

  constructor(opts: { maxMessageBytes?: number } = {}) {
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  /** Bytes of an incomplete message held so far. */
  get pendingBytes(): number {
    return this.partsBytes;
  }

  /**
   * Scans `chunk` and returns the values it completed (possibly none). Throws OvsdbFramingError on
   * garbage or an oversize message; after that the framer stays failed (drop the connection).
   */
  push(chunk: Buffer): unknown[] {
    if (this.failed) throw this.failed;
    const out: unknown[] = [];
    let start = this.depth > 0 ? 0 : -1; // where the current message starts in this chunk
    const n = chunk.length;
    for (let i = 0; i < n; i++) {
      const b = chunk[i]!;
      if (this.depth === 0) {
        if (isWhitespace(b)) continue;
        if (b !== OPEN_BRACE && b !== OPEN_BRACKET) {
          const preview = chunk.subarray(i, Math.min(n, i + 16)).toString('latin1');
          throw this.fail('syntax', `ovsdb: unexpected byte between messages${kv({ byte: `0x${b.toString(16).padStart(2, '0')}`, near: preview })}`);
        }
        this.depth = 1;
        start = i;
        continue;
      }
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (b === BACKSLASH) this.escape = true;
        else if (b === QUOTE) this.inString = false;
        continue;
      }
      if (b === QUOTE) this.inString = true;
      else if (b === OPEN_BRACE || b === OPEN_BRACKET) this.depth++;
      else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        this.depth--;
        if (this.depth === 0) {
          const tail = chunk.subarray(start, i + 1);
          if (this.partsBytes + tail.length > this.maxMessageBytes) throw this.oversize(this.partsBytes + tail.length);
          const bytes = this.parts.length ? Buffer.concat([...this.parts, tail], this.partsBytes + tail.length) : tail;
          this.parts = [];
          this.partsBytes = 0;
          start = -1;
          out.push(this.parse(bytes));
        }
      }
    }
    if (this.depth > 0 && start >= 0) {
      const rest = chunk.subarray(start);
      this.partsBytes += rest.length;
      if (this.partsBytes > this.maxMessageBytes) throw this.oversize(this.partsBytes);
      // Copy: the caller may reuse its buffer, and a small slice must not pin a large one.
      this.parts.push(Buffer.from(rest));
    }
    return out;
  }

  /** Forgets any partial message and a previous failure (for a new connection). */
  reset(): void {
    this.parts = [];
    this.partsBytes = 0;
    this.depth = 0;
    this.inString = false;
    this.escape = false;
    this.failed = undefined;
  }

  private parse(bytes: Buffer): unknown {
    const text = bytes.toString('utf8');
    try {
      return JSON.parse(text);
    } catch (err) {
      throw this.fail('syntax', `ovsdb: invalid JSON message${kv({ bytes: bytes.length, cause: (err as Error).message })}`);
    }
  }

  private oversize(bytes: number): OvsdbFramingError {
    return this.fail('oversize', `ovsdb: message too large${kv({ bytes: `>${bytes}`, maxMessageBytes: this.maxMessageBytes })}`);
  }

  private fail(reason: 'oversize' | 'syntax', message: string): OvsdbFramingError {
    this.parts = [];
    this.partsBytes = 0;
    this.failed = new OvsdbFramingError(reason, message, { maxMessageBytes: this.maxMessageBytes });
    return this.failed;
  }
}
