/**
 * The hypervisor daemon's composition: OVSDB session → mirror controller (following VM churn) →
 * live capture on the mirror's output (a worker thread) → flow records → sink (the embedded
 * pipeline writing PairWindow/Alert JSON lines, or Kafka), VMs named from the OVSDB inventory.
 *
 * Shutdown runs in order, source first, under a deadline: capture (drain, flush every flow) →
 * sink (last windows, delivery) → mirrors removed (unless keepMirrors) → OVSDB closed.
 */
import type { FlowRecord } from '../capture/flow-record.js';
import type { CaptureLedger } from '../capture/worker.js';
import type { FlowTableOptions } from '../capture/flow-table.js';
import type { OvsdbConnectConfig } from '../config/ovsdb-config.js';
import { MirrorflowError, kv } from '../errors.js';
import type { Logger } from '../log.js';
import { buildInventory, type InventoryEntry } from '../ovsdb/inventory.js';
import { MirrorController, type ApplyResult } from '../ovsdb/mirror-controller.js';
import { internalOutputPortName, type MirrorSpec } from '../ovsdb/mirror-spec.js';
import { viewMirrors } from '../ovsdb/mirror-view.js';
import { openOvsdbSession, type OvsdbSession } from '../ovsdb/session.js';
import { EndpointResolver, type VmIdentity } from '../pipeline/endpoint-resolver.js';
import { startCaptureThread, type CaptureSnapshot, type CaptureThread } from './capture-client.js';
import type { CaptureThreadConfig } from './capture-thread.js';

export class AgentError extends MirrorflowError {}

/** Where flow records go: the embedded pipeline or Kafka (both take records in capture order). */
export interface AgentSink {
  readonly kind: 'embedded' | 'kafka';
  write(records: readonly FlowRecord[], eventTimeUs: number): void;
  /** Event time moved without records. */
  advance(eventTimeUs: number): void;
  readonly behind: boolean;
  /** Flushes and closes: every record accepted is delivered (or spooled) when this resolves. */
  close(): Promise<void>;
  /** Figures for metrics and the shutdown summary. */
  stats(): Record<string, number>;
}

export interface AgentCaptureOptions {
  /** Default: the first mirror's internal output port. */
  interface?: string;
  filter?: string;
  snaplen?: number;
  bufferSizeBytes?: number;
}

export interface AgentOptions {
  agentId: string;
  ovsdb: OvsdbConnectConfig;
  mirrors: MirrorSpec[];
  /** Leave the mirrors (and their ports) in place on shutdown. */
  keepMirrors?: boolean;
  capture: AgentCaptureOptions;
  /** Flow table settings (timeouts, bound). */
  flows: Omit<FlowTableOptions, 'onRecord' | 'epochUs' | 'agentId' | 'observation'>;
  /** Aggregation window: the capture cuts flows at its boundaries. */
  windowUs: number;
  /** Builds the sink once the capture's interface is known (the sink names endpoints with `resolver`). */
  openSink(ctx: { resolver: EndpointResolver; agentId: string }): Promise<AgentSink>;
  /** VMs not in OVSDB (e.g. on other hosts), with their IPs; merged with the OVSDB inventory. */
  staticInventory?: VmIdentity[];
  /** Called whenever the OVSDB inventory changes (e.g. to publish it to Kafka). */
  onInventory?: (entries: InventoryEntry[]) => void;
  logger: Logger;
  /** How long a stop() may take before it gives up waiting (default 9000 ms). */
  stopDeadlineMs?: number;
}

export interface AgentStatus {
  ovsdbConnected: boolean;
  ovsdbReconnects: number;
  mirrors: { name: string; bridge: string; present: boolean; txPackets?: number }[];
  mirrorTxPackets: number;
  capture: CaptureSnapshot & { interface: string };
  sink: Record<string, number>;
  vms: number;
  ready: boolean;
  notReady: string[];
}

export interface AgentStopSummary {
  ledger: CaptureLedger | undefined;
  records: number;
  sink: Record<string, number>;
  mirrorsRemoved: boolean;
  timedOut: boolean;
}

export class Agent {
  private session: OvsdbSession | undefined;
  private controller: MirrorController | undefined;
  private capture: CaptureThread | undefined;
  private sink: AgentSink | undefined;
  private readonly resolver = new EndpointResolver();
  private captureInterface = '';
  private records = 0;
  private reconnects = 0;
  private advanceTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<AgentStopSummary> | undefined;
  private unsubscribe: (() => void) | undefined;
  private vms = 0;
  private lastInventory = '';
  private captureLost = false;

  constructor(private opts: AgentOptions) {
    if (opts.mirrors.length === 0 && !opts.capture.interface) {
      throw new AgentError('config', 'agent: nothing to capture: give at least one mirror or capture.interface');
    }
  }

  get options(): Readonly<AgentOptions> {
    return this.opts;
  }

  get interfaceName(): string {
    return this.captureInterface;
  }

  /** Connects, applies and follows the mirrors, opens the capture and the sink. */
  async start(): Promise<void> {
    const log = this.opts.logger;
    const session = await openOvsdbSession(this.opts.ovsdb, { logger: log.child({ component: 'ovsdb' }), reconnect: true });
    this.session = session;
    session.client.on('reconnected', () => {
      this.reconnects++;
      log.info({ reconnects: this.reconnects }, 'ovsdb reconnected');
    });
    session.client.on('disconnected', (reason: unknown) => log.warn({ reason: String(reason) }, 'ovsdb connection lost'));
    this.refreshInventory();
    this.unsubscribe = session.onChange(() => this.refreshInventory());

    const controller = new MirrorController(session, { owner: agentOwner(this.opts.agentId), logger: log.child({ component: 'mirrors' }) });
    this.controller = controller;
    controller.on('reconcile-error', (e: Error) => log.warn({ err: e.message }, 'mirror reconcile failed; retrying on the next change'));
    await this.applyMirrors(this.opts.mirrors);

    this.captureInterface = this.opts.capture.interface ?? firstOutputPort(this.opts.mirrors);
    this.sink = await this.opts.openSink({ resolver: this.resolver, agentId: this.opts.agentId });
    try {
      this.capture = await this.startCapture();
    } catch (e) {
      await this.sink.close().catch(() => undefined);
      throw e;
    }
    this.advanceTimer = setInterval(() => {
      const snap = this.capture?.snapshot();
      if (snap && snap.eventTimeUs > 0) this.sink?.advance(snap.eventTimeUs);
    }, 500);
    log.info({ interface: this.captureInterface, mirrors: this.opts.mirrors.map((m) => m.name), sink: this.sink.kind }, 'agent started');
  }

  /**
   * Applies a new configuration (SIGHUP) without losing flows: mirrors are re-followed (mirrors no
   * longer configured are removed), the capture restarts only when its settings changed (the old
   * one flushes every flow into the sink first). The sink and window stay as they are.
   */
  async reload(next: AgentOptions): Promise<string[]> {
    const changes: string[] = [];
    const log = this.opts.logger;
    const prev = this.opts;
    if (JSON.stringify(prev.mirrors) !== JSON.stringify(next.mirrors)) {
      const keep = new Set(next.mirrors.map((m) => `${m.bridge}\u0000${m.name}`));
      for (const m of prev.mirrors) {
        if (!keep.has(`${m.bridge}\u0000${m.name}`)) await this.controller?.remove(m.bridge, m.name);
      }
      await this.applyMirrors(next.mirrors);
      changes.push('mirrors');
    }
    // the sink, its window and the inventory hook (Kafka publishing) stay those of the start
    this.opts = { ...next, openSink: prev.openSink, windowUs: prev.windowUs, ...(prev.onInventory ? { onInventory: prev.onInventory } : {}) };
    if (next.windowUs !== prev.windowUs) log.warn({ windowUs: next.windowUs }, 'window changes need a restart; kept the old one');
    const nextIface = next.capture.interface ?? firstOutputPort(next.mirrors);
    if (
      nextIface !== this.captureInterface ||
      JSON.stringify(prev.capture) !== JSON.stringify(next.capture) ||
      JSON.stringify(prev.flows) !== JSON.stringify(next.flows)
    ) {
      const old = this.capture;
      this.capture = undefined;
      await old?.stop();
      this.captureInterface = nextIface;
      this.capture = await this.startCapture();
      changes.push('capture');
    }
    if (JSON.stringify(prev.staticInventory) !== JSON.stringify(next.staticInventory)) {
      this.refreshInventory();
      changes.push('inventory');
    }
    log.info({ changes }, 'configuration reloaded');
    return changes;
  }

  status(): AgentStatus {
    const tables = this.session?.tables();
    const views = tables ? viewMirrors(tables) : [];
    let tx = 0;
    const mirrors = this.opts.mirrors.map((m) => {
      const v = views.find((x) => x.name === m.name && x.bridge === m.bridge);
      const t = v?.statistics.tx_packets;
      if (t !== undefined) tx += t;
      return { name: m.name, bridge: m.bridge, present: v !== undefined, ...(t !== undefined ? { txPackets: t } : {}) };
    });
    const snap = this.capture?.snapshot() ?? { ledger: undefined, status: { open: false, opens: 0, backpressureRecords: 0, maxInFlight: 0 }, eventTimeUs: 0 };
    const ovsdbConnected = this.session?.client.connected ?? false;
    const notReady: string[] = [];
    if (!ovsdbConnected) notReady.push('ovsdb not connected');
    for (const m of mirrors) if (!m.present) notReady.push(`mirror ${m.name} missing on ${m.bridge}`);
    if (!snap.status.open) notReady.push(`capture not open on ${this.captureInterface || '(none)'}`);
    if (!this.sink) notReady.push('sink not open');
    return {
      ovsdbConnected,
      ovsdbReconnects: this.reconnects,
      mirrors,
      mirrorTxPackets: tx,
      capture: { ...snap, interface: this.captureInterface },
      sink: this.sink?.stats() ?? {},
      vms: this.vms,
      ready: notReady.length === 0 && !this.stopping,
      notReady,
    };
  }

  /** Stops in order under the deadline; safe to call twice (the second call waits for the first). */
  stop(): Promise<AgentStopSummary> {
    return (this.stopping ??= this.doStop());
  }

  private async doStop(): Promise<AgentStopSummary> {
    const log = this.opts.logger;
    const deadline = Date.now() + (this.opts.stopDeadlineMs ?? 9000);
    const left = () => Math.max(100, deadline - Date.now());
    let timedOut = false;
    const bounded = async <T>(what: string, p: Promise<T>): Promise<T | undefined> => {
      let timer: NodeJS.Timeout | undefined;
      const t = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), left())));
      try {
        const r = await Promise.race([p, t]);
        if (r === 'timeout') {
          timedOut = true;
          log.warn({ step: what }, 'shutdown step timed out');
          return undefined;
        }
        return r as T;
      } catch (e) {
        log.warn({ step: what, err: (e as Error).message }, 'shutdown step failed');
        return undefined;
      } finally {
        clearTimeout(timer);
      }
    };
    if (this.advanceTimer) clearInterval(this.advanceTimer);
    const snap = this.capture ? await bounded('capture', this.capture.stop(Math.min(5000, left()))) : undefined;
    this.capture = undefined;
    if (this.sink) await bounded('sink', this.sink.close());
    const removeMirrors = !this.opts.keepMirrors && this.opts.mirrors.length > 0;
    if (this.controller) await bounded('mirrors', this.controller.stop({ removeMirrors }));
    this.unsubscribe?.();
    if (this.session) await bounded('ovsdb', this.session.close());
    const summary: AgentStopSummary = { ledger: snap?.ledger, records: this.records, sink: this.sink?.stats() ?? {}, mirrorsRemoved: removeMirrors, timedOut };
    log.info({ records: this.records, frames: snap?.ledger?.frames, timedOut }, 'agent stopped');
    return summary;
  }

  private async applyMirrors(specs: MirrorSpec[]): Promise<void> {
    const controller = this.controller!;
    const results: ApplyResult[] = [];
    for (const spec of specs) results.push(await controller.apply(spec, { allowMissing: true }));
    await controller.removeOrphans(specs.map((s) => ({ bridge: s.bridge, name: s.name })));
    controller.follow(specs);
    for (const [i, r] of results.entries()) {
      this.opts.logger.info({ mirror: specs[i]!.name, bridge: specs[i]!.bridge, changed: r.changed, confirmed: r.confirmed, summary: r.summary }, 'mirror applied');
    }
  }

  private startCapture(): Promise<CaptureThread> {
    const log = this.opts.logger.child({ component: 'capture' });
    const ownPort = this.opts.mirrors.some((m) => internalOutputPortName(m) === this.captureInterface);
    const mirror = this.opts.mirrors.find((m) => internalOutputPortName(m) === this.captureInterface) ?? this.opts.mirrors[0];
    const cfg: CaptureThreadConfig = {
      live: {
        interface: this.captureInterface,
        ...(this.opts.capture.filter ? { filter: this.opts.capture.filter } : {}),
        ...(this.opts.capture.snaplen ? { snaplen: this.opts.capture.snaplen } : {}),
        ...(this.opts.capture.bufferSizeBytes ? { bufferSizeBytes: this.opts.capture.bufferSizeBytes } : {}),
      },
      prepareInterface: ownPort,
      table: {
        ...this.opts.flows,
        agentId: this.opts.agentId,
        // sequences restart with every capture: its start time keeps record ids unique across restarts
        runId: Date.now().toString(36),
        observation: { interface: this.captureInterface, ...(mirror ? { bridge: mirror.bridge, mirror: mirror.name } : {}) },
      },
      windowUs: this.opts.windowUs,
    };
    return startCaptureThread(cfg, {
      onRecords: (records, eventTimeUs) => {
        this.records += records.length;
        this.sink?.write(records, eventTimeUs);
        this.capture?.ack(records.length);
      },
      onSource: (e) => {
        if (e.state === 'open') {
          if (this.captureLost) log.info({ interface: e.interface, opens: e.opens }, 'capture reopened');
          this.captureLost = false;
        } else if (!this.captureLost) {
          this.captureLost = true;
          log.warn({ interface: e.interface, err: e.error }, 'capture interface lost; waiting for it to come back');
        }
      },
      onFatal: (e) => log.error({ err: e.message }, 'capture failed'),
    });
  }

  private refreshInventory(): void {
    if (!this.session) return;
    const entries = buildInventory(this.session.tables());
    const statics = this.opts.staticInventory ?? [];
    const ipsOf = new Map<string, readonly string[]>();
    for (const s of statics) if (s.ips?.length) ipsOf.set(s.vm, s.ips);
    for (const e of entries) {
      const ips = ipsOf.get(e.vm) ?? ipsOf.get(e.vmName);
      if (ips) e.ips = [...ips];
    }
    const vms: VmIdentity[] = [...statics, ...entries.map((e) => ({ vm: e.vmName, ...(e.mac ? { mac: e.mac } : {}), ...(e.ips.length ? { ips: e.ips } : {}) }))];
    const text = JSON.stringify(vms);
    if (text === this.lastInventory) return;
    this.lastInventory = text;
    this.resolver.replace(vms);
    this.vms = new Set(vms.map((v) => v.vm)).size;
    this.opts.onInventory?.(entries);
  }
}

/** The owner id the agent's mirrors carry (`mirrorflow-owner` in external_ids). */
export function agentOwner(agentId: string): string {
  return `mirrorflow-agent:${agentId}`;
}

function firstOutputPort(mirrors: MirrorSpec[]): string {
  for (const m of mirrors) {
    const p = internalOutputPortName(m) ?? (m.output.kind === 'port' ? m.output.port : undefined);
    if (p) return p;
  }
  throw new AgentError('config', `agent: no capture interface: set capture.interface or give a mirror an internal or port output${kv({ mirrors: mirrors.map((m) => m.name).join(',') })}`);
}
