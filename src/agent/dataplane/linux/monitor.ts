// `ip monitor` as a Watch: a long-lived process whose output the caller
// reads, made again half a second after it ends (until the watch is stopped).
import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { Watch } from '../dataplane.js';

/** How long a monitor that ended waits before it is made again. */
const RESTART_MS = 500;

/**
 * Runs `ip [-n netns] <args>` (e.g. `-o monitor link`) and hands each new
 * process's stdout to `attach`; stderr goes to the agent's. Never throws: a
 * monitor that cannot start or dies is retried.
 */
export function watchMonitor(netns: string | undefined, args: string[], attach: (stdout: Readable) => void): Watch {
  let child: ChildProcess | null = null;
  let stopped = false;
  const start = () => {
    if (stopped) return;
    const c = spawn('ip', [...(netns ? ['-n', netns] : []), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    child = c;
    if (c.stdout) attach(c.stdout);
    c.on('exit', () => {
      if (!stopped) setTimeout(start, RESTART_MS).unref();
    });
  };
  start();
  return {
    stop() {
      stopped = true;
      child?.kill();
    },
  };
}
