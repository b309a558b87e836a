import { expect } from 'chai';
import { CaptureFileError } from '../../../src/capture/file-error.js';
import { openCaptureFile } from '../../../src/capture/open-file.js';
import { PcapngFileSource } from '../../../src/capture/pcapng-file.js';
import { writePcapng, type PcapngSection } from '../../helpers/pcap-writer.js';
import { numberedFrame, readAll, tempDir } from './readers.fixture.js';

describe('capture/pcapng-file', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  const fr = (n: number) => numberedFrame(n);

  const sections: PcapngSection[] = [
    {
      // little-endian: µs (default), ns, 2^-20 s with a +100 s offset
      interfaces: [{}, { tsresol: 9 }, { tsresol: 0x80 | 20, tsoffset: 100 }],
      extraBlocks: true,
      packets: [
        { data: fr(0), ifId: 0, tsSec: 1_700_000_000, tsNsec: 123_456_000 },
        { data: fr(1), ifId: 1, tsSec: 1_700_000_001, tsNsec: 987_654_321 },
        { data: fr(2), ifId: 2, tsSec: 1_700_000_002, tsNsec: 500_000_000 },
        { data: fr(3), ifId: 1, tsSec: 4_000_000_000, tsNsec: 999_999_999, block: 'opb' },
        { data: fr(4), ifId: 0, caplen: 30 },
      ],
    },
    {
      // big-endian section: ms resolution, raw IP link type, an SPB
      bigEndian: true,
      interfaces: [{ tsresol: 3, linkType: 101, snaplen: 1000 }],
      packets: [
        { data: fr(5).subarray(14), tsSec: 1_700_000_005, tsNsec: 250_000_000 },
        { data: fr(6).subarray(14), block: 'spb' },
      ],
    },
    { interfaces: [{ tsresol: 10 /* 0.1 ns: more units per second than 2^32 */ }], packets: [{ data: fr(7), tsSec: 1_700_000_007, tsNsec: 1 }] },
  ];

  it('reads several sections (switching byte order), interfaces, resolutions and block types', async () => {
    const file = tmp.write('multi.pcapng', writePcapng(sections));
    for (const chunkBytes of [1, 5, 13, 1 << 20]) {
      const src = await PcapngFileSource.open(file, { chunkBytes, batchFrames: 3 });
      const r = await readAll(src);
      expect(r.error, `chunk ${chunkBytes}`).to.equal(undefined);
      const got = r.frames.map((f) => [f.ifIndex, f.linkType, f.tsSec, f.tsNsec, f.bytes.length, f.len]);
      expect(got, `chunk ${chunkBytes}`).to.deep.equal([
        [0, 1, 1_700_000_000, 123_456_000, fr(0).length, fr(0).length],
        [1, 1, 1_700_000_001, 987_654_321, fr(1).length, fr(1).length],
        [2, 1, 1_700_000_002, 500_000_000, fr(2).length, fr(2).length],
        [1, 1, 4_000_000_000, 999_999_999, fr(3).length, fr(3).length],
        [0, 1, 1_700_000_004, 0, 30, fr(4).length],
        [3, 101, 1_700_000_005, 250_000_000, fr(5).length - 14, fr(5).length - 14],
        [3, 101, 0, 0, fr(6).length - 14, fr(6).length - 14],
        [4, 1, 1_700_000_007, 1, fr(7).length, fr(7).length],
      ]);
      expect(Buffer.compare(r.frames[1]!.bytes, Buffer.from(fr(1)))).to.equal(0);
      expect(Buffer.compare(r.frames[5]!.bytes, Buffer.from(fr(5).subarray(14)))).to.equal(0);
      expect(src.interfaceCount()).to.equal(5);
    }
  });

  it('hands out the good frames, then rejects naming the offset of a bad block, every time', async () => {
    const good = writePcapng([{ interfaces: [{}], packets: [{ data: fr(1) }, { data: fr(2) }] }]);
    const badBlock = Buffer.from('06000000' + '0d000000' /* length 13: not a multiple of 4 */ + '00'.repeat(16), 'hex');
    const file = tmp.write('bad.pcapng', Buffer.concat([good, badBlock]));
    const src = await openCaptureFile(file, { chunkBytes: 7 });
    let frames = 0;
    let e: Error | undefined;
    for (;;) {
      const b = await src.next().catch((x: Error) => {
        e = x;
        return null;
      });
      if (!b) break;
      frames += b.count;
    }
    expect(frames).to.equal(2);
    expect(e).to.be.instanceOf(CaptureFileError);
    expect(e!.message).to.equal(`capture: damaged pcapng file (file=${file}, offset=${good.length}, problem=block length 13 invalid)`);
    const again = await src.next().then(() => undefined, (x: Error) => x);
    expect(again).to.equal(e);
    await src.close();
  });

  it('rejects a mismatched trailer, an unknown interface, an oversized packet and a truncated block', async () => {
    const good = writePcapng([{ interfaces: [{}], packets: [{ data: fr(1) }] }]);
    const mk = (bad: Buffer) => tmp.write(`b${bad.length}-${bad[0]}-${bad[12] ?? 0}.pcapng`, Buffer.concat([good, bad]));
    const cases: [Buffer, RegExp][] = [
      [Buffer.from('06000000' + '20000000' + '00'.repeat(20) + '1c000000', 'hex'), /block trailer length 28 differs from 32/],
      [Buffer.from('06000000' + '20000000' + '05000000' + '00'.repeat(16) + '20000000', 'hex'), /packet on unknown interface 5/],
      [Buffer.from('06000000' + '20000000' + '00000000' + '00'.repeat(8) + 'ffff0000' + '00000000' + '20000000', 'hex'), /captured length 65535 exceeds the block/],
      [Buffer.from('06000000' + 'fcffff00', 'hex'), /block length 16777212 exceeds 266240/],
      [Buffer.from('06000000' + '40000000' + '00'.repeat(20), 'hex'), /truncated record/],
    ];
    for (const [bad, re] of cases) {
      const r = await readAll(await openCaptureFile(mk(bad), { chunkBytes: 9 }));
      expect(r.frames, String(re)).to.have.length(1);
      expect(r.error!.message, `${String(re)}: ${r.error!.message}`).to.match(re);
      expect((r.error as CaptureFileError).offset).to.equal(good.length);
    }
  });

  it('sniffs pcapng in openCaptureFile', async () => {
    const src = await openCaptureFile(tmp.write('s.pcapng', writePcapng([{ interfaces: [{}], packets: [] }])));
    expect(src).to.be.instanceOf(PcapngFileSource);
    expect(await src.next()).to.equal(null);
    await src.close();
  });
});
