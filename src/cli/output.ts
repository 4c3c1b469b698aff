// CLI output, as kubectl and the openstack client print it: JSON or YAML of
// exactly what the API returned, an aligned table of the columns that
// matter with other objects by name (`wide`: with ids and more), or
// `kind/name` per line. Pure: the CLI reads the names and passes them in.
import { stringify as toYaml } from 'yaml';

export const FORMATS = ['table', 'wide', 'json', 'yaml', 'name'] as const;
export type Format = (typeof FORMATS)[number];

/** Kinds other objects refer to by id, which tables show by name. */
export const REF_KINDS = ['sites', 'racks', 'hosts', 'tenants', 'networks', 'instances'] as const;
export type RefKind = (typeof REF_KINDS)[number];

/**
 * Names of referenced objects by kind and id, as far as the caller could
 * read them; an id without a name (a tenant token cannot list hosts) is
 * shown as the id.
 */
export type Names = Partial<Record<RefKind, ReadonlyMap<string, string>>>;

export interface RenderOptions {
  format: Format;
  /** Table and wide: print the header line (--no-headers: false). */
  headers?: boolean;
  names?: Names;
}

type Row = Record<string, unknown>;

interface Column {
  header: string;
  value: (r: Row, names: Names) => string;
  /** Shown only with -o wide. */
  wide?: boolean;
  /** The field holds the id of an object of this kind: the table shows its name. */
  ref?: { kind: RefKind; field: string };
}

function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (Array.isArray(v)) return v.length === 0 ? '-' : v.map((x) => cell(x)).join(',');
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('cpus' in o) return `${o.cpus}c/${o.memoryMb}M/${o.diskGb}G`;
    if ('type' in o && 'port' in o) return `${o.type}:${o.port}${o.path ?? ''}`;
    return JSON.stringify(v);
  }
  return String(v);
}

const field = (header: string, name: string, wide = false): Column => ({ header, value: (r) => cell(r[name]), wide });
const ref = (header: string, kind: RefKind, name: string, wide = false): Column => ({
  header,
  ref: { kind, field: name },
  wide,
  value: (r, names) => {
    const id = r[name];
    if (typeof id !== 'string') return '-';
    return names[kind]?.get(id) ?? id;
  },
});
const id = field('ID', 'id', true);
const created = field('CREATED', 'createdAt', true);
const portsOf = (r: Row) => (Array.isArray(r.ports) ? (r.ports as Row[]) : []);

/** A tenant's quotas as used/limit (get, `*` where its own limit applies), or its own limits (list). */
function quotas(r: Row): string {
  const own = (r.quotas ?? {}) as Record<string, number | null>;
  const limits = r.limits as Record<string, number> | undefined;
  const usage = r.usage as Record<string, number> | undefined;
  const kinds = Object.keys(limits ?? own);
  if (limits && usage) return kinds.map((k) => `${k} ${usage[k]}/${limits[k]}${own[k] === null ? '' : '*'}`).join(', ');
  const set = kinds.filter((k) => own[k] !== null);
  return set.length === 0 ? 'default' : set.map((k) => `${k} ${own[k]}`).join(', ');
}

const COLUMNS: Record<string, Column[]> = {
  sites: [id, field('NAME', 'name'), field('UNDERLAY-POOL', 'underlayPool'), field('IPV4-POOLS', 'ipv4Pools'), field('IPV6-BLOCK', 'ipv6Block'), created],
  racks: [id, field('NAME', 'name'), ref('SITE', 'sites', 'siteId'), created],
  hosts: [
    id,
    field('NAME', 'name'),
    ref('SITE', 'sites', 'siteId'),
    ref('RACK', 'racks', 'rackId'),
    field('STATE', 'state'),
    field('UNDERLAY-IP', 'underlayIp'),
    field('IPV6-PREFIX', 'ipv6Prefix'),
    field('ASN', 'asn'),
    field('CAPACITY', 'capacity', true),
    field('USED', 'used', true),
    field('SVP-CLIENT', 'svpClient', true),
  ],
  tenants: [id, field('NAME', 'name'), { header: 'QUOTAS', value: quotas }, created],
  networks: [
    id,
    field('NAME', 'name'),
    ref('TENANT', 'tenants', 'tenantId'),
    field('KIND', 'kind'),
    field('VNI', 'vni'),
    field('SUBNETS', 'subnets'),
    field('MTU', 'mtu'),
    ref('SITE', 'sites', 'siteId', true),
    field('ARP-RATE', 'arpRate', true),
    field('ND-RATE', 'ndRate', true),
  ],
  instances: [
    id,
    field('NAME', 'name'),
    ref('TENANT', 'tenants', 'tenantId'),
    ref('HOST', 'hosts', 'hostId'),
    field('STATE', 'state'),
    {
      header: 'IPV4',
      value: (r) =>
        cell(
          portsOf(r)
            .map((p) => p.ipv4)
            .filter((a) => a),
        ),
    },
    {
      header: 'IPV6',
      value: (r) =>
        cell(
          portsOf(r)
            .map((p) => p.ipv6)
            .filter((a) => a),
        ),
    },
    ref('SITE', 'sites', 'siteId', true),
    field('SIZE', 'size', true),
    field('IMAGE', 'image', true),
    { header: 'MACS', value: (r) => cell(portsOf(r).map((p) => p.mac)), wide: true },
  ],
  ports: [
    id,
    field('MAC', 'mac'),
    field('IPV4', 'ipv4'),
    field('IPV6', 'ipv6'),
    field('INTERFACE', 'interface'),
    ref('INSTANCE', 'instances', 'instanceId'),
    ref('NETWORK', 'networks', 'networkId'),
    ref('TENANT', 'tenants', 'tenantId', true),
  ],
  vips: [
    id,
    field('NAME', 'name'),
    ref('TENANT', 'tenants', 'tenantId'),
    field('ADDRESS', 'address'),
    { header: 'BACKENDS', value: (r) => String(Array.isArray(r.backends) ? r.backends.length : 0) },
    field('HEALTH-CHECK', 'healthCheck'),
    ref('SITE', 'sites', 'siteId', true),
    field('BACKEND-PORTS', 'backends', true),
  ],
  peers: [
    id,
    field('NEIGHBOR', 'neighbor'),
    field('REMOTE-ASN', 'remoteAsn'),
    ref('HOST', 'hosts', 'hostId'),
    ref('RACK', 'racks', 'rackId'),
    field('IMPORT', 'importPolicy'),
    field('MAX-PREFIX', 'maxPrefix'),
    field('BFD', 'bfd'),
    field('ON-MAX-PREFIX', 'maxPrefixAction', true),
    field('MULTIPROTOCOL', 'multiprotocol', true),
    field('DESCRIPTION', 'description', true),
  ],
  routers: [
    id,
    field('NAME', 'name'),
    field('ROLE', 'role'),
    ref('SITE', 'sites', 'siteId'),
    ref('RACK', 'racks', 'rackId'),
    field('ASN', 'asn'),
    field('LOOPBACK', 'loopback'),
    field('PLATFORM', 'platform'),
    field('ROUTER-ID', 'bgpRouterId', true),
    field('MGMT', 'mgmtAddress', true),
    field('BFD', 'bfd', true),
    field('MAX-PREFIX', 'maxPrefix', true),
    { header: 'UPSTREAMS', value: (r) => String(Array.isArray(r.upstreams) ? r.upstreams.length : 0), wide: true },
  ],
  keys: [id, field('NAME', 'name'), ref('TENANT', 'tenants', 'tenantId'), field('TYPE', 'type'), field('FINGERPRINT', 'fingerprint'), created],
  tokens: [
    id,
    field('NAME', 'name'),
    field('ROLE', 'role'),
    ref('TENANT', 'tenants', 'tenantId'),
    ref('HOST', 'hosts', 'hostId'),
    field('EXPIRES', 'expiresAt'),
    field('LAST-USED', 'lastUsedAt'),
    created,
  ],
  // Rows from the CLI (object and actor named already).
  changes: [field('VERSION', 'version'), field('AT', 'at'), field('KIND', 'kind'), field('OBJECT', 'object'), field('ACTOR', 'actor')],
  agents: [
    field('HOST-ID', 'hostId', true),
    ref('HOST', 'hosts', 'hostId'),
    field('APPLIED', 'appliedVersion'),
    field('LAG', 'lag'),
    field('CONNECTED', 'connectedAt'),
    { header: 'BIRD', value: (r) => cell((r.routing as Row | null)?.birdUp === undefined ? null : (r.routing as Row).birdUp ? 'up' : 'down'), wide: true },
    { header: 'UNGUARDED', value: (r) => cell((r.guards as Row | null)?.unguarded), wide: true },
    {
      header: 'VMS',
      value: (r) => {
        const v = r.vms as { running: number; stopped: number; failing: unknown[] } | null | undefined;
        return v ? `${v.running} running, ${v.stopped} stopped${v.failing.length ? `, ${v.failing.length} failing` : ''}` : '-';
      },
      wide: true,
    },
  ],
};

/** The singular of a kind (`instances`: `instance`), as `-o name` prints it and the commands are named. */
export function singular(kind: string): string {
  return kind.endsWith('s') ? kind.slice(0, -1) : kind;
}

/** What `-o name` prints for a row: what names it in `weft KIND get` (a port's MAC, a change's version). */
function nameOf(kind: string, r: Row): string {
  const v = kind === 'ports' ? r.mac : kind === 'changes' ? r.version : kind === 'agents' ? r.hostId : (r.name ?? r.id);
  return `${singular(kind)}/${cell(v)}`;
}

/** The referenced ids a table of these rows shows by name, by kind (empty for json, yaml and name). */
export function referencedIds(kind: string, data: unknown, format: Format): Map<RefKind, Set<string>> {
  const want = new Map<RefKind, Set<string>>();
  if (format !== 'table' && format !== 'wide') return want;
  const wide = format === 'wide';
  for (const c of COLUMNS[kind] ?? []) {
    if (!c.ref || (c.wide && !wide)) continue;
    const ids = want.get(c.ref.kind) ?? new Set<string>();
    for (const r of rows(data)) {
      const v = r[c.ref.field];
      if (typeof v === 'string') ids.add(v);
    }
    if (ids.size > 0) want.set(c.ref.kind, ids);
  }
  return want;
}

const rows = (data: unknown): Row[] => (Array.isArray(data) ? data : [data]) as Row[];

/** The text to print for `data` (one object or a list of `kind`), ending in a newline unless empty. */
export function render(kind: string, data: unknown, o: RenderOptions): string {
  if (o.format === 'json') return `${JSON.stringify(data, null, 2)}\n`;
  if (o.format === 'yaml') return toYaml(data, { lineWidth: 0 });
  const list = rows(data);
  if (o.format === 'name') return list.map((r) => `${nameOf(kind, r)}\n`).join('');
  const wide = o.format === 'wide';
  const names = o.names ?? {};
  const known = COLUMNS[kind];
  const cols: Column[] = known
    ? known.filter((c) => wide || !c.wide)
    : Object.keys(list[0] ?? {}).map((k) => field(k.replace(/[A-Z]/g, (x) => `-${x}`).toUpperCase(), k));
  const table = [...(o.headers === false ? [] : [cols.map((c) => c.header)]), ...list.map((r) => cols.map((c) => c.value(r, names)))];
  const widths = cols.map((_, i) => Math.max(0, ...table.map((r) => (r[i] as string).length)));
  return table.map((r) => `${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ')}\n`).join('');
}

/** Formats that print the API's data as it is (json, yaml), not a view of it. */
export const isData = (f: Format): f is 'json' | 'yaml' => f === 'json' || f === 'yaml';
