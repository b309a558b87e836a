/**
 * RFC 7047 §5.2 operations as plain data, built before anything is sent.
 */
import type { WireAtom, WireDatum } from './datum.js';

export type Condition = [column: string, fn: '==' | '!=' | 'includes' | 'excludes' | '<' | '<=' | '>' | '>=', value: WireDatum];
export type Mutation = [column: string, mutator: '+=' | '-=' | '*=' | '/=' | '%=' | 'insert' | 'delete', value: WireDatum];
export type Row = Record<string, WireDatum>;

export type Operation =
  | { op: 'insert'; table: string; row: Row; 'uuid-name'?: string }
  | { op: 'select'; table: string; where: Condition[]; columns?: string[] }
  | { op: 'update'; table: string; where: Condition[]; row: Row }
  | { op: 'mutate'; table: string; where: Condition[]; mutations: Mutation[] }
  | { op: 'delete'; table: string; where: Condition[] }
  | { op: 'wait'; table: string; where: Condition[]; columns: string[]; until: '==' | '!='; rows: Row[]; timeout?: number }
  | { op: 'commit'; durable: boolean }
  | { op: 'abort' }
  | { op: 'comment'; comment: string }
  | { op: 'assert'; lock: string };

export const byUuid = (id: string): Condition[] => [['_uuid', '==', ['uuid', id]]];

export const insertOp = (table: string, row: Row, uuidName?: string): Operation =>
  uuidName ? { op: 'insert', table, row, 'uuid-name': uuidName } : { op: 'insert', table, row };
export const selectOp = (table: string, where: Condition[] = [], columns?: string[]): Operation =>
  columns ? { op: 'select', table, where, columns } : { op: 'select', table, where };
export const updateOp = (table: string, where: Condition[], row: Row): Operation => ({ op: 'update', table, where, row });
export const mutateOp = (table: string, where: Condition[], mutations: Mutation[]): Operation => ({ op: 'mutate', table, where, mutations });
export const deleteOp = (table: string, where: Condition[]): Operation => ({ op: 'delete', table, where });
/** `wait` that holds only while the listed columns of the rows matching `where` still equal `rows`. */
export const waitOp = (table: string, where: Condition[], columns: string[], rows: Row[], until: '==' | '!=' = '==', timeout = 0): Operation => ({
  op: 'wait',
  table,
  where,
  columns,
  until,
  rows,
  timeout,
});
export const commentOp = (comment: string): Operation => ({ op: 'comment', comment });
export const commitOp = (durable: boolean): Operation => ({ op: 'commit', durable });
export const abortOp = (): Operation => ({ op: 'abort' });
export const assertOp = (lock: string): Operation => ({ op: 'assert', lock });

/** Placeholder type so callers can name an atom-valued condition without importing datum. */
export type ConditionValue = WireAtom;
