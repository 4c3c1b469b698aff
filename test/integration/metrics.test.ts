// /metrics of a live server and a live agent pass `promtool check metrics`
// (Prometheus' own linter: counters end in _total, units, help, types),
// carry weft_build_info and the standard process_/nodejs_ series, and the
// agent listens on its management address when given no host.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import prom from 'prom-client';
import { managementAddress, type RunningAgent, routingMetrics, runAgent } from '../../src/agent/main.js';
import type { RoutingStatus } from '../../src/agent/routing/routing.js';
import { ApiClient } from '../../src/cli/client.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import { weftVersion } from '../../src/sys/install.js';
import { quietLog } from '../../src/sys/log.js';
import { type TestDb, testDb } from '../support/stores.js';

const sh = promisify(execFile);
const TOKEN = 'metrics-test-admin-token-0123456789';
const NS = `weft-metrics-${process.pid}`;

/** promtool's verdict on an exposition: its exit code and what it printed. */
function promtool(text: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
    p.stdin.end(text);
  });
}

/** The metric families an exposition declares, by name, with their TYPE. */
function families(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) m.set(t[1] as string, t[2] as string);
  }
  return m;
}

/** Prometheus' naming: counters end in _total, weft's durations are histograms in seconds. */
function assertNaming(text: string, who: string) {
  const fam = families(text);
  for (const [name, type] of fam) {
    if (type === 'counter') assert.match(name, /_total$/, `${who}: counter ${name} ends in _total`);
    if (/_(seconds|ms|milliseconds)$/.test(name) && name.startsWith('weft_'))
      assert.equal(type, 'histogram', `${who}: the duration ${name} is a histogram (in seconds)`);
  }
  assert.ok(!/^weft_[a-z_]+_ms\b/m.test(text), `${who}: no durations in milliseconds`);
}

/** What every weft process exports besides its own series. */
function assertStandard(text: string, who: string) {
  const fam = families(text);
  assert.equal(fam.get('process_cpu_seconds_total'), 'counter', `${who}: standard process_ metrics`);
  assert.ok(
    [...fam.keys()].some((n) => n.startsWith('nodejs_')),
    `${who}: standard nodejs_ metrics`,
  );
  assert.ok(text.includes(`weft_build_info{version="${weftVersion()}",node="${process.versions.node}"} 1`), `${who}: weft_build_info`);
}

describe('metrics', () => {
  let db: TestDb;
  let server: RunningServer;
  let agent: RunningAgent | undefined;
  before(async () => {
    await sh('ip', ['netns', 'add', NS]);
    db = await testDb('sqlite');
    server = await startServer({
      db: db.url,
      api: '127.0.0.1:0',
      svp: '127.0.0.1:0',
      stream: '127.0.0.1:0',
      placement: 'spread',
      cpuOvercommit: 1,
      adminToken: TOKEN,
      logLevel: 'silent',
    });
  });
  after(async () => {
    await agent?.stop();
    await server?.close();
    await db?.drop();
    await sh('ip', ['netns', 'del', NS]).catch(() => undefined);
  });

  test("the server's /metrics passes promtool", async () => {
    const api = new ApiClient(server.apiUrl, TOKEN);
    await api.post('/v1/sites', { name: 'ams1', underlayPool: '127.0.0.0/24' });
    await api.get('/v1/sites/nope').catch(() => undefined);
    const text = await (await fetch(`${server.apiUrl}/metrics`)).text();
    const r = await promtool(text);
    assert.equal(r.code, 0, `promtool check metrics on the server:\n${r.out}`);
    assertNaming(text, 'server');
    assertStandard(text, 'server');
    assert.match(text, /weft_api_requests_total\{method="GET",route="\/v1\/sites\/:id",status="404"\} 1/);
  });

  test("the agent's /metrics passes promtool, on the management address by default", async () => {
    const api = new ApiClient(server.apiUrl, TOKEN);
    await api.post('/v1/hosts', { name: 'hv1', site: 'ams1', capacity: { cpus: 4, memoryMb: 4096, diskGb: 10 } });
    const token = (await api.post<{ secret: string }>('/v1/tokens', { name: 'hv1-agent', role: 'agent', host: 'hv1' })).secret;
    const [streamHost, streamPort] = (server.streamAddress as string).split(':');
    const svpPort = Number((server.svpAddress as string).split(':')[1]);
    assert.equal(await managementAddress(streamHost as string), '127.0.0.1', 'the route to a loopback server is from loopback');
    agent = await runAgent({
      server: streamHost as string,
      streamPort: Number(streamPort),
      svpPort,
      host: 'hv1',
      token,
      lazy: true,
      // No host: the management address (here, toward 127.0.0.1, loopback).
      metrics: ':0',
      netns: NS,
      log: quietLog,
      routing: null,
    });
    assert.match(agent.metricsAddress ?? '', /^127\.0\.0\.1:\d+$/);
    const end = Date.now() + 20_000;
    while (!agent.stream.connected && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.ok(agent.stream.connected, 'the agent connected');
    const text = await (await fetch(`http://${agent.metricsAddress}/metrics`)).text();
    const r = await promtool(text);
    assert.equal(r.code, 0, `promtool check metrics on the agent:\n${r.out}`);
    assertNaming(text, 'agent');
    assertStandard(text, 'agent');
    assert.equal(families(text).get('weft_agent_lazy_events_total'), 'counter');
    assert.equal(families(text).get('weft_agent_reconcile_seconds'), 'histogram');
    assert.equal(families(text).get('weft_routed_guard_drops_total'), 'counter');
  });

  test("the agent's routing series pass promtool; BIRD's events are a counter, damping its own series", async () => {
    const status: RoutingStatus = {
      birdUp: true,
      inSync: true,
      lastError: null,
      configures: 3,
      rejected: 1,
      rollbacks: 0,
      pendingConfirm: false,
      sessions: [
        {
          name: 'up_p1_4',
          state: 'up',
          bgpState: 'Established',
          established: true,
          since: '2026-01-01',
          neighbor: '198.51.100.1',
          lastError: null,
          peerId: 'p1',
          channels: [{ family: 'ipv4', imported: 5, filtered: 1, exported: 2, receiveLimit: null, limitHit: false }],
        },
      ],
      announced: ['203.0.113.10'],
      backends: [{ key: 'k', vipId: 'v1', address: '10.0.0.5', healthy: false, suppressed: true, lastError: null }],
    };
    const registry = new prom.Registry();
    routingMetrics(registry, status);
    await registry.metrics();
    status.configures = 5;
    status.backends[0] = { ...(status.backends[0] as RoutingStatus['backends'][number]), suppressed: false };
    const text = await registry.metrics();
    const r = await promtool(text);
    assert.equal(r.code, 0, `promtool check metrics on the routing series:\n${r.out}`);
    assertNaming(text, 'routing');
    assert.equal(families(text).get('weft_bird_events_total'), 'counter');
    assert.match(text, /weft_bird_events_total\{event="configured"\} 5/);
    assert.match(text, /weft_vip_backend_healthy\{vip="v1",address="10.0.0.5"\} 0/);
    assert.match(text, /weft_vip_backend_suppressed\{vip="v1",address="10.0.0.5"\} 0/);
    assert.doesNotMatch(text, /suppressed="/, 'no label that changes a series identity');
  });

  test('a bad --metrics is refused before the agent starts, naming the flag', async () => {
    await assert.rejects(
      runAgent({ server: '127.0.0.1', host: 'hv1', token: 'x', metrics: '127.0.0.1:99999', netns: NS, log: quietLog, routing: null }),
      (e: Error & { code?: string }) => e.code === 'E_INVALID_ARG' && /--metrics/.test(e.message) && /99999/.test(e.message),
    );
  });
});
