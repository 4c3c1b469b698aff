// `weft agent`: wires the push stream, the Agent, the Linux dataplane, the
// link watcher (ports appearing as the hypervisor makes them), lazy mode and
// the agent's /metrics into one process. Runs as root on every hypervisor.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import client from 'prom-client';
import { StreamClient } from '../stream/client.js';
import { STREAM_PORT } from '../stream/protocol.js';
import { Agent, type AgentLog } from './agent.js';
import { stopAnnouncers } from './dataplane/linux/announce.js';
import { LinuxDataplane } from './dataplane/linux/linux-dataplane.js';
import { LazyResolver } from './lazy.js';
import { PORT_PREFIX, portIfname } from './names.js';

export interface AgentProcessOptions {
  /** The server's stream address (management network). */
  server: string;
  streamPort?: number;
  svpPort?: number;
  host: string;
  token: string;
  tlsCa?: string;
  lazy?: boolean;
  arpRate?: number;
  ndRate?: number;
  /** host:port for /metrics and /healthz, or "off". */
  metrics?: string;
  netns?: string;
  log?: AgentLog;
}

export interface RunningAgent {
  agent: Agent;
  stream: StreamClient;
  dataplane: LinuxDataplane;
  lazy: LazyResolver | null;
  metricsAddress: string | null;
  registry: client.Registry;
  stop(): Promise<void>;
}

export const jsonLog: AgentLog = {
  info: (msg, ctx) => process.stderr.write(`${JSON.stringify({ level: 'info', time: new Date().toISOString(), msg, ...ctx })}\n`),
  warn: (msg, ctx) => process.stderr.write(`${JSON.stringify({ level: 'warn', time: new Date().toISOString(), msg, ...ctx })}\n`),
};

export async function runAgent(o: AgentProcessOptions): Promise<RunningAgent> {
  const log = o.log ?? jsonLog;
  const dataplane = new LinuxDataplane({ netns: o.netns });
  const agent = new Agent({ hostId: '', dataplane, lazy: o.lazy, arpRate: o.arpRate, ndRate: o.ndRate, log });
  let connected = false;
  const stream = new StreamClient({
    host: o.server,
    port: o.streamPort ?? STREAM_PORT,
    tlsCa: o.tlsCa ? readFileSync(o.tlsCa) : undefined,
    hostRef: o.host,
    token: o.token,
    handler: agent.handler,
    onWelcome: (hostId, mode) => {
      connected = true;
      agent.state.hostId = hostId;
      log.info('connected to the push stream', { server: o.server, hostId, mode });
    },
    onClose: () => {
      if (connected) log.warn('push stream closed; reconnecting', { server: o.server });
      connected = false;
    },
    onError: (e) => log.warn('push stream error', { error: e.message }),
  });
  agent.onApplied = (ops) => {
    if (ops.length === 0) return;
    const kinds: Record<string, number> = {};
    for (const op of ops) kinds[op.op] = (kinds[op.op] ?? 0) + 1;
    log.info('applied', { version: agent.state.version, steps: kinds, ms: Math.round(agent.stats.lastReconcileMs) });
  };

  // The hypervisor makes port interfaces when it starts a VM: plug them as they appear.
  let watcher: ChildProcess | null = null;
  let stopped = false;
  let pending: NodeJS.Timeout | null = null;
  const refreshLinks = () => {
    pending = null;
    dataplane
      .observeLinks()
      .then((links) => agent.linksChanged(links))
      .catch((e) => log.warn('link refresh failed', { error: (e as Error).message }));
  };
  const watch = () => {
    if (stopped) return;
    watcher = spawn('ip', [...(o.netns ? ['-n', o.netns] : []), '-o', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'inherit'] });
    watcher.stdout?.on('data', (b: Buffer) => {
      if (b.includes(PORT_PREFIX) && !pending) pending = setTimeout(refreshLinks, 10);
    });
    watcher.on('exit', () => {
      if (!stopped) setTimeout(watch, 500).unref();
    });
  };
  watch();

  const lazy = o.lazy
    ? new LazyResolver({ svpHost: o.server, svpPort: o.svpPort ?? 1296, underlayIp: () => agent.state.host?.underlayIp ?? null, netns: o.netns, log })
    : null;
  lazy?.start();
  stream.start();

  const registry = agentMetrics(agent, dataplane, lazy, () => connected);
  let http: Server | null = null;
  let metricsAddress: string | null = null;
  if (o.metrics && o.metrics !== 'off') {
    const i = o.metrics.lastIndexOf(':');
    const host = o.metrics.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0';
    const port = Number(o.metrics.slice(i + 1));
    http = createServer((req, res) => {
      if (req.url === '/metrics') {
        registry
          .metrics()
          .then((text) => {
            res.writeHead(200, { 'content-type': registry.contentType });
            res.end(text);
          })
          .catch((e) => {
            res.writeHead(500);
            res.end(String(e));
          });
      } else if (req.url === '/healthz') {
        res.writeHead(connected ? 200 : 503, { 'content-type': 'application/json' });
        const c = agent.current;
        res.end(
          JSON.stringify({
            connected,
            version: agent.appliedVersion,
            waiting: agent.stats.waiting,
            reconciles: agent.stats.reconciles,
            lastReconcileMs: agent.stats.lastReconcileMs,
            failures: agent.stats.failures,
            objects: { vnis: c.vnis.size, ports: c.plugs.size, fdb: c.fdb.size, neigh: c.neigh.size, guards: c.guards.size },
          }),
        );
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve, reject) => {
      http?.once('error', reject);
      http?.listen(port, host, () => resolve());
    });
    const a = http.address() as { address: string; port: number };
    metricsAddress = `${a.address}:${a.port}`;
  }

  return {
    agent,
    stream,
    dataplane,
    lazy,
    metricsAddress,
    registry,
    async stop() {
      stopped = true;
      stream.stop();
      agent.stop();
      lazy?.stop();
      watcher?.kill();
      stopAnnouncers();
      if (pending) clearTimeout(pending);
      await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
    },
  };
}

function agentMetrics(agent: Agent, dp: LinuxDataplane, lazy: LazyResolver | null, connected: () => boolean): client.Registry {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'weft_agent_process_' });
  const gauge = (name: string, help: string, value: () => number) =>
    new client.Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value());
      },
    });
  gauge('weft_agent_connected', '1 while the push stream is connected', () => (connected() ? 1 : 0));
  gauge('weft_agent_applied_version', 'The change-log version the kernel holds', () => agent.appliedVersion);
  gauge('weft_agent_waiting_ports', 'Local ports whose interface the hypervisor has not made yet', () => agent.stats.waiting);
  gauge('weft_agent_last_reconcile_seconds', 'Duration of the last reconcile that changed something', () => agent.stats.lastReconcileMs / 1000);
  new client.Gauge({
    name: 'weft_agent_kernel_objects',
    help: 'Objects weft holds in the kernel, by kind',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      const c = agent.current;
      this.set({ kind: 'vni' }, c.vnis.size);
      this.set({ kind: 'port' }, c.plugs.size);
      this.set({ kind: 'fdb' }, c.fdb.size);
      this.set({ kind: 'neigh' }, c.neigh.size);
      this.set({ kind: 'guard' }, c.guards.size);
    },
  });
  const seen = { ops: new Map<string, number>(), failures: new Map<string, number>() };
  const fromStats = (name: string, help: string, which: 'ops' | 'failures') =>
    new client.Counter({
      name,
      help,
      labelNames: ['op'] as const,
      registers: [registry],
      collect() {
        for (const [op, n] of Object.entries(agent.stats[which])) {
          const before = seen[which].get(op) ?? 0;
          if (n > before) this.inc({ op }, n - before);
          seen[which].set(op, n);
        }
      },
    });
  fromStats('weft_agent_steps_total', 'Dataplane steps applied, by kind', 'ops');
  fromStats('weft_agent_step_failures_total', 'Dataplane steps that failed (and were retried), by kind', 'failures');
  // nftables counters restart when a port's chain is rewritten; the exported counter never goes back.
  const last = new Map<string, number>();
  new client.Counter({
    name: 'weft_guard_drops_total',
    help: 'Packets dropped by a port guard, by port and guard',
    labelNames: ['port', 'ifname', 'guard'] as const,
    registers: [registry],
    async collect() {
      const byIf = new Map<string, string>();
      for (const p of agent.state.ports.values()) if (p.hostId === agent.state.hostId) byIf.set(portIfname(p.portId), p.portId);
      for (const c of await dp.guards.counters()) {
        const key = `${c.ifname}|${c.guard}`;
        const before = last.get(key) ?? 0;
        const add = c.packets >= before ? c.packets - before : c.packets;
        last.set(key, c.packets);
        this.inc({ port: byIf.get(c.ifname) ?? '', ifname: c.ifname, guard: c.guard }, add);
      }
    },
  });
  if (lazy) {
    new client.Gauge({
      name: 'weft_agent_lazy_events',
      help: 'Lazy mode: misses seen, resolved, not found, shoot-downs applied, errors',
      labelNames: ['event'] as const,
      registers: [registry],
      collect() {
        for (const [event, n] of Object.entries(lazy.stats)) this.set({ event }, n);
      },
    });
  }
  return registry;
}
