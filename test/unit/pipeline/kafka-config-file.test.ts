// The kafka block of a config file (replay/capture --kafka-config, pipeline --config) and the kafkajs
// logger that leaves SASL/TLS failures to the CLI's one-line error.
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../../src/errors.js';
import { kafkaClientOptions, kafkaLogCreator, loadKafkaConfigFile, parseKafkaConfig } from '../../../src/pipeline/kafka-config.js';
import { isKafkaSecurityLog } from '../../../src/pipeline/kafka-retry.js';

describe('pipeline/kafka-config: config files and the kafkajs logger', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mf-kafka-config-file.'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('reads the kafka object (TLS, SASL, spool…); other sections are not its business', async () => {
    const p = write('ok.json', JSON.stringify({ kafka: { brokers: 'h:9094', tls: { caFile: '/ca.pem' }, sasl: { mechanism: 'scram-sha-512', username: 'alice', password: 'pw' }, spoolDir: '/s' }, pipeline: { group: 'g' } }));
    const input = await loadKafkaConfigFile(p);
    const cfg = parseKafkaConfig(input);
    expect(cfg.brokers).to.deep.equal(['h:9094']);
    expect(cfg.tls).to.deep.equal({ caFile: '/ca.pem', rejectUnauthorized: true });
    expect(cfg.sasl).to.deep.equal({ mechanism: 'scram-sha-512', username: 'alice', password: 'pw' });
    expect(cfg.spoolDir).to.equal('/s');
    expect(await loadKafkaConfigFile(write('none.json', '{"rules": {}}'))).to.deep.equal({});
  });

  it('a missing file, bad JSON, a kafka that is not an object: one ConfigError naming the file', async () => {
    const fail = async (path: string): Promise<string> => {
      const e = await loadKafkaConfigFile(path).then(() => undefined, (x: unknown) => x);
      expect(e).to.be.instanceOf(ConfigError);
      return (e as Error).message;
    };
    expect(await fail(join(dir, 'missing.json'))).to.equal(`config: cannot read file (file=${join(dir, 'missing.json')}, reason=ENOENT)`);
    expect(await fail(write('bad.json', '{kafka'))).to.match(/^config: not JSON \(file=.*bad\.json, reason=/);
    expect(await fail(write('list.json', '[]'))).to.match(/^config: expected a JSON object \(file=.*list\.json\)$/);
    expect(await fail(write('str.json', '{"kafka": "h:1"}'))).to.match(/^config: expected an object \(file=.*str\.json, field=kafka\)$/);
  });

  it('kafkaClientOptions reads the CA file; an unreadable one is a ConfigError naming it', async () => {
    const ca = write('ca.pem', '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n');
    const opts = await kafkaClientOptions(parseKafkaConfig({ brokers: 'h:1', tls: { caFile: ca } }));
    expect(opts.ssl).to.deep.equal({ rejectUnauthorized: true, ca: [readFileSync(ca, 'utf8')] });
    expect(opts.logCreator).to.equal(kafkaLogCreator);
    const e = await kafkaClientOptions(parseKafkaConfig({ brokers: 'h:1', tls: { caFile: join(dir, 'nope.pem') } })).then(() => undefined, (x: unknown) => x);
    expect((e as Error).message).to.equal(`kafka: cannot read tls.caFile (tls.caFile=${join(dir, 'nope.pem')}, reason=ENOENT)`);
  });

  it('the logger drops kafkajs lines about SASL and TLS failures, and keeps the rest', () => {
    const printed: string[] = [];
    const orig = { error: console.error, log: console.log };
    console.error = (l: string) => printed.push(`E ${l}`);
    console.log = (l: string) => printed.push(`L ${l}`);
    try {
      const log = kafkaLogCreator(1);
      log({ namespace: 'SaslAuthenticator-SCRAM-SHA-512', level: 1, label: 'ERROR', log: { message: 'SASL SCRAM SHA512 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512' } });
      log({ namespace: 'Connection', level: 1, label: 'ERROR', log: { message: 'Response SaslAuthenticate(key: 36, version: 1)', error: 'Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512' } });
      log({ namespace: 'Connection', level: 1, label: 'ERROR', log: { message: 'Connection error: self-signed certificate in certificate chain' } });
      log({ namespace: 'BrokerPool', level: 1, label: 'ERROR', log: { message: 'Failed to connect to seed broker, trying another broker from the list: Connection error: unable to verify the first certificate' } });
      log({ namespace: 'Connection', level: 1, label: 'ERROR', log: { message: 'Response GroupCoordinator(key: 10, version: 2)', error: 'The group coordinator is not available' } });
      log({ namespace: 'Connection', level: 1, label: 'ERROR', log: { message: 'Connection error: connect ECONNREFUSED 127.0.0.1:9' } });
      log({ namespace: '', level: 4, label: 'INFO', log: { message: 'Starting' } });
    } finally {
      console.error = orig.error;
      console.log = orig.log;
    }
    expect(printed).to.deep.equal([
      'E {"level":"ERROR","message":"[Connection] Response GroupCoordinator(key: 10, version: 2)","error":"The group coordinator is not available"}',
      'E {"level":"ERROR","message":"[Connection] Connection error: connect ECONNREFUSED 127.0.0.1:9"}',
      'L {"level":"INFO","message":"Starting"}',
    ]);
    expect(isKafkaSecurityLog('Connection timeout')).to.equal(false);
  });
});
