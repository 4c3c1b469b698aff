// The host agent: follows the push stream for its host, keeps the desired
// state, and makes the kernel match it through a Dataplane: one reconcile at
// a time, coalescing deltas that arrive meanwhile; a version is acknowledged
// once a reconcile covering it has run. Failed steps are reported in metrics
// and retried with capped backoff after re-reading the kernel.

import type { LoggedChange, PortMapping } from '../model/changes.js';
import type { DesiredState, UnguardedPort } from '../stream/protocol.js';
import { type Log, quietLog } from '../sys/log.js';
import type { Dataplane, Op } from './dataplane/dataplane.js';
import { portIfname } from './names.js';
import { DEFAULT_ARP_RATE, DEFAULT_ND_RATE, type Desired, type DesiredOptions, desiredKernel } from './reconcile/desired.js';
import { KernelModel } from './reconcile/kernel-model.js';
import { PlanScratch, planPacked } from './reconcile/packed-plan.js';
import { AgentState } from './state/agent-state.js';

/**
 * Steps handed to the dataplane at a time: a full sync of 100k remote ports
 * is some 300k steps, and only this many exist as objects at once (the
 * LinuxDataplane batches the same number per round of processes).
 */
export const APPLY_CHUNK = 20_000;

export interface AgentOptions {
  hostId: string;
  dataplane: Dataplane;
  lazy?: boolean;
  arpRate?: number;
  ndRate?: number;
  /** Re-read the whole kernel this often and repair drift (default 60 s; 0 = never). */
  resyncMs?: number;
  log?: Log;
}

export interface AgentStats {
  reconciles: number;
  ops: Record<string, number>;
  failures: Record<string, number>;
  lastReconcileMs: number;
  waiting: number;
  /** Times a local port became unguarded (and so unplugged), by kind: its spec refused, or nft failed. */
  guardFailures: Record<UnguardedPort['kind'], number>;
}

/**
 * A full garbage collection, when the process exposes one (bin/weft runs
 * the agent with --expose-gc). After a burst (a snapshot arriving, a full
 * sync) an idle agent allocates nothing, so V8 would hold the burst's
 * garbage, and the memory under it, until its memory reducer gets round to
 * it, minutes later or never; collected, the pages go back to the system.
 */
const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});

export class Agent {
  readonly state: AgentState;
  /** The agent's model of what the kernel holds, kept up to date by its own applies. */
  current = new KernelModel();
  readonly stats: AgentStats = { reconciles: 0, ops: {}, failures: {}, lastReconcileMs: 0, waiting: 0, guardFailures: { refused: 0, failed: 0 } };
  /**
   * Local ports kept unplugged because their guard is not in place, by
   * ifname, as of the last reconcile: `refused` ones (the spec cannot be
   * rendered) until their record changes, `failed` ones (nft did not take
   * it) until a retry succeeds. A port is never plugged without its guard.
   */
  unguarded = new Map<string, UnguardedPort>();
  /** Called after a reconcile that changed `unguarded` (reports, tests). */
  onUnguarded: ((ports: UnguardedPort[]) => void) | null = null;
  private readonly opts: DesiredOptions;
  private readonly log: Log;
  private requested = 0;
  private done = 0;
  private looping = false;
  private waiters: { want: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private observed = false;
  private retryMs = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private resyncTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** The last stream version whose reconcile has run (the state's version may be ahead while it runs). */
  appliedVersion = 0;
  /**
   * Called after each reconcile with the steps that were applied (metrics,
   * tests); a reconcile of more than APPLY_CHUNK steps calls it once per
   * chunk, `stats.lastReconcileMs` then being the time so far.
   */
  onApplied: ((ops: Op[]) => void) | null = null;
  private scratch: PlanScratch;
  /** Ports of the snapshot being received so far. */
  private staged = 0;

  constructor(private readonly o: AgentOptions) {
    this.state = new AgentState(o.hostId);
    this.scratch = new PlanScratch(this.state);
    this.opts = { lazy: o.lazy ?? false, arpRate: o.arpRate ?? DEFAULT_ARP_RATE, ndRate: o.ndRate ?? DEFAULT_ND_RATE };
    this.log = o.log ?? quietLog;
    const every = o.resyncMs ?? 60_000;
    if (every > 0) {
      this.resyncTimer = setInterval(() => void this.resync(), every);
      this.resyncTimer.unref();
    }
  }

  /**
   * The stream handler (the StreamHandler contract): each call applies its
   * message to the state at once and returns a promise that resolves once a
   * reconcile covering that version has run; calls made while a reconcile
   * runs share the next one. It takes ownership of what it is given.
   */
  readonly handler = {
    snapshotBegin: (): void => {
      this.staged = 0;
      this.state.beginSnapshot();
    },
    snapshotPorts: (ports: PortMapping[]): void => {
      this.state.snapshotPorts(ports);
      // Each chunk's parsed ports, and the table's columns as it grows, are garbage once taken in.
      const before = this.staged;
      this.staged += ports.length;
      if (Math.floor(this.staged / APPLY_CHUNK) > Math.floor(before / APPLY_CHUNK)) collect();
    },
    snapshot: async (version: number, s: DesiredState): Promise<void> => {
      this.state.snapshot(version, s);
      // The state holds its own (packed) copies; let the stream's go now, not after the sync.
      s.ports.length = 0;
      if (this.state.ports.size >= APPLY_CHUNK) collect();
      await this.sync();
      this.appliedVersion = version;
    },
    delta: async (version: number, changes: LoggedChange[], vnis: number[]): Promise<void> => {
      this.state.delta(version, changes, vnis);
      await this.sync();
      this.appliedVersion = Math.max(this.appliedVersion, version);
    },
  };

  /** What the kernel should hold, as Maps (the reference the agent's packed planner agrees with; tests). */
  desired(): Desired {
    return desiredKernel(this.state, this.opts);
  }

  /**
   * Makes the kernel match the desired state as it is when called; resolves
   * once a reconcile that started after the call has finished. Calls made
   * while a reconcile runs share the next one, so a burst of deltas costs one
   * or two passes. Rejects if the kernel could not be read at all.
   */
  sync(): Promise<void> {
    const want = ++this.requested;
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ want, resolve, reject }));
    if (!this.looping) void this.loop();
    return p;
  }

  private async loop(): Promise<void> {
    this.looping = true;
    while (this.done < this.requested) {
      const target = this.requested;
      let error: Error | null = null;
      try {
        // Garbage of a full sync is given back once its plan is gone too.
        if ((await this.pass()) > APPLY_CHUNK) collect();
      } catch (e) {
        error = e as Error;
        this.observed = false;
        this.log.warn('reconcile failed', { error: error.message });
        this.scheduleRetry();
      }
      this.done = target;
      const settled = this.waiters.filter((w) => w.want <= target);
      this.waiters = this.waiters.filter((w) => w.want > target);
      for (const w of settled) error ? w.reject(error) : w.resolve();
    }
    this.looping = false;
  }

  /** Forgets the model and re-reads the kernel before the next reconcile (drift, failures). */
  async resync(): Promise<void> {
    this.observed = false;
    await this.sync().catch((e) => this.log.warn('resync failed', { error: (e as Error).message }));
  }

  /** The host's port interfaces changed (the hypervisor added or removed one). */
  linksChanged(links: Set<string>): Promise<void> {
    this.o.dataplane.linksChanged?.();
    for (const l of this.current.links) if (!links.has(l)) this.dropLink(l);
    this.current.links = links;
    return this.sync();
  }

  private dropLink(ifname: string): void {
    const p = this.current.plugs.get(ifname);
    if (p) this.current.apply({ op: 'port.unplug', plug: p });
  }

  /** One reconcile; returns the number of steps it planned. */
  private async pass(): Promise<number> {
    if (this.stopped) return 0;
    if (!this.observed) {
      const dp = this.o.dataplane;
      let model = new KernelModel();
      if (dp.observeInto) await dp.observeInto(model);
      else model = KernelModel.from(await dp.observe());
      this.current = model;
      this.observed = true;
      // Reading a big kernel leaves its dumps' garbage behind.
      if (model.fdb.size + model.neigh.size > APPLY_CHUNK) collect();
    }
    const t0 = performance.now();
    const p = planPacked(this.state, this.opts, this.current, this.scratch);
    this.stats.waiting = p.waiting.length;
    const unguarded = new Map<string, UnguardedPort>();
    for (const [ifname, r] of p.refused) unguarded.set(ifname, { portId: r.portId, ifname, kind: 'refused', reason: r.reason });
    if (p.total === 0) {
      this.setUnguarded(unguarded);
      return 0;
    }
    let failures = 0;
    let firstError: string | undefined;
    let ops: Op[] = [];
    /** Ports whose guard.set failed (nft did not take a spec the agent could render), with why. */
    const guardFailed = new Map<string, string>();
    while (!p.done) {
      // A full sync: the last chunk's steps and batch text go before the next chunk's are made.
      if (ops.length > 0) {
        ops = [];
        collect();
      }
      ops = p.take(APPLY_CHUNK);
      const res = await this.o.dataplane.apply({ ops, waiting: p.waiting });
      for (const f of res.failed) if (f.op.op === 'guard.set') guardFailed.set(f.op.port.ifname, f.error);
      firstError ??= res.failed[0]?.error;
      this.stats.lastReconcileMs = performance.now() - t0;
      if (p.done) this.stats.reconciles++;
      failures += this.took(ops, res.failed);
    }
    if (guardFailed.size > 0) {
      // The dataplane did not plug these ports; one plugged before has the guard of what it
      // was (another MAC or address, maybe another port's by now), not of what it is: unplug it.
      const unplug: Op[] = [];
      for (const ifname of guardFailed.keys()) {
        const plug = this.current.plugs.get(ifname);
        if (plug) unplug.push({ op: 'port.unplug', plug });
      }
      if (unplug.length > 0) {
        const res = await this.o.dataplane.apply({ ops: unplug, waiting: [] });
        failures += this.took(unplug, res.failed);
        firstError ??= res.failed[0]?.error;
      }
      const ids = new Map<string, string>();
      for (const port of this.state.localPorts()) ids.set(portIfname(port.portId), port.portId);
      for (const [ifname, reason] of guardFailed) unguarded.set(ifname, { portId: ids.get(ifname) ?? '', ifname, kind: 'failed', reason });
    }
    this.setUnguarded(unguarded);
    if (failures > 0) {
      this.log.warn('dataplane steps failed; retrying', { failed: failures, first: firstError });
      // The model may be wrong where steps failed: re-read the kernel before retrying.
      this.observed = false;
      this.scheduleRetry();
    } else this.retryMs = 0;
    return p.total;
  }

  /** Takes an applied chunk into the model and the stats; returns how many of its steps failed. */
  private took(ops: Op[], failedSteps: { op: Op }[]): number {
    const failed = new Set(failedSteps.map((f) => f.op));
    for (const op of ops) {
      if (failed.has(op)) continue;
      this.current.apply(op);
      this.stats.ops[op.op] = (this.stats.ops[op.op] ?? 0) + 1;
    }
    for (const f of failedSteps) this.stats.failures[f.op.op] = (this.stats.failures[f.op.op] ?? 0) + 1;
    this.onApplied?.(failed.size > 0 ? ops.filter((op) => !failed.has(op)) : ops);
    return failedSteps.length;
  }

  /** The unguarded ports after a reconcile: counts the ones that just became so, logs them, tells onUnguarded of a change. */
  private setUnguarded(next: Map<string, UnguardedPort>): void {
    const before = this.unguarded;
    let changed = before.size !== next.size;
    for (const [ifname, u] of next) {
      const was = before.get(ifname);
      if (was && was.kind === u.kind && was.reason === u.reason && was.portId === u.portId) continue;
      changed = true;
      if (was?.kind !== u.kind) {
        this.stats.guardFailures[u.kind]++;
        this.log.warn('port left unplugged: its guard is not in place', { port: u.portId, ifname, kind: u.kind, reason: u.reason });
      }
    }
    for (const ifname of before.keys()) if (!next.has(ifname)) changed = true;
    this.unguarded = next;
    if (changed) this.onUnguarded?.(this.unguardedPorts());
  }

  /** The unguarded ports, by port id. */
  unguardedPorts(): UnguardedPort[] {
    return [...this.unguarded.values()].sort((a, b) => (a.portId < b.portId ? -1 : a.portId > b.portId ? 1 : 0));
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryMs = Math.min(Math.max(this.retryMs * 2, 200), 10_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.sync().catch((e) => this.log.warn('retry failed', { error: (e as Error).message }));
    }, this.retryMs);
    this.retryTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.resyncTimer) clearInterval(this.resyncTimer);
  }
}
