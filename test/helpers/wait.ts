// Poll a condition with a deadline: tests never sleep for a fixed time.

export interface WaitOptions {
  /** Give up after this long (default 10000). */
  timeoutMs?: number;
  /** Pause between attempts (default 50). */
  intervalMs?: number;
  /** What we wait for, named in the timeout error, e.g. 'port mf-x in bridge br0'. */
  what: string;
}

/**
 * Calls `fn` until it returns a truthy value and resolves with that value. A throwing or rejecting
 * attempt counts as "not yet"; its last error is attached as the cause of the timeout error.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      const value = await fn();
      if (value) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    const remainingMs = deadline - Date.now();
    if (remainingMs <= 0) {
      const reason = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`wait: timed out waiting for ${opts.what} (timeoutMs=${timeoutMs}, attempts=${attempts})${reason}`, {
        cause: lastError,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, remainingMs)));
  }
}
