// Runs BIRD inside lab namespaces (the fabric's routers, or test hosts) and
// queries it and the kernel: every process, file and directory is recorded
// on the lab, so `lab.destroy()` removes them whatever happens to the caller.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCidr } from '../model/addr.js';
import { invalid, show, WeftError } from '../model/errors.js';
import { run } from '../sys/exec.js';
import type { Lab } from './builder.js';
import { FABRIC_SYSCTLS } from './fabric.js';

/** A namespace: a lab node's name or handle, or a namespace's full name (as for `Lab.spawn`). */
type NsRef = string | { ns: string };

/** One BIRD daemon started by `startBird`. */
export interface BirdProcess {
  /** The network namespace BIRD runs in. */
  readonly ns: string;
  /** Its control socket (for `birdc -s`). */
  readonly socket: string;
  /** The config file it runs (rewritten by `reconfigure`). */
  readonly confPath: string;
  readonly process: ChildProcess;
  /**
   * Runs one birdc command (`['show', 'route', 'all']`) and returns its output
   * without the greeting line. birdc runs in the root namespace: the control
   * socket is a filesystem path, and `ip netns exec` would cost a mount
   * namespace per call. Throws E_DATAPLANE with BIRD's reply when it fails.
   */
  birdc(args: string[]): Promise<string>;
  /**
   * Checks `conf` with `bird -p`, then makes it the running config (`configure`).
   * Throws E_DATAPLANE with BIRD's message if refused; the old config then keeps running.
   */
  reconfigure(conf: string): Promise<void>;
  /** SIGTERM (BIRD withdraws its routes and removes its kernel routes), SIGKILL after 3 s. Idempotent. */
  stop(): Promise<void>;
}

/** One line of `birdc show protocols`. */
export interface BirdProtocol {
  name: string;
  /** `BGP`, `Kernel`, `Static`, `Device`, `BFD`... */
  proto: string;
  /** `up`, `start`, `down`... */
  state: string;
  /** For BGP: `Established`, `Active   Socket: Connection refused`...; may be empty. */
  info: string;
}

/** A next hop of a kernel route. */
export interface NextHop {
  /** The gateway address; empty for a route straight onto a device. */
  via: string;
  dev: string;
}

const START_TIMEOUT_MS = 5000;
const STOP_TIMEOUT_MS = 3000;
const STDERR_KEEP = 8192;
const NAME = /^[a-z][a-z0-9-]{0,15}$/;

/**
 * Starts BIRD in namespace `ns` on config `conf`: writes it to a fresh
 * directory under the temp dir (`o.name`, default `bird`, tells several
 * daemons of one namespace apart), refuses it with E_DATAPLANE and BIRD's
 * message unless `bird -p` accepts it, starts `bird -f` with `lab.spawn`
 * and resolves once `birdc show status` answers. Throws E_DATAPLANE, with
 * BIRD's stderr, if it exits or has not answered within 5 s (it is killed
 * then). Directory, files and process are recorded on the lab first.
 */
export async function startBird(lab: Lab, ns: NsRef, conf: string, o: { name?: string } = {}): Promise<BirdProcess> {
  const name = o.name ?? 'bird';
  if (!NAME.test(name)) throw invalid('name', name, 'must be 1..16 of [a-z0-9-], starting with a letter');
  const nsName = resolveNs(lab, ns);
  const dir = lab.file(join(tmpdir(), `weft-bird-${nsName}-${name}-${randomBytes(4).toString('hex')}`));
  mkdirSync(dir, { mode: 0o700 });
  const confPath = lab.file(join(dir, 'bird.conf'));
  const nextPath = lab.file(join(dir, 'bird.next.conf'));
  const socket = lab.file(join(dir, 'bird.ctl'));
  const pidFile = lab.file(join(dir, 'bird.pid'));
  writeFileSync(confPath, conf);
  await check(confPath, nsName);

  const child = lab.spawn(ns, 'bird', ['-f', '-c', confPath, '-s', socket, '-P', pidFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    stderr = (stderr + s).slice(-STDERR_KEEP);
  });
  let exit: string | null = null;
  const exited = new Promise<void>((resolve) => {
    // 'close', not 'exit': by then stderr is drained, so errors quote all of it.
    child.once('close', (code, signal) => {
      exit = signal ? `killed by ${signal}` : `exit ${code}`;
      resolve();
    });
    child.once('error', (e) => {
      exit = e.message;
      resolve();
    });
  });

  const birdc = async (args: string[]): Promise<string> => {
    const r = await run('birdc', ['-s', socket, ...args], { okCodes: [1], timeoutMs: 10_000 });
    const out = r.stdout.replace(/^BIRD \S+ ready\.\n/, '');
    if (r.code !== 0) throw new WeftError('E_DATAPLANE', `birdc ${args.join(' ')} (netns ${nsName}): ${(out + r.stderr).trim().slice(0, 2000)}`);
    return out;
  };

  const stop = async (): Promise<void> => {
    if (exit !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exit !== null) throw new WeftError('E_DATAPLANE', `bird in netns ${nsName} ${exit} before answering: ${stderr.trim() || '(no stderr)'}`);
    const r = await run('birdc', ['-s', socket, 'show', 'status'], { okCodes: [1], timeoutMs: 2000 });
    if (r.code === 0) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new WeftError(
        'E_DATAPLANE',
        `bird in netns ${nsName} not answering on ${socket} after ${START_TIMEOUT_MS / 1000} s: ${stderr.trim() || '(no stderr)'}`,
      );
    }
    await sleep(20);
  }

  return {
    ns: nsName,
    socket,
    confPath,
    process: child,
    birdc,
    stop,
    async reconfigure(next: string): Promise<void> {
      writeFileSync(nextPath, next);
      await check(nextPath, nsName);
      renameSync(nextPath, confPath);
      await birdc([`configure "${confPath}"`]);
    },
  };
}

/** Throws E_DATAPLANE with BIRD's message unless `bird -p` accepts the config file. */
async function check(path: string, ns: string): Promise<void> {
  const r = await run('bird', ['-p', '-c', path], { okCodes: [1] });
  if (r.code !== 0) throw new WeftError('E_DATAPLANE', `bird refused config ${path} for netns ${ns}: ${r.stderr.trim() || r.stdout.trim()}`);
}

/** Parses `birdc show protocols`. */
export async function protocols(bird: BirdProcess): Promise<BirdProtocol[]> {
  return parseProtocols(await bird.birdc(['show', 'protocols']));
}

/** Parses the output of `birdc show protocols` (greeting line removed or not). */
export function parseProtocols(text: string): BirdProtocol[] {
  const out: BirdProtocol[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('BIRD ') || line.startsWith('Name ')) continue;
    // Since is one token (a time of day, or a date), or a date and a time with `timeformat ... iso long`.
    const m = /^(\S+)\s+(\S+)\s+\S+\s+(\S+)\s+(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\S*|\S+)\s*(.*)$/.exec(line);
    if (m) out.push({ name: m[1]!, proto: m[2]!, state: m[3]!, info: m[4]!.trim() });
  }
  return out;
}

/**
 * Waits until every protocol in `names` is up and Established (BGP). Throws
 * E_DATAPLANE after `timeoutMs`, naming each protocol's state.
 */
export async function waitEstablished(bird: BirdProcess, names: string[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const all = new Map((await protocols(bird)).map((p) => [p.name, p]));
    const pending = names.filter((n) => {
      const p = all.get(n);
      return !(p && p.state === 'up' && p.info.startsWith('Established'));
    });
    if (pending.length === 0) return;
    if (Date.now() > deadline) {
      const states = pending.map((n) => {
        const p = all.get(n);
        return p ? `${n} ${p.state} ${p.info}`.trim() : `${n} (no such protocol)`;
      });
      throw new WeftError('E_DATAPLANE', `BGP not established after ${timeoutMs} ms in netns ${bird.ns}: ${states.join('; ')}`);
    }
    await sleep(50);
  }
}

interface IpRouteHop {
  gateway?: string;
  via?: { family: string; host: string };
  dev?: string;
}

interface IpRoute extends IpRouteHop {
  type?: string;
  nexthops?: IpRouteHop[];
  multipath?: IpRouteHop[];
}

/**
 * The next hops of the main table's unicast route for exactly `prefix` in
 * `ns`, single-path or multipath, IPv4 or IPv6 (gateways of either family);
 * empty when there is no such route. Blackhole, unreachable and other
 * non-unicast routes are skipped. Throws E_INVALID_ARG on a bad prefix.
 */
export async function kernelRoute(lab: Lab, ns: NsRef, prefix: string): Promise<NextHop[]> {
  const c = parseCidr('prefix', prefix);
  const { stdout } = await lab.exec(ns, 'ip', [`-${c.family}`, '-j', 'route', 'show', 'exact', c.text]);
  return parseIpRoutes(stdout);
}

/** The next hops in `ip -j route show` output (see `kernelRoute`). */
export function parseIpRoutes(json: string): NextHop[] {
  const routes = (json.trim() ? JSON.parse(json) : []) as IpRoute[];
  const hop = (h: IpRouteHop): NextHop => ({ via: h.gateway ?? h.via?.host ?? '', dev: h.dev ?? '' });
  return routes.filter((r) => (r.type ?? 'unicast') === 'unicast').flatMap((r) => (r.nexthops ?? r.multipath ?? [r]).map(hop));
}

/**
 * The prefixes of `ns`'s main-table routes that BIRD installed (`proto
 * bird`, both families) with a next hop through interface `dev`, sorted;
 * host routes are written as /32 or /128. On a lab router the interface to
 * a host or rack is named after it, so these are the routes pointing at it.
 */
export async function kernelRoutesVia(lab: Lab, ns: NsRef, dev: string): Promise<string[]> {
  const [v4, v6] = await Promise.all([4, 6].map((f) => lab.exec(ns, 'ip', [`-${f}`, '-j', 'route', 'show', 'proto', 'bird'])));
  return [...prefixesVia(v4?.stdout ?? '', dev, 4), ...prefixesVia(v6?.stdout ?? '', dev, 6)].sort();
}

/** The prefixes in `ip -j route show` output with a next hop through `dev` (see `kernelRoutesVia`). */
export function prefixesVia(json: string, dev: string, family: 4 | 6): string[] {
  const routes = (json.trim() ? JSON.parse(json) : []) as (IpRoute & { dst?: string })[];
  const hops = (r: IpRoute) => r.nexthops ?? r.multipath ?? [r];
  return routes
    .filter((r) => (r.type ?? 'unicast') === 'unicast' && r.dst && hops(r).some((h) => h.dev === dev))
    .map((r) => {
      const dst = r.dst as string;
      if (dst === 'default') return family === 4 ? '0.0.0.0/0' : '::/0';
      return dst.includes('/') ? dst : `${dst}/${family === 4 ? 32 : 128}`;
    });
}

/** The global addresses of both ends of rack router `rack`'s link to the core, read from the kernel. */
export async function rackUplink(lab: Lab, rack: string): Promise<{ rack: { ipv4: string; ipv6: string }; core: { ipv4: string; ipv6: string } }> {
  const { near, far } = await linkEnds(lab, rack, 'core');
  return { rack: near, core: far };
}

/**
 * The global addresses of both ends of the link between lab routers `near`
 * and `far` (each one's interface is named after the other: a rack and its
 * spine, a spine and the WAN router), read from the kernel. Throws
 * E_DATAPLANE if an end lacks an IPv4 or IPv6 address.
 */
export async function linkEnds(lab: Lab, near: string, far: string): Promise<{ near: { ipv4: string; ipv6: string }; far: { ipv4: string; ipv6: string } }> {
  const [n, f] = await Promise.all([linkAddrs(lab, lab.ns(near), far), linkAddrs(lab, lab.ns(far), near)]);
  return { near: n, far: f };
}

async function linkAddrs(lab: Lab, ns: string, dev: string): Promise<{ ipv4: string; ipv6: string }> {
  const { stdout } = await lab.exec(ns, 'ip', ['-j', 'addr', 'show', 'dev', dev]);
  const info = ((JSON.parse(stdout) as Array<{ addr_info?: Array<{ family: string; local: string; scope: string }> }>)[0]?.addr_info ?? []).filter(
    (a) => a.scope === 'global',
  );
  const ipv4 = info.find((a) => a.family === 'inet')?.local;
  const ipv6 = info.find((a) => a.family === 'inet6')?.local;
  if (!ipv4 || !ipv6) throw new WeftError('E_DATAPLANE', `link ${show(dev)} in netns ${ns} lacks a global IPv4 or IPv6 address`);
  return { ipv4, ipv6 };
}

/** Sets FABRIC_SYSCTLS (layer-4 ECMP hashing) in a router's namespace. */
export async function enableL4Hashing(lab: Lab, ns: NsRef): Promise<void> {
  await lab.exec(ns, 'sysctl', ['-qw', ...FABRIC_SYSCTLS]);
}

/** The namespace name of `ref`: a lab node's (by name or handle), or `ref` itself. */
function resolveNs(lab: Lab, ref: NsRef): string {
  if (typeof ref !== 'string') return ref.ns;
  return lab.routers.get(ref)?.ns ?? lab.hosts.get(ref)?.ns ?? lab.vms.get(ref)?.ns ?? ref;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
