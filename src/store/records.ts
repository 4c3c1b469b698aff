// The self-contained records the change log, the mapping index and the push
// stream carry (PortMapping, HostInfo...), built from rows in this one place.
import type { HostInfo, NetworkInfo, PeerInfo, PortMapping, VipInfo } from '../model/changes.js';
import type { NetworkKind } from '../model/types.js';
import type { Repo } from './repo.js';
import type { HostRow, NetworkRow, PeerRow, PortRow, VipRow } from './schema.js';

type Source = readonly ['p', keyof PortRow] | readonly ['n', keyof NetworkRow] | readonly ['h', keyof HostRow];

/**
 * Where each PortMapping field comes from: a column of the port (p), of its
 * network (n) or of the host its instance is on (h), in the record's field
 * order. portMapping() reads rows by it and the store's port join selects
 * by it, so a mapping is the same record whichever built it.
 */
const PORT_MAPPING_COLUMNS = {
  portId: ['p', 'id'],
  instanceId: ['p', 'instanceId'],
  tenantId: ['p', 'tenantId'],
  networkId: ['n', 'id'],
  networkKind: ['n', 'kind'],
  vni: ['n', 'vni'],
  mac: ['p', 'mac'],
  ipv4: ['p', 'ipv4'],
  ipv6: ['p', 'ipv6'],
  hostId: ['h', 'id'],
  underlayIp: ['h', 'underlayIp'],
} as const satisfies Record<keyof PortMapping, Source>;

const PORT_MAPPING_FIELDS = Object.entries(PORT_MAPPING_COLUMNS) as [keyof PortMapping, Source][];

/** The select list of a join of `ports as p`, `networks as n` and `hosts as h` that yields PortMappings. */
export const PORT_MAPPING_SELECT: readonly string[] = PORT_MAPPING_FIELDS.map(([field, [table, column]]) => `${table}.${column} as ${field}`);

/** A port's mapping from its row, its network's and its host's. */
export function portMapping(p: PortRow, n: NetworkRow, h: HostRow): PortMapping {
  const rows = { p, n, h } as unknown as Record<Source[0], Record<string, unknown>>;
  const m: Record<string, unknown> = {};
  for (const [field, [table, column]] of PORT_MAPPING_FIELDS) m[field] = rows[table][column];
  return m as unknown as PortMapping;
}

export const hostInfo = (r: HostRow): HostInfo => ({
  hostId: r.id,
  name: r.name,
  siteId: r.siteId,
  rackId: r.rackId,
  underlayIp: r.underlayIp,
  asn: r.asn === null ? null : Number(r.asn),
  state: r.state,
  ipv6Prefix: r.ipv6Prefix,
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
