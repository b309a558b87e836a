import { expect } from 'chai';
import { CaptureFileError } from '../../../src/capture/file-error.js';
import { openCaptureFile } from '../../../src/capture/open-file.js';
import { PcapFileSource } from '../../../src/capture/pcap-file.js';
import { writePcap } from '../../helpers/pcap-writer.js';
import { numberedFrame, readAll, tempDir } from './readers.fixture.js';

describe('capture/pcap-file', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  const frames = Array.from({ length: 40 }, (_, i) => numberedFrame(i));

  for (const bigEndian of [false, true]) {
    for (const nanos of [false, true]) {
      it(`reads ${bigEndian ? 'big' : 'little'}-endian ${nanos ? 'ns' : 'µs'} files, records straddling tiny chunks`, async () => {
        const file = tmp.write(`t-${bigEndian}-${nanos}.pcap`, writePcap(frames.map((data, i) => ({ data, tsSec: 1_700_000_000 + i, tsNsec: 123_456_789 })), { bigEndian, nanos }));
        for (const chunkBytes of [1, 3, 7, 64, 1 << 20]) {
          const src = await PcapFileSource.open(file, { chunkBytes, batchFrames: 16 });
          const r = await readAll(src);
          expect(r.error).to.equal(undefined);
          expect(r.frames).to.have.length(40);
          r.frames.forEach((f, i) => {
            expect(Buffer.compare(f.bytes, Buffer.from(frames[i]!)), `frame ${i} chunk ${chunkBytes}`).to.equal(0);
            expect([f.tsSec, f.tsNsec, f.len, f.ifIndex, f.linkType]).to.deep.equal([1_700_000_000 + i, nanos ? 123_456_789 : 123_456_000, frames[i]!.length, 0, 1]);
          });
          expect(r.batches).to.be.at.least(3); // 40 frames, 16 per batch
          expect(src.stats().frames).to.equal(40);
        }
      });
    }
  }

  it('keeps the original length of a frame cut by snaplen', async () => {
    const file = tmp.write('snap.pcap', writePcap([{ data: frames[5]!, caplen: 20 }], { snaplen: 20 }));
    const r = await readAll(await openCaptureFile(file));
    expect(r.frames.map((f) => [f.bytes.length, f.len])).to.deep.equal([[20, frames[5]!.length]]);
  });

  it('hands out the good frames, then rejects naming the offset of an absurd record length', async () => {
    const good = writePcap(frames.slice(0, 3).map((data) => ({ data })));
    const bad = Buffer.concat([good, Buffer.from('00000000' + '00000000' + 'ffffffff' + 'ffffffff', 'hex'), Buffer.alloc(64)]);
    const file = tmp.write('bad.pcap', bad);
    for (const chunkBytes of [5, 1 << 20]) {
      const r = await readAll(await PcapFileSource.open(file, { chunkBytes }));
      expect(r.frames).to.have.length(3);
      expect(r.error).to.be.instanceOf(CaptureFileError);
      expect(r.error!.message).to.equal(`capture: damaged pcap file (file=${file}, offset=${good.length}, problem=record length 4294967295 exceeds 262144)`);
      expect((r.error as CaptureFileError).offset).to.equal(good.length);
    }
  });

  it('reports a truncated last record as damaged at its offset, and keeps rejecting', async () => {
    const whole = writePcap(frames.slice(0, 4).map((data) => ({ data })));
    const cutAt = whole.length - 5;
    const file = tmp.write('trunc.pcap', whole.subarray(0, cutAt));
    const src = await PcapFileSource.open(file, { chunkBytes: 11 });
    const r = await readAll(src);
    expect(r.frames).to.have.length(3);
    const lastRecord = writePcap(frames.slice(0, 3).map((data) => ({ data }))).length;
    expect((r.error as CaptureFileError).offset).to.equal(lastRecord);
    expect(r.error!.message).to.match(/truncated record/);
    // a record header cut short is truncated too
    const file2 = tmp.write('trunc2.pcap', whole.subarray(0, lastRecord + 9));
    const r2 = await readAll(await PcapFileSource.open(file2));
    expect([r2.frames.length, (r2.error as CaptureFileError).offset]).to.deep.equal([3, lastRecord]);
  });

  it('rejects a bad magic and a short header at offset 0, and a missing file', async () => {
    const junk = tmp.write('junk.pcap', Buffer.from('hello world, this is not a capture file'));
    const e1 = await PcapFileSource.open(junk).then(() => undefined, (e: Error) => e);
    expect(e1).to.be.instanceOf(CaptureFileError);
    expect(e1!.message).to.match(/offset=0, problem=bad magic 0x68656c6c/);
    const short = tmp.write('short.pcap', writePcap([]).subarray(0, 10));
    const e2 = await PcapFileSource.open(short).then(() => undefined, (e: Error) => e);
    expect(e2!.message).to.match(/file header truncated/);
    const e3 = await openCaptureFile(tmp.path('nope.pcap')).then(() => undefined, (e: Error) => e);
    expect((e3 as CaptureFileError).code).to.equal('capture-file-open');
    const e4 = await openCaptureFile(junk).then(() => undefined, (e: Error) => e);
    expect((e4 as CaptureFileError).code).to.equal('capture-file-format');
  });

  it('reads an empty capture (header only) as no batches', async () => {
    const r = await readAll(await openCaptureFile(tmp.write('empty.pcap', writePcap([]))));
    expect([r.frames.length, r.batches, r.error]).to.deep.equal([0, 0, undefined]);
  });

  it('reads the link type from the header', async () => {
    const src = await openCaptureFile(tmp.write('raw.pcap', writePcap([{ data: frames[0]!.subarray(14) }], { linkType: 101 })));
    expect(src.linkType(0)).to.equal(101);
    await src.close();
  });
});
