// `mirrorflow pipeline` settings: flags over the config file over defaults, bad values named.
import { expect } from 'chai';
import { pipelineSettings } from '../../../src/cli/pipeline.js';
import { ConfigError, UsageError } from '../../../src/errors.js';

describe('cli/pipeline settings', () => {
  it('defaults: 10 s windows, idle close after two windows, a progress line every 10 s', () => {
    const s = pipelineSettings({});
    expect(s).to.include({ group: 'mirrorflow-pipeline', windowSeconds: 10, idleTimeoutSeconds: 20, progressSeconds: 10 });
  });

  it('takes --progress over pipeline.progressSeconds; 0 turns progress lines off', () => {
    expect(pipelineSettings({}, { progressSeconds: 30 }).progressSeconds).to.equal(30);
    expect(pipelineSettings({ progress: '0.1' }, { progressSeconds: 30 }).progressSeconds).to.equal(0.1);
    expect(pipelineSettings({ progress: '0' }).progressSeconds).to.equal(0);
  });

  it('names a bad progress interval, from a flag or from the file', () => {
    expect(() => pipelineSettings({ progress: '-1' })).to.throw(UsageError, 'invalid --progress, expected a number 0..86400 (progress=-1)');
    expect(() => pipelineSettings({ progress: 'soon' })).to.throw(UsageError, /progress=soon/);
    expect(() => pipelineSettings({}, { progressSeconds: 'x' })).to.throw(ConfigError, 'config: invalid pipeline.progressSeconds, expected a number 0..86400 (progressSeconds=x)');
  });
});
