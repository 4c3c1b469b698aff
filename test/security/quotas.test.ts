// A tenant that tries to take more than its share from what every tenant
// draws from, against a real server on each store: a site's public IPv4
// pool (routed ports and VIPs), instances and VIPs in a burst of concurrent
// creates, its own quota, and the per-port ARP/ND guard limits of its
// networks. Each is refused (E_QUOTA, 403; E_FORBIDDEN; E_INVALID_ARG)
// leaving nothing behind, while operators may go beyond.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_QUOTAS } from '../../src/model/quotas.js';
import { expectError, smallCloud, startTestApi, type TestApi } from '../support/api.js';
import { DIALECTS } from '../support/stores.js';

type Usage = { instances: number; ports: number; networks: number; publicIpv4: number; vips: number };
type TenantWithUsage = { name: string; quotas: Record<keyof Usage, number | null>; limits: Usage; usage: Usage };
const HC = { type: 'tcp', port: 80 };

/** What a refused request could have left behind. */
async function footprint(api: TestApi) {
  return api.store.read(async (tx) => ({
    head: await tx.headVersion(),
    allocations: (await tx.allocationCount()).reduce((a, p) => a + p.n, 0),
    instances: await tx.count('instances'),
    ports: JSON.stringify((await tx.all('ports', {})).map((p) => [p.id, p.ipv4]).sort()),
    vips: await tx.count('vips'),
    networks: await tx.count('networks'),
  }));
}

for (const dialect of DIALECTS) {
  describe(`security, quotas: ${dialect}`, () => {
    let api: TestApi;
    const secret: Record<string, string> = {};
    const as = (tenant: string) => api.as(secret[tenant]);
    before(async () => {
      api = await startTestApi(dialect, {
        quotas: { ...DEFAULT_QUOTAS, publicIpv4: 4, networks: 3 },
        tenantRateMax: { arpRate: 50, ndRate: 40 },
      });
      await smallCloud(api, { hosts: 2, cpus: 64 });
      // A site whose public pool (a /29: six usable addresses) one tenant could empty alone.
      await api.admin.post('/v1/sites', { name: 'tiny', underlayPool: '192.0.3.0/24', ipv4Pools: ['198.51.100.0/29'], ipv6Block: '2001:db8:300::/48' });
      await api.admin.post('/v1/racks', { site: 'tiny', name: 'r1' });
      await api.admin.post('/v1/hosts', { name: 'tiny1', site: 'tiny', rack: 'r1', capacity: { cpus: 64, memoryMb: 262144, diskGb: 4000 } });
      for (const t of ['rush', 'solo']) await api.admin.post('/v1/tenants', { name: t });
      for (const t of ['acme', 'globex', 'rush', 'solo'])
        secret[t] = (await api.admin.post<{ secret: string }>('/v1/tokens', { name: `${t}-ci`, role: 'tenant', tenant: t })).secret;
      for (const t of ['acme', 'globex']) await as(t).post('/v1/networks', { name: 'pub', kind: 'routed', site: 'tiny' });
    });
    after(() => api?.close());

    test("a tenant that uses up its public IPv4 quota gets E_QUOTA, and the site's pool still serves another tenant", async () => {
      const acme = as('acme');
      // Four public addresses: three routed ports and a VIP, all from tiny's pool.
      await acme.post('/v1/instances', { name: 'a1', site: 'tiny', cpus: 1, ports: [{ network: 'pub' }, { network: 'pub' }] });
      const a2 = await acme.post<{ id: string }>('/v1/instances', { name: 'a2', site: 'tiny', cpus: 1, ports: [{ network: 'pub' }] });
      await acme.post('/v1/vips', { name: 'v1', site: 'tiny', healthCheck: HC });
      // A routed port without an address takes none of the pool.
      const bare = await acme.post<{ id: string; ipv4: string | null }>('/v1/ports', { instance: a2.id, network: 'pub', ipv4: null });
      assert.equal(bare.ipv4, null);

      const got = await acme.get<TenantWithUsage>('/v1/tenants/acme');
      assert.equal(got.limits.publicIpv4, 4);
      assert.equal(got.usage.publicIpv4, 4);
      assert.equal(got.usage.instances, 2);
      assert.equal(got.usage.ports, 4);
      assert.equal(got.usage.vips, 1);
      assert.equal(got.quotas.publicIpv4, null, 'no quota of its own: the server default applies');

      const attempts: [string, () => Promise<unknown>][] = [
        ['an instance with a routed port', () => acme.post('/v1/instances', { name: 'a3', site: 'tiny', cpus: 1, ports: [{ network: 'pub' }] })],
        ['a routed port', () => acme.post('/v1/ports', { instance: a2.id, network: 'pub' })],
        ['a routed port with an explicit address', () => acme.post('/v1/ports', { instance: a2.id, network: 'pub', ipv4: '198.51.100.6' })],
        ['an address for a bare routed port', () => acme.patch(`/v1/ports/${bare.id}`, { ipv4: '198.51.100.6' })],
        ['a VIP from the site pool', () => acme.post('/v1/vips', { name: 'v2', site: 'tiny', healthCheck: HC })],
        ['a VIP with an explicit address', () => acme.post('/v1/vips', { name: 'v3', site: 'tiny', address: '198.51.100.5', healthCheck: HC })],
      ];
      for (const [what, attempt] of attempts) {
        const before = await footprint(api);
        const err = await expectError(
          attempt,
          'E_QUOTA',
          /quota publicIpv4 exceeded: tenant acme may hold 4 public IPv4 addresses .*holds 4, and this request needs 1 more/,
        );
        assert.equal(err.field, 'quotas.publicIpv4', what);
        assert.deepEqual(await footprint(api), before, `${what}: nothing is left behind`);
      }
      const raw = await fetch(`${api.url}/v1/vips`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret.acme}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'v4', site: 'tiny', healthCheck: HC }),
      });
      assert.equal(raw.status, 403);
      assert.equal(((await raw.json()) as { code: string }).code, 'E_QUOTA');

      // Two of the pool's six addresses are left, and another tenant gets one.
      const g = await as('globex').post<{ ports: { ipv4: string | null }[] }>('/v1/instances', {
        name: 'g1',
        site: 'tiny',
        cpus: 1,
        ports: [{ network: 'pub' }],
      });
      assert.match(g.ports[0]?.ipv4 ?? '', /^198\.51\.100\.[1-6]$/);
      // An IPv6 VIP takes nothing of the IPv4 pool: within the VIP quota it is fine.
      await acme.post('/v1/vips', { name: 'v6', site: 'tiny', address: '2001:db8:300::10', healthCheck: HC });
      // An operator is not bound by the tenant's quota; what it creates counts all the same.
      await api.admin.post('/v1/vips', { tenant: 'acme', name: 'ops', site: 'tiny', healthCheck: HC });
      assert.equal((await acme.get<TenantWithUsage>('/v1/tenants/acme')).usage.publicIpv4, 5);
      // Freeing an address makes room again, for exactly one.
      await acme.delete('/v1/vips/v1');
      await expectError(() => acme.post('/v1/vips', { name: 'v7', site: 'tiny', healthCheck: HC }), 'E_QUOTA');
      await api.admin.delete('/v1/vips/ops');
      await acme.post('/v1/vips', { name: 'v7', site: 'tiny', healthCheck: HC });
      assert.equal((await acme.get<TenantWithUsage>('/v1/tenants/acme')).usage.publicIpv4, 4);
    });

    test('a tenant cannot set its own quota; an operator can, and null goes back to the default', async () => {
      const before = await footprint(api);
      const err = await expectError(() => as('rush').patch('/v1/tenants/rush', { quotas: { instances: 1000 } }), 'E_FORBIDDEN');
      assert.match(err.message, /tenant token may not PATCH/);
      const raw = await fetch(`${api.url}/v1/tenants/rush`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${secret.rush}`, 'content-type': 'application/json' },
        body: JSON.stringify({ quotas: { publicIpv4: 250 } }),
      });
      assert.equal(raw.status, 403);
      assert.deepEqual(await footprint(api), before);
      assert.equal((await as('rush').get<TenantWithUsage>('/v1/tenants/rush')).limits.instances, DEFAULT_QUOTAS.instances);

      const set = await api.admin.patch<TenantWithUsage>('/v1/tenants/rush', { quotas: { instances: 3, vips: 2, ports: 3 } });
      assert.deepEqual(set.quotas, { instances: 3, ports: 3, networks: null, publicIpv4: null, vips: 2 });
      assert.equal(set.limits.instances, 3);
      assert.equal(set.limits.publicIpv4, 4, 'the default where it has none of its own');
      const listed = await api.admin.get<{ items: TenantWithUsage[] }>('/v1/tenants?name=rush');
      assert.equal(listed.items[0]?.quotas.instances, 3);
      await expectError(
        () => api.admin.patch('/v1/tenants/rush', { quotas: { instances: -1 } }),
        'E_INVALID_ARG',
        /invalid quotas\.instances -1: must be an integer 0\.\.1000000/,
      );
      await expectError(() => api.admin.patch('/v1/tenants/rush', { quotas: { cpus: 4 } }), 'E_INVALID_ARG', /unknown field body\.quotas\.cpus/);
      const back = await api.admin.patch<TenantWithUsage>('/v1/tenants/solo', { quotas: { instances: 1 } });
      assert.equal(back.limits.instances, 1);
      const reset = await api.admin.patch<TenantWithUsage>('/v1/tenants/solo', { quotas: { instances: null } });
      assert.equal(reset.quotas.instances, null);
      assert.equal(reset.limits.instances, DEFAULT_QUOTAS.instances);
    });

    test('concurrent creates at the limit never exceed it', async () => {
      const rush = as('rush');
      await rush.post('/v1/networks', { name: 'net', kind: 'overlay', subnets: ['10.0.0.0/24'] });
      const instances = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) => rush.post('/v1/instances', { name: `r${i}`, site: 'ams1', cpus: 1, ports: [{ network: 'net' }] })),
      );
      const vips = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => rush.post('/v1/vips', { name: `rv${i}`, site: 'ams1', healthCheck: HC })));
      for (const [what, results, limit] of [
        ['instances', instances, 3],
        ['vips', vips, 2],
      ] as const) {
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, limit, `${what}: exactly the quota succeeds`);
        for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code: string }).code, 'E_QUOTA', String(r.reason));
      }
      const usage = (await rush.get<TenantWithUsage>('/v1/tenants/rush')).usage;
      assert.deepEqual(usage, { instances: 3, ports: 3, networks: 1, publicIpv4: 2, vips: 2 });
      const rows = await api.store.read(async (tx) => ({ i: await tx.count('instances', { tenantId: (await tx.findOne('tenants', { name: 'rush' }))!.id }) }));
      assert.equal(rows.i, 3);
      // The ports quota (3) is full too: a port on an existing instance is refused.
      const inst = (await rush.get<{ items: { id: string }[] }>('/v1/instances')).items[0]!;
      await expectError(
        () => rush.post('/v1/ports', { instance: inst.id, network: 'net' }),
        'E_QUOTA',
        /quota ports exceeded: tenant rush may hold 3 ports, holds 3/,
      );
    });

    test('the network quota bounds how many VNIs a tenant takes', async () => {
      const solo = as('solo');
      for (const n of ['n1', 'n2', 'n3']) await solo.post('/v1/networks', { name: n, kind: 'overlay', subnets: ['10.1.0.0/24'] });
      const before = await footprint(api);
      await expectError(
        () => solo.post('/v1/networks', { name: 'n4', kind: 'overlay', subnets: ['10.1.0.0/24'] }),
        'E_QUOTA',
        /quota networks exceeded: tenant solo may hold 3 networks, holds 3, and this request needs 1 more/,
      );
      assert.deepEqual(await footprint(api), before);
    });

    test("a tenant cannot raise its networks' ARP/ND limits above the operator's maximum; an operator can", async () => {
      const solo = as('solo');
      const net = await api.admin.get<{ id: string; arpRate: number | null }>('/v1/networks/n1?tenant=solo').catch(() => null);
      const id = net?.id ?? (await solo.get<{ id: string }>('/v1/networks/n1')).id;
      const before = await footprint(api);
      for (const [body, field, value, max] of [
        [{ arpRate: 51 }, 'arpRate', 51, 50],
        [{ ndRate: 100000 }, 'ndRate', 100000, 40],
      ] as const) {
        const err = await expectError(() => solo.patch(`/v1/networks/${id}`, body), 'E_INVALID_ARG');
        assert.equal(err.field, field);
        assert.match(err.message, new RegExp(`invalid ${field} ${value}: must be 1\\.\\.${max} packets/s for a tenant`));
      }
      await api.admin.patch('/v1/tenants/solo', { quotas: { networks: 10 } });
      await expectError(
        () => solo.post('/v1/networks', { name: 'loud', kind: 'overlay', subnets: ['10.2.0.0/24'], arpRate: 5000 }),
        'E_INVALID_ARG',
        /invalid arpRate 5000: must be 1\.\.50 packets\/s for a tenant/,
      );
      assert.deepEqual(await footprint(api), before, 'nothing changed');
      // At the maximum is fine; the operator may go beyond it, up to the absolute limit.
      assert.equal((await solo.patch<{ arpRate: number }>(`/v1/networks/${id}`, { arpRate: 50, ndRate: 40 })).arpRate, 50);
      const raised = await api.admin.patch<{ arpRate: number; ndRate: number }>(`/v1/networks/${id}`, { arpRate: 5000, ndRate: 3000 });
      assert.deepEqual([raised.arpRate, raised.ndRate], [5000, 3000]);
      const made = await api.admin.post<{ arpRate: number }>('/v1/networks', {
        tenant: 'solo',
        name: 'loud',
        kind: 'overlay',
        subnets: ['10.2.0.0/24'],
        arpRate: 5000,
      });
      assert.equal(made.arpRate, 5000);
      await expectError(
        () => api.admin.patch(`/v1/networks/${id}`, { arpRate: 100001 }),
        'E_INVALID_ARG',
        /invalid arpRate 100001: must be an integer 1\.\.100000/,
      );
      // A tenant renaming a network an operator raised keeps the raised limits.
      const renamed = await solo.patch<{ arpRate: number }>(`/v1/networks/${id}`, { name: 'n1b' });
      assert.equal(renamed.arpRate, 5000);
      // Null (the agents' default, 20/s, below the maximum) is always allowed.
      assert.equal((await solo.patch<{ arpRate: number | null }>(`/v1/networks/${id}`, { arpRate: null })).arpRate, null);
    });
  });
}
