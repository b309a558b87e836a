/* Test fixture shared by the ovsdb unit tests (not a test file itself). */
/** A trimmed get_schema reply of Open_vSwitch, with the column type shapes that matter. */
export const schemaFixture = {
  name: 'Open_vSwitch',
  version: '8.3.1',
  cksum: '3682332033 32053',
  tables: {
    Bridge: {
      columns: {
        name: { type: 'string', mutable: false },
        ports: { type: { key: { type: 'uuid', refTable: 'Port' }, min: 0, max: 'unlimited' } },
        mirrors: { type: { key: { type: 'uuid', refTable: 'Mirror' }, min: 0, max: 'unlimited' } },
        datapath_type: { type: 'string' },
        fail_mode: { type: { key: { type: 'string', enum: ['set', ['standalone', 'secure']] }, min: 0, max: 1 } },
        external_ids: { type: { key: 'string', value: 'string', min: 0, max: 'unlimited' } },
        stp_enable: { type: 'boolean' },
      },
      isRoot: true,
      indexes: [['name']],
    },
    Port: {
      columns: {
        name: { type: 'string', mutable: false },
        tag: { type: { key: { type: 'integer', minInteger: 0, maxInteger: 4095 }, min: 0, max: 1 } },
        trunks: { type: { key: { type: 'integer', minInteger: 0, maxInteger: 4095 }, min: 0, max: 4096 } },
        interfaces: { type: { key: { type: 'uuid', refTable: 'Interface' }, min: 1, max: 'unlimited' } },
        statistics: { type: { key: 'string', value: 'integer', min: 0, max: 'unlimited' }, ephemeral: true },
        weight: { type: { key: { type: 'real', minReal: 0, maxReal: 1 } } },
        label: { type: { key: { type: 'string', minLength: 1, maxLength: 4 } } },
        queues: { type: { key: { type: 'integer', minInteger: 0, maxInteger: 4294967295 }, value: { type: 'uuid', refTable: 'Queue', refType: 'weak' }, min: 0, max: 'unlimited' } },
      },
    },
  },
};
