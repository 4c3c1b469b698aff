// The cloud `weft lab up` builds, on the real kernel: how long it takes to come
// up (the default 2 sites x 2 racks x 2 hosts, and 2 x 4 x 4 = 32 hosts with
// 200 instances), and how long an API change takes to reach the
// kernel of every remote host on the port's VNI, one change at a time and in a
// burst. "Reached" is the VXLAN FDB entry of the port's MAC on wvx<VNI> (dst the
// port's host, or gone), seen by one `bridge monitor fdb` per host namespace.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { vxlanName } from '../src/agent/names.js';
import { Cloud, type CloudOptions, DEFAULT_CLOUD } from '../src/lab/cloud.js';
import type { InstanceView } from '../src/lab/overlay-lab.js';
import { pool } from '../src/sys/pool.js';
import { percentile, type Result } from './report.js';

/** What the watch knows of one FDB entry: its dst (null once deleted) and when that line arrived. */
interface Seen {
  dst: string | null;
  t: number;
}

interface Waiter {
  want: Map<string, string | null>;
  unmet: Set<string>;
  done: (t: number) => void;
}

const key = (host: string, dev: string, mac: string) => `${host}/${dev}/${mac}`;
const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;
/** A bridge of the bench's own in every host namespace: an entry added on it proves the monitor listens. */
const PROBE_DEV = 'benchmon';

/**
 * One `bridge monitor fdb` per host namespace; every line is stamped when it
 * reaches this process. Keeps the last dst of each remote (`dst`) entry on a
 * weft VXLAN device, so a wait registered after the change (once the API has
 * answered with the MAC) still gets the time the entry really changed.
 */
class FdbWatch {
  private readonly seen = new Map<string, Seen>();
  private readonly probes = new Set<string>();
  private readonly waiters = new Set<Waiter>();
  private readonly procs: ChildProcess[] = [];
  private failure: Error | null = null;
  private stopped = false;
  /** Lines read from every monitor so far. */
  lines = 0;

  private constructor(private readonly cloud: Cloud) {}

  static async start(cloud: Cloud): Promise<FdbWatch> {
    const w = new FdbWatch(cloud);
    try {
      const { lab } = cloud.routing.overlay;
      for (const h of cloud.routing.overlay.hosts.values()) {
        const p = lab.spawn(h.lab.ns, 'bridge', ['monitor', 'fdb'], { stdio: ['ignore', 'pipe', 'ignore'] });
        w.procs.push(p);
        let rest = '';
        p.stdout?.on('data', (d: Buffer) => {
          const t = performance.now();
          const lines = (rest + d.toString()).split('\n');
          rest = lines.pop() ?? '';
          for (const l of lines) w.line(h.name, l, t);
        });
        p.once('exit', (code, sig) => {
          if (!w.stopped) w.failure = new Error(`bridge monitor fdb in ${h.lab.ns} exited (${code ?? sig})`);
        });
      }
      await Promise.all([...cloud.routing.overlay.hosts.values()].map((h) => w.probe(h.name, h.lab.ns)));
      return w;
    } catch (e) {
      w.stop();
      throw e;
    }
  }

  /** Adds entries on the probe bridge until the host's monitor reports one. */
  private async probe(host: string, ns: string): Promise<void> {
    const { lab } = this.cloud.routing.overlay;
    await lab.exec(ns, 'ip', ['link', 'add', PROBE_DEV, 'type', 'bridge']);
    for (let i = 1; i < 100; i++) {
      const mac = `02:00:00:00:be:${i.toString(16).padStart(2, '0')}`;
      await lab.exec(ns, 'bridge', ['fdb', 'add', mac, 'dev', PROBE_DEV, 'self', 'local']);
      const end = performance.now() + 100;
      while (performance.now() < end) {
        if (this.probes.has(`${host}/${mac}`)) return;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    throw new Error(`bridge monitor fdb in ${ns} reported nothing`);
  }

  private line(host: string, l: string, t: number): void {
    this.lines++;
    // `[Deleted ]<mac> dev <dev> [dst <ip>] [master <br>] [self] [permanent|static]...`
    const f = l.trim().split(/\s+/);
    const deleted = f[0] === 'Deleted';
    if (deleted) f.shift();
    const mac = f[0] as string;
    const at = (word: string) => (f.indexOf(word) > 0 ? f[f.indexOf(word) + 1] : undefined);
    const dev = at('dev');
    const dst = at('dst');
    if (!MAC.test(mac) || dev === undefined) return;
    if (dev === PROBE_DEV) {
      this.probes.add(`${host}/${mac}`);
      return;
    }
    // Only the remote entries: `<mac> dev wvx<VNI> dst <vtep> self`, not the bridge's `master` ones.
    if (!dev.startsWith('wvx') || dst === undefined) return;
    const k = key(host, dev, mac);
    const before = this.seen.get(k);
    if (deleted) {
      if (before?.dst !== dst) return;
      this.seen.set(k, { dst: null, t });
    } else this.seen.set(k, { dst, t });
    for (const w of this.waiters) {
      if (!w.want.has(k)) continue;
      if (this.holds(k, w.want.get(k) as string | null)) w.unmet.delete(k);
      else w.unmet.add(k);
      if (w.unmet.size === 0) this.finish(w);
    }
  }

  private holds(k: string, dst: string | null): boolean {
    return (this.seen.get(k)?.dst ?? null) === dst;
  }

  /** When entry `k` last changed (0: never seen). */
  at(k: string): number {
    return this.seen.get(k)?.t ?? 0;
  }

  /** The host whose entry of `want` changed last. */
  lastHost(want: Map<string, string | null>): string {
    let best = '';
    let t = -1;
    for (const k of want.keys())
      if (this.at(k) > t) {
        t = this.at(k);
        best = k.split('/')[0] as string;
      }
    return best;
  }

  private finish(w: Waiter): void {
    this.waiters.delete(w);
    let t = 0;
    for (const k of w.want.keys()) t = Math.max(t, this.at(k));
    w.done(t);
  }

  /**
   * Resolves with the arrival time (performance.now()) of the line that
   * last brought an entry of `want` (key -> dst, null for absent) to its
   * wanted state; rejects after `ms`, naming the entries still wrong.
   */
  until(what: string, want: Map<string, string | null>, ms: number): Promise<number> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const unmet = new Set([...want].filter(([k, dst]) => !this.holds(k, dst)).map(([k]) => k));
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        const left = [...w.unmet].slice(0, 5).map((k) => `${k} (want ${want.get(k) ?? 'absent'}, have ${this.seen.get(k)?.dst ?? 'absent'})`);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}: ${w.unmet.size} entries wrong, e.g. ${left.join(', ')}`));
      }, ms);
      const w: Waiter = {
        want,
        unmet,
        done: (t) => {
          clearTimeout(timer);
          resolve(t);
        },
      };
      this.waiters.add(w);
      if (unmet.size === 0) this.finish(w);
    });
  }

  stop(): void {
    this.stopped = true;
    for (const p of this.procs) p.kill('SIGKILL');
  }
}

const ms = (x: number) => Math.round(x * 10) / 10;

/** CPU time (ms) of processes (`own`) and of the children they waited for (the agents' iproute2 and nft runs), from /proc. */
function cpuMs(pids: (number | undefined)[]): { own: number; children: number } {
  const t = { own: 0, children: 0 };
  for (const pid of pids) {
    if (pid === undefined) continue;
    // utime, stime, cutime, cstime; clock ticks are 100 Hz on Linux.
    const f = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []).map(Number);
    t.own += ((f[11] ?? 0) + (f[12] ?? 0)) * 10;
    t.children += ((f[13] ?? 0) + (f[14] ?? 0)) * 10;
  }
  return t;
}

/** CPU used by the server and by all agents since the last call, per `per` (changes or ports). */
function cpuMeter(cloud: Cloud): (per: number) => string {
  const read = () => ({
    server: cpuMs([cloud.routing.overlay.server.proc.pid]),
    agents: cpuMs([...cloud.routing.overlay.hosts.values()].map((h) => h.agent?.pid)),
  });
  const a = read();
  return (per) => {
    const b = read();
    const server = (b.server.own + b.server.children - a.server.own - a.server.children) / per;
    const own = (b.agents.own - a.agents.own) / per;
    const children = (b.agents.children - a.agents.children) / per;
    return `CPU per item: server ${ms(server)} ms, ${cloud.routing.overlay.hosts.size} agents ${ms(own + children)} ms (${ms(children)} in their iproute2/nft children)`;
  };
}

const load = () => `load ${loadavg()[0]?.toFixed(1)}`;
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
/** A row's distribution columns: how many, p50, p99, max (ms). */
const spread = (xs: number[]) => {
  const s = sorted(xs);
  return { n: s.length, p50Ms: ms(percentile(s, 0.5)), p99Ms: ms(percentile(s, 0.99)), maxMs: ms(s.at(-1) as number) };
};

const shapeOf = (o: CloudOptions) => `${o.sites}x${o.racksPerSite}x${o.hostsPerRack}`;
const hostsOf = (o: CloudOptions) => o.sites * o.racksPerSite * o.hostsPerRack;

/** Short names for the stages Cloud.start reports. */
function stageName(s: string): string {
  if (s.startsWith('network namespaces for')) return 'start';
  if (s.includes('namespaces and their links')) return 'netns+server';
  if (s.includes('fabric BIRDs')) return 'fabric';
  if (s.includes('host BIRDs')) return 'host-birds';
  if (s.includes('agents connected')) return 'agents';
  if (s.includes('BGP sessions')) return 'bgp';
  if (s.includes('tenants')) return 'networks';
  if (s.includes('instances placed')) return 'instances';
  if (s.startsWith('VIP')) return 'vip';
  if (s.includes('every agent applied')) return 'converged';
  return s.split(' ')[0] as string;
}

/** Starts a cloud, timing it and each stage (from one progress report to the next). */
async function up(o: CloudOptions): Promise<{ cloud: Cloud; seconds: number; stages: string }> {
  const t0 = performance.now();
  const marks: [number, string][] = [];
  const cloud = await Cloud.start(o, (s) => marks.push([performance.now(), stageName(s)]));
  const seconds = (performance.now() - t0) / 1000;
  // The first report announces the build; each later one ends the stage it names.
  const stages = marks
    .slice(1)
    .map(([t, s], i) => `${s} ${((t - (marks[i] as [number, string])[0]) / 1000).toFixed(1)}s`)
    .join(', ');
  return { cloud, seconds, stages };
}

async function down(cloud: Cloud): Promise<number> {
  const t0 = performance.now();
  await cloud.destroy();
  return (performance.now() - t0) / 1000;
}

const upRow = (what: string, hosts: number, instances: number, u: { seconds: number; stages: string }, downS: number): Result => ({
  bench: 'lab',
  what,
  hosts,
  n: instances,
  seconds: Number(u.seconds.toFixed(2)),
  totalMs: '-',
  p50Ms: '-',
  p99Ms: '-',
  maxMs: '-',
  afterLastApiMs: '-',
  target: '-',
  detail: `${u.stages}; down ${downS.toFixed(1)}s`,
});

export async function lab(): Promise<Result[]> {
  const changes = Number(process.env.BENCH_LAB_CHANGES ?? 50);
  const burst = Number(process.env.BENCH_LAB_BURST ?? 1000);
  const big = process.env.BENCH_LAB_BIG !== '0';
  const rows: Result[] = [];
  const tail: Result[] = [];

  const def = { ...DEFAULT_CLOUD, name: `wk${process.pid % 1000}` };
  const u = await up(def);
  const { cloud } = u;
  let watch: FdbWatch | null = null;
  let downS = 0;
  try {
    const { api } = cloud.routing;
    const hosts = [...cloud.routing.overlay.hosts.values()];
    const underlay = new Map(hosts.map((h) => [h.hostId, h.lab.underlayIp]));
    // Room for the burst's instances (64 cpus per host would stop it at about 500).
    for (const h of hosts) await api.patch(`/v1/hosts/${h.hostId}`, { capacity: { cpus: 4096, memoryMb: 262144, diskGb: 4000 } });
    // A network of the bench's own with a port on every host (both sites): every change then concerns every other host.
    await api.post('/v1/tenants', { name: 'bench' });
    const net = await api.post<{ vni: number }>('/v1/networks', { tenant: 'bench', name: 'ovl', kind: 'overlay', subnets: ['10.64.0.0/20', 'fd00:64::/64'] });
    const dev = vxlanName(net.vni);
    const siteOf = new Map(hosts.map((h) => [h.name, h.site]));
    const create = (name: string, host: string, ports = 1) =>
      api.post<InstanceView>('/v1/instances', {
        tenant: 'bench',
        name,
        site: siteOf.get(host),
        host,
        cpus: 1,
        memoryMb: 64,
        diskGb: 0,
        ports: Array.from({ length: ports }, () => ({ network: 'ovl' })),
      });
    watch = await FdbWatch.start(cloud);
    const w = watch;
    /** What every host but the port's own must hold for these ports: an entry towards the port's host, or (`gone`) none. */
    const wantFor = (ports: { mac: string; hostId: string }[], gone = false) => {
      const want = new Map<string, string | null>();
      for (const p of ports)
        for (const h of hosts) if (h.hostId !== p.hostId) want.set(key(h.name, dev, p.mac), gone ? null : (underlay.get(p.hostId) as string));
      return want;
    };
    // 0. Live moves of an overlay VM with a ping every 10 ms running to it from another host (`weft lab move`):
    // the API call, the VM's switch-over to the new host's interface, and every agent's part. First, before the
    // bench's own ports (which never get an interface): a move waits until no agent has a port waiting for one.
    const vm = cloud.vms[0]?.name;
    if (vm) {
      const blackouts: number[] = [];
      const moves: number[] = [];
      let sent = 0;
      let failed = 0;
      for (let i = 0; i < 10; i++) {
        const m = await cloud.move(vm);
        blackouts.push(m.blackoutMs);
        moves.push(m.moveMs);
        sent += m.sent;
        if (!m.ok) failed++;
        await new Promise((r) => setTimeout(r, 100));
      }
      tail.push({
        bench: 'lab',
        what: 'VM move: blackout (pings lost x 10 ms)',
        hosts: hosts.length,
        ...spread(blackouts),
        seconds: '-',
        totalMs: '-',
        afterLastApiMs: '-',
        target: '<= 100',
        detail: `${vm}, server-placed; ${sent} pings; move (API to every agent applied) p50 ${ms(percentile(sorted(moves), 0.5))} ms${failed ? `; ${failed} moves not ok` : ''}; ${load()}`,
      });
    }
    const seeds: InstanceView[] = [];
    for (const h of hosts) seeds.push(await create(`seed-${h.name}`, h.name));
    await w.until('the seeds', wantFor(seeds.map((s) => ({ mac: (s.ports[0] as { mac: string }).mac, hostId: s.hostId }))), 30_000);
    // Each seed brought a VNI new to its host (a snapshot there): let the agents go idle before timing anything.
    await new Promise((r) => setTimeout(r, 1000));

    // 2. One change at a time: a new port, its move to another rack of its site, its delete.
    const lat = { create: [] as number[], move: [] as number[], delete: [] as number[] };
    const apiMs = { create: [] as number[], move: [] as number[], delete: [] as number[] };
    const settle = () => new Promise((r) => setTimeout(r, 100));
    let cpu = cpuMeter(cloud);
    const load0 = load();
    let slowest = { ms: 0, what: '' };
    /** Sends one change, then waits until every remote kernel holds it; records its latency and API answer time. */
    const one = async <T>(kind: keyof typeof lat, what: string, send: () => Promise<T>, want: (answer: T) => Map<string, string | null>) => {
      const t0 = performance.now();
      const answer = await send();
      apiMs[kind].push(performance.now() - t0);
      const wanted = want(answer);
      const took = (await w.until(what, wanted, 10_000)) - t0;
      lat[kind].push(took);
      if (took > slowest.ms) slowest = { ms: took, what: `${what}, last host ${w.lastHost(wanted)}` };
      await settle();
      return answer;
    };
    for (let i = 0; i < changes; i++) {
      const a = hosts[i % hosts.length] as (typeof hosts)[number];
      // A move stays in the instance's site (the API refuses another site's host): to another rack of it, if it has one.
      const mates = hosts.filter((h) => h.site === a.site && h !== a);
      const racks = mates.filter((h) => h.lab.rack !== a.lab.rack);
      const pick = racks.length > 0 ? racks : mates;
      const b = pick[i % pick.length] as (typeof hosts)[number];
      const inst = await one(
        'create',
        `create ${i} on ${a.name}`,
        () => create(`c${i}`, a.name),
        (r) => wantFor([{ mac: (r.ports[0] as { mac: string }).mac, hostId: a.hostId }]),
      );
      const mac = (inst.ports[0] as { mac: string }).mac;
      await one(
        'move',
        `move ${i} to ${b.name}`,
        () => api.post(`/v1/instances/${inst.id}/migrate`, { target: b.name }),
        () => wantFor([{ mac, hostId: b.hostId }]),
      );
      await one(
        'delete',
        `delete ${i}`,
        () => api.delete(`/v1/instances/${inst.id}`),
        () => wantFor([{ mac, hostId: b.hostId }], true),
      );
    }
    const changeCpu = cpu(3 * changes);
    const changeRow = (what: string, xs: number[], answers: number[]): Result => {
      return {
        bench: 'lab',
        what,
        hosts: hosts.length,
        ...spread(xs),
        seconds: '-',
        totalMs: '-',
        afterLastApiMs: '-',
        target: 'p50 20, p99 50',
        detail: `${hosts.length - 1} remote hosts each; API answer p50 ${ms(percentile(sorted(answers), 0.5))} ms; ${changeCpu}; ${load0}`,
      };
    };
    tail.push(changeRow('new port -> FDB on every remote host', lat.create, apiMs.create));
    tail.push(changeRow('move -> FDB dst on every remote host', lat.move, apiMs.move));
    tail.push(changeRow('delete -> FDB gone on every remote host', lat.delete, apiMs.delete));
    const all = changeRow('any of the above', [...lat.create, ...lat.move, ...lat.delete], [...apiMs.create, ...apiMs.move, ...apiMs.delete]);
    all.detail = `slowest: ${slowest.what} (${ms(slowest.ms)} ms); ${all.detail}`;
    tail.push(all);

    // 3. A burst of new ports spread over the 8 hosts, 10 clients; then their delete.
    for (const perInstance of [1, 16]) {
      const count = Math.ceil(burst / perInstance);
      const sizes = Array.from({ length: count }, (_, i) => Math.min(perInstance, burst - i * perInstance));
      const sent: number[] = new Array(count);
      let last = 0;
      const lines0 = w.lines;
      const load1 = load();
      cpu = cpuMeter(cloud);
      const t0 = performance.now();
      const made = await pool(
        10,
        sizes.map((n, i) => async () => {
          sent[i] = performance.now();
          const inst = await create(`b${perInstance}x${i}`, (hosts[i % hosts.length] as (typeof hosts)[number]).name, n);
          last = performance.now();
          return inst;
        }),
      );
      const ports = made.flatMap((m, i) => m.ports.map((p) => ({ mac: p.mac, hostId: m.hostId, sent: sent[i] as number })));
      const done = await w.until(`burst of ${ports.length}`, wantFor(ports), 300_000);
      const burstCpu = cpu(ports.length);
      // Per port: from its request to its entry on the last remote host.
      const per = sorted(ports.map((p) => Math.max(...hosts.filter((h) => h.hostId !== p.hostId).map((h) => w.at(key(h.name, dev, p.mac)))) - p.sent));
      const how = perInstance === 1 ? `${count} instances of 1 port` : `${count} instances of up to ${perInstance} ports`;
      tail.push({
        bench: 'lab',
        what: `burst: ${ports.length} new ports -> every remote FDB`,
        hosts: hosts.length,
        n: ports.length,
        seconds: '-',
        totalMs: ms(done - t0),
        p50Ms: ms(percentile(per, 0.5)),
        p99Ms: ms(percentile(per, 0.99)),
        maxMs: ms(per.at(-1) as number),
        afterLastApiMs: ms(done - last),
        target: 'after last answer 100',
        detail: `${how}, 10 clients; API ${ms(last - t0)} ms; ${ports.length * (hosts.length - 1)} remote entries, ${w.lines - lines0} monitor lines; ${burstCpu}; ${load1}`,
      });
      await settle();
      cpu = cpuMeter(cloud);
      const d0 = performance.now();
      let dLast = 0;
      await pool(
        10,
        made.map((m) => async () => {
          await api.delete(`/v1/instances/${m.id}`);
          dLast = performance.now();
        }),
      );
      const gone = await w.until(`delete of the burst of ${ports.length}`, wantFor(ports, true), 300_000);
      tail.push({
        bench: 'lab',
        what: `burst: delete of those ${ports.length} -> every remote FDB gone`,
        hosts: hosts.length,
        n: ports.length,
        seconds: '-',
        totalMs: ms(gone - d0),
        p50Ms: '-',
        p99Ms: '-',
        maxMs: '-',
        afterLastApiMs: ms(gone - dLast),
        target: '-',
        detail: `${made.length} deletes, 10 clients; API ${ms(dLast - d0)} ms; ${cpu(ports.length)}`,
      });
      await settle();
    }
  } finally {
    watch?.stop();
    downS = await down(cloud);
  }
  rows.push(upRow(`lab up ${shapeOf(def)}`, hostsOf(def), def.instances, u, downS));

  // 1b. The largest lab: 2 sites x 4 racks x 4 hosts, 200 instances.
  if (big) {
    const o = { ...DEFAULT_CLOUD, name: `wj${process.pid % 1000}`, racksPerSite: 4, hostsPerRack: 4, instances: 200 };
    const b = await up(o);
    rows.push(upRow(`lab up ${shapeOf(o)}`, hostsOf(o), o.instances, b, await down(b.cloud)));
  }
  return [...rows, ...tail];
}
