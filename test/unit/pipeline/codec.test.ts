import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import avro from 'avsc';
import protobuf from 'protobufjs';
import { pairWindowToProto3Json, toProto3Json, type FlowRecord, type PairWindow } from '../../../src/capture/flow-record.js';
import {
  CodecError,
  RECORD_FORMATS,
  createRecordWriter,
  decodeAlert,
  decodeFlowRecord,
  decodePairWindow,
  decodeRecord,
  describeMessage,
  encodeAlert,
  encodeFlowRecord,
  encodePairWindow,
  fromProto3Json,
  pairWindowFromProto3Json,
  readRecordStream,
  readRecords,
  schemaFingerprint,
  schemaHeaders,
  type RecordFormat,
  type RecordKind,
} from '../../../src/pipeline/codec.js';
import { avroType, protoType } from '../../../src/pipeline/codec-schemas.js';
import { ALERT_SCHEMA_VERSION, alertToProto3Json, type Alert } from '../../../src/pipeline/alert-record.js';
import { flowRecords, icmpRecord, otherRecord, pairWindow, tcpRecord, T0_US } from './codec.fixture.js';
import { rng } from '../../helpers/rng.js';

const TO_JSON: protobuf.IConversionOptions = { longs: String, enums: String, defaults: false };

/** Runs fn, expects a CodecError with the given code, returns it. */
function codecError(fn: () => unknown, code = 'codec-decode'): CodecError {
  try {
    fn();
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(CodecError);
    expect((err as CodecError).code).to.equal(code);
    return err as CodecError;
  }
  expect.fail('expected a CodecError');
}

async function collect<T>(it: AsyncIterable<T>): Promise<{ values: T[]; error: unknown }> {
  const values: T[] = [];
  try {
    for await (const v of it) values.push(v);
  } catch (error) {
    return { values, error };
  }
  return { values, error: undefined };
}


const RECORDS: [string, () => FlowRecord][] = [
  ['TCP over VXLAN with VLANs, handshake and sketches', () => tcpRecord(7)],
  ['ICMPv6 echo on an IPv6 key (interim)', () => icmpRecord()],
  ['non-IP, GRE key 0, many defaults', () => otherRecord()],
];

describe('pipeline/codec', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mirrorflow-codec-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('single messages', () => {
    for (const format of RECORD_FORMATS) {
      for (const [name, make] of RECORDS) {
        it(`round-trips a FlowRecord through ${format}: ${name}`, () => {
          const r = make();
          const bytes = encodeFlowRecord(r, format);
          expect(Buffer.isBuffer(bytes)).to.equal(true);
          expect(decodeFlowRecord(bytes, format)).to.deep.equal(r);
        });
      }
      it(`round-trips a PairWindow through ${format}`, () => {
        const w = pairWindow(3);
        expect(decodePairWindow(encodePairWindow(w, format), format)).to.deep.equal(w);
      });
    }

    const alert = (over: Partial<Alert> = {}): Alert => ({
      id: 'g:high-loss:10.0.0.1~10.0.0.2:1700000000000000:firing',
      schemaVersion: ALERT_SCHEMA_VERSION,
      rule: 'high-loss',
      kind: 'threshold',
      severity: 'critical',
      state: 'firing',
      a: '10.0.0.1',
      b: '10.0.0.2',
      source: '',
      windowStartUs: T0_US,
      windowEndUs: T0_US + 10_000_000,
      value: 0.125,
      threshold: 0.05,
      message: '10.0.0.1 <-> 10.0.0.2: lossRate 0.125 > 0.05 for 2 windows',
      ...over,
    });
    for (const format of RECORD_FORMATS) {
      it(`round-trips an Alert through ${format} (firing, resolved with NaN value, source alert)`, () => {
        for (const a of [alert(), alert({ state: 'resolved', value: NaN, id: 'x:resolved' }), alert({ rule: 'scan', kind: 'security', a: '', b: '', source: 'vm-a', value: 25, threshold: 20 })]) {
          expect(decodeAlert(encodeAlert(a, format), format)).to.deep.equal(a);
        }
      });
    }

    it('Alert: protobuf bytes read with the .proto, JSON is the proto3 mapping, Avro follows alert.avsc', () => {
      const a = alert();
      const pb = protoType('alert').toObject(protoType('alert').decode(encodeAlert(a, 'protobuf')), TO_JSON);
      expect(pb).to.include({ id: a.id, rule: 'high-loss', state: 'firing', windowStartUs: String(T0_US), value: 0.125 });
      expect(JSON.parse(encodeAlert(a, 'json').toString('utf8'))).to.deep.equal(alertToProto3Json(a));
      expect(avroType('alert').fromBuffer(encodeAlert(a, 'avro'))).to.include({ id: a.id, severity: 'critical', threshold: 0.05 });
    });

    it('Alert: validates after decode (empty id, unknown state, unsupported version) and refuses to encode such', () => {
      expect(codecError(() => decodeAlert(Buffer.from(encodeAlert(alert(), 'json').toString('utf8').replace('"firing"', '"maybe"')), 'json')).message).to.match(/state/);
      codecError(() => encodeAlert(alert({ id: '' }), 'protobuf'), 'codec-encode');
      codecError(() => encodeAlert(alert({ state: 'maybe' as Alert['state'] }), 'avro'), 'codec-encode');
      const v2 = protoType('alert').encode({ id: 'x', schemaVersion: 99 }).finish();
      expect(codecError(() => decodeAlert(v2, 'protobuf')).message).to.match(/unsupported schema version 99/);
    });

    it('keeps int64 µs timestamps and uint64 counters beyond 2^32 exact', () => {
      const r = tcpRecord(1);
      r.startUs = Number.MAX_SAFE_INTEGER - 1;
      r.clientToServer.bytes = 2 ** 52 + 3;
      r.serverToClient.firstUs = -1; // int64 may be negative (signed varint on the wire)
      for (const format of RECORD_FORMATS) expect(decodeFlowRecord(encodeFlowRecord(r, format), format), format).to.deep.equal(r);
      const j = JSON.parse(encodeFlowRecord(r, 'json').toString('utf8'));
      expect(j.startUs).to.equal(String(Number.MAX_SAFE_INTEGER - 1));
      expect(j.clientToServer.bytes).to.equal('4503599627370499');
    });

    it('writes JSON as the canonical proto3 mapping: lowerCamelCase, int64 strings, enum names, defaults omitted', () => {
      const r = otherRecord(3);
      const j = JSON.parse(encodeFlowRecord(r, 'json').toString('utf8'));
      expect(j).to.deep.equal(toProto3Json(r));
      expect(j.sequence).to.equal('3');
      expect(j.startUs).to.equal(String(T0_US));
      expect(j.exportReason).to.equal('EXPORT_REASON_IDLE_TIMEOUT');
      expect(j.key).to.deep.equal({
        vlans: [0],
        tunnel: 'TUNNEL_GRE',
        vni: 0, // proto3 optional: present even when 0
        etherType: 2054,
        clientMac: 'fa:16:3e:00:00:01',
        serverMac: 'ff:ff:ff:ff:ff:ff',
        icmpType: 3,
        icmpCode: 0,
        fragmentsOnly: true,
      });
      expect(j.serverToClient).to.deep.equal({}); // present, all defaults
      expect('lossRate' in j).to.equal(false);
      expect('icmp' in j).to.equal(false);
      expect(JSON.parse(encodePairWindow(pairWindow(), 'json').toString('utf8'))).to.deep.equal(pairWindowToProto3Json(pairWindow()));
    });

    for (const [name, make] of RECORDS) {
      it(`protobuf bytes decode with the .proto to our JSON mapping (protobufjs toObject): ${name}`, () => {
        const r = make();
        const T = protoType('flow-record');
        const msg = T.decode(encodeFlowRecord(r, 'protobuf'));
        expect(T.verify(msg)).to.equal(null);
        expect(T.toObject(msg, TO_JSON)).to.deep.equal(toProto3Json(r));
      });
      it(`reads protobuf written by protobufjs from the JSON mapping: ${name}`, () => {
        const r = make();
        const T = protoType('flow-record');
        const bytes = T.encode(T.fromObject(toProto3Json(r))).finish();
        expect(decodeFlowRecord(bytes, 'protobuf')).to.deep.equal(r);
      });
    }

    it('writes canonical protobuf: proto3 defaults are not on the wire, present sub-messages are', () => {
      const T = protoType('flow-record');
      const r = otherRecord();
      const bytes = encodeFlowRecord(r, 'protobuf');
      const msg = T.decode(bytes);
      expect(Object.keys(msg)).to.not.include('lossRate');
      expect(Object.keys(msg)).to.include('serverToClient');
      expect(T.toObject(msg, TO_JSON).serverToClient).to.deep.equal({});
      // field 11 (serverToClient), wire type 2, length 0
      expect(bytes.includes(Buffer.from([(11 << 3) | 2, 0]))).to.equal(true);
      const w = protoType('pair-window');
      expect(w.toObject(w.decode(encodePairWindow(pairWindow(), 'protobuf')), TO_JSON)).to.deep.equal(pairWindowToProto3Json(pairWindow()));
    });

    it('Avro datums follow the .avsc: avsc decodes our bytes, and we decode what avsc writes', () => {
      const r = tcpRecord(9);
      const t = avroType('flow-record');
      const v = t.fromBuffer(encodeFlowRecord(r, 'avro'));
      expect(v.exportReason).to.equal('EXPORT_REASON_END_FIN');
      expect(v.key.tunnel).to.equal('TUNNEL_VXLAN');
      expect(v.key.vni).to.equal(5001);
      expect(v.key.icmpId).to.equal(null);
      expect(v.startUs).to.equal(r.startUs);
      expect(v.icmp).to.equal(null);
      expect({ ...v.tcp.serverTsRttSummary }).to.deep.equal(r.tcp!.serverTsRttSummary);
      // written by avsc from a plain value (the schema's own defaults fill what we leave out)
      const fromFile = avro.Type.forSchema(JSON.parse(readFileSync(new URL('../../../proto/pair_window.avsc', import.meta.url), 'utf8')));
      const w = pairWindow(2);
      const plain = JSON.parse(JSON.stringify(w)) as Record<string, unknown>;
      expect(decodePairWindow(fromFile.toBuffer(plain), 'avro')).to.deep.equal(w);
    });

    it('fromProto3Json restores omitted defaults and required sub-messages, and accepts the lenient proto3 JSON forms', () => {
      const minimal = { id: 'hv-1', schemaVersion: 2, exportReason: 'EXPORT_REASON_FLUSH' };
      const r = fromProto3Json(minimal);
      expect(r.sequence).to.equal(0);
      expect(r.key).to.deep.equal({
        vlans: [],
        tunnel: 'none',
        ipVersion: 0,
        protocol: 0,
        etherType: 0,
        clientIp: '',
        serverIp: '',
        clientPort: 0,
        serverPort: 0,
        clientMac: '',
        serverMac: '',
        fragmentsOnly: false,
      });
      expect(r.clientToServer).to.deep.equal({ packets: 0, bytes: 0, firstUs: 0, lastUs: 0, tcpFlags: 0 });
      expect(r.observation).to.deep.equal({ agentId: '', bridge: '', mirror: '', interface: '' });
      expect('tcp' in r).to.equal(false);
      expect('icmp' in r).to.equal(false);
      expect(decodeFlowRecord(Buffer.from(JSON.stringify(minimal)), 'json')).to.deep.equal(r);
      // proto field names, int64 as numbers, enums as numbers, uint32 as strings, NaN/Infinity doubles, null = default
      const lenient = fromProto3Json({
        id: 'x',
        schema_version: '1',
        start_us: 1_700_000_000_000_001,
        export_reason: 3,
        key: { ip_version: 6, tunnel: 1, vni: '7', vlans: ['5'] },
        loss_rate: 'NaN',
        icmp: { rtt: { min_us: 'Infinity' } },
        tcp: null,
        unknownFutureField: { ignored: true },
      });
      expect(lenient.schemaVersion).to.equal(1);
      expect(lenient.startUs).to.equal(1_700_000_000_000_001);
      expect(lenient.exportReason).to.equal('end-fin');
      expect(lenient.key.tunnel).to.equal('vxlan');
      expect(lenient.key.vni).to.equal(7);
      expect(lenient.key.vlans).to.deep.equal([5]);
      expect(lenient.lossRate).to.be.NaN;
      expect(lenient.icmp!.rtt!.minUs).to.equal(Infinity);
      expect('tcp' in lenient).to.equal(false);
      const w = pairWindowFromProto3Json(pairWindowToProto3Json(pairWindow()));
      expect(w).to.deep.equal(pairWindow());
    });

    it('carries NaN and Infinity doubles through every format', () => {
      const r = tcpRecord(2);
      r.lossRate = NaN;
      r.tcp!.handshakeRttUs = Infinity;
      for (const format of RECORD_FORMATS) {
        const d = decodeFlowRecord(encodeFlowRecord(r, format), format);
        expect(d.lossRate, format).to.be.NaN;
        expect(d.tcp!.handshakeRttUs, format).to.equal(Infinity);
      }
    });
  });

  describe('headers', () => {
    it('names content type, schema, version and fingerprint, and reads them back', () => {
      const h = schemaHeaders('flow-record', 'protobuf');
      expect(h).to.include({ 'content-type': 'application/x-protobuf', 'mirrorflow-schema': 'mirrorflow.v1.FlowRecord', 'mirrorflow-schema-version': '2' });
      expect(h['mirrorflow-schema-fingerprint']).to.match(/^sha256:[0-9a-f]{64}$/);
      expect(schemaHeaders('pair-window', 'json')['content-type']).to.equal('application/json');
      expect(schemaHeaders('pair-window', 'avro')).to.include({ 'content-type': 'avro/binary', 'mirrorflow-schema': 'mirrorflow.v1.PairWindow' });
      expect(schemaHeaders('alert', 'protobuf')).to.include({ 'mirrorflow-schema': 'mirrorflow.v1.Alert', 'mirrorflow-schema-version': '1' });
      for (const kind of ['flow-record', 'pair-window', 'alert'] as RecordKind[]) {
        for (const format of RECORD_FORMATS) {
          const headers = Object.fromEntries(Object.entries(schemaHeaders(kind, format)).map(([k, v]) => [k, Buffer.from(v)]));
          expect(describeMessage(headers)).to.deep.equal({ kind, format, schemaVersion: kind === 'flow-record' ? 2 : 1, fingerprint: schemaHeaders(kind, format)['mirrorflow-schema-fingerprint'] });
        }
      }
      expect(codecError(() => describeMessage({ ...h, 'mirrorflow-schema-version': '1' })).message).to.match(/unsupported schema version.*version=1/);
      expect(codecError(() => describeMessage({ ...h, 'mirrorflow-schema': 'other.Thing' })).message).to.match(/unknown message schema/);
      expect(codecError(() => describeMessage({ ...h, 'content-type': 'text/plain' })).message).to.match(/unknown content type/);
    });

    it('fingerprints: Avro is the Parsing Canonical Form SHA-256; kinds differ; json shares the proto one', () => {
      expect(schemaFingerprint('flow-record', 'avro')).to.equal('sha256:' + avroType('flow-record').fingerprint('sha256').toString('hex'));
      expect(schemaFingerprint('flow-record', 'json')).to.equal(schemaFingerprint('flow-record', 'protobuf'));
      expect(schemaFingerprint('flow-record', 'protobuf')).to.not.equal(schemaFingerprint('pair-window', 'protobuf'));
      expect(schemaFingerprint('flow-record', 'avro')).to.not.equal(schemaFingerprint('pair-window', 'avro'));
      expect(schemaFingerprint('alert', 'avro')).to.equal('sha256:' + avroType('alert').fingerprint('sha256').toString('hex'));
      expect(schemaFingerprint('alert', 'protobuf')).to.not.equal(schemaFingerprint('pair-window', 'protobuf'));
    });
  });

  describe('malformed input', () => {
    it('truncated protobuf: a cut inside a field is a codec-decode error naming format and message', () => {
      const bytes = encodeFlowRecord(tcpRecord(), 'protobuf');
      // the last field is lossRate (double, 8 bytes): cut it
      const e = codecError(() => decodeFlowRecord(bytes.subarray(0, bytes.length - 3), 'protobuf'));
      expect(e.message).to.match(/^codec: malformed FlowRecord \(format=protobuf, bytes=\d+, problem=/);
      // every prefix either decodes (a cut at a field boundary is valid protobuf) or is a CodecError
      for (let n = 0; n < bytes.length; n++) {
        try {
          decodeFlowRecord(bytes.subarray(0, n), 'protobuf');
        } catch (err) {
          expect(err, `prefix ${n}`).to.be.instanceOf(CodecError);
        }
      }
    });

    it('garbage Avro is a codec-decode error, including counts claiming billions of items', () => {
      const bytes = encodeFlowRecord(tcpRecord(), 'avro');
      expect(codecError(() => decodeFlowRecord(bytes.subarray(0, bytes.length - 1), 'avro')).message).to.match(/format=avro.*truncated/);
      expect(codecError(() => decodeFlowRecord(Buffer.concat([bytes, Buffer.from([0])]), 'avro')).message).to.match(/trailing data/);
      // a valid id, then schemaVersion etc. as zeros, observation null, enum 0, key present with a vlans block of 2^40 items
      const huge = Buffer.from([
        0x02, 0x61 /* id "a" */, 0x02 /* schemaVersion 1 */, 0x00, 0x00, 0x00 /* observation null */, 0x00 /* exportReason */, 0x02 /* key: branch 1 */,
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40 /* array block count 2^40 (zigzag) */, 0x02, 0x02,
      ]);
      const started = process.hrtime.bigint();
      expect(codecError(() => decodeFlowRecord(huge, 'avro')).message).to.match(/block count \d+ exceeds/);
      expect(Number(process.hrtime.bigint() - started) / 1e6).to.be.below(500);
      expect(codecError(() => decodeFlowRecord(Buffer.from('not avro at all, really not'), 'avro')).code).to.equal('codec-decode');
    });

    it('bad JSON: syntax, wrong types, out-of-range integers, unknown enum values', () => {
      expect(codecError(() => decodeFlowRecord(Buffer.from('{"id":'), 'json')).message).to.match(/^codec: malformed FlowRecord \(format=json, bytes=6, problem=/);
      const good = toProto3Json(tcpRecord());
      const bad = (patch: Record<string, unknown>): CodecError => codecError(() => decodeFlowRecord(Buffer.from(JSON.stringify({ ...good, ...patch })), 'json'));
      expect(bad({ id: 5 }).details).to.include({ field: 'id' });
      expect(bad({ sequence: '12x' }).details).to.include({ field: 'sequence' });
      expect(bad({ startUs: '18446744073709551615' }).message).to.match(/int64 out of range/);
      expect(bad({ exportReason: 'EXPORT_REASON_BOGUS' }).message).to.match(/unknown enum value/);
      expect(bad({ key: { clientPort: 2 ** 32 } }).details).to.include({ field: 'key.clientPort' });
      expect(bad({ key: { vlans: 7 } }).details).to.include({ field: 'key.vlans' });
      expect(codecError(() => decodeFlowRecord(Buffer.from('[1,2]'), 'json')).message).to.match(/expected a FlowRecord object/);
      expect(codecError(() => decodeFlowRecord(Buffer.from('null'), 'json')).code).to.equal('codec-decode');
    });

    it('validates after decode: empty id, unsupported schema version, unspecified export reason, sketch arrays, in every format', () => {
      const T = protoType('flow-record');
      const A = avroType('flow-record');
      const variants: [string, (j: Record<string, unknown>) => void, RegExp][] = [
        ['schema version 1 (TS-RTT sketches)', (j) => (j.schemaVersion = 1), /unsupported schema version 1 \(supported: 2\)/],
        ['empty id', (j) => delete j.id, /field=id/],
        ['unspecified export reason', (j) => delete j.exportReason, /field=exportReason/],
        ['sketch arrays of different lengths', (j) => (j.icmp = { echoRequests: 2, rtt: { count: 2, bucketDeltas: [300, 1], bucketCounts: [1] } }), /differ in length/],
      ];
      for (const [what, patch, re] of variants) {
        const j = toProto3Json(tcpRecord()) as Record<string, unknown>;
        patch(j);
        const wire: Record<RecordFormat, Uint8Array> = {
          json: Buffer.from(JSON.stringify(j)),
          protobuf: T.encode(T.fromObject(j)).finish(),
          avro: A.toBuffer(toAvroPlain(fromProto3Json(j))),
        };
        for (const format of RECORD_FORMATS) {
          const e = codecError(() => decodeFlowRecord(wire[format], format));
          expect(e.message, `${what} / ${format}`).to.match(re);
          expect(e.message).to.match(new RegExp(`format=${format}`));
        }
      }
      const w = pairWindow();
      const pj = pairWindowToProto3Json({ ...w, schemaVersion: 9 });
      expect(codecError(() => decodePairWindow(Buffer.from(JSON.stringify(pj)), 'json')).message).to.match(/malformed PairWindow.*unsupported schema version 9/);
    });

    it('never throws anything but a CodecError on random bytes or bit flips (fuzz)', () => {
      const rand = rng(42);
      const samples: Record<RecordFormat, Buffer> = {
        json: encodeFlowRecord(tcpRecord(), 'json'),
        protobuf: encodeFlowRecord(tcpRecord(), 'protobuf'),
        avro: encodeFlowRecord(tcpRecord(), 'avro'),
      };
      let decoded = 0;
      let rejected = 0;
      for (const format of RECORD_FORMATS) {
        for (let i = 0; i < 1500; i++) {
          let buf: Buffer;
          if (i % 2 === 0) {
            buf = Buffer.from(samples[format]);
            const flips = 1 + Math.floor(rand() * 4);
            for (let k = 0; k < flips; k++) buf[Math.floor(rand() * buf.length)] ^= 1 << Math.floor(rand() * 8);
          } else {
            buf = Buffer.alloc(Math.floor(rand() * 64));
            for (let k = 0; k < buf.length; k++) buf[k] = Math.floor(rand() * 256);
          }
          for (const kind of ['flow-record', 'pair-window'] as RecordKind[]) {
            try {
              decodeRecord(kind, buf, format);
              decoded++;
            } catch (err) {
              if (!(err instanceof CodecError) || err.code !== 'codec-decode') throw new Error(`${format}/${kind}: ${String(err)} for ${buf.toString('hex')}`);
              rejected++;
            }
          }
        }
      }
      expect(rejected).to.be.above(decoded);
    });

    it('refuses to encode records that do not fit the schema (codec-encode)', () => {
      const r = tcpRecord();
      expect(codecError(() => encodeFlowRecord({ ...r, key: { ...r.key, clientPort: -1 } }, 'protobuf'), 'codec-encode').message).to.match(/field=key.clientPort/);
      expect(codecError(() => encodeFlowRecord({ ...r, exportReason: 'bogus' as never }, 'avro'), 'codec-encode').message).to.match(/unknown enum value/);
      expect(codecError(() => encodeFlowRecord({ ...r, startUs: 2 ** 60 }, 'json'), 'codec-encode').message).to.match(/field=startUs/);
      expect(codecError(() => encodeFlowRecord({ ...r, schemaVersion: 3 }, 'protobuf'), 'codec-encode').message).to.match(/unsupported schema version/);
      expect(codecError(() => encodeFlowRecord({ ...r, id: '' }, 'avro'), 'codec-encode').message).to.match(/^codec: cannot encode FlowRecord \(format=avro/);
    });
  });

  describe('stream framing', () => {
    const records = flowRecords(300);

    for (const format of RECORD_FORMATS) {
      it(`writes and reads back 300 FlowRecords as ${format}`, async () => {
        const path = join(dir, `flows.${format}`);
        const w = createRecordWriter(createWriteStream(path), 'flow-record', format);
        for (const r of records) await w.write(r);
        await w.close();
        expect(w.count).to.equal(300);
        const { values, error } = await collect(readRecords(path, 'flow-record', format));
        expect(error).to.equal(undefined);
        expect(values).to.deep.equal(records);
        // read in 7-byte chunks too (every framing across chunk boundaries)
        const small = await collect(readRecordStream(chunked(readFileSync(path), 7), 'flow-record', format));
        expect(small.error).to.equal(undefined);
        expect(small.values).to.deep.equal(records);
      });

      it(`reads a small ${format} file split at every byte offset`, async () => {
        const path = join(dir, `three.${format}`);
        const three = [tcpRecord(1), icmpRecord(2), otherRecord(3)];
        const w = createRecordWriter(createWriteStream(path), 'flow-record', format);
        for (const r of three) await w.write(r);
        await w.close();
        const bytes = readFileSync(path);
        for (let k = 0; k <= bytes.length; k++) {
          const { values, error } = await collect(readRecordStream(splitAt(bytes, k), 'flow-record', format));
          expect(error, `split at ${k}`).to.equal(undefined);
          expect(values.length, `split at ${k}`).to.equal(3);
          if (k % 97 === 0) expect(values).to.deep.equal(three);
        }
      });

      it(`writes and reads PairWindows as ${format}`, async () => {
        const path = join(dir, `pairs.${format}`);
        const windows = Array.from({ length: 50 }, (_, i) => pairWindow(i + 1));
        const w = createRecordWriter(createWriteStream(path), 'pair-window', format);
        for (const x of windows) await w.write(x);
        await w.close();
        expect((await collect(readRecords(path, 'pair-window', format))).values).to.deep.equal(windows);
      });
    }

    it('JSON lines are canonical proto3 JSON, one per line', async () => {
      const path = join(dir, 'lines.json');
      const w = createRecordWriter(createWriteStream(path), 'flow-record', 'json');
      for (const r of records.slice(0, 3)) await w.write(r);
      await w.close();
      const lines = readFileSync(path, 'utf8').split('\n');
      expect(lines).to.have.length(4);
      expect(lines[3]).to.equal('');
      expect(lines.slice(0, 3).map((l) => JSON.parse(l))).to.deep.equal(records.slice(0, 3).map((r) => toProto3Json(r)));
    });

    it('length-delimited protobuf reads with protobufjs decodeDelimited', async () => {
      const path = join(dir, 'delimited.pb');
      const w = createRecordWriter(createWriteStream(path), 'flow-record', 'protobuf');
      for (const r of records.slice(0, 20)) await w.write(r);
      await w.close();
      const T = protoType('flow-record');
      const reader = protobuf.Reader.create(readFileSync(path));
      const got: unknown[] = [];
      while (reader.pos < reader.len) got.push(T.toObject(T.decodeDelimited(reader), TO_JSON));
      expect(got).to.deep.equal(records.slice(0, 20).map((r) => toProto3Json(r)));
    });

    it('Avro container files (null and deflate) read with avsc createFileDecoder and carry mirrorflow metadata', async () => {
      for (const codec of ['null', 'deflate'] as const) {
        const path = join(dir, `flows-${codec}.avro`);
        const w = createRecordWriter(createWriteStream(path), 'flow-record', 'avro', { avroCodec: codec, avroBlockBytes: 4096 });
        for (const r of records) await w.write(r);
        await w.close();
        const values: Record<string, unknown>[] = [];
        let meta: Record<string, Buffer> = {};
        await new Promise<void>((resolve, reject) => {
          avro
            .createFileDecoder(path)
            .on('metadata', (_t: unknown, c: string, header: { meta: Record<string, Buffer> }) => {
              expect(c).to.equal(codec);
              meta = header.meta;
            })
            .on('data', (v: Record<string, unknown>) => values.push(v))
            .on('error', reject)
            .on('end', resolve);
        });
        expect(values).to.have.length(300);
        expect(values[0]!.id).to.equal(records[0]!.id);
        expect(meta['mirrorflow.schema']!.toString()).to.equal('mirrorflow.v1.FlowRecord');
        expect(meta['mirrorflow.schema-version']!.toString()).to.equal('2');
        expect((await collect(readRecords(path, 'flow-record', 'avro'))).values).to.deep.equal(records);
      }
    });

    it('an empty writer makes files that read as zero records', async () => {
      for (const format of RECORD_FORMATS) {
        const path = join(dir, `empty.${format}`);
        await createRecordWriter(createWriteStream(path), 'flow-record', format).close();
        const { values, error } = await collect(readRecords(path, 'flow-record', format));
        expect(error, format).to.equal(undefined);
        expect(values).to.deep.equal([]);
      }
    });

    it('leaves the stream open with end: false and honours backpressure', async () => {
      const out = new PassThrough({ highWaterMark: 64 });
      const chunks: Buffer[] = [];
      const w = createRecordWriter(out, 'flow-record', 'protobuf', { end: false });
      const writing = (async () => {
        for (const r of records.slice(0, 50)) await w.write(r);
        await w.close();
      })();
      // nobody reads yet: the writer must be waiting for 'drain'
      await new Promise((r) => setImmediate(r));
      expect(w.count).to.be.below(50);
      out.on('data', (c: Buffer) => chunks.push(c));
      await writing;
      expect(out.writableEnded).to.equal(false);
      out.end();
      const { values } = await collect(readRecordStream(chunked(Buffer.concat(chunks), 1000), 'flow-record', 'protobuf'));
      expect(values).to.deep.equal(records.slice(0, 50));
    });

    it('rejects writes after close and reports encode errors without breaking the stream', async () => {
      const path = join(dir, 'errors.json');
      const w = createRecordWriter(createWriteStream(path), 'flow-record', 'json');
      await w.write(records[0]!);
      let err: unknown;
      await w.write({ ...records[1]!, id: '' }).catch((e: unknown) => (err = e));
      expect(err).to.be.instanceOf(CodecError);
      await w.write(records[2]!);
      await w.close();
      expect((await collect(readRecords(path, 'flow-record', 'json'))).values).to.deep.equal([records[0], records[2]]);
      err = undefined;
      await w.write(records[0]!).catch((e: unknown) => (err = e));
      expect(String(err)).to.match(/already closed/);
    });

    it('a damaged stream yields every record before the damage, then a codec-decode error naming the position', async () => {
      const ten = records.slice(0, 10);
      const write = async (name: string, format: RecordFormat, kind: RecordKind = 'flow-record', rs: (FlowRecord | PairWindow)[] = ten): Promise<Buffer> => {
        const path = join(dir, name);
        const w = createRecordWriter(createWriteStream(path), kind, format);
        for (const r of rs) await w.write(r as never);
        await w.close();
        return readFileSync(path);
      };
      // protobuf: truncated last message
      const pb = await write('damaged.pb', 'protobuf');
      let res = await collect(readRecordStream(chunked(pb.subarray(0, pb.length - 5), 100), 'flow-record', 'protobuf'));
      expect(res.values).to.deep.equal(ten.slice(0, 9));
      expect(res.error).to.be.instanceOf(CodecError);
      expect(String(res.error)).to.match(/malformed FlowRecord \(format=protobuf, message=9, offset=\d+, problem="truncated message at end of input/);
      // protobuf: a huge length prefix
      res = await collect(readRecordStream(chunked(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]), 3), 'flow-record', 'protobuf'));
      expect(String(res.error)).to.match(/exceeds/);
      // JSON: line 3 is broken
      const lines = (await write('damaged.json', 'json')).toString('utf8').split('\n');
      lines[2] = lines[2]!.slice(0, 40);
      const jpath = join(dir, 'damaged2.json');
      writeFileSync(jpath, lines.join('\n'));
      res = await collect(readRecords(jpath, 'flow-record', 'json'));
      expect(res.values).to.deep.equal(ten.slice(0, 2));
      expect((res.error as CodecError).details).to.include({ file: jpath, line: 3, format: 'json' });
      // Avro: bad magic, truncated last block, a file of another record type
      res = await collect(readRecordStream(chunked(Buffer.from('garbage, not an avro file'), 4), 'flow-record', 'avro'));
      expect(String(res.error)).to.match(/format=avro.*bad magic/);
      const av = await write('damaged.avro', 'avro');
      res = await collect(readRecordStream(chunked(av.subarray(0, av.length - 3), 512), 'flow-record', 'avro'));
      expect(res.values).to.deep.equal([]); // one block holds all ten
      expect(String(res.error)).to.match(/truncated block at end of input/);
      const pw = await write('pairs-as-flows.avro', 'avro', 'pair-window', [pairWindow()]);
      res = await collect(readRecordStream(chunked(pw, 512), 'flow-record', 'avro'));
      expect(String(res.error)).to.match(/file holds mirrorflow.v1.PairWindow records, not mirrorflow.v1.FlowRecord/);
      // Avro: a corrupt datum inside a block
      const corrupt = Buffer.from(av);
      const sync = av.subarray(av.length - 16);
      const blockStart = av.indexOf(sync) + 16; // the header ends with the sync marker
      expect(blockStart).to.be.below(av.length - 16);
      // block: count (10 → 0x14), size (2-byte varint), then the first datum: its id length becomes a runaway varint
      expect(corrupt[blockStart]).to.equal(0x14);
      corrupt.fill(0xff, blockStart + 3, blockStart + 12);
      res = await collect(readRecordStream(chunked(corrupt, 512), 'flow-record', 'avro'));
      expect(res.values).to.deep.equal([]);
      expect(String(res.error)).to.match(/malformed FlowRecord \(format=avro, record=0, problem="bad datum 0 of block 0 \(offset=\d+\)/);
      // empty input
      res = await collect(readRecordStream(chunked(Buffer.alloc(0), 1), 'flow-record', 'avro'));
      expect(String(res.error)).to.match(/empty input/);
    });
  });
});

/** The avsc value of a record, built without the codec (for crafting invalid Avro). */
function toAvroPlain(r: FlowRecord): unknown {
  const j = toProto3Json(r) as Record<string, unknown>;
  const t = avroType('flow-record');
  // fill every field the JSON omitted with the Avro defaults; ints back to numbers
  const fix = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(fix) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fix(x)])) : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
  const value = fix(j) as Record<string, unknown>;
  const defaults = (type: avro.Type, val: Record<string, unknown>): Record<string, unknown> => {
    const fields = (type as unknown as { fields: { name: string; type: avro.Type; defaultValue(): unknown }[] }).fields;
    const out: Record<string, unknown> = {};
    for (const f of fields) {
      let v = val[f.name];
      if (v === undefined) v = f.defaultValue();
      const ft = f.type as unknown as { typeName: string; types?: avro.Type[] };
      const rec = ft.typeName === 'record' ? f.type : ft.types?.find((x) => (x as unknown as { typeName: string }).typeName === 'record');
      if (rec && v && typeof v === 'object' && !Array.isArray(v)) v = defaults(rec, v as Record<string, unknown>);
      out[f.name] = v;
    }
    return out;
  };
  return defaults(t, value);
}

async function* chunked(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function* splitAt(buf: Buffer, k: number): AsyncGenerator<Buffer> {
  yield buf.subarray(0, k);
  yield buf.subarray(k);
}

describe('pipeline/codec protobuf writer', () => {
  it('writes the same bytes as protobufjs Type.encode of the checked object', async () => {
    const fx = await import('./codec.fixture.js');
    const { protobufObject, encodeRecord } = await import('../../../src/pipeline/codec.js');
    const { protoType } = await import('../../../src/pipeline/codec-schemas.js');
    const samples: [('flow-record' | 'pair-window'), unknown][] = [
      ['flow-record', fx.tcpRecord()],
      ['flow-record', fx.icmpRecord()],
      ['flow-record', fx.otherRecord()],
      ['pair-window', fx.pairWindow()],
      ...fx.flowRecords(200).map((r) => ['flow-record', r] as ['flow-record', unknown]),
    ];
    for (const [kind, v] of samples) {
      const viaObject = Buffer.from(protoType(kind).encode(protobufObject(kind, v as never)).finish());
      expect(encodeRecord(kind, v as never, 'protobuf').equals(viaObject), `${kind} ${(v as { id: string }).id}`).to.equal(true);
    }
  });
});
