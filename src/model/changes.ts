// The change log's entries: every change that affects forwarding, each
// self-contained (before and after), so the mapping index and the agents'
// push stream can follow the log without querying the store again.

/** Where a port is and what it answers to: the unit of the mapping service. */
export interface PortMapping {
  portId: string;
  instanceId: string;
  tenantId: string;
  networkId: string;
  networkKind: 'overlay' | 'routed';
  /** Null for routed networks. */
  vni: number | null;
  mac: string;
  ipv4: string | null;
  ipv6: string | null;
  hostId: string;
  /** The host's underlay (VTEP) address. */
  underlayIp: string;
}

export interface HostInfo {
  hostId: string;
  name: string;
  siteId: string;
  rackId: string | null;
  underlayIp: string;
  asn: number | null;
  state: string;
  ipv6Prefix: string | null;
}

export interface NetworkInfo {
  networkId: string;
  tenantId: string;
  kind: 'overlay' | 'routed';
  vni: number | null;
  mtu: number;
  subnets: string[];
  arpRate: number | null;
  ndRate: number | null;
}

export interface VipInfo {
  vipId: string;
  tenantId: string;
  address: string;
  /** Backend ports with the host each is on. */
  backends: { portId: string; hostId: string; ipv4: string | null; ipv6: string | null }[];
  healthCheck: unknown;
}

export interface PeerInfo {
  peerId: string;
  hostId: string | null;
  rackId: string | null;
  neighbor: string;
  remoteAsn: number;
  importPolicy: string;
  maxPrefix: number;
  maxPrefixAction: string;
  bfd: boolean;
  multiprotocol: boolean;
}

export type Change =
  | { kind: 'port.created'; port: PortMapping }
  | { kind: 'port.deleted'; port: PortMapping }
  | { kind: 'port.moved'; port: PortMapping; from: { hostId: string; underlayIp: string } }
  | { kind: 'port.updated'; port: PortMapping; before: PortMapping }
  | { kind: 'host.created' | 'host.deleted'; host: HostInfo }
  | { kind: 'host.updated'; host: HostInfo; before: HostInfo }
  | { kind: 'network.created' | 'network.updated' | 'network.deleted'; network: NetworkInfo }
  | { kind: 'vip.created' | 'vip.updated' | 'vip.deleted'; vip: VipInfo }
  | { kind: 'peer.created' | 'peer.updated' | 'peer.deleted'; peer: PeerInfo };

export type ChangeKind = Change['kind'];

/** A committed change with its place in the log. Versions start at 1 and have no gaps. */
export type LoggedChange = Change & { version: number; at: string };

/** The VNI a change concerns, if any (indexed, so a host can follow only its VNIs). */
export function changeVni(c: Change): number | null {
  switch (c.kind) {
    case 'port.created':
    case 'port.deleted':
    case 'port.moved':
    case 'port.updated':
      return c.port.vni;
    case 'network.created':
    case 'network.updated':
    case 'network.deleted':
      return c.network.vni;
    default:
      return null;
  }
}

/** The id of the entity a change concerns. */
export function changeEntity(c: Change): string {
  switch (c.kind) {
    case 'port.created':
    case 'port.deleted':
    case 'port.moved':
    case 'port.updated':
      return c.port.portId;
    case 'host.created':
    case 'host.deleted':
    case 'host.updated':
      return c.host.hostId;
    case 'network.created':
    case 'network.updated':
    case 'network.deleted':
      return c.network.networkId;
    case 'vip.created':
    case 'vip.updated':
    case 'vip.deleted':
      return c.vip.vipId;
    case 'peer.created':
    case 'peer.updated':
    case 'peer.deleted':
      return c.peer.peerId;
  }
}
