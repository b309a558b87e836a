/**
 * Options shared by `replay` and `capture`: outputs, window, inventory, flow table bounds.
 */
import type { FlowRecord, PairWindow } from '../capture/flow-record.js';
import { flowRecordJsonText, pairWindowJsonText } from '../capture/record-json.js';
import { loadInventoryFile } from '../config/inventory-file.js';
import { UsageError } from '../errors.js';
import { OUTPUT_FORMATS, StreamRecordOutput, jsonTextLinesEncoder, openStream, type OutputFormat, type RecordOutput } from '../agent/record-output.js';
import { EndpointResolver, type VmIdentity } from '../pipeline/endpoint-resolver.js';
import { intOption, type OptionSpec, type Values } from './command.js';
import { codecOutput } from './record-encoders.js';
// kafka-config (and through it the codecs' protobufjs and avsc, ~45 ms of startup) loads only when Kafka is configured
const kafkaConfig = () => import('../pipeline/kafka-config.js');
import type { KafkaFlowOutputs } from '../pipeline/kafka-outputs.js';

export const captureOutputOptions: Record<string, OptionSpec> = {
  inventory: { type: 'string', arg: 'FILE', description: 'VM inventory: JSON [{"vm": "name", "mac": "52:54:00:…", "ips": ["10.0.0.5"]}]' },
  'flows-out': { type: 'string', arg: 'FILE|-', description: 'Write flow records here (- for stdout)' },
  'pairs-out': { type: 'string', arg: 'FILE|-', description: 'Write per-VM-pair windows here (- for stdout; default - when no output is given)' },
  window: { type: 'string', arg: 'SECONDS', description: 'Aggregation window (0: one window over the whole capture)', default: '10' },
  format: { type: 'string', arg: 'FORMAT', description: 'Output format: json (proto3 JSON lines), protobuf (length-delimited) or avro (container file); default json, with --brokers protobuf' },
  brokers: { type: 'string', arg: 'HOST:PORT[,...]', description: 'Send flow records (and the --inventory) to Kafka; PairWindows are then written only with --pairs-out' },
  'topic-prefix': { type: 'string', arg: 'P', description: 'Kafka topic prefix (default mirrorflow.)' },
  'kafka-config': { type: 'string', arg: 'FILE', description: 'Kafka settings (TLS, SASL, spool, batching…): the "kafka" object of a JSON config file, as pipeline --config; flags win' },
  'max-flows': { type: 'string', arg: 'N', description: 'Most flows held at once; beyond it the least recently active are evicted (counted)', default: '1000000' },
  'idle-timeout': { type: 'string', arg: 'SECONDS', description: 'End a flow after this long without packets (established TCP: 300 s)', default: '15' },
  'active-timeout': { type: 'string', arg: 'SECONDS', description: 'Long flows emit interim records this often', default: '60' },
  'agent-id': { type: 'string', arg: 'ID', description: 'Agent id in record ids and the observation point (default: the host name)' },
};

export interface CaptureOutputs {
  windowUs: number;
  format: OutputFormat;
  flowsOut?: RecordOutput<FlowRecord>;
  pairsOut?: RecordOutput<PairWindow>;
  resolver: EndpointResolver;
  table: { maxFlows: number; idleTimeoutMs: number; activeTimeoutMs: number };
  /** With --brokers: the Kafka side of flowsOut (for the summary). */
  kafka?: KafkaFlowOutputs & { topic: string };
}

export function parseCaptureSettings(values: Values) {
  const format = String(values.format ?? 'json') as OutputFormat;
  if (!OUTPUT_FORMATS.includes(format)) throw new UsageError(`invalid --format, expected json, protobuf or avro (format=${format})`);
  const windowS = numberOption(values, 'window', 0, 86_400) ?? 10;
  const maxFlows = intOption(values, 'max-flows', 1, 268_435_456) ?? 1_000_000;
  const idle = numberOption(values, 'idle-timeout', 0.001, 3600) ?? 15;
  const active = numberOption(values, 'active-timeout', 0.001, 3600) ?? 60;
  return { format, windowUs: Math.round(windowS * 1e6), table: { maxFlows, idleTimeoutMs: idle * 1000, activeTimeoutMs: active * 1000 } };
}

export async function openCaptureOutputs(values: Values, extraVms: VmIdentity[] = [], agentId = 'mirrorflow'): Promise<CaptureOutputs> {
  const settings = parseCaptureSettings(values);
  const vms: VmIdentity[] = [...extraVms];
  const fileVms = values.inventory !== undefined ? await loadInventoryFile(String(values.inventory)) : undefined;
  if (fileVms) vms.push(...fileVms);
  const kafkaFile = values['kafka-config'] !== undefined ? await (await kafkaConfig()).loadKafkaConfigFile(String(values['kafka-config'])) : undefined;
  const brokers = values.brokers !== undefined ? String(values.brokers) : kafkaFile?.brokers !== undefined ? kafkaFile.brokers : undefined;
  let flowsPath = values['flows-out'] === undefined ? undefined : String(values['flows-out']);
  let pairsPath = values['pairs-out'] === undefined ? undefined : String(values['pairs-out']);
  if (flowsPath === undefined && pairsPath === undefined && brokers === undefined) pairsPath = '-';
  if (flowsPath === '-' && pairsPath === '-') throw new UsageError('--flows-out and --pairs-out cannot both be stdout (-)');
  if (settings.format !== 'json' && (flowsPath === '-' || pairsPath === '-') && process.stdout.isTTY) {
    throw new UsageError(`binary output to a terminal; give a file (format=${settings.format})`);
  }
  const out: CaptureOutputs = { ...settings, resolver: new EndpointResolver(vms) };
  if (flowsPath !== undefined) out.flowsOut = openOutput<FlowRecord>(flowsPath, settings.format, 'flow', flowRecordJsonText);
  if (pairsPath !== undefined) out.pairsOut = openOutput<PairWindow>(pairsPath, settings.format, 'pair', pairWindowJsonText);
  if (brokers !== undefined) {
    const { parseKafkaConfig } = await kafkaConfig();
    const cfg = parseKafkaConfig({
      clientId: `mirrorflow-${agentId}`,
      ...kafkaFile,
      brokers,
      ...(values['topic-prefix'] !== undefined ? { topicPrefix: String(values['topic-prefix']) } : {}),
      format: values.format === undefined ? (kafkaFile?.format ?? 'protobuf') : settings.format,
    });
    // kafkajs loads only when records go to Kafka
    const { openKafkaFlowOutputs } = await import('../pipeline/kafka-outputs.js');
    const { inventoryFromFile } = await import('../pipeline/inventory-publisher.js');
    const kafka = await openKafkaFlowOutputs(cfg, { agentId, namer: out.resolver, ...(fileVms ? { inventory: inventoryFromFile(fileVms) } : {}) });
    out.kafka = { ...kafka, topic: `${cfg.topicPrefix}flows` };
    out.flowsOut = out.flowsOut ? teeOutputs(out.flowsOut, kafka.flowsOut) : kafka.flowsOut;
  }
  return out;
}

/** Writes every record to both outputs; behind when either is. */
function teeOutputs<T>(a: RecordOutput<T>, b: RecordOutput<T>): RecordOutput<T> {
  return {
    write(r) {
      a.write(r);
      b.write(r);
    },
    get behind() {
      return Boolean(a.behind || b.behind);
    },
    async drained() {
      await Promise.all([a.drained(), b.drained()]);
    },
    async close() {
      const results = await Promise.allSettled([a.close(), b.close()]);
      for (const r of results) if (r.status === 'rejected') throw r.reason;
    },
  };
}

function openOutput<T>(path: string, format: OutputFormat, kind: 'flow' | 'pair', toJsonText: (r: T) => string): RecordOutput<T> {
  if (format !== 'json') return codecOutput<T>(openStream(path), kind === 'flow' ? 'flow-record' : 'pair-window', format, path === '-' ? 'stdout' : path);
  // canonical proto3 JSON text written directly (record-json.ts; equal to the table-driven mapping, tested)
  return new StreamRecordOutput(openStream(path), jsonTextLinesEncoder(toJsonText), path === '-' ? 'stdout' : path);
}

function numberOption(values: Values, name: string, min: number, max: number): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const s = String(v);
  const n = Number(s);
  if (s.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`invalid --${name}, expected a number ${min}..${max} (${name}=${s})`);
  return n;
}

export function formatSummary(command: string, r: { ledger: import('../capture/worker.js').CaptureLedger; flowRecords: number; pairWindows: number; lateRecords: number; seconds: number }): string[] {
  const l = r.ledger;
  const fps = r.seconds > 0 ? l.frames / r.seconds : 0;
  const lines = [
    `${command}: ${l.frames} frames, ${l.bytes} bytes, ${l.undecodable} undecodable, ${l.flowsCreated} flows (${r.flowRecords} records, ${l.evictions} evicted), ${r.pairWindows} pair windows, ${r.seconds.toFixed(3)} s, ${Math.round(fps)} frames/s`,
  ];
  const reasons = Object.entries(l.undecodableByReason).sort((a, b) => b[1] - a[1]);
  if (reasons.length) lines.push(`${command}: undecodable by reason: ${reasons.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  if (l.pcapReceived !== undefined) lines.push(`${command}: libpcap received=${l.pcapReceived} dropped=${l.pcapDropped ?? 0} ifdropped=${l.pcapIfDropped ?? 0}`);
  if (r.lateRecords) lines.push(`${command}: ${r.lateRecords} records arrived after their window was emitted (late, not counted)`);
  return lines;
}
