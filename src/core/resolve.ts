// References in requests may be an id or a name. Tenant-owned objects are
// looked up inside the caller's tenant, so another tenant's objects are
// "not found", never "forbidden": a tenant learns nothing about the others.
import { parseIp, parseMac } from '../model/addr.js';
import { conflict, notFound } from '../model/errors.js';
import { isId } from '../model/ids.js';
import type { Repo } from '../store/repo.js';
import type {
  HostRow,
  InstanceRow,
  NetworkRow,
  PeerRow,
  PortRow,
  RackRow,
  RouterRow,
  SiteRow,
  SshKeyRow,
  TenantRow,
  TokenRow,
  VipRow,
} from '../store/schema.js';
import type { Scope } from './context.js';

const MAC_RE = /^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i;

type Owned = 'networks' | 'instances' | 'vips' | 'ports' | 'sshKeys';
type OwnedRow = { networks: NetworkRow; instances: InstanceRow; vips: VipRow; ports: PortRow; sshKeys: SshKeyRow };

const WHAT: Record<string, string> = {
  sites: 'site',
  racks: 'rack',
  hosts: 'host',
  tenants: 'tenant',
  networks: 'network',
  instances: 'instance',
  vips: 'vip',
  ports: 'port',
  sshKeys: 'ssh key',
};

export async function site(tx: Repo, ref: string): Promise<SiteRow> {
  const r = (isId(ref) ? await tx.get('sites', ref) : undefined) ?? (await tx.findOne('sites', { name: ref }));
  if (!r) throw notFound('site', ref);
  return r;
}

export async function host(tx: Repo, ref: string): Promise<HostRow> {
  const r = (isId(ref) ? await tx.get('hosts', ref) : undefined) ?? (await tx.findOne('hosts', { name: ref }));
  if (!r) throw notFound('host', ref);
  return r;
}

export async function tenant(tx: Repo, ref: string, scope: Scope): Promise<TenantRow> {
  const r = (isId(ref) ? await tx.get('tenants', ref) : undefined) ?? (await tx.findOne('tenants', { name: ref }));
  if (!r || (scope.tenantId !== null && r.id !== scope.tenantId)) throw notFound('tenant', ref);
  return r;
}

export async function router(tx: Repo, ref: string): Promise<RouterRow> {
  const r = (isId(ref) ? await tx.get('routers', ref) : undefined) ?? (await tx.findOne('routers', { name: ref }));
  if (!r) throw notFound('router', ref);
  return r;
}

/** A rack by id, or by name (unique within a site; ambiguous names across sites need the id). */
export async function rack(tx: Repo, ref: string, siteId?: string): Promise<RackRow> {
  if (isId(ref)) {
    const r = await tx.get('racks', ref);
    if (r) return r;
  }
  const rows = await tx.all('racks', siteId ? { name: ref, siteId } : { name: ref });
  if (rows.length > 1) throw conflict(`rack name ${JSON.stringify(ref)} is used in ${rows.length} sites: give the rack's id`, 'rack');
  if (!rows[0]) throw notFound('rack', ref);
  return rows[0];
}

/** A BGP peer by id, or by its neighbour address (when one peer has it; several need the id). */
export async function peer(tx: Repo, ref: string): Promise<PeerRow> {
  if (isId(ref)) {
    const r = await tx.get('peers', ref);
    if (r) return r;
  }
  let neighbor: string | undefined;
  try {
    neighbor = parseIp('peer', ref).text;
  } catch {
    neighbor = undefined;
  }
  const rows = neighbor ? await tx.all('peers', { neighbor }) : [];
  if (rows.length > 1) throw conflict(`neighbor ${JSON.stringify(ref)} has ${rows.length} peers (one per host or rack): give the peer's id`, 'peer');
  if (!rows[0]) throw notFound('peer', ref);
  return rows[0];
}

/** An API token by id, or by name (when one token has it; names need not be unique). */
export async function token(tx: Repo, ref: string): Promise<TokenRow> {
  if (isId(ref)) {
    const r = await tx.get('tokens', ref);
    if (r) return r;
  }
  const rows = await tx.all('tokens', { name: ref });
  if (rows.length > 1) throw conflict(`token name ${JSON.stringify(ref)} is used by ${rows.length} tokens: give the token's id`, 'token');
  if (!rows[0]) throw notFound('token', ref);
  return rows[0];
}

/**
 * A tenant-owned object by id or name (a port: by id or MAC). Names are unique per tenant: with a
 * tenant scope (or `tenantId`) the name is looked up there; an admin naming
 * an object that several tenants have must use its id.
 */
export async function owned<T extends Owned>(tx: Repo, table: T, ref: string, scope: Scope, tenantId?: string): Promise<OwnedRow[T]> {
  const what = WHAT[table] as string;
  const inScope = (r: { tenantId: string }) =>
    (scope.tenantId === null || r.tenantId === scope.tenantId) && (tenantId === undefined || r.tenantId === tenantId);
  if (isId(ref)) {
    const r = (await tx.get(table, ref)) as OwnedRow[T] | undefined;
    if (r && inScope(r)) return r;
    if (r) throw notFound(what, ref);
  }
  if (table === 'ports') {
    // A port has no name: its MAC (unique across the cloud) names it.
    const mac = MAC_RE.test(ref) ? await tx.findOne('ports', { mac: parseMac('port', ref).text }) : undefined;
    if (mac && inScope(mac)) return mac as OwnedRow[T];
    throw notFound(what, ref);
  }
  const t = tenantId ?? scope.tenantId;
  const rows = (await tx.all(table, t ? { name: ref, tenantId: t } : { name: ref })) as OwnedRow[T][];
  if (rows.length > 1) throw conflict(`${what} name ${JSON.stringify(ref)} is used by ${rows.length} tenants: give its id`, what);
  if (!rows[0]) throw notFound(what, ref);
  return rows[0];
}
