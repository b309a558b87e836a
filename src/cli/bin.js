#!/usr/bin/env node
// Entry point of `npx mirrorflow`: runs the compiled copy of the sources when it is current
// (see compiled.js), else the TypeScript sources through tsx's loader.
import { pathToFileURL } from 'node:url';
import { compiledMain } from './compiled.js';

const compiled = await compiledMain();
let main;
if (compiled) {
  ({ main } = await import(pathToFileURL(compiled).href));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('./main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
