// Who may read the change log, now that it names the tokens that made each
// change: operators (admin, readonly) only. A tenant token, whatever paging
// it asks for, and an agent token are refused, and the refusal carries no
// change, actor or object; nothing a tenant does widens that.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { smallCloud, startTestApi, type TestApi } from '../support/api.js';
import { DIALECTS } from '../support/stores.js';

const QUERIES = ['', '?order=desc', '?order=desc&limit=1000', '?before=1000000', '?after=0&limit=1000', '?after=0&before=100&order=asc'];

for (const dialect of DIALECTS) {
  describe(`change log access: ${dialect}`, () => {
    let api: TestApi;
    const secret: Record<string, string> = {};
    before(async () => {
      api = await startTestApi(dialect);
      await smallCloud(api, { hosts: 1 });
      for (const [name, body] of [
        ['acme', { role: 'tenant', tenant: 'acme' }],
        ['globex', { role: 'tenant', tenant: 'globex' }],
        ['agent', { role: 'agent', host: 'hv1' }],
        ['readonly', { role: 'readonly' }],
      ] as const)
        secret[name] = (await api.admin.post<{ secret: string }>('/v1/tokens', { name: `${name}-token`, ...body })).secret;
      // Both tenants change things: each would see the other's network and token name in the log.
      await api.as(secret.acme).post('/v1/networks', { name: 'acme-secret-net', kind: 'overlay', subnets: ['10.7.0.0/24'] });
      await api.as(secret.globex).post('/v1/networks', { name: 'globex-secret-net', kind: 'overlay', subnets: ['10.8.0.0/24'] });
    });
    after(() => api?.close());

    test('tenant and agent tokens are refused with every paging variant, and the answer carries no change', async () => {
      for (const who of ['acme', 'globex', 'agent'])
        for (const qs of QUERIES) {
          const r = await fetch(`${api.url}/v1/changes${qs}`, { headers: { authorization: `Bearer ${secret[who]}` } });
          const text = await r.text();
          assert.equal(r.status, 403, `${who} GET /v1/changes${qs}: ${text}`);
          assert.equal((JSON.parse(text) as { code: string }).code, 'E_FORBIDDEN');
          for (const leak of ['secret-net', '-token', 'bootstrap-admin', 'network.created', 'actor'])
            assert.ok(!text.includes(leak), `${who} ${qs}: the refusal mentions ${leak}: ${text}`);
        }
    });

    test('no token, or a bad one, is refused before anything is read', async () => {
      for (const h of [{}, { authorization: 'Bearer not-a-token-0123456789' }] as Record<string, string>[]) {
        const r = await fetch(`${api.url}/v1/changes?order=desc`, { headers: h });
        assert.equal(r.status, 401);
        assert.ok(!(await r.text()).includes('secret-net'));
      }
    });

    test('a readonly operator sees both tenants changes with the tokens that made them', async () => {
      const log = await api
        .as(secret.readonly)
        .get<{ items: { kind: string; actor: { name: string } | null; object: { name: string | null } }[] }>('/v1/changes?order=desc&limit=2');
      assert.deepEqual(
        log.items.map((c) => [c.kind, c.object.name, c.actor?.name]),
        [
          ['network.created', 'globex-secret-net', 'globex-token'],
          ['network.created', 'acme-secret-net', 'acme-token'],
        ],
      );
    });
  });
}
