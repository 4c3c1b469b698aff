// Keeps a MappingIndex current: loads it from one consistent snapshot, then
// applies every committed change in order. This process's commits arrive
// synchronously with their changes (the index is current before the API
// answers); other replicas' arrive by NOTIFY, or by polling if that fails.
import type { LoggedChange } from '../model/changes.js';
import { WeftError } from '../model/errors.js';
import { hostInfo } from '../store/records.js';
import type { Store } from '../store/store.js';
import { MappingIndex } from './index.js';

const PAGE = 10_000;

export interface FollowerOptions {
  /** Poll the log this often as a fallback to wake-ups (ms). */
  pollMs?: number;
  /** Called after every applied batch (for the push stream). */
  onApplied?: (changes: readonly LoggedChange[]) => void;
}

export class ChangeFollower {
  readonly index = new MappingIndex();
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private waiters: { version: number; resolve: () => void }[] = [];
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly opts: FollowerOptions = {},
  ) {}

  /** Loads the index from a snapshot of the store, then follows the log. */
  async start(): Promise<void> {
    await this.store.snapshot(async (tx) => {
      this.index.version = await tx.headVersion();
      for (const h of await tx.all('hosts', {})) {
        const info = hostInfo(h);
        this.index.addHost(info.hostId, info.underlayIp, info);
      }
      let after = '';
      for (;;) {
        const page = await tx.portMappingsAfter(after, PAGE);
        for (const p of page) this.index.addPort(p);
        if (page.length < PAGE) break;
        after = (page.at(-1) as { portId: string }).portId;
      }
    });
    this.unsubscribe = this.store.subscribe((version, changes) => this.onCommit(version, changes));
    this.timer = setInterval(() => this.kick(), this.opts.pollMs ?? 1000);
    this.timer.unref();
    this.kick();
  }

  get version(): number {
    return this.index.version;
  }

  /** Resolves once the index reflects `version` (or rejects after `timeoutMs`). */
  waitFor(version: number, timeoutMs = 5000): Promise<void> {
    if (this.index.version >= version) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        version,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new WeftError('E_UNAVAILABLE', `index did not reach version ${version} in ${timeoutMs} ms (at ${this.index.version})`));
      }, timeoutMs);
      this.waiters.push(waiter);
      this.kick();
    });
  }

  private onCommit(version: number, changes?: readonly LoggedChange[]): void {
    if (version <= this.index.version) return;
    // This process's own commit, right after the last one applied: apply now,
    // synchronously, so that the API's answer comes after the index has it.
    if (changes && changes[0]?.version === this.index.version + 1) {
      this.applyAll(changes);
      return;
    }
    this.kick();
  }

  private applyAll(changes: readonly LoggedChange[]): void {
    const fresh = changes.filter((c) => c.version > this.index.version);
    const applied: LoggedChange[] = [];
    for (const c of fresh) {
      if (c.version !== this.index.version + 1) {
        // A gap: the rest comes from the log. What was applied is still passed on.
        this.kick();
        break;
      }
      this.index.apply(c);
      applied.push(c);
    }
    if (applied.length > 0) this.opts.onApplied?.(applied);
    this.waiters = this.waiters.filter((w) => {
      if (w.version > this.index.version) return true;
      w.resolve();
      return false;
    });
  }

  /** Reads the log from the index's version until caught up; one run at a time. */
  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        for (;;) {
          const batch = await this.store.changesSince(this.index.version, 1000);
          if (batch.length === 0) break;
          this.applyAll(batch);
          if (batch.length < 1000) break;
        }
      } while (this.again && !this.stopped);
    })()
      .catch(() => {
        // The store is unreachable for now; the poll timer tries again.
      })
      .finally(() => {
        this.running = null;
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
