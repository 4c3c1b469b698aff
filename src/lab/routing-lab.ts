// A routed cloud for end-to-end tests: the overlay lab (real server, one
// real agent per host) plus BIRD everywhere: a ToR per rack (src/lab/fabric),
// the core, and one BIRD per host that the host's agent configures. A
// client namespace hangs off the core, outside every rack. destroy() removes it all.
import { readFileSync } from 'node:fs';
import { portIfname } from '../agent/names.js';
import { until } from '../sys/until.js';
import { type BirdProcess, type BirdProtocol, enableL4Hashing, kernelRoute, kernelRoutesVia, protocols, rackUplink, startBird } from './bird.js';
import { hostProtocol, type OriginateRoute, renderCoreConf, renderTorConf } from './fabric.js';
import { type InstanceView, OverlayLab, type PortView } from './overlay-lab.js';

export const CORE_ASN = 65000;
export const torAsn = (rackIndex: number): number => 65010 + rackIndex;
export const hostAsn = (n: number): number => 65101 + n;
/** The site's public pools: routed ports and VIPs come from here. */
export const PUBLIC4 = '203.0.113.0/25';
export const PUBLIC6 = '2001:db8:100::/48';
/** The client's link to the core (outside the site's pools). */
export const CLIENT = { core4: '203.0.113.254/31', client4: '203.0.113.255/31', core6: '2001:db8:ff::1/64', client6: '2001:db8:ff::2/64' };

export interface RoutingLabOptions {
  name: string;
  /** `[host, rack]`, as for OverlayLab. */
  hosts: [string, string][];
  /** Routes each rack's ToR sends its hosts besides the default routes. */
  originate?: Record<string, OriginateRoute[]>;
  /** BFD on every host <-> ToR session. */
  bfd?: boolean;
  /** Extra agent flags per host (e.g. --roa-file). */
  agentFlags?: (host: string, dir: string) => string[];
  /** The host peers (one per host, to its ToR); fields as the API takes them. */
  peer?: (host: string) => Record<string, unknown>;
}

export interface RoutedVm {
  name: string;
  instance: InstanceView;
  port: PortView;
  ns: string;
}

export class RoutingLab {
  readonly tors = new Map<string, BirdProcess>();
  readonly birds = new Map<string, BirdProcess>();
  core: BirdProcess | null = null;
  readonly clientNs: string;
  readonly routed = new Map<string, RoutedVm>();

  private constructor(readonly c: OverlayLab) {
    this.clientNs = c.lab.ns('client');
  }

  static async start(o: RoutingLabOptions): Promise<RoutingLab> {
    const c = await OverlayLab.start({
      name: o.name,
      hosts: o.hosts,
      site: { ipv4Pools: [PUBLIC4], ipv6Block: PUBLIC6 },
      hostAsn,
      startAgents: false,
    });
    const r = new RoutingLab(c);
    try {
      await r.fabric(o);
      return r;
    } catch (e) {
      await r.destroy();
      throw e;
    }
  }

  get api() {
    return this.c.api;
  }

  private async fabric(o: RoutingLabOptions): Promise<void> {
    const { lab } = this.c;
    const racks = [...new Set(o.hosts.map(([, r]) => r))];
    const hostList = [...this.c.hosts.values()];
    const coreRacks = [];
    for (const [i, rack] of racks.entries()) {
      const up = await rackUplink(lab, rack);
      await enableL4Hashing(lab, rack);
      const hosts = hostList
        .filter((h) => h.lab.rack === rack)
        .map((h) => ({ name: h.name, asn: hostAsn(o.hosts.findIndex(([n]) => n === h.name)), ipv4: h.lab.underlayIp, ipv6: h.lab.underlayIp6, bfd: o.bfd }));
      const conf = renderTorConf({
        name: rack,
        routerId: up.rack.ipv4,
        asn: torAsn(i),
        core: { asn: CORE_ASN, ipv4: up.core.ipv4, ipv6: up.core.ipv6 },
        hosts,
        originate: o.originate?.[rack] ?? [],
      });
      this.tors.set(rack, await startBird(lab, rack, conf, { name: 'tor' }));
      coreRacks.push({ name: rack, asn: torAsn(i), ipv4: up.rack.ipv4, ipv6: up.rack.ipv6 });
    }
    await enableL4Hashing(lab, 'core');
    this.core = await startBird(lab, 'core', renderCoreConf({ routerId: '192.0.2.254', asn: CORE_ASN, racks: coreRacks }), { name: 'core' });

    // The client: outside every rack, behind the core.
    await this.makeClient();

    for (const [n, h] of hostList.entries()) {
      const bird = await startBird(lab, h.name, `router id ${h.lab.underlayIp};\nprotocol device {}\n`, { name: 'host' });
      this.birds.set(h.name, bird);
      const rackIdx = racks.indexOf(h.lab.rack);
      // One session per family, as the ToR has.
      for (const neighbor of [h.lab.gatewayIp, h.lab.gatewayIp6])
        await this.api.post('/v1/peers', { host: h.name, neighbor, remoteAsn: torAsn(rackIdx), bfd: o.bfd === true, ...o.peer?.(h.name) });
      this.c.agentArgs.set(h.name, [
        '--bird-socket',
        bird.socket,
        '--bird-conf',
        bird.confPath,
        '--bfd-interval',
        '100',
        ...(o.agentFlags?.(h.name, this.c.dir) ?? []),
      ]);
      void n;
    }
    await Promise.all(hostList.map((h) => this.c.startAgent(h.name)));
  }

  private async makeClient(): Promise<void> {
    const { lab } = this.c;
    const ns = this.clientNs;
    // A lab node like any other (recorded and removed with the lab); it only needs a default route.
    await lab.addRouter('client');
    await lab.link(lab.ns('core'), ns, {
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

  /** Waits until every host's session to its ToR is Established on the ToR. */
  async established(ms = 20_000): Promise<void> {
    for (const [rack, tor] of this.tors) {
      const names = [...this.c.hosts.values()].filter((h) => h.lab.rack === rack).flatMap((h) => [`h_${h.name}`, `h_${h.name}_v6`]);
      await until(
        `sessions of ${rack}`,
        async () => {
          const ps = await protocols(tor);
          return names.every((n) => ps.find((p) => p.name === n)?.info.startsWith('Established'));
        },
        ms,
      );
    }
  }

  /** The next hops (gateway addresses) of the kernel route for `prefix` on router `router` (a rack or `core`). */
  async nextHops(router: string, prefix: string): Promise<string[]> {
    return (await kernelRoute(this.c.lab, router, prefix)).map((h) => h.via).sort();
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
      site: 'lab',
      host: o.host,
      size: 'small',
      ports: [{ network: o.network }],
    });
    const port = inst.ports[0] as PortView;
    const vm = await this.c.lab.addVm(o.host, {
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
    if (!v) throw new Error(`no routed vm ${name}`);
    v.instance = await this.api.post<InstanceView>(`/v1/instances/${v.instance.id}/migrate`, to ? { target: to } : {});
    const host = this.c.hostName(v.instance.hostId);
    await this.c.lab.moveVm(name, host, portIfname(v.port.id));
    await this.gateways(v.ns);
    return host;
  }

  /** The prefixes rack `rack`'s ToR (or `core`) routes through its link to `node` (a host of the rack, or a rack from the core). */
  routesVia(router: string, node: string): Promise<string[]> {
    return kernelRoutesVia(this.c.lab, router, node);
  }

  /** Host `name`'s two sessions (over IPv4, over IPv6) as its ToR sees them. */
  async hostSessions(name: string): Promise<BirdProtocol[]> {
    const tor = this.tors.get(this.c.host(name).lab.rack) as BirdProcess;
    const want = [hostProtocol(name, 4), hostProtocol(name, 6)];
    return (await protocols(tor)).filter((p) => want.includes(p.name));
  }

  /** Kills host `name`'s BIRD with SIGKILL (a crash: no session is closed, no route withdrawn) and waits until it is gone. */
  async killBird(name: string): Promise<void> {
    const b = this.birds.get(name);
    if (!b) throw new Error(`no bird on host ${name}`);
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
    if (!old) throw new Error(`no bird on host ${name}`);
    await old.stop();
    const bird = await startBird(this.c.lab, this.c.host(name).lab.ns, readFileSync(old.confPath, 'utf8'), { name: 'host' });
    this.birds.set(name, bird);
    const args = [...(this.c.agentArgs.get(name) ?? [])];
    for (const [flag, value] of [
      ['--bird-socket', bird.socket],
      ['--bird-conf', bird.confPath],
    ] as const) {
      const i = args.indexOf(flag);
      if (i >= 0) args[i + 1] = value;
      else args.push(flag, value);
    }
    this.c.agentArgs.set(name, args);
  }

  private async gateways(ns: string): Promise<void> {
    await this.c.lab.exec(ns, 'ip', ['-batch', '-'], {
      input: 'route add 169.254.0.1 dev eth0\nroute add default via 169.254.0.1 dev eth0\nroute add ::/0 via fe80::1 dev eth0\n',
    });
  }

  async destroy(): Promise<void> {
    for (const b of [...this.birds.values(), ...this.tors.values(), ...(this.core ? [this.core] : [])]) await b.stop().catch(() => undefined);
    await this.c.destroy();
  }
}
