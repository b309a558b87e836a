/**
 * `mirrorflow agent`: the hypervisor daemon. Config from a file, env MIRRORFLOW_* and flags
 * (src/config/agent-config.ts); the composition in src/agent/agent.ts; metrics and health on HTTP.
 *
 * SIGTERM/SIGINT: stop capture, flush flows and the sink, remove the mirrors it owns (unless
 * keepMirrors), exit 0 within 10 s. SIGHUP: reload the config (mirrors, capture) without losing flows.
 */
import { readFileSync } from 'node:fs';
import type { FlowRecord } from '../capture/flow-record.js';
import { toProto3Json } from '../capture/flow-record.js';
import {
  AGENT_FLAGS,
  flowTableSettings,
  liveSourceSettings,
  loadAgentConfig,
  ovsdbConnectConfig,
  type AgentConfig,
} from '../config/agent-config.js';
import { Agent, type AgentOptions, type AgentSink } from '../agent/agent.js';
import { EmbeddedSink } from '../agent/embedded-sink.js';
import { startAgentHttp, evaluateReadiness, type AgentHttp } from '../agent/http-server.js';
import { createAgentMetrics, type AgentMetrics } from '../agent/metrics.js';
import { StreamRecordOutput, jsonLinesEncoder, openStream, type RecordOutput } from '../agent/record-output.js';
import { createLogger, type Logger } from '../log.js';
import type { InventoryEntry } from '../ovsdb/inventory.js';
import type { EndpointResolver } from '../pipeline/endpoint-resolver.js';
import type { Command, OptionSpec } from './command.js';

export const agentCommand: Command = {
  name: 'agent',
  summary: 'Run the hypervisor daemon: mirror the VMs, capture, aggregate per VM pair (embedded) or send to Kafka',
  usage: 'agent [--config FILE] [--bridge BR (--select-all | --select-vm ID...)] [--db URL] [--window SECONDS] [--pairs-out FILE|-] [--brokers B] [--metrics ADDR] [--set PATH=VALUE...]',
  description: [
    'Creates and follows the configured mirrors (VMs joining or leaving the bridge join or leave them), captures',
    "their output off the main event loop, keeps the flow table and hands flow records to the sink: without Kafka the",
    'embedded pipeline writes PairWindow and Alert JSON lines (stdout by default); with --brokers records go to the',
    'flows topic and the VM inventory to the inventory topic. Every setting: README "Agent configuration".',
    'SIGTERM/SIGINT: flush and exit 0 (mirrors removed unless keepMirrors); SIGHUP: reload the config.',
  ].join('\n'),
  options: AGENT_FLAGS as Record<string, OptionSpec>,
  async run(values, _positionals, io) {
    const flags = { ...values } as Record<string, unknown>;
    const cfg = await loadAgentConfig({ env: io.env, flags });
    const logger = createLogger({ ...io.env, MIRRORFLOW_LOG_LEVEL: io.env.MIRRORFLOW_LOG_LEVEL ?? cfg.logLevel }, 'info');
    const metrics = createAgentMetrics();
    const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    metrics.setInfo({ agentId: cfg.agentId, version, sink: cfg.sink.kind });

    let latestInventory: InventoryEntry[] = [];
    let publishInventory: ((entries: InventoryEntry[]) => void) | undefined;
    const agent = new Agent(
      agentOptions(cfg, logger, metrics, {
        onInventory: (entries) => {
          latestInventory = entries;
          publishInventory?.(entries);
        },
        setPublisher: (p) => {
          publishInventory = p;
          p(latestInventory);
        },
      }),
    );
    let http: AgentHttp | undefined;
    let stopping = false;
    if (cfg.metrics.enabled) {
      http = await startAgentHttp({
        address: cfg.metrics.address,
        metrics,
        health: () => {
          const s = agent.status();
          const h = evaluateReadiness({
            ovsdbConnected: s.ovsdbConnected,
            mirrorsApplied: s.mirrors.every((m) => m.present),
            captureOpen: s.capture.status.open,
            live: !stopping,
          });
          return { ...h, detail: { ...h.detail, interface: s.capture.interface, vms: s.vms } };
        },
      });
      logger.info({ address: http.address }, 'metrics listening');
    }
    let lastReconnects = 0;
    const updateMetrics = () => {
      const s = agent.status();
      if (s.capture.ledger) metrics.setLedger(s.capture.ledger);
      metrics.setCaptureStatus({ open: s.capture.status.open, opens: s.capture.status.opens, backpressureRecords: s.capture.status.backpressureRecords });
      for (const m of s.mirrors) if (m.txPackets !== undefined) metrics.setMirrorTx(m.name, { packets: m.txPackets });
      metrics.setMirrorCount(s.mirrors.filter((m) => m.present).length);
      metrics.setOvsdbConnected(s.ovsdbConnected);
      for (; lastReconnects < s.ovsdbReconnects; lastReconnects++) metrics.incOvsdbReconnects();
      if (s.sink.spoolBytes !== undefined) metrics.setSpool({ bytes: s.sink.spoolBytes, records: s.sink.spoolRecords ?? 0 });
    };

    try {
      await agent.start();
    } catch (e) {
      await agent.stop().catch(() => undefined);
      await http?.close();
      throw e;
    }
    io.err(`agent: running (agent=${cfg.agentId}, interface=${agent.interfaceName}, sink=${cfg.sink.kind}${http ? `, metrics=http://${http.address}/metrics` : ''})`);
    const metricsTimer = setInterval(updateMetrics, 1000);
    updateMetrics();

    const onHup = () => {
      void (async () => {
        try {
          const next = await loadAgentConfig({ env: io.env, flags });
          const changes = await agent.reload(agentOptions(next, logger, metrics, { onInventory: () => undefined, setPublisher: () => undefined }));
          io.err(`agent: configuration reloaded (changes=${changes.join(',') || 'none'})`);
        } catch (e) {
          io.err(`agent: reload failed, keeping the running configuration: ${(e as Error).message.split('\n').join(' ')}`);
        }
      })();
    };
    process.on('SIGHUP', onHup);
    try {
      if (!io.signal.aborted) await new Promise<void>((r) => io.signal.addEventListener('abort', () => r(), { once: true }));
      stopping = true;
      const summary = await agent.stop();
      updateMetrics();
      const l = summary.ledger;
      io.err(
        `agent: stopped (records=${summary.records}, frames=${l?.frames ?? 0}, undecodable=${l?.undecodable ?? 0}, ` +
          `libpcap received=${l?.pcapReceived ?? 0} dropped=${l?.pcapDropped ?? 0} ifdropped=${l?.pcapIfDropped ?? 0}, ` +
          `mirrors ${summary.mirrorsRemoved ? 'removed' : 'kept'}${summary.timedOut ? ', a step timed out' : ''})`,
      );
      return summary.timedOut ? 1 : 0;
    } finally {
      process.off('SIGHUP', onHup);
      clearInterval(metricsTimer);
      await http?.close();
    }
  },
};

interface InventoryHooks {
  onInventory(entries: InventoryEntry[]): void;
  /** The Kafka sink hands its publisher over once open. */
  setPublisher(p: (entries: InventoryEntry[]) => void): void;
}

/** The agent's runtime options from a validated config. */
export function agentOptions(cfg: AgentConfig, logger: Logger, metrics: AgentMetrics | undefined, hooks: InventoryHooks): AgentOptions {
  const live = liveSourceSettings(cfg);
  const windowUs = Math.round(cfg.sink.windowS * 1e6);
  return {
    agentId: cfg.agentId,
    ovsdb: ovsdbConnectConfig(cfg),
    mirrors: cfg.mirrors,
    keepMirrors: cfg.keepMirrors,
    capture: {
      ...(live.interface ? { interface: live.interface } : {}),
      ...(live.filter ? { filter: live.filter } : {}),
      snaplen: live.snaplen,
      bufferSizeBytes: live.bufferSizeBytes,
    },
    flows: flowTableSettings(cfg),
    windowUs,
    ...(cfg.inventory.entries ? { staticInventory: cfg.inventory.entries } : {}),
    onInventory: (e) => hooks.onInventory(e),
    logger,
    openSink: async ({ resolver, agentId }) =>
      cfg.sink.kind === 'kafka' ? openKafkaSink(cfg, resolver, agentId, metrics, hooks) : openEmbeddedSink(cfg, resolver, agentId, metrics),
  };
}

function jsonLines<T>(path: string, what: string, toJson: (r: T) => unknown): RecordOutput<T> {
  return new StreamRecordOutput<T>(openStream(path), jsonLinesEncoder(toJson), path === '-' ? `stdout (${what})` : path);
}

function openEmbeddedSink(cfg: AgentConfig, resolver: EndpointResolver, agentId: string, metrics: AgentMetrics | undefined): AgentSink {
  const windowUs = Math.round(cfg.sink.windowS * 1e6);
  const flowsOut = cfg.sink.flowsOut ? jsonLines<FlowRecord>(cfg.sink.flowsOut, 'flows', toProto3Json) : undefined;
  const sink = new EmbeddedSink({
    windowUs,
    allowedLatenessUs: Math.round(cfg.sink.allowedLatenessS * 1e6),
    resolver,
    agentId,
    rules: cfg.sink.rules,
    pairsOut: cfg.sink.pairsOut ?? '-',
    ...(cfg.sink.alertsOut ? { alertsOut: cfg.sink.alertsOut } : {}),
    onPairs: (ws) => metrics?.addSinkRecords('pair', ws.length),
    onAlerts: (as) => metrics?.addSinkRecords('alert', as.length),
  });
  return {
    kind: 'embedded',
    write(records, eventTimeUs) {
      const t0 = performance.now();
      if (flowsOut) {
        for (const r of records) flowsOut.write(r);
        void flowsOut.drained().catch(() => undefined);
      }
      sink.write(records, eventTimeUs);
      metrics?.addSinkRecords('flow', records.length);
      metrics?.observeSinkLatency(performance.now() - t0);
    },
    advance: (t) => sink.advance(t),
    get behind() {
      return sink.behind || Boolean(flowsOut?.behind);
    },
    async close() {
      await sink.close();
      await flowsOut?.close();
    },
    stats: () => {
      const s = sink.stats;
      return { pairWindows: sink.pairWindows, alerts: sink.alerts, records: s.records, lateRecords: s.lateRecords, openWindows: s.openWindows, cleanDropped: s.cleanDropped };
    },
  };
}

async function openKafkaSink(
  cfg: AgentConfig,
  resolver: EndpointResolver,
  agentId: string,
  metrics: AgentMetrics | undefined,
  hooks: InventoryHooks,
): Promise<AgentSink> {
  const kafkaCfg = cfg.sink.kafka!;
  const { openKafkaFlowOutputs } = await import('../pipeline/kafka-outputs.js');
  const out = await openKafkaFlowOutputs(kafkaCfg, { agentId, namer: resolver, ...(cfg.inventory.publish ? { inventory: [] } : {}) });
  if (cfg.inventory.publish && out.publishInventory) hooks.setPublisher((entries) => out.publishInventory!(entries));
  let sent = 0;
  return {
    kind: 'kafka',
    write(records) {
      for (const r of records) out.flowsOut.write(r);
    },
    advance: () => undefined,
    get behind() {
      return Boolean(out.flowsOut.behind);
    },
    close: () => out.flowsOut.close(),
    stats: () => {
      const m = out.metrics().flows;
      if (m.sent > sent) {
        metrics?.addSinkRecords('flow', m.sent - sent);
        sent = m.sent;
      }
      return { sent: m.sent, spooled: m.spooled, spoolPending: m.spoolPending, dropped: m.dropped, retried: m.retried };
    },
  };
}
