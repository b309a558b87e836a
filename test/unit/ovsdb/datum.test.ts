import { expect } from 'chai';
import { parseSchema, schemaColumn, schemaTable, type ColumnType } from '../../../src/ovsdb/schema.js';
import { applyDatumDiff, datumEquals, decodeRow, defaultDatum, encodeRow, fromWireDatum, toWireDatum, type WireDatum } from '../../../src/ovsdb/datum.js';
import { OvsdbDatumError } from '../../../src/ovsdb/errors.js';
import { schemaFixture } from './ovsdb-schema.fixture.js';

const schema = parseSchema(schemaFixture);
const bridge = schemaTable(schema, 'Bridge');
const port = schemaTable(schema, 'Port');
const col = (t: typeof bridge, c: string): ColumnType => schemaColumn(t, c).type;
const U1 = '5e8f9ab0-1111-4d5e-9e3a-0123456789ab';
const U2 = '0a0b0c0d-2222-4e5f-8a9b-abcdefabcdef';

function datumErr(fn: () => unknown): OvsdbDatumError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(OvsdbDatumError);
    return e as OvsdbDatumError;
  }
  throw new Error('expected an OvsdbDatumError');
}

describe('ovsdb/datum typed conversion', () => {
  it('encodes scalars, optional values, sets and maps in wire form', () => {
    expect(toWireDatum(col(bridge, 'name'), 'br-int', { table: 'Bridge', column: 'name' })).to.equal('br-int');
    expect(toWireDatum(col(bridge, 'fail_mode'), undefined, { table: 'Bridge', column: 'fail_mode' })).to.deep.equal(['set', []]);
    expect(toWireDatum(col(bridge, 'fail_mode'), 'secure', { table: 'Bridge', column: 'fail_mode' })).to.equal('secure');
    expect(toWireDatum(col(bridge, 'ports'), [{ uuid: U1 }, { uuid: U2 }], { table: 'Bridge', column: 'ports' })).to.deep.equal(['set', [['uuid', U1], ['uuid', U2]]]);
    expect(toWireDatum(col(bridge, 'ports'), [{ namedUuid: 'p1' }], { table: 'Bridge', column: 'ports' })).to.deep.equal(['named-uuid', 'p1']);
    expect(toWireDatum(col(bridge, 'external_ids'), { a: '1', b: '2' }, { table: 'Bridge', column: 'external_ids' })).to.deep.equal(['map', [['a', '1'], ['b', '2']]]);
    expect(toWireDatum(col(port, 'statistics'), new Map([['rx', 5]]), { table: 'Port', column: 'statistics' })).to.deep.equal(['map', [['rx', 5]]]);
    expect(toWireDatum(col(port, 'trunks'), new Set([1, 2]), { table: 'Port', column: 'trunks' })).to.deep.equal(['set', [1, 2]]);
  });

  it('rejects a set of strings for a single-valued column, naming table, column and value', () => {
    const e = datumErr(() => toWireDatum(col(bridge, 'name'), ['a', 'b'], { table: 'Bridge', column: 'name' }));
    expect(e.message).to.match(/^ovsdb: value does not fit column \(table=Bridge, column=name, value=\["a","b"\], reason="2 element\(s\) where the column takes 1..1/);
    expect(e.code).to.equal('ovsdb-datum');
    const e2 = datumErr(() => toWireDatum(col(bridge, 'fail_mode'), ['standalone', 'secure'], { table: 'Bridge', column: 'fail_mode' }));
    expect(e2.message).to.include('0..1');
  });

  it('rejects an integer out of range and a non-integer', () => {
    const e = datumErr(() => toWireDatum(col(port, 'tag'), 5000, { table: 'Port', column: 'tag' }));
    expect(e.message).to.include('table=Port').and.include('column=tag').and.include('value=5000').and.include('above maximum 4095');
    expect(datumErr(() => toWireDatum(col(port, 'tag'), -1, { table: 'Port', column: 'tag' })).message).to.include('below minimum 0');
    expect(datumErr(() => toWireDatum(col(port, 'tag'), 1.5, { table: 'Port', column: 'tag' })).message).to.include('expected an integer');
    expect(datumErr(() => toWireDatum(col(port, 'weight'), 2.5, { table: 'Port', column: 'weight' })).message).to.include('above maximum 1');
  });

  it('rejects an enum violation', () => {
    const e = datumErr(() => toWireDatum(col(bridge, 'fail_mode'), 'open', { table: 'Bridge', column: 'fail_mode' }));
    expect(e.message).to.equal(`ovsdb: value does not fit column (table=Bridge, column=fail_mode, value="open", reason="'open' not one of ['standalone', 'secure']")`);
  });

  it('rejects a map with the wrong key or value type', () => {
    const e = datumErr(() => toWireDatum(col(port, 'queues'), new Map([['zero', { uuid: U1 }]]), { table: 'Port', column: 'queues' }));
    expect(e.message).to.include('table=Port, column=queues').and.include("expected an integer, got 'zero'");
    const e2 = datumErr(() => toWireDatum(col(bridge, 'external_ids'), { a: 1 }, { table: 'Bridge', column: 'external_ids' }));
    expect(e2.message).to.include('expected a string, got 1');
    // integer keys cannot come from a plain object
    expect(datumErr(() => toWireDatum(col(port, 'queues'), { '1': { uuid: U1 } }, { table: 'Port', column: 'queues' })).message).to.include('pass a Map');
    // a map for a set column
    expect(datumErr(() => toWireDatum(col(bridge, 'name'), new Map([['a', 'b']]), { table: 'Bridge', column: 'name' })).message).to.include('expected string');
  });

  it('rejects string length, bad uuids, duplicates and a missing mandatory element', () => {
    expect(datumErr(() => toWireDatum(col(port, 'label'), 'abcde', { table: 'Port', column: 'label' })).message).to.include('longer than 4');
    expect(datumErr(() => toWireDatum(col(port, 'label'), '', { table: 'Port', column: 'label' })).message).to.include('shorter than 1');
    expect(toWireDatum(col(port, 'label'), '日本語!', { table: 'Port', column: 'label' })).to.equal('日本語!'); // 4 characters
    expect(datumErr(() => toWireDatum(col(bridge, 'ports'), [{ uuid: 'nope' }], { table: 'Bridge', column: 'ports' })).message).to.include('malformed uuid');
    expect(datumErr(() => toWireDatum(col(bridge, 'ports'), ['x'], { table: 'Bridge', column: 'ports' })).message).to.include('expected a uuid');
    expect(datumErr(() => toWireDatum(col(port, 'trunks'), [1, 1], { table: 'Port', column: 'trunks' })).message).to.include('duplicate set element 1');
    expect(datumErr(() => toWireDatum(col(port, 'interfaces'), [], { table: 'Port', column: 'interfaces' })).message).to.include('0 element(s) where the column takes 1..unlimited');
  });

  it('decodes wire values to JS by column type', () => {
    const w = { table: 'X', column: 'y' };
    expect(fromWireDatum(col(bridge, 'name'), 'br0', w)).to.equal('br0');
    expect(fromWireDatum(col(bridge, 'fail_mode'), ['set', []], w)).to.equal(undefined);
    expect(fromWireDatum(col(bridge, 'fail_mode'), 'secure', w)).to.equal('secure');
    expect(fromWireDatum(col(bridge, 'ports'), ['uuid', U1], w)).to.deep.equal([{ uuid: U1 }]);
    expect(fromWireDatum(col(bridge, 'ports'), ['set', [['uuid', U1], ['uuid', U2]]], w)).to.deep.equal([{ uuid: U1 }, { uuid: U2 }]);
    expect(fromWireDatum(col(bridge, 'external_ids'), ['map', [['k', 'v']]], w)).to.deep.equal(new Map([['k', 'v']]));
    expect(() => fromWireDatum(col(bridge, 'name'), 5, w)).to.throw(OvsdbDatumError, /wire atom is not string/);
  });

  it('encodes and decodes whole rows', () => {
    const row = encodeRow(bridge, { name: 'br0', ports: [{ namedUuid: 'p' }], external_ids: { a: 'b' }, stp_enable: true });
    expect(row).to.deep.equal({ name: 'br0', ports: ['named-uuid', 'p'], external_ids: ['map', [['a', 'b']]], stp_enable: true });
    expect(() => encodeRow(bridge, { nope: 1 })).to.throw(OvsdbDatumError, 'ovsdb: no such column (table=Bridge, column=nope)');
    expect(decodeRow(bridge, { name: 'br0', fail_mode: ['set', []], _uuid: ['uuid', U1] })).to.deep.equal({ name: 'br0', fail_mode: undefined, _uuid: { uuid: U1 } });
  });

  it('has RFC 7047 defaults for omitted columns', () => {
    expect(defaultDatum(col(bridge, 'name'))).to.equal('');
    expect(defaultDatum(col(bridge, 'stp_enable'))).to.equal(false);
    expect(defaultDatum(col(bridge, 'ports'))).to.deep.equal(['set', []]);
    expect(defaultDatum(col(bridge, 'external_ids'))).to.deep.equal(['map', []]);
    expect(defaultDatum(col(bridge, '_uuid'))).to.deep.equal(['uuid', '00000000-0000-0000-0000-000000000000']);
  });

  it('compares datums ignoring order and 1-element set spelling', () => {
    expect(datumEquals(['set', [1, 2]], ['set', [2, 1]])).to.equal(true);
    expect(datumEquals('a', ['set', ['a']])).to.equal(true);
    expect(datumEquals(['map', [['a', '1'], ['b', '2']]], ['map', [['b', '2'], ['a', '1']]])).to.equal(true);
    expect(datumEquals(['map', [['a', '1']]], ['map', [['a', '2']]])).to.equal(false);
    expect(datumEquals(['set', []], ['map', []])).to.equal(false);
  });
});

describe('ovsdb/datum update2 modify diff (applyDatumDiff)', () => {
  // Fixtures: [column type, old value, diff as ovsdb-server sends it, expected new value]
  const fixtures: [string, ColumnType, WireDatum, WireDatum, WireDatum][] = [
    ['scalar: the diff is the new value', col(bridge, 'name'), 'br0', 'br1', 'br1'],
    ['optional: empty -> value', col(port, 'tag'), ['set', []], 10, 10],
    ['optional: value -> other value (replaced, not toggled)', col(port, 'tag'), 10, 20, 20],
    ['optional: value -> empty', col(port, 'tag'), 10, ['set', []], ['set', []]],
    ['set: add one element', col(port, 'trunks'), ['set', [1, 2]], 3, ['set', [1, 2, 3]]],
    ['set: remove one element', col(port, 'trunks'), ['set', [1, 2, 3]], 2, ['set', [1, 3]]],
    ['set: add and remove (symmetric difference)', col(port, 'trunks'), ['set', [1, 2]], ['set', [2, 5]], ['set', [1, 5]]],
    ['set: down to one element is sent bare', col(port, 'trunks'), ['set', [1, 2]], 2, 1],
    ['set: from a bare 1-element value', col(bridge, 'ports'), ['uuid', U1], ['uuid', U2], ['set', [['uuid', U1], ['uuid', U2]]]],
    ['set: remove the last uuid', col(bridge, 'ports'), ['uuid', U1], ['uuid', U1], ['set', []]],
    ['map: new key added', col(bridge, 'external_ids'), ['map', [['a', '1']]], ['map', [['b', '2']]], ['map', [['a', '1'], ['b', '2']]]],
    ['map: same key+value removes the key', col(bridge, 'external_ids'), ['map', [['a', '1'], ['b', '2']]], ['map', [['a', '1']]], ['map', [['b', '2']]]],
    ['map: same key, new value replaces', col(bridge, 'external_ids'), ['map', [['a', '1']]], ['map', [['a', '9']]], ['map', [['a', '9']]]],
    [
      'map: all three at once',
      col(bridge, 'external_ids'),
      ['map', [['keep', 'k'], ['del', 'd'], ['chg', 'old']]],
      ['map', [['del', 'd'], ['chg', 'new'], ['add', 'a']]],
      ['map', [['keep', 'k'], ['chg', 'new'], ['add', 'a']]],
    ],
    ['map: integer keys to uuids', col(port, 'queues'), ['map', [[0, ['uuid', U1]]]], ['map', [[0, ['uuid', U2]], [1, ['uuid', U1]]]], ['map', [[0, ['uuid', U2]], [1, ['uuid', U1]]]]],
  ];
  for (const [name, type, old, diff, want] of fixtures) {
    it(name, () => {
      const got = applyDatumDiff(type, old, diff);
      expect(got).to.deep.equal(want);
    });
  }

  it('without a type, guesses from the value shape', () => {
    expect(applyDatumDiff(undefined, ['map', [['a', '1']]], ['map', [['a', '1']]])).to.deep.equal(['map', []]);
    expect(applyDatumDiff(undefined, ['set', [1, 2]], 2)).to.equal(1);
    expect(applyDatumDiff(undefined, 'x', 'y')).to.equal('y');
  });
});
