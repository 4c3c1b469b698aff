// Applying a fabric router's rendered config on the router itself (`weft
// fabric apply`, docs/fabric.md): checked by the platform's own tool
// (`bird -p`, `vtysh -C`), applied (BIRD: `configure timeout`, its undo
// timer armed; FRR: frr-reload.py), and confirmed only once every session
// that was up before is up again; otherwise rolled back to the config it ran.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BgpStatus, type Bird, BirdControl } from '../agent/routing/bird.js';
import { WeftError } from '../model/errors.js';
import { run as defaultRun, type Runner } from '../sys/exec.js';

export interface ApplyResult {
  /** The new config runs and is confirmed. */
  confirmed: boolean;
  /** Sessions that were established before and were not again in time (empty when confirmed). */
  down: string[];
}

export interface BirdApplyOptions {
  /** Where BIRD's running config is (BirdControl's confPath): read before, to roll back to. */
  confPath: string;
  /** How long the sessions have to come back before the change is rolled back; BIRD's own undo timer is armed for as long. */
  confirmTimeoutS: number;
  /** Wait between looks at the sessions. Default 200 ms. */
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

const established = (s: BgpStatus[]) => new Set(s.filter((x) => x.established).map((x) => x.name));

/**
 * Applies `conf` to BIRD: `bird -p` first (a refusal throws E_DATAPLANE with
 * BIRD's message and changes nothing), then `configure ... timeout`, then
 * waits until each BGP session that was established before (and is still
 * in the new config) is established again: confirmed. If one is not within
 * `confirmTimeoutS`, the previous config is configured again at once
 * (BIRD's undo timer would do it too, should this process die first).
 */
export async function applyBird(bird: Bird, conf: string, o: BirdApplyOptions): Promise<ApplyResult> {
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = o.now ?? Date.now;
  await bird.check(conf);
  const previous = await readFile(o.confPath, 'utf8');
  const kept = new Set([...conf.matchAll(/^protocol bgp (\S+) \{$/gm)].map((m) => m[1] as string));
  const wanted = [...established(await bird.sessions())].filter((n) => kept.has(n)).sort();
  await bird.configure(conf, { undoAfterS: o.confirmTimeoutS });
  const deadline = now() + o.confirmTimeoutS * 1000;
  let down = wanted;
  for (;;) {
    const up = established(await bird.sessions());
    down = wanted.filter((n) => !up.has(n));
    if (down.length === 0) {
      await bird.confirm();
      return { confirmed: true, down: [] };
    }
    if (now() >= deadline) break;
    await sleep(o.pollMs ?? 200);
  }
  await bird.configure(previous);
  return { confirmed: false, down };
}

/** applyBird on this machine's BIRD, through its control socket. */
export function applyLocalBird(conf: string, o: { socket: string; confPath: string; confirmTimeoutS: number }): Promise<ApplyResult> {
  return applyBird(new BirdControl({ socket: o.socket, confPath: o.confPath }), conf, { confPath: o.confPath, confirmTimeoutS: o.confirmTimeoutS });
}

export interface FrrApplyOptions {
  /** FRR's integrated config (default /etc/frr/frr.conf): what it runs, kept to roll back to and rewritten when confirmed. */
  confPath: string;
  /** How long the sessions have to come back before the change is rolled back. */
  confirmTimeoutS: number;
  /** vtysh's --vty_socket: the daemons' socket directory when not FRR's default. */
  vtySocket?: string;
  /** frr-reload.py (frr-pythontools). */
  reloader?: string;
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  run?: Runner;
}

/** The BGP neighbours FRR has established, every address family (`show bgp summary json`). */
export async function frrEstablished(o: { vtySocket?: string; run?: Runner } = {}): Promise<Set<string>> {
  const run = o.run ?? defaultRun;
  const r = await run('vtysh', [...(o.vtySocket ? ['--vty_socket', o.vtySocket] : []), '-c', 'show bgp summary json']);
  const up = new Set<string>();
  let doc: Record<string, { peers?: Record<string, { state?: string }> }>;
  try {
    doc = JSON.parse(r.stdout || '{}');
  } catch (e) {
    throw new WeftError('E_DATAPLANE', `vtysh show bgp summary json: not JSON: ${r.stdout.slice(0, 200)}`, undefined, { cause: e });
  }
  for (const af of Object.values(doc)) for (const [n, p] of Object.entries(af?.peers ?? {})) if (p.state === 'Established') up.add(n);
  return up;
}

/**
 * Applies `conf` to FRR: `vtysh -C` first (a refusal throws E_DATAPLANE
 * with its message and changes nothing), then frr-reload.py applies what
 * differs from the running config, then waits until each BGP neighbour that
 * was established before (and is still in the new config) is established
 * again: confirmed, and the file is the new config. If one is not within
 * `confirmTimeoutS`, the previous file is put back and reloaded at once.
 * FRR has no undo timer of its own (BIRD's `configure timeout`): should
 * this process die while it waits, the new config stays.
 */
export async function applyFrr(conf: string, o: FrrApplyOptions): Promise<ApplyResult> {
  const run = o.run ?? defaultRun;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = o.now ?? Date.now;
  const work = await mkdtemp(join(tmpdir(), 'weft-frr-apply-'));
  try {
    const next = join(work, 'frr.conf');
    await writeFile(next, conf, { mode: 0o640 });
    await checkFrr(next, run);
    const previous = await readFile(o.confPath, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return '';
      throw e;
    });
    const kept = new Set([...conf.matchAll(/^ neighbor (\S+) remote-as /gm)].map((m) => m[1] as string));
    const wanted = [...(await frrEstablished(o))].filter((n) => kept.has(n)).sort();
    const reload = async (file: string) => {
      const r = await run(
        'python3',
        [o.reloader ?? '/usr/lib/frr/frr-reload.py', '--reload', '--stdout', '--rundir', work, ...(o.vtySocket ? ['--vty_socket', o.vtySocket] : []), file],
        { okCodes: [1, 2] },
      );
      if (r.code !== 0) throw new WeftError('E_DATAPLANE', `frr-reload.py ${file}: ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join(' / ')}`);
    };
    await reload(next);
    const deadline = now() + o.confirmTimeoutS * 1000;
    let down = wanted;
    for (;;) {
      const up = await frrEstablished(o);
      down = wanted.filter((n) => !up.has(n));
      if (down.length === 0) {
        await writeFile(o.confPath, conf, { mode: 0o640 });
        return { confirmed: true, down: [] };
      }
      if (now() >= deadline) break;
      await sleep(o.pollMs ?? 200);
    }
    const back = join(work, 'previous.conf');
    await writeFile(back, previous, { mode: 0o640 });
    await reload(back);
    return { confirmed: false, down };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const ANY_FAILURE = Array.from({ length: 255 }, (_, i) => i + 1);

/** FRR's own check of a config file (`vtysh -C -f`): throws E_DATAPLANE with vtysh's message if it refuses. */
export async function checkFrr(path: string, run: Runner = defaultRun): Promise<void> {
  // vtysh exits 1, 2 or 4 (a command incomplete), depending on what it refuses.
  const r = await run('vtysh', ['-C', '-f', path], { okCodes: ANY_FAILURE });
  if (r.code !== 0) throw new WeftError('E_DATAPLANE', `FRR refused the config: ${(r.stdout + r.stderr).trim()}`);
}

/** A unified diff from `running` (the router's file) to `rendered`; empty when they are the same. */
export async function unifiedDiff(runningPath: string, renderedPath: string, run: Runner = defaultRun): Promise<string> {
  const r = await run('diff', ['-u', '--label', `running ${runningPath}`, '--label', 'rendered', runningPath, renderedPath], { okCodes: [1] });
  if (r.code > 1) throw new WeftError('E_DATAPLANE', `diff: ${r.stderr.trim()}`);
  return r.stdout;
}
