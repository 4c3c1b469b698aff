// The logger the agent's loops take: a message and its context. `weft agent`
// passes one that writes pino's JSON lines (the server's format); tests and
// quiet callers pass quietLog.
import { type DestinationStream, pino } from 'pino';

/** A structured logger; must not throw. */
export interface Log {
  info(msg: string, ctx?: Record<string, unknown>): void;
  warn(msg: string, ctx?: Record<string, unknown>): void;
}

/** Logs nothing. */
export const quietLog: Log = { info() {}, warn() {} };

/** The levels `--log-level` takes, on the server and the agent alike. */
export const LOG_LEVELS = ['silent', 'error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * A Log writing JSON lines through pino at `level`, in the format of the
 * server's API logs (numeric level, time, pid, hostname, msg, the context's
 * fields); to stdout unless given a destination.
 */
export function pinoLog(level: LogLevel, destination?: DestinationStream): Log {
  const p = destination ? pino({ level }, destination) : pino({ level });
  return {
    info: (msg, ctx) => p.info(ctx ?? {}, msg),
    warn: (msg, ctx) => p.warn(ctx ?? {}, msg),
  };
}
