/**
 * OvsdbClient: transports (unix, tcp, ssl), reconnect with backoff, transact with typed errors,
 * locks, monitors feeding a RowCache, and cluster-leader selection.
 *
 *   url        unix:PATH | tcp:HOST:PORT | ssl:HOST:PORT   (IPv6 hosts in brackets; a comma-separated
 *              list of remotes is tried in turn)
 *   monitors   monitor_cond_since (update3, resumes from the last txn id after a reconnect) falling back
 *              to monitor_cond (update2) and monitor (update) when the server answers "unknown method".
 *              Re-established on every reconnect; the cache reconciles when it cannot resume.
 *   leaderOnly after connecting, the _Server database's Database table tells whether a clustered
 *              database is served by the leader; if not, the client moves on to the next remote.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { ConfigError, kv } from '../errors.js';
import { RowCache } from './cache.js';
import { optionalAtom } from './datum.js';
import {
  OvsdbDisconnectedError,
  OvsdbError,
  OvsdbRpcError,
  OvsdbUnreachableError,
  failureKind,
  transactionError,
  type TransactionFailure,
} from './errors.js';
import type { Condition, Operation } from './ops.js';
import { JsonRpcSession, silentLogger, type LoggerLike } from './rpc.js';
import { parseSchema, type DbSchema } from './schema.js';

export type MonitorMethod = 'auto' | 'monitor_cond_since' | 'monitor_cond' | 'monitor';
export type ConcreteMonitorMethod = Exclude<MonitorMethod, 'auto'>;

export interface OvsdbSslOptions {
  privateKeyFile: string;
  certificateFile: string;
  caCertFile: string;
}

export interface OvsdbClientOptions {
  url: string;
  ssl?: OvsdbSslOptions;
  /** Echo probe after this much silence, drop after twice it. Default 5000; 0 disables. */
  probeIntervalMs?: number;
  /** Reconnect after a lost connection. Default true. */
  reconnect?: boolean;
  /** Reconnect backoff bounds (exponential, with jitter). Defaults 100 and 8000. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** Per-request timeout. Default 60000; 0 disables. */
  requestTimeoutMs?: number;
  /** Time allowed for one TCP/TLS/unix connect. Default 10000. */
  connectTimeoutMs?: number;
  maxMessageBytes?: number;
  /** Only stay on a server where the clustered databases we use are served by the leader. Default true. */
  leaderOnly?: boolean;
  /** Database the leader check applies to, in addition to monitored ones (default: all clustered dbs). */
  database?: string;
  /** Default monitor method. Default 'auto'. */
  monitorMethod?: MonitorMethod;
  logger?: LoggerLike;
}

export type OvsdbRemote = { kind: 'unix'; path: string; text: string } | { kind: 'tcp' | 'ssl'; host: string; port: number; text: string };

/** Parses `unix:PATH`, `tcp:HOST:PORT`, `ssl:HOST:PORT` (comma-separated list). Throws ConfigError. */
export function parseOvsdbUrl(url: string): OvsdbRemote[] {
  const expected = 'unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT (IPv6 host in brackets), comma-separated';
  const bad = (why: string) => new ConfigError(`ovsdb: bad database url${kv({ url, problem: why, expected })}`, { url });
  const parts = url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!parts.length) throw bad('empty');
  return parts.map((text): OvsdbRemote => {
    const m = /^(unix|tcp|ssl):(.*)$/.exec(text);
    if (!m) throw bad(`unknown scheme in ${text}`);
    const kind = m[1] as 'unix' | 'tcp' | 'ssl';
    const rest = m[2]!;
    if (kind === 'unix') {
      if (!rest) throw bad('unix: needs a socket path');
      return { kind, path: rest, text };
    }
    const hp = /^\[([0-9a-fA-F:.%a-zA-Z]+)\]:(\d+)$/.exec(rest) ?? /^([^:[\]]+):(\d+)$/.exec(rest);
    if (!hp) throw bad(`${kind}: needs HOST:PORT in ${text}`);
    const port = Number(hp[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`port out of range in ${text}`);
    return { kind, host: hp[1]!, port, text };
  });
}

export interface MonitorTableRequest {
  columns?: string[];
  where?: Condition[];
}

export type OperationResult = Record<string, unknown>;

interface MonitorState {
  id: string;
  db: string;
  tables: Record<string, MonitorTableRequest>;
  requested: MonitorMethod;
  method: ConcreteMonitorMethod | undefined;
  lastTxnId: string | undefined;
  cache: RowCache;
  internal: boolean;
  /** Full snapshots loaded and incremental resumes (monitor_cond_since found=true), for observability. */
  snapshots: number;
  resumes: number;
}

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';
const SERVER_MONITOR_ID = 'mirrorflow-_Server';

/** A running monitor: its cache stays in sync across reconnects until cancel(). */
export class MonitorHandle {
  constructor(
    private readonly client: OvsdbClient,
    private readonly state: MonitorState,
  ) {}
  get id(): string {
    return this.state.id;
  }
  get db(): string {
    return this.state.db;
  }
  get cache(): RowCache {
    return this.state.cache;
  }
  /** The method the server accepted (after fallbacks). */
  get method(): ConcreteMonitorMethod | undefined {
    return this.state.method;
  }
  get lastTxnId(): string | undefined {
    return this.state.lastTxnId;
  }
  /** How many times the cache was (re)loaded from a full snapshot / resumed from lastTxnId. */
  get snapshots(): number {
    return this.state.snapshots;
  }
  get resumes(): number {
    return this.state.resumes;
  }
  /** Stops the monitor (monitor_cancel when connected). */
  cancel(): Promise<void> {
    return this.client.cancelMonitor(this.state.id);
  }
}

export interface OvsdbClientEvents {
  connected: [remote: string];
  disconnected: [reason: Error];
  reconnected: [remote: string];
  locked: [lockId: string];
  stolen: [lockId: string];
  closed: [];
}

type State = 'connecting' | 'connected' | 'waiting' | 'closed';

export class OvsdbClient extends EventEmitter<OvsdbClientEvents> {
  readonly url: string;
  private readonly remotes: OvsdbRemote[];
  private readonly opts: OvsdbClientOptions;
  private readonly logger: LoggerLike;
  private state: State = 'connecting';
  private session: JsonRpcSession | undefined;
  private stream: Duplex | undefined;
  private remoteIndex = 0;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly monitors = new Map<string, MonitorState>();
  private readonly locks = new Set<string>();
  private schemas = new Map<string, DbSchema>();
  private nextMonitor = 1;

  private constructor(opts: OvsdbClientOptions, remotes: OvsdbRemote[]) {
    super();
    this.url = opts.url;
    this.opts = opts;
    this.remotes = remotes;
    this.logger = opts.logger ?? silentLogger;
  }

  /**
   * Connects (trying each remote once). Rejects with OvsdbUnreachableError (code 'ovsdb-unreachable')
   * when none works, or ConfigError for a bad url / unreadable ssl files.
   */
  static async connect(opts: OvsdbClientOptions): Promise<OvsdbClient> {
    const remotes = parseOvsdbUrl(opts.url);
    if (remotes.some((r) => r.kind === 'ssl') && !opts.ssl) {
      throw new ConfigError(`ovsdb: ssl remote needs ssl options${kv({ url: opts.url, expected: 'ssl.privateKeyFile, ssl.certificateFile, ssl.caCertFile' })}`);
    }
    const client = new OvsdbClient(opts, remotes);
    let last: unknown;
    for (let i = 0; i < remotes.length; i++) {
      try {
        await client.establish(i);
        client.emit('connected', remotes[i]!.text);
        return client;
      } catch (err) {
        if (err instanceof ConfigError) throw err;
        last = err;
        client.logger.debug({ remote: remotes[i]!.text, err: (err as Error).message }, 'ovsdb: connect attempt failed');
      }
    }
    client.state = 'closed';
    throw new OvsdbUnreachableError(opts.url, last);
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  /** The remote in use (or last tried). */
  get remote(): string {
    return this.remotes[this.remoteIndex]!.text;
  }

  // ------------------------------------------------------------------ requests

  async listDbs(): Promise<string[]> {
    return (await this.active('list_dbs').call('list_dbs', [])) as string[];
  }

  /** The parsed schema (cached for the current connection). */
  async getSchema(db: string): Promise<DbSchema> {
    const cached = this.schemas.get(db);
    if (cached) return cached;
    const schema = parseSchema(await this.active('get_schema').call('get_schema', [db]));
    this.schemas.set(db, schema);
    return schema;
  }

  async echo(...args: unknown[]): Promise<unknown> {
    return this.active('echo').call('echo', args);
  }

  /** Sends a transact; the id can be given to cancel(). */
  startTransact(db: string, ops: readonly Operation[], opts: { timeoutMs?: number } = {}): { requestId: number; result: Promise<OperationResult[]> } {
    let session: JsonRpcSession;
    try {
      session = this.active('transact');
    } catch (err) {
      return { requestId: -1, result: Promise.reject(err) };
    }
    const req = session.request('transact', [db, ...ops], opts);
    return { requestId: req.id, result: req.result.then((r) => checkTransactResult(db, ops, r)) };
  }

  /**
   * Runs operations as one transaction. Throws OvsdbTransactionError (code 'ovsdb-transaction',
   * with kind / index / op / error / details, subclasses for constraint and referential integrity
   * violations and timeouts) when an operation or the commit failed.
   */
  transact(db: string, ops: readonly Operation[], opts: { timeoutMs?: number } = {}): Promise<OperationResult[]> {
    return this.startTransact(db, ops, opts).result;
  }

  /**
   * Cancels a pending request (e.g. a transact blocked in a `wait`): the server gets a `cancel`
   * notification and the call fails at once with OvsdbCanceledError. Returns false if not pending.
   */
  cancel(requestId: number): boolean {
    return this.session?.cancel(requestId) ?? false;
  }

  /** Requests a lock; true when granted now, false when queued (a 'locked' event follows). */
  async lock(id: string): Promise<boolean> {
    this.locks.add(id);
    const r = (await this.active('lock').call('lock', [id])) as { locked?: boolean };
    return r?.locked === true;
  }

  /** Takes a lock from its owner (who gets 'stolen'). */
  async steal(id: string): Promise<void> {
    this.locks.add(id);
    await this.active('steal').call('steal', [id]);
  }

  async unlock(id: string): Promise<void> {
    this.locks.delete(id);
    await this.active('unlock').call('unlock', [id]);
  }

  // ------------------------------------------------------------------ monitors

  /**
   * Monitors tables of `db` into a RowCache. Resolves once the initial snapshot is in the cache.
   * `where` needs monitor_cond or newer (plain `monitor` cannot filter).
   */
  async monitor(db: string, tables: Record<string, MonitorTableRequest>, opts: { method?: MonitorMethod } = {}): Promise<MonitorHandle> {
    const session = this.active('monitor');
    const schema = await this.getSchema(db);
    const columns: Record<string, string[] | undefined> = {};
    for (const [t, req] of Object.entries(tables)) columns[t] = req.columns;
    const state: MonitorState = {
      id: `mirrorflow-monitor-${this.nextMonitor++}`,
      db,
      tables,
      requested: opts.method ?? this.opts.monitorMethod ?? 'auto',
      method: undefined,
      lastTxnId: undefined,
      cache: new RowCache({ schema, columns }),
      internal: false,
      snapshots: 0,
      resumes: 0,
    };
    this.monitors.set(state.id, state);
    try {
      await this.startMonitor(session, state);
    } catch (err) {
      this.monitors.delete(state.id);
      throw err;
    }
    return new MonitorHandle(this, state);
  }

  /** Used by MonitorHandle.cancel(). */
  async cancelMonitor(id: string): Promise<void> {
    if (!this.monitors.delete(id)) return;
    if (this.state !== 'connected' || !this.session) return;
    await this.session.call('monitor_cancel', [id]).catch((err: unknown) => {
      if (!(err instanceof OvsdbDisconnectedError)) throw err;
    });
  }

  // ------------------------------------------------------------------ lifecycle

  /** Stops everything: the connection, reconnects, probes and timers. */
  async close(): Promise<void> {
    if (this.state === 'closed' && !this.session) return;
    this.state = 'closed';
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const stream = this.stream;
    this.session?.close(new OvsdbDisconnectedError('client closed', { db: this.url }));
    this.session = undefined;
    this.stream = undefined;
    if (stream && !stream.closed) await new Promise<void>((r) => stream.once('close', () => r()));
    this.emit('closed');
  }

  private active(method: string): JsonRpcSession {
    if (this.state !== 'connected' || !this.session || this.session.closed) {
      throw new OvsdbDisconnectedError(this.state === 'closed' ? 'client is closed' : 'not connected', { db: this.url, method });
    }
    return this.session;
  }

  /** Opens remote `index`, checks leadership, restores locks and monitors. Throws on failure. */
  private async establish(index: number): Promise<void> {
    this.state = 'connecting';
    this.remoteIndex = index;
    const remote = this.remotes[index]!;
    const stream = await openStream(remote, this.opts.ssl, this.opts.connectTimeoutMs ?? 10_000);
    if ((this.state as State) === 'closed') {
      stream.destroy();
      throw new OvsdbDisconnectedError('client closed while connecting', { db: remote.text });
    }
    const session = new JsonRpcSession(stream, {
      peer: remote.text,
      probeIntervalMs: this.opts.probeIntervalMs ?? 5000,
      requestTimeoutMs: this.opts.requestTimeoutMs ?? 60_000,
      ...(this.opts.maxMessageBytes === undefined ? {} : { maxMessageBytes: this.opts.maxMessageBytes }),
      logger: this.logger,
    });
    this.session = session;
    this.stream = stream;
    this.schemas = new Map();
    session.on('notification', (method, params) => this.onNotification(session, method, params));
    session.on('close', (reason) => this.onSessionClose(session, reason));
    try {
      if (this.opts.leaderOnly ?? true) await this.checkLeader(session);
      for (const id of this.locks) {
        const r = (await session.call('lock', [id])) as { locked?: boolean };
        if (r?.locked) this.emit('locked', id);
      }
      for (const m of [...this.monitors.values()]) {
        if (m.internal) continue;
        m.cache.setSchema(await this.sessionSchema(session, m.db));
        await this.startMonitor(session, m);
      }
      if (session.closed) throw new OvsdbDisconnectedError('connection lost while connecting', { db: remote.text });
    } catch (err) {
      if (this.session === session) {
        this.session = undefined;
        this.stream = undefined;
      }
      session.close(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
    this.state = 'connected';
    this.attempt = 0;
    this.logger.info({ remote: remote.text }, 'ovsdb: connected');
  }

  private async sessionSchema(session: JsonRpcSession, db: string): Promise<DbSchema> {
    const cached = this.schemas.get(db);
    if (cached) return cached;
    const schema = parseSchema(await session.call('get_schema', [db]));
    this.schemas.set(db, schema);
    return schema;
  }

  private onSessionClose(session: JsonRpcSession, reason: Error): void {
    if (session !== this.session) return;
    this.session = undefined;
    this.stream = undefined;
    if (this.state !== 'connected') return; // establish() sees the failure itself
    this.state = 'waiting';
    this.logger.warn({ remote: this.remote, reason: reason.message }, 'ovsdb: connection lost');
    this.emit('disconnected', reason);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.state === 'closed') return;
    if (this.opts.reconnect === false) {
      this.state = 'closed';
      this.emit('closed');
      return;
    }
    const minMs = this.opts.backoffMinMs ?? 100;
    const maxMs = Math.max(minMs, this.opts.backoffMaxMs ?? 8000);
    const base = Math.min(maxMs, minMs * 2 ** Math.min(this.attempt, 30));
    const delayMs = Math.round(base / 2 + (Math.random() * base) / 2);
    this.attempt++;
    this.state = 'waiting';
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.state === 'closed') return;
      const index = (this.remoteIndex + 1) % this.remotes.length;
      this.establish(index).then(
        () => {
          this.emit('connected', this.remote);
          this.emit('reconnected', this.remote);
        },
        (err: unknown) => {
          if (this.state === 'closed') return;
          this.logger.debug({ remote: this.remotes[index]!.text, err: (err as Error).message, attempt: this.attempt }, 'ovsdb: reconnect attempt failed');
          this.state = 'waiting';
          this.scheduleReconnect();
        },
      );
    }, delayMs);
  }

  private onNotification(session: JsonRpcSession, method: string, params: unknown): void {
    if (session !== this.session) return;
    const p = Array.isArray(params) ? params : [];
    switch (method) {
      case 'update':
      case 'update2':
      case 'update3': {
        const m = this.monitors.get(String(p[0]));
        if (!m) return;
        if (method === 'update3') {
          m.lastTxnId = typeof p[1] === 'string' ? p[1] : m.lastTxnId;
          m.cache.applyUpdates(p[2], 2);
        } else m.cache.applyUpdates(p[1], method === 'update' ? 1 : 2);
        if (m.internal) this.recheckLeader(session);
        return;
      }
      case 'locked':
        this.emit('locked', String(p[0]));
        return;
      case 'stolen':
        this.emit('stolen', String(p[0]));
        return;
      default:
        this.logger.debug({ method }, 'ovsdb: ignoring notification');
    }
  }

  private async startMonitor(session: JsonRpcSession, m: MonitorState): Promise<void> {
    const order: ConcreteMonitorMethod[] = m.requested === 'auto' ? ['monitor_cond_since', 'monitor_cond', 'monitor'] : [m.requested];
    for (let i = 0; i < order.length; i++) {
      const method = order[i]!;
      try {
        await this.sendMonitor(session, m, method);
        m.method = method;
        return;
      } catch (err) {
        if (err instanceof OvsdbRpcError && /unknown method/i.test(err.errorText) && i + 1 < order.length) {
          this.logger.info({ method, db: m.db }, 'ovsdb: monitor method not supported, falling back');
          continue;
        }
        throw err;
      }
    }
  }

  private async sendMonitor(session: JsonRpcSession, m: MonitorState, method: ConcreteMonitorMethod): Promise<void> {
    if (method === 'monitor') {
      const req: Record<string, { columns?: string[] }> = {};
      for (const [t, r] of Object.entries(m.tables)) {
        if (r.where?.length) throw new OvsdbError('ovsdb-monitor', `ovsdb: monitor conditions need monitor_cond${kv({ db: m.db, table: t })}`);
        req[t] = r.columns ? { columns: r.columns } : {};
      }
      const result = await session.call('monitor', [m.db, m.id, req]);
      m.lastTxnId = undefined;
      m.snapshots++;
      m.cache.resetFrom(result, 1);
      return;
    }
    const req: Record<string, { columns?: string[]; where?: Condition[] }[]> = {};
    for (const [t, r] of Object.entries(m.tables)) {
      const one: { columns?: string[]; where?: Condition[] } = {};
      if (r.columns) one.columns = r.columns;
      if (r.where) one.where = r.where;
      req[t] = [one];
    }
    if (method === 'monitor_cond') {
      const result = await session.call('monitor_cond', [m.db, m.id, req]);
      m.lastTxnId = undefined;
      m.snapshots++;
      m.cache.resetFrom(result, 2);
      return;
    }
    const since = m.method === 'monitor_cond_since' && m.cache.ready && m.lastTxnId ? m.lastTxnId : ZERO_UUID;
    const result = (await session.call('monitor_cond_since', [m.db, m.id, req, since])) as [boolean, string, unknown];
    if (!Array.isArray(result) || result.length < 3) throw new OvsdbError('ovsdb-protocol', `ovsdb: malformed monitor_cond_since reply${kv({ db: m.db })}`);
    const [found, lastTxnId, updates] = result;
    m.lastTxnId = lastTxnId;
    if (found === true && since !== ZERO_UUID) {
      this.logger.debug({ db: m.db, since }, 'ovsdb: monitor resumed');
      m.resumes++;
      m.cache.applyUpdates(updates, 2);
      m.cache.markReady();
    } else {
      m.snapshots++;
      m.cache.resetFrom(updates, 2);
    }
  }

  /** Monitors _Server.Database and throws if a clustered database we use is not on the leader. */
  private async checkLeader(session: JsonRpcSession): Promise<void> {
    let m = this.monitors.get(SERVER_MONITOR_ID);
    if (!m) {
      m = {
        id: SERVER_MONITOR_ID,
        db: '_Server',
        tables: { Database: { columns: ['name', 'model', 'connected', 'leader'] } },
        requested: 'auto',
        method: undefined,
        lastTxnId: undefined,
        cache: new RowCache(),
        internal: true,
        snapshots: 0,
        resumes: 0,
      };
      this.monitors.set(m.id, m);
    }
    m.method = undefined; // a new server: do not try to resume _Server
    try {
      await this.startMonitor(session, m);
    } catch (err) {
      if (err instanceof OvsdbRpcError && /unknown database/i.test(err.errorText)) {
        this.monitors.delete(SERVER_MONITOR_ID); // old server without _Server: nothing to check
        return;
      }
      throw err;
    }
    const bad = this.notLeader();
    if (bad) throw new OvsdbDisconnectedError('server is not the cluster leader', { remote: this.remote, database: bad });
  }

  private recheckLeader(session: JsonRpcSession): void {
    if (this.state !== 'connected') return;
    const bad = this.notLeader();
    if (bad) {
      this.logger.warn({ remote: this.remote, database: bad }, 'ovsdb: server lost cluster leadership, reconnecting');
      session.close(new OvsdbDisconnectedError('server is no longer the cluster leader', { remote: this.remote, database: bad }));
    }
  }

  /** Name of a clustered database we care about that this server does not lead, if any. */
  private notLeader(): string | undefined {
    const m = this.monitors.get(SERVER_MONITOR_ID);
    if (!m) return undefined;
    const wanted = new Set<string>();
    if (this.opts.database) wanted.add(this.opts.database);
    for (const mon of this.monitors.values()) if (!mon.internal) wanted.add(mon.db);
    for (const row of m.cache.table('Database').values()) {
      const name = String(row.name);
      if (wanted.size && !wanted.has(name)) continue;
      if (row.model !== 'clustered') continue;
      if (optionalAtom(row.leader) === false || optionalAtom(row.connected) === false) return name;
    }
    return undefined;
  }
}

/** Checks a transact reply: any op error or a trailing commit error → OvsdbTransactionError. */
export function checkTransactResult(db: string, ops: readonly Operation[], result: unknown): OperationResult[] {
  if (!Array.isArray(result)) throw new OvsdbError('ovsdb-protocol', `ovsdb: transact reply is not an array${kv({ db })}`);
  const failures: TransactionFailure[] = [];
  result.forEach((r, index) => {
    if (r && typeof r === 'object' && typeof (r as { error?: unknown }).error === 'string') {
      const e = r as { error: string; details?: unknown };
      failures.push({
        index,
        op: ops[index],
        commit: index >= ops.length,
        error: e.error,
        details: typeof e.details === 'string' ? e.details : e.details === undefined ? undefined : JSON.stringify(e.details),
        kind: failureKind(e.error),
      });
    }
  });
  if (!failures.length && result.length < ops.length) {
    failures.push({ index: result.length, op: ops[result.length], commit: false, error: 'missing result', details: `${result.length} results for ${ops.length} operations`, kind: 'other' });
  }
  if (failures.length) throw transactionError(db, failures);
  return result as OperationResult[];
}

function openStream(remote: OvsdbRemote, ssl: OvsdbSslOptions | undefined, timeoutMs: number): Promise<Duplex> {
  return new Promise<Duplex>((resolve, reject) => {
    let sock: net.Socket;
    const readyEvent = remote.kind === 'ssl' ? 'secureConnect' : 'connect';
    if (remote.kind === 'unix') sock = net.connect({ path: remote.path });
    else if (remote.kind === 'tcp') sock = net.connect({ host: remote.host, port: remote.port });
    else {
      let key: Buffer, cert: Buffer, ca: Buffer;
      try {
        key = readFileSync(ssl!.privateKeyFile);
        cert = readFileSync(ssl!.certificateFile);
        ca = readFileSync(ssl!.caCertFile);
      } catch (err) {
        reject(new ConfigError(`ovsdb: cannot read ssl file${kv({ url: remote.text, cause: (err as Error).message })}`));
        return;
      }
      // Like OVS: the peer must present a certificate signed by our CA; the host name is not checked.
      sock = tls.connect({ host: remote.host, port: remote.port, key, cert, ca, rejectUnauthorized: true, checkServerIdentity: () => undefined });
    }
    const timer = setTimeout(() => sock.destroy(Object.assign(new Error(`connect timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
    const onError = (err: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(tlsFriendly(err));
    };
    sock.once('error', onError);
    sock.once(readyEvent, () => {
      clearTimeout(timer);
      sock.off('error', onError);
      sock.setNoDelay?.(true);
      resolve(sock);
    });
  });
}

/** TLS verification failures get a readable message and keep their code. */
function tlsFriendly(err: Error): Error {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (/CERT|SIGNATURE|ISSUER|SELF_SIGNED/.test(code)) {
    return Object.assign(new Error(`tls: server certificate not trusted by our CA (${code})`, { cause: err }), { code });
  }
  return err;
}
