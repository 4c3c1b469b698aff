// What one host's BIRD config is rendered from: its routing inputs, a plain
// value computed from the agent's desired state and the VIP health checks
// (pure). bird-conf.ts turns it into bird.conf; docs/routing.md explains it.

import { MAX_PREFIX_ACTIONS, type MaxPrefixAction } from '../../model/types.js';
import { portIfname } from '../names.js';
import type { AgentState } from '../state/agent-state.js';

export { MAX_PREFIX_ACTIONS, type MaxPrefixAction };

/** One upstream BGP session of the host (its own, or its rack's). */
export interface BgpSession {
  /** Stable id (the peer's id in the source of truth); names the BIRD protocol. */
  id: string;
  neighbor: string;
  remoteAsn: number;
  /** none: accept nothing; default: only 0.0.0.0/0 and ::/0; full: everything that passes the filters. */
  importPolicy: 'none' | 'default' | 'full';
  /** Accepted prefixes per channel before `maxPrefixAction`. */
  maxPrefix: number;
  maxPrefixAction: MaxPrefixAction;
  bfd: boolean;
  /**
   * Both families on this one session: IPv4 and IPv6 channels over a session
   * to an IPv6 (or IPv4) neighbour, with extended next hop. Otherwise the
   * session carries only the neighbour's own family.
   */
  multiprotocol: boolean;
}

/** A route origin authorisation: `prefix` up to `maxLength` may be originated by `asn`. */
export interface Roa {
  prefix: string;
  maxLength: number;
  asn: number;
}

export interface RoutingInputs {
  /** The host's name (comments only). */
  hostName: string;
  /** BIRD's router id: the host's underlay IPv4 address. */
  routerId: string;
  /** The host's ASN; null: no BGP at all (the config keeps only device/kernel protocols). */
  asn: number | null;
  /** Host in maintenance: every export carries GRACEFUL_SHUTDOWN (65535:0, RFC 8326). */
  drain: boolean;
  /** The host's own /64 for routed networks (announced, blackholed locally), or null. */
  hostPrefix6: string | null;
  /**
   * Routed addresses of instances on this host, each a /32 or /128 with the
   * host-side interface it is reached through: installed in the kernel as a
   * device route and announced while that interface is up.
   */
  routedAddrs: { prefix: string; ifname: string }[];
  /** Anycast VIPs with a healthy local backend (/32 or /128): announced, not installed. */
  vips: string[];
  sessions: BgpSession[];
  /** RTR validator for RPKI, or null to use `roas` (a static set, possibly empty). */
  rpki: { host: string; port: number } | null;
  roas: Roa[];
  /**
   * IRR prefix lists by remote ASN, from a cached file: a session to an ASN
   * listed here accepts only prefixes covered by its list (each entry
   * `prefix` or `prefix{min,max}` as BIRD writes it). Unlisted ASNs: no IRR filter.
   */
  irr: Record<string, string[]>;
  /** BFD timers for sessions with `bfd`. */
  bfd: { intervalMs: number; multiplier: number };
}

/** Agent-wide routing settings (flags and cached files, not the source of truth). */
export interface RoutingSettings {
  rpki: { host: string; port: number } | null;
  roas: Roa[];
  irr: Record<string, string[]>;
  bfd: { intervalMs: number; multiplier: number };
}

export const DEFAULT_BFD = { intervalMs: 100, multiplier: 3 };

/** A local backend of a VIP that the agent health-checks: key `<vipId>|<portId>`. */
export interface VipBackend {
  key: string;
  vipId: string;
  /** The VIP's address (IPv4 or IPv6). */
  vip: string;
  /** The backend's address in the VIP's family (what is checked and what VIP traffic is NAT'ed to). */
  address: string;
  ifname: string;
  check: { type: 'tcp' | 'http'; port: number; path: string | null; intervalMs: number; timeoutMs: number; rise: number; fall: number };
}

const CHECK_DEFAULTS = { type: 'tcp' as const, port: 80, path: null, intervalMs: 200, timeoutMs: 200, rise: 3, fall: 2 };

/** The local routed ports of the host: their addresses and host-side interfaces. */
export function routedPorts(s: AgentState): { portId: string; ifname: string; mac: string; ipv4: string | null; ipv6: string | null; mtu: number }[] {
  const out = [];
  for (const p of s.localPorts()) {
    if (p.networkKind !== 'routed') continue;
    const mtu = s.networks.get(p.networkId)?.mtu || 1500;
    out.push({ portId: p.portId, ifname: portIfname(p.portId), mac: p.mac, ipv4: p.ipv4, ipv6: p.ipv6, mtu });
  }
  return out.sort((a, b) => (a.ifname < b.ifname ? -1 : a.ifname > b.ifname ? 1 : 0));
}

/** Every local, routed backend of the VIPs the host holds, with its health check. */
export function vipBackends(s: AgentState): VipBackend[] {
  const out: VipBackend[] = [];
  for (const v of s.vips.values()) {
    const six = v.address.includes(':');
    const hc = { ...CHECK_DEFAULTS, ...(v.healthCheck as Partial<VipBackend['check']> | null) };
    for (const b of v.backends) {
      if (b.hostId !== s.hostId) continue;
      const port = s.ports.get(b.portId);
      if (port?.networkKind !== 'routed') continue;
      const address = six ? b.ipv6 : b.ipv4;
      if (!address) continue;
      out.push({ key: `${v.vipId}|${b.portId}`, vipId: v.vipId, vip: v.address, address, ifname: portIfname(b.portId), check: hc });
    }
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : 1));
}

/**
 * The routing inputs of the host now: sessions from its and its rack's
 * peers, its /64, its routed ports' addresses, and the VIPs of which at
 * least one local backend is `healthy`. Pure.
 */
export function routingInputs(s: AgentState, healthy: (key: string) => boolean, settings: RoutingSettings): RoutingInputs | null {
  const host = s.host;
  if (!host) return null;
  const routedAddrs: RoutingInputs['routedAddrs'] = [];
  for (const p of routedPorts(s)) {
    if (p.ipv4) routedAddrs.push({ prefix: `${p.ipv4}/32`, ifname: p.ifname });
    if (p.ipv6) routedAddrs.push({ prefix: `${p.ipv6}/128`, ifname: p.ifname });
  }
  const vips = new Set<string>();
  for (const b of vipBackends(s)) if (healthy(b.key)) vips.add(b.vip.includes(':') ? `${b.vip}/128` : `${b.vip}/32`);
  const sessions: BgpSession[] = [...s.peers.values()]
    .filter((p) => p.hostId === s.hostId || (p.rackId !== null && p.rackId === host.rackId))
    .map((p) => ({
      id: p.peerId,
      neighbor: p.neighbor,
      remoteAsn: p.remoteAsn,
      importPolicy: p.importPolicy as BgpSession['importPolicy'],
      maxPrefix: p.maxPrefix,
      maxPrefixAction: (p.maxPrefixAction ?? 'restart') as MaxPrefixAction,
      bfd: p.bfd,
      multiprotocol: p.multiprotocol,
    }))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  return {
    hostName: host.name,
    routerId: host.underlayIp,
    asn: host.asn,
    drain: host.state !== 'active',
    hostPrefix6: host.ipv6Prefix,
    routedAddrs,
    vips: [...vips].sort(),
    sessions,
    rpki: settings.rpki,
    roas: settings.roas,
    irr: settings.irr,
    bfd: settings.bfd,
  };
}
