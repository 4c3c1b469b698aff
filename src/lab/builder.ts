// Builds a lab of network namespaces on one machine: hypervisor hosts joined
// by a routed underlay (host -> rack router -> core, or host -> rack router ->
// site spine -> WAN router), a management network reaching the root
// namespace, and VMs plugged into hosts by veth pairs.
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { capacity, conflict, invalid, notFound, show, WeftError } from '../model/errors.js';
import { type RunOptions, type RunResult, run } from '../sys/exec.js';
import {
  addrLine,
  addrOf,
  BASE_SYSCTLS,
  CORE,
  checkIfaceCidr,
  checkIfname,
  checkLabName,
  checkMac,
  checkMtu,
  checkNodeName,
  checkSlot,
  IF,
  MAX_P2P_LINKS,
  MGMT,
  mgmtHostCidr,
  mgmtPlan,
  nsName,
  p2pAddrs,
  ROUTER_SYSCTLS,
  rootLinkName,
  routeLine,
  UNDERLAY_MTU,
  VETH_INDEX_BASE,
  VM_SYSCTLS,
  vethLine,
  WAN,
} from './plan.js';
import { LabRegistry, reapStale } from './registry.js';

export interface Router {
  name: string;
  ns: string;
}

export interface Host {
  name: string;
  ns: string;
  /** The rack router this host hangs off. */
  rack: string;
  /** The spine the rack router hangs off (itself under the WAN router); null when racks hang off the core. */
  spine: string | null;
  /** The host's underlay (VTEP) address: its `ul0` IPv4 address. */
  underlayIp: string;
  underlayIp6: string;
  /** The rack router's end of `ul0`: the host's default gateways. */
  gatewayIp: string;
  gatewayIp6: string;
  /** The host's address on the management network (where it reaches `Lab.mgmtRootIp`). */
  mgmtIp: string;
}

export interface VmSpec {
  name: string;
  /** The host-side interface name, in the host's namespace (at most 15 characters). */
  ifname: string;
  mac: string;
  /** Interface address with prefix length, e.g. `10.0.0.5/24`. */
  ipv4: string | null;
  /** Interface address with prefix length, e.g. `fd00::5/64`. */
  ipv6: string | null;
  mtu: number;
}

export interface Vm extends VmSpec {
  ns: string;
  /** The host the VM's link is plugged into now. */
  host: string;
}

export interface LinkOptions {
  /** Interface names in namespace A and B. */
  ifA: string;
  ifB: string;
  /** Interface addresses (CIDR) on each end; IPv6 ones are added with `nodad`. */
  addrA?: string[];
  addrB?: string[];
  mtu?: number;
  /** Enslave end B to this bridge in namespace B. */
  masterB?: string;
}

/** A node of the lab (by name or handle), or any namespace by its full name. */
export type NsRef = string | { ns: string };
type NodeRef = string | { name: string };

const live = new Set<Lab>();
let exitHooked = false;

/**
 * One lab: every namespace, root link, process and file it makes is recorded
 * (see registry.ts) before it is made and removed by `destroy()`, by this
 * process's `exit` event if `destroy()` was never called, or by the next
 * `Lab.create` on the machine if this process dies. Topology methods may run
 * concurrently (names and addresses are allocated before any await).
 */
export class Lab {
  readonly name: string;
  /** The management slot: the root namespace holds 198.51.100.(64*slot)/26. */
  readonly slot: number;
  /** The root namespace's management address: where a server listens for agents in host namespaces. */
  readonly mgmtRootIp: string;
  /** The management subnet, e.g. `198.51.100.0/26`. */
  readonly mgmtSubnet: string;
  private readonly routerMap = new Map<string, Router>();
  private readonly hostMap = new Map<string, Host>();
  private readonly vmMap = new Map<string, Vm>();
  /** Host -> the addresses (CIDR) on its `ul0`: what setting it up again must restore. */
  private readonly underlays = new Map<string, { v4: string; v6: string }>();

  private readonly registry: LabRegistry;
  private readonly nodes = new Set<string>();
  private readonly routerP = new Map<string, Promise<Router>>();
  /** Router -> its joining to the router above it (resolves to the lower router's addresses on that link). */
  private readonly uplinks = new Map<string, Promise<{ v4: string; v6: string }>>();
  /** Router -> the router above it: rack -> spine or core, spine -> WAN. */
  private readonly parents = new Map<string, string>();
  /** Whether racks hang off the core or off spines: fixed by the first host. */
  private shape: 'core' | 'spines' | null = null;
  /** Underlay link indexes taken: hosts' from the bottom (or where asked), routers' from the top. */
  private readonly links = new Set<number>();
  private nextMgmt = 0;
  private nextIndex = VETH_INDEX_BASE;

  private constructor(registry: LabRegistry) {
    this.registry = registry;
    this.name = registry.name;
    this.slot = registry.slot;
    const m = mgmtPlan(this.slot);
    this.mgmtRootIp = m.rootIp;
    this.mgmtSubnet = m.subnet;
  }

  /**
   * Reaps labs of dead processes (`reapStale`), claims `name` (1..6 of
   * [a-z0-9]: the prefix of the lab's namespaces, `<name>-<node>`) and a
   * management slot (`slot`, or the first free one), and builds the
   * management network: namespace `<name>-mgmt` with a bridge, and link
   * `<name>m0` in the root namespace on its .1 (the only thing the lab adds
   * to the root namespace). Throws E_INVALID_ARG, E_CONFLICT (name or slot
   * taken, or a namespace of that name exists), E_CAPACITY (no free slot),
   * E_DATAPLANE; whatever it made by then is removed.
   */
  static async create(opts: { name: string; slot?: number }): Promise<Lab> {
    const name = checkLabName(opts.name);
    if (opts.slot !== undefined) checkSlot(opts.slot);
    reapStale();
    const lab = new Lab(LabRegistry.claim(name, { slot: opts.slot }));
    live.add(lab);
    if (!exitHooked) {
      exitHooked = true;
      process.on('exit', () => {
        for (const l of live) {
          try {
            l.registry.destroy();
          } catch {
            // left for reapStale in a later process
          }
        }
      });
    }
    try {
      await lab.makeMgmt();
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  /** How many namespaces the lab has made (routers, hosts, VMs, the management network). */
  nodeCount(): number {
    return this.nodes.size;
  }

  get routers(): ReadonlyMap<string, Router> {
    return this.routerMap;
  }

  get hosts(): ReadonlyMap<string, Host> {
    return this.hostMap;
  }

  get vms(): ReadonlyMap<string, Vm> {
    return this.vmMap;
  }

  /** The namespace of node `node` of this lab (it need not exist). */
  ns(node: string): string {
    return nsName(this.name, node);
  }

  /** A router: a namespace forwarding IPv4 and IPv6, lo up. Throws E_CONFLICT if the node exists. */
  addRouter(name: string): Promise<Router> {
    const fresh = !this.nodes.has(name);
    const p = (async () => {
      const ns = await this.makeNs(checkNodeName('name', name), ROUTER_SYSCTLS);
      const r = { name, ns };
      this.routerMap.set(name, r);
      return r;
    })();
    if (fresh) this.routerP.set(name, p);
    return p;
  }

  /**
   * A hypervisor host: namespace `<lab>-<name>` forwarding IPv4 and IPv6, lo
   * up; `ul0` to rack router `rack` on a point-to-point link (a /31 of
   * 192.0.2.0/24 and a /64 of 2001:db8::/48: underlay link `link`, or the
   * lowest free one), MTU 9000, default routes via the router; `mg0` on the
   * management network. The rack router is made on first use and joined to
   * `core`, or with `spine` to that spine (made, and joined to `wan`, on
   * first use); every link between routers has MTU 9000 too, takes the
   * highest free underlay link, and carries a default route up; each router
   * above the rack routes the host's link down. Every host reaches every
   * other host's underlay addresses. A lab's racks all hang off the core or
   * all off spines. Throws E_INVALID_ARG (names; a spine where the lab has
   * none or none where it has; a link out of range), E_CONFLICT (the node or
   * link exists; the rack hangs off another spine), E_CAPACITY past 128
   * links or 61 hosts.
   */
  async addHost(name: string, opts: { rack: string; spine?: string; link?: number }): Promise<Host> {
    checkNodeName('name', name);
    const rack = checkNodeName('rack', opts.rack);
    const spine = opts.spine === undefined ? null : checkNodeName('spine', opts.spine);
    for (const [field, v] of [
      ['rack', rack],
      ['spine', spine],
    ] as const)
      if (v === CORE || v === WAN || v === MGMT) throw invalid(field, v, `must not be ${show(v)}: the lab makes that node itself`);
    if (spine === rack) throw invalid('spine', spine, 'must differ from the rack');
    const shape = spine === null ? 'core' : 'spines';
    if (this.shape !== null && this.shape !== shape)
      throw invalid(
        'spine',
        opts.spine,
        this.shape === 'spines' ? "is required: this lab's racks hang off spines" : `must be absent: this lab's racks hang off ${CORE}`,
      );
    const up = spine ?? CORE;
    const parent = this.parents.get(rack);
    if (parent !== undefined && parent !== up) throw conflict(`router ${show(rack)} hangs off ${show(parent)}, not ${show(up)}`, 'rack');
    if (spine !== null && this.parents.has(spine) && this.parents.get(spine) !== WAN)
      throw conflict(`router ${show(spine)} is a rack router, not a spine`, 'spine');
    const ul = p2pAddrs(this.allocLink('host', opts.link));
    const mgmt = mgmtHostCidr(this.slot, this.nextMgmt++);
    this.shape = shape;
    // Each router above the rack, with its child's address on the link between them: the way down.
    const chain: Array<[router: string, down: Promise<{ v4: string; v6: string }>]> =
      spine === null
        ? [[CORE, this.join(rack, CORE)]]
        : [
            [spine, this.join(rack, spine)],
            [WAN, this.join(spine, WAN)],
          ];
    const [ns, downs] = await Promise.all([this.makeNs(name, ROUTER_SYSCTLS), Promise.all(chain.map(([, d]) => d))]);
    // The router takes side A (the even /31 address), so no host has a .0 address.
    const [me, gw] = [ul.b, ul.a];
    await Promise.all([
      this.link(ns, this.ns(rack), { ifA: IF.underlay, ifB: name, addrA: [me.v4, me.v6], addrB: [gw.v4, gw.v6], mtu: UNDERLAY_MTU }),
      this.link(ns, this.ns(MGMT), { ifA: IF.mgmt, ifB: name, addrA: [mgmt], masterB: IF.mgmtBridge }),
    ]);
    await Promise.all([
      this.routes(ns, [
        ['default', addrOf(gw.v4)],
        ['default', addrOf(gw.v6)],
      ]),
      ...chain.map(([router], i) => {
        const down = downs[i] as { v4: string; v6: string };
        return this.routes(this.ns(router), [
          [ul.prefix4, down.v4],
          [ul.prefix6, down.v6],
        ]);
      }),
    ]);
    const host: Host = {
      name,
      ns,
      rack,
      spine,
      underlayIp: addrOf(me.v4),
      underlayIp6: addrOf(me.v6),
      gatewayIp: addrOf(gw.v4),
      gatewayIp6: addrOf(gw.v6),
      mgmtIp: addrOf(mgmt),
    };
    this.hostMap.set(name, host);
    this.underlays.set(name, { v4: me.v4, v6: me.v6 });
    return host;
  }

  /**
   * A VM plugged into `host`: namespace `<lab>-<name>` (lo up, no IPv6
   * autoconfiguration or router advertisements) holding `eth0` with the
   * spec's MAC, MTU and addresses, up; its peer `ifname` in the host's
   * namespace, up and enslaved to nothing (the agent plugs it in). Throws
   * E_INVALID_ARG, E_NOT_FOUND (host), E_CONFLICT (node exists).
   */
  async addVm(host: NodeRef, spec: VmSpec): Promise<Vm> {
    const h = this.hostOf(host);
    const vm: Vm = { ...checkVmSpec(spec), ns: this.ns(spec.name), host: h.name };
    await this.makeNs(vm.name, VM_SYSCTLS);
    await this.plugVm(vm, h, IF.vm);
    await this.batch(vm.ns, [...vmAddrLines(vm), `link set ${IF.vm} up`]);
    this.vmMap.set(vm.name, vm);
    return vm;
  }

  /**
   * Moves `vm`'s link to `toHost` as a live migration's switch-over would,
   * with the shortest gap: makes the new pair first (`newIfname` in the
   * destination host, up; `eth0n` in the VM), then in one batch in the VM
   * deletes the old `eth0` (its host end goes with it), renames `eth0n` to
   * `eth0`, adds the addresses and sets it up. Returns the updated VM.
   */
  async moveVm(vm: NodeRef, toHost: NodeRef, newIfname: string): Promise<Vm> {
    const v = this.vmOf(vm);
    const h = this.hostOf(toHost);
    const ifname = checkIfname('newIfname', newIfname);
    await this.plugVm({ ...v, ifname }, h, IF.vmNext);
    await this.batch(v.ns, [`link del ${IF.vm}`, `link set ${IF.vmNext} name ${IF.vm}`, ...vmAddrLines(v), `link set ${IF.vm} up`]);
    v.host = h.name;
    v.ifname = ifname;
    return v;
  }

  /**
   * Sets `host`'s underlay link `ul0` down or up, as a cable pulled and put
   * back. Down, the kernel drops the link's IPv6 address and every route
   * through it; up puts back what `addHost` made (the IPv6 address, the
   * default routes). Idempotent. Throws E_NOT_FOUND for an unknown host.
   */
  async setUnderlay(host: NodeRef, up: boolean): Promise<void> {
    const h = this.hostOf(host);
    const a = this.underlays.get(h.name) as { v4: string; v6: string };
    if (!up) return this.batch(h.ns, [`link set ${IF.underlay} down`]);
    await this.batch(h.ns, [
      `link set ${IF.underlay} up`,
      `addr replace ${a.v4} dev ${IF.underlay}`,
      `addr replace ${a.v6} dev ${IF.underlay} nodad`,
      `route replace default via ${h.gatewayIp}`,
      `route replace ::/0 via ${h.gatewayIp6}`,
    ]);
  }

  /**
   * Joins namespaces `a` and `b` (nodes or namespace names) by a veth pair (`ifA` in A, `ifB` in B;
   * B's end made directly in B), adds the addresses, enslaves B's end to
   * `masterB` if given, and sets both ends up. Not idempotent: throws
   * E_DATAPLANE if a name is taken.
   */
  async link(a: NsRef, b: NsRef, o: LinkOptions): Promise<void> {
    const [nsA, nsB] = [this.nsOf(a), this.nsOf(b)];
    checkIfname('ifA', o.ifA);
    checkIfname('ifB', o.ifB);
    const mtu = o.mtu === undefined ? {} : { mtu: checkMtu('mtu', o.mtu) };
    await this.batch(nsA, [
      vethLine({ ifname: o.ifA, index: this.nextIndex++, ...mtu }, { ifname: o.ifB, index: this.nextIndex++, ...mtu }, nsB),
      ...(o.addrA ?? []).map((a) => addrLine(o.ifA, a)),
      `link set ${o.ifA} up`,
    ]);
    await this.batch(nsB, [
      ...(o.addrB ?? []).map((a) => addrLine(o.ifB, a)),
      ...(o.masterB ? [`link set ${o.ifB} master ${o.masterB}`] : []),
      `link set ${o.ifB} up`,
    ]);
  }

  /** Adds a route in `ns` to `prefix` (or `default`) via gateway `via` (IPv4 or IPv6). Throws E_DATAPLANE if it exists. */
  route(ns: NsRef, prefix: string, via: string): Promise<void> {
    return this.routes(ns, [[prefix, via]]);
  }

  /** Adds several routes `[prefix, via]` in `ns` in one batch. */
  async routes(ns: NsRef, list: Array<[prefix: string, via: string]>): Promise<void> {
    await this.batch(
      this.nsOf(ns),
      list.map(([prefix, via]) => routeLine(prefix, via)),
    );
  }

  /** Runs a command to completion inside a namespace: a node's (by name or handle) or any by its full name. Throws E_DATAPLANE on failure. */
  exec(ns: NsRef, cmd: string, args: string[], opts: Omit<RunOptions, 'netns'> = {}): Promise<RunResult> {
    return run(cmd, args, { ...opts, netns: this.nsOf(ns) });
  }

  /**
   * Starts a long-running process inside a namespace (`ip netns exec`, which
   * execs it under the same pid) and records its pid, so `destroy()` kills it.
   * Processes it forks inside the lab's namespaces are killed too.
   */
  spawn(ns: NsRef, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.nsOf(ns), cmd, ...args], opts);
    if (child.pid !== undefined) this.registry.addPid(child.pid);
    return child;
  }

  /** Records a process started elsewhere (a server in the root namespace) so that `destroy()`, or a later reap, kills it. */
  own(pid: number | undefined): void {
    if (pid !== undefined) this.registry.addPid(pid);
  }

  /** Records a file or directory for removal by `destroy()`; call it before creating the file. Returns the absolute path. */
  file(path: string): string {
    const abs = resolve(path);
    this.registry.addFile(abs);
    return abs;
  }

  /**
   * Removes everything the lab made (see `destroyLab`). Idempotent; the lab
   * cannot be used afterwards. Throws E_DATAPLANE naming what is left.
   */
  async destroy(): Promise<void> {
    live.delete(this);
    this.registry.destroy();
  }

  private async makeMgmt(): Promise<void> {
    const root = rootLinkName(this.name);
    if (existsSync(`/sys/class/net/${root}`)) throw conflict(`link ${show(root)} exists in the root namespace`, 'name');
    const ns = await this.makeNs(MGMT, []);
    this.registry.addLink(root);
    const m = mgmtPlan(this.slot);
    await this.batch(ns, [`link add ${IF.mgmtBridge} type bridge`, `link set ${IF.mgmtBridge} up`]);
    await run('ip', ['link', 'add', root, 'type', 'veth', 'peer', 'name', IF.mgmtRoot, 'netns', ns]);
    // No IPv6 on the root end: no link-local address or fe80::/64 route in the root namespace.
    disableIpv6(root);
    await Promise.all([
      run('ip', ['-batch', '-'], { input: `${addrLine(root, m.rootCidr)}\nlink set ${root} up\n` }),
      this.batch(ns, [`link set ${IF.mgmtRoot} master ${IF.mgmtBridge}`, `link set ${IF.mgmtRoot} up`]),
    ]);
    // The root end's index is the root namespace's to pick, so it may equal its
    // peer's (see VETH_INDEX_BASE): wait out the kernel's carrier batch if so.
    await Promise.all([waitUp(null, root), waitUp(ns, IF.mgmtRoot)]);
  }

  /** Records, creates and configures namespace `<lab>-<node>`: lo up, BASE_SYSCTLS and `sysctls`. */
  private async makeNs(node: string, sysctls: string[]): Promise<string> {
    checkNodeName('name', node);
    const ns = this.ns(node);
    if (this.nodes.has(node)) throw conflict(`lab node ${show(node)} exists`, 'name');
    // Never adopt (and later delete) a namespace this lab did not make.
    if (existsSync(`/run/netns/${ns}`)) throw conflict(`network namespace ${show(ns)} exists outside lab ${show(this.name)}`, 'name');
    this.nodes.add(node);
    this.registry.addNamespace(ns);
    await run('ip', ['netns', 'add', ns]);
    await Promise.all([run('sysctl', ['-qw', ...BASE_SYSCTLS, ...sysctls], { netns: ns }), this.batch(ns, ['link set lo up'])]);
    return ns;
  }

  /** The router above router `name` (a rack's spine or the core, a spine's WAN router); undefined for the top and for non-routers. */
  parentOf(name: string): string | undefined {
    return this.parents.get(name);
  }

  /**
   * Router `child`, made if needed, joined once to router `parent` (made if
   * needed; its interface is named after the child, the child's after it),
   * with default routes up; resolves to the child's addresses on that link.
   */
  private join(child: string, parent: string): Promise<{ v4: string; v6: string }> {
    let p = this.uplinks.get(child);
    if (!p) {
      const l = p2pAddrs(this.allocLink('router'));
      this.parents.set(child, parent);
      p = (async () => {
        const [c, up] = await Promise.all([this.router(child), this.router(parent)]);
        await this.link(c.ns, up.ns, { ifA: parent, ifB: child, addrA: [l.a.v4, l.a.v6], addrB: [l.b.v4, l.b.v6], mtu: UNDERLAY_MTU });
        await this.routes(c.ns, [
          ['default', addrOf(l.b.v4)],
          ['default', addrOf(l.b.v6)],
        ]);
        return { v4: addrOf(l.a.v4), v6: addrOf(l.a.v6) };
      })();
      this.uplinks.set(child, p);
    }
    return p;
  }

  /**
   * Takes an underlay link index: `want` (checked), or the lowest free one
   * for a host, the highest for a router link, so hosts' links stay
   * together at the bottom of 192.0.2.0/24 where site pools can hold them.
   */
  private allocLink(kind: 'host' | 'router', want?: number): number {
    if (want !== undefined) {
      if (!Number.isInteger(want) || want < 0 || want >= MAX_P2P_LINKS) throw invalid('link', want, `must be an integer 0..${MAX_P2P_LINKS - 1}`);
      if (this.links.has(want)) throw conflict(`underlay link ${want} is taken`, 'link');
      this.links.add(want);
      return want;
    }
    for (let i = 0; i < MAX_P2P_LINKS; i++) {
      const n = kind === 'host' ? i : MAX_P2P_LINKS - 1 - i;
      if (!this.links.has(n)) {
        this.links.add(n);
        return n;
      }
    }
    throw capacity(`no free underlay link: a lab has at most ${MAX_P2P_LINKS} point-to-point links`);
  }

  private router(name: string): Promise<Router> {
    return this.routerP.get(name) ?? this.addRouter(name);
  }

  /** Makes the pair `vm.ifname` (in host `h`, up) <-> `vmEnd` (in the VM, down) with the VM's MAC and MTU. */
  private async plugVm(vm: Vm, h: Host, vmEnd: string): Promise<void> {
    const near = { ifname: vm.ifname, index: this.nextIndex++, mtu: vm.mtu };
    const far = { ifname: vmEnd, index: this.nextIndex++, mtu: vm.mtu, mac: vm.mac };
    await this.batch(h.ns, [vethLine(near, far, vm.ns), `link set ${vm.ifname} up`]);
  }

  /** Runs `ip -n ns -batch -`; a failure names the failing line. */
  private async batch(ns: string, lines: string[]): Promise<void> {
    try {
      await run('ip', ['-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
    } catch (e) {
      const n = Number(/Command failed -:(\d+)/.exec((e as Error).message)?.[1]);
      const line = lines[n - 1];
      if (!line) throw e;
      const why = (e as Error).message.replace(/^.*?-batch -(?: \(netns \S+\))?: /, '');
      throw new WeftError('E_DATAPLANE', `ip -n ${ns} ${line}: ${why}`);
    }
  }

  /** A node's namespace; a string that is no node of this lab is taken as a namespace name. */
  private nsOf(ref: NsRef): string {
    if (typeof ref !== 'string') return ref.ns;
    return this.nodes.has(ref) ? this.ns(ref) : ref;
  }

  private hostOf(ref: NodeRef): Host {
    const name = typeof ref === 'string' ? ref : ref.name;
    const h = this.hostMap.get(name);
    if (!h) throw notFound('lab host', name);
    return h;
  }

  private vmOf(ref: NodeRef): Vm {
    const name = typeof ref === 'string' ? ref : ref.name;
    const v = this.vmMap.get(name);
    if (!v) throw notFound('lab VM', name);
    return v;
  }
}

function checkVmSpec(s: VmSpec): VmSpec {
  return {
    name: checkNodeName('name', s.name),
    ifname: checkIfname('ifname', s.ifname),
    mac: checkMac('mac', s.mac),
    ipv4: s.ipv4 === null ? null : checkIfaceCidr('ipv4', s.ipv4, 4),
    ipv6: s.ipv6 === null ? null : checkIfaceCidr('ipv6', s.ipv6, 6),
    mtu: checkMtu('mtu', s.mtu),
  };
}

function vmAddrLines(vm: Vm): string[] {
  return [vm.ipv4, vm.ipv6].filter((a): a is string => a !== null).map((a) => addrLine(IF.vm, a));
}

/** Turns IPv6 off on a root-namespace interface; a kernel without IPv6 has nothing to turn off. */
function disableIpv6(ifname: string): void {
  try {
    writeFileSync(`/proc/sys/net/ipv6/conf/${ifname}/disable_ipv6`, '1');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** Waits until an interface (in `ns`, or the root namespace) is operationally up. Throws E_DATAPLANE after 3 s. */
async function waitUp(ns: string | null, ifname: string): Promise<void> {
  const args = [...(ns ? ['-n', ns] : []), '-br', 'link', 'show', 'dev', ifname];
  const end = Date.now() + 3000;
  for (;;) {
    const { stdout } = await run('ip', args);
    if (/^\S+\s+UP\s/.test(stdout)) return;
    if (Date.now() > end) throw new WeftError('E_DATAPLANE', `link ${ifname}${ns ? ` (netns ${ns})` : ''} not up after 3 s: ${stdout.trim()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
