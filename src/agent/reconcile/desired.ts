// What the kernel of one host should hold, computed from the agent's desired
// state (the push stream's view): a pure function, diffed against what was
// observed by plan.ts.

import { emptyKernelState, fdbKey, type KernelState, neighKey, type PlugState, type VniState } from '../dataplane/dataplane.js';
import { type GuardPort, guardSpecHash } from '../dataplane/guard-spec.js';
import { portIfname } from '../names.js';
import type { AgentState } from '../state/agent-state.js';
import type { PortTable } from '../state/port-table.js';

export interface DesiredOptions {
  /** Lazy (SVP) mode: remote entries are learned from misses, not programmed up front. */
  lazy: boolean;
  /** Per-port ARP and ND limits (packets/s) for networks that set none. */
  arpRate: number;
  ndRate: number;
}

export const DEFAULT_ARP_RATE = 20;
export const DEFAULT_ND_RATE = 20;
/** The overlay MTU of a network that names none. */
export const DEFAULT_MTU = 1500;

export interface Desired {
  state: KernelState;
  /** The guard spec of every local port, by ifname. */
  guardPorts: Map<string, GuardPort>;
  /** The addresses of every local port, by ifname (for announcements). */
  ips: Map<string, string[]>;
  /** Local ports left unguarded and unplugged because their guard spec is refused (DesiredDevices.refused). */
  refused: Map<string, { portId: string; reason: string }>;
}

/** The part of the desired kernel that is not per remote port: VNIs, and the plugs and guards of local ports. */
export interface DesiredDevices {
  vnis: Map<number, VniState>;
  plugs: Map<string, PlugState>;
  guards: Map<string, string>;
  guardPorts: Map<string, GuardPort>;
  ips: Map<string, string[]>;
  /** The host-side interface of every local port on one of the VNIs, by its slot in `AgentState.ports`. */
  ifnames: Map<number, string>;
  /**
   * Local ports whose guard cannot be rendered (normalGuardPort refuses the
   * spec, e.g. an address the server should have refused), by ifname. They
   * get no guard and no plug (one plugged is unplugged): never forwarding
   * unguarded. Their addresses' entries are kept, as for any port.
   */
  refused: Map<string, { portId: string; reason: string }>;
}

/** The VNIs, plugs and guards a host needs (a scan of its ports; strings only for its own). */
export function desiredDevices(s: AgentState, o: DesiredOptions): DesiredDevices {
  const d: DesiredDevices = {
    vnis: new Map(),
    plugs: new Map(),
    guards: new Map(),
    guardPorts: new Map(),
    ips: new Map(),
    ifnames: new Map(),
    refused: new Map(),
  };
  const host = s.host;
  if (!host) return d;
  const mtus = new Map<number, { mtu: number; arp: number; nd: number }>();
  for (const n of s.networks.values())
    if (n.vni !== null) mtus.set(n.vni, { mtu: n.mtu || DEFAULT_MTU, arp: n.arpRate ?? o.arpRate, nd: n.ndRate ?? o.ndRate });
  for (const vni of s.vnis) d.vnis.set(vni, { vni, mtu: mtus.get(vni)?.mtu ?? DEFAULT_MTU, local: host.underlayIp, lazy: o.lazy });
  const t = s.ports;
  for (let slot = 0; slot < t.end; slot++) {
    if (!wanted(t, slot, d.vnis) || t.hostAt(slot).hostId !== s.hostId) continue;
    const vni = t.vniAt(slot);
    const net = mtus.get(vni);
    const ifname = portIfname(t.portIdAt(slot));
    const mac = t.macAt(slot);
    const ipv4 = t.ipv4At(slot);
    const ipv6 = t.ipv6At(slot);
    d.ifnames.set(slot, ifname);
    const g: GuardPort = { ifname, mac, ipv4, ipv6, arpRate: net?.arp ?? o.arpRate, ndRate: net?.nd ?? o.ndRate };
    let hash: string;
    try {
      hash = guardSpecHash(g);
    } catch (e) {
      d.refused.set(ifname, { portId: t.portIdAt(slot), reason: (e as Error).message });
      continue;
    }
    d.plugs.set(ifname, { ifname, vni, mtu: net?.mtu ?? DEFAULT_MTU, mac });
    d.guardPorts.set(ifname, g);
    d.guards.set(ifname, hash);
    const ips: string[] = [];
    if (ipv4) ips.push(ipv4);
    if (ipv6) ips.push(ipv6);
    d.ips.set(ifname, ips);
  }
  return d;
}

/** A live port on one of the host's VNIs (routed networks, with no VNI, are routing's). */
export function wanted(t: PortTable, slot: number, vnis: Map<number, VniState>): boolean {
  if (!t.live(slot)) return false;
  const vni = t.vniAt(slot);
  return vni !== -1 && vnis.has(vni);
}

/**
 * The kernel objects a host needs for the ports on its VNIs, as Maps keyed
 * like KernelState (the reference the agent's packed planner must agree with;
 * tests and tools compare it with what `observe` reads).
 */
export function desiredKernel(s: AgentState, o: DesiredOptions): Desired {
  const d = desiredDevices(s, o);
  const state = emptyKernelState();
  state.vnis = d.vnis;
  state.plugs = d.plugs;
  state.guards = d.guards;
  const t = s.ports;
  for (let slot = 0; slot < t.end; slot++) {
    if (!wanted(t, slot, d.vnis)) continue;
    const ifname = d.ifnames.get(slot);
    if (ifname === undefined && o.lazy) continue;
    const vni = t.vniAt(slot);
    const mac = t.macAt(slot);
    state.fdb.set(fdbKey(vni, mac), ifname !== undefined ? `@${ifname}` : t.hostAt(slot).underlayIp);
    // Local ports get entries too: a move then changes only FDB entries, never neighbours.
    if (o.lazy) continue;
    const ipv4 = t.ipv4At(slot);
    const ipv6 = t.ipv6At(slot);
    if (ipv4) state.neigh.set(neighKey(vni, ipv4), mac);
    if (ipv6) state.neigh.set(neighKey(vni, ipv6), mac);
  }
  return { state, guardPorts: d.guardPorts, ips: d.ips, refused: d.refused };
}
