// What every use case gets: the store, a clock, settings, and the caller's
// scope (a tenant token sees only its tenant; everyone else sees all).
import { newId } from '../model/ids.js';
import { DEFAULT_PLACEMENT, type PlacementOptions } from '../model/placement.js';
import type { Store } from '../store/store.js';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export interface Settings {
  placement: PlacementOptions;
  /** First three octets of the MACs weft hands out (locally administered, unicast). */
  macPrefix: number;
}

export const DEFAULT_SETTINGS: Settings = {
  placement: DEFAULT_PLACEMENT,
  // 02:57:46 — locally administered, unicast; "WF".
  macPrefix: 0x025746,
};

export interface Ctx {
  store: Store;
  clock: Clock;
  settings: Settings;
}

/** Who is asking: `tenantId` set restricts every read and write to that tenant. */
export interface Scope {
  tenantId: string | null;
}

export const ALL: Scope = { tenantId: null };

export function createCtx(store: Store, opts: { clock?: Clock; settings?: Partial<Settings> } = {}): Ctx {
  return { store, clock: opts.clock ?? systemClock, settings: { ...DEFAULT_SETTINGS, ...opts.settings } };
}

export function stamp(ctx: Ctx): { id: string; createdAt: string } {
  const now = ctx.clock.now();
  return { id: newId(now.getTime()), createdAt: now.toISOString() };
}

/** Structural equality of two plain records (as the change log would store them). */
export function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
