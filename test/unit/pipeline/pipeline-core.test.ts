import { expect } from 'chai';
import type { FlowRecord, PairWindow } from '../../../src/capture/flow-record.js';
import {
  PipelineCore,
  decodeCheckpoint,
  encodeCheckpoint,
  type Checkpoint,
  type CommitPoint,
} from '../../../src/pipeline/pipeline-core.js';
import { parseRulesConfig } from '../../../src/pipeline/rules-config.js';
import { FlowTable } from '../../../src/capture/flow-table.js';
import { MS, S, TcpConv, mergeByTime, udpFrame } from '../../helpers/synth-flows.js';
import { byPairWindow, embeddedPairs, flowKey, pairWindowKeys, rng, synthRecords, SYNTH_T0_US } from '../../helpers/synth-pipeline.js';

const W = 1_000_000; // 1 s windows

/** One TCP record of pair (10.0.0.1, 10.0.0.2) ending at `endUs` with `packets` client packets. */
function rec(endUs: number, packets = 1, pair = 0): FlowRecord {
  const [r] = synthRecords({ records: 1, pairs: 1, seed: 7 });
  const x = structuredClone(r!);
  x.key.clientIp = `10.0.${pair}.1`;
  x.key.serverIp = `10.0.${pair}.2`;
  x.startUs = x.endUs = endUs;
  x.clientToServer = { packets, bytes: packets * 100, firstUs: endUs, lastUs: endUs, tcpFlags: 0 };
  x.serverToClient = { packets: 0, bytes: 0, firstUs: 0, lastUs: 0, tcpFlags: 0 };
  delete x.icmp;
  x.tcp = {
    synOnly: false,
    rstAnswered: false,
    failed: false,
    clientToServer: { dataSegments: packets, retransmits: 0, gapFills: 0, outOfOrder: 0, dupAcks: 0, zeroWindows: 0, rsts: 0, synRetransmits: 0 },
    serverToClient: { dataSegments: 0, retransmits: 0, gapFills: 0, outOfOrder: 0, dupAcks: 0, zeroWindows: 0, rsts: 0, synRetransmits: 0 },
  };
  return x;
}

const T = SYNTH_T0_US - (SYNTH_T0_US % W); // a window boundary

describe('pipeline-core', () => {
  describe('checkpoint metadata', () => {
    it('round-trips, including the initial -Infinity watermark', () => {
      const cs: Checkpoint[] = [
        { watermarkUs: T + 123, position: 42 },
        { watermarkUs: -Infinity, position: 0 },
      ];
      for (const c of cs) expect(decodeCheckpoint(encodeCheckpoint(c))).to.deep.equal(c);
      expect(encodeCheckpoint({ watermarkUs: 5, position: 9 })).to.equal('mfp1;wm=5;pos=9');
    });

    it('ignores foreign or damaged metadata', () => {
      for (const m of [null, undefined, '', 'hello', 'mfp1;wm=x;pos=1', 'mfp1;wm=1;pos=-1', 'mfp1;wm=1']) {
        expect(decodeCheckpoint(m)).to.equal(undefined);
      }
    });
  });

  describe('commit point (safe offset)', () => {
    it('stays at the lowest offset held by an open window and moves when it is emitted', () => {
      const core = new PipelineCore({ windowUs: W, allowedLatenessUs: W / 2 });
      core.assign(0, 100);
      expect(core.commitPoint(0).offset).to.equal(100);
      expect(core.addRecord(0, 100, rec(T + 10), 0)).to.deep.equal([]); // window T
      expect(core.addRecord(0, 101, rec(T + W + 10), 0)).to.deep.equal([]); // window T+W
      expect(core.addRecord(0, 102, rec(T + 20), 0)).to.deep.equal([]); // back in window T (within lateness)
      expect(core.commitPoint(0).offset).to.equal(100);
      // the watermark passes T + W + lateness: window T closes, window T+W (offset 101) still held
      const out = core.addRecord(0, 103, rec(T + W + W / 2, 1, 1), 0);
      expect(out.map((w) => [w.windowStartUs, w.aToB.packets + w.bToA.packets])).to.deep.equal([[T, 2]]);
      expect(core.commitPoint(0)).to.deep.equal({ offset: 101, checkpoint: { watermarkUs: T + W + W / 2, position: 104 } });
      // everything emitted: the commit point is one past the last record
      const rest = core.partition(0).closeAll();
      expect(rest).to.have.length(2);
      expect(core.commitPoint(0).offset).to.equal(104);
    });

    it('never moves backwards, and skipped messages and transaction markers advance it when no window is open', () => {
      const core = new PipelineCore({ windowUs: W });
      const p = core.assign(3, 0);
      core.skip(3, 0, 0);
      expect(core.commitPoint(3).offset).to.equal(1);
      p.seen(5); // a control record at offset 4
      expect(core.commitPoint(3).offset).to.equal(5);
      core.addRecord(3, 5, rec(T), 0);
      core.skip(3, 6, 0);
      expect(core.commitPoint(3).offset).to.equal(5);
      const rand = rng(3);
      let last = 5;
      for (let off = 7; off < 400; off++) {
        core.addRecord(3, off, rec(T + Math.floor(off / 10) * (W / 4) + Math.floor(rand() * W), 1, off % 3), 0);
        const c = core.commitPoint(3).offset;
        expect(c).to.be.at.least(last);
        expect(c).to.be.at.most(off + 1);
        last = c;
      }
    });

    it('an unanswered SYN cut at a window boundary counts as a failed handshake in the window the flow ended in, not late', () => {
      // the flow table as the agent and replay drive it: cuts at each 10 s boundary, ticks as time goes
      const W10 = 10_000_000;
      const T0 = 1_700_000_000_000_000;
      const records: FlowRecord[] = [];
      const table = new FlowTable({ onRecord: (r) => records.push(r), epochUs: T0 });
      const syn = new TcpConv({ ip: '10.0.9.1', port: 40000, mac: 0x02000000000a }, { ip: '10.0.9.2', port: 22, mac: 0x02000000000b });
      syn.syn(9 * S + 500 * MS);
      const frames = mergeByTime(
        syn.frames,
        Array.from({ length: 41 }, (_, i) => ({ f: udpFrame({ ip: '10.0.8.1', port: 5000 }, { ip: '10.0.8.2', port: 6000 }, 10), tNs: i * S })),
      );
      let nextCut = W10 * 1000;
      for (const { f, tNs } of frames) {
        if (tNs >= nextCut) {
          table.cutAll(nextCut);
          nextCut += W10 * 1000;
        }
        table.addFrame(f, tNs);
        table.tick(tNs);
      }
      table.flush();
      const core = new PipelineCore({ windowUs: W10, clean: true });
      core.assign(0, 0);
      const out: PairWindow[] = [];
      records.forEach((r, i) => out.push(...core.addRecord(0, i, r, 0)));
      out.push(...core.partition(0).closeAll());
      expect(core.stats.lateRecords).to.equal(0);
      const failed = out.filter((w) => w.tcp.failedHandshakes > 0);
      expect(failed.map((w) => [w.a, w.b, w.windowStartUs, w.tcp.failedHandshakes])).to.deep.equal([['10.0.9.1', '10.0.9.2', T0 + 20_000_000, 1]]);
    });

    it('a record without packets holds nothing; a failed handshake without packets counts at its end', () => {
      const core = new PipelineCore({ windowUs: W });
      core.assign(0, 0);
      const empty = rec(T + 5);
      empty.clientToServer.packets = empty.clientToServer.bytes = 0;
      core.addRecord(0, 0, empty, 0);
      expect(core.commitPoint(0).offset).to.equal(1);
      expect(core.stats.emptyRecords).to.equal(1);
      const failed = structuredClone(empty);
      failed.tcp!.failed = true;
      core.addRecord(0, 1, failed, 0);
      expect(core.commitPoint(0).offset).to.equal(1);
      const [w] = core.partition(0).closeAll();
      expect(w!.tcp.failedHandshakes).to.equal(1);
      expect(w!.aToB.packets + w!.bToA.packets).to.equal(0);
    });
  });

  describe('lateness', () => {
    it('accepts records within the allowed lateness and counts later ones', () => {
      const core = new PipelineCore({ windowUs: W, allowedLatenessUs: 200_000 });
      core.assign(0, 0);
      core.addRecord(0, 0, rec(T + 100), 0);
      core.addRecord(0, 1, rec(T + W + 150_000), 0); // watermark: window T still open (lateness)
      core.addRecord(0, 2, rec(T + 200, 3), 0); // late but allowed
      const closed = core.addRecord(0, 3, rec(T + W + 250_000), 0);
      expect(closed).to.have.length(1);
      expect(closed[0]!.aToB.packets + closed[0]!.bToA.packets).to.equal(4);
      core.addRecord(0, 4, rec(T + 300, 5), 0); // too late
      expect(core.stats.lateRecords).to.equal(1);
      expect(core.stats.records).to.equal(4);
    });
  });

  describe('idle partitions', () => {
    it('closes open windows after idleTimeoutMs of processing time without records (default 2 × window)', () => {
      const core = new PipelineCore({ windowUs: W });
      core.assign(0, 0);
      core.assign(1, 0);
      core.addRecord(0, 0, rec(T + 10), 1000);
      core.addRecord(1, 0, rec(T + 10, 1, 1), 2500);
      expect(core.tick(2999).size).to.equal(0);
      const t1 = core.tick(3000); // partition 0 idle for 2000 ms = 2 × 1 s
      expect([...t1.keys()]).to.deep.equal([0]);
      expect(t1.get(0)!.map((w) => w.windowStartUs)).to.deep.equal([T]);
      expect(core.commitPoint(0).offset).to.equal(1);
      expect(core.commitPoint(0).checkpoint.watermarkUs).to.equal(T + W);
      // a record for the closed window is now late; a later one opens a new window
      core.addRecord(0, 1, rec(T + 20), 5000);
      expect(core.stats.lateRecords).to.equal(1);
      core.addRecord(0, 2, rec(T + W + 20), 5000);
      expect(core.partition(0).openWindows).to.equal(1);
      expect([...core.tick(4500).keys()]).to.deep.equal([1]);
      expect(core.tick(6999).size).to.equal(0);
      expect([...core.tick(7000).keys()]).to.deep.equal([0]);
      expect(core.stats.idleCloses).to.equal(3);
    });

    it('honours an explicit idle timeout', () => {
      const core = new PipelineCore({ windowUs: W, idleTimeoutMs: 50 });
      core.assign(0, 0);
      core.addRecord(0, 0, rec(T), 0);
      expect(core.tick(49).size).to.equal(0);
      expect(core.tick(50).get(0)).to.have.length(1);
    });
  });

  describe('deterministic ids', () => {
    it('names a PairWindow after its window and pair', () => {
      const core = new PipelineCore({ windowUs: W, idPrefix: 'g1' });
      core.assign(0, 0);
      core.addRecord(0, 0, rec(T + 1), 0);
      const [w] = core.partition(0).closeAll();
      expect(w!.id).to.equal(`g1-${T}-10.0.0.1|10.0.0.2`);
    });
  });

  describe('rebalance: drop and rebuild from the commit point', () => {
    const PARTITIONS = 4;
    const partitionOf = (r: FlowRecord): number => {
      let h = 0;
      for (const c of flowKey(r)) h = (h * 31 + c.charCodeAt(0)) >>> 0;
      return h % PARTITIONS;
    };

    interface Log {
      records: FlowRecord[];
    }

    function logs(records: FlowRecord[]): Log[] {
      const ls: Log[] = Array.from({ length: PARTITIONS }, () => ({ records: [] }));
      for (const r of records) ls[partitionOf(r)]!.records.push(r);
      return ls;
    }

    /**
     * Runs a consumer over the partition logs the way the Kafka adapter does: batches of records per
     * partition, a "transaction" per batch that makes its output and the commit point durable
     * together, and — at random — a crash (everything not committed is lost, every partition is
     * dropped and restored from its commit). Returns the committed output.
     */
    function run(ls: Log[], opts: { crashes: number; seed: number; allowedLatenessUs: number }): { out: PairWindow[]; crashes: number } {
      const rand = rng(opts.seed);
      const core = new PipelineCore({ windowUs: W, allowedLatenessUs: opts.allowedLatenessUs, idPrefix: 't' });
      const committed: CommitPoint[] = ls.map(() => ({ offset: 0, checkpoint: { watermarkUs: -Infinity, position: 0 } }));
      const out: PairWindow[] = [];
      const pos: number[] = ls.map(() => 0);
      const pending: PairWindow[][] = ls.map(() => []);
      const restore = (p: number) => {
        core.assign(p, committed[p]!.offset, committed[p]!.checkpoint);
        pos[p] = committed[p]!.offset;
        pending[p] = [];
      };
      ls.forEach((_, p) => restore(p));
      let crashes = 0;
      let steps = 0;
      while (pos.some((o, p) => o < ls[p]!.records.length)) {
        const p = Math.floor(rand() * ls.length);
        const n = 1 + Math.floor(rand() * 30);
        for (let i = 0; i < n && pos[p]! < ls[p]!.records.length; i++, pos[p]!++) {
          pending[p]!.push(...core.addRecord(p, pos[p]!, ls[p]!.records[pos[p]!]!, 0));
        }
        if (rand() < 0.5) {
          out.push(...pending[p]!);
          pending[p] = [];
          committed[p] = core.commitPoint(p);
        }
        steps++;
        if (crashes < opts.crashes && rand() < 0.03 && steps > 5) {
          crashes++;
          if (rand() < 0.5) ls.forEach((_, q) => restore(q)); // the process died
          else restore(p); // one partition moved to another member and back
        }
      }
      // the replay is over: idle partitions close their windows; then commit everything
      for (const [p, ws] of core.tick(1e12)) pending[p]!.push(...ws);
      ls.forEach((_, p) => {
        out.push(...pending[p]!);
        committed[p] = core.commitPoint(p);
        expect(committed[p]!.offset).to.equal(ls[p]!.records.length);
      });
      return { out, crashes };
    }

    it('in-order records: the same pairs as the embedded aggregation, crashes or not', () => {
      const records = synthRecords({ records: 3000, pairs: 25, spanUs: 12 * W, seed: 11 });
      const expected = embeddedPairs(records, W);
      const plain = run(logs(records), { crashes: 0, seed: 1, allowedLatenessUs: 0 });
      expect(pairWindowKeys(plain.out)).to.deep.equal(pairWindowKeys(expected));
      expect(byPairWindow(plain.out)).to.deep.equal(byPairWindow(expected));
      for (const seed of [2, 3, 4, 5]) {
        const crashed = run(logs(records), { crashes: 6, seed, allowedLatenessUs: 0 });
        expect(crashed.crashes).to.be.greaterThan(0);
        expect(pairWindowKeys(crashed.out)).to.deep.equal(pairWindowKeys(expected));
        expect(byPairWindow(crashed.out)).to.deep.equal(byPairWindow(expected));
      }
    });

    it('out-of-order records with lateness: every (pair, window) once, identical to the uninterrupted run', () => {
      const records = synthRecords({ records: 4000, pairs: 30, spanUs: 15 * W, jitterUs: 1.5 * W, seed: 12 });
      const ls = logs(records);
      for (const allowedLatenessUs of [0, W / 2]) {
        const plain = run(ls, { crashes: 0, seed: 1, allowedLatenessUs });
        expect(new Set(pairWindowKeys(plain.out)).size).to.equal(plain.out.length);
        for (const seed of [7, 8, 9, 10, 11]) {
          const crashed = run(ls, { crashes: 8, seed, allowedLatenessUs });
          expect(crashed.crashes).to.be.greaterThan(0);
          const sortById = (ws: PairWindow[]) => [...ws].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
          expect(sortById(crashed.out)).to.deep.equal(sortById(plain.out));
        }
      }
    });

    it('counts re-read records of emitted windows as replayed, not late', () => {
      const core = new PipelineCore({ windowUs: W, allowedLatenessUs: W / 2 });
      core.assign(0, 0);
      core.addRecord(0, 0, rec(T + W + 1), 0); // window T+W, holds offset 0
      core.addRecord(0, 1, rec(T + 5), 0); // window T, within lateness
      const closed = core.addRecord(0, 2, rec(T + W + W / 2 + 1), 0); // closes window T
      expect(closed.map((w) => w.windowStartUs)).to.deep.equal([T]);
      const c = core.commitPoint(0);
      expect(c.offset).to.equal(0);
      core.assign(0, c.offset, c.checkpoint);
      expect(core.addRecord(0, 0, rec(T + W + 1), 0)).to.deep.equal([]);
      expect(core.addRecord(0, 1, rec(T + 5), 0)).to.deep.equal([]); // window T was emitted: replayed
      expect(core.addRecord(0, 2, rec(T + W + W / 2 + 1), 0)).to.deep.equal([]);
      expect(core.addRecord(0, 3, rec(T + 6), 0)).to.deep.equal([]); // new, its window emitted: late
      expect(core.partition(0).stats).to.include({ replayedRecords: 1, lateRecords: 1, records: 2 });
      const [w] = core.partition(0).closeAll();
      expect(w!.windowStartUs).to.equal(T + W);
      expect(w!.aToB.packets).to.equal(2);
    });
  });

  describe('trend and alerts (rules)', () => {
    const rules = parseRulesConfig({
      thresholds: [{ name: 'busy', metric: 'packets', operator: '>', value: 5, forWindows: 2, severity: 'warning' }],
      anomaly: { poisson: { enabled: false }, rttZScore: { enabled: false } },
      security: { newPair: { enabled: false } },
    });

    /** Packets of pair 0 per window (one record per window), fed in order; returns windows and alerts. */
    function run(core: PipelineCore, packets: number[], firstOffset = 0): { windows: PairWindow[]; alerts: string[] } {
      const windows: PairWindow[] = [];
      packets.forEach((p, i) => windows.push(...core.addRecord(0, firstOffset + i, rec(T + i * W + 10, p), 0)));
      windows.push(...core.partition(0).closeAll());
      return { windows, alerts: core.takeAlerts(0).map((a) => `${a.rule} ${a.state} ${(a.windowStartUs - T) / W}`) };
    }

    it('without rules: no trend and no alerts', () => {
      const core = new PipelineCore({ windowUs: W });
      core.assign(0, 0);
      const { windows, alerts } = run(core, [1, 9, 9, 1]);
      expect(windows).to.have.length(4);
      expect(windows.every((w) => w.trend === undefined)).to.equal(true);
      expect(alerts).to.deep.equal([]);
    });

    it('annotates every window with a trend and raises a threshold alert once, resolved once', () => {
      const core = new PipelineCore({ windowUs: W, rules, idPrefix: 'g' });
      core.assign(0, 0);
      const { windows, alerts } = run(core, [1, 9, 9, 9, 9, 1, 1]);
      expect(windows).to.have.length(7);
      expect(windows.every((w) => w.trend !== undefined && w.trend.forecastBps.length === rules.trend.horizonWindows)).to.equal(true);
      expect(alerts).to.deep.equal(['busy firing 2', 'busy resolved 5']);
      expect(core.stats.alerts).to.equal(2);
      expect(core.takeAlerts(0)).to.deep.equal([]); // taken
    });

    it('alert ids are deterministic: a partition rebuilt from the same commit raises the same ids', () => {
      const ids = (): string[] => {
        const core = new PipelineCore({ windowUs: W, rules, idPrefix: 'g' });
        core.assign(0, 0);
        const packets = [1, 9, 9, 9, 1];
        packets.forEach((p, i) => core.addRecord(0, i, rec(T + i * W + 10, p), 0));
        core.partition(0).closeAll();
        return core.takeAlerts(0).map((a) => a.id);
      };
      const first = ids();
      expect(first).to.deep.equal([`g:busy:10.0.0.1~10.0.0.2:${T + 2 * W}:firing`, `g:busy:10.0.0.1~10.0.0.2:${T + 4 * W}:resolved`]);
      expect(ids()).to.deep.equal(first);
    });

    it('model state restarts after a restore: the streak starts over, pending alerts are dropped with the state', () => {
      const core = new PipelineCore({ windowUs: W, rules });
      core.assign(0, 0);
      core.addRecord(0, 0, rec(T + 10, 9), 0);
      core.addRecord(0, 1, rec(T + W + 10, 9), 0); // closes window 0 (streak 1)
      const c = core.commitPoint(0);
      core.addRecord(0, 2, rec(T + 2 * W + 10, 9), 0); // closes window 1: fires
      expect(core.partition(0).pendingAlerts).to.equal(1);
      core.assign(0, c.offset, c.checkpoint); // the transaction failed: rebuilt from the commit
      expect(core.takeAlerts(0)).to.deep.equal([]);
      core.addRecord(0, 1, rec(T + W + 10, 9), 0);
      core.addRecord(0, 2, rec(T + 2 * W + 10, 9), 0); // window 1 again: streak 1 in the new model
      expect(core.takeAlerts(0)).to.deep.equal([]);
      core.addRecord(0, 3, rec(T + 3 * W + 10, 9), 0); // window 2: streak 2, fires
      expect(core.takeAlerts(0).map((a) => `${a.state} ${(a.windowStartUs - T) / W}`)).to.deep.equal(['firing 2']);
    });

    it('failed handshakes of one source to many targets in a window raise a scan alert', () => {
      const scanRules = parseRulesConfig({ anomaly: { poisson: { enabled: false }, rttZScore: { enabled: false } }, security: { newPair: { enabled: false }, scan: { minDistinctTargets: 3 } } });
      const core = new PipelineCore({ windowUs: W, rules: scanRules });
      core.assign(0, 0);
      for (let i = 0; i < 4; i++) {
        const r = rec(T + 10 + i, 1, i);
        r.key.clientIp = '10.9.9.9';
        r.tcp!.failed = true;
        r.key.serverPort = 1000 + i;
        core.addRecord(0, i, r, 0);
      }
      core.partition(0).closeAll();
      const alerts = core.takeAlerts(0);
      expect(alerts.map((a) => `${a.rule} ${a.state} ${a.source}`)).to.deep.equal(['scan firing 10.9.9.9']);
    });
  });

  describe('cleaning (clean)', () => {
    it('drops repeated record ids (a producer retry) and counts them: the same pairs as one copy', () => {
      const records = synthRecords({ records: 3000, pairs: 10, spanUs: 5 * W, seed: 41 });
      // every 7th record delivered again right after itself, and a run of 100 again later (a retried batch)
      const log: FlowRecord[] = [];
      records.forEach((r, i) => {
        log.push(r);
        if (i % 7 === 0) log.push(structuredClone(r));
        if (i === 1500) log.push(...records.slice(1400, 1500).map((x) => structuredClone(x)));
      });
      const core = new PipelineCore({ windowUs: W, clean: true });
      core.assign(0, 0);
      const got: PairWindow[] = [];
      log.forEach((r, offset) => got.push(...core.addRecord(0, offset, r, 0)));
      got.push(...core.partition(0).closeAll());
      const dups = log.length - records.length;
      expect(core.stats.cleanDropped).to.equal(dups);
      expect(core.cleanCounters).to.deep.equal({ 'duplicate-id': dups });
      expect(core.stats.lateRecords).to.equal(0);
      expect(pairWindowKeys(got)).to.deep.equal(pairWindowKeys(embeddedPairs(records, W)));
      expect(byPairWindow(got)).to.deep.equal(byPairWindow(embeddedPairs(records, W)));
      // dropped records move the commit point like skipped messages
      expect(core.commitPoint(0).offset).to.equal(log.length);
    });

    it('keeps drop counts of revoked partitions; without clean nothing is dropped', () => {
      const [r] = synthRecords({ records: 1, seed: 3 });
      const core = new PipelineCore({ windowUs: W, clean: true });
      core.assign(0, 0);
      core.addRecord(0, 0, r!, 0);
      core.addRecord(0, 1, r!, 0);
      core.revoke(0);
      expect(core.cleanCounters).to.deep.equal({ 'duplicate-id': 1 });
      expect(core.stats.cleanDropped).to.equal(1);
      const plain = new PipelineCore({ windowUs: W });
      plain.assign(0, 0);
      plain.addRecord(0, 0, r!, 0);
      plain.addRecord(0, 1, r!, 0);
      expect(plain.stats).to.include({ cleanDropped: 0, records: 2 });
    });
  });
});
