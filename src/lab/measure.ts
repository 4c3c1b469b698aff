// What the lab's measured operations (check, move, faults, evacuation) share:
// polling a condition, timed from a start, and joining names for a report line.

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `cond` every 5 ms; the ms since `t0` when it held, or null after
 * `ms` or once `watch.stopped`. A throwing `cond` counts as not yet.
 */
export async function timeUntil(
  t0: number,
  cond: () => Promise<boolean>,
  ms: number,
  watch: { stopped: boolean } = { stopped: false },
): Promise<number | null> {
  for (;;) {
    if (await cond().catch(() => false)) return Math.round(performance.now() - t0);
    if (performance.now() - t0 > ms || watch.stopped) return null;
    await sleep(5);
  }
}

/** Names joined for a report line, `none` for no names. */
export const list = (xs: string[]) => xs.join(', ') || 'none';
