// Keeps a compiled copy of src/ (plain JavaScript, same layout, in .build/ beside src/) for the
// CLI: TypeScript through a loader costs startup time on every command. The copy is rebuilt with
// esbuild whenever a source is newer than it (a few hundred ms, once); when that cannot be done,
// the CLI runs the TypeScript sources through tsx instead.
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

function fingerprint(files) {
  let newest = 0;
  for (const f of files) newest = Math.max(newest, statSync(f).mtimeMs);
  return `${files.length}:${newest}`;
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
        entryPoints: files,
        outdir: tmp,
        outbase: srcDir,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        sourcemap: 'inline',
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
