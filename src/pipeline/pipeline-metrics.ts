/**
 * The pipeline's Prometheus metrics (prom-client), on a registry of their own, read from
 * KafkaPipeline.stats when scraped (collect callbacks): nothing on the per-record path. Names read
 * `mirrorflow_pipeline_<what>_<unit>`; counters end in `_total` and count from the process start
 * (the stats are cumulative: a revoked partition's counts stay in them).
 *
 *   mirrorflow_pipeline_messages_total                       messages read from the flows topic (re-reads included)
 *   mirrorflow_pipeline_batch_messages_total                 of those, FlowRecordBatch messages
 *   mirrorflow_pipeline_flow_records_total                   flow records read (re-reads included)
 *   mirrorflow_pipeline_aggregated_records_total             records aggregated into a window
 *   mirrorflow_pipeline_skipped_messages_total{reason}       messages skipped (undecodable, wrong-schema, …)
 *   mirrorflow_pipeline_late_records_total                   records after their window was emitted
 *   mirrorflow_pipeline_replayed_records_total               records re-read after a restore, window already emitted
 *   mirrorflow_pipeline_empty_records_total                  records without packets
 *   mirrorflow_pipeline_clean_dropped_records_total{reason}  records cleaning dropped (duplicate-id, duplicate-flow, capture-port)
 *   mirrorflow_pipeline_closed_windows_total                 pair windows closed (re-closed after a restore included)
 *   mirrorflow_pipeline_idle_closes_total                    closes of an idle partition's windows
 *   mirrorflow_pipeline_raised_alerts_total                  alerts raised (firing and resolved)
 *   mirrorflow_pipeline_produced_pair_windows_total          pair windows in committed transactions
 *   mirrorflow_pipeline_produced_alerts_total                alerts in committed transactions
 *   mirrorflow_pipeline_transactions_total / _failed_transactions_total
 *   mirrorflow_pipeline_partition_restores_total / _rebalances_total
 *   mirrorflow_pipeline_open_windows, _assigned_partitions, _inventory_vms, _threads, _ready (gauges)
 *   mirrorflow_pipeline_info{group, flows_topic, pairs_topic, format} 1
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { CleanDropReason } from './clean.js';
import type { KafkaPipelineStats } from './kafka-pipeline.js';
import { SKIP_REASONS } from './partition-work.js';

/** Cleaning's drop reasons: their series exist (at 0) from the start. */
const CLEAN_DROP_REASONS: readonly CleanDropReason[] = ['duplicate-id', 'duplicate-flow', 'capture-port'];

export interface PipelineMetricsOptions {
  /** The stats now (KafkaPipeline.stats); read once per scrape. */
  stats: () => KafkaPipelineStats;
  /** Readiness now, for mirrorflow_pipeline_ready (default: the series is absent). */
  ready?: () => boolean;
  info?: { group: string; flowsTopic: string; pairsTopic: string; format: string };
  /** The process metrics (process_*, nodejs_*); default true. */
  defaultMetrics?: boolean;
}

export interface PipelineMetrics {
  readonly registry: Registry;
  /** Prometheus text exposition, from the stats read now. */
  metricsText(): Promise<string>;
  readonly contentType: string;
}

type Scalar = { [K in keyof KafkaPipelineStats]: KafkaPipelineStats[K] extends number ? K : never }[keyof KafkaPipelineStats];

/** Counters equal to a cumulative stats field. */
const COUNTERS: readonly { name: string; help: string; field: Scalar }[] = [
  { name: 'messages_total', help: 'Messages read from the flows topic (re-reads after a restore included)', field: 'messages' },
  { name: 'batch_messages_total', help: 'FlowRecordBatch messages read (of messages_total)', field: 'batchMessages' },
  { name: 'flow_records_total', help: 'Flow records read, single and in batches (re-reads after a restore included)', field: 'flowRecords' },
  { name: 'aggregated_records_total', help: 'Flow records aggregated into a pair window', field: 'records' },
  { name: 'late_records_total', help: 'Flow records that came after their window was emitted (beyond the allowed lateness)', field: 'lateRecords' },
  { name: 'replayed_records_total', help: 'Flow records re-read after a restore whose window had been emitted before', field: 'replayedRecords' },
  { name: 'empty_records_total', help: 'Flow records without packets (nothing for a window)', field: 'emptyRecords' },
  { name: 'closed_windows_total', help: 'Pair windows closed (re-closed ones after a restore included)', field: 'windowsEmitted' },
  { name: 'idle_closes_total', help: 'Closes of the open windows of an idle partition', field: 'idleCloses' },
  { name: 'raised_alerts_total', help: 'Alerts raised, firing and resolved (re-raised ones after a restore included)', field: 'alerts' },
  { name: 'produced_pair_windows_total', help: 'Pair windows produced in committed transactions', field: 'pairsProduced' },
  { name: 'produced_alerts_total', help: 'Alerts produced in committed transactions', field: 'alertsProduced' },
  { name: 'transactions_total', help: 'Kafka transactions committed', field: 'transactions' },
  { name: 'failed_transactions_total', help: 'Kafka transactions that failed (the partition restarted from its commit)', field: 'failedTransactions' },
  { name: 'partition_restores_total', help: 'Partitions taken and restored from their commit (assignments, rebalances, failures)', field: 'partitionRestores' },
  { name: 'rebalances_total', help: 'Consumer group joins (the first one included)', field: 'rebalances' },
];

/** Gauges equal to a stats field now. */
const GAUGES: readonly { name: string; help: string; value: (s: KafkaPipelineStats) => number }[] = [
  { name: 'open_windows', help: 'Pair windows open (not yet emitted)', value: (s) => s.openWindows },
  { name: 'assigned_partitions', help: 'Partitions of the flows topic this process holds', value: (s) => s.assignedPartitions.length },
  { name: 'inventory_vms', help: 'VMs known from the inventory topic', value: (s) => s.inventoryVms },
  { name: 'threads', help: 'Worker threads aggregating the partitions (0: the main thread)', value: (s) => s.threads },
];

export const PIPELINE_METRIC_PREFIX = 'mirrorflow_pipeline_';

/** Keeps a labelled counter equal to a cumulative map of counts (a label seen once stays, at its last count). */
function setLabelled(c: Counter<'reason'>, counts: Record<string, number>, always: readonly string[]): void {
  c.reset();
  for (const reason of always) c.inc({ reason }, 0);
  for (const [reason, n] of Object.entries(counts)) if (Number.isFinite(n) && n > 0) c.inc({ reason }, n);
}

export function createPipelineMetrics(o: PipelineMetricsOptions): PipelineMetrics {
  const registry = new Registry();
  if (o.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  // one read of the stats per scrape, shared by every collect callback of that scrape
  let scrape: KafkaPipelineStats | undefined;
  const stats = (): KafkaPipelineStats => scrape ?? o.stats();

  for (const spec of COUNTERS) {
    new Counter({
      name: PIPELINE_METRIC_PREFIX + spec.name,
      help: spec.help,
      registers,
      collect() {
        const v = stats()[spec.field];
        this.reset();
        if (Number.isFinite(v) && v > 0) this.inc(v);
      },
    });
  }
  new Counter({
    name: `${PIPELINE_METRIC_PREFIX}skipped_messages_total`,
    help: 'Messages of the flows topic skipped, by reason (one count per message; a bad record in a sound batch counts as undecodable)',
    labelNames: ['reason'] as const,
    registers,
    collect() {
      setLabelled(this, stats().skipped, SKIP_REASONS);
    },
  });
  new Counter({
    name: `${PIPELINE_METRIC_PREFIX}clean_dropped_records_total`,
    help: 'Flow records cleaning dropped, by reason (duplicate-id, duplicate-flow, capture-port)',
    labelNames: ['reason'] as const,
    registers,
    collect() {
      setLabelled(this, stats().cleaned, CLEAN_DROP_REASONS);
    },
  });
  for (const spec of GAUGES) {
    new Gauge({
      name: PIPELINE_METRIC_PREFIX + spec.name,
      help: spec.help,
      registers,
      collect() {
        this.set(spec.value(stats()));
      },
    });
  }
  if (o.ready) {
    const ready = o.ready;
    new Gauge({
      name: `${PIPELINE_METRIC_PREFIX}ready`,
      help: '1 while ready: the consumer joined its group and holds the producers of its partitions',
      registers,
      collect() {
        this.set(ready() ? 1 : 0);
      },
    });
  }
  if (o.info) {
    const info = new Gauge({
      name: `${PIPELINE_METRIC_PREFIX}info`,
      help: 'The pipeline: consumer group, topics and format (always 1)',
      labelNames: ['group', 'flows_topic', 'pairs_topic', 'format'] as const,
      registers,
    });
    info.set({ group: o.info.group, flows_topic: o.info.flowsTopic, pairs_topic: o.info.pairsTopic, format: o.info.format }, 1);
  }

  return {
    registry,
    contentType: registry.contentType,
    async metricsText() {
      scrape = o.stats();
      try {
        return await registry.metrics();
      } finally {
        scrape = undefined;
      }
    },
  };
}
