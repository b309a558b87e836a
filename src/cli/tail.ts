/**
 * `mirrorflow tail`: any mirrorflow topic (flows, pairs, alerts, inventory) as JSON lines on stdout,
 * each message decoded by its headers (mirrorflow-schema, content-type, version), so one command
 * reads every format (protobuf, Avro, JSON) without being told which.
 *
 *   FlowRecord / PairWindow  describeMessage → decodeRecord → canonical proto3 JSON
 *   FlowRecordBatch          every FlowRecord of the batch (codec-batch.ts), one line each
 *   Alert                    protobuf / Avro / JSON per proto/mirrorflow.proto, proto/alert.avsc → proto3 JSON
 *   VmInventory              decodeInventoryMessage → the VmInventory; a tombstone as {agentId, vm, deleted: true}
 *
 * A message it cannot decode is one warning line on stderr (topic, partition, offset, reason) and is
 * counted; tail goes on. Without --group it joins a throwaway group (nothing committed) and starts
 * at the end of the topic (or at the beginning with --from-beginning); with --group it commits what
 * it printed, so the next run resumes there. Reads committed records only (the pipeline writes
 * transactionally). Stops on SIGINT/SIGTERM or after --max messages, then prints a summary to stderr.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import avro from 'avsc';
import { Kafka, logLevel } from '../pipeline/kafkajs.js';
import { type EachBatchPayload, type IHeaders } from 'kafkajs';
import { toProto3Json, pairWindowToProto3Json, type FlowRecord, type PairWindow } from '../capture/flow-record.js';
import { MirrorflowError, UsageError, kv } from '../errors.js';
import { ALERT_SCHEMA_VERSION, ALERT_SPEC, alertToProto3Json } from '../pipeline/alert-record.js';
import { decodeAvroDatum } from '../pipeline/codec-avro.js';
import { protoRoot } from '../pipeline/codec-schemas.js';
import { fromWireValue } from '../pipeline/codec-values.js';
import { CONTENT_TYPE_HEADER, CONTENT_TYPES, SCHEMA_HEADER, SCHEMA_VERSION_HEADER, decodeRecord, describeMessage } from '../pipeline/codec.js';
import { FLOW_BATCH_SCHEMA, decodeFlowMessage } from '../pipeline/codec-batch.js';
import { INVENTORY_SCHEMA, INVENTORY_SCHEMA_VERSION, decodeInventoryMessage } from '../pipeline/inventory-publisher.js';
import { kafkaClientOptions, loadKafkaConfigFile, parseKafkaConfig } from '../pipeline/kafka-config.js';
import { intOption, type Command } from './command.js';

export const ALERT_SCHEMA = 'mirrorflow.v1.Alert';
export const TAIL_OUTPUT_FORMATS = ['json', 'envelope'] as const;
export type TailOutputFormat = (typeof TAIL_OUTPUT_FORMATS)[number];

export interface TailMessage {
  key: Buffer | string | null | undefined;
  value: Buffer | null;
  headers?: IHeaders | undefined;
}

export type TailDecoded =
  /** `records`: every record of the message (one, or those of a FlowRecordBatch); `json` is the first. */
  | { ok: true; schema: string; json: Record<string, unknown>; records: Record<string, unknown>[] }
  | { ok: false; reason: string };

/** kafkajs headers (Buffer, string, or a list of them) → text values (the first of a list). */
export function headerText(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) out[k] = first.toString();
  }
  return out;
}

let alertAvro: avro.Type | undefined;
function alertAvroType(): avro.Type {
  alertAvro ??= avro.Type.forSchema(JSON.parse(readFileSync(new URL('../../proto/alert.avsc', import.meta.url), 'utf8')));
  return alertAvro;
}

/** An Alert message (any of the three formats) → its proto3 JSON; throws on anything wrong. */
function decodeAlert(h: Record<string, string>, value: Buffer): Record<string, unknown> {
  const version = Number(h[SCHEMA_VERSION_HEADER]);
  if (version !== ALERT_SCHEMA_VERSION) throw new Error(`unsupported schema version${kv({ schema: ALERT_SCHEMA, version: h[SCHEMA_VERSION_HEADER] ?? '(none)', supported: ALERT_SCHEMA_VERSION })}`);
  const ct = h[CONTENT_TYPE_HEADER];
  let wire: unknown;
  if (ct === CONTENT_TYPES.protobuf) wire = protoRoot().lookupType(ALERT_SCHEMA).decode(value);
  else if (ct === CONTENT_TYPES.avro) wire = decodeAvroDatum(alertAvroType(), value);
  else if (ct === CONTENT_TYPES.json) wire = JSON.parse(value.toString('utf8'));
  else throw new Error(`unknown content type${kv({ [CONTENT_TYPE_HEADER]: ct ?? '(none)', schema: ALERT_SCHEMA })}`);
  const alert = fromWireValue(ALERT_SPEC, wire);
  if (alert.id === '') throw new Error('malformed Alert (field=id, problem=empty)');
  if (alert.schemaVersion !== ALERT_SCHEMA_VERSION) throw new Error(`malformed Alert (field=schemaVersion, problem=unsupported ${String(alert.schemaVersion)})`);
  return alertToProto3Json(alert as unknown as Parameters<typeof alertToProto3Json>[0]);
}

/**
 * Decodes one message of a mirrorflow topic by its headers. Never throws: the bytes are untrusted,
 * so whatever is wrong comes back as `{ ok: false, reason }`.
 */
export function decodeTailMessage(m: TailMessage): TailDecoded {
  const h = headerText(m.headers);
  const schema = h[SCHEMA_HEADER] ?? '';
  try {
    if (schema === INVENTORY_SCHEMA) {
      if (Number(h[SCHEMA_VERSION_HEADER]) !== INVENTORY_SCHEMA_VERSION) {
        throw new Error(`unsupported schema version${kv({ schema, version: h[SCHEMA_VERSION_HEADER] ?? '(none)', supported: INVENTORY_SCHEMA_VERSION })}`);
      }
      const d = decodeInventoryMessage(m.key ?? '', m.value);
      const json = d.inventory ? (d.inventory as unknown as Record<string, unknown>) : { agentId: d.agentId, vm: d.vm, deleted: true };
      return { ok: true, schema, json, records: [json] };
    }
    if (m.value === null) return { ok: false, reason: `empty message (tombstone) on a record topic${kv({ schema: schema || '(none)' })}` };
    if (schema === ALERT_SCHEMA) {
      const json = decodeAlert(h, m.value);
      return { ok: true, schema, json, records: [json] };
    }
    if (schema === FLOW_BATCH_SCHEMA) {
      const records = decodeFlowMessage(h, m.value).map((r) => toProto3Json(r) as unknown as Record<string, unknown>);
      if (!records.length) return { ok: false, reason: `empty batch${kv({ schema })}` };
      return { ok: true, schema, json: records[0]!, records };
    }
    const d = describeMessage(h);
    const json =
      d.kind === 'flow-record'
        ? toProto3Json(decodeRecord(d.kind, m.value, d.format) as FlowRecord)
        : pairWindowToProto3Json(decodeRecord(d.kind, m.value, d.format) as PairWindow);
    return { ok: true, schema, json, records: [json] };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}

export interface TailStats {
  messages: number;
  printed: number;
  undecodable: number;
}

export const tailCommand: Command = {
  name: 'tail',
  summary: 'Print a mirrorflow Kafka topic (flows, pairs, alerts, inventory) as JSON lines, decoded by the message headers',
  usage: 'tail --brokers B --topic T [--from-beginning] [--group G] [--max N] [--format-out json|envelope] [--config FILE]',
  description: [
    'Each message becomes one line of canonical proto3 JSON (FlowRecord, PairWindow, Alert) or a VmInventory;',
    'the format (protobuf, Avro, JSON) is read from the headers. Undecodable messages: one warning on stderr each, counted.',
    'Without --group: a throwaway group, nothing committed, starting at the end (or the beginning with --from-beginning).',
    'With --group: offsets of printed messages are committed, so the next run resumes there.',
    'Stops on SIGINT/SIGTERM or after --max messages; a summary goes to stderr.',
    'Broker list: --brokers, else MIRRORFLOW_BROKERS, else the config file (kafka.brokers; also TLS/SASL there).',
  ].join('\n'),
  options: {
    brokers: { type: 'string', arg: 'HOST:PORT[,...]', description: 'Kafka bootstrap brokers' },
    topic: { type: 'string', arg: 'T', description: 'Full topic name, e.g. mirrorflow.pairs' },
    'from-beginning': { type: 'boolean', description: 'Start at the oldest retained message (a new group; an existing --group resumes)' },
    group: { type: 'string', arg: 'G', description: 'Consumer group (default: a throwaway one)' },
    max: { type: 'string', arg: 'N', description: 'Stop after N messages (decoded or not)' },
    'format-out': { type: 'string', arg: 'FORMAT', description: 'json: the record; envelope: {topic, partition, offset, key, schema, value}', default: 'json' },
    config: { type: 'string', arg: 'FILE', description: 'JSON config; its "kafka" section (brokers, tls, sasl, ...)' },
  },
  async run(values, _positionals, io) {
    const topic = values.topic;
    if (typeof topic !== 'string' || topic.trim() === '') throw new UsageError('tail: missing --topic T');
    const formatOut = String(values['format-out'] ?? 'json') as TailOutputFormat;
    if (!TAIL_OUTPUT_FORMATS.includes(formatOut)) throw new UsageError(`invalid --format-out, expected ${TAIL_OUTPUT_FORMATS.join(' or ')}${kv({ 'format-out': formatOut })}`);
    const max = intOption(values, 'max', 1, Number.MAX_SAFE_INTEGER);
    const named = values.group !== undefined;
    const group = named ? String(values.group) : `mirrorflow-tail-${randomBytes(6).toString('hex')}`;
    if (group.trim() === '') throw new UsageError('invalid --group, expected a non-empty name (group=)');
    const kafkaInput = values.config !== undefined ? await loadKafkaConfigFile(String(values.config)) : {};
    const brokers = values.brokers ?? io.env.MIRRORFLOW_BROKERS;
    if (brokers !== undefined) kafkaInput.brokers = String(brokers);
    if (kafkaInput.brokers === undefined) throw new UsageError('tail: missing --brokers HOST:PORT (or MIRRORFLOW_BROKERS, or kafka.brokers in --config)');
    const cfg = parseKafkaConfig(kafkaInput);
    const kafka = new Kafka({ ...(await kafkaClientOptions(cfg)), logLevel: logLevel.NOTHING, retry: { retries: 3 } } as ConstructorParameters<typeof Kafka>[0]);

    const admin = kafka.admin();
    try {
      await admin.connect();
      const topics = await admin.listTopics();
      if (!topics.includes(topic)) throw new MirrorflowError('tail-topic', `tail: topic not found${kv({ topic, brokers: cfg.brokers.join(',') })}`);
    } catch (e) {
      if (e instanceof MirrorflowError) throw e;
      throw new MirrorflowError('tail-connect', `tail: cannot reach the brokers${kv({ brokers: cfg.brokers.join(','), reason: (e as Error).message })}`, { cause: e });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    if (io.signal.aborted) return 0;

    const stats: TailStats = { messages: 0, printed: 0, undecodable: 0 };
    let finish!: (e?: unknown) => void;
    const done = new Promise<void>((resolve, reject) => {
      finish = (e?: unknown) => (e === undefined ? resolve() : reject(e));
    });
    const onAbort = () => finish();
    io.signal.addEventListener('abort', onAbort, { once: true });

    const consumer = kafka.consumer({ groupId: group, readUncommitted: false, allowAutoTopicCreation: false, maxWaitTimeInMs: 500 });
    consumer.on(consumer.events.CRASH, (ev) => {
      if (!ev.payload.restart) finish(new MirrorflowError('tail-consumer', `tail: consumer failed${kv({ topic, group, reason: ev.payload.error.message })}`, { cause: ev.payload.error }));
    });
    let stopping = false;
    const print = (p: EachBatchPayload['batch'], m: EachBatchPayload['batch']['messages'][number]): void => {
      stats.messages++;
      const d = decodeTailMessage({ key: m.key, value: m.value, headers: m.headers });
      if (!d.ok) {
        stats.undecodable++;
        io.err(`tail: warning: cannot decode message${kv({ topic: p.topic, partition: p.partition, offset: m.offset, reason: d.reason })}`);
        return;
      }
      for (const json of d.records) {
        stats.printed++;
        const line =
          formatOut === 'json' ? json : { topic: p.topic, partition: p.partition, offset: m.offset, key: m.key?.toString() ?? null, schema: d.schema, value: json };
        io.out(JSON.stringify(line));
      }
    };

    let failure: unknown;
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: values['from-beginning'] === true });
      await consumer.run({
        autoCommit: named,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          for (const m of batch.messages) {
            if (stopping || !isRunning() || isStale()) break;
            print(batch, m);
            resolveOffset(m.offset);
            if (max !== undefined && stats.messages >= max) {
              stopping = true;
              finish();
            }
          }
          await heartbeat();
        },
      });
      await done;
    } catch (e) {
      failure = e;
    } finally {
      stopping = true;
      io.signal.removeEventListener('abort', onAbort);
      await consumer.disconnect().catch(() => undefined);
    }
    io.err(`tail: ${stats.messages} messages, ${stats.printed} printed, ${stats.undecodable} undecodable${kv({ topic, group })}`);
    if (failure) {
      if (failure instanceof MirrorflowError) throw failure;
      throw new MirrorflowError('tail-consumer', `tail: consumer failed${kv({ topic, group, reason: (failure as Error).message })}`, { cause: failure });
    }
    return 0;
  },
};
