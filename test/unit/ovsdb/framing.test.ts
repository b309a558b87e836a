import { expect } from 'chai';
import { JsonFramer } from '../../../src/ovsdb/framing.js';
import { OvsdbFramingError } from '../../../src/ovsdb/errors.js';

/*
 * A recorded session as ovsdb-server writes it: values back to back, no delimiter, sometimes a
 * newline. Strings hold brackets, escaped quotes and backslashes, \u escapes and multi-byte UTF-8.
 */
const recorded: string[] = [
  // reply to get_schema (fragment)
  '{"id":1,"result":{"name":"Open_vSwitch","version":"8.3.1","cksum":"3682332033 32053","tables":{"Bridge":{"columns":{"name":{"type":"string","mutable":false},"ports":{"type":{"key":{"type":"uuid","refTable":"Port"},"min":0,"max":"unlimited"}}},"isRoot":true,"indexes":[["name"]]}}},"error":null}',
  // server echo request
  '{"id":"echo","method":"echo","params":[]}',
  // update2 notification: strings with braces, quotes, backslashes, non-ASCII
  '{"id":null,"method":"update2","params":["mon-1",{"Interface":{"5e8f9ab0-1111-4d5e-9e3a-0123456789ab":{"insert":{"name":"tap{0}]","external_ids":["map",[["vm-name","caf\u00e9 \\"quoted\\" \\\\ back"],["note","日本語 {[ 😀 ]}"],["esc","\\u00e9\\u65e5 \\n"]]]}}}}]}',
  // update3 with a delete and a modify
  '{"id":null,"method":"update3","params":["mon-2","7f1c5a9e-0000-4000-8000-000000000001",{"Port":{"0a0b0c0d-2222-4e5f-8a9b-abcdefabcdef":{"delete":null},"1a1b1c1d-3333-4e5f-8a9b-abcdefabcdef":{"modify":{"tag":["set",[]],"other_config":["map",[["k}","v\\"]"]]]}}}}]}',
  // a top-level array (a transact reply result is an array, some peers send bare arrays)
  '[{"rows":[{"name":"é"}]},{"count":1}]',
];
// Back to back, with varied whitespace between some of them (and leading/trailing).
const sessionText = `  ${recorded[0]}${recorded[1]}\n${recorded[2]}\r\n\t${recorded[3]}${recorded[4]} \n`;
const session = Buffer.from(sessionText, 'utf8');
const expected = recorded.map((r) => JSON.parse(r));

function feed(chunks: Buffer[], framer = new JsonFramer()): unknown[] {
  const out: unknown[] = [];
  for (const c of chunks) out.push(...framer.push(c));
  expect(framer.pendingBytes).to.equal(0);
  return out;
}

describe('ovsdb/framing JsonFramer', () => {
  it('the fixture really holds multi-byte UTF-8 and tricky strings', () => {
    expect(session.length).to.be.greaterThan(sessionText.length); // multi-byte characters present
    expect(sessionText).to.include('😀').and.include('日本').and.include('\\"').and.include('\\\\');
  });

  it('parses the whole session in one chunk', () => {
    expect(feed([session])).to.deep.equal(expected);
  });

  it('parses the session split at every byte offset', () => {
    for (let cut = 0; cut <= session.length; cut++) {
      const got = feed([session.subarray(0, cut), session.subarray(cut)]);
      expect(got, `cut at ${cut}`).to.deep.equal(expected);
    }
  });

  it('parses the session split into three pieces at many offset pairs', () => {
    for (let a = 0; a <= session.length; a += 7) {
      for (let b = a; b <= session.length; b += 13) {
        const got = feed([session.subarray(0, a), session.subarray(a, b), session.subarray(b)]);
        expect(got, `cuts at ${a},${b}`).to.deep.equal(expected);
      }
    }
  });

  it('parses the session fed one byte at a time', () => {
    const chunks: Buffer[] = [];
    for (let i = 0; i < session.length; i++) chunks.push(session.subarray(i, i + 1));
    expect(feed(chunks)).to.deep.equal(expected);
  });

  it('decodes non-ASCII strings correctly when split inside a character', () => {
    const msg = Buffer.from('{"s":"😀日"}', 'utf8');
    // 😀 is 4 bytes starting at offset 6: split at each byte inside it
    for (let cut = 7; cut <= 9; cut++) {
      expect(feed([msg.subarray(0, cut), msg.subarray(cut)])).to.deep.equal([{ s: '😀日' }]);
    }
  });

  it('copies the partial bytes it keeps (the caller may reuse its buffer)', () => {
    const framer = new JsonFramer();
    const scratch = Buffer.from('{"a":"xy', 'utf8');
    expect(framer.push(scratch)).to.deep.equal([]);
    scratch.fill(0x20);
    expect(framer.push(Buffer.from('z"}'))).to.deep.equal([{ a: 'xyz' }]);
  });

  it('rejects a message larger than maxMessageBytes with a typed error, across chunks', () => {
    const framer = new JsonFramer({ maxMessageBytes: 32 });
    expect(framer.push(Buffer.from('{"a":"0123456789"}'))).to.have.length(1); // 18 bytes: fine
    framer.push(Buffer.from('{"b":"0123456789'));
    let err: unknown;
    try {
      framer.push(Buffer.from('0123456789abcdefXYZ'));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(OvsdbFramingError);
    expect((err as OvsdbFramingError).reason).to.equal('oversize');
    expect((err as OvsdbFramingError).code).to.equal('ovsdb-framing');
    expect((err as Error).message).to.match(/^ovsdb: message too large \(.*maxMessageBytes=32/);
    // stays failed
    expect(() => framer.push(Buffer.from('{}'))).to.throw(OvsdbFramingError);
    framer.reset();
    expect(framer.push(Buffer.from('{}'))).to.deep.equal([{}]);
  });

  it('rejects an oversize message completed within one chunk', () => {
    const framer = new JsonFramer({ maxMessageBytes: 8 });
    expect(() => framer.push(Buffer.from('{"a":"0123456789"}'))).to.throw(OvsdbFramingError, /too large/);
  });

  it('rejects garbage between messages', () => {
    const framer = new JsonFramer();
    expect(() => framer.push(Buffer.from('{"a":1} hello'))).to.throw(OvsdbFramingError, /unexpected byte.*0x68/);
  });

  it('rejects a bracketed value that is not valid JSON', () => {
    const framer = new JsonFramer();
    let err: unknown;
    try {
      framer.push(Buffer.from('{"a":tru}'));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(OvsdbFramingError);
    expect((err as OvsdbFramingError).reason).to.equal('syntax');
  });

  it('keeps the partial message and reports its size', () => {
    const framer = new JsonFramer();
    expect(framer.push(Buffer.from('{"id":1,'))).to.deep.equal([]);
    expect(framer.pendingBytes).to.equal(8);
    expect(framer.push(Buffer.from('"x":[]}{'))).to.deep.equal([{ id: 1, x: [] }]);
    expect(framer.pendingBytes).to.equal(1);
  });
});
