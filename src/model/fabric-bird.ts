// bird.conf of a fabric router (pure) from its FabricView (model/fabric.ts):
// per-session import filters that accept only what the hosts below may
// announce, bogons refused, receive limits, ECMP into the kernel, BFD and
// GRACEFUL_SHUTDOWN honoured. Golden-tested; every golden passes `bird -p`.

import { LONGEST4, LONGEST6 } from './bogons.js';
import type { FabricSession, FabricView, PrefixRule } from './fabric.js';

type Family = 4 | 6;
const FAMILIES: readonly Family[] = [4, 6];
const DEFAULT: Record<Family, string> = { 4: '0.0.0.0/0', 6: '::/0' };
/** The longest prefix an upstream's full table may hold (the hosts' `full` import policy's too). */
const LONGEST: Record<Family, number> = { 4: LONGEST4, 6: LONGEST6 };

const rule = (r: PrefixRule) => `${r.prefix}{${r.min},${r.max}}`;
const rulesOf = (s: FabricSession, f: Family) => (f === 4 ? s.accept4 : s.accept6);
const quote = (s: string) => `"${s.replace(/["\\]/g, '')}"`;

/** A BIRD prefix set over several lines (never empty: callers check). */
function set(name: string, items: string[]): string[] {
  return [`define ${name} = [`, ...items.map((x, i) => `  ${x}${i < items.length - 1 ? ',' : ''}`), '];'];
}

/** The import filter of one session and family. */
function importFilter(s: FabricSession, f: Family): string[] {
  const name = `${s.name}_in${f}`;
  const body: string[] = [`  if net ~ WEFT_BOGONS${f} then reject;`];
  if (s.import === 'owned') {
    const rules = rulesOf(s, f);
    if (rules.length === 0) return [`# ${s.description}: nothing over IPv${f} is theirs to announce.`, `filter ${name} {`, '  reject;', '}'];
    body.push(`  if net !~ ${name.toUpperCase()} then reject;`);
  } else if (s.import === 'default') {
    body.length = 0;
    body.push(`  if net != ${DEFAULT[f]} then reject;`);
  } else {
    body.push(`  if net.len > ${LONGEST[f]} then reject;`);
  }
  body.push('  weft_honour_gshut();');
  if (s.drain) body.push('  # The source of truth drains this host: its routes stay, least preferred.', '  bgp_local_pref = 0;');
  body.push('  accept;');
  const sets =
    s.import === 'owned'
      ? [
          `# What ${s.description} may announce over IPv${f}: ${[...new Set(rulesOf(s, f).map((r) => r.why))].join('; ')}.`,
          ...set(name.toUpperCase(), rulesOf(s, f).map(rule)),
        ]
      : [];
  return [...sets, `filter ${name} {`, ...body, '}'];
}

function exportClause(s: FabricSession, f: Family): string {
  switch (s.export) {
    case 'default':
      return `export where proto = "weft_default${f}";`;
    case 'learned':
      // Routes learned from below, never the default routes that came from above.
      return 'export where source = RTS_BGP && net.len > 0;';
    case 'aggregates':
      return `export where proto = "weft_aggregates${f}";`;
  }
}

function session(v: FabricView, s: FabricSession): string[] {
  const channel = (f: Family) => [
    `  ipv${f} {`,
    ...(f === 4 && s.extendedNextHop ? ['    extended next hop on;'] : []),
    // The import table keeps what the peer sent: the receive limit counts all of it, filtered or not.
    '    import table on;',
    '    import keep filtered on;',
    `    receive limit ${s.maxPrefix} action restart;`,
    `    import filter ${s.name}_in${f};`,
    `    ${exportClause(s, f)}`,
    '  };',
  ];
  return [
    `protocol bgp ${s.name} {`,
    `  description ${quote(s.description)};`,
    s.multihop ? `  local ${v.loopback} as ${v.asn};` : `  local as ${v.asn};`,
    `  neighbor ${s.neighbor} as ${s.remoteAsn};`,
    ...(s.multihop ? ['  multihop 2;'] : []),
    ...(s.bfd ? ['  bfd on;'] : []),
    ...(s.shutdown ? ['  # The source of truth says the host is down.', '  disabled yes;'] : []),
    '  error wait time 5, 120;',
    ...channel(4),
    ...channel(6),
    '}',
  ];
}

/** The whole bird.conf of the router. */
export function renderBird(v: FabricView): string {
  const where = v.role === 'tor' ? `tor of rack ${v.rack}, site ${v.site}` : `${v.role} of site ${v.site}`;
  const out: string[] = [
    `# Fabric router ${v.name} (${where}, AS ${v.asn}): rendered by weft from the source of truth`,
    `# (weft fabric render ${v.name}). Do not edit: weft fabric apply replaces it.`,
    ...(v.mgmtAddress === null ? [] : [`# Management address: ${v.mgmtAddress}.`]),
    '',
    'log stderr all;',
    `router id ${v.bgpRouterId};`,
    '',
    'protocol device {',
    '}',
    '',
    '# Bogons, each with every longer prefix: refused on every session.',
    ...v.bogonsKept.map((k) => `# (${k.bogon} is not: ${k.because} lies in it.)`),
    ...set(
      'WEFT_BOGONS4',
      v.bogons4.map((b) => `${b}+`),
    ),
    ...set(
      'WEFT_BOGONS6',
      v.bogons6.map((b) => `${b}+`),
    ),
    '',
    '# RFC 8326: a route tagged GRACEFUL_SHUTDOWN (65535, 0) stays, least preferred.',
    'function weft_honour_gshut() {',
    '  if (65535, 0) ~ bgp_community then bgp_local_pref = 0;',
    '}',
    '',
  ];
  if (v.sessions.some((s) => s.export === 'default')) {
    out.push('# The default routes sent to the routers and hosts below; never installed.');
    for (const f of FAMILIES) out.push(`protocol static weft_default${f} {`, `  ipv${f};`, `  route ${DEFAULT[f]} blackhole;`, '}');
    out.push('');
  }
  if (v.aggregates.length > 0) {
    out.push("# The site's pools, announced to upstreams; never installed.");
    for (const f of FAMILIES) {
      const mine = v.aggregates.filter((a) => a.includes(':') === (f === 6));
      out.push(`protocol static weft_aggregates${f} {`, `  ipv${f};`, ...mine.map((a) => `  route ${a} blackhole;`), '}');
    }
    out.push('');
  }
  out.push('# Routes learned over BGP go to the kernel, equal ones merged into one multipath (ECMP) route.');
  for (const f of FAMILIES)
    out.push(`protocol kernel weft_kernel${f} {`, '  merge paths on;', `  ipv${f} {`, '    import none;', '    export where source = RTS_BGP;', '  };', '}');
  out.push('');
  if (v.sessions.some((s) => s.bfd)) {
    const t = `interval ${v.bfd.intervalMs} ms; multiplier ${v.bfd.multiplier};`;
    out.push('protocol bfd weft_bfd {', `  interface "*" { ${t} };`, `  multihop { ${t} };`, '}', '');
  }
  for (const s of v.sessions) {
    out.push(`# --- ${s.description} (AS ${s.remoteAsn})`);
    for (const f of FAMILIES) out.push(...importFilter(s, f), '');
    out.push(...session(v, s), '');
  }
  while (out[out.length - 1] === '') out.pop();
  return `${out.join('\n')}\n`;
}
