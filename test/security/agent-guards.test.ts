// One tenant must not switch off the guards of a shared hypervisor. A real
// server and a real agent (runAgent, its Linux dataplane in a namespace of
// this test's) with a desired state that holds ports whose guard the renderer
// refuses, written straight into the store around the API's checks, among
// good ones: the good ports are guarded (their nft chains exist) and plugged,
// the bad ones are not plugged (one plugged before is unplugged), and
// /healthz, /metrics and GET /v1/agents name them. Then a hostile agent's
// guards report: bounded, or its connection closed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { jsonLog, type RunningAgent, runAgent } from '../../src/agent/main.js';
import { bridgeName, portIfname } from '../../src/agent/names.js';
import { ApiClient } from '../../src/cli/client.js';
import type { Port } from '../../src/model/types.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import { StreamClient } from '../../src/stream/client.js';
import { type AgentGuards, MAX_REPORTED_UNGUARDED } from '../../src/stream/protocol.js';
import { run } from '../../src/sys/exec.js';
import { quietLog } from '../../src/sys/log.js';
import { until } from '../../src/sys/until.js';
import { type TestDb, testDb } from '../support/stores.js';

const TOKEN = 'agent-guards-admin-token-0123456789';
const ready = process.getuid?.() === 0 && spawnSync('nft', ['--version']).status === 0;
const skip = ready ? false : 'needs root and nft (network namespaces, nftables)';
/** The helper id "sg", then this process: other engineers' runs use other names. */
const NS = `sg${process.pid}`;

interface Health {
  status: string;
  connected: boolean;
  unguarded: { portId: string; ifname: string; kind: string; reason: string }[];
}
interface AgentItem {
  hostId: string;
  guards: AgentGuards | null;
}

const sh = (cmd: string) => run('sh', ['-c', cmd]);

describe('security: a port whose guard cannot be set is never plugged, and is reported', { skip }, () => {
  let db: TestDb;
  let server: RunningServer;
  let api: ApiClient;
  let agentToken: string;
  let hv1: string;
  let vni: number;
  let running: RunningAgent | null = null;
  /** Ports of hv1 by name: good1, bad (a multicast IPv4), good2; and remote, on hv2. */
  const ports = new Map<string, Port>();
  const streamPort = () => Number((server.streamAddress as string).split(':').at(-1));

  async function startAgent(): Promise<RunningAgent> {
    const a = await runAgent({
      server: '127.0.0.1',
      streamPort: streamPort(),
      host: 'hv1',
      token: agentToken,
      metrics: '127.0.0.1:0',
      netns: NS,
      routing: null,
      log: process.env.SG_DEBUG ? jsonLog : quietLog,
    });
    running = a;
    return a;
  }

  async function stopAgent(): Promise<void> {
    await running?.stop();
    running = null;
  }

  /** Port interfaces plugged into the network's bridge in the namespace. */
  async function bridged(): Promise<string[]> {
    const r = await run('ip', ['-n', NS, '-j', 'link', 'show', 'master', bridgeName(vni)], { okCodes: [1, 255] });
    if (r.code !== 0) return [];
    // The bridge's vxlan port aside: the ports' interfaces.
    return (JSON.parse(r.stdout || '[]') as { ifname: string }[])
      .map((l) => l.ifname)
      .filter((n) => n.startsWith('wp'))
      .sort();
  }

  /** The port chains in the guard table, and whether each ends with its spec rule and is in the port map. */
  async function guarded(): Promise<string[]> {
    const r = await run('nft', ['-j', 'list', 'table', 'bridge', 'weft'], { netns: NS, okCodes: [1] });
    if (r.code !== 0) return [];
    const objs = (JSON.parse(r.stdout) as { nftables: { rule?: { chain: string; comment?: string }; map?: { name: string; elem?: unknown[] } }[] }).nftables;
    const inMap = new Set(objs.flatMap((o) => (o.map?.name === 'ports_in' ? (o.map.elem ?? []).map((e) => (Array.isArray(e) ? String(e[0]) : '')) : [])));
    const specs = objs.filter((o) => o.rule?.comment?.startsWith('accept spec=')).map((o) => (o.rule?.chain ?? '').replace(/^p_/, ''));
    return specs.filter((i) => inMap.has(i)).sort();
  }

  async function health(a: RunningAgent): Promise<{ code: number; body: Health }> {
    const r = await fetch(`http://${a.metricsAddress}/healthz`);
    return { code: r.status, body: (await r.json()) as Health };
  }

  async function agentItem(): Promise<AgentItem | undefined> {
    return (await api.get<{ items: AgentItem[] }>('/v1/agents')).items.find((a) => a.hostId === hv1);
  }

  const ifOf = (name: string) => portIfname(ports.get(name)?.id as string);

  before(async () => {
    db = await testDb('sqlite');
    server = await startServer({
      db: db.url,
      api: '127.0.0.1:0',
      svp: 'off',
      stream: '127.0.0.1:0',
      placement: 'spread',
      cpuOvercommit: 1,
      adminToken: TOKEN,
      logLevel: 'silent',
    });
    api = new ApiClient(server.apiUrl, TOKEN);
    await api.post('/v1/sites', { name: 'ams1', underlayPool: '192.0.2.0/24' });
    await api.post('/v1/racks', { site: 'ams1', name: 'r1' });
    for (const h of ['hv1', 'hv2'])
      await api.post('/v1/hosts', { name: h, site: 'ams1', rack: 'r1', capacity: { cpus: 64, memoryMb: 1 << 20, diskGb: 10000 } });
    const host = await api.get<{ id: string; underlayIp: string }>('/v1/hosts/hv1');
    hv1 = host.id;
    agentToken = (await api.post<{ secret: string }>('/v1/tokens', { name: 'hv1-agent', role: 'agent', host: 'hv1' })).secret;
    await api.post('/v1/tenants', { name: 'acme' });
    vni = (await api.post<{ vni: number }>('/v1/networks', { tenant: 'acme', name: 'a', kind: 'overlay', subnets: ['10.20.0.0/24', 'fd00:20::/64'] })).vni;
    for (const [name, h] of [
      ['good1', 'hv1'],
      ['bad', 'hv1'],
      ['good2', 'hv1'],
      ['remote', 'hv2'],
    ] as const) {
      const i = await api.post<{ ports: Port[] }>('/v1/instances', { tenant: 'acme', name, site: 'ams1', host: h, ports: [{ network: 'a' }] });
      ports.set(name, i.ports[0] as Port);
    }
    // The tenant's bad record, as a bug or a hand edit could leave it: the API refuses this address.
    await server.store.write((tx) => tx.update('ports', ports.get('bad')?.id as string, { ipv4: '224.0.0.9' }));

    // The hypervisor: its underlay address and a VM interface per local port.
    await sh(`ip netns add ${NS} && ip -n ${NS} link set lo up`);
    await sh(`ip -n ${NS} link add ul0 type veth peer name ul1 && ip -n ${NS} addr add ${host.underlayIp}/24 dev ul0 && ip -n ${NS} link set ul0 up`);
    let vm = 0;
    for (const name of ['good1', 'bad', 'good2']) await sh(`ip -n ${NS} link add ${ifOf(name)} type veth peer name sgvm${vm++}`);
  });

  after(async () => {
    await stopAgent().catch(() => {});
    spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
    await server?.close();
    await db?.drop();
  });

  test('the good ports are guarded and plugged, the bad one is neither; /healthz, /metrics and GET /v1/agents name it', async () => {
    const a = await startAgent();
    const good = [ifOf('good1'), ifOf('good2')].sort();
    await until('the good ports plugged', async () => JSON.stringify(await bridged()) === JSON.stringify(good), 20_000);
    assert.deepEqual(await guarded(), good, 'each good port has its chain, in the port map');
    assert.ok(!(await bridged()).includes(ifOf('bad')), 'the bad port is not in the bridge');

    const h = await health(a);
    assert.equal(h.code, 200, 'connected: the agent works; restarting it would change nothing');
    assert.equal(h.body.status, 'degraded');
    assert.deepEqual(
      h.body.unguarded.map((u) => [u.portId, u.ifname, u.kind]),
      [[ports.get('bad')?.id, ifOf('bad'), 'refused']],
    );
    assert.match(h.body.unguarded[0]?.reason ?? '', /^invalid port\.ipv4 "224\.0\.0\.9": must be a unicast address, not multicast/);

    const metrics = await (await fetch(`http://${a.metricsAddress}/metrics`)).text();
    assert.match(metrics, /^weft_agent_ports_unguarded 1$/m);
    assert.match(metrics, /^weft_agent_guard_failures_total\{kind="refused"\} 1$/m);
    assert.match(metrics, /^weft_agent_guard_failures_total\{kind="failed"\} 0$/m);

    await until('GET /v1/agents shows it', async () => (await agentItem())?.guards?.unguarded === 1, 10_000);
    const g = (await agentItem())?.guards as AgentGuards;
    assert.deepEqual(
      g.ports.map((p) => [p.portId, p.ifname, p.kind]),
      [[ports.get('bad')?.id, ifOf('bad'), 'refused']],
    );
    assert.match(g.ports[0]?.reason ?? '', /224\.0\.0\.9/);
    await stopAgent();
  });

  test('a plugged port whose record turns bad is unplugged and its chain removed, by the next agent too', async () => {
    // good1 was plugged and guarded by the agent before; its record now holds a link-local IPv6.
    await server.store.write((tx) => tx.update('ports', ports.get('good1')?.id as string, { ipv6: 'fe80::1' }));
    assert.ok((await bridged()).includes(ifOf('good1')), 'left plugged by the stopped agent');
    const a = await startAgent();
    await until('good1 unplugged', async () => JSON.stringify(await bridged()) === JSON.stringify([ifOf('good2')]), 20_000);
    await until('its chain removed', async () => JSON.stringify(await guarded()) === JSON.stringify([ifOf('good2')]), 10_000);
    const h = await health(a);
    assert.equal(h.body.status, 'degraded');
    assert.deepEqual(h.body.unguarded.map((u) => u.portId).sort(), [ports.get('good1')?.id, ports.get('bad')?.id].sort());
    await until('GET /v1/agents shows both', async () => (await agentItem())?.guards?.unguarded === 2, 10_000);

    // Both records fixed (through the store again, a snapshot carries them): everything guarded and plugged, status ok.
    await stopAgent();
    await server.store.write(async (tx) => {
      await tx.update('ports', ports.get('good1')?.id as string, { ipv6: ports.get('good1')?.ipv6 ?? null });
      await tx.update('ports', ports.get('bad')?.id as string, { ipv4: ports.get('bad')?.ipv4 ?? null });
    });
    const b = await startAgent();
    const all = ['good1', 'bad', 'good2'].map(ifOf).sort();
    await until('all plugged', async () => JSON.stringify(await bridged()) === JSON.stringify(all), 20_000);
    assert.deepEqual(await guarded(), all);
    await until('status ok', async () => (await health(b)).body.status === 'ok', 10_000);
    await until('GET /v1/agents shows none', async () => (await agentItem())?.guards?.unguarded === 0, 10_000);
    await stopAgent();
  });

  test("a hostile agent's guards report is bounded by the server, and a malformed one closes its connection", async () => {
    const errors: string[] = [];
    const c = new StreamClient({
      host: '127.0.0.1',
      port: streamPort(),
      hostRef: 'hv1',
      token: agentToken,
      handler: { snapshot: () => undefined, delta: () => undefined },
      onError: (e) => errors.push(e.message),
    });
    try {
      c.start();
      await until('connected', () => c.connected, 10_000);
      const big = { portId: 'p'.repeat(5000), ifname: 'i'.repeat(100), kind: 'failed' as const, reason: 'r'.repeat(20_000) };
      assert.ok(c.reportGuards({ unguarded: 1_000_000, ports: [big, big] }));
      await until('kept', async () => (await agentItem())?.guards?.unguarded === 1_000_000, 10_000);
      const p = (await agentItem())?.guards?.ports ?? [];
      assert.deepEqual(
        p.map((x) => [x.portId.length, x.ifname.length, x.reason.length]),
        [
          [64, 15, 500],
          [64, 15, 500],
        ],
      );
      // More ports than a report may list: refused by name, the connection closed.
      const many = Array.from({ length: MAX_REPORTED_UNGUARDED + 1 }, () => ({ portId: 'x', ifname: 'wpx', kind: 'refused' as const, reason: 'r' }));
      const closed = until('closed', () => !c.connected, 10_000);
      assert.ok(c.reportGuards({ unguarded: many.length, ports: many }));
      await closed;
      await until('told why', () => errors.some((e) => /guards\.guards\.ports/.test(e) && /at most 50/.test(e)), 10_000);
    } finally {
      c.stop();
    }
  });
});
