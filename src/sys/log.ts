// The logger the agent's loops take: a message and its context. `weft agent`
// passes one that writes JSON lines; tests and quiet callers pass quietLog.

/** A structured logger; must not throw. */
export interface Log {
  info(msg: string, ctx?: Record<string, unknown>): void;
  warn(msg: string, ctx?: Record<string, unknown>): void;
}

/** Logs nothing. */
export const quietLog: Log = { info() {}, warn() {} };
