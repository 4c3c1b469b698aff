// A small cloud (for end-to-end tests, benchmarks and weft lab): a lab (src/lab) of host namespaces on
// a routed underlay, a real `weft server` in the root namespace listening on
// the lab's management network, one real `weft agent` per host namespace,
// and VMs as namespaces made from the API's ports. destroy() removes it all.
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { portIfname } from '../agent/names.js';
import { ApiClient } from '../cli/client.js';
import { run } from '../sys/exec.js';
import { until } from '../sys/until.js';
import { type Host, Lab, type Vm } from './builder.js';
import { type ServerProcess, startServerProcess, WEFT_BIN } from './server-process.js';

/** The admin token of every lab's server (labs are throwaway, on a management network of this machine). */
export const LAB_ADMIN_TOKEN = 'lab-admin-token-0123456789abcdef';
const TOKEN = LAB_ADMIN_TOKEN;
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

export class OverlayLab {
  readonly hosts = new Map<string, LabHost>();
  readonly vms = new Map<string, LabVm>();
  private readonly nets = new Map<string, { id: string; subnets: string[]; mtu: number }>();

  private constructor(
    readonly lab: Lab,
    readonly server: ServerProcess,
    readonly api: ApiClient,
    readonly dir: string,
    readonly lazy: boolean,
  ) {}

  /** Builds the lab, starts the server and one agent per host; hosts are `[name, rack]`. */
  /** Extra `weft agent` flags per host (routing); hosts without an entry run with `--no-routing`. */
  readonly agentArgs = new Map<string, string[]>();

  /**
   * Builds the lab, starts the server and one agent per host; hosts are
   * `[name, rack]`. `site` adds fields to the site (pools), `hostAsn` gives
   * the n-th host (0-based) an ASN, and `startAgents: false` leaves starting
   * them to the caller (after it has set `agentArgs`).
   */
  static async start(o: {
    name: string;
    hosts: [string, string][];
    lazy?: boolean;
    site?: Record<string, unknown>;
    hostAsn?: (n: number) => number;
    startAgents?: boolean;
  }): Promise<OverlayLab> {
    const lab = await Lab.create({ name: o.name });
    const dir = lab.file(mkdtempSync(join(tmpdir(), `weft-${o.name}-`)));
    let server: ServerProcess | null = null;
    try {
      const hosts = await Promise.all(o.hosts.map(([h, rack]) => lab.addHost(h, { rack })));
      server = await startServerProcess({
        db: `sqlite:${join(dir, 'weft.db')}`,
        adminToken: TOKEN,
        args: ['--svp', `${lab.mgmtRootIp}:0`, '--stream', `${lab.mgmtRootIp}:0`, '--log-level', 'warn'],
      });
      // Recorded with the lab: if its owner dies, the next lab (or `weft lab down`) kills the server too.
      lab.own(server.proc.pid);
      const api = new ApiClient(server.url, TOKEN);
      const c = new OverlayLab(lab, server, api, dir, o.lazy === true);
      await api.post('/v1/sites', { name: 'lab', underlayPool: '192.0.2.0/24', ...o.site });
      for (const rack of new Set(o.hosts.map(([, r]) => r))) await api.post('/v1/racks', { site: 'lab', name: rack });
      for (const [n, h] of hosts.entries()) {
        const made = await api.post<{ id: string }>('/v1/hosts', {
          name: h.name,
          site: 'lab',
          rack: h.rack,
          underlayIp: h.underlayIp,
          ...(o.hostAsn ? { asn: o.hostAsn(n) } : {}),
          capacity: { cpus: 64, memoryMb: 262144, diskGb: 4000 },
        });
        c.hosts.set(h.name, { name: h.name, lab: h, hostId: made.id, agent: null, logFile: join(dir, `agent-${h.name}.log`) });
      }
      if (o.startAgents !== false) await Promise.all([...c.hosts.keys()].map((h) => c.startAgent(h)));
      return c;
    } catch (e) {
      await server?.stop();
      await lab.destroy();
      throw e;
    }
  }

  /** Starts (or restarts) a host's agent and waits until it is connected. */
  async startAgent(name: string): Promise<void> {
    const h = this.host(name);
    const tokenFile = join(this.dir, `token-${name}`);
    const { secret } = await this.api.post<{ secret: string }>('/v1/tokens', { name: `agent-${name}-${Date.now()}`, role: 'agent', host: name });
    writeFileSync(tokenFile, secret, { mode: 0o600 });
    const fd = openSync(h.logFile, 'a');
    const args = ['agent', '--server', this.lab.mgmtRootIp, '--stream-port', String(this.server.stream.port), '--svp-port', String(this.server.svp.port)];
    args.push('--host', name, '--token-file', tokenFile, '--metrics', `${h.lab.mgmtIp}:${AGENT_METRICS_PORT}`);
    if (this.lazy) args.push('--lazy');
    args.push(...(this.agentArgs.get(name) ?? ['--no-routing']));
    h.agent = this.lab.spawn(h.lab.ns, WEFT_BIN, args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    await until(`agent ${name} connected`, async () => (await this.health(name).catch(() => null))?.connected === true, 30_000);
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

  async health(name: string): Promise<{ connected: boolean; version: number; waiting: number; failures: Record<string, number> }> {
    const r = await fetch(`http://${this.host(name).lab.mgmtIp}:${AGENT_METRICS_PORT}/healthz`, { signal: AbortSignal.timeout(2000) });
    return (await r.json()) as { connected: boolean; version: number; waiting: number; failures: Record<string, number> };
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
        const a = await this.api.get<{ head: number; items: { hostId: string; appliedVersion: number }[] }>('/v1/agents');
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
      throw new Error(`${(e as Error).message}\n${states.join('\n')}\n${this.logs()}`);
    });
  }

  async network(tenant: string, name: string, subnets: string[], mtu = 1450): Promise<void> {
    if ((await this.api.get<{ items: unknown[] }>(`/v1/tenants?name=${tenant}`)).items.length === 0) await this.api.post('/v1/tenants', { name: tenant });
    const n = await this.api.post<{ id: string }>('/v1/networks', { tenant, name, kind: 'overlay', subnets, mtu });
    this.nets.set(`${tenant}/${name}`, { id: n.id, subnets, mtu });
  }

  /** An instance with one port on `tenant/network`, placed on `host` (or where placement puts it), and its VM namespace plugged there. */
  async vm(name: string, o: { tenant: string; network: string; host?: string }): Promise<LabVm> {
    const net = this.nets.get(`${o.tenant}/${o.network}`);
    if (!net) throw new Error(`no network ${o.tenant}/${o.network}`);
    const inst = await this.api.post<InstanceView>('/v1/instances', {
      tenant: o.tenant,
      name,
      site: 'lab',
      ...(o.host ? { host: o.host } : {}),
      size: 'small',
      ports: [{ network: o.network }],
    });
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
    throw new Error(`no lab host has id ${hostId}`);
  }

  /**
   * Live-migrates a VM: the API moves the instance (to host `to`, or where
   * placement picks), the lab switches the VM's link over. Returns the host it is on now.
   */
  async move(name: string, to?: string): Promise<string> {
    const v = this.vms.get(name);
    if (!v) throw new Error(`no vm ${name}`);
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
    if (!v) throw new Error(`no vm ${name}`);
    return v.vm.ns;
  }

  host(name: string): LabHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  /** The agents' logs (for failure messages). */
  logs(): string {
    return [...this.hosts.values()].map((h) => `--- ${h.name}\n${readSafe(h.logFile).slice(-3000)}`).join('\n');
  }

  async destroy(): Promise<void> {
    for (const h of this.hosts.values()) await this.killAgent(h.name).catch(() => {});
    await this.server.stop();
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
  if (!m) throw new Error(`no ping summary in: ${out}`);
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
