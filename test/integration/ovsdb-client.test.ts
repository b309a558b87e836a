/**
 * OvsdbClient against a real, private ovsdb-server started here (temp dir, own sockets and ports).
 * Needs the openvswitch binaries (ovsdb-server, ovsdb-tool) and openssl.
 */
import { expect } from 'chai';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OvsdbClient, type MonitorHandle, type MonitorMethod } from '../../src/ovsdb/client.js';
import {
  OvsdbCanceledError,
  OvsdbConstraintViolationError,
  OvsdbDisconnectedError,
  OvsdbReferentialIntegrityError,
  OvsdbRpcError,
  OvsdbTimedOutError,
  OvsdbTransactionError,
  OvsdbUnreachableError,
} from '../../src/ovsdb/errors.js';
import { ConfigError } from '../../src/errors.js';
import { abortOp, assertOp, byUuid, commentOp, deleteOp, insertOp, mutateOp, selectOp, updateOp, waitOp } from '../../src/ovsdb/ops.js';
import { mapToRecord, namedUuid, setUuids, uuid, wireMap } from '../../src/ovsdb/datum.js';
import type { CacheRow } from '../../src/ovsdb/cache.js';
import { JsonFramer } from '../../src/ovsdb/framing.js';

const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';
const DB = 'Open_vSwitch';

// ---------------------------------------------------------------- a tiny local ovsdb-server starter

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(opts: net.NetConnectOpts): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(opts);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

class TestServer {
  child: ChildProcess | undefined;
  readonly sock: string;
  readonly ctl: string;
  constructor(
    readonly dir: string,
    readonly dbFile: string,
    readonly tcpPort: number,
    readonly extraArgs: string[] = [],
  ) {
    this.sock = join(dir, 'db.sock');
    this.ctl = join(dir, 'ovsdb-server.ctl');
  }

  static async create(dir: string, opts: { clustered?: boolean; extraArgs?: string[] } = {}): Promise<TestServer> {
    const dbFile = join(dir, 'conf.db');
    if (opts.clustered) execFileSync('ovsdb-tool', ['create-cluster', dbFile, SCHEMA, `unix:${join(dir, 'raft.sock')}`], { stdio: 'pipe' });
    else execFileSync('ovsdb-tool', ['create', dbFile, SCHEMA]);
    const srv = new TestServer(dir, dbFile, await freePort(), opts.extraArgs ?? []);
    await srv.start();
    return srv;
  }

  get tcpUrl(): string {
    return `tcp:127.0.0.1:${this.tcpPort}`;
  }
  get unixUrl(): string {
    return `unix:${this.sock}`;
  }

  async start(): Promise<void> {
    const args = [
      this.dbFile,
      `--remote=punix:${this.sock}`,
      `--remote=ptcp:${this.tcpPort}:127.0.0.1`,
      `--unixctl=${this.ctl}`,
      `--pidfile=${join(this.dir, 'ovsdb-server.pid')}`,
      `--log-file=${join(this.dir, 'ovsdb-server.log')}`,
      '--no-chdir',
      ...this.extraArgs,
    ];
    const child = spawn('ovsdb-server', args, { stdio: 'ignore' });
    this.child = child;
    let exited: number | null | undefined;
    child.once('exit', (code) => (exited = code));
    await waitFor(async () => {
      if (exited !== undefined) throw new Error(`ovsdb-server exited with ${exited}; see ${join(this.dir, 'ovsdb-server.log')}`);
      return existsSync(this.sock) && (await canConnect({ path: this.sock })) && (await canConnect({ host: '127.0.0.1', port: this.tcpPort }));
    }, 10_000, 'ovsdb-server to listen');
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await gone;
    this.child = undefined;
  }

  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }
}

/**
 * A scripted JSON-RPC peer for what a real ovsdb-server 3.1 will not do: answer "unknown method"
 * to newer monitor methods, or report a clustered database whose leader is elsewhere.
 */
class FakeOvsdbServer {
  readonly server: net.Server;
  readonly methods: string[] = [];
  constructor(
    readonly path: string,
    readonly opts: { unsupported: string[]; leader: boolean },
  ) {
    this.server = net.createServer((sock) => {
      const framer = new JsonFramer();
      sock.on('error', () => {});
      sock.on('data', (chunk) => {
        for (const msg of framer.push(chunk) as { method?: string; params: unknown[]; id: unknown }[]) {
          if (!msg.method || msg.id === null) continue;
          this.methods.push(`${msg.method}${msg.method.startsWith('monitor') ? ` ${String(msg.params[0])}` : ''}`);
          const reply = (result: unknown, error: unknown = null) => sock.write(JSON.stringify({ id: msg.id, result, error }));
          const db = msg.params[0];
          if (this.opts.unsupported.includes(msg.method)) reply(null, 'unknown method');
          else if (msg.method === 'echo') reply(msg.params);
          else if (msg.method === 'list_dbs') reply([DB, '_Server']);
          else if (msg.method === 'get_schema') reply({ name: db, version: '1.0.0', tables: { Bridge: { columns: { name: { type: 'string' } } } } });
          else if (db === '_Server') {
            const rows = { 'd0d0d0d0-0000-4000-8000-000000000001': { initial: { name: DB, model: 'clustered', connected: true, leader: this.opts.leader } } };
            reply(msg.method === 'monitor_cond_since' ? [false, '00000000-0000-0000-0000-000000000000', { Database: rows }] : { Database: rows });
          } else if (msg.method === 'monitor') reply({ Bridge: { 'b0b0b0b0-0000-4000-8000-000000000001': { new: { name: 'fake-br' } } } });
          else if (msg.method === 'monitor_cond') reply({ Bridge: { 'b0b0b0b0-0000-4000-8000-000000000001': { initial: { name: 'fake-br' } } } });
          else reply(null, 'unknown method');
        }
      });
    });
  }
  listen(): Promise<void> {
    return new Promise((r) => this.server.listen(this.path, () => r()));
  }
  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

// ---------------------------------------------------------------- helpers on the Open_vSwitch db

const errorOf = async (p: Promise<unknown>): Promise<unknown> => p.then(
  () => {
    throw new Error('expected a rejection');
  },
  (e: unknown) => e,
);

async function rootUuid(c: OvsdbClient): Promise<string> {
  const [sel] = await c.transact(DB, [selectOp('Open_vSwitch', [], ['_uuid'])]);
  const rows = (sel as { rows: { _uuid: [string, string] }[] }).rows;
  if (rows[0]) return rows[0]._uuid[1];
  const [ins] = await c.transact(DB, [insertOp('Open_vSwitch', {})]);
  return (ins as { uuid: [string, string] }).uuid[1];
}

/** Inserts a bridge attached to the root row (non-root rows that nothing references are garbage-collected). */
async function addBridge(c: OvsdbClient, root: string, name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await c.transact(DB, [
    insertOp('Bridge', { name, ...extra } as never, 'br'),
    mutateOp('Open_vSwitch', byUuid(root), [['bridges', 'insert', namedUuid('br')]]),
  ]);
  return (res[0] as { uuid: [string, string] }).uuid[1];
}

async function delBridge(c: OvsdbClient, root: string, brUuid: string): Promise<void> {
  await c.transact(DB, [mutateOp('Open_vSwitch', byUuid(root), [['bridges', 'delete', uuid(brUuid)]])]);
}

function bridgeByName(m: MonitorHandle, name: string): [string, CacheRow] | undefined {
  for (const e of m.cache.table('Bridge')) if (e[1].name === name) return e;
  return undefined;
}

function ovsdbToolTransact(dbFile: string, ops: unknown[]): void {
  execFileSync('ovsdb-tool', ['transact', dbFile, JSON.stringify([DB, ...ops])]);
}

// ---------------------------------------------------------------- tests

describe('ovsdb client against a real ovsdb-server', function () {
  this.timeout(60_000);
  let dir: string;
  let srv: TestServer;
  const clients: OvsdbClient[] = [];
  const track = (c: OvsdbClient) => (clients.push(c), c);
  let root: string;

  before(async () => {
    for (const bin of ['ovsdb-server', 'ovsdb-tool', 'openssl']) {
      try {
        execFileSync('which', [bin]);
      } catch {
        throw new Error(`precondition: ${bin} not found; install openvswitch-switch and openssl`);
      }
    }
    dir = mkdtempSync(join(tmpdir(), 'mf-ovsdb-client-'));
    srv = await TestServer.create(dir);
    const c = track(await OvsdbClient.connect({ url: srv.unixUrl }));
    root = await rootUuid(c);
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });

  after(async () => {
    await srv?.kill();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('connect', () => {
    it('lists databases and reads the schema over unix and tcp', async () => {
      for (const url of [srv.unixUrl, srv.tcpUrl]) {
        const c = track(await OvsdbClient.connect({ url }));
        expect(await c.listDbs()).to.include.members([DB, '_Server']);
        const schema = await c.getSchema(DB);
        expect(schema.name).to.equal(DB);
        const ports = schema.tables.get('Bridge')!.columns.get('ports')!;
        expect(ports.type.key.refTable).to.equal('Port');
        expect(ports.type.max).to.equal(Infinity);
        expect(await c.echo('hi')).to.deep.equal(['hi']);
      }
    });

    it('rejects the first failed connect with ovsdb-unreachable naming the url and cause', async () => {
      const url = `unix:${join(dir, 'nope.sock')}`;
      const err = await errorOf(OvsdbClient.connect({ url }));
      expect(err).to.be.instanceOf(OvsdbUnreachableError);
      expect((err as OvsdbUnreachableError).code).to.equal('ovsdb-unreachable');
      expect((err as Error).message).to.equal(`ovsdb: cannot connect (db=${url}, cause=ENOENT)`);
      const port = await freePort();
      const err2 = await errorOf(OvsdbClient.connect({ url: `tcp:127.0.0.1:${port}` }));
      expect((err2 as Error).message).to.equal(`ovsdb: cannot connect (db=tcp:127.0.0.1:${port}, cause=ECONNREFUSED)`);
    });

    it('rejects a bad url with a ConfigError naming it and what was expected', async () => {
      for (const url of ['http://x', 'tcp:host', 'tcp:[::1:6640', 'unix:', 'tcp:1.2.3.4:99999']) {
        const err = await errorOf(OvsdbClient.connect({ url }));
        expect(err, url).to.be.instanceOf(ConfigError);
        expect((err as Error).message).to.include(`url=${url}`).and.include('expected=');
      }
    });

    it('tries the remotes of a comma-separated list in turn', async () => {
      const c = track(await OvsdbClient.connect({ url: `unix:${join(dir, 'nope.sock')},${srv.tcpUrl}` }));
      expect(c.remote).to.equal(srv.tcpUrl);
      expect(await c.listDbs()).to.include(DB);
    });
  });

  describe('transact', () => {
    let c: OvsdbClient;
    beforeEach(async () => {
      c = track(await OvsdbClient.connect({ url: srv.unixUrl }));
    });

    it('insert, select, update, mutate, comment, delete', async () => {
      const br = await addBridge(c, root, 'tx-br0', { external_ids: wireMap({ a: '1' }) });
      const [sel] = await c.transact(DB, [selectOp('Bridge', byUuid(br), ['name', 'external_ids'])]);
      expect((sel as { rows: unknown[] }).rows).to.deep.equal([{ name: 'tx-br0', external_ids: ['map', [['a', '1']]] }]);
      const res = await c.transact(DB, [
        updateOp('Bridge', byUuid(br), { datapath_type: 'netdev' }),
        mutateOp('Bridge', byUuid(br), [['external_ids', 'insert', wireMap({ b: '2' })]]),
        commentOp('mirrorflow integration test'),
        selectOp('Bridge', byUuid(br), ['datapath_type', 'external_ids']),
      ]);
      expect(res[0]).to.deep.equal({ count: 1 });
      expect(res[1]).to.deep.equal({ count: 1 });
      const row = (res[3] as { rows: Record<string, unknown>[] }).rows[0]!;
      expect(row.datapath_type).to.equal('netdev');
      expect(mapToRecord(row.external_ids)).to.deep.equal({ a: '1', b: '2' });
      // delete: detach from root (garbage collection removes it), then delete explicitly is a no-op
      await delBridge(c, root, br);
      const [del] = await c.transact(DB, [deleteOp('Bridge', byUuid(br))]);
      expect(del).to.deep.equal({ count: 0 });
    });

    it('a failed wait is a typed "timed out" error carrying index, op and details', async () => {
      const br = await addBridge(c, root, 'tx-wait');
      const ops = [commentOp('x'), waitOp('Bridge', byUuid(br), ['name'], [{ name: 'not-this' }], '==', 0)];
      const err = await errorOf(c.transact(DB, ops));
      expect(err).to.be.instanceOf(OvsdbTimedOutError).and.instanceOf(OvsdbTransactionError);
      const e = err as OvsdbTransactionError;
      expect(e.code).to.equal('ovsdb-transaction');
      expect(e.kind).to.equal('timed-out');
      expect(e.index).to.equal(1);
      expect(e.op).to.deep.equal(ops[1]);
      expect(e.error).to.equal('timed out');
      expect(e.commit).to.equal(false);
      expect(e.message).to.match(/^ovsdb: transaction failed \(db=Open_vSwitch, op=1, opType=wait, table=Bridge, error="timed out"/);
      await delBridge(c, root, br);
    });

    it('abort and assert without the lock fail typed; assert with the lock passes', async () => {
      const aborted = (await errorOf(c.transact(DB, [commentOp('a'), abortOp()]))) as OvsdbTransactionError;
      expect(aborted).to.be.instanceOf(OvsdbTransactionError);
      expect(aborted.kind).to.equal('aborted');
      expect(aborted.index).to.equal(1);
      const notOwner = (await errorOf(c.transact(DB, [assertOp('tx_lock')]))) as OvsdbTransactionError;
      expect(notOwner.kind).to.equal('not-owner');
      expect(await c.lock('tx_lock')).to.equal(true);
      expect(await c.transact(DB, [assertOp('tx_lock'), commentOp('held')])).to.deep.equal([{}, {}]);
      await c.unlock('tx_lock');
    });

    it('constraint violations are typed: in an operation and at commit (duplicate index)', async () => {
      const enumErr = (await errorOf(c.transact(DB, [insertOp('Bridge', { name: 'tx-enum', fail_mode: 'bogus' })]))) as OvsdbTransactionError;
      expect(enumErr).to.be.instanceOf(OvsdbConstraintViolationError);
      expect(enumErr.kind).to.equal('constraint-violation');
      expect(enumErr.commit).to.equal(false);
      expect(enumErr.errorDetails).to.include('bogus');

      const br = await addBridge(c, root, 'tx-dup');
      const dupErr = (await errorOf(addBridge(c, root, 'tx-dup'))) as OvsdbTransactionError;
      expect(dupErr).to.be.instanceOf(OvsdbConstraintViolationError);
      expect(dupErr.commit).to.equal(true);
      expect(dupErr.index).to.equal(2); // one past the two operations
      expect(dupErr.op).to.equal(undefined);
      expect(dupErr.message).to.include('op=commit').and.include('error="constraint violation"');
      await delBridge(c, root, br);
    });

    it('a referential integrity violation is typed', async () => {
      const missingPort = '3e4fe86c-68bf-431b-b484-85649a654254';
      const err = (await errorOf(addBridge(c, root, 'tx-ref', { ports: uuid(missingPort) }))) as OvsdbTransactionError;
      expect(err).to.be.instanceOf(OvsdbReferentialIntegrityError);
      expect(err.kind).to.equal('referential-integrity-violation');
      expect(err.commit).to.equal(true);
      expect(err.errorDetails).to.include(missingPort);
    });

    it('a server-side JSON-RPC error is an OvsdbRpcError', async () => {
      const err = await errorOf(c.transact('NoSuchDb', [commentOp('x')]));
      expect(err).to.be.instanceOf(OvsdbRpcError);
      expect((err as OvsdbRpcError).errorText).to.match(/unknown database/);
    });

    it('cancel() cancels a transaction blocked in a wait', async () => {
      const br = await addBridge(c, root, 'tx-cancel');
      const { requestId, result } = c.startTransact(DB, [waitOp('Bridge', byUuid(br), ['name'], [{ name: 'other' }], '==', 30_000)]);
      const outcome = errorOf(result);
      await c.echo(); // the transact is at the server now
      expect(c.cancel(requestId)).to.equal(true);
      const err = await outcome;
      expect(err).to.be.instanceOf(OvsdbCanceledError);
      expect((err as OvsdbCanceledError).code).to.equal('ovsdb-canceled');
      expect(c.cancel(requestId)).to.equal(false);
      // the session is fine afterwards, and the wait did not block the bridge from changing
      await c.transact(DB, [updateOp('Bridge', byUuid(br), { external_ids: wireMap({ after: 'cancel' }) })]);
      await delBridge(c, root, br);
    });
  });

  describe('monitor', () => {
    for (const method of ['monitor_cond_since', 'monitor_cond', 'monitor'] as MonitorMethod[]) {
      it(`${method}: initial snapshot, then add / update / delete events`, async () => {
        const c = track(await OvsdbClient.connect({ url: srv.unixUrl, monitorMethod: method }));
        const pre = await addBridge(c, root, `mon-pre-${method}`);
        const m = await c.monitor(DB, { Bridge: { columns: ['name', 'external_ids', 'ports'] } });
        expect(m.method).to.equal(method);
        expect(m.cache.ready).to.equal(true);
        expect(m.cache.row('Bridge', pre)).to.deep.include({ name: `mon-pre-${method}`, external_ids: ['map', []], ports: ['set', []] });
        const events: string[] = [];
        m.cache.on('add', (t, _u, r) => events.push(`add ${t} ${String(r.name)}`));
        m.cache.on('update', (t, _u, r, o) => events.push(`update ${t} ${JSON.stringify(o.external_ids)} -> ${JSON.stringify(r.external_ids)}`));
        m.cache.on('delete', (t, _u, o) => events.push(`delete ${t} ${String(o.name)}`));

        const br = await addBridge(c, root, `mon-${method}`);
        // the server sends updates before the transact reply: the cache is current already
        expect(m.cache.row('Bridge', br)?.name).to.equal(`mon-${method}`);
        await c.transact(DB, [mutateOp('Bridge', byUuid(br), [['external_ids', 'insert', wireMap({ k: 'v' })]])]);
        await c.transact(DB, [mutateOp('Bridge', byUuid(br), [['external_ids', 'delete', wireMap({ k: 'v' })]])]);
        await delBridge(c, root, br);
        expect(events).to.deep.equal([
          `add Bridge mon-${method}`,
          `update Bridge ["map",[]] -> ["map",[["k","v"]]]`,
          `update Bridge ["map",[["k","v"]]] -> ["map",[]]`,
          `delete Bridge mon-${method}`,
        ]);
        await m.cancel();
        await addBridge(c, root, `mon-after-cancel-${method}`);
        expect(bridgeByName(m, `mon-after-cancel-${method}`)).to.equal(undefined);
        await delBridge(c, root, pre);
      });
    }

    it('monitor_cond filters rows with where', async () => {
      const c = track(await OvsdbClient.connect({ url: srv.unixUrl }));
      const m = await c.monitor(DB, { Bridge: { columns: ['name'], where: [['name', '==', 'mon-where-yes']] } });
      const yes = await addBridge(c, root, 'mon-where-yes');
      const no = await addBridge(c, root, 'mon-where-no');
      expect([...m.cache.table('Bridge').keys()]).to.deep.equal([yes]);
      await delBridge(c, root, yes);
      await delBridge(c, root, no);
    });
  });

  describe('locks', () => {
    it('lock / steal / unlock between two clients, with locked and stolen events', async () => {
      const a = track(await OvsdbClient.connect({ url: srv.unixUrl }));
      const b = track(await OvsdbClient.connect({ url: srv.tcpUrl }));
      const events: string[] = [];
      a.on('locked', (id) => events.push(`a locked ${id}`));
      a.on('stolen', (id) => events.push(`a stolen ${id}`));
      b.on('locked', (id) => events.push(`b locked ${id}`));
      b.on('stolen', (id) => events.push(`b stolen ${id}`));
      expect(await a.lock('mf_lock')).to.equal(true);
      await b.steal('mf_lock');
      await waitFor(() => events.includes('a stolen mf_lock'), 5000, 'stolen event');
      expect(await b.transact(DB, [assertOp('mf_lock')])).to.deep.equal([{}]);
      expect(((await errorOf(a.transact(DB, [assertOp('mf_lock')]))) as OvsdbTransactionError).kind).to.equal('not-owner');
      // a lost the lock (it is not queued again): unlock, then ask again once b lets go
      await a.unlock('mf_lock');
      await b.unlock('mf_lock');
      expect(await a.lock('mf_lock')).to.equal(true);
      await a.unlock('mf_lock');
      expect(events).to.have.members(['a stolen mf_lock', 'b locked mf_lock']); // the server also notifies the stealer
    });

    it('a queued lock is granted with a locked event when the owner unlocks', async () => {
      const a = track(await OvsdbClient.connect({ url: srv.unixUrl }));
      const b = track(await OvsdbClient.connect({ url: srv.unixUrl }));
      let bLocked = false;
      b.on('locked', (id) => (bLocked = id === 'mf_lock2'));
      expect(await a.lock('mf_lock2')).to.equal(true);
      expect(await b.lock('mf_lock2')).to.equal(false);
      await a.unlock('mf_lock2');
      await waitFor(() => bLocked, 5000, 'locked event');
      expect(await b.transact(DB, [assertOp('mf_lock2')])).to.deep.equal([{}]);
    });
  });

  describe('outages', () => {
    it('reconnects after SIGKILL + restart; the monitor catches up incl. a change made while down; calls in the outage fail typed', async () => {
      const c = track(await OvsdbClient.connect({ url: srv.unixUrl, backoffMinMs: 50, backoffMaxMs: 300 }));
      const m = await c.monitor(DB, { Bridge: { columns: ['name', 'external_ids'] } });
      const keep = await addBridge(c, root, 'out-keep');
      const doomed = await addBridge(c, root, 'out-doomed');
      const ev: string[] = [];
      c.on('disconnected', () => ev.push('disconnected'));
      c.on('reconnected', () => ev.push('reconnected'));
      m.cache.on('add', (_t, _u, r) => ev.push(`add ${String(r.name)}`));
      m.cache.on('delete', (_t, _u, r) => ev.push(`delete ${String(r.name)}`));
      m.cache.on('update', (_t, _u, r) => ev.push(`update ${String(r.name)} ${JSON.stringify(r.external_ids)}`));

      // a call pending when the server dies
      const pending = errorOf(c.transact(DB, [waitOp('Bridge', byUuid(keep), ['name'], [{ name: 'x' }], '==', 30_000)]));
      await c.echo();
      await srv.kill('SIGKILL');
      const pendingErr = await pending;
      expect(pendingErr).to.be.instanceOf(OvsdbDisconnectedError);
      expect((pendingErr as OvsdbDisconnectedError).retriable).to.equal(true);
      await waitFor(() => ev.includes('disconnected'), 5000, 'disconnected event');
      // a call during the outage
      const during = await errorOf(c.listDbs());
      expect(during).to.be.instanceOf(OvsdbDisconnectedError);
      expect((during as OvsdbDisconnectedError).retriable).to.equal(true);

      // change the database while the server is down
      ovsdbToolTransact(srv.dbFile, [
        { op: 'insert', table: 'Bridge', row: { name: 'out-new' }, 'uuid-name': 'n' },
        { op: 'mutate', table: 'Open_vSwitch', where: [['_uuid', '==', ['uuid', root]]], mutations: [['bridges', 'insert', ['named-uuid', 'n']], ['bridges', 'delete', ['uuid', doomed]]] },
        { op: 'update', table: 'Bridge', where: [['_uuid', '==', ['uuid', keep]]], row: { external_ids: ['map', [['down', 'yes']]] } },
      ]);
      await srv.start();
      await waitFor(() => ev.includes('reconnected'), 10_000, 'reconnected event');
      expect(c.connected).to.equal(true);
      expect(m.snapshots).to.equal(2); // standalone: no txn history, so a reconciled full snapshot
      expect(ev).to.include.members(['add out-new', 'delete out-doomed', 'update out-keep ["map",[["down","yes"]]]']);
      expect(m.cache.row('Bridge', doomed)).to.equal(undefined);
      expect(mapToRecord(m.cache.row('Bridge', keep)!.external_ids)).to.deep.equal({ down: 'yes' });
      // and it keeps following changes
      await c.transact(DB, [mutateOp('Bridge', byUuid(keep), [['external_ids', 'insert', wireMap({ after: '1' })]])]);
      expect(mapToRecord(m.cache.row('Bridge', keep)!.external_ids)).to.deep.equal({ down: 'yes', after: '1' });
      const fresh = bridgeByName(m, 'out-new')!;
      await delBridge(c, root, keep);
      await delBridge(c, root, fresh[0]);
    });

    it('the echo probe drops a silent (SIGSTOPped) server and reconnects after SIGCONT', async () => {
      const probeIntervalMs = 300;
      const c = track(await OvsdbClient.connect({ url: srv.tcpUrl, probeIntervalMs, backoffMinMs: 50, backoffMaxMs: 200 }));
      let disconnectedAt = 0;
      let reason: Error | undefined;
      let reconnected = false;
      c.on('disconnected', (r) => ((disconnectedAt = Date.now()), (reason = r)));
      c.on('reconnected', () => (reconnected = true));
      await c.echo();
      const stoppedAt = Date.now();
      srv.signal('SIGSTOP');
      try {
        await waitFor(() => disconnectedAt > 0, 4 * probeIntervalMs + 1000, 'probe to drop the connection');
        expect(disconnectedAt - stoppedAt).to.be.at.most(2 * probeIntervalMs + 500);
        expect(reason!.message).to.match(/^ovsdb: inactivity probe timed out/);
      } finally {
        srv.signal('SIGCONT');
      }
      await waitFor(() => reconnected, 10_000, 'reconnect after SIGCONT');
      expect(await c.listDbs()).to.include(DB);
    });

    it('close() leaves nothing running and stops reconnecting', async () => {
      const c = await OvsdbClient.connect({ url: srv.unixUrl });
      await c.monitor(DB, { Bridge: { columns: ['name'] } });
      await c.close();
      expect(c.connected).to.equal(false);
      expect(await errorOf(c.listDbs())).to.be.instanceOf(OvsdbDisconnectedError);
      // (the mocha process exiting without --exit also shows no timers or sockets are left)
    });
  });

  describe('against a scripted peer', () => {
    const fakes: FakeOvsdbServer[] = [];
    afterEach(async () => {
      for (const c of clients.splice(0)) await c.close();
      for (const f of fakes.splice(0)) await f.close();
    });

    it("monitor method 'auto' falls back to monitor_cond, then to monitor, on \"unknown method\"", async () => {
      const f = new FakeOvsdbServer(join(dir, 'fake1.sock'), { unsupported: ['monitor_cond_since'], leader: true });
      fakes.push(f);
      await f.listen();
      const c = track(await OvsdbClient.connect({ url: `unix:${f.path}`, probeIntervalMs: 0 }));
      const m = await c.monitor(DB, { Bridge: { columns: ['name'] } });
      expect(m.method).to.equal('monitor_cond');
      expect([...m.cache.table('Bridge').values()].map((r) => r.name)).to.deep.equal(['fake-br']);
      f.opts.unsupported.push('monitor_cond');
      const m2 = await c.monitor(DB, { Bridge: { columns: ['name'] } });
      expect(m2.method).to.equal('monitor');
      expect(m2.cache.table('Bridge').size).to.equal(1);
      expect(f.methods.filter((x) => x.endsWith(DB))).to.deep.equal([
        `monitor_cond_since ${DB}`,
        `monitor_cond ${DB}`,
        `monitor_cond_since ${DB}`,
        `monitor_cond ${DB}`,
        `monitor ${DB}`,
      ]);
    });

    it('leaderOnly skips a remote whose clustered database is not on the leader', async () => {
      const f = new FakeOvsdbServer(join(dir, 'fake2.sock'), { unsupported: [], leader: false });
      fakes.push(f);
      await f.listen();
      const err = await errorOf(OvsdbClient.connect({ url: `unix:${f.path}`, database: DB }));
      expect(err).to.be.instanceOf(OvsdbUnreachableError);
      expect((err as Error).message).to.include('cause="ovsdb: server is not the cluster leader');
      // with the real (standalone) server second in the list, the client lands there
      const c = track(await OvsdbClient.connect({ url: `unix:${f.path},${srv.unixUrl}`, database: DB }));
      expect(c.remote).to.equal(srv.unixUrl);
      // leaderOnly: false accepts the follower
      const c2 = track(await OvsdbClient.connect({ url: `unix:${f.path}`, leaderOnly: false }));
      expect(c2.remote).to.equal(`unix:${f.path}`);
    });
  });

  describe('clustered database', () => {
    let cdir: string;
    let csrv: TestServer;
    before(async () => {
      cdir = mkdtempSync(join(tmpdir(), 'mf-ovsdb-cluster-'));
      csrv = await TestServer.create(cdir, { clustered: true });
    });
    after(async () => {
      await csrv?.kill();
      if (cdir) rmSync(cdir, { recursive: true, force: true });
    });

    it('leaderOnly accepts the leader of a 1-node cluster; monitor_cond_since resumes from the last txn id after a restart', async () => {
      const c = track(await OvsdbClient.connect({ url: csrv.unixUrl, backoffMinMs: 50, backoffMaxMs: 300, database: DB }));
      const r = await rootUuid(c);
      const m = await c.monitor(DB, { Bridge: { columns: ['name'] } });
      expect(m.method).to.equal('monitor_cond_since');
      const br = await addBridge(c, r, 'cl-br0');
      expect(m.lastTxnId).to.match(/^[0-9a-f-]{36}$/).and.not.equal('00000000-0000-0000-0000-000000000000');
      let reconnected = false;
      c.on('reconnected', () => (reconnected = true));
      await csrv.kill('SIGKILL');
      await csrv.start();
      await waitFor(() => reconnected, 15_000, 'reconnect to the cluster');
      // the restarted server rebuilt its txn history from the raft log: resumed, no second snapshot
      expect(m.snapshots).to.equal(1);
      expect(m.resumes).to.equal(1);
      expect(m.cache.row('Bridge', br)?.name).to.equal('cl-br0');
      const br1 = await addBridge(c, r, 'cl-br1');
      expect(m.cache.row('Bridge', br1)?.name).to.equal('cl-br1');
      const [sel] = await c.transact(DB, [selectOp('Open_vSwitch', [], ['bridges'])]);
      expect(setUuids((sel as { rows: { bridges: unknown }[] }).rows[0]!.bridges)).to.include.members([br, br1]);
    });
  });

  describe('ssl', () => {
    let sdir: string;
    let ssrv: TestServer;
    let sslPort: number;
    const pem = (n: string) => join(sdir, n);
    before(async function () {
      this.timeout(60_000);
      sdir = mkdtempSync(join(tmpdir(), 'mf-ovsdb-ssl-'));
      const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: sdir, stdio: 'pipe' });
      const newCa = (name: string) => ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`);
      const newCert = (name: string, ca: string) => {
        ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
        ossl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2');
      };
      newCa('ca');
      newCa('wrongca');
      newCert('server', 'ca');
      newCert('client', 'ca');
      sslPort = await freePort();
      ssrv = await TestServer.create(sdir, {
        extraArgs: [`--private-key=${pem('server.key')}`, `--certificate=${pem('server.pem')}`, `--ca-cert=${pem('ca.pem')}`, `--remote=pssl:${sslPort}:127.0.0.1`],
      });
      await waitFor(() => canConnect({ host: '127.0.0.1', port: sslPort }), 10_000, 'pssl listener');
    });
    after(async () => {
      await ssrv?.kill();
      if (sdir) rmSync(sdir, { recursive: true, force: true });
    });

    it('connects over ssl with a certificate signed by the shared CA', async () => {
      const c = track(await OvsdbClient.connect({ url: `ssl:127.0.0.1:${sslPort}`, ssl: { privateKeyFile: pem('client.key'), certificateFile: pem('client.pem'), caCertFile: pem('ca.pem') } }));
      expect(await c.listDbs()).to.include(DB);
    });

    it('refuses a server whose certificate is not signed by our CA', async () => {
      const url = `ssl:127.0.0.1:${sslPort}`;
      const err = await errorOf(OvsdbClient.connect({ url, ssl: { privateKeyFile: pem('client.key'), certificateFile: pem('client.pem'), caCertFile: pem('wrongca.pem') } }));
      expect(err).to.be.instanceOf(OvsdbUnreachableError);
      expect((err as Error).message).to.match(new RegExp(`^ovsdb: cannot connect \\(db=${url.replace(/\./g, '\\.')}, cause="tls: server certificate not trusted by our CA \\([A-Z_]+\\)"\\)$`));
    });

    it('an ssl url without ssl options is a ConfigError', async () => {
      expect(await errorOf(OvsdbClient.connect({ url: `ssl:127.0.0.1:${sslPort}` }))).to.be.instanceOf(ConfigError);
    });
  });
});
