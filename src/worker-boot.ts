/**
 * Starts a worker thread on one of mirrorflow's modules: `module` is its path below the source
 * root without extension (e.g. 'pipeline/partition-thread'), `base` the caller's import.meta.url.
 * Every module of mirrorflow sits one directory below its root — src/<dir>/ in the sources, and
 * .build/<dir>/ or .build/chunks/ in the compiled CLI (src/cli/compiled.js) — so '../' from the
 * caller is the root in both. A thread's module must be named *-thread (compiled.js makes those
 * entry points of their own). From the compiled build the module is a .js file; from the
 * TypeScript sources (tests, the CLI's tsx fallback) the thread registers tsx's loader itself,
 * since Node 20 does not hand the main thread's loader hooks to workers.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

export function startModuleWorker(module: string, base: string, workerData: unknown): Worker {
  if (!module.endsWith('-thread')) throw new TypeError(`worker-boot: a thread's module must be named *-thread (module=${module})`);
  const ext = extname(fileURLToPath(base));
  const url = new URL(`../${module}${ext}`, base);
  if (ext !== '.ts') return new Worker(url, { workerData });
  const boot = `import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}
