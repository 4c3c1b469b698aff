// The desired state an agent holds, kept by applying the push stream's
// snapshots and deltas (pure). The dataplane reconciles against it.
import type { HostInfo, InstanceInfo, LoggedChange, NetworkInfo, PeerInfo, PortMapping, VipInfo } from '../../model/changes.js';
import type { DesiredState } from '../../stream/protocol.js';
import { PortTable } from './port-table.js';

export class AgentState {
  version = 0;
  host: HostInfo | null = null;
  /** Every port the host needs, by id (packed: at 100k remote ports this is most of the agent's memory). */
  readonly ports = new PortTable();
  readonly networks = new Map<string, NetworkInfo>();
  readonly vips = new Map<string, VipInfo>();
  readonly peers = new Map<string, PeerInfo>();
  vnis = new Set<number>();
  /** The host's instances, with their profiles' inputs (only when the agent asked for them: hello features "vm"). */
  readonly instances = new Map<string, InstanceInfo>();
  /**
   * Instances that left this host by a move their site makes live (their
   * `migrationUri` set, the destination's): this host migrates each to it
   * (agent/vms.ts). Only a delta says so; a snapshot keeps what it holds.
   */
  readonly departed = new Map<string, InstanceInfo>();
  /** Local instances that arrived by such a move: their domain is awaited from the source before one is started cold. */
  readonly arrived = new Set<string>();
  /** The last snapshot carried instances: a server that sends none (an older one, or a session without "vm") leaves this false. */
  instancesKnown = false;

  /**
   * The host's own ports. Cheaper than filtering `ports` (whose values are
   * built as they are read: 50 ms for 100k remote ports).
   */
  localPorts(): Iterable<PortMapping> {
    return this.ports.ofHost(this.hostId);
  }

  /** `hostId` may be set later, from the stream's welcome, before the first snapshot. */
  constructor(public hostId: string) {}

  /** A snapshot's ports received so far, before its end makes them the state. */
  private staged: PortTable | null = null;

  /** A snapshot starts arriving in chunks (`snapshotPorts`); one left unfinished is dropped. */
  beginSnapshot(): void {
    this.staged = new PortTable();
  }

  /** One chunk of the snapshot begun last; the state changes only at `snapshot`. */
  snapshotPorts(ports: PortMapping[]): void {
    this.staged ??= new PortTable();
    for (const p of ports) this.staged.set(p);
  }

  /** Replaces everything: the chunks passed to `snapshotPorts` since `beginSnapshot`, then `s.ports`. */
  snapshot(version: number, s: DesiredState): void {
    this.version = version;
    this.host = s.host;
    const staged = this.staged ?? new PortTable();
    this.staged = null;
    for (const p of s.ports) staged.set(p);
    this.ports.adopt(staged);
    this.networks.clear();
    for (const n of s.networks) this.networks.set(n.networkId, n);
    this.vips.clear();
    for (const v of s.vips) this.vips.set(v.vipId, v);
    this.peers.clear();
    for (const p of s.peers) this.peers.set(p.peerId, p);
    this.instances.clear();
    for (const i of s.instances ?? []) this.instances.set(i.instanceId, i);
    for (const id of this.departed.keys()) if (this.instances.has(id)) this.departed.delete(id);
    for (const id of this.arrived) if (!this.instances.has(id)) this.arrived.delete(id);
    this.instancesKnown = s.instances !== undefined;
    this.vnis = new Set(s.vnis);
    // The server sends no remote port off the host's VNIs; should one come, the next delta drops it as before.
    this.strays = this.hasStrays();
  }

  /** Whether a remote port off the host's VNIs may be in the table (the next delta then looks at every port). */
  private strays = false;

  private hasStrays(): boolean {
    const t = this.ports;
    for (let slot = 0; slot < t.end; slot++) {
      if (!t.live(slot)) continue;
      const vni = t.vniAt(slot);
      if ((vni === -1 || !this.vnis.has(vni)) && t.hostAt(slot).hostId !== this.hostId) return true;
    }
    return false;
  }

  /**
   * Applies a delta. Idempotent in order: a delta given again (the stream
   * resumes from the last version the agent acknowledged, which may be
   * behind this state) leaves the state as it was.
   */
  delta(version: number, changes: LoggedChange[], vnis: number[]): void {
    // Deltas follow a finished snapshot: chunks still staged are from a connection that broke mid-snapshot.
    this.staged = null;
    for (const c of changes) this.apply(c);
    const before = this.vnis;
    this.vnis = new Set(vnis);
    const t = this.ports;
    if (this.strays || !sameSet(before, this.vnis)) {
      this.strays = false;
      // Ports of VNIs no longer on this host are no longer wanted (its own stay).
      for (let slot = 0; slot < t.end; slot++) {
        if (!t.live(slot) || t.hostAt(slot).hostId === this.hostId) continue;
        const vni = t.vniAt(slot);
        if (vni === -1 || !this.vnis.has(vni)) t.deleteSlot(slot);
      }
    } else {
      // The same VNIs: only a port this delta set can be one the host does not want.
      for (const c of changes)
        if ('port' in c && c.kind !== 'port.deleted' && c.port.hostId !== this.hostId && (c.port.vni === null || !this.vnis.has(c.port.vni)))
          t.delete(c.port.portId);
    }
    t.compact();
    this.version = version;
  }

  private apply(c: LoggedChange): void {
    switch (c.kind) {
      case 'port.created':
      case 'port.moved':
      case 'port.updated':
        this.ports.set(c.port);
        break;
      case 'port.deleted':
        this.ports.delete(c.port.portId);
        break;
      case 'host.created':
      case 'host.updated':
        if (c.host.hostId === this.hostId) this.host = c.host;
        // Remote ports follow their host's underlay.
        this.ports.rehost(c.host.hostId, c.host.underlayIp);
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
      // On another host now (a move): no longer this host's to run.
      case 'instance.updated': {
        const id = c.instance.instanceId;
        const live = (c.instance.migrationUri ?? null) !== null;
        if (c.instance.hostId === this.hostId) {
          this.instances.set(id, c.instance);
          this.departed.delete(id);
          if (live && c.fromHostId !== null && c.fromHostId !== this.hostId) this.arrived.add(id);
        } else {
          this.instances.delete(id);
          this.arrived.delete(id);
          if (live && c.fromHostId === this.hostId) this.departed.set(id, c.instance);
        }
        break;
      }
      case 'instance.deleted':
        this.instances.delete(c.instance.instanceId);
        this.departed.delete(c.instance.instanceId);
        this.arrived.delete(c.instance.instanceId);
        break;
    }
  }
}

function sameSet(a: Set<number>, b: Set<number>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
