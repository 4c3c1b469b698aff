// Use cases for fabric routers (ToRs, spines, borders): create, update and
// delete them, and log which routers' configs a change of the source of
// truth alters (docs/fabric.md).
import type { Static } from '@sinclair/typebox';
import { parseIp } from '../model/addr.js';
import type { AffectedRouter } from '../model/changes.js';
import { conflict, invalid } from '../model/errors.js';
import { affectedRouters } from '../model/fabric.js';
import type * as I from '../model/inputs.js';
import { ROUTER_PLATFORMS, ROUTER_ROLES, type Router, type Upstream } from '../model/types.js';
import * as v from '../model/validate.js';
import { routerInfo } from '../store/records.js';
import type { Repo } from '../store/repo.js';
import type { RouterRow } from '../store/schema.js';
import { type Ctx, same, stamp } from './context.js';
import * as ref from './resolve.js';
import { routerView } from './views.js';

export type RouterInput = Static<typeof I.RouterCreate>;
export type RouterPatch = Static<typeof I.RouterPatch>;
type UpstreamInput = Static<typeof I.UpstreamIn>;

/** Wikimedia's limit on its core routers' sessions: enough for a rack's hosts or a site's, never a full table. */
export const DEFAULT_ROUTER_MAX_PREFIX = 1000;
const UPSTREAM_NAME = /^[a-z][a-z0-9_]{0,31}$/;

function unicast(field: string, value: unknown): string {
  const ip = parseIp(field, value);
  const multicast = ip.family === 4 ? ip.n >> 28n === 0xen : ip.n >> 120n === 0xffn;
  if (ip.n === 0n || multicast || (ip.family === 4 && ip.n === 0xffffffffn)) throw invalid(field, value, 'must be a unicast address');
  if (ip.family === 6 && ip.n >> 118n === 0x3fan) throw invalid(field, value, 'must not be link-local: a session names no interface (use the global address)');
  return ip.text;
}

function bgpRouterId(value: unknown): string {
  const ip = parseIp('bgpRouterId', value);
  if (ip.family !== 4 || ip.n === 0n) throw invalid('bgpRouterId', value, 'must be a nonzero IPv4 address');
  return ip.text;
}

function upstreams(list: UpstreamInput[], asn: number): Upstream[] {
  const out = list.map((u, i): Upstream => {
    const at = `upstreams[${i}]`;
    if (typeof u.name !== 'string' || !UPSTREAM_NAME.test(u.name)) throw invalid(`${at}.name`, u.name, 'must be 1..32 of [a-z0-9_], starting with a letter');
    const remoteAsn = v.asn(`${at}.remoteAsn`, u.remoteAsn);
    if (remoteAsn === asn) throw invalid(`${at}.remoteAsn`, remoteAsn, `must differ from the router's asn ${asn}: upstream sessions are eBGP`);
    return {
      name: u.name,
      neighbor: unicast(`${at}.neighbor`, u.neighbor),
      remoteAsn,
      maxPrefix: u.maxPrefix === undefined ? DEFAULT_ROUTER_MAX_PREFIX : v.int(`${at}.maxPrefix`, u.maxPrefix, 1, 10_000_000),
      bfd: u.bfd === undefined ? false : v.bool(`${at}.bfd`, u.bfd),
      description: u.description == null ? null : v.str(`${at}.description`, u.description, 200),
    };
  });
  out.forEach((u, i) => {
    const j = out.findIndex((x) => x.name === u.name);
    if (j !== i) throw invalid(`upstreams[${i}].name`, u.name, `must be unique: upstreams[${j}] has it`);
    const k = out.findIndex((x) => x.neighbor === u.neighbor);
    if (k !== i) throw invalid(`upstreams[${i}].neighbor`, u.neighbor, `must be unique: upstreams[${k}] has it`);
  });
  return out;
}

/** What one row allows together: upstreams on borders only, a ToR's rack in its site. */
async function checkRow(tx: Repo, row: RouterRow): Promise<void> {
  const ups = JSON.parse(row.upstreams) as Upstream[];
  if (row.role !== 'border' && ups.length > 0) throw invalid('upstreams', ups.length, `must be empty for a ${row.role}: only border routers have upstreams`);
  for (const [i, u] of ups.entries())
    if (u.remoteAsn === Number(row.asn)) throw invalid(`upstreams[${i}].remoteAsn`, u.remoteAsn, `must differ from the router's asn ${row.asn}`);
  const clash = (await tx.all('routers', { loopback: row.loopback })).find((x) => x.id !== row.id);
  if (clash) throw conflict(`loopback ${row.loopback} is router ${clash.name}'s already`, 'loopback');
  const host = await tx.findOne('hosts', { underlayIp: row.loopback });
  if (host) throw conflict(`loopback ${row.loopback} is host ${host.name}'s underlay address`, 'loopback');
}

export async function createRouter(ctx: Ctx, input: RouterInput): Promise<Router> {
  v.name('name', input.name);
  const role = v.oneOf('role', input.role, ROUTER_ROLES);
  const asn = v.asn('asn', input.asn);
  const row0 = {
    asn,
    bgpRouterId: bgpRouterId(input.bgpRouterId),
    loopback: unicast('loopback', input.loopback),
    mgmtAddress: input.mgmtAddress == null ? null : parseIp('mgmtAddress', input.mgmtAddress).text,
    platform: input.platform === undefined ? 'bird' : v.oneOf('platform', input.platform, ROUTER_PLATFORMS),
    bfd: input.bfd === undefined ? 0 : v.bool('bfd', input.bfd) ? 1 : 0,
    maxPrefix: input.maxPrefix === undefined ? DEFAULT_ROUTER_MAX_PREFIX : v.int('maxPrefix', input.maxPrefix, 1, 10_000_000),
    upstreams: JSON.stringify(upstreams(input.upstreams ?? [], asn)),
  };
  return ctx.store.write(async (tx) => {
    const site = await ref.site(tx, input.site);
    if (await tx.findOne('routers', { name: input.name })) throw conflict(`router ${JSON.stringify(input.name)} already exists`, 'name');
    let rackId: string | null = null;
    if (role === 'tor') {
      if (input.rack == null) throw invalid('rack', input.rack ?? null, 'required for a tor: the rack whose hosts it serves');
      rackId = (await ref.rack(tx, input.rack, site.id)).id;
      const rack = await tx.get('racks', rackId);
      if (rack?.siteId !== site.id) throw invalid('rack', input.rack, `must be a rack of site ${site.name}`);
    } else if (input.rack != null) throw invalid('rack', input.rack, `must be absent for a ${role}: only a tor belongs to a rack`);
    const row: RouterRow = { ...stamp(ctx), name: input.name, role, siteId: site.id, rackId, ...row0 };
    await checkRow(tx, row);
    await tx.insert('routers', row);
    await tx.appendChange({ kind: 'router.created', router: routerInfo(row) }, row.createdAt, ctx.actor);
    // Its neighbours' configs gain a session to it.
    await logFabricChange(tx, ctx, { kind: 'router.created', id: row.id }, neighboursOf(await siteRouters(tx, site.id), row));
    return routerView(row);
  });
}

export async function updateRouter(ctx: Ctx, id: string, patch: RouterPatch): Promise<Router> {
  return ctx.store.write(async (tx) => {
    const before = await ref.router(tx, id);
    const after: RouterRow = { ...before };
    if (patch.name !== undefined && patch.name !== before.name) {
      after.name = v.name('name', patch.name);
      if (await tx.findOne('routers', { name: patch.name })) throw conflict(`router ${JSON.stringify(patch.name)} already exists`, 'name');
    }
    if (patch.asn !== undefined) after.asn = v.asn('asn', patch.asn);
    if (patch.bgpRouterId !== undefined) after.bgpRouterId = bgpRouterId(patch.bgpRouterId);
    if (patch.loopback !== undefined) after.loopback = unicast('loopback', patch.loopback);
    if (patch.mgmtAddress !== undefined) after.mgmtAddress = patch.mgmtAddress === null ? null : parseIp('mgmtAddress', patch.mgmtAddress).text;
    if (patch.platform !== undefined) after.platform = v.oneOf('platform', patch.platform, ROUTER_PLATFORMS);
    if (patch.bfd !== undefined) after.bfd = v.bool('bfd', patch.bfd) ? 1 : 0;
    if (patch.maxPrefix !== undefined) after.maxPrefix = v.int('maxPrefix', patch.maxPrefix, 1, 10_000_000);
    if (patch.upstreams !== undefined) after.upstreams = JSON.stringify(upstreams(patch.upstreams, Number(after.asn)));
    await checkRow(tx, after);
    const { id: _i, createdAt: _c, ...changed } = after;
    await tx.update('routers', before.id, changed);
    const at = ctx.clock.now().toISOString();
    if (!same(after, before)) {
      await tx.appendChange({ kind: 'router.updated', router: routerInfo(after) }, at, ctx.actor);
      // Its own config, and its neighbours' when what they peer with changed (ASN, loopback, BFD, name).
      const all = await siteRouters(tx, after.siteId);
      const touched = [
        after,
        ...(['asn', 'loopback', 'bfd', 'name'].some((k) => String(after[k as keyof RouterRow]) !== String(before[k as keyof RouterRow]))
          ? neighboursOf(all, after)
          : []),
      ];
      await logFabricChange(tx, ctx, { kind: 'router.updated', id: after.id }, touched);
    }
    return routerView(after);
  });
}

export async function deleteRouter(ctx: Ctx, id: string): Promise<void> {
  await ctx.store.write(async (tx) => {
    const r = await ref.router(tx, id);
    await tx.remove('routers', { id: r.id });
    await tx.appendChange({ kind: 'router.deleted', router: routerInfo(r) }, ctx.clock.now().toISOString(), ctx.actor);
    await logFabricChange(tx, ctx, { kind: 'router.deleted', id: r.id }, neighboursOf(await siteRouters(tx, r.siteId), r));
  });
}

const siteRouters = async (tx: Repo, siteId: string): Promise<Router[]> => (await tx.all('routers', { siteId })).map(routerView);

/** The routers of the site that peer with `r` (fabricView's derivation): a ToR's spines, a spine's ToRs and borders, a border's spines. */
function neighboursOf(all: Router[], r: Pick<RouterRow, 'id' | 'role'>): Router[] {
  const peersOf: Record<string, string[]> = { tor: ['spine'], spine: ['tor', 'border'], border: ['spine'] };
  return all.filter((x) => x.id !== r.id && (peersOf[r.role] ?? []).includes(x.role));
}

/**
 * Logs a `fabric.updated` change naming `routers` (when there are any), in
 * the write's transaction, right after the change that caused it.
 */
export async function logFabricChange(tx: Repo, ctx: Ctx, cause: { kind: string; id: string }, routers: readonly Pick<Router, 'id' | 'name'>[]): Promise<void> {
  const seen = new Map<string, AffectedRouter>();
  for (const r of routers) seen.set(r.id, { routerId: r.id, name: r.name });
  if (seen.size === 0) return;
  const list = [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  await tx.appendChange({ kind: 'fabric.updated', routers: list, cause }, ctx.clock.now().toISOString(), ctx.actor);
}

/**
 * After a change of a site's hosts (rackIds: the host's racks, before and
 * after) or of what its hosts may announce (VIPs: 'all'): logs the routers
 * whose configs it alters.
 */
export async function logSiteFabricChange(
  tx: Repo,
  ctx: Ctx,
  cause: { kind: string; id: string },
  siteId: string,
  rackIds: readonly (string | null)[] | 'all',
): Promise<void> {
  await logFabricChange(tx, ctx, cause, affectedRouters(await siteRouters(tx, siteId), siteId, rackIds));
}
