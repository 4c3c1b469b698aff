// The Dataplane on a real Linux kernel: observe through iproute2's JSON,
// apply a plan as a few batches fed to one long-lived `ip -batch` and one
// `bridge -batch` process (and `nft -f` for guards), so a delta starts no
// process at all and a full sync costs a handful. The only code that writes
// the kernel for the agent: lazy-mode entries, the routed ports' host side
// and the `ip monitor` watches are here too.
import { WeftError } from '../../../model/errors.js';
import { run as defaultRun, type Runner } from '../../../sys/exec.js';
import { bridgeName, PORT_PREFIX } from '../../names.js';
import {
  type ApplyResult,
  type Dataplane,
  emptyKernelState,
  type KernelEntries,
  type KernelState,
  kernelEntries,
  type LazyEntry,
  type LazyKey,
  type Miss,
  type Op,
  type Plan,
  type RoutedPortNet,
  type VipNat,
  type Watch,
} from '../dataplane.js';
import { sendAnnouncements } from './announce.js';
import { type BatchProcess, IprouteBatch, OneShotBatch } from './batch-process.js';
import { NftGuards } from './guards-nft.js';
import { JsonItems } from './json-items.js';
import { LazyEntries } from './lazy-entries.js';
import { watchMonitor } from './monitor.js';
import { type JFdb, type JNeigh, ObservedParser, parseObserved } from './observe.js';
import { BatchInput, type BatchName, hasLines, render } from './render.js';
import { RoutedPorts } from './routed-ports.js';

/** Steps per batch round (each round is at most three batches and two nft runs). */
export const CHUNK = 20_000;

export interface LinuxDataplaneOptions {
  /** Runs observations, nft and announcements; given alone (unit tests), batches run through it too, a process each. */
  run?: Runner;
  /** The batch processes (default: long-lived `ip` and `bridge` processes, IprouteBatch). */
  batches?: (tool: 'ip' | 'bridge') => BatchProcess;
  /** Work on this named network namespace instead of the agent's own (tests, the lab). */
  netns?: string;
  /** Send gratuitous ARP / unsolicited NA for ports that become local (default true). */
  announce?: boolean;
}

export class LinuxDataplane implements Dataplane {
  private readonly run: Runner;
  private readonly ns: string[];
  readonly guards: NftGuards;
  private readonly ip: BatchProcess;
  private readonly bridge: BatchProcess;
  /** The routed ports' interfaces and their nftables table (applyRouted). */
  readonly routed: RoutedPorts;
  private readonly lazy: LazyEntries;

  constructor(private readonly o: LinuxDataplaneOptions = {}) {
    this.run = o.run ?? defaultRun;
    this.ns = o.netns ? ['-n', o.netns] : [];
    this.guards = new NftGuards(this.run, o.netns);
    const batches =
      o.batches ??
      (o.run ? (tool: 'ip' | 'bridge') => new OneShotBatch(tool, this.run, o.netns) : (tool: 'ip' | 'bridge') => new IprouteBatch(tool, { netns: o.netns }));
    this.ip = batches('ip');
    this.bridge = batches('bridge');
    this.routed = new RoutedPorts({ run: this.run, netns: o.netns });
    this.lazy = new LazyEntries(this.run, o.netns);
  }

  /**
   * Interfaces may have been deleted and made again under the same names
   * (the hypervisor's port interfaces, or by hand): the next batches run in
   * fresh processes, whose name -> index cache is empty.
   */
  linksChanged(): void {
    this.ip.restart();
    this.bridge.restart();
  }

  /** Ends the batch processes (a later apply starts new ones). */
  close(): void {
    this.ip.close();
    this.bridge.close();
  }

  async observe(): Promise<KernelState> {
    const s = emptyKernelState();
    await this.observeInto(kernelEntries(s));
    return s;
  }

  /** The dumps are parsed an entry at a time, straight into `into`. */
  async observeInto(into: KernelEntries): Promise<void> {
    // The kernel is read after failures and to repair drift: whatever changed meanwhile, start the batches afresh.
    this.linksChanged();
    const [links, guards] = await Promise.all([this.run('ip', [...this.ns, '-j', '-d', 'link', 'show']), this.guards.observe()]);
    const p = new ObservedParser(into, links.stdout);
    await Promise.all([
      this.dump('bridge', [...this.ns, '-j', 'fdb', 'show'], (e) => p.fdb(e as JFdb)).then(() => p.fdbDone()),
      this.dump('ip', [...this.ns, '-j', 'neigh', 'show', 'nud', 'permanent'], (n) => p.neigh(n as JNeigh)),
    ]);
    for (const [ifname, hash] of guards) into.guards.set(ifname, hash);
  }

  /** Runs a tool whose output is a JSON array, handing over its items as they arrive. */
  private async dump(tool: string, args: string[], onItem: (item: unknown) => void): Promise<void> {
    const items = new JsonItems(onItem);
    let bad: Error | null = null;
    const take = (t: string) => {
      if (bad) return;
      try {
        items.write(t);
      } catch (e) {
        bad = e as Error;
      }
    };
    const r = await this.run(tool, args, { onStdout: take });
    // An injected runner may collect the output anyway.
    if (r.stdout) take(r.stdout);
    if (!bad) {
      try {
        items.end();
      } catch (e) {
        bad = e as Error;
      }
    }
    if (bad) throw new WeftError('E_DATAPLANE', `${tool} ${args.join(' ')}: unreadable output: ${(bad as Error).message}`);
  }

  /** Only the host-side port interfaces that exist (cheap: no entries are read). */
  async observeLinks(): Promise<Set<string>> {
    const r = await this.run('ip', [...this.ns, '-j', 'link', 'show']);
    return parseObserved(r.stdout, '', '').links;
  }

  /** `ip -o monitor link`: any output naming a port interface (`wp…`) is a change. */
  watchLinks(onChange: () => void): Watch {
    return watchMonitor(this.o.netns, ['-o', 'monitor', 'link'], (out) => {
      out.on('data', (b: Buffer) => {
        if (b.includes(PORT_PREFIX)) onChange();
      });
    });
  }

  /** `ip monitor neigh`, parsed by parseMiss. */
  watchMisses(onMiss: (m: Miss) => void): Watch {
    return this.lazy.watchMisses(onMiss);
  }

  /** `bridge fdb replace … self permanent`, then for l3 `ip neigh replace … nud permanent`, on `wvx<vni>`. */
  lazySet(entry: LazyEntry): Promise<void> {
    return this.lazy.set(entry);
  }

  /** One `ip -force -batch` of neighbour deletions, then one `bridge -force -batch` of VTEP entry deletions. */
  lazyDelete(keys: LazyKey[]): Promise<void> {
    return this.lazy.delete(keys);
  }

  /** `ip -batch` and `sysctl` for the ports that need it, then `nft -f` when the table changed (routed-ports.ts). */
  applyRouted(ports: RoutedPortNet[], vips: VipNat[]): Promise<Set<string>> {
    return this.routed.apply(ports, vips);
  }

  resetRouted(): void {
    this.routed.reset();
  }

  removeRouted(): Promise<void> {
    return this.routed.remove();
  }

  /**
   * Applies the plan in chunks of CHUNK steps, in order: a full sync of 100k
   * ports then never holds more than one chunk's batch text in memory.
   */
  async apply(plan: Plan): Promise<ApplyResult> {
    if (plan.ops.length <= CHUNK) return this.applyChunk(plan);
    const failed: ApplyResult['failed'] = [];
    for (let i = 0; i < plan.ops.length; i += CHUNK) {
      const r = await this.applyChunk({ ops: plan.ops.slice(i, i + CHUNK), waiting: [] });
      failed.push(...r.failed);
    }
    return { failed };
  }

  private async applyChunk(plan: Plan): Promise<ApplyResult> {
    const r = render(plan);
    const bad = new Map<number, string>();
    /** Steps not to run at all (each already in `bad`, or an announcement of a port left unplugged). */
    const skip = new Set<number>();
    const setGuards = async () => {
      if (r.guardsSet.length === 0) return;
      const refused = await this.guards.setEach(r.guardsSet.map((g) => g.port));
      if (refused.size === 0) return;
      const unguarded = new Map<string, string>();
      for (const [i, error] of refused) {
        const g = r.guardsSet[i];
        if (!g) continue;
        bad.set(g.op, error);
        unguarded.set(g.port.ifname, error);
      }
      holdBack(plan, unguarded, 'its guard is not in place', bad, skip);
    };
    // Guards go before the plugs (and static entries) they protect, and a port whose guard
    // failed is neither plugged nor pointed at. A plan with neither (a port whose interface
    // is not there yet) sets them after the entries: an nft run (tens to hundreds of ms)
    // then does not hold back the other ports' forwarding entries.
    const devices = hasLines(plan, 'links');
    const first = devices || plan.ops.some((o) => o.op === 'fdb.set' && o.dst.startsWith('@'));
    if (first) await setGuards();
    if (devices) await this.checkBridges(plan, bad, skip);
    const without = skip.size > 0 ? skip : undefined;
    if (await this.batch(this.ip, plan, 'links', bad, without)) {
      // Interfaces were made or deleted: iproute2's cache of their indexes is stale
      // (bridge 6.1 then sends the old index of a re-made device: "unknown ifindex").
      this.linksChanged();
    }
    await this.batch(this.bridge, plan, 'fdb', bad, without);
    await this.batch(this.ip, plan, 'neigh', bad, without);
    if (!first) await setGuards();
    if (r.guardsDel.length > 0) {
      try {
        await this.guards.apply({ add: [], remove: r.guardsDel.map((g) => g.ifname) });
      } catch (e) {
        for (const g of r.guardsDel) bad.set(g.op, (e as Error).message);
      }
    }
    const announce = r.announce.filter((a) => !skip.has(a.op));
    if (announce.length > 0 && this.o.announce !== false) {
      // Announcements are best effort: a lost GARP is repaired by the control plane anyway.
      await sendAnnouncements(this.run, announce, this.o.netns).catch((e) => {
        for (const a of announce) bad.set(a.op, (e as Error).message);
      });
    }
    const failed: ApplyResult['failed'] = [];
    for (const [i, error] of bad) {
      const op = plan.ops[i];
      if (op) failed.push({ op, error });
    }
    return { failed };
  }

  /**
   * Fails (and leaves out) each plug into a bridge that neither exists nor
   * is made by the plan: iproute2 exits on an unknown `master`, and the rest
   * of its batch would be lost. One `ip link show type bridge`, only for a
   * plan that plugs a port into a VNI it does not add.
   */
  private async checkBridges(plan: Plan, bad: Map<number, string>, skip: Set<number>): Promise<void> {
    const made = new Set<number>();
    const deleted = new Set<number>();
    const into = new Map<number, number[]>();
    plan.ops.forEach((o, i) => {
      if (o.op === 'vni.add') made.add(o.vni.vni);
      else if (o.op === 'vni.del') deleted.add(o.vni);
      else if (o.op === 'port.plug' && !skip.has(i)) {
        const list = into.get(o.plug.vni);
        if (list) list.push(i);
        else into.set(o.plug.vni, [i]);
      }
    });
    for (const vni of made) into.delete(vni);
    if (into.size === 0) return;
    let present: Set<string>;
    let why = 'does not exist';
    try {
      const out = await this.run('ip', [...this.ns, '-j', 'link', 'show', 'type', 'bridge']);
      present = new Set((JSON.parse(out.stdout || '[]') as { ifname?: unknown }[]).map((l) => String(l.ifname)));
    } catch (e) {
      present = new Set();
      why = `could not be checked (${(e as Error).message})`;
    }
    const missing = new Map<string, string>();
    for (const [vni, ops] of into) {
      const br = bridgeName(vni);
      if (present.has(br) && !deleted.has(vni)) continue;
      for (const i of ops) {
        const o = plan.ops[i] as Extract<Op, { op: 'port.plug' }>;
        const error = `port.plug ${o.plug.ifname}: bridge ${br} ${deleted.has(vni) ? 'is deleted by this plan' : why} (VNI ${vni} is not on this host)`;
        bad.set(i, error);
        skip.add(i);
        missing.set(o.plug.ifname, error);
      }
    }
    holdBack(plan, missing, 'it is not plugged', bad, skip, true);
  }

  /** Runs one batch of the plan, if it has lines; returns whether it had. A failure restarts the process. */
  private async batch(tool: BatchProcess, plan: Plan, name: BatchName, bad: Map<number, string>, skip?: ReadonlySet<number>): Promise<boolean> {
    if (!hasLines(plan, name, skip)) return false;
    const input = new BatchInput(plan, name, skip);
    const res = await tool.run(input.text());
    if (res.failed.length === 0 && res.lost === null) return true;
    const failed = input.failuresOf(res);
    for (const f of failed) if (!bad.has(f.op)) bad.set(f.op, f.error);
    // A failure may come from a stale interface index: the next batch gets a new process.
    // (Deletions of what was already gone are not failures.)
    if (failed.length > 0) tool.restart();
    return true;
  }
}

/**
 * Leaves out the steps that would put a port not plugged (or not guarded) to
 * use: its plug (unless `plugsDone`: already handled), the static FDB entries
 * pointing at it, and its announcement (best effort: not reported). Each
 * left-out step but the announcement fails with why.
 */
function holdBack(plan: Plan, ports: Map<string, string>, what: string, bad: Map<number, string>, skip: Set<number>, plugsDone = false): void {
  if (ports.size === 0) return;
  plan.ops.forEach((o, i) => {
    if (o.op === 'port.plug' && !plugsDone) {
      const why = ports.get(o.plug.ifname);
      if (why === undefined) return;
      bad.set(i, `port.plug ${o.plug.ifname}: not plugged: ${what}: ${why}`);
      skip.add(i);
    } else if (o.op === 'fdb.set' && o.dst.startsWith('@')) {
      const ifname = o.dst.slice(1);
      const why = ports.get(ifname);
      if (why === undefined || bad.has(i)) return;
      bad.set(i, `fdb.set ${o.mac} -> ${ifname}: not set: ${what}: ${why}`);
      skip.add(i);
    } else if (o.op === 'announce' && ports.has(o.ifname)) skip.add(i);
  });
}
