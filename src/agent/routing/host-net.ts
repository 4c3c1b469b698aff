// The host side of routed networks and VIPs: each local routed port's
// interface gets the instance's gateway addresses (169.254.0.1, fe80::1) and
// strict reverse-path filtering, and one nftables table guards those ports
// and delivers VIP traffic to healthy local backends (DNAT). BIRD installs
// the instances' /32 and /128 routes (bird-conf.ts); this file only renders
// (pure) and applies (I/O) the rest. docs/routing.md explains the design.
import { parseIp } from '../../model/addr.js';
import { invalid } from '../../model/errors.js';
import { run as defaultRun, type Runner } from '../../sys/exec.js';

/** The gateway every instance on a routed network uses: `default via 169.254.0.1 dev eth0 onlink`. */
export const GATEWAY4 = '169.254.0.1';
/** The IPv6 gateway: `default via fe80::1 dev eth0`. */
export const GATEWAY6 = 'fe80::1';
export const ROUTING_TABLE = 'weft_routing';

export interface RoutedPortNet {
  ifname: string;
  mtu: number;
}

export interface VipNat {
  /** The VIP address (IPv4 or IPv6). */
  vip: string;
  /** Healthy local backends, in the VIP's family (sorted). */
  backends: string[];
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

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

/** The host's routed-port interfaces and the routing nft table, made to match (I/O). Each call is idempotent. */
export class HostNet {
  private readonly run: Runner;
  private lastNft: string | null = null;
  private readonly done = new Map<string, string>();

  constructor(private readonly o: { run?: Runner; netns?: string } = {}) {
    this.run = o.run ?? defaultRun;
  }

  /**
   * Configures the routed ports whose interface exists (others are skipped
   * and retried on the next call) and writes the nft table if it changed.
   * Returns the ports that exist. Throws E_DATAPLANE naming the command.
   */
  async apply(ports: RoutedPortNet[], vips: VipNat[]): Promise<Set<string>> {
    const links = await this.links();
    const present = ports.filter((p) => links.has(p.ifname));
    for (const name of [...this.done.keys()]) if (!links.has(name)) this.done.delete(name);
    // Keyed by interface index too: a tap deleted and made again (a VM restart) is configured again.
    const want = (p: RoutedPortNet) => `${links.get(p.ifname)}|${p.mtu}`;
    const todo = present.filter((p) => this.done.get(p.ifname) !== want(p));
    if (todo.length > 0) {
      const ns = this.o.netns ? ['-n', this.o.netns] : [];
      await this.run('ip', [...ns, '-batch', '-'], { input: `${todo.flatMap(routedPortLines).join('\n')}\n` });
      await this.run('sysctl', ['-qw', ...todo.map((p) => `net.ipv4.conf.${p.ifname.replace(/\./g, '/')}.rp_filter=1`)], { netns: this.o.netns });
      for (const p of todo) this.done.set(p.ifname, want(p));
    }
    const nft = renderRoutingNft(present, vips);
    if (nft !== this.lastNft) {
      await this.run('nft', ['-f', '-'], { input: nft, netns: this.o.netns });
      this.lastNft = nft;
    }
    return new Set(present.map((p) => p.ifname));
  }

  /** Forget what was applied, so the next apply rewrites everything (after a failure or on resync). */
  reset(): void {
    this.lastNft = null;
    this.done.clear();
  }

  /** Removes the routing table (the agent shuts routing off). */
  async remove(): Promise<void> {
    await this.run('nft', ['delete', 'table', 'inet', ROUTING_TABLE], { netns: this.o.netns, okCodes: [1] });
    this.reset();
  }

  /** Interface name -> index. */
  private async links(): Promise<Map<string, number>> {
    const ns = this.o.netns ? ['-n', this.o.netns] : [];
    const r = await this.run('ip', [...ns, '-j', 'link', 'show']);
    const out = new Map<string, number>();
    for (const l of JSON.parse(r.stdout || '[]') as { ifname: string; ifindex: number }[]) out.set(l.ifname, l.ifindex);
    return out;
  }
}
