// The rest of the API surface: paging, OpenAPI, metrics, health, the change log endpoint.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { smallCloud, startTestApi, type TestApi } from '../support/api.js';
import { DIALECTS } from '../support/stores.js';

for (const dialect of DIALECTS) {
  describe(`API surface: ${dialect}`, () => {
    let api: TestApi;
    before(async () => {
      api = await startTestApi(dialect);
      await smallCloud(api, { hosts: 1 });
    });
    after(() => api?.close());

    test('lists page with a cursor in creation order, and filters', async () => {
      for (let i = 0; i < 7; i++) await api.admin.post('/v1/tenants', { name: `p${i}` });
      const seen: string[] = [];
      let after: string | null = null;
      let pages = 0;
      do {
        const page: { items: { name: string; id: string }[]; next: string | null } = await api.admin.get(
          `/v1/tenants?limit=3${after ? `&after=${after}` : ''}`,
        );
        assert.ok(page.items.length <= 3);
        seen.push(...page.items.map((t) => t.name));
        after = page.next;
        pages++;
      } while (after);
      assert.deepEqual(seen, ['acme', 'globex', 'p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
      assert.equal(pages, 3);
      assert.deepEqual(
        (await api.admin.get<{ items: { name: string }[] }>('/v1/tenants?name=p3')).items.map((t) => t.name),
        ['p3'],
      );
      const r = await fetch(`${api.url}/v1/tenants?limit=5000`, { headers: { authorization: 'Bearer test-admin-secret-0123456789' } });
      assert.equal(r.status, 400);
      assert.match(((await r.json()) as { message: string }).message, /limit/);
    });

    test('/openapi.json describes every /v1 route with its schemas', async () => {
      const doc = (await (await fetch(`${api.url}/openapi.json`)).json()) as {
        openapi: string;
        paths: Record<string, Record<string, unknown>>;
        components: { schemas: Record<string, unknown> };
      };
      assert.match(doc.openapi, /^3\./);
      for (const p of [
        '/v1/sites',
        '/v1/hosts/{id}',
        '/v1/instances/{id}/migrate',
        '/v1/networks',
        '/v1/ports/{id}',
        '/v1/vips',
        '/v1/peers',
        '/v1/tokens',
        '/v1/changes',
      ])
        assert.ok(doc.paths[p], `path ${p}`);
      assert.ok(doc.paths['/v1/networks']?.post, 'network create');
      for (const s of ['Site', 'Host', 'Network', 'Instance', 'Port', 'Vip', 'Peer']) assert.ok(doc.components.schemas[s], `schema ${s}`);
    });

    test('/metrics shows requests, entities, allocations and the change-log version', async () => {
      await api.admin.get('/v1/hosts');
      const text = await (await fetch(`${api.url}/metrics`)).text();
      assert.match(text, /weft_api_requests_total\{method="GET",route="\/v1\/hosts",status="200"\} \d+/);
      assert.match(text, /weft_api_request_seconds_bucket\{/);
      assert.match(text, /weft_entities\{kind="hosts"\} 1/);
      assert.match(text, /weft_allocations\{pool="underlay:4"\} 1/);
      const head = await api.store.headVersion();
      assert.match(text, new RegExp(`weft_changelog_version ${head}`));
    });

    test('/healthz reports the store and head version', async () => {
      const h = (await (await fetch(`${api.url}/healthz`)).json()) as { status: string; store: string; version: number };
      assert.deepEqual(h, { status: 'ok', store: dialect, version: await api.store.headVersion() });
    });

    test('/v1/changes pages the log from a version', async () => {
      await api.admin.post('/v1/networks', { tenant: 'acme', name: 'logged', kind: 'overlay', subnets: ['10.0.0.0/24'] });
      const all = await api.admin.get<{ items: { version: number }[]; head: number }>('/v1/changes?after=0&limit=2');
      assert.deepEqual(
        all.items.map((c) => c.version),
        [1, 2],
      );
      assert.equal(all.head, await api.store.headVersion());
      const next = await api.admin.get<{ items: { version: number; kind: string }[] }>('/v1/changes?after=1&limit=1');
      assert.deepEqual(
        next.items.map((c) => [c.version, c.kind]),
        [[2, 'network.created']],
      );
    });
  });
}
