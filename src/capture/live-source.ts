// The live frame source: libpcap on an interface (the mirror's output port), through our addon.
// Frames arrive in batches filled by the addon (one native call per batch, never per frame); while
// the ring is empty next() waits on the capture descriptor's readiness in the event loop (no thread,
// no busy loop, no timer).
import { ConfigError, kv } from '../errors.js';
import {
  loadPcapBinding,
  toNativeCaptureError,
  type CaptureDirection,
  type PcapBinding,
  type PcapHandle,
  type TstampPrecision,
} from './native-binding.js';
import { LINKTYPE_RAW, allocBatch, type FrameBatch, type FrameSource, type SourceStats } from './source.js';

export interface LiveSourceOptions {
  /** The interface to capture on, e.g. the mirror's output port. */
  interface: string;
  /** BPF filter (tcpdump syntax); absent or empty: every frame. */
  filter?: string;
  /** Bytes kept of each frame, 1..262144 (default 262144: whole frames, also GRO-merged ones). */
  snaplen?: number;
  /** Kernel ring size, at least 64 KiB (default 32 MiB). */
  bufferSizeBytes?: number;
  /** Most frames per batch (default 1024). */
  batchFrames?: number;
  /** Bytes of the batch buffer, at least snaplen (default max(snaplen, batchFrames × min(snaplen, 2048))). */
  batchBytes?: number;
  /** Promiscuous mode (default true: mirrored frames are addressed to other hosts). */
  promisc?: boolean;
  /** Hand out frames one by one as they come instead of per filled ring block (default false). */
  immediate?: boolean;
  /** Longest a partly filled ring block waits before it is handed out (default 50). */
  timeoutMs?: number;
  /** Wanted timestamp precision (default 'nano'; the source reports what it got). */
  tstampPrecision?: TstampPrecision;
  /** Frames received, sent or both by the interface (default 'inout'). */
  direction?: CaptureDirection;
}

export type ResolvedLiveSourceOptions = Required<Omit<LiveSourceOptions, 'filter'>> & { filter: string };

export const LIVE_DEFAULT_SNAPLEN = 262_144;
export const LIVE_DEFAULT_BUFFER_SIZE_BYTES = 32 * 1024 * 1024;
export const LIVE_DEFAULT_BATCH_FRAMES = 1024;
export const LIVE_DEFAULT_TIMEOUT_MS = 50;

export interface LiveSource extends FrameSource {
  readonly interfaceName: string;
  readonly options: ResolvedLiveSourceOptions;
  /** The timestamp precision the kernel gives: 'nano' unless the device refused it. */
  tstampPrecision(): TstampPrecision;
  /** libpcap's activation warning, if any (e.g. promiscuous mode not supported). */
  warning(): string | null;
  /** Sends one frame (with its link-layer header) out of the interface; returns the bytes sent. */
  inject(frame: Uint8Array): number;
}

function badOption(option: string, value: unknown, expected: string): never {
  throw new ConfigError(`capture: bad live source option${kv({ option, value, expected })}`, { option, value, expected });
}

function intOption(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) badOption(name, value, `integer ${min}..${max}`);
  return value;
}

function boolOption(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') badOption(name, value, 'boolean');
  return value;
}

function oneOf<T extends string>(name: string, value: unknown, fallback: T, allowed: readonly T[]): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) badOption(name, value, allowed.join('|'));
  return value as T;
}

/** Checks the options and fills in the defaults; throws a ConfigError naming the bad option. Pure. */
export function resolveLiveSourceOptions(opts: LiveSourceOptions): ResolvedLiveSourceOptions {
  const name: unknown = opts.interface;
  // Linux interface names: 1..15 bytes, no whitespace or '/'.
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > 15 || /[\s/:]/.test(name)) {
    badOption('interface', name, 'interface name of 1..15 characters');
  }
  const filter: unknown = opts.filter ?? '';
  if (typeof filter !== 'string') badOption('filter', filter, 'BPF filter expression');
  const snaplen = intOption('snaplen', opts.snaplen, LIVE_DEFAULT_SNAPLEN, 1, 262_144);
  const bufferSizeBytes = intOption('bufferSizeBytes', opts.bufferSizeBytes, LIVE_DEFAULT_BUFFER_SIZE_BYTES, 65_536, 2 ** 31 - 1);
  const batchFrames = intOption('batchFrames', opts.batchFrames, LIVE_DEFAULT_BATCH_FRAMES, 1, 1 << 20);
  const defaultBatchBytes = Math.max(snaplen, batchFrames * Math.min(snaplen, 2048));
  const batchBytes = intOption('batchBytes', opts.batchBytes, defaultBatchBytes, snaplen, 2 ** 31 - 1);
  return {
    interface: name as string,
    filter: filter.trim(),
    snaplen,
    bufferSizeBytes,
    batchFrames,
    batchBytes,
    promisc: boolOption('promisc', opts.promisc, true),
    immediate: boolOption('immediate', opts.immediate, false),
    timeoutMs: intOption('timeoutMs', opts.timeoutMs, LIVE_DEFAULT_TIMEOUT_MS, 0, 60_000),
    tstampPrecision: oneOf('tstampPrecision', opts.tstampPrecision, 'nano', ['nano', 'micro'] as const),
    direction: oneOf('direction', opts.direction, 'inout', ['inout', 'in', 'out'] as const),
  };
}

/** libpcap's DLT_* values are LINKTYPE_* values except for a few historical ones. */
export function linkTypeFromDlt(dlt: number): number {
  // DLT_RAW is 12 on Linux and 14 on some BSDs; both mean raw IP (LINKTYPE_RAW).
  if (dlt === 12 || dlt === 14) return LINKTYPE_RAW;
  return dlt;
}

/** Resolves after the event loop has run its pending I/O and timers once. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

class PcapLiveSource implements LiveSource {
  readonly description: string;
  readonly interfaceName: string;
  readonly options: ResolvedLiveSourceOptions;
  private readonly handle: PcapHandle;
  private readonly batch: FrameBatch;
  private readonly link: number;
  private frames = 0;
  private closed = false;
  private pending = false;
  /** The last next() returned without passing through the event loop: let it run before reading again. */
  private mustYield = false;
  private wake: (() => void) | undefined;
  /** After drain(): batches still allowed before the source closes itself. */
  private drainBudget = -1;
  private drainDeadlineMs = 0;

  constructor(handle: PcapHandle, options: ResolvedLiveSourceOptions) {
    this.handle = handle;
    this.options = options;
    this.interfaceName = options.interface;
    this.description = `interface=${options.interface}`;
    this.batch = allocBatch(options.batchFrames, options.batchBytes);
    this.link = linkTypeFromDlt(handle.linkType());
  }

  linkType(_ifIndex: number): number {
    return this.link;
  }

  tstampPrecision(): TstampPrecision {
    return this.handle.tstampPrecision();
  }

  warning(): string | null {
    return this.handle.warning();
  }

  async next(): Promise<FrameBatch | null> {
    if (this.closed) return null;
    if (this.pending) {
      throw new ConfigError(`capture: next() called while another next() is pending${kv({ interface: this.interfaceName })}`);
    }
    this.pending = true;
    try {
      for (;;) {
        if (this.mustYield) {
          // Under a steady stream the ring is never empty; without this a consumer awaiting next()
          // in a loop would run on microtasks alone and starve timers and sockets.
          this.mustYield = false;
          await yieldToEventLoop();
          if (this.closed) return null;
        }
        const b = this.batch;
        let n: number;
        try {
          n = this.handle.read(b.data, b.offset, b.caplen, b.len, b.tsSec, b.tsNsec);
        } catch (err) {
          throw toNativeCaptureError(err);
        }
        if (n > 0 && this.drainBudget !== 0) {
          if (this.drainBudget > 0) this.drainBudget--;
          b.count = n;
          this.frames += n;
          this.mustYield = true;
          return b;
        }
        if (this.drainBudget >= 0) {
          // The kernel hands frames over in blocks that retire on a timeout: libpcap may have
          // counted frames we cannot read yet. Wait for them a little (bounded), then close.
          if (this.drainBudget > 0 && Date.now() < this.drainDeadlineMs && this.handle.stats().received > this.frames) {
            await new Promise<void>((r) => setTimeout(r, 5));
            if (this.closed) return null;
            continue;
          }
          await this.close();
          return null;
        }
        await this.readable();
        if (this.closed) return null;
      }
    } finally {
      this.pending = false;
    }
  }

  /**
   * Stops capturing gracefully: next() still hands out the frames the kernel has already captured
   * (at most `maxBatches` more batches, so a busy link cannot keep it going), then closes and
   * returns null.
   */
  drain(maxBatches = 64): void {
    if (this.closed || this.drainBudget >= 0) return;
    this.drainBudget = maxBatches;
    this.drainDeadlineMs = Date.now() + Math.max(250, 4 * this.options.timeoutMs);
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Resolves when the capture descriptor is readable or the source is closed. */
  private readable(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.wake = resolve;
      try {
        this.handle.poll((err) => {
          this.wake = undefined;
          if (err) reject(toNativeCaptureError(err));
          else resolve();
        });
      } catch (err) {
        this.wake = undefined;
        reject(toNativeCaptureError(err));
      }
    });
  }

  stats(): SourceStats {
    const c = this.handle.stats();
    return { frames: this.frames, pcapReceived: c.received, pcapDropped: c.dropped, pcapIfDropped: c.ifDropped };
  }

  inject(frame: Uint8Array): number {
    try {
      return this.handle.inject(frame);
    } catch (err) {
      throw toNativeCaptureError(err);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handle.close();
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/**
 * Opens a live capture on `opts.interface`. Rejects with a ConfigError for bad options and a
 * NativeCaptureError when the addon is not built, the interface cannot be opened
 * (`capture: cannot open interface (interface=…, error=…)`) or the filter does not compile
 * (`capture: bad filter (interface=…, filter=…, error=…)`).
 */
export async function openLiveSource(opts: LiveSourceOptions, deps: { binding?: PcapBinding } = {}): Promise<LiveSource> {
  const options = resolveLiveSourceOptions(opts);
  const binding = deps.binding ?? loadPcapBinding();
  let handle: PcapHandle;
  try {
    handle = binding.open({
      device: options.interface,
      snaplen: options.snaplen,
      bufferSizeBytes: options.bufferSizeBytes,
      filter: options.filter,
      promisc: options.promisc,
      immediate: options.immediate,
      timeoutMs: options.timeoutMs,
      tstampPrecision: options.tstampPrecision,
      direction: options.direction,
    });
  } catch (err) {
    throw toNativeCaptureError(err);
  }
  return new PcapLiveSource(handle, options);
}
