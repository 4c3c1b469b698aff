// Table shapes as Kysely sees them (camelCase here, snake_case in SQL via
// CamelCasePlugin). JSON columns are text in both dialects; booleans are
// integers 0/1 so that one query layer serves SQLite and PostgreSQL alike.

export interface SiteRow {
  id: string;
  name: string;
  underlayPool: string | null;
  ipv4Pools: string;
  ipv6Block: string | null;
  createdAt: string;
}

export interface RackRow {
  id: string;
  siteId: string;
  name: string;
  createdAt: string;
}

export interface HostRow {
  id: string;
  name: string;
  siteId: string;
  rackId: string | null;
  underlayIp: string;
  asn: number | null;
  cpus: number;
  memoryMb: number;
  diskGb: number;
  state: string;
  ipv6Prefix: string | null;
  createdAt: string;
  /** What its instances use; kept by the core under the write lock. */
  usedCpus: number;
  usedMemoryMb: number;
  usedDiskGb: number;
  /** 1 once the host has polled SVP's shoot-down log: only such hosts get entries. */
  svpClient: number;
}

export interface TenantRow {
  id: string;
  name: string;
  createdAt: string;
}

export interface NetworkRow {
  id: string;
  tenantId: string;
  name: string;
  kind: string;
  vni: number | null;
  subnets: string;
  siteId: string | null;
  mtu: number;
  arpRate: number | null;
  ndRate: number | null;
  createdAt: string;
}

export interface InstanceRow {
  id: string;
  tenantId: string;
  name: string;
  siteId: string;
  hostId: string;
  cpus: number;
  memoryMb: number;
  diskGb: number;
  state: string;
  createdAt: string;
}

export interface PortRow {
  id: string;
  instanceId: string;
  networkId: string;
  tenantId: string;
  mac: string;
  ipv4: string | null;
  ipv6: string | null;
  createdAt: string;
}

export interface VipRow {
  id: string;
  tenantId: string;
  name: string;
  siteId: string | null;
  address: string;
  healthCheck: string;
  createdAt: string;
}

export interface VipBackendRow {
  vipId: string;
  portId: string;
}

export interface PeerRow {
  id: string;
  hostId: string | null;
  rackId: string | null;
  neighbor: string;
  remoteAsn: number;
  importPolicy: string;
  maxPrefix: number;
  maxPrefixAction: string;
  bfd: number;
  multiprotocol: number;
  description: string | null;
  createdAt: string;
}

export interface TokenRow {
  id: string;
  name: string;
  role: string;
  tenantId: string | null;
  hostId: string | null;
  secretHash: string;
  createdAt: string;
}

/** One taken number of an allocation pool (IP, MAC, VNI, /64 slot). */
export interface AllocationRow {
  pool: string;
  key: string;
  owner: string;
}

export interface CursorRow {
  pool: string;
  nextKey: string;
}

/** One SVP shoot-down entry for one host; `id` is 32 hex digits (16 bytes on the wire). */
export interface ShootdownRow {
  id: string;
  hostId: string;
  version: number;
  idx: number;
  kind: string;
  vni: number;
  mac: string | null;
  ip: string | null;
}

export interface ChangeRow {
  version: number;
  kind: string;
  entityId: string;
  vni: number | null;
  at: string;
  payload: string;
}

export interface DB {
  sites: SiteRow;
  racks: RackRow;
  hosts: HostRow;
  tenants: TenantRow;
  networks: NetworkRow;
  instances: InstanceRow;
  ports: PortRow;
  vips: VipRow;
  vipBackends: VipBackendRow;
  peers: PeerRow;
  tokens: TokenRow;
  allocations: AllocationRow;
  cursors: CursorRow;
  changes: ChangeRow;
  shootdowns: ShootdownRow;
}
