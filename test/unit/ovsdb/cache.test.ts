import { expect } from 'chai';
import { RowCache, type CacheRow } from '../../../src/ovsdb/cache.js';
import { parseSchema } from '../../../src/ovsdb/schema.js';
import { schemaFixture } from './ovsdb-schema.fixture.js';

const schema = parseSchema(schemaFixture);
const B1 = '11111111-1111-4111-8111-111111111111';
const B2 = '22222222-2222-4222-8222-222222222222';
const P1 = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const P2 = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';

type Ev = [string, ...unknown[]];
function record(cache: RowCache): Ev[] {
  const ev: Ev[] = [];
  cache.on('add', (t, u, r) => ev.push(['add', t, u, r]));
  cache.on('update', (t, u, r, o) => ev.push(['update', t, u, r, o]));
  cache.on('delete', (t, u, o) => ev.push(['delete', t, u, o]));
  cache.on('ready', () => ev.push(['ready']));
  return ev;
}

describe('ovsdb/cache RowCache', () => {
  const columns = { Bridge: ['name', 'ports', 'external_ids', 'fail_mode'], Port: ['name', 'tag', 'trunks'] };

  it('update2: initial rows get omitted defaults filled, then ready', () => {
    const cache = new RowCache({ schema, columns });
    const ev = record(cache);
    cache.resetFrom({ Bridge: { [B1]: { initial: { name: 'br0', ports: ['uuid', P1] } } } }, 2);
    const want: CacheRow = { name: 'br0', ports: ['uuid', P1], external_ids: ['map', []], fail_mode: ['set', []] };
    expect(ev).to.deep.equal([['add', 'Bridge', B1, want], ['ready']]);
    expect(cache.row('Bridge', B1)).to.deep.equal(want);
    expect(cache.table('Port').size).to.equal(0);
    expect(cache.ready).to.equal(true);
  });

  it('update2: modify applies set, map and scalar diffs; delete removes', () => {
    const cache = new RowCache({ schema, columns });
    cache.resetFrom(
      {
        Bridge: { [B1]: { initial: { name: 'br0', ports: ['uuid', P1], external_ids: ['map', [['a', '1'], ['b', '2']]] } } },
        Port: { [P1]: { initial: { name: 'p1', trunks: ['set', [1, 2]] } } },
      },
      2,
    );
    const ev = record(cache);
    const before = cache.row('Bridge', B1)!;
    cache.applyUpdates(
      {
        Bridge: { [B1]: { modify: { ports: ['uuid', P2], external_ids: ['map', [['a', '1'], ['b', '3'], ['c', '4']]], fail_mode: 'secure' } } },
        Port: { [P1]: { modify: { tag: 7, trunks: ['set', [2, 3]] } }, [P2]: { insert: { name: 'p2' } } },
      },
      2,
    );
    const after = cache.row('Bridge', B1)!;
    expect(after).to.deep.equal({
      name: 'br0',
      ports: ['set', [['uuid', P1], ['uuid', P2]]],
      external_ids: ['map', [['b', '3'], ['c', '4']]],
      fail_mode: 'secure',
    });
    // the old row handed to 'update' is the untouched previous object
    expect(ev[0]).to.deep.equal(['update', 'Bridge', B1, after, before]);
    expect(before.ports).to.deep.equal(['uuid', P1]);
    expect(cache.row('Port', P1)).to.deep.equal({ name: 'p1', tag: 7, trunks: ['set', [1, 3]] });
    expect(cache.row('Port', P2)).to.deep.equal({ name: 'p2', tag: ['set', []], trunks: ['set', []] });
    expect(ev.map((e) => e.slice(0, 3))).to.deep.equal([
      ['update', 'Bridge', B1],
      ['update', 'Port', P1],
      ['add', 'Port', P2],
    ]);

    cache.applyUpdates({ Port: { [P1]: { delete: null } }, Bridge: { [B1]: { modify: { ports: ['uuid', P1], fail_mode: ['set', []] } } } }, 2);
    expect(cache.row('Port', P1)).to.equal(undefined);
    expect(cache.row('Bridge', B1)!.ports).to.deep.equal(['uuid', P2]);
    expect(cache.row('Bridge', B1)!.fail_mode).to.deep.equal(['set', []]);
    expect(ev[3]!.slice(0, 3)).to.deep.equal(['delete', 'Port', P1]);
  });

  it('update (format 1): new = insert, old+new = modify, old only = delete', () => {
    const cache = new RowCache({ schema, columns });
    const ev = record(cache);
    cache.resetFrom({ Bridge: { [B1]: { new: { name: 'br0', ports: ['set', []], external_ids: ['map', []], fail_mode: ['set', []] } } } }, 1);
    cache.applyUpdates({ Bridge: { [B1]: { old: { fail_mode: ['set', []] }, new: { name: 'br0', ports: ['set', []], external_ids: ['map', []], fail_mode: 'standalone' } } } }, 1);
    expect(cache.row('Bridge', B1)!.fail_mode).to.equal('standalone');
    cache.applyUpdates({ Bridge: { [B1]: { old: { name: 'br0' } } } }, 1);
    expect(cache.table('Bridge').size).to.equal(0);
    expect(ev.map((e) => e[0])).to.deep.equal(['add', 'ready', 'update', 'delete']);
  });

  it('reset reconciles: deletes rows gone, adds new rows, updates changed rows, keeps equal rows silent', () => {
    const cache = new RowCache({ schema, columns });
    cache.resetFrom(
      {
        Bridge: {
          [B1]: { initial: { name: 'br0', external_ids: ['map', [['x', '1']]] } },
          [B2]: { initial: { name: 'gone' } },
        },
        Port: { [P1]: { initial: { name: 'p1', trunks: ['set', [1, 2]] } } },
      },
      2,
    );
    const ev = record(cache);
    cache.resetFrom(
      {
        Bridge: { [B1]: { initial: { name: 'br0', external_ids: ['map', [['x', '2']]] } } },
        // same set, other element order: not a change
        Port: { [P1]: { initial: { name: 'p1', trunks: ['set', [2, 1]] } }, [P2]: { initial: { name: 'p2' } } },
      },
      2,
    );
    expect(ev.map((e) => e.slice(0, 3))).to.deep.equal([['delete', 'Bridge', B2], ['update', 'Bridge', B1], ['add', 'Port', P2], ['ready']]);
    expect((ev[1]![4] as CacheRow).external_ids).to.deep.equal(['map', [['x', '1']]]);
    expect(cache.row('Bridge', B1)!.external_ids).to.deep.equal(['map', [['x', '2']]]);
    expect(cache.table('Bridge').size).to.equal(1);
  });

  it('a reset to an empty snapshot deletes everything', () => {
    const cache = new RowCache({ schema, columns });
    cache.resetFrom({ Port: { [P1]: { initial: { name: 'p1' } } } }, 2);
    const ev = record(cache);
    cache.resetFrom({}, 2);
    expect(ev.map((e) => e.slice(0, 3))).to.deep.equal([['delete', 'Port', P1], ['ready']]);
    expect(cache.tables.get('Port')!.size).to.equal(0);
  });

  it('works without a schema (rows kept as sent, diffs guessed from value shape)', () => {
    const cache = new RowCache();
    cache.resetFrom({ T: { [B1]: { initial: { s: ['set', [1, 2]], m: ['map', [['k', 'v']]] } } } }, 2);
    cache.applyUpdates({ T: { [B1]: { modify: { s: 1, m: ['map', [['k', 'v']]] } } } }, 2);
    expect(cache.row('T', B1)).to.deep.equal({ s: 2, m: ['map', []] });
  });
});
