// `weft lab`'s cloud: a routing lab (server, one agent and one BIRD per
// host, BIRD ToRs and core) filled with tenants whose private subnets
// overlap, instances spread by placement, and an anycast VIP with backends
// on several hosts; the check that proves it works end to end, and the
// moves and faults it takes, each measured (docs/lab.md).
import type { ChildProcess } from 'node:child_process';
import { conflict, invalid, show } from '../model/errors.js';
import { run } from '../sys/exec.js';
import { pool } from '../sys/pool.js';
import { type BirdProtocol, protocols } from './bird.js';
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

/** What `weft lab fail` and `heal` act on. */
export type FaultKind = 'host' | 'backend' | 'link';
export const FAULT_KINDS: readonly FaultKind[] = ['host', 'backend', 'link'];

/** The ping interval of a move's blackout measure, and the blackout target (DESIGN.md). */
export const MOVE_PING_MS = 10;
export const MOVE_TARGET_MS = 100;

/** What `Cloud.move` measured. */
export interface MoveReport {
  instance: string;
  kind: 'overlay' | 'routed';
  from: string;
  to: string;
  /** Where the pings came from: another instance of the tenant on another host, or the lab's client behind the core. */
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
  /** Every timing was met. */
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
        const vm = await r.c.vm(`${t}vm${Math.floor(i / tenants.length) + 1}`, { tenant: t, network: 'private' });
        c.vms.push(vm);
        c.tenants.set(vm.name, t);
      }
      progress(`${o.instances} instances placed by the server`);
      // VIP backends on the first host of each of two racks (or two hosts of the one rack).
      const spots = [...r.c.hosts.values()].filter((h, i, all) => h.lab.rack !== all[0]?.lab.rack || i === 0);
      const two = (spots.length >= 2 ? spots : [...r.c.hosts.values()]).slice(0, 2);
      for (const [i, h] of two.entries()) {
        const w = await r.routedVm(`web${i + 1}`, { tenant: 't1', network: 'public', host: h.name });
        c.web.push(w);
        c.tenants.set(w.name, 't1');
        c.servers.set(w.name, c.backend(w));
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
    // A link set down by `fail` cannot be captured on (and carries nothing).
    const down = [...this.faults.values()].filter((f) => f.what !== 'backend' && !f.silent).map((f) => f.target);
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
    const vxlan = lines.filter((l) => / > [\d.]+\.4789: VXLAN/.test(l));
    const inner = vxlan.filter(
      (l) => /\| .*(ARP|ICMP6, neighbor|ICMP6, router)/.test(l) || /\| (ff:ff:ff:ff:ff:ff|33:33:)/.test(`| ${l.split('| ')[1] ?? ''}`),
    );
    items.push({
      check: 'no ARP, NDP or broadcast across the underlay',
      ok: inner.length === 0 && vxlan.length > 0,
      detail: `${vxlan.length} VXLAN packets captured on ${watched.length} underlay links${down.length ? ` (down: ${down.join(', ')})` : ''}, ${inner.length} carrying ARP/NDP/broadcast`,
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
    return [...this.faults.values()].map((f) => `${f.what} ${f.target}${f.silent ? ' (silent)' : ''}`);
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
      pingFrom = 'client (behind the core)';
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
    if (routed) notes.push('a routed instance moves with its /32 and /128: the blackout includes BGP from the new host through the ToRs and the core');
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
    const name = kind === 'backend' ? this.backendArg(target) : this.hostArg('target', target);
    const f = this.faults.get(`${kind} ${name}`);
    if (!f) throw conflict(`${kind} ${name} is not failed (failed now: ${list(this.faultList())})`, 'target');
    if (kind === 'backend') return this.healBackend(name);
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
      'in this lab `weft lab move INSTANCE` also switches the VM over to its new host',
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

  private async vipNotes(rack: string): Promise<string[]> {
    const [tor, core] = await Promise.all([this.r.nextHops(rack, `${this.vip}/32`), this.r.nextHops('core', `${this.vip}/32`)]);
    return [`VIP ${this.vip} next hops now: ToR ${rack} ${list(tor)}; core ${list(core)}`];
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
