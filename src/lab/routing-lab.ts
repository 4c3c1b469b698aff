// A routed cloud for end-to-end tests and `weft lab`: the overlay lab (real
// server, one real agent per host) plus BIRD everywhere: a ToR per rack
// (src/lab/fabric), above them the core, or a spine per site and the WAN
// router joining the spines, and one BIRD per host that the host's agent
// configures. A client namespace hangs off the top router (core or WAN),
// outside every rack and site. destroy() removes it all.
import { readFileSync } from 'node:fs';
import { portIfname } from '../agent/names.js';
import { notFound } from '../model/errors.js';
import { pool } from '../sys/pool.js';
import { until } from '../sys/until.js';
import { type BirdProcess, type BirdProtocol, enableL4Hashing, kernelRoute, kernelRoutesVia, linkEnds, protocols, startBird } from './bird.js';
import { hostProtocol, type OriginateRoute, renderCoreConf, renderSpineConf, renderTorConf, renderWanConf } from './fabric.js';
import type { LayoutSite } from './layout.js';
import { hostAsn, torAsn, WAN_ASN } from './layout.js';
import { type HostSpec, hostSpec, type InstanceView, OverlayLab, type PortView } from './overlay-lab.js';
import { CORE, EXAMPLE_IMAGE, WAN } from './plan.js';

export { hostAsn, torAsn } from './layout.js';
/** The ASN of the top router: the core, or the WAN router. */
export const CORE_ASN = WAN_ASN;
/** The public pools of a lab's one site `lab`: routed ports and VIPs come from here. */
export const PUBLIC4 = '203.0.113.0/25';
export const PUBLIC6 = '2001:db8:100::/48';
/** The client's link to the top router (outside every site's pools). */
export const CLIENT = { core4: '203.0.113.254/31', client4: '203.0.113.255/31', core6: '2001:db8:ff::1/64', client6: '2001:db8:ff::2/64' };

/** A site of a lab of spines: its API pools and its spine (as `weft lab`'s layout plans it). */
export type RoutingSite = LayoutSite;

export interface RoutingLabOptions {
  name: string;
  /** As for OverlayLab: `[host, rack]` (racks under the core), or with site, spine and link (then `sites` names them all). */
  hosts: HostSpec[];
  /** The sites of a lab of spines; without, one site `lab` and the core. */
  sites?: RoutingSite[];
  /** Told as each stage of the build ends. */
  progress?: (stage: string) => void;
  /** Routes each rack's ToR sends its hosts besides the default routes. */
  originate?: Record<string, OriginateRoute[]>;
  /** BFD on every host <-> ToR session. */
  bfd?: boolean;
  /** Extra agent flags per host (e.g. --roa-file). */
  agentFlags?: (host: string, dir: string) => string[];
  /** The host peers (one per host, to its ToR); fields as the API takes them. */
  peer?: (host: string) => Record<string, unknown>;
  /** The store, as for OverlayLab (a PostgreSQL URL: two server replicas). */
  db?: string;
}

export interface RoutedVm {
  name: string;
  instance: InstanceView;
  port: PortView;
  ns: string;
}

export class RoutingLab {
  readonly tors = new Map<string, BirdProcess>();
  /** Spine name -> its BIRD (a lab of sites). */
  readonly spines = new Map<string, BirdProcess>();
  readonly birds = new Map<string, BirdProcess>();
  /** The top router's BIRD: the core, or the WAN router (see `top`). */
  core: BirdProcess | null = null;
  readonly clientNs: string;
  readonly routed = new Map<string, RoutedVm>();

  private constructor(
    /** The overlay lab underneath: the namespaces, the server, the agents and their VMs. */
    readonly overlay: OverlayLab,
    /** The top router's node: `core`, or `wan` in a lab of sites. */
    readonly top: string,
  ) {
    this.clientNs = overlay.lab.ns('client');
  }

  static async start(o: RoutingLabOptions): Promise<RoutingLab> {
    const overlay = await OverlayLab.start({
      name: o.name,
      hosts: o.hosts,
      ...(o.sites
        ? { sites: o.sites.map((s) => ({ name: s.name, underlayPool: s.underlayPool, ipv4Pools: [s.public4], ipv6Block: s.public6 })) }
        : { site: { ipv4Pools: [PUBLIC4], ipv6Block: PUBLIC6 } }),
      hostAsn,
      startAgents: false,
      db: o.db,
    });
    o.progress?.(`${overlay.lab.nodeCount()} namespaces and their links, the server, sites, racks and hosts in the API`);
    const routing = new RoutingLab(overlay, o.sites ? WAN : CORE);
    try {
      await routing.fabric(o);
      return routing;
    } catch (e) {
      await routing.destroy();
      throw e;
    }
  }

  get api() {
    return this.overlay.api;
  }

  /**
   * Starts every fabric router's BIRD (ToRs, spines, the top router: all at
   * once) and the client, then one BIRD per host with its host peers, then
   * the agents.
   */
  private async fabric(o: RoutingLabOptions): Promise<void> {
    const { lab } = this.overlay;
    const specs = o.hosts.map(hostSpec);
    const racks = [...new Set(specs.map((h) => h.rack))];
    const hostList = [...this.overlay.hosts.values()];
    const sites = o.sites ?? [];
    const asnOf = new Map<string, number>([
      [this.top, CORE_ASN],
      ...sites.map((s) => [s.spine, s.asn] as [string, number]),
      ...racks.map((r, i) => [r, torAsn(i)] as [string, number]),
    ]);
    const parent = (node: string) => lab.parentOf(node) as string;
    const lower = [...racks, ...sites.map((s) => s.spine)];
    await Promise.all([...lower, this.top].map((n) => enableL4Hashing(lab, n)));
    // Both ends of each router's link up, read once.
    const ends = new Map(await Promise.all(lower.map(async (n) => [n, await linkEnds(lab, n, parent(n))] as const)));
    const end = (n: string) => ends.get(n) as Awaited<ReturnType<typeof linkEnds>>;
    const below = (router: string) =>
      lower.filter((n) => parent(n) === router).map((n) => ({ name: n, asn: asnOf.get(n) as number, ipv4: end(n).near.ipv4, ipv6: end(n).near.ipv6 }));
    const uplink = (n: string) => ({ name: parent(n), asn: asnOf.get(parent(n)) as number, ipv4: end(n).far.ipv4, ipv6: end(n).far.ipv6 });

    const tors = racks.map((rack) => {
      const hosts = hostList
        .filter((h) => h.lab.rack === rack)
        .map((h) => ({ name: h.name, asn: hostAsn(specs.findIndex((x) => x.name === h.name)), ipv4: h.lab.underlayIp, ipv6: h.lab.underlayIp6, bfd: o.bfd }));
      const conf = renderTorConf({
        name: rack,
        routerId: end(rack).near.ipv4,
        asn: asnOf.get(rack) as number,
        uplink: uplink(rack),
        hosts,
        originate: o.originate?.[rack] ?? [],
      });
      return async () => void this.tors.set(rack, await startBird(lab, rack, conf, { name: 'tor' }));
    });
    const spines = sites.map((s) => {
      const conf = renderSpineConf({ name: s.spine, routerId: end(s.spine).near.ipv4, asn: s.asn, uplink: uplink(s.spine), racks: below(s.spine) });
      return async () => void this.spines.set(s.spine, await startBird(lab, s.spine, conf, { name: 'spine' }));
    });
    const downs = below(this.top);
    // The top router's id: its own address on its first link down, so no two peers share one.
    const topId = end((downs[0] as { name: string }).name).far.ipv4;
    const topConf =
      this.top === WAN ? renderWanConf({ routerId: topId, asn: CORE_ASN, spines: downs }) : renderCoreConf({ routerId: topId, asn: CORE_ASN, racks: downs });
    const top = async () => {
      this.core = await startBird(lab, this.top, topConf, { name: this.top });
    };
    // The client: outside every rack and site, behind the top router.
    await Promise.all([pool(8, [...tors, ...spines, top]), this.makeClient()]);
    o.progress?.(`${tors.length + spines.length + 1} fabric BIRDs started, the client behind ${this.top}`);

    await pool(
      8,
      hostList.map((h) => async () => {
        const bird = await startBird(lab, h.name, `router id ${h.lab.underlayIp};\nprotocol device {}\n`, { name: 'host' });
        this.birds.set(h.name, bird);
        // One session per family, as the ToR has.
        for (const neighbor of [h.lab.gatewayIp, h.lab.gatewayIp6])
          await this.api.post('/v1/peers', { host: h.name, neighbor, remoteAsn: asnOf.get(h.lab.rack), bfd: o.bfd === true, ...o.peer?.(h.name) });
        this.overlay.agentArgs.set(h.name, [
          '--bird-socket',
          bird.socket,
          '--bird-conf',
          bird.confPath,
          '--bfd-interval',
          '100',
          ...(o.agentFlags?.(h.name, this.overlay.dir) ?? []),
        ]);
      }),
    );
    o.progress?.(`${hostList.length} host BIRDs started, ${2 * hostList.length} peers in the API`);
    // Four at a time: each start is CPU-bound (node and its TypeScript loader), and each has its own 30 s to connect.
    await pool(
      4,
      hostList.map((h) => () => this.overlay.startAgent(h.name)),
    );
    o.progress?.(`${hostList.length} agents connected`);
  }

  private async makeClient(): Promise<void> {
    const { lab } = this.overlay;
    const ns = this.clientNs;
    // A lab node like any other (recorded and removed with the lab); it only needs a default route.
    await lab.addRouter('client');
    await lab.link(lab.ns(this.top), ns, {
      ifA: 'client',
      ifB: 'eth0',
      addrA: [CLIENT.core4, CLIENT.core6],
      addrB: [CLIENT.client4, CLIENT.client6],
    });
    await lab.routes(ns, [
      ['default', CLIENT.core4.split('/')[0] as string],
      ['default', CLIENT.core6.split('/')[0] as string],
    ]);
  }

  /** Every fabric router's BIRD by node: ToRs, spines, the top router. */
  fabricBirds(): Map<string, BirdProcess> {
    return new Map([...this.tors, ...this.spines, ...(this.core ? [[this.top, this.core] as const] : [])]);
  }

  /** Waits until every BGP session of every fabric router (to hosts, racks, spines, the top) is Established, all routers at once. */
  async established(ms = 20_000): Promise<void> {
    await Promise.all(
      [...this.fabricBirds()].map(([node, bird]) =>
        until(
          `BGP sessions of ${node}`,
          async () => {
            const bgp = (await protocols(bird)).filter((p) => p.proto === 'BGP');
            return bgp.length > 0 && bgp.every((p) => p.info.startsWith('Established'));
          },
          ms,
        ),
      ),
    );
  }

  /** The routers between a rack and the client, bottom up: the ToR, its spine (a lab of sites), the top router. */
  pathUp(rack: string): string[] {
    const path = [rack];
    for (let n = this.overlay.lab.parentOf(rack); n !== undefined; n = this.overlay.lab.parentOf(n)) path.push(n);
    return path;
  }

  /** The next hops (gateway addresses) of the kernel route for `prefix` on router `router` (a rack, a spine, `core` or `wan`). */
  async nextHops(router: string, prefix: string): Promise<string[]> {
    return (await kernelRoute(this.overlay.lab, router, prefix)).map((h) => h.via).sort();
  }

  /**
   * An instance on routed network `network` placed on `host`, and its VM
   * namespace: the port's /32 and /128 on eth0, default routes via the
   * host's gateways (169.254.0.1 on-link, fe80::1).
   */
  async routedVm(name: string, o: { tenant: string; network: string; host: string }): Promise<RoutedVm> {
    const inst = await this.api.post<InstanceView>('/v1/instances', {
      tenant: o.tenant,
      name,
      site: this.overlay.host(o.host).site,
      host: o.host,
      size: 'small',
      image: EXAMPLE_IMAGE,
      ports: [{ network: o.network }],
    });
    const port = inst.ports[0] as PortView;
    const vm = await this.overlay.lab.addVm(o.host, {
      name,
      ifname: portIfname(port.id),
      mac: port.mac,
      ipv4: port.ipv4 ? `${port.ipv4}/32` : null,
      ipv6: port.ipv6 ? `${port.ipv6}/128` : null,
      mtu: 1500,
    });
    await this.gateways(vm.ns);
    const v = { name, instance: inst, port, ns: vm.ns };
    this.routed.set(name, v);
    return v;
  }

  /**
   * Live-migrates a routed VM: the API moves the instance (to host `to`, or
   * where placement picks), the lab switches its link over, its routes come
   * back. Returns the host it is on now.
   */
  async moveRouted(name: string, to?: string): Promise<string> {
    const v = this.routed.get(name);
    if (!v) throw notFound('routed vm', name);
    v.instance = await this.api.post<InstanceView>(`/v1/instances/${v.instance.id}/migrate`, to ? { target: to } : {});
    const host = this.overlay.hostName(v.instance.hostId);
    await this.overlay.lab.moveVm(name, host, portIfname(v.port.id));
    await this.gateways(v.ns);
    return host;
  }

  /** The prefixes router `router` routes through its link to `node` (a host of its rack, or a router below it). */
  routesVia(router: string, node: string): Promise<string[]> {
    return kernelRoutesVia(this.overlay.lab, router, node);
  }

  /** Host `name`'s two sessions (over IPv4, over IPv6) as its ToR sees them. */
  async hostSessions(name: string): Promise<BirdProtocol[]> {
    const tor = this.tors.get(this.overlay.host(name).lab.rack) as BirdProcess;
    const want = [hostProtocol(name, 4), hostProtocol(name, 6)];
    return (await protocols(tor)).filter((p) => want.includes(p.name));
  }

  /** Kills host `name`'s BIRD with SIGKILL (a crash: no session is closed, no route withdrawn) and waits until it is gone. */
  async killBird(name: string): Promise<void> {
    const b = this.birds.get(name);
    if (!b) throw notFound('BIRD on host', name);
    const p = b.process;
    if (p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }

  /**
   * Starts host `name`'s BIRD again (after `killBird`) on the config its agent
   * last wrote, as a host booting from its disk would, in a fresh directory;
   * the agent's next `OverlayLab.startAgent` is pointed at it. Stops the old
   * one first if it still runs.
   */
  async restartBird(name: string): Promise<void> {
    const old = this.birds.get(name);
    if (!old) throw notFound('BIRD on host', name);
    await old.stop();
    const bird = await startBird(this.overlay.lab, this.overlay.host(name).lab.ns, readFileSync(old.confPath, 'utf8'), { name: 'host' });
    this.birds.set(name, bird);
    const args = [...(this.overlay.agentArgs.get(name) ?? [])];
    for (const [flag, value] of [
      ['--bird-socket', bird.socket],
      ['--bird-conf', bird.confPath],
    ] as const) {
      const i = args.indexOf(flag);
      if (i >= 0) args[i + 1] = value;
      else args.push(flag, value);
    }
    this.overlay.agentArgs.set(name, args);
  }

  private async gateways(ns: string): Promise<void> {
    await this.overlay.lab.exec(ns, 'ip', ['-batch', '-'], {
      input: 'route add 169.254.0.1 dev eth0\nroute add default via 169.254.0.1 dev eth0\nroute add ::/0 via fe80::1 dev eth0\n',
    });
  }

  async destroy(): Promise<void> {
    for (const b of [...this.birds.values(), ...this.fabricBirds().values()]) await b.stop().catch(() => undefined);
    await this.overlay.destroy();
  }
}
