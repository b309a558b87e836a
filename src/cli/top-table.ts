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

/** Collects windows and alerts; `push` returns the windows that became complete. */
export class PairTable {
  private readonly open = new Map<number, { endUs: number; rows: Map<string, TopRow> }>();
  /** Firing alerts per pair (`a|b`), by rule, until resolved. */
  private readonly firing = new Map<string, Map<string, string>>();
  private latestStartUs = -Infinity;

  /** Adds a PairWindow (proto3 JSON); returns windows that are complete now (older than the newest start). */
  push(w: Json): TopWindow[] {
    const start = num(w.windowStartUs);
    const end = num(w.windowEndUs);
    let win = this.open.get(start);
    if (!win) this.open.set(start, (win = { endUs: end, rows: new Map() }));
    const row = rowFromPairJson(w);
    win.rows.set(`${row.a}|${row.b}`, row);
    if (start > this.latestStartUs) this.latestStartUs = start;
    return this.completeBefore(this.latestStartUs);
  }

  /** Adds an Alert (proto3 JSON): firing ones are shown on their pair until resolved. */
  pushAlert(a: Json): void {
    const pair = `${String(a.a ?? '')}|${String(a.b ?? '')}`;
    const rule = String(a.rule ?? a.ruleName ?? a.kind ?? 'alert');
    const state = String(a.state ?? '').toLowerCase();
    let m = this.firing.get(pair);
    if (state.includes('resolved')) {
      m?.delete(rule);
      if (m && m.size === 0) this.firing.delete(pair);
      return;
    }
    if (!m) this.firing.set(pair, (m = new Map()));
    m.set(rule, String(a.severity ?? '').toLowerCase());
  }

  /** Every window still open (end of a file, shutdown). */
  flush(): TopWindow[] {
    return this.completeBefore(Infinity);
  }

  private completeBefore(startUs: number): TopWindow[] {
    const out: TopWindow[] = [];
    for (const s of [...this.open.keys()].sort((x, y) => x - y)) {
      if (s >= startUs) break;
      const w = this.open.get(s)!;
      this.open.delete(s);
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
