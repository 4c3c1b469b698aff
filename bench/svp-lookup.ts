// SVP lookups against a real `weft server` process with 1M mappings:
// lookups/s and latency at 1 connection x depth 1 and 4 connections x
// depth 64, the server's own CPU time per lookup (from /proc, so the load
// generator on the same 2 cores does not blur it), its RSS, and memory
// per port against an empty server.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startServerProcess } from '../src/lab/server-process.js';
import { encodeFrame, ip16, vl2Req, vl3Req } from '../src/mapping/codec.js';
import { HEADER_SIZE, L3_TYPE, OP } from '../src/mapping/wire.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { percentile, procStat, type Result } from './report.js';

const TOKEN = 'bench-admin-token-0123456789abcdef';
const NETS = 100;
const HOSTS = 1000;

/** Writes `ports` overlay ports (one per instance, instance i on host i % hosts, network i % 100) straight into a fresh database. */
export async function generate(path: string, ports: number, hosts = HOSTS): Promise<void> {
  const store = await SqliteStore.open(path);
  await store.close();
  const db = new Database(path);
  db.pragma('synchronous = OFF');
  const at = new Date().toISOString();
  db.transaction(() => {
    db.prepare(`insert into sites (id, name, underlay_pool, ipv4_pools, ipv6_block, created_at) values ('s', 'bench', '198.18.0.0/16', '[]', null, ?)`).run(at);
    db.prepare(`insert into tenants (id, name, created_at) values ('t', 't', ?)`).run(at);
    const host = db.prepare(
      `insert into hosts (id, name, site_id, rack_id, underlay_ip, asn, cpus, memory_mb, disk_gb, state, ipv6_prefix, created_at, used_cpus, used_memory_mb, used_disk_gb)
       values (?, ?, 's', null, ?, null, 4096, 1000000, 1000000, 'active', null, ?, 0, 0, 0)`,
    );
    for (let h = 0; h < hosts; h++) host.run(`h${String(h).padStart(5, '0')}`, `hv${h}`, `198.18.${(h + 1) >> 8}.${(h + 1) & 255}`, at);
    const net = db.prepare(
      `insert into networks (id, tenant_id, name, kind, vni, subnets, site_id, mtu, arp_rate, nd_rate, created_at) values (?, 't', ?, 'overlay', ?, ?, null, 1500, null, null, ?)`,
    );
    for (let n = 0; n < NETS; n++) net.run(`n${n}`, `net${n}`, 5000 + n, JSON.stringify([`10.${n}.0.0/16`, `fd00:${n.toString(16)}::/64`]), at);
    const inst = db.prepare(
      `insert into instances (id, tenant_id, name, site_id, host_id, cpus, memory_mb, disk_gb, state, created_at) values (?, 't', ?, 's', ?, 1, 512, 10, 'running', ?)`,
    );
    const port = db.prepare(`insert into ports (id, instance_id, network_id, tenant_id, mac, ipv4, ipv6, created_at) values (?, ?, ?, 't', ?, ?, ?, ?)`);
    for (let i = 0; i < ports; i++) {
      const id = `p${String(i).padStart(8, '0')}`;
      const n = i % NETS;
      const k = Math.floor(i / NETS) + 1;
      inst.run(id, id, `h${String(i % hosts).padStart(5, '0')}`, at);
      const mac = (0x025746000000 + i)
        .toString(16)
        .padStart(12, '0')
        .replace(/(..)(?!$)/g, '$1:');
      port.run(id, id, `n${n}`, mac, `10.${n}.${k >> 8}.${k & 255}`, `fd00:${n.toString(16)}::${k.toString(16)}`, at);
    }
  })();
  db.close();
}

/** A pool of pre-encoded requests over the generated ports, half VL2, half VL3 (IPv4), ids = slot. */
export function requestPool(ports: number, size: number): Buffer[] {
  const pool: Buffer[] = [];
  for (let s = 0; s < size; s++) {
    const i = Math.floor(Math.random() * ports);
    const n = i % NETS;
    const k = Math.floor(i / NETS) + 1;
    if (s % 2 === 0) pool.push(encodeFrame(OP.VL2_REQ, s, vl2Req({ mac: 0x025746000000n + BigInt(i), vnetid: 5000 + n })));
    else pool.push(encodeFrame(OP.VL3_REQ, s, vl3Req({ ip: ip16(4, BigInt((10 << 24) | (n << 16) | k)), type: L3_TYPE.IPV4, vnetid: 5000 + n })));
  }
  return pool;
}

/**
 * `conns` connections, each keeping `depth` requests in flight for
 * `seconds`. Replies are counted by header (no CRC check: the load
 * generator must stay cheaper than the server).
 */
export async function load(host: string, port: number, pool: Buffer[], conns: number, depth: number, seconds: number) {
  const lat: number[] = [];
  let done = 0;
  let notFound = 0;
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from(
      { length: conns },
      (_, c) =>
        new Promise<void>((resolve, reject) => {
          const sock = connect(port, host);
          sock.setNoDelay(true);
          const sent = new Float64Array(pool.length);
          let next = c * 7919;
          let inflight = 0;
          let buf: Buffer = Buffer.alloc(0);
          let stopping = false;
          const send = (k: number) => {
            const out: Buffer[] = [];
            const now = performance.now();
            for (let j = 0; j < k; j++) {
              const slot = next++ % pool.length;
              sent[slot] = now;
              out.push(pool[slot] as Buffer);
            }
            inflight += k;
            sock.write(k === 1 ? (out[0] as Buffer) : Buffer.concat(out));
          };
          sock.on('connect', () => send(depth));
          sock.on('data', (chunk: Buffer) => {
            buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
            let at = 0;
            let got = 0;
            const now = performance.now();
            while (buf.length - at >= HEADER_SIZE) {
              const size = buf.readUInt32BE(at + 4);
              if (buf.length - at < HEADER_SIZE + size) break;
              const id = buf.readUInt32BE(at + 8);
              lat.push(now - (sent[id] as number));
              // VL2_ACK status is u16, VL3_ACK's u32: both non-zero on a miss.
              if (buf.readUInt16BE(at + HEADER_SIZE) !== 0 || (size === 28 && buf.readUInt32BE(at + HEADER_SIZE) !== 0)) notFound++;
              at += HEADER_SIZE + size;
              got++;
            }
            buf = at === buf.length ? Buffer.alloc(0) : buf.subarray(at);
            inflight -= got;
            done += got;
            if (now < deadline) send(got);
            else if (!stopping) stopping = true;
            if (stopping && inflight === 0) {
              sock.destroy();
              resolve();
            }
          });
          sock.on('error', reject);
        }),
    ),
  );
  return { lat, done, notFound };
}

export async function svpLookup(): Promise<Result[]> {
  const ports = Number(process.env.BENCH_SVP_PORTS ?? 1_000_000);
  const seconds = Number(process.env.BENCH_SVP_SECONDS ?? 8);
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-svp-'));
  const out: Result[] = [];
  try {
    const empty = await startServerProcess({ db: `sqlite:${join(dir, 'empty.db')}`, adminToken: TOKEN });
    await new Promise((r) => setTimeout(r, 500));
    const rssEmpty = procStat(empty.proc.pid as number).rssMb;
    await empty.stop();

    const t0 = performance.now();
    await generate(join(dir, 'big.db'), ports);
    const genSecs = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const server = await startServerProcess({ db: `sqlite:${join(dir, 'big.db')}`, adminToken: TOKEN, startTimeoutMs: 300_000 });
    const loadSecs = (performance.now() - t1) / 1000;
    try {
      const pid = server.proc.pid as number;
      global.gc?.();
      await new Promise((r) => setTimeout(r, 1000));
      const rss = procStat(pid).rssMb;
      const pool = requestPool(ports, 1 << 16);
      for (const [conns, depth] of [
        [1, 1],
        [4, 64],
      ] as const) {
        await load(server.svp.host, server.svp.port, pool, conns, Math.min(depth, 4), 1); // warm up
        const c0 = procStat(pid).cpuMs;
        const start = performance.now();
        const r = await load(server.svp.host, server.svp.port, pool, conns, depth, seconds);
        const secs = (performance.now() - start) / 1000;
        const cpu = procStat(pid).cpuMs - c0;
        r.lat.sort((a, b) => a - b);
        out.push({
          bench: 'svp-lookup',
          mappings: ports,
          connections: conns,
          depth,
          lookupsPerSec: Math.round(r.done / secs),
          p50Ms: Math.round(percentile(r.lat, 0.5) * 1000) / 1000,
          p99Ms: Math.round(percentile(r.lat, 0.99) * 1000) / 1000,
          serverCpuUsPerLookup: Math.round((cpu * 1000 * 100) / r.done) / 100,
          notFound: r.notFound,
          serverRssMb: Math.round(rss),
          bytesPerPort: Math.round(((rss - rssEmpty) * 1024 * 1024) / ports),
          indexLoadSecs: Math.round(loadSecs * 10) / 10,
          generateSecs: Math.round(genSecs * 10) / 10,
        });
      }
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
