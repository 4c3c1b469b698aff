// Per-tenant quotas: what one tenant may hold of what every tenant draws
// from (hosts, the MAC and VNI ranges, the sites' public IPv4 pools), and
// the one rule that decides whether a write stays within them. Pure: the
// core counts the use inside the store's write transaction.
import type { Static } from '@sinclair/typebox';
import { WeftError } from './errors.js';
import type { QuotaCounts, TenantQuotas } from './schema.js';

/** What a quota limits, in the order the API and the CLI show them. */
export const QUOTA_KINDS = ['instances', 'ports', 'networks', 'publicIpv4', 'vips'] as const;
export type QuotaKind = (typeof QUOTA_KINDS)[number];

/** A count per kind: limits or use. */
export type Quotas = Static<typeof QuotaCounts>;

/** A tenant's own limits as stored: null takes the server's default. */
export type QuotaOverrides = Static<typeof TenantQuotas>;

/** The largest quota an operator may set (per kind). */
export const QUOTA_MAX = 1_000_000;

/** What each kind counts, for messages and docs. */
export const QUOTA_WHAT: Record<QuotaKind, string> = {
  instances: 'instances',
  ports: 'ports',
  networks: 'networks',
  publicIpv4: "public IPv4 addresses (routed ports' IPv4 and IPv4 VIPs)",
  vips: 'VIPs',
};

/** The server's defaults when no setting says otherwise: well below a /24 public pool for addresses. */
export const DEFAULT_QUOTAS: Quotas = { instances: 100, ports: 500, networks: 50, publicIpv4: 16, vips: 16 };

export const NO_OVERRIDES: QuotaOverrides = { instances: null, ports: null, networks: null, publicIpv4: null, vips: null };

/** The limits that apply: the tenant's own where it has one, else the default. */
export function limitsOf(defaults: Quotas, own: QuotaOverrides): Quotas {
  const out = { ...defaults };
  for (const k of QUOTA_KINDS) {
    const v = own[k];
    if (v !== null) out[k] = v;
  }
  return out;
}

/**
 * The E_QUOTA for the first kind a write grows past its limit, or null. A
 * kind that did not grow passes even above its limit (an operator lowered
 * it, or created past it): the tenant keeps what it has, and may free it.
 */
export function overQuota(tenant: string, limits: Quotas, before: Partial<Quotas>, after: Partial<Quotas>): WeftError | null {
  for (const k of QUOTA_KINDS) {
    const b = before[k];
    const a = after[k];
    if (a === undefined || b === undefined) continue;
    if (a > b && a > limits[k]) return quotaError(tenant, k, limits[k], b, a - b);
  }
  return null;
}

export function quotaError(tenant: string, kind: QuotaKind, limit: number, used: number, more: number): WeftError {
  return new WeftError(
    'E_QUOTA',
    `quota ${kind} exceeded: tenant ${tenant} may hold ${limit} ${QUOTA_WHAT[kind]}, holds ${used}, and this request needs ${more} more`,
    `quotas.${kind}`,
  );
}
