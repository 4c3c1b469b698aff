// The Dataplane on a real Linux kernel: observe through iproute2's JSON,
// apply a plan as a few batches (`ip -batch`, `bridge -batch`, `nft -f`),
// so a full sync costs a handful of processes rather than one per entry.
import { run as defaultRun, type Runner } from '../../../sys/exec.js';
import type { ApplyResult, Dataplane, KernelState, Plan } from '../dataplane.js';
import { sendAnnouncements } from './announce.js';
import { NftGuards } from './guards-nft.js';
import { parseObserved } from './observe.js';
import { batchFailures, type Line, render } from './render.js';

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
    const [links, fdb, neigh, guards] = await Promise.all([
      this.run('ip', [...this.ns, '-j', '-d', 'link', 'show']),
      this.run('bridge', [...this.ns, '-j', 'fdb', 'show']),
      this.run('ip', [...this.ns, '-j', 'neigh', 'show', 'nud', 'permanent']),
      this.guards.observe(),
    ]);
    const s = parseObserved(links.stdout, fdb.stdout, neigh.stdout);
    for (const [ifname, hash] of guards) s.guards.set(ifname, hash);
    return s;
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
    await this.batch('ip', r.links, bad);
    await this.batch('bridge', r.fdb, bad);
    await this.batch('ip', r.neigh, bad);
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
    return {
      failed: [...bad].flatMap(([i, error]) => {
        const op = plan.ops[i];
        return op ? [{ op, error }] : [];
      }),
    };
  }

  private async batch(tool: 'ip' | 'bridge', lines: Line[], bad: Map<number, string>): Promise<void> {
    if (lines.length === 0) return;
    const input = `${lines.map((l) => l.text).join('\n')}\n`;
    const res = await this.run(tool, [...this.ns, '-force', '-batch', '-'], { input, okCodes: [1, 2, 255] });
    if (res.code === 0) return;
    const failures = batchFailures(lines, res.stderr);
    for (const f of failures) if (!bad.has(f.line.op)) bad.set(f.line.op, f.error);
  }
}
