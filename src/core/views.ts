// Rows to the entities the API shows (the change log's records are built
// beside the store's queries, in store/records.ts).
import { portIfname } from '../model/ifname.js';
import type {
  HealthCheck,
  Host,
  HostState,
  ImportPolicy,
  Instance,
  InstanceState,
  MaxPrefixAction,
  Network,
  NetworkKind,
  Peer,
  Port,
  Rack,
  Role,
  Router,
  RouterPlatform,
  RouterRole,
  Site,
  SshKey,
  Tenant,
  Token,
  Upstream,
  Vip,
} from '../model/types.js';
import { siteVm } from '../store/records.js';
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

export const siteView = (r: SiteRow): Site => ({
  id: r.id,
  name: r.name,
  underlayPool: r.underlayPool,
  ipv4Pools: JSON.parse(r.ipv4Pools) as string[],
  ipv6Block: r.ipv6Block,
  vm: siteVm(r),
  createdAt: r.createdAt,
});

export const rackView = (r: RackRow): Rack => ({ id: r.id, siteId: r.siteId, name: r.name, createdAt: r.createdAt });

export const hostView = (r: HostRow): Host => ({
  id: r.id,
  name: r.name,
  siteId: r.siteId,
  rackId: r.rackId,
  underlayIp: r.underlayIp,
  asn: r.asn === null ? null : Number(r.asn),
  capacity: { cpus: r.cpus, memoryMb: r.memoryMb, diskGb: r.diskGb },
  used: { cpus: Number(r.usedCpus), memoryMb: Number(r.usedMemoryMb), diskGb: Number(r.usedDiskGb) },
  svpClient: Number(r.svpClient) === 1,
  svpClientAddresses: JSON.parse(r.svpClientAddresses) as string[],
  state: r.state as HostState,
  ipv6Prefix: r.ipv6Prefix,
  createdAt: r.createdAt,
});

export const tenantView = (r: TenantRow): Tenant => ({
  id: r.id,
  name: r.name,
  quotas: { instances: r.quotaInstances, ports: r.quotaPorts, networks: r.quotaNetworks, publicIpv4: r.quotaPublicIpv4, vips: r.quotaVips },
  createdAt: r.createdAt,
});

export const networkView = (r: NetworkRow): Network => ({
  id: r.id,
  tenantId: r.tenantId,
  name: r.name,
  kind: r.kind as NetworkKind,
  vni: r.vni,
  subnets: JSON.parse(r.subnets) as string[],
  siteId: r.siteId,
  mtu: r.mtu,
  arpRate: r.arpRate,
  ndRate: r.ndRate,
  createdAt: r.createdAt,
});

export const instanceView = (r: InstanceRow): Instance => ({
  id: r.id,
  tenantId: r.tenantId,
  name: r.name,
  siteId: r.siteId,
  hostId: r.hostId,
  size: { cpus: r.cpus, memoryMb: r.memoryMb, diskGb: r.diskGb },
  state: r.state as InstanceState,
  image: r.image,
  createdAt: r.createdAt,
});

export const portView = (r: PortRow): Port => ({
  id: r.id,
  instanceId: r.instanceId,
  networkId: r.networkId,
  tenantId: r.tenantId,
  mac: r.mac,
  ipv4: r.ipv4,
  ipv6: r.ipv6,
  interface: portIfname(r.id),
  createdAt: r.createdAt,
});

export const vipView = (r: VipRow, backends: string[]): Vip => ({
  id: r.id,
  tenantId: r.tenantId,
  name: r.name,
  siteId: r.siteId,
  address: r.address,
  backends,
  healthCheck: JSON.parse(r.healthCheck) as HealthCheck,
  createdAt: r.createdAt,
});

export const peerView = (r: PeerRow): Peer => ({
  id: r.id,
  hostId: r.hostId,
  rackId: r.rackId,
  neighbor: r.neighbor,
  remoteAsn: Number(r.remoteAsn),
  importPolicy: r.importPolicy as ImportPolicy,
  maxPrefix: r.maxPrefix,
  maxPrefixAction: r.maxPrefixAction as MaxPrefixAction,
  bfd: r.bfd === 1,
  multiprotocol: r.multiprotocol === 1,
  description: r.description,
  createdAt: r.createdAt,
});

export const routerView = (r: RouterRow): Router => ({
  id: r.id,
  name: r.name,
  role: r.role as RouterRole,
  siteId: r.siteId,
  rackId: r.rackId,
  asn: Number(r.asn),
  bgpRouterId: r.bgpRouterId,
  loopback: r.loopback,
  mgmtAddress: r.mgmtAddress,
  platform: r.platform as RouterPlatform,
  bfd: r.bfd === 1,
  maxPrefix: r.maxPrefix,
  upstreams: JSON.parse(r.upstreams) as Upstream[],
  createdAt: r.createdAt,
});

export const sshKeyView = (r: SshKeyRow): SshKey => ({
  id: r.id,
  tenantId: r.tenantId,
  name: r.name,
  type: r.type,
  fingerprint: r.fingerprint,
  publicKey: r.publicKey,
  createdAt: r.createdAt,
});

export const tokenView = (r: TokenRow): Token => ({
  id: r.id,
  name: r.name,
  role: r.role as Role,
  tenantId: r.tenantId,
  hostId: r.hostId,
  createdAt: r.createdAt,
  expiresAt: r.expiresAt,
  lastUsedAt: r.lastUsedAt,
});
