/**
 * Retries a Kafka admin call while the broker answers with a retriable error (e.g. "not the leader
 * for that topic-partition" just after a topic was created or a leader moved), with a growing
 * pause, a bounded number of times.
 */
export async function retryRetriable<T>(fn: () => Promise<T>, attempts = 20, firstDelayMs = 50): Promise<T> {
  let delay = firstDelayMs;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts || !(e as { retriable?: boolean }).retriable) throw e;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 1000);
    }
  }
}
