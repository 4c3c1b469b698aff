// CLI output: JSON as the API returned it, or an aligned table with the
// columns that matter for each kind.
const COLUMNS: Record<string, string[]> = {
  sites: ['id', 'name', 'underlayPool', 'ipv4Pools', 'ipv6Block'],
  racks: ['id', 'name', 'siteId'],
  hosts: ['id', 'name', 'state', 'underlayIp', 'ipv6Prefix', 'asn', 'capacity', 'used'],
  tenants: ['id', 'name', 'quotas'],
  networks: ['id', 'name', 'kind', 'vni', 'subnets', 'mtu', 'tenantId'],
  instances: ['id', 'name', 'state', 'hostId', 'size', 'ports'],
  ports: ['id', 'mac', 'ipv4', 'ipv6', 'interface', 'networkId', 'instanceId'],
  vips: ['id', 'name', 'address', 'backends', 'healthCheck'],
  peers: ['id', 'neighbor', 'remoteAsn', 'hostId', 'rackId', 'importPolicy', 'maxPrefix', 'bfd'],
  tokens: ['id', 'name', 'role', 'tenantId', 'hostId'],
  changes: ['version', 'at', 'kind', 'object', 'actor'],
  agents: ['hostId', 'appliedVersion', 'lag', 'connectedAt'],
};

type Row = Record<string, unknown>;

/** Columns shown from more than one field: a tenant's quotas as used/limit (get), or its own limits (list). */
const DERIVED: Record<string, Record<string, (r: Row) => string>> = {
  tenants: {
    quotas: (r) => {
      const own = (r.quotas ?? {}) as Record<string, number | null>;
      const limits = r.limits as Record<string, number> | undefined;
      const usage = r.usage as Record<string, number> | undefined;
      const kinds = Object.keys(limits ?? own);
      if (limits && usage) return kinds.map((k) => `${k} ${usage[k]}/${limits[k]}${own[k] === null ? '' : '*'}`).join(', ');
      const set = kinds.filter((k) => own[k] !== null);
      return set.length === 0 ? 'default' : set.map((k) => `${k} ${own[k]}`).join(', ');
    },
  },
};

function cell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (Array.isArray(v))
    return v.length === 0
      ? '-'
      : v.map((x) => (typeof x === 'object' ? ((x as { ipv4?: string; id?: string }).ipv4 ?? (x as { id?: string }).id ?? '?') : String(x))).join(',');
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('cpus' in o) return `${o.cpus}c/${o.memoryMb}M/${o.diskGb}G`;
    if ('type' in o && 'port' in o) return `${o.type}:${o.port}${o.path ?? ''}`;
    return JSON.stringify(v);
  }
  return String(v);
}

export function printItems(kind: string, data: unknown, format: 'table' | 'json'): void {
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    return;
  }
  const rows = (Array.isArray(data) ? data : [data]) as Row[];
  const cols = COLUMNS[kind] ?? Object.keys(rows[0] ?? {});
  const derived = DERIVED[kind] ?? {};
  const table = [cols.map((c) => c.toUpperCase()), ...rows.map((r) => cols.map((c) => (derived[c] ? derived[c](r) : cell(r[c]))))];
  const widths = cols.map((_, i) => Math.max(...table.map((r) => (r[i] as string).length)));
  for (const r of table) process.stdout.write(`${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ')}\n`);
}
