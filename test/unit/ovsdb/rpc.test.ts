import { expect } from 'chai';
import { Duplex } from 'node:stream';
import { JsonRpcSession, type RpcTimers } from '../../../src/ovsdb/rpc.js';
import { OvsdbCanceledError, OvsdbDisconnectedError, OvsdbFramingError, OvsdbRpcError, OvsdbTimeoutError } from '../../../src/ovsdb/errors.js';

/** Manual clock: timers fire only when the test advances time. */
class FakeTimers implements RpcTimers {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  get active(): number {
    return this.timers.size;
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

/** The server end of a fake connection: what the client wrote, and a way to send bytes to it. */
class FakePeer {
  readonly written: string[] = [];
  held: (() => void)[] = [];
  holdWrites = false;
  readonly stream: Duplex;
  constructor(highWaterMark = 16384) {
    this.stream = new Duplex({
      writableHighWaterMark: highWaterMark,
      decodeStrings: false,
      read() {},
      write: (chunk: Buffer | string, _enc, cb) => {
        this.written.push(chunk.toString());
        if (this.holdWrites) this.held.push(cb);
        else cb();
      },
    });
  }
  messages(): { method?: string; params?: unknown; id?: unknown; result?: unknown; error?: unknown }[] {
    return this.written.map((w) => JSON.parse(w));
  }
  send(text: string): void {
    this.stream.push(Buffer.from(text));
  }
  release(): void {
    const h = this.held;
    this.held = [];
    for (const cb of h) cb();
  }
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('ovsdb/rpc JsonRpcSession', () => {
  it('matches replies to requests by id, across chunking, and rejects JSON-RPC errors typed', async () => {
    const peer = new FakePeer();
    const s = new JsonRpcSession(peer.stream, { peer: 'unix:/x' });
    const a = s.request('list_dbs', []);
    const b = s.request('get_schema', ['Nope']);
    expect(peer.messages()).to.deep.equal([
      { method: 'list_dbs', params: [], id: a.id },
      { method: 'get_schema', params: ['Nope'], id: b.id },
    ]);
    const replies = `{"id":${b.id},"result":null,"error":{"error":"unknown database","details":"Nope"}}{"id":${a.id},"result":["Open_vSwitch"],"error":null}`;
    peer.send(replies.slice(0, 20));
    await tick();
    peer.send(replies.slice(20));
    expect(await a.result).to.deep.equal(['Open_vSwitch']);
    const err = await b.result.catch((e: unknown) => e);
    expect(err).to.be.instanceOf(OvsdbRpcError);
    expect((err as OvsdbRpcError).errorText).to.equal('unknown database: Nope');
    expect((err as Error).message).to.equal('ovsdb: request failed (method=get_schema, error="unknown database: Nope")');
    s.close();
  });

  it('emits notifications and answers the server echo', async () => {
    const peer = new FakePeer();
    const s = new JsonRpcSession(peer.stream);
    const seen: [string, unknown][] = [];
    s.on('notification', (m, p) => seen.push([m, p]));
    peer.send('{"id":null,"method":"update2","params":["m",{}]}{"id":"echo","method":"echo","params":["x"]}');
    peer.send('{"id":null,"method":"locked","params":["l1"]}{"id":7,"method":"bogus","params":[]}');
    await tick();
    expect(seen).to.deep.equal([
      ['update2', ['m', {}]],
      ['locked', ['l1']],
    ]);
    expect(peer.messages()).to.deep.equal([
      { result: ['x'], error: null, id: 'echo' },
      { result: null, error: 'unknown method', id: 7 },
    ]);
    s.close();
  });

  it('fails pending calls with a retriable disconnect error when the stream ends', async () => {
    const peer = new FakePeer();
    const s = new JsonRpcSession(peer.stream, { peer: 'tcp:127.0.0.1:6640' });
    let closeReason: Error | undefined;
    s.on('close', (r) => (closeReason = r));
    const p = s.call('transact', ['Open_vSwitch']);
    peer.stream.push(null); // EOF
    const err = await p.catch((e: unknown) => e);
    expect(err).to.be.instanceOf(OvsdbDisconnectedError);
    expect((err as OvsdbDisconnectedError).retriable).to.equal(true);
    expect((err as Error).message).to.match(/^ovsdb: request failed: connection closed.* \(method=transact, db=tcp:127.0.0.1:6640\)$/);
    expect(closeReason).to.be.instanceOf(OvsdbDisconnectedError);
    // calls after the close fail at once
    const late = await s.call('echo', []).catch((e: unknown) => e);
    expect(late).to.be.instanceOf(OvsdbDisconnectedError);
  });

  it('drops the connection on garbage input with the framing error as reason', async () => {
    const peer = new FakePeer();
    const s = new JsonRpcSession(peer.stream, { maxMessageBytes: 64 });
    let closeReason: Error | undefined;
    s.on('close', (r) => (closeReason = r));
    const p = s.call('echo', []);
    peer.send(`{"id":1,"result":"${'x'.repeat(100)}"}`);
    const err = await p.catch((e: unknown) => e);
    expect(err).to.be.instanceOf(OvsdbDisconnectedError);
    expect(closeReason).to.be.instanceOf(OvsdbFramingError);
    expect(s.closed).to.equal(true);
  });

  it('times out a request with a typed error and ignores the late reply', async () => {
    const timers = new FakeTimers();
    const peer = new FakePeer();
    const s = new JsonRpcSession(peer.stream, { timers, requestTimeoutMs: 1000 });
    const r = s.request('transact', []);
    timers.advance(999);
    expect(s.pendingRequests).to.equal(1);
    timers.advance(1);
    const err = await r.result.catch((e: unknown) => e);
    expect(err).to.be.instanceOf(OvsdbTimeoutError);
    expect((err as OvsdbTimeoutError).retriable).to.equal(true);
    peer.send(`{"id":${r.id},"result":[],"error":null}`);
    await tick();
    expect(s.closed).to.equal(false);
    s.close();
    expect(timers.active).to.equal(0);
  });

  it('sends an echo probe after probeIntervalMs of silence and drops after another interval', async () => {
    const timers = new FakeTimers();
    const peer = new FakePeer();
    const s = new JsonRpcSession(peer.stream, { timers, probeIntervalMs: 5000, peer: 'unix:/db.sock' });
    let closeReason: Error | undefined;
    s.on('close', (r) => (closeReason = r));
    timers.advance(4999);
    expect(peer.messages()).to.deep.equal([]);
    timers.advance(1);
    expect(peer.messages()).to.deep.equal([{ method: 'echo', params: [], id: 1 }]);
    // the server answers: no drop, and the next probe comes only after another idle interval
    peer.send('{"id":1,"result":[],"error":null}');
    await tick();
    timers.advance(4999);
    expect(s.closed).to.equal(false);
    expect(peer.messages()).to.have.length(1);
    timers.advance(1);
    expect(peer.messages()).to.have.length(2);
    // now silence: dropped one interval after the probe
    timers.advance(4999);
    expect(s.closed).to.equal(false);
    timers.advance(1);
    expect(s.closed).to.equal(true);
    expect(closeReason).to.be.instanceOf(OvsdbDisconnectedError);
    expect(closeReason!.message).to.equal('ovsdb: inactivity probe timed out (db=unix:/db.sock, idleMs=10000)');
    expect(timers.active).to.equal(0);
  });

  it('any received message counts as activity (no probe while traffic flows)', async () => {
    const timers = new FakeTimers();
    const peer = new FakePeer();
    const s = new JsonRpcSession(peer.stream, { timers, probeIntervalMs: 1000 });
    for (let i = 0; i < 10; i++) {
      timers.advance(600);
      peer.send('{"id":null,"method":"update","params":["m",{}]}');
      await tick();
    }
    expect(peer.messages()).to.deep.equal([]);
    s.close();
  });

  it('cancel() sends the cancel notification and fails the call at once; a late reply is ignored', async () => {
    const peer = new FakePeer();
    const s = new JsonRpcSession(peer.stream);
    const r = s.request('transact', ['Open_vSwitch']);
    expect(s.cancel(r.id)).to.equal(true);
    const err = await r.result.catch((e: unknown) => e);
    expect(err).to.be.instanceOf(OvsdbCanceledError);
    expect((err as Error).message).to.equal(`ovsdb: request canceled (method=transact, requestId=${r.id})`);
    expect(peer.messages()[1]).to.deep.equal({ method: 'cancel', params: [r.id], id: null });
    expect(s.cancel(r.id)).to.equal(false);
    peer.send(`{"id":${r.id},"result":null,"error":"canceled"}`);
    await tick();
    expect(s.closed).to.equal(false);
    s.close();
  });

  it('respects write backpressure: queues while write() returns false, flushes in order on drain', async () => {
    const peer = new FakePeer(1);
    peer.holdWrites = true;
    const s = new JsonRpcSession(peer.stream);
    s.notify('a', [1]);
    s.notify('b', [2]);
    s.notify('c', [3]);
    expect(peer.written).to.have.length(1); // the stream asked us to stop after the first write
    expect(s.queuedMessages).to.equal(2);
    peer.release(); // the first write completes -> 'drain' -> next one goes out
    await tick();
    expect(peer.written).to.have.length(2);
    peer.release();
    await tick();
    peer.release();
    await tick();
    expect(peer.messages().map((m) => m.method)).to.deep.equal(['a', 'b', 'c']);
    expect(s.queuedMessages).to.equal(0);
    s.close();
  });
});
