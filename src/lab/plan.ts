// Pure planning for the network-namespace lab: names (namespaces, links),
// address plans (underlay point-to-point links, management slots) and the
// iproute2 batch lines and sysctls the builder runs. No I/O here.
import { formatIp, parseIp, parseMac } from '../model/addr.js';
import { capacity, invalid } from '../model/errors.js';

export { checkIfname, IFNAME_MAX } from '../model/ifname.js';

/** The size `weft lab up` builds by default: 2 sites x 2 racks x 2 hosts, 2 tenants, 16 instances, seed 1. */
/** The image the lab's and `weft seed`'s instances are made from: their profiles need one (nothing boots it in the lab). */
export const EXAMPLE_IMAGE = 'debian-12-genericcloud';
/** The public key the lab's and `weft seed`'s tenants hold; its private half was thrown away: add your own with `weft key create`. */
export const EXAMPLE_SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOPftY5ZtO3FUPfrPH8VDrce2cATibVU+TnG2JmOPTO/ weft-example (replace with your own key)';

export const DEFAULT_CLOUD = { name: 'weft', sites: 2, racksPerSite: 2, hostsPerRack: 2, tenants: 2, instances: 16, seed: 1 };

/** Labs that can exist at once on one machine: each owns one management /26 in the root namespace. */
export const SLOTS = 4;
/** Underlay point-to-point links per lab: the /31s of 192.0.2.0/24. */
export const MAX_P2P_LINKS = 128;
/** Hosts per lab on the management /26 (.1 is the root namespace, .63 the broadcast). */
export const MAX_MGMT_HOSTS = 61;
/** MTU of every underlay link (host to ToR, ToR to spine or core, spine to WAN): jumbo frames. */
export const UNDERLAY_MTU = 9000;
/** What VXLAN over IPv4 adds to an overlay frame's payload: outer IPv4 (20), UDP (8), VXLAN (8) and the inner Ethernet header (14). */
export const VXLAN_OVERHEAD = 50;
/** The MTU of the lab's overlay networks: the largest that crosses the underlay unfragmented, 8950. */
export const OVERLAY_MTU = UNDERLAY_MTU - VXLAN_OVERHEAD;

const LAB_NAME = /^[a-z][a-z0-9]{0,5}$/;
const NODE_NAME = /^[a-z][a-z0-9]{0,11}$/;

/** Throws E_INVALID_ARG unless `name` can prefix the lab's namespaces and root link (1..6 of [a-z0-9], a letter first). */
export function checkLabName(name: unknown): string {
  if (typeof name !== 'string' || !LAB_NAME.test(name)) throw invalid('name', name, 'must be 1..6 of [a-z0-9], starting with a letter');
  return name;
}

/** Node names that would clash with the interfaces named after nodes in routers and the management namespace. */
const RESERVED_NODES = new Set(['lo', 'root', 'br0']);

/**
 * Throws E_INVALID_ARG unless `name` can name a lab node (router, host, VM):
 * 1..12 of [a-z0-9], a letter first, not `lo`, `root` or `br0` (a node's
 * name also names its links in routers and the management namespace).
 */
export function checkNodeName(field: string, name: unknown): string {
  if (typeof name !== 'string' || !NODE_NAME.test(name)) throw invalid(field, name, 'must be 1..12 of [a-z0-9], starting with a letter');
  if (RESERVED_NODES.has(name)) throw invalid(field, name, `must not be one of ${[...RESERVED_NODES].join(', ')}`);
  return name;
}

/** Throws E_INVALID_ARG unless `slot` is 0..SLOTS-1. */
export function checkSlot(slot: unknown): number {
  if (typeof slot !== 'number' || !Number.isInteger(slot) || slot < 0 || slot >= SLOTS) throw invalid('slot', slot, `must be 0..${SLOTS - 1}`);
  return slot;
}

/**
 * Checks an interface address with its prefix length (`10.0.0.5/24`,
 * `fd00::5/64`; host bits allowed) of IPv`family`; returns it canonical.
 * Throws E_INVALID_ARG naming `field`.
 */
export function checkIfaceCidr(field: string, value: unknown, family: 4 | 6): string {
  const bits = family === 4 ? 32 : 128;
  const example = family === 4 ? '10.0.0.5/24' : 'fd00::5/64';
  if (typeof value !== 'string' || !/^[^/]+\/\d{1,3}$/.test(value)) throw invalid(field, value, `must be an address with prefix length such as ${example}`);
  const [addr, len] = value.split('/') as [string, string];
  const ip = parseIp(field, addr);
  if (ip.family !== family) throw invalid(field, value, `must be an IPv${family} address such as ${example}`);
  if (Number(len) > bits) throw invalid(field, value, `prefix length must be 0..${bits}`);
  return `${ip.text}/${Number(len)}`;
}

/** Checks a unicast MAC; returns it in canonical lowercase colon form. Throws E_INVALID_ARG naming `field`. */
export function checkMac(field: string, value: unknown): string {
  return parseMac(field, value).text;
}

/** Throws E_INVALID_ARG unless `mtu` is an integer 68..65535. */
export function checkMtu(field: string, mtu: unknown): number {
  if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw invalid(field, mtu, 'must be an integer 68..65535');
  return mtu;
}

/** The namespace of a lab node: `<lab>-<node>`, e.g. `wl3-h1`. */
export const nsName = (lab: string, node: string): string => `${lab}-${node}`;

/** The root-namespace end of the lab's management link, e.g. `wl3m0`. */
export const rootLinkName = (lab: string): string => `${lab}m0`;

/** Well-known node names the builder creates itself: the core of a lab of racks only, the WAN router joining the spines of a lab of sites. */
export const CORE = 'core';
export const WAN = 'wan';
export const MGMT = 'mgmt';
/** Interface names inside the lab's namespaces. */
export const IF = {
  /** A host's underlay link to its rack router. */
  underlay: 'ul0',
  /** A host's link to the management network. */
  mgmt: 'mg0',
  /** The bridge of the management namespace. */
  mgmtBridge: 'br0',
  /** The management namespace's port towards the root namespace. */
  mgmtRoot: 'root',
  /** A VM's interface. */
  vm: 'eth0',
  /** A VM's new interface during a move, before the switch-over renames it. */
  vmNext: 'eth0n',
} as const;

export interface P2pAddrs {
  /** Interface addresses (CIDR) of side A and side B, IPv4 then IPv6. */
  a: { v4: string; v6: string };
  b: { v4: string; v6: string };
  /** The link's prefixes, for routes towards it from elsewhere. */
  prefix4: string;
  prefix6: string;
}

/**
 * Addresses of underlay point-to-point link number `index` (0..127): the
 * index'th /31 of 192.0.2.0/24 (A gets the even address) and the /64
 * 2001:db8:0:<index hex>::/64 (A gets ::1, B ::2). Throws E_CAPACITY past 127.
 */
export function p2pAddrs(index: number): P2pAddrs {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_P2P_LINKS)
    throw capacity(`underlay link ${index} out of range: a lab has at most ${MAX_P2P_LINKS} point-to-point links`);
  const net6 = (0x20010db8n << 96n) | (BigInt(index) << 64n);
  return {
    a: { v4: `192.0.2.${2 * index}/31`, v6: `${formatIp(6, net6 + 1n)}/64` },
    b: { v4: `192.0.2.${2 * index + 1}/31`, v6: `${formatIp(6, net6 + 2n)}/64` },
    prefix4: `192.0.2.${2 * index}/31`,
    prefix6: `${formatIp(6, net6)}/64`,
  };
}

export interface MgmtPlan {
  /** The management subnet, e.g. `198.51.100.64/26`. */
  subnet: string;
  /** The root namespace's address on it (`.1` of the subnet). */
  rootIp: string;
  /** The root namespace's interface address (CIDR). */
  rootCidr: string;
}

/** The management subnet of `slot`: 198.51.100.(64*slot)/26, the root namespace on its .1. */
export function mgmtPlan(slot: number): MgmtPlan {
  checkSlot(slot);
  const base = 64 * slot;
  return { subnet: `198.51.100.${base}/26`, rootIp: `198.51.100.${base + 1}`, rootCidr: `198.51.100.${base + 1}/26` };
}

/** The management address (CIDR) of the `n`th host (0-based) of a lab in `slot`: .2, .3, ... Throws E_CAPACITY past 61 hosts. */
export function mgmtHostCidr(slot: number, n: number): string {
  checkSlot(slot);
  if (!Number.isInteger(n) || n < 0 || n >= MAX_MGMT_HOSTS) throw capacity(`management address ${n} out of range: a lab has at most ${MAX_MGMT_HOSTS} hosts`);
  return `198.51.100.${64 * slot + 2 + n}/26`;
}

/** The address of a CIDR (`192.0.2.4/31` -> `192.0.2.4`). */
export const addrOf = (cidr: string): string => cidr.slice(0, cidr.indexOf('/'));

/** `ip` batch line adding an interface address; IPv6 ones skip duplicate address detection (the lab's addresses are unique by plan). */
export function addrLine(dev: string, cidr: string): string {
  return `addr add ${cidr} dev ${dev}${cidr.includes(':') ? ' nodad' : ''}`;
}

/**
 * `ip` batch line adding a route to `prefix` (or `default`) via `via`. Batch
 * lines take no `-6`, so an IPv6 default is spelled `::/0`.
 */
export function routeLine(prefix: string, via: string): string {
  const dst = prefix === 'default' && via.includes(':') ? '::/0' : prefix;
  return `route add ${dst} via ${via}`;
}

/**
 * First interface index the lab gives its veth ends. Both ends of every pair
 * get explicit, different indexes: in fresh namespaces both would otherwise
 * often be the same number, and then the kernel treats the carrier change as
 * not urgent and handles it in its once-a-second linkwatch batch, so a link
 * made during a busy build can drop packets (noop qdisc, no link-local
 * address) for up to a second. Far above what namespaces hand out by themselves.
 */
export const VETH_INDEX_BASE = 100_000;

/** One end of a veth pair in `ip link add`. */
export interface VethEnd {
  ifname: string;
  /** Interface index; the kernel honours the peer's only when the near end has one too. */
  index?: number;
  mtu?: number;
  mac?: string;
}

/**
 * `ip link add` line, run with `ip -n <near ns>`, making a veth pair whose far
 * end is created directly in `farNs` (it never appears in the root namespace).
 */
export function vethLine(near: VethEnd, far: VethEnd, farNs: string): string {
  const opts = (e: VethEnd) => [e.index ? `index ${e.index}` : '', e.mtu ? `mtu ${e.mtu}` : '', e.mac ? `address ${e.mac}` : ''].filter(Boolean);
  return ['link add', near.ifname, ...opts(near), 'type veth peer name', far.ifname, 'netns', farNs, ...opts(far)].join(' ');
}

/** Sysctls of a router namespace: forward IPv4 and IPv6. */
export const ROUTER_SYSCTLS = ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'];
/**
 * Set first in every lab namespace, so interfaces made later inherit them:
 * no duplicate address detection (lab addresses are unique by plan, and DAD
 * would hold link-local addresses tentative for a second after every move).
 */
export const BASE_SYSCTLS = ['net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'];
/** Sysctls of a VM namespace: static addresses only, no router advertisements or SLAAC. */
export const VM_SYSCTLS = [
  'net.ipv6.conf.all.accept_ra=0',
  'net.ipv6.conf.default.accept_ra=0',
  'net.ipv6.conf.all.autoconf=0',
  'net.ipv6.conf.default.autoconf=0',
];
