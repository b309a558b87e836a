import { expect } from 'chai';
import { main } from '../../src/cli/main.js';
import { startSandbox, type Sandbox } from '../helpers/ovs-sandbox.js';

async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l), env: {}, signal: new AbortController().signal });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('CLI over an ssl: database', function () {
  this.timeout(60_000);
  let sb: Sandbox;
  before(async () => {
    sb = await startSandbox({ ssl: true, vswitchd: false });
  });
  after(async () => {
    await sb?.stop();
  });

  it('lists mirrors over ssl with the right CA', async () => {
    const pki = sb.pki!;
    const r = await cli(['mirror', 'list', '--json', '--db', sb.sslUrl!, '--ssl-key', pki.clientKey, '--ssl-cert', pki.clientCert, '--ssl-ca', pki.caCert]);
    expect(r.code, r.err).to.equal(0);
    expect(JSON.parse(r.out)).to.deep.equal([]);
  });

  it('refuses a server not signed by the CA it trusts, in one line, exit 1', async () => {
    const pki = sb.pki!;
    const r = await cli(['inventory', '--db', sb.sslUrl!, '--ssl-key', pki.clientKey, '--ssl-cert', pki.clientCert, '--ssl-ca', pki.wrongCaCert]);
    expect(r.code).to.equal(1);
    expect(r.err.split('\n')).to.have.length(1);
    expect(r.err).to.contain(sb.sslUrl!).and.match(/not trusted|certificate/);
  });
});
