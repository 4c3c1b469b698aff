// Table shapes as Kysely sees them (camelCase here, snake_case in SQL via
// CamelCasePlugin). JSON columns are text in both dialects; booleans are
// integers 0/1 so that one query layer serves SQLite and PostgreSQL alike.
// A column that holds an entity's field as it is takes its type from the
// entity (model/schema.ts defines it); the rest are declared here.
import type { Host, Instance, Network, Peer, Port, Rack, Router, Site, SshKey, Tenant, Token, Vip } from '../model/types.js';

export interface SiteRow extends Omit<Site, 'ipv4Pools' | 'vm'> {
  /** JSON array of CIDRs. */
  ipv4Pools: string;
  /** JSON of the VmSettings the site sets (the rest are VM_DEFAULTS); null: all defaults. */
  vm: string | null;
}

export type RackRow = Rack;

export interface HostRow extends Omit<Host, 'capacity' | 'used' | 'svpClient' | 'svpClientAddresses' | 'state'> {
  cpus: number;
  memoryMb: number;
  diskGb: number;
  state: string;
  /** What its instances use; kept by the core under the write lock. */
  usedCpus: number;
  usedMemoryMb: number;
  usedDiskGb: number;
  /** 1 when the operator made it an SVP client: only such hosts get shoot-downs. */
  svpClient: number;
  /** JSON array of the source addresses besides the underlay its SVP log is served to. */
  svpClientAddresses: string;
}

export interface TenantRow extends Omit<Tenant, 'quotas'> {
  /** The tenant's own quotas; null: the server's default. */
  quotaInstances: number | null;
  quotaPorts: number | null;
  quotaNetworks: number | null;
  quotaPublicIpv4: number | null;
  quotaVips: number | null;
}

export interface NetworkRow extends Omit<Network, 'kind' | 'subnets'> {
  kind: string;
  /** JSON array of CIDRs. */
  subnets: string;
}

export interface InstanceRow extends Omit<Instance, 'size' | 'state'> {
  cpus: number;
  memoryMb: number;
  diskGb: number;
  state: string;
}

/** A port as stored: its interface name is derived from its id (model/ifname.ts), not kept. */
export type PortRow = Omit<Port, 'interface'>;

/** Its backends are rows of vipBackends. */
export interface VipRow extends Omit<Vip, 'backends' | 'healthCheck'> {
  /** The HealthCheck as JSON. */
  healthCheck: string;
}

export interface VipBackendRow {
  vipId: string;
  portId: string;
}

export interface PeerRow extends Omit<Peer, 'importPolicy' | 'maxPrefixAction' | 'bfd' | 'multiprotocol'> {
  importPolicy: string;
  maxPrefixAction: string;
  bfd: number;
  multiprotocol: number;
}

export type SshKeyRow = SshKey;

export interface RouterRow extends Omit<Router, 'role' | 'platform' | 'bfd' | 'upstreams'> {
  role: string;
  platform: string;
  bfd: number;
  /** JSON array of Upstream. */
  upstreams: string;
}

/** No secret is kept: its salted hash and a lookup key (core/tokens.ts). */
export interface TokenRow extends Omit<Token, 'role'> {
  role: string;
  /** HMAC-SHA256, keyed by `salt`, of the secret's SHA-256 (hex). */
  secretHash: string;
  /** 16 random bytes, hex. */
  salt: string;
  /** The first 12 hex digits of the secret's SHA-256, indexed. */
  lookup: string;
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
  /** The token whose request made the change (its id, and its name then); null without one. */
  actorTokenId: string | null;
  actorName: string | null;
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
  sshKeys: SshKeyRow;
  routers: RouterRow;
  allocations: AllocationRow;
  cursors: CursorRow;
  changes: ChangeRow;
  shootdowns: ShootdownRow;
}
