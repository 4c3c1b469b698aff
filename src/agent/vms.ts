// The host's VMs as the source of truth says (docs/vm-profiles.md): for each
// local instance with a profile, its files in <dir>/instances/<id>/ (the
// profile rendered with this agent's directory, and the NoCloud seed) and,
// when the agent drives libvirt, its domain defined and running or stopped;
// for an instance no longer here (deleted, or moved away), its domain
// undefined and its files removed. One pass at a time, coalescing updates;
// a failed instance is retried with capped backoff. Not on the path of the
// stream's acks: a VM taking seconds to define or boot does not hold back
// the network changes of the same delta.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InstanceInfo } from '../model/changes.js';
import { isId } from '../model/ids.js';
import { instanceDir } from '../model/profile.js';
import { type DomainType, diskPlan, domainName, renderProfile } from '../model/profile-render.js';
import { type Log, quietLog } from '../sys/log.js';
import { CONSOLE_SOCKET, ensureDisk, OWNER_FILE, removeInstanceFiles, type WrittenFiles, writeInstanceFiles } from './vm/seed.js';
import type { DomainState, VmHost } from './vm/vm-host.js';

export interface VmsOptions {
  /** The root of the instances' directories (`weft agent --vm-dir`, default /var/lib/weft). */
  dir: string;
  /** The hypervisor's domains; null: files only, the VM lifecycle is someone else's (`--libvirt` not given). */
  host: VmHost | null;
  /** libvirt's domain type: kvm on a hypervisor; qemu without /dev/kvm; test for libvirt's test driver. */
  domainType?: DomainType;
  log?: Log;
  /** Writes an instance's files (seed.ts writeInstanceFiles; tests pass a fake). */
  write?: (dir: string, profile: ReturnType<typeof renderProfile>) => Promise<WrittenFiles>;
  /** Makes an instance's disk on its image (seed.ts ensureDisk; tests pass a fake). */
  disk?: typeof ensureDisk;
  /** Called after each pass (the agent reports `status` to the server). */
  onPass?: () => void;
  /**
   * How long a destination waits for an instance that arrived by a live
   * move (shared storage) to come in by migration before it starts it cold
   * (the source is gone, or its migration failed; default 120 s).
   */
  migrationWaitMs?: number;
}

/** The moves of a site with shared storage, as the agent's state tracks them (state/agent-state.ts departed, arrived). */
export interface VmMoves {
  departed: ReadonlyMap<string, InstanceInfo>;
  arrived: ReadonlySet<string>;
  /** A departed instance is done with here (nothing of it runs here, its directory is another host's): the state may forget it. */
  done?: (instanceId: string) => void;
}

export interface VmStatus {
  /** Local instances with a profile; of their domains (with libvirt), how many run and how many are stopped, as libvirt said after the last pass. */
  instances: number;
  running: number;
  stopped: number;
  /** Local instances without an image: no profile, nothing to run. */
  noImage: number;
  /** Instances whose last pass failed, with why (retried with backoff). */
  failed: Map<string, string>;
  /** Live migrations to another host: done, and failed (then the domain was stopped here and the destination starts it cold). */
  migrated: number;
  migrationsFailed: number;
  /** Local instances waiting for their incoming live migration. */
  awaiting: number;
  /** Passes run, and the time of the last, ms. */
  passes: number;
  lastPassMs: number;
}

export class Vms {
  readonly status: VmStatus = {
    instances: 0,
    running: 0,
    stopped: 0,
    noImage: 0,
    failed: new Map(),
    migrated: 0,
    migrationsFailed: 0,
    awaiting: 0,
    passes: 0,
    lastPassMs: 0,
  };
  private want: ReadonlyMap<string, InstanceInfo> = new Map();
  private moves: VmMoves = { departed: new Map(), arrived: new Set() };
  /** When each arrived instance was first seen here waiting for its migration (ms, monotonic), and those that have run here since. */
  private readonly awaitingSince = new Map<string, number>();
  private readonly ranHere = new Set<string>();
  /** Local instances whose owner file this agent wrote (once while the instance stays here, not at every pass). */
  private readonly owned = new Set<string>();
  private awaitTimer: NodeJS.Timeout | null = null;
  private hostId = '';
  private requested = 0;
  private done = 0;
  private looping = false;
  private waiters: { want: number; resolve: () => void }[] = [];
  private retryMs = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly log: Log;
  private readonly write: NonNullable<VmsOptions['write']>;
  private readonly disk: typeof ensureDisk;
  /** What was said of each instance last (a failure, no image), so a retry loop logs once per change. */
  private said = new Map<string, string>();

  constructor(private readonly o: VmsOptions) {
    this.log = o.log ?? quietLog;
    this.write = o.write ?? writeInstanceFiles;
    this.disk = o.disk ?? ensureDisk;
  }

  /** The host's instances changed (a snapshot or a delta): make the hypervisor match, soon. Resolves once a pass covering it has run. */
  update(instances: ReadonlyMap<string, InstanceInfo>, hostId: string, moves?: VmMoves): Promise<void> {
    this.want = new Map(instances);
    if (moves) this.moves = { ...moves, departed: new Map(moves.departed), arrived: new Set(moves.arrived) };
    this.hostId = hostId;
    const want = ++this.requested;
    const p = new Promise<void>((resolve) => this.waiters.push({ want, resolve }));
    if (!this.looping) void this.loop();
    return p;
  }

  private async loop(): Promise<void> {
    this.looping = true;
    while (this.done < this.requested && !this.stopped) {
      const target = this.requested;
      const t0 = performance.now();
      let failures = 0;
      try {
        failures = await this.pass();
      } catch (e) {
        failures = 1;
        this.log.warn('VM pass failed', { error: (e as Error).message });
      }
      this.status.passes++;
      this.status.lastPassMs = performance.now() - t0;
      this.o.onPass?.();
      this.done = target;
      if (failures > 0) this.scheduleRetry();
      else this.retryMs = 0;
      const settled = this.waiters.filter((w) => w.want <= target);
      this.waiters = this.waiters.filter((w) => w.want > target);
      for (const w of settled) w.resolve();
    }
    this.looping = false;
    if (this.stopped) for (const w of this.waiters.splice(0)) w.resolve();
  }

  /** One pass; returns how many instances failed. */
  private async pass(): Promise<number> {
    const local = [...this.want.values()].filter((i) => i.hostId === this.hostId);
    const keep = new Set(local.map((i) => i.instanceId));
    const domains: Map<string, DomainState> = this.o.host ? await this.o.host.list() : new Map();
    const failed = new Map<string, string>();
    let noImage = 0;
    let withProfile = 0;
    let awaiting = 0;
    // Moved away on shared storage: live-migrate what runs here to the destination first.
    for (const [id, d] of this.moves.departed) {
      const name = domainName(id);
      if (!this.o.host || keep.has(id) || domains.get(name) !== 'running' || !d.migrationUri) continue;
      try {
        await this.o.host.migrate(name, d.migrationUri);
        this.status.migrated++;
        domains.delete(name);
        this.log.info('instance live-migrated', { instance: id, name: d.name, to: d.hostId });
      } catch (e) {
        // Never two copies on one disk: stopped here, the destination starts it cold once its wait ends.
        this.status.migrationsFailed++;
        this.log.warn('live migration failed: the domain is stopped here and the destination starts it cold', {
          instance: id,
          name: d.name,
          to: d.hostId,
          error: (e as Error).message,
        });
        await this.o.host.undefine(name).catch((x: Error) => failed.set(id, `after a failed migration, undefine: ${x.message}`));
        domains.delete(name);
      }
    }
    for (const i of local) {
      if (i.profile === null) {
        // Left as it is: an instance whose image was cleared keeps whatever runs it.
        noImage++;
        this.sayOnce(i.instanceId, 'no image', () =>
          this.log.info('instance has no image: no profile to run it from', { instance: i.instanceId, name: i.name }),
        );
        continue;
      }
      withProfile++;
      try {
        const dir = instanceDir(this.o.dir, i.instanceId);
        const input = { ...i.profile, consoleSocket: `${dir}/${CONSOLE_SOCKET}` };
        const profile = renderProfile(input, { domainType: this.o.domainType ?? 'kvm' });
        const changed = await this.write(dir, profile);
        // Its own disk, an overlay on the image, before anything can start it.
        const disk = diskPlan(input);
        if (disk.kind === 'overlay') await this.disk(disk.path, disk.base, disk.baseFormat, disk.sizeGb);
        if (!this.owned.has(i.instanceId)) {
          await writeFile(join(dir, OWNER_FILE), this.hostId);
          this.owned.add(i.instanceId);
        }
        const host = this.o.host;
        if (host) {
          const name = domainName(i.instanceId);
          const state = domains.get(name);
          if (state === 'running') this.ranHere.add(i.instanceId);
          // Arrived by a live move: its domain comes with the migration (defined, running) unless the wait ends first.
          const incoming = this.moves.arrived.has(i.instanceId) && !this.ranHere.has(i.instanceId) && state !== 'running' && i.state === 'running';
          if (incoming) {
            const since = this.awaitingSince.get(i.instanceId) ?? performance.now();
            this.awaitingSince.set(i.instanceId, since);
            if (performance.now() - since < (this.o.migrationWaitMs ?? 120_000)) {
              awaiting++;
              continue;
            }
            this.log.warn('no live migration came in time: starting the instance cold', { instance: i.instanceId, name: i.name });
          }
          this.awaitingSince.delete(i.instanceId);
          if (changed.domain || state === undefined) await host.define(name, profile.domain);
          if (i.state === 'running' && state !== 'running') await host.start(name);
          if (i.state === 'stopped' && state === 'running') await host.stop(name);
          if (i.state === 'running') this.ranHere.add(i.instanceId);
        }
        this.sayOnce(i.instanceId, 'ok', () => this.log.info('instance in place', { instance: i.instanceId, name: i.name, state: i.state }));
      } catch (e) {
        const why = (e as Error).message;
        failed.set(i.instanceId, why);
        this.sayOnce(i.instanceId, `failed: ${why}`, () =>
          this.log.warn('instance not in place; retrying', { instance: i.instanceId, name: i.name, error: why }),
        );
      }
    }
    // No longer this host's: deleted, or moved away.
    const gone = new Set<string>();
    for (const name of domains.keys()) {
      // Only an instance's domain (weft-<id>): another weft- name is no instance's, and not ours to remove.
      const id = name.slice('weft-'.length);
      if (isId(id) && !keep.has(id)) gone.add(id);
    }
    for (const id of await this.instanceDirs()) if (!keep.has(id)) gone.add(id);
    for (const id of gone) {
      try {
        // A directory alone, another host's (shared storage): nothing of it is here.
        if (!domains.has(domainName(id)) && !(await this.ownedHere(id))) continue;
        await this.o.host?.undefine(domainName(id));
        this.ranHere.delete(id);
        this.awaitingSince.delete(id);
        // On shared storage the directory is the destination's now (or another host's all along): not ours to remove.
        const shared = this.moves.departed.get(id)?.profile?.vm.sharedStorage === true;
        if (shared || !(await this.ownedHere(id))) continue;
        await removeInstanceFiles(instanceDir(this.o.dir, id));
        this.said.delete(id);
        this.log.info('instance removed from this host', { instance: id });
      } catch (e) {
        failed.set(id, (e as Error).message);
        this.sayOnce(id, `remove failed: ${(e as Error).message}`, () =>
          this.log.warn('instance not removed; retrying', { instance: id, error: (e as Error).message }),
        );
      }
    }
    // What libvirt has now, not what was asked of it.
    let running = 0;
    let stopped = 0;
    if (this.o.host)
      for (const [name, state] of await this.o.host.list()) {
        if (!keep.has(name.slice('weft-'.length))) continue;
        if (state === 'running') running++;
        else stopped++;
      }
    this.status.instances = withProfile;
    this.status.running = running;
    this.status.stopped = stopped;
    this.status.noImage = noImage;
    this.status.failed = failed;
    for (const id of this.owned) if (!keep.has(id)) this.owned.delete(id);
    this.status.awaiting = awaiting;
    if (awaiting > 0) this.recheckSoon();
    for (const [id, d] of this.moves.departed)
      if (!keep.has(id) && !domains.has(domainName(id)) && (d.profile?.vm.sharedStorage !== true || !(await this.ownedHere(id)))) this.moves.done?.(id);
    return failed.size;
  }

  /** Whether this host wrote an instance's directory last (no owner file: an older agent's, this host's). */
  private async ownedHere(id: string): Promise<boolean> {
    try {
      return (await readFile(join(instanceDir(this.o.dir, id), OWNER_FILE), 'utf8')).trim() === this.hostId;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
      throw e;
    }
  }

  /** Another pass in a second: an arrived instance's wait may end, or its domain come in. */
  private recheckSoon(): void {
    if (this.awaitTimer || this.stopped) return;
    this.awaitTimer = setTimeout(() => {
      this.awaitTimer = null;
      void this.update(this.want, this.hostId);
    }, 1000);
    this.awaitTimer.unref();
  }

  /** weft's domains on the hypervisor now (none without libvirt). */
  async domains(): Promise<Map<string, DomainState>> {
    return this.o.host ? this.o.host.list() : new Map();
  }

  /** The instance ids with a directory under <dir>/instances. */
  private async instanceDirs(): Promise<string[]> {
    try {
      return (await readdir(`${this.o.dir}/instances`, { withFileTypes: true })).filter((d) => d.isDirectory() && isId(d.name)).map((d) => d.name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

  private sayOnce(id: string, what: string, say: () => void): void {
    if (this.said.get(id) === what) return;
    this.said.set(id, what);
    say();
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryMs = Math.min(Math.max(this.retryMs * 2, 500), 30_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.update(this.want, this.hostId);
    }, this.retryMs);
    this.retryTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.awaitTimer) clearTimeout(this.awaitTimer);
    await this.o.host?.close();
  }
}
