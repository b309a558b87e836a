/**
 * The live table of `mirrorflow top` (and the demo): PairWindows (as proto3 JSON, from a file or
 * the pairs topic) grouped by window; once a later window starts, the previous one is complete and
 * is shown: one row per VM pair with throughput, packets, flows, handshake RTT p50/p95, echo RTT,
 * loss and the pair's firing alerts. Pure: no terminal, no clock.
 */

export const TOP_SORT_KEYS = ['throughput', 'rtt', 'loss', 'packets', 'pair'] as const;
export type TopSortKey = (typeof TOP_SORT_KEYS)[number];

export interface TopRow {
  a: string;
  b: string;
  throughputBps: number;
  packets: number;
  bytes: number;
  flows: number;
  handshakes: number;
  rttP50Us: number;
  rttP95Us: number;
  echoRttP50Us: number;
  echoes: number;
  lossRate: number;
  retransmits: number;
  gapFills: number;
  failedHandshakes: number;
  alerts: string[];
}

export interface TopWindow {
  windowStartUs: number;
  windowEndUs: number;
  rows: TopRow[];
}

type Json = Record<string, unknown>;

function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v !== '') return Number(v);
  return 0;
}

function obj(v: unknown): Json {
  return v !== null && typeof v === 'object' ? (v as Json) : {};
}

/** One PairWindow in proto3 JSON (int64 as strings, zero fields left out) → a row. */
export function rowFromPairJson(w: Json): TopRow {
  const ab = obj(w.aToB);
  const ba = obj(w.bToA);
  const tcp = obj(w.tcp);
  const icmp = obj(w.icmp);
  const hs = obj(tcp.handshakeRttUs);
  const echo = obj(icmp.rttUs);
  return {
    a: String(w.a ?? ''),
    b: String(w.b ?? ''),
    throughputBps: num(w.throughputBps),
    packets: num(ab.packets) + num(ba.packets),
    bytes: num(ab.bytes) + num(ba.bytes),
    flows: num(w.flows),
    handshakes: num(tcp.handshakes),
    rttP50Us: num(hs.p50),
    rttP95Us: num(hs.p95),
    echoRttP50Us: num(echo.p50),
    echoes: num(echo.count),
    lossRate: num(w.lossRate),
    retransmits: num(tcp.retransmits),
    gapFills: num(tcp.gapFills),
    failedHandshakes: num(tcp.failedHandshakes),
    alerts: [],
  };
}

/**
 * Collects windows and alerts; `push` returns the windows that became complete.
 *
 * Windows may come from several sources (the pairs topic's partitions: each emits a window when
 * its own watermark passes): a window is complete once every source that has delivered windows
 * has started a later one, or once `graceMs` passed since the first later window appeared (a
 * partition whose pairs fell silent must not hold the table). Alerts apply from their own window
 * on: an alert fired for window N+1 does not mark window N.
 */
export class PairTable {
  private readonly open = new Map<number, { endUs: number; rows: Map<string, TopRow>; laterSinceMs: number | undefined }>();
  /** Firing alerts per pair (`a|b`), by rule, as of the windows already shown. */
  private readonly firing = new Map<string, Map<string, string>>();
  /** Alert events not yet applied, in arrival order. */
  private pendingAlerts: { startUs: number; pair: string; rule: string; severity: string; resolved: boolean }[] = [];
  /** Newest window start per source. */
  private readonly latest = new Map<string, number>();

  constructor(private readonly graceMs = 2000) {}

  /** Adds a PairWindow (proto3 JSON) from `source`; returns windows that are complete now. */
  push(w: Json, source = '', nowMs = 0): TopWindow[] {
    const start = num(w.windowStartUs);
    const end = num(w.windowEndUs);
    let win = this.open.get(start);
    if (!win) this.open.set(start, (win = { endUs: end, rows: new Map(), laterSinceMs: undefined }));
    const row = rowFromPairJson(w);
    win.rows.set(`${row.a}|${row.b}`, row);
    if (start > (this.latest.get(source) ?? -Infinity)) this.latest.set(source, start);
    for (const [s, o] of this.open) if (s < start && o.laterSinceMs === undefined) o.laterSinceMs = nowMs;
    return this.completeBefore(Math.min(...this.latest.values()));
  }

  /** Windows whose grace ran out (several sources: a silent partition must not hold the table). */
  expire(nowMs: number): TopWindow[] {
    let upTo = -Infinity;
    for (const [s, o] of this.open) if (o.laterSinceMs !== undefined && nowMs - o.laterSinceMs >= this.graceMs && s + 1 > upTo) upTo = s + 1;
    return this.completeBefore(upTo);
  }

  /** Adds an Alert (proto3 JSON): a firing one shows on its pair from its window on, until resolved. */
  pushAlert(a: Json): void {
    this.pendingAlerts.push({
      startUs: num(a.windowStartUs),
      pair: `${String(a.a ?? '')}|${String(a.b ?? '')}`,
      rule: String(a.rule ?? a.ruleName ?? a.kind ?? 'alert'),
      severity: String(a.severity ?? '').toLowerCase(),
      resolved: String(a.state ?? '').toLowerCase().includes('resolved'),
    });
  }

  /** Every window still open (end of a file, shutdown). */
  flush(): TopWindow[] {
    return this.completeBefore(Infinity);
  }

  private applyAlertsUpTo(startUs: number): void {
    const keep: typeof this.pendingAlerts = [];
    for (const e of this.pendingAlerts.sort((x, y) => x.startUs - y.startUs)) {
      if (e.startUs > startUs) {
        keep.push(e);
        continue;
      }
      let m = this.firing.get(e.pair);
      if (e.resolved) {
        m?.delete(e.rule);
        if (m && m.size === 0) this.firing.delete(e.pair);
      } else {
        if (!m) this.firing.set(e.pair, (m = new Map()));
        m.set(e.rule, e.severity);
      }
    }
    this.pendingAlerts = keep;
  }

  private completeBefore(startUs: number): TopWindow[] {
    const out: TopWindow[] = [];
    for (const s of [...this.open.keys()].sort((x, y) => x - y)) {
      if (s >= startUs) break;
      const w = this.open.get(s)!;
      this.open.delete(s);
      this.applyAlertsUpTo(s);
      const rows = [...w.rows.values()];
      for (const r of rows) r.alerts = [...(this.firing.get(`${r.a}|${r.b}`)?.keys() ?? [])].sort();
      out.push({ windowStartUs: s, windowEndUs: w.endUs, rows });
    }
    return out;
  }
}

export function sortRows(rows: TopRow[], key: TopSortKey): TopRow[] {
  const by: Record<TopSortKey, (r: TopRow) => number | string> = {
    throughput: (r) => -r.throughputBps,
    rtt: (r) => -Math.max(r.rttP95Us, r.echoRttP50Us),
    loss: (r) => -r.lossRate,
    packets: (r) => -r.packets,
    pair: (r) => `${r.a}|${r.b}`,
  };
  const f = by[key];
  return [...rows].sort((x, y) => {
    const a = f(x);
    const b = f(y);
    if (a < b) return -1;
    if (a > b) return 1;
    return `${x.a}|${x.b}` < `${y.a}|${y.b}` ? -1 : 1;
  });
}

export function formatBps(bps: number): string {
  const units = ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s'];
  let v = bps;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

function ms(us: number): string {
  if (!(us > 0)) return '-';
  return us >= 100_000 ? `${(us / 1000).toFixed(0)}` : `${(us / 1000).toFixed(2)}`;
}

function utc(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** The table as lines of text (no colour, no cursor movement: the caller decides). */
export function formatTopWindow(w: TopWindow, opts: { sort: TopSortKey; limit?: number; width?: number }): string[] {
  const rows = sortRows(w.rows, opts.sort).slice(0, opts.limit ?? Infinity);
  const header = ['PAIR', 'THROUGHPUT', 'PACKETS', 'FLOWS', 'HS RTT p50/p95 ms', 'ECHO RTT ms', 'LOSS %', 'RETX/GAP', 'ALERTS'];
  const table = rows.map((r) => [
    `${r.a} <-> ${r.b}`,
    formatBps(r.throughputBps),
    String(r.packets),
    String(r.flows),
    r.handshakes > 0 ? `${ms(r.rttP50Us)}/${ms(r.rttP95Us)}` : '-',
    r.echoes > 0 ? ms(r.echoRttP50Us) : '-',
    (r.lossRate * 100).toFixed(2),
    `${r.retransmits}/${r.gapFills}`,
    r.alerts.join(',') || '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const right = new Set([1, 2, 3, 4, 5, 6, 7]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const secs = (w.windowEndUs - w.windowStartUs) / 1e6;
  const out = [`window ${utc(w.windowStartUs)} +${secs}s  ${w.rows.length} pair${w.rows.length === 1 ? '' : 's'}`, line(header), ...table.map(line)];
  if (opts.limit !== undefined && w.rows.length > opts.limit) out.push(`… ${w.rows.length - opts.limit} more`);
  return opts.width ? out.map((l) => (l.length > opts.width! ? `${l.slice(0, opts.width! - 1)}…` : l)) : out;
}
