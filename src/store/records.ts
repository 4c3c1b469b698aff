// The self-contained records the change log, the mapping index and the push
// stream carry (PortMapping, HostInfo...), built from rows in this one place.
import type { HostInfo, NetworkInfo, PeerInfo, PortMapping, TokenInfo, VipInfo } from '../model/changes.js';
import type { NetworkKind, Role } from '../model/types.js';
import type { Repo } from './repo.js';
import type { HostRow, NetworkRow, PeerRow, PortRow, TokenRow, VipRow } from './schema.js';

/**
 * A port's mapping from its row, its network's and its host's. Every field
 * is a column as it is: the store's port join selects by this function
 * (PORT_MAPPING_SELECT), so it must stay a plain copy of columns.
 */
export const portMapping = (p: PortRow, n: NetworkRow, h: HostRow): PortMapping => ({
  portId: p.id,
  instanceId: p.instanceId,
  tenantId: p.tenantId,
  networkId: n.id,
  networkKind: n.kind as NetworkKind,
  vni: n.vni,
  mac: p.mac,
  ipv4: p.ipv4,
  ipv6: p.ipv6,
  hostId: h.id,
  underlayIp: h.underlayIp,
});

/** A stand-in row whose every column reads as its qualified name (`p.id`). */
const columnsOf = (table: string) => new Proxy({}, { get: (_, column) => `${table}.${String(column)}` }) as never;

/**
 * The select list of a join of `ports as p`, `networks as n` and `hosts as h`
 * that yields PortMappings: what portMapping() reads, aliased to the field it
 * fills, in its order (so the JSON the change log stores is the same either way).
 */
export const PORT_MAPPING_SELECT: readonly string[] = Object.entries(portMapping(columnsOf('p'), columnsOf('n'), columnsOf('h'))).map(
  ([field, column]) => `${column} as ${field}`,
);

export const hostInfo = (r: HostRow): HostInfo => ({
  hostId: r.id,
  name: r.name,
  siteId: r.siteId,
  rackId: r.rackId,
  underlayIp: r.underlayIp,
  asn: r.asn === null ? null : Number(r.asn),
  state: r.state,
  ipv6Prefix: r.ipv6Prefix,
  svpClient: Number(r.svpClient) === 1,
  svpClientAddresses: JSON.parse(r.svpClientAddresses) as string[],
});

export const networkInfo = (r: NetworkRow): NetworkInfo => ({
  networkId: r.id,
  tenantId: r.tenantId,
  kind: r.kind as NetworkKind,
  vni: r.vni,
  mtu: r.mtu,
  subnets: JSON.parse(r.subnets) as string[],
  arpRate: r.arpRate,
  ndRate: r.ndRate,
});

export const peerInfo = (r: PeerRow): PeerInfo => ({
  peerId: r.id,
  hostId: r.hostId,
  rackId: r.rackId,
  neighbor: r.neighbor,
  remoteAsn: Number(r.remoteAsn),
  importPolicy: r.importPolicy,
  maxPrefix: r.maxPrefix,
  maxPrefixAction: r.maxPrefixAction,
  bfd: r.bfd === 1,
  multiprotocol: r.multiprotocol === 1,
});

/** What the log says of a deleted token: who it was, never its secret hash. */
export const tokenInfo = (r: TokenRow): TokenInfo => ({
  tokenId: r.id,
  name: r.name,
  role: r.role as Role,
  tenantId: r.tenantId,
  hostId: r.hostId,
});

/** The self-contained record of a VIP for the change log: backends with their hosts. */
export async function vipInfo(tx: Repo, vip: VipRow): Promise<VipInfo> {
  const links = await tx.all('vipBackends', { vipId: vip.id });
  const ports = await tx.all('ports', { id: links.map((l) => l.portId) });
  const insts = await tx.all('instances', { id: [...new Set(ports.map((p) => p.instanceId))] });
  const hostOf = new Map(insts.map((i) => [i.id, i.hostId]));
  return {
    vipId: vip.id,
    tenantId: vip.tenantId,
    address: vip.address,
    backends: ports
      .map((p) => ({ portId: p.id, hostId: hostOf.get(p.instanceId) as string, ipv4: p.ipv4, ipv6: p.ipv6 }))
      .sort((a, b) => a.portId.localeCompare(b.portId)),
    healthCheck: JSON.parse(vip.healthCheck),
  };
}
