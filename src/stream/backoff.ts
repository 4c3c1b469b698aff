// The agent's reconnect schedule: exponential backoff with full jitter,
// capped, so a fleet of agents that lost the server together comes back
// spread over the window instead of in one burst.

/** The bounds of the schedule, in milliseconds. */
export interface Backoff {
  /** The window of the first retry after every replica failed. */
  baseMs: number;
  /** The widest window: retries never wait longer. */
  capMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 100, capMs: 5000 };

/**
 * How long to wait before retry number `attempt` (0 for the first): a
 * uniform draw from [0, min(cap, base * 2^attempt)) ("full jitter").
 * `random` returns [0, 1) as Math.random does. Pure; never throws for
 * attempt >= 0 (large attempts saturate at the cap).
 */
export function reconnectDelay(attempt: number, random: () => number = Math.random, b: Backoff = DEFAULT_BACKOFF): number {
  const window = Math.min(b.capMs, b.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * window);
}
