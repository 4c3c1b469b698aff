// Instance creations per second through the API with concurrent clients,
// against a real `weft server` process on SQLite and on PostgreSQL (fsync
// on), then a check of what was written: duplicate MACs/IPs and
// over-committed hosts must both be 0.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPgCluster } from '../scripts/pg-cluster.js';
import { ApiClient } from '../src/cli/client.js';
import { startServerProcess } from '../src/lab/server-process.js';
import type { Host, Instance, Port } from '../src/model/types.js';
import { percentile, procStat, type Result } from './report.js';

const TOKEN = 'bench-admin-token-0123456789abcdef';

function duplicates(values: (string | null)[]): number {
  const seen = new Map<string, number>();
  for (const v of values) if (v !== null) seen.set(v, (seen.get(v) ?? 0) + 1);
  let d = 0;
  for (const n of seen.values()) d += n - 1;
  return d;
}

async function runOne(store: 'sqlite' | 'postgres', total: number, clients: number): Promise<Result> {
  const cleanups: (() => void | Promise<void>)[] = [];
  try {
    let db: string;
    if (store === 'sqlite') {
      const dir = mkdtempSync(join(tmpdir(), 'weft-bench-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      db = `sqlite:${join(dir, 'weft.db')}`;
    } else {
      const pg = await startPgCluster({ fsync: true });
      cleanups.push(() => pg.stop());
      db = pg.url;
    }
    const server = await startServerProcess({ db, adminToken: TOKEN });
    cleanups.unshift(() => server.stop());
    const api = new ApiClient(server.url, TOKEN);
    await api.post('/v1/sites', { name: 'bench', underlayPool: '192.0.2.0/24', ipv4Pools: ['203.0.113.0/24'], ipv6Block: '2001:db8::/48' });
    for (let i = 0; i < 10; i++)
      await api.post('/v1/hosts', { name: `hv${i}`, site: 'bench', capacity: { cpus: 4000, memoryMb: 4_000_000, diskGb: 1_000_000 } });
    await api.post('/v1/tenants', { name: 't' });
    await api.post('/v1/networks', { tenant: 't', name: 'net', kind: 'overlay', subnets: ['10.0.0.0/16', 'fd00::/64'] });
    const load = loadClient(server.url, clients);
    // Warm up at full concurrency (JIT, connections), unmeasured.
    await load.run('warm', WARMUP);

    const pid = server.proc.pid as number;
    const cpu0 = procStat(pid).cpuMs;
    const t0 = performance.now();
    const { lat, errors } = await load.run('vm', total);
    const secs = (performance.now() - t0) / 1000;
    const cpu = procStat(pid).cpuMs - cpu0;
    load.close();

    const ports = await api.all<Port>('/v1/ports');
    const hosts = await api.all<Host>('/v1/hosts');
    const insts = await api.all<Instance>('/v1/instances');
    const used = new Map<string, number>();
    for (const i of insts) used.set(i.hostId, (used.get(i.hostId) ?? 0) + i.size.cpus);
    const overcommitted = hosts.filter((h) => (used.get(h.id) ?? 0) > h.capacity.cpus).length;
    const dup = duplicates(ports.map((p) => p.mac)) + duplicates(ports.map((p) => p.ipv4)) + duplicates(ports.map((p) => p.ipv6));
    lat.sort((a, b) => a - b);
    return {
      bench: 'api-create',
      store,
      clients,
      instances: total,
      errors,
      createsPerSec: Math.round(total / secs),
      p50Ms: round(percentile(lat, 0.5)),
      p99Ms: round(percentile(lat, 0.99)),
      serverCpuMsPerCreate: round(cpu / total),
      duplicates: dup,
      overcommittedHosts: overcommitted,
      portsChecked: ports.length,
    };
  } finally {
    for (const c of cleanups) await c();
  }
}

const round = (x: number) => Math.round(x * 100) / 100;
const WARMUP = 200;

/**
 * The load generator: `clients` concurrent loops over node:http with a
 * keep-alive agent. (fetch/undici added multi-second tails of its own
 * under this load, which the server's own latency histogram did not show.)
 */
function loadClient(base: string, clients: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const u = new URL(base);
  const post = (body: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          agent,
          host: u.hostname,
          port: u.port,
          path: '/v1/instances',
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  return {
    async run(prefix: string, n: number): Promise<{ lat: number[]; errors: number }> {
      const lat: number[] = [];
      let next = 0;
      let errors = 0;
      await Promise.all(
        Array.from({ length: clients }, async () => {
          for (;;) {
            const i = next++;
            if (i >= n) return;
            const s = performance.now();
            const status = await post(JSON.stringify({ tenant: 't', name: `${prefix}${i}`, site: 'bench', size: 'nano', ports: [{ network: 'net' }] })).catch(
              () => 0,
            );
            if (status !== 201) errors++;
            lat.push(performance.now() - s);
          }
        }),
      );
      return { lat, errors };
    },
    close: () => agent.destroy(),
  };
}

export async function apiCreate(): Promise<Result[]> {
  const total = Number(process.env.BENCH_CREATES ?? 3000);
  const clients = Number(process.env.BENCH_CLIENTS ?? 50);
  const out: Result[] = [];
  for (const store of (process.env.BENCH_STORES?.split(',') ?? ['sqlite', 'postgres']) as ('sqlite' | 'postgres')[])
    out.push(await runOne(store, total, clients));
  return out;
}
