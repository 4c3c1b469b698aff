// frr.conf of a fabric router (pure, FRR 8) from its FabricView
// (model/fabric.ts): the same sessions and filters as fabric-bird.ts, as
// prefix lists and route maps. Golden-tested; every golden passes FRR's own
// check (`vtysh -C -f`).

import { LONGEST4, LONGEST6 } from './bogons.js';
import type { FabricSession, FabricView, PrefixRule } from './fabric.js';

type Family = 4 | 6;
const FAMILIES: readonly Family[] = [4, 6];
const IP: Record<Family, string> = { 4: 'ip', 6: 'ipv6' };
const AF: Record<Family, string> = { 4: 'ipv4 unicast', 6: 'ipv6 unicast' };
const DEFAULT: Record<Family, string> = { 4: '0.0.0.0/0', 6: '::/0' };
const BITS: Record<Family, number> = { 4: 32, 6: 128 };
/** The longest prefix an upstream's full table may hold (the hosts' `full` import policy's too). */
const LONGEST: Record<Family, number> = { 4: LONGEST4, 6: LONGEST6 };

const familyOf = (prefix: string): Family => (prefix.includes(':') ? 6 : 4);
const rulesOf = (s: FabricSession, f: Family) => (f === 4 ? s.accept4 : s.accept6);
const upper = (name: string) => name.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
const clean = (s: string) => s.replace(/[^\x20-\x7e]/g, '');

/** FRR's spelling of "p{min,max}": `ge` must exceed the prefix's own length, `le` may equal it. */
function lengths(r: PrefixRule): string {
  const len = Number(r.prefix.split('/')[1]);
  if (r.min === len && r.max === len) return r.prefix;
  if (r.min === len) return `${r.prefix} le ${r.max}`;
  return `${r.prefix} ge ${r.min} le ${r.max}`;
}

function prefixList(f: Family, name: string, entries: string[]): string[] {
  return entries.map((e, i) => `${IP[f]} prefix-list ${name} seq ${(i + 1) * 5} permit ${e}`);
}

/** The route map a session imports through, per family. */
function importMap(s: FabricSession, f: Family): string[] {
  const name = `${upper(s.name)}_IN${f}`;
  const match = (list: string) => ` match ${IP[f]} address prefix-list ${list}`;
  const accept = [...(s.drain ? [' set local-preference 0'] : [])];
  if (s.import === 'default') return [`route-map ${name} permit 10`, match(`WEFT_DEFAULT${f}`), ...accept];
  const out = [`route-map ${name} deny 5`, match(`WEFT_BOGONS${f}`)];
  if (s.import === 'owned') {
    // Nothing to accept: the route map's implicit deny takes the rest.
    if (rulesOf(s, f).length > 0) out.push(`route-map ${name} permit 10`, match(name), ...accept);
  } else out.push(`route-map ${name} deny 6`, match(`WEFT_LONG${f}`), `route-map ${name} permit 10`, ...accept);
  return out;
}

/** The whole frr.conf of the router. */
export function renderFrr(v: FabricView): string {
  const where = v.role === 'tor' ? `tor of rack ${v.rack}, site ${v.site}` : `${v.role} of site ${v.site}`;
  const out: string[] = [
    `! Fabric router ${v.name} (${where}, AS ${v.asn}): rendered by weft from the source of truth`,
    `! (weft fabric render ${v.name} --format frr). Do not edit: weft fabric apply replaces it.`,
    ...(v.mgmtAddress === null ? [] : [`! Management address: ${v.mgmtAddress}.`]),
    'frr defaults datacenter',
    `hostname ${v.name}`,
    'ip forwarding',
    'ipv6 forwarding',
    '!',
    '! Bogons, each with every longer prefix: refused on every session.',
    ...v.bogonsKept.map((k) => `! (${k.bogon} is not: ${clean(k.because)} lies in it.)`),
  ];
  for (const f of FAMILIES) {
    const bogons = f === 4 ? v.bogons4 : v.bogons6;
    out.push(
      ...prefixList(
        f,
        `WEFT_BOGONS${f}`,
        bogons.map((b) => `${b} le ${BITS[f]}`),
      ),
    );
    out.push(...prefixList(f, `WEFT_DEFAULT${f}`, [DEFAULT[f]]));
    out.push(...prefixList(f, `WEFT_LONG${f}`, [`${DEFAULT[f]} ge ${LONGEST[f] + 1} le ${BITS[f]}`]));
    const aggregates = v.aggregates.filter((a) => familyOf(a) === f);
    if (aggregates.length > 0) out.push(...prefixList(f, `WEFT_AGGREGATES${f}`, aggregates));
  }
  out.push('!');
  for (const s of v.sessions)
    for (const f of FAMILIES) {
      const rules = rulesOf(s, f);
      if (s.import !== 'owned' || rules.length === 0) continue;
      out.push(`! What ${s.description} may announce over IPv${f}.`, ...prefixList(f, `${upper(s.name)}_IN${f}`, rules.map(lengths)));
    }
  out.push('!', '! GRACEFUL_SHUTDOWN (RFC 8326) is honoured by bgpd itself: such routes get local preference 0.');
  for (const s of v.sessions) for (const f of FAMILIES) out.push(...importMap(s, f));
  out.push(
    '! Nothing but the default routes (default-originate) goes down.',
    'route-map WEFT_NONE deny 10',
    ...FAMILIES.flatMap((f) => [
      `route-map WEFT_LEARNED${f} deny 5`,
      ` match ${IP[f]} address prefix-list WEFT_DEFAULT${f}`,
      `route-map WEFT_LEARNED${f} permit 10`,
    ]),
  );
  for (const f of FAMILIES)
    if (v.aggregates.some((a) => familyOf(a) === f))
      out.push(`route-map WEFT_AGGREGATES${f} permit 10`, ` match ${IP[f]} address prefix-list WEFT_AGGREGATES${f}`);
  out.push('!');
  if (v.sessions.some((s) => s.bfd))
    out.push(
      'bfd',
      ' profile weft',
      `  receive-interval ${v.bfd.intervalMs}`,
      `  transmit-interval ${v.bfd.intervalMs}`,
      `  detect-multiplier ${v.bfd.multiplier}`,
      ' exit',
      'exit',
      '!',
    );
  for (const a of v.aggregates) out.push(`${IP[familyOf(a)]} route ${a} blackhole`);
  if (v.aggregates.length > 0) out.push('!');
  out.push(`router bgp ${v.asn}`, ` bgp router-id ${v.bgpRouterId}`, ' no bgp default ipv4-unicast', ' bgp bestpath as-path multipath-relax');
  for (const s of v.sessions) {
    const n = s.neighbor;
    out.push(` neighbor ${n} remote-as ${s.remoteAsn}`, ` neighbor ${n} description ${clean(s.description)}`);
    if (s.multihop) out.push(` neighbor ${n} ebgp-multihop 2`, ` neighbor ${n} update-source ${v.loopback}`);
    if (s.extendedNextHop) out.push(` neighbor ${n} capability extended-nexthop`);
    if (s.bfd) out.push(` neighbor ${n} bfd profile weft`);
    if (s.shutdown) out.push(` neighbor ${n} shutdown`);
  }
  for (const f of FAMILIES) {
    out.push(' !', ` address-family ${AF[f]}`, '  maximum-paths 64');
    for (const a of v.aggregates.filter((x) => familyOf(x) === f)) out.push(`  network ${a}`);
    for (const s of v.sessions) {
      const n = s.neighbor;
      const aggregates = v.aggregates.some((a) => familyOf(a) === f) ? `WEFT_AGGREGATES${f}` : 'WEFT_NONE';
      const exportMap = s.export === 'default' ? 'WEFT_NONE' : s.export === 'learned' ? `WEFT_LEARNED${f}` : aggregates;
      out.push(`  neighbor ${n} activate`, `  neighbor ${n} route-map ${upper(s.name)}_IN${f} in`, `  neighbor ${n} route-map ${exportMap} out`);
      if (s.export === 'default') out.push(`  neighbor ${n} default-originate`);
      out.push(`  neighbor ${n} maximum-prefix ${s.maxPrefix} restart 1`);
    }
    out.push(' exit-address-family');
  }
  out.push('exit', '');
  return out.join('\n');
}
