// Use cases for VIPs: anycast service addresses with backend ports and a
// health check; each host with a healthy local backend announces the VIP.
import type { Static } from '@sinclair/typebox';
import { cidrContains, formatIp, parseCidr, parseIp, usableRange } from '../model/addr.js';
import type { ChangeActor } from '../model/changes.js';
import { capacity, conflict, invalid, WeftError } from '../model/errors.js';
import type * as I from '../model/inputs.js';
import { checkTenantAddress } from '../model/tenant-addr.js';
import { HEALTH_CHECK_TYPES, type HealthCheck, type Vip } from '../model/types.js';
import * as v from '../model/validate.js';
import { vipInfo } from '../store/records.js';
import type { Repo } from '../store/repo.js';
import type { SiteRow, VipRow } from '../store/schema.js';
import { type Ctx, type Scope, same, stamp } from './context.js';
import { pools } from './infra.js';
import { beginQuota } from './quotas.js';
import * as ref from './resolve.js';
import { logSiteFabricChange } from './routers.js';
import { siteView, vipView } from './views.js';

export type HealthCheckInput = Static<typeof I.HealthCheckIn>;

export type VipInput = Static<typeof I.VipCreate>;

export function checkHealth(h: HealthCheckInput): HealthCheck {
  const type = v.oneOf('healthCheck.type', h.type, HEALTH_CHECK_TYPES);
  const port = v.int('healthCheck.port', h.port, 1, 65535);
  let path: string | null = null;
  if (type === 'http') {
    path = h.path ?? '/';
    if (!path.startsWith('/') || path.length > 1024 || /\s/.test(path))
      throw invalid('healthCheck.path', h.path, 'must be an absolute URL path without spaces, at most 1024 characters');
  } else if (h.path !== undefined) {
    throw invalid('healthCheck.path', h.path, 'only http checks have a path');
  }
  const intervalMs = h.intervalMs === undefined ? 200 : v.int('healthCheck.intervalMs', h.intervalMs, 50, 60000);
  const timeoutMs = h.timeoutMs === undefined ? Math.min(intervalMs, 1000) : v.int('healthCheck.timeoutMs', h.timeoutMs, 10, 60000);
  if (timeoutMs > intervalMs) throw invalid('healthCheck.timeoutMs', timeoutMs, `must not exceed intervalMs (${intervalMs})`);
  const rise = h.rise === undefined ? 3 : v.int('healthCheck.rise', h.rise, 1, 100);
  const fall = h.fall === undefined ? 2 : v.int('healthCheck.fall', h.fall, 1, 100);
  return { type, port, path, intervalMs, timeoutMs, rise, fall };
}

/** Appends vip.updated for each of these VIPs that still exists. */
export async function touchVips(tx: Repo, vipIds: string[], at: string, actor: ChangeActor | null): Promise<void> {
  for (const vipId of [...new Set(vipIds)].sort()) {
    const vip = await tx.get('vips', vipId);
    if (vip) await tx.appendChange({ kind: 'vip.updated', vip: await vipInfo(tx, vip) }, at, actor);
  }
}

/** Appends vip.updated for every VIP that has one of these ports as a backend. */
export async function touchVipsOf(tx: Repo, portIds: string[], at: string, actor: ChangeActor | null): Promise<void> {
  const links = await tx.all('vipBackends', { portId: portIds });
  await touchVips(
    tx,
    links.map((l) => l.vipId),
    at,
    actor,
  );
}

/**
 * Claims an explicit VIP address in the pool that owns it, so that it can
 * never also be handed to a port: inside a site's public IPv4 pools, that
 * site's pool; IPv6, the pool routed IPv6 addresses come from. Addresses
 * outside every site's pools (an operator's own anycast range) are for
 * operators only, and never inside an underlay pool. The address gets the
 * checks a port's does: not a special-purpose address, not the network or
 * broadcast address of the pool it is in, not a subnet-router anycast
 * address (the all-zeros host of a /64), and an IPv6 one from the VIP's own
 * site's block when it has a site.
 */
async function claimVipAddress(tx: Repo, scope: Scope, site: SiteRow | null, ip: { family: 4 | 6; n: bigint; text: string }, owner: string) {
  const sites = (await tx.all('sites', {})).map(siteView);
  for (const o of sites)
    if (o.underlayPool && cidrContains(parseCidr('underlayPool', o.underlayPool), ip.family, ip.n))
      throw invalid('address', ip.text, `is inside site ${o.name}'s underlayPool ${o.underlayPool}`);
  const what = `address ${ip.text}`;
  if (ip.family === 4) {
    for (const home of sites)
      for (const p of home.ipv4Pools) {
        const c = parseCidr('ipv4Pools', p);
        if (!cidrContains(c, 4, ip.n)) continue;
        if (site && home.id !== site.id) throw invalid('address', ip.text, `is in site ${home.name}'s pool, not site ${site.name}'s`);
        const { lo, hi } = usableRange(c);
        if (ip.n < lo || ip.n > hi)
          throw invalid('address', ip.text, `is the network or broadcast address of site ${home.name}'s pool ${c.text}; must be a usable address of it`);
        return tx.claim(pools.sitePublic4(home.id), ip.n, owner, what, 'address');
      }
  } else {
    const home = sites.find((o) => o.ipv6Block && cidrContains(parseCidr('ipv6Block', o.ipv6Block), 6, ip.n));
    if (home) {
      if (site && home.id !== site.id) throw invalid('address', ip.text, `is in site ${home.name}'s ipv6Block ${home.ipv6Block}, not site ${site.name}'s`);
      if ((ip.n & ((1n << 64n) - 1n)) === 0n)
        throw invalid('address', ip.text, 'is the subnet-router anycast address of its /64 (all-zeros host part); must have a non-zero host part');
      return tx.claim(pools.routed6, ip.n, owner, what, 'address');
    }
  }
  if (scope.tenantId !== null)
    throw new WeftError('E_FORBIDDEN', `address ${ip.text} is outside every site's pools; only operators may use such addresses`, 'address');
  return tx.claim(ip.family === 4 ? pools.vip(4) : pools.routed6, ip.n, owner, what, 'address');
}

async function setBackends(tx: Repo, vip: VipRow, refs: string[], scope: Scope): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, r] of refs.entries()) {
    let p: Awaited<ReturnType<typeof ref.owned<'ports'>>>;
    try {
      p = await ref.owned(tx, 'ports', r, scope, vip.tenantId);
    } catch {
      throw invalid(`backends[${i}]`, r, "must be the id of a port of the VIP's tenant");
    }
    if (ids.includes(p.id)) throw invalid(`backends[${i}]`, r, 'is listed twice');
    // The host routes the VIP to its local backends; it has no address on tenant overlays, so only routed ports can be reached.
    const net = await tx.get('networks', p.networkId);
    if (net?.kind !== 'routed') throw invalid(`backends[${i}]`, r, 'must be a port on a routed network (hosts deliver VIP traffic to routed ports)');
    ids.push(p.id);
  }
  await tx.remove('vipBackends', { vipId: vip.id });
  for (const portId of ids) await tx.insert('vipBackends', { vipId: vip.id, portId });
  return ids;
}

export async function createVip(ctx: Ctx, scope: Scope, input: VipInput): Promise<Vip> {
  v.name('name', input.name);
  const hc = checkHealth(input.healthCheck);
  const explicit = input.address === undefined ? null : parseIp('address', input.address);
  if (explicit) checkTenantAddress('address', explicit.family, explicit.n, input.address);
  const tenantRef = scope.tenantId ?? input.tenant;
  if (tenantRef === undefined) throw invalid('tenant', undefined, 'required');
  return ctx.store.write(async (tx) => {
    const t = await ref.tenant(tx, tenantRef, scope);
    if (await tx.findOne('vips', { tenantId: t.id, name: input.name }))
      throw conflict(`vip ${JSON.stringify(input.name)} already exists in tenant ${t.name}`, 'name');
    // Without an explicit address the VIP takes one from the site's public IPv4 pools.
    const quota = await beginQuota(ctx, tx, scope, t, { vips: 1, publicIpv4: explicit?.family === 6 ? 0 : 1 });
    const s = input.site === undefined ? null : await ref.site(tx, input.site);
    const { id, createdAt } = stamp(ctx);
    let address: string;
    if (explicit) {
      await claimVipAddress(tx, scope, s, explicit, id);
      address = explicit.text;
    } else {
      if (!s) throw invalid('address', undefined, 'required unless a site is given to allocate it from');
      const sitePools = siteView(s).ipv4Pools.map((p) => parseCidr('ipv4Pools', p));
      let n: bigint | null = null;
      for (const c of sitePools) {
        const { lo, hi } = usableRange(c);
        try {
          n = await tx.allocate(pools.sitePublic4(s.id), lo, hi, id, `ipv4 pool ${c.text}`);
          break;
        } catch (e) {
          if ((e as { code?: string }).code !== 'E_CAPACITY') throw e;
        }
      }
      if (n === null) throw capacity(`site ${s.name} has no free address in its ipv4Pools for the VIP`, 'address');
      address = formatIp(4, n);
    }
    const row: VipRow = { id, createdAt, tenantId: t.id, name: input.name, siteId: s?.id ?? null, address, healthCheck: JSON.stringify(hc) };
    await tx.insert('vips', row);
    await quota();
    const backends = await setBackends(tx, row, input.backends ?? [], scope);
    await tx.appendChange({ kind: 'vip.created', vip: await vipInfo(tx, row) }, createdAt, ctx.actor);
    // Every fabric router of its site accepts its address from the hosts (model/fabric.ts).
    if (row.siteId !== null) await logSiteFabricChange(tx, ctx, { kind: 'vip.created', id: row.id }, row.siteId, 'all');
    return vipView(row, backends);
  });
}

export type VipPatch = Static<typeof I.VipPatch>;

export async function updateVip(ctx: Ctx, scope: Scope, vipRef: string, patch: VipPatch): Promise<Vip> {
  const hc = patch.healthCheck === undefined ? null : checkHealth(patch.healthCheck);
  return ctx.store.write(async (tx) => {
    const vip = await ref.owned(tx, 'vips', vipRef, scope);
    const before = await vipInfo(tx, vip);
    if (hc) {
      vip.healthCheck = JSON.stringify(hc);
      await tx.update('vips', vip.id, { healthCheck: vip.healthCheck });
    }
    if (patch.backends !== undefined) await setBackends(tx, vip, patch.backends, scope);
    const info = await vipInfo(tx, vip);
    if (!same(info, before)) await tx.appendChange({ kind: 'vip.updated', vip: info }, ctx.clock.now().toISOString(), ctx.actor);
    return vipView(
      vip,
      info.backends.map((b) => b.portId),
    );
  });
}

export async function deleteVip(ctx: Ctx, scope: Scope, vipRef: string): Promise<void> {
  await ctx.store.write(async (tx) => {
    const vip = await ref.owned(tx, 'vips', vipRef, scope);
    const info = await vipInfo(tx, vip);
    await tx.remove('vipBackends', { vipId: vip.id });
    await tx.remove('allocations', { owner: vip.id });
    await tx.remove('vips', { id: vip.id });
    await tx.appendChange({ kind: 'vip.deleted', vip: info }, ctx.clock.now().toISOString(), ctx.actor);
    if (vip.siteId !== null) await logSiteFabricChange(tx, ctx, { kind: 'vip.deleted', id: vip.id }, vip.siteId, 'all');
  });
}

export async function getVip(ctx: Ctx, scope: Scope, vipRef: string): Promise<Vip> {
  return ctx.store.read(async (tx) => {
    const vip = await ref.owned(tx, 'vips', vipRef, scope);
    const links = await tx.all('vipBackends', { vipId: vip.id });
    return vipView(vip, links.map((l) => l.portId).sort());
  });
}
