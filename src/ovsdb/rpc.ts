/**
 * JSON-RPC 1.0 as OVSDB uses it (RFC 7047 §4), over any Duplex byte stream (a socket, or a
 * PassThrough pair in tests): request ids and the pending map, notifications, answers to the
 * server's `echo`, our own echo as inactivity probe, and write backpressure.
 *
 *   request       {"method": M, "params": [...], "id": <non-null>}
 *   response      {"result": R, "error": null | E, "id": <same id>}
 *   notification  {"method": M, "params": [...], "id": null}
 *
 * No sockets here: the stream comes in, timers can be injected.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { JsonFramer } from './framing.js';
import { OvsdbCanceledError, OvsdbDisconnectedError, OvsdbRpcError, OvsdbTimeoutError } from './errors.js';

export interface LoggerLike {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

export const silentLogger: LoggerLike = { debug() {}, info() {}, warn() {}, error() {} };

export interface RpcTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: RpcTimers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface RpcSessionOptions {
  /** Names the peer in error messages (e.g. the db url). */
  peer?: string;
  maxMessageBytes?: number;
  /** Send an echo after this long without receiving anything; drop after twice this. 0 disables. */
  probeIntervalMs?: number;
  /** Default per-request timeout; 0 or undefined disables. */
  requestTimeoutMs?: number;
  timers?: RpcTimers;
  logger?: LoggerLike;
}

interface Pending {
  method: string;
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: unknown;
}

export interface RpcSessionEvents {
  notification: [method: string, params: unknown];
  close: [reason: Error];
}

/**
 * One JSON-RPC session over one stream. Emits 'notification' (method, params) for server
 * notifications (update, update2, update3, locked, stolen, ...) and 'close' (reason) once when the
 * stream ends, errors, sends garbage, or the probe times out. Pending requests then fail with
 * OvsdbDisconnectedError (retriable).
 */
export class JsonRpcSession extends EventEmitter<RpcSessionEvents> {
  readonly peer: string;
  private readonly stream: Duplex;
  private readonly framer: JsonFramer;
  private readonly timers: RpcTimers;
  private readonly logger: LoggerLike;
  private readonly probeIntervalMs: number;
  private readonly requestTimeoutMs: number;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private queue: string[] = [];
  private blocked = false;
  private closedReason: Error | undefined;
  private lastRxMs: number;
  private probing = false;
  private probeTimer: unknown;
  /** Bytes written to the stream, and messages held back by backpressure (for tests/metrics). */
  bytesWritten = 0;

  constructor(stream: Duplex, opts: RpcSessionOptions = {}) {
    super();
    this.stream = stream;
    this.peer = opts.peer ?? 'stream';
    this.framer = new JsonFramer(opts.maxMessageBytes === undefined ? {} : { maxMessageBytes: opts.maxMessageBytes });
    this.timers = opts.timers ?? realTimers;
    this.logger = opts.logger ?? silentLogger;
    this.probeIntervalMs = opts.probeIntervalMs ?? 0;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 0;
    this.lastRxMs = this.timers.now();

    stream.on('data', (chunk: Buffer | string) => this.onData(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
    stream.on('end', () => this.close(new OvsdbDisconnectedError('connection closed by peer', { db: this.peer })));
    stream.on('close', () => this.close(new OvsdbDisconnectedError('connection closed', { db: this.peer })));
    stream.on('error', (err: Error) => this.close(new OvsdbDisconnectedError('connection error', { db: this.peer, cause: (err as NodeJS.ErrnoException).code ?? err.message }, err)));
    stream.on('drain', () => this.flush());
    if (this.probeIntervalMs > 0) this.armProbe(this.probeIntervalMs);
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** Messages waiting for 'drain'. */
  get queuedMessages(): number {
    return this.queue.length;
  }

  get pendingRequests(): number {
    return this.pending.size;
  }

  /** Sends a request; `id` can be passed to `cancel`-style notifications. */
  request(method: string, params: unknown, opts: { timeoutMs?: number } = {}): { id: number; result: Promise<unknown> } {
    const id = this.nextId++;
    const result = new Promise<unknown>((resolve, reject) => {
      if (this.closedReason) {
        reject(this.disconnectedFor(method, this.closedReason));
        return;
      }
      const timeoutMs = opts.timeoutMs ?? this.requestTimeoutMs;
      const p: Pending = { method, resolve, reject, timer: undefined };
      if (timeoutMs > 0) {
        p.timer = this.timers.setTimeout(() => {
          if (this.pending.get(id) === p) {
            this.pending.delete(id);
            reject(new OvsdbTimeoutError(method, timeoutMs));
          }
        }, timeoutMs);
      }
      this.pending.set(id, p);
      this.send({ method, params, id });
    });
    return { id, result };
  }

  call(method: string, params: unknown, opts: { timeoutMs?: number } = {}): Promise<unknown> {
    return this.request(method, params, opts).result;
  }

  /**
   * Cancels a pending request: sends the RFC 7047 `cancel` notification and fails the local call
   * with OvsdbCanceledError at once (ovsdb-server may drop the request without replying; a late
   * reply is ignored). Returns false when no such request is pending.
   */
  cancel(id: number): boolean {
    const p = this.pending.get(id);
    if (!p) return false;
    this.pending.delete(id);
    if (p.timer !== undefined) this.timers.clearTimeout(p.timer);
    this.notify('cancel', [id]);
    p.reject(new OvsdbCanceledError(p.method, id));
    return true;
  }

  notify(method: string, params: unknown): void {
    if (!this.closedReason) this.send({ method, params, id: null });
  }

  /** Ends the session: pending requests fail with a retriable OvsdbDisconnectedError. Idempotent. */
  close(reason: Error = new OvsdbDisconnectedError('connection closed by client', { db: this.peer })): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    if (this.probeTimer !== undefined) this.timers.clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.queue = [];
    for (const p of pending) {
      if (p.timer !== undefined) this.timers.clearTimeout(p.timer);
      p.reject(this.disconnectedFor(p.method, reason));
    }
    this.stream.destroy();
    this.emit('close', reason);
  }

  private disconnectedFor(method: string, reason: Error): Error {
    if (reason instanceof OvsdbDisconnectedError) {
      return new OvsdbDisconnectedError(`request failed: ${reason.message.replace(/^ovsdb: /, '').replace(/ \(.*$/, '')}`, { method, db: this.peer }, reason);
    }
    return new OvsdbDisconnectedError('request failed: connection dropped', { method, db: this.peer, cause: reason.message }, reason);
  }

  private send(msg: object): void {
    const text = JSON.stringify(msg);
    if (this.blocked || this.queue.length) {
      this.queue.push(text);
      return;
    }
    this.write(text);
  }

  private write(text: string): void {
    this.bytesWritten += Buffer.byteLength(text);
    if (!this.stream.write(text)) this.blocked = true;
  }

  private flush(): void {
    this.blocked = false;
    while (!this.blocked && this.queue.length && !this.closedReason) this.write(this.queue.shift()!);
  }

  private onData(chunk: Buffer): void {
    if (this.closedReason) return;
    this.lastRxMs = this.timers.now();
    this.probing = false;
    let messages: unknown[];
    try {
      messages = this.framer.push(chunk);
    } catch (err) {
      this.logger.warn({ db: this.peer, err: (err as Error).message }, 'ovsdb: dropping connection after bad input');
      this.close(err as Error);
      return;
    }
    for (const m of messages) {
      if (this.closedReason) return;
      this.onMessage(m);
    }
  }

  private onMessage(m: unknown): void {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) {
      this.logger.warn({ db: this.peer }, 'ovsdb: ignoring a JSON-RPC message that is not an object');
      return;
    }
    const msg = m as { method?: unknown; params?: unknown; id?: unknown; result?: unknown; error?: unknown };
    if (typeof msg.method === 'string') {
      if (msg.id === null || msg.id === undefined) {
        this.emit('notification', msg.method, msg.params);
        return;
      }
      if (msg.method === 'echo') this.send({ result: msg.params ?? [], error: null, id: msg.id });
      else this.send({ result: null, error: 'unknown method', id: msg.id });
      return;
    }
    const p = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
    if (!p) {
      this.logger.debug({ db: this.peer, id: msg.id }, 'ovsdb: reply to an unknown or expired request');
      return;
    }
    this.pending.delete(msg.id as number);
    if (p.timer !== undefined) this.timers.clearTimeout(p.timer);
    if (msg.error !== null && msg.error !== undefined) p.reject(new OvsdbRpcError(p.method, msg.error));
    else p.resolve(msg.result);
  }

  private armProbe(ms: number): void {
    this.probeTimer = this.timers.setTimeout(() => this.onProbeTimer(), Math.max(1, ms));
  }

  private onProbeTimer(): void {
    this.probeTimer = undefined;
    if (this.closedReason) return;
    const idleMs = this.timers.now() - this.lastRxMs;
    const interval = this.probeIntervalMs;
    if (this.probing && idleMs >= 2 * interval) {
      this.logger.warn({ db: this.peer, idleMs }, 'ovsdb: no reply to inactivity probe, dropping connection');
      this.close(new OvsdbDisconnectedError('inactivity probe timed out', { db: this.peer, idleMs }));
      return;
    }
    if (!this.probing && idleMs >= interval) {
      this.probing = true;
      this.logger.debug({ db: this.peer, idleMs }, 'ovsdb: idle, sending echo probe');
      this.request('echo', []).result.catch(() => {});
      this.armProbe(2 * interval - idleMs);
      return;
    }
    this.armProbe((this.probing ? 2 * interval : interval) - idleMs);
  }
}
