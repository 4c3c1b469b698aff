// Auth over a real HTTP listener: tokens, roles, and tenant isolation that
// reveals nothing about other tenants.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { saltedHash, sha256Hex } from '../../src/core/tokens.js';
import { expectError, smallCloud, startTestApi, type TestApi } from '../support/api.js';
import { DIALECTS } from '../support/stores.js';

for (const dialect of DIALECTS) {
  describe(`API auth: ${dialect}`, () => {
    let api: TestApi;
    let acme: string;
    let readonly: string;
    let agent: string;
    let globexNet: { id: string };
    before(async () => {
      api = await startTestApi(dialect);
      await smallCloud(api);
      acme = (await api.admin.post<{ secret: string }>('/v1/tokens', { name: 'acme-ci', role: 'tenant', tenant: 'acme' })).secret;
      readonly = (await api.admin.post<{ secret: string }>('/v1/tokens', { name: 'ro', role: 'readonly' })).secret;
      agent = (await api.admin.post<{ secret: string }>('/v1/tokens', { name: 'hv1-agent', role: 'agent', host: 'hv1' })).secret;
      globexNet = await api.admin.post('/v1/networks', { tenant: 'globex', name: 'secret-net', kind: 'overlay', subnets: ['10.9.0.0/24'] });
    });
    after(() => api?.close());

    test('no token or a wrong token is 401', async () => {
      await expectError(() => api.as(undefined).get('/v1/sites'), 'E_UNAUTHENTICATED', /missing bearer token/);
      await expectError(() => api.as('weft_nope').get('/v1/sites'), 'E_UNAUTHENTICATED', /unknown or revoked/);
      const r = await fetch(`${api.url}/v1/sites`);
      assert.equal(r.status, 401);
    });

    test('tokens are stored hashed, never in the clear', async () => {
      const rows = await api.store.read((tx) => tx.all('tokens', {}));
      assert.ok(rows.length >= 4);
      for (const r of rows) assert.match(r.secretHash, /^[0-9a-f]{64}$/);
      assert.ok(rows.some((r) => r.secretHash === saltedHash(r.salt, acme)));
      assert.ok(!rows.some((r) => r.secretHash === sha256Hex(acme)), 'no row keeps the plain SHA-256');
      assert.ok(!JSON.stringify(rows).includes(acme));
      const listed = await api.admin.get<{ items: object[] }>('/v1/tokens');
      assert.ok(!JSON.stringify(listed).includes('secret'), 'the token list shows no secrets or hashes');
    });

    test('a tenant sees only its own tenant, networks and instances', async () => {
      const t = api.as(acme);
      await t.post('/v1/networks', { name: 'mine', kind: 'overlay', subnets: ['10.9.0.0/24'] });
      const nets = await t.get<{ items: { name: string }[] }>('/v1/networks');
      assert.deepEqual(
        nets.items.map((n) => n.name),
        ['mine'],
      );
      const tenants = await t.get<{ items: { name: string }[] }>('/v1/tenants');
      assert.deepEqual(
        tenants.items.map((x) => x.name),
        ['acme'],
      );
      // Filtering for another tenant fails as filtering for none does: 404, the same words, the filter named.
      const theirs = await expectError(() => t.get('/v1/networks?tenant=globex'), 'E_NOT_FOUND');
      const none = await expectError(() => t.get('/v1/networks?tenant=nosuch'), 'E_NOT_FOUND');
      assert.equal(theirs.message.replace('globex', 'X'), none.message.replace('nosuch', 'X'));
      assert.equal(theirs.field, 'tenant');
    });

    test("another tenant's objects are 404, indistinguishable from missing ones", async () => {
      const t = api.as(acme);
      const a = await expectError(() => t.get(`/v1/networks/${globexNet.id}`), 'E_NOT_FOUND');
      const b = await expectError(() => t.get('/v1/networks/01a1fdc6-0000-7000-8000-000000000000'), 'E_NOT_FOUND');
      assert.equal(a.message.replace(globexNet.id, 'X'), b.message.replace('01a1fdc6-0000-7000-8000-000000000000', 'X'));
      await expectError(() => t.delete(`/v1/networks/${globexNet.id}`), 'E_NOT_FOUND');
      await expectError(() => t.get('/v1/tenants/globex'), 'E_NOT_FOUND');
      await expectError(() => t.post('/v1/instances', { name: 'x', site: 'ams1', ports: [{ network: globexNet.id }] }), 'E_INVALID_ARG', /network/);
      assert.ok(await api.admin.get(`/v1/networks/${globexNet.id}`), 'still there');
    });

    test('a tenant may not touch infrastructure, pin hosts, migrate or mint tokens', async () => {
      const t = api.as(acme);
      await expectError(() => t.get('/v1/hosts'), 'E_FORBIDDEN');
      await expectError(() => t.post('/v1/sites', { name: 'x' }), 'E_FORBIDDEN');
      await expectError(() => t.post('/v1/tokens', { name: 'x', role: 'admin' }), 'E_FORBIDDEN');
      await expectError(() => t.post('/v1/instances', { name: 'pinned', site: 'ams1', host: 'hv1' }), 'E_FORBIDDEN', /only operators/);
      const i = await t.post<{ id: string }>('/v1/instances', { name: 'vm', site: 'ams1' });
      await expectError(() => t.post(`/v1/instances/${i.id}/migrate`, {}), 'E_FORBIDDEN');
      assert.ok((await t.get<{ items: unknown[] }>('/v1/sites')).items.length > 0, 'tenants may read sites to choose one');
    });

    test('readonly reads everything and writes nothing', async () => {
      const r = api.as(readonly);
      assert.ok((await r.get<{ items: unknown[] }>('/v1/hosts')).items.length === 2);
      assert.ok((await r.get<{ items: unknown[] }>('/v1/networks')).items.length >= 2, 'all tenants');
      await expectError(() => r.post('/v1/tenants', { name: 'x' }), 'E_FORBIDDEN');
      await expectError(() => r.delete(`/v1/networks/${globexNet.id}`), 'E_FORBIDDEN');
      await expectError(() => r.get('/v1/tokens'), 'E_FORBIDDEN');
    });

    test('an agent token reads its own host only', async () => {
      const a = api.as(agent);
      assert.equal((await a.get<{ name: string }>('/v1/hosts/hv1')).name, 'hv1');
      const hv1 = await api.admin.get<{ id: string }>('/v1/hosts/hv1');
      assert.equal((await a.get<{ name: string }>(`/v1/hosts/${hv1.id}`)).name, 'hv1');
      await expectError(() => a.get('/v1/hosts/hv2'), 'E_FORBIDDEN');
      await expectError(() => a.get('/v1/hosts'), 'E_FORBIDDEN');
      await expectError(() => a.get('/v1/networks'), 'E_FORBIDDEN');
    });

    test('a revoked token stops working at once', async () => {
      const made = await api.admin.post<{ token: { id: string }; secret: string }>('/v1/tokens', { name: 'temp', role: 'readonly' });
      await api.as(made.secret).get('/v1/sites');
      await api.admin.delete(`/v1/tokens/${made.token.id}`);
      await expectError(() => api.as(made.secret).get('/v1/sites'), 'E_UNAUTHENTICATED');
    });
  });
}
