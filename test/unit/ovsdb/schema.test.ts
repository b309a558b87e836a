import { expect } from 'chai';
import { parseSchema, schemaColumn, schemaTable } from '../../../src/ovsdb/schema.js';
import { OvsdbSchemaError } from '../../../src/ovsdb/errors.js';
import { schemaFixture } from './ovsdb-schema.fixture.js';

describe('ovsdb/schema parseSchema', () => {
  const schema = parseSchema(schemaFixture);

  it('reads name, version, cksum and tables', () => {
    expect(schema.name).to.equal('Open_vSwitch');
    expect(schema.version).to.equal('8.3.1');
    expect(schema.cksum).to.equal('3682332033 32053');
    expect([...schema.tables.keys()]).to.deep.equal(['Bridge', 'Port']);
    const br = schemaTable(schema, 'Bridge');
    expect(br.isRoot).to.equal(true);
    expect(br.indexes).to.deep.equal([['name']]);
    expect(schemaTable(schema, 'Port').isRoot).to.equal(false);
  });

  it('adds the implicit _uuid and _version columns', () => {
    const c = schemaColumn(schemaTable(schema, 'Bridge'), '_uuid');
    expect(c.type).to.deep.equal({ key: { type: 'uuid' }, min: 1, max: 1 });
    expect(schemaTable(schema, 'Port').columns.has('_version')).to.equal(true);
  });

  it('reads atomic, set, optional and map column types', () => {
    const br = schemaTable(schema, 'Bridge');
    expect(schemaColumn(br, 'name').type).to.deep.equal({ key: { type: 'string' }, min: 1, max: 1 });
    expect(schemaColumn(br, 'name').mutable).to.equal(false);
    expect(schemaColumn(br, 'ports').type).to.deep.equal({ key: { type: 'uuid', refTable: 'Port', refType: 'strong' }, min: 0, max: Infinity });
    expect(schemaColumn(br, 'fail_mode').type).to.deep.equal({ key: { type: 'string', enum: ['standalone', 'secure'] }, min: 0, max: 1 });
    expect(schemaColumn(br, 'external_ids').type).to.deep.equal({ key: { type: 'string' }, value: { type: 'string' }, min: 0, max: Infinity });
    const port = schemaTable(schema, 'Port');
    expect(schemaColumn(port, 'tag').type.key).to.deep.equal({ type: 'integer', minInteger: 0, maxInteger: 4095 });
    expect(schemaColumn(port, 'trunks').type.max).to.equal(4096);
    expect(schemaColumn(port, 'interfaces').type.min).to.equal(1);
    expect(schemaColumn(port, 'statistics').ephemeral).to.equal(true);
    expect(schemaColumn(port, 'weight').type.key).to.deep.equal({ type: 'real', minReal: 0, maxReal: 1 });
    expect(schemaColumn(port, 'label').type.key).to.deep.equal({ type: 'string', minLength: 1, maxLength: 4 });
    expect(schemaColumn(port, 'queues').type.value).to.deep.equal({ type: 'uuid', refTable: 'Queue', refType: 'weak' });
  });

  it('names table and column for unknown ones and for malformed types', () => {
    expect(() => schemaTable(schema, 'Nope')).to.throw(OvsdbSchemaError, 'ovsdb: no such table (db=Open_vSwitch, table=Nope)');
    expect(() => schemaColumn(schemaTable(schema, 'Bridge'), 'nope')).to.throw(OvsdbSchemaError, 'ovsdb: no such column (table=Bridge, column=nope)');
    const bad = { name: 'X', tables: { T: { columns: { c: { type: { key: 'float' } } } } } };
    expect(() => parseSchema(bad)).to.throw(OvsdbSchemaError, /unknown atomic type \(table=T, column=c, type=float\)/);
    const badMax = { name: 'X', tables: { T: { columns: { c: { type: { key: 'string', max: 0 } } } } } };
    expect(() => parseSchema(badMax)).to.throw(OvsdbSchemaError, /bad column type max \(table=T, column=c, max=0\)/);
    expect(() => parseSchema([])).to.throw(OvsdbSchemaError);
  });
});
