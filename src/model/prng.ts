// A small seeded pseudo-random generator (mulberry32), dependency-free: the
// lab's layout draws from it, and the API fuzzer seeds it so a failure reproduces.

/**
 * A generator of floats in [0, 1) from a 32-bit seed: the same seed gives
 * the same sequence on every machine and Node version. Not for secrets.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
