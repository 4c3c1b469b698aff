// A small cloud (for end-to-end tests, benchmarks and weft lab): a lab (src/lab) of host namespaces on
// a routed underlay, a real `weft server` in the root namespace listening on
// the lab's management network (on PostgreSQL: two replicas, the agents
// spread across them), one real `weft agent` per host namespace, and VMs as
// namespaces made from the API's ports. destroy() removes it all.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { portIfname } from '../agent/names.js';
import { ApiClient } from '../cli/client.js';
import { capacity, invalid, notFound, WeftError } from '../model/errors.js';
import { run } from '../sys/exec.js';
import { writeSecretFile } from '../sys/secret-file.js';
import { until } from '../sys/until.js';
import { type Host, Lab, type Vm } from './builder.js';
import { addrOf, EXAMPLE_IMAGE, EXAMPLE_SSH_KEY, MAX_MGMT_HOSTS, mgmtHostCidr, rootLinkName } from './plan.js';
import { type ServerProcess, startServerProcess, WEFT_BIN } from './server-process.js';

/** Where a lab keeps its admin token (in its own 0700 directory, the file 0600: only root reads it). */
export const ADMIN_TOKEN_FILE = 'admin-token';
export const AGENT_METRICS_PORT = 9478;

export interface PortView {
  id: string;
  mac: string;
  ipv4: string | null;
  ipv6: string | null;
  networkId: string;
}
export interface InstanceView {
  id: string;
  name: string;
  hostId: string;
  ports: PortView[];
}

export interface LabHost {
  name: string;
  lab: Host;
  /** Its site in the API. */
  site: string;
  hostId: string;
  agent: ChildProcess | null;
  logFile: string;
}

export interface LabVm {
  name: string;
  instance: InstanceView;
  port: PortView;
  vm: Vm;
}

/**
 * A host to build: `[name, rack]` (in site `lab`, its rack router under the
 * core), or with its site, the spine its rack router hangs off and its
 * underlay link (see `Lab.addHost`).
 */
export type HostSpec = [name: string, rack: string] | { name: string; rack: string; site: string; spine: string; link: number };

/** A HostSpec with every field. */
export function hostSpec(h: HostSpec): { name: string; rack: string; site: string; spine?: string; link?: number } {
  return Array.isArray(h) ? { name: h[0], rack: h[1], site: 'lab' } : h;
}

/** One `weft server` of the lab: replica 1, and on PostgreSQL replica 2. */
export interface LabServer {
  n: number;
  /** Its address on the management network: where its SVP and stream listen for the agents. */
  ip: string;
  /** Its API (on 127.0.0.1; the same port after a restart). */
  url: string;
  api: ApiClient;
  /** The running process, null while `killServer` keeps it down. */
  proc: ServerProcess | null;
}

/** An agent's view of its connection, from its /healthz. */
export interface AgentHealth {
  connected: boolean;
  /** The server replica it is connected to (or trying), by management address. */
  server?: string;
  version: number;
  waiting: number;
  failures: Record<string, number>;
}

/** One connected agent as the server replica it is connected to lists it (GET /v1/agents). */
export interface AgentItem {
  hostId: string;
  connectedAt: string;
  appliedVersion: number;
  lag: number;
  routing: { sessions: { established: boolean }[] } | null;
  /** The lab replica (1, 2) that listed it. */
  server: number;
}

/**
 * The store of a lab: `sqlite` (a file in the lab's directory, one server),
 * `sqlite:PATH`, or a `postgres://` URL (two replicas). Throws E_INVALID_ARG
 * naming what is allowed.
 */
export function checkLabDb(db: unknown): string {
  if (db === undefined || db === null || db === '' || db === 'sqlite') return 'sqlite';
  if (typeof db === 'string' && /^sqlite:.+/.test(db)) return db;
  if (typeof db === 'string' && /^postgres(ql)?:\/\/[^\s]+$/.test(db)) {
    try {
      new URL(db);
      return db;
    } catch {
      // falls through to the error below
    }
  }
  throw invalid('db', redactDb(db), 'must be sqlite (the default: a file of the lab), sqlite:PATH, or a postgres://user@host:port/database URL');
}

/** A --db value fit to print: a URL's password masked. */
export function redactDb(db: unknown): unknown {
  if (typeof db !== 'string' || !db.includes('://')) return db;
  try {
    const u = new URL(db);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return db.replace(/:[^:@/]*@/, ':***@');
  }
}

export class OverlayLab {
  readonly hosts = new Map<string, LabHost>();
  readonly vms = new Map<string, LabVm>();
  private readonly nets = new Map<string, { id: string; subnets: string[]; mtu: number }>();

  /** This lab's admin token: random, made when it starts, in `tokenFile` for the CLI (`--token-file`). */
  readonly adminToken = `weft_${randomBytes(32).toString('base64url')}`;

  private constructor(
    readonly lab: Lab,
    readonly servers: LabServer[],
    readonly db: string,
    readonly dir: string,
    readonly lazy: boolean,
  ) {}

  /** The file that holds the admin token (0600). */
  get tokenFile(): string {
    return join(this.dir, ADMIN_TOKEN_FILE);
  }

  /** The API of the first replica that runs (replica 1 unless it is failed). */
  get api(): ApiClient {
    return (this.servers.find((s) => s.proc) ?? (this.servers[0] as LabServer)).api;
  }

  /** The process of the first replica that runs. Throws E_UNAVAILABLE when none does. */
  get server(): ServerProcess {
    const s = this.servers.find((x) => x.proc);
    if (!s?.proc) throw new WeftError('E_UNAVAILABLE', `no server of lab ${this.lab.name} is running`);
    return s.proc;
  }

  /** A replica by number (1-based). */
  replica(n: number): LabServer {
    const s = this.servers[n - 1];
    if (!s) throw invalid('server', n, `must be a server of the lab: ${this.servers.map((x) => x.n).join(', ')}`);
    return s;
  }

  /** Builds the lab, starts the server and one agent per host; hosts are `[name, rack]`. */
  /** Extra `weft agent` flags per host (routing); hosts without an entry run with `--no-routing`. */
  readonly agentArgs = new Map<string, string[]>();
  /** The SVP and stream ports every replica listens on, each on its own management address (0 until replica 1 started). */
  ports = { svp: 0, stream: 0 };

  /**
   * Builds the lab, starts the server and one agent per host; hosts are
   * `[name, rack]`. `site` adds fields to the site (pools), `hostAsn` gives
   * the n-th host (0-based) an ASN, and `startAgents: false` leaves starting
   * them to the caller (after it has set `agentArgs`).
   */
  static async start(o: {
    name: string;
    hosts: HostSpec[];
    /** The sites to make (API bodies); default one, `lab` (underlay 192.0.2.0/24, then the fields of `site`). */
    sites?: Record<string, unknown>[];
    lazy?: boolean;
    site?: Record<string, unknown>;
    hostAsn?: (n: number) => number;
    startAgents?: boolean;
    /** The store (see checkLabDb): SQLite by default; a PostgreSQL URL runs two replicas on it. */
    db?: string;
  }): Promise<OverlayLab> {
    const want = checkLabDb(o.db);
    const replicas = want.startsWith('postgres') ? 2 : 1;
    // Replica 2 takes the management network's last address, which only a lab of 61 hosts would give a host.
    if (replicas === 2 && o.hosts.length >= MAX_MGMT_HOSTS)
      throw capacity(`a lab with two server replicas has at most ${MAX_MGMT_HOSTS - 1} hosts (asked for ${o.hosts.length})`);
    const lab = await Lab.create({ name: o.name });
    const dir = lab.file(mkdtempSync(join(tmpdir(), `weft-${o.name}-`)));
    const db = want === 'sqlite' ? `sqlite:${join(dir, 'weft.db')}` : want;
    const servers: LabServer[] = [];
    const c = new OverlayLab(lab, servers, db, dir, o.lazy === true);
    writeSecretFile('tokenFile', c.tokenFile, c.adminToken);
    try {
      const specs = o.hosts.map(hostSpec);
      const building = Promise.all(specs.map((h) => lab.addHost(h.name, { rack: h.rack, spine: h.spine, link: h.link })));
      const starting = (async () => {
        const ips = [lab.mgmtRootIp];
        if (replicas === 2) {
          const ip = addrOf(mgmtHostCidr(lab.slot, MAX_MGMT_HOSTS - 1));
          // On the lab's own root link: it goes when the link does.
          await run('ip', ['addr', 'add', `${ip}/${lab.mgmtSubnet.split('/')[1]}`, 'dev', rootLinkName(lab.name)]);
          ips.push(ip);
        }
        for (const [i, ip] of ips.entries()) {
          // Replica 2 listens on the ports replica 1 got, on its own address: an agent names replicas by address only.
          const s = await c.spawnServer(ip, c.ports);
          c.ports = { svp: s.svp.port, stream: s.stream.port };
          servers.push({ n: i + 1, ip, url: s.url, api: new ApiClient(s.url, c.adminToken), proc: s });
        }
      })();
      // The servers start while the namespaces are built (neither needs the other); both settle before anything goes on or is cleaned up.
      const [built, started] = await Promise.allSettled([building, starting]);
      if (built.status === 'rejected') throw built.reason;
      if (started.status === 'rejected') throw started.reason;
      const hosts = built.value;
      const api = c.api;
      const sites = await api.get<{ items: { name: string }[] }>('/v1/sites');
      if (sites.items.length > 0)
        throw invalid(
          'db',
          redactDb(db),
          `must be an empty database: it holds site ${sites.items.map((x) => x.name).join(', ')} already (give every lab a fresh one)`,
        );
      for (const site of o.sites ?? [{ name: 'lab', underlayPool: '192.0.2.0/24', ...o.site }]) await api.post('/v1/sites', site);
      for (const rack of new Set(specs.map((h) => `${h.site}/${h.rack}`))) {
        const [site, name] = rack.split('/');
        await api.post('/v1/racks', { site, name });
      }
      for (const [n, h] of hosts.entries()) {
        const site = (specs[n] as { site: string }).site;
        const made = await api.post<{ id: string }>('/v1/hosts', {
          name: h.name,
          site,
          rack: h.rack,
          underlayIp: h.underlayIp,
          ...(o.hostAsn ? { asn: o.hostAsn(n) } : {}),
          // A lazy agent polls the shoot-down log over the management network, from its address there.
          ...(o.lazy ? { svpClient: true, svpClientAddresses: [h.mgmtIp] } : {}),
          capacity: { cpus: 64, memoryMb: 262144, diskGb: 4000 },
        });
        c.hosts.set(h.name, { name: h.name, lab: h, site, hostId: made.id, agent: null, logFile: join(dir, `agent-${h.name}.log`) });
      }
      if (o.startAgents !== false) await Promise.all([...c.hosts.keys()].map((h) => c.startAgent(h)));
      return c;
    } catch (e) {
      for (const s of servers) await s.proc?.stop();
      await lab.destroy();
      throw e;
    }
  }

  /** Starts a `weft server` on the lab's store, its SVP and stream on `ip` (ports 0: any), its API on `api` (default any port of 127.0.0.1). */
  private async spawnServer(ip: string, ports: { svp: number; stream: number }, api = '127.0.0.1:0'): Promise<ServerProcess> {
    const s = await startServerProcess({
      db: this.db,
      adminToken: this.adminToken,
      args: ['--api-listen', api, '--svp', `${ip}:${ports.svp}`, '--stream', `${ip}:${ports.stream}`, '--log-level', 'warn'],
    });
    // Recorded with the lab: if its owner dies, the next lab (or `weft lab down`) kills the server too.
    this.lab.own(s.proc.pid);
    return s;
  }

  /** Kills replica `n` with SIGKILL (a crash) and waits until it is gone. Idempotent. */
  async killServer(n: number): Promise<void> {
    const s = this.replica(n);
    await s.proc?.kill();
    s.proc = null;
  }

  /**
   * Starts replica `n` again on the same store, its API, SVP and stream on
   * the addresses and ports it had (the agents know only those). Throws
   * E_CONFLICT if it runs.
   */
  async startServer(n: number): Promise<ServerProcess> {
    const s = this.replica(n);
    if (s.proc) throw new WeftError('E_CONFLICT', `server ${n} of lab ${this.lab.name} is running`);
    s.proc = await this.spawnServer(s.ip, this.ports, new URL(s.url).host);
    return s.proc;
  }

  /** Starts (or restarts) a host's agent and waits until it is connected. */
  async startAgent(name: string): Promise<void> {
    const h = this.host(name);
    const tokenFile = join(this.dir, `token-${name}`);
    const { secret } = await this.api.post<{ secret: string }>('/v1/tokens', { name: `agent-${name}-${Date.now()}`, role: 'agent', host: name });
    writeFileSync(tokenFile, secret, { mode: 0o600 });
    const fd = openSync(h.logFile, 'a');
    const args = ['agent', '--server', this.serverList(name).join(','), '--stream-port', String(this.ports.stream), '--svp-port', String(this.ports.svp)];
    args.push('--host', name, '--token-file', tokenFile, '--metrics', `${h.lab.mgmtIp}:${AGENT_METRICS_PORT}`);
    if (this.lazy) args.push('--lazy');
    args.push(...(this.agentArgs.get(name) ?? ['--no-routing']));
    h.agent = this.lab.spawn(h.lab.ns, WEFT_BIN, args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    await until(`agent ${name} connected`, async () => (await this.health(name).catch(() => null))?.connected === true, 30_000);
  }

  /**
   * The replicas a host's agent is given, in order: with two, every other
   * host (in the order the lab made them) starts on replica 2, so the
   * agents are spread across both.
   */
  serverList(name: string): string[] {
    const ips = this.servers.map((s) => s.ip);
    const i = [...this.hosts.keys()].indexOf(name);
    return i % 2 === 1 ? [...ips.slice(1), ...ips.slice(0, 1)] : ips;
  }

  /** The replica (1, 2) with this management address, or null. */
  serverAt(ip: string | undefined): number | null {
    return this.servers.find((s) => s.ip === ip)?.n ?? null;
  }

  /**
   * Every connected agent as the replicas that run list them (each lists
   * only its own), and the change-log head (the highest they report).
   * Throws E_UNAVAILABLE when no replica answers.
   */
  async agents(): Promise<{ head: number; items: AgentItem[] }> {
    const live = this.servers.filter((s) => s.proc);
    if (live.length === 0) throw new WeftError('E_UNAVAILABLE', `no server of lab ${this.lab.name} is running`);
    const got = await Promise.all(live.map(async (s) => ({ n: s.n, r: await s.api.get<{ head: number; items: Omit<AgentItem, 'server'>[] }>('/v1/agents') })));
    const byHost = new Map<string, AgentItem>();
    for (const { n, r } of got)
      for (const a of r.items) {
        // A replica may list a connection for a moment after the agent moved on: the newest counts.
        const seen = byHost.get(a.hostId);
        if (!seen || a.connectedAt > seen.connectedAt) byHost.set(a.hostId, { ...a, server: n });
      }
    return { head: Math.max(...got.map((g) => g.r.head)), items: [...byHost.values()] };
  }

  /** Kills a host's agent (SIGKILL by default: no chance to clean up) and waits for it to be gone. */
  async killAgent(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const h = this.host(name);
    const a = h.agent;
    if (!a || a.exitCode !== null || a.signalCode !== null) return;
    const gone = new Promise((r) => a.once('exit', r));
    a.kill(signal);
    await gone;
    h.agent = null;
  }

  async health(name: string): Promise<AgentHealth> {
    const r = await fetch(`http://${this.host(name).lab.mgmtIp}:${AGENT_METRICS_PORT}/healthz`, { signal: AbortSignal.timeout(2000) });
    return (await r.json()) as AgentHealth;
  }

  async metrics(name: string): Promise<string> {
    return (await fetch(`http://${this.host(name).lab.mgmtIp}:${AGENT_METRICS_PORT}/metrics`)).text();
  }

  /**
   * Waits until every running agent has applied the change-log head (as the
   * server counts it: changes of no concern to a host count as applied) and
   * has no port waiting for its interface.
   */
  async converged(ms = 10_000): Promise<void> {
    await until(
      'every agent at the head with no port waiting',
      async () => {
        const a = await this.agents();
        for (const h of this.hosts.values()) {
          if (!h.agent) continue;
          const applied = a.items.find((i) => i.hostId === h.hostId)?.appliedVersion ?? -1;
          if (applied < a.head) return false;
          const s = await this.health(h.name).catch(() => null);
          if (!s || s.waiting > 0) return false;
        }
        return true;
      },
      ms,
    ).catch(async (e) => {
      const states = await Promise.all(
        [...this.hosts.values()].map(async (h) => `${h.name}: ${JSON.stringify(await this.health(h.name).catch((x) => String(x)))}`),
      );
      throw new WeftError('E_UNAVAILABLE', `${(e as Error).message}\n${states.join('\n')}\n${this.logs()}`, undefined, { cause: e });
    });
  }

  async network(tenant: string, name: string, subnets: string[], mtu = 1450): Promise<void> {
    if ((await this.api.get<{ items: unknown[] }>(`/v1/tenants?name=${tenant}`)).items.length === 0) {
      await this.api.post('/v1/tenants', { name: tenant });
      // A key, so the tenant's instances' profiles authorize one.
      await this.api.post('/v1/keys', { tenant, name: 'example', publicKey: EXAMPLE_SSH_KEY });
    }
    const n = await this.api.post<{ id: string }>('/v1/networks', { tenant, name, kind: 'overlay', subnets, mtu });
    this.nets.set(`${tenant}/${name}`, { id: n.id, subnets, mtu });
  }

  /**
   * An instance with one port on `tenant/network`, placed on `host` (or where
   * placement puts it), created through replica `via` (default: the first
   * running), and its VM namespace plugged there.
   */
  async vm(name: string, o: { tenant: string; network: string; host?: string; site?: string; via?: number }): Promise<LabVm> {
    return this.plug(name, o, await this.instance(name, o));
  }

  /**
   * The API half of `vm`: creates the instance in site `site` (default the
   * host's, else `lab`), on `host` or where placement puts it.
   */
  async instance(name: string, o: { tenant: string; network: string; host?: string; site?: string; via?: number }): Promise<InstanceView> {
    if (!this.nets.has(`${o.tenant}/${o.network}`)) throw notFound('network', `${o.tenant}/${o.network}`);
    const api = o.via === undefined ? this.api : this.replica(o.via).api;
    return api.post<InstanceView>('/v1/instances', {
      tenant: o.tenant,
      name,
      site: o.site ?? (o.host ? this.host(o.host).site : 'lab'),
      ...(o.host ? { host: o.host } : {}),
      size: 'small',
      image: EXAMPLE_IMAGE,
      ports: [{ network: o.network }],
    });
  }

  /** The lab half of `vm`: the VM namespace of `inst` (made by `instance`), plugged into its host. */
  async plug(name: string, o: { tenant: string; network: string; host?: string }, inst: InstanceView): Promise<LabVm> {
    const net = this.nets.get(`${o.tenant}/${o.network}`);
    if (!net) throw notFound('network', `${o.tenant}/${o.network}`);
    const port = inst.ports[0] as PortView;
    const host = o.host ?? this.hostName(inst.hostId);
    const len = (fam: string) => net.subnets.find((s) => s.includes(':') === (fam === '6'))?.split('/')[1];
    const vm = await this.lab.addVm(host, {
      name,
      ifname: portIfname(port.id),
      mac: port.mac,
      ipv4: port.ipv4 ? `${port.ipv4}/${len('4')}` : null,
      ipv6: port.ipv6 ? `${port.ipv6}/${len('6')}` : null,
      mtu: net.mtu,
    });
    const v = { name, instance: inst, port, vm };
    this.vms.set(name, v);
    return v;
  }

  /** The lab name of the host with this id. */
  hostName(hostId: string): string {
    for (const h of this.hosts.values()) if (h.hostId === hostId) return h.name;
    throw notFound('lab host with id', hostId);
  }

  /**
   * Live-migrates a VM: the API moves the instance (to host `to`, or where
   * placement picks), the lab switches the VM's link over. Returns the host it is on now.
   */
  async move(name: string, to?: string): Promise<string> {
    const v = this.vms.get(name);
    if (!v) throw notFound('vm', name);
    v.instance = await this.api.post<InstanceView>(`/v1/instances/${v.instance.id}/migrate`, to ? { target: to } : {});
    const host = this.hostName(v.instance.hostId);
    v.vm = await this.lab.moveVm(name, host, portIfname(v.port.id));
    return host;
  }

  /** `count` pings `interval` s apart from a VM; returns how many were answered. */
  async ping(from: string, ip: string, o: { count?: number; interval?: number; wait?: number } = {}): Promise<{ sent: number; received: number }> {
    const r = await this.lab.exec(
      this.vmNs(from),
      'ping',
      ['-n', '-q', '-c', String(o.count ?? 3), '-i', String(o.interval ?? 0.2), '-W', String(o.wait ?? 1), ip],
      {
        okCodes: [1],
      },
    );
    return pingStats(r.stdout);
  }

  /**
   * Starts a ping every `interval` s from a VM (by name) or any namespace
   * (`{ ns }`); stop() ends it and returns what was sent and answered.
   */
  pingLoop(from: string | { ns: string }, ip: string, interval = 0.01): { stop(): Promise<{ sent: number; received: number }> } {
    const p = this.lab.spawn(typeof from === 'string' ? this.vmNs(from) : from.ns, 'ping', ['-n', '-q', '-i', String(interval), '-W', '1', ip], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const done = new Promise((r) => p.once('exit', r));
    return {
      async stop() {
        // Let the last echo's answer come back, then end it; ping prints its summary on SIGINT.
        await new Promise((r) => setTimeout(r, 100));
        p.kill('SIGINT');
        await done;
        return pingStats(out);
      },
    };
  }

  vmNs(name: string): string {
    const v = this.vms.get(name);
    if (!v) throw notFound('vm', name);
    return v.vm.ns;
  }

  host(name: string): LabHost {
    const h = this.hosts.get(name);
    if (!h) throw notFound('host', name);
    return h;
  }

  /** The agents' logs (for failure messages). */
  logs(): string {
    return [...this.hosts.values()].map((h) => `--- ${h.name}\n${readSafe(h.logFile).slice(-3000)}`).join('\n');
  }

  async destroy(): Promise<void> {
    for (const h of this.hosts.values()) await this.killAgent(h.name).catch(() => {});
    for (const s of this.servers) await s.proc?.stop();
    await this.lab.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function readSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export function pingStats(out: string): { sent: number; received: number } {
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  if (!m) throw new WeftError('E_INTERNAL', `no ping summary in: ${out}`);
  return { sent: Number(m[1]), received: Number(m[2]) };
}

/** Starts tcpdump in a namespace writing to a file, once it listens; stop() ends it and returns one decoded line per packet. */
export async function capture(lab: Lab, ns: string, ifname: string, file: string): Promise<{ stop(): Promise<string[]> }> {
  lab.file(file);
  // --immediate-mode: without it libpcap hands packets over in blocks about once a second, and a short capture
  // stopped by SIGINT can end with the packets still in the kernel's ring, never written.
  const p = lab.spawn(ns, 'tcpdump', ['-i', ifname, '--immediate-mode', '-U', '-n', '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  await until(`tcpdump on ${ns}/${ifname}`, () => err.includes('listening on'), 10_000);
  const done = new Promise((r) => p.once('exit', r));
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 200));
      p.kill('SIGINT');
      await done;
      const r = await run('tcpdump', ['-r', file, '-n', '-e'], { okCodes: [1] });
      // One entry per packet: tcpdump prints a VXLAN packet's inner frame on a line of its own.
      const packets: string[] = [];
      for (const l of r.stdout.split('\n')) {
        if (l.trim() === '') continue;
        if (/^\d\d:\d\d:\d\d\./.test(l) || packets.length === 0) packets.push(l);
        else packets[packets.length - 1] += ` | ${l.trim()}`;
      }
      return packets;
    },
  };
}
