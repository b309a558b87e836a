import { hostname } from 'node:os';
import { runCapture } from '../agent/capture-run.js';
import { openLiveSource } from '../capture/live-source.js';
import { UsageError } from '../errors.js';
import { createLogger } from '../log.js';
import { buildInventory } from '../ovsdb/inventory.js';
import { viewMirrors } from '../ovsdb/mirror-view.js';
import { openOvsdbSession, type OvsdbSession } from '../ovsdb/session.js';
import { intOption, type Command } from './command.js';
import { captureOutputOptions, formatSummary, openCaptureOutputs } from './capture-options.js';
import { ovsdbConfigFrom, ovsdbOptions } from './ovsdb-options.js';

export const captureCommand: Command = {
  name: 'capture',
  summary: "Capture live on a mirror's output interface: flow records and per-VM-pair windows until SIGINT/SIGTERM",
  usage:
    'capture --interface IF [--filter BPF] [--snaplen N] [--buffer-size MIB] [--duration SECONDS] [--db URL] [--mirror NAME] [--inventory FILE] [--flows-out FILE|-] [--pairs-out FILE|-] [--window SECONDS] [--format json|protobuf|avro]',
  description: [
    'Reads frames with libpcap (kernel timestamps in ns, original lengths, drop counters), decodes them,',
    'keeps the flow table and writes records as `replay` does. With --db, VMs are named from the OVSDB',
    'inventory (kept current); with --mirror, the loss ledger includes what the mirror sent.',
    'On SIGINT/SIGTERM (or after --duration) every flow is flushed and the summary goes to stderr.',
  ].join('\n'),
  options: {
    interface: { type: 'string', arg: 'IF', description: "The mirror's output interface (e.g. the internal port mirrorflow created)" },
    filter: { type: 'string', arg: 'BPF', description: 'libpcap filter expression' },
    snaplen: { type: 'string', arg: 'N', description: 'Bytes kept of each frame (64..262144)', default: '262144' },
    'buffer-size': { type: 'string', arg: 'MIB', description: 'Kernel capture buffer in MiB (1..2048)', default: '32' },
    duration: { type: 'string', arg: 'SECONDS', description: 'Stop after this long (default: until SIGINT/SIGTERM)' },
    mirror: { type: 'string', arg: 'NAME', description: 'Mirror feeding the interface (for the loss ledger; needs --db)' },
    ...captureOutputOptions,
    ...ovsdbOptions,
  },
  async run(values, _positionals, io) {
    const iface = values.interface;
    if (typeof iface !== 'string' || !iface) throw new UsageError('capture: missing --interface IF');
    const snaplen = intOption(values, 'snaplen', 64, 262144) ?? 262144;
    const bufferMiB = intOption(values, 'buffer-size', 1, 2048) ?? 32;
    const durationS = values.duration === undefined ? undefined : intOption(values, 'duration', 1, 31_536_000);
    const useDb = values.db !== undefined || io.env.MIRRORFLOW_DB !== undefined;
    if (values.mirror !== undefined && !useDb) throw new UsageError('capture: --mirror needs --db (or MIRRORFLOW_DB)');
    const outputs = await openCaptureOutputs(values);
    const logger = createLogger(io.env);
    let session: OvsdbSession | undefined;
    let mirrorTxStart: number | undefined;
    const mirrorTx = () => {
      if (!session || values.mirror === undefined) return undefined;
      const m = viewMirrors(session.tables()).find((x) => x.name === values.mirror);
      return m ? (m.statistics.tx_packets ?? 0) : undefined;
    };
    if (useDb) {
      session = await openOvsdbSession(ovsdbConfigFrom(values, io.env), { logger, reconnect: true });
      const refresh = () => outputs.resolver.replace(buildInventory(session!.tables()).map((e) => ({ vm: e.vmName, ...(e.mac ? { mac: e.mac } : {}) })));
      refresh();
      session.onChange(refresh);
      mirrorTxStart = mirrorTx();
      if (values.mirror !== undefined && mirrorTxStart === undefined) {
        await session.close();
        throw new UsageError(`capture: mirror not found (mirror=${String(values.mirror)})`);
      }
    }
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    io.signal.addEventListener('abort', onAbort, { once: true });
    const timer = durationS === undefined ? undefined : setTimeout(() => stop.abort(), durationS * 1000);
    const source = await openLiveSource({
      interface: iface,
      snaplen,
      bufferSizeBytes: bufferMiB * 1024 * 1024,
      ...(values.filter !== undefined ? { filter: String(values.filter) } : {}),
    });
    const agentId = values['agent-id'] === undefined ? hostname() : String(values['agent-id']);
    io.err(`capture: listening (interface=${iface}, snaplen=${snaplen}, timestamps=${source.tstampPrecision()})`);
    try {
      const result = await runCapture({
        source,
        windowUs: outputs.windowUs,
        resolver: outputs.resolver,
        ...(outputs.flowsOut ? { flowsOut: outputs.flowsOut } : {}),
        ...(outputs.pairsOut ? { pairsOut: outputs.pairsOut } : {}),
        table: {
          ...outputs.table,
          // a live capture's sequences restart with every run: ids carry the run's start time
          runId: Date.now().toString(36),
          observation: { interface: iface, ...(values.mirror !== undefined ? { mirror: String(values.mirror) } : {}) },
        },
        agentId,
        signal: stop.signal,
        wallClockTickMs: 250,
      });
      for (const line of formatSummary('capture', result)) io.err(line);
      const end = mirrorTx();
      if (end !== undefined && mirrorTxStart !== undefined) {
        io.err(`capture: mirror ${String(values.mirror)} sent ${end - mirrorTxStart} frames while capturing (Mirror.statistics, refreshed by ovs-vswitchd every few seconds)`);
      }
      return 0;
    } finally {
      if (timer) clearTimeout(timer);
      io.signal.removeEventListener('abort', onAbort);
      await source.close();
      await session?.close();
    }
  },
};
