// The live source's own logic, without libpcap: option checking, and next()/close() against a fake addon handle.
import { expect } from 'chai';
import { ConfigError } from '../../../src/errors.js';
import {
  LIVE_DEFAULT_BATCH_FRAMES,
  LIVE_DEFAULT_BUFFER_SIZE_BYTES,
  LIVE_DEFAULT_SNAPLEN,
  linkTypeFromDlt,
  openLiveSource,
  resolveLiveSourceOptions,
  type LiveSourceOptions,
} from '../../../src/capture/live-source.js';
import { NativeCaptureError, loadPcapBinding, type PcapBinding, type PcapHandle, type PcapOpenOptions } from '../../../src/capture/native-binding.js';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from '../../../src/capture/source.js';

describe('capture/live-source options', () => {
  it('fills in the defaults', () => {
    const o = resolveLiveSourceOptions({ interface: 'mf0a1b2c' });
    expect(o).to.deep.equal({
      interface: 'mf0a1b2c',
      filter: '',
      snaplen: LIVE_DEFAULT_SNAPLEN,
      bufferSizeBytes: LIVE_DEFAULT_BUFFER_SIZE_BYTES,
      batchFrames: LIVE_DEFAULT_BATCH_FRAMES,
      batchBytes: 1024 * 2048,
      promisc: true,
      immediate: false,
      timeoutMs: 50,
      tstampPrecision: 'nano',
      direction: 'inout',
    });
    expect(LIVE_DEFAULT_SNAPLEN).to.equal(262_144);
    expect(LIVE_DEFAULT_BUFFER_SIZE_BYTES).to.equal(32 * 1024 * 1024);
  });

  it('sizes the batch buffer from snaplen and batchFrames, never below snaplen', () => {
    expect(resolveLiveSourceOptions({ interface: 'eth0', snaplen: 64, batchFrames: 100 }).batchBytes).to.equal(6400);
    expect(resolveLiveSourceOptions({ interface: 'eth0', snaplen: 9000, batchFrames: 10 }).batchBytes).to.equal(20_480);
    expect(resolveLiveSourceOptions({ interface: 'eth0', batchFrames: 1 }).batchBytes).to.equal(262_144);
    expect(resolveLiveSourceOptions({ interface: 'eth0', snaplen: 128, batchBytes: 128 }).batchBytes).to.equal(128);
  });

  it('trims the filter', () => {
    expect(resolveLiveSourceOptions({ interface: 'eth0', filter: '  udp port 53 ' }).filter).to.equal('udp port 53');
  });

  const bad: Array<[string, LiveSourceOptions, RegExp]> = [
    ['empty interface', { interface: '' }, /option=interface/],
    ['interface over 15 bytes', { interface: 'a-very-long-name0' }, /option=interface/],
    ['interface with a slash', { interface: 'eth/0' }, /option=interface/],
    ['interface not a string', { interface: 3 as unknown as string }, /option=interface, value=3/],
    ['snaplen 0', { interface: 'eth0', snaplen: 0 }, /option=snaplen, value=0, expected="integer 1..262144"/],
    ['snaplen over 262144', { interface: 'eth0', snaplen: 262_145 }, /option=snaplen/],
    ['snaplen not an integer', { interface: 'eth0', snaplen: 1.5 }, /option=snaplen/],
    ['buffer below 64 KiB', { interface: 'eth0', bufferSizeBytes: 1000 }, /option=bufferSizeBytes/],
    ['batchFrames 0', { interface: 'eth0', batchFrames: 0 }, /option=batchFrames/],
    ['batchBytes below snaplen', { interface: 'eth0', snaplen: 1500, batchBytes: 1000 }, /option=batchBytes, value=1000, expected="integer 1500\.\./],
    ['timeoutMs negative', { interface: 'eth0', timeoutMs: -1 }, /option=timeoutMs/],
    ['promisc not boolean', { interface: 'eth0', promisc: 'yes' as unknown as boolean }, /option=promisc, value=yes, expected=boolean/],
    ['precision unknown', { interface: 'eth0', tstampPrecision: 'pico' as 'nano' }, /option=tstampPrecision, value=pico, expected=nano\|micro/],
    ['direction unknown', { interface: 'eth0', direction: 'both' as 'in' }, /option=direction/],
    ['filter not a string', { interface: 'eth0', filter: 7 as unknown as string }, /option=filter/],
  ];
  for (const [what, opts, message] of bad) {
    it(`rejects ${what} with a ConfigError naming the option`, () => {
      expect(() => resolveLiveSourceOptions(opts)).to.throw(ConfigError, message);
      expect(() => resolveLiveSourceOptions(opts)).to.throw(/^capture: bad live source option \(/);
    });
  }

  it('maps pcap DLT values to LINKTYPE values', () => {
    expect(linkTypeFromDlt(1)).to.equal(LINKTYPE_ETHERNET);
    expect(linkTypeFromDlt(12)).to.equal(LINKTYPE_RAW);
    expect(linkTypeFromDlt(14)).to.equal(LINKTYPE_RAW);
    expect(linkTypeFromDlt(113)).to.equal(113);
  });
});

describe('capture/native-binding loader', () => {
  it('says how to build the addon when it is missing', () => {
    expect(() => loadPcapBinding('/nonexistent/mirrorflow_pcap.node')).to.throw(
      NativeCaptureError,
      'capture: native addon not built (path=/nonexistent/mirrorflow_pcap.node); run npm ci or npm run build:native',
    );
  });
});

/** A scripted addon handle: frames queued by the test come out of read(); poll() waits for fire(). */
class FakeHandle implements PcapHandle {
  queue: Buffer[] = [];
  pollCb: ((err: Error | null) => void) | undefined;
  closed = false;
  reads = 0;
  readError: Error | undefined;
  readonly opened: PcapOpenOptions;

  constructor(opts: PcapOpenOptions) {
    this.opened = opts;
  }

  read(data: Buffer, offset: Uint32Array, caplen: Uint32Array, len: Uint32Array, tsSec: Uint32Array, tsNsec: Uint32Array): number {
    if (this.closed) throw Object.assign(new Error('capture: source closed (interface=fake0)'), { code: 'capture-closed' });
    this.reads++;
    if (this.readError) throw this.readError;
    let n = 0;
    let used = 0;
    while (this.queue.length > 0 && n < offset.length && used + this.queue[0]!.length <= data.length) {
      const f = this.queue.shift()!;
      f.copy(data, used);
      offset[n] = used;
      caplen[n] = f.length;
      len[n] = f.length;
      tsSec[n] = 1_700_000_000;
      tsNsec[n] = n + 1;
      used += f.length;
      n++;
    }
    return n;
  }
  poll(cb: (err: Error | null) => void): void {
    if (this.pollCb) throw new Error('fake: poll already pending');
    this.pollCb = cb;
  }
  fire(err: Error | null = null): void {
    const cb = this.pollCb;
    this.pollCb = undefined;
    cb?.(err);
  }
  stats() {
    return { received: 7, dropped: 1, ifDropped: 2 };
  }
  linkType(): number {
    return 1;
  }
  snaplen(): number {
    return this.opened.snaplen ?? 262_144;
  }
  tstampPrecision(): 'nano' | 'micro' {
    return 'nano';
  }
  warning(): string | null {
    return null;
  }
  inject(frame: Uint8Array): number {
    return frame.length;
  }
  close(): void {
    this.closed = true;
    this.pollCb = undefined;
  }
  isClosed(): boolean {
    return this.closed;
  }
}

function fakeBinding(): { binding: PcapBinding; handles: FakeHandle[] } {
  const handles: FakeHandle[] = [];
  return {
    handles,
    binding: {
      open(opts) {
        if (opts.filter === 'bad') {
          throw Object.assign(new Error('capture: bad filter (interface=fake0, filter=bad, error=syntax)'), { code: 'capture-filter', filter: 'bad' });
        }
        const h = new FakeHandle(opts);
        handles.push(h);
        return h;
      },
      libVersion: () => 'fake',
    },
  };
}

/** Lets pending promise callbacks and setImmediate callbacks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('capture/live-source next() and close() (fake addon)', () => {
  it('passes the resolved options to the addon', async () => {
    const { binding, handles } = fakeBinding();
    await openLiveSource({ interface: 'fake0', filter: 'udp', snaplen: 128, immediate: true }, { binding });
    expect(handles[0]!.opened).to.deep.equal({
      device: 'fake0',
      snaplen: 128,
      bufferSizeBytes: LIVE_DEFAULT_BUFFER_SIZE_BYTES,
      filter: 'udp',
      promisc: true,
      immediate: true,
      timeoutMs: 50,
      tstampPrecision: 'nano',
      direction: 'inout',
    });
  });

  it('returns waiting frames at once and waits for readiness when there are none', async () => {
    const { binding, handles } = fakeBinding();
    const src = await openLiveSource({ interface: 'fake0', snaplen: 64, batchFrames: 2 }, { binding });
    const h = handles[0]!;
    h.queue.push(Buffer.from('aaaa'), Buffer.from('bb'), Buffer.from('c'));
    let b = await src.next();
    expect(b!.count).to.equal(2);
    expect(b!.data.subarray(b!.offset[1]!, b!.offset[1]! + b!.caplen[1]!).toString()).to.equal('bb');
    b = await src.next();
    expect(b!.count).to.equal(1);

    // Nothing waiting: next() polls and stays pending until the descriptor is readable.
    let resolved = false;
    const pending = src.next().then((x) => {
      resolved = true;
      return x;
    });
    await settle();
    expect(resolved).to.equal(false);
    expect(h.pollCb).to.be.a('function');
    const readsBefore = h.reads;
    h.fire(); // readable, but nothing there (a spurious wake-up): polls again
    await settle();
    expect(resolved).to.equal(false);
    expect(h.reads).to.equal(readsBefore + 1);
    h.queue.push(Buffer.from('dd'));
    h.fire();
    b = await pending;
    expect(b!.count).to.equal(1);
    expect(src.stats()).to.deep.equal({ frames: 4, pcapReceived: 7, pcapDropped: 1, pcapIfDropped: 2 });
  });

  it('lets the event loop run between batches under a steady stream', async () => {
    const { binding, handles } = fakeBinding();
    const src = await openLiveSource({ interface: 'fake0', snaplen: 64, batchFrames: 1 }, { binding });
    const h = handles[0]!;
    for (let i = 0; i < 50; i++) h.queue.push(Buffer.from([i]));
    let immediateRan = false;
    setImmediate(() => {
      immediateRan = true;
    });
    let batchesBeforeImmediate = 0;
    for (let i = 0; i < 50; i++) {
      await src.next();
      if (!immediateRan) batchesBeforeImmediate++;
    }
    expect(immediateRan).to.equal(true);
    expect(batchesBeforeImmediate).to.be.lessThan(3);
  });

  it('ends a pending next() with null on close; close twice is fine', async () => {
    const { binding, handles } = fakeBinding();
    const src = await openLiveSource({ interface: 'fake0' }, { binding });
    const pending = src.next();
    await settle();
    await src.close();
    expect(await pending).to.equal(null);
    expect(handles[0]!.closed).to.equal(true);
    await src.close();
    expect(await src.next()).to.equal(null);
  });

  it('turns addon errors into NativeCaptureErrors with the same message and code', async () => {
    const { binding, handles } = fakeBinding();
    const err = await openLiveSource({ interface: 'fake0', filter: 'bad' }, { binding }).then(
      () => expect.fail('opened with a bad filter'),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(NativeCaptureError);
    expect((err as NativeCaptureError).code).to.equal('capture-filter');
    expect((err as NativeCaptureError).details).to.deep.equal({ filter: 'bad' });
    expect((err as Error).message).to.equal('capture: bad filter (interface=fake0, filter=bad, error=syntax)');

    const src = await openLiveSource({ interface: 'fake0' }, { binding });
    handles[0]!.readError = Object.assign(new Error('capture: read failed (interface=fake0, error=down)'), { code: 'capture-read' });
    const readErr = await src.next().then(
      () => expect.fail('read error swallowed'),
      (e: unknown) => e,
    );
    expect(readErr).to.be.instanceOf(NativeCaptureError);
    expect((readErr as NativeCaptureError).code).to.equal('capture-read');

    handles[0]!.readError = undefined;
    const pending = src.next();
    await settle();
    handles[0]!.fire(Object.assign(new Error('capture: poll failed (interface=fake0, error=EBADF)'), { code: 'capture-read' }));
    const pollErr = await pending.then(
      () => expect.fail('poll error swallowed'),
      (e: unknown) => e,
    );
    expect(pollErr).to.be.instanceOf(NativeCaptureError);
    expect((pollErr as Error).message).to.match(/poll failed/);
  });
});
