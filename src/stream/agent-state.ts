// The desired state an agent holds, kept by applying the push stream's
// snapshots and deltas (pure). The dataplane reconciles against it.
import type { HostInfo, LoggedChange, NetworkInfo, PeerInfo, PortMapping, VipInfo } from '../model/changes.js';
import type { DesiredState } from './protocol.js';

export class AgentState {
  version = 0;
  host: HostInfo | null = null;
  readonly ports = new Map<string, PortMapping>();
  readonly networks = new Map<string, NetworkInfo>();
  readonly vips = new Map<string, VipInfo>();
  readonly peers = new Map<string, PeerInfo>();
  vnis = new Set<number>();

  /** `hostId` may be set later, from the stream's welcome, before the first snapshot. */
  constructor(public hostId: string) {}

  snapshot(version: number, s: DesiredState): void {
    this.version = version;
    this.host = s.host;
    this.ports.clear();
    for (const p of s.ports) this.ports.set(p.portId, this.intern(p));
    this.networks.clear();
    for (const n of s.networks) this.networks.set(n.networkId, n);
    this.vips.clear();
    for (const v of s.vips) this.vips.set(v.vipId, v);
    this.peers.clear();
    for (const p of s.peers) this.peers.set(p.peerId, p);
    this.vnis = new Set(s.vnis);
  }

  /**
   * One copy of each repeated string (tenant, network, host, underlay): JSON
   * gives every port its own, and at 100k remote ports that is most of the
   * agent's memory.
   */
  private readonly strings = new Map<string, string>();
  private one(v: string): string {
    const have = this.strings.get(v);
    if (have !== undefined) return have;
    this.strings.set(v, v);
    return v;
  }
  private intern(p: PortMapping): PortMapping {
    return {
      portId: p.portId,
      instanceId: p.instanceId,
      tenantId: this.one(p.tenantId),
      networkId: this.one(p.networkId),
      networkKind: p.networkKind,
      vni: p.vni,
      mac: p.mac,
      ipv4: p.ipv4,
      ipv6: p.ipv6,
      hostId: this.one(p.hostId),
      underlayIp: this.one(p.underlayIp),
    };
  }

  delta(version: number, changes: LoggedChange[], vnis: number[]): void {
    for (const c of changes) this.apply(c);
    this.vnis = new Set(vnis);
    // Ports of VNIs no longer on this host are no longer wanted (its own stay).
    for (const [id, p] of this.ports) if (p.hostId !== this.hostId && (p.vni === null || !this.vnis.has(p.vni))) this.ports.delete(id);
    this.version = version;
  }

  private apply(c: LoggedChange): void {
    switch (c.kind) {
      case 'port.created':
      case 'port.moved':
      case 'port.updated':
        this.ports.set(c.port.portId, this.intern(c.port));
        break;
      case 'port.deleted':
        this.ports.delete(c.port.portId);
        break;
      case 'host.created':
      case 'host.updated':
        if (c.host.hostId === this.hostId) this.host = c.host;
        // Remote ports follow their host's underlay.
        for (const [id, p] of this.ports)
          if (p.hostId === c.host.hostId && p.underlayIp !== c.host.underlayIp) this.ports.set(id, { ...p, underlayIp: c.host.underlayIp });
        break;
      case 'host.deleted':
        if (c.host.hostId === this.hostId) this.host = null;
        break;
      case 'network.created':
      case 'network.updated':
        this.networks.set(c.network.networkId, c.network);
        break;
      case 'network.deleted':
        this.networks.delete(c.network.networkId);
        break;
      case 'vip.created':
      case 'vip.updated':
        if (c.vip.backends.some((b) => b.hostId === this.hostId)) this.vips.set(c.vip.vipId, c.vip);
        else this.vips.delete(c.vip.vipId);
        break;
      case 'vip.deleted':
        this.vips.delete(c.vip.vipId);
        break;
      case 'peer.created':
      case 'peer.updated':
        this.peers.set(c.peer.peerId, c.peer);
        break;
      case 'peer.deleted':
        this.peers.delete(c.peer.peerId);
        break;
    }
  }
}
