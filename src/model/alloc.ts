// Pure allocation logic: where the next free number in a range is, given the
// numbers already taken. The store feeds it sorted batches; it never does I/O.

/**
 * Scans `taken` (sorted ascending, all >= `from`) for the first number in
 * [from, hi] not in it. Returns the number, or null when `taken` covers
 * everything up to its last element and the caller must fetch more (when
 * `exhaustive` is true, `taken` is known to be complete and null means the
 * range [from, hi] is full).
 */
export function firstGap(from: bigint, hi: bigint, taken: readonly bigint[], exhaustive: boolean): bigint | null {
  let want = from;
  for (const t of taken) {
    if (t > hi) break;
    if (t > want) return want;
    if (t === want) want++;
  }
  if (want > hi) return null;
  return exhaustive ? want : null;
}
