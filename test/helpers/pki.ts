// A throwaway PKI for SSL tests (made with openssl): a CA, a server and a client certificate signed
// by it, and an unrelated "wrong" CA with a client certificate of its own.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runFile } from './exec.js';

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  /** CN 127.0.0.1, SAN IP:127.0.0.1 and DNS:localhost. */
  serverCert: string;
  serverKey: string;
  /** CN mirrorflow-test-client, signed by the CA. */
  clientCert: string;
  clientKey: string;
  /** A CA that signed neither the server nor the client certificate. */
  wrongCaCert: string;
  wrongCaKey: string;
  /** A client certificate signed by the wrong CA (the server must reject it). */
  wrongClientCert: string;
  wrongClientKey: string;
}

const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const DAYS = '3650';

async function openssl(args: string[]): Promise<void> {
  await runFile('openssl', args, { timeoutMs: 30_000 });
}

async function makeCa(dir: string, base: string, cn: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${base}.crt`);
  const key = join(dir, `${base}.key`);
  await openssl([
    'req', '-x509', ...KEY_ARGS, '-keyout', key, '-out', cert, '-days', DAYS, '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { cert, key };
}

async function makeLeaf(
  dir: string,
  base: string,
  cn: string,
  ca: { cert: string; key: string },
  extensions: string,
): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${base}.crt`);
  const key = join(dir, `${base}.key`);
  const csr = join(dir, `${base}.csr`);
  const ext = join(dir, `${base}.ext`);
  await writeFile(ext, extensions);
  await openssl(['req', '-new', ...KEY_ARGS, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  await openssl([
    'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-CAserial', join(dir, `${base}.srl`),
    '-out', cert, '-days', DAYS, '-extfile', ext,
  ]);
  return { cert, key };
}

/** Creates the PKI files in `dir` (created if missing) and returns their paths. */
export async function makePki(dir: string): Promise<Pki> {
  await mkdir(dir, { recursive: true });
  const ca = await makeCa(dir, 'ca', 'mirrorflow-test-ca');
  const wrongCa = await makeCa(dir, 'wrong-ca', 'mirrorflow-wrong-ca');
  const leafExt = (usage: string, san?: string): string =>
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${usage}`,
      ...(san ? [`subjectAltName=${san}`] : []),
      '',
    ].join('\n');
  const server = await makeLeaf(dir, 'server', '127.0.0.1', ca, leafExt('serverAuth,clientAuth', 'IP:127.0.0.1,DNS:localhost'));
  const client = await makeLeaf(dir, 'client', 'mirrorflow-test-client', ca, leafExt('clientAuth,serverAuth'));
  const wrongClient = await makeLeaf(dir, 'wrong-client', 'mirrorflow-wrong-client', wrongCa, leafExt('clientAuth,serverAuth'));
  return {
    dir,
    caCert: ca.cert,
    caKey: ca.key,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    wrongCaCert: wrongCa.cert,
    wrongCaKey: wrongCa.key,
    wrongClientCert: wrongClient.cert,
    wrongClientKey: wrongClient.key,
  };
}
