// `weft lab`'s cloud: a routing lab of sites (server, one agent and one BIRD
// per host, BIRD ToRs, a spine per site, a WAN router joining them) filled
// with tenants whose private subnets overlap and whose networks span the
// sites, instances spread by placement, and an anycast VIP with backends on
// hosts of several racks; the check that proves it works end to end, and the
// moves and faults it takes, each measured (docs/lab.md).
import type { ChildProcess } from 'node:child_process';
import { conflict, invalid, show } from '../model/errors.js';
import { run } from '../sys/exec.js';
import { pool } from '../sys/pool.js';
import { type BirdProtocol, protocols } from './bird.js';
import { type CloudLayout, type CloudShape, checkShape, cloudLayout } from './layout.js';
import { type AgentHealth, capture, type LabVm } from './overlay-lab.js';
import { OVERLAY_MTU } from './plan.js';
import { type RoutedVm, RoutingLab } from './routing-lab.js';
import { countVxlan } from './vxlan-frames.js';

/** The lab's name, its shape and seed (layout.ts), and its store. */
export interface CloudOptions extends CloudShape {
  name: string;
  /** The store (overlay-lab.ts checkLabDb): SQLite by default; a PostgreSQL URL runs two server replicas. */
  db?: string;
}

export { DEFAULT_CLOUD } from './plan.js';

/**
 * Checks the sizes a lab can hold (layout.ts SHAPE_LIMITS: at most 32 hosts,
 * well inside the management network's 61 and the 128 underlay links: 2 x
 * 4 x 4 takes 32 host links, 8 ToR and 2 spine links). Throws E_INVALID_ARG
 * naming the field, the value and what is allowed.
 */
export function checkCloudOptions(o: CloudOptions): CloudOptions {
  return checkShape(o);
}

export interface CheckItem {
  check: string;
  ok: boolean;
  detail: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What `weft lab fail` and `heal` act on. */
export type FaultKind = 'host' | 'backend' | 'link' | 'server';
export const FAULT_KINDS: readonly FaultKind[] = ['host', 'backend', 'link', 'server'];

/** The ping interval of a move's blackout measure, and the blackout target (DESIGN.md). */
export const MOVE_PING_MS = 10;
export const MOVE_TARGET_MS = 100;

/** What `Cloud.move` measured. */
export interface MoveReport {
  instance: string;
  kind: 'overlay' | 'routed';
  from: string;
  to: string;
  /** Where the pings came from: another instance of the tenant on another host, or the lab's client behind the WAN router. */
  pingFrom: string;
  pingTo: string;
  intervalMs: number;
  sent: number;
  received: number;
  lost: number;
  /** lost x intervalMs. */
  blackoutMs: number;
  targetMs: number;
  /** From the migrate call until every agent applied the move (API, link switch-over, agents). */
  moveMs: number;
  /** The instance answered the pinger over IPv4 and IPv6 from its new host. */
  answers: boolean;
  /** The move completed and the instance answers; the blackout is reported, not judged. */
  ok: boolean;
  notes: string[];
}

/** One measured reaction: ms from the fault (or heal) until it was seen, null if not within the wait. */
export interface Timing {
  what: string;
  ms: number | null;
}

/** What `Cloud.fail` or `Cloud.heal` did and measured. */
export interface FaultReport {
  action: 'fail' | 'heal';
  what: FaultKind;
  target: string;
  /** What was done, in order. */
  done: string[];
  timings: Timing[];
  notes: string[];
  /** What an operator would run now (after `fail host`: the server is not told). */
  commands: string[];
  /** Continuous pings between instances (server faults): forwarding while the control plane was down. */
  pings?: PingWindow[];
  /** Every timing was met. */
  ok: boolean;
}

/** A ping every `intervalMs` from one instance to another over a stretch of time, and what it lost. */
export interface PingWindow {
  what: string;
  from: string;
  to: string;
  intervalMs: number;
  sent: number;
  lost: number;
}

/** What `Cloud.evacuate` did and measured. */
export interface EvacuationReport {
  host: string;
  /** The operator's commands, in the order their API calls were made. */
  commands: string[];
  /** Each instance re-placed: where to, and ms from the first API call until it answered there (null: not within the wait). */
  moves: { instance: string; kind: 'overlay' | 'routed'; to: string; pingFrom: string; answeredMs: number | null }[];
  timings: Timing[];
  notes: string[];
  /** Every instance answers on its new host and the failed host is no VIP next hop at its ToR. */
  ok: boolean;
}

/** A fault in place: what `heal` must undo and what it waits for. */
interface Fault {
  what: FaultKind;
  target: string;
  /** `fail link --silent`: packets dropped, carrier kept. */
  silent: boolean;
  /** The prefixes the ToR routed to the host before (host and link faults). */
  routes: string[];
  /** `fail server`: the ping kept running from the fault until its heal. */
  outage?: { what: PingWindow; loop: { stop(): Promise<{ sent: number; received: number }> } };
  /** `fail host`: `weft lab evacuate` set it down in the API (its heal sets it active again). */
  downInApi?: boolean;
  /** `fail host`: `weft lab evacuate` moved every instance away. */
  evacuated?: boolean;
}

/** The netdev table `fail link --silent` adds on a host's `ul0`: every packet in and out dropped, the carrier kept. */
const SILENCE_TABLE = 'weftlab_silence';

/**
 * Polls `cond` every 5 ms; the ms since `t0` when it held, or null after
 * `ms` or once `watch.stopped`. A throwing `cond` counts as not yet.
 */
async function timeUntil(t0: number, cond: () => Promise<boolean>, ms: number, watch: { stopped: boolean } = { stopped: false }): Promise<number | null> {
  for (;;) {
    if (await cond().catch(() => false)) return Math.round(performance.now() - t0);
    if (performance.now() - t0 > ms || watch.stopped) return null;
    await sleep(5);
  }
}

const list = (xs: string[]) => xs.join(', ') || 'none';

export class Cloud {
  readonly vms: LabVm[] = [];
  readonly web: RoutedVm[] = [];
  /** Each VIP backend's HTTP server, null while `fail backend` keeps it stopped. */
  private readonly servers = new Map<string, ChildProcess | null>();
  private readonly tenants = new Map<string, string>();
  private readonly faults = new Map<string, Fault>();
  vip = '';

  private constructor(
    readonly r: RoutingLab,
    readonly o: CloudOptions,
  ) {
    this.layout = cloudLayout(o);
  }

  /** Sites, racks, hosts, and what the seed chose (layout.ts). */
  readonly layout: CloudLayout;

  /**
   * The API side of `start`, reporting each stage: the tenants' overlay
   * networks (spanning every site, MTU derived from the underlay's), the
   * routed network and the instances in the order the seed drew (created
   * one at a time, so placement is the same for the same seed; their VM
   * namespaces plugged 8 at a time meanwhile), the VIP's backends and the VIP.
   */
  private async fill(layout: CloudLayout, progress: (stage: string) => void): Promise<void> {
    const r = this.r;
    // Every tenant gets the same private subnets: isolation is the overlay's job, not addressing's.
    for (const t of layout.tenants) await r.c.network(t, 'private', ['10.0.0.0/24', 'fd00:10::/64'], OVERLAY_MTU);
    await r.api.post('/v1/networks', { tenant: 't1', name: 'public', kind: 'routed', site: layout.vipSite });
    progress(
      `${layout.tenants.length} tenants with overlapping 10.0.0.0/24 and fd00:10::/64 across ${layout.sites.map((s) => s.name).join(', ')} (MTU ${OVERLAY_MTU}), a routed network in ${layout.vipSite}`,
    );
    let turn: Promise<unknown> = Promise.resolve();
    const vms = await pool(
      8,
      layout.instances.map((x) => async () => {
        const spec = { tenant: x.tenant, network: 'private', site: x.site };
        // The API calls one after the other in the seed's order; the namespaces in parallel.
        const made = turn.then(() => r.c.instance(x.name, spec));
        turn = made.catch(() => undefined);
        return r.c.plug(x.name, spec, await made);
      }),
    );
    // Listed by tenant and number (t1vm1, t1vm2, ..., t2vm1), whatever the order they were made in.
    const key = (name: string) => (/^t(\d+)vm(\d+)$/.exec(name) ?? []).slice(1).map(Number);
    const order = layout.instances
      .map((x, i) => ({ x, vm: vms[i] as LabVm }))
      .sort((a, b) => {
        const [ka, kb] = [key(a.x.name), key(b.x.name)];
        return (ka[0] as number) - (kb[0] as number) || (ka[1] as number) - (kb[1] as number);
      });
    for (const { x, vm } of order) {
      this.vms.push(vm);
      this.tenants.set(vm.name, x.tenant);
    }
    progress(`${layout.instances.length} instances placed by the server (seed ${this.o.seed})`);
    // One after the other: their public addresses are allocated in this order.
    for (const b of layout.backends) {
      const w = await r.routedVm(b.name, { tenant: 't1', network: 'public', host: b.host });
      this.web.push(w);
      this.tenants.set(w.name, 't1');
      this.servers.set(w.name, this.backend(w));
    }
    const v = await r.api.post<{ address: string }>('/v1/vips', {
      tenant: 't1',
      name: 'web',
      site: layout.vipSite,
      backends: this.web.map((w) => w.port.id),
      healthCheck: { type: 'http', port: 8080, path: '/', intervalMs: 200, rise: 2, fall: 2 },
    });
    this.vip = v.address;
    progress(`VIP ${this.vip} in ${layout.vipSite} with backends on ${layout.backends.map((b) => b.host).join(', ')}`);
  }

  /** Builds the whole cloud, reporting each stage; everything made is removed if a stage fails. */
  static async start(opts: CloudOptions, progress: (stage: string) => void = () => {}): Promise<Cloud> {
    const o = checkCloudOptions(opts);
    const layout = cloudLayout(o);
    const birds = layout.racks.length + layout.sites.length + 1 + layout.hosts.length;
    progress(
      `network namespaces for ${layout.sites.length} sites (${layout.racks.length} racks, ${layout.sites.length} spines, the WAN), server, ${layout.hosts.length} agents, ${birds} BIRDs`,
    );
    const r = await RoutingLab.start({ name: o.name, hosts: layout.hosts, sites: layout.sites, bfd: true, db: o.db, progress });
    const c = new Cloud(r, o);
    try {
      // BGP comes up while the API fills the cloud: nothing below waits for it but the VIP's reachability.
      const bgp = r.established(30_000).then(() => progress('BGP sessions established (hosts, ToRs, spines, WAN)'));
      // Both settle before a failure of either is thrown: nothing is still being built while the lab is removed.
      for (const x of await Promise.allSettled([bgp, c.fill(layout, progress)])) if (x.status === 'rejected') throw x.reason;
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

  /**
   * The lab's end-to-end check: reachability within each tenant (IPv4 and
   * IPv6, every ordered pair), isolation between tenants (addresses used
   * only in another tenant answer nothing), full-size overlay packets
   * (OVERLAY_MTU, not fragmented) between sites, no ARP/NDP or broadcast
   * inside VXLAN on any host's underlay meanwhile, the VIP answered from
   * the client behind the WAN router by backends on several racks, every
   * agent at the head, every BGP session of every fabric router up.
   */
  async check(): Promise<CheckItem[]> {
    const c = this.r.c;
    const items: CheckItem[] = [];
    // A link set down by `fail` cannot be captured on (and carries nothing).
    const down = [...this.faults.values()].filter((f) => (f.what === 'host' || f.what === 'link') && !f.silent).map((f) => f.target);
    const watched = [...c.hosts.values()].filter((h) => !down.includes(h.name));
    const caps = await Promise.all(watched.map((h) => capture(c.lab, h.lab.ns, 'ul0', `${c.dir}/check-${h.name}-${Date.now()}.pcap`)));
    let lines: string[] = [];
    try {
      const byTenant = new Map<string, LabVm[]>();
      for (const v of this.vms) byTenant.set(v.instance.name.replace(/vm\d+$/, ''), [...(byTenant.get(v.instance.name.replace(/vm\d+$/, '')) ?? []), v]);
      const pairs: { from: LabVm; to: LabVm; fam: 4 | 6 }[] = [];
      for (const list of byTenant.values())
        for (const a of list) for (const b of list) if (a !== b) for (const fam of [4, 6] as const) pairs.push({ from: a, to: b, fam });
      const results = await pool(
        8,
        pairs.map((p) => () => this.ping(c.vmNs(p.from.name), (p.fam === 4 ? p.to.port.ipv4 : p.to.port.ipv6) as string)),
      );
      const failed = pairs.filter((_, i) => !results[i]).map((p) => `${p.from.name}->${p.to.name} v${p.fam}`);
      const siteOf = (v: LabVm) => c.host(this.where(v.name)).site;
      const across = pairs.filter((p) => siteOf(p.from) !== siteOf(p.to)).length;
      items.push({
        check: 'reachability within tenants',
        ok: failed.length === 0,
        detail: `${pairs.length - failed.length}/${pairs.length} pings answered (${across} between sites)${failed.length ? `; failed: ${failed.slice(0, 10).join(', ')}` : ''}`,
      });

      // The overlay's MTU is the underlay's less VXLAN: a full-size packet, not to be fragmented, crosses the WAN.
      const big: string[] = [];
      const lost: string[] = [];
      for (const list of byTenant.values()) {
        const a = list[0];
        // Another site's instance if there is one, else another host's.
        const b = a && (list.find((v) => siteOf(v) !== siteOf(a)) ?? list.find((v) => this.where(v.name) !== this.where(a.name)));
        if (!a || !b) continue;
        for (const [ip, size] of [
          [b.port.ipv4, OVERLAY_MTU - 28],
          [b.port.ipv6, OVERLAY_MTU - 48],
        ] as const) {
          if (!ip) continue;
          const what = `${a.name} (${siteOf(a)}) -> ${b.name} (${siteOf(b)}) ${ip.includes(':') ? 'v6' : 'v4'}`;
          const r = await run('ping', ['-n', '-q', '-c', '2', '-i', '0.2', '-W', '1', '-M', 'do', '-s', String(size), ip], {
            netns: c.vmNs(a.name),
            okCodes: [1, 2],
          });
          (/ [12] received/.test(r.stdout) ? big : lost).push(what);
        }
      }
      items.push({
        check: `overlay MTU ${OVERLAY_MTU} across the underlay`,
        ok: lost.length === 0 && big.length > 0,
        detail: `${OVERLAY_MTU}-byte packets, not fragmented: ${big.length} answered${big.length ? ` (${big.join(', ')})` : ''}${lost.length ? `; lost: ${lost.join(', ')}` : ''}`,
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
        const answered = await pool(
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
    const seen = countVxlan(lines);
    items.push({
      check: 'no ARP, NDP or broadcast flooded across the underlay',
      ok: seen.flood.length === 0 && seen.packets > 0,
      detail:
        `${seen.packets} VXLAN packets captured on ${watched.length} underlay links${down.length ? ` (down: ${down.join(', ')})` : ''}, ` +
        `${seen.flood.length} to a broadcast or multicast MAC; ${seen.probes} unicast ARP/NS reachability probes or answers between VMs (forwarded, not flooded, per RFC 9161)` +
        (seen.flood.length ? `; first: ${seen.flood[0]}` : ''),
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
    const top = this.r.top;
    const hops = await this.r.nextHops(top, `${this.vip}/32`);
    const racks = new Set(served.map((w) => c.host(this.where(w)).lab.rack));
    items.push({
      check: 'VIP from outside the racks',
      ok: served.length >= Math.min(2, this.web.length) && answers.every((a) => !a.startsWith('error')),
      detail: `${answers.filter((a) => !a.startsWith('error')).length}/24 requests from a client behind the ${top} router answered by ${served.join(', ') || 'nobody'} (racks ${[...racks].join(', ') || 'none'}); the ${top} router's next hops ${hops.join(', ') || 'none'}`,
    });

    // Every replica that runs lists the agents connected to it; with none running, no agent is connected.
    const agents = await c.agents().catch(() => ({ head: 0, items: [] }));
    const lagging = agents.items.filter((a) => a.lag > 0);
    const replicas = c.servers.length > 1 ? ` across ${c.servers.filter((x) => x.proc).length}/${c.servers.length} server replicas` : '';
    items.push({
      check: 'agents at the head of the change log',
      ok: agents.items.length === c.hosts.size && lagging.length === 0,
      detail: `${agents.items.length}/${c.hosts.size} connected${replicas} at version ${agents.head}, ${lagging.length} lagging`,
    });
    // Every session of every fabric router: ToR to hosts and spine, spine to WAN (or ToR to core).
    const notUp: string[] = [];
    let all = 0;
    for (const [node, bird] of this.r.fabricBirds())
      for (const p of await protocols(bird))
        if (p.proto === 'BGP') {
          all++;
          if (!p.info.startsWith('Established')) notUp.push(`${node} ${p.name} ${(p.info || p.state).replace(/\s+/g, ' ')}`);
        }
    const routers = this.r.fabricBirds().size;
    items.push({
      check: 'BGP sessions (ToRs to hosts and spines, spines to the WAN)',
      ok: notUp.length === 0 && all > 0,
      detail: `${all - notUp.length}/${all} Established on ${routers} routers${notUp.length ? `; not: ${notUp.slice(0, 8).join(', ')}` : ''}`,
    });
    const faults = [...this.faults.values()];
    items.push({
      check: 'no fault in place',
      ok: faults.length === 0,
      detail:
        faults.length === 0
          ? 'nothing failed by `weft lab fail`'
          : `still failed: ${faults.map((f) => `${f.what} ${f.target} (\`weft lab heal ${f.what} ${f.target}\`)`).join(', ')}`,
    });
    return items;
  }

  /** Every instance of the lab (overlay VMs, then routed ones) and the host it is on now. */
  instances(): { name: string; host: string; ipv4: string | null; ipv6: string | null }[] {
    return [...this.vms, ...this.web].map((v) => ({ name: v.name, host: this.where(v.name), ipv4: v.port.ipv4, ipv6: v.port.ipv6 }));
  }

  /** The faults in place, as `<what> <target>` (`link r1h2 (silent)`). */
  faultList(): string[] {
    return [...this.faults.values()].map((f) => `${f.what} ${f.target}${f.silent ? ' (silent)' : ''}${f.evacuated ? ' (evacuated)' : ''}`);
  }

  /**
   * Live-migrates `instance` (an overlay VM or a routed `web*` VM) through
   * the API, to host `to` or where the server's placement picks, and
   * switches its VM's link over, while a ping every 10 ms runs to it: from
   * another instance of its tenant on another host, or for a routed VM from
   * the client behind the core. Waits until every agent applied the move and
   * the instance answers over IPv4 and IPv6. Throws E_INVALID_ARG for an
   * unknown instance or host (naming the valid ones) or `to` its own host,
   * E_CONFLICT for a failed target host or no instance to ping from.
   */
  async move(instance: unknown, to?: unknown): Promise<MoveReport> {
    const c = this.r.c;
    const name = this.instanceArg('instance', instance);
    this.needServer();
    const from = this.where(name);
    let target: string | undefined;
    if (to !== undefined && to !== null && to !== '') {
      target = this.hostArg('to', to);
      if (target === from)
        throw invalid(
          'to',
          target,
          `is where ${name} is already: one of ${list([...c.hosts.keys()].filter((h) => h !== from))}, or none to let the server pick`,
        );
      this.usable('to', target);
    }
    const routed = this.web.find((w) => w.name === name);
    const port = (routed ?? (c.vms.get(name) as LabVm)).port;
    let pingNs: string;
    let pingFrom: string;
    if (routed) {
      pingNs = this.r.clientNs;
      pingFrom = `client (behind the ${this.r.top} router)`;
    } else {
      const tenant = this.tenants.get(name);
      const peers = this.vms.filter(
        (v) => v.name !== name && this.tenants.get(v.name) === tenant && this.where(v.name) !== from && !this.dark(this.where(v.name)),
      );
      const pick = peers.find((v) => this.where(v.name) !== target) ?? peers[0];
      if (!pick) throw conflict(`no other instance of tenant ${tenant} on a working host other than ${from} to ping ${name} from`, 'instance');
      pingNs = c.vmNs(pick.name);
      pingFrom = `${pick.name} (on ${this.where(pick.name)})`;
    }
    const ip4 = port.ipv4 as string;
    const notes: string[] = [];
    if (this.dark(from)) notes.push(`${from} is failed: the instance was unreachable before the move too`);
    const loop = c.pingLoop({ ns: pingNs }, ip4, MOVE_PING_MS / 1000);
    let dest = from;
    let moveMs = 0;
    let answers = false;
    let stats: { sent: number; received: number };
    try {
      await sleep(300);
      const t0 = performance.now();
      dest = routed ? await this.r.moveRouted(name, target) : await c.move(name, target);
      await c.converged(30_000);
      moveMs = Math.round(performance.now() - t0);
      const families = [ip4, port.ipv6].filter((ip): ip is string => !!ip);
      const answered = await timeUntil(performance.now(), async () => (await Promise.all(families.map((ip) => this.ping(pingNs, ip)))).every(Boolean), 10_000);
      answers = answered !== null;
      await sleep(300);
    } finally {
      stats = await loop.stop();
    }
    if (routed)
      notes.push(
        `a routed instance moves with its /32 and /128: the blackout includes BGP from the new host through the ToRs, ${this.r.pathUp(c.host(dest).lab.rack).slice(1).join(' and ')}`,
      );
    if (!answers) notes.push(`${name} did not answer ${pingFrom} on ${dest} within 10 s`);
    if (!target && this.dark(dest))
      notes.push(`the server placed ${name} on ${dest}, which is failed: it still counts it active (\`weft host update ${dest} --state down\`)`);
    const lost = stats.sent - stats.received;
    return {
      instance: name,
      kind: routed ? 'routed' : 'overlay',
      from,
      to: dest,
      pingFrom,
      pingTo: ip4,
      intervalMs: MOVE_PING_MS,
      sent: stats.sent,
      received: stats.received,
      lost,
      blackoutMs: lost * MOVE_PING_MS,
      targetMs: MOVE_TARGET_MS,
      moveMs,
      answers,
      ok: answers && dest !== from,
      notes,
    };
  }

  /**
   * Injects a fault and measures the ToR's reaction:
   * - `host`: the hypervisor goes dark: `ul0` down, its agent and BIRD
   *   killed (SIGKILL); the time until the ToR routes nothing to it. The
   *   server is not told: the report lists what an operator would run.
   * - `backend`: a VIP backend's HTTP server stops; the time until its host
   *   leaves the ToR's next hops for the VIP.
   * - `link`: only `ul0` down (`silent`: every packet on it dropped, the
   *   carrier kept, so BFD must find out); the time until the ToR routes
   *   nothing to the host, and how the ToR saw it.
   * Throws E_INVALID_ARG (unknown kind or target, naming the valid ones),
   * E_CONFLICT (already failed, or inside another fault).
   */
  async fail(what: unknown, target: unknown, o: { silent?: unknown } = {}): Promise<FaultReport> {
    const kind = this.kindArg(what);
    if (o.silent !== undefined && o.silent !== false && (o.silent !== true || kind !== 'link'))
      throw invalid('silent', o.silent, 'applies to `fail link` only, true or false');
    if (kind === 'backend') return this.failBackend(this.backendArg(target));
    if (kind === 'server') return this.failServer(this.serverArg(target));
    const host = this.hostArg('target', target);
    for (const k of ['host', 'link'] as const)
      if (this.faults.has(`${k} ${host}`))
        throw conflict(`${k === 'host' ? 'host' : 'the link of'} ${host} is failed already: \`weft lab heal ${k} ${host}\` first`, 'target');
    return kind === 'host' ? this.failHost(host) : this.failLink(host, o.silent === true);
  }

  /**
   * Undoes a fault of `fail` and measures the recovery: `host`: link up,
   * BIRD and agent started again, the time until its sessions are
   * Established and the ToR routes to it again; `backend`: the server
   * started again, the time until its host is a VIP next hop again; `link`:
   * up again, as for host. Throws E_INVALID_ARG, E_CONFLICT (not failed).
   */
  async heal(what: unknown, target: unknown): Promise<FaultReport> {
    const kind = this.kindArg(what);
    const name = kind === 'backend' ? this.backendArg(target) : kind === 'server' ? String(this.serverArg(target)) : this.hostArg('target', target);
    const f = this.faults.get(`${kind} ${name}`);
    if (!f) throw conflict(`${kind} ${name} is not failed (failed now: ${list(this.faultList())})`, 'target');
    if (kind === 'backend') return this.healBackend(name);
    if (kind === 'server') return this.healServer(f);
    return this.healHost(f);
  }

  private async failHost(host: string): Promise<FaultReport> {
    const c = this.r.c;
    const rack = c.host(host).lab.rack;
    const backends = this.web.filter((w) => this.where(w.name) === host).map((w) => w.name);
    if (backends.some((b) => this.faults.has(`backend ${b}`)))
      throw conflict(`backend ${backends.join(', ')} on ${host} is failed: \`weft lab heal backend\` it first`, 'target');
    const routes = await this.r.routesVia(rack, host);
    const t0 = performance.now();
    // The link first: a host losing power sends nothing more, not even the FIN of its BGP sessions.
    await c.lab.setUnderlay(host, false);
    await Promise.all([c.killAgent(host), this.r.killBird(host)]);
    this.faults.set(`host ${host}`, { what: 'host', target: host, silent: false, routes });
    const gone = await timeUntil(t0, async () => (await this.r.routesVia(rack, host)).length === 0, 15_000);
    const notes = [
      `before, the ToR ${rack} routed ${list(routes)} to ${host}`,
      this.sessionsLine(host, await this.r.hostSessions(host)),
      ...(await this.vipNotes(rack)),
    ];
    const mine = this.instances().filter((i) => i.host === host);
    notes.push(
      `the server still counts ${host} as active and its ${mine.length} instances as placed there: nothing re-places them until an operator does`,
      `\`weft lab evacuate ${host}\` runs these commands' API calls and switches each VM over to its new host (\`weft lab move INSTANCE\` does it for one)`,
    );
    return {
      action: 'fail',
      what: 'host',
      target: host,
      done: [`ul0 of ${host} down`, `agent of ${host} killed (SIGKILL)`, `BIRD of ${host} killed (SIGKILL)`],
      timings: [{ what: `ToR ${rack} stopped routing to ${host}`, ms: gone }],
      notes,
      commands: [`weft host update ${host} --state down`, ...mine.map((i) => `weft instance migrate ${i.name}`)],
      ok: gone !== null,
    };
  }

  private async failLink(host: string, silent: boolean): Promise<FaultReport> {
    const c = this.r.c;
    const rack = c.host(host).lab.rack;
    const routes = await this.r.routesVia(rack, host);
    const t0 = performance.now();
    if (silent)
      await c.lab.exec(c.host(host).lab.ns, 'nft', ['-f', '-'], {
        input: `table netdev ${SILENCE_TABLE} {\n  chain in { type filter hook ingress device "ul0" priority -500; policy drop; }\n  chain out { type filter hook egress device "ul0" priority -500; policy drop; }\n}\n`,
      });
    else await c.lab.setUnderlay(host, false);
    this.faults.set(`link ${host}`, { what: 'link', target: host, silent, routes });
    const gone = await timeUntil(t0, async () => (await this.r.routesVia(rack, host)).length === 0, 15_000);
    const sessions = await this.r.hostSessions(host);
    const notes = [
      `before, the ToR ${rack} routed ${list(routes)} to ${host}`,
      this.sessionsLine(host, sessions),
      silent
        ? 'the carrier stayed up: only BFD (100 ms x 3) could tell the ToR'
        : 'a veth set down takes the carrier of its peer too: the ToR drops the sessions at once (Link down), before BFD (100 ms x 3) would; `--silent` leaves the carrier up',
      ...(await this.vipNotes(rack)),
    ];
    return {
      action: 'fail',
      what: 'link',
      target: host,
      done: [silent ? `every packet on ul0 of ${host} dropped (nftables), carrier up` : `ul0 of ${host} down`, 'agent and BIRD left running'],
      timings: [{ what: `ToR ${rack} stopped routing to ${host} (detection and withdrawal)`, ms: gone }],
      notes,
      commands: [],
      ok: gone !== null,
    };
  }

  private async healHost(f: Fault): Promise<FaultReport> {
    const c = this.r.c;
    const host = f.target;
    const rack = c.host(host).lab.rack;
    const expect = this.expectedRoutes(f);
    const t0 = performance.now();
    // Watched from the start, while the steps below run; stopped if a step fails.
    const watch = { stopped: false };
    const sessions = timeUntil(
      t0,
      async () => {
        const ps = await this.r.hostSessions(host);
        return ps.length === 2 && ps.every((p) => p.info.startsWith('Established'));
      },
      60_000,
      watch,
    );
    const routes = timeUntil(
      t0,
      async () => {
        const now = await this.r.routesVia(rack, host);
        return expect.every((p) => now.includes(p));
      },
      60_000,
      watch,
    );
    const done: string[] = [];
    try {
      if (f.silent) {
        await c.lab.exec(c.host(host).lab.ns, 'nft', ['delete', 'table', 'netdev', SILENCE_TABLE]);
        done.push(`packets on ul0 of ${host} let through again`);
      } else {
        await c.lab.setUnderlay(host, true);
        done.push(`ul0 of ${host} up (its IPv6 address and default routes put back)`);
      }
      if (f.what === 'host') {
        await this.r.restartBird(host);
        done.push(`BIRD of ${host} started on the config its agent last wrote`);
        await c.killAgent(host);
        await c.startAgent(host);
        done.push(`agent of ${host} started and connected`);
        if (f.downInApi) {
          await this.r.api.patch(`/v1/hosts/${host}`, { state: 'active' });
          f.downInApi = false;
          f.evacuated = false;
          done.push(`${host} active again in the API (\`weft host update ${host} --state active\`): placement may use it`);
        }
      }
    } catch (e) {
      watch.stopped = true;
      throw e;
    }
    const timings: Timing[] = [];
    const [s, r] = await Promise.all([sessions, routes]);
    timings.push({ what: `ToR ${rack}: sessions to ${host} Established`, ms: s });
    timings.push({ what: `ToR ${rack} routes ${list(expect)} to ${host} again`, ms: r });
    if (f.what === 'host') {
      const at = await c
        .converged(30_000)
        .then(() => Math.round(performance.now() - t0))
        .catch(() => null);
      timings.push({ what: 'every agent at the head of the change log', ms: at });
    }
    const ok = timings.every((t) => t.ms !== null);
    if (ok) this.faults.delete(`${f.what} ${host}`);
    return {
      action: 'heal',
      what: f.what,
      target: host,
      done,
      timings,
      notes: [
        this.sessionsLine(host, await this.r.hostSessions(host)),
        ...(await this.vipNotes(rack)),
        ...(ok ? [] : [`still counted as failed: \`weft lab heal ${f.what} ${host}\` again`]),
      ],
      commands: [],
      ok,
    };
  }

  private async failBackend(name: string): Promise<FaultReport> {
    if (this.faults.has(`backend ${name}`)) throw conflict(`backend ${name} is failed already: \`weft lab heal backend ${name}\` first`, 'target');
    const host = this.where(name);
    if (this.dark(host)) throw conflict(`${name} is on ${host}, which is failed: heal it first`, 'target');
    const { rack, underlayIp } = this.r.c.host(host).lab;
    const hops = () => this.r.nextHops(rack, `${this.vip}/32`);
    if ((await timeUntil(performance.now(), async () => (await hops()).includes(underlayIp), 10_000)) === null)
      throw conflict(`the ToR ${rack} does not route the VIP ${this.vip} to ${host} (next hops: ${list(await hops())}): nothing to withdraw`, 'target');
    const s = this.servers.get(name);
    const t0 = performance.now();
    if (s && s.exitCode === null && s.signalCode === null) {
      const gone = new Promise((r) => s.once('exit', r));
      s.kill('SIGKILL');
      await gone;
    }
    this.servers.set(name, null);
    this.faults.set(`backend ${name}`, { what: 'backend', target: name, silent: false, routes: [] });
    const ms = await timeUntil(t0, async () => !(await hops()).includes(underlayIp), 15_000);
    return {
      action: 'fail',
      what: 'backend',
      target: name,
      done: [`HTTP server of ${name} (on ${host}) killed`],
      timings: [{ what: `${host} left the VIP's next hops at ToR ${rack} (target <= 1000 ms)`, ms }],
      notes: ['health check: HTTP GET :8080/ every 200 ms, down after 2 failures', ...(await this.vipNotes(rack))],
      commands: [],
      ok: ms !== null,
    };
  }

  private async healBackend(name: string): Promise<FaultReport> {
    const host = this.where(name);
    const { rack, underlayIp } = this.r.c.host(host).lab;
    const w = this.web.find((x) => x.name === name) as RoutedVm;
    const t0 = performance.now();
    this.servers.set(name, this.backend(w));
    const ms = await timeUntil(t0, async () => (await this.r.nextHops(rack, `${this.vip}/32`)).includes(underlayIp), 30_000);
    if (ms !== null) this.faults.delete(`backend ${name}`);
    return {
      action: 'heal',
      what: 'backend',
      target: name,
      done: [`HTTP server of ${name} (on ${host}) started`],
      timings: [{ what: `${host} back in the VIP's next hops at ToR ${rack} (includes starting the server)`, ms }],
      notes: ['health check: up after 2 passes 200 ms apart; a backend that flaps is held down longer (damping)', ...(await this.vipNotes(rack))],
      commands: [],
      ok: ms !== null,
    };
  }

  /**
   * `fail server [N]`: replica N (default 1; the one server on SQLite) is
   * killed with SIGKILL while a ping every 10 ms runs between two instances
   * on different hosts (it keeps running until the heal). With another
   * replica running: the time until every agent of the killed one
   * reconnected to it and every agent is at the head, and an instance
   * created through it during the outage, timed until every agent applied
   * it and it answers. With none: the time until every agent saw its stream
   * close, and that a change tried meanwhile is refused (never acknowledged).
   */
  private async failServer(n: number): Promise<FaultReport> {
    const c = this.r.c;
    if (this.faults.has(`server ${n}`)) throw conflict(`server ${n} is failed already: \`weft lab heal server ${n}\` first`, 'target');
    const dead = c.replica(n);
    const survivors = c.servers.filter((s) => s.n !== n && s.proc);
    const healths = await this.healths();
    const on = [...healths].filter(([, h]) => h?.connected && h.server === dead.ip).map(([name]) => name);
    const pair = this.pingPair(healths, dead.ip);
    const what = (span: string): PingWindow => ({
      what: span,
      from: `${pair.from.name} (on ${this.where(pair.from.name)})`,
      to: `${pair.to.name} (on ${this.where(pair.to.name)}) ${pair.to.port.ipv4}`,
      intervalMs: MOVE_PING_MS,
      sent: 0,
      lost: 0,
    });
    const ping = () => c.pingLoop({ ns: c.vmNs(pair.from.name) }, pair.to.port.ipv4 as string, MOVE_PING_MS / 1000);
    const window = ping();
    const outage = { what: what(`from \`fail server ${n}\` until \`heal server ${n}\` completed`), loop: ping() };
    const done: string[] = [];
    const timings: Timing[] = [];
    const notes: string[] = [`before, server ${n} (${dead.ip}) had ${on.length} agents: ${list(on)}`];
    const pings: PingWindow[] = [];
    let ok = false;
    try {
      await sleep(300);
      const pid = dead.proc?.proc.pid;
      const t0 = performance.now();
      await c.killServer(n);
      done.push(`server ${n} (${dead.ip}, pid ${pid}) killed (SIGKILL)`);
      this.faults.set(`server ${n}`, { what: 'server', target: String(n), silent: false, routes: [], outage });
      const running = [...c.hosts.values()].filter((h) => h.agent).map((h) => h.name);
      if (survivors.length === 0) {
        const closed = await timeUntil(t0, async () => [...(await this.healths()).values()].every((h) => h !== null && !h.connected), 15_000);
        timings.push({ what: `every agent (${running.length}) saw its push stream close`, ms: closed });
        const tried = await this.addInstance().then(
          (vm) => ({ ok: true as const, vm }),
          (e: Error) => ({ ok: false as const, error: e.message }),
        );
        if (tried.ok) notes.push(`UNEXPECTED: ${tried.vm.name} was created with no server running`);
        else
          notes.push(
            `a change during the outage (a new instance) was refused: ${tried.error}; it was never acknowledged, so nothing is lost (\`heal server ${n}\` makes one and times it)`,
          );
        notes.push('the agents keep the kernel state they hold: forwarding goes on; they retry with capped backoff (up to 5 s)');
        ok = closed !== null && !tried.ok;
      } else {
        const m = survivors[0] as (typeof survivors)[number];
        // Watched from the kill on, while the change below is made.
        const moved = timeUntil(
          t0,
          async () => {
            const hs = await this.healths();
            return on.every((h) => hs.get(h)?.connected === true && hs.get(h)?.server !== dead.ip);
          },
          30_000,
        );
        const vm = await this.addInstance(m.n);
        done.push(
          `instance ${vm.name} created through server ${m.n} (${m.ip}) ${Math.round(performance.now() - t0)} ms after the kill, on ${this.where(vm.name)}`,
        );
        const head = (await m.api.get<{ head: number }>('/v1/changes?limit=1')).head;
        timings.push({ what: `the ${on.length} agents of server ${n} reconnected to another replica`, ms: await moved });
        const reached = await timeUntil(t0, () => this.allAt(head), 30_000);
        timings.push({ what: `every agent (${running.length}) at the head, version ${head} (with ${vm.name}'s port)`, ms: reached });
        const answers = await this.answerTiming(t0, vm);
        timings.push({ what: `${vm.name} answers ${answers.from} over IPv4 and IPv6`, ms: answers.ms });
        notes.push(`agents now: ${await this.placementLine()}`);
        ok = timings.every((t) => t.ms !== null);
      }
    } finally {
      const st = await window.stop();
      pings.push({ ...what(`from before the kill until this report`), sent: st.sent, lost: st.sent - st.received });
      if (!this.faults.has(`server ${n}`)) await outage.loop.stop();
    }
    const lost = pings.reduce((a, p) => a + p.lost, 0);
    notes.push(lost === 0 ? 'forwarding was not interrupted: no ping lost' : `FORWARDING INTERRUPTED: ${lost} pings lost`);
    return { action: 'fail', what: 'server', target: String(n), done, timings, notes, commands: [], pings, ok };
  }

  /**
   * `heal server N`: replica N started again on the same database, its API,
   * SVP and stream on the addresses and ports it had; the time until it
   * answers, until every agent is connected (on SQLite: to it) and at the
   * head, and an instance created through it, timed until every agent
   * applied it and it answers. Reports the pings of the whole outage.
   */
  private async healServer(f: Fault): Promise<FaultReport> {
    const c = this.r.c;
    const n = Number(f.target);
    const s = c.replica(n);
    const done: string[] = [];
    const timings: Timing[] = [];
    const notes: string[] = [];
    const pings: PingWindow[] = [];
    const t0 = performance.now();
    let listening = 0;
    if (!s.proc) {
      await c.startServer(n);
      listening = Math.round(performance.now() - t0);
      timings.push({ what: `server ${n} listening (store opened, index loaded)`, ms: listening });
    }
    done.push(`server ${n} started again on the same database: API ${s.url}, SVP and stream on ${s.ip}`);
    const alone = c.servers.every((x) => x.n === n || !x.proc);
    const running = [...c.hosts.values()].filter((h) => h.agent).map((h) => h.name);
    const back = await timeUntil(
      t0,
      async () => [...(await this.healths()).values()].every((h) => h?.connected === true && (!alone || h.server === s.ip)),
      60_000,
    );
    const after = back === null ? '' : ` (${back - listening} ms after it listened)`;
    timings.push({
      what: alone ? `every agent (${running.length}) reconnected to server ${n}${after}` : `every agent (${running.length}) connected`,
      ms: back,
    });
    if (alone) notes.push('agents retry a server that is gone with a backoff doubling to 5 s: after a long outage they come back up to 5 s after it listens');
    const head0 = (await s.api.get<{ head: number }>('/v1/changes?limit=1')).head;
    timings.push({ what: `every agent at the head, version ${head0}`, ms: await timeUntil(t0, () => this.allAt(head0), 30_000) });
    const vm = await this.addInstance(n);
    done.push(`instance ${vm.name} created through server ${n}, on ${this.where(vm.name)}`);
    const head = (await s.api.get<{ head: number }>('/v1/changes?limit=1')).head;
    timings.push({ what: `every agent applied it (version ${head})`, ms: await timeUntil(t0, () => this.allAt(head), 30_000) });
    const answers = await this.answerTiming(t0, vm);
    timings.push({ what: `${vm.name} answers ${answers.from} over IPv4 and IPv6`, ms: answers.ms });
    if (f.outage) {
      const st = await f.outage.loop.stop();
      pings.push({ ...f.outage.what, sent: st.sent, lost: st.sent - st.received });
      f.outage = undefined;
    }
    notes.push(`agents now: ${await this.placementLine()}`);
    if (!alone) notes.push('an agent stays on the replica it failed over to: it moves back only if that one fails');
    const lost = pings.reduce((a, p) => a + p.lost, 0);
    if (pings.length > 0)
      notes.push(lost === 0 ? 'forwarding was not interrupted: no ping lost during the outage' : `FORWARDING INTERRUPTED: ${lost} pings lost`);
    const ok = timings.every((t) => t.ms !== null);
    if (ok) this.faults.delete(`server ${n}`);
    else notes.push(`still counted as failed: \`weft lab heal server ${n}\` again`);
    return { action: 'heal', what: 'server', target: String(n), done, timings, notes, commands: [], pings, ok };
  }

  /**
   * `weft lab evacuate HOST`, after `fail host HOST`: what the operator
   * would run, through the API in this order: `weft host update HOST
   * --state down`, then `weft instance migrate NAME` for every instance the
   * API has on it (placement picks the target, never a down host), each
   * VM's link switched over to its new host as the migration lands. Times
   * how long until every instance answers there and every agent applied it,
   * and until a moved VIP backend's new host is a next hop at its ToR; checks
   * the failed host is no VIP next hop at its ToR. Throws E_INVALID_ARG
   * (unknown host), E_CONFLICT (host not failed, or evacuated already).
   */
  async evacuate(target: unknown): Promise<EvacuationReport> {
    const c = this.r.c;
    const host = this.hostArg('host', target);
    const f = this.faults.get(`host ${host}`);
    if (!f)
      throw conflict(
        `host ${host} is not failed: \`weft lab fail host ${host}\` first (a working host is drained with \`weft host update ${host} --state draining\` and \`weft lab move\`)`,
        'host',
      );
    if (f.evacuated) throw conflict(`host ${host} is evacuated already: \`weft lab heal host ${host}\` brings it back`, 'host');
    this.needServer();
    const { rack, underlayIp } = c.host(host).lab;
    const api = this.r.api;
    const commands: string[] = [];
    const notes: string[] = [];
    const moves: EvacuationReport['moves'] = [];
    const answering: Promise<void>[] = [];
    const t0 = performance.now();
    await api.patch(`/v1/hosts/${host}`, { state: 'down' });
    commands.push(`weft host update ${host} --state down`);
    f.downInApi = true;
    const placed = await api.all<{ id: string; name: string }>('/v1/instances', { host });
    for (const i of placed) {
      commands.push(`weft instance migrate ${i.name}`);
      const routed = this.web.find((w) => w.name === i.name);
      if (!routed && !this.vms.some((v) => v.name === i.name)) {
        await api.post(`/v1/instances/${i.id}/migrate`, {});
        notes.push(`${i.name} has no VM in the lab: migrated in the API only`);
        continue;
      }
      // The same call as `weft instance migrate NAME` (no target: placement picks), then the VM's switch-over.
      const to = routed ? await this.r.moveRouted(i.name) : await c.move(i.name);
      const m = { instance: i.name, kind: routed ? ('routed' as const) : ('overlay' as const), to, pingFrom: '', answeredMs: null as number | null };
      moves.push(m);
      if (this.dark(to)) notes.push(`placement put ${i.name} on ${to}, which is failed in the lab but active in the API`);
      answering.push(
        (async () => {
          const a = await this.answerTiming(t0, c.vms.get(i.name) ?? (routed as RoutedVm));
          m.pingFrom = a.from;
          m.answeredMs = a.ms;
        })(),
      );
    }
    await Promise.all(answering);
    const timings: Timing[] = [];
    const slowest = moves.some((m) => m.answeredMs === null) ? null : Math.max(0, ...moves.map((m) => m.answeredMs as number));
    timings.push({ what: `every instance of ${host} (${moves.length}) answers on its new host`, ms: slowest });
    const applied = await c
      .converged(30_000)
      .then(() => Math.round(performance.now() - t0))
      .catch(() => null);
    timings.push({ what: 'every agent at the head of the change log', ms: applied });
    for (const m of moves.filter((x) => this.web.some((w) => w.name === x.instance))) {
      const to = c.host(m.to).lab;
      const ms = await timeUntil(t0, async () => (await this.r.nextHops(to.rack, `${this.vip}/32`)).includes(to.underlayIp), 30_000);
      timings.push({ what: `VIP backend ${m.instance}: ${m.to} a next hop of the VIP at ToR ${to.rack}`, ms });
    }
    f.evacuated = true;
    const hops = await this.r.nextHops(rack, `${this.vip}/32`);
    const gone = !hops.includes(underlayIp);
    notes.push(
      `VIP ${this.vip} next hops at ToR ${rack}: ${list(hops)}: ${host} (${underlayIp}) ${gone ? 'is gone from them' : 'is STILL among them'}`,
      ...(await this.vipNotes(rack)),
      `${host} is down in the API: placement gives it nothing; \`weft lab heal host ${host}\` brings it back and sets it active again`,
    );
    return { host, commands, moves, timings, notes, ok: gone && timings.every((t) => t.ms !== null) };
  }

  /** A new instance of tenant t1 (the next free `t1vmN`), created through replica `via` (default: the first running), with its VM. */
  private async addInstance(via?: number): Promise<LabVm> {
    const names = new Set([...this.vms, ...this.web].map((v) => v.name));
    let k = 1;
    while (names.has(`t1vm${k}`)) k++;
    // In the site of t1's first instance: the tenant's network spans every site, its instances are placed within one.
    const first = this.vms.find((v) => this.tenants.get(v.name) === 't1');
    const site = first ? this.r.c.host(this.where(first.name)).site : undefined;
    const vm = await this.r.c.vm(`t1vm${k}`, { tenant: 't1', network: 'private', via, site });
    this.vms.push(vm);
    this.tenants.set(vm.name, 't1');
    return vm;
  }

  /** Each running agent's /healthz by host (null: it does not answer). */
  private async healths(): Promise<Map<string, AgentHealth | null>> {
    const c = this.r.c;
    const hosts = [...c.hosts.values()].filter((h) => h.agent);
    const hs = await Promise.all(hosts.map((h) => c.health(h.name).catch(() => null)));
    return new Map(hosts.map((h, i) => [h.name, hs[i] ?? null]));
  }

  /** Every running agent has applied `version` (as the replicas that run report it). */
  private async allAt(version: number): Promise<boolean> {
    const c = this.r.c;
    const a = await c.agents();
    return [...c.hosts.values()].filter((h) => h.agent).every((h) => (a.items.find((i) => i.hostId === h.hostId)?.appliedVersion ?? -1) >= version);
  }

  /** Which replica each agent is connected to, as one line. */
  private async placementLine(): Promise<string> {
    const hs = await this.healths();
    const by = new Map<string, string[]>();
    for (const [name, h] of hs) {
      const key = h?.connected ? `server ${this.r.c.serverAt(h.server) ?? h.server}` : 'not connected';
      by.set(key, [...(by.get(key) ?? []), name]);
    }
    return [...by].map(([k, v]) => `${k}: ${v.join(', ')}`).join('; ');
  }

  /**
   * Two instances of one tenant on different working hosts to ping between
   * during a server fault: the pinger on a host whose agent is on replica
   * `ip` when there is one, the other on a host whose agent is not.
   */
  private pingPair(healths: Map<string, AgentHealth | null>, ip: string): { from: LabVm; to: LabVm } {
    const on = (v: LabVm) => healths.get(this.where(v.name))?.server === ip;
    const pairs: { from: LabVm; to: LabVm; score: number }[] = [];
    for (const a of this.vms)
      for (const b of this.vms) {
        const [ha, hb] = [this.where(a.name), this.where(b.name)];
        if (a === b || ha === hb || this.tenants.get(a.name) !== this.tenants.get(b.name) || this.dark(ha) || this.dark(hb)) continue;
        pairs.push({ from: a, to: b, score: (on(a) ? 2 : 0) + (on(b) ? 0 : 1) });
      }
    pairs.sort((x, y) => y.score - x.score);
    const p = pairs[0];
    if (!p) throw conflict('no two instances of one tenant on different working hosts to ping between', 'target');
    return p;
  }

  /** Ms since `t0` until `vm` answers over IPv4 and IPv6 (overlay: from another instance of its tenant on a working host; routed: from the client), null after 30 s. */
  private async answerTiming(t0: number, vm: LabVm | RoutedVm): Promise<{ from: string; ms: number | null }> {
    const routed = this.web.some((w) => w.name === vm.name);
    const ips = [vm.port.ipv4, vm.port.ipv6].filter((ip): ip is string => !!ip);
    let from = routed ? `the client (behind the ${this.r.top} router)` : 'no peer';
    const ms = await timeUntil(
      t0,
      async () => {
        let ns = this.r.clientNs;
        if (!routed) {
          const here = this.where(vm.name);
          const peers = this.vms.filter((v) => v.name !== vm.name && this.tenants.get(v.name) === this.tenants.get(vm.name) && !this.dark(this.where(v.name)));
          const peer = peers.find((v) => this.where(v.name) !== here) ?? peers[0];
          if (!peer) return false;
          from = `${peer.name} (on ${this.where(peer.name)})`;
          ns = this.r.c.vmNs(peer.name);
        }
        return (await Promise.all(ips.map((ip) => this.ping(ns, ip)))).every(Boolean);
      },
      30_000,
    );
    return { from, ms };
  }

  /** Throws E_CONFLICT when no server replica runs: the API is down until `heal server`. */
  private needServer(): void {
    const c = this.r.c;
    if (c.servers.some((x) => x.proc)) return;
    throw conflict(`no server of lab ${this.o.name} is running (failed: ${list(this.faultList())}): \`weft lab heal server\` first`);
  }

  private serverArg(v: unknown): number {
    const n = this.r.c.servers.length;
    if (v === undefined || v === null || v === '') return 1;
    const k = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : Number.NaN;
    if (!(Number.isInteger(k) && k >= 1 && k <= n))
      throw invalid(
        'target',
        v,
        n === 1
          ? 'must be 1 or none: the lab runs one server (on SQLite)'
          : `must be a server replica, ${Array.from({ length: n }, (_, i) => i + 1).join(' or ')}, or none for 1`,
      );
    return k;
  }

  /** The prefixes a healed host must be routed again: those of before, less routed instances and VIP backends no longer on it. */
  private expectedRoutes(f: Fault): string[] {
    const gone = new Set<string>();
    for (const w of this.web) {
      if (this.where(w.name) === f.target) continue;
      if (w.port.ipv4) gone.add(`${w.port.ipv4}/32`);
      if (w.port.ipv6) gone.add(`${w.port.ipv6}/128`);
    }
    const serves = this.web.some((w) => this.where(w.name) === f.target && this.servers.get(w.name));
    if (!serves) gone.add(`${this.vip}/32`);
    return f.routes.filter((p) => !gone.has(p));
  }

  private sessionsLine(host: string, sessions: BirdProtocol[]): string {
    return `the ToR's sessions to ${host}: ${sessions.map((p) => `${p.name} ${(p.info || p.state).replace(/\s+/g, ' ')}`).join('; ')}`;
  }

  /** The VIP's next hops on every router from `rack` up to the client: the ToR, its spine, the WAN router (or the core). */
  private async vipNotes(rack: string): Promise<string[]> {
    const path = this.r.pathUp(rack);
    const hops = await Promise.all(path.map((n) => this.r.nextHops(n, `${this.vip}/32`)));
    const role = (i: number) => (i === 0 ? 'ToR' : i === path.length - 1 ? (this.r.top === 'wan' ? 'WAN' : 'core') : 'spine');
    return [`VIP ${this.vip} next hops now: ${path.map((n, i) => `${role(i)} ${n} ${list(hops[i] as string[])}`).join('; ')}`];
  }

  /** The host an instance's VM is plugged into now. */
  private where(name: string): string {
    return (this.r.c.lab.vms.get(name) as { host: string }).host;
  }

  /** The host is failed, or its link is. */
  private dark(host: string): boolean {
    return this.faults.has(`host ${host}`) || this.faults.has(`link ${host}`);
  }

  private usable(field: string, host: string): void {
    if (this.dark(host)) throw conflict(`${field} ${show(host)} is failed (${list(this.faultList())}): heal it first or pick another host`, field);
  }

  private kindArg(v: unknown): FaultKind {
    if (!FAULT_KINDS.includes(v as FaultKind)) throw invalid('what', v, `must be one of ${FAULT_KINDS.join(', ')}`);
    return v as FaultKind;
  }

  private hostArg(field: string, v: unknown): string {
    if (typeof v !== 'string' || !this.r.c.hosts.has(v)) throw invalid(field, v, `must be a host of lab ${this.o.name}: ${list([...this.r.c.hosts.keys()])}`);
    return v;
  }

  private instanceArg(field: string, v: unknown): string {
    const names = [...this.vms, ...this.web].map((x) => x.name);
    if (typeof v !== 'string' || !names.includes(v)) throw invalid(field, v, `must be an instance of lab ${this.o.name}: ${list(names)}`);
    return v;
  }

  private backendArg(v: unknown): string {
    const names = this.web.map((w) => w.name);
    if (typeof v !== 'string' || !names.includes(v)) throw invalid('target', v, `must be a backend of the VIP: ${list(names)}`);
    return v;
  }

  async destroy(): Promise<void> {
    for (const s of this.servers.values()) s?.kill('SIGKILL');
    await sleep(0);
    await this.r.destroy();
  }
}
