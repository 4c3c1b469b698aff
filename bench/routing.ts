// Routing reaction times in the lab, real kernel and real BIRD everywhere:
// how long after a VIP backend dies its host's next hop leaves the ToR's
// kernel route (health check -> agent -> BIRD -> BGP -> ToR kernel), and how
// long BFD takes to cut a host that went silent (packets from it dropped at
// the ToR), next to BGP's hold time, which is what detects it without BFD.
import type { ChildProcess } from 'node:child_process';
import { type RoutedVm, RoutingLab } from '../src/lab/routing-lab.js';
import { until } from '../src/sys/until.js';
import { percentile, type Result } from './report.js';

const backend = (r: RoutingLab, vm: RoutedVm): ChildProcess =>
  r.overlay.lab.spawn(vm.ns, process.execPath, ['-e', `require('http').createServer((q,s)=>s.end('ok')).listen(8080,'::')`], { stdio: 'ignore' });

/** Polls `cond` every 2 ms; resolves with the elapsed ms since `t0`. */
async function timeUntil(what: string, t0: number, cond: () => Promise<boolean>, ms = 15_000): Promise<number> {
  const end = t0 + ms;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return performance.now() - t0;
}

export async function routing(): Promise<Result[]> {
  const rounds = Number(process.env.BENCH_ROUTING_ROUNDS ?? 5);
  const r = await RoutingLab.start({
    name: `wb${process.pid % 1000}`,
    hosts: [
      ['h1', 'r1'],
      ['h2', 'r1'],
    ],
    bfd: true,
  });
  try {
    await r.api.post('/v1/tenants', { name: 'acme' });
    await r.api.post('/v1/networks', { tenant: 'acme', name: 'pub', kind: 'routed', site: 'lab' });
    const b1 = await r.routedVm('b1', { tenant: 'acme', network: 'pub', host: 'h1' });
    const b2 = await r.routedVm('b2', { tenant: 'acme', network: 'pub', host: 'h2' });
    let s1 = backend(r, b1);
    backend(r, b2);
    const rows: Result[] = [];
    const h1 = r.overlay.host('h1').lab.underlayIp;
    for (const [label, check] of [
      ['100ms x fall 2', { intervalMs: 100, rise: 2, fall: 2 }],
      ['default (200ms x fall 2)', {}],
    ] as const) {
      const withdraw: number[] = [];
      const restore: number[] = [];
      for (let i = 0; i < rounds; i++) {
        // A fresh VIP each round: the same backend failing again and again is a flap, and damping would hold it down.
        const v = await r.api.post<{ id: string; address: string }>('/v1/vips', {
          tenant: 'acme',
          name: `web${rows.length}x${i}`,
          site: 'lab',
          backends: [b1.port.id, b2.port.id],
          healthCheck: { type: 'http', port: 8080, path: '/', ...check },
        });
        const prefix = `${v.address}/32`;
        const hops = async () => (await r.nextHops('r1', prefix)).length;
        await until('two next hops', async () => (await hops()) === 2, 30_000);
        const t0 = performance.now();
        s1.kill('SIGKILL');
        withdraw.push(await timeUntil('withdrawal', t0, async () => (await hops()) === 1));
        // Includes starting the backend process (node, some 100 ms here) before its first check can pass.
        const t1 = performance.now();
        s1 = backend(r, b1);
        restore.push(await timeUntil('restore', t1, async () => (await hops()) === 2));
        await r.api.delete(`/v1/vips/${v.id}`);
      }
      withdraw.sort((a, b) => a - b);
      restore.sort((a, b) => a - b);
      rows.push({
        bench: 'routing',
        what: `VIP withdrawal, check ${label}`,
        rounds,
        p50Ms: Math.round(percentile(withdraw, 0.5)),
        maxMs: Math.round(withdraw.at(-1) as number),
        restoreInclStartP50Ms: Math.round(percentile(restore, 0.5)),
        targetMs: 1000,
      });
    }

    // BFD: silence h1 at the ToR (drop everything it sends), time until the ToR's route loses it.
    const prefix = `${b1.port.ipv4}/32`;
    const tor = r.overlay.lab.ns('r1');
    const bfd: number[] = [];
    await r.established();
    for (let i = 0; i < Math.min(rounds, 3); i++) {
      await until('h1 routed', async () => (await r.nextHops('r1', prefix)).join() === h1, 90_000);
      const t0 = performance.now();
      await r.overlay.lab.exec(tor, 'nft', ['-f', '-'], {
        input: 'table netdev wbench {\n  chain in {\n    type filter hook ingress device "h1" priority 0; policy drop;\n  }\n}\n',
      });
      bfd.push(await timeUntil('BFD detection', t0, async () => (await r.nextHops('r1', prefix)).length === 0, 30_000));
      await r.overlay.lab.exec(tor, 'nft', ['delete', 'table', 'netdev', 'wbench']);
    }
    bfd.sort((a, b) => a - b);
    rows.push({
      bench: 'routing',
      what: 'BFD detection (100ms x 3) to route gone at the ToR',
      rounds: bfd.length,
      p50Ms: Math.round(percentile(bfd, 0.5)),
      maxMs: Math.round(bfd.at(-1) as number),
      restoreInclStartP50Ms: '-',
      targetMs: 'hold time 240000 without BFD',
    });
    return rows;
  } finally {
    await r.destroy();
  }
}
