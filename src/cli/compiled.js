// Keeps a compiled copy of src/ (plain JavaScript in .build/ beside src/) for the CLI: TypeScript
// through a loader costs startup time on every command, and so do many small modules. The copy is
// a bundle split by esbuild: the CLI's main module and each thread module (*-thread.ts, see
// worker-boot.ts) at their places (.build/cli/main.js, .build/pipeline/partition-thread.js, …),
// and the modules they load in shared chunks (.build/chunks/), each command's loaded only when it
// runs. Entries and chunks sit one directory below .build/, as every source sits one below src/,
// so paths relative to a module (import.meta.url: ../../proto/, ../../package.json) hold in both.
// The copy is rebuilt whenever a source is newer than it (a few hundred ms, once); when that
// cannot be done, the CLI runs the TypeScript sources through tsx instead.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const srcDir = join(root, 'src');
const outDir = join(root, '.build');
const stampFile = join(outDir, '.stamp.json');

function sources(dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'build' && e.name !== 'node_modules') sources(p, out);
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** How the copy is built (bump it when the build options change: a copy of another kind is rebuilt). */
const BUILD_KIND = 'bundle-split-1';

function fingerprint(files) {
  let newest = 0;
  for (const f of files) newest = Math.max(newest, statSync(f).mtimeMs);
  return `${BUILD_KIND}:${files.length}:${newest}`;
}

/** Returns the path of the compiled main module, or undefined when only tsx can run the CLI. */
export async function compiledMain() {
  if (process.env.MIRRORFLOW_NO_COMPILE) return undefined;
  try {
    const files = sources(srcDir);
    const want = fingerprint(files);
    let have;
    try {
      have = JSON.parse(readFileSync(stampFile, 'utf8')).fingerprint;
    } catch {
      have = undefined;
    }
    if (have !== want) {
      const esbuild = await import('esbuild');
      const tmp = `${outDir}.tmp-${process.pid}`;
      rmSync(tmp, { recursive: true, force: true });
      await esbuild.build({
        entryPoints: [join(srcDir, 'cli', 'main.ts'), ...files.filter((f) => f.endsWith('-thread.ts'))],
        bundle: true,
        splitting: true,
        packages: 'external',
        outdir: tmp,
        outbase: srcDir,
        entryNames: '[dir]/[name]',
        chunkNames: 'chunks/[name]-[hash]',
        format: 'esm',
        platform: 'node',
        target: 'node20',
        sourcemap: 'linked',
        sourcesContent: false,
        logLevel: 'silent',
      });
      writeFileSync(join(tmp, '.stamp.json'), JSON.stringify({ fingerprint: want, sources: relative(root, srcDir) }));
      mkdirSync(outDir, { recursive: true });
      const old = `${outDir}.old-${process.pid}`;
      renameSync(outDir, old);
      renameSync(tmp, outDir);
      rmSync(old, { recursive: true, force: true });
    }
    return join(outDir, 'cli', 'main.js');
  } catch {
    return undefined;
  }
}
