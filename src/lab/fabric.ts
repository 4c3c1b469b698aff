// bird.conf for the lab's BGP fabric (pure): each rack router is a
// top-of-rack switch speaking eBGP to its hosts and to the router above it
// (the core, or its site's spine, which peers with the WAN router); routes
// travel up only and become ECMP kernel routes on every router on the way.
import { parseCidr, parseIp } from '../model/addr.js';
import { invalid, show } from '../model/errors.js';

/**
 * A BGP neighbour of a fabric router. Its sessions follow from its
 * addresses: one over IPv4 to `ipv4` carrying IPv4 routes, one over IPv6 to
 * `ipv6` carrying IPv6 routes. With `multiprotocol` exactly one address is
 * given and its one session carries both families (IPv4 routes over an IPv6
 * session use extended next hops, RFC 8950).
 */
export interface FabricPeer {
  asn: number;
  ipv4?: string;
  ipv6?: string;
  multiprotocol?: boolean;
  /** Tie the sessions to BFD (`protocol bfd` is rendered with the config's timers). */
  bfd?: boolean;
}

/** A host of the rack, as its ToR sees it: `ipv4`/`ipv6` are the host's `Host.underlayIp`/`underlayIp6`. */
export interface TorHost extends FabricPeer {
  /** Names the BIRD protocols (see `hostProtocol`): 1..32 of [a-z0-9], a letter first. */
  name: string;
}

/** A rack router, as the core or its spine sees it: addresses are the ToR's end of its link to that router. */
export interface CoreRack extends FabricPeer {
  /** Names the BIRD protocols (see `rackProtocol`): 1..32 of [a-z0-9], a letter first. */
  name: string;
}

/** A spine, as the WAN router sees it: addresses are the spine's end of its link to the WAN router. */
export interface WanSpine extends FabricPeer {
  /** Names the BIRD protocols (see `spineProtocol`): 1..32 of [a-z0-9], a letter first. */
  name: string;
}

/** The router above a ToR or a spine: addresses are its end of the link between them. */
export interface Uplink extends FabricPeer {
  /** The router's name (comments only): `core`, `s1sp`, `wan`. */
  name: string;
}

/** A route the ToR announces to its hosts (it is not installed anywhere). */
export interface OriginateRoute {
  /** A CIDR prefix, IPv4 or IPv6, host bits zero. */
  prefix: string;
  /**
   * AS numbers put between the ToR's own ASN and the route, leftmost first:
   * with `[64500, 64496]` hosts receive the path `<tor asn> 64500 64496`,
   * a route that looks originated by AS 64496 (for RPKI and AS-path tests).
   */
  path?: number[];
}

export interface BfdTimers {
  /** Minimum transmit and receive interval, in milliseconds. */
  intervalMs: number;
  /** Missed packets before the session is declared down. */
  multiplier: number;
}

export interface TorConfig {
  /** The rack's name (comments only). */
  name: string;
  /** BIRD's router id: an IPv4 address, e.g. the ToR's end of its uplink. */
  routerId: string;
  asn: number;
  /** The router above: the core, or the site's spine. */
  uplink: Uplink;
  hosts: TorHost[];
  /** Extra routes announced to every host. Default none. */
  originate?: OriginateRoute[];
  /** Announce 0.0.0.0/0 and ::/0 to hosts. Default true. */
  defaultRoute?: boolean;
  /** Also send each host the routes learned from the rack's other hosts. Default false. */
  hostRoutes?: boolean;
  /** Default 100 ms x 3. */
  bfd?: BfdTimers;
}

export interface CoreConfig {
  routerId: string;
  asn: number;
  racks: CoreRack[];
  /** Default 100 ms x 3. */
  bfd?: BfdTimers;
}

export interface SpineConfig {
  /** The spine's name, e.g. `s1sp` (comments only). */
  name: string;
  routerId: string;
  asn: number;
  /** The WAN router. */
  uplink: Uplink;
  racks: CoreRack[];
  /** Default 100 ms x 3. */
  bfd?: BfdTimers;
}

export interface WanConfig {
  routerId: string;
  asn: number;
  spines: WanSpine[];
  /** Default 100 ms x 3. */
  bfd?: BfdTimers;
}

/** Sysctls of the ToRs, spines, the core and the WAN router: hash ECMP on the layer-4 5-tuple, so different TCP flows to one VIP spread over its hosts. */
export const FABRIC_SYSCTLS = ['net.ipv4.fib_multipath_hash_policy=1', 'net.ipv6.fib_multipath_hash_policy=1'];

export const DEFAULT_BFD: BfdTimers = { intervalMs: 100, multiplier: 3 };

/** The BIRD protocol of host `name`'s session over IPv`over` on its ToR: `h_<name>`, or `h_<name>_v6` for the session over IPv6. */
export const hostProtocol = (name: string, over: 4 | 6 = 4): string => `h_${name}${over === 6 ? '_v6' : ''}`;

/** The BIRD protocol of rack `name`'s session over IPv`over` on the core or its spine: `r_<name>`, or `r_<name>_v6`. */
export const rackProtocol = (name: string, over: 4 | 6 = 4): string => `r_${name}${over === 6 ? '_v6' : ''}`;

/** The BIRD protocol of spine `name`'s session over IPv`over` on the WAN router: `s_<name>`, or `s_<name>_v6`. */
export const spineProtocol = (name: string, over: 4 | 6 = 4): string => `s_${name}${over === 6 ? '_v6' : ''}`;

/** The BIRD protocol of a ToR's or a spine's session to the router above over IPv`over`: `uplink`, or `uplink_v6`. */
export const uplinkProtocol = (over: 4 | 6 = 4): string => (over === 6 ? 'uplink_v6' : 'uplink');

/**
 * The bird.conf of a top-of-rack router. It imports everything its hosts
 * announce (GRACEFUL_SHUTDOWN-tagged routes with local preference 0,
 * RFC 8326) and sends them the default routes and `originate`; it sends the
 * uplink (core or spine) every route learned from hosts and takes nothing
 * from it (the builder's static default routes carry traffic up). Only
 * host-learned routes reach the kernel, equal ones from several hosts merged
 * into one ECMP route (default routes never: the lab's static default
 * towards the core stays). An originated prefix shadows the same prefix from
 * hosts (static routes win), so it is then neither installed nor sent to
 * the core. Throws E_INVALID_ARG naming the field and value.
 */
export function renderTorConf(c: TorConfig): string {
  const name = checkName('name', c.name);
  const routerId = checkAddr('routerId', c.routerId, 4);
  const asn = checkAsn('asn', c.asn);
  const up = checkUplink(c.uplink, asn);
  const hosts = list('hosts', c.hosts).map((h, i) => ({ ...checkPeer(`hosts[${i}]`, h, asn), name: checkName(`hosts[${i}].name`, h.name) }));
  unique('hosts', hosts, (h) => h.name, 'name');
  unique('hosts', hosts, (h) => h.ipv4, 'ipv4');
  unique('hosts', hosts, (h) => h.ipv6, 'ipv6');
  notUplink('hosts', hosts, up);
  const originate = list('originate', c.originate ?? []).map(checkRoute);
  unique('originate', originate, (r) => r.prefix, 'prefix');
  const withDefault = c.defaultRoute ?? true;
  const defaults = withDefault ? ['0.0.0.0/0', '::/0'] : [];
  originate.forEach((r, i) => {
    if (defaults.includes(r.prefix))
      throw invalid(`originate[${i}].prefix`, r.prefix, 'is the default route, sent already: set defaultRoute false to originate it here');
  });
  const routes = [...defaults.map((prefix) => ({ prefix, path: [] })), ...originate];
  const bfd = checkBfd(c.bfd);

  const toHosts = c.hostRoutes ? 'source = RTS_STATIC || source = RTS_BGP' : 'source = RTS_STATIC';
  const out = [
    `# Top-of-rack router ${name} (AS ${asn}) of a weft lab. Rendered by src/lab/fabric.ts: do not edit.`,
    ...preamble(routerId),
    '# Routes announced to hosts; never installed (the kernel protocols export only BGP routes).',
    ...staticProtocol('originate4', 4, routes),
    ...staticProtocol('originate6', 6, routes),
    ...kernelProtocols('Routes learned from hosts'),
    ...([up, ...hosts].some((p) => p.bfd) ? bfdProtocol(bfd) : []),
    `# The uplink (${up.name}) takes every route learned from hosts and sends nothing back.`,
    ...sessions(up, uplinkProtocol, asn, `uplink ${up.name}`, { import: 'none', export: 'source = RTS_BGP' }),
    `# Hosts: everything they announce is accepted; they get ${c.hostRoutes ? "the static routes and each other's routes" : 'the static routes only'}.`,
    ...hosts.flatMap((h) => sessions(h, (over) => hostProtocol(h.name, over), asn, `host ${h.name}`, { import: 'filter from_peer', export: toHosts })),
  ];
  return `${out.join('\n')}\n`;
}

/**
 * The bird.conf of the core router: it peers with every rack router,
 * imports everything (GRACEFUL_SHUTDOWN-tagged routes with local preference
 * 0) and sends nothing; equal routes from several racks merge into one ECMP
 * kernel route. Throws E_INVALID_ARG naming the field and value.
 */
export function renderCoreConf(c: CoreConfig): string {
  const routerId = checkAddr('routerId', c.routerId, 4);
  const asn = checkAsn('asn', c.asn);
  const racks = named('racks', c.racks, asn);
  const bfd = checkBfd(c.bfd);
  const out = [
    `# Core router (AS ${asn}) of a weft lab. Rendered by src/lab/fabric.ts: do not edit.`,
    ...preamble(routerId),
    ...kernelProtocols('Routes learned from racks'),
    ...(racks.some((r) => r.bfd) ? bfdProtocol(bfd) : []),
    '# Racks: everything they announce is accepted; they get nothing (their static default routes point here).',
    ...racks.flatMap((r) => sessions(r, (over) => rackProtocol(r.name, over), asn, `rack ${r.name}`, { import: 'filter from_peer', export: 'none' })),
  ];
  return `${out.join('\n')}\n`;
}

/**
 * The bird.conf of a site's spine: it peers with the site's rack routers
 * below, imports everything they announce (GRACEFUL_SHUTDOWN honoured) and
 * sends them nothing; it sends the WAN router above every route learned
 * from racks and takes nothing from it (static default routes point up).
 * Equal routes from several racks merge into one ECMP kernel route. Throws
 * E_INVALID_ARG naming the field and value.
 */
export function renderSpineConf(c: SpineConfig): string {
  const name = checkName('name', c.name);
  const routerId = checkAddr('routerId', c.routerId, 4);
  const asn = checkAsn('asn', c.asn);
  const up = checkUplink(c.uplink, asn);
  const racks = named('racks', c.racks, asn);
  notUplink('racks', racks, up);
  const bfd = checkBfd(c.bfd);
  const out = [
    `# Spine ${name} (AS ${asn}) of a weft lab. Rendered by src/lab/fabric.ts: do not edit.`,
    ...preamble(routerId),
    ...kernelProtocols('Routes learned from racks'),
    ...([up, ...racks].some((p) => p.bfd) ? bfdProtocol(bfd) : []),
    `# The uplink (${up.name}) takes every route learned from racks and sends nothing back.`,
    ...sessions(up, uplinkProtocol, asn, `uplink ${up.name}`, { import: 'none', export: 'source = RTS_BGP' }),
    '# Racks: everything they announce is accepted; they get nothing (their static default routes point here).',
    ...racks.flatMap((r) => sessions(r, (over) => rackProtocol(r.name, over), asn, `rack ${r.name}`, { import: 'filter from_peer', export: 'none' })),
  ];
  return `${out.join('\n')}\n`;
}

/**
 * The bird.conf of the WAN router joining the sites: it peers with every
 * site's spine, imports everything (GRACEFUL_SHUTDOWN honoured) and sends
 * nothing; equal routes from several spines merge into one ECMP kernel
 * route. Throws E_INVALID_ARG naming the field and value.
 */
export function renderWanConf(c: WanConfig): string {
  const routerId = checkAddr('routerId', c.routerId, 4);
  const asn = checkAsn('asn', c.asn);
  const spines = named('spines', c.spines, asn);
  const bfd = checkBfd(c.bfd);
  const out = [
    `# WAN router (AS ${asn}) of a weft lab. Rendered by src/lab/fabric.ts: do not edit.`,
    ...preamble(routerId),
    ...kernelProtocols('Routes learned from spines'),
    ...(spines.some((p) => p.bfd) ? bfdProtocol(bfd) : []),
    '# Spines: everything they announce is accepted; they get nothing (their static default routes point here).',
    ...spines.flatMap((p) => sessions(p, (over) => spineProtocol(p.name, over), asn, `spine ${p.name}`, { import: 'filter from_peer', export: 'none' })),
  ];
  return `${out.join('\n')}\n`;
}

interface Peer {
  asn: number;
  ipv4: string | undefined;
  ipv6: string | undefined;
  multiprotocol: boolean;
  bfd: boolean;
}

function preamble(routerId: string): string[] {
  return [
    'log stderr all;',
    `router id ${routerId};`,
    '',
    'protocol device {',
    '}',
    '',
    '# RFC 8326: a route tagged GRACEFUL_SHUTDOWN (65535, 0) stays, least preferred.',
    'filter from_peer {',
    '  if (65535, 0) ~ bgp_community then bgp_local_pref = 0;',
    '  accept;',
    '}',
    '',
  ];
}

function staticProtocol(name: string, family: 4 | 6, routes: Array<{ prefix: string; path: number[] }>): string[] {
  const mine = routes.filter((r) => r.prefix.includes(':') === (family === 6));
  const line = (r: { prefix: string; path: number[] }) => {
    // prepend() puts an ASN first, so the path is built from its far (origin) end.
    const path = [...r.path].reverse().map((a) => `bgp_path.prepend(${a}); `);
    return `  route ${r.prefix} blackhole${path.length > 0 ? ` { ${path.join('')}}` : ''};`;
  };
  return [`protocol static ${name} {`, `  ipv${family};`, ...mine.map(line), '}', ''];
}

function kernelProtocols(what: string): string[] {
  const kernel = (family: 4 | 6) => [
    `protocol kernel kernel${family} {`,
    '  merge paths on;',
    `  ipv${family} {`,
    '    import none;',
    '    export where source = RTS_BGP && net.len > 0;',
    '  };',
    '}',
    '',
  ];
  return [
    `# ${what} go to the kernel, equal ones merged into one multipath route;`,
    "# default routes never do: the lab's static ones stay in charge.",
    ...kernel(4),
    ...kernel(6),
  ];
}

function bfdProtocol(t: BfdTimers): string[] {
  return ['protocol bfd {', `  interface "*" { interval ${t.intervalMs} ms; multiplier ${t.multiplier}; };`, '}', ''];
}

/** The BGP protocols of one peer: one per session (see FabricPeer). */
function sessions(p: Peer, protoName: (over: 4 | 6) => string, localAsn: number, what: string, f: { import: string; export: string }): string[] {
  const channel = (family: 4 | 6, over: 4 | 6) => [
    `  ipv${family} {`,
    ...(family === 4 && over === 6 ? ['    extended next hop on;'] : []),
    `    import ${f.import};`,
    `    export ${f.export === 'none' ? 'none' : `where ${f.export}`};`,
    '  };',
  ];
  const session = (over: 4 | 6, neighbor: string) => [
    `protocol bgp ${protoName(over)} {`,
    `  description "${what}";`,
    `  local as ${localAsn};`,
    `  neighbor ${neighbor} as ${p.asn};`,
    // The lab starts peers in any order and resets sessions on purpose: reconnect quickly.
    '  connect delay time 1;',
    '  connect retry time 5;',
    '  error wait time 1, 10;',
    ...(p.bfd ? ['  bfd on;'] : []),
    ...(p.multiprotocol ? [...channel(4, over), ...channel(6, over)] : channel(over, over)),
    '}',
    '',
  ];
  return [...(p.ipv4 ? session(4, p.ipv4) : []), ...(p.ipv6 ? session(6, p.ipv6) : [])];
}

const NAME = /^[a-z][a-z0-9]{0,31}$/;

function checkName(field: string, v: unknown): string {
  if (typeof v !== 'string' || !NAME.test(v)) throw invalid(field, v, 'must be 1..32 of [a-z0-9], starting with a letter');
  return v;
}

function checkAsn(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 4294967294) throw invalid(field, v, 'must be an AS number 1..4294967294');
  return v;
}

function checkAddr(field: string, v: unknown, family: 4 | 6): string {
  const ip = parseIp(field, v);
  if (ip.family !== family) throw invalid(field, v, `must be an IPv${family} address`);
  return ip.text;
}

function checkPeer(field: string, p: FabricPeer, localAsn: number): Peer {
  if (typeof p !== 'object' || p === null) throw invalid(field, p, 'must be an object');
  const asn = checkAsn(`${field}.asn`, p.asn);
  if (asn === localAsn) throw invalid(`${field}.asn`, asn, `must differ from the local AS ${localAsn}: fabric sessions are eBGP`);
  const ipv4 = p.ipv4 === undefined ? undefined : checkAddr(`${field}.ipv4`, p.ipv4, 4);
  const ipv6 = p.ipv6 === undefined ? undefined : checkAddr(`${field}.ipv6`, p.ipv6, 6);
  if (!ipv4 && !ipv6) throw invalid(field, p, 'needs ipv4, ipv6 or both: the neighbour addresses');
  const multiprotocol = p.multiprotocol ?? false;
  if (multiprotocol && ipv4 && ipv6)
    throw invalid(`${field}.multiprotocol`, true, 'needs exactly one of ipv4 and ipv6: the one session carrying both families');
  return { asn, ipv4, ipv6, multiprotocol, bfd: p.bfd ?? false };
}

function checkUplink(u: Uplink, localAsn: number): Peer & { name: string } {
  if (typeof u !== 'object' || u === null) throw invalid('uplink', u, 'must be an object');
  return { ...checkPeer('uplink', u, localAsn), name: checkName('uplink.name', u.name) };
}

/** Peers with names, each checked, names and addresses unique. */
function named(field: string, v: Array<FabricPeer & { name: string }>, localAsn: number): Array<Peer & { name: string }> {
  const out = list(field, v).map((p, i) => ({ ...checkPeer(`${field}[${i}]`, p, localAsn), name: checkName(`${field}[${i}].name`, p.name) }));
  unique(field, out, (p) => p.name, 'name');
  unique(field, out, (p) => p.ipv4, 'ipv4');
  unique(field, out, (p) => p.ipv6, 'ipv6');
  return out;
}

/** Throws E_INVALID_ARG on the first peer sharing an address with the uplink. */
function notUplink(field: string, peers: Peer[], up: Peer): void {
  peers.forEach((p, i) => {
    for (const f of ['ipv4', 'ipv6'] as const) if (p[f] && p[f] === up[f]) throw invalid(`${field}[${i}].${f}`, p[f], "must not be the uplink's address");
  });
}

function checkRoute(r: OriginateRoute, i: number): { prefix: string; path: number[] } {
  const prefix = parseCidr(`originate[${i}].prefix`, r.prefix).text;
  const path = r.path ?? [];
  if (!Array.isArray(path) || path.length > 32) throw invalid(`originate[${i}].path`, path, 'must be a list of at most 32 AS numbers');
  return { prefix, path: path.map((a, j) => checkAsn(`originate[${i}].path[${j}]`, a)) };
}

function checkBfd(t: BfdTimers | undefined): BfdTimers {
  if (t === undefined) return DEFAULT_BFD;
  const { intervalMs, multiplier } = t;
  if (!Number.isInteger(intervalMs) || intervalMs < 1 || intervalMs > 60000) throw invalid('bfd.intervalMs', intervalMs, 'must be an integer 1..60000');
  if (!Number.isInteger(multiplier) || multiplier < 1 || multiplier > 255) throw invalid('bfd.multiplier', multiplier, 'must be an integer 1..255');
  return t;
}

function list<T>(field: string, v: T[]): T[] {
  if (!Array.isArray(v)) throw invalid(field, v, 'must be a list');
  return v;
}

/** Throws E_INVALID_ARG on the first item whose `key` repeats an earlier one's (undefined keys are skipped). */
function unique<T>(list: string, items: T[], key: (t: T) => string | undefined, field: string): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const k = key(item);
    if (k === undefined) return;
    const first = seen.get(k);
    if (first !== undefined) throw invalid(`${list}[${i}].${field}`, k, `must be unique: ${show(k)} is also ${list}[${first}].${field}`);
    seen.set(k, i);
  });
}
