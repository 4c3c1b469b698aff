// `weft lab up|check|status|move|fail|heal|down`: the lab lives in a
// background process (`weft lab daemon`) that owns every namespace and
// process it made, writes its progress to a state file and answers the other
// commands on a unix socket, one operation at a time. If it dies, the next
// `up` (or `down`) removes what it left.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { join } from 'node:path';
import { conflict, type ErrorCode, WeftError } from '../model/errors.js';
import { type CheckItem, Cloud, type CloudOptions, checkCloudOptions, type EvacuationReport, type FaultReport, type MoveReport } from './cloud.js';
import { checkLabDb, redactDb } from './overlay-lab.js';
import { destroyLab, isAlive, labDir, type ProcRef, procRef, readLab } from './registry.js';
import { WEFT_BIN } from './server-process.js';

export interface LabState {
  name: string;
  daemon: ProcRef;
  status: 'building' | 'ready' | 'failed' | 'stopping';
  stages: { at: number; stage: string }[];
  startedAt: number;
  error: string | null;
  api: string | null;
  /** The file holding the lab's admin token (0600, root's), for `--token-file` / WEFT_TOKEN_FILE; null until the server runs. */
  tokenFile: string | null;
  /** The lab's shape and the seed it was built from (the same seed builds the same lab). */
  shape: { sites: number; racksPerSite: number; hostsPerRack: number; tenants: number; instances: number; seed: number };
  /** Each site with its spine and pools. */
  sites: { name: string; spine: string; underlayPool: string; public4: string; public6: string }[];
  hosts: { name: string; site: string; rack: string; ns: string; underlayIp: string }[];
  instances: { name: string; host: string; ipv4: string | null; ipv6: string | null }[];
  vip: string | null;
  /** The instance booted under qemu (`up --boot-vm`): where it runs, its addresses, its console socket on that host. */
  guest?: { name: string; host: string; ipv4: string | null; ipv6: string | null; consoleSocket: string } | null;
  /** Faults `weft lab fail` put in place and no `heal` undid yet (`host r1h2`, `link r2h1 (silent)`). */
  faults: string[];
  /** The store (a PostgreSQL URL with its password masked, or the SQLite file). */
  db?: string;
  /** The `weft server` replicas: one on SQLite, two on PostgreSQL. */
  servers?: { n: number; api: string; mgmt: string; pid: number | null; up: boolean }[];
  /** Each agent's connection as its /healthz told the daemon when `status` asked. */
  agents?: { host: string; connected: boolean; server: number | null; version: number | null }[];
}

/** HTTP status of a daemon answer, by error code. */
const STATUS: Partial<Record<ErrorCode, number>> = { E_INVALID_ARG: 400, E_NOT_FOUND: 404, E_CONFLICT: 409, E_UNAVAILABLE: 503 };

const statePath = (name: string) => join(labDir(), `${name}.state`);
const socketPath = (name: string) => join(labDir(), `${name}.sock`);
const logPath = (name: string) => join(labDir(), `${name}.log`);

function readState(name: string): LabState | null {
  try {
    return JSON.parse(readFileSync(statePath(name), 'utf8')) as LabState;
  } catch {
    return null;
  }
}

function writeState(s: LabState): void {
  writeFileSync(`${statePath(s.name)}.tmp`, JSON.stringify(s, null, 2));
  renameSync(`${statePath(s.name)}.tmp`, statePath(s.name));
}

/** A running daemon's state, or null (none, or it died: then what it left is removed first). */
function liveState(name: string): LabState | null {
  const s = readState(name);
  if (s && isAlive(s.daemon)) return s;
  if (s || readLab(name)) cleanup(name);
  return null;
}

function cleanup(name: string): void {
  destroyLab(name);
  for (const f of [statePath(name), socketPath(name)]) rmSync(f, { force: true });
}

/** The daemon: builds the cloud, then serves status/check/down until told to stop. */
export async function runDaemon(o: CloudOptions): Promise<void> {
  mkdirSync(labDir(), { recursive: true });
  const me = procRef(process.pid) as ProcRef;
  const state: LabState = {
    name: o.name,
    daemon: me,
    status: 'building',
    stages: [],
    startedAt: Date.now(),
    error: null,
    api: null,
    tokenFile: null,
    shape: { sites: o.sites, racksPerSite: o.racksPerSite, hostsPerRack: o.hostsPerRack, tenants: o.tenants, instances: o.instances, seed: o.seed },
    sites: [],
    hosts: [],
    instances: [],
    vip: null,
    faults: [],
  };
  writeState(state);
  let cloud: Cloud | null = null;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    state.status = 'stopping';
    writeState(state);
    await cloud?.destroy().catch((e) => process.stderr.write(`weft lab: destroy: ${(e as Error).message}\n`));
    cleanup(o.name);
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop(0));
  process.on('SIGINT', () => void stop(0));
  try {
    cloud = await Cloud.start(o, (stage) => {
      state.stages.push({ at: Date.now() - state.startedAt, stage });
      writeState(state);
      process.stderr.write(`${stage}\n`);
    });
  } catch (e) {
    state.status = 'failed';
    state.error = (e as Error).message;
    writeState(state);
    process.stderr.write(`weft lab: ${(e as Error).stack}\n`);
    cleanup(o.name);
    // Keep the failed state for `up` to read.
    writeState(state);
    process.exit(1);
  }
  const c = cloud;
  state.api = c.routing.overlay.server.url;
  state.tokenFile = c.routing.overlay.tokenFile;
  state.hosts = [...c.routing.overlay.hosts.values()].map((h) => ({
    name: h.name,
    site: h.site,
    rack: h.lab.rack,
    ns: h.lab.ns,
    underlayIp: h.lab.underlayIp,
  }));
  state.sites = c.layout.sites.map((x) => ({ name: x.name, spine: x.spine, underlayPool: x.underlayPool, public4: x.public4, public6: x.public6 }));
  state.instances = c.instances();
  state.vip = c.vip;
  state.guest = c.guest
    ? { name: c.guest.instance.name, host: c.guest.vm.host, ipv4: c.guest.port.ipv4, ipv6: c.guest.port.ipv6, consoleSocket: c.guest.vm.spec.consoleSocket }
    : null;
  state.db = String(redactDb(c.routing.overlay.db));
  const servers = () => c.routing.overlay.servers.map((x) => ({ n: x.n, api: x.url, mgmt: x.ip, pid: x.proc?.proc.pid ?? null, up: x.proc !== null }));
  state.servers = servers();
  state.status = 'ready';
  writeState(state);
  /** Which replica each agent is on now (each agent's /healthz, 2 s at most). */
  const agents = async () =>
    Promise.all(
      [...c.routing.overlay.hosts.values()].map(async (h) => {
        const a = h.agent ? await c.routing.overlay.health(h.name).catch(() => null) : null;
        return {
          host: h.name,
          connected: a?.connected === true,
          server: a?.connected ? c.routing.overlay.serverAt(a.server) : null,
          version: a?.version ?? null,
        };
      }),
    );

  rmSync(socketPath(o.name), { force: true });
  // One operation at a time: a move or a fault measured while another runs would measure both.
  let busy: { op: string; since: number } | null = null;
  const ops: Record<string, { label: (b: Record<string, unknown>) => string; run: (b: Record<string, unknown>) => Promise<unknown> }> = {
    '/check': { label: () => 'check', run: async () => ({ items: await c.check() }) },
    '/move': { label: (b) => `move ${b.instance}`, run: (b) => c.move(b.instance, b.to) },
    '/fail': { label: (b) => `fail ${b.what} ${b.target}`, run: (b) => c.fail(b.what, b.target, { silent: b.silent }) },
    '/heal': { label: (b) => `heal ${b.what} ${b.target}`, run: (b) => c.heal(b.what, b.target) },
    '/evacuate': { label: (b) => `evacuate ${b.host}`, run: (b) => c.evacuate(b.host) },
  };
  const server = createServer((req, res) => {
    const reply = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/status') {
      agents().then(
        (a) => reply(200, { ...state, agents: a }),
        () => reply(200, state),
      );
      return;
    }
    if (req.method === 'POST' && req.url === '/down') {
      reply(200, { stopping: true });
      setTimeout(() => void stop(0), 50);
      return;
    }
    const op = req.method === 'POST' ? ops[req.url ?? ''] : undefined;
    if (!op) return reply(404, { error: `no route ${req.method} ${req.url}`, code: 'E_NOT_FOUND' });
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      text += d;
    });
    req.on('end', () => {
      let body: Record<string, unknown>;
      try {
        body = text.trim() ? (JSON.parse(text) as Record<string, unknown>) : {};
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new WeftError('E_INVALID_ARG', 'not an object');
      } catch {
        return reply(400, { error: `invalid body ${JSON.stringify(text.slice(0, 80))}: must be a JSON object`, code: 'E_INVALID_ARG' });
      }
      if (busy)
        return reply(409, {
          error: `lab ${o.name} is busy: \`${busy.op}\` is running (for ${fmt(Date.now() - busy.since)}); one operation at a time`,
          code: 'E_CONFLICT',
        });
      busy = { op: op.label(body), since: Date.now() };
      op.run(body)
        .then(
          (r) => reply(200, r),
          (e) => {
            const code = e instanceof WeftError ? e.code : 'E_INTERNAL';
            // The field goes along, so the CLI can name the flag the operator typed.
            const field = e instanceof WeftError ? e.field : undefined;
            reply(STATUS[code] ?? 500, { error: (e as Error).message, code, ...(field === undefined ? {} : { field }) });
          },
        )
        .finally(() => {
          busy = null;
          // Moves change where instances are, faults what is failed: the state file follows.
          state.instances = c.instances();
          state.faults = c.faultList();
          state.servers = servers();
          writeState(state);
        });
    });
  });
  server.listen(socketPath(o.name));
}

function call<T>(name: string, method: string, path: string, body?: unknown, timeoutMs = 180_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json' };
    const req = request({ socketPath: socketPath(name), method, path, timeout: timeoutMs, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
      });
      res.on('end', () => {
        try {
          const j = JSON.parse(text) as T & { error?: string; code?: ErrorCode; field?: string };
          if ((res.statusCode ?? 500) >= 400) reject(new WeftError(j.code ?? 'E_CONFLICT', j.error ?? text, j.field));
          else resolve(j);
        } catch {
          reject(new WeftError('E_DATAPLANE', `lab daemon answered ${res.statusCode}: ${text.slice(0, 500)}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new WeftError('E_UNAVAILABLE', `lab daemon did not answer ${path} within ${timeoutMs / 1000} s`)));
    req.on('error', (e) =>
      reject(new WeftError('E_UNAVAILABLE', `lab ${name} is not answering (${e.message}); \`weft lab down --name ${name}\` removes what is left`)),
    );
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** `weft lab up`: starts the daemon and follows its progress until the cloud is ready. */
export async function labUp(o: CloudOptions, out: (line: string) => void): Promise<LabState> {
  checkCloudOptions(o);
  checkLabDb(o.db);
  if (process.getuid?.() !== 0) throw new WeftError('E_FORBIDDEN', 'weft lab needs root (network namespaces, veth, nftables, BIRD)');
  const running = liveState(o.name);
  if (running)
    throw conflict(`lab ${o.name} is already ${running.status} (daemon pid ${running.daemon.pid}); \`weft lab down --name ${o.name}\` first`, 'name');
  mkdirSync(labDir(), { recursive: true });
  rmSync(statePath(o.name), { force: true });
  const log = openSync(logPath(o.name), 'w');
  const args = [
    'lab',
    'daemon',
    '--name',
    o.name,
    '--sites',
    String(o.sites),
    '--racks-per-site',
    String(o.racksPerSite),
    '--hosts-per-rack',
    String(o.hostsPerRack),
    '--tenants',
    String(o.tenants),
    '--instances',
    String(o.instances),
    '--seed',
    String(o.seed),
    ...(o.db ? ['--db', o.db] : []),
    ...(o.bootVm ? ['--boot-vm'] : []),
  ];
  const child = spawn(WEFT_BIN, args, { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  const t0 = Date.now();
  let shown = 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const s = readState(o.name);
    if (s) {
      for (const st of s.stages.slice(shown)) out(`  [${fmt(st.at)}] ${st.stage}`);
      shown = s.stages.length;
      if (s.status === 'ready') return s;
      if (s.status === 'failed') throw new WeftError('E_DATAPLANE', `lab ${o.name} failed to come up: ${s.error} (log: ${logPath(o.name)})`);
    }
    if (child.exitCode !== null && readState(o.name)?.status !== 'ready')
      throw new WeftError('E_DATAPLANE', `lab daemon exited ${child.exitCode}: ${tail(logPath(o.name))}`);
    if (Date.now() - t0 > 240_000) throw new WeftError('E_DATAPLANE', `lab ${o.name} not up after 240 s (log: ${logPath(o.name)})`);
  }
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').slice(-2000);
  } catch {
    return '(no log)';
  }
}

/** `weft lab check`: the items, and whether all held. */
export async function labCheck(name: string): Promise<{ items: CheckItem[]; ok: boolean }> {
  if (!liveState(name)) throw new WeftError('E_NOT_FOUND', `lab ${name} is not up (\`weft lab up\`)`);
  const { items } = await call<{ items: CheckItem[] }>(name, 'POST', '/check');
  return { items, ok: items.every((i) => i.ok) };
}

/** `weft lab move`: live-migrates an instance of the lab (to `to`, or where the server picks) with its blackout measured. */
export async function labMove(name: string, instance: string, to?: string): Promise<MoveReport> {
  if (!liveState(name)) throw new WeftError('E_NOT_FOUND', `lab ${name} is not up (\`weft lab up\`)`);
  return call<MoveReport>(name, 'POST', '/move', { instance, ...(to ? { to } : {}) });
}

/** `weft lab fail` / `weft lab heal`: injects or undoes a fault, with the ToR's reaction timed. */
export async function labFault(name: string, action: 'fail' | 'heal', what: string, target: string, o: { silent?: boolean } = {}): Promise<FaultReport> {
  if (!liveState(name)) throw new WeftError('E_NOT_FOUND', `lab ${name} is not up (\`weft lab up\`)`);
  return call<FaultReport>(name, 'POST', `/${action}`, { what, target, ...(o.silent ? { silent: true } : {}) });
}

/** `weft lab evacuate`: after `fail host`, the operator's commands through the API and each VM switched over to its new host. */
export async function labEvacuate(name: string, host: string): Promise<EvacuationReport> {
  if (!liveState(name)) throw new WeftError('E_NOT_FOUND', `lab ${name} is not up (\`weft lab up\`)`);
  return call<EvacuationReport>(name, 'POST', '/evacuate', { host });
}

/** An evacuation report as lines for a terminal. */
export function describeEvacuation(r: EvacuationReport): string[] {
  const out = [`evacuated ${r.host}: ran through the API`, ...r.commands.map((c) => `  ${c}`)];
  for (const m of r.moves)
    out.push(
      `  ${m.answeredMs === null ? 'not seen' : `${m.answeredMs} ms`.padStart(8)}  ${m.instance} (${m.kind}) answers on ${m.to}${m.pingFrom ? ` (from ${m.pingFrom})` : ''}`,
    );
  for (const t of r.timings) out.push(`  ${t.ms === null ? 'not seen' : `${t.ms} ms`.padStart(8)}  ${t.what}`);
  for (const n of r.notes) out.push(`note: ${n}`);
  return out;
}

/** A move report as lines for a terminal. */
export function describeMove(r: MoveReport): string[] {
  return [
    `moved ${r.instance} (${r.kind}) from ${r.from} to ${r.to} in ${r.moveMs} ms (migrate, link switch-over, every agent applied it)`,
    `pings every ${r.intervalMs} ms from ${r.pingFrom} to ${r.pingTo}: ${r.sent} sent, ${r.lost} lost: blackout ${r.blackoutMs} ms (target <= ${r.targetMs} ms${r.blackoutMs > r.targetMs ? ', MISSED' : ''})`,
    r.answers ? `${r.instance} answers on ${r.to} over IPv4 and IPv6` : `FAIL: ${r.instance} does not answer on ${r.to}`,
    ...r.notes.map((n) => `note: ${n}`),
  ];
}

/** A fault report as lines for a terminal. */
export function describeFault(r: FaultReport): string[] {
  const out = [`${r.action} ${r.what} ${r.target}: ${r.done.join('; ')}`];
  for (const t of r.timings) out.push(`  ${t.ms === null ? 'not seen' : `${t.ms} ms`.padStart(8)}  ${t.what}`);
  for (const p of r.pings ?? []) out.push(`pings every ${p.intervalMs} ms from ${p.from} to ${p.to}, ${p.what}: ${p.sent} sent, ${p.lost} lost`);
  for (const n of r.notes) out.push(`note: ${n}`);
  if (r.commands.length > 0) out.push('an operator would now run:', ...r.commands.map((c) => `  ${c}`));
  return out;
}

export async function labStatus(name: string): Promise<LabState> {
  const s = liveState(name);
  if (!s) throw new WeftError('E_NOT_FOUND', `lab ${name} is not up (\`weft lab up\`)`);
  // A ready daemon adds where each agent is connected now; while building (or not answering), the state file is all there is.
  if (s.status !== 'ready') return s;
  return call<LabState>(name, 'GET', '/status', undefined, 10_000).catch(() => s);
}

/** `weft lab down`: stops the daemon (it removes everything), or removes what a dead one left. */
export async function labDown(name: string): Promise<string> {
  const s = readState(name);
  if (s && isAlive(s.daemon)) {
    await call(name, 'POST', '/down').catch(() => process.kill(s.daemon.pid, 'SIGTERM'));
    const t0 = Date.now();
    while (isAlive(s.daemon) && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 100));
    if (isAlive(s.daemon)) process.kill(s.daemon.pid, 'SIGKILL');
    cleanup(name);
    // The daemon's log too: kept until now (a failed `up` points at it), it is the last file the lab made.
    rmSync(logPath(name), { force: true });
    return `lab ${name} stopped and removed`;
  }
  const left = s !== null || readLab(name) !== null || existsSync(socketPath(name)) || existsSync(logPath(name));
  cleanup(name);
  rmSync(logPath(name), { force: true });
  return left ? `lab ${name} was not running; removed what it left` : `lab ${name} is not up`;
}
