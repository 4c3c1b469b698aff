// The layout of `weft lab`'s cloud (pure): sites, racks and hosts with their
// names, ASNs, underlay links and address pools, and every choice the seed
// makes (the order instances are created in, the racks of the VIP backends).
import { invalid } from '../model/errors.js';
import { mulberry32 } from '../model/prng.js';
import { MAX_P2P_LINKS } from './plan.js';

/** The size of the cloud and its seed (see `cloudLayout`). */
export interface CloudShape {
  sites: number;
  racksPerSite: number;
  hostsPerRack: number;
  tenants: number;
  instances: number;
  seed: number;
}

/** The limits `checkShape` enforces. */
export const SHAPE_LIMITS = {
  sites: [1, 4],
  racksPerSite: [1, 8],
  hostsPerRack: [1, 8],
  tenants: [1, 8],
  instances: [0, 200],
  seed: [0, 2 ** 32 - 1],
  /** All hosts of the lab: what two shared cores run agents and BIRDs for. */
  hosts: 32,
} as const;

/** The WAN router's ASN; spines, ToRs and hosts follow (`spineAsn`, `torAsn`, `hostAsn`). */
export const WAN_ASN = 65000;
/** The ASN of the spine of site `i` (0-based). */
export const spineAsn = (i: number): number => 65001 + i;
/** The ASN of the ToR of rack `i` (0-based, counted over the whole lab). */
export const torAsn = (i: number): number => 65010 + i;
/** The ASN of host `n` (0-based, counted over the whole lab). */
export const hostAsn = (n: number): number => 65101 + n;
/** The first underlay link of router links (ToR to spine, spine to WAN): 192.0.2.128/25 and up. Host links lie below. */
export const ROUTER_LINK_BASE = 64;

export interface LayoutSite {
  /** `s1`, `s2`...: the site's name in the API. */
  name: string;
  /** The spine router's lab node, `s1sp`. */
  spine: string;
  asn: number;
  /** Holds exactly the site's host links: `192.0.2.0/26` for s1 of two sites. */
  underlayPool: string;
  /** Routed ports and VIPs of the site: a /27 of 203.0.113.0/25. */
  public4: string;
  /** The site's IPv6 block, a /64 per host: `2001:db8:101::/48` for s1. */
  public6: string;
}

export interface LayoutRack {
  /** `s1r1`: unique in the lab (it names the ToR's namespace), the rack's name in its site. */
  name: string;
  site: string;
  asn: number;
}

export interface LayoutHost {
  /** `s1r1h1`. */
  name: string;
  rack: string;
  site: string;
  spine: string;
  /** Its underlay point-to-point link (plan.ts `p2pAddrs`): inside the site's underlay pool. */
  link: number;
  asn: number;
}

export interface LayoutInstance {
  /** `t<T>vm<N>`: the N-th instance of tenant t<T>. */
  name: string;
  tenant: string;
  /** The site it is created in (the server places it on a host there). */
  site: string;
}

export interface CloudLayout {
  sites: LayoutSite[];
  racks: LayoutRack[];
  hosts: LayoutHost[];
  tenants: string[];
  /** In the order they are created (the seed's permutation). */
  instances: LayoutInstance[];
  /** The routed network and the VIP live in this site (always the first). */
  vipSite: string;
  /** The VIP's backends `web1`, `web2`... and the host each runs on. */
  backends: { name: string; host: string }[];
}

/** Throws E_INVALID_ARG naming the first field out of `SHAPE_LIMITS`. */
export function checkShape<T extends CloudShape>(o: T): T {
  for (const f of ['sites', 'racksPerSite', 'hostsPerRack', 'tenants', 'instances', 'seed'] as const) {
    const [min, max] = SHAPE_LIMITS[f];
    const v = o[f];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalid(f, v, `must be an integer ${min}..${max}`);
  }
  const hosts = o.sites * o.racksPerSite * o.hostsPerRack;
  if (hosts > SHAPE_LIMITS.hosts)
    throw invalid('hostsPerRack', o.hostsPerRack, `sites x racksPerSite x hostsPerRack must be at most ${SHAPE_LIMITS.hosts} (is ${hosts})`);
  return o;
}

/** A copy of `xs` in an order drawn from `next` (Fisher-Yates). */
export function shuffle<T>(xs: readonly T[], next: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/**
 * The cloud of `o` (checked by `checkShape`):
 * - sites `s1`..: spine `s<S>sp`, racks `s<S>r<R>`, hosts `s<S>r<R>h<H>`;
 *   192.0.2.0/25 is split into one equal block per site (a /25, /26 or /27
 *   for 1, 2 or 3-4 sites) holding its host links, so each site's underlay
 *   pool is a CIDR of its own; ToR and spine links come from 192.0.2.128/25.
 * - public pools: site i gets 203.0.113.(32 i)/27 and 2001:db8:10<i+1>::/48.
 * - instances `t<T>vm<N>`: the instances are dealt to the tenants in turn,
 *   and tenant T's N-th instance goes to site (T + N - 2) mod sites, so every
 *   tenant with as many instances as there are sites spans all of them.
 * - the seed decides, and only this: the order the instances are created in
 *   (which, with the server's placement, decides the host each lands on),
 *   and which racks of the VIP's site hold the backends (the first host of
 *   each of two racks; with one rack, its first two hosts).
 */
export function cloudLayout(shape: CloudShape): CloudLayout {
  const o = checkShape({ ...shape });
  // Two streams, so the backends' racks do not change with the number of instances.
  const orderRng = mulberry32(o.seed);
  const rackRng = mulberry32((o.seed ^ 0x9e3779b9) >>> 0);
  const blockBits = o.sites === 1 ? 6 : o.sites === 2 ? 5 : 4;
  const block = 1 << blockBits;
  const sites: LayoutSite[] = [];
  const racks: LayoutRack[] = [];
  const hosts: LayoutHost[] = [];
  for (let s = 0; s < o.sites; s++) {
    const name = `s${s + 1}`;
    sites.push({
      name,
      spine: `${name}sp`,
      asn: spineAsn(s),
      underlayPool: `192.0.2.${2 * block * s}/${31 - blockBits}`,
      public4: `203.0.113.${32 * s}/27`,
      public6: `2001:db8:${(0x101 + s).toString(16)}::/48`,
    });
    let link = block * s;
    for (let r = 0; r < o.racksPerSite; r++) {
      const rack = `${name}r${r + 1}`;
      racks.push({ name: rack, site: name, asn: torAsn(racks.length) });
      for (let h = 0; h < o.hostsPerRack; h++)
        hosts.push({ name: `${rack}h${h + 1}`, rack, site: name, spine: `${name}sp`, link: link++, asn: hostAsn(hosts.length) });
    }
  }
  if (ROUTER_LINK_BASE + racks.length + sites.length > MAX_P2P_LINKS) throw invalid('racksPerSite', o.racksPerSite, 'too many racks for the underlay links');

  const tenants = Array.from({ length: o.tenants }, (_, i) => `t${i + 1}`);
  const dealt = Array.from({ length: o.instances }, (_, i) => {
    const t = i % o.tenants;
    const n = Math.floor(i / o.tenants);
    return { name: `t${t + 1}vm${n + 1}`, tenant: tenants[t] as string, site: (sites[(t + n) % o.sites] as LayoutSite).name };
  });
  const instances = shuffle(dealt, orderRng);

  const vipSite = (sites[0] as LayoutSite).name;
  const mine = racks.filter((r) => r.site === vipSite);
  const firstHost = (rack: string) => hosts.filter((h) => h.rack === rack);
  const spots =
    mine.length >= 2
      ? shuffle(mine, rackRng)
          .slice(0, 2)
          .map((r) => firstHost(r.name)[0] as LayoutHost)
      : firstHost((mine[0] as LayoutRack).name).slice(0, 2);
  const backends = spots.map((h, i) => ({ name: `web${i + 1}`, host: h.name }));
  return { sites, racks, hosts, tenants, instances, vipSite, backends };
}
