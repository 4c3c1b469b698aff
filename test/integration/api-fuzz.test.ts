// Fuzzing the API with random, mutated and truncated bodies: nothing may
// produce a 500, every error keeps the {code, message} shape, and the
// server keeps serving. Seeded, so a failure reproduces.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mulberry32 } from '../../src/model/prng.js';
import { ADMIN_SECRET, smallCloud, startTestApi, type TestApi } from '../support/api.js';
import { DIALECTS } from '../support/stores.js';

const VALID: Record<string, Record<string, unknown>> = {
  '/v1/sites': { name: 'fz', underlayPool: '198.51.100.0/24', ipv4Pools: ['198.51.100.0/25'], ipv6Block: '2001:db8:f::/48' },
  '/v1/hosts': { name: 'fzh', site: 'ams1', underlayIp: '192.0.2.99', asn: 65010, capacity: { cpus: 1, memoryMb: 1024, diskGb: 10 } },
  '/v1/networks': { tenant: 'acme', name: 'fzn', kind: 'overlay', subnets: ['10.77.0.0/24'], vni: 9999, mtu: 1500 },
  '/v1/instances': { tenant: 'acme', name: 'fzi', site: 'ams1', size: 'nano', ports: [{ network: 'n', ipv4: '10.1.0.5', mac: '02:00:00:00:00:05' }] },
  '/v1/vips': { tenant: 'acme', name: 'fzv', site: 'ams1', healthCheck: { type: 'http', port: 80, path: '/', rise: 2, fall: 2 } },
  '/v1/peers': { host: 'hv1', neighbor: '198.51.100.1', remoteAsn: 65000, maxPrefix: 100, bfd: true },
  '/v1/tokens': { name: 'fzt', role: 'tenant', tenant: 'acme' },
};

const WEIRD: unknown[] = [
  null,
  true,
  -1,
  0,
  1.5,
  2 ** 53,
  -(2 ** 31),
  '',
  'x'.repeat(5000),
  '10.0.0.0/99',
  '::ffff:1.2.3.4',
  '../../etc',
  '\u0000',
  '💥',
  [],
  [1, 'a', null],
  {},
  { $ref: '#' },
  { __proto__: { admin: true } },
];

function mutate(r: () => number, v: unknown, depth = 0): unknown {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)] as T;
  if (v !== null && typeof v === 'object' && depth < 3) {
    if (Array.isArray(v)) return r() < 0.2 ? pick(WEIRD) : v.map((x) => mutate(r, x, depth + 1));
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const roll = r();
      if (roll < 0.1) continue; // drop the field
      o[roll < 0.15 ? `${k}x` : k] = roll < 0.45 ? pick(WEIRD) : mutate(r, x, depth + 1);
    }
    if (r() < 0.1) o[pick(['extra', 'constructor', 'id'])] = pick(WEIRD);
    return o;
  }
  return r() < 0.5 ? pick(WEIRD) : v;
}

for (const dialect of DIALECTS)
  describe(`API fuzz: ${dialect}`, () => {
    let api: TestApi;
    before(async () => {
      api = await startTestApi(dialect);
      await smallCloud(api, { hosts: 1 });
      await api.admin.post('/v1/networks', { tenant: 'acme', name: 'n', kind: 'overlay', subnets: ['10.1.0.0/24'] });
    });
    after(() => api?.close());

    test('mutated bodies to every create route never produce a 500', async () => {
      const r = mulberry32(20261121);
      const statuses = new Map<number, number>();
      for (let i = 0; i < 700; i++) {
        const [path, valid] = Object.entries(VALID)[i % Object.keys(VALID).length] as [string, Record<string, unknown>];
        const body = mutate(r, valid);
        let text = JSON.stringify(body) ?? 'null';
        if (r() < 0.1) text = text.slice(0, Math.floor(r() * text.length)); // truncated JSON
        const res = await fetch(`${api.url}${path}`, {
          method: r() < 0.9 ? 'POST' : 'PATCH',
          headers: { authorization: `Bearer ${ADMIN_SECRET}`, 'content-type': 'application/json' },
          body: text,
        });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const reply = await res.text();
        assert.ok(res.status < 500, `#${i} ${path} ${text.slice(0, 300)} -> ${res.status} ${reply}`);
        if (res.status >= 400) {
          const e = JSON.parse(reply) as { code: string; message: string };
          assert.match(e.code, /^E_[A-Z_]+$/, reply);
          assert.ok(e.message.length > 0);
        }
      }
      assert.ok((statuses.get(400) ?? 0) > 100, `mostly rejected as bad input: ${[...statuses]}`);
      // Still serving, and the store is consistent: every port's addresses are allocated.
      assert.equal(((await (await fetch(`${api.url}/healthz`)).json()) as { status: string }).status, 'ok');
      const ports = await api.store.read((tx) => tx.all('ports', {}));
      const allocs = await api.store.read((tx) => tx.all('allocations', {}));
      for (const p of ports) assert.ok(allocs.filter((a) => a.owner === p.id).length >= 2, `port ${p.id} owns its MAC and addresses`);
    });

    test('random query strings and path ids never produce a 500', async () => {
      const r = mulberry32(7);
      for (let i = 0; i < 200; i++) {
        const kind = ['sites', 'hosts', 'networks', 'instances', 'ports', 'vips', 'peers', 'tokens', 'changes'][i % 9] as string;
        const junk = encodeURIComponent(String(WEIRD[Math.floor(r() * WEIRD.length)]));
        const url = r() < 0.5 ? `${api.url}/v1/${kind}?limit=${junk}&after=${junk}&name=${junk}` : `${api.url}/v1/${kind}/${junk || 'x'}`;
        const res = await fetch(url, { headers: { authorization: `Bearer ${ADMIN_SECRET}` } });
        assert.ok(res.status < 500, `${url} -> ${res.status} ${await res.text()}`);
      }
    });
  });
