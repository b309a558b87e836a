import { expect } from 'chai';
import { parseCommandArgs, type Command } from '../../../src/cli/command.js';

const cmd: Command = {
  name: 'x',
  summary: '',
  usage: 'x',
  options: {
    port: { type: 'string', multiple: true, description: '' },
    out: { type: 'string', optionalValue: true, description: '' },
    flag: { type: 'boolean', description: '' },
    level: { type: 'string', description: '', default: 'both' },
  },
  run: async () => 0,
};

describe('cli/command parseCommandArgs', () => {
  it('takes several values after one repeatable flag', () => {
    const { values } = parseCommandArgs(cmd, ['--port', 'a', 'b', '--flag', '--port', 'c']);
    expect(values.port).to.deep.equal(['a', 'b', 'c']);
    expect(values.flag).to.equal(true);
  });
  it('lets an optional value be left out or given', () => {
    expect(parseCommandArgs(cmd, ['--out']).values.out).to.equal('');
    expect(parseCommandArgs(cmd, ['--out', '--flag']).values.out).to.equal('');
    expect(parseCommandArgs(cmd, ['--out', 'p0']).values.out).to.equal('p0');
  });
  it('takes a negative number after a flag as its value (its own check then names it), not as a flag', () => {
    expect(parseCommandArgs(cmd, ['--level', '-3']).values.level).to.equal('-3');
    expect(parseCommandArgs(cmd, ['--port', '-1', '--flag']).values).to.deep.include({ port: ['-1'], flag: true });
    expect(() => parseCommandArgs(cmd, ['--flag', '-3'])).to.throw(/x: /);
  });
  it('fills defaults', () => {
    expect(parseCommandArgs(cmd, []).values.level).to.equal('both');
  });
  it('rejects a positional argument, naming it', () => {
    expect(() => parseCommandArgs(cmd, ['--flag', 'stray'])).to.throw(/argument=stray/);
  });
  it('rejects a missing value, naming the flag', () => {
    expect(() => parseCommandArgs(cmd, ['--level'])).to.throw(/option=--level/);
  });
});
