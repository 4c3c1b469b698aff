// TCP throughput (iperf3) between two VMs on hosts in different racks, over
// the agents' VXLAN overlay with every port guard on, next to the underlay
// between the same two hosts measured in the same run.
import { OverlayLab } from '../src/lab/overlay-lab.js';
import type { Result } from './report.js';

async function iperf(c: OverlayLab, serverNs: string, clientNs: string, ip: string, seconds: number): Promise<number> {
  const server = c.lab.spawn(serverNs, 'iperf3', ['-s', '-1', '-B', ip], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 300));
    const r = await c.lab.exec(clientNs, 'iperf3', ['-c', ip, '-t', String(seconds), '-O', '1', '-J'], { timeoutMs: (seconds + 20) * 1000 });
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return j.end.sum_received.bits_per_second / 1e9;
  } finally {
    server.kill('SIGKILL');
  }
}

export async function overlayThroughput(): Promise<Result[]> {
  const seconds = Number(process.env.BENCH_IPERF_SECONDS ?? 5);
  const c = await OverlayLab.start({
    name: `wt${process.pid % 1000}`,
    hosts: [
      ['h1', 'r1'],
      ['h2', 'r2'],
    ],
  });
  try {
    // The underlay is jumbo (9000); VXLAN over IPv4 takes 50 bytes of it.
    await c.network('acme', 'private', ['10.0.0.0/24', 'fd00:10::/64'], 8950);
    await c.vm('a1', { tenant: 'acme', network: 'private', host: 'h1' });
    await c.vm('a2', { tenant: 'acme', network: 'private', host: 'h2' });
    await c.converged();
    const rows: Result[] = [];
    // Alternate, so a noisy moment on the shared machine does not favour one side.
    const under: number[] = [];
    const over: number[] = [];
    for (let i = 0; i < 2; i++) {
      under.push(await iperf(c, c.host('h2').lab.ns, c.host('h1').lab.ns, c.host('h2').lab.underlayIp, seconds));
      over.push(await iperf(c, c.vmNs('a2'), c.vmNs('a1'), c.vms.get('a2')?.port.ipv4 as string, seconds));
    }
    const u = Math.max(...under);
    const o = Math.max(...over);
    rows.push({
      bench: 'overlay-throughput',
      underlayGbps: Number(u.toFixed(2)),
      overlayGuardedGbps: Number(o.toFixed(2)),
      ratio: Number((o / u).toFixed(2)),
      runs: under.length,
      underlayRuns: under.map((x) => x.toFixed(2)).join('/'),
      overlayRuns: over.map((x) => x.toFixed(2)).join('/'),
      mtu: '9000/8950',
    });
    return rows;
  } finally {
    await c.destroy();
  }
}
