// The host's VMs as the source of truth says (docs/vm-profiles.md): for each
// local instance with a profile, its files in <dir>/instances/<id>/ (the
// profile rendered with this agent's directory, and the NoCloud seed) and,
// when the agent drives libvirt, its domain defined and running or stopped;
// for an instance no longer here (deleted, or moved away), its domain
// undefined and its files removed. One pass at a time, coalescing updates;
// a failed instance is retried with capped backoff. Not on the path of the
// stream's acks: a VM taking seconds to define or boot does not hold back
// the network changes of the same delta.
import { readdir } from 'node:fs/promises';
import type { InstanceInfo } from '../model/changes.js';
import { isId } from '../model/ids.js';
import { instanceDir } from '../model/profile.js';
import { type DomainType, diskPlan, domainName, renderProfile } from '../model/profile-render.js';
import { type Log, quietLog } from '../sys/log.js';
import { CONSOLE_SOCKET, ensureDisk, removeInstanceFiles, type WrittenFiles, writeInstanceFiles } from './vm/seed.js';
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
  /** Passes run, and the time of the last, ms. */
  passes: number;
  lastPassMs: number;
}

export class Vms {
  readonly status: VmStatus = { instances: 0, running: 0, stopped: 0, noImage: 0, failed: new Map(), passes: 0, lastPassMs: 0 };
  private want: ReadonlyMap<string, InstanceInfo> = new Map();
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
  update(instances: ReadonlyMap<string, InstanceInfo>, hostId: string): Promise<void> {
    this.want = new Map(instances);
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
        const host = this.o.host;
        if (host) {
          const name = domainName(i.instanceId);
          const state = domains.get(name);
          if (changed.domain || state === undefined) await host.define(name, profile.domain);
          if (i.state === 'running' && state !== 'running') await host.start(name);
          if (i.state === 'stopped' && state === 'running') await host.stop(name);
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
        await this.o.host?.undefine(domainName(id));
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
    return failed.size;
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
    await this.o.host?.close();
  }
}
