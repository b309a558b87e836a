/**
 * A live frame source that outlives its interface: when the capture interface vanishes (the
 * mirror's internal port goes away while ovs-vswitchd restarts, a VM's tap is deleted), the libpcap
 * handle fails; this source closes it, waits for the interface to come back, reopens it and goes on
 * handing out frames. The flow table downstream never sees the gap, only quieter time.
 *
 * libpcap's counters restart with every handle: stats() sums the closed handles' counters and the
 * current one's, so the loss ledger stays monotonic.
 */
import type { LiveSource, LiveSourceOptions } from '../capture/live-source.js';
import type { FrameBatch, FrameSource, SourceStats } from '../capture/source.js';

export interface ReopeningSourceOptions {
  live: LiveSourceOptions;
  /** Opens a live source (the real one in the agent; injectable for unit tests). */
  open: (opts: LiveSourceOptions) => Promise<LiveSource>;
  /** First wait before reopening, doubled up to maxRetryMs (defaults 100 and 2000). */
  retryMs?: number;
  maxRetryMs?: number;
  /** Told about every state change, for logs and metrics. */
  onState?: (state: CaptureSourceState) => void;
}

export type CaptureSourceState =
  | { state: 'open'; interface: string; opens: number }
  | { state: 'lost'; interface: string; error: string }
  | { state: 'retrying'; interface: string; error: string; attempt: number };

export class ReopeningLiveSource implements FrameSource {
  readonly description: string;
  private current: LiveSource | undefined;
  private closed = false;
  private draining = false;
  private opens = 0;
  /** Counters of handles already closed. */
  private past = { frames: 0, received: 0, dropped: 0, ifDropped: 0 };
  private wakeWait: (() => void) | undefined;
  private link = 1;

  private constructor(private readonly opts: ReopeningSourceOptions) {
    this.description = `interface=${opts.live.interface}`;
  }

  /** Opens the first handle (an interface that does not exist now is an error: a wrong name is likelier than a restart). */
  static async open(opts: ReopeningSourceOptions): Promise<ReopeningLiveSource> {
    const s = new ReopeningLiveSource(opts);
    s.current = await opts.open(opts.live);
    s.link = s.current.linkType(0);
    s.opens = 1;
    opts.onState?.({ state: 'open', interface: opts.live.interface, opens: 1 });
    return s;
  }

  /** How many times a handle was opened (1 + reopenings). */
  get openCount(): number {
    return this.opens;
  }

  /** Whether a handle is open now (false while waiting for the interface to come back). */
  get isOpen(): boolean {
    return this.current !== undefined && !this.closed;
  }

  linkType(_ifIndex: number): number {
    return this.link;
  }

  async next(): Promise<FrameBatch | null> {
    for (;;) {
      if (this.closed) return null;
      const cur = this.current;
      if (!cur) {
        if (this.draining) return null;
        await this.reopen();
        continue;
      }
      try {
        const b = await cur.next();
        if (b) return b;
        // a live source ends only after close()/drain()
        if (this.draining || this.closed) return null;
        this.retire(cur);
      } catch (err) {
        if (this.closed || this.draining) return null;
        this.opts.onState?.({ state: 'lost', interface: this.opts.live.interface, error: errorText(err) });
        this.retire(cur);
      }
    }
  }

  stats(): SourceStats {
    const c = this.current?.stats();
    return {
      frames: this.past.frames + (c?.frames ?? 0),
      pcapReceived: this.past.received + (c?.pcapReceived ?? 0),
      pcapDropped: this.past.dropped + (c?.pcapDropped ?? 0),
      pcapIfDropped: this.past.ifDropped + (c?.pcapIfDropped ?? 0),
    };
  }

  drain(): void {
    this.draining = true;
    if (this.current?.drain) this.current.drain();
    else void this.current?.close();
    this.wakeWait?.();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wakeWait?.();
    const cur = this.current;
    if (cur) {
      this.addPast(cur);
      this.current = undefined;
      await cur.close();
    }
  }

  private retire(cur: LiveSource): void {
    this.addPast(cur);
    this.current = undefined;
    void cur.close().catch(() => undefined);
  }

  private addPast(cur: LiveSource): void {
    const s = cur.stats();
    this.past.frames += s.frames;
    this.past.received += s.pcapReceived ?? 0;
    this.past.dropped += s.pcapDropped ?? 0;
    this.past.ifDropped += s.pcapIfDropped ?? 0;
  }

  /** Waits with backoff until a handle opens again (or the source is closed / drained). */
  private async reopen(): Promise<void> {
    let delay = this.opts.retryMs ?? 100;
    const max = this.opts.maxRetryMs ?? 2000;
    for (let attempt = 1; !this.closed && !this.draining; attempt++) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.wakeWait = undefined;
          resolve();
        }, delay);
        this.wakeWait = () => {
          clearTimeout(t);
          this.wakeWait = undefined;
          resolve();
        };
      });
      if (this.closed || this.draining) return;
      try {
        const s = await this.opts.open(this.opts.live);
        if (this.closed || this.draining) {
          await s.close();
          return;
        }
        this.current = s;
        this.link = s.linkType(0);
        this.opens++;
        this.opts.onState?.({ state: 'open', interface: this.opts.live.interface, opens: this.opens });
        return;
      } catch (err) {
        this.opts.onState?.({ state: 'retrying', interface: this.opts.live.interface, error: errorText(err), attempt });
        delay = Math.min(max, delay * 2);
      }
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
