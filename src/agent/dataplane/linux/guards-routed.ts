// The routed ports' guards and the VIP DNAT as one nftables table (pure),
// beside the overlay ports' guards (guards.ts), and the interface lines a
// routed port gets (gateways). routed-ports.ts applies them; docs/routing.md
// explains the design.
import { parseIp } from '../../../model/addr.js';
import { invalid } from '../../../model/errors.js';
import { IFNAME } from '../../../model/ifname.js';
import type { RoutedPortNet, VipNat } from '../dataplane.js';

export type { RoutedPortNet, VipNat };

/** The gateway every instance on a routed network uses: `default via 169.254.0.1 dev eth0 onlink`. */
export const GATEWAY4 = '169.254.0.1';
/** The IPv6 gateway: `default via fe80::1 dev eth0`. */
export const GATEWAY6 = 'fe80::1';
export const ROUTING_TABLE = 'weft_routing';

/**
 * The whole `inet weft_routing` table as one atomic nft script (it replaces
 * whatever the table held):
 * - `guard` (prerouting, before conntrack's NAT): from a routed port, drop
 *   sources that do not route back through that port (`fib saddr . iif`,
 *   BCP38 for both families), router advertisements, and DHCP server replies;
 *   each drop counted under a named counter.
 * - `vip` (prerouting, dstnat): a VIP with local healthy backends is
 *   DNAT'ed to one of them, chosen by a hash of the source address and port
 *   (one backend: to it). Replies are un-NAT'ed by conntrack.
 */
export function renderRoutingNft(ports: RoutedPortNet[], vips: VipNat[]): string {
  for (const [i, p] of ports.entries()) checkPort(`ports[${i}]`, p);
  // Addresses come from the network (the push stream): nothing but a parsed address reaches nft.
  vips = vips.map((v, i) => {
    const vip = parseIp(`vips[${i}].vip`, v.vip);
    return {
      vip: vip.text,
      backends: v.backends.map((b, j) => {
        const a = parseIp(`vips[${i}].backends[${j}]`, b);
        if (a.family !== vip.family) throw invalid(`vips[${i}].backends[${j}]`, b, `must be IPv${vip.family} like the VIP`);
        return a.text;
      }),
    };
  });
  const names = ports.map((p) => `"${p.ifname}"`).sort();
  const lines = [
    `table inet ${ROUTING_TABLE} {}`,
    `delete table inet ${ROUTING_TABLE}`,
    `table inet ${ROUTING_TABLE} {`,
    '  counter spoof {}',
    '  counter ra {}',
    '  counter dhcp-server {}',
    '  set routed_ports {',
    '    type ifname',
    ...(names.length > 0 ? [`    elements = { ${names.join(', ')} }`] : []),
    '  }',
    '  chain guard {',
    '    type filter hook prerouting priority -300; policy accept;',
    '    iifname != @routed_ports accept',
    '    fib saddr . iif oif missing counter name spoof drop',
    '    icmpv6 type nd-router-advert counter name ra drop',
    '    udp sport { 67, 547 } counter name dhcp-server drop',
    '  }',
    '  chain vip {',
    '    type nat hook prerouting priority dstnat; policy accept;',
  ];
  for (const v of [...vips].sort((a, b) => (a.vip < b.vip ? -1 : 1))) {
    if (v.backends.length === 0) continue;
    const six = v.vip.includes(':');
    const fam = six ? 'ip6' : 'ip';
    const b = [...v.backends].sort();
    if (b.length === 1) lines.push(`    ${fam} daddr ${v.vip} dnat ${fam} to ${b[0]}`);
    else
      lines.push(`    ${fam} daddr ${v.vip} dnat ${fam} to jhash ${fam} saddr . th sport mod ${b.length} map { ${b.map((a, i) => `${i} : ${a}`).join(', ')} }`);
  }
  lines.push('  }', '}');
  return `${lines.join('\n')}\n`;
}

function checkPort(field: string, p: RoutedPortNet): void {
  if (!IFNAME.test(p.ifname)) throw invalid(`${field}.ifname`, p.ifname, 'must be 1..15 of [A-Za-z0-9_.-]');
  if (!Number.isInteger(p.mtu) || p.mtu < 1280 || p.mtu > 9000) throw invalid(`${field}.mtu`, p.mtu, 'must be an integer 1280..9000');
}

/** The interface state a routed port must have: MTU, up, the gateway addresses. */
export function routedPortLines(p: RoutedPortNet): string[] {
  checkPort('port', p);
  return [`link set dev ${p.ifname} mtu ${p.mtu} up`, `addr replace ${GATEWAY4}/32 dev ${p.ifname} scope link`, `addr replace ${GATEWAY6}/64 dev ${p.ifname}`];
}
