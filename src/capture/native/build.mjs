#!/usr/bin/env node
// Builds the live-capture addon (binding.gyp next to this file) with node-gyp, offline: node-gyp is
// pointed at the headers installed with the running node (--nodedir), so it never downloads them.
// Run by npm's `install` script (`npm ci`) and by `npm run build:native`.
//
// Finds node-gyp as npm's lifecycle scripts do ($npm_config_node_gyp), else the copy bundled with
// the npm next to this node, else `node-gyp` on PATH. Exits non-zero with one clear line when the
// headers, node-gyp, a compiler or libpcap's headers are missing.
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function fail(message) {
  console.error(`build:native: ${message}`);
  process.exit(1);
}

/** The prefix holding include/node/node_api.h for the running node (e.g. /usr or ~/.nvm/versions/node/v20). */
function findNodeDir() {
  const candidates = [];
  if (process.env.MIRRORFLOW_NODEDIR) candidates.push(process.env.MIRRORFLOW_NODEDIR);
  const exe = realpathSync(process.execPath);
  candidates.push(path.resolve(path.dirname(exe), '..'));
  for (const dir of candidates) {
    if (existsSync(path.join(dir, 'include', 'node', 'node_api.h')) && existsSync(path.join(dir, 'include', 'node', 'common.gypi'))) return dir;
  }
  return fail(`node headers not found (looked in ${candidates.map((d) => path.join(d, 'include/node')).join(', ')}); install node's headers or set MIRRORFLOW_NODEDIR`);
}

/** [command, ...args] that runs node-gyp. */
function findNodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, fromNpm];
  const exeDir = path.dirname(realpathSync(process.execPath));
  const bundled = [
    path.resolve(exeDir, '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
    path.resolve(exeDir, '../node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
    '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
    '/usr/share/nodejs/node-gyp/bin/node-gyp.js',
  ];
  for (const file of bundled) if (existsSync(file)) return [process.execPath, file];
  const which = spawnSync('sh', ['-c', 'command -v node-gyp'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return [which.stdout.trim()];
  return fail('node-gyp not found (it ships with npm); run this through npm: npm run build:native');
}

if (!existsSync('/usr/include/pcap/pcap.h') && !existsSync('/usr/local/include/pcap/pcap.h')) {
  fail('libpcap headers not found (pcap/pcap.h); install libpcap-dev (scripts/setup.sh does)');
}

const nodedir = findNodeDir();
const [cmd, ...pre] = findNodeGyp();
const args = [...pre, 'rebuild', '--loglevel=warn', `--nodedir=${nodedir}`, '--directory', here];
if (process.env.MIRRORFLOW_NATIVE_DEBUG) args.push('--debug');
console.error(`build:native: ${[cmd, ...args].join(' ')}`);
const result = spawnSync(cmd, args, {
  stdio: 'inherit',
  // gyp evaluates require('node-addon-api') from the addon's directory: it resolves to the repo's node_modules.
  cwd: here,
  env: { ...process.env, npm_config_nodedir: nodedir },
});
if (result.error) fail(`cannot run node-gyp (${result.error.message})`);
if (result.status !== 0) fail(`node-gyp failed (exit=${result.status ?? result.signal}); see the compiler output above`);
const built = path.join(here, 'build', 'Release', 'mirrorflow_pcap.node');
if (!existsSync(built)) fail(`node-gyp succeeded but ${built} is missing`);
console.error(`build:native: built ${path.relative(process.cwd(), built) || built}`);
