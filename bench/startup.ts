// How long a `weft` process takes to start, through tsx and as the compiled
// JavaScript bin/weft runs, side by side and interleaved in one run (so both
// see the same load): `weft --version`, `weft host list` against a running
// server, and `weft server` from exec to its /healthz answering. Wall time,
// CPU and peak RSS of the process, from getrusage(RUSAGE_CHILDREN) in a
// python3 wrapper for the CLI calls and from /proc for the server.
// BENCH_STARTUP_RUNS (default 7) sets the runs of each.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../scripts/pg-cluster.js';
import { ApiClient } from '../src/cli/client.js';
import { startServerProcess, WEFT_BIN } from '../src/lab/server-process.js';
import { percentile, procStat, type Result } from './report.js';

const TOKEN = 'bench-admin-token-0123456789abcdef';
const RUNTIMES = { tsx: { WEFT_RUN_TSX: '1' }, js: { WEFT_RUN_TSX: '0' } } as const;
type Runtime = keyof typeof RUNTIMES;

interface Sample {
  wallMs: number;
  cpuMs: number;
  rssMb: number;
}

// Runs the command as a child and prints its wall time, CPU (user + system) and peak RSS.
const RUSAGE = `
import resource, subprocess, sys, time
t = time.monotonic()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
wall = time.monotonic() - t
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.returncode, wall * 1000, (u.ru_utime + u.ru_stime) * 1000, u.ru_maxrss / 1024)
`;

function cli(args: string[], env: Record<string, string>): Sample {
  const r = spawnSync('python3', ['-c', RUSAGE, WEFT_BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  const [code, wallMs, cpuMs, rssMb] = r.stdout.trim().split(' ').map(Number) as [number, number, number, number];
  if (r.status !== 0 || code !== 0) throw new Error(`weft ${args.join(' ')} failed (${code}): ${r.stderr}`);
  return { wallMs, cpuMs, rssMb };
}

async function serverStart(env: Record<string, string>, dir: string, i: number): Promise<Sample> {
  const port = await freePort();
  const t0 = performance.now();
  const proc = spawn(
    WEFT_BIN,
    ['server', '--db', `sqlite:${join(dir, `start-${i}.db`)}`, '--api-listen', `127.0.0.1:${port}`, '--svp', 'off', '--stream', 'off', '--log-level', 'warn'],
    { env: { ...process.env, ...env, WEFT_ADMIN_TOKEN: TOKEN }, stdio: 'ignore' },
  );
  try {
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`weft server exited ${proc.exitCode}`);
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (performance.now() - t0 > 60_000) throw new Error('weft server did not answer /healthz in 60 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    const wallMs = performance.now() - t0;
    const s = procStat(proc.pid as number);
    return { wallMs, cpuMs: s.cpuMs, rssMb: s.rssMb };
  } finally {
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await gone;
  }
}

function row(what: string, runtime: Runtime, samples: Sample[], targetMs?: number): Result {
  const med = (k: keyof Sample) =>
    percentile(
      samples.map((s) => s[k]).sort((a, b) => a - b),
      0.5,
    );
  const r: Result = {
    bench: 'startup',
    what,
    runtime,
    runs: samples.length,
    p50Ms: Math.round(med('wallMs')),
    maxMs: Math.round(Math.max(...samples.map((s) => s.wallMs))),
    cpuMs: Math.round(med('cpuMs')),
    rssMb: Math.round(med('rssMb')),
  };
  if (targetMs !== undefined) r.target = `< ${targetMs} ms`;
  return r;
}

export async function startup(): Promise<Result[]> {
  const runs = Number(process.env.BENCH_STARTUP_RUNS ?? 7);
  // bin/weft rebuilds a stale build; that must not land in the first measured run.
  cli(['--version'], RUNTIMES.js);
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-startup-'));
  const server = await startServerProcess({ db: `sqlite:${join(dir, 'weft.db')}`, adminToken: TOKEN });
  try {
    const api = new ApiClient(server.url, TOKEN);
    await api.post('/v1/sites', { name: 'bench', underlayPool: '192.0.2.0/24', ipv4Pools: ['203.0.113.0/24'], ipv6Block: '2001:db8::/48' });
    for (let i = 0; i < 3; i++) await api.post('/v1/hosts', { name: `hv${i}`, site: 'bench', capacity: { cpus: 32, memoryMb: 131072, diskGb: 2000 } });
    const cases: { what: string; targetMs?: number; run: (rt: Runtime, i: number) => Sample | Promise<Sample> }[] = [
      { what: 'weft --version', targetMs: 300, run: (rt) => cli(['--version'], RUNTIMES[rt]) },
      {
        what: 'weft host list (3 hosts)',
        targetMs: 300,
        run: (rt) => cli(['host', 'list'], { ...RUNTIMES[rt], WEFT_API: server.url, WEFT_TOKEN: TOKEN }),
      },
      { what: 'weft server start to /healthz', run: (rt, i) => serverStart(RUNTIMES[rt], dir, i) },
    ];
    const rows: Result[] = [];
    for (const c of cases) {
      const samples: Record<Runtime, Sample[]> = { tsx: [], js: [] };
      // Interleaved, so that both runtimes see the same load.
      for (let i = 0; i < runs; i++)
        for (const rt of ['tsx', 'js'] as const) samples[rt].push(await c.run(rt, rows.length * runs * 2 + i * 2 + (rt === 'js' ? 1 : 0)));
      rows.push(row(c.what, 'tsx', samples.tsx), row(c.what, 'js', samples.js, c.targetMs));
    }
    return rows;
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
