// A real `weft agent` doing a full sync of 100k remote ports (100 VNIs) from
// a real server, into a network namespace of the bench's own, next to the
// raw `bridge -batch` / `ip -batch` rate for the same entries measured in
// the same run; plus the agent's RSS once synced. The agent runs built
// (`npm run build`, what bin/weft runs: no TypeScript loader in the process),
// or through tsx with BENCH_AGENT_TSX=1.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../src/cli/client.js';
import { startServerProcess, WEFT_BIN } from '../src/lab/server-process.js';
import { run } from '../src/sys/exec.js';
import { procStat, type Result } from './report.js';
import { generate } from './svp-lookup.js';

const TOKEN = 'bench-admin-token-0123456789abcdef';
const NETS = 100;

/** The same entries the agent programs for n remote ports: FDB (vxlan + bridge) and IPv4/IPv6 neighbours. */
function rawLines(n: number, nets: Set<number>): { fdb: string; neigh: string; devices: string } {
  const fdb: string[] = [];
  const neigh: string[] = [];
  const dev: string[] = [];
  for (let v = 0; v < NETS; v++) {
    const vni = 5000 + v;
    dev.push(
      `link add wvx${vni} type vxlan id ${vni} local 198.18.0.1 dstport 4789 nolearning`,
      `link add wbr${vni} type bridge`,
      `link set wvx${vni} master wbr${vni} up`,
      `link set wbr${vni} up`,
    );
  }
  for (let i = 1; i < n; i++) {
    const v = i % NETS;
    if (i % 999 === 0 || !nets.has(v)) continue;
    const k = Math.floor(i / NETS) + 1;
    const mac = (0x025746000000 + i)
      .toString(16)
      .padStart(12, '0')
      .replace(/(..)(?!$)/g, '$1:');
    const h = i % 999;
    fdb.push(
      `fdb replace ${mac} dev wvx${5000 + v} dst 198.18.${(h + 1) >> 8}.${(h + 1) & 255} self permanent`,
      `fdb replace ${mac} dev wvx${5000 + v} master static`,
    );
    neigh.push(
      `neigh replace 10.${v}.${k >> 8}.${k & 255} lladdr ${mac} dev wbr${5000 + v} nud permanent`,
      `neigh replace fd00:${v.toString(16)}::${k.toString(16)} lladdr ${mac} dev wbr${5000 + v} nud permanent`,
    );
  }
  return { fdb: `${fdb.join('\n')}\n`, neigh: `${neigh.join('\n')}\n`, devices: `${dev.join('\n')}\n` };
}

async function rawRate(ports: number, nets: Set<number>): Promise<{ seconds: number; entries: number }> {
  const ns = `wbr${process.pid}`;
  await run('ip', ['netns', 'add', ns]);
  try {
    const l = rawLines(ports, nets);
    await run('ip', ['-n', ns, '-batch', '-'], { input: l.devices });
    const t0 = performance.now();
    await run('bridge', ['-n', ns, '-batch', '-'], { input: l.fdb });
    await run('ip', ['-n', ns, '-batch', '-'], { input: l.neigh });
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, entries: l.fdb.split('\n').length + l.neigh.split('\n').length - 2 };
  } finally {
    await run('ip', ['netns', 'del', ns]).catch(() => {});
  }
}

async function healthz(addr: string): Promise<{ version: number; lastReconcileMs: number; connected: boolean; objects: { fdb: number; neigh: number } }> {
  const r = await fetch(`http://${addr}/healthz`);
  return (await r.json()) as { version: number; lastReconcileMs: number; connected: boolean; objects: { fdb: number; neigh: number } };
}

export async function agentSync(): Promise<Result[]> {
  const ports = Number(process.env.BENCH_AGENT_PORTS ?? 100_000);
  const tsx = process.env.BENCH_AGENT_TSX === '1';
  if (!tsx) execFileSync('npm', ['run', '--silent', 'build'], { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'ignore', 'inherit'] });
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-agent-'));
  const ns = `wba${process.pid}`;
  let agent: ChildProcess | null = null;
  const server = await (async () => {
    await generate(join(dir, 'weft.db'), ports, 999);
    return startServerProcess({ db: `sqlite:${join(dir, 'weft.db')}`, adminToken: TOKEN, startTimeoutMs: 600_000 });
  })();
  try {
    const api = new ApiClient(server.url, TOKEN);
    const { secret } = await api.post<{ secret: string }>('/v1/tokens', { name: 'bench-agent', role: 'agent', host: 'hv0' });
    writeFileSync(join(dir, 'token'), secret);
    const head = (await api.get<{ head: number }>('/v1/agents')).head;
    await run('ip', ['netns', 'add', ns]);
    const t0 = performance.now();
    agent = spawn(
      WEFT_BIN,
      [
        'agent',
        '--no-routing',
        '--server',
        server.stream.host,
        '--stream-port',
        String(server.stream.port),
        '--host',
        'hv0',
        '--token-file',
        join(dir, 'token'),
        '--metrics',
        '127.0.0.1:0',
        '--netns',
        ns,
      ],
      // Its own process group, so that killing it also kills its helpers (`ip monitor`), which hold its stderr open.
      { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: { ...process.env, WEFT_RUN_TSX: tsx ? '1' : '0' } },
    );
    let err = '';
    agent.stderr?.setEncoding('utf8');
    const addr = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`agent did not start: ${err}`)), 30_000);
      agent?.stderr?.on('data', (d: string) => {
        err += d;
        const m = /metrics ([\d.]+:\d+)/.exec(err);
        if (m?.[1]) {
          clearTimeout(t);
          resolve(m[1]);
        }
      });
    });
    // Synced: every remote port's FDB entry and both neighbours are in the kernel (the model counts only applied steps).
    // hv0 holds instance i when i % 999 == 0 (network i % 100); it gets every other port of those networks.
    const nets = new Set<number>();
    for (let i = 0; i < ports; i += 999) nets.add(i % NETS);
    let remote = 0;
    for (let i = 0; i < ports; i++) if (i % 999 !== 0 && nets.has(i % NETS)) remote++;
    let h = await healthz(addr);
    while (h.version < head || h.objects.fdb < remote || h.objects.neigh < 2 * remote) {
      if (performance.now() - t0 > 600_000) throw new Error(`agent did not sync: ${err.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
      h = await healthz(addr);
      if (process.env.BENCH_DEBUG) process.stderr.write(`${JSON.stringify(h)}\n`);
    }
    const total = (performance.now() - t0) / 1000;
    if (process.env.BENCH_DEBUG) process.stderr.write(err);
    const rss = procStat(agent.pid as number).rssMb;
    const peak = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${agent.pid}/status`, 'utf8'))?.[1]) / 1024;
    // The build, or tsx with BENCH_AGENT_TSX=1.
    const runtime = readFileSync(`/proc/${agent.pid}/cmdline`, 'utf8').includes('tsx') ? 'tsx' : 'js';
    // Idle for a while: V8 shrinks its heap once the sync's garbage is collected.
    await new Promise((r) => setTimeout(r, 15_000));
    const settled = procStat(agent.pid as number).rssMb;
    const applySeconds = h.lastReconcileMs / 1000;
    const raw = await rawRate(ports, nets);
    const rawPortsPerS = remote / raw.seconds;
    const agentPortsPerS = remote / applySeconds;
    return [
      {
        bench: 'agent-sync',
        remotePorts: remote,
        vnis: nets.size,
        agentApplyS: Number(applySeconds.toFixed(2)),
        agentPortsPerS: Math.round(agentPortsPerS),
        rawBatchS: Number(raw.seconds.toFixed(2)),
        rawPortsPerS: Math.round(rawPortsPerS),
        rawEntriesPerS: Math.round(raw.entries / raw.seconds),
        ratio: Number((agentPortsPerS / rawPortsPerS).toFixed(2)),
        startToSyncedS: Number(total.toFixed(2)),
        agentRssSyncedMb: Math.round(rss),
        agentRssPeakMb: Math.round(peak),
        agentRssIdle15sMb: Math.round(settled),
        agentRuntime: runtime,
      },
    ];
  } finally {
    try {
      if (agent?.pid) process.kill(-agent.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    await server.stop();
    await run('ip', ['netns', 'del', ns]).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}
