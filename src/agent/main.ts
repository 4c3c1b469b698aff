// `weft agent`: wires the push stream, the Agent, the Linux dataplane, the
// link watcher (ports appearing as the hypervisor makes them), lazy mode and
// the agent's /metrics into one process. Runs as root on every hypervisor.
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { isIP } from 'node:net';
import client from 'prom-client';
import type { LoggedChange } from '../model/changes.js';
import { invalid, WeftError } from '../model/errors.js';
import type { DomainType } from '../model/profile-render.js';
import { StreamClient } from '../stream/client.js';
import {
  type AgentGuards,
  type AgentRouting,
  type AgentVms,
  MAX_REPORTED_UNGUARDED,
  MAX_REPORTED_VM_FAILURES,
  STREAM_PORT,
  type UnguardedPort,
} from '../stream/protocol.js';
import { type Log, pinoLog } from '../sys/log.js';
import { registerProcessMetrics } from '../sys/metrics.js';
import { readPem } from '../sys/pem.js';
import { readSecretFile } from '../sys/secret-file.js';
import { Agent } from './agent.js';
import { Consoles } from './consoles.js';
import { stopAnnouncers } from './dataplane/linux/announce.js';
import { LinuxDataplane } from './dataplane/linux/linux-dataplane.js';
import { LazyResolver } from './lazy.js';
import { portIfname } from './names.js';
import { BirdControl } from './routing/bird.js';
import { type ConfirmedStore, Routing, type RoutingStatus, type SessionFields } from './routing/routing.js';
import { loadRoutingSettings, type RoutingFlags } from './routing/settings.js';
import { VirshHost } from './vm/virsh.js';
import { Vms } from './vms.js';

/** The most server replicas an agent may be given. */
export const MAX_SERVERS = 8;

/**
 * `--server`: one address or a comma-separated list of server replicas
 * (IPv4, IPv6 or a DNS name; the ports are `--stream-port` and
 * `--svp-port`), tried in order. Throws E_INVALID_ARG naming the bad entry.
 */
export function parseServers(v: unknown): string[] {
  if (typeof v !== 'string' || v.trim() === '') throw invalid('--server', v, "must be the server's address, or a comma-separated list of its replicas (a,b)");
  const list = v.split(',').map((x) => x.trim());
  for (const a of list) {
    if (a === '') throw invalid('--server', v, 'has an empty entry: addresses separated by single commas (a,b)');
    const ip = isIP(a.replace(/^\[|\]$/g, ''));
    const name = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(a);
    if (!ip && !name)
      throw invalid('--server', v, `entry ${JSON.stringify(a)} is not an IPv4, IPv6 or DNS name (no port: the ports are --stream-port and --svp-port)`);
  }
  const plain = list.map((a) => a.replace(/^\[|\]$/g, ''));
  const dup = plain.find((a, i) => plain.indexOf(a) !== i);
  if (dup !== undefined) throw invalid('--server', v, `names ${dup} twice: each replica once`);
  if (plain.length > MAX_SERVERS) throw invalid('--server', v, `names ${plain.length} replicas: at most ${MAX_SERVERS}`);
  return plain;
}

export interface AgentProcessOptions {
  /** The server's address on the management network, or its replicas' (tried in order, the next at once when one fails). */
  server: string | string[];
  streamPort?: number;
  svpPort?: number;
  host: string;
  token: string;
  /** The file `token` was read from: read again at each connection attempt, so a new token written to it is used without a restart. */
  tokenFile?: string;
  /**
   * TLS on the push stream: trust this CA (PEM file) for the server's
   * certificate and, for mutual TLS, present this host's certificate and key.
   * `cert` and `key` go together and need `ca`.
   */
  streamTls?: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined };
  lazy?: boolean;
  arpRate?: number;
  ndRate?: number;
  /**
   * host:port for /metrics and /healthz, or "off". An empty host (":9478",
   * the CLI's default) is the management address: the local address the
   * kernel routes the first server's traffic from.
   */
  metrics?: string;
  netns?: string;
  log?: Log;
  /** BGP through BIRD: its control socket and the config file the agent owns; null or absent: no routing. */
  routing?: { birdSocket: string; birdConf: string; flags?: RoutingFlags; undoAfterMs?: number } | null;
  /**
   * The host's VMs (docs/vm-profiles.md): their profiles' files under
   * `dir`/instances, and with `libvirt` (a connection URI) their domains.
   * Absent: the agent leaves VMs alone and does not ask for instances.
   */
  vm?: { dir: string; libvirt?: string | undefined; domainType?: DomainType | undefined } | null;
}

/** The stream's TLS files, read and checked; undefined for plain TCP. Throws E_INVALID_ARG naming the flag. */
export function streamTlsFiles(f: NonNullable<AgentProcessOptions['streamTls']>): { ca: Buffer; cert?: Buffer; key?: Buffer } | undefined {
  if ((f.cert === undefined) !== (f.key === undefined)) {
    const [given, missing] = f.cert === undefined ? ['--stream-tls-key', '--stream-tls-cert'] : ['--stream-tls-cert', '--stream-tls-key'];
    throw new WeftError(
      'E_INVALID_ARG',
      `invalid ${missing} (none): ${given} is given; a client certificate needs both --stream-tls-cert and --stream-tls-key`,
      missing,
    );
  }
  if (f.ca === undefined) {
    if (f.cert !== undefined)
      throw new WeftError(
        'E_INVALID_ARG',
        "invalid --stream-tls-ca (none): a client certificate (--stream-tls-cert) is used over TLS; give the CA that signed the server's certificate",
        '--stream-tls-ca',
      );
    return undefined;
  }
  const ca = readPem('--stream-tls-ca', f.ca, 'certificate');
  if (f.cert === undefined || f.key === undefined) return { ca };
  return { ca, cert: readPem('--stream-tls-cert', f.cert, 'certificate'), key: readPem('--stream-tls-key', f.key, 'private key') };
}

export interface RunningAgent {
  agent: Agent;
  /** The host's VMs, when the agent manages them (`--vm-dir`). */
  vms: Vms | null;
  stream: StreamClient;
  dataplane: LinuxDataplane;
  lazy: LazyResolver | null;
  routing: Routing | null;
  metricsAddress: string | null;
  registry: client.Registry;
  stop(): Promise<void>;
}

/**
 * What reads the agent's token at each connection attempt: the file again
 * (mode-checked as at start), so an operator rotates a revoked token by
 * writing the new one to it. A file that cannot be read then keeps the token
 * read last, and says why once per change of reason.
 */
export function tokenReader(file: string, first: string, log: Pick<Log, 'warn'>): () => string {
  let token = first;
  let said = '';
  return () => {
    try {
      token = readSecretFile('--token-file', file);
      said = '';
    } catch (e) {
      const why = (e as Error).message;
      if (why !== said) log.warn('cannot read the token file again; using the token read before', { file, error: why });
      said = why;
    }
    return token;
  };
}
/** JSON lines at info on stdout, in the server's (pino's) format. */
export const jsonLog: Log = pinoLog('info');

export async function runAgent(o: AgentProcessOptions): Promise<RunningAgent> {
  const log = o.log ?? jsonLog;
  const servers = typeof o.server === 'string' ? parseServers(o.server) : o.server;
  if (servers.length === 0) throw invalid('server', o.server, 'must name at least one server address');
  // PEM files first: a wrong one stops the agent, naming its flag, before it touches anything.
  const tls = streamTlsFiles(o.streamTls ?? {});
  // Before anything starts: a bad --metrics (or no route to the server) stops the agent here.
  let metricsListen: { host: string; port: number } | null = null;
  if (o.metrics && o.metrics !== 'off') {
    const i = o.metrics.lastIndexOf(':');
    const port = Number(o.metrics.slice(i + 1));
    if (i < 0 || o.metrics.slice(i + 1) === '' || !Number.isInteger(port) || port < 0 || port > 65535)
      throw invalid('--metrics', o.metrics, 'must be HOST:PORT, :PORT (the management address) or off, with a port 0..65535');
    metricsListen = { host: o.metrics.slice(0, i).replace(/^\[|\]$/g, '') || (await managementAddress(servers[0] as string)), port };
  }
  const dataplane = new LinuxDataplane({ netns: o.netns });
  const agent = new Agent({ hostId: '', dataplane, lazy: o.lazy, arpRate: o.arpRate, ndRate: o.ndRate, log });
  let connected = false;
  // Settings first: a bad ROA or IRR file stops the agent before it touches anything.
  const settings = o.routing ? loadRoutingSettings(o.routing.flags ?? {}) : null;
  let routing: Routing | null = null;
  /** A new connection (maybe to another replica) knows nothing of the last report: send the next one. */
  let reportedReset = () => {};
  /** The unguarded ports go to the server on every connection, on change and every 30 s (as routing's report). */
  let guardsSent = '';
  const sendGuards = (force: boolean) => {
    const report = guardsReport(agent.unguardedPorts());
    const text = JSON.stringify(report);
    if ((force || text !== guardsSent) && stream.reportGuards(report)) guardsSent = text;
  };
  agent.onUnguarded = () => sendGuards(false);
  const guardsTimer = setInterval(() => {
    sendGuards(true);
    sendVms(true);
  }, 30_000);
  guardsTimer.unref();
  const vms = o.vm
    ? new Vms({
        dir: o.vm.dir,
        host: o.vm.libvirt ? new VirshHost({ uri: o.vm.libvirt, dir: o.vm.dir }) : null,
        domainType: o.vm.domainType,
        log,
        onPass: () => sendVms(false),
      })
    : null;
  /** The VMs' report goes to the server after each pass that changed it, on every connection and every 30 s. */
  let vmsSent = '';
  const sendVms = (force: boolean) => {
    if (!vms) return;
    const s = vms.status;
    const report: AgentVms = {
      running: s.running,
      stopped: s.stopped,
      noImage: s.noImage,
      failing: [...s.failed]
        .sort(([a], [b]) => a.localeCompare(b))
        .slice(0, MAX_REPORTED_VM_FAILURES)
        .map(([instanceId, reason]) => ({ instanceId, reason: reason.slice(0, 500) })),
    };
    const text = JSON.stringify(report);
    if ((force || text !== vmsSent) && stream.reportVms(report)) vmsSent = text;
  };
  /** The VMs follow the state once a snapshot carried instances (an older server sends none: nothing is touched). */
  let saidNoInstances = false;
  const updateVms = () => {
    if (!vms) return;
    if (!agent.state.instancesKnown) {
      if (!saidNoInstances) log.warn('the server sends no instances (older than this agent?): VMs are left as they are', { server: stream.server });
      saidNoInstances = true;
      return;
    }
    void vms.update(agent.state.instances, agent.state.hostId, {
      departed: agent.state.departed,
      arrived: agent.state.arrived,
      done: (id) => agent.state.departed.delete(id),
    });
  };
  // The state is updated synchronously when a handler is called, so routing sees it before the kernel sync finishes.
  const handler = {
    // Snapshot chunks go to the state as they arrive: the stream client then holds none of them.
    snapshotBegin: agent.handler.snapshotBegin,
    snapshotPorts: agent.handler.snapshotPorts,
    snapshot: (version: number, s: Parameters<typeof agent.handler.snapshot>[1]) => {
      const p = agent.handler.snapshot(version, s);
      routing?.update();
      updateVms();
      return p;
    },
    delta: (version: number, changes: Parameters<typeof agent.handler.delta>[1], vnis: number[]) => {
      const p = agent.handler.delta(version, changes, vnis);
      // Overlay ports never change routing: skip the pass (and its processes) on the common delta.
      if (changes.some(routingRelevant)) routing?.update();
      if (changes.some((c) => c.kind === 'instance.updated' || c.kind === 'instance.deleted')) updateVms();
      return p;
    },
  };
  const stream = new StreamClient({
    host: servers,
    port: o.streamPort ?? STREAM_PORT,
    tlsCa: tls?.ca,
    tlsCert: tls?.cert,
    tlsKey: tls?.key,
    hostRef: o.host,
    token: o.tokenFile === undefined ? o.token : tokenReader(o.tokenFile, o.token, log),
    handler,
    features: vms ? ['vm'] : [],
    onConsole: (m) => consoles?.handle(m),
    onWelcome: (hostId, mode, reason) => {
      // The server's log is not the one this agent followed (a restored store): its snapshot replaces everything.
      if (reason === 'ahead' || reason === 'diverged')
        log.warn("the server's change log differs from what this agent applied (restored?); taking a snapshot", {
          server: stream.server,
          reason,
          version: stream.version,
        });
      connected = true;
      agent.state.hostId = hostId;
      reportedReset();
      sendGuards(true);
      sendVms(true);
      void routing?.poll();
      log.info('connected to the push stream', { server: stream.server, hostId, mode, ...(reason ? { reason } : {}) });
    },
    onClose: () => {
      if (connected) log.warn('push stream closed; reconnecting', { server: stream.server, servers });
      connected = false;
      // Never given the host's instances (the last server sent none): the next one must send a snapshot that has them.
      if (vms && !agent.state.instancesKnown) stream.version = 0;
      consoles?.closeAll();
    },
    onError: (e) => log.warn('push stream error', { error: e.message }),
    // Revoked, unknown or another host's: nothing changes until the operator gives this agent a valid token.
    onRefused: (e, retryMs) =>
      log.warn(
        o.tokenFile === undefined
          ? "push stream refused this agent's token; give it a valid agent token for this host (--token-file) and restart it"
          : `push stream refused this agent's token; write a valid agent token for this host to ${o.tokenFile}: it is read again at the next attempt`,
        {
          server: stream.server,
          host: o.host,
          error: e.message,
          retryInMs: retryMs,
        },
      ),
  });
  const consoles = o.vm
    ? new Consoles({
        dir: o.vm.dir,
        instances: () => agent.state.instances,
        hostId: () => agent.state.hostId,
        send: (m) => stream.sendConsole(m),
        log,
      })
    : null;
  let observeReconcile = (_ms: number) => {};
  agent.onApplied = (ops) => {
    if (ops.length === 0) return;
    observeReconcile(agent.stats.lastReconcileMs);
    const kinds: Record<string, number> = {};
    for (const op of ops) kinds[op.op] = (kinds[op.op] ?? 0) + 1;
    log.info('applied', { version: agent.state.version, steps: kinds, ms: Math.round(agent.stats.lastReconcileMs) });
  };

  // The hypervisor makes port interfaces when it starts a VM: plug them as they appear.
  let pending: NodeJS.Timeout | null = null;
  const refreshLinks = () => {
    pending = null;
    dataplane
      .observeLinks()
      .then((links) => {
        routing?.update();
        return agent.linksChanged(links);
      })
      .catch((e) => log.warn('link refresh failed', { error: (e as Error).message }));
  };
  const watcher = dataplane.watchLinks(() => {
    if (!pending) pending = setTimeout(refreshLinks, 10);
  });

  const lazy = o.lazy
    ? new LazyResolver({ svpHost: servers, svpPort: o.svpPort ?? 1296, underlayIp: () => agent.state.host?.underlayIp ?? null, dataplane, log })
    : null;
  lazy?.start();
  if (o.routing && settings) {
    reportedReset = () => {
      reported = '';
    };
    let reported = '';
    let reportedAt = 0;
    routing = new Routing({
      state: agent.state,
      bird: new BirdControl({ socket: o.routing.birdSocket, confPath: o.routing.birdConf, netns: o.netns }),
      hostNet: dataplane,
      settings,
      connected: () => connected,
      lastHeard: () => stream.lastHeard,
      undoAfterMs: o.routing.undoAfterMs,
      running: readRunning(o.routing.birdConf),
      confirmedStore: fileStore(`${o.routing.birdConf}.weft-confirmed.json`),
      log,
      onStatus: (s) => {
        const report = routingReport(s);
        const text = JSON.stringify(report);
        // On change, and every 30 s so a new server replica learns it too; only what was written counts as sent.
        if ((text !== reported || Date.now() - reportedAt > 30_000) && stream.report(report)) {
          reported = text;
          reportedAt = Date.now();
        }
      },
    });
  }
  stream.start();

  const { registry, reconcileSeconds } = agentMetrics(agent, dataplane, lazy, () => connected, routing, vms);
  observeReconcile = (ms) => reconcileSeconds.observe(ms / 1000);
  let http: Server | null = null;
  let metricsAddress: string | null = null;
  if (metricsListen) {
    const { host, port } = metricsListen as { host: string; port: number };
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
        const unguarded = agent.unguardedPorts();
        res.end(
          JSON.stringify({
            // unavailable: no push stream; degraded: some local ports are kept unplugged for want of a guard.
            status: !connected ? 'unavailable' : unguarded.length > 0 ? 'degraded' : 'ok',
            connected,
            // The replica connected to (or being tried while not connected).
            server: stream.server,
            version: agent.appliedVersion,
            waiting: agent.stats.waiting,
            reconciles: agent.stats.reconciles,
            lastReconcileMs: agent.stats.lastReconcileMs,
            failures: agent.stats.failures,
            objects: { vnis: c.vnis.size, ports: c.plugs.size, fdb: c.fdb.size, neigh: c.neigh.size, guards: c.guards.size },
            unguarded,
            routing: routing ? routingReport(routing.status) : null,
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
    vms,
    stream,
    dataplane,
    lazy,
    routing,
    metricsAddress,
    registry,
    async stop() {
      stream.stop();
      clearInterval(guardsTimer);
      agent.stop();
      routing?.stop();
      await vms?.stop();
      consoles?.closeAll();
      lazy?.stop();
      watcher.stop();
      // Its long-lived ip and bridge processes.
      dataplane.close();
      stopAnnouncers();
      if (pending) clearTimeout(pending);
      await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
    },
  };
}

/**
 * The address this host reaches `server` from (its management address): the
 * source the kernel's routing table picks, found by connecting a UDP socket
 * (which sends nothing). Throws E_INVALID_ARG when there is no route.
 */
export async function managementAddress(server: string): Promise<string> {
  const ip = isIP(server) ? server : (await lookup(server).catch(() => ({ address: '' }))).address;
  if (!ip) throw invalid('--server', server, 'does not resolve: cannot find the management address to serve /metrics on (give --metrics HOST:PORT)');
  const sock = createSocket(isIP(ip) === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.connect(9, ip, () => resolve());
    });
    return sock.address().address;
  } catch (e) {
    throw invalid('--server', server, `has no route from this host (${(e as Error).message}): give --metrics HOST:PORT`);
  } finally {
    sock.close();
  }
}

/** Whether a change can alter what routing renders: anything but a port on an overlay network. */
export function routingRelevant(c: LoggedChange): boolean {
  switch (c.kind) {
    case 'port.created':
    case 'port.deleted':
    case 'port.moved':
      return c.port.networkKind === 'routed';
    case 'port.updated':
      return c.port.networkKind === 'routed' || c.before.networkKind === 'routed';
    // A VM's record: its ports come as port.* changes of their own.
    case 'instance.updated':
    case 'instance.deleted':
      return false;
    default:
      return true;
  }
}

/** The confirmed BGP sessions in a JSON file next to bird.conf (written atomically). */
function fileStore(path: string): ConfirmedStore {
  return {
    load() {
      try {
        const f = JSON.parse(readFileSync(path, 'utf8')) as SessionFields;
        return Array.isArray(f.sessions) ? f : null;
      } catch {
        return null;
      }
    },
    save(f) {
      writeFileSync(`${path}.tmp`, `${JSON.stringify(f)}\n`);
      renameSync(`${path}.tmp`, path);
    },
  };
}

/** The config a previous agent left BIRD running ('' when there is none). */
function readRunning(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** The routing status as the server's API shows it. */
function routingReport(s: RoutingStatus): AgentRouting {
  return {
    birdUp: s.birdUp,
    inSync: s.inSync,
    // Bounded, as the whole report must fit the server's 64 KiB agent frame.
    lastError: s.lastError?.slice(0, 1000) ?? null,
    sessions: s.sessions.slice(0, 64).map((x) => {
      const sum = (f: 'imported' | 'filtered' | 'exported') => x.channels.reduce((n, c) => n + c[f], 0);
      return {
        peerId: x.peerId,
        neighbor: x.neighbor,
        state: x.bgpState,
        established: x.established,
        since: x.since,
        lastError: x.lastError?.slice(0, 200) ?? null,
        received: sum('imported') + sum('filtered'),
        accepted: sum('imported'),
        exported: sum('exported'),
      };
    }),
    // The server takes agent frames of at most 64 KiB: a host announcing more VIPs than this reports the first ones.
    announced: s.announced.slice(0, MAX_REPORTED_VIPS),
  };
}

const MAX_REPORTED_VIPS = 1000;

/** The unguarded ports as the server's API shows them: all counted, the first listed, reasons bounded (the report must fit a 64 KiB frame). */
function guardsReport(ports: UnguardedPort[]): AgentGuards {
  return {
    unguarded: ports.length,
    ports: ports.slice(0, MAX_REPORTED_UNGUARDED).map((p) => ({ ...p, reason: p.reason.slice(0, 500) })),
  };
}

function agentMetrics(
  agent: Agent,
  dp: LinuxDataplane,
  lazy: LazyResolver | null,
  connected: () => boolean,
  routing: Routing | null,
  vms: Vms | null,
): { registry: client.Registry; reconcileSeconds: client.Histogram } {
  const registry = new client.Registry();
  const reconcileSeconds = new client.Histogram({
    name: 'weft_agent_reconcile_seconds',
    help: 'Duration of each reconcile that changed something in the kernel',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  registerProcessMetrics(registry);
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
  if (vms)
    new client.Gauge({
      name: 'weft_agent_vms',
      help: "The host's instances as the agent keeps them: domains running and stopped (as libvirt says), without an image (no profile), failing (retried), awaiting their incoming live migration",
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        const s = vms.status;
        this.set({ state: 'running' }, s.running);
        this.set({ state: 'stopped' }, s.stopped);
        this.set({ state: 'no_image' }, s.noImage);
        this.set({ state: 'failing' }, s.failed.size);
        this.set({ state: 'awaiting_migration' }, s.awaiting);
      },
    });
  if (vms)
    new client.Counter({
      name: 'weft_agent_vm_migrations_total',
      help: 'Live migrations of instances from this host to another (shared storage), by result; a failed one is stopped here and started cold there',
      labelNames: ['result'] as const,
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ result: 'ok' }, vms.status.migrated);
        this.inc({ result: 'failed' }, vms.status.migrationsFailed);
      },
    });
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
  gauge('weft_agent_ports_unguarded', 'Local ports kept unplugged because their guard is not in place (listed in /healthz)', () => agent.unguarded.size);
  const guardFailures = new Map<string, number>();
  new client.Counter({
    name: 'weft_agent_guard_failures_total',
    help: 'Times a local port was left unplugged for want of a guard, by kind: refused (its spec cannot be rendered), failed (nft did not take it)',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      for (const [kind, n] of Object.entries(agent.stats.guardFailures)) {
        const before = guardFailures.get(kind) ?? 0;
        this.inc({ kind }, n - before);
        guardFailures.set(kind, n);
      }
    },
  });
  // nftables counters restart when a port's chain is rewritten; the exported counter never goes back.
  const last = new Map<string, number>();
  new client.Counter({
    name: 'weft_guard_drops_total',
    help: 'Packets dropped by a port guard, by port id and guard (the interface name follows from the port id)',
    labelNames: ['port', 'guard'] as const,
    registers: [registry],
    async collect() {
      const byIf = new Map<string, string>();
      for (const p of agent.state.localPorts()) byIf.set(portIfname(p.portId), p.portId);
      for (const c of await dp.guards.counters()) {
        const key = `${c.ifname}|${c.guard}`;
        const before = last.get(key) ?? 0;
        const add = c.packets >= before ? c.packets - before : c.packets;
        last.set(key, c.packets);
        const port = byIf.get(c.ifname);
        // A port no longer local: its chain is going away, its series stays where it ended.
        if (port !== undefined) this.inc({ port, guard: c.guard }, add);
      }
    },
  });
  // The routed ports' guards count per guard, for every routed port together (one table).
  const lastRouted = new Map<string, number>();
  new client.Counter({
    name: 'weft_routed_guard_drops_total',
    help: "Packets dropped by the routed ports' guards, by guard: spoof (a source that does not route back through its port), ra, dhcp-server",
    labelNames: ['guard'] as const,
    registers: [registry],
    async collect() {
      for (const c of await dp.routed.counters()) {
        const before = lastRouted.get(c.guard) ?? 0;
        this.inc({ guard: c.guard }, c.packets >= before ? c.packets - before : c.packets);
        lastRouted.set(c.guard, c.packets);
      }
    },
  });
  if (lazy) {
    monotonicCounter(registry, 'weft_agent_lazy_events_total', 'Lazy mode: misses seen, resolved, not found, shoot-downs applied, errors', () =>
      Object.entries(lazy.stats),
    );
  }
  if (routing) routingMetrics(registry, routing.status);
  return { registry, reconcileSeconds };
}

/**
 * A counter of numbers that only grow (a component's own tallies, by one
 * label `event`), read at scrape time: it adds what each grew since the last.
 */
function monotonicCounter(registry: client.Registry, name: string, help: string, read: () => [string, number][]): void {
  const seen = new Map<string, number>();
  new client.Counter({
    name,
    help,
    labelNames: ['event'] as const,
    registers: [registry],
    collect() {
      for (const [event, n] of read()) {
        const before = seen.get(event) ?? 0;
        this.inc({ event }, n > before ? n - before : 0);
        seen.set(event, Math.max(n, before));
      }
    },
  });
}

/** Routing's series, read from its status (one object Routing keeps current) at scrape time. */
export function routingMetrics(registry: client.Registry, s: RoutingStatus): void {
  new client.Gauge({
    name: 'weft_bird_up',
    help: '1 while BIRD answers on its control socket',
    registers: [registry],
    collect() {
      this.set(s.birdUp ? 1 : 0);
    },
  });
  new client.Gauge({
    name: 'weft_bird_config_in_sync',
    help: '1 when BIRD runs the config rendered from the current inputs (0: refused, rolled back, or unreachable)',
    registers: [registry],
    collect() {
      this.set(s.inSync ? 1 : 0);
    },
  });
  monotonicCounter(registry, 'weft_bird_events_total', 'BIRD reconfigurations, configs BIRD refused, and session changes rolled back', () => [
    ['configured', s.configures],
    ['rejected', s.rejected],
    ['rolled_back', s.rollbacks],
  ]);
  new client.Gauge({
    name: 'weft_bgp_session_up',
    help: '1 while a BGP session is Established',
    labelNames: ['peer', 'neighbor', 'protocol'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const x of s.sessions) this.set({ peer: x.peerId ?? '', neighbor: x.neighbor ?? '', protocol: x.name }, x.established ? 1 : 0);
    },
  });
  new client.Gauge({
    name: 'weft_bgp_routes',
    help: 'Routes per BGP session and family: received (before filters), accepted, exported (the neighbor is on weft_bgp_session_up)',
    labelNames: ['peer', 'protocol', 'family', 'kind'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const x of s.sessions)
        for (const c of x.channels) {
          const l = { peer: x.peerId ?? '', protocol: x.name, family: c.family };
          this.set({ ...l, kind: 'received' }, c.imported + c.filtered);
          this.set({ ...l, kind: 'accepted' }, c.imported);
          this.set({ ...l, kind: 'exported' }, c.exported);
        }
    },
  });
  new client.Gauge({
    name: 'weft_vip_backend_healthy',
    help: 'Health of each local VIP backend (1 healthy, 0 not)',
    labelNames: ['vip', 'address'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const b of s.backends) this.set({ vip: b.vipId, address: b.address }, b.healthy ? 1 : 0);
    },
  });
  // Its own series, so a backend's health keeps one identity while damping comes and goes.
  new client.Gauge({
    name: 'weft_vip_backend_suppressed',
    help: '1 while flap damping holds a local VIP backend down',
    labelNames: ['vip', 'address'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const b of s.backends) this.set({ vip: b.vipId, address: b.address }, b.suppressed ? 1 : 0);
    },
  });
  new client.Gauge({
    name: 'weft_vip_announced',
    help: 'VIP addresses this host announces over BGP now',
    labelNames: ['address'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const a of s.announced) this.set({ address: a }, 1);
    },
  });
}
