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
