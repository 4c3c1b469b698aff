// What the kernel of one host should hold, computed from the agent's desired
// state (the push stream's view): a pure function, diffed against what was
// observed by plan.ts.
import type { PortMapping } from '../../model/changes.js';
import type { AgentState } from '../../stream/agent-state.js';
import { emptyKernelState, fdbKey, type KernelState, neighKey } from '../dataplane/dataplane.js';
import { type GuardPort, guardSpecHash } from '../dataplane/linux/guards.js';
import { portIfname } from '../names.js';

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
}

/** The kernel objects a host needs for the ports on its VNIs. Routed networks (no VNI) are routing's. */
export function desiredKernel(s: AgentState, o: DesiredOptions): Desired {
  const state = emptyKernelState();
  const guardPorts = new Map<string, GuardPort>();
  const ips = new Map<string, string[]>();
  const host = s.host;
  if (!host) return { state, guardPorts, ips };
  const mtus = new Map<number, { mtu: number; arp: number; nd: number }>();
  for (const n of s.networks.values())
    if (n.vni !== null) mtus.set(n.vni, { mtu: n.mtu || DEFAULT_MTU, arp: n.arpRate ?? o.arpRate, nd: n.ndRate ?? o.ndRate });
  for (const vni of s.vnis) state.vnis.set(vni, { vni, mtu: mtus.get(vni)?.mtu ?? DEFAULT_MTU, local: host.underlayIp, lazy: o.lazy });
  for (const p of s.ports.values()) {
    const vni = p.vni;
    if (vni === null || !state.vnis.has(vni)) continue;
    if (p.hostId === s.hostId) {
      const net = mtus.get(vni);
      const ifname = portIfname(p.portId);
      const mtu = net?.mtu ?? DEFAULT_MTU;
      state.plugs.set(ifname, { ifname, vni, mtu, mac: p.mac });
      state.fdb.set(fdbKey(vni, p.mac), `@${ifname}`);
      const g: GuardPort = { ifname, mac: p.mac, ipv4: p.ipv4, ipv6: p.ipv6, arpRate: net?.arp ?? o.arpRate, ndRate: net?.nd ?? o.ndRate };
      guardPorts.set(ifname, g);
      state.guards.set(ifname, guardSpecHash(g));
      ips.set(ifname, addrs(p));
      if (!o.lazy) neighbours(state, vni, p);
    } else if (!o.lazy) {
      state.fdb.set(fdbKey(vni, p.mac), p.underlayIp);
      neighbours(state, vni, p);
    }
  }
  return { state, guardPorts, ips };
}

// Local ports get entries too: a move then changes only FDB entries, never neighbours.
function neighbours(state: KernelState, vni: number, p: PortMapping): void {
  if (p.ipv4) state.neigh.set(neighKey(vni, p.ipv4), p.mac);
  if (p.ipv6) state.neigh.set(neighKey(vni, p.ipv6), p.mac);
}

function addrs(p: PortMapping): string[] {
  const out: string[] = [];
  if (p.ipv4) out.push(p.ipv4);
  if (p.ipv6) out.push(p.ipv6);
  return out;
}
