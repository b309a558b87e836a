/**
 * The daemons' operability endpoint: GET /metrics (Prometheus text), /healthz (200 while live) and
 * /readyz (200 when ready, else 503 with a JSON body saying what is not). startHttpEndpoint takes
 * a health function and a metrics text function, so the agent and the pipeline (`mirrorflow
 * pipeline --metrics`) serve the same paths the same way; `area` names the daemon in errors.
 * The agent is ready when OVSDB is connected, its mirrors applied and the capture open
 * (evaluateReadiness). Bound to 127.0.0.1 unless configured otherwise.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatListenAddress, parseListenAddress } from '../config/agent-config.js';
import { MirrorflowError, kv } from '../errors.js';

export interface HealthReport {
  live: boolean;
  ready: boolean;
  /** Shown in the /healthz and /readyz bodies (e.g. { notReady: ['ovsdb'], ovsdb: 'connecting' }). */
  detail: Record<string, unknown>;
}
export type AgentHealth = HealthReport;

/** What /metrics serves: Prometheus text, built when scraped. */
export interface MetricsSource {
  metricsText(): Promise<string>;
  readonly contentType: string;
}

export interface HttpEndpointOptions {
  /** HOST:PORT ([IPv6]:PORT; port 0 picks a free one). */
  address: string;
  metrics: MetricsSource;
  health: () => HealthReport;
  /** The daemon, for messages and error codes: `<area>: cannot listen on metrics address (…)` (default agent). */
  area?: string;
}
export type AgentHttpOptions = Omit<HttpEndpointOptions, 'area'>;

export interface HttpEndpoint {
  /** The address actually bound, HOST:PORT. */
  address: string;
  close(): Promise<void>;
}
export type AgentHttp = HttpEndpoint;

export class HttpEndpointError extends MirrorflowError {}
export { HttpEndpointError as AgentHttpError };

/** What the agent reports for readiness: each part and, when not ready, which parts are missing. */
export function evaluateReadiness(state: { ovsdbConnected: boolean; mirrorsApplied: boolean; captureOpen: boolean; live?: boolean }): AgentHealth {
  const notReady: string[] = [];
  if (!state.ovsdbConnected) notReady.push('ovsdb');
  if (!state.mirrorsApplied) notReady.push('mirrors');
  if (!state.captureOpen) notReady.push('capture');
  return {
    live: state.live ?? true,
    ready: notReady.length === 0,
    detail: {
      ovsdb: state.ovsdbConnected ? 'connected' : 'disconnected',
      mirrors: state.mirrorsApplied ? 'applied' : 'not applied',
      capture: state.captureOpen ? 'open' : 'closed',
      ...(notReady.length ? { notReady } : {}),
    },
  };
}

function send(res: ServerResponse, status: number, body: string, contentType: string, head: boolean): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(head ? undefined : body);
}

function json(res: ServerResponse, status: number, value: unknown, head: boolean): void {
  send(res, status, `${JSON.stringify(value)}\n`, 'application/json; charset=utf-8', head);
}

/** The agent's endpoint (startHttpEndpoint with area `agent`). */
export function startAgentHttp(o: AgentHttpOptions): Promise<AgentHttp> {
  return startHttpEndpoint({ ...o, area: 'agent' });
}

/** Starts the endpoint; rejects with one clear error when the address is bad or cannot be bound. */
export async function startHttpEndpoint(o: HttpEndpointOptions): Promise<HttpEndpoint> {
  const area = o.area ?? 'agent';
  const parsed = parseListenAddress(o.address);
  if (!parsed) throw new HttpEndpointError(`${area}-http`, `${area}: invalid metrics address, expected HOST:PORT${kv({ address: o.address })}`);

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      json(res, 405, { error: 'method not allowed' }, false);
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/metrics': {
        const text = await o.metrics.metricsText();
        send(res, 200, text, o.metrics.contentType, head);
        return;
      }
      case '/healthz': {
        const h = o.health();
        json(res, h.live ? 200 : 503, { status: h.live ? 'live' : 'not live', ...h.detail }, head);
        return;
      }
      case '/readyz': {
        const h = o.health();
        json(res, h.ready ? 200 : 503, { status: h.ready ? 'ready' : 'not ready', ...h.detail }, head);
        return;
      }
      case '/':
        send(res, 200, `mirrorflow ${area}: /metrics /healthz /readyz\n`, 'text/plain; charset=utf-8', head);
        return;
      default:
        json(res, 404, { error: 'not found', paths: ['/metrics', '/healthz', '/readyz'] }, head);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) json(res, 500, { error: (e as Error).message }, false);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(
        new HttpEndpointError(`${area}-http-listen`, `${area}: cannot listen on metrics address${kv({ address: o.address, reason: e.code ?? e.message })}`, {
          cause: e,
          details: { address: o.address, reason: e.code },
        }),
      );
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host: parsed.host, port: parsed.port, exclusive: true });
  });

  const bound = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    address: formatListenAddress(bound.address, bound.port),
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
