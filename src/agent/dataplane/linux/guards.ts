// Per-port guards as nftables scripts (pure): BCP38 anti-spoofing (one MAC,
// one IPv4, one IPv6 per port), no DHCP or router advertisements from or to
// VMs, ARP and ND rate limits, and a named counter on every drop.
//
// Design notes. Everything lives in one table, `bridge weft`, that nothing
// else on the host uses:
// - `prerouting` (bridge prerouting hook, priority filter = -200) sends each
//   frame entering the bridge from a guarded port to that port's chain,
//   `p_<ifname>`, through the verdict map `ports_in` (ifname -> jump). It
//   runs before the bridge learns the source MAC and before ARP/ND
//   suppression, so a dropped frame leaves no trace in the bridge.
// - `postrouting` (bridge postrouting hook, which sees both forwarded and
//   locally sent frames) drops DHCPv4 and DHCPv6 server replies and router
//   advertisements toward guarded ports (set `ports_out`), wherever they come
//   from (the vxlan port, the host). Addresses come from IPAM and are static:
//   weft networks hand out no DHCP and no SLAAC. These host-wide drops use
//   named counters (`egress-*`), so the incremental scripts, which rewrite
//   the base chains to (re)create them idempotently, keep their values.
// - a port chain checks, in order: source MAC; ethertype (ARP, IPv4, IPv6
//   only: no VLAN tags, no LLC/STP); ARP (Ethernet/IPv4 only, sender MAC and
//   IP the port's, RFC 5227 probes from 0.0.0.0 only for the port's own
//   address, then a rate limit); IPv4 (no DHCP either way, source the port's);
//   IPv6 (no RA, no DHCPv6 either way, source the port's address or its
//   EUI-64 link-local, `::` only for DAD, ND target and link-layer options the
//   port's, then an ND rate limit); then accept. The last rule's comment
//   carries the spec hash of the port it was rendered from.
// - every rule's comment is the name of its guard (GUARDS); counters are read
//   back per (port, guard). A port with no IPv4 drops all ARP and IPv4
//   (`no-ipv4`), with no IPv6 all IPv6 (`no-ipv6`).
// DHCP client requests (udp dport 67 / 547) are dropped too: nothing on a
// weft network answers them, and they are broadcast (multicast) to every
// port of the segment, which is exactly the BUM traffic the guards limit.
import { parseIp, parseMac } from '../../../model/addr.js';
import { invalid } from '../../../model/errors.js';
import { checkIfname } from '../../../model/ifname.js';
import { type GuardPort, guardSpecHash, type NormalGuardPort, normalGuardPort } from '../guard-spec.js';

export const GUARD_TABLE = 'weft';
export const GUARD_FAMILY = 'bridge';
export const PORTS_IN = 'ports_in';
export const PORTS_OUT = 'ports_out';
/** Port chains are named `p_<ifname>`. */
export const PORT_CHAIN_PREFIX = 'p_';
/** The last rule of a port chain has the comment `accept spec=<hash>`. */
export const SPEC_COMMENT_PREFIX = 'accept spec=';

/** Every guard name a rule comment or named counter can carry, with what it drops. */
export const GUARDS = {
  'spoof-mac': 'source MAC is not the port MAC',
  'bad-ethertype': 'ethertype other than ARP, IPv4, IPv6 (VLAN tags, LLC, STP...)',
  'spoof-arp': 'ARP not Ethernet/IPv4 request or reply, or sender MAC/IP not the port, or a probe for another address',
  'arp-rate': 'ARP over the port rate',
  'no-ipv4': 'ARP or IPv4 from a port without an IPv4 address',
  'dhcp-client': 'DHCPv4 request (udp dport 67): no DHCP on weft networks',
  'dhcp-server': 'DHCPv4 server reply (udp sport 67) from a VM',
  'spoof-ipv4': 'IPv4 source is not the port IPv4',
  'no-ipv6': 'IPv6 from a port without an IPv6 address',
  ra: 'router advertisement from a VM',
  'dhcp6-client': 'DHCPv6 request (udp dport 547): no DHCPv6 on weft networks',
  'dhcp6-server': 'DHCPv6 server reply (udp sport 547) from a VM',
  'spoof-ipv6': 'IPv6 source not the port IPv6, its EUI-64 link-local, or :: (DAD only)',
  'mld-unspec': 'MLD report from :: (RFC 3590, sent while the link-local is tentative; weft bridges do not snoop)',
  'spoof-nd': "DAD or NA for an address not the port's, or NS/NA link-layer option not the port MAC",
  'nd-rate': 'RS/NS/NA over the port rate',
  'egress-dhcp-server': 'DHCPv4 server reply toward a guarded port (from the vxlan port or the host)',
  'egress-dhcp6-server': 'DHCPv6 server reply toward a guarded port',
  'egress-ra': 'router advertisement toward a guarded port',
} as const;

export type GuardName = keyof typeof GUARDS;

/** The host-wide guards of `postrouting`, with named counters (reported with ifname ''). */
export const EGRESS_GUARDS = ['egress-dhcp-server', 'egress-dhcp6-server', 'egress-ra'] as const;

/** The chain name of a port. */
export const portChain = (ifname: string): string => `${PORT_CHAIN_PREFIX}${ifname}`;

const hex = (n: bigint, digits: number): string => `0x${n.toString(16).padStart(digits, '0')}`;
const burst = (rate: number): number => Math.max(5, rate);

/**
 * The rules of one port's chain, in order, each ending with its counter,
 * verdict and guard comment (the syntax of `add rule`, and of a rule line
 * inside a `chain { }` block).
 */
function portRules(n: NormalGuardPort, hash: string): string[] {
  const rules: string[] = [];
  const drop = (match: string, guard: GuardName) => rules.push(`${match} counter drop comment "${guard}"`);
  const macHex = hex(parseMac('mac', n.mac).n, 12);

  drop(`ether saddr != ${n.mac}`, 'spoof-mac');
  drop('ether type != { arp, ip, ip6 }', 'bad-ethertype');

  if (n.ipv4Text === null) {
    drop('ether type { arp, ip }', 'no-ipv4');
  } else {
    const a = n.ipv4Text;
    // `arp saddr ip` reads fixed offsets: only Ethernet/IPv4 ARP has them right.
    // (Two rules: nft 1.0.6 adds but cannot list, even as text, a five-field concatenation
    // set with two elements: it aborts in concat_expr_msort_value.)
    drop('arp htype . arp ptype . arp hlen . arp plen != { 1 . ip . 6 . 4 }', 'spoof-arp');
    drop('arp operation != { request, reply }', 'spoof-arp');
    drop(`arp saddr ether != ${n.mac}`, 'spoof-arp');
    // RFC 5227 probes come from 0.0.0.0; allowed only for the port's own address, or a
    // VM could make another's address conflict detection fail.
    drop(`arp saddr ip 0.0.0.0 arp daddr ip != ${a}`, 'spoof-arp');
    drop(`arp saddr ip != { ${a}, 0.0.0.0 }`, 'spoof-arp');
    drop(`ether type arp limit rate over ${n.arpRate}/second burst ${burst(n.arpRate)} packets`, 'arp-rate');
    // Role checks come before the source check: a DHCP client speaks from 0.0.0.0, and a
    // rogue DHCP server is better reported as one than as a spoofer.
    drop('ether type ip udp dport 67', 'dhcp-client');
    drop('ether type ip udp sport 67', 'dhcp-server');
    drop(`ip saddr != ${a}`, 'spoof-ipv4');
  }

  if (n.ipv6Text === null || n.ipv6 === null) {
    drop('ether type ip6', 'no-ipv6');
  } else {
    const ownRaw = `{ ${hex(n.ipv6, 32)}, ${hex(parseIp('ll', n.linkLocal).n, 32)} }`;
    drop('icmpv6 type nd-router-advert', 'ra');
    drop('ether type ip6 udp dport 547', 'dhcp6-client');
    drop('ether type ip6 udp sport 547', 'dhcp6-server');
    drop(`ip6 saddr != { ${n.ipv6Text}, ${n.linkLocal}, :: }`, 'spoof-ipv6');
    // From ::, only DAD neighbour solicitations (and MLD reports, counted apart). The
    // l4proto rule is needed because an `icmpv6` match does not match non-ICMPv6 at all.
    drop('ip6 saddr :: meta l4proto != ipv6-icmp', 'spoof-ipv6');
    drop('ip6 saddr :: icmpv6 type { mld-listener-report, mld2-listener-report }', 'mld-unspec');
    drop('ip6 saddr :: icmpv6 type != nd-neighbor-solicit', 'spoof-ipv6');
    // nft 1.0.6 names no ND target field: the target is the 16 bytes after the 8-byte
    // ICMPv6 header; the first option follows at byte 24 (type, length in 8-byte units, MAC).
    drop(`ip6 saddr :: icmpv6 type nd-neighbor-solicit @th,64,128 != ${ownRaw}`, 'spoof-nd');
    drop(`icmpv6 type nd-neighbor-advert @th,64,128 != ${ownRaw}`, 'spoof-nd');
    drop(`icmpv6 type nd-neighbor-solicit @th,192,16 0x0101 @th,208,48 != ${macHex}`, 'spoof-nd');
    drop(`icmpv6 type nd-neighbor-advert @th,192,16 0x0201 @th,208,48 != ${macHex}`, 'spoof-nd');
    drop(
      `icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } limit rate over ${n.ndRate}/second burst ${burst(n.ndRate)} packets`,
      'nd-rate',
    );
  }
  rules.push(`counter accept comment "${SPEC_COMMENT_PREFIX}${hash}"`);
  return rules;
}

/** The base chains' rules (the same in the full table and in incremental scripts). */
const PREROUTING_RULES = [`iifname vmap @${PORTS_IN}`];
const POSTROUTING_RULES = [
  `oifname != @${PORTS_OUT} return`,
  'ether type ip udp sport 67 udp dport 68 counter name "egress-dhcp-server" drop comment "egress-dhcp-server"',
  'ether type ip6 udp sport 547 counter name "egress-dhcp6-server" drop comment "egress-dhcp6-server"',
  'icmpv6 type nd-router-advert counter name "egress-ra" drop comment "egress-ra"',
];
const PREROUTING_HOOK = 'type filter hook prerouting priority -200; policy accept;';
const POSTROUTING_HOOK = 'type filter hook postrouting priority -200; policy accept;';
const TABLE_COMMENT = 'weft port guards: generated by the weft agent, do not edit';
const HEADER = '# weft port guards (generated; see src/agent/dataplane/linux/guards.ts)\n';

function checkedPorts(ports: GuardPort[], at: string): NormalGuardPort[] {
  const seen = new Set<string>();
  return ports.map((p, i) => {
    const n = normalGuardPort(p, `${at}[${i}]`);
    if (seen.has(n.ifname)) throw invalid(`${at}[${i}].ifname`, n.ifname, 'must be unique');
    seen.add(n.ifname);
    return n;
  });
}

/**
 * The whole table for `nft -f -`, as one transaction that replaces whatever
 * `bridge weft` held (the `table` + `delete table` idiom works whether or not
 * it exists). Resets every counter. Ports are rendered in ifname order, so
 * the output does not depend on the input order. Throws E_INVALID_ARG on an
 * invalid or duplicate port.
 */
export function renderGuardTable(ports: GuardPort[]): string {
  const ns = checkedPorts(ports, 'ports').sort((a, b) => (a.ifname < b.ifname ? -1 : a.ifname > b.ifname ? 1 : 0));
  const t = '\t';
  const out: string[] = [
    HEADER.trimEnd(),
    `table ${GUARD_FAMILY} ${GUARD_TABLE}`,
    `delete table ${GUARD_FAMILY} ${GUARD_TABLE}`,
    `table ${GUARD_FAMILY} ${GUARD_TABLE} {`,
  ];
  out.push(`${t}comment "${TABLE_COMMENT}"`);
  for (const c of EGRESS_GUARDS) out.push(`${t}counter ${c} {`, `${t}}`);
  const elements = (items: string[]) =>
    items.length === 0 ? [] : [`${t}${t}elements = {`, ...items.map((e, i) => `${t}${t}${t}${e}${i < items.length - 1 ? ',' : ''}`), `${t}${t}}`];
  out.push(`${t}map ${PORTS_IN} {`, `${t}${t}type ifname : verdict`, ...elements(ns.map((n) => `"${n.ifname}" : jump ${portChain(n.ifname)}`)), `${t}}`);
  out.push(`${t}set ${PORTS_OUT} {`, `${t}${t}type ifname`, ...elements(ns.map((n) => `"${n.ifname}"`)), `${t}}`);
  const chain = (name: string, head: string | null, rules: string[]) => {
    out.push(`${t}chain ${name} {`);
    if (head) out.push(`${t}${t}${head}`);
    for (const r of rules) out.push(`${t}${t}${r}`);
    out.push(`${t}}`);
  };
  // Port chains first: the map elements that jump to them are only checked at the end of
  // the block, but reading top-down is easier when what a rule names is already defined.
  for (const n of ns) chain(portChain(n.ifname), null, portRules(n, guardSpecHash(portOf(n))));
  chain('prerouting', PREROUTING_HOOK, PREROUTING_RULES);
  chain('postrouting', POSTROUTING_HOOK, POSTROUTING_RULES);
  out.push('}');
  return `${out.join('\n')}\n`;
}

function portOf(n: NormalGuardPort): GuardPort {
  return { ifname: n.ifname, mac: n.mac, ipv4: n.ipv4Text, ipv6: n.ipv6Text, arpRate: n.arpRate, ndRate: n.ndRate };
}

/** Idempotent creation of the table, its sets, counters and base chains; rewrites the base chains' rules. */
function skeleton(): string[] {
  const tb = `${GUARD_FAMILY} ${GUARD_TABLE}`;
  return [
    `add table ${tb} { comment "${TABLE_COMMENT}"; }`,
    ...EGRESS_GUARDS.map((c) => `add counter ${tb} ${c}`),
    `add map ${tb} ${PORTS_IN} { type ifname : verdict; }`,
    `add set ${tb} ${PORTS_OUT} { type ifname; }`,
    `add chain ${tb} prerouting { ${PREROUTING_HOOK} }`,
    `add chain ${tb} postrouting { ${POSTROUTING_HOOK} }`,
    // Base chains hold no anonymous counters, so rewriting them loses nothing; it also
    // brings them up to date after an upgrade without a full replace.
    `flush chain ${tb} prerouting`,
    ...PREROUTING_RULES.map((r) => `add rule ${tb} prerouting ${r}`),
    `flush chain ${tb} postrouting`,
    ...POSTROUTING_RULES.map((r) => `add rule ${tb} postrouting ${r}`),
  ];
}

function addLines(n: NormalGuardPort): string[] {
  const tb = `${GUARD_FAMILY} ${GUARD_TABLE}`;
  const c = portChain(n.ifname);
  return [
    `add chain ${tb} ${c}`,
    `flush chain ${tb} ${c}`,
    ...portRules(n, guardSpecHash(portOf(n))).map((r) => `add rule ${tb} ${c} ${r}`),
    `add element ${tb} ${PORTS_IN} { "${n.ifname}" : jump ${c} }`,
    `add element ${tb} ${PORTS_OUT} { "${n.ifname}" }`,
  ];
}

function removeLines(ifname: string): string[] {
  const tb = `${GUARD_FAMILY} ${GUARD_TABLE}`;
  const c = portChain(ifname);
  // nft 1.0.6 has no `destroy`: add first (a no-op when present) so each delete finds its object.
  return [
    `add chain ${tb} ${c}`,
    `add element ${tb} ${PORTS_IN} { "${ifname}" : jump ${c} }`,
    `delete element ${tb} ${PORTS_IN} { "${ifname}" }`,
    `add element ${tb} ${PORTS_OUT} { "${ifname}" }`,
    `delete element ${tb} ${PORTS_OUT} { "${ifname}" }`,
    `flush chain ${tb} ${c}`,
    `delete chain ${tb} ${c}`,
  ];
}

/**
 * One transaction for `nft -f -` that removes the ports in `remove` and adds
 * or replaces (flush and refill) those in `add`, touching no other port's
 * chain, element or counter. Idempotent: it creates the table and base chains
 * when missing, and removing a port that is not there succeeds. The egress
 * counters are named objects and survive. Removals run before additions.
 * Throws E_INVALID_ARG on an invalid or duplicate port.
 */
export function renderGuardChanges(c: { add: GuardPort[]; remove: string[] }): string {
  const adds = checkedPorts(c.add, 'add');
  c.remove.forEach((ifname, i) => {
    checkIfname(`remove[${i}]`, ifname, 'must be an interface name (1-15 characters)');
  });
  const lines = [...skeleton(), ...[...new Set(c.remove)].flatMap(removeLines), ...adds.flatMap(addLines)];
  return `${HEADER}${lines.join('\n')}\n`;
}

/** renderGuardChanges for one port added or replaced. */
export function renderPortAdd(port: GuardPort): string {
  return renderGuardChanges({ add: [port], remove: [] });
}

/** renderGuardChanges for one port removed (succeeds when it is not there). */
export function renderPortRemove(ifname: string): string {
  return renderGuardChanges({ add: [], remove: [ifname] });
}
