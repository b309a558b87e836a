/**
 * Alert as a TypeScript value and its field table (mirrors `message Alert` in
 * proto/mirrorflow.proto; proto/alert.avsc is generated from it by scripts/gen-avro.ts).
 *
 * kind, severity and state are strings on the wire (not enums) so new rule kinds and severities
 * need no schema change; the TS types list the values this build writes.
 */
import { messageToProto3Json, type MessageSpec } from '../capture/flow-record.js';
import type { Severity } from './rules-config.js';

export const ALERT_SCHEMA_VERSION = 1;

export type AlertKind = 'threshold' | 'anomaly' | 'security';
export type AlertState = 'firing' | 'resolved';

export interface Alert {
  /**
   * `<prefix>:<rule>:<subject>:<windowStartUs>:<state>` — deterministic, so a pipeline that
   * re-processes the same windows after a restart writes the same ids.
   */
  id: string;
  schemaVersion: number;
  /** Rule name: a threshold rule's name, or 'poisson-burst', 'rtt-zscore', 'new-pair', 'scan'. */
  rule: string;
  kind: AlertKind;
  severity: Severity;
  state: AlertState;
  /** The pair (a < b) for pair alerts; empty for source alerts. */
  a: string;
  b: string;
  /** The source endpoint for source alerts (scan); empty for pair alerts. */
  source: string;
  /** The window that fired or resolved the alert. */
  windowStartUs: number;
  windowEndUs: number;
  /** The observed value (metric, tail probability, z-score, distinct targets). */
  value: number;
  /** What it was compared against. */
  threshold: number;
  message: string;
}

export const ALERT_SPEC: MessageSpec = {
  name: 'Alert',
  fields: [
    { name: 'id', number: 1, type: 'string' },
    { name: 'schemaVersion', number: 2, type: 'uint32' },
    { name: 'rule', number: 3, type: 'string' },
    { name: 'kind', number: 4, type: 'string' },
    { name: 'severity', number: 5, type: 'string' },
    { name: 'state', number: 6, type: 'string' },
    { name: 'a', number: 7, type: 'string' },
    { name: 'b', number: 8, type: 'string' },
    { name: 'source', number: 9, type: 'string' },
    { name: 'windowStartUs', number: 10, type: 'int64' },
    { name: 'windowEndUs', number: 11, type: 'int64' },
    { name: 'value', number: 12, type: 'double' },
    { name: 'threshold', number: 13, type: 'double' },
    { name: 'message', number: 14, type: 'string' },
  ],
};

export function alertToProto3Json(alert: Alert): ReturnType<typeof messageToProto3Json> {
  return messageToProto3Json(ALERT_SPEC, alert);
}
