/**
 * Starts a worker thread on a module beside the caller: `name` (without extension) next to
 * `base` (the caller's import.meta.url). From the compiled build the module is a .js file; from
 * the TypeScript sources (tests, the CLI's tsx fallback) the thread registers tsx's loader itself,
 * since Node 20 does not hand the main thread's loader hooks to workers.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

export function startModuleWorker(name: string, base: string, workerData: unknown): Worker {
  const ext = extname(fileURLToPath(base));
  const url = new URL(`./${name}${ext}`, base);
  if (ext !== '.ts') return new Worker(url, { workerData });
  const boot = `import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}
