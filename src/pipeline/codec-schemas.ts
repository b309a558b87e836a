/**
 * The schemas behind the record codecs, loaded once from proto/ at first use:
 * proto/mirrorflow.proto through protobufjs, proto/flow_record.avsc, proto/pair_window.avsc and
 * proto/alert.avsc through avsc. Paths resolve relative to this module, so the codecs work from any cwd.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import protobuf from 'protobufjs';
import {
  FLOW_RECORD_SCHEMA_VERSION,
  FLOW_RECORD_SPEC,
  PAIR_WINDOW_SCHEMA_VERSION,
  PAIR_WINDOW_SPEC,
  type FlowRecord,
  type MessageSpec,
  type PairWindow,
} from '../capture/flow-record.js';
import { ALERT_SCHEMA_VERSION, ALERT_SPEC, type Alert } from './alert-record.js';
import { CodecError } from './codec-error.js';

export type RecordFormat = 'json' | 'protobuf' | 'avro';
export const RECORD_FORMATS: readonly RecordFormat[] = ['json', 'protobuf', 'avro'];

export type RecordKind = 'flow-record' | 'pair-window' | 'alert';
export const RECORD_KINDS: readonly RecordKind[] = ['flow-record', 'pair-window', 'alert'];

/** The TS type of each record kind. */
export interface RecordOfKind {
  'flow-record': FlowRecord;
  'pair-window': PairWindow;
  alert: Alert;
}

export interface RecordSchemaInfo {
  kind: RecordKind;
  /** Fully qualified message name in the .proto (the Avro record has the same full name). */
  schemaName: string;
  /** Version this build writes. */
  schemaVersion: number;
  /** Versions this build reads. */
  supportedVersions: readonly number[];
  spec: MessageSpec;
  avscFile: string;
}

export const RECORD_SCHEMAS: Readonly<Record<RecordKind, RecordSchemaInfo>> = {
  'flow-record': {
    kind: 'flow-record',
    schemaName: 'mirrorflow.v1.FlowRecord',
    schemaVersion: FLOW_RECORD_SCHEMA_VERSION,
    supportedVersions: [FLOW_RECORD_SCHEMA_VERSION],
    spec: FLOW_RECORD_SPEC,
    avscFile: 'flow_record.avsc',
  },
  'pair-window': {
    kind: 'pair-window',
    schemaName: 'mirrorflow.v1.PairWindow',
    schemaVersion: PAIR_WINDOW_SCHEMA_VERSION,
    supportedVersions: [PAIR_WINDOW_SCHEMA_VERSION],
    spec: PAIR_WINDOW_SPEC,
    avscFile: 'pair_window.avsc',
  },
  alert: {
    kind: 'alert',
    schemaName: 'mirrorflow.v1.Alert',
    schemaVersion: ALERT_SCHEMA_VERSION,
    supportedVersions: [ALERT_SCHEMA_VERSION],
    spec: ALERT_SPEC,
    avscFile: 'alert.avsc',
  },
};

export const CONTENT_TYPES: Readonly<Record<RecordFormat, string>> = {
  json: 'application/json',
  protobuf: 'application/x-protobuf',
  avro: 'avro/binary',
};

const PROTO_DIR = new URL('../../proto/', import.meta.url);

let root: protobuf.Root | undefined;
const pbTypes = new Map<RecordKind, protobuf.Type>();
const avroTypes = new Map<RecordKind, avro.Type>();
const fingerprints = new Map<string, string>();

function schemaError(what: string, file: string, cause: unknown): CodecError {
  return new CodecError('codec-schema', what, { file, problem: cause instanceof Error ? cause.message : String(cause) }, cause);
}

/** The protobufjs root of proto/mirrorflow.proto (loaded and resolved once). */
export function protoRoot(): protobuf.Root {
  if (!root) {
    const file = fileURLToPath(new URL('mirrorflow.proto', PROTO_DIR));
    try {
      const r = protobuf.loadSync(file);
      r.resolveAll();
      root = r;
    } catch (err) {
      throw schemaError('cannot load the .proto', file, err);
    }
  }
  return root!;
}

export function protoType(kind: RecordKind): protobuf.Type {
  let t = pbTypes.get(kind);
  if (!t) {
    const name = RECORD_SCHEMAS[kind].schemaName;
    try {
      t = protoRoot().lookupType(name);
    } catch (err) {
      throw schemaError(`message ${name} not in the .proto`, 'mirrorflow.proto', err);
    }
    pbTypes.set(kind, t);
  }
  return t;
}

export function avroType(kind: RecordKind): avro.Type {
  let t = avroTypes.get(kind);
  if (!t) {
    const file = fileURLToPath(new URL(RECORD_SCHEMAS[kind].avscFile, PROTO_DIR));
    try {
      t = avro.Type.forSchema(JSON.parse(readFileSync(file, 'utf8')));
    } catch (err) {
      throw schemaError('cannot load the Avro schema', file, err);
    }
    const expected = RECORD_SCHEMAS[kind].schemaName;
    if (t.name !== expected) throw schemaError('Avro schema names another record', file, `name=${String(t.name)}, expected=${expected}`);
    avroTypes.set(kind, t);
  }
  return t;
}

/** Every message and enum a protobuf type reaches, by full name. */
function reachableTypes(t: protobuf.Type, out = new Map<string, protobuf.ReflectionObject>()): Map<string, protobuf.ReflectionObject> {
  if (out.has(t.fullName)) return out;
  out.set(t.fullName, t);
  for (const f of t.fieldsArray) {
    const rt = f.resolve().resolvedType;
    if (rt instanceof protobuf.Type) reachableTypes(rt, out);
    else if (rt) out.set(rt.fullName, rt);
  }
  return out;
}

/**
 * `sha256:<hex>` naming the exact schema a message was written with. Avro: the SHA-256 of the
 * schema's Parsing Canonical Form (the Avro spec's fingerprint). protobuf and JSON (the JSON is the
 * proto3 mapping of the same messages): SHA-256 of the descriptors of the message and every message
 * and enum it reaches, in full-name order. Changes whenever the schema does.
 */
export function schemaFingerprint(kind: RecordKind, format: RecordFormat): string {
  const key = `${kind}/${format === 'avro' ? 'avro' : 'proto'}`;
  let fp = fingerprints.get(key);
  if (!fp) {
    if (format === 'avro') fp = 'sha256:' + avroType(kind).fingerprint('sha256').toString('hex');
    else {
      const types = [...reachableTypes(protoType(kind)).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const text = JSON.stringify(types.map(([name, t]) => [name, t.toJSON()]));
      fp = 'sha256:' + createHash('sha256').update(text).digest('hex');
    }
    fingerprints.set(key, fp);
  }
  return fp;
}
