import { expect } from 'chai';
import { ConfigError } from '../../../src/errors.js';
import { KAFKA_DEFAULTS, kafkaClientOptions, parseBrokers, parseKafkaConfig } from '../../../src/pipeline/kafka-config.js';
import { topicConfigProblems, topicNames, topicSpecs } from '../../../src/pipeline/kafka-topics.js';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('pipeline/kafka-config', () => {
  it('defaults', () => {
    const c = parseKafkaConfig({ brokers: '127.0.0.1:9092' });
    expect(c.brokers).to.deep.equal(['127.0.0.1:9092']);
    expect(c.topicPrefix).to.equal('mirrorflow.');
    expect(c.format).to.equal('protobuf');
    expect(c.compression).to.equal('none');
    expect(c.lingerMs).to.equal(KAFKA_DEFAULTS.lingerMs);
    expect(c.topics.partitions).to.deep.equal({ flows: 12, pairs: 6, alerts: 3, inventory: 1 });
    expect(c.tls).to.equal(undefined);
    expect(c.sasl).to.equal(undefined);
    expect(c.spoolDir).to.equal(undefined);
  });

  it('brokers: lists, spaces, IPv6 in brackets; errors name the value', () => {
    expect(parseBrokers('a:1, b.example:9093')).to.deep.equal(['a:1', 'b.example:9093']);
    expect(parseBrokers(['[::1]:9092'])).to.deep.equal(['[::1]:9092']);
    expect(configError(() => parseBrokers('localhost')).message).to.equal('kafka: invalid brokers, expected HOST:PORT with a port 1..65535 (brokers=localhost)');
    expect(configError(() => parseBrokers('h:70000')).message).to.contain('(brokers=h:70000)');
    expect(configError(() => parseBrokers('')).message).to.contain('kafka: invalid brokers');
    expect(configError(() => parseKafkaConfig({})).message).to.contain('invalid brokers');
  });

  it('numbers: strings accepted, ranges checked, the error names setting and value', () => {
    const c = parseKafkaConfig({ brokers: 'h:1', lingerMs: '5', batchBytes: 65536, partitions: { flows: '24' }, retentionMs: { flows: '3600000' } });
    expect(c.lingerMs).to.equal(5);
    expect(c.batchBytes).to.equal(65536);
    expect(c.topics.partitions.flows).to.equal(24);
    expect(c.topics.retentionMs.flows).to.equal(3_600_000);
    expect(configError(() => parseKafkaConfig({ brokers: 'h:1', lingerMs: -1 })).message).to.equal(
      'kafka: invalid lingerMs, expected a whole number 0..60000 (lingerMs=-1)',
    );
    expect(configError(() => parseKafkaConfig({ brokers: 'h:1', lingerMs: '2.5' })).message).to.contain('(lingerMs=2.5)');
    expect(configError(() => parseKafkaConfig({ brokers: 'h:1', partitions: { flows: 0 } })).message).to.contain('partitions.flows');
    expect(configError(() => parseKafkaConfig({ brokers: 'h:1', spoolLimitBytes: 'lots' })).message).to.contain('(spoolLimitBytes=lots)');
    expect(configError(() => parseKafkaConfig({ brokers: 'h:1', memoryLimitBytes: 65536, batchBytes: 1 << 20 })).message).to.contain('at least batchBytes');
  });

  it('format, compression, topic prefix', () => {
    expect(parseKafkaConfig({ brokers: 'h:1', format: 'avro', compression: 'none', topicPrefix: 't-1.' })).to.include({ format: 'avro', compression: 'none', topicPrefix: 't-1.' });
    expect(configError(() => parseKafkaConfig({ brokers: 'h:1', format: 'xml' })).message).to.equal('kafka: invalid format, expected json, protobuf, avro (format=xml)');
    expect(configError(() => parseKafkaConfig({ brokers: 'h:1', compression: 'snappy' })).message).to.contain('(compression=snappy)');
    expect(configError(() => parseKafkaConfig({ brokers: 'h:1', topicPrefix: 'a b' })).message).to.contain('invalid topicPrefix');
    expect(topicNames('p.')).to.deep.equal({ flows: 'p.flows', pairs: 'p.pairs', alerts: 'p.alerts', inventory: 'p.inventory' });
  });

  it('TLS: files, pairs of cert and key, the flag; reading a missing file names it', async () => {
    const c = parseKafkaConfig({ brokers: 'h:1', tls: { caFile: '/nonexistent/ca.pem' } });
    expect(c.tls).to.deep.equal({ caFile: '/nonexistent/ca.pem', rejectUnauthorized: true });
    expect(parseKafkaConfig({ brokers: 'h:1', tls: true }).tls).to.deep.equal({ rejectUnauthorized: true });
    expect(configError(() => parseKafkaConfig({ brokers: 'h:1', tls: { certFile: 'c.pem' } })).message).to.contain('tls.keyFile');
    expect(configError(() => parseKafkaConfig({ brokers: 'h:1', tls: { rejectUnauthorized: 'maybe' } })).message).to.contain('(tls.rejectUnauthorized=maybe)');
    try {
      await kafkaClientOptions(c);
      expect.fail('expected an error');
    } catch (e) {
      expect((e as Error).message).to.equal('kafka: cannot read tls.caFile (tls.caFile=/nonexistent/ca.pem, reason=ENOENT)');
    }
  });

  it('SASL: mechanisms, and the password never appears in a message', async () => {
    const c = parseKafkaConfig({ brokers: 'h:1', sasl: { mechanism: 'SCRAM-SHA-512', username: 'u', password: 'p' } });
    expect(c.sasl).to.deep.equal({ mechanism: 'scram-sha-512', username: 'u', password: 'p' });
    expect((await kafkaClientOptions(c)).sasl).to.deep.equal({ mechanism: 'scram-sha-512', username: 'u', password: 'p' });
    expect(configError(() => parseKafkaConfig({ brokers: 'h:1', sasl: { mechanism: 'gssapi', username: 'u', password: 'p' } })).message).to.equal(
      'kafka: invalid sasl.mechanism, expected plain, scram-sha-256, scram-sha-512 (sasl.mechanism=gssapi)',
    );
    expect(configError(() => parseKafkaConfig({ brokers: 'h:1', sasl: { mechanism: 'plain', password: 'secret' } })).message).to.contain('sasl.username');
    const e = configError(() => parseKafkaConfig({ brokers: 'h:1', sasl: { mechanism: 'plain', username: 'u', password: '' } }));
    expect(e.message).to.equal('kafka: invalid sasl.password, expected a non-empty string (sasl.username=u)');
  });
});

describe('pipeline/kafka-topics (pure part)', () => {
  const cfg = parseKafkaConfig({ brokers: 'h:1', topicPrefix: 'x.' });

  it('specs: inventory compacted, the others deleted by time, partitions from the config', () => {
    const specs = topicSpecs(cfg);
    expect(specs.map((s) => s.topic)).to.deep.equal(['x.flows', 'x.pairs', 'x.alerts', 'x.inventory']);
    const inv = specs.find((s) => s.role === 'inventory')!;
    expect(inv.configs['cleanup.policy']).to.equal('compact');
    expect(inv.numPartitions).to.equal(1);
    const flows = specs.find((s) => s.role === 'flows')!;
    expect(flows.configs).to.include({ 'cleanup.policy': 'delete', 'retention.ms': '86400000' });
    expect(flows.numPartitions).to.equal(12);
  });

  it('incompatible configs are named', () => {
    expect(topicConfigProblems('inventory', { 'cleanup.policy': 'compact' }, 1 << 20)).to.deep.equal([]);
    expect(topicConfigProblems('inventory', { 'cleanup.policy': 'delete' }, 1 << 20)[0]).to.match(/^cleanup.policy=delete \(expected compact/);
    expect(topicConfigProblems('inventory', { 'cleanup.policy': 'compact,delete' }, 1 << 20)).to.have.length(1);
    expect(topicConfigProblems('flows', { 'cleanup.policy': 'delete', 'max.message.bytes': '2000000' }, 1 << 20)).to.deep.equal([]);
    expect(topicConfigProblems('flows', { 'cleanup.policy': 'compact' }, 1 << 20)[0]).to.match(/^cleanup.policy=compact \(expected delete/);
    expect(topicConfigProblems('pairs', { 'cleanup.policy': 'delete', 'max.message.bytes': '1000' }, 1 << 20)[0]).to.match(/^max.message.bytes=1000/);
  });
});
