import { expect } from 'chai';
import { ReopeningLiveSource, type CaptureSourceState } from '../../../src/agent/reopening-source.js';
import type { LiveSource, LiveSourceOptions } from '../../../src/capture/live-source.js';
import { allocBatch, type FrameBatch } from '../../../src/capture/source.js';

/** A scripted live source: hands out `frames` one-frame batches, then fails (or waits for close). */
function fakeSource(frames: number, failAfter: boolean, counters = { received: 0, dropped: 0 }): LiveSource {
  const batch = allocBatch(1, 64);
  let handed = 0;
  let closed = false;
  let wake: (() => void) | undefined;
  return {
    description: 'fake',
    interfaceName: 'fake0',
    options: {} as LiveSource['options'],
    linkType: () => 1,
    tstampPrecision: () => 'nano',
    warning: () => null,
    inject: () => 0,
    async next(): Promise<FrameBatch | null> {
      if (closed) return null;
      if (handed < frames) {
        handed++;
        counters.received++;
        batch.count = 1;
        return batch;
      }
      if (failAfter) throw Object.assign(new Error('capture: poll failed (interface=fake0, error="bad file descriptor")'), { code: 'capture-read' });
      await new Promise<void>((r) => (wake = r));
      return null;
    },
    stats: () => ({ frames: handed, pcapReceived: counters.received, pcapDropped: counters.dropped, pcapIfDropped: 0 }),
    drain() {
      closed = true;
      wake?.();
    },
    async close() {
      closed = true;
      wake?.();
    },
  };
}

describe('ReopeningLiveSource', () => {
  it('reopens after the interface vanished, keeps counting, and sums the counters of every handle', async () => {
    const events: CaptureSourceState[] = [];
    let opens = 0;
    const open = async (_o: LiveSourceOptions): Promise<LiveSource> => {
      opens++;
      if (opens === 1) return fakeSource(3, true, { received: 0, dropped: 2 });
      if (opens <= 3) throw new Error('capture: cannot open interface (interface=fake0, error="No such device exists")');
      return fakeSource(2, false, { received: 0, dropped: 1 });
    };
    const src = await ReopeningLiveSource.open({ live: { interface: 'fake0' }, open, retryMs: 1, maxRetryMs: 2, onState: (e) => events.push(e) });
    let frames = 0;
    for (let i = 0; i < 5; i++) {
      const b = await src.next();
      expect(b).to.not.equal(null);
      frames += b!.count;
    }
    expect(frames).to.equal(5);
    expect(src.openCount).to.equal(2);
    expect(events.map((e) => e.state)).to.deep.equal(['open', 'lost', 'retrying', 'retrying', 'open']);
    const st = src.stats();
    expect(st.frames).to.equal(5);
    expect(st.pcapReceived).to.equal(5);
    expect(st.pcapDropped).to.equal(3);
    const pending = src.next();
    src.drain();
    expect(await pending).to.equal(null);
    await src.close();
  });

  it('ends at drain() while waiting for the interface, without another open', async () => {
    let opens = 0;
    const open = async (): Promise<LiveSource> => {
      opens++;
      if (opens === 1) return fakeSource(0, true);
      throw new Error('capture: cannot open interface');
    };
    const src = await ReopeningLiveSource.open({ live: { interface: 'fake0' }, open, retryMs: 50, maxRetryMs: 50 });
    const pending = src.next();
    await new Promise((r) => setImmediate(r));
    src.drain();
    expect(await pending).to.equal(null);
    expect(opens).to.be.at.most(2);
  });

  it('fails at the first open when the interface does not exist (a wrong name, not a restart)', async () => {
    const open = async (): Promise<LiveSource> => {
      throw new Error('capture: cannot open interface (interface=nope0)');
    };
    let err: Error | undefined;
    await ReopeningLiveSource.open({ live: { interface: 'nope0' }, open }).catch((e: Error) => (err = e));
    expect(err?.message).to.match(/nope0/);
  });
});
