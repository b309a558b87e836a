import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.js';
import { PairTable, formatBps, formatTopWindow, sortRows } from '../../../src/cli/top-table.js';

function pw(start: number, a: string, b: string, o: { bps?: number; pkts?: number; p50?: number; p95?: number; loss?: number } = {}) {
  return {
    windowStartUs: String(start),
    windowEndUs: String(start + 10_000_000),
    a,
    b,
    aToB: { packets: String(o.pkts ?? 10), bytes: '1000' },
    bToA: { packets: String(o.pkts ?? 10), bytes: '2000' },
    flows: 2,
    tcp: { handshakes: o.p50 ? 1 : 0, handshakeRttUs: o.p50 ? { count: 1, min: o.p50, p50: o.p50, p95: o.p95 ?? o.p50, max: o.p95 ?? o.p50 } : {}, retransmits: 3, gapFills: 1, dataSegments: 100 },
    icmp: { rttUs: {} },
    lossRate: o.loss ?? 0,
    throughputBps: o.bps ?? 2400,
  };
}

describe('top table', () => {
  it('shows a window once a later one starts, with firing alerts until resolved', () => {
    const t = new PairTable();
    expect(t.push(pw(0, 'vm-a', 'vm-b'))).to.deep.equal([]);
    expect(t.push(pw(0, 'vm-a', 'vm-c'))).to.deep.equal([]);
    t.pushAlert({ rule: 'slow', state: 'ALERT_STATE_FIRING', a: 'vm-a', b: 'vm-c', windowStartUs: '0' });
    const done = t.push(pw(10_000_000, 'vm-a', 'vm-b'));
    expect(done).to.have.length(1);
    expect(done[0]!.windowStartUs).to.equal(0);
    expect(done[0]!.rows.map((r) => `${r.a}|${r.b}:${r.alerts.join(',')}`).sort()).to.deep.equal(['vm-a|vm-b:', 'vm-a|vm-c:slow']);
    expect(done[0]!.rows[0]!.packets).to.equal(20);
    t.pushAlert({ rule: 'slow', state: 'resolved', a: 'vm-a', b: 'vm-c', windowStartUs: '10000000' });
    t.push(pw(10_000_000, 'vm-a', 'vm-c'));
    const last = t.flush();
    expect(last).to.have.length(1);
    expect(last[0]!.rows.every((r) => r.alerts.length === 0)).to.equal(true);
  });

  it('several sources (partitions): a window completes when every source moved past it, or after the grace', () => {
    const t = new PairTable(1000);
    expect(t.push(pw(0, 'a', 'b'), 'p0', 0)).to.deep.equal([]);
    expect(t.push(pw(0, 'c', 'd'), 'p1', 0)).to.deep.equal([]);
    // p0 moved on, p1 not yet: window 0 waits for p1's late pair
    expect(t.push(pw(10_000_000, 'a', 'b'), 'p0', 10)).to.deep.equal([]);
    expect(t.push(pw(0, 'e', 'f'), 'p1', 20)).to.deep.equal([]);
    const done = t.push(pw(10_000_000, 'c', 'd'), 'p1', 30);
    expect(done.map((w) => [w.windowStartUs, w.rows.length])).to.deep.equal([[0, 3]]);
    // a source that falls silent holds a window only for the grace
    t.push(pw(20_000_000, 'a', 'b'), 'p0', 40);
    expect(t.expire(500)).to.deep.equal([]);
    expect(t.expire(1040).map((w) => w.windowStartUs)).to.deep.equal([10_000_000]);
  });

  it('an alert marks its pair from its own window on, not the window before', () => {
    const t = new PairTable();
    t.push(pw(0, 'a', 'b'));
    t.pushAlert({ rule: 'lossy', state: 'firing', a: 'a', b: 'b', windowStartUs: '10000000' });
    const [w0] = t.push(pw(10_000_000, 'a', 'b'));
    expect(w0!.rows[0]!.alerts).to.deep.equal([]);
    t.pushAlert({ rule: 'lossy', state: 'resolved', a: 'a', b: 'b', windowStartUs: '20000000' });
    const [w1] = t.push(pw(20_000_000, 'a', 'b'));
    expect(w1!.rows[0]!.alerts).to.deep.equal(['lossy']);
    const [w2] = t.flush();
    expect(w2!.rows[0]!.alerts).to.deep.equal([]);
  });

  it('sorts by throughput, RTT or loss, and formats a readable table', () => {
    const t = new PairTable();
    t.push(pw(0, 'a', 'b', { bps: 5e6, p50: 800, loss: 0.01 }));
    t.push(pw(0, 'a', 'c', { bps: 9e9, p50: 200, loss: 0 }));
    t.push(pw(0, 'b', 'c', { bps: 1e3, p50: 40_000, p95: 52_000, loss: 0.2 }));
    const [w] = t.flush();
    expect(sortRows(w!.rows, 'throughput').map((r) => r.b)).to.deep.equal(['c', 'b', 'c']);
    expect(sortRows(w!.rows, 'rtt').map((r) => `${r.a}${r.b}`)).to.deep.equal(['bc', 'ab', 'ac']);
    expect(sortRows(w!.rows, 'loss')[0]!.lossRate).to.equal(0.2);
    const lines = formatTopWindow(w!, { sort: 'rtt', limit: 2 });
    expect(lines[0]).to.match(/^window 1970-01-01 00:00:00Z \+10s {2}3 pairs$/);
    expect(lines[1]).to.match(/^PAIR\s+THROUGHPUT/);
    expect(lines[2]).to.match(/^b <-> c\s+1\.0 kbit\/s\s+20\s+2\s+40\.00\/52\.00\s+-\s+20\.00\s+3\/1\s+-$/);
    expect(lines).to.have.length(5);
    expect(lines[4]).to.equal('… 1 more');
    expect(formatBps(9e9)).to.equal('9.0 Gbit/s');
    expect(formatBps(999)).to.equal('999 bit/s');
  });

  it('`top --file F --once` prints the latest window; bad flags are one line, exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mf-top-'));
    try {
      const f = join(dir, 'pairs.json');
      writeFileSync(f, [pw(0, 'a', 'b'), pw(10_000_000, 'a', 'b', { bps: 7e6 }), pw(10_000_000, 'b', 'c')].map((x) => JSON.stringify(x)).join('\n') + '\nnot json\n');
      const out: string[] = [];
      const err: string[] = [];
      const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l), env: {}, signal: new AbortController().signal };
      expect(await main(['top', '--file', f, '--once'], io)).to.equal(0);
      expect(out[0]).to.match(/^window 1970-01-01 00:00:10Z \+10s {2}2 pairs$/);
      expect(out[2]).to.match(/^a <-> b\s+7\.0 Mbit\/s/);
      expect(err.join('\n')).to.match(/skipped a line that is not a JSON object/);
      err.length = 0;
      expect(await main(['top', '--file', f, '--sort', 'speed'], io)).to.equal(2);
      expect(err).to.have.length(1);
      expect(err[0]).to.match(/invalid --sort.*sort=speed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
