/**
 * The embedded default: the pipeline's own clean → enrich → aggregate → alert/trend code
 * (PipelineCore, the code every Kafka pipeline process runs per partition) run in the agent's
 * process on its one stream of records, writing PairWindow and Alert as proto3 JSON lines.
 *
 * Windows close on the capture's event time: the capture cuts every flow at window boundaries, so
 * once event time passes a window's end (plus the allowed lateness) nothing more can come for it.
 */
import type { FlowRecord, PairWindow } from '../capture/flow-record.js';
import { pairWindowToProto3Json } from '../capture/flow-record.js';
import { alertToProto3Json, type Alert } from '../pipeline/alerts.js';
import type { EndpointResolver } from '../pipeline/endpoint-resolver.js';
import { PipelineCore, type PartitionStats } from '../pipeline/pipeline-core.js';
import type { RulesConfig } from '../pipeline/rules-config.js';
import { StreamRecordOutput, jsonLinesEncoder, openStream, type RecordOutput } from './record-output.js';

export interface EmbeddedSinkOptions {
  windowUs: number;
  allowedLatenessUs?: number;
  resolver: EndpointResolver;
  rules?: RulesConfig;
  agentId: string;
  /** Where PairWindows go (path or `-`), or an output object (tests, `top`). */
  pairsOut?: string | RecordOutput<PairWindow>;
  alertsOut?: string | RecordOutput<Alert>;
  /** Called with every batch of windows emitted (the live table). */
  onPairs?: (windows: PairWindow[]) => void;
  onAlerts?: (alerts: Alert[]) => void;
}

const PARTITION = 0;

export class EmbeddedSink {
  private readonly core: PipelineCore;
  private readonly pairsOut: RecordOutput<PairWindow> | undefined;
  private readonly alertsOut: RecordOutput<Alert> | undefined;
  private offset = 0;
  private closed = false;
  pairWindows = 0;
  alerts = 0;

  constructor(private readonly o: EmbeddedSinkOptions) {
    this.core = new PipelineCore({
      windowUs: o.windowUs,
      ...(o.allowedLatenessUs !== undefined ? { allowedLatenessUs: o.allowedLatenessUs } : {}),
      // windows close on event time (advance), not on processing-time idleness
      idleTimeoutMs: Number.MAX_SAFE_INTEGER,
      resolver: o.resolver,
      idPrefix: `${o.agentId}-pairs`,
      ...(o.rules ? { rules: o.rules } : {}),
      clean: true,
    });
    this.core.assign(PARTITION, 0);
    this.pairsOut = typeof o.pairsOut === 'string' ? openJsonLines(o.pairsOut, 'pairs', pairWindowToProto3Json) : o.pairsOut;
    this.alertsOut = typeof o.alertsOut === 'string' ? openJsonLines(o.alertsOut, 'alerts', alertToProto3Json) : o.alertsOut;
  }

  /** Adds records (in capture order) and closes the windows event time has passed. */
  write(records: readonly FlowRecord[], eventTimeUs: number, nowMs = Date.now()): void {
    if (this.closed) return;
    const out: PairWindow[] = [];
    for (const r of records) out.push(...this.core.addRecord(PARTITION, this.offset++, r, nowMs));
    out.push(...this.core.partition(PARTITION).advance(eventTimeUs));
    this.emit(out);
  }

  /** Event time moved without records (a quiet capture). */
  advance(eventTimeUs: number): void {
    if (this.closed) return;
    this.emit(this.core.partition(PARTITION).advance(eventTimeUs));
  }

  get behind(): boolean {
    return Boolean(this.pairsOut?.behind || this.alertsOut?.behind);
  }

  async drained(): Promise<void> {
    await Promise.all([this.pairsOut?.drained(), this.alertsOut?.drained()]);
  }

  get stats(): PartitionStats & { openWindows: number; cleanDropped: number } {
    return this.core.stats;
  }

  /** Emits every open window (shutdown), then closes the outputs. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.emit(this.core.partition(PARTITION).closeAll());
    this.closed = true;
    await this.pairsOut?.close();
    await this.alertsOut?.close();
  }

  private emit(ws: PairWindow[]): void {
    if (ws.length) {
      this.pairWindows += ws.length;
      if (this.pairsOut) {
        for (const w of ws) this.pairsOut.write(w);
        // a live agent emits a few lines per window: hand them to the stream now, not at 1 MiB
        void this.pairsOut.drained().catch(() => undefined);
      }
      this.o.onPairs?.(ws);
    }
    const alerts = this.core.takeAlerts(PARTITION);
    if (alerts.length) {
      this.alerts += alerts.length;
      if (this.alertsOut) {
        for (const a of alerts) this.alertsOut.write(a);
        void this.alertsOut.drained().catch(() => undefined);
      }
      this.o.onAlerts?.(alerts);
    }
  }
}

function openJsonLines<T>(path: string, what: string, toJson: (r: T) => unknown): RecordOutput<T> {
  return new StreamRecordOutput<T>(openStream(path), jsonLinesEncoder(toJson), path === '-' ? `stdout (${what})` : path);
}
