import { existsSync } from 'node:fs';
import { ConfigError, UsageError } from '../errors.js';

export const DEFAULT_DB_URL = 'unix:/var/run/openvswitch/db.sock';

export interface OvsdbConnectConfig {
  url: string;
  ssl?: { privateKeyFile: string; certificateFile: string; caCertFile: string };
}

const URL_FORMS = 'unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT';

/** Checks the form of one remote; returns it unchanged or throws naming the value. */
export function checkDbUrl(url: string, flag = 'db'): string {
  for (const remote of url.split(',')) {
    const m = /^(unix|tcp|ssl):(.+)$/.exec(remote.trim());
    if (!m) throw new UsageError(`invalid --${flag}, expected ${URL_FORMS} (${flag}=${url})`);
    if (m[1] !== 'unix') {
      const hp = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d+)$/.exec(m[2]!);
      const port = hp ? Number(hp[2]) : NaN;
      if (!hp || port < 1 || port > 65535) throw new UsageError(`invalid --${flag}, expected ${URL_FORMS} with a port 1..65535 (${flag}=${url})`);
    }
  }
  return url;
}

/**
 * Resolves where the OVSDB server is: --db, else MIRRORFLOW_DB, else the system socket.
 * ssl: remotes need a private key, certificate and CA certificate (flags or MIRRORFLOW_SSL_*).
 */
export function resolveOvsdbConfig(
  flags: { db?: string; sslKey?: string; sslCert?: string; sslCa?: string },
  env: NodeJS.ProcessEnv,
): OvsdbConnectConfig {
  const url = checkDbUrl(flags.db ?? env.MIRRORFLOW_DB ?? DEFAULT_DB_URL, flags.db ? 'db' : env.MIRRORFLOW_DB ? 'MIRRORFLOW_DB' : 'db');
  const key = flags.sslKey ?? env.MIRRORFLOW_SSL_KEY;
  const cert = flags.sslCert ?? env.MIRRORFLOW_SSL_CERT;
  const ca = flags.sslCa ?? env.MIRRORFLOW_SSL_CA;
  if (!url.split(',').some((r) => r.trim().startsWith('ssl:'))) return { url };
  const missing = [['ssl-key', key], ['ssl-cert', cert], ['ssl-ca', ca]].filter(([, v]) => !v).map(([n]) => `--${n}`);
  if (missing.length) throw new UsageError(`an ssl: database needs ${missing.join(', ')} (db=${url})`);
  for (const [name, file] of [['ssl-key', key], ['ssl-cert', cert], ['ssl-ca', ca]] as const) {
    if (!existsSync(file!)) throw new ConfigError(`file not found for --${name} (${name}=${file})`);
  }
  return { url, ssl: { privateKeyFile: key!, certificateFile: cert!, caCertFile: ca! } };
}
