// The bird.conf of one hypervisor host (pure, BIRD 2): what the host announces
// (routed addresses, its /64, anycast VIPs), what it accepts from its upstream
// sessions, and what it installs in the kernel.
//
// Design notes. Every name below is exported, so a status parser can tell
// weft's protocols apart in `birdc show protocols`:
// - statics, always present (BIRD accepts an empty static protocol):
//   weft_routed4/6 hold one device route (`via "<ifname>"`) per routed
//   address. BIRD keeps a device route only while its interface exists and is
//   up, so after a migration the address is announced by the host the
//   instance now runs on, and by no other. weft_host6 holds the host's /64 as
//   a blackhole: announced as one prefix, and its addresses that no instance
//   uses are dropped here rather than sent back up the default route.
//   weft_vips4/6 hold anycast VIPs as blackholes: announced only, never
//   installed (the host delivers VIP traffic with DNAT, not with routes).
// - weft_kernel4/6 install the routed statics, the /64 blackhole and BGP
//   routes (equal BGP routes merged into ECMP); they learn nothing.
// - ROAs live in weft_roa4/6, fed by an RTR validator (weft_rpki) or by
//   static protocols (weft_roas4/6). Import filters reject RPKI INVALID only.
// - one BGP protocol per session, `up_<12 hex digits of its id>`. Every
//   channel keeps an import table (Adj-RIB-In), for two reasons: `receive
//   limit` then counts every route the peer sends, accepted or not, and BIRD
//   (2.0.8+) re-runs a BGP import filter on ROA changes only from that table.
//   Import filters are per session and family (`up_<..>_in4`): policy, then
//   RPKI, then the peer's IRR list, then RFC 8326 GRACEFUL_SHUTDOWN from the
//   peer lowers local preference to 0. Export filters are shared
//   (weft_export4/6): the host's own statics only, as a host is never transit,
//   tagged GRACEFUL_SHUTDOWN while the host drains.
import { type Cidr, type Family, parseCidr, parseIp } from '../../model/addr.js';
import { BOGONS4, BOGONS6, LONGEST4, LONGEST6 } from '../../model/bogons.js';
import { invalid } from '../../model/errors.js';
import { checkIfname } from '../../model/ifname.js';
import { type BgpSession, MAX_PREFIX_ACTIONS, type RoutingInputs } from './inputs.js';

/** BGP protocols are named `up_<12 hex digits>` (see protocolName). */
export const BGP_PREFIX = 'up_';
export const DEVICE = 'weft_device';
export const KERNEL4 = 'weft_kernel4';
export const KERNEL6 = 'weft_kernel6';
/** Static protocols: device routes of routed addresses, the host /64 blackhole, VIP blackholes. */
export const ROUTED4 = 'weft_routed4';
export const ROUTED6 = 'weft_routed6';
export const HOST6 = 'weft_host6';
export const VIPS4 = 'weft_vips4';
export const VIPS6 = 'weft_vips6';
/** Static ROA protocols (only without an RTR validator, and only when non-empty). */
export const ROA_STATIC4 = 'weft_roas4';
export const ROA_STATIC6 = 'weft_roas6';
export const RPKI = 'weft_rpki';
export const BFD = 'weft_bfd';
/** ROA tables (always declared). */
export const ROA4 = 'weft_roa4';
export const ROA6 = 'weft_roa6';
/** Filters: what the kernel protocols install, and what every BGP session announces. */
export const KERNEL_EXPORT4 = 'weft_kernel_export4';
export const KERNEL_EXPORT6 = 'weft_kernel_export6';
export const EXPORT4 = 'weft_export4';
export const EXPORT6 = 'weft_export6';
/** RFC 8326 GRACEFUL_SHUTDOWN, the community (65535, 0). */
export const GRACEFUL_SHUTDOWN: readonly [number, number] = [65535, 0];

/** Bogons and the longest prefixes of a full table: one list for the hosts and the fabric (model/bogons.ts). */
export { BOGONS4, BOGONS6, LONGEST4, LONGEST6 };

const ASN_MAX = 4294967295;
const SESSION_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IRR_ITEM = /^([0-9A-Fa-f.:]+\/\d{1,3})(?:\{(\d{1,3}),(\d{1,3})\}|([+-]))?$/;

/**
 * The BIRD protocol name of a session: `up_` and the last 12 hex digits of
 * its id (a UUID) once every other character is removed, in lower case: the
 * random part (the first digits of a UUIDv7 are its creation time, shared
 * by peers made in the same millisecond). Throws E_INVALID_ARG if the id
 * has fewer than 12 hex digits.
 */
export function protocolName(sessionId: string): string {
  const hex = typeof sessionId === 'string' ? sessionId.replace(/[^0-9A-Fa-f]/g, '').toLowerCase() : '';
  if (hex.length < 12) throw invalid('sessionId', sessionId, 'must contain at least 12 hex digits (a UUID)');
  return `${BGP_PREFIX}${hex.slice(-12)}`;
}

/** The import filter of a session for one family (absent for policy `none`: the channel imports none). */
export const importFilterName = (sessionId: string, family: Family): string => `${protocolName(sessionId)}_in${family}`;

/** A validated session, with everything the config needs. */
interface Session {
  name: string;
  id: string;
  neighbor: string;
  remoteAsn: number;
  policy: BgpSession['importPolicy'];
  maxPrefix: number;
  action: BgpSession['maxPrefixAction'];
  bfd: boolean;
  /** The channels, IPv4 first. */
  families: Family[];
}

interface IrrItem {
  cidr: Cidr;
  text: string;
}

const cmpBig = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
const cmpCidr = (a: Cidr, b: Cidr): number => a.family - b.family || cmpBig(a.base, b.base) || a.prefix - b.prefix;
const cmpText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function int(field: string, v: unknown, lo: number, hi: number, what = ''): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw invalid(field, v, `must be an integer ${lo}..${hi}${what}`);
  return v;
}

/** A /32 or /128, canonical. */
function hostRoute(field: string, v: unknown): Cidr {
  const c = parseCidr(field, v);
  if (c.prefix !== (c.family === 4 ? 32 : 128)) throw invalid(field, v, 'must be a /32 (IPv4) or /128 (IPv6)');
  return c;
}

function session(s: BgpSession, localAsn: number, at: string): Session {
  if (typeof s.id !== 'string' || !SESSION_ID.test(s.id)) throw invalid(`${at}.id`, s.id, 'must be 1-128 letters, digits, _ . : - (a UUID)');
  let name: string;
  try {
    name = protocolName(s.id);
  } catch {
    throw invalid(`${at}.id`, s.id, 'must contain at least 12 hex digits (a UUID)');
  }
  const ip = parseIp(`${at}.neighbor`, s.neighbor);
  const multicast = ip.family === 4 ? ip.n >> 28n === 0xen : ip.n >> 120n === 0xffn;
  const linkLocal = ip.family === 4 ? ip.n >> 16n === 0xa9fen : ip.n >> 118n === 0x3fan;
  if (ip.n === 0n || multicast || (ip.family === 4 && ip.n === 0xffffffffn)) throw invalid(`${at}.neighbor`, s.neighbor, 'must be a unicast address');
  // BIRD needs an interface for a link-local neighbour, and sessions name none.
  if (linkLocal) throw invalid(`${at}.neighbor`, s.neighbor, 'must not be link-local (sessions name no interface)');
  const remoteAsn = int(`${at}.remoteAsn`, s.remoteAsn, 1, ASN_MAX);
  if (remoteAsn === localAsn) throw invalid(`${at}.remoteAsn`, remoteAsn, `must differ from the host's asn ${localAsn}: upstream sessions are eBGP`);
  if (!['none', 'default', 'full'].includes(s.importPolicy)) throw invalid(`${at}.importPolicy`, s.importPolicy, 'must be one of none, default, full');
  const maxPrefix = int(`${at}.maxPrefix`, s.maxPrefix, 1, ASN_MAX);
  if (!MAX_PREFIX_ACTIONS.includes(s.maxPrefixAction))
    throw invalid(`${at}.maxPrefixAction`, s.maxPrefixAction, `must be one of ${MAX_PREFIX_ACTIONS.join(', ')}`);
  let families: Family[] = [ip.family];
  if (s.multiprotocol) {
    // RFC 8950 carries IPv4 routes with IPv6 next hops; the reverse has no next hop to give.
    if (ip.family !== 6) throw invalid(`${at}.multiprotocol`, true, `needs an IPv6 neighbor (RFC 8950 next hops); neighbor is ${ip.text}`);
    families = [4, 6];
  }
  return {
    name,
    id: s.id,
    neighbor: ip.text,
    remoteAsn,
    policy: s.importPolicy,
    maxPrefix,
    action: s.maxPrefixAction,
    bfd: s.bfd === true,
    families,
  };
}

/** One IRR prefix-set item: `prefix`, `prefix+`, `prefix-` or `prefix{min,max}` with prefix length <= min <= max <= 32/128. */
function irrItem(field: string, v: unknown): IrrItem {
  const m = typeof v === 'string' ? IRR_ITEM.exec(v) : null;
  if (!m) throw invalid(field, v, 'must be a prefix-set item such as 203.0.113.0/24, 203.0.113.0/24{24,32} or 203.0.113.0/24+');
  const cidr = parseCidr(field, m[1]);
  let suffix = m[4] ?? '';
  if (m[2] !== undefined && m[3] !== undefined) {
    const lo = Number(m[2]);
    const hi = Number(m[3]);
    const bits = cidr.family === 4 ? 32 : 128;
    if (lo < cidr.prefix || hi < lo || hi > bits) throw invalid(field, v, `range {min,max} must satisfy ${cidr.prefix} <= min <= max <= ${bits}`);
    suffix = `{${lo},${hi}}`;
  }
  return { cidr, text: `${cidr.text}${suffix}` };
}

/** Sorted and without duplicates. */
function sortedItems(items: IrrItem[]): string[] {
  const seen = new Set<string>();
  const out: IrrItem[] = [];
  for (const it of items) {
    if (seen.has(it.text)) continue;
    seen.add(it.text);
    out.push(it);
  }
  return out.sort((a, b) => cmpCidr(a.cidr, b.cidr) || cmpText(a.text, b.text)).map((it) => it.text);
}

const irrSet = (family: Family, asn: number): string => `WEFT_IRR${family}_AS${asn}`;
const quote = (s: string): string => `"${s}"`;
/** `a`, `a and b`, `a, b and c`. */
const listed = (xs: string[]): string => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);

/** Lines of a block: `head {`, the body indented one tab, `}` (plus `tail`, e.g. `;` inside a protocol). */
function block(head: string, body: string[], tail = ''): string[] {
  return [`${head} {`, ...body.map((l) => (l === '' ? l : `\t${l}`)), `}${tail}`];
}

/** A BIRD set literal, one item a line. */
function set(name: string, items: readonly string[]): string[] {
  if (items.length === 0) return [`define ${name} = [];`];
  return [`define ${name} = [`, ...items.map((it, i) => `\t${it}${i < items.length - 1 ? ',' : ''}`), '];'];
}

/**
 * Renders the whole bird.conf of a host. Deterministic: sessions, routes,
 * ROAs and IRR items are sorted, duplicates of identical items dropped, so
 * equal inputs in any order give the same text. Only what is rendered is
 * validated: with `asn` null, sessions, RPKI, ROAs, IRR and BFD are ignored;
 * with `rpki` set, `roas` are; IRR lists only of ASNs a session imports from.
 * Throws E_INVALID_ARG naming the field (e.g. `routedAddrs[2].ifname`,
 * `irr.65000[2]`) on anything BIRD would refuse or misread.
 */
export function renderBirdConf(inputs: RoutingInputs): string {
  const hostName = inputs.hostName;
  // The name goes into a comment: a line break would end it.
  if (typeof hostName !== 'string' || hostName.length === 0 || hostName.length > 253 || /[\p{Cc}]/u.test(hostName)) {
    throw invalid('hostName', hostName, 'must be 1-253 printable characters');
  }
  const rid = parseIp('routerId', inputs.routerId);
  if (rid.family !== 4 || rid.n === 0n) throw invalid('routerId', inputs.routerId, 'must be a nonzero IPv4 address');
  const asn = inputs.asn === null ? null : int('asn', inputs.asn, 1, ASN_MAX);

  // Routed addresses: one device route each; the same prefix on two interfaces is ambiguous.
  const routed = new Map<string, { cidr: Cidr; ifname: string; at: string }>();
  inputs.routedAddrs.forEach((r, i) => {
    const cidr = hostRoute(`routedAddrs[${i}].prefix`, r.prefix);
    checkIfname(`routedAddrs[${i}].ifname`, r.ifname);
    const prev = routed.get(cidr.text);
    if (prev && prev.ifname !== r.ifname) throw invalid(`routedAddrs[${i}].prefix`, r.prefix, `must be unique: ${prev.at} routes it via ${prev.ifname}`);
    routed.set(cidr.text, { cidr, ifname: r.ifname, at: `routedAddrs[${i}]` });
  });
  const routes = [...routed.values()].sort((a, b) => cmpCidr(a.cidr, b.cidr));

  let host6: Cidr | null = null;
  if (inputs.hostPrefix6 !== null) {
    host6 = parseCidr('hostPrefix6', inputs.hostPrefix6);
    if (host6.family !== 6 || host6.prefix !== 64) throw invalid('hostPrefix6', inputs.hostPrefix6, 'must be an IPv6 /64');
  }
  const vipMap = new Map<string, Cidr>();
  inputs.vips.forEach((v, i) => {
    const c = hostRoute(`vips[${i}]`, v);
    vipMap.set(c.text, c);
  });
  const vips = [...vipMap.values()].sort(cmpCidr);

  const out: string[] = [
    `# Generated by weft for host ${hostName}. Do not edit: the weft agent rewrites this file.`,
    '',
    `router id ${rid.text};`,
    'log stderr all;',
    '',
    '# Route origin authorisations, for RPKI origin validation of imports.',
    `roa4 table ${ROA4};`,
    `roa6 table ${ROA6};`,
    '',
    ...block(`protocol device ${DEVICE}`, []),
    '',
  ];

  // Statics.
  const statics = (name: string, family: Family, comment: string | null, lines: string[]) => {
    if (comment) out.push(`# ${comment}`);
    out.push(...block(`protocol static ${name}`, [`ipv${family};`, ...lines]), '');
  };
  const routesOf = (family: Family) => routes.filter((r) => r.cidr.family === family).map((r) => `route ${r.cidr.text} via ${quote(r.ifname)};`);
  const blackholes = (cs: Cidr[]) => cs.map((c) => `route ${c.text} blackhole;`);
  statics(ROUTED4, 4, 'Routed addresses as device routes: each is announced and installed only while its interface is up.', routesOf(4));
  statics(ROUTED6, 6, null, routesOf(6));
  statics(HOST6, 6, "The host's /64: announced, and installed as a blackhole so that its unused addresses go nowhere.", blackholes(host6 ? [host6] : []));
  statics(
    VIPS4,
    4,
    'Anycast VIPs with a healthy local backend: announced, never installed (DNAT delivers them).',
    blackholes(vips.filter((c) => c.family === 4)),
  );
  statics(VIPS6, 6, null, blackholes(vips.filter((c) => c.family === 6)));

  // Kernel.
  for (const [family, name, filter, own] of [
    [4, KERNEL4, KERNEL_EXPORT4, [ROUTED4]],
    [6, KERNEL6, KERNEL_EXPORT6, [ROUTED6, HOST6]],
  ] as const) {
    const body = own.map((p) => `if proto = ${quote(p)} then accept;`);
    if (asn !== null) body.push('if source = RTS_BGP then accept;');
    body.push('reject;');
    out.push(
      `# Into the kernel: ${listed(['routed addresses', ...(family === 6 ? ['the /64 blackhole'] : []), ...(asn !== null ? ['BGP routes'] : [])])}; never the VIPs.`,
      ...block(`filter ${filter}`, body),
      '',
      ...block(`protocol kernel ${name}`, [...block(`ipv${family}`, ['import none;', `export filter ${filter};`], ';'), 'merge paths on;']),
      '',
    );
  }

  if (asn !== null) out.push(...bgp(inputs, asn));
  while (out[out.length - 1] === '') out.pop();
  return `${out.join('\n')}\n`;
}

/** Everything that exists only with BGP: ROA sources, BFD, filters, sessions. */
function bgp(inputs: RoutingInputs, asn: number): string[] {
  const out: string[] = [];
  const sessions = inputs.sessions.map((s, i) => session(s, asn, `sessions[${i}]`));
  const byName = new Map<string, number>();
  const byNeighbor = new Map<string, number>();
  sessions.forEach((s, i) => {
    const a = byName.get(s.name);
    if (a !== undefined) throw invalid(`sessions[${i}].id`, s.id, `must not share its last 12 hex digits with sessions[${a}].id (BIRD protocol ${s.name})`);
    byName.set(s.name, i);
    const b = byNeighbor.get(s.neighbor);
    if (b !== undefined) throw invalid(`sessions[${i}].neighbor`, s.neighbor, `must be unique: sessions[${b}] has it`);
    byNeighbor.set(s.neighbor, i);
  });
  sessions.sort((a, b) => cmpText(a.name, b.name));

  // ROA sources.
  if (inputs.rpki !== null) {
    const { host, port } = inputs.rpki;
    let remote: string;
    if (typeof host === 'string' && host.includes(':')) remote = parseIp('rpki.host', host).text;
    else if (typeof host === 'string' && HOSTNAME.test(host)) remote = /^[0-9.]+$/.test(host) ? parseIp('rpki.host', host).text : quote(host);
    else throw invalid('rpki.host', host, 'must be an IP address or a host name');
    int('rpki.port', port, 1, 65535);
    out.push(
      '# ROAs from the RTR validator (its own timers apply once it sends them).',
      ...block(`protocol rpki ${RPKI}`, [
        `roa4 { table ${ROA4}; };`,
        `roa6 { table ${ROA6}; };`,
        `remote ${remote} port ${port};`,
        'refresh 900;',
        'retry 90;',
        'expire 172800;',
      ]),
      '',
    );
  } else {
    const roas = new Map<string, { cidr: Cidr; max: number; asn: number; text: string }>();
    inputs.roas.forEach((r, i) => {
      const cidr = parseCidr(`roas[${i}].prefix`, r.prefix);
      const max = int(`roas[${i}].maxLength`, r.maxLength, cidr.prefix, cidr.family === 4 ? 32 : 128, ' (the prefix length up to /32 or /128)');
      // AS 0 is meaningful in a ROA (RFC 6483: the prefix must not be routed).
      const origin = int(`roas[${i}].asn`, r.asn, 0, ASN_MAX);
      const text = `route ${cidr.text} max ${max} as ${origin};`;
      roas.set(text, { cidr, max, asn: origin, text });
    });
    const sorted = [...roas.values()].sort((a, b) => cmpCidr(a.cidr, b.cidr) || a.max - b.max || a.asn - b.asn);
    let comment = '# Static ROAs (no RTR validator configured).';
    for (const [family, name, table] of [
      [4, ROA_STATIC4, ROA4],
      [6, ROA_STATIC6, ROA6],
    ] as const) {
      const lines = sorted.filter((r) => r.cidr.family === family).map((r) => r.text);
      if (lines.length === 0) continue;
      out.push(...(comment ? [comment] : []), ...block(`protocol static ${name}`, [`roa${family} { table ${table}; };`, ...lines]), '');
      comment = '';
    }
  }

  if (sessions.some((s) => s.bfd)) {
    const { intervalMs, multiplier } = inputs.bfd;
    int('bfd.intervalMs', intervalMs, 1, 60000, ' (milliseconds)');
    int('bfd.multiplier', multiplier, 1, 255);
    out.push(
      '# BFD for the sessions that ask for it: min rx/tx interval and detection multiplier.',
      ...block(`protocol bfd ${BFD}`, block('interface "*"', [`interval ${intervalMs} ms;`, `multiplier ${multiplier};`], ';')),
      '',
    );
  }

  // Shared definitions. Filters and sets must precede their first use.
  const [gA, gB] = GRACEFUL_SHUTDOWN;
  out.push(
    `# RFC 8326 GRACEFUL_SHUTDOWN.`,
    `define WEFT_GSHUT = (${gA}, ${gB});`,
    '',
    '# Bogons, each with every longer prefix: never accepted, even in a full table.',
    ...set(
      'WEFT_BOGONS4',
      BOGONS4.map((p) => `${p}+`),
    ),
    ...set(
      'WEFT_BOGONS6',
      BOGONS6.map((p) => `${p}+`),
    ),
    '',
  );

  // IRR lists of the ASNs that some session imports from.
  const irrFamilies = new Map<number, Set<Family>>();
  for (const s of sessions) {
    if (s.policy === 'none' || !Object.hasOwn(inputs.irr, String(s.remoteAsn))) continue;
    const fs = irrFamilies.get(s.remoteAsn) ?? new Set<Family>();
    for (const f of s.families) fs.add(f);
    irrFamilies.set(s.remoteAsn, fs);
  }
  for (const remote of [...irrFamilies.keys()].sort((a, b) => a - b)) {
    const list = inputs.irr[String(remote)];
    if (!Array.isArray(list)) throw invalid(`irr.${remote}`, list, 'must be a list of prefix-set items');
    const items = list.map((v, i) => irrItem(`irr.${remote}[${i}]`, v));
    out.push(`# IRR prefix list of AS${remote}: what sessions to it may accept.`);
    for (const f of [4, 6] as const) {
      if (irrFamilies.get(remote)?.has(f)) out.push(...set(irrSet(f, remote), sortedItems(items.filter((it) => it.cidr.family === f))));
    }
    out.push('');
  }

  for (const f of [4, 6] as const) {
    const longest = f === 4 ? LONGEST4 : LONGEST6;
    out.push(
      `# Policy "full" refuses bogons and prefixes longer than /${longest}.`,
      ...block(`function weft_bogon${f}()`, [`return net ~ WEFT_BOGONS${f} || net.len > ${longest};`]),
      '',
      '# RFC 6811 origin validation: INVALID is refused; VALID and UNKNOWN pass.',
      ...block(`function weft_roa_invalid${f}()`, [`return roa_check(${f === 4 ? ROA4 : ROA6}, net, bgp_path.last) = ROA_INVALID;`]),
      '',
    );
  }
  out.push(
    "# RFC 8326: honour the peer's drain, so traffic leaves its routes before the session goes down.",
    ...block('function weft_honour_gshut()', ['if WEFT_GSHUT ~ bgp_community then bgp_local_pref = 0;']),
    '',
  );

  // Export: the host's own statics only.
  const drain = inputs.drain === true;
  for (const [f, name, own] of [
    [4, EXPORT4, [ROUTED4, VIPS4]],
    [6, EXPORT6, [ROUTED6, HOST6, VIPS6]],
  ] as const) {
    const body = [`if ${own.map((p) => `proto != ${quote(p)}`).join(' && ')} then reject;`];
    if (drain) body.push('bgp_community.add(WEFT_GSHUT);');
    body.push('accept;');
    out.push(
      `# What every session announces (ipv${f}): this host's own statics, never a learned route.${drain ? ' Draining: each tagged GRACEFUL_SHUTDOWN.' : ''}`,
      ...block(`filter ${name}`, body),
      '',
    );
  }

  if (sessions.length > 0) {
    out.push(
      '# Upstream sessions. The import table keeps what the peer sent, so the receive limit counts all of it',
      '# and ROA changes re-run the import filter.',
      '',
    );
  }
  for (const s of sessions) out.push(...sessionLines(s, asn, irrFamilies.has(s.remoteAsn)), '');
  return out;
}

function sessionLines(s: Session, asn: number, irr: boolean): string[] {
  const out: string[] = [];
  const channels: string[] = [];
  for (const f of s.families) {
    const filter = `${s.name}_in${f}`;
    if (s.policy !== 'none') {
      const body: string[] = [];
      if (s.policy === 'default') body.push(`if net != ${f === 4 ? '0.0.0.0/0' : '::/0'} then reject;`);
      else body.push(`if weft_bogon${f}() then reject;`);
      body.push(`if weft_roa_invalid${f}() then reject;`);
      if (irr) body.push(`if net !~ ${irrSet(f, s.remoteAsn)} then reject;`);
      body.push('weft_honour_gshut();', 'accept;');
      out.push(`# ${s.name} ipv${f}: policy ${s.policy}${irr ? `, IRR list of AS${s.remoteAsn}` : ''}.`, ...block(`filter ${filter}`, body), '');
    }
    const ch: string[] = [];
    if (f === 4 && s.families.length === 2) ch.push('extended next hop on;');
    ch.push(
      'import table on;',
      // Filtered routes stay visible (`show route filtered`), and counted: received = imported + filtered.
      'import keep filtered on;',
      `receive limit ${s.maxPrefix} action ${s.action};`,
      s.policy === 'none' ? 'import none;' : `import filter ${filter};`,
      `export filter ${f === 4 ? EXPORT4 : EXPORT6};`,
    );
    channels.push(...block(`ipv${f}`, ch, ';'));
  }
  const head = [
    `description ${quote(`session ${s.id}: neighbor ${s.neighbor} AS${s.remoteAsn}`)};`,
    `local as ${asn};`,
    `neighbor ${s.neighbor} as ${s.remoteAsn};`,
    // BIRD waits 60 s (up to 300) after any session error; a hypervisor should come back sooner after a
    // link or BFD flap, and backing off exponentially to 120 s still damps a flapping upstream.
    'error wait time 5, 120;',
  ];
  if (s.bfd) head.push('bfd on;');
  out.push(...block(`protocol bgp ${s.name}`, [...head, ...channels]));
  return out;
}
