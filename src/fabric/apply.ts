// Applying a fabric router's rendered config on the router itself (`weft
// fabric apply`, docs/fabric.md): checked by the platform's own tool,
// applied with BIRD's undo timer armed, and confirmed only once every session
// that was up before is up again; otherwise rolled back to the config it ran.
import { readFile } from 'node:fs/promises';
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

/** FRR's own check of a config file (`vtysh -C -f`): throws E_DATAPLANE with vtysh's message if it refuses. */
export async function checkFrr(path: string, run: Runner = defaultRun): Promise<void> {
  const r = await run('vtysh', ['-C', '-f', path], { okCodes: [1, 2] });
  if (r.code !== 0) throw new WeftError('E_DATAPLANE', `FRR refused the config: ${(r.stdout + r.stderr).trim()}`);
}

/** A unified diff from `running` (the router's file) to `rendered`; empty when they are the same. */
export async function unifiedDiff(runningPath: string, renderedPath: string, run: Runner = defaultRun): Promise<string> {
  const r = await run('diff', ['-u', '--label', `running ${runningPath}`, '--label', 'rendered', runningPath, renderedPath], { okCodes: [1] });
  if (r.code > 1) throw new WeftError('E_DATAPLANE', `diff: ${r.stderr.trim()}`);
  return r.stdout;
}
