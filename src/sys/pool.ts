// Runs async jobs with a bounded number in flight (the lab's pings, the
// benchmarks' API clients): results in the order of the jobs.

/** Runs `jobs` with at most `n` in flight; resolves with their results in order, rejects on the first failure. */
export async function pool<T>(n: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, jobs.length) }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await (jobs[i] as () => Promise<T>)();
      }
    }),
  );
  return out;
}
