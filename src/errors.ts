/**
 * One error base for the whole project. Messages read `<area>: <what> (<key>=<value>)`.
 * Only src/cli/ turns these into exit codes and one-line messages.
 */
export class MirrorflowError extends Error {
  readonly code: string;
  readonly retriable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, opts: { retriable?: boolean; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = opts.retriable ?? false;
    this.details = opts.details;
  }
}

/** Wrong flags or arguments: exit code 2. */
export class UsageError extends MirrorflowError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('usage', message, { details });
  }
}

/** A bad configuration value: exit code 2. */
export class ConfigError extends MirrorflowError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('config', message, { details });
  }
}

/** Formats `key=value` pairs for messages; strings with spaces are quoted. */
export function kv(fields: Record<string, unknown>): string {
  const parts = Object.entries(fields).map(([k, v]) => {
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    return `${k}=${/\s/.test(s) ? JSON.stringify(s) : s}`;
  });
  return parts.length ? ` (${parts.join(', ')})` : '';
}
