// Which committed changes concern a host (pure): the push stream sends each
// agent only these.
import type { LoggedChange } from '../model/changes.js';

export interface HostView {
  hostId: string;
  rackId: string | null;
  /** VNIs present on the host (before or after the change). */
  vnis: ReadonlySet<number>;
  /** Networks of the host's own ports (routed networks have no VNI but concern it). */
  nets: ReadonlySet<string>;
  /** VIPs the agent holds: it must hear when they lose their backend on it. */
  vips: ReadonlySet<string>;
  /** The agent manages the host's VMs (its hello asked for "vm"): it hears of its instances. */
  vm: boolean;
}

export function concerns(c: LoggedChange, h: HostView): boolean {
  switch (c.kind) {
    case 'port.created':
    case 'port.deleted':
    case 'port.updated':
      return c.port.hostId === h.hostId || (c.port.vni !== null && h.vnis.has(c.port.vni));
    case 'port.moved':
      return c.port.hostId === h.hostId || c.from.hostId === h.hostId || (c.port.vni !== null && h.vnis.has(c.port.vni));
    case 'host.created':
      return c.host.hostId === h.hostId;
    // Another host's underlay or state change moves every FDB entry that points at it.
    case 'host.updated':
    case 'host.deleted':
      return true;
    case 'network.created':
    case 'network.updated':
    case 'network.deleted':
      return h.nets.has(c.network.networkId) || (c.network.vni !== null && h.vnis.has(c.network.vni));
    case 'vip.created':
    case 'vip.updated':
    case 'vip.deleted':
      return h.vips.has(c.vip.vipId) || c.vip.backends.some((b) => b.hostId === h.hostId);
    case 'peer.created':
    case 'peer.updated':
    case 'peer.deleted':
      return c.peer.hostId === h.hostId || (c.peer.rackId !== null && c.peer.rackId === h.rackId);
    // No agent's business (and agents refuse kinds they do not know): the stream server acts on it, closing the token's sessions.
    case 'token.deleted':
      return false;
    // Fabric routers read their configs from the API (docs/fabric.md), not from the stream.
    case 'router.created':
    case 'router.updated':
    case 'router.deleted':
    case 'fabric.updated':
      return false;
    // Only to an agent that manages VMs: the host an instance is on, and on a move the one it left.
    case 'instance.updated':
      return h.vm && (c.instance.hostId === h.hostId || c.fromHostId === h.hostId);
    case 'instance.deleted':
      return h.vm && c.instance.hostId === h.hostId;
  }
}
