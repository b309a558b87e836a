import { expect } from 'chai';
import { main } from '../../../src/cli/main.js';

async function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l), env, signal: new AbortController().signal });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('cli/main', () => {
  it('lists commands for --help and exits 0', async () => {
    const r = await run(['--help']);
    expect(r.code).to.equal(0);
    expect(r.out).to.contain('mirror create').and.contain('inventory');
  });

  it('exits 2 with one line naming an unknown command', async () => {
    const r = await run(['frobnicate']);
    expect(r.code).to.equal(2);
    expect(r.err.split('\n')).to.have.length(1);
    expect(r.err).to.contain('command=frobnicate');
  });

  it('gives every command a --help', async () => {
    for (const argv of [['mirror', 'create'], ['mirror', 'list'], ['mirror', 'delete'], ['mirror', 'stats'], ['inventory'], ['decode'], ['replay'], ['capture'], ['version']]) {
      const r = await run([...argv, '--help']);
      expect(r.code, argv.join(' ')).to.equal(0);
      expect(r.out).to.match(new RegExp(`^Usage: mirrorflow ${argv.join(' ')}`));
    }
  });

  it('lists each command with the summary of its own module', async () => {
    const { commands } = await import('../../../src/cli/commands.js');
    for (const entry of commands) {
      const cmd = await entry.load();
      expect(cmd.name).to.equal(entry.name);
      expect(cmd.summary).to.equal(entry.summary);
    }
  });

  it('names a missing subcommand', async () => {
    const r = await run(['mirror']);
    expect(r.code).to.equal(2);
    expect(r.err).to.contain('create|list|delete|stats');
  });

  it('rejects an unknown option with exit 2 and no stack', async () => {
    const r = await run(['mirror', 'list', '--colour']);
    expect(r.code).to.equal(2);
    expect(r.err).to.equal('mirrorflow: mirror list: unknown option (option=--colour); see --help');
  });

  it('rejects a bad --db before connecting', async () => {
    const r = await run(['mirror', 'list', '--db', 'http://x']);
    expect(r.code).to.equal(2);
    expect(r.err).to.contain('db=http://x').and.contain('unix:PATH');
  });

  it('rejects an ssl: database without key, cert and CA', async () => {
    const r = await run(['inventory', '--db', 'ssl:127.0.0.1:6640']);
    expect(r.code).to.equal(2);
    expect(r.err).to.contain('--ssl-key, --ssl-cert, --ssl-ca');
  });

  describe('replay and capture flags', () => {
    it('names a missing or unreadable capture file', async () => {
      expect((await run(['replay'])).err).to.contain('missing --pcap');
      const r = await run(['replay', '--pcap', '/nonexistent/x.pcap']);
      expect(r.code).to.equal(2);
      expect(r.err).to.contain('file=/nonexistent/x.pcap');
    });
    it('rejects a bad window, format or flow bound, naming the value', async () => {
      const base = ['replay', '--pcap', 'package.json'];
      expect((await run([...base, '--window=-1'])).err).to.contain('window=-1');
      expect((await run([...base, '--format', 'xml'])).err).to.contain('format=xml');
      expect((await run([...base, '--max-flows', '0'])).err).to.contain('max-flows=0');
      expect((await run([...base, '--flows-out', '-', '--pairs-out', '-'])).code).to.equal(2);
    });
    it('reports a file that is no capture as a runtime failure in one line', async () => {
      const r = await run(['replay', '--pcap', 'package.json', '--pairs-out', '/dev/null']);
      expect(r.code).to.equal(1);
      expect(r.err.split('\n')).to.have.length(1);
      expect(r.err).to.contain('package.json');
    });
    it('needs --interface for capture and --db for --mirror', async () => {
      expect((await run(['capture'])).err).to.contain('missing --interface');
      expect((await run(['capture', '--interface', 'lo', '--mirror', 'm'])).err).to.contain('--mirror needs --db');
    });
  });

  describe('mirror create flags', () => {
    const base = ['mirror', 'create', '--bridge', 'br0', '--name', 'm1', '--db', 'unix:/nonexistent/db.sock'];
    it('needs exactly one selection', async () => {
      const r = await run([...base, '--output-internal']);
      expect(r.code).to.equal(2);
      expect(r.err).to.contain('exactly one of --select-all');
    });
    it('needs exactly one output', async () => {
      const r = await run([...base, '--select-all', '--output-vlan', '5', '--output-port', 'p1']);
      expect(r.code).to.equal(2);
      expect(r.err).to.contain('given=2');
    });
    it('rejects a VLAN out of range naming it', async () => {
      const r = await run([...base, '--select-vlan', '10', '4096', '--output-internal']);
      expect(r.code).to.equal(2);
      expect(r.err).to.contain('select-vlan=4096').and.contain('0..4095');
    });
    it('rejects an output VLAN 0', async () => {
      const r = await run([...base, '--select-all', '--output-vlan', '0']);
      expect(r.code).to.equal(2);
      expect(r.err).to.contain('output-vlan=0');
    });
    it('rejects a bad direction and snaplen', async () => {
      expect((await run([...base, '--select-all', '--output-internal', '--direction', 'up'])).err).to.contain('direction=up');
      expect((await run([...base, '--select-all', '--output-internal', '--snaplen', '9'])).err).to.contain('snaplen=9');
    });
    it('reports an unreachable database as a runtime failure (exit 1) in one line', async () => {
      const r = await run([...base, '--select-all', '--output-internal']);
      expect(r.code).to.equal(1);
      expect(r.err.split('\n')).to.have.length(1);
      expect(r.err).to.contain('unix:/nonexistent/db.sock');
    });
  });
});
