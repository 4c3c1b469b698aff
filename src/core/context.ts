// What every use case gets: the store, a clock, settings, and the caller's
// scope (a tenant token sees only its tenant; everyone else sees all).
import type { ChangeActor } from '../model/changes.js';
import { invalid } from '../model/errors.js';
import { newId } from '../model/ids.js';
import { DEFAULT_PLACEMENT, type PlacementOptions } from '../model/placement.js';
import { DEFAULT_QUOTAS, QUOTA_KINDS, QUOTA_MAX, type Quotas } from '../model/quotas.js';
import { RATE_MAX } from '../model/validate.js';
import type { Store } from '../store/store.js';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export interface Settings {
  placement: PlacementOptions;
  /** First three octets of the MACs weft hands out (locally administered, unicast). */
  macPrefix: number;
  /**
   * The most a tenant token may set a network's per-port ARP and ND limits
   * to (packets/s); operators may set up to RATE_MAX. At least the agents'
   * default (20/s), which networks that set none get.
   */
  tenantRateMax: { arpRate: number; ndRate: number };
  /** The quotas of tenants that have none of their own (core/quotas.ts). */
  quotas: Quotas;
}

/** Ten times the agents' default rate (20/s): room for a busy subnet, far from a flood. */
export const DEFAULT_TENANT_RATE_MAX = { arpRate: 200, ndRate: 200 };

export const DEFAULT_SETTINGS: Settings = {
  placement: DEFAULT_PLACEMENT,
  // 02:57:46 — locally administered, unicast; "WF".
  macPrefix: 0x025746,
  tenantRateMax: DEFAULT_TENANT_RATE_MAX,
  quotas: DEFAULT_QUOTAS,
};

/** Refuses settings the use cases cannot work with, naming the setting, the value and the range. */
export function checkSettings(s: Settings): Settings {
  for (const k of ['arpRate', 'ndRate'] as const) {
    const v = s.tenantRateMax[k];
    if (!(Number.isInteger(v) && v >= 1 && v <= RATE_MAX)) throw invalid(`tenantRateMax.${k}`, v, `must be an integer 1..${RATE_MAX} (packets/s)`);
  }
  for (const k of QUOTA_KINDS) {
    const v = s.quotas[k];
    if (!(Number.isInteger(v) && v >= 0 && v <= QUOTA_MAX)) throw invalid(`quotas.${k}`, v, `must be an integer 0..${QUOTA_MAX}`);
  }
  return s;
}

export interface Ctx {
  store: Store;
  clock: Clock;
  settings: Settings;
  /**
   * Who is writing, recorded with every change appended under this ctx:
   * the API sets the request's token (actingAs); null for writes made
   * without one (a tool that opens the store itself, like `--db`).
   */
  actor: ChangeActor | null;
}

/** The same ctx, with its changes recorded as made by `actor`. */
export function actingAs(ctx: Ctx, actor: ChangeActor | null): Ctx {
  return { ...ctx, actor };
}

/** Who is asking: `tenantId` set restricts every read and write to that tenant. */
export interface Scope {
  tenantId: string | null;
}

export const ALL: Scope = { tenantId: null };

export function createCtx(store: Store, opts: { clock?: Clock; settings?: Partial<Settings> } = {}): Ctx {
  return { store, clock: opts.clock ?? systemClock, settings: checkSettings({ ...DEFAULT_SETTINGS, ...opts.settings }), actor: null };
}

export function stamp(ctx: Ctx): { id: string; createdAt: string } {
  const now = ctx.clock.now();
  return { id: newId(now.getTime()), createdAt: now.toISOString() };
}

/** Structural equality of two plain records (as the change log would store them). */
export function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
