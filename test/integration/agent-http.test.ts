import { expect } from 'chai';
import { request } from 'node:http';
import { createAgentMetrics, type AgentMetrics } from '../../src/agent/metrics.js';
import { evaluateReadiness, startAgentHttp, type AgentHttp } from '../../src/agent/http-server.js';
import { parseExposition } from '../helpers/prometheus.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(address: string, path: string, method = 'GET'): Promise<Reply> {
  const [, host, port] = /^\[?(.*?)\]?:(\d+)$/.exec(address)!;
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('agent HTTP endpoint (/metrics, /healthz, /readyz)', () => {
  let metrics: AgentMetrics;
  let http: AgentHttp;
  const state = { ovsdbConnected: false, mirrorsApplied: false, captureOpen: false, live: true };

  before(async () => {
    metrics = createAgentMetrics();
    http = await startAgentHttp({ address: '127.0.0.1:0', metrics, health: () => evaluateReadiness(state) });
  });
  after(async () => {
    await http?.close();
  });

  it('binds the address given, port 0 giving a free port', () => {
    expect(http.address).to.match(/^127\.0\.0\.1:\d+$/);
    expect(http.address).not.to.equal('127.0.0.1:0');
  });

  it('/metrics is Prometheus text that parses, with the agent metrics and the process metrics', async () => {
    metrics.setLedger({
      frames: 1234, bytes: 99_000, decoded: 1230, undecodable: 4, undecodableByReason: { truncated: 4 }, pcapReceived: 1240, pcapDropped: 6, pcapIfDropped: 0,
      records: 50, flowsCreated: 40, evictions: 0, activeFlows: 12, firstFrameUs: 1, lastFrameUs: 2,
    });
    metrics.setMirrorTx('mirrorflow-br0', { packets: 1240 });
    const r = await get(http.address, '/metrics');
    expect(r.status).to.equal(200);
    expect(r.headers['content-type']).to.match(/^text\/plain; version=0\.0\.4/);
    const series = parseExposition(r.body);
    expect(series.get('mirrorflow_capture_frames_total')).to.equal(1234);
    expect(series.get('mirrorflow_capture_pcap_dropped_frames_total')).to.equal(6);
    expect(series.get('mirrorflow_capture_undecodable_frames_total{reason="truncated"}')).to.equal(4);
    expect(series.get('mirrorflow_mirror_tx_packets_total{mirror="mirrorflow-br0"}')).to.equal(1240);
    expect(series.get('mirrorflow_flows_active_flows')).to.equal(12);
    expect(series.get('mirrorflow_ovsdb_connected')).to.equal(0);
    expect(series.get('process_resident_memory_bytes')).to.be.greaterThan(0);
    const head = await get(http.address, '/metrics', 'HEAD');
    expect([head.status, head.body]).to.deep.equal([200, '']);
  });

  it('/readyz says what is not ready (503), then flips to 200 as the parts come up; /healthz follows liveness', async () => {
    let r = await get(http.address, '/readyz');
    expect(r.status).to.equal(503);
    expect(r.headers['content-type']).to.match(/^application\/json/);
    expect(JSON.parse(r.body)).to.deep.equal({ status: 'not ready', ovsdb: 'disconnected', mirrors: 'not applied', capture: 'closed', notReady: ['ovsdb', 'mirrors', 'capture'] });
    expect((await get(http.address, '/healthz')).status).to.equal(200);

    state.ovsdbConnected = true;
    state.mirrorsApplied = true;
    r = await get(http.address, '/readyz');
    expect([r.status, JSON.parse(r.body).notReady]).to.deep.equal([503, ['capture']]);

    state.captureOpen = true;
    r = await get(http.address, '/readyz');
    expect(r.status).to.equal(200);
    expect(JSON.parse(r.body)).to.deep.equal({ status: 'ready', ovsdb: 'connected', mirrors: 'applied', capture: 'open' });

    state.ovsdbConnected = false;
    expect((await get(http.address, '/readyz')).status).to.equal(503);
    state.live = false;
    r = await get(http.address, '/healthz');
    expect([r.status, JSON.parse(r.body).status]).to.deep.equal([503, 'not live']);
    state.live = true;
    state.ovsdbConnected = true;
  });

  it('other paths are 404, other methods 405', async () => {
    expect((await get(http.address, '/nope')).status).to.equal(404);
    const r = await get(http.address, '/metrics', 'POST');
    expect([r.status, r.headers.allow]).to.deep.equal([405, 'GET, HEAD']);
  });

  it('an address in use is one clear error naming it and the reason', async () => {
    let err: Error | undefined;
    try {
      const second = await startAgentHttp({ address: http.address, metrics, health: () => evaluateReadiness(state) });
      await second.close();
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.equal(`agent: cannot listen on metrics address (address=${http.address}, reason=EADDRINUSE)`);
    let bad: Error | undefined;
    await startAgentHttp({ address: '203.0.113.7:0', metrics, health: () => evaluateReadiness(state) }).then((h) => h.close(), (e: Error) => (bad = e));
    expect(bad?.message).to.equal('agent: cannot listen on metrics address (address=203.0.113.7:0, reason=EADDRNOTAVAIL)');
  });

  it('close() ends kept-alive connections and frees the port', async () => {
    const h = await startAgentHttp({ address: '127.0.0.1:0', metrics, health: () => evaluateReadiness(state) });
    const [, host, port] = /^(.*):(\d+)$/.exec(h.address)!;
    // a keep-alive client holding a connection open must not hold close() up
    const { Agent } = await import('node:http');
    const keep = new Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      request({ host, port: Number(port), path: '/healthz', agent: keep }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      })
        .on('error', reject)
        .end();
    });
    await h.close();
    keep.destroy();
    const again = await startAgentHttp({ address: h.address, metrics, health: () => evaluateReadiness(state) });
    expect(again.address).to.equal(h.address);
    await again.close();
  });
});
