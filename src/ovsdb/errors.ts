/**
 * Errors of the OVSDB client. All extend MirrorflowError; `code` says which kind, `retriable` whether
 * trying again later can help (a dropped connection: yes; a constraint violation: no).
 */
import { MirrorflowError, kv } from '../errors.js';
import type { Operation } from './ops.js';

export class OvsdbError extends MirrorflowError {}

/** The byte stream did not hold valid back-to-back JSON values, or one value was too large. */
export class OvsdbFramingError extends OvsdbError {
  readonly reason: 'oversize' | 'syntax';
  constructor(reason: 'oversize' | 'syntax', message: string, details?: Record<string, unknown>) {
    super('ovsdb-framing', message, { details });
    this.reason = reason;
  }
}

/** The first connection attempt failed (no server, refused, TLS rejected, not the leader...). */
export class OvsdbUnreachableError extends OvsdbError {
  constructor(url: string, cause: unknown) {
    super('ovsdb-unreachable', `ovsdb: cannot connect${kv({ db: url, cause: causeText(cause) })}`, { retriable: true, cause, details: { url } });
  }
}

/** The connection dropped (or was not up) while a call was pending. Retriable. */
export class OvsdbDisconnectedError extends OvsdbError {
  constructor(what: string, fields: Record<string, unknown> = {}, cause?: unknown) {
    super('ovsdb-disconnected', `ovsdb: ${what}${kv(fields)}`, { retriable: true, cause, details: fields });
  }
}

/** No reply within requestTimeoutMs. Retriable, but a timed-out transact may still have committed. */
export class OvsdbTimeoutError extends OvsdbError {
  constructor(method: string, timeoutMs: number) {
    super('ovsdb-timeout', `ovsdb: no reply in time${kv({ method, timeoutMs })}`, { retriable: true, details: { method, timeoutMs } });
  }
}

/** The server answered a JSON-RPC request with an error (unknown method, unknown database, canceled...). */
export class OvsdbRpcError extends OvsdbError {
  readonly method: string;
  readonly serverError: unknown;
  constructor(method: string, serverError: unknown) {
    const text = rpcErrorText(serverError);
    super('ovsdb-rpc', `ovsdb: request failed${kv({ method, error: text })}`, { details: { method, error: serverError } });
    this.method = method;
    this.serverError = serverError;
  }
  /** The server's error string (`unknown method`, `canceled`, ...). */
  get errorText(): string {
    return rpcErrorText(this.serverError);
  }
}

/** The request was canceled by the client (cancel()). */
export class OvsdbCanceledError extends OvsdbError {
  constructor(method: string, requestId: number) {
    super('ovsdb-canceled', `ovsdb: request canceled${kv({ method, requestId })}`, { details: { method, requestId } });
  }
}

/** A JS value does not fit a column's type (wrong base type, cardinality, range, enum, length). */
export class OvsdbDatumError extends OvsdbError {
  constructor(what: string, fields: Record<string, unknown>) {
    super('ovsdb-datum', `ovsdb: ${what}${kv(fields)}`, { details: fields });
  }
}

/** A schema that does not follow RFC 7047 §3.2, or a table / column that is not in it. */
export class OvsdbSchemaError extends OvsdbError {
  constructor(what: string, fields: Record<string, unknown>) {
    super('ovsdb-schema', `ovsdb: ${what}${kv(fields)}`, { details: fields });
  }
}

export type TransactionFailureKind =
  | 'constraint-violation'
  | 'referential-integrity-violation'
  | 'timed-out'
  | 'aborted'
  | 'not-owner'
  | 'resources-exhausted'
  | 'other';

export interface TransactionFailure {
  /** Index in the ops array; equals ops.length for the trailing commit error. */
  index: number;
  /** The operation that failed; undefined for the trailing commit error. */
  op: Operation | undefined;
  /** true for the extra element the server appends when the ops succeeded but the commit failed. */
  commit: boolean;
  error: string;
  details: string | undefined;
  kind: TransactionFailureKind;
}

export function failureKind(error: string): TransactionFailureKind {
  switch (error) {
    case 'constraint violation':
      return 'constraint-violation';
    case 'referential integrity violation':
      return 'referential-integrity-violation';
    case 'timed out':
      return 'timed-out';
    case 'aborted':
      return 'aborted';
    case 'not owner':
      return 'not-owner';
    case 'resources exhausted':
      return 'resources-exhausted';
    default:
      return 'other';
  }
}

/**
 * A transact whose result reported an error for one operation or for the commit.
 * `kind` and `commit` describe the first failure; `failures` lists all of them.
 * Subclasses exist for the kinds callers usually branch on.
 */
export class OvsdbTransactionError extends OvsdbError {
  readonly db: string;
  readonly failures: TransactionFailure[];
  readonly kind: TransactionFailureKind;
  readonly commit: boolean;
  readonly index: number;
  readonly op: Operation | undefined;
  readonly error: string;
  readonly errorDetails: string | undefined;

  constructor(db: string, failures: TransactionFailure[]) {
    const f = failures[0];
    if (!f) throw new TypeError('OvsdbTransactionError needs at least one failure');
    const fields: Record<string, unknown> = { db, op: f.commit ? 'commit' : f.index };
    if (f.op) {
      fields.opType = f.op.op;
      if ('table' in f.op) fields.table = f.op.table;
    }
    fields.error = f.error;
    if (f.details) fields.details = f.details;
    super('ovsdb-transaction', `ovsdb: transaction failed${kv(fields)}`, { details: { db, failures } });
    this.db = db;
    this.failures = failures;
    this.kind = f.kind;
    this.commit = f.commit;
    this.index = f.index;
    this.op = f.op;
    this.error = f.error;
    this.errorDetails = f.details;
  }
}

export class OvsdbConstraintViolationError extends OvsdbTransactionError {}
export class OvsdbReferentialIntegrityError extends OvsdbTransactionError {}
export class OvsdbTimedOutError extends OvsdbTransactionError {}

/** Builds the most specific transaction error for the first failure. */
export function transactionError(db: string, failures: TransactionFailure[]): OvsdbTransactionError {
  switch (failures[0]?.kind) {
    case 'constraint-violation':
      return new OvsdbConstraintViolationError(db, failures);
    case 'referential-integrity-violation':
      return new OvsdbReferentialIntegrityError(db, failures);
    case 'timed-out':
      return new OvsdbTimedOutError(db, failures);
    default:
      return new OvsdbTransactionError(db, failures);
  }
}

export function causeText(cause: unknown): string {
  if (cause && typeof cause === 'object') {
    const c = cause as { code?: unknown; message?: unknown };
    // errno-style codes (ENOENT, ECONNREFUSED) say it all; otherwise the message is clearer.
    if (typeof c.code === 'string' && /^E[A-Z0-9]+$/.test(c.code)) return c.code;
    if (typeof c.message === 'string' && c.message) return c.message;
    if (typeof c.code === 'string' && c.code) return c.code;
  }
  return String(cause);
}

function rpcErrorText(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object' && typeof (e as { error?: unknown }).error === 'string') {
    const o = e as { error: string; details?: unknown };
    return typeof o.details === 'string' ? `${o.error}: ${o.details}` : o.error;
  }
  return JSON.stringify(e);
}
