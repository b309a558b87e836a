/**
 * Writes the Avro twins of FlowRecord, PairWindow and Alert (proto/flow_record.avsc, pair_window.avsc, alert.avsc)
 * from the field tables in src/capture/flow-record.ts and src/pipeline/alert-record.ts, which mirror proto/mirrorflow.proto (a unit
 * test checks all three agree). Field names are the proto3 JSON names; enums use the proto value
 * names; 64-bit and uint32 integers are Avro longs; proto3 `optional` fields and sub-messages are
 * unions with null (default null).
 *
 *   npx tsx scripts/gen-avro.ts
 */
import { writeFileSync } from 'node:fs';
import { FLOW_RECORD_SPEC, PAIR_WINDOW_SPEC, type FieldSpec, type MessageSpec } from '../src/capture/flow-record.js';
import { ALERT_SPEC } from '../src/pipeline/alert-record.js';

const NAMESPACE = 'mirrorflow.v1';
const ENUM_NAMES: Record<string, string> = { EXPORT_REASON_: 'ExportReason', TUNNEL_: 'Tunnel' };

function avroSchema(spec: MessageSpec): unknown {
  const defined = new Set<string>();
  const scalar = (t: string): string => ({ string: 'string', bool: 'boolean', uint32: 'long', int64: 'long', uint64: 'long', double: 'double' })[t]!;
  const scalarDefault = (t: string): unknown => (t === 'string' ? '' : t === 'bool' ? false : 0);
  const type = (f: FieldSpec): unknown => {
    if (typeof f.type === 'string') return scalar(f.type);
    if ('enumPrefix' in f.type) {
      const name = ENUM_NAMES[f.type.enumPrefix]!;
      if (defined.has(name)) return name;
      defined.add(name);
      const prefix = f.type.enumPrefix;
      return { type: 'enum', name, symbols: f.type.values.map((v) => prefix + v.toUpperCase().replace(/-/g, '_')) };
    }
    return record(f.type.message);
  };
  const record = (m: MessageSpec): unknown => {
    if (defined.has(m.name)) return m.name;
    defined.add(m.name);
    return {
      type: 'record',
      name: m.name,
      ...(m === spec ? { namespace: NAMESPACE } : {}),
      fields: m.fields.map((f) => {
        const doc = `proto field ${f.number}`;
        if (f.repeated) return { name: f.name, doc, type: { type: 'array', items: type(f) }, default: [] };
        if (typeof f.type === 'object' && 'message' in f.type) return { name: f.name, doc, type: ['null', type(f)], default: null };
        if (f.optional) return { name: f.name, doc, type: ['null', type(f)], default: null };
        if (typeof f.type === 'object' && 'enumPrefix' in f.type) {
          const t = type(f) as { symbols?: string[] } | string;
          const first = f.type.enumPrefix + f.type.values[0]!.toUpperCase().replace(/-/g, '_');
          return { name: f.name, doc, type: t, default: first };
        }
        return { name: f.name, doc, type: type(f), default: scalarDefault(f.type as string) };
      }),
    };
  };
  return record(spec);
}

writeFileSync(new URL('../proto/flow_record.avsc', import.meta.url), JSON.stringify(avroSchema(FLOW_RECORD_SPEC), null, 2) + '\n');
writeFileSync(new URL('../proto/pair_window.avsc', import.meta.url), JSON.stringify(avroSchema(PAIR_WINDOW_SPEC), null, 2) + '\n');
writeFileSync(new URL('../proto/alert.avsc', import.meta.url), JSON.stringify(avroSchema(ALERT_SPEC), null, 2) + '\n');
