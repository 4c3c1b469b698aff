// The host agent: follows the push stream for its host, keeps the desired
// state, and makes the kernel match it through a Dataplane: one reconcile at
// a time, coalescing deltas that arrive meanwhile; a version is acknowledged
// once a reconcile covering it has run. Failed steps are reported in metrics
// and retried with capped backoff after re-reading the kernel.
import type { LoggedChange } from '../model/changes.js';
import { AgentState } from '../stream/agent-state.js';
import type { DesiredState } from '../stream/protocol.js';
import { type Dataplane, emptyKernelState, type KernelState, type Op } from './dataplane/dataplane.js';
import { DEFAULT_ARP_RATE, DEFAULT_ND_RATE, type Desired, type DesiredOptions, desiredKernel } from './reconcile/desired.js';
import { applyToState, plan } from './reconcile/plan.js';

export interface AgentLog {
  info(msg: string, ctx?: Record<string, unknown>): void;
  warn(msg: string, ctx?: Record<string, unknown>): void;
}

export interface AgentOptions {
  hostId: string;
  dataplane: Dataplane;
  lazy?: boolean;
  arpRate?: number;
  ndRate?: number;
  /** Re-read the whole kernel this often and repair drift (default 60 s; 0 = never). */
  resyncMs?: number;
  log?: AgentLog;
}

export interface AgentStats {
  reconciles: number;
  ops: Record<string, number>;
  failures: Record<string, number>;
  lastReconcileMs: number;
  waiting: number;
}

const quiet: AgentLog = { info() {}, warn() {} };

export class Agent {
  readonly state: AgentState;
  /** The agent's model of what the kernel holds, kept up to date by its own applies. */
  current: KernelState = emptyKernelState();
  readonly stats: AgentStats = { reconciles: 0, ops: {}, failures: {}, lastReconcileMs: 0, waiting: 0 };
  private readonly opts: DesiredOptions;
  private readonly log: AgentLog;
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
  /** Called after each reconcile with the steps that were applied (metrics, tests). */
  onApplied: ((ops: Op[]) => void) | null = null;

  constructor(private readonly o: AgentOptions) {
    this.state = new AgentState(o.hostId);
    this.opts = { lazy: o.lazy ?? false, arpRate: o.arpRate ?? DEFAULT_ARP_RATE, ndRate: o.ndRate ?? DEFAULT_ND_RATE };
    this.log = o.log ?? quiet;
    const every = o.resyncMs ?? 60_000;
    if (every > 0) {
      this.resyncTimer = setInterval(() => void this.resync(), every);
      this.resyncTimer.unref();
    }
  }

  /** The stream handler: each call resolves once the kernel holds that version. It takes ownership of what it is given. */
  readonly handler = {
    snapshot: async (version: number, s: DesiredState): Promise<void> => {
      this.state.snapshot(version, s);
      // The state holds its own (interned) copies; let the stream's go now, not after the sync.
      s.ports.length = 0;
      await this.sync();
      this.appliedVersion = version;
    },
    delta: async (version: number, changes: LoggedChange[], vnis: number[]): Promise<void> => {
      this.state.delta(version, changes, vnis);
      await this.sync();
      this.appliedVersion = version;
    },
  };

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
        await this.pass();
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
    for (const l of this.current.links) if (!links.has(l)) this.dropLink(l);
    this.current.links = links;
    return this.sync();
  }

  private dropLink(ifname: string): void {
    const p = this.current.plugs.get(ifname);
    if (p) applyToState(this.current, { op: 'port.unplug', plug: p });
  }

  private async pass(): Promise<void> {
    {
      if (this.stopped) return;
      if (!this.observed) {
        this.current = await this.o.dataplane.observe();
        this.observed = true;
      }
      const t0 = performance.now();
      const desired = this.desired();
      const p = plan(desired, this.current);
      this.stats.waiting = p.waiting.length;
      if (p.ops.length === 0) return;
      const res = await this.o.dataplane.apply(p);
      const failed = new Set(res.failed.map((f) => f.op));
      for (const op of p.ops) {
        if (failed.has(op)) continue;
        applyToState(this.current, op);
        this.stats.ops[op.op] = (this.stats.ops[op.op] ?? 0) + 1;
      }
      this.stats.reconciles++;
      this.stats.lastReconcileMs = performance.now() - t0;
      this.onApplied?.(p.ops.filter((op) => !failed.has(op)));
      if (res.failed.length > 0) {
        for (const f of res.failed) this.stats.failures[f.op.op] = (this.stats.failures[f.op.op] ?? 0) + 1;
        this.log.warn('dataplane steps failed; retrying', { failed: res.failed.length, first: res.failed[0]?.error });
        // The model may be wrong where steps failed: re-read the kernel before retrying.
        this.observed = false;
        this.scheduleRetry();
      } else this.retryMs = 0;
    }
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
