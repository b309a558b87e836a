import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { commands } from '../../src/cli/commands.js';

const run = promisify(execFile);

/**
 * `npx mirrorflow` runs a compiled copy of src/ (plain Node ESM, not tsx): module semantics differ
 * (e.g. named imports from CommonJS packages), so every command is loaded the way users run it.
 */
describe('the mirrorflow executable (compiled sources)', function () {
  this.timeout(60_000);
  it('loads and shows --help for every command', async () => {
    const top = await run(process.execPath, ['src/cli/bin.js', '--help']);
    expect(top.stdout).to.contain('Usage: mirrorflow');
    for (const c of commands) {
      const r = await run(process.execPath, ['src/cli/bin.js', ...c.name.split(' '), '--help']);
      expect(r.stdout, c.name).to.contain(`Usage: mirrorflow ${c.name}`);
    }
  });
  it('exits 2 with one line for a usage error', async () => {
    try {
      await run(process.execPath, ['src/cli/bin.js', 'mirror', 'list', '--bogus']);
      expect.fail('should have failed');
    } catch (e) {
      const err = e as { code: number; stderr: string };
      expect(err.code).to.equal(2);
      expect(err.stderr.trim().split('\n')).to.have.length(1);
    }
  });
});
