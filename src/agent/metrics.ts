/**
 * The agent's Prometheus metrics (prom-client), on a registry of their own. Names read
 * `mirrorflow_<area>_<what>_<unit>`; counters end in `_total`; times are in seconds.
 *
 * The agent calls small typed setters with what it already has: the capture thread's ledger
 * snapshot (cumulative counts; a count that goes down, e.g. after a restart of the counting side,
 * continues the counter from there instead of making it go backwards), Mirror.statistics from
 * OVSDB, the sink's latency and spool, and the OVSDB session's state.
 *
 * The loss ledger, compared in PromQL:
 *   mirrorflow_mirror_tx_packets_total            what OVS sent to the mirror's output (Mirror.statistics)
 *   mirrorflow_capture_frames_total               what the capture read
 *   mirrorflow_capture_pcap_dropped_frames_total  what libpcap dropped for lack of buffer
 *   mirrorflow_capture_pcap_ifdropped_frames_total what the interface dropped
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CaptureLedger } from '../capture/worker.js';

export type SinkRecordKind = 'flow' | 'pair' | 'alert' | 'inventory';

export interface AgentMetrics {
  readonly registry: Registry;
  /** `mirrorflow_agent_info{agent_id, version, sink} 1`. */
  setInfo(info: { agentId: string; version: string; sink: string }): void;
  /** The capture side of the loss ledger and the flow table, from the capture thread's snapshot. */
  setLedger(ledger: CaptureLedger): void;
  /** The capture thread's status: handle open, opens so far, records posted while the sink was behind. */
  setCaptureStatus(status: { open: boolean; opens?: number; backpressureRecords?: number }): void;
  /** Mirror.statistics tx_packets/tx_bytes of one mirror (cumulative, from OVSDB). */
  setMirrorTx(mirror: string, tx: { packets: number; bytes?: number }): void;
  /** Mirrors the agent owns that are applied in OVSDB. */
  setMirrorCount(n: number): void;
  setOvsdbConnected(connected: boolean): void;
  incOvsdbReconnects(): void;
  /** Records the sink emitted (written to a file or acknowledged by Kafka). */
  addSinkRecords(kind: SinkRecordKind, n: number): void;
  /** Time from a record's hand-over to the sink until it is written / acknowledged. */
  observeSinkLatency(ms: number): void;
  setSpool(spool: { bytes: number; records: number }): void;
  /** One wait of the capture for the sink (backpressure), and how long it lasted. */
  addBackpressureWait(ms: number): void;
  /** Prometheus text exposition. */
  metricsText(): Promise<string>;
  readonly contentType: string;
}

/** Keeps a Counter equal to a cumulative source count (reset-tolerant). */
class SnapshotCounter<L extends string> {
  private readonly last = new Map<string, number>();
  constructor(private readonly counter: Counter<L>) {}

  set(value: number, labels?: Partial<Record<L, string>>): void {
    if (!Number.isFinite(value) || value < 0) return;
    const key = labels ? JSON.stringify(labels) : '';
    const prev = this.last.get(key);
    // first sight: start from the value; a smaller value: the source restarted from 0
    const delta = prev === undefined || value < prev ? value : value - prev;
    this.last.set(key, value);
    if (labels) this.counter.inc(labels, delta);
    else this.counter.inc(delta);
  }
}

/** Sink latency buckets, seconds: 1 ms .. 30 s. */
export const SINK_LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createAgentMetrics(opts: { defaultMetrics?: boolean } = {}): AgentMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const info = new Gauge({ name: 'mirrorflow_agent_info', help: 'The agent: id, version and sink kind (always 1)', labelNames: ['agent_id', 'version', 'sink'] as const, registers });

  const frames = new SnapshotCounter(new Counter({ name: 'mirrorflow_capture_frames_total', help: 'Frames the capture read from the interface', registers }));
  const bytes = new SnapshotCounter(new Counter({ name: 'mirrorflow_capture_bytes_total', help: 'Bytes on the wire of the frames the capture read', registers }));
  const decoded = new SnapshotCounter(new Counter({ name: 'mirrorflow_capture_decoded_frames_total', help: 'Frames decoded and accounted in a flow', registers }));
  const undecodable = new SnapshotCounter(
    new Counter({ name: 'mirrorflow_capture_undecodable_frames_total', help: 'Frames skipped as undecodable, by reason', labelNames: ['reason'] as const, registers }),
  );
  const pcapReceived = new SnapshotCounter(new Counter({ name: 'mirrorflow_capture_pcap_received_frames_total', help: 'Frames libpcap received (ps_recv)', registers }));
  const pcapDropped = new SnapshotCounter(new Counter({ name: 'mirrorflow_capture_pcap_dropped_frames_total', help: 'Frames libpcap dropped for lack of buffer space (ps_drop)', registers }));
  const pcapIfDropped = new SnapshotCounter(new Counter({ name: 'mirrorflow_capture_pcap_ifdropped_frames_total', help: 'Frames the interface dropped (ps_ifdrop)', registers }));
  const captureOpen = new Gauge({ name: 'mirrorflow_capture_open', help: '1 while a capture handle is open on the interface', registers });
  const captureOpens = new SnapshotCounter(new Counter({ name: 'mirrorflow_capture_opens_total', help: 'Capture handles opened (1 + reopenings after the interface vanished)', registers }));

  const flowsActive = new Gauge({ name: 'mirrorflow_flows_active_flows', help: 'Flows in the flow table', registers });
  const flowsCreated = new SnapshotCounter(new Counter({ name: 'mirrorflow_flows_created_flows_total', help: 'Flows the flow table created', registers }));
  const flowsExported = new SnapshotCounter(new Counter({ name: 'mirrorflow_flows_exported_records_total', help: 'Flow records the flow table emitted (interim records included)', registers }));
  const flowsEvicted = new SnapshotCounter(new Counter({ name: 'mirrorflow_flows_evicted_flows_total', help: 'Flows evicted early because the table was full', registers }));

  const mirrorTxPackets = new SnapshotCounter(
    new Counter({ name: 'mirrorflow_mirror_tx_packets_total', help: 'Packets OVS sent to the mirror output (Mirror.statistics tx_packets)', labelNames: ['mirror'] as const, registers }),
  );
  const mirrorTxBytes = new SnapshotCounter(
    new Counter({ name: 'mirrorflow_mirror_tx_bytes_total', help: 'Bytes OVS sent to the mirror output (Mirror.statistics tx_bytes)', labelNames: ['mirror'] as const, registers }),
  );
  const mirrors = new Gauge({ name: 'mirrorflow_mirror_applied_mirrors', help: 'Mirrors the agent owns that are applied in OVSDB', registers });

  const ovsdbConnected = new Gauge({ name: 'mirrorflow_ovsdb_connected', help: '1 while the OVSDB session is connected', registers });
  const ovsdbReconnects = new Counter({ name: 'mirrorflow_ovsdb_reconnects_total', help: 'Times the OVSDB session reconnected', registers });

  const sinkRecords = new Counter({ name: 'mirrorflow_sink_emitted_records_total', help: 'Records the sink emitted (written, or acknowledged by Kafka), by kind', labelNames: ['kind'] as const, registers });
  const sinkLatency = new Histogram({
    name: 'mirrorflow_sink_latency_seconds',
    help: 'From hand-over to the sink until written / acknowledged',
    buckets: SINK_LATENCY_BUCKETS_S,
    registers,
  });
  const spoolBytes = new Gauge({ name: 'mirrorflow_sink_spool_bytes', help: 'Bytes in the on-disk spool', registers });
  const spoolRecords = new Gauge({ name: 'mirrorflow_sink_spool_records', help: 'Records in the on-disk spool, not yet delivered', registers });
  const backpressureWaits = new Counter({ name: 'mirrorflow_sink_backpressure_waits_total', help: 'Times the capture waited for the sink', registers });
  const backpressureSeconds = new Counter({ name: 'mirrorflow_sink_backpressure_wait_seconds_total', help: 'Time the capture spent waiting for the sink', registers });
  const backpressureRecords = new SnapshotCounter(
    new Counter({ name: 'mirrorflow_sink_backpressure_records_total', help: 'Records handed over while the sink was behind', registers }),
  );

  // every series exists from the start (a scrape before the first frame shows 0, not nothing)
  ovsdbConnected.set(0);
  captureOpen.set(0);
  mirrors.set(0);
  flowsActive.set(0);
  spoolBytes.set(0);
  spoolRecords.set(0);
  for (const k of ['flow', 'pair', 'alert', 'inventory'] as const) sinkRecords.inc({ kind: k }, 0);

  return {
    registry,
    contentType: registry.contentType,
    setInfo({ agentId, version, sink }) {
      info.reset();
      info.set({ agent_id: agentId, version, sink }, 1);
    },
    setLedger(l) {
      frames.set(l.frames);
      bytes.set(l.bytes);
      decoded.set(l.decoded);
      for (const [reason, n] of Object.entries(l.undecodableByReason)) undecodable.set(n, { reason });
      if (l.pcapReceived !== undefined) pcapReceived.set(l.pcapReceived);
      if (l.pcapDropped !== undefined) pcapDropped.set(l.pcapDropped);
      if (l.pcapIfDropped !== undefined) pcapIfDropped.set(l.pcapIfDropped);
      flowsActive.set(l.activeFlows);
      flowsCreated.set(l.flowsCreated);
      flowsExported.set(l.records);
      flowsEvicted.set(l.evictions);
    },
    setCaptureStatus(s) {
      captureOpen.set(s.open ? 1 : 0);
      if (s.opens !== undefined) captureOpens.set(s.opens);
      if (s.backpressureRecords !== undefined) backpressureRecords.set(s.backpressureRecords);
    },
    setMirrorTx(mirror, tx) {
      mirrorTxPackets.set(tx.packets, { mirror });
      if (tx.bytes !== undefined) mirrorTxBytes.set(tx.bytes, { mirror });
    },
    setMirrorCount(n) {
      mirrors.set(n);
    },
    setOvsdbConnected(connected) {
      ovsdbConnected.set(connected ? 1 : 0);
    },
    incOvsdbReconnects() {
      ovsdbReconnects.inc();
    },
    addSinkRecords(kind, n) {
      if (n > 0) sinkRecords.inc({ kind }, n);
    },
    observeSinkLatency(ms) {
      if (Number.isFinite(ms) && ms >= 0) sinkLatency.observe(ms / 1000);
    },
    setSpool(s) {
      spoolBytes.set(s.bytes);
      spoolRecords.set(s.records);
    },
    addBackpressureWait(ms) {
      backpressureWaits.inc();
      if (Number.isFinite(ms) && ms > 0) backpressureSeconds.inc(ms / 1000);
    },
    metricsText() {
      return registry.metrics();
    },
  };
}
