// `mirrorflow pipeline` settings: flags over the config file over defaults, bad values named.
import { expect } from 'chai';
import { defaultPipelineThreads, parseMetricsAddress, pipelineSettings } from '../../../src/cli/pipeline.js';
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
    // a line every millisecond would flood the log: 0 turns them off, else at least 10 ms apart
    expect(() => pipelineSettings({ progress: '0.001' })).to.throw(UsageError, 'invalid --progress, expected 0 (no progress lines) or 0.01..86400 seconds (progress=0.001)');
    expect(() => pipelineSettings({}, { progressSeconds: 0.005 })).to.throw(ConfigError, 'config: invalid pipeline.progressSeconds, expected 0 (no progress lines) or 0.01..86400 seconds (progress=0.005)');
    expect(pipelineSettings({ progress: '0.01' }).progressSeconds).to.equal(0.01);
  });
});

describe('cli/pipeline --metrics (pipeline.metrics)', () => {
  it('default: no endpoint; a flag or the file gives HOST:PORT, normalised as the agent does', () => {
    expect(pipelineSettings({}).metrics).to.equal(undefined);
    expect(pipelineSettings({ metrics: '127.0.0.1:0' }).metrics).to.equal('127.0.0.1:0');
    expect(pipelineSettings({ metrics: '9478' }).metrics).to.equal('127.0.0.1:9478');
    expect(pipelineSettings({ metrics: '[::1]:9478' }).metrics).to.equal('[::1]:9478');
    expect(pipelineSettings({}, { metrics: '0.0.0.0:9478' }).metrics).to.equal('0.0.0.0:9478');
  });

  it('the flag wins over the file; off turns a file address off', () => {
    expect(pipelineSettings({ metrics: '127.0.0.1:9500' }, { metrics: '0.0.0.0:9478' }).metrics).to.equal('127.0.0.1:9500');
    expect(pipelineSettings({ metrics: 'off' }, { metrics: '0.0.0.0:9478' }).metrics).to.equal(undefined);
  });

  it('names a bad address, from a flag (usage) or from the file (config)', () => {
    expect(() => pipelineSettings({ metrics: 'localhost' })).to.throw(UsageError, 'invalid --metrics, expected HOST:PORT (port 0..65535), [IPv6]:PORT, or off (metrics=localhost)');
    expect(() => pipelineSettings({ metrics: '127.0.0.1:70000' })).to.throw(UsageError, /metrics=127\.0\.0\.1:70000/);
    expect(() => pipelineSettings({ metrics: '' })).to.throw(UsageError, /invalid --metrics/);
    expect(() => pipelineSettings({}, { metrics: 'host:port' })).to.throw(ConfigError, 'config: invalid pipeline.metrics, expected HOST:PORT (port 0..65535), [IPv6]:PORT, or off (metrics=host:port)');
    expect(() => parseMetricsAddress(true, false)).to.throw(ConfigError, /metrics=true/);
  });
});

describe('cli/pipeline --threads (pipeline.threads)', () => {
  it('default: one worker thread per core, at most 8, none on a single core', () => {
    expect(defaultPipelineThreads(1)).to.equal(0);
    expect(defaultPipelineThreads(2)).to.equal(2);
    expect(defaultPipelineThreads(6)).to.equal(6);
    expect(defaultPipelineThreads(32)).to.equal(8);
    expect(pipelineSettings({}).threads).to.equal(defaultPipelineThreads());
  });

  it('the flag wins over the file; 0 keeps the work in the main thread', () => {
    expect(pipelineSettings({}, { threads: 3 }).threads).to.equal(3);
    expect(pipelineSettings({ threads: '0' }, { threads: 3 }).threads).to.equal(0);
  });

  it('names a bad thread count, from a flag or from the file', () => {
    expect(() => pipelineSettings({ threads: '-1' })).to.throw(UsageError, 'invalid --threads, expected a number 0..64 (threads=-1)');
    expect(() => pipelineSettings({ threads: '1.5' })).to.throw(UsageError, 'invalid --threads, expected a whole number (threads=1.5)');
    expect(() => pipelineSettings({ threads: 'many' })).to.throw(UsageError, /threads=many/);
    expect(() => pipelineSettings({}, { threads: 65 })).to.throw(ConfigError, 'config: invalid pipeline.threads, expected a number 0..64 (threads=65)');
    expect(() => pipelineSettings({}, { threads: 2.5 })).to.throw(ConfigError, 'config: invalid pipeline.threads, expected a whole number (threads=2.5)');
  });
});
