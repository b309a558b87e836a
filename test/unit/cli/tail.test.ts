// `mirrorflow tail` decoding (pure part): a FlowRecordBatch message of the flows topic gives one
// proto3 JSON object per record, single-record messages one, a broken batch a reason (never a throw).
import { expect } from 'chai';
import { toProto3Json } from '../../../src/capture/flow-record.js';
import { decodeTailMessage } from '../../../src/cli/tail.js';
import { encodeFlowBatch, flowBatchHeaders } from '../../../src/pipeline/codec-batch.js';
import { RECORD_FORMATS, encodeRecord, schemaHeaders } from '../../../src/pipeline/codec.js';
import { icmpRecord, otherRecord, tcpRecord } from '../pipeline/codec.fixture.js';

describe('tail: decoding flows messages', () => {
  const rs = [tcpRecord(1), icmpRecord(2), otherRecord(3)];
  for (const format of RECORD_FORMATS) {
    it(`a FlowRecordBatch (${format}) is one JSON object per record, in order`, () => {
      const d = decodeTailMessage({ key: 'a|b', value: encodeFlowBatch(rs, format), headers: flowBatchHeaders(format, rs.length) });
      expect(d.ok, d.ok ? '' : d.reason).to.equal(true);
      if (!d.ok) return;
      expect(d.schema).to.equal('mirrorflow.v1.FlowRecordBatch');
      expect(d.records).to.deep.equal(rs.map((r) => JSON.parse(JSON.stringify(toProto3Json(r)))));
      expect(d.json).to.deep.equal(d.records[0]);
    });
  }

  it('a single FlowRecord message is one object', () => {
    const d = decodeTailMessage({ key: 'a|b', value: encodeRecord('flow-record', rs[0]!, 'protobuf'), headers: schemaHeaders('flow-record', 'protobuf') });
    expect(d.ok && d.records.length).to.equal(1);
  });

  it('a broken batch is a reason, not an exception', () => {
    const value = encodeFlowBatch(rs, 'protobuf');
    const d = decodeTailMessage({ key: 'a|b', value: value.subarray(0, value.length - 3), headers: flowBatchHeaders('protobuf', 3) });
    expect(d.ok).to.equal(false);
    if (!d.ok) expect(d.reason).to.match(/corrupt batch/);
  });
});
