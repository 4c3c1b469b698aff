// The host side of routed networks on Linux (I/O): each routed port's
// interface gets the gateway addresses and strict reverse-path filtering
// (ip, sysctl), and the table of guards-routed.ts is written with nft.
import { run as defaultRun, type Runner } from '../../../sys/exec.js';
import type { RoutedPortNet, VipNat } from '../dataplane.js';
import { ROUTING_TABLE, renderRoutingNft, routedPortLines } from './guards-routed.js';

/** One routed guard's drops since its table was last written. */
export interface RoutedGuardCounter {
  guard: string;
  packets: number;
  bytes: number;
}

/** The host's routed-port interfaces and the routing nft table, made to match (I/O). Each call is idempotent. */
export class RoutedPorts {
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

  /**
   * What the routed guards dropped, by guard (`spoof`, `ra`, `dhcp-server`):
   * the table's named counters, which restart when the table is rewritten
   * (the caller keeps its own totals). Empty when there is no table.
   */
  async counters(): Promise<RoutedGuardCounter[]> {
    const r = await this.run('nft', ['-j', 'list', 'counters', 'table', 'inet', ROUTING_TABLE], { netns: this.o.netns, okCodes: [1] });
    if (r.code !== 0) return [];
    const out: RoutedGuardCounter[] = [];
    for (const o of (JSON.parse(r.stdout) as { nftables?: { counter?: { name: string; packets: number; bytes: number } }[] }).nftables ?? [])
      if (o.counter) out.push({ guard: o.counter.name, packets: o.counter.packets, bytes: o.counter.bytes });
    return out;
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
