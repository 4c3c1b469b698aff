// The agents' push stream against a whole in-process `weft server`, on both
// stores: snapshot, deltas, a new VNI, resume, snapshot fallback, lag, auth.
// After each step the agent's state must equal the store's desired state.
// Then the client against a scripted server: hand-over, acks, failures.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AgentState } from '../../src/agent/state/agent-state.js';
import { ApiClient } from '../../src/cli/client.js';
import type { Instance, Port } from '../../src/model/types.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import { StreamClient } from '../../src/stream/client.js';
import { desiredState } from '../../src/stream/desired.js';
import { type AgentMessage, encode, MessageReader, type ServerMessage } from '../../src/stream/protocol.js';
import { until } from '../../src/sys/until.js';
import { DIALECTS, type TestDb, testDb } from '../support/stores.js';

const TOKEN = 'stream-test-admin-token-0123456789';
type WithPorts = Instance & { ports: Port[] };

for (const dialect of DIALECTS) {
  describe(`push stream: ${dialect}`, () => {
    let db: TestDb;
    let server: RunningServer;
    let api: ApiClient;
    let hv1: string;
    const clients: StreamClient[] = [];
    const port = () => Number((server.streamAddress as string).split(':').at(-1));

    /** Starts the agent of a host; like a real cloud, one per host: earlier ones are stopped. */
    function agent(hostRef: string, o: { token?: string; version?: number; vnis?: number[]; state?: AgentState; errors?: string[] } = {}) {
      for (const c of clients.splice(0)) c.stop();
      const state = o.state ?? new AgentState(hostRef === 'hv1' ? hv1 : hostRef);
      const c = new StreamClient({
        host: '127.0.0.1',
        port: port(),
        hostRef,
        token: o.token ?? TOKEN,
        version: o.version,
        vnis: o.vnis,
        handler: { snapshot: (v, s) => state.snapshot(v, s), delta: (v, ch, vn) => state.delta(v, ch, vn) },
        onError: (e) => o.errors?.push(e.message),
      });
      clients.push(c);
      c.start();
      return { c, state };
    }

    /** The agent's state equals what the store says the host needs now. */
    async function matches(state: AgentState): Promise<boolean> {
      const { state: want } = await desiredState(server.store, state.hostId);
      const got = [...state.ports.values()].sort((a, b) => a.portId.localeCompare(b.portId));
      return (
        JSON.stringify(got) === JSON.stringify(want.ports) &&
        JSON.stringify([...state.vnis].sort()) === JSON.stringify(want.vnis) &&
        JSON.stringify([...state.vips.keys()].sort()) === JSON.stringify(want.vips.map((v) => v.vipId))
      );
    }

    before(async () => {
      db = await testDb(dialect);
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
      await api.post('/v1/sites', { name: 'ams1', underlayPool: '192.0.2.0/24', ipv4Pools: ['203.0.113.0/24'] });
      await api.post('/v1/racks', { site: 'ams1', name: 'r1' });
      for (const h of ['hv1', 'hv2', 'hv3'])
        await api.post('/v1/hosts', { name: h, site: 'ams1', rack: 'r1', capacity: { cpus: 64, memoryMb: 1 << 20, diskGb: 10000 } });
      hv1 = (await api.get<{ id: string }>('/v1/hosts/hv1')).id;
      await api.post('/v1/tenants', { name: 'acme' });
      await api.post('/v1/networks', { tenant: 'acme', name: 'a', kind: 'overlay', subnets: ['10.0.0.0/24', 'fd00::/64'] });
      await api.post('/v1/networks', { tenant: 'acme', name: 'b', kind: 'overlay', subnets: ['10.1.0.0/24'] });
      await api.post('/v1/instances', { tenant: 'acme', name: 'a1', site: 'ams1', host: 'hv1', ports: [{ network: 'a' }] });
      await api.post('/v1/instances', { tenant: 'acme', name: 'a2', site: 'ams1', host: 'hv2', ports: [{ network: 'a' }] });
      await api.post('/v1/instances', { tenant: 'acme', name: 'b3', site: 'ams1', host: 'hv3', ports: [{ network: 'b' }] });
      await api.post('/v1/peers', { rack: 'r1', neighbor: '198.51.100.1', remoteAsn: 65000 });
    });
    after(async () => {
      for (const c of clients) c.stop();
      await server?.close();
      await db?.drop();
    });

    test('a new agent gets a snapshot of exactly what its host needs', async () => {
      const { state } = agent('hv1');
      await until('snapshot', () => state.version > 0);
      assert.ok(await matches(state));
      assert.equal(state.ports.size, 2, 'its own port and the remote one on VNI a; nothing of VNI b');
      assert.equal(state.peers.size, 1, "its rack's peer");
      await until('applied', async () =>
        (await api.get<{ items: { hostId: string; lag: number }[] }>('/v1/agents')).items.some((a) => a.hostId === hv1 && a.lag === 0),
      );
    });

    test('deltas follow: remote ports on its VNIs, not others; a first port on a new VNI brings that VNI whole', async () => {
      const { state } = agent('hv1');
      await until('snapshot', () => state.version > 0);
      const v0 = state.version;
      await api.post('/v1/instances', { tenant: 'acme', name: 'a4', site: 'ams1', host: 'hv2', ports: [{ network: 'a' }] });
      await until('delta for VNI a', async () => state.version > v0 && (await matches(state)));
      assert.equal(state.ports.size, 3);
      const v1 = state.version;
      await api.post('/v1/instances', { tenant: 'acme', name: 'b4', site: 'ams1', host: 'hv2', ports: [{ network: 'b' }] });
      // Not about hv1: its applied version moves on without a message to apply.
      await until(
        'caught up',
        async () =>
          (await api.get<{ head: number; items: { hostId: string; appliedVersion: number }[] }>('/v1/agents')).items.find((a) => a.hostId === hv1)
            ?.appliedVersion === (await server.store.headVersion()),
      );
      assert.equal(state.version, v1, 'nothing was sent to hv1');
      await api.post('/v1/instances', { tenant: 'acme', name: 'b1', site: 'ams1', host: 'hv1', ports: [{ network: 'b' }] });
      await until('VNI b arrives whole', () => matches(state));
      assert.equal(
        [...state.ports.values()].filter((p) => p.networkId !== [...state.ports.values()].find((x) => x.hostId === hv1)?.networkId).length >= 3,
        true,
      );
      await api.post(`/v1/instances/b1/migrate`, { target: 'hv3' });
      await until('VNI b gone again', () => matches(state));
    });

    test('an agent that reconnects resumes with deltas from its version', async () => {
      const first = agent('hv1');
      await until('snapshot', () => first.state.version > 0);
      first.c.stop();
      const at = first.state.version;
      const vnis = [...first.state.vnis];
      await api.post('/v1/instances', { tenant: 'acme', name: 'a5', site: 'ams1', host: 'hv3', ports: [{ network: 'a' }] });
      await api.delete('/v1/instances/a4');
      let snapshots = 0;
      const state = first.state;
      const orig = state.snapshot.bind(state);
      state.snapshot = (v, s) => {
        snapshots++;
        orig(v, s);
      };
      agent('hv1', { version: at, vnis, state });
      await until('resumed', async () => state.version > at && (await matches(state)));
      assert.equal(snapshots, 0, 'no snapshot: the deltas were still there');
    });

    test('an agent claiming fewer VNIs than its host has gets a snapshot instead', async () => {
      const state = new AgentState(hv1);
      let snapshots = 0;
      const orig = state.snapshot.bind(state);
      state.snapshot = (v, s) => {
        snapshots++;
        orig(v, s);
      };
      agent('hv1', { version: 1, vnis: [], state });
      await until('snapshot', () => snapshots === 1);
      assert.ok(await matches(state));
    });

    test('review regressions: VIPs after resume, claimed VNIs, rack moves, routed networks', async () => {
      // A VIP with its backend on hv1 (VIP backends are routed ports).
      await api.post('/v1/networks', { tenant: 'acme', name: 'lb', kind: 'routed', site: 'ams1' });
      const a1 = await api.post<WithPorts>('/v1/instances', { tenant: 'acme', name: 'lb1', site: 'ams1', host: 'hv1', ports: [{ network: 'lb' }] });
      const vip = await api.post<{ id: string }>('/v1/vips', {
        tenant: 'acme',
        name: 'v',
        address: '198.51.100.80',
        backends: [a1.ports[0]?.id],
        healthCheck: { type: 'tcp', port: 80 },
      });
      const first = agent('hv1');
      await until('holds the VIP', () => first.state.vips.has(vip.id));
      first.c.stop();
      // Resumed with deltas, the agent must still hear that the VIP lost its backend on hv1.
      const resumed = agent('hv1', { version: first.state.version, vnis: [...first.state.vnis], state: first.state });
      await until('resumed', () => resumed.c.connected);
      await api.patch(`/v1/vips/${vip.id}`, { backends: [] });
      await until('VIP withdrawn', () => !resumed.state.vips.has(vip.id));

      // Claiming another tenant's VNI widens nothing.
      const other = await api
        .post<{ vni: number }>('/v1/tenants', { name: 'globex' })
        .then(() => api.post<{ vni: number }>('/v1/networks', { tenant: 'globex', name: 'secret', kind: 'overlay', subnets: ['10.9.0.0/24'] }));
      const spy = agent('hv1', { version: resumed.state.version, vnis: [...resumed.state.vnis, other.vni], state: resumed.state });
      await until('resumed', () => spy.c.connected);
      await api.post('/v1/instances', { tenant: 'globex', name: 'g1', site: 'ams1', host: 'hv2', ports: [{ network: 'secret' }] });
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(![...spy.state.ports.values()].some((p) => p.vni === other.vni), 'no port of a VNI the host does not have');

      // Moved to another rack: the agent gets that rack's peers.
      await api.post('/v1/racks', { site: 'ams1', name: 'r2' });
      await api.post('/v1/peers', { rack: 'r2', neighbor: '198.51.100.2', remoteAsn: 65002 });
      await api.patch('/v1/hosts/hv1', { rack: 'r2' });
      await until("r2's peer", () => [...spy.state.peers.values()].some((p) => p.neighbor === '198.51.100.2'));
      assert.ok(![...spy.state.peers.values()].some((p) => p.neighbor === '198.51.100.1'), "r1's peer is gone");

      // A routed network of one of its own ports: updates reach it though it has no VNI.
      const pub = await api.post<{ id: string }>('/v1/networks', { tenant: 'acme', name: 'pub', kind: 'routed', site: 'ams1' });
      await api.post('/v1/instances', { tenant: 'acme', name: 'pub1', site: 'ams1', host: 'hv1', ports: [{ network: 'pub' }] });
      await until('routed port', () => spy.state.networks.get(pub.id)?.kind === 'routed');
      await api.patch('/v1/networks/pub', { mtu: 9000 });
      await until('routed MTU', () => spy.state.networks.get(pub.id)?.mtu === 9000);
    });

    test("an agent's routing report shows in /v1/agents, bounded and typed whatever it sends", async () => {
      const { c } = agent('hv1');
      await until('connected', () => c.connected);
      const session = {
        peerId: 'p',
        neighbor: '192.0.2.0',
        state: 'Established',
        established: true,
        since: 'x',
        lastError: null,
        received: 3,
        accepted: 2,
        exported: 1,
      };
      c.report({ birdUp: true, inSync: true, lastError: null, sessions: [session], announced: ['203.0.113.9/32'] });
      const routingOf = async () =>
        (await api.get<{ items: { hostId: string; routing: Record<string, unknown> | null }[] }>('/v1/agents')).items.find((a) => a.hostId === hv1)?.routing;
      await until('reported', async () => (await routingOf()) != null);
      assert.deepEqual(await routingOf(), { birdUp: true, inSync: true, lastError: null, sessions: [session], announced: ['203.0.113.9/32'] });
      // A buggy or hostile agent: wrong types, extra fields, too many entries; the server keeps only what is well formed.
      const junk = {
        birdUp: 'yes',
        inSync: 1,
        lastError: 42,
        sessions: [{ state: 7, received: -1, x: 'y' }, 'nope'],
        announced: Array(5000).fill('a'),
        extra: true,
      };
      c.report(junk as unknown as Parameters<typeof c.report>[0]);
      await until('replaced', async () => (await routingOf())?.birdUp === false);
      const r = (await routingOf()) as { sessions: unknown[]; announced: unknown[]; lastError: unknown };
      assert.deepEqual(r.sessions, [
        { peerId: null, neighbor: null, state: '', established: false, since: '', lastError: null, received: 0, accepted: 0, exported: 0 },
      ]);
      assert.equal(r.announced.length, 1000);
      assert.equal(r.lastError, null);
      assert.ok(c.connected, 'a bad report does not cost the connection');
    });

    test('an agent that does not apply shows its lag', async () => {
      const hv2 = (await api.get<{ id: string }>('/v1/hosts/hv2')).id;
      const stuck = new StreamClient({
        host: '127.0.0.1',
        port: port(),
        hostRef: 'hv2',
        token: TOKEN,
        // Takes the snapshot, then never finishes applying a delta.
        handler: { snapshot: () => undefined, delta: () => new Promise<void>(() => undefined) },
      });
      clients.push(stuck);
      stuck.start();
      await until('hv2 connected', async () => (await api.get<{ items: { hostId: string }[] }>('/v1/agents')).items.some((a) => a.hostId === hv2));
      await api.post('/v1/instances', { tenant: 'acme', name: 'a6', site: 'ams1', host: 'hv3', ports: [{ network: 'a' }] });
      await api.post('/v1/instances', { tenant: 'acme', name: 'a7', site: 'ams1', host: 'hv3', ports: [{ network: 'a' }] });
      await until(
        'lag shows',
        async () => ((await api.get<{ items: { hostId: string; lag: number }[] }>('/v1/agents')).items.find((a) => a.hostId === hv2)?.lag ?? 0) >= 2,
      );
      const metrics = await (await fetch(`${server.apiUrl}/metrics`)).text();
      assert.match(metrics, new RegExp(`weft_agent_lag\\{host="${hv2}"\\} [1-9]`));
      stuck.stop();
    });

    test('the stream over TLS: an agent trusting the CA gets its snapshot', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'weft-tls-'));
      try {
        execFileSync(
          'openssl',
          [
            'req',
            '-x509',
            '-newkey',
            'rsa:2048',
            '-nodes',
            '-days',
            '1',
            '-subj',
            '/CN=127.0.0.1',
            '-addext',
            'subjectAltName=IP:127.0.0.1',
            '-keyout',
            join(dir, 'key.pem'),
            '-out',
            join(dir, 'cert.pem'),
          ],
          { stdio: 'ignore' },
        );
        const db2 = await testDb(dialect);
        const s2 = await startServer({
          db: db2.url,
          api: '127.0.0.1:0',
          svp: 'off',
          stream: '127.0.0.1:0',
          streamTls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') },
          placement: 'spread',
          cpuOvercommit: 1,
          adminToken: TOKEN,
          logLevel: 'silent',
        });
        try {
          const a2 = new ApiClient(s2.apiUrl, TOKEN);
          await a2.post('/v1/sites', { name: 's', underlayPool: '192.0.2.0/24' });
          await a2.post('/v1/hosts', { name: 'h', site: 's', capacity: { cpus: 1, memoryMb: 1024, diskGb: 1 } });
          const state = new AgentState((await a2.get<{ id: string }>('/v1/hosts/h')).id);
          const c = new StreamClient({
            host: '127.0.0.1',
            port: Number((s2.streamAddress as string).split(':').at(-1)),
            tlsCa: readFileSync(join(dir, 'cert.pem')),
            hostRef: 'h',
            token: TOKEN,
            handler: { snapshot: (v, s) => state.snapshot(v, s), delta: (v, ch, vn) => state.delta(v, ch, vn) },
          });
          c.start();
          try {
            await until('TLS snapshot', () => state.host !== null);
            assert.equal(state.host?.name, 'h');
          } finally {
            c.stop();
          }
        } finally {
          await s2.close();
          await db2.drop();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test('a failed apply closes the connection; the agent resumes from its last ack and the deltas it holds apply again', async () => {
      const state = new AgentState(hv1);
      const handed: number[] = [];
      const welcomes: string[] = [];
      let failNext = false;
      const c = new StreamClient({
        host: '127.0.0.1',
        port: port(),
        hostRef: 'hv1',
        token: TOKEN,
        handler: {
          snapshot: (v, s) => state.snapshot(v, s),
          // Applied to the state at once; the "kernel" part fails once, on request.
          delta: (v, ch, vn) => {
            handed.push(v);
            state.delta(v, ch, vn);
            if (!failNext) return Promise.resolve();
            failNext = false;
            return Promise.reject(new Error('kernel unreachable'));
          },
        },
        onWelcome: (_h, mode) => welcomes.push(mode),
      });
      for (const old of clients.splice(0)) old.stop();
      clients.push(c);
      c.start();
      await until('snapshot acked', () => c.version > 0 && state.version === c.version);
      await api.post('/v1/instances', { tenant: 'acme', name: 'r1', site: 'ams1', host: 'hv2', ports: [{ network: 'a' }] });
      await until('first delta acked', () => handed.length === 1 && c.version === handed[0]);
      const acked = c.version;
      failNext = true;
      await api.post('/v1/instances', { tenant: 'acme', name: 'r2', site: 'ams1', host: 'hv3', ports: [{ network: 'a' }] });
      await until('reconnected', () => welcomes.length === 2);
      assert.equal(welcomes[1], 'deltas', 'resumed from the log, not a snapshot');
      await api.post('/v1/instances', { tenant: 'acme', name: 'r3', site: 'ams1', host: 'hv2', ports: [{ network: 'a' }] });
      await until('caught up', async () => c.version === state.version && c.version > acked && (await matches(state)));
      const failed = handed[1] as number;
      assert.ok(failed > acked);
      assert.equal(handed.filter((v) => v === failed).length, 2, `the failed delta came again: ${handed}`);
      await api.delete('/v1/instances/r1');
      await api.delete('/v1/instances/r2');
      await api.delete('/v1/instances/r3');
      await until('deleted', () => matches(state));
    });

    test('a wrong token or another host agent token is refused', async () => {
      const errors: string[] = [];
      agent('hv1', { token: 'weft_nope', errors });
      await until('refused', () => errors.some((e) => e.includes('E_UNAUTHENTICATED')));
      const other = (await api.post<{ secret: string }>('/v1/tokens', { name: 'hv2-agent', role: 'agent', host: 'hv2' })).secret;
      const errors2: string[] = [];
      agent('hv1', { token: other, errors: errors2 });
      await until('forbidden', () => errors2.some((e) => e.includes('E_FORBIDDEN')));
      const own = (await api.post<{ secret: string }>('/v1/tokens', { name: 'hv1-agent', role: 'agent', host: 'hv1' })).secret;
      const ok = agent('hv1', { token: own });
      await until('own token works', () => ok.state.version > 0);
    });
  });
}

/** A server that speaks the stream by script: what it sends is up to each test; it records what agents send. */
class ScriptedServer {
  readonly server: Server;
  readonly received: AgentMessage[][] = [];
  readonly socks: Socket[] = [];
  private onConn: ((i: number, sock: Socket) => void) | null = null;

  constructor() {
    this.server = createServer((sock) => {
      const i = this.socks.length;
      this.socks.push(sock);
      this.received.push([]);
      const reader = new MessageReader(64 * 1024);
      let hello = false;
      sock.on('data', (b) => {
        for (const m of reader.push(b) as AgentMessage[]) {
          this.received[i]?.push(m);
          if (m.t === 'hello' && !hello) {
            hello = true;
            this.onConn?.(i, sock);
          }
        }
      });
      sock.on('error', () => {});
    });
  }

  /** What to do once connection `i` said hello. */
  script(f: (i: number, sock: Socket) => void): void {
    this.onConn = f;
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    return (this.server.address() as { port: number }).port;
  }

  acks(i: number): number[] {
    return (this.received[i] ?? []).flatMap((m) => (m.t === 'ack' ? [m.version] : []));
  }

  async close(): Promise<void> {
    for (const s of this.socks) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const send = (sock: Socket, ...ms: ServerMessage[]) => sock.write(Buffer.concat(ms.map((m) => encode(m))));
const welcome = (mode: 'deltas' | 'snapshot' = 'deltas'): ServerMessage => ({ t: 'welcome', v: 1, hostId: 'h1', mode, head: 0 });
const delta = (version: number): ServerMessage => ({ t: 'delta', version, changes: [], vnis: [7] });
const hostInfo = { hostId: 'h1', name: 'h1', siteId: 's', rackId: null, underlayIp: '192.0.2.1', asn: null, state: 'active', ipv6Prefix: null } as const;
const portOf = (i: number) => ({
  portId: `p${i}`,
  instanceId: `i${i}`,
  tenantId: 't',
  networkId: 'n',
  networkKind: 'overlay' as const,
  vni: 7,
  mac: `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`,
  ipv4: null,
  ipv6: null,
  hostId: 'h2',
  underlayIp: '192.0.2.2',
});

function deferred() {
  let resolve: () => void = () => {};
  let reject: (e: Error) => void = () => {};
  const promise = new Promise<void>((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
}

describe('stream client against a scripted server', () => {
  let srv: ScriptedServer;
  let port: number;
  let client: StreamClient | null = null;
  before(async () => {
    srv = new ScriptedServer();
    port = await srv.listen();
  });
  after(async () => {
    client?.stop();
    await srv.close();
  });
  const start = (handler: ConstructorParameters<typeof StreamClient>[0]['handler'], version = 0) => {
    client?.stop();
    client = new StreamClient({ host: '127.0.0.1', port, hostRef: 'h1', token: 't', version, vnis: [7], handler });
    client.start();
    return client;
  };

  test('deltas are handed over as they arrive; acks wait for their kernel, go in order and cover runs; pings are answered meanwhile', async () => {
    const pending = new Map<number, ReturnType<typeof deferred>>();
    const base = srv.socks.length;
    srv.script((i, sock) => {
      if (i === base) send(sock, welcome(), delta(1), delta(2), delta(3), delta(4), delta(5));
    });
    const c = start({
      snapshot: () => undefined,
      delta: (v) => {
        const d = deferred();
        pending.set(v, d);
        return d.promise;
      },
    });
    await until('all five handed over', () => pending.size === 5);
    assert.deepEqual(srv.acks(base), [], 'nothing acked before its kernel sync');
    send(srv.socks[base] as Socket, { t: 'ping' });
    await until('pong while syncs are pending', () => srv.received[base]?.some((m) => m.t === 'pong') ?? false);
    pending.get(3)?.resolve();
    pending.get(1)?.resolve();
    await until('ack 1', () => srv.acks(base).length === 1);
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(srv.acks(base), [1], '3 waits for 2');
    pending.get(2)?.resolve();
    await until('ack 3', () => srv.acks(base).length === 2);
    pending.get(4)?.resolve();
    pending.get(5)?.resolve();
    await until('ack 5', () => srv.acks(base).length === 3);
    assert.deepEqual(srv.acks(base), [1, 3, 5], 'one ack for each run applied together');
    assert.equal(c.version, 5);
  });

  test('a failed apply ends the connection: later messages are not applied, the next hello resumes from the last ack', async () => {
    const handed: number[] = [];
    const base = srv.socks.length;
    srv.script((i, sock) => {
      // Like the server: the deltas after the version the hello says.
      const hello = (srv.received[i] ?? []).find((m) => m.t === 'hello') as Extract<AgentMessage, { t: 'hello' }>;
      const from = hello.version;
      const ds = [10, 11, 12].filter((v) => v > from).map(delta);
      // The first connection: 10 applies, 11 throws, 12 in the same chunk is not handed over.
      if (i === base) send(sock, welcome(), ...ds);
      // The second: 11's promise rejects; 12, sent later on it, is not handed over either.
      else if (i === base + 1) {
        send(sock, welcome(), ...ds.slice(0, -1));
        setTimeout(() => send(sock, ...ds.slice(-1)), 50);
      } else send(sock, welcome(), ...ds);
    });
    let round = 0;
    const c = start(
      {
        snapshot: () => undefined,
        delta: (v) => {
          handed.push(v);
          if (v !== 11) return Promise.resolve();
          round++;
          if (round === 1) throw new Error('bad delta');
          if (round === 2) return Promise.reject(new Error('kernel unreachable'));
          return Promise.resolve();
        },
      },
      9,
    );
    await until('third connection caught up', () => c.version === 12);
    assert.deepEqual(handed, [10, 11, 11, 11, 12]);
    const hellos = srv.received.slice(base).map((ms) => ms.find((m) => m.t === 'hello') as Extract<AgentMessage, { t: 'hello' }>);
    assert.deepEqual(
      hellos.map((h) => h.version),
      [9, 10, 10],
    );
    assert.deepEqual(srv.acks(base), [10]);
  });

  test('a snapshot half received when its connection drops is never applied', async () => {
    const got: { version: number; ports: string[] }[] = [];
    const base = srv.socks.length;
    srv.script((i, sock) => {
      if (i === base) {
        send(sock, welcome('snapshot'), { t: 'snapshot.begin', version: 20 }, { t: 'snapshot.ports', ports: [portOf(1), portOf(2)] });
        setTimeout(() => sock.destroy(), 30);
      } else
        send(
          sock,
          welcome('snapshot'),
          { t: 'snapshot.begin', version: 21 },
          { t: 'snapshot.ports', ports: [portOf(3)] },
          { t: 'snapshot.end', version: 21, state: { host: hostInfo, networks: [], vnis: [7], vips: [], peers: [] } },
        );
    });
    const c = start({ snapshot: (v, s) => void got.push({ version: v, ports: s.ports.map((p) => p.portId) }), delta: () => undefined });
    await until('snapshot applied', () => c.version === 21);
    assert.deepEqual(got, [{ version: 21, ports: ['p3'] }]);
  });
});
