// Mapping kafkajs' SASL and TLS failures to one MirrorflowError line, never retried. The errors are
// built with kafkajs' own classes, shaped as kafkajs throws them (messages taken from a real broker).
import { expect } from 'chai';
import kafkajs from '../../../src/pipeline/kafkajs.js';
import { reportError } from '../../../src/cli/main.js';
import { MirrorflowError } from '../../../src/errors.js';
import { kafkaClientOptions, parseKafkaConfig } from '../../../src/pipeline/kafka-config.js';
import { forgetKafkaClients, isFatalKafkaFailure, kafkaSecurityFailure, KafkaSecurityError, rememberKafkaClient, retryRetriable } from '../../../src/pipeline/kafka-retry.js';

// kafkajs' typings declare fewer constructor arguments than its classes take
type AnyError = new (...args: any[]) => Error & { retriable: boolean };
const KafkaJSConnectionError = kafkajs.KafkaJSConnectionError as unknown as AnyError;
const KafkaJSNumberOfRetriesExceeded = kafkajs.KafkaJSNumberOfRetriesExceeded as unknown as AnyError;
const KafkaJSProtocolError = kafkajs.KafkaJSProtocolError as unknown as AnyError;
const KafkaJSSASLAuthenticationError = kafkajs.KafkaJSSASLAuthenticationError as unknown as AnyError;

/** What kafkajs throws for a wrong SCRAM password (Kafka 4.4 broker's text). */
function saslFailure(bits = 512): Error {
  return new KafkaJSSASLAuthenticationError(
    `SASL SCRAM SHA${bits} authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-${bits}`,
  );
}

/** What admin.connect() throws when the broker's certificate is not signed by a trusted CA. */
function tlsFailure(code = 'SELF_SIGNED_CERT_IN_CHAIN', text = 'self-signed certificate in certificate chain', broker = '127.0.0.1:20397'): Error {
  const conn = new KafkaJSConnectionError(`Connection error: ${text}`, { broker, code });
  return new KafkaJSNumberOfRetriesExceeded(conn, { retryCount: 2, retryTime: 300 });
}

describe('pipeline/kafka-retry', () => {
  beforeEach(() => forgetKafkaClients());
  after(() => forgetKafkaClients());

  it('a wrong SCRAM password: one line naming mechanism, user and broker, not retriable', () => {
    rememberKafkaClient({ brokers: ['127.0.0.1:20397'], mechanism: 'scram-sha-512', username: 'alice', tls: true, caFile: '/x/ca.pem' });
    const e = kafkaSecurityFailure(saslFailure());
    expect(e).to.be.instanceOf(KafkaSecurityError);
    expect(e).to.be.instanceOf(MirrorflowError);
    expect(e!.code).to.equal('kafka-auth');
    expect(e!.retriable).to.equal(false);
    expect(e!.message).to.equal('kafka: authentication failed (mechanism=SCRAM-SHA-512, username=alice, broker=127.0.0.1:20397, reason="invalid credentials")');
    expect(e!.message).to.not.contain('\n');
  });

  it('the password never appears; kafkaClientOptions() remembers user and brokers for the message', async () => {
    const cfg = parseKafkaConfig({ brokers: 'h1:9093,h2:9093', sasl: { mechanism: 'SCRAM-SHA-256', username: 'bob', password: 's3cret-pw' } });
    await kafkaClientOptions(cfg);
    const e = kafkaSecurityFailure(saslFailure(256))!;
    expect(e.message).to.equal('kafka: authentication failed (mechanism=SCRAM-SHA-256, username=bob, brokers=h1:9093,h2:9093, reason="invalid credentials")');
    expect(e.message).to.not.contain('s3cret-pw');
  });

  it('clients that disagree: the user is left out rather than guessed', () => {
    rememberKafkaClient({ brokers: ['a:1'], mechanism: 'scram-sha-512', username: 'alice', tls: false });
    rememberKafkaClient({ brokers: ['a:1'], mechanism: 'scram-sha-512', username: 'carol', tls: false });
    rememberKafkaClient({ brokers: ['a:1'], mechanism: 'scram-sha-256', username: 'dave', tls: false });
    const e = kafkaSecurityFailure(saslFailure(512))!;
    expect(e.message).to.equal('kafka: authentication failed (mechanism=SCRAM-SHA-512, broker=a:1, reason="invalid credentials")');
  });

  it('a mechanism the broker does not offer, and the broker error code SASL_AUTHENTICATION_FAILED', () => {
    const m = kafkaSecurityFailure(new KafkaJSSASLAuthenticationError('SASL PLAIN mechanism is not supported by the server'))!;
    expect(m.message).to.equal('kafka: authentication failed (mechanism=PLAIN, reason="mechanism not enabled on the broker")');
    const p = new KafkaJSProtocolError({ type: 'SASL_AUTHENTICATION_FAILED', code: 58, retriable: false, message: 'SASL Authentication failed' });
    expect(kafkaSecurityFailure(p)!.message).to.equal('kafka: authentication failed (mechanism=unknown, reason="invalid credentials")');
  });

  it('an untrusted CA: one line naming the TLS failure, the broker, the CA file and Node\'s code', () => {
    rememberKafkaClient({ brokers: ['127.0.0.1:20397'], mechanism: 'scram-sha-512', username: 'alice', tls: true, caFile: '/x/other-ca.pem' });
    const e = kafkaSecurityFailure(tlsFailure())!;
    expect(e.code).to.equal('kafka-tls');
    expect(e.retriable).to.equal(false);
    expect(e.message).to.equal(
      'kafka: TLS certificate not trusted (broker=127.0.0.1:20397, caFile=/x/other-ca.pem, code=SELF_SIGNED_CERT_IN_CHAIN, reason="self-signed certificate in certificate chain")',
    );
  });

  it('TLS: the system CAs, an expired certificate, a wrong host name, a listener that does not speak TLS', () => {
    rememberKafkaClient({ brokers: ['b:9093'], tls: true });
    expect(kafkaSecurityFailure(tlsFailure('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate', 'b:9093'))!.message).to.equal(
      'kafka: TLS certificate not trusted (broker=b:9093, ca=system, code=UNABLE_TO_VERIFY_LEAF_SIGNATURE, reason="unable to verify the first certificate")',
    );
    expect(kafkaSecurityFailure(tlsFailure('CERT_HAS_EXPIRED', 'certificate has expired', 'b:9093'))!.message).to.match(/^kafka: TLS certificate expired or not yet valid \(broker=b:9093/);
    expect(kafkaSecurityFailure(tlsFailure('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames", 'b:9093'))!.message).to.match(
      /^kafka: TLS certificate does not name the broker \(broker=b:9093/,
    );
    expect(kafkaSecurityFailure(tlsFailure('ERR_SSL_WRONG_VERSION_NUMBER', 'write EPROTO 40E8…:error:0A00010B:SSL routines:ssl3_get_record:wrong version number', 'b:9093'))!.message).to.match(
      /^kafka: TLS handshake failed \(broker=b:9093, ca=system, code=ERR_SSL_WRONG_VERSION_NUMBER/,
    );
  });

  it('wrapped by our own error (the producer\'s "cannot connect"): the security line wins', () => {
    const ours = new MirrorflowError('kafka-connect', 'kafka: cannot connect (brokers=h:1, reason="SASL …")', { cause: saslFailure(), retriable: false });
    expect(kafkaSecurityFailure(ours)!.message).to.match(/^kafka: authentication failed \(mechanism=SCRAM-SHA-512/);
    const tls = new MirrorflowError('kafka-connect', 'kafka: cannot connect (brokers=127.0.0.1:20397)', { cause: tlsFailure(), retriable: false });
    expect(kafkaSecurityFailure(tls)!.message).to.match(/^kafka: TLS certificate not trusted \(broker=127\.0\.0\.1:20397, .*code=SELF_SIGNED_CERT_IN_CHAIN/);
    // already mapped (possibly by another copy of the module): kept as it is
    const mapped = kafkaSecurityFailure(saslFailure())!;
    const copy = Object.assign(new Error(mapped.message), { code: 'kafka-auth', retriable: false, cause: mapped.cause });
    expect(kafkaSecurityFailure(copy)!.message).to.equal(mapped.message);
  });

  it('other failures are not security failures: a refused connection, a timeout, non-kafka TLS errors', () => {
    expect(kafkaSecurityFailure(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:1', { broker: '127.0.0.1:1', code: 'ECONNREFUSED' }))).to.equal(undefined);
    expect(kafkaSecurityFailure(new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('Connection timeout', { broker: 'h:1' }), { retryCount: 5, retryTime: 1 }))).to.equal(undefined);
    // an OVSDB TLS failure is not Kafka's business
    const ovsdb = new MirrorflowError('ovsdb-connect', 'ovsdb: cannot connect', { cause: Object.assign(new Error('self-signed certificate'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }) });
    expect(kafkaSecurityFailure(ovsdb)).to.equal(undefined);
    expect(kafkaSecurityFailure(undefined)).to.equal(undefined);
    expect(kafkaSecurityFailure('text')).to.equal(undefined);
  });

  it('isFatalKafkaFailure: security and authorization failures, not a lost leader', () => {
    expect(isFatalKafkaFailure(saslFailure())).to.equal(true);
    expect(isFatalKafkaFailure(tlsFailure())).to.equal(true);
    expect(isFatalKafkaFailure(new KafkaJSProtocolError({ type: 'TOPIC_AUTHORIZATION_FAILED', code: 29, retriable: false, message: 'Not authorized' }))).to.equal(true);
    expect(isFatalKafkaFailure(new KafkaJSProtocolError({ type: 'NOT_LEADER_OR_FOLLOWER', code: 6, retriable: true, message: 'no leader' }))).to.equal(false);
  });

  it('retryRetriable: a TLS failure kafkajs calls retriable is thrown at once, mapped; a lost leader is retried', async () => {
    let calls = 0;
    const conn = new KafkaJSConnectionError('Connection error: self-signed certificate in certificate chain', { broker: 'h:1', code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    expect(conn.retriable).to.equal(true);
    const err = await retryRetriable(async () => {
      calls++;
      throw conn;
    }, 5, 1).catch((e: unknown) => e);
    expect(calls).to.equal(1);
    expect(err).to.be.instanceOf(KafkaSecurityError);
    expect((err as Error).message).to.match(/^kafka: TLS certificate not trusted \(broker=h:1/);
    calls = 0;
    const v = await retryRetriable(async () => {
      if (++calls < 3) throw new KafkaJSProtocolError({ type: 'NOT_LEADER_OR_FOLLOWER', code: 6, retriable: true, message: 'no leader' });
      return 'ok';
    }, 5, 1);
    expect([v, calls]).to.deep.equal(['ok', 3]);
    calls = 0;
    await retryRetriable(async () => {
      calls++;
      throw saslFailure();
    }, 5, 1).catch(() => undefined);
    expect(calls).to.equal(1);
  });

  it('the CLI prints one line and exits 1 for a raw kafkajs SASL error, however wrapped', () => {
    rememberKafkaClient({ brokers: ['127.0.0.1:9094'], mechanism: 'scram-sha-512', username: 'alice', tls: false });
    const lines: string[] = [];
    const code = reportError(new Error('outer', { cause: saslFailure() }), { err: (l) => lines.push(l), env: {} });
    // a plain Error wrapping a kafkajs error: still recognised through the cause chain
    expect(code).to.equal(1);
    expect(lines).to.deep.equal(['mirrorflow: kafka: authentication failed (mechanism=SCRAM-SHA-512, username=alice, broker=127.0.0.1:9094, reason="invalid credentials")']);
  });
});
