// `weft server` as a real child process on a free loopback port, for the
// CLI and replica tests, the benchmarks and the lab. stop() ends it (SIGKILL
// after a grace period) so no test leaves a server behind; kill() crashes it.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { WeftError } from '../model/errors.js';
import { weftRoot } from '../sys/install.js';

/** The weft executable of this installation (a checkout's, or the package's). */
export const WEFT_BIN = join(weftRoot(), 'bin/weft');

export interface ServerProcess {
  url: string;
  /** Where SVP listens: host and port. */
  svp: { host: string; port: number };
  /** Where the agents' push stream listens. */
  stream: { host: string; port: number };
  proc: ChildProcess;
  /** What the server wrote to stderr so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
  /** SIGKILL, as a crash: no connection is closed cleanly. Resolves once it is gone. */
  kill(): Promise<void>;
}

/**
 * Starts `weft server` on `db` with its API, SVP and stream on 127.0.0.1,
 * each on a free port; `args` come after those (a later `--svp`, `--stream`
 * or `--api-listen` wins) and replace the default `--log-level warn`.
 * Resolves once it listens; rejects with its stderr if it exits first.
 */
export async function startServerProcess(o: { db: string; adminToken: string; args?: string[]; startTimeoutMs?: number }): Promise<ServerProcess> {
  const startMs = o.startTimeoutMs ?? 30_000;
  const proc = spawn(
    WEFT_BIN,
    ['server', '--db', o.db, '--api-listen', '127.0.0.1:0', '--svp', '127.0.0.1:0', '--stream', '127.0.0.1:0', ...(o.args ?? ['--log-level', 'warn'])],
    {
      env: { ...process.env, WEFT_ADMIN_TOKEN: o.adminToken },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  proc.stderr?.setEncoding('utf8');
  const started = await new Promise<{ url: string; svp: { host: string; port: number }; stream: { host: string; port: number } }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new WeftError('E_UNAVAILABLE', `weft server did not start in ${startMs / 1000} s: ${err}`)), startMs);
    proc.stderr?.on('data', (d: string) => {
      err += d;
      const m = /API (http:\/\/[^\s,]+), SVP ([\d.]+):(\d+), stream ([\d.]+):(\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1] as string, svp: { host: m[2] as string, port: Number(m[3]) }, stream: { host: m[4] as string, port: Number(m[5]) } });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new WeftError('E_UNAVAILABLE', `weft server exited ${code}: ${err}`));
    });
  });
  const gone = () => proc.exitCode !== null || proc.signalCode !== null;
  return {
    url: started.url,
    svp: started.svp,
    stream: started.stream,
    proc,
    log: () => err,
    async stop() {
      if (gone()) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
    async kill() {
      if (gone()) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    },
  };
}
