// The Dataplane on a real Linux kernel: observe through iproute2's JSON,
// apply a plan as a few batches (`ip -batch`, `bridge -batch`, `nft -f`),
// so a full sync costs a handful of processes rather than one per entry.
import { WeftError } from '../../../model/errors.js';
import { run as defaultRun, type Runner } from '../../../sys/exec.js';
import { type ApplyResult, type Dataplane, emptyKernelState, type KernelEntries, type KernelState, kernelEntries, type Plan } from '../dataplane.js';
import { sendAnnouncements } from './announce.js';
import { NftGuards } from './guards-nft.js';
import { JsonItems } from './json-items.js';
import { type JFdb, type JNeigh, ObservedParser, parseObserved } from './observe.js';
import { BatchInput, type BatchName, hasLines, render } from './render.js';

/** Steps per batch round (each round is at most five processes: nft, ip, bridge, ip, nft). */
export const CHUNK = 20_000;

export interface LinuxDataplaneOptions {
  run?: Runner;
  /** Work on this named network namespace instead of the agent's own (tests, the lab). */
  netns?: string;
  /** Send gratuitous ARP / unsolicited NA for ports that become local (default true). */
  announce?: boolean;
}

export class LinuxDataplane implements Dataplane {
  private readonly run: Runner;
  private readonly ns: string[];
  readonly guards: NftGuards;

  constructor(private readonly o: LinuxDataplaneOptions = {}) {
    this.run = o.run ?? defaultRun;
    this.ns = o.netns ? ['-n', o.netns] : [];
    this.guards = new NftGuards(this.run, o.netns);
  }

  async observe(): Promise<KernelState> {
    const s = emptyKernelState();
    await this.observeInto(kernelEntries(s));
    return s;
  }

  /** The dumps are parsed an entry at a time, straight into `into`. */
  async observeInto(into: KernelEntries): Promise<void> {
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
    if (r.guardsSet.length > 0) {
      try {
        await this.guards.apply({ add: r.guardsSet.map((g) => g.port), remove: [] });
      } catch (e) {
        for (const g of r.guardsSet) bad.set(g.op, (e as Error).message);
      }
    }
    await this.batch('ip', plan, 'links', bad);
    await this.batch('bridge', plan, 'fdb', bad);
    await this.batch('ip', plan, 'neigh', bad);
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

  private async batch(tool: 'ip' | 'bridge', plan: Plan, name: BatchName, bad: Map<number, string>): Promise<void> {
    if (!hasLines(plan, name)) return;
    const input = new BatchInput(plan, name);
    const res = await this.run(tool, [...this.ns, '-force', '-batch', '-'], { input: input.text(), okCodes: [1, 2, 255] });
    if (res.code === 0) return;
    for (const f of input.failures(res.stderr)) if (!bad.has(f.op)) bad.set(f.op, f.error);
  }
}
