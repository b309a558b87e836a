import { expect } from 'chai';
import { createAgentMetrics, type AgentMetrics } from '../../../src/agent/metrics.js';
import type { CaptureLedger } from '../../../src/capture/worker.js';

function ledger(over: Partial<CaptureLedger> = {}): CaptureLedger {
  return {
    frames: 0,
    bytes: 0,
    decoded: 0,
    undecodable: 0,
    undecodableByReason: {},
    records: 0,
    flowsCreated: 0,
    evictions: 0,
    activeFlows: 0,
    firstFrameUs: 0,
    lastFrameUs: 0,
    ...over,
  };
}

/** Value of one series, from the registry (labels must match exactly). */
async function value(m: AgentMetrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const data = await metric.get();
  const want = JSON.stringify(Object.entries(labels).sort());
  const v = data.values.find((x) => JSON.stringify(Object.entries(x.labels).filter(([, val]) => val !== undefined).sort()) === want && !('metricName' in x && x.metricName !== name));
  return v?.value;
}

describe('agent/metrics', () => {
  it('follows the ledger snapshots as counters, by reason, and survives a count that starts over', async () => {
    const m = createAgentMetrics({ defaultMetrics: false });
    m.setLedger(ledger({ frames: 100, bytes: 6400, decoded: 97, undecodable: 3, undecodableByReason: { truncated: 2, 'unknown-ethertype': 1 }, pcapReceived: 101, pcapDropped: 1, pcapIfDropped: 0, records: 5, flowsCreated: 7, evictions: 1, activeFlows: 6 }));
    m.setLedger(ledger({ frames: 150, bytes: 9600, decoded: 146, undecodable: 4, undecodableByReason: { truncated: 3, 'unknown-ethertype': 1 }, pcapReceived: 152, pcapDropped: 2, pcapIfDropped: 0, records: 9, flowsCreated: 8, evictions: 1, activeFlows: 4 }));
    expect(await value(m, 'mirrorflow_capture_frames_total')).to.equal(150);
    expect(await value(m, 'mirrorflow_capture_bytes_total')).to.equal(9600);
    expect(await value(m, 'mirrorflow_capture_decoded_frames_total')).to.equal(146);
    expect(await value(m, 'mirrorflow_capture_undecodable_frames_total', { reason: 'truncated' })).to.equal(3);
    expect(await value(m, 'mirrorflow_capture_undecodable_frames_total', { reason: 'unknown-ethertype' })).to.equal(1);
    expect(await value(m, 'mirrorflow_capture_pcap_received_frames_total')).to.equal(152);
    expect(await value(m, 'mirrorflow_capture_pcap_dropped_frames_total')).to.equal(2);
    expect(await value(m, 'mirrorflow_flows_active_flows')).to.equal(4);
    expect(await value(m, 'mirrorflow_flows_created_flows_total')).to.equal(8);
    expect(await value(m, 'mirrorflow_flows_exported_records_total')).to.equal(9);
    expect(await value(m, 'mirrorflow_flows_evicted_flows_total')).to.equal(1);
    // the counting side restarted: 20 more frames since, the counter goes on from 150
    m.setLedger(ledger({ frames: 20 }));
    expect(await value(m, 'mirrorflow_capture_frames_total')).to.equal(170);
  });

  it('keeps the mirror side of the loss ledger per mirror, and the mirror count', async () => {
    const m = createAgentMetrics({ defaultMetrics: false });
    m.setMirrorTx('m1', { packets: 10, bytes: 1000 });
    m.setMirrorTx('m2', { packets: 3 });
    m.setMirrorTx('m1', { packets: 25, bytes: 2500 });
    m.setMirrorCount(2);
    expect(await value(m, 'mirrorflow_mirror_tx_packets_total', { mirror: 'm1' })).to.equal(25);
    expect(await value(m, 'mirrorflow_mirror_tx_packets_total', { mirror: 'm2' })).to.equal(3);
    expect(await value(m, 'mirrorflow_mirror_tx_bytes_total', { mirror: 'm1' })).to.equal(2500);
    expect(await value(m, 'mirrorflow_mirror_applied_mirrors')).to.equal(2);
  });

  it('sink latency (ms in, seconds out), records by kind, spool, backpressure; OVSDB state', async () => {
    const m = createAgentMetrics({ defaultMetrics: false });
    for (const ms of [0.5, 3, 40, 2000]) m.observeSinkLatency(ms);
    m.observeSinkLatency(-1); // ignored
    m.addSinkRecords('flow', 10);
    m.addSinkRecords('pair', 2);
    m.addSinkRecords('flow', 5);
    m.setSpool({ bytes: 4096, records: 12 });
    m.addBackpressureWait(250);
    m.addBackpressureWait(750);
    m.setCaptureStatus({ open: true, opens: 2, backpressureRecords: 30 });
    m.setOvsdbConnected(true);
    m.incOvsdbReconnects();
    const text = await m.metricsText();
    expect(text).to.include('mirrorflow_sink_latency_seconds_count 4');
    expect(text).to.match(/mirrorflow_sink_latency_seconds_sum 2\.0435\d*/);
    expect(text).to.include('mirrorflow_sink_latency_seconds_bucket{le="0.001"} 1');
    expect(text).to.include('mirrorflow_sink_latency_seconds_bucket{le="0.05"} 3');
    expect(text).to.include('mirrorflow_sink_latency_seconds_bucket{le="+Inf"} 4');
    expect(await value(m, 'mirrorflow_sink_emitted_records_total', { kind: 'flow' })).to.equal(15);
    expect(await value(m, 'mirrorflow_sink_emitted_records_total', { kind: 'alert' })).to.equal(0);
    expect(await value(m, 'mirrorflow_sink_spool_bytes')).to.equal(4096);
    expect(await value(m, 'mirrorflow_sink_spool_records')).to.equal(12);
    expect(await value(m, 'mirrorflow_sink_backpressure_waits_total')).to.equal(2);
    expect(await value(m, 'mirrorflow_sink_backpressure_wait_seconds_total')).to.equal(1);
    expect(await value(m, 'mirrorflow_sink_backpressure_records_total')).to.equal(30);
    expect(await value(m, 'mirrorflow_capture_open')).to.equal(1);
    expect(await value(m, 'mirrorflow_capture_opens_total')).to.equal(2);
    expect(await value(m, 'mirrorflow_ovsdb_connected')).to.equal(1);
    expect(await value(m, 'mirrorflow_ovsdb_reconnects_total')).to.equal(1);
    m.setOvsdbConnected(false);
    expect(await value(m, 'mirrorflow_ovsdb_connected')).to.equal(0);
  });

  it('shows every series from the start, with the agent info; names follow mirrorflow_<area>_<what>_<unit>', async () => {
    const m = createAgentMetrics({ defaultMetrics: false });
    m.setInfo({ agentId: 'hv-1', version: '0.1.0', sink: 'embedded' });
    const text = await m.metricsText();
    expect(text).to.include('mirrorflow_agent_info{agent_id="hv-1",version="0.1.0",sink="embedded"} 1');
    for (const line of ['mirrorflow_ovsdb_connected 0', 'mirrorflow_capture_open 0', 'mirrorflow_flows_active_flows 0', 'mirrorflow_sink_spool_bytes 0', 'mirrorflow_capture_frames_total 0']) {
      expect(text).to.include(line);
    }
    const names = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => [x[1]!, x[2]!] as const);
    expect(names.length).to.be.greaterThan(20);
    for (const [name, type] of names) {
      expect(name).to.match(/^mirrorflow_[a-z]+_[a-z_]+$/);
      if (type === 'counter') expect(name, name).to.match(/_total$/);
    }
  });

  it('includes the default process metrics unless asked not to', async () => {
    const text = await createAgentMetrics().metricsText();
    expect(text).to.match(/^process_cpu_seconds_total /m);
    expect(text).to.match(/^process_resident_memory_bytes /m);
    expect(text).to.match(/^nodejs_eventloop_lag_seconds /m);
  });
});
