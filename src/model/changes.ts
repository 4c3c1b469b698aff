// The change log's entries: every change that affects forwarding, and every
// token deleted (so each replica's push stream ends its sessions), each
// self-contained (before and after), so the mapping index and the agents'
// push stream can follow the log without querying the store again.
import type { Static } from '@sinclair/typebox';
import type { ProfileInput } from './profile.js';
import type * as S from './schema.js';

// Each record's shape is defined once, as a schema in model/schema.ts.
export type PortMapping = Static<typeof S.PortMapping>;
export type HostInfo = Static<typeof S.HostInfo>;
export type NetworkInfo = Static<typeof S.NetworkInfo>;
export type VipInfo = Static<typeof S.VipInfo>;
export type PeerInfo = Static<typeof S.PeerInfo>;
export type TokenInfo = Static<typeof S.TokenInfo>;
export type RouterInfo = Static<typeof S.RouterInfo>;
export type AffectedRouter = Static<typeof S.AffectedRouter>;
/** `profile` is a ProfileInput (model/profile.ts), or null: no image yet. */
export type InstanceInfo = Omit<Static<typeof S.InstanceInfo>, 'profile'> & { profile: ProfileInput | null };
export type ChangeActor = Static<typeof S.ChangeActor>;
export type ChangeObject = Static<typeof S.ChangeObject>;

export type Change =
  | { kind: 'port.created'; port: PortMapping }
  | { kind: 'port.deleted'; port: PortMapping }
  | { kind: 'port.moved'; port: PortMapping; from: { hostId: string; underlayIp: string } }
  | { kind: 'port.updated'; port: PortMapping; before: PortMapping }
  | { kind: 'host.created' | 'host.deleted'; host: HostInfo }
  | { kind: 'host.updated'; host: HostInfo; before: HostInfo }
  | { kind: 'network.created' | 'network.updated' | 'network.deleted'; network: NetworkInfo }
  | { kind: 'vip.created' | 'vip.updated' | 'vip.deleted'; vip: VipInfo }
  | { kind: 'peer.created' | 'peer.updated' | 'peer.deleted'; peer: PeerInfo }
  // Not forwarding state: it tells every replica's stream server to close the token's sessions.
  | { kind: 'token.deleted'; token: TokenInfo }
  // What a VM's host runs (its profile's inputs changed: the instance, its ports, its site's VM
  // settings, its tenant's keys); `fromHostId`: the host it left, on a move. Only agents that
  // manage VMs get these (docs/vm-profiles.md).
  | { kind: 'instance.updated'; instance: InstanceInfo; fromHostId: string | null }
  | { kind: 'instance.deleted'; instance: InstanceInfo }
  // Fabric routers (docs/fabric.md): not forwarding state of any hypervisor, sent to no agent.
  | { kind: 'router.created' | 'router.updated' | 'router.deleted'; router: RouterInfo }
  // A change of something else (`cause`: its kind and id) altered these routers' rendered configs:
  // logged right after it, in the same transaction.
  | { kind: 'fabric.updated'; routers: AffectedRouter[]; cause: { kind: string; id: string } };

export type ChangeKind = Change['kind'];

/** A committed change with its place in the log. Versions start at 1 and have no gaps. */
export type LoggedChange = Change & { version: number; at: string };

/**
 * A committed change as the audit trail shows it (GET /v1/changes): with
 * who made it. Followers (the index, the stream) read LoggedChange, which
 * has no actor, so no agent ever learns an operator's token name.
 */
export type AuditedChange = LoggedChange & { actor: ChangeActor | null };

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
    case 'token.deleted':
      return c.token.tokenId;
    case 'instance.updated':
    case 'instance.deleted':
      return c.instance.instanceId;
    case 'router.created':
    case 'router.updated':
    case 'router.deleted':
      return c.router.routerId;
    case 'fabric.updated':
      return c.cause.id;
  }
}

/** The kind of object a change is about: the part of its kind before the dot. */
export type ObjectKind = 'port' | 'host' | 'network' | 'vip' | 'peer' | 'token' | 'instance' | 'router' | 'fabric';

/**
 * What a change is about: the object's kind, id, and the name its payload
 * carries (a host's or token's name, a port's MAC, a peer's neighbor
 * address); null for networks and VIPs, whose records carry none (the
 * API fills those in from the rows that still exist).
 */
export function changeObject(c: Change): ChangeObject {
  const kind = c.kind.slice(0, c.kind.indexOf('.')) as ObjectKind;
  const id = changeEntity(c);
  switch (c.kind) {
    case 'port.created':
    case 'port.deleted':
    case 'port.moved':
    case 'port.updated':
      return { kind, id, name: c.port.mac };
    case 'host.created':
    case 'host.deleted':
    case 'host.updated':
      return { kind, id, name: c.host.name };
    case 'peer.created':
    case 'peer.updated':
    case 'peer.deleted':
      return { kind, id, name: c.peer.neighbor };
    case 'token.deleted':
      return { kind, id, name: c.token.name };
    case 'instance.updated':
    case 'instance.deleted':
      return { kind, id, name: c.instance.name };
    case 'router.created':
    case 'router.updated':
    case 'router.deleted':
      return { kind, id, name: c.router.name };
    // Named by the routers it altered; its id is the change that caused it.
    case 'fabric.updated':
      return { kind, id, name: c.routers.map((r) => r.name).join(',') };
    default:
      return { kind, id, name: null };
  }
}
