// Schema discipline: the wire schema only evolves compatibly.
//
//  - proto/mirrorflow.proto against the previous released version, frozen in
//    test/fixtures/proto/mirrorflow.proto: for every message (and enum) in both, no field number is
//    reused by a different name, no field changes type or label, and every removed field's number
//    and name are `reserved`.
//  - proto/*.avsc are exactly what scripts/gen-avro.ts writes.
//  - A consumer built on the previous schema decodes records written with the current one.
//
// Updating the baseline: when a schema version is released, copy the current schema over the
// frozen one in the same commit (`cp proto/mirrorflow.proto test/fixtures/proto/`); see
// test/fixtures/proto/README.md. Never edit the frozen copy to make this test pass.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { encodeRecord } from '../../../src/pipeline/codec.js';
import { icmpRecord, otherRecord, pairWindow, tcpRecord } from './codec.fixture.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const CURRENT_PROTO = join(REPO, 'proto/mirrorflow.proto');
const BASELINE_PROTO = join(REPO, 'test/fixtures/proto/mirrorflow.proto');

/** Parses .proto text with the proto field names (snake_case), resolved. */
function parseProto(text: string): protobuf.Root {
  const root = protobuf.parse(text, { keepCase: true }).root;
  root.resolveAll();
  return root;
}

function allTypes(ns: protobuf.NamespaceBase, out = new Map<string, protobuf.Type | protobuf.Enum>()): Map<string, protobuf.Type | protobuf.Enum> {
  for (const o of ns.nestedArray) {
    if (o instanceof protobuf.Type || o instanceof protobuf.Enum) out.set(o.fullName.replace(/^\./, ''), o);
    if (o instanceof protobuf.Namespace || o instanceof protobuf.Type) allTypes(o, out);
  }
  return out;
}

const isReservedNumber = (reserved: (number[] | string)[] | undefined, n: number): boolean =>
  (reserved ?? []).some((r) => typeof r !== 'string' && n >= r[0]! && n <= r[1]!);
const isReservedName = (reserved: (number[] | string)[] | undefined, name: string): boolean => (reserved ?? []).some((r) => r === name);

function fieldType(f: protobuf.Field): string {
  const rt = f.resolve().resolvedType;
  const t = rt ? rt.fullName.replace(/^\./, '') : f.type;
  return f instanceof protobuf.MapField ? `map<${f.keyType}, ${t}>` : t;
}

function fieldLabel(f: protobuf.Field): string {
  if (f.repeated) return 'repeated';
  if (f.required) return 'required';
  if (f.options?.proto3_optional) return 'optional';
  if (f.partOf) return `oneof ${f.partOf.name}`;
  return 'singular';
}

/**
 * Every incompatible change from `previous` to `current`, as readable lines (empty: compatible).
 * Messages and enums are matched by full name; a message or enum only in one of them is not checked.
 */
function schemaProblems(previous: protobuf.Root, current: protobuf.Root): string[] {
  const problems: string[] = [];
  const cur = allTypes(current);
  for (const [name, prev] of allTypes(previous)) {
    const now = cur.get(name);
    if (!now) continue;
    if (prev instanceof protobuf.Type && now instanceof protobuf.Type) {
      const byNumber = new Map(now.fieldsArray.map((f) => [f.id, f]));
      const byName = new Map(now.fieldsArray.map((f) => [f.name, f]));
      for (const pf of prev.fieldsArray) {
        const nf = byNumber.get(pf.id);
        if (!nf) {
          if (!isReservedNumber(now.reserved, pf.id)) problems.push(`${name}: field ${pf.name} = ${pf.id} removed without reserving its number`);
          if (!isReservedName(now.reserved, pf.name) && !byName.has(pf.name)) problems.push(`${name}: field ${pf.name} = ${pf.id} removed without reserving its name`);
          continue;
        }
        if (nf.name !== pf.name) problems.push(`${name}: field number ${pf.id} reused (was ${pf.name}, now ${nf.name})`);
        if (fieldType(nf) !== fieldType(pf)) problems.push(`${name}: field ${pf.name} = ${pf.id} changed type (${fieldType(pf)} -> ${fieldType(nf)})`);
        if (fieldLabel(nf) !== fieldLabel(pf)) problems.push(`${name}: field ${pf.name} = ${pf.id} changed label (${fieldLabel(pf)} -> ${fieldLabel(nf)})`);
      }
      for (const nf of now.fieldsArray) {
        const pf = prev.fieldsArray.find((f) => f.name === nf.name);
        if (pf && pf.id !== nf.id) problems.push(`${name}: field ${nf.name} renumbered (${pf.id} -> ${nf.id})`);
        if (isReservedNumber(prev.reserved, nf.id)) problems.push(`${name}: field ${nf.name} = ${nf.id} uses a number reserved in the previous version`);
        if (isReservedName(prev.reserved, nf.name)) problems.push(`${name}: field ${nf.name} = ${nf.id} uses a name reserved in the previous version`);
      }
      for (const r of prev.reserved ?? []) {
        const still = typeof r === 'string' ? isReservedName(now.reserved, r) || byName.has(r) : r.every((n) => isReservedNumber(now.reserved, n) || byNumber.has(n));
        if (!still) problems.push(`${name}: reservation ${typeof r === 'string' ? `"${r}"` : r.join('..')} dropped`);
      }
    } else if (prev instanceof protobuf.Enum && now instanceof protobuf.Enum) {
      for (const [vname, n] of Object.entries(prev.values)) {
        const nowName = Object.entries(now.values).find(([, m]) => m === n)?.[0];
        if (nowName === undefined) {
          if (!now.isReservedId(n)) problems.push(`${name}: value ${vname} = ${n} removed without reserving its number`);
        } else if (nowName !== vname) problems.push(`${name}: value number ${n} reused (was ${vname}, now ${nowName})`);
      }
    } else {
      problems.push(`${name}: changed between message and enum`);
    }
  }
  return problems;
}

/** Plain object of a decoded message: 64-bit as strings, enums by name, defaults omitted. */
const plain = (t: protobuf.Type, m: protobuf.Message): Record<string, unknown> => t.toObject(m, { longs: String, enums: String, defaults: false, arrays: false });

/** `value` (decoded by the current type) restricted to the fields `prev` knows under the same number and name. */
function project(prev: protobuf.Type, now: protobuf.Type, value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pf of prev.fieldsArray) {
    const nf = now.fieldsArray.find((f) => f.id === pf.id && f.name === pf.name);
    if (!nf || value[nf.name] === undefined) continue;
    const pt = pf.resolve().resolvedType;
    const nt = nf.resolve().resolvedType;
    const v = value[nf.name];
    if (pt instanceof protobuf.Type && nt instanceof protobuf.Type) {
      out[pf.name] = Array.isArray(v) ? v.map((x) => project(pt, nt, x as Record<string, unknown>)) : project(pt, nt, v as Record<string, unknown>);
    } else out[pf.name] = v;
  }
  return out;
}

describe('schema discipline', () => {
  const currentText = readFileSync(CURRENT_PROTO, 'utf8');
  const baselineText = readFileSync(BASELINE_PROTO, 'utf8');

  describe('proto/mirrorflow.proto against the previous version (test/fixtures/proto/)', () => {
    it('reuses no field number, changes no type or label, reserves what it removed', () => {
      expect(schemaProblems(parseProto(baselineText), parseProto(currentText))).to.deep.equal([]);
    });

    it('the baseline still has the messages the codecs write', () => {
      const base = parseProto(baselineText);
      for (const m of ['FlowRecord', 'PairWindow', 'Alert']) expect(() => base.lookupType(`mirrorflow.v1.${m}`), m).not.to.throw();
    });

    // The check itself, against deliberately broken copies of the current schema (in memory).
    const edit = (from: string, to: string): protobuf.Root => {
      expect(currentText, `the current .proto contains ${JSON.stringify(from)}`).to.include(from);
      return parseProto(currentText.replace(from, to));
    };
    const previous = () => parseProto(currentText);

    it('reports a field number reused by a different field', () => {
      const broken = edit('double loss_rate = 14;            // (retransmits', 'double drop_ratio = 14;           // (retransmits');
      expect(schemaProblems(previous(), broken)).to.deep.equal([
        'mirrorflow.v1.FlowRecord: field number 14 reused (was loss_rate, now drop_ratio)',
      ]);
    });

    it('reports a changed type, a changed label and a renumbered field', () => {
      const broken = edit('uint32 flows = 9;', 'uint64 flows = 9;');
      expect(schemaProblems(previous(), broken)).to.deep.equal(['mirrorflow.v1.PairWindow: field flows = 9 changed type (uint32 -> uint64)']);
      const labels = edit('optional uint32 vni = 3;', 'uint32 vni = 3;');
      expect(schemaProblems(previous(), labels)).to.deep.equal(['mirrorflow.v1.FlowKey: field vni = 3 changed label (optional -> singular)']);
      const message = edit('TrafficCounters a_to_b = 7;', 'DirectionCounters a_to_b = 7;');
      expect(schemaProblems(previous(), message)).to.deep.equal([
        'mirrorflow.v1.PairWindow: field a_to_b = 7 changed type (mirrorflow.v1.TrafficCounters -> mirrorflow.v1.DirectionCounters)',
      ]);
      const moved = edit('string bridge = 2;\n  string mirror = 3;', 'string bridge = 3;\n  string mirror = 2;');
      expect(schemaProblems(previous(), moved)).to.have.members([
        'mirrorflow.v1.ObservationPoint: field number 2 reused (was bridge, now mirror)',
        'mirrorflow.v1.ObservationPoint: field number 3 reused (was mirror, now bridge)',
        'mirrorflow.v1.ObservationPoint: field bridge renumbered (2 -> 3)',
        'mirrorflow.v1.ObservationPoint: field mirror renumbered (3 -> 2)',
      ]);
    });

    it('reports a removed field that is not reserved, and accepts it once reserved', () => {
      const removed = edit('  string mirror = 3;\n', '');
      expect(schemaProblems(previous(), removed)).to.deep.equal([
        'mirrorflow.v1.ObservationPoint: field mirror = 3 removed without reserving its number',
        'mirrorflow.v1.ObservationPoint: field mirror = 3 removed without reserving its name',
      ]);
      const reserved = edit('  string mirror = 3;\n', '  reserved 3;\n  reserved "mirror";\n');
      expect(schemaProblems(previous(), reserved)).to.deep.equal([]);
    });

    it('reports a number that was reserved being used again, and an enum value number reused', () => {
      const reused = edit('  reserved 9, 10;\n', '  reserved 10;\n  RttSummary server_rtt = 9;\n');
      expect(schemaProblems(previous(), reused)).to.deep.equal([
        'mirrorflow.v1.TcpMetrics: field server_rtt = 9 uses a number reserved in the previous version',
      ]);
      const enumReused = edit('TUNNEL_GRE = 3;', 'TUNNEL_IPIP = 3;');
      expect(schemaProblems(previous(), enumReused)).to.deep.equal(['mirrorflow.v1.Tunnel: value number 3 reused (was TUNNEL_GRE, now TUNNEL_IPIP)']);
    });

    it('accepts a compatible change: a new field with a new number', () => {
      const added = edit('PairTrend trend = 14;', 'PairTrend trend = 14;\n  string note = 15;');
      expect(schemaProblems(previous(), added)).to.deep.equal([]);
    });
  });

  describe('a consumer built on the previous schema', () => {
    // protobufjs as an outside consumer would load it (default options: camelCase names)
    const baseline = protobuf.loadSync(BASELINE_PROTO);
    const current = protobuf.loadSync(CURRENT_PROTO);
    const cases = [
      { name: 'a TCP FlowRecord', type: 'mirrorflow.v1.FlowRecord', bytes: () => encodeRecord('flow-record', tcpRecord(7), 'protobuf') },
      { name: 'an ICMPv6 FlowRecord', type: 'mirrorflow.v1.FlowRecord', bytes: () => encodeRecord('flow-record', icmpRecord(8), 'protobuf') },
      { name: 'a non-IP FlowRecord', type: 'mirrorflow.v1.FlowRecord', bytes: () => encodeRecord('flow-record', otherRecord(9), 'protobuf') },
      { name: 'a PairWindow', type: 'mirrorflow.v1.PairWindow', bytes: () => encodeRecord('pair-window', pairWindow(3), 'protobuf') },
    ];
    for (const c of cases) {
      it(`decodes ${c.name} written by the current codec; the fields known to both are equal`, () => {
        const bytes = c.bytes();
        const prevType = baseline.lookupType(c.type);
        const nowType = current.lookupType(c.type);
        const old = plain(prevType, prevType.decode(bytes));
        const now = plain(nowType, nowType.decode(bytes));
        expect(Object.keys(old).length).to.be.greaterThan(5);
        expect(old).to.deep.equal(project(prevType, nowType, now));
      });
    }

    it('would notice a consumer that reads a field with another type (the comparison can fail)', () => {
      // a "previous" schema where FlowRecord.sequence was a string: same number, other wire type
      const text = readFileSync(BASELINE_PROTO, 'utf8').replace('uint64 sequence = 3;', 'string sequence = 3;');
      const broken = protobuf.parse(text).root.lookupType('mirrorflow.v1.FlowRecord');
      const nowType = current.lookupType('mirrorflow.v1.FlowRecord');
      const bytes = encodeRecord('flow-record', tcpRecord(7), 'protobuf');
      let old: Record<string, unknown> | undefined;
      try {
        old = plain(broken, broken.decode(bytes));
      } catch {
        return; // decoding failed outright: noticed
      }
      expect(old).not.to.deep.equal(project(broken, nowType, plain(nowType, nowType.decode(bytes))));
    });
  });

  describe('proto/*.avsc', () => {
    it('are exactly what scripts/gen-avro.ts generates', function () {
      this.timeout(30_000);
      // gen-avro.ts writes next to itself (../proto/); run a copy in a temp tree whose src/ is ours
      const dir = mkdtempSync(join(tmpdir(), 'mf-gen-avro-'));
      try {
        mkdirSync(join(dir, 'scripts'));
        mkdirSync(join(dir, 'proto'));
        symlinkSync(join(REPO, 'src'), join(dir, 'src'), 'dir');
        copyFileSync(join(REPO, 'scripts/gen-avro.ts'), join(dir, 'scripts/gen-avro.ts'));
        execFileSync(process.execPath, ['--import', 'tsx', join(dir, 'scripts/gen-avro.ts')], { cwd: REPO, stdio: 'pipe', timeout: 30_000 });
        const generated = readdirSync(join(dir, 'proto')).sort();
        const committed = readdirSync(join(REPO, 'proto')).filter((f) => f.endsWith('.avsc')).sort();
        expect(generated).to.deep.equal(committed);
        expect(generated).to.include.members(['alert.avsc', 'flow_record.avsc', 'pair_window.avsc']);
        for (const f of generated) {
          expect(readFileSync(join(REPO, 'proto', f), 'utf8'), `proto/${f} (regenerate: npx tsx scripts/gen-avro.ts)`).to.equal(readFileSync(join(dir, 'proto', f), 'utf8'));
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
