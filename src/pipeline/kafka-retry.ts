/**
 * Retrying Kafka calls, and telling the failures that a retry cannot fix from those it can.
 *
 * A wrong SASL password, an unknown user, a mechanism the broker does not offer, or a broker
 * certificate the configured CA did not sign never heal by themselves: kafkaSecurityFailure()
 * recognises them (by shape: kafkajs is not imported here, so the CLI's error path stays light)
 * and turns them into one MirrorflowError line, not retriable, e.g.
 *   kafka: authentication failed (mechanism=SCRAM-SHA-512, username=alice, broker=127.0.0.1:9094, reason="invalid credentials")
 *   kafka: TLS certificate not trusted (broker=127.0.0.1:9095, caFile=/etc/mf/ca.pem, code=SELF_SIGNED_CERT_IN_CHAIN, reason="self-signed certificate in certificate chain")
 * kafkajs' errors do not name the SASL user (nor, for SASL, the broker), so kafkaClientOptions()
 * remembers what each client was configured with (rememberKafkaClient) and the mapping fills
 * those in when they are unambiguous.
 */
import { MirrorflowError, kv } from '../errors.js';

/** What a Kafka client was configured with, for error messages (never the password). */
export interface KafkaClientContext {
  brokers: readonly string[];
  /** As configured: 'plain' | 'scram-sha-256' | 'scram-sha-512'. */
  mechanism?: string;
  username?: string;
  tls: boolean;
  caFile?: string;
}

export class KafkaSecurityError extends MirrorflowError {}

/** Codes of a Kafka security failure (KafkaSecurityError.code). */
export type KafkaSecurityCode = 'kafka-auth' | 'kafka-tls';

const MAX_CONTEXTS = 16;
const contexts: KafkaClientContext[] = [];

/** Called by kafkaClientOptions(): the latest configurations, distinct, at most 16. */
export function rememberKafkaClient(ctx: KafkaClientContext): void {
  const key = JSON.stringify(ctx);
  const i = contexts.findIndex((c) => JSON.stringify(c) === key);
  if (i >= 0) contexts.splice(i, 1);
  contexts.push(ctx);
  if (contexts.length > MAX_CONTEXTS) contexts.shift();
}

/** For tests: forget the remembered client configurations. */
export function forgetKafkaClients(): void {
  contexts.length = 0;
}

interface ErrorShape {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  type?: unknown;
  broker?: unknown;
  cause?: unknown;
  retriable?: unknown;
}

/** e, its cause, its cause's cause… (at most 8, no cycles). */
function chain(e: unknown): ErrorShape[] {
  const out: ErrorShape[] = [];
  let cur: unknown = e;
  while (cur !== null && typeof cur === 'object' && out.length < 8 && !out.includes(cur as ErrorShape)) {
    out.push(cur as ErrorShape);
    cur = (cur as ErrorShape).cause;
  }
  return out;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const isKafkaJs = (e: ErrorShape): boolean => str(e.name).startsWith('KafkaJS');

const SASL_TYPES = new Set(['SASL_AUTHENTICATION_FAILED', 'UNSUPPORTED_SASL_MECHANISM', 'ILLEGAL_SASL_STATE']);

/** Node's TLS verification codes, by what they mean to a user. */
const TLS_UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);
const TLS_EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
const TLS_NAME = new Set(['ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH']);
const TLS_MESSAGE_RE = /certificate|self[- ]signed|unable to verify|ssl routines|wrong version number|tlsv1 alert|handshake failure/i;

/** 'SASL SCRAM SHA512 authentication failed' → SCRAM-SHA-512; 'SASL PLAIN …' → PLAIN. */
function mechanismFromMessage(message: string): string | undefined {
  const scram = /SCRAM[ -]SHA-?(256|512)/i.exec(message);
  if (scram) return `SCRAM-SHA-${scram[1]}`;
  const m = /SASL (PLAIN|OAUTHBEARER|AWS)\b/i.exec(message);
  return m ? m[1]!.toUpperCase() : undefined;
}

/** The remembered clients matching `pick`, when they agree on `field`; else undefined. */
function agreed<K extends keyof KafkaClientContext>(pick: (c: KafkaClientContext) => boolean, field: K): KafkaClientContext[K] | undefined {
  const values = new Set(contexts.filter(pick).map((c) => JSON.stringify(c[field] ?? null)));
  if (values.size !== 1) return undefined;
  const v = JSON.parse([...values][0]!) as KafkaClientContext[K] | null;
  return v ?? undefined;
}

function brokerField(brokers: readonly string[] | undefined): Record<string, string> {
  if (!brokers?.length) return {};
  return brokers.length === 1 ? { broker: brokers[0]! } : { brokers: brokers.join(',') };
}

function saslReason(message: string, type: string): string {
  if (/not supported by the server|UNSUPPORTED_SASL_MECHANISM/i.test(message) || type === 'UNSUPPORTED_SASL_MECHANISM') return 'mechanism not enabled on the broker';
  if (/invalid credentials|invalid username or password|SASL_AUTHENTICATION_FAILED/i.test(message) || type === 'SASL_AUTHENTICATION_FAILED') return 'invalid credentials';
  if (/server signature/i.test(message)) return 'the broker did not prove it knows the password (server signature mismatch)';
  // kafkajs: 'SASL SCRAM SHA512 authentication failed: <broker text>'
  return message.replace(/^SASL .*?authentication failed:\s*/i, '').slice(0, 200) || 'refused';
}

/**
 * The one-line error for a SASL authentication or TLS verification failure somewhere in e's cause
 * chain (a kafkajs error, or ours wrapping one), else undefined. Not retriable.
 */
export function kafkaSecurityFailure(e: unknown): KafkaSecurityError | undefined {
  const links = chain(e);
  // ours already (by shape too: a module loaded on demand may hold its own copy of this class)
  const done = links.find((l) => (l.code === 'kafka-auth' || l.code === 'kafka-tls') && typeof l.retriable === 'boolean' && typeof l.message === 'string');
  if (done instanceof KafkaSecurityError) return done;
  if (done) return new KafkaSecurityError(str(done.code), str(done.message), { cause: e, details: (done as { details?: Record<string, unknown> }).details ?? {} });
  const first = links.findIndex(isKafkaJs);
  if (first < 0) return undefined;
  // from kafkajs' error down (what wraps it, e.g. our "cannot connect", says nothing more)
  const kafkaLinks = links.slice(first);
  for (const l of kafkaLinks) {
    const name = str(l.name);
    const message = str(l.message);
    const type = str(l.type);
    if (name === 'KafkaJSSASLAuthenticationError' || SASL_TYPES.has(type)) {
      const mechanism = mechanismFromMessage(message);
      const sameMechanism = (c: KafkaClientContext) => c.mechanism !== undefined && (mechanism === undefined || c.mechanism.toUpperCase() === mechanism);
      const fields: Record<string, unknown> = {
        mechanism: mechanism ?? agreed(sameMechanism, 'mechanism')?.toUpperCase() ?? 'unknown',
      };
      const username = agreed(sameMechanism, 'username');
      if (username !== undefined) fields.username = username;
      Object.assign(fields, typeof l.broker === 'string' ? { broker: l.broker } : brokerField(agreed(sameMechanism, 'brokers')));
      fields.reason = saslReason(message, type);
      return new KafkaSecurityError('kafka-auth', `kafka: authentication failed${kv(fields)}`, { cause: e, details: fields });
    }
  }
  // the link carrying Node's TLS code (and the broker) first: a retry wrapper repeats only the text
  for (const l of [...kafkaLinks.filter((x) => str(x.code) !== ''), ...kafkaLinks.filter((x) => str(x.code) === '')]) {
    const code = str(l.code);
    const message = str(l.message).replace(/^Connection error:\s*/i, '');
    const known = TLS_UNTRUSTED.has(code) || TLS_EXPIRED.has(code) || TLS_NAME.has(code);
    if (!known && !(/^(EPROTO|ERR_SSL_|ERR_TLS_)/.test(code) || TLS_MESSAGE_RE.test(message))) continue;
    const what = TLS_UNTRUSTED.has(code) || /self[- ]signed|unable to verify|issuer/i.test(message)
      ? 'TLS certificate not trusted'
      : TLS_EXPIRED.has(code) || /expired|not yet valid/i.test(message)
        ? 'TLS certificate expired or not yet valid'
        : TLS_NAME.has(code) || /altnames|hostname/i.test(message)
          ? 'TLS certificate does not name the broker'
          : 'TLS handshake failed';
    const broker = typeof l.broker === 'string' ? l.broker : undefined;
    const withTls = (c: KafkaClientContext) => c.tls && (broker === undefined || c.brokers.includes(broker));
    const fields: Record<string, unknown> = broker ? { broker } : brokerField(agreed(withTls, 'brokers'));
    const ca = agreed(withTls, 'caFile');
    if (ca !== undefined) fields.caFile = ca;
    else if (contexts.some(withTls) && contexts.filter(withTls).every((c) => c.caFile === undefined)) fields.ca = 'system';
    if (code) fields.code = code;
    fields.reason = message.slice(0, 200);
    return new KafkaSecurityError('kafka-tls', `kafka: ${what}${kv(fields)}`, { cause: e, details: fields });
  }
  return undefined;
}

const SASL_LOG_RE = /SASL .*authentication failed|authentication failed during authentication|invalid credentials|mechanism is not supported/i;

/**
 * A kafkajs log line about a SASL or TLS failure: the CLI reports that failure itself, as one
 * line (kafkaSecurityFailure), so kafkaClientOptions()' logger leaves these out.
 */
export function isKafkaSecurityLog(message: string, error?: string): boolean {
  const text = `${message} ${error ?? ''}`;
  if (SASL_LOG_RE.test(text)) return true;
  return /Connection error:|Failed to connect/i.test(message) && TLS_MESSAGE_RE.test(text);
}

/** True when retrying cannot help: authentication, TLS verification, authorization, a message too large. */
export function isFatalKafkaFailure(e: unknown): boolean {
  if (kafkaSecurityFailure(e)) return true;
  return chain(e).some((l) => /^(TOPIC|GROUP|CLUSTER|TRANSACTIONAL_ID)_AUTHORIZATION_FAILED$|^MESSAGE_TOO_LARGE$/.test(str(l.type)));
}

/**
 * Retries a Kafka admin call while the broker answers with a retriable error (e.g. "not the leader
 * for that topic-partition" just after a topic was created or a leader moved), with a growing
 * pause, a bounded number of times. A security failure is never retried (kafkajs marks a TLS
 * connection error retriable): it is thrown at once as its one-line KafkaSecurityError.
 */
export async function retryRetriable<T>(fn: () => Promise<T>, attempts = 20, firstDelayMs = 50): Promise<T> {
  let delay = firstDelayMs;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      const security = kafkaSecurityFailure(e);
      if (security) throw security;
      if (i >= attempts || !(e as { retriable?: boolean }).retriable || isFatalKafkaFailure(e)) throw e;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 1000);
    }
  }
}
