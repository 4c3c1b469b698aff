// Routing end to end on the real kernel with real BIRD: ToRs and a core
// from src/lab/fabric, one BIRD per host configured by its real weft agent.
// Anycast VIPs with ECMP and health checks, traffic from outside the rack,
// routed instances that keep their addresses across a move, drain.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { protocolName } from '../../src/agent/routing/bird-conf.js';
import { kernelRoute, protocols, rackUplink } from '../../src/lab/bird.js';
import { type RoutedVm, RoutingLab } from '../../src/lab/routing-lab.js';
import { run } from '../../src/sys/exec.js';
import { until } from '../../src/sys/until.js';

const root = process.getuid?.() === 0;

/** A tiny HTTP server in a VM namespace answering its own name on port 8080. */
function backend(r: RoutingLab, vm: RoutedVm): ChildProcess {
  const code = `require('http').createServer((q,s)=>{s.end(${JSON.stringify(vm.name)})}).listen(8080,'::')`;
  return r.overlay.lab.spawn(vm.ns, process.execPath, ['-e', code], { stdio: 'ignore' });
}

/** `n` HTTP GETs from the client to `url`, each on a new connection; returns the answers. */
async function fetchMany(r: RoutingLab, url: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await run('curl', ['-s', '-m', '2', '--connect-timeout', '1', url], { netns: r.clientNs, okCodes: [7, 28, 52, 56] });
    out.push(res.code === 0 ? res.stdout : `error ${res.code}`);
  }
  return out;
}

describe('routing: BGP from every hypervisor through BIRD', { skip: root ? false : 'needs root (network namespaces)' }, () => {
  let r: RoutingLab;
  const h = new Map<string, string>();
  let vip = '';
  let b1: RoutedVm;
  let b2: RoutedVm;
  let s1: ChildProcess | null = null;
  let s2: ChildProcess | null = null;

  before(async () => {
    r = await RoutingLab.start({
      name: 'wrt',
      hosts: [
        ['h1', 'r1'],
        ['h2', 'r1'],
        ['h3', 'r2'],
      ],
      bfd: true,
    });
    for (const x of r.overlay.hosts.values()) h.set(x.name, x.lab.underlayIp);
    await r.api.post('/v1/tenants', { name: 'acme' });
    await r.api.post('/v1/networks', { tenant: 'acme', name: 'pub', kind: 'routed', site: 'lab' });
    b1 = await r.routedVm('b1', { tenant: 'acme', network: 'pub', host: 'h1' });
    b2 = await r.routedVm('b2', { tenant: 'acme', network: 'pub', host: 'h2' });
    s1 = backend(r, b1);
    s2 = backend(r, b2);
    const v = await r.api.post<{ address: string }>('/v1/vips', {
      tenant: 'acme',
      name: 'web',
      site: 'lab',
      backends: [b1.port.id, b2.port.id],
      healthCheck: { type: 'http', port: 8080, path: '/', intervalMs: 200, rise: 2, fall: 2 },
    });
    vip = v.address;
  });
  after(async () => {
    if (process.env.WEFT_DEBUG) {
      const h1 = r?.birds.get('h1');
      process.stdout.write(`${r?.overlay.logs()}\n${await r?.tors.get('r1')?.birdc(['show', 'protocols', 'all'])}\n`);
      process.stdout.write(`${await h1?.birdc(['show', 'protocols', 'all'])}\n${(await import('node:fs')).readFileSync(h1?.confPath ?? '', 'utf8')}\n`);
    }
    await r?.destroy();
  });

  test('sessions come up from the rendered configs, with BFD', async () => {
    await r.established();
    const bfd = await (r.tors.get('r1') as NonNullable<ReturnType<typeof r.tors.get>>).birdc(['show', 'bfd', 'sessions']);
    assert.match(bfd, new RegExp(`${h.get('h1')?.replace(/\./g, '\\.')}\\s+\\S+\\s+Up`), bfd);
    // Every agent reports its two sessions (IPv4, IPv6) Established to the server's API.
    await until(
      'agents report their sessions',
      async () => {
        const status = await r.api.get<{ items: { hostId: string; routing: { sessions: { established: boolean }[] } | null }[] }>('/v1/agents');
        return status.items.length === 3 && status.items.every((a) => a.routing?.sessions.length === 2 && a.routing.sessions.every((s) => s.established));
      },
      10_000,
    );
  });

  test('the ToR holds one ECMP next hop per host with a healthy backend, and traffic from outside reaches both', async () => {
    await until('two next hops', async () => (await r.nextHops('r1', `${vip}/32`)).length === 2, 15_000);
    assert.deepEqual(await r.nextHops('r1', `${vip}/32`), [h.get('h1'), h.get('h2')].sort());
    assert.deepEqual(await r.nextHops('core', `${vip}/32`), [(await rackUplink(r.overlay.lab, 'r1')).rack.ipv4], 'the core routes it to r1');
    const answers = await fetchMany(r, `http://${vip}:8080/`, 24);
    assert.ok(
      answers.every((a) => a === 'b1' || a === 'b2'),
      answers.join(','),
    );
    assert.ok(answers.includes('b1') && answers.includes('b2'), `both backends answered: ${answers.join(',')}`);
  });

  test("a failed backend takes its host's next hop away; traffic keeps flowing to the other; recovery brings it back", async (t) => {
    const t0 = performance.now();
    s1?.kill('SIGKILL');
    await until('h1 withdrawn', async () => (await r.nextHops('r1', `${vip}/32`)).length === 1, 10_000);
    const ms = performance.now() - t0;
    t.diagnostic(`VIP next hop withdrawn ${ms.toFixed(0)} ms after the backend died (checks every 200 ms, fall 2)`);
    assert.deepEqual(await r.nextHops('r1', `${vip}/32`), [h.get('h2')]);
    const answers = await fetchMany(r, `http://${vip}:8080/`, 8);
    assert.deepEqual(new Set(answers), new Set(['b2']));
    s1 = backend(r, b1);
    await until('h1 back', async () => (await r.nextHops('r1', `${vip}/32`)).length === 2, 10_000);
  });

  test("drain: graceful shutdown makes the ToR prefer the other host while the drained host's session stays up", async () => {
    await r.api.patch('/v1/hosts/h1', { state: 'draining' });
    await until('only h2', async () => (await r.nextHops('r1', `${vip}/32`)).join() === h.get('h2'), 10_000);
    const tor = r.tors.get('r1');
    assert.ok(tor);
    const h1 = (await protocols(tor)).find((p) => p.name === 'h_h1');
    assert.match(h1?.info ?? '', /^Established/);
    await r.api.patch('/v1/hosts/h1', { state: 'active' });
    await until('h1 back', async () => (await r.nextHops('r1', `${vip}/32`)).length === 2, 10_000);
  });

  test('an agent killed and restarted keeps every VIP next hop in place', async () => {
    let min = 2;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        min = Math.min(min, (await r.nextHops('r1', `${vip}/32`)).length);
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    await r.overlay.killAgent('h1');
    await new Promise((res) => setTimeout(res, 500));
    await r.overlay.startAgent('h1');
    await new Promise((res) => setTimeout(res, 1500));
    sampling = false;
    await sampler;
    assert.equal(min, 2, 'the ToR never lost h1 as a next hop');
  });

  test("a routed instance's /32 and /128 move with it", async () => {
    const ip4 = b2.port.ipv4 as string;
    const ip6 = b2.port.ipv6 as string;
    await until('b2 routed via h2', async () => (await r.nextHops('r1', `${ip4}/32`)).join() === h.get('h2'), 10_000);
    const v6 = await kernelRoute(r.overlay.lab, 'r1', `${ip6}/128`);
    assert.equal(v6.length, 1);
    const ping = await run('ping', ['-c', '2', '-i', '0.2', '-W', '1', ip4], { netns: r.clientNs, okCodes: [1] });
    assert.match(ping.stdout, / 0% packet loss/, ping.stdout);
    s2?.kill('SIGKILL');
    s2 = null;
    await r.moveRouted('b2', 'h3');
    await until(
      'b2 routed via r2',
      async () => (await r.nextHops('core', `${ip4}/32`)).length === 1 && (await r.nextHops('r1', `${ip4}/32`)).length === 0,
      10_000,
    );
    assert.deepEqual(await r.nextHops('r2', `${ip4}/32`), [h.get('h3')]);
    assert.equal((await kernelRoute(r.overlay.lab, 'r2', `${ip6}/128`)).length, 1);
    await until(
      'b2 answers ping on h3',
      async () => / 0% packet loss/.test((await run('ping', ['-c', '1', '-W', '1', ip4], { netns: r.clientNs, okCodes: [1] })).stdout),
      10_000,
    );
    const ping6 = await run('ping', ['-6', '-c', '2', '-i', '0.2', '-W', '1', ip6], { netns: r.clientNs, okCodes: [1] });
    assert.match(ping6.stdout, / 0% packet loss/, ping6.stdout);
  });
});

describe('routing: what a host accepts from its upstreams', { skip: root ? false : 'needs root (network namespaces)' }, () => {
  let r: RoutingLab;
  // Routes exist only inside the lab's namespaces; no packet is sent to them.
  const valid = '185.64.1.0/24';
  const invalid = '185.64.2.0/24';
  const unknown = '185.65.0.0/24';
  const tooLong = '185.66.0.0/25';
  const bogons = ['10.0.0.0/8', '192.168.0.0/16'];
  const leak = Array.from({ length: 8 }, (_, i) => `185.70.${i}.0/24`);

  before(async () => {
    r = await RoutingLab.start({
      name: 'wrf',
      hosts: [
        ['h1', 'r1'],
        ['h2', 'r2'],
      ],
      originate: {
        r1: [
          { prefix: valid, path: [64496] },
          { prefix: invalid, path: [64511] },
          { prefix: unknown, path: [64511] },
          { prefix: tooLong, path: [64496] },
          ...bogons.map((prefix) => ({ prefix })),
        ],
        r2: leak.map((prefix) => ({ prefix })),
      },
      agentFlags: (host, dir) => {
        if (host !== 'h1') return [];
        const file = join(dir, 'roas.json');
        writeFileSync(file, JSON.stringify([{ prefix: '185.64.0.0/16', maxLength: 24, asn: 64496 }]));
        return ['--roa-file', file];
      },
      peer: (host) =>
        host === 'h1' ? { importPolicy: 'full' } : { importPolicy: 'full', maxPrefix: 5, maxPrefixAction: 'disable', description: 'leaky upstream' },
    });
  });
  after(async () => {
    await r?.destroy();
  });

  const route = async (host: string, prefix: string) => (await kernelRoute(r.overlay.lab, host, prefix)).length > 0;

  test('full table: valid and unknown-origin routes reach the kernel; bogons, RPKI-invalid and too-long ones do not', async () => {
    await until('the valid route', () => route('h1', valid), 20_000);
    assert.ok(await route('h1', unknown), 'RPKI unknown is accepted');
    assert.ok(await route('h1', '0.0.0.0/0'), 'the default route too');
    for (const p of [invalid, tooLong, ...bogons]) assert.equal(await route('h1', p), false, `${p} must be filtered`);
    const bird = r.birds.get('h1');
    assert.ok(bird);
    const peers = await r.api.get<{ items: { id: string; neighbor: string }[] }>('/v1/peers?host=h1');
    const v4 = peers.items.find((p) => p.neighbor === r.overlay.host('h1').lab.gatewayIp);
    assert.ok(v4);
    const received = await bird.birdc(['show', 'route', 'import', 'table', `${protocolName(v4.id)}.ipv4`]);
    for (const p of [invalid, tooLong, ...bogons]) assert.ok(received.includes(p), `${p} was received (and then filtered): ${received}`);
  });

  test('a peer sending more than its max-prefix is cut, and the agent reports it to the API', async () => {
    const h2 = r.overlay.host('h2').hostId;
    await until(
      'h2 reports the session down for its limit',
      async () => {
        const a = await r.api.get<{
          items: { hostId: string; routing: { sessions: { neighbor: string | null; established: boolean; lastError: string | null }[] } | null }[];
        }>('/v1/agents');
        const s = a.items.find((i) => i.hostId === h2)?.routing?.sessions.find((x) => x.neighbor === r.overlay.host('h2').lab.gatewayIp);
        return s !== undefined && !s.established && /limit/i.test(s.lastError ?? '');
      },
      20_000,
    );
    for (const p of leak) assert.equal(await route('h2', p), false);
    const metrics = await r.overlay.metrics('h2');
    assert.match(metrics, new RegExp(`weft_bgp_session_up\\{[^}]*neighbor="${r.overlay.host('h2').lab.gatewayIp}"[^}]*\\} 0`));
    assert.match(
      metrics,
      new RegExp(`weft_bgp_session_up\\{[^}]*neighbor="${r.overlay.host('h2').lab.gatewayIp6}"[^}]*\\} 1`),
      'the IPv6 session is unaffected',
    );
    // h1 received 7 IPv4 routes and accepted 3 (default, valid, unknown); the agent reads BIRD every 2 s.
    await until('h1 route counts', async () => {
      const m = await r.overlay.metrics('h1');
      return /weft_bgp_routes\{[^}]*family="ipv4",kind="received"\} 7\n/.test(m) && /weft_bgp_routes\{[^}]*family="ipv4",kind="accepted"\} 3\n/.test(m);
    });
  });
});
