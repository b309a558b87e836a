import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The process logger: JSON lines on stderr (stdout stays for command output).
 * MIRRORFLOW_LOG_LEVEL sets the level (default: warn for CLI commands, info for daemons).
 */
export function createLogger(env: NodeJS.ProcessEnv, defaultLevel = 'warn'): Logger {
  return pino({ level: env.MIRRORFLOW_LOG_LEVEL ?? defaultLevel, base: { pid: process.pid } }, pino.destination(2));
}
