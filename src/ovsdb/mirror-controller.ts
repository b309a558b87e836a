/**
 * The mirror controller: keeps OVS mirrors as the desired specs say, through one OVSDB session.
 *
 * It reads the row cache (kept current by a monitor), plans with the pure planner, applies the plan
 * as one transaction guarded by `wait` operations, re-plans on conflict, and confirms that
 * ovs-vswitchd applied the change (cur_cfg catches up with next_cfg). In follow mode it re-plans on
 * every database change, so VM ports that come and go are added to or removed from the mirror,
 * and a mirror deleted behind its back is restored.
 */
import { EventEmitter } from 'node:events';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { MirrorflowError, kv } from '../errors.js';
import { optionalAtom, type WireDatum } from './datum.js';
import { OvsdbTimedOutError, OvsdbTransactionError } from './errors.js';
import { buildInventory, type InventoryEntry } from './inventory.js';
import { observedFromTables, planDelete, planMirror, planOrphanCleanup, type Plan, type RemovalPlan } from './mirror-plan.js';
import type { MirrorSpec } from './mirror-spec.js';
import type { Operation } from './ops.js';

const execFileAsync = promisify(execFile);

export type Tables = ReadonlyMap<string, ReadonlyMap<string, Readonly<Record<string, WireDatum>>>>;

/** What the controller needs of an OVSDB session: a transact and a monitored, current row cache. */
export interface ControllerSession {
  transact(ops: Operation[]): Promise<unknown[]>;
  tables(): Tables;
  /** Calls `listener` after every cache change (add/update/delete, reconnect resync); returns an unsubscribe. */
  onChange(listener: () => void): () => void;
}

export interface LoggerLike {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface MirrorControllerOptions {
  /** Owner id in external_ids `mirrorflow-owner` (default `mirrorflow`). */
  owner?: string;
  /** How long to wait for ovs-vswitchd to apply a change (cur_cfg ≥ next_cfg); 0: do not wait. Default 10 s. */
  confirmTimeoutMs?: number;
  /** Attempts per change when a concurrent writer invalidates the plan. Default 8. */
  maxAttempts?: number;
  /** How long to wait for the cache to catch up after a conflict before re-planning anyway. Default 1 s. */
  catchUpMs?: number;
  /** Follow mode: coalesce database changes this long before re-planning. Default 20 ms. */
  followDebounceMs?: number;
  /** Bring an internal output port up with IPv6 disabled once vswitchd created it (default true). */
  prepareOutputPort?: boolean;
  logger?: LoggerLike;
}

export interface ApplyResult {
  changed: boolean;
  summary: string[];
  /** Attempts it took (1 without conflict). */
  attempts: number;
  /** The next_cfg the change was tagged with, when it changed anything. */
  nextCfg?: number;
  /** true when ovs-vswitchd confirmed the change (cur_cfg ≥ nextCfg). */
  confirmed: boolean;
  plan?: Plan | RemovalPlan;
}

export class ControllerError extends MirrorflowError {}

const silent: LoggerLike = { debug() {}, info() {}, warn() {}, error() {} };

export class MirrorController extends EventEmitter {
  readonly owner: string;
  private readonly opts: Required<Omit<MirrorControllerOptions, 'logger' | 'owner'>>;
  private readonly log: LoggerLike;
  private desired = new Map<string, MirrorSpec>();
  private following = false;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private reconciling: Promise<void> | undefined;
  private dirty = false;
  private stopped = false;
  /** Serialises all transactions of this controller. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Cache changes seen so far (to wait for the cache to catch up). */
  private changes = 0;
  private readonly unsubscribeChanges: () => void;

  constructor(
    private readonly session: ControllerSession,
    options: MirrorControllerOptions = {},
  ) {
    super();
    this.owner = options.owner ?? 'mirrorflow';
    this.log = options.logger ?? silent;
    this.opts = {
      confirmTimeoutMs: options.confirmTimeoutMs ?? 10_000,
      maxAttempts: options.maxAttempts ?? 8,
      catchUpMs: options.catchUpMs ?? 1_000,
      followDebounceMs: options.followDebounceMs ?? 20,
      prepareOutputPort: options.prepareOutputPort ?? true,
    };
    this.setMaxListeners(0);
    this.unsubscribeChanges = session.onChange(() => {
      this.changes++;
      this.emit('cache-change');
      if (this.following) this.scheduleReconcile();
    });
  }

  /** The VMs currently on the database, from Interface external_ids. */
  inventory(): InventoryEntry[] {
    return buildInventory(this.session.tables());
  }

  /** Creates or updates one mirror so it matches `spec` (idempotent). */
  apply(spec: MirrorSpec, opts: { allowMissing?: boolean } = {}): Promise<ApplyResult> {
    return this.serialize(() =>
      this.applyWithRetry(
        () => planMirror(spec, observedFromTables(this.session.tables()), { owner: this.owner, allowMissing: opts.allowMissing ?? false }),
        { bridge: spec.bridge, mirror: spec.name },
      ),
    );
  }

  /** Removes one owned mirror and the internal output port created for it. */
  remove(bridge: string, name: string): Promise<ApplyResult> {
    return this.serialize(() =>
      this.applyWithRetry(() => planDelete(bridge, name, observedFromTables(this.session.tables()), { owner: this.owner }), { bridge, mirror: name }),
    );
  }

  /** Removes owned mirrors and ports that are not in `keep` (leftovers of an earlier run). */
  removeOrphans(keep: Iterable<{ bridge: string; name: string }>): Promise<ApplyResult> {
    const list = [...keep];
    return this.serialize(() =>
      this.applyWithRetry(() => planOrphanCleanup(observedFromTables(this.session.tables()), list, { owner: this.owner }), { action: 'orphan-cleanup' }),
    );
  }

  /**
   * Follow mode: keep every spec in `specs` applied while the database changes. Errors in follow
   * mode are logged and emitted as 'reconcile-error'; the next change retries.
   */
  follow(specs: MirrorSpec[]): void {
    this.desired = new Map(specs.map((s) => [`${s.bridge}\u0000${s.name}`, s]));
    this.following = true;
    this.scheduleReconcile();
  }

  /** Resolves once no reconcile is pending or running (for tests and orderly shutdown). */
  async settled(): Promise<void> {
    while (this.reconcileTimer || this.reconciling) {
      if (this.reconciling) await this.reconciling;
      else await new Promise<void>((r) => this.once('reconciled', () => r()));
    }
  }

  /** Stops following; with `removeMirrors`, removes the followed mirrors (and their internal ports). */
  async stop(opts: { removeMirrors?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.following = false;
    if (this.reconcileTimer) clearTimeout(this.reconcileTimer);
    this.reconcileTimer = undefined;
    if (this.reconciling) await this.reconciling.catch(() => undefined);
    if (opts.removeMirrors) {
      for (const spec of this.desired.values()) {
        await this.remove(spec.bridge, spec.name).catch((e: Error) => this.log.warn({ err: e.message, mirror: spec.name }, 'mirror removal failed'));
      }
    }
    this.unsubscribeChanges();
  }

  private scheduleReconcile(): void {
    if (this.stopped) return;
    this.dirty = true;
    if (this.reconcileTimer || this.reconciling) return;
    this.reconcileTimer = setTimeout(() => {
      this.reconcileTimer = undefined;
      this.reconciling = this.reconcile().finally(() => {
        this.reconciling = undefined;
        if (this.dirty && !this.stopped) this.scheduleReconcile();
        else this.emit('reconciled');
      });
    }, this.opts.followDebounceMs);
  }

  private async reconcile(): Promise<void> {
    this.dirty = false;
    for (const spec of this.desired.values()) {
      if (this.stopped) return;
      try {
        const plan = planMirror(spec, observedFromTables(this.session.tables()), { owner: this.owner, allowMissing: true });
        if (!plan.changed) continue;
        const result = await this.apply(spec, { allowMissing: true });
        if (result.changed) {
          this.log.info({ mirror: spec.name, bridge: spec.bridge, changes: result.summary }, 'mirror reconciled');
          this.emit('reconciled-mirror', spec, result);
        }
      } catch (e) {
        this.log.warn({ mirror: spec.name, bridge: spec.bridge, err: (e as Error).message }, 'mirror reconcile failed');
        this.emit('reconcile-error', e, spec);
      }
    }
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async applyWithRetry(makePlan: () => Plan | RemovalPlan, fields: Record<string, unknown>): Promise<ApplyResult> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.opts.maxAttempts; attempt++) {
      const plan = makePlan();
      if (!plan.changed) return { changed: false, summary: [], attempts: attempt, confirmed: true, plan };
      const seen = this.changes;
      let results: unknown[];
      try {
        results = await this.session.transact(plan.ops);
      } catch (e) {
        if (isConflict(e)) {
          lastError = e;
          this.log.debug({ ...fields, attempt }, 'transaction lost a race, re-planning');
          await this.waitForCacheChange(seen, this.opts.catchUpMs);
          continue;
        }
        throw e;
      }
      const nextCfg = plan.nextCfgOpIndex !== undefined ? readNextCfg(results[plan.nextCfgOpIndex]) : undefined;
      // Wait until our cache shows the committed change, so the next plan starts from it.
      await this.waitForCondition(() => !makePlanSafe(makePlan)?.changed, this.opts.catchUpMs);
      let confirmed = false;
      if (nextCfg !== undefined && this.opts.confirmTimeoutMs > 0) {
        confirmed = await this.waitForCondition(() => (this.curCfg() ?? -1) >= nextCfg, this.opts.confirmTimeoutMs);
        if (!confirmed) {
          throw new ControllerError(
            'vswitchd-not-confirmed',
            `ovsdb: change committed but ovs-vswitchd did not apply it in time${kv({ ...fields, next_cfg: nextCfg, cur_cfg: this.curCfg() ?? 'none', timeoutMs: this.opts.confirmTimeoutMs })}`,
            { retriable: true },
          );
        }
      }
      if (confirmed && this.opts.prepareOutputPort && 'createsOutputPort' in plan && plan.createsOutputPort && plan.outputPort) {
        await prepareCapturePort(plan.outputPort).catch((e: Error) =>
          this.log.warn({ port: plan.outputPort, err: e.message }, 'could not bring the capture port up with IPv6 disabled'),
        );
      }
      return { changed: true, summary: plan.summary, attempts: attempt, nextCfg, confirmed, plan };
    }
    throw new ControllerError('conflict', `ovsdb: gave up after concurrent changes${kv({ ...fields, attempts: this.opts.maxAttempts })}`, {
      retriable: true,
      cause: lastError,
    });
  }

  private curCfg(): number | undefined {
    for (const row of this.session.tables().get('Open_vSwitch')?.values() ?? []) {
      const v = optionalAtom<number>(row.cur_cfg);
      if (typeof v === 'number') return v;
    }
    return undefined;
  }

  private waitForCacheChange(seen: number, timeoutMs: number): Promise<boolean> {
    return this.waitForCondition(() => this.changes !== seen, timeoutMs);
  }

  /** Waits until `cond` holds, re-checking after every cache change; false on timeout. */
  private waitForCondition(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (cond()) done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (v: boolean) => {
        clearTimeout(timer);
        this.off('cache-change', check);
        resolve(v);
      };
      this.on('cache-change', check);
    });
  }
}

function makePlanSafe(makePlan: () => Plan | RemovalPlan): Plan | RemovalPlan | undefined {
  try {
    return makePlan();
  } catch {
    return undefined;
  }
}

function isConflict(e: unknown): boolean {
  if (e instanceof OvsdbTimedOutError) return true;
  return e instanceof OvsdbTransactionError && e.failures.some((f) => f.kind === 'timed-out');
}

function readNextCfg(result: unknown): number | undefined {
  const rows = (result as { rows?: { next_cfg?: unknown }[] } | undefined)?.rows;
  const v = rows?.[0]?.next_cfg;
  return typeof v === 'number' ? v : undefined;
}

/**
 * Brings the capture port up with IPv6 disabled, so the host adds no router solicitations, DAD or
 * MLD frames of its own to the mirrored traffic.
 */
export async function prepareCapturePort(ifname: string): Promise<void> {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(ifname)) throw new ControllerError('bad-ifname', `capture: invalid interface name${kv({ interface: ifname })}`);
  // no IPv6 on the capture port: its own router and neighbour solicitations would be captured as
  // traffic. The sysctl needs root; without it (the systemd unit: CAP_NET_ADMIN only) netlink can
  // still stop the kernel from giving the port a link-local address.
  await writeFile(`/proc/sys/net/ipv6/conf/${ifname}/disable_ipv6`, '1').catch(() => undefined);
  await execFileAsync('ip', ['link', 'set', 'dev', ifname, 'addrgenmode', 'none']).catch(() => undefined);
  await execFileAsync('ip', ['link', 'set', 'dev', ifname, 'up']);
}
