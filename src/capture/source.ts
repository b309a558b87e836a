/**
 * Frame sources (pcap file, pcapng file, live libpcap) hand out frames in batches: one buffer
 * holding many frames back to back, plus typed arrays with each frame's header. One call per batch,
 * never per frame. A batch and its arrays stay valid only until the next call to next().
 */

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LINUX_SLL = 113;

export interface FrameBatch {
  /** Number of frames in this batch. */
  count: number;
  /** The bytes; frame i is data[offset[i] .. offset[i] + caplen[i]). */
  data: Buffer;
  offset: Uint32Array;
  /** Bytes captured (≤ len when cut by snaplen). */
  caplen: Uint32Array;
  /** Length of the frame on the wire. */
  len: Uint32Array;
  /** Capture timestamp: seconds since the epoch, and nanoseconds within the second. */
  tsSec: Uint32Array;
  tsNsec: Uint32Array;
  /** Interface index within the source (pcapng IDB number; 0 for pcap and live). */
  ifIndex: Uint16Array;
}

export interface SourceStats {
  /** Frames the source handed out so far. */
  frames: number;
  /** libpcap's counters (live only): received by the filter, dropped for lack of buffer, dropped by the interface. */
  pcapReceived?: number;
  pcapDropped?: number;
  pcapIfDropped?: number;
}

export interface FrameSource {
  /** Human-readable origin for messages, e.g. `file=trace.pcap` or `interface=mf0a1b2c`. */
  readonly description: string;
  /** The link type of interface `ifIndex` (LINKTYPE_*). */
  linkType(ifIndex: number): number;
  /**
   * The next batch, or null at the end of a file (a live source ends only after close()).
   * A damaged file rejects with a CaptureFileError naming the byte offset, after every frame before
   * the damage has been handed out.
   */
  next(): Promise<FrameBatch | null>;
  stats(): SourceStats;
  /** Live sources: stop after handing out what was already captured (next() then returns null). */
  drain?(): void;
  close(): Promise<void>;
}

/** Allocates a batch with room for `capacity` frames and `bytes` bytes. */
export function allocBatch(capacity: number, bytes: number): FrameBatch {
  return {
    count: 0,
    data: Buffer.allocUnsafe(bytes),
    offset: new Uint32Array(capacity),
    caplen: new Uint32Array(capacity),
    len: new Uint32Array(capacity),
    tsSec: new Uint32Array(capacity),
    tsNsec: new Uint32Array(capacity),
    ifIndex: new Uint16Array(capacity),
  };
}
