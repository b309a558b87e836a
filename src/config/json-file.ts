import { readFile } from 'node:fs/promises';
import { ConfigError, kv } from '../errors.js';

/**
 * A JSON config file whose top level is an object. A missing file, bad JSON or another top
 * level: one ConfigError naming the file.
 */
export async function readJsonObjectFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`config: cannot read file${kv({ file: path, reason: (e as NodeJS.ErrnoException).code ?? (e as Error).message })}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config: not JSON${kv({ file: path, reason: (e as Error).message })}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`config: expected a JSON object${kv({ file: path })}`);
  return parsed as Record<string, unknown>;
}
