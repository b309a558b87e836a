/**
 * The capture worker: frames from a source → decode → flow table → flow records.
 *
 * It owns one reusable DecodedFrame (no allocation per frame), counts undecodable frames by reason,
 * keeps the loss ledger, and cuts every flow at window boundaries (when a window is set) so that a
 * record never spans two aggregation windows. Time is the frames' own capture time; a live source
 * also advances it from the wall clock while no frame arrives (tickWallClock), so idle flows end.
 */
import { DECODE_ERROR_NAMES, DecodedFrame } from './decode/frame.js';
import { decodeFrame } from './decode/decode.js';
import type { FlowRecord } from './flow-record.js';
import { FlowTable, type FlowTableOptions } from './flow-table.js';
import type { FrameBatch, FrameSource } from './source.js';

export interface CaptureWorkerOptions {
  /** Flow table settings (timeouts, bounds, observation point, agent id). */
  table?: Omit<FlowTableOptions, 'onRecord' | 'epochUs'>;
  /** Receives every flow record, synchronously, in emission order. */
  onRecord: (record: FlowRecord) => void;
  /** Cut all flows at multiples of this many µs of event time (0: no cuts). */
  windowUs?: number;
  /** Sweep the flow table for timeouts after this many frames (and at every batch end). */
  tickEveryFrames?: number;
}

/** What was captured and what became of it: the loss ledger's capture side. */
export interface CaptureLedger {
  /** Frames the source handed over, and their bytes on the wire. */
  frames: number;
  bytes: number;
  /** Frames decoded and accounted in a flow, and frames skipped as undecodable (by reason). */
  decoded: number;
  undecodable: number;
  undecodableByReason: Record<string, number>;
  /** libpcap's counters (live sources). */
  pcapReceived?: number;
  pcapDropped?: number;
  pcapIfDropped?: number;
  /** Flow records emitted (interim included), flows evicted for lack of room. */
  records: number;
  flowsCreated: number;
  evictions: number;
  activeFlows: number;
  /** Capture time of the first and last frame, µs since the epoch (0 before the first frame). */
  firstFrameUs: number;
  lastFrameUs: number;
}

/** Seconds between the worker's time base and the first frame (see start()). */
const EPOCH_LEAD_SEC = 4;
/** processBatch's warm-up runs end at this many frames (8 + 32 + … + 2048 frames in all). */
const WARM_RUN_END = 4096;

export class CaptureWorker {
  private readonly frame = new DecodedFrame();
  private table: FlowTable | undefined;
  private epochSec = 0;
  private readonly reasons: Float64Array = new Float64Array(DECODE_ERROR_NAMES.length + 1);
  private frames = 0;
  private bytes = 0;
  private decoded = 0;
  private undecodable = 0;
  private records = 0;
  private firstNs = -1;
  private lastNs = 0;
  private nextCutNs = Infinity;
  private readonly windowNs: number;
  private readonly tickEvery: number;
  private sinceTick = 0;
  /** Frames in the next short run of processBatch's warm-up (see there). */
  private warmRun = 8;
  private source: FrameSource | undefined;

  constructor(private readonly opts: CaptureWorkerOptions) {
    this.windowNs = (opts.windowUs ?? 0) * 1000;
    this.tickEvery = opts.tickEveryFrames ?? 65536;
  }

  /** Runs a source to its end (files) or until `signal` aborts (live); then flushes every flow. */
  async run(source: FrameSource, signal?: AbortSignal, afterBatch?: () => Promise<void> | undefined): Promise<void> {
    this.source = source;
    const onAbort = () => (source.drain ? source.drain() : void source.close());
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        if (signal?.aborted && !source.drain) break;
        const batch = await source.next();
        if (!batch) break;
        this.processBatch(batch, source);
        // outputs that fell behind: wait for them before reading on (backpressure, bounded memory)
        const wait = afterBatch?.();
        if (wait) await wait;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.flush();
    }
  }

  /** Decodes and accounts every frame of a batch. */
  processBatch(batch: FrameBatch, source: Pick<FrameSource, 'linkType'>): void {
    const n = batch.count;
    let from = 0;
    // the first frames go through the loop in short runs (8, 32, 128, … frames): its exit path has
    // run a few times before the JIT compiles the loop while it runs (on stack replacement) —
    // otherwise it is compiled without type feedback and thrown away when first reached
    while (this.warmRun < WARM_RUN_END && from < n) {
      const to = Math.min(n, from + this.warmRun);
      this.accountFrames(batch, source, from, to);
      from = to;
      this.warmRun *= 4;
    }
    if (from < n) this.accountFrames(batch, source, from, n);
    if (this.table && n > 0) this.table.tick(this.lastNs);
  }

  /** Frames [from, to) of a batch: the frame loop of processBatch, alone in its function (see there). */
  private accountFrames(batch: FrameBatch, source: Pick<FrameSource, 'linkType'>, from: number, to: number): void {
    const f = this.frame;
    const data = batch.data;
    let lastIf = -1;
    let linkType = 1;
    for (let i = from; i < to; i++) {
      const ifIndex = batch.ifIndex[i]!;
      if (ifIndex !== lastIf) {
        linkType = source.linkType(ifIndex);
        lastIf = ifIndex;
      }
      const len = batch.len[i]!;
      const code = decodeFrame(data, batch.offset[i]!, batch.caplen[i]!, len, linkType, f);
      const sec = batch.tsSec[i]!;
      f.tsSec = sec;
      f.tsNsec = batch.tsNsec[i]!;
      f.ifIndex = ifIndex;
      if (this.table === undefined) this.start(sec);
      const nowNs = (sec - this.epochSec) * 1e9 + f.tsNsec;
      if (this.firstNs < 0) this.firstNs = nowNs;
      if (nowNs > this.lastNs) this.lastNs = nowNs;
      if (nowNs >= this.nextCutNs) this.cut(nowNs);
      this.frames++;
      this.bytes += len;
      if (code !== 0) {
        this.undecodable++;
        this.reasons[code]!++;
        continue;
      }
      this.decoded++;
      this.table!.addFrame(f, nowNs);
      if (++this.sinceTick >= this.tickEvery) {
        this.sinceTick = 0;
        this.table!.tick(nowNs);
      }
    }
  }

  /**
   * Advances event time from the wall clock when a live source is quiet: timeouts and window cuts
   * still happen without frames. `nowUnixMs` is Date.now().
   */
  tickWallClock(nowUnixMs: number): void {
    if (!this.table) return;
    const nowNs = (nowUnixMs / 1000 - this.epochSec) * 1e9;
    if (nowNs <= this.lastNs) return;
    this.lastNs = nowNs;
    if (nowNs >= this.nextCutNs) this.cut(nowNs);
    this.table.tick(nowNs);
  }

  /** Current event time, µs since the epoch (the latest frame's, or the wall clock's when live and idle). */
  get eventTimeUs(): number {
    return this.table ? this.epochSec * 1e6 + Math.floor(this.lastNs / 1000) : 0;
  }

  /** Emits every flow (shutdown, end of file). */
  flush(): void {
    this.table?.flush();
  }

  ledger(): CaptureLedger {
    const byReason: Record<string, number> = {};
    for (let c = 1; c < this.reasons.length; c++) if (this.reasons[c]! > 0) byReason[DECODE_ERROR_NAMES[c] ?? `reason-${c}`] = this.reasons[c]!;
    const st = this.table?.stats;
    const src = this.source?.stats();
    const l: CaptureLedger = {
      frames: this.frames,
      bytes: this.bytes,
      decoded: this.decoded,
      undecodable: this.undecodable,
      undecodableByReason: byReason,
      records: this.records,
      flowsCreated: st?.flowsCreated ?? 0,
      evictions: st?.evictions ?? 0,
      activeFlows: this.table?.size ?? 0,
      firstFrameUs: this.firstNs < 0 ? 0 : this.epochSec * 1e6 + Math.floor(this.firstNs / 1000),
      lastFrameUs: this.firstNs < 0 ? 0 : this.epochSec * 1e6 + Math.floor(this.lastNs / 1000),
    };
    if (src?.pcapReceived !== undefined) l.pcapReceived = src.pcapReceived;
    if (src?.pcapDropped !== undefined) l.pcapDropped = src.pcapDropped;
    if (src?.pcapIfDropped !== undefined) l.pcapIfDropped = src.pcapIfDropped;
    return l;
  }

  private start(firstSec: number): void {
    // the time base lies EPOCH_LEAD_SEC before the first frame: event times in ns are then beyond
    // the JIT's small integers from the first frame on (no recompiling once they outgrow them)
    this.epochSec = firstSec - EPOCH_LEAD_SEC;
    const epochUs = this.epochSec * 1e6;
    this.table = new FlowTable({
      ...this.opts.table,
      epochUs,
      onRecord: (r) => {
        this.records++;
        this.opts.onRecord(r);
      },
    });
    if (this.windowNs > 0) {
      // boundaries are multiples of the window in Unix time, so windows of all agents line up
      const firstUs = firstSec * 1e6;
      const windowUs = this.windowNs / 1000;
      this.nextCutNs = ((Math.floor(firstUs / windowUs) + 1) * windowUs - epochUs) * 1000;
    }
  }

  private cut(nowNs: number): void {
    // the boundary just crossed (several may have passed while idle: one cut covers them all)
    const boundary = this.nextCutNs + Math.floor((nowNs - this.nextCutNs) / this.windowNs) * this.windowNs;
    // while the cut emits, event time is the boundary's last nanosecond, not the frame that crossed
    // it: a record placed by event time (a closing record without packets) belongs to the window
    // that ends here, and must not close that window before the cut's other records reach it
    const lastNs = this.lastNs;
    this.lastNs = boundary - 1;
    this.table!.cutAll(boundary - 1);
    this.lastNs = lastNs;
    this.nextCutNs = boundary + this.windowNs;
  }
}
