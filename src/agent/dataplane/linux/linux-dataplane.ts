// The Dataplane on a real Linux kernel: observe through iproute2's JSON,
// apply a plan as a few batches fed to one long-lived `ip -batch` and one
// `bridge -batch` process (and `nft -f` for guards), so a delta starts no
// process at all and a full sync costs a handful. The only code that writes
// the kernel for the agent: lazy-mode entries, the routed ports' host side
// and the `ip monitor` watches are here too.
import { WeftError } from '../../../model/errors.js';
import { run as defaultRun, type Runner } from '../../../sys/exec.js';
import { PORT_PREFIX } from '../../names.js';
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
    const setGuards = async () => {
      if (r.guardsSet.length === 0) return;
      try {
        await this.guards.apply({ add: r.guardsSet.map((g) => g.port), remove: [] });
      } catch (e) {
        for (const g of r.guardsSet) bad.set(g.op, (e as Error).message);
      }
    };
    // Guards go before the plugs they protect. A plan with no plug (a port whose interface
    // is not there yet) sets them after the entries: an nft run (tens to hundreds of ms)
    // then does not hold back the other ports' forwarding entries.
    const devices = hasLines(plan, 'links');
    if (devices) await setGuards();
    if (await this.batch(this.ip, plan, 'links', bad)) {
      // Interfaces were made or deleted: iproute2's cache of their indexes is stale
      // (bridge 6.1 then sends the old index of a re-made device: "unknown ifindex").
      this.linksChanged();
    }
    await this.batch(this.bridge, plan, 'fdb', bad);
    await this.batch(this.ip, plan, 'neigh', bad);
    if (!devices) await setGuards();
    if (r.guardsDel.length > 0) {
      try {
        await this.guards.apply({ add: [], remove: r.guardsDel.map((g) => g.ifname) });
      } catch (e) {
        for (const g of r.guardsDel) bad.set(g.op, (e as Error).message);
      }
    }
    if (r.announce.length > 0 && this.o.announce !== false) {
      // Announcements are best effort: a lost GARP is repaired by the control plane anyway.
      await sendAnnouncements(this.run, r.announce, this.o.netns).catch((e) => {
        for (const a of r.announce) bad.set(a.op, (e as Error).message);
      });
    }
    const failed: ApplyResult['failed'] = [];
    for (const [i, error] of bad) {
      const op = plan.ops[i];
      if (op) failed.push({ op, error });
    }
    return { failed };
  }

  /** Runs one batch of the plan, if it has lines; returns whether it had. A failure restarts the process. */
  private async batch(tool: BatchProcess, plan: Plan, name: BatchName, bad: Map<number, string>): Promise<boolean> {
    if (!hasLines(plan, name)) return false;
    const input = new BatchInput(plan, name);
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
