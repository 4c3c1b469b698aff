// `weft server` as a real child process on a free loopback port, for the
// CLI and replica tests and the benchmarks. stop() kills it (SIGKILL after
// a grace period) so no test leaves a server behind.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

export const WEFT_BIN = join(import.meta.dirname, '../../bin/weft');

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
}

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
    const timer = setTimeout(() => reject(new Error(`weft server did not start in ${startMs / 1000} s: ${err}`)), startMs);
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
      reject(new Error(`weft server exited ${code}: ${err}`));
    });
  });
  return {
    url: started.url,
    svp: started.svp,
    stream: started.stream,
    proc,
    log: () => err,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    },
  };
}
