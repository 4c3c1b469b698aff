// `weft lab up|check|status|down`: the lab lives in a background process
// (`weft lab daemon`) that owns every namespace and process it made, writes
// its progress to a state file and answers the other commands on a unix
// socket. If it dies, the next `up` (or `down`) removes what it left.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { join } from 'node:path';
import { conflict, WeftError } from '../model/errors.js';
import { type CheckItem, Cloud, type CloudOptions, checkCloudOptions } from './cloud.js';
import { LAB_ADMIN_TOKEN } from './overlay-lab.js';
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
  token: string;
  hosts: { name: string; rack: string; ns: string; underlayIp: string }[];
  instances: { name: string; host: string; ipv4: string | null; ipv6: string | null }[];
  vip: string | null;
}

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
    token: LAB_ADMIN_TOKEN,
    hosts: [],
    instances: [],
    vip: null,
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
  state.api = c.r.c.server.url;
  state.hosts = [...c.r.c.hosts.values()].map((h) => ({ name: h.name, rack: h.lab.rack, ns: h.lab.ns, underlayIp: h.lab.underlayIp }));
  state.instances = [...c.vms, ...c.web].map((v) => ({
    name: v.name,
    host: c.r.c.hostName(v.instance.hostId),
    ipv4: v.port.ipv4,
    ipv6: v.port.ipv6,
  }));
  state.vip = c.vip;
  state.status = 'ready';
  writeState(state);

  rmSync(socketPath(o.name), { force: true });
  let busy = false;
  const server = createServer((req, res) => {
    const reply = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/status') return reply(200, state);
    if (req.method === 'POST' && req.url === '/down') {
      reply(200, { stopping: true });
      setTimeout(() => void stop(0), 50);
      return;
    }
    if (req.method === 'POST' && req.url === '/check') {
      if (busy) return reply(409, { error: 'a check is already running' });
      busy = true;
      c.check().then(
        (items) => {
          busy = false;
          reply(200, { items });
        },
        (e) => {
          busy = false;
          reply(500, { error: (e as Error).message });
        },
      );
      return;
    }
    reply(404, { error: 'not found' });
  });
  server.listen(socketPath(o.name));
}

function call<T>(name: string, method: string, path: string, timeoutMs = 120_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socketPath(name), method, path, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => {
        try {
          const j = JSON.parse(body) as T & { error?: string };
          if ((res.statusCode ?? 500) >= 400) reject(new WeftError('E_CONFLICT', j.error ?? body));
          else resolve(j);
        } catch {
          reject(new WeftError('E_DATAPLANE', `lab daemon answered ${res.statusCode}: ${body.slice(0, 500)}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`lab daemon did not answer ${path} within ${timeoutMs / 1000} s`)));
    req.on('error', (e) =>
      reject(new WeftError('E_UNAVAILABLE', `lab ${name} is not answering (${e.message}); \`weft lab down --name ${name}\` removes what is left`)),
    );
    req.end();
  });
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** `weft lab up`: starts the daemon and follows its progress until the cloud is ready. */
export async function labUp(o: CloudOptions, out: (line: string) => void): Promise<LabState> {
  checkCloudOptions(o);
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
    '--racks',
    String(o.racks),
    '--hosts-per-rack',
    String(o.hostsPerRack),
    '--tenants',
    String(o.tenants),
    '--instances',
    String(o.instances),
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

export async function labStatus(name: string): Promise<LabState> {
  const s = liveState(name);
  if (!s) throw new WeftError('E_NOT_FOUND', `lab ${name} is not up (\`weft lab up\`)`);
  return s;
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
    return `lab ${name} stopped and removed`;
  }
  const left = s !== null || readLab(name) !== null || existsSync(socketPath(name));
  cleanup(name);
  return left ? `lab ${name} was not running; removed what it left` : `lab ${name} is not up`;
}
