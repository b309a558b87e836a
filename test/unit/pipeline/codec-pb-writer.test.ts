// The growable protobuf writer: varints and length-delimited parts (one reserved length byte, or
// two for whole records) give protobufjs' bytes at every length boundary.
import { expect } from 'chai';
import protobuf from 'protobufjs';
import { PbBufferWriter, putLength, putNegative64, putVarint32, putVarint64 } from '../../../src/pipeline/codec-pb-writer.js';

const LENGTHS = [0, 1, 127, 128, 129, 16383, 16384, 16385, 2_097_151, 2_097_152];

/** protobufjs' bytes of `body` as a length-delimited part after one tag byte. */
function reference(body: Buffer): Buffer {
  const w = protobuf.Writer.create();
  w.uint32(0x0a);
  w.bytes(body);
  return Buffer.from(w.finish());
}

describe('pipeline/codec-pb-writer', () => {
  it('begin/end and beginWide/endWide write the length of parts of any size, moving the body as needed', () => {
    for (const n of LENGTHS) {
      const body = Buffer.alloc(n);
      for (let i = 0; i < n; i++) body[i] = (i * 7 + n) & 255;
      for (const wide of [false, true]) {
        const w = new PbBufferWriter(16); // small: grows while writing
        w.uint32(0x0a);
        const mark = wide ? w.beginWide() : w.begin();
        w.bytes(body);
        if (wide) w.endWide(mark);
        else w.end(mark);
        w.uint32(0x7f); // what follows the part is not overwritten
        expect(Buffer.from(w.view()).equals(Buffer.concat([reference(body), Buffer.from([0x7f])])), `${n} bytes, wide ${wide}`).to.equal(true);
      }
    }
  });

  it('the varint stores write protobufjs\' bytes and return the position after them', () => {
    const values = [0, 1, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 35 + 7, 2 ** 53 - 1];
    for (const v of values) {
      const b = Buffer.alloc(16, 0xee);
      const ref = Buffer.from(protobuf.Writer.create().uint64(v).finish());
      const end = v < 2 ** 32 ? putVarint32(b, 3, v) : putVarint64(b, 3, v);
      expect(end - 3, `${v}`).to.equal(ref.length);
      expect(b.subarray(3, end).equals(ref), `${v}`).to.equal(true);
      expect(putVarint64(Buffer.alloc(16), 0, v), `${v}`).to.equal(ref.length);
    }
    for (const v of [-1, -128, -(2 ** 32), -(2 ** 53 - 1)]) {
      const b = Buffer.alloc(16);
      const ref = Buffer.from(protobuf.Writer.create().int64(v).finish());
      expect(putNegative64(b, 0, v), `${v}`).to.equal(10);
      expect(b.subarray(0, 10).equals(ref), `${v}`).to.equal(true);
    }
  });

  it('putLength closes a part in place: same, fewer or more length bytes than reserved', () => {
    for (const reserved of [1, 2]) {
      for (const n of [0, 5, 127, 128, 300, 16383, 16384]) {
        const b = Buffer.alloc(n + 16, 0xee);
        for (let i = 0; i < n; i++) b[reserved + i] = i & 255;
        const end = putLength(b, 0, reserved, reserved + n);
        const ref = Buffer.from(protobuf.Writer.create().bytes(Buffer.from(Array.from({ length: n }, (_, i) => i & 255))).finish());
        expect(end, `${reserved}/${n}`).to.equal(ref.length);
        expect(b.subarray(0, end).equals(ref), `${reserved}/${n}`).to.equal(true);
      }
    }
  });
});
