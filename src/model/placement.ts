// Placement: which host an instance goes to, from each candidate host's
// capacity and what its instances already use. Pure; the caller holds the
// write lock so that the usage it passes in cannot change underneath.
import type { HostState, PlacementPolicy, Resources } from './types.js';

export interface Candidate {
  hostId: string;
  name: string;
  state: HostState;
  capacity: Resources;
  used: Resources;
}

export interface PlacementOptions {
  policy: PlacementPolicy;
  /** CPU overcommit ratio (vCPUs per physical CPU); memory and disk are never overcommitted. */
  cpuOvercommit: number;
}

export const DEFAULT_PLACEMENT: PlacementOptions = { policy: 'spread', cpuOvercommit: 1 };

export function free(c: Candidate, o: PlacementOptions): Resources {
  return {
    cpus: Math.floor(c.capacity.cpus * o.cpuOvercommit) - c.used.cpus,
    memoryMb: c.capacity.memoryMb - c.used.memoryMb,
    diskGb: c.capacity.diskGb - c.used.diskGb,
  };
}

export function fits(c: Candidate, want: Resources, o: PlacementOptions): boolean {
  const f = free(c, o);
  return f.cpus >= want.cpus && f.memoryMb >= want.memoryMb && f.diskGb >= want.diskGb;
}

/**
 * The smallest share left free, over cpus, memory and disk, after placing
 * `want`: the dimension that runs out first decides.
 */
function headroom(c: Candidate, want: Resources, o: PlacementOptions): number {
  const f = free(c, o);
  const cap = { cpus: Math.floor(c.capacity.cpus * o.cpuOvercommit), memoryMb: c.capacity.memoryMb, diskGb: c.capacity.diskGb };
  const share = (left: number, total: number) => (total > 0 ? left / total : 0);
  return Math.min(share(f.cpus - want.cpus, cap.cpus), share(f.memoryMb - want.memoryMb, cap.memoryMb), share(f.diskGb - want.diskGb, cap.diskGb));
}

/**
 * Picks a host: only active hosts that fit; `spread` takes the one left with
 * the most headroom, `pack` the one left with the least. Ties go to the
 * host name, so the choice is deterministic. Returns null when none fits.
 */
export function place(cands: readonly Candidate[], want: Resources, o: PlacementOptions): Candidate | null {
  let best: Candidate | null = null;
  let bestScore = 0;
  for (const c of cands) {
    if (c.state !== 'active' || !fits(c, want, o)) continue;
    const h = headroom(c, want, o);
    const score = o.policy === 'spread' ? h : -h;
    if (best === null || score > bestScore || (score === bestScore && c.name < best.name)) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

export const SIZES: Record<string, Resources> = {
  nano: { cpus: 1, memoryMb: 512, diskGb: 10 },
  small: { cpus: 1, memoryMb: 2048, diskGb: 20 },
  medium: { cpus: 2, memoryMb: 4096, diskGb: 40 },
  large: { cpus: 4, memoryMb: 8192, diskGb: 80 },
  xlarge: { cpus: 8, memoryMb: 16384, diskGb: 160 },
};
