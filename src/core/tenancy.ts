// Use cases for tenants and their networks: overlay networks (a VNI, their
// own subnets) and routed networks (public addresses from a site's pools).
import type { Static } from '@sinclair/typebox';
import { cidrsOverlap, parseCidr, usableRange } from '../model/addr.js';
import { conflict, invalid, WeftError } from '../model/errors.js';
import type * as I from '../model/inputs.js';
import { QUOTA_KINDS, QUOTA_MAX, type Quotas } from '../model/quotas.js';
import { checkTenantPrefix } from '../model/tenant-addr.js';
import { NETWORK_KINDS, type Network, type Tenant } from '../model/types.js';
import * as v from '../model/validate.js';
import { networkInfo } from '../store/records.js';
import type { Repo } from '../store/repo.js';
import type { NetworkRow, TenantRow } from '../store/schema.js';
import { type Ctx, type Scope, same, stamp } from './context.js';
import { pools } from './infra.js';
import { logInstance } from './profiles.js';
import { beginQuota, limitsOfTenant } from './quotas.js';
import * as ref from './resolve.js';
import { removeTokens } from './tokens.js';
import { networkView, tenantView } from './views.js';

export async function createTenant(ctx: Ctx, input: Static<typeof I.TenantCreate>): Promise<Tenant> {
  v.name('name', input.name);
  return ctx.store.write(async (tx) => {
    if (await tx.findOne('tenants', { name: input.name })) throw conflict(`tenant ${JSON.stringify(input.name)} already exists`, 'name');
    const row: TenantRow = {
      ...stamp(ctx),
      name: input.name,
      quotaInstances: null,
      quotaPorts: null,
      quotaNetworks: null,
      quotaPublicIpv4: null,
      quotaVips: null,
    };
    await tx.insert('tenants', row);
    return tenantView(row);
  });
}

/** A tenant with the limits that apply to it and what it holds now. */
export type TenantWithUsage = Tenant & { limits: Quotas; usage: Quotas };

async function withUsage(ctx: Ctx, tx: Repo, t: TenantRow): Promise<TenantWithUsage> {
  return { ...tenantView(t), limits: limitsOfTenant(ctx, t), usage: (await tx.tenantUsage(t.id, QUOTA_KINDS)) as Quotas };
}

export async function getTenant(ctx: Ctx, scope: Scope, tenantRef: string): Promise<TenantWithUsage> {
  return ctx.store.read(async (tx) => withUsage(ctx, tx, await ref.tenant(tx, tenantRef, scope)));
}

const QUOTA_COLUMN = {
  instances: 'quotaInstances',
  ports: 'quotaPorts',
  networks: 'quotaNetworks',
  publicIpv4: 'quotaPublicIpv4',
  vips: 'quotaVips',
} as const satisfies Record<keyof Quotas, keyof TenantRow>;

/**
 * Sets a tenant's own quotas (operators only: the API refuses other roles).
 * Each given kind is a limit 0..QUOTA_MAX, or null for the server's default;
 * a limit below what the tenant holds keeps what it has and refuses more.
 */
export async function updateTenant(ctx: Ctx, tenantRef: string, patch: Static<typeof I.TenantPatch>): Promise<TenantWithUsage> {
  const set: Partial<TenantRow> = {};
  for (const k of QUOTA_KINDS) {
    const q = patch.quotas?.[k];
    if (q === undefined) continue;
    set[QUOTA_COLUMN[k]] = q === null ? null : v.int(`quotas.${k}`, q, 0, QUOTA_MAX);
  }
  return ctx.store.write(async (tx) => {
    const t = await ref.tenant(tx, tenantRef, { tenantId: null });
    await tx.update('tenants', t.id, set);
    return withUsage(ctx, tx, { ...t, ...set });
  });
}

export async function deleteTenant(ctx: Ctx, tenantRef: string): Promise<void> {
  await ctx.store.write(async (tx) => {
    const t = await ref.tenant(tx, tenantRef, { tenantId: null });
    for (const [table, what] of [
      ['instances', 'instances'],
      ['vips', 'VIPs'],
      ['networks', 'networks'],
    ] as const) {
      const n = await tx.count(table, { tenantId: t.id });
      if (n > 0) throw conflict(`tenant ${t.name} still has ${n} ${what}; delete them first`);
    }
    await removeTokens(tx, { tenantId: t.id }, ctx.clock.now().toISOString(), ctx.actor);
    // Its SSH keys go with it: they are credentials of the tenant, not resources it holds.
    await tx.remove('sshKeys', { tenantId: t.id });
    await tx.remove('tenants', { id: t.id });
  });
}

export type NetworkInput = Static<typeof I.NetworkCreate>;

export const DEFAULT_MTU = 1500;

/**
 * A network's per-port rate limit as `scope` may set it: operators up to
 * RATE_MAX, tenants up to the server's maximum for them, so a tenant cannot
 * lift the ARP/ND guard that protects the hosts and its neighbours.
 */
function rate(ctx: Ctx, scope: Scope, field: 'arpRate' | 'ndRate', value: number): number {
  v.int(field, value, 1, v.RATE_MAX);
  const max = ctx.settings.tenantRateMax[field];
  if (scope.tenantId !== null && value > max)
    throw invalid(field, value, `must be 1..${max} packets/s for a tenant (the server's maximum); only operators may set more`);
  return value;
}

function checkSubnets(subnets: string[]) {
  const cs = subnets.map((s, i) => {
    const c = parseCidr(`subnets[${i}]`, s);
    checkTenantPrefix(`subnets[${i}]`, c, s);
    const { lo, hi } = usableRange(c);
    if (hi < lo) throw invalid(`subnets[${i}]`, s, 'has no usable addresses');
    return c;
  });
  for (let i = 0; i < cs.length; i++)
    for (let j = i + 1; j < cs.length; j++)
      if (cidrsOverlap(cs[i]!, cs[j]!))
        throw invalid(`subnets[${j}]`, subnets[j], `overlaps subnets[${i}] ${cs[i]!.text}; subnets of one network must not overlap`);
  return cs.map((c) => c.text);
}

export async function createNetwork(ctx: Ctx, scope: Scope, input: NetworkInput): Promise<Network> {
  v.name('name', input.name);
  const kind = v.oneOf('kind', input.kind, NETWORK_KINDS);
  const mtu = input.mtu === undefined ? DEFAULT_MTU : v.int('mtu', input.mtu, v.MTU_MIN, v.MTU_MAX);
  const arpRate = input.arpRate == null ? null : rate(ctx, scope, 'arpRate', input.arpRate);
  const ndRate = input.ndRate == null ? null : rate(ctx, scope, 'ndRate', input.ndRate);
  let subnets: string[] = [];
  if (kind === 'overlay') {
    if (input.site !== undefined) throw invalid('site', input.site, 'only routed networks belong to a site; overlay networks span sites');
    if (!input.subnets || input.subnets.length === 0) throw invalid('subnets', input.subnets, 'an overlay network needs at least one IPv4 or IPv6 subnet');
    subnets = checkSubnets(input.subnets);
    if (input.vni !== undefined) {
      v.int('vni', input.vni, v.VNI_MIN, v.VNI_MAX);
      if (scope.tenantId !== null) throw new WeftError('E_FORBIDDEN', 'only operators choose VNIs; omit vni to have one allocated', 'vni');
    }
  } else {
    if (input.vni !== undefined) throw invalid('vni', input.vni, 'routed networks have no VNI');
    if (input.subnets !== undefined && input.subnets.length > 0)
      throw invalid('subnets', input.subnets, "routed networks take their addresses from the site's pools; omit subnets");
    if (input.site === undefined) throw invalid('site', undefined, 'required for a routed network');
  }
  const tenantRef = scope.tenantId ?? input.tenant;
  if (tenantRef === undefined) throw invalid('tenant', undefined, 'required');
  return ctx.store.write(async (tx) => {
    const t = await ref.tenant(tx, tenantRef, scope);
    if (await tx.findOne('networks', { tenantId: t.id, name: input.name }))
      throw conflict(`network ${JSON.stringify(input.name)} already exists in tenant ${t.name}`, 'name');
    const quota = await beginQuota(ctx, tx, scope, t, { networks: 1 });
    const siteId = input.site === undefined ? null : (await ref.site(tx, input.site)).id;
    const { id, createdAt } = stamp(ctx);
    let vni: number | null = null;
    if (kind === 'overlay') {
      if (input.vni !== undefined) {
        await tx.claim(pools.vni, BigInt(input.vni), id, `vni ${input.vni}`, 'vni');
        vni = input.vni;
      } else {
        vni = Number(await tx.allocate(pools.vni, BigInt(v.VNI_AUTO_MIN), BigInt(v.VNI_MAX), id, 'VNI range'));
      }
    }
    const row: NetworkRow = {
      id,
      createdAt,
      tenantId: t.id,
      name: input.name,
      kind,
      vni,
      subnets: JSON.stringify(subnets),
      siteId,
      mtu,
      arpRate,
      ndRate,
    };
    await tx.insert('networks', row);
    await quota();
    await tx.appendChange({ kind: 'network.created', network: networkInfo(row) }, createdAt, ctx.actor);
    return networkView(row);
  });
}

export type NetworkPatch = Static<typeof I.NetworkPatch>;

export async function updateNetwork(ctx: Ctx, scope: Scope, netRef: string, patch: NetworkPatch): Promise<Network> {
  if (patch.name !== undefined) v.name('name', patch.name);
  if (patch.mtu !== undefined) v.int('mtu', patch.mtu, v.MTU_MIN, v.MTU_MAX);
  if (patch.arpRate != null) rate(ctx, scope, 'arpRate', patch.arpRate);
  if (patch.ndRate != null) rate(ctx, scope, 'ndRate', patch.ndRate);
  return ctx.store.write(async (tx) => {
    const n = await ref.owned(tx, 'networks', netRef, scope);
    if (patch.name !== undefined && patch.name !== n.name && (await tx.findOne('networks', { tenantId: n.tenantId, name: patch.name })))
      throw conflict(`network ${JSON.stringify(patch.name)} already exists in this tenant`, 'name');
    const after: NetworkRow = { ...n };
    if (patch.name !== undefined) after.name = patch.name;
    if (patch.mtu !== undefined) after.mtu = patch.mtu;
    if (patch.arpRate !== undefined) after.arpRate = patch.arpRate;
    if (patch.ndRate !== undefined) after.ndRate = patch.ndRate;
    const { id: _i, createdAt: _c, ...changed } = after;
    await tx.update('networks', n.id, changed);
    const at = ctx.clock.now().toISOString();
    if (!same(networkInfo(after), networkInfo(n))) await tx.appendChange({ kind: 'network.updated', network: networkInfo(after) }, at, ctx.actor);
    // Its name and MTU are in the profiles of the instances with a port on it.
    if (after.name !== n.name || after.mtu !== n.mtu) {
      const ids = [...new Set((await tx.all('ports', { networkId: n.id })).map((p) => p.instanceId))];
      for (const i of (await tx.all('instances', { id: ids })).sort((a, b) => a.id.localeCompare(b.id))) await logInstance(tx, i, at, ctx.actor);
    }
    return networkView(after);
  });
}

export async function deleteNetwork(ctx: Ctx, scope: Scope, netRef: string): Promise<void> {
  await ctx.store.write(async (tx) => {
    const n = await ref.owned(tx, 'networks', netRef, scope);
    const ports = await tx.count('ports', { networkId: n.id });
    if (ports > 0) throw conflict(`network ${n.name} still has ${ports} ports; delete them first`);
    await tx.remove('allocations', { owner: n.id });
    await tx.remove('networks', { id: n.id });
    await tx.appendChange({ kind: 'network.deleted', network: networkInfo(n) }, ctx.clock.now().toISOString(), ctx.actor);
  });
}
