// The routing loop against a fake BIRD and scripted health probes: what is
// announced follows health, BIRD's refusals keep the running config, and a
// session change is confirmed or rolled back by what the stream shows.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PeerInfo, PortMapping, VipInfo } from '../../model/changes.js';
import type { DesiredState } from '../../stream/protocol.js';
import { FakeDataplane } from '../dataplane/fake/fake-dataplane.js';
import { portIfname } from '../names.js';
import { AgentState } from '../state/agent-state.js';
import { FakeBird } from './bird.js';
import { protocolName } from './bird-conf.js';
import type { Probe } from './health.js';
import { DEFAULT_BFD } from './inputs.js';
import { Routing, type SessionFields } from './routing.js';

const HOST = 'h-1';
const settings = { rpki: null, roas: [], irr: {}, bfd: DEFAULT_BFD };

function port(id: string, ipv4: string, hostId = HOST): PortMapping {
  return {
    portId: id,
    instanceId: `i-${id}`,
    tenantId: 't',
    networkId: 'pub',
    networkKind: 'routed',
    vni: null,
    mac: '02:57:46:00:00:01',
    ipv4,
    ipv6: null,
    hostId,
    underlayIp: '192.0.2.3',
  };
}

const peer = (id: string, neighbor: string): PeerInfo => ({
  peerId: id,
  hostId: HOST,
  rackId: null,
  neighbor,
  remoteAsn: 65000,
  importPolicy: 'default',
  maxPrefix: 1000,
  maxPrefixAction: 'restart',
  bfd: false,
  multiprotocol: false,
});

const vip = (backends: string[]): VipInfo => ({
  vipId: 'v-1',
  tenantId: 't',
  address: '198.51.100.80',
  backends: backends.map((portId) => ({ portId, hostId: HOST, ipv4: portId === 'p-1' ? '203.0.113.10' : '203.0.113.11', ipv6: null })),
  healthCheck: { type: 'tcp', port: 80, path: null, intervalMs: 10, timeoutMs: 10, rise: 2, fall: 2 },
});

function desired(o: { peers?: PeerInfo[]; vips?: VipInfo[] } = {}): DesiredState {
  return {
    host: { hostId: HOST, name: 'hv1', siteId: 's', rackId: null, underlayIp: '192.0.2.3', asn: 65101, state: 'active', ipv6Prefix: null },
    ports: [port('p-1', '203.0.113.10'), port('p-2', '203.0.113.11')],
    networks: [{ networkId: 'pub', tenantId: 't', kind: 'routed', vni: null, mtu: 1500, subnets: [], arpRate: null, ndRate: null }],
    vnis: [],
    vips: o.vips ?? [vip(['p-1'])],
    peers: o.peers ?? [peer('a0000000-0000-4000-8000-000000000001', '192.0.2.2')],
  };
}

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function setup(
  o: {
    undoAfterMs?: number;
    connected?: () => boolean;
    lastHeard?: () => number;
    running?: string;
    store?: { saved: SessionFields | null };
    dataplane?: FakeDataplane;
  } = {},
) {
  const state = new AgentState(HOST);
  const bird = new FakeBird();
  const up = new Set<string>(['203.0.113.10', '203.0.113.11']);
  const probe: Probe = async (t) => ({ ok: up.has(t.address), ms: 0, ...(up.has(t.address) ? {} : { error: 'ECONNREFUSED' }) });
  const r = new Routing({
    state,
    bird,
    hostNet: o.dataplane ?? null,
    settings,
    connected: o.connected ?? (() => true),
    lastHeard: o.lastHeard ?? (() => Date.now()),
    undoAfterMs: o.undoAfterMs,
    running: o.running,
    confirmedStore: o.store
      ? {
          load: () => o.store?.saved ?? null,
          save: (f) => {
            if (o.store) o.store.saved = f;
          },
        }
      : undefined,
    pollMs: 0,
    probe,
  });
  return { state, bird, up, r };
}

describe('routing loop', () => {
  test('a VIP is announced once its local backend is healthy and withdrawn when it fails', async () => {
    const { state, bird, up, r } = setup();
    try {
      state.snapshot(1, desired());
      r.update();
      await until('first config', () => bird.configures.length >= 1);
      assert.ok(bird.configures[0]?.conf.includes('203.0.113.10/32'), 'the routed address is announced at once');
      assert.ok(!bird.configures[0]?.conf.includes('198.51.100.80/32'), 'the VIP is not, before rise successes');
      await until('announced', () => bird.running.includes('198.51.100.80/32'));
      assert.deepEqual(r.status.announced, ['198.51.100.80/32']);
      assert.ok(bird.running.includes(protocolName('a0000000-0000-4000-8000-000000000001')));
      up.delete('203.0.113.10');
      await until('withdrawn', () => !bird.running.includes('198.51.100.80/32'));
      assert.deepEqual(r.status.announced, []);
      assert.equal(r.status.backends[0]?.healthy, false);
      assert.equal(r.status.backends[0]?.lastError, 'ECONNREFUSED');
    } finally {
      r.stop();
    }
  });

  test('a second healthy backend keeps the VIP when the first fails; backends on other hosts do not count', async () => {
    const { state, bird, up, r } = setup();
    try {
      const v = vip(['p-1', 'p-2']);
      v.backends.push({ portId: 'p-9', hostId: 'elsewhere', ipv4: '203.0.113.99', ipv6: null });
      state.snapshot(1, desired({ vips: [v] }));
      r.update();
      await until('announced', () => bird.running.includes('198.51.100.80/32'));
      assert.equal(r.status.backends.length, 2, 'only the local backends are checked');
      up.delete('203.0.113.10');
      await until('p-1 down', () => r.status.backends.find((b) => b.address === '203.0.113.10')?.healthy === false);
      assert.ok(bird.running.includes('198.51.100.80/32'), 'still announced through p-2');
    } finally {
      r.stop();
    }
  });

  test('after an agent restart, VIPs BIRD already announces stay announced while the first checks run', async () => {
    const { state, bird, up, r } = setup({ running: 'protocol static weft_vips4 {\n\tipv4;\n\troute 198.51.100.80/32 blackhole;\n}\n' });
    try {
      state.snapshot(1, desired());
      r.update();
      await until('first config', () => bird.configures.length >= 1);
      assert.ok(bird.configures[0]?.conf.includes('198.51.100.80/32'), 'announced from the first config on');
      up.delete('203.0.113.10');
      await until('a dead backend is still withdrawn', () => !bird.running.includes('198.51.100.80/32'));
    } finally {
      r.stop();
    }
  });

  test('a confirm records the sessions that were pending, not newer inputs (review regression)', async () => {
    const store = { saved: null as SessionFields | null };
    const { state, bird, r } = setup({ undoAfterMs: 5000, store });
    try {
      state.snapshot(1, desired({ vips: [] }));
      r.update();
      await until('first config', () => bird.configures.length === 1);
      assert.equal(store.saved?.sessions.length, 1, 'the first config is the confirmed baseline');
      const a = peer('a0000000-0000-4000-8000-000000000001', '192.0.2.2');
      const b = peer('a0000000-0000-4000-8000-000000000002', '192.0.2.4');
      state.snapshot(2, desired({ vips: [], peers: [a, b] }));
      r.update();
      await r.settled();
      await until('A+B applied', () => bird.configures.length === 2).catch((e) => {
        throw new Error(`${e.message}: ${JSON.stringify(r.status)}`);
      });
      // C repeats B's neighbour: cannot be rendered; BIRD keeps A+B, the confirm must record A+B.
      state.snapshot(3, desired({ vips: [], peers: [a, b, peer('a0000000-0000-4000-8000-000000000003', '192.0.2.4')] }));
      r.update();
      await r.settled();
      assert.match(r.status.lastError ?? '', /cannot render bird\.conf/);
      await until('confirmed', () => bird.confirms === 1 && !r.status.pendingConfirm);
      assert.deepEqual(
        store.saved?.sessions.map((x) => x.neighbor),
        ['192.0.2.2', '192.0.2.4'],
      );
    } finally {
      r.stop();
    }
  });

  test('sessions that cannot be rendered do not freeze VIPs: the confirmed sessions are kept (review regression)', async () => {
    const { state, bird, up, r } = setup();
    try {
      state.snapshot(1, desired());
      r.update();
      await until('announced', () => bird.running.includes('198.51.100.80/32'));
      const dup = peer('a0000000-0000-4000-8000-000000000009', '192.0.2.2');
      state.snapshot(2, desired({ peers: [peer('a0000000-0000-4000-8000-000000000001', '192.0.2.2'), dup] }));
      r.update();
      await r.settled();
      up.delete('203.0.113.10');
      await until('withdrawn despite the bad peer', () => !bird.running.includes('198.51.100.80/32'));
      assert.match(r.status.lastError ?? '', /cannot render bird\.conf/);
      assert.equal(r.status.inSync, false);
    } finally {
      r.stop();
    }
  });

  test('after a restart, a session change against the saved confirmed sessions is risky (review regression)', async () => {
    const store = { saved: { asn: 65101, routerId: '192.0.2.3', sessions: [], bfd: DEFAULT_BFD } as SessionFields };
    const { state, bird, r } = setup({ undoAfterMs: 5000, store, lastHeard: () => 0 });
    try {
      state.snapshot(1, desired({ vips: [] }));
      r.update();
      await until('first config', () => bird.configures.length === 1);
      assert.ok((bird.configures[0]?.undoAfterS ?? 0) > 0, 'applied with undo: it differs from what was confirmed before the restart');
      assert.equal(r.status.pendingConfirm, true);
    } finally {
      r.stop();
    }
  });

  test('BIRD unreachable is retried with backoff, not taken as a refusal', async () => {
    const { state, bird, r } = setup();
    try {
      bird.unreachableNext = 2;
      state.snapshot(1, desired({ vips: [] }));
      r.update();
      await until('applied after retries', () => bird.configures.length === 1, 5000);
      assert.equal(r.status.rejected, 0);
      assert.equal(r.status.inSync, true);
    } finally {
      r.stop();
    }
  });

  test('a config BIRD refuses leaves the running one and is not retried until the inputs change', async () => {
    const { state, bird, r } = setup();
    try {
      state.snapshot(1, desired({ vips: [] }));
      r.update();
      await until('first config', () => bird.configures.length === 1);
      const good = bird.running;
      bird.refuseContaining = '192.0.2.9';
      state.snapshot(2, desired({ vips: [], peers: [peer('a0000000-0000-4000-8000-000000000001', '192.0.2.9')] }));
      r.update();
      await r.settled();
      assert.equal(bird.running, good);
      assert.equal(r.status.rejected, 1);
      assert.equal(r.status.inSync, false);
      assert.match(r.status.lastError ?? '', /BIRD refused the config: bird.conf:1:1 syntax error/);
      r.update();
      await r.settled();
      assert.equal(r.status.rejected, 1, 'the same config is not sent again');
      bird.refuseContaining = null;
      state.snapshot(3, desired({ vips: [] }));
      r.update();
      await r.settled();
      assert.equal(r.status.inSync, true);
      assert.equal(r.status.lastError, null);
    } finally {
      r.stop();
    }
  });

  test('a session change is confirmed once the server is heard after it', async () => {
    const { state, bird, r } = setup({ undoAfterMs: 5000 });
    try {
      state.snapshot(1, desired({ vips: [] }));
      r.update();
      await until('first config', () => bird.configures.length === 1);
      assert.equal(bird.configures[0]?.undoAfterS, undefined, 'the first config has nothing to fall back to');
      state.snapshot(2, desired({ vips: [], peers: [peer('a0000000-0000-4000-8000-000000000002', '192.0.2.4')] }));
      r.update();
      await until('second config', () => bird.configures.length === 2);
      assert.ok((bird.configures[1]?.undoAfterS ?? 0) > 5, 'applied with BIRD undo armed');
      await until('confirmed', () => bird.confirms === 1 && !r.status.pendingConfirm);
      assert.equal(bird.undoTo, null);
    } finally {
      r.stop();
    }
  });

  test('a session change the server is not heard after is rolled back by the agent', async () => {
    let connected = true;
    const { state, bird, r } = setup({ undoAfterMs: 300, connected: () => connected, lastHeard: () => 0 });
    try {
      state.snapshot(1, desired({ vips: [] }));
      r.update();
      await until('first config', () => bird.configures.length === 1);
      const good = bird.running;
      connected = false;
      state.snapshot(2, desired({ vips: [], peers: [peer('a0000000-0000-4000-8000-000000000002', '192.0.2.4')] }));
      r.update();
      await until('risky config', () => bird.configures.length === 2);
      assert.ok(bird.running.includes('192.0.2.4'));
      await until('rolled back', () => r.status.rollbacks === 1 && bird.running === good, 3000);
      assert.equal(bird.confirms, 0);
      assert.equal(bird.configures[2]?.undoAfterS, undefined, 'the rollback is a plain configure (cancels BIRD undo)');
      assert.match(r.status.lastError ?? '', /rolled back/);
      assert.equal(r.status.inSync, false);
      // The same sessions are not tried again (the server is still unreachable); other changes still apply on the confirmed ones.
      r.update();
      await r.settled();
      assert.equal(bird.running, good);
      state.snapshot(3, desired({ vips: [], peers: [peer('a0000000-0000-4000-8000-000000000002', '192.0.2.4')] }));
      state.ports.delete('p-2');
      r.update();
      await r.settled();
      assert.ok(!bird.running.includes('203.0.113.11'), 'a routed port change applied');
      assert.ok(!bird.running.includes('192.0.2.4') && bird.running.includes('192.0.2.2'), 'on the confirmed sessions');
    } finally {
      r.stop();
    }
  });
});

describe('routing loop: the host side', () => {
  test('routed ports whose interface exists and VIPs with healthy backends go to the dataplane; its failure does not hold BIRD back', async () => {
    const dp = new FakeDataplane();
    const [if1, if2] = [portIfname('p-1'), portIfname('p-2')];
    dp.addLink(if1);
    const { state, bird, up, r } = setup({ dataplane: dp });
    try {
      state.snapshot(1, desired());
      r.update();
      await until('announced', () => bird.running.includes('198.51.100.80/32'));
      await until('NAT to the healthy backend', () => dp.routed.table?.vips.length === 1);
      assert.deepEqual(dp.routed.table, { ports: [if1], vips: [{ vip: '198.51.100.80', backends: ['203.0.113.10'] }] });
      assert.deepEqual([...dp.routed.ports], [[if1, 1500]], 'p-2 waits for its interface');

      dp.addLink(if2);
      dp.failNext('routed.apply');
      const configures = bird.configures.length;
      state.snapshot(2, desired({ peers: [peer('a0000000-0000-4000-8000-000000000001', '192.0.2.9')] }));
      r.update();
      await r.settled();
      assert.match(r.status.lastError ?? '', /routed ports and VIP NAT: routed\.apply: injected failure/);
      assert.ok(bird.configures.length > configures, 'BIRD is configured all the same');
      await until('retried', () => dp.routed.ports.has(if2));

      up.delete('203.0.113.10');
      await until('no NAT without a healthy backend', () => dp.routed.table?.vips.length === 0);
    } finally {
      r.stop();
    }
  });
});
