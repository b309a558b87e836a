import { resolveOvsdbConfig, type OvsdbConnectConfig } from '../config/ovsdb-config.js';
import type { OptionSpec, Values } from './command.js';

/** The options every command that talks to OVSDB takes. */
export const ovsdbOptions: Record<string, OptionSpec> = {
  db: { type: 'string', arg: 'URL', description: 'OVSDB server: unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT (env MIRRORFLOW_DB; default unix:/var/run/openvswitch/db.sock)' },
  'ssl-key': { type: 'string', arg: 'FILE', description: 'Private key for an ssl: database (env MIRRORFLOW_SSL_KEY)' },
  'ssl-cert': { type: 'string', arg: 'FILE', description: 'Certificate for an ssl: database (env MIRRORFLOW_SSL_CERT)' },
  'ssl-ca': { type: 'string', arg: 'FILE', description: 'CA certificate the server must be signed by (env MIRRORFLOW_SSL_CA)' },
};

export function ovsdbConfigFrom(values: Values, env: NodeJS.ProcessEnv): OvsdbConnectConfig {
  const s = (k: string) => (values[k] === undefined ? undefined : String(values[k]));
  return resolveOvsdbConfig({ db: s('db'), sslKey: s('ssl-key'), sslCert: s('ssl-cert'), sslCa: s('ssl-ca') }, env);
}
