// Per-tenant quotas: the limits that apply to a tenant, what it holds, and
// the check every tenant-scoped create runs inside its store write
// transaction (which holds the cloud-wide write lock, so two concurrent
// creates at the limit cannot both pass).
import { limitsOf, overQuota, type QuotaKind, type QuotaOverrides, type Quotas, quotaError } from '../model/quotas.js';
import type { Repo } from '../store/repo.js';
import type { TenantRow } from '../store/schema.js';
import type { Ctx, Scope } from './context.js';

export function overridesOf(t: TenantRow): QuotaOverrides {
  return { instances: t.quotaInstances, ports: t.quotaPorts, networks: t.quotaNetworks, publicIpv4: t.quotaPublicIpv4, vips: t.quotaVips };
}

export function limitsOfTenant(ctx: Ctx, t: TenantRow): Quotas {
  return limitsOf(ctx.settings.quotas, overridesOf(t));
}

/**
 * Starts the quota check of a write that `scope` makes in tenant `t`, for
 * the kinds in `need` (each with the least the write will take). Throws
 * E_QUOTA at once when that least does not fit; returns the check to await
 * after the write, in the same transaction, which throws E_QUOTA if the
 * write grew a kind past its limit (the store then keeps nothing of it).
 * Operators (a scope without a tenant) are not bound: both are no-ops, and
 * what they create counts toward the tenant's use all the same.
 */
export async function beginQuota(ctx: Ctx, tx: Repo, scope: Scope, t: TenantRow, need: Partial<Quotas>): Promise<() => Promise<void>> {
  if (scope.tenantId === null) return async () => {};
  const kinds = Object.keys(need) as QuotaKind[];
  const limits = limitsOfTenant(ctx, t);
  const before = await tx.tenantUsage(t.id, kinds);
  for (const k of kinds) {
    const used = before[k] as number;
    const more = need[k] as number;
    if (more > 0 && used + more > limits[k]) throw quotaError(t.name, k, limits[k], used, more);
  }
  return async () => {
    const e = overQuota(t.name, limits, before, await tx.tenantUsage(t.id, kinds));
    if (e) throw e;
  };
}
