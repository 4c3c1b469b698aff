// Convergence: 1,000 simulated agents (the real stream protocol over
// loopback, an in-memory desired state as their dataplane) follow a real
// `weft server`; 1,000 instance moves go through the API; for each, the time
// from the API's answer until the last agent concerned has applied it (and
// sent its ack).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentState } from '../src/agent/state/agent-state.js';
import { ApiClient } from '../src/cli/client.js';
import { startServerProcess } from '../src/lab/server-process.js';
import { StreamClient } from '../src/stream/client.js';
import { percentile, type Result } from './report.js';

const TOKEN = 'bench-admin-token-0123456789abcdef';

export async function convergence(): Promise<Result[]> {
  const HOSTS = Number(process.env.BENCH_AGENTS ?? 1000);
  const NETS = 50;
  const MOVES = Number(process.env.BENCH_MOVES ?? 1000);
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-conv-'));
  const agents: StreamClient[] = [];
  const server = await startServerProcess({ db: `sqlite:${join(dir, 'w.db')}`, adminToken: TOKEN, startTimeoutMs: 120_000 });
  try {
    const api = new ApiClient(server.url, TOKEN);
    await api.post('/v1/sites', { name: 's', underlayPool: '198.18.0.0/16' });
    const hostIds: string[] = [];
    for (let h = 0; h < HOSTS; h++)
      hostIds.push((await api.post<{ id: string }>('/v1/hosts', { name: `hv${h}`, site: 's', capacity: { cpus: 64, memoryMb: 1 << 20, diskGb: 100000 } })).id);
    await api.post('/v1/tenants', { name: 't' });
    for (let n = 0; n < NETS; n++) await api.post('/v1/networks', { tenant: 't', name: `n${n}`, kind: 'overlay', subnets: [`10.${n}.0.0/16`] });
    // Two instances per host, both on network (host mod 50): each VNI spans HOSTS/50 hosts.
    const insts: { id: string; portId: string; host: number; net: number }[] = [];
    for (let i = 0; i < 2 * HOSTS; i++) {
      const host = i % HOSTS;
      const r = await api.post<{ id: string; ports: { id: string }[] }>('/v1/instances', {
        tenant: 't',
        name: `vm${i}`,
        site: 's',
        size: 'nano',
        host: `hv${host}`,
        ports: [{ network: `n${host % NETS}` }],
      });
      insts.push({ id: r.id, portId: (r.ports[0] as { id: string }).id, host, net: host % NETS });
    }

    // The agents, each recording when it applied a move of which port.
    const seen = new Map<string, number[]>();
    const t0 = performance.now();
    for (let h = 0; h < HOSTS; h++) {
      const state = new AgentState(hostIds[h] as string);
      const c = new StreamClient({
        host: server.stream.host,
        port: server.stream.port,
        hostRef: hostIds[h] as string,
        token: TOKEN,
        handler: {
          snapshot: (v, s) => state.snapshot(v, s),
          delta: (v, changes, vnis) => {
            state.delta(v, changes, vnis);
            const now = performance.now();
            for (const ch of changes) if (ch.kind === 'port.moved') (seen.get(ch.port.portId) ?? seen.set(ch.port.portId, []).get(ch.port.portId))?.push(now);
          },
        },
      });
      agents.push(c);
      c.start();
    }
    while (agents.some((a) => a.version === 0)) await new Promise((r) => setTimeout(r, 50));
    const connectSecs = (performance.now() - t0) / 1000;

    // Moves: each instance to another host of its VNI's group, one after another.
    const perVni = HOSTS / NETS;
    const lat: number[] = [];
    const fromReq: number[] = [];
    const pendingMoves: { portId: string; sent: number; at: number; expect: number }[] = [];
    const onVni = (net: number) => new Set(insts.filter((i) => i.net === net).map((i) => i.host));
    for (let m = 0; m < MOVES; m++) {
      const inst = insts[m % insts.length] as (typeof insts)[number];
      // A target that already has the VNI: the move is a delta to every host on it.
      const before = onVni(inst.net);
      const candidates = [...before].filter((h) => h !== inst.host);
      const target = candidates[m % candidates.length] as number;
      seen.delete(inst.portId);
      const sent = performance.now();
      await api.post(`/v1/instances/${inst.id}/migrate`, { target: `hv${target}` });
      inst.host = target;
      // Every host on the VNI before or after, the one it left included.
      const expect = new Set([...before, ...onVni(inst.net)]).size;
      pendingMoves.push({ portId: inst.portId, sent, at: performance.now(), expect });
      // Collect the moves whose agents have all applied them.
      await new Promise((r) => setImmediate(r));
      while (pendingMoves.length > 0) {
        const p = pendingMoves[0] as (typeof pendingMoves)[number];
        const got = seen.get(p.portId) ?? [];
        if (got.length < p.expect) break;
        lat.push(Math.max(...got) - p.at);
        fromReq.push(Math.max(...got) - p.sent);
        pendingMoves.shift();
      }
    }
    const deadline = performance.now() + 30_000;
    while (pendingMoves.length > 0 && performance.now() < deadline) {
      const p = pendingMoves[0] as (typeof pendingMoves)[number];
      const got = seen.get(p.portId) ?? [];
      if (got.length >= p.expect) {
        lat.push(Math.max(...got) - p.at);
        fromReq.push(Math.max(...got) - p.sent);
        pendingMoves.shift();
      } else await new Promise((r) => setTimeout(r, 5));
    }
    const status = await api.get<{ head: number; items: { lag: number }[] }>('/v1/agents');
    lat.sort((a, b) => a - b);
    fromReq.sort((a, b) => a - b);
    return [
      {
        bench: 'convergence',
        agents: HOSTS,
        hostsPerVni: perVni,
        moves: MOVES,
        unconverged: pendingMoves.length,
        // From the API's answer (negative: every agent had it before the client saw the answer).
        p50Ms: Math.round(percentile(lat, 0.5) * 100) / 100,
        p99Ms: Math.round(percentile(lat, 0.99) * 100) / 100,
        maxMs: Math.round((lat.at(-1) ?? Number.NaN) * 100) / 100,
        // From sending the API request: the whole path, commit and fan-out included.
        fromRequestP50Ms: Math.round(percentile(fromReq, 0.5) * 100) / 100,
        fromRequestP99Ms: Math.round(percentile(fromReq, 0.99) * 100) / 100,
        agentsConnectSecs: Math.round(connectSecs * 10) / 10,
        laggingAfter: status.items.filter((a) => a.lag > 0).length,
      },
    ];
  } finally {
    for (const a of agents) a.stop();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
