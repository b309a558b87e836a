// The pipeline's /metrics text, built from a KafkaPipelineStats object when scraped: names, labels, values.
import { expect } from 'chai';
import type { KafkaPipelineStats } from '../../../src/pipeline/kafka-pipeline.js';
import { createPipelineMetrics } from '../../../src/pipeline/pipeline-metrics.js';
import { parseExposition } from '../../helpers/prometheus.js';

function types(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

function stats(over: Partial<KafkaPipelineStats> = {}): KafkaPipelineStats {
  return {
    records: 900,
    lateRecords: 3,
    replayedRecords: 7,
    emptyRecords: 11,
    skippedMessages: 5,
    windowsEmitted: 40,
    idleCloses: 2,
    alerts: 6,
    cleanDropped: 9,
    openWindows: 12,
    messages: 130,
    batchMessages: 4,
    flowRecords: 1000,
    skipped: { 'no-value': 1, 'unknown-schema': 0, 'unknown-content-type': 0, 'unsupported-version': 0, 'wrong-schema': 1, undecodable: 3 },
    pairsProduced: 38,
    alertsProduced: 5,
    transactions: 17,
    failedTransactions: 1,
    partitionRestores: 4,
    rebalances: 2,
    inventoryVms: 25,
    cleaned: { 'duplicate-id': 8, 'capture-port': 1 },
    assignedPartitions: [0, 2, 3],
    threads: 2,
    ...over,
  };
}

describe('pipeline/pipeline-metrics', () => {
  it('every stats field as mirrorflow_pipeline_* counters and gauges, with the values of the stats', async () => {
    const m = createPipelineMetrics({ stats: () => stats(), defaultMetrics: false });
    const text = await m.metricsText();
    const s = parseExposition(text);
    const expected: Record<string, number> = {
      mirrorflow_pipeline_messages_total: 130,
      mirrorflow_pipeline_batch_messages_total: 4,
      mirrorflow_pipeline_flow_records_total: 1000,
      mirrorflow_pipeline_aggregated_records_total: 900,
      mirrorflow_pipeline_late_records_total: 3,
      mirrorflow_pipeline_replayed_records_total: 7,
      mirrorflow_pipeline_empty_records_total: 11,
      mirrorflow_pipeline_closed_windows_total: 40,
      mirrorflow_pipeline_idle_closes_total: 2,
      mirrorflow_pipeline_raised_alerts_total: 6,
      mirrorflow_pipeline_produced_pair_windows_total: 38,
      mirrorflow_pipeline_produced_alerts_total: 5,
      mirrorflow_pipeline_transactions_total: 17,
      mirrorflow_pipeline_failed_transactions_total: 1,
      mirrorflow_pipeline_partition_restores_total: 4,
      mirrorflow_pipeline_rebalances_total: 2,
      'mirrorflow_pipeline_skipped_messages_total{reason="no-value"}': 1,
      'mirrorflow_pipeline_skipped_messages_total{reason="unknown-schema"}': 0,
      'mirrorflow_pipeline_skipped_messages_total{reason="unknown-content-type"}': 0,
      'mirrorflow_pipeline_skipped_messages_total{reason="unsupported-version"}': 0,
      'mirrorflow_pipeline_skipped_messages_total{reason="wrong-schema"}': 1,
      'mirrorflow_pipeline_skipped_messages_total{reason="undecodable"}': 3,
      'mirrorflow_pipeline_clean_dropped_records_total{reason="duplicate-id"}': 8,
      'mirrorflow_pipeline_clean_dropped_records_total{reason="duplicate-flow"}': 0,
      'mirrorflow_pipeline_clean_dropped_records_total{reason="capture-port"}': 1,
      mirrorflow_pipeline_open_windows: 12,
      mirrorflow_pipeline_assigned_partitions: 3,
      mirrorflow_pipeline_threads: 2,
      mirrorflow_pipeline_inventory_vms: 25,
    };
    expect(Object.fromEntries(s)).to.deep.equal(expected);
    const t = types(text);
    for (const name of t.keys()) expect(name).to.match(/^mirrorflow_pipeline_[a-z_]+$/);
    for (const [name, type] of t) expect(type, name).to.equal(name.endsWith('_total') ? 'counter' : 'gauge');
  });

  it('reads the stats when scraped, once per scrape: the next scrape shows the counts grown', async () => {
    let current = stats();
    let reads = 0;
    const m = createPipelineMetrics({
      stats: () => {
        reads++;
        return current;
      },
      defaultMetrics: false,
    });
    expect(reads).to.equal(0);
    expect(parseExposition(await m.metricsText()).get('mirrorflow_pipeline_flow_records_total')).to.equal(1000);
    expect(reads).to.equal(1);
    current = stats({ flowRecords: 2500, skipped: { ...current.skipped, undecodable: 10 }, cleaned: { 'duplicate-flow': 2 }, assignedPartitions: [] });
    const s = parseExposition(await m.metricsText());
    expect(reads).to.equal(2);
    expect(s.get('mirrorflow_pipeline_flow_records_total')).to.equal(2500);
    expect(s.get('mirrorflow_pipeline_skipped_messages_total{reason="undecodable"}')).to.equal(10);
    expect(s.get('mirrorflow_pipeline_clean_dropped_records_total{reason="duplicate-flow"}')).to.equal(2);
    expect(s.get('mirrorflow_pipeline_assigned_partitions')).to.equal(0);
  });

  it('ready and info series, and the process metrics by default', async () => {
    let ready = false;
    const m = createPipelineMetrics({ stats: () => stats(), ready: () => ready, info: { group: 'g1', flowsTopic: 'x.flows', pairsTopic: 'x.pairs', format: 'protobuf' } });
    let s = parseExposition(await m.metricsText());
    expect(s.get('mirrorflow_pipeline_ready')).to.equal(0);
    expect(s.get('mirrorflow_pipeline_info{group="g1",flows_topic="x.flows",pairs_topic="x.pairs",format="protobuf"}')).to.equal(1);
    expect(s.get('process_resident_memory_bytes')).to.be.greaterThan(0);
    ready = true;
    s = parseExposition(await m.metricsText());
    expect(s.get('mirrorflow_pipeline_ready')).to.equal(1);
    expect(m.contentType).to.match(/^text\/plain; version=0\.0\.4/);
  });
});
