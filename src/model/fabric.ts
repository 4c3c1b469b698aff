// A fabric router's view of the source of truth (pure): its sessions, each
// with the prefixes it accepts, derived from the router, its site's hosts,
// pools, VIPs and the other fabric routers. The BIRD and FRR renderers
// (fabric-bird.ts, fabric-frr.ts) take this view and nothing else.
import { type Cidr, cidrsOverlap, parseCidr, parseIp } from './addr.js';
import { BOGONS4 as FABRIC_BOGONS4, BOGONS6 as FABRIC_BOGONS6 } from './bogons.js';
import { invalid } from './errors.js';
import type { Host, Peer, Router, RouterPlatform, RouterRole, Site } from './types.js';

/** Bogons: never accepted from anyone, each with every longer prefix (the hosts' own filters use the same lists). */
export { BOGONS4 as FABRIC_BOGONS4, BOGONS6 as FABRIC_BOGONS6 } from './bogons.js';
/** BFD timers of the sessions that have it. */
export const FABRIC_BFD = { intervalMs: 100, multiplier: 3 } as const;

/** A prefix and the lengths accepted under it, as BIRD's `p{min,max}` and FRR's `ge min le max`. */
export interface PrefixRule {
  prefix: string;
  min: number;
  max: number;
  /** Why (a comment in the config): "host hv1's /64", "site s1's pool"... */
  why: string;
}

export type SessionKind = 'host' | 'tor' | 'spine' | 'border' | 'upstream';

/**
 * What a session takes in:
 * - `owned`: exactly the prefixes in `accept4`/`accept6` (the hosts below it may announce them);
 * - `default`: only the default routes (from the router above);
 * - `full`: anything but bogons and prefixes longer than /24 or /48 (an upstream's table).
 */
export type ImportKind = 'owned' | 'default' | 'full';
/**
 * What it sends: `default` (the default routes, to the routers and hosts below), `learned` (every route
 * learned from below, up the fabric), `aggregates` (the site's pools, to upstreams).
 */
export type ExportKind = 'default' | 'learned' | 'aggregates';

export interface FabricSession {
  /** A name for the session in the config: [a-z][a-z0-9_]*, unique on the router. */
  name: string;
  kind: SessionKind;
  /** "host hv1", "spine s1sp"... (comments and BIRD descriptions). */
  description: string;
  neighbor: string;
  remoteAsn: number;
  /** Sessions between fabric routers run between loopbacks: multihop, from the router's own loopback. */
  multihop: boolean;
  /** IPv4 routes over an IPv6 session (RFC 8950): the neighbour is IPv6 and carries both families. */
  extendedNextHop: boolean;
  bfd: boolean;
  maxPrefix: number;
  /** A host that is `down`: its session is configured but shut. */
  shutdown: boolean;
  /** A host that is `draining`: its routes are kept at local preference 0, whether or not it tags them. */
  drain: boolean;
  import: ImportKind;
  accept4: PrefixRule[];
  accept6: PrefixRule[];
  export: ExportKind;
}

export interface FabricView {
  name: string;
  role: RouterRole;
  platform: RouterPlatform;
  site: string;
  /** The rack of a ToR, else null. */
  rack: string | null;
  asn: number;
  bgpRouterId: string;
  loopback: string;
  mgmtAddress: string | null;
  /** Sorted by kind (hosts, then routers below, above, upstreams) and name. */
  sessions: FabricSession[];
  /** Bogons refused on every session, without those that hold a range of the site's own (the lab's are documentation ranges). */
  bogons4: string[];
  bogons6: string[];
  /** Bogons not refused, each with the range of the site's that lies in it (comments). */
  bogonsKept: { bogon: string; because: string }[];
  /** The site's pools, announced to upstreams (border routers only; else empty). */
  aggregates: string[];
  bfd: { intervalMs: number; multiplier: number };
}

/** What the view is derived from: plain entities, as the store has them. */
export interface FabricInput {
  router: Router;
  site: Site;
  /** Rack names by id (the site's). */
  racks: { id: string; name: string }[];
  /** Every fabric router of the site (the router itself among them). */
  routers: Router[];
  /** Every host of the site. */
  hosts: Host[];
  /** The BGP peers of those hosts and racks (they say which host sessions have BFD). */
  peers: Peer[];
  /** The addresses of the site's VIPs. */
  vips: string[];
}

const SYMBOL_RE = /[^a-z0-9_]/g;

/** A config-safe session name: `prefix_` and the entity's name with anything but [a-z0-9_] as `_`. */
function symbol(prefix: string, name: string): string {
  return `${prefix}_${name.toLowerCase().replace(SYMBOL_RE, '_')}`;
}

const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * What one host may announce: its /64, an address of its site's public
 * pools as /32 (IPv4) or of the site's IPv6 block as /128 (a routed
 * address keeps its /128 when its instance moves to another host's /64),
 * and the site's VIP addresses; nothing longer or shorter.
 */
export function hostRules(site: Site, host: Host, vips: readonly string[]): { accept4: PrefixRule[]; accept6: PrefixRule[] } {
  const accept4: PrefixRule[] = [];
  const accept6: PrefixRule[] = [];
  if (host.ipv6Prefix !== null) accept6.push({ prefix: parseCidr('ipv6Prefix', host.ipv6Prefix).text, min: 64, max: 64, why: `host ${host.name}'s /64` });
  for (const p of site.ipv4Pools)
    accept4.push({ prefix: parseCidr('ipv4Pools', p).text, min: 32, max: 32, why: `routed addresses of site ${site.name}'s pool` });
  if (site.ipv6Block !== null)
    accept6.push({ prefix: parseCidr('ipv6Block', site.ipv6Block).text, min: 128, max: 128, why: `routed addresses of site ${site.name}'s IPv6 block` });
  for (const v of [...vips].sort()) {
    const ip = parseIp('vip', v);
    const bits = ip.family === 4 ? 32 : 128;
    (ip.family === 4 ? accept4 : accept6).push({ prefix: `${ip.text}/${bits}`, min: bits, max: bits, why: `VIP ${ip.text}` });
  }
  return { accept4: dedupe(accept4), accept6: dedupe(accept6) };
}

/** Rules without repeats (the same prefix and lengths once, with the first reason), in their first order. */
function dedupe(rules: PrefixRule[]): PrefixRule[] {
  const seen = new Set<string>();
  return rules.filter((r) => {
    const k = `${r.prefix}{${r.min},${r.max}}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The union of several hosts' rules (what a spine accepts from a ToR, a border from a spine). */
function unionRules(site: Site, hosts: Host[], vips: readonly string[]): { accept4: PrefixRule[]; accept6: PrefixRule[] } {
  const all = hosts.map((h) => hostRules(site, h, vips));
  return { accept4: dedupe(all.flatMap((r) => r.accept4)), accept6: dedupe(all.flatMap((r) => r.accept6)) };
}

/**
 * The router's view (see FabricView). Sessions:
 * - a ToR: one per host of its rack with an ASN (to its underlay address; the
 *   host's own peers towards the ToR's ASN say whether BFD is on), one per spine of the site;
 * - a spine: one per ToR of the site, one per border of the site;
 * - a border: one per spine of the site, and its upstreams.
 * Throws E_INVALID_ARG naming the field and value when the inputs cannot make a config.
 */
export function fabricView(input: FabricInput): FabricView {
  const { router: r, site } = input;
  const others = input.routers.filter((x) => x.id !== r.id && x.siteId === r.siteId).sort(byName);
  const ofRole = (role: RouterRole) => others.filter((x) => x.role === role);
  const hosts = input.hosts.filter((h) => h.siteId === site.id && h.asn !== null).sort(byName);
  const rackName = (id: string | null) => input.racks.find((k) => k.id === id)?.name ?? id ?? '';
  const sessions: FabricSession[] = [];
  const fabricPeer = (x: Router, kind: SessionKind, imp: ImportKind, exp: ExportKind, rules: ReturnType<typeof unionRules>): FabricSession => ({
    name: symbol(kind === 'tor' ? 't' : kind === 'spine' ? 's' : 'b', x.name),
    kind,
    description: `${kind} ${x.name}`,
    neighbor: x.loopback,
    remoteAsn: x.asn,
    multihop: true,
    extendedNextHop: x.loopback.includes(':'),
    bfd: r.bfd && x.bfd,
    maxPrefix: r.maxPrefix,
    shutdown: false,
    drain: false,
    import: imp,
    accept4: imp === 'owned' ? rules.accept4 : [],
    accept6: imp === 'owned' ? rules.accept6 : [],
    export: exp,
  });
  const none = { accept4: [], accept6: [] };
  if (r.role === 'tor') {
    for (const h of hosts.filter((x) => x.rackId === r.rackId)) {
      const rules = hostRules(site, h, input.vips);
      const bfd = input.peers.some((p) => (p.hostId === h.id || (p.rackId !== null && p.rackId === h.rackId)) && p.remoteAsn === r.asn && p.bfd);
      sessions.push({
        name: symbol('h', h.name),
        kind: 'host',
        description: `host ${h.name}`,
        neighbor: parseIp('underlayIp', h.underlayIp).text,
        remoteAsn: Number(h.asn),
        multihop: false,
        extendedNextHop: h.underlayIp.includes(':'),
        bfd,
        maxPrefix: r.maxPrefix,
        shutdown: h.state === 'down',
        drain: h.state === 'draining',
        import: 'owned',
        ...rules,
        export: 'default',
      });
    }
    for (const s of ofRole('spine')) sessions.push(fabricPeer(s, 'spine', 'default', 'learned', none));
  } else if (r.role === 'spine') {
    for (const t of ofRole('tor'))
      sessions.push(
        fabricPeer(
          t,
          'tor',
          'owned',
          'default',
          unionRules(
            site,
            hosts.filter((h) => h.rackId === t.rackId),
            input.vips,
          ),
        ),
      );
    for (const b of ofRole('border')) sessions.push(fabricPeer(b, 'border', 'default', 'learned', none));
  } else {
    for (const s of ofRole('spine')) sessions.push(fabricPeer(s, 'spine', 'owned', 'default', unionRules(site, hosts, input.vips)));
    for (const u of [...r.upstreams].sort(byName))
      sessions.push({
        name: symbol('u', u.name),
        kind: 'upstream',
        description: u.description === null ? `upstream ${u.name}` : `upstream ${u.name}: ${u.description}`,
        neighbor: parseIp('upstreams.neighbor', u.neighbor).text,
        remoteAsn: u.remoteAsn,
        multihop: false,
        extendedNextHop: u.neighbor.includes(':'),
        bfd: u.bfd,
        maxPrefix: u.maxPrefix,
        shutdown: false,
        drain: false,
        import: 'full',
        accept4: [],
        accept6: [],
        export: 'aggregates',
      });
  }
  const names = new Map<string, string>();
  for (const s of sessions) {
    const prev = names.get(s.name);
    if (prev !== undefined) throw invalid('sessions', s.description, `must have a config name of its own: ${prev} is also ${s.name}`);
    names.set(s.name, s.description);
    if (s.remoteAsn === r.asn) throw invalid(`${s.description} asn`, s.remoteAsn, `must differ from router ${r.name}'s asn ${r.asn}: fabric sessions are eBGP`);
  }

  // The site's own ranges keep the bogons they lie in out of the bogon sets (the lab's pools are documentation ranges).
  const own: { cidr: Cidr; what: string }[] = [
    ...site.ipv4Pools.map((p) => ({ cidr: parseCidr('ipv4Pools', p), what: `site ${site.name}'s pool ${p}` })),
    ...(site.ipv6Block === null ? [] : [{ cidr: parseCidr('ipv6Block', site.ipv6Block), what: `site ${site.name}'s IPv6 block ${site.ipv6Block}` }]),
    ...input.vips.map((v) => {
      const ip = parseIp('vip', v);
      return { cidr: parseCidr('vip', `${ip.text}/${ip.family === 4 ? 32 : 128}`), what: `VIP ${ip.text}` };
    }),
  ];
  const bogonsKept: FabricView['bogonsKept'] = [];
  const keep = (list: readonly string[]) =>
    list.filter((b) => {
      const hit = own.find((o) => cidrsOverlap(o.cidr, parseCidr('bogon', b)));
      if (hit) bogonsKept.push({ bogon: b, because: hit.what });
      return !hit;
    });
  const bogons4 = keep(FABRIC_BOGONS4);
  const bogons6 = keep(FABRIC_BOGONS6);
  const order: SessionKind[] = ['host', 'tor', 'spine', 'border', 'upstream'];
  sessions.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    name: r.name,
    role: r.role,
    platform: r.platform,
    site: site.name,
    rack: r.role === 'tor' ? rackName(r.rackId) : null,
    asn: r.asn,
    bgpRouterId: r.bgpRouterId,
    loopback: r.loopback,
    mgmtAddress: r.mgmtAddress,
    sessions,
    bogons4,
    bogons6,
    bogonsKept,
    aggregates:
      r.role === 'border'
        ? [...site.ipv4Pools.map((p) => parseCidr('ipv4Pools', p).text), ...(site.ipv6Block === null ? [] : [parseCidr('ipv6Block', site.ipv6Block).text])]
        : [],
    bfd: { ...FABRIC_BFD },
  };
}

/**
 * The routers whose view a change of the site's hosts, pools or VIPs alters:
 * the ToRs of the racks given (a host's, before and after), and every spine
 * and border of the site (they accept what the site's hosts may announce).
 */
export function affectedRouters(routers: readonly Router[], siteId: string, rackIds: readonly (string | null)[] | 'all'): Router[] {
  return routers
    .filter((x) => x.siteId === siteId && (x.role !== 'tor' || rackIds === 'all' || rackIds.includes(x.rackId)))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
