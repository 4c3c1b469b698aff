// Entities of the source of truth, as the API shows them. Ids are UUIDs;
// names are unique in their scope (sites, hosts, tenants: cloud-wide; racks:
// per site; networks, instances, VIPs: per tenant).

export type HostState = 'active' | 'draining' | 'down';
export const HOST_STATES: readonly HostState[] = ['active', 'draining', 'down'];

export type NetworkKind = 'overlay' | 'routed';
export const NETWORK_KINDS: readonly NetworkKind[] = ['overlay', 'routed'];

export type InstanceState = 'running' | 'stopped';
export const INSTANCE_STATES: readonly InstanceState[] = ['running', 'stopped'];

export type Role = 'admin' | 'tenant' | 'readonly' | 'agent';
export const ROLES: readonly Role[] = ['admin', 'tenant', 'readonly', 'agent'];

export type ImportPolicy = 'none' | 'default' | 'full';
export const IMPORT_POLICIES: readonly ImportPolicy[] = ['none', 'default', 'full'];

/** What a BGP session does when its peer sends more prefixes than its limit (BIRD's `receive limit ... action`). */
export type MaxPrefixAction = 'disable' | 'restart' | 'block' | 'warn';
export const MAX_PREFIX_ACTIONS: readonly MaxPrefixAction[] = ['disable', 'restart', 'block', 'warn'];

export type PlacementPolicy = 'spread' | 'pack';
export const PLACEMENT_POLICIES: readonly PlacementPolicy[] = ['spread', 'pack'];

export interface Site {
  id: string;
  name: string;
  /** Underlay range hosts' underlay IPs are taken from when not given. */
  underlayPool: string | null;
  /** Public IPv4 ranges (CIDRs) for routed networks and VIPs. */
  ipv4Pools: string[];
  /** IPv6 block from which each host gets a /64. */
  ipv6Block: string | null;
  createdAt: string;
}

export interface Rack {
  id: string;
  siteId: string;
  name: string;
  createdAt: string;
}

export interface Resources {
  cpus: number;
  memoryMb: number;
  diskGb: number;
}

export interface Host {
  id: string;
  name: string;
  siteId: string;
  rackId: string | null;
  underlayIp: string;
  asn: number | null;
  capacity: Resources;
  /** What the instances placed on it use. */
  used: Resources;
  /** It has polled SVP's shoot-down log (varpd, or an agent in lazy mode), so it gets shoot-downs. */
  svpClient: boolean;
  state: HostState;
  /** The host's /64 from its site's IPv6 block (null when the site has none). */
  ipv6Prefix: string | null;
  createdAt: string;
}

export interface Tenant {
  id: string;
  name: string;
  createdAt: string;
}

export interface Network {
  id: string;
  tenantId: string;
  name: string;
  kind: NetworkKind;
  /** VXLAN network identifier; overlay networks only. */
  vni: number | null;
  /** Overlay: the network's own IPv4/IPv6 subnets. Routed: empty (addresses come from the site). */
  subnets: string[];
  /** Routed networks belong to a site; overlay networks span sites (null). */
  siteId: string | null;
  mtu: number;
  /** Per-port ARP and NDP guard limits, packets per second (null: the agent's default). */
  arpRate: number | null;
  ndRate: number | null;
  createdAt: string;
}

export interface Instance {
  id: string;
  tenantId: string;
  name: string;
  siteId: string;
  hostId: string;
  size: Resources;
  state: InstanceState;
  createdAt: string;
}

export interface Port {
  id: string;
  instanceId: string;
  networkId: string;
  tenantId: string;
  mac: string;
  ipv4: string | null;
  ipv6: string | null;
  createdAt: string;
}

export interface HealthCheck {
  type: 'tcp' | 'http';
  port: number;
  path: string | null;
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
}

export interface Vip {
  id: string;
  tenantId: string;
  name: string;
  siteId: string | null;
  address: string;
  backends: string[];
  healthCheck: HealthCheck;
  createdAt: string;
}

export interface Peer {
  id: string;
  /** Exactly one of hostId and rackId is set: the session is per host or for every host of a rack. */
  hostId: string | null;
  rackId: string | null;
  neighbor: string;
  remoteAsn: number;
  importPolicy: ImportPolicy;
  maxPrefix: number;
  /** disable: shut the session until an operator enables it; restart: reset it (BIRD retries); block: keep it, drop the excess; warn: log only. */
  maxPrefixAction: MaxPrefixAction;
  bfd: boolean;
  /** Both address families on this one session (e.g. IPv4 over an IPv6 session). */
  multiprotocol: boolean;
  description: string | null;
  createdAt: string;
}

export interface Token {
  id: string;
  name: string;
  role: Role;
  tenantId: string | null;
  hostId: string | null;
  createdAt: string;
}

/** A page of a list: `next` is the cursor to pass back, null on the last page. */
export interface Page<T> {
  items: T[];
  next: string | null;
}
