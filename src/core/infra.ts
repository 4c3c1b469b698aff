// Use cases for the physical cloud: sites (address pools), racks and hosts
// (underlay IP, /64, capacity, state).
import type { Static } from '@sinclair/typebox';
import { cidrContains, cidrsOverlap, formatIp, parseCidr, parseIp, usableRange } from '../model/addr.js';
import { conflict, invalid } from '../model/errors.js';
import type * as I from '../model/inputs.js';
import { checkVmSettings, VM_DEFAULTS, type VmSettings } from '../model/profile.js';
import { checkTenantPrefix, MIN_PREFIX } from '../model/tenant-addr.js';
import { HOST_STATES, type Host, type Rack, type Site } from '../model/types.js';
import * as v from '../model/validate.js';
import { hostInfo, siteVm } from '../store/records.js';
import type { Repo } from '../store/repo.js';
import type { HostRow, SiteRow } from '../store/schema.js';
import { logChange } from './changelog.js';
import { type Ctx, same, stamp } from './context.js';
import { logInstances } from './profiles.js';
import * as ref from './resolve.js';
import { logSiteFabricChange } from './routers.js';
import { removeTokens } from './tokens.js';
import { hostView, rackView, siteView } from './views.js';

export type SiteInput = Static<typeof I.SiteCreate>;

/** Pool names in the allocations table. */
export const pools = {
  underlay: (family: number) => `underlay:${family}`,
  p64: 'p64',
  sitePublic4: (siteId: string) => `site:${siteId}:4`,
  routed6: 'routed6',
  net: (networkId: string, family: number) => `net:${networkId}:${family}`,
  mac: 'mac',
  vni: 'vni',
  vip: (family: number) => `vip:${family}`,
};

function checkPools(input: SiteInput) {
  const underlay = input.underlayPool == null ? null : parseCidr('underlayPool', input.underlayPool);
  const v4 = (input.ipv4Pools ?? []).map((p, i) => {
    const c = parseCidr(`ipv4Pools[${i}]`, p);
    if (c.family !== 4) throw invalid(`ipv4Pools[${i}]`, p, 'must be an IPv4 prefix');
    checkTenantPrefix(`ipv4Pools[${i}]`, c, p);
    return c;
  });
  for (let i = 0; i < v4.length; i++)
    for (let j = i + 1; j < v4.length; j++)
      if (cidrsOverlap(v4[i]!, v4[j]!))
        throw invalid(`ipv4Pools[${j}]`, v4[j]!.text, `overlaps ipv4Pools[${i}] ${v4[i]!.text}; pools of a site must not overlap`);
  let v6 = null;
  if (input.ipv6Block != null) {
    v6 = parseCidr('ipv6Block', input.ipv6Block);
    if (v6.family !== 6 || v6.prefix > 64)
      throw invalid('ipv6Block', input.ipv6Block, `must be an IPv6 prefix of length ${MIN_PREFIX[6]}..64 (hosts get a /64 each)`);
    checkTenantPrefix('ipv6Block', v6, input.ipv6Block);
  }
  return { underlay, v4, v6 };
}

export async function createSite(ctx: Ctx, input: SiteInput): Promise<Site> {
  v.name('name', input.name);
  const p = checkPools(input);
  const vm = input.vm === undefined ? null : vmOverrides(checkVmSettings('vm', input.vm));
  return ctx.store.write(async (tx) => {
    if (await tx.findOne('sites', { name: input.name })) throw conflict(`site ${JSON.stringify(input.name)} already exists`, 'name');
    // No two pools anywhere may overlap: not public with public, not
    // underlay with underlay, and not underlay with public (an address
    // handed out twice from two pools would be announced twice).
    const mine = [...(p.underlay ? [{ c: p.underlay, field: 'underlayPool' }] : []), ...p.v4.map((c) => ({ c, field: 'ipv4Pools' }))];
    for (let i = 0; i < mine.length; i++)
      for (let j = i + 1; j < mine.length; j++)
        if (cidrsOverlap(mine[i]!.c, mine[j]!.c)) throw invalid(mine[j]!.field, mine[j]!.c.text, `overlaps this site's ${mine[i]!.field} ${mine[i]!.c.text}`);
    for (const other of await tx.all('sites', {})) {
      const o = siteView(other);
      const theirs = [...(o.underlayPool ? [o.underlayPool] : []), ...o.ipv4Pools];
      for (const m of mine)
        for (const t of theirs) if (cidrsOverlap(m.c, parseCidr('pool', t))) throw conflict(`${m.field}: ${m.c.text} overlaps ${t} of site ${o.name}`, m.field);
      if (p.v6 && o.ipv6Block && cidrsOverlap(p.v6, parseCidr('x', o.ipv6Block)))
        throw conflict(`ipv6Block: ${p.v6.text} overlaps ${o.ipv6Block} of site ${o.name}`, 'ipv6Block');
    }
    const row: SiteRow = {
      ...stamp(ctx),
      name: input.name,
      underlayPool: p.underlay?.text ?? null,
      ipv4Pools: JSON.stringify(p.v4.map((c) => c.text)),
      ipv6Block: p.v6?.text ?? null,
      vm,
    };
    await tx.insert('sites', row);
    return siteView(row);
  });
}

/** What differs from VM_DEFAULTS, as stored (null: nothing), so a later change of a default reaches sites that kept it. */
function vmOverrides(vm: VmSettings): string | null {
  const own = Object.fromEntries(Object.entries(vm).filter(([k, val]) => JSON.stringify(val) !== JSON.stringify(VM_DEFAULTS[k as keyof VmSettings])));
  return Object.keys(own).length === 0 ? null : JSON.stringify(own);
}

/** Operators change a site's VM settings; profiles rendered from then on use them (running VMs keep what they booted with). */
export async function updateSite(ctx: Ctx, id: string, patch: Static<typeof I.SitePatch>): Promise<Site> {
  return ctx.store.write(async (tx) => {
    const s = await ref.site(tx, id);
    if (patch.vm === undefined) return siteView(s);
    const vm = vmOverrides(checkVmSettings('vm', patch.vm, siteVm(s)));
    if (vm === s.vm) return siteView(s);
    await tx.update('sites', s.id, { vm });
    await logInstances(tx, { siteId: s.id }, ctx.clock.now().toISOString(), ctx.actor);
    return siteView({ ...s, vm });
  });
}

/**
 * An explicit underlay IP must lie in the site's underlay pool when it has
 * one, and never inside any site's public pools (those addresses are
 * handed to instances and VIPs).
 */
async function checkUnderlay(tx: Repo, site: Site, ip: { family: number; n: bigint; text: string }, field: string): Promise<void> {
  if (site.underlayPool) {
    const c = parseCidr('underlayPool', site.underlayPool);
    if (!cidrContains(c, ip.family as 4 | 6, ip.n)) throw invalid(field, ip.text, `must be inside site ${site.name}'s underlayPool ${c.text}`);
  }
  for (const other of await tx.all('sites', {}))
    for (const pool of siteView(other).ipv4Pools)
      if (cidrContains(parseCidr('ipv4Pools', pool), ip.family as 4 | 6, ip.n))
        throw invalid(field, ip.text, `is inside site ${other.name}'s public pool ${pool}; underlay addresses must not be public pool addresses`);
}

export async function deleteSite(ctx: Ctx, siteRef: string): Promise<void> {
  await ctx.store.write(async (tx) => {
    const s = await ref.site(tx, siteRef);
    for (const [table, what] of [
      ['hosts', 'hosts'],
      ['racks', 'racks'],
      ['networks', 'routed networks'],
      ['instances', 'instances'],
      ['vips', 'VIPs'],
      ['routers', 'fabric routers'],
    ] as const) {
      const n = await tx.count(table, { siteId: s.id });
      if (n > 0) throw conflict(`site ${s.name} still has ${n} ${what}; delete them first`);
    }
    await tx.remove('sites', { id: s.id });
  });
}

export async function createRack(ctx: Ctx, input: Static<typeof I.RackCreate>): Promise<Rack> {
  v.name('name', input.name);
  return ctx.store.write(async (tx) => {
    const s = await ref.site(tx, input.site);
    if (await tx.findOne('racks', { siteId: s.id, name: input.name }))
      throw conflict(`rack ${JSON.stringify(input.name)} already exists in site ${s.name}`, 'name');
    const row = { ...stamp(ctx), siteId: s.id, name: input.name };
    await tx.insert('racks', row);
    return rackView(row);
  });
}

export async function deleteRack(ctx: Ctx, rackRef: string): Promise<void> {
  await ctx.store.write(async (tx) => {
    const r = await ref.rack(tx, rackRef);
    const hosts = await tx.count('hosts', { rackId: r.id });
    if (hosts > 0) throw conflict(`rack ${r.name} still has ${hosts} hosts; delete or move them first`);
    const peers = await tx.count('peers', { rackId: r.id });
    if (peers > 0) throw conflict(`rack ${r.name} still has ${peers} BGP peers; delete them first`);
    const routers = await tx.count('routers', { rackId: r.id });
    if (routers > 0) throw conflict(`rack ${r.name} still has ${routers} fabric routers; delete them first`);
    await tx.remove('racks', { id: r.id });
  });
}

export type HostInput = Static<typeof I.HostCreate>;

function checkCapacity(c: HostInput['capacity']) {
  v.int('capacity.cpus', c.cpus, 1, 4096);
  v.int('capacity.memoryMb', c.memoryMb, 1, 64 * 1024 * 1024);
  v.int('capacity.diskGb', c.diskGb, 0, 1024 * 1024);
}

export async function createHost(ctx: Ctx, input: HostInput): Promise<Host> {
  v.name('name', input.name);
  checkCapacity(input.capacity);
  const state = input.state === undefined ? 'active' : v.oneOf('state', input.state, HOST_STATES);
  const asn = input.asn == null ? null : v.asn('asn', input.asn);
  const explicitUnderlay = input.underlayIp === undefined ? null : parseIp('underlayIp', input.underlayIp);
  const explicitPrefix = input.ipv6Prefix === undefined ? null : parseCidr('ipv6Prefix', input.ipv6Prefix);
  if (explicitPrefix && (explicitPrefix.family !== 6 || explicitPrefix.prefix !== 64)) throw invalid('ipv6Prefix', input.ipv6Prefix, 'must be an IPv6 /64');
  const svpClient = input.svpClient === undefined ? false : v.bool('svpClient', input.svpClient);
  const svpAddresses = input.svpClientAddresses === undefined ? [] : v.svpClientAddresses('svpClientAddresses', input.svpClientAddresses);
  return ctx.store.write(async (tx) => {
    const s = await ref.site(tx, input.site);
    const site = siteView(s);
    if (await tx.findOne('hosts', { name: input.name })) throw conflict(`host ${JSON.stringify(input.name)} already exists`, 'name');
    let rackId: string | null = null;
    if (input.rack != null) rackId = (await ref.rack(tx, input.rack, s.id)).id;
    const { id, createdAt } = stamp(ctx);

    let underlay: string;
    if (explicitUnderlay) {
      await checkUnderlay(tx, site, explicitUnderlay, 'underlayIp');
      await tx.claim(pools.underlay(explicitUnderlay.family), explicitUnderlay.n, id, `underlayIp ${explicitUnderlay.text}`, 'underlayIp');
      underlay = explicitUnderlay.text;
    } else {
      if (!site.underlayPool) throw invalid('underlayIp', undefined, `required: site ${site.name} has no underlayPool to allocate from`);
      const c = parseCidr('underlayPool', site.underlayPool);
      const { lo, hi } = usableRange(c);
      const n = await tx.allocate(pools.underlay(c.family), lo, hi, id, `underlay pool ${c.text} of site ${site.name}`);
      underlay = formatIp(c.family, n);
    }

    let prefix: string | null = null;
    const block = site.ipv6Block ? parseCidr('ipv6Block', site.ipv6Block) : null;
    if (explicitPrefix) {
      if (block && !cidrContains(block, 6, explicitPrefix.base))
        throw invalid('ipv6Prefix', input.ipv6Prefix, `must be inside site ${site.name}'s ipv6Block ${block.text}`);
      await tx.claim(pools.p64, explicitPrefix.base >> 64n, id, `ipv6Prefix ${explicitPrefix.text}`, 'ipv6Prefix');
      prefix = explicitPrefix.text;
    } else if (block) {
      const lo = block.base >> 64n;
      const hi = lo + (1n << BigInt(64 - block.prefix)) - 1n;
      const slot = await tx.allocate(pools.p64, lo, hi, id, `ipv6Block ${block.text} of site ${site.name}`);
      prefix = `${formatIp(6, slot << 64n)}/64`;
    }

    const row: HostRow = {
      id,
      createdAt,
      name: input.name,
      siteId: s.id,
      rackId,
      underlayIp: underlay,
      asn,
      cpus: input.capacity.cpus,
      memoryMb: input.capacity.memoryMb,
      diskGb: input.capacity.diskGb,
      state,
      ipv6Prefix: prefix,
      usedCpus: 0,
      usedMemoryMb: 0,
      usedDiskGb: 0,
      svpClient: svpClient ? 1 : 0,
      svpClientAddresses: JSON.stringify(svpAddresses),
    };
    await tx.insert('hosts', row);
    await tx.appendChange({ kind: 'host.created', host: hostInfo(row) }, createdAt, ctx.actor);
    // Its ToR gains a session; the spines and borders accept its /64.
    await logSiteFabricChange(tx, ctx, { kind: 'host.created', id: row.id }, row.siteId, [row.rackId]);
    return hostView(row);
  });
}

export type HostPatch = Static<typeof I.HostPatch>;

export async function updateHost(ctx: Ctx, hostRef: string, patch: HostPatch): Promise<Host> {
  if (patch.state !== undefined) v.oneOf('state', patch.state, HOST_STATES);
  if (patch.capacity !== undefined) checkCapacity(patch.capacity);
  if (patch.asn != null) v.asn('asn', patch.asn);
  const newUnderlay = patch.underlayIp === undefined ? null : parseIp('underlayIp', patch.underlayIp);
  if (patch.svpClient !== undefined) v.bool('svpClient', patch.svpClient);
  const svpAddresses = patch.svpClientAddresses === undefined ? null : v.svpClientAddresses('svpClientAddresses', patch.svpClientAddresses);
  return ctx.store.write(async (tx) => {
    const before = await ref.host(tx, hostRef);
    const after: HostRow = { ...before };
    if (patch.svpClient !== undefined) after.svpClient = patch.svpClient ? 1 : 0;
    if (svpAddresses) after.svpClientAddresses = JSON.stringify(svpAddresses);
    // No longer an SVP client: nothing will trim its log, so it goes now.
    if (Number(before.svpClient) === 1 && after.svpClient === 0) await tx.remove('shootdowns', { hostId: before.id });
    if (patch.state !== undefined) after.state = patch.state;
    if (patch.asn !== undefined) after.asn = patch.asn;
    if (patch.asn != null && patch.asn !== before.asn) {
      // Its sessions are eBGP: no peer of the host or its rack may have the host's new ASN.
      const peers = [...(await tx.all('peers', { hostId: before.id })), ...(before.rackId ? await tx.all('peers', { rackId: before.rackId }) : [])];
      const same = peers.find((p) => Number(p.remoteAsn) === patch.asn);
      if (same) throw invalid('asn', patch.asn, `is the remote ASN of peer ${same.id} (${same.neighbor}) of this host: weft's upstream sessions are eBGP`);
    }
    if (patch.rack !== undefined) after.rackId = patch.rack === null ? null : (await ref.rack(tx, patch.rack, before.siteId)).id;
    if (patch.capacity) {
      const used = { cpus: Number(before.usedCpus), memoryMb: Number(before.usedMemoryMb), diskGb: Number(before.usedDiskGb) };
      for (const k of ['cpus', 'memoryMb', 'diskGb'] as const) {
        if (patch.capacity[k] < used[k])
          throw conflict(`capacity.${k} ${patch.capacity[k]} is below what the host's instances use (${used[k]}); migrate some first`, `capacity.${k}`);
      }
      Object.assign(after, patch.capacity);
    }
    if (newUnderlay && newUnderlay.text !== before.underlayIp) {
      await checkUnderlay(tx, siteView((await tx.get('sites', before.siteId))!), newUnderlay, 'underlayIp');
      const old = parseIp('underlayIp', before.underlayIp);
      await tx.release(pools.underlay(old.family), old.n);
      await tx.claim(pools.underlay(newUnderlay.family), newUnderlay.n, before.id, `underlayIp ${newUnderlay.text}`, 'underlayIp');
      after.underlayIp = newUnderlay.text;
    }
    const { id: _id, createdAt: _c, ...changed } = after;
    await tx.update('hosts', before.id, changed);
    // Capacity is not forwarding state; log only what agents and the mapping service use.
    if (!same(hostInfo(after), hostInfo(before)))
      await logChange(tx, { kind: 'host.updated', host: hostInfo(after), before: hostInfo(before) }, ctx.clock.now().toISOString(), ctx.actor);
    // What the fabric's configs are rendered from (model/fabric.ts): its session, its state, its /64.
    if ((['state', 'asn', 'rackId', 'underlayIp', 'ipv6Prefix'] as const).some((k) => after[k] !== before[k]))
      await logSiteFabricChange(tx, ctx, { kind: 'host.updated', id: after.id }, after.siteId, [before.rackId, after.rackId]);
    return hostView(after);
  });
}

export async function deleteHost(ctx: Ctx, hostRef: string): Promise<void> {
  await ctx.store.write(async (tx) => {
    const h = await ref.host(tx, hostRef);
    const n = await tx.count('instances', { hostId: h.id });
    if (n > 0) throw conflict(`host ${h.name} still has ${n} instances; migrate or delete them first`);
    const peers = await tx.count('peers', { hostId: h.id });
    if (peers > 0) throw conflict(`host ${h.name} still has ${peers} BGP peers; delete them first`);
    const at = ctx.clock.now().toISOString();
    // Logged as deleted too; its stream session closes as "host deleted" (the stream reads the host first).
    await removeTokens(tx, { hostId: h.id }, at, ctx.actor);
    await tx.remove('shootdowns', { hostId: h.id });
    await tx.remove('allocations', { owner: h.id });
    await tx.remove('hosts', { id: h.id });
    await tx.appendChange({ kind: 'host.deleted', host: hostInfo(h) }, at, ctx.actor);
    await logSiteFabricChange(tx, ctx, { kind: 'host.deleted', id: h.id }, h.siteId, [h.rackId]);
  });
}
