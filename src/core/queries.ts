// Reads for the API: get and list every entity, with filters (by id or
// name), keyset paging and the caller's tenant scope.

import { parseMac } from '../model/addr.js';
import { type AuditedChange, type ChangeObject, changeObject } from '../model/changes.js';
import { invalid, WeftError } from '../model/errors.js';
import { HOST_STATES, INSTANCE_STATES, NETWORK_KINDS, type Page, ROLES, ROUTER_ROLES } from '../model/types.js';
import * as v from '../model/validate.js';
import type { Repo } from '../store/repo.js';
import type { Ctx, Scope } from './context.js';
import * as ref from './resolve.js';
import {
  hostView,
  instanceView,
  networkView,
  peerView,
  portView,
  rackView,
  routerView,
  siteView,
  sshKeyView,
  tenantView,
  tokenView,
  vipView,
} from './views.js';

export const PAGE_DEFAULT = 100;
export const PAGE_MAX = 1000;

export interface ListQuery {
  limit?: number;
  after?: string;
  [filter: string]: string | number | undefined;
}

export type Kind = 'sites' | 'racks' | 'hosts' | 'tenants' | 'networks' | 'instances' | 'ports' | 'vips' | 'peers' | 'tokens' | 'sshKeys' | 'routers';

/** Filters each list accepts, and how a filter value is turned into a column value. */
const FILTERS: Record<Kind, Record<string, (tx: Repo, v: string, s: Scope) => Promise<[string, unknown]>>> = {
  sites: { name: async (_t, v) => ['name', v] },
  racks: { site: async (t, v) => ['siteId', (await ref.site(t, v)).id], name: async (_t, v) => ['name', v] },
  hosts: {
    site: async (t, v) => ['siteId', (await ref.site(t, v)).id],
    rack: async (t, v) => ['rackId', (await ref.rack(t, v)).id],
    state: async (_t, x) => ['state', v.oneOf('state', x, HOST_STATES)],
    name: async (_t, v) => ['name', v],
  },
  tenants: { name: async (_t, v) => ['name', v] },
  networks: {
    tenant: async (t, v, s) => ['tenantId', (await ref.tenant(t, v, s)).id],
    kind: async (_t, x) => ['kind', v.oneOf('kind', x, NETWORK_KINDS)],
    site: async (t, v) => ['siteId', (await ref.site(t, v)).id],
    name: async (_t, v) => ['name', v],
  },
  instances: {
    tenant: async (t, v, s) => ['tenantId', (await ref.tenant(t, v, s)).id],
    site: async (t, v) => ['siteId', (await ref.site(t, v)).id],
    host: async (t, v) => ['hostId', (await ref.host(t, v)).id],
    state: async (_t, x) => ['state', v.oneOf('state', x, INSTANCE_STATES)],
    name: async (_t, v) => ['name', v],
  },
  ports: {
    tenant: async (t, v, s) => ['tenantId', (await ref.tenant(t, v, s)).id],
    instance: async (t, v, s) => ['instanceId', (await ref.owned(t, 'instances', v, s)).id],
    network: async (t, v, s) => ['networkId', (await ref.owned(t, 'networks', v, s)).id],
    mac: async (_t, x) => ['mac', parseMac('mac', x).text],
  },
  vips: {
    tenant: async (t, v, s) => ['tenantId', (await ref.tenant(t, v, s)).id],
    site: async (t, v) => ['siteId', (await ref.site(t, v)).id],
    name: async (_t, v) => ['name', v],
  },
  peers: {
    host: async (t, v) => ['hostId', (await ref.host(t, v)).id],
    rack: async (t, v) => ['rackId', (await ref.rack(t, v)).id],
  },
  tokens: {
    role: async (_t, x) => ['role', v.oneOf('role', x, ROLES)],
    tenant: async (t, v, s) => ['tenantId', (await ref.tenant(t, v, s)).id],
    host: async (t, v) => ['hostId', (await ref.host(t, v)).id],
  },
  sshKeys: {
    tenant: async (t, v, s) => ['tenantId', (await ref.tenant(t, v, s)).id],
    name: async (_t, v) => ['name', v],
  },
  routers: {
    site: async (t, v) => ['siteId', (await ref.site(t, v)).id],
    rack: async (t, v) => ['rackId', (await ref.rack(t, v)).id],
    role: async (_t, x) => ['role', v.oneOf('role', x, ROUTER_ROLES)],
    name: async (_t, v) => ['name', v],
  },
};

const TENANT_OWNED = new Set<Kind>(['networks', 'instances', 'ports', 'vips', 'sshKeys']);

export function filtersOf(kind: Kind): string[] {
  return Object.keys(FILTERS[kind]);
}

// biome-ignore lint/suspicious/noExplicitAny: each kind maps its own row type
const VIEW: Record<Exclude<Kind, 'vips'>, (r: any) => unknown> = {
  sites: siteView,
  racks: rackView,
  hosts: hostView,
  tenants: tenantView,
  networks: networkView,
  instances: instanceView,
  ports: portView,
  peers: peerView,
  tokens: tokenView,
  sshKeys: sshKeyView,
  routers: routerView,
};

export async function list(ctx: Ctx, scope: Scope, kind: Kind, q: ListQuery): Promise<Page<unknown>> {
  const limit = q.limit === undefined ? PAGE_DEFAULT : v.int('limit', q.limit, 1, PAGE_MAX);
  return ctx.store.read(async (tx) => {
    const where: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(q)) {
      if (k === 'limit' || k === 'after' || val === undefined) continue;
      const f = Object.hasOwn(FILTERS[kind], k) ? FILTERS[kind][k] : undefined;
      if (!f) throw invalid(k, val, `is not a filter of ${kind}; filters are ${filtersOf(kind).join(', ') || 'none'}`);
      try {
        const [col, value] = await f(tx, String(val), scope);
        where[col] = value;
      } catch (e) {
        // A filter naming something that does not exist is a mistake, not an empty list
        // (`--tenant nosuch`); another tenant's objects are "not found" the same way.
        if (e instanceof WeftError && e.code === 'E_NOT_FOUND') throw new WeftError('E_NOT_FOUND', e.message, k);
        throw e;
      }
    }
    if (TENANT_OWNED.has(kind) && scope.tenantId !== null) where.tenantId = scope.tenantId;
    if (kind === 'tenants' && scope.tenantId !== null) where.id = scope.tenantId;
    const rows = (await tx.list(kind, where, { limit: limit + 1, after: q.after })) as { id: string }[];
    const more = rows.length > limit;
    const pageRows = more ? rows.slice(0, limit) : rows;
    let items: unknown[];
    if (kind === 'vips') {
      const links = await tx.all('vipBackends', { vipId: pageRows.map((r) => r.id) });
      items = pageRows.map((r) =>
        vipView(
          r as never,
          links
            .filter((l) => l.vipId === r.id)
            .map((l) => l.portId)
            .sort(),
        ),
      );
    } else if (kind === 'instances') {
      // Instances come with their ports: the addresses are what operators look for.
      const ports = await tx.all('ports', { instanceId: pageRows.map((r) => r.id) });
      items = pageRows.map((r) => ({
        ...instanceView(r as never),
        ports: ports
          .filter((p) => p.instanceId === r.id)
          .sort((a, b) => a.id.localeCompare(b.id))
          .map(portView),
      }));
    } else {
      items = pageRows.map(VIEW[kind]);
    }
    return { items, next: more ? (pageRows.at(-1)?.id ?? null) : null };
  });
}

/** One entity by id (or name where names are unique in scope). */
export async function get(ctx: Ctx, scope: Scope, kind: Exclude<Kind, 'vips' | 'instances'>, id: string): Promise<unknown> {
  return ctx.store.read(async (tx) => {
    switch (kind) {
      case 'sites':
        return siteView(await ref.site(tx, id));
      case 'racks':
        return rackView(await ref.rack(tx, id));
      case 'hosts':
        return hostView(await ref.host(tx, id));
      case 'tenants':
        return tenantView(await ref.tenant(tx, id, scope));
      case 'networks':
        return networkView(await ref.owned(tx, 'networks', id, scope));
      case 'ports':
        return portView(await ref.owned(tx, 'ports', id, scope));
      case 'peers':
        return peerView(await ref.peer(tx, id));
      case 'tokens':
        return tokenView(await ref.token(tx, id));
      case 'sshKeys':
        return sshKeyView(await ref.owned(tx, 'sshKeys', id, scope));
      case 'routers':
        return routerView(await ref.router(tx, id));
    }
  });
}

/** A page of the change log: versions strictly between `after` and `before` (null: up to the head). */
export interface ChangesQuery {
  after: number;
  before: number | null;
  /** asc: the oldest of the range first (how followers page); desc: the newest first. */
  order: 'asc' | 'desc';
  limit: number;
}

/** A change as the audit trail shows it: who made it, and what it is about. */
export type ChangeItem = AuditedChange & { object: ChangeObject };

/**
 * The change log for operators (admin and readonly tokens; the API refuses
 * every other role): each change with its actor and object. Networks and
 * VIPs carry no name in their records; they get the name of the row that
 * still exists (none once deleted).
 */
export async function changes(ctx: Ctx, query: ChangesQuery): Promise<{ items: ChangeItem[]; head: number }> {
  v.int('after', query.after, 0, Number.MAX_SAFE_INTEGER);
  if (query.before !== null) v.int('before', query.before, 1, Number.MAX_SAFE_INTEGER);
  if (query.order !== 'asc' && query.order !== 'desc') throw invalid('order', query.order, 'must be asc or desc');
  v.int('limit', query.limit, 1, PAGE_MAX);
  return ctx.store.read(async (tx) => {
    const [log, head] = await Promise.all([tx.changeLog(query), tx.headVersion()]);
    const items = log.map((c) => ({ ...c, object: changeObject(c) }));
    const names = new Map<string, string>();
    for (const table of ['networks', 'vips'] as const) {
      const kind = table === 'networks' ? 'network' : 'vip';
      const ids = [...new Set(items.filter((i) => i.object.kind === kind).map((i) => i.object.id))];
      if (ids.length > 0) for (const r of await tx.all(table, { id: ids })) names.set(r.id, r.name);
    }
    for (const i of items) if (i.object.name === null) i.object.name = names.get(i.object.id) ?? null;
    return { items, head };
  });
}

/** Counts for /metrics. */
export async function stats(ctx: Ctx): Promise<{ entities: Record<string, number>; allocations: { pool: string; n: number }[]; version: number }> {
  return ctx.store.read(async (tx) => {
    const entities: Record<string, number> = {};
    for (const k of ['sites', 'racks', 'hosts', 'tenants', 'networks', 'instances', 'ports', 'vips', 'peers', 'tokens', 'sshKeys'] as const)
      entities[k] = await tx.count(k);
    const allocations = await tx.allocationCount();
    return { entities, allocations, version: await tx.headVersion() };
  });
}
