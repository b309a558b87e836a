import { expect } from 'chai';
import { checkDbUrl, resolveOvsdbConfig, DEFAULT_DB_URL } from '../../../src/config/ovsdb-config.js';

describe('config/ovsdb-config', () => {
  it('accepts the three remote forms, IPv6 in brackets, and lists', () => {
    for (const u of ['unix:/run/db.sock', 'tcp:127.0.0.1:6640', 'ssl:[::1]:6640', 'tcp:a:1,tcp:b:2']) expect(checkDbUrl(u)).to.equal(u);
  });
  it('rejects other forms naming the value', () => {
    for (const u of ['db.sock', 'tcp:127.0.0.1', 'tcp:host:0', 'tcp:host:70000', 'http://x']) expect(() => checkDbUrl(u)).to.throw(`db=${u}`);
  });
  it('prefers the flag, then MIRRORFLOW_DB, then the system socket', () => {
    expect(resolveOvsdbConfig({ db: 'tcp:h:1' }, { MIRRORFLOW_DB: 'tcp:e:2' }).url).to.equal('tcp:h:1');
    expect(resolveOvsdbConfig({}, { MIRRORFLOW_DB: 'tcp:e:2' }).url).to.equal('tcp:e:2');
    expect(resolveOvsdbConfig({}, {}).url).to.equal(DEFAULT_DB_URL);
  });
  it('names a bad MIRRORFLOW_DB as such', () => {
    expect(() => resolveOvsdbConfig({}, { MIRRORFLOW_DB: 'nope' })).to.throw('MIRRORFLOW_DB=nope');
  });
  it('names a missing ssl file', () => {
    expect(() => resolveOvsdbConfig({ db: 'ssl:h:1', sslKey: '/no/key', sslCert: '/no/cert', sslCa: '/no/ca' }, {})).to.throw('ssl-key=/no/key');
  });
});
