// `weft lab`'s cloud: a routing lab (server, one agent and one BIRD per
// host, BIRD ToRs and core) filled with tenants whose private subnets
// overlap, instances spread by placement, and an anycast VIP with backends
// on several hosts; and the check that proves it works end to end.
import type { ChildProcess } from 'node:child_process';
import { invalid } from '../model/errors.js';
import { run } from '../sys/exec.js';
import { protocols } from './bird.js';
import { capture, type LabVm } from './overlay-lab.js';
import { type RoutedVm, RoutingLab } from './routing-lab.js';

export interface CloudOptions {
  name: string;
  racks: number;
  hostsPerRack: number;
  tenants: number;
  instances: number;
}

export { DEFAULT_CLOUD } from './plan.js';

/** Checks the sizes a lab can hold (61 hosts on the management network, 128 underlay links). */
export function checkCloudOptions(o: CloudOptions): CloudOptions {
  const int = (field: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) throw invalid(field, v, `must be an integer ${min}..${max}`);
  };
  int('racks', o.racks, 1, 8);
  int('hostsPerRack', o.hostsPerRack, 1, 8);
  int('tenants', o.tenants, 1, 8);
  int('instances', o.instances, 0, 200);
  if (o.racks * o.hostsPerRack > 32) throw invalid('hostsPerRack', o.hostsPerRack, `racks x hostsPerRack must be at most 32 (is ${o.racks * o.hostsPerRack})`);
  return o;
}

export interface CheckItem {
  check: string;
  ok: boolean;
  detail: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Cloud {
  readonly vms: LabVm[] = [];
  readonly web: RoutedVm[] = [];
  private readonly servers: ChildProcess[] = [];
  vip = '';

  private constructor(
    readonly r: RoutingLab,
    readonly o: CloudOptions,
  ) {}

  /** Builds the whole cloud, reporting each stage; everything made is removed if a stage fails. */
  static async start(opts: CloudOptions, progress: (stage: string) => void = () => {}): Promise<Cloud> {
    const o = checkCloudOptions(opts);
    const hosts: [string, string][] = [];
    for (let r = 1; r <= o.racks; r++) for (let h = 1; h <= o.hostsPerRack; h++) hosts.push([`r${r}h${h}`, `r${r}`]);
    progress(`network namespaces, server, ${hosts.length} agents, ${o.racks + 1 + hosts.length} BIRDs`);
    const r = await RoutingLab.start({ name: o.name, hosts, bfd: true });
    const c = new Cloud(r, o);
    try {
      await r.established();
      progress('BGP sessions established');
      const tenants = Array.from({ length: o.tenants }, (_, i) => `t${i + 1}`);
      // Every tenant gets the same private subnets: isolation is the overlay's job, not addressing's.
      for (const t of tenants) await r.c.network(t, 'private', ['10.0.0.0/24', 'fd00:10::/64']);
      await r.api.post('/v1/networks', { tenant: 't1', name: 'public', kind: 'routed', site: 'lab' });
      progress(`${tenants.length} tenants with overlapping 10.0.0.0/24 and fd00:10::/64, a routed network`);
      for (let i = 0; i < o.instances; i++) {
        const t = tenants[i % tenants.length] as string;
        c.vms.push(await r.c.vm(`${t}vm${Math.floor(i / tenants.length) + 1}`, { tenant: t, network: 'private' }));
      }
      progress(`${o.instances} instances placed by the server`);
      // VIP backends on the first host of each of two racks (or two hosts of the one rack).
      const spots = [...r.c.hosts.values()].filter((h, i, all) => h.lab.rack !== all[0]?.lab.rack || i === 0);
      const two = (spots.length >= 2 ? spots : [...r.c.hosts.values()]).slice(0, 2);
      for (const [i, h] of two.entries()) {
        const w = await r.routedVm(`web${i + 1}`, { tenant: 't1', network: 'public', host: h.name });
        c.web.push(w);
        c.servers.push(c.backend(w));
      }
      const v = await r.api.post<{ address: string }>('/v1/vips', {
        tenant: 't1',
        name: 'web',
        site: 'lab',
        backends: c.web.map((w) => w.port.id),
        healthCheck: { type: 'http', port: 8080, path: '/', intervalMs: 200, rise: 2, fall: 2 },
      });
      c.vip = v.address;
      progress(`VIP ${c.vip} with backends on ${two.map((h) => h.name).join(', ')}`);
      await r.c.converged(30_000);
      progress('every agent applied the latest change');
      return c;
    } catch (e) {
      await c.destroy();
      throw e;
    }
  }

  /** A tiny HTTP server in a routed VM answering its name on :8080. */
  private backend(w: RoutedVm): ChildProcess {
    const code = `require('http').createServer((q,s)=>{s.end(${JSON.stringify(w.name)})}).listen(8080,'::')`;
    return this.r.c.lab.spawn(w.ns, process.execPath, ['-e', code], { stdio: 'ignore' });
  }

  private async ping(ns: string, ip: string, count = 1): Promise<boolean> {
    const r = await run('ping', ['-n', '-q', '-c', String(count), '-i', '0.2', '-W', '1', ip], { netns: ns, okCodes: [1, 2] });
    return / 0% packet loss/.test(r.stdout) || new RegExp(` ${count} received`).test(r.stdout);
  }

  /** Runs `jobs` at most `n` at a time. */
  private async pool<T>(n: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
    const out: T[] = new Array(jobs.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(n, jobs.length) }, async () => {
        while (next < jobs.length) {
          const i = next++;
          out[i] = await (jobs[i] as () => Promise<T>)();
        }
      }),
    );
    return out;
  }

  /**
   * The lab's end-to-end check: reachability within each tenant (IPv4 and
   * IPv6, every ordered pair), isolation between tenants (addresses used
   * only in another tenant answer nothing), no ARP/NDP or broadcast inside
   * VXLAN on any host's underlay meanwhile, the VIP answered from outside
   * by backends on several hosts, every agent at the head, every BGP session up.
   */
  async check(): Promise<CheckItem[]> {
    const c = this.r.c;
    const items: CheckItem[] = [];
    const caps = await Promise.all([...c.hosts.values()].map((h) => capture(c.lab, h.lab.ns, 'ul0', `${c.dir}/check-${h.name}-${Date.now()}.pcap`)));
    let lines: string[] = [];
    try {
      const byTenant = new Map<string, LabVm[]>();
      for (const v of this.vms) byTenant.set(v.instance.name.replace(/vm\d+$/, ''), [...(byTenant.get(v.instance.name.replace(/vm\d+$/, '')) ?? []), v]);
      const pairs: { from: LabVm; to: LabVm; fam: 4 | 6 }[] = [];
      for (const list of byTenant.values())
        for (const a of list) for (const b of list) if (a !== b) for (const fam of [4, 6] as const) pairs.push({ from: a, to: b, fam });
      const results = await this.pool(
        8,
        pairs.map((p) => () => this.ping(c.vmNs(p.from.name), (p.fam === 4 ? p.to.port.ipv4 : p.to.port.ipv6) as string)),
      );
      const failed = pairs.filter((_, i) => !results[i]).map((p) => `${p.from.name}->${p.to.name} v${p.fam}`);
      items.push({
        check: 'reachability within tenants',
        ok: failed.length === 0,
        detail: `${pairs.length - failed.length}/${pairs.length} pings answered${failed.length ? `; failed: ${failed.slice(0, 10).join(', ')}` : ''}`,
      });

      // The tenants' subnets overlap: an address another tenant uses must, from here, be unanswered or
      // answered by this tenant's own instance of that address (its MAC), never by the other tenant's.
      const leaks: string[] = [];
      let tried = 0;
      for (const [t, list] of byTenant) {
        const src = list[0];
        if (!src) continue;
        const mine = new Map(list.flatMap((v) => [v.port.ipv4, v.port.ipv6].filter((ip): ip is string => !!ip).map((ip) => [ip, v.port.mac] as const)));
        const theirs = [...byTenant]
          .filter(([o]) => o !== t)
          .flatMap(([, l]) => l.flatMap((v) => [v.port.ipv4, v.port.ipv6].filter((ip): ip is string => !!ip).map((ip) => ({ ip, mac: v.port.mac }))))
          .filter((x) => x.ip !== src.port.ipv4 && x.ip !== src.port.ipv6);
        const answered = await this.pool(
          8,
          theirs.map((x) => () => this.ping(c.vmNs(src.name), x.ip)),
        );
        tried += theirs.length;
        for (const [i, x] of theirs.entries()) {
          if (!answered[i]) continue;
          const own = mine.get(x.ip);
          const neigh = (await run('ip', ['neigh', 'show', x.ip], { netns: c.vmNs(src.name) })).stdout;
          if (!own || !neigh.includes(own) || neigh.includes(x.mac)) leaks.push(`${src.name}->${x.ip} (${neigh.trim() || 'answered'})`);
        }
      }
      items.push({
        check: 'isolation between tenants',
        ok: leaks.length === 0,
        detail: `${tried} addresses of other tenants tried: none reached another tenant${leaks.length ? `; LEAKS: ${leaks.join(', ')}` : ''}`,
      });
    } finally {
      lines = (await Promise.all(caps.map((k) => k.stop()))).flat();
    }
    const vxlan = lines.filter((l) => / > [\d.]+\.4789: VXLAN/.test(l));
    const inner = vxlan.filter(
      (l) => /\| .*(ARP|ICMP6, neighbor|ICMP6, router)/.test(l) || /\| (ff:ff:ff:ff:ff:ff|33:33:)/.test(`| ${l.split('| ')[1] ?? ''}`),
    );
    items.push({
      check: 'no ARP, NDP or broadcast across the underlay',
      ok: inner.length === 0 && vxlan.length > 0,
      detail: `${vxlan.length} VXLAN packets captured on ${c.hosts.size} underlay links, ${inner.length} carrying ARP/NDP/broadcast`,
    });

    const answers: string[] = [];
    for (let i = 0; i < 24; i++) {
      const res = await run('curl', ['-s', '-m', '2', '--connect-timeout', '1', `http://${this.vip}:8080/`], {
        netns: this.r.clientNs,
        okCodes: [6, 7, 28, 52, 56],
      });
      answers.push(res.code === 0 ? res.stdout : `error ${res.code}`);
    }
    const served = [...new Set(answers.filter((a) => !a.startsWith('error')))].sort();
    const hops = await this.r.nextHops('core', `${this.vip}/32`);
    items.push({
      check: 'VIP from outside the racks',
      ok: served.length >= Math.min(2, this.web.length) && answers.every((a) => !a.startsWith('error')),
      detail: `${answers.filter((a) => !a.startsWith('error')).length}/24 requests from a client behind the core answered by ${served.join(', ') || 'nobody'}; the core's next hops ${hops.join(', ') || 'none'}`,
    });

    const agents = await this.r.api.get<{ head: number; items: { hostId: string; lag: number; routing: { sessions: { established: boolean }[] } | null }[] }>(
      '/v1/agents',
    );
    const lagging = agents.items.filter((a) => a.lag > 0);
    items.push({
      check: 'agents at the head of the change log',
      ok: agents.items.length === c.hosts.size && lagging.length === 0,
      detail: `${agents.items.length}/${c.hosts.size} connected at version ${agents.head}, ${lagging.length} lagging`,
    });
    let up = 0;
    let all = 0;
    for (const tor of this.r.tors.values())
      for (const p of await protocols(tor))
        if (p.proto === 'BGP') {
          all++;
          if (p.info.startsWith('Established')) up++;
        }
    items.push({ check: 'BGP sessions (ToRs to hosts and core)', ok: up === all && all > 0, detail: `${up}/${all} Established` });
    return items;
  }

  async destroy(): Promise<void> {
    for (const s of this.servers) s.kill('SIGKILL');
    await sleep(0);
    await this.r.destroy();
  }
}
