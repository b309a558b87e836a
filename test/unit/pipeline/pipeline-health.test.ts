// The pipeline's /readyz: ready once started, joined and holding every assigned partition's producer.
import { expect } from 'chai';
import { evaluatePipelineReadiness } from '../../../src/pipeline/pipeline-health.js';

describe('pipeline/pipeline-health', () => {
  const base = { started: true, stopping: false, joined: true, partitions: 4, held: 4 };

  it('ready when started, joined and every partition held', () => {
    expect(evaluatePipelineReadiness(base)).to.deep.equal({
      live: true,
      ready: true,
      detail: { pipeline: 'running', consumer: 'joined', partitions: 4, producers: 4 },
    });
    // a member with no partition (more members than partitions) is ready once joined
    expect(evaluatePipelineReadiness({ ...base, partitions: 0, held: 0 }).ready).to.equal(true);
  });

  it('names what is not ready: before start, before joining, partitions not held, stopping', () => {
    expect(evaluatePipelineReadiness({ started: false, stopping: false, joined: false, partitions: 0, held: 0 })).to.deep.equal({
      live: true,
      ready: false,
      detail: { pipeline: 'starting', consumer: 'not joined', partitions: 0, producers: 0, notReady: ['pipeline', 'consumer'] },
    });
    const restoring = evaluatePipelineReadiness({ ...base, held: 3 });
    expect([restoring.ready, restoring.detail.notReady]).to.deep.equal([false, ['producers']]);
    const stopping = evaluatePipelineReadiness({ ...base, stopping: true, joined: false });
    expect([stopping.live, stopping.ready, stopping.detail.pipeline, stopping.detail.notReady]).to.deep.equal([true, false, 'stopping', ['pipeline', 'consumer']]);
    const failed = evaluatePipelineReadiness({ ...base, failed: true });
    expect([failed.live, failed.ready, failed.detail.pipeline]).to.deep.equal([false, false, 'failed']);
  });
});
