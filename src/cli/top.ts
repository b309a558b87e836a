/**
 * `mirrorflow top`: the live table of VM pairs, refreshed as each window completes, from an agent's
 * pairs file (JSON lines, followed as it grows) or from the pairs topic (any format, decoded by its
 * headers). Alerts come from --alerts FILE or the alerts topic.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { MirrorflowError, UsageError, kv } from '../errors.js';
import { intOption, type Command, type Io } from './command.js';
import { PairTable, TOP_SORT_KEYS, formatTopWindow, type TopSortKey, type TopWindow } from './top-table.js';

const CLEAR = '\x1b[H\x1b[2J';

export const topCommand: Command = {
  name: 'top',
  summary: 'Live table of VM pairs per window (throughput, packets, flows, RTT, loss, alerts) from a pairs file or the pairs topic',
  usage: 'top (--file FILE [--alerts FILE] | --brokers B [--topic-prefix P]) [--sort throughput|rtt|loss|packets|pair] [--limit N] [--once]',
  description: [
    'Shows each window once it is complete (a later window has started), one row per VM pair.',
    '--file follows a JSON-lines pairs file as an agent writes it (`mirrorflow agent --pairs-out FILE`);',
    '--brokers reads <prefix>pairs and <prefix>alerts (committed records only), from their end unless --from-beginning.',
    '--once prints the last complete window of what is there now (and the open one at the end of a file) and exits.',
    'On a terminal the table redraws in place; otherwise each window is printed below the last.',
  ].join('\n'),
  options: {
    file: { type: 'string', arg: 'FILE', description: 'PairWindow JSON lines (an agent\'s --pairs-out)' },
    alerts: { type: 'string', arg: 'FILE', description: 'Alert JSON lines to mark pairs with firing alerts (with --file)' },
    brokers: { type: 'string', arg: 'HOST:PORT[,...]', description: 'Read the pairs and alerts topics instead of a file' },
    'topic-prefix': { type: 'string', arg: 'P', description: 'Kafka topic prefix (default mirrorflow.)' },
    'from-beginning': { type: 'boolean', description: 'Kafka: start at the oldest retained window' },
    sort: { type: 'string', arg: 'KEY', description: `Row order: ${TOP_SORT_KEYS.join(', ')}`, default: 'throughput' },
    limit: { type: 'string', arg: 'N', description: 'Show at most N pairs per window', default: '40' },
    once: { type: 'boolean', description: 'Print the latest window of what is there now and exit' },
  },
  async run(values, _positionals, io) {
    const sort = String(values.sort ?? 'throughput') as TopSortKey;
    if (!TOP_SORT_KEYS.includes(sort)) throw new UsageError(`top: invalid --sort, expected ${TOP_SORT_KEYS.join(', ')}${kv({ sort })}`);
    const limit = intOption(values, 'limit', 1, 100_000) ?? 40;
    const file = values.file === undefined ? undefined : String(values.file);
    const brokers = values.brokers ?? (file === undefined ? io.env.MIRRORFLOW_BROKERS : undefined);
    if ((file === undefined) === (brokers === undefined)) throw new UsageError('top: give either --file FILE or --brokers HOST:PORT');
    const tty = Boolean(process.stdout.isTTY) && !values.once;
    const show = (ws: TopWindow[]) => {
      const w = ws[ws.length - 1];
      if (!w) return;
      const lines = formatTopWindow(w, { sort, limit, ...(tty ? { width: process.stdout.columns } : {}) });
      if (tty) io.out(CLEAR + lines.join('\n'));
      else {
        for (const l of lines) io.out(l);
        io.out('');
      }
    };
    const table = new PairTable();
    if (file !== undefined) {
      const alertsFile = values.alerts === undefined ? undefined : String(values.alerts);
      return followFiles(file, alertsFile, table, show, Boolean(values.once), io);
    }
    return followTopics(String(brokers), values, table, show, Boolean(values.once), io);
  },
};

/** Reads complete lines appended to a file since the last call. */
class LineFollower {
  private handle: FileHandle | undefined;
  private position = 0;
  private rest = '';
  constructor(readonly path: string) {}

  async read(): Promise<string[]> {
    if (!this.handle) {
      try {
        this.handle = await open(this.path, 'r');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw e;
      }
    }
    const size = (await stat(this.path)).size;
    if (size < this.position) {
      // truncated or replaced: start over
      this.position = 0;
      this.rest = '';
    }
    if (size === this.position) return [];
    const buf = Buffer.allocUnsafe(size - this.position);
    const { bytesRead } = await this.handle.read(buf, 0, buf.length, this.position);
    this.position += bytesRead;
    const text = this.rest + buf.subarray(0, bytesRead).toString('utf8');
    const lines = text.split('\n');
    this.rest = lines.pop() ?? '';
    return lines.filter((l) => l.trim() !== '');
  }

  async close(): Promise<void> {
    await this.handle?.close();
  }
}

async function followFiles(
  path: string,
  alertsPath: string | undefined,
  table: PairTable,
  show: (ws: TopWindow[]) => void,
  once: boolean,
  io: Io,
): Promise<number> {
  const pairs = new LineFollower(path);
  const alerts = alertsPath ? new LineFollower(alertsPath) : undefined;
  if (once) {
    try {
      await stat(path);
    } catch {
      throw new UsageError(`top: cannot read the pairs file${kv({ file: path })}`);
    }
  }
  let bad = 0;
  const parse = (line: string, what: string): Record<string, unknown> | undefined => {
    try {
      const v = JSON.parse(line) as unknown;
      if (v && typeof v === 'object') return v as Record<string, unknown>;
    } catch {
      // counted below
    }
    if (++bad <= 3) io.err(`top: warning: skipped a line that is not a JSON object${kv({ file: what, line: line.slice(0, 60) })}`);
    return undefined;
  };
  try {
    let last: TopWindow[] = [];
    for (;;) {
      if (alerts) for (const l of await alerts.read()) {
        const a = parse(l, alertsPath!);
        if (a) table.pushAlert(a);
      }
      const done: TopWindow[] = [];
      for (const l of await pairs.read()) {
        const w = parse(l, path);
        if (w) done.push(...table.push(w));
      }
      if (once) {
        const all = [...last, ...done, ...table.flush()];
        show(all);
        if (all.length === 0) io.err(`top: no pair windows yet${kv({ file: path })}`);
        return 0;
      }
      if (done.length) {
        show(done);
        last = done;
      }
      if (io.signal.aborted) return 0;
      await new Promise<void>((r) => {
        const onAbort = () => (clearTimeout(t), r());
        const t = setTimeout(() => (io.signal.removeEventListener('abort', onAbort), r()), 250);
        io.signal.addEventListener('abort', onAbort, { once: true });
      });
      if (io.signal.aborted) return 0;
    }
  } finally {
    await pairs.close();
    await alerts?.close();
  }
}

async function followTopics(
  brokers: string,
  values: Record<string, unknown>,
  table: PairTable,
  show: (ws: TopWindow[]) => void,
  once: boolean,
  io: Io,
): Promise<number> {
  // kafkajs loads only for this mode
  const [{ Kafka, logLevel }, { parseKafkaConfig, kafkaClientOptions }, { decodeTailMessage }] = await Promise.all([
    import('../pipeline/kafkajs.js').then((m) => m.default),
    import('../pipeline/kafka-config.js'),
    import('./tail.js'),
  ]);
  const cfg = parseKafkaConfig({ brokers, ...(values['topic-prefix'] !== undefined ? { topicPrefix: String(values['topic-prefix']) } : {}) });
  const pairsTopic = `${cfg.topicPrefix}pairs`;
  const alertsTopic = `${cfg.topicPrefix}alerts`;
  const kafka = new Kafka({ ...(await kafkaClientOptions(cfg)), logLevel: logLevel.NOTHING, retry: { retries: 3 } } as ConstructorParameters<typeof Kafka>[0]);
  const admin = kafka.admin();
  let topics: string[];
  try {
    await admin.connect();
    topics = await admin.listTopics();
  } catch (e) {
    throw new MirrorflowError('top-connect', `top: cannot reach the brokers${kv({ brokers: cfg.brokers.join(','), reason: (e as Error).message })}`, { cause: e });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  if (!topics.includes(pairsTopic)) throw new MirrorflowError('top-topic', `top: topic not found${kv({ topic: pairsTopic, brokers: cfg.brokers.join(',') })}`);
  const consumer = kafka.consumer({ groupId: `mirrorflow-top-${randomBytes(6).toString('hex')}`, readUncommitted: false, maxWaitTimeInMs: 500 });
  let finish!: (e?: unknown) => void;
  const done = new Promise<void>((resolve, reject) => (finish = (e?: unknown) => (e === undefined ? resolve() : reject(e))));
  io.signal.addEventListener('abort', () => finish(), { once: true });
  consumer.on(consumer.events.CRASH, (ev) => {
    if (!ev.payload.restart) finish(new MirrorflowError('top-consumer', `top: consumer failed${kv({ reason: ev.payload.error.message })}`));
  });
  let lastShown: TopWindow[] = [];
  let idleSince = Date.now();
  let graceTimer: NodeJS.Timeout | undefined;
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: topics.includes(alertsTopic) ? [pairsTopic, alertsTopic] : [pairsTopic], fromBeginning: Boolean(values['from-beginning']) || once });
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        idleSince = Date.now();
        const d = decodeTailMessage({ key: message.key, value: message.value, headers: message.headers });
        if (!d.ok) return;
        if (topic === alertsTopic) table.pushAlert(d.json);
        else {
          // each partition emits a window when its own watermark passes it
          const ws = table.push(d.json, String(partition), Date.now());
          if (ws.length) {
            lastShown = ws;
            if (!once) show(ws);
          }
        }
      },
    });
    graceTimer = setInterval(() => {
      const ws = table.expire(Date.now());
      if (ws.length) {
        lastShown = ws;
        if (!once) show(ws);
      }
    }, 250);
    if (once) {
      // read what is there now: stop after a quiet second
      const t = setInterval(() => {
        if (Date.now() - idleSince > 1500) finish();
      }, 250);
      await done.finally(() => clearInterval(t));
      show([...lastShown, ...table.flush()]);
    } else await done;
  } finally {
    clearInterval(graceTimer);
    await consumer.disconnect().catch(() => undefined);
  }
  return 0;
}
