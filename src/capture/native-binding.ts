// Loads the live-capture addon (src/capture/native/, built by `npm ci` or `npm run build:native`)
// and types its API. The addon itself documents the semantics in src/capture/native/pcap-addon.cc.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { MirrorflowError, kv } from '../errors.js';

/** Errors of the native capture layer: the addon missing, an interface that cannot be opened, a bad filter, a failed read or inject. */
export class NativeCaptureError extends MirrorflowError {}

export type TstampPrecision = 'nano' | 'micro';
export type CaptureDirection = 'inout' | 'in' | 'out';

export interface PcapOpenOptions {
  /** Interface name, e.g. `eth0`. */
  device: string;
  /** Bytes kept of each frame, 1..262144 (default 262144). */
  snaplen?: number;
  /** Kernel ring size (default 32 MiB). */
  bufferSizeBytes?: number;
  /** BPF filter expression (tcpdump syntax); empty or absent: every frame. */
  filter?: string;
  /** Promiscuous mode (default true: mirrored frames are not addressed to us). */
  promisc?: boolean;
  /** Hand out each frame at once instead of per filled ring block (default false). */
  immediate?: boolean;
  /** Longest a partly filled ring block waits before it is handed out (default 50). */
  timeoutMs?: number;
  /** Wanted timestamp precision (default 'nano'; falls back to 'micro' where the device refuses nano). */
  tstampPrecision?: TstampPrecision;
  /** Which frames to capture (default 'inout'). */
  direction?: CaptureDirection;
}

export interface PcapCounters {
  /** Frames that passed the filter (pcap_stat.ps_recv). */
  received: number;
  /** Frames dropped for lack of buffer space (ps_drop). */
  dropped: number;
  /** Frames the interface dropped (ps_ifdrop). */
  ifDropped: number;
}

export interface PcapHandle {
  /**
   * Copies waiting frames into `data` back to back and their headers into the arrays; returns how
   * many (0: none waiting). Never blocks. `data.length` must be at least snaplen().
   */
  read(data: Buffer, offset: Uint32Array, caplen: Uint32Array, len: Uint32Array, tsSec: Uint32Array, tsNsec: Uint32Array): number;
  /** Calls `cb` once, from the event loop, when frames may be waiting. One pending poll at a time; close() drops it. */
  poll(cb: (err: Error | null) => void): void;
  stats(): PcapCounters;
  /** pcap_datalink: DLT_* (1 = Ethernet). */
  linkType(): number;
  snaplen(): number;
  tstampPrecision(): TstampPrecision;
  /** pcap_activate's warning (e.g. promiscuous mode not supported), or null. */
  warning(): string | null;
  /** Sends one frame (link-layer header included); returns the bytes sent. */
  inject(frame: Uint8Array): number;
  /** Idempotent. */
  close(): void;
  isClosed(): boolean;
}

export interface PcapBinding {
  open(opts: PcapOpenOptions): PcapHandle;
  /** libpcap's version string. */
  libVersion(): string;
  /** CRC-32C of the bytes (src/capture/native/crc32c.cc); `software` forces the table path (tests). */
  crc32c?(bytes: Uint8Array, software?: boolean): number;
}

/** Where `npm run build:native` puts the addon. */
export const NATIVE_ADDON_PATH = fileURLToPath(new URL('../../src/capture/native/build/Release/mirrorflow_pcap.node', import.meta.url));

let cached: PcapBinding | undefined;

/** Loads the addon once; throws a NativeCaptureError saying how to build it when it is missing or unloadable. */
export function loadPcapBinding(addonPath: string = NATIVE_ADDON_PATH): PcapBinding {
  if (addonPath === NATIVE_ADDON_PATH && cached) return cached;
  if (!existsSync(addonPath)) {
    throw new NativeCaptureError('capture-native-missing', `capture: native addon not built${kv({ path: addonPath })}; run npm ci or npm run build:native`, {
      details: { path: addonPath },
    });
  }
  let binding: PcapBinding;
  try {
    binding = createRequire(import.meta.url)(addonPath) as PcapBinding;
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    throw new NativeCaptureError('capture-native-load', `capture: native addon failed to load${kv({ path: addonPath, error })}; run npm run build:native`, {
      cause: err,
      details: { path: addonPath },
    });
  }
  if (addonPath === NATIVE_ADDON_PATH) cached = binding;
  return binding;
}

/**
 * Turns an error thrown by the addon (a plain Error with `code` and the fields of its message as
 * properties) into a NativeCaptureError with the same message; anything else passes through.
 */
export function toNativeCaptureError(err: unknown): unknown {
  if (err instanceof NativeCaptureError || !(err instanceof Error)) return err;
  const raw = err as Error & Record<string, unknown>;
  const code = typeof raw.code === 'string' && raw.code.startsWith('capture-') ? raw.code : undefined;
  if (!code) return err;
  const details: Record<string, unknown> = {};
  for (const key of ['interface', 'filter', 'error', 'option', 'expected', 'argument', 'bytes', 'snaplen']) {
    if (raw[key] !== undefined) details[key] = raw[key];
  }
  return new NativeCaptureError(code, err.message, { cause: err, details });
}

// ---- the impairment forwarder (src/capture/native/impair.cc; used by scripts/impair.ts and tests)

export interface ImpairmentOptions {
  /** One interface (frames read here go out on `b`). */
  a: string;
  /** The other interface (frames read here go out on `a`). */
  b: string;
  /** Added to every frame, both directions, 0..60e6 (default 0). */
  delayUs?: number;
  /** Probability that a frame is dropped, 0..1, independent per frame (default 0). */
  lossProb?: number;
  /** The same in parts per million, 0..1e6 (give lossProb or lossPpm, not both). */
  lossPpm?: number;
  /** PRNG seed, integer 0..2^53-1 (default random; stats().seed tells which). */
  seed?: number;
  /** Frames waiting per direction before new ones are dropped as queueOverflow (default 65536). */
  queueLimit?: number;
  /** Longest frame forwarded, 64..262144 (default 262144; longer ones count as truncated). */
  snaplen?: number;
  /** Run the forwarding threads SCHED_FIFO when allowed (default true; best effort). */
  realtime?: boolean;
  /** Longest busy-wait per frame before its due time, 0..10000 (default 300; 0: sleep only). */
  spinMaxUs?: number;
  /** Kernel capture ring per interface (default 8 MiB). */
  bufferSizeBytes?: number;
}

export interface ImpairmentDirectionStats {
  from: string;
  to: string;
  /** Frames read on `from` (our own injections excluded). */
  received: number;
  /** Dropped by the impairment (the configured loss). */
  dropped: number;
  /** Sent on `to`. */
  forwarded: number;
  /** Dropped because queueLimit frames were waiting. */
  queueOverflow: number;
  /** Sends that failed (lastInjectError says why). */
  injectErrors: number;
  /** Frames longer than snaplen (not forwarded). */
  truncated: number;
  /** Waiting now. */
  queued: number;
  /** Frames the kernel capture ring dropped (pcap ps_drop). */
  captureDropped: number;
  /** How late sends were against their due time. */
  lateUsMax: number;
  lateUsMean: number;
  lastInjectError: string | null;
}

export interface ImpairmentStats {
  /** False after stop() or when a receiver failed (see error). */
  running: boolean;
  /** Whether the sending threads got SCHED_FIFO. */
  realtime: boolean;
  seed: number;
  error: string | null;
  aToB: ImpairmentDirectionStats;
  bToA: ImpairmentDirectionStats;
}

export interface Impairment {
  stats(): ImpairmentStats;
  /** Stops both directions (joins the threads; frames still queued are discarded); idempotent. */
  stop(): ImpairmentStats;
  isRunning(): boolean;
}

export interface ImpairmentBinding extends PcapBinding {
  /** Starts forwarding at once; runs on its own threads until stop() (keep a reference). */
  startImpairment(opts: ImpairmentOptions): Impairment;
}

/** The addon with the impairment forwarder; throws a NativeCaptureError when the built addon predates it. */
export function loadImpairmentBinding(addonPath: string = NATIVE_ADDON_PATH): ImpairmentBinding {
  const binding = loadPcapBinding(addonPath) as Partial<ImpairmentBinding> & PcapBinding;
  if (typeof binding.startImpairment !== 'function') {
    throw new NativeCaptureError('capture-native-stale', `capture: native addon has no impairment forwarder${kv({ path: addonPath })}; run npm run build:native`, {
      details: { path: addonPath },
    });
  }
  return binding as ImpairmentBinding;
}

/**
 * Starts the impairment forwarder between opts.a and opts.b. Errors become NativeCaptureError with
 * the addon's code (impair-option, impair-open) and message, e.g.
 * `impair: cannot open interface (interface=nosuch0, error=...)`.
 */
export function startImpairment(opts: ImpairmentOptions, binding: ImpairmentBinding = loadImpairmentBinding()): Impairment {
  try {
    return binding.startImpairment(opts);
  } catch (err) {
    const raw = err as Error & Record<string, unknown>;
    if (!(err instanceof Error) || typeof raw.code !== 'string' || !raw.code.startsWith('impair-')) throw err;
    const details: Record<string, unknown> = {};
    for (const key of ['interface', 'error', 'option', 'expected']) if (raw[key] !== undefined) details[key] = raw[key];
    throw new NativeCaptureError(raw.code, err.message, { cause: err, details });
  }
}
