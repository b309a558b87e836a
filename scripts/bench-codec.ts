/**
 * Micro-benchmark of the record codecs: FlowRecords encoded / decoded per second, per format, on
 * one core. Not a test. Run: npx tsx scripts/bench-codec.ts [records=100000]
 *
 * Peers (same run): the wire libraries alone on values prepared in advance (protobufjs
 * Type.encode of a ready plain object, avsc Type.toBuffer of a ready value, JSON.stringify of a
 * ready proto3 JSON object); the ratio says what our conversion and checks add.
 */
import { toProto3Json, type FlowRecord } from '../src/capture/flow-record.js';
import { RECORD_FORMATS, decodeFlowRecord, encodeFlowRecord, type RecordFormat } from '../src/pipeline/codec.js';
import { avroValue, protobufObject } from '../src/pipeline/codec.js';
import { avroType, protoType } from '../src/pipeline/codec-schemas.js';
import { flowRecords } from '../test/unit/pipeline/codec.fixture.js';

const total = Number(process.argv[2] ?? 100_000);
const batch = flowRecords(3000); // a TCP / ICMPv6 / non-IP mix
const rounds = Math.max(1, Math.round(total / batch.length));

function time(fn: (r: FlowRecord, i: number) => unknown): { perSec: number; sink: number } {
  let sink = 0;
  // warm-up
  for (let i = 0; i < batch.length; i++) {
    const out = fn(batch[i]!, i);
    if (out === undefined) sink++;
  }
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < batch.length; i++) {
      const out = fn(batch[i]!, i);
      if (out === undefined) sink++;
    }
  }
  const ns = Number(process.hrtime.bigint() - t0);
  return { perSec: (rounds * batch.length) / (ns / 1e9), sink };
}

const fmt = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(0)} k`);

const pbT = protoType('flow-record');
const avT = avroType('flow-record');
const peers: Record<RecordFormat, (i: number) => unknown> = (() => {
  const json = batch.map((r) => toProto3Json(r));
  const pb = batch.map((r) => protobufObject('flow-record', r));
  const av = batch.map((r) => avroValue('flow-record', r));
  return {
    json: (i) => JSON.stringify(json[i]),
    protobuf: (i) => pbT.encode(pb[i]!).finish(),
    avro: (i) => avT.toBuffer(av[i]),
  };
})();

console.log(`FlowRecord codecs, ${rounds * batch.length} records per measurement (node ${process.version})`);
console.log('format    bytes/rec  encode/s   peer encode/s  ratio   decode/s');
for (const format of RECORD_FORMATS) {
  const encoded = batch.map((r) => encodeFlowRecord(r, format));
  const bytes = encoded.reduce((a, b) => a + b.length, 0) / encoded.length;
  const enc = time((r) => encodeFlowRecord(r, format));
  const peer = time((_, i) => peers[format](i));
  const dec = time((_, i) => decodeFlowRecord(encoded[i]!, format));
  console.log(
    `${format.padEnd(9)} ${bytes.toFixed(0).padStart(9)}  ${fmt(enc.perSec).padStart(8)}   ${fmt(peer.perSec).padStart(12)}  ${(peer.perSec / enc.perSec).toFixed(2).padStart(5)}x  ${fmt(dec.perSec).padStart(8)}`,
  );
  if (enc.sink + peer.sink + dec.sink === -1) console.log('');
}
console.log('ratio = peer rate / our rate: how much slower the full codec (checks + conversion) is than the bare library call.');
