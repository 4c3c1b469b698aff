// `weft lab`'s cloud: a routing lab of sites (server, one agent and one BIRD
// per host, BIRD ToRs, a spine per site, a WAN router joining them) filled
// with tenants whose private subnets overlap and whose networks span the
// sites, instances spread by placement, and an anycast VIP with backends on
// hosts of several racks. What it takes, each measured, lives beside it: the
// check (cloud-check.ts), moves (cloud-move.ts), faults and the evacuation
// (faults/) (docs/lab.md).
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { conflict, invalid, show, WeftError } from '../model/errors.js';
import { instanceDir } from '../model/profile.js';
import { run } from '../sys/exec.js';
import { pool } from '../sys/pool.js';
import { until } from '../sys/until.js';
import { type CheckItem, checkCloud } from './cloud-check.js';
import { type MoveReport, moveInstance } from './cloud-move.js';
import { type EvacuationReport, evacuateHost } from './faults/evacuate.js';
import type { Fault, FaultReport } from './faults/fault.js';
import { failFault, healFault } from './faults/index.js';
import { bootGuest, emptyImage, GUEST_NAME, type Guest, guestImage, migrateGuest, writtenSpec } from './guest.js';
import { type CloudLayout, type CloudShape, checkShape, cloudLayout } from './layout.js';
import { list, sleep } from './measure.js';
import type { InstanceView, LabVm, PortView } from './overlay-lab.js';
import { EXAMPLE_IMAGE, OVERLAY_MTU } from './plan.js';
import { type RoutedVm, RoutingLab } from './routing-lab.js';

export type { CheckItem } from './cloud-check.js';
export { MOVE_PING_MS, MOVE_TARGET_MS, type MoveReport } from './cloud-move.js';
export { type EvacuationReport, FAULT_KINDS, type FaultKind, type FaultReport, type PingWindow, type Timing } from './faults/index.js';

/** The lab's name, its shape and seed (layout.ts), and its store. */
export interface CloudOptions extends CloudShape {
  name: string;
  /** The store (overlay-lab.ts checkLabDb): SQLite by default; a PostgreSQL URL runs two server replicas. */
  db?: string;
  /** Also boots one instance as a real VM under qemu from the profile its agent wrote (guest.ts). */
  bootVm?: boolean;
}

export { GUEST_NAME } from './guest.js';
export { DEFAULT_CLOUD } from './plan.js';

/** Where host `host`'s agent keeps its instances' files (`weft agent --vm-dir`). */
export const vmDir = (labDir: string, host: string): string => join(labDir, 'vm', host);

/**
 * Checks the sizes a lab can hold (layout.ts SHAPE_LIMITS: at most 32 hosts,
 * well inside the management network's 61 and the 128 underlay links: 2 x
 * 4 x 4 takes 32 host links, 8 ToR and 2 spine links). Throws E_INVALID_ARG
 * naming the field, the value and what is allowed.
 */
export function checkCloudOptions(o: CloudOptions): CloudOptions {
  return checkShape(o);
}

/**
 * A whole cloud in network namespaces (`start` builds it, `destroy` removes
 * it), and the measured operations `weft lab` runs on it, one at a time.
 * Its state and helpers are read by those operations (cloud-check.ts,
 * cloud-move.ts, faults/); only they and `start` change it.
 */
export class Cloud {
  /** The tenants' overlay instances (t1vm1, t1vm2, ..., t2vm1) with their VMs. */
  readonly vms: LabVm[] = [];
  /** The VIP's backends: routed instances (web1, web2, ...). */
  readonly web: RoutedVm[] = [];
  /** Each VIP backend's HTTP server, null while `fail backend` keeps it stopped. */
  readonly backendServers = new Map<string, ChildProcess | null>();
  /** Each instance's tenant, by instance name. */
  readonly tenantOf = new Map<string, string>();
  /** The faults in place, keyed `<kind> <target>` (`host r1h2`): what `heal` undoes. */
  readonly faults = new Map<string, Fault>();
  vip = '';
  /** The instance booted under qemu (`bootVm`), with its port, or null. */
  guest: { instance: InstanceView; port: PortView; vm: Guest; image: { kernel: string; initrd: string }; moves: number } | null = null;

  private constructor(
    readonly routing: RoutingLab,
    readonly options: CloudOptions,
  ) {
    this.layout = cloudLayout(options);
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
    const routing = this.routing;
    // Each agent writes its instances' profiles and overlay disks (on an empty image of the lab's) in <dir>/vm/<host>.
    const image = join(routing.overlay.dir, 'images', `${EXAMPLE_IMAGE}.qcow2`);
    await mkdir(dirname(image), { recursive: true });
    await emptyImage(image);
    for (const site of layout.sites) await routing.api.patch(`/v1/sites/${site.name}`, { vm: { imagePath: join(dirname(image), '{image}.qcow2') } });
    // Every tenant gets the same private subnets: isolation is the overlay's job, not addressing's.
    for (const t of layout.tenants) await routing.overlay.network(t, 'private', ['10.0.0.0/24', 'fd00:10::/64'], OVERLAY_MTU);
    await routing.api.post('/v1/networks', { tenant: 't1', name: 'public', kind: 'routed', site: layout.vipSite });
    progress(
      `${layout.tenants.length} tenants with overlapping 10.0.0.0/24 and fd00:10::/64 across ${layout.sites.map((s) => s.name).join(', ')} (MTU ${OVERLAY_MTU}), a routed network in ${layout.vipSite}`,
    );
    let turn: Promise<unknown> = Promise.resolve();
    const vms = await pool(
      8,
      layout.instances.map((x) => async () => {
        const spec = { tenant: x.tenant, network: 'private', site: x.site };
        // The API calls one after the other in the seed's order; the namespaces in parallel.
        const made = turn.then(() => routing.overlay.instance(x.name, spec));
        turn = made.catch(() => undefined);
        return routing.overlay.plug(x.name, spec, await made);
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
      this.tenantOf.set(vm.name, x.tenant);
    }
    progress(`${layout.instances.length} instances placed by the server (seed ${this.options.seed})`);
    // One after the other: their public addresses are allocated in this order.
    for (const b of layout.backends) {
      const w = await routing.routedVm(b.name, { tenant: 't1', network: 'public', host: b.host });
      this.web.push(w);
      this.tenantOf.set(w.name, 't1');
      this.backendServers.set(w.name, this.startBackend(w));
    }
    const v = await routing.api.post<{ address: string }>('/v1/vips', {
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
    const routing = await RoutingLab.start({
      name: o.name,
      hosts: layout.hosts,
      sites: layout.sites,
      bfd: true,
      db: o.db,
      progress,
      agentFlags: (host, dir) => ['--vm-dir', vmDir(dir, host)],
    });
    const cloud = new Cloud(routing, o);
    try {
      // BGP comes up while the API fills the cloud: nothing below waits for it but the VIP's reachability.
      const bgp = routing.established(30_000).then(() => progress('BGP sessions established (hosts, ToRs, spines, WAN)'));
      // Both settle before a failure of either is thrown: nothing is still being built while the lab is removed.
      for (const x of await Promise.allSettled([bgp, cloud.fill(layout, progress)])) if (x.status === 'rejected') throw x.reason;
      await routing.overlay.converged(30_000);
      progress('every agent applied the latest change');
      if (o.bootVm) await cloud.bootGuest(progress);
      return cloud;
    } catch (e) {
      await cloud.destroy();
      throw e;
    }
  }

  /**
   * Creates instance `t1guest` (placed by the server, in the site of t1's
   * first instance) and boots it under qemu on its hypervisor from the
   * profile that host's agent wrote (guest.ts), then waits until the agent
   * plugged its tap.
   */
  private async bootGuest(progress: (stage: string) => void): Promise<void> {
    const overlay = this.routing.overlay;
    const t0 = performance.now();
    const image = await guestImage(join(overlay.dir, 'guest'));
    const first = this.vms.find((v) => this.tenantOf.get(v.name) === 't1');
    const site = first ? overlay.host(this.where(first.name)).site : undefined;
    const instance = await overlay.instance(GUEST_NAME, { tenant: 't1', network: 'private', site });
    const port = instance.ports[0] as PortView;
    const host = [...overlay.hosts.values()].find((h) => h.hostId === instance.hostId);
    if (!host) throw new WeftError('E_NOT_FOUND', `instance ${GUEST_NAME} is on host ${instance.hostId}, which is no host of the lab`);
    const dir = instanceDir(vmDir(overlay.dir, host.name), instance.id);
    await until(`agent ${host.name} to write the profile of ${GUEST_NAME} (${dir})`, () => existsSync(join(dir, 'network-config')), 30_000);
    const spec = await writtenSpec(dir);
    const vm = await bootGuest(overlay.lab, { name: host.name, ns: host.lab.ns }, spec, image, {
      logFile: join(overlay.dir, `guest-${GUEST_NAME}.log`),
      monitor: join(overlay.dir, 'guest-monitor-0.sock'),
    });
    this.guest = { instance, port, vm, image, moves: 0 };
    this.tenantOf.set(GUEST_NAME, 't1');
    await overlay.converged(30_000);
    progress(
      `${GUEST_NAME} booted under qemu (TCG) on ${host.name} from the profile its agent wrote, in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${[port.ipv4, port.ipv6].filter(Boolean).join(', ')}; \`weft console ${GUEST_NAME}\``,
    );
  }

  /**
   * Moves the booted VM as an agent with shared storage would: migrated
   * through the API (to `to`, or where placement picks), then qemu's live
   * migration to the new host, from the profile that host's agent wrote.
   * Returns the new host and how long qemu's migration took.
   */
  async moveGuest(to?: string): Promise<{ host: string; migrationMs: number }> {
    const g = this.guest;
    if (!g) throw new WeftError('E_NOT_FOUND', `lab ${this.options.name} has no booted VM (\`weft lab up --boot-vm\`)`);
    const overlay = this.routing.overlay;
    const instance = await overlay.api.post<InstanceView>(`/v1/instances/${g.instance.id}/migrate`, to ? { target: to } : {});
    const host = [...overlay.hosts.values()].find((h) => h.hostId === instance.hostId);
    if (!host) throw new WeftError('E_NOT_FOUND', `instance ${GUEST_NAME} is on host ${instance.hostId}, which is no host of the lab`);
    const dir = instanceDir(vmDir(overlay.dir, host.name), instance.id);
    await until(`agent ${host.name} to write the profile of ${GUEST_NAME} (${dir})`, () => existsSync(join(dir, 'network-config')), 30_000);
    const n = g.moves + 1;
    const { guest, ms } = await migrateGuest(overlay.lab, g.vm, { name: host.name, ns: host.lab.ns }, await writtenSpec(dir), g.image, {
      logFile: join(overlay.dir, `guest-${GUEST_NAME}.log`),
      monitor: join(overlay.dir, `guest-monitor-${n}.sock`),
      socket: join(overlay.dir, `guest-migrate-${n}.sock`),
    });
    this.guest = { ...g, instance, vm: guest, moves: n };
    return { host: host.name, migrationMs: Math.round(ms) };
  }

  /** A tiny HTTP server in a routed VM answering its name on :8080. */
  startBackend(w: RoutedVm): ChildProcess {
    const code = `require('http').createServer((q,s)=>{s.end(${JSON.stringify(w.name)})}).listen(8080,'::')`;
    return this.routing.overlay.lab.spawn(w.ns, process.execPath, ['-e', code], { stdio: 'ignore' });
  }

  /** `count` pings from namespace `ns` to `ip`, 200 ms apart: whether all were answered. */
  async ping(ns: string, ip: string, count = 1): Promise<boolean> {
    const r = await run('ping', ['-n', '-q', '-c', String(count), '-i', '0.2', '-W', '1', ip], { netns: ns, okCodes: [1, 2] });
    return / 0% packet loss/.test(r.stdout) || new RegExp(` ${count} received`).test(r.stdout);
  }

  /**
   * The lab's end-to-end check (cloud-check.ts): reachability within each
   * tenant (IPv4 and IPv6, every ordered pair), isolation between tenants,
   * full-size overlay packets between sites, no ARP/NDP or broadcast inside
   * VXLAN on any host's underlay meanwhile, the VIP answered from the client
   * behind the WAN router by backends on several racks, every agent at the
   * head, every BGP session of every fabric router up.
   */
  check(): Promise<CheckItem[]> {
    return checkCloud(this);
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
   * Live-migrates `instance` (an overlay VM or a routed `web*` VM) with a
   * ping every 10 ms running to it and measures the blackout (cloud-move.ts).
   * Throws E_INVALID_ARG for an unknown instance or host (naming the valid
   * ones) or `to` its own host, E_CONFLICT for a failed target host or no
   * instance to ping from.
   */
  move(instance: unknown, to?: unknown): Promise<MoveReport> {
    return moveInstance(this, instance, to);
  }

  /**
   * Injects a fault and measures the ToR's reaction (faults/, one file per kind):
   * - `host`: the hypervisor goes dark: `ul0` down, its agent and BIRD
   *   killed (SIGKILL); the time until the ToR routes nothing to it. The
   *   server is not told: the report lists what an operator would run.
   * - `backend`: a VIP backend's HTTP server stops; the time until its host
   *   leaves the ToR's next hops for the VIP.
   * - `link`: only `ul0` down (`silent`: every packet on it dropped, the
   *   carrier kept, so BFD must find out); the time until the ToR routes
   *   nothing to the host, and how the ToR saw it.
   * - `server`: a replica killed; the agents' reconnection and forwarding meanwhile.
   * Throws E_INVALID_ARG (unknown kind or target, naming the valid ones),
   * E_CONFLICT (already failed, or inside another fault).
   */
  fail(what: unknown, target: unknown, o: { silent?: unknown } = {}): Promise<FaultReport> {
    return failFault(this, what, target, o);
  }

  /**
   * Undoes a fault of `fail` and measures the recovery: `host`: link up,
   * BIRD and agent started again, the time until its sessions are
   * Established and the ToR routes to it again; `backend`: the server
   * started again, the time until its host is a VIP next hop again; `link`:
   * up again, as for host; `server`: started again, the agents back at the
   * head. Throws E_INVALID_ARG, E_CONFLICT (not failed).
   */
  heal(what: unknown, target: unknown): Promise<FaultReport> {
    return healFault(this, what, target);
  }

  /**
   * `weft lab evacuate HOST`, after `fail host HOST` (faults/evacuate.ts):
   * the operator's API calls (host down, every instance migrated), each VM
   * switched over, timed until each answers on its new host. Throws
   * E_INVALID_ARG (unknown host), E_CONFLICT (host not failed, or evacuated already).
   */
  evacuate(target: unknown): Promise<EvacuationReport> {
    return evacuateHost(this, target);
  }

  /** A new instance of tenant t1 (the next free `t1vmN`), created through replica `via` (default: the first running), with its VM. */
  async addInstance(via?: number): Promise<LabVm> {
    const names = new Set([...this.vms, ...this.web].map((v) => v.name));
    let k = 1;
    while (names.has(`t1vm${k}`)) k++;
    // In the site of t1's first instance: the tenant's network spans every site, its instances are placed within one.
    const first = this.vms.find((v) => this.tenantOf.get(v.name) === 't1');
    const site = first ? this.routing.overlay.host(this.where(first.name)).site : undefined;
    const vm = await this.routing.overlay.vm(`t1vm${k}`, { tenant: 't1', network: 'private', via, site });
    this.vms.push(vm);
    this.tenantOf.set(vm.name, 't1');
    return vm;
  }

  /** Throws E_CONFLICT when no server replica runs: the API is down until `heal server`. */
  needServer(): void {
    if (this.routing.overlay.servers.some((x) => x.proc)) return;
    throw conflict(`no server of lab ${this.options.name} is running (failed: ${list(this.faultList())}): \`weft lab heal server\` first`);
  }

  /** The host an instance's VM is plugged into now (the booted VM's: where its qemu runs). */
  where(name: string): string {
    if (name === GUEST_NAME && this.guest) return this.guest.vm.host;
    return (this.routing.overlay.lab.vms.get(name) as { host: string }).host;
  }

  /** The host is failed, or its link is. */
  dark(host: string): boolean {
    return this.faults.has(`host ${host}`) || this.faults.has(`link ${host}`);
  }

  /** Throws E_CONFLICT when `host` (given as `field`) is dark. */
  usable(field: string, host: string): void {
    if (this.dark(host)) throw conflict(`${field} ${show(host)} is failed (${list(this.faultList())}): heal it first or pick another host`, field);
  }

  /** `v` as a host of the lab; throws E_INVALID_ARG naming `field` and the hosts. */
  hostArg(field: string, v: unknown): string {
    if (typeof v !== 'string' || !this.routing.overlay.hosts.has(v))
      throw invalid(field, v, `must be a host of lab ${this.options.name}: ${list([...this.routing.overlay.hosts.keys()])}`);
    return v;
  }

  /** `v` as an instance of the lab; throws E_INVALID_ARG naming `field` and the instances. */
  instanceArg(field: string, v: unknown): string {
    const names = [...this.vms, ...this.web].map((x) => x.name).concat(this.guest ? [GUEST_NAME] : []);
    if (typeof v !== 'string' || !names.includes(v)) throw invalid(field, v, `must be an instance of lab ${this.options.name}: ${list(names)}`);
    return v;
  }

  async destroy(): Promise<void> {
    for (const s of this.backendServers.values()) s?.kill('SIGKILL');
    await this.guest?.vm.stop();
    await sleep(0);
    await this.routing.destroy();
  }
}
