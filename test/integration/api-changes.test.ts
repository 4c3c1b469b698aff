// GET /v1/changes as an audit trail: each item names the token that made the
// change and the object it is about; newest first with order=desc, paging
// down with before=, and after= paging as agents and followers use it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as infra from '../../src/core/infra.js';
import { expectError, smallCloud, startTestApi, type TestApi } from '../support/api.js';
import { DIALECTS } from '../support/stores.js';

interface Item {
  version: number;
  kind: string;
  at: string;
  actor: { tokenId: string; name: string } | null;
  object: { kind: string; id: string; name: string | null };
}
type Log = { items: Item[]; head: number };

for (const dialect of DIALECTS) {
  describe(`GET /v1/changes, actors and objects: ${dialect}`, () => {
    let api: TestApi;
    let start: number;
    let alice: { id: string; secret: string };
    let tenant: { id: string; secret: string };
    const made: Record<string, string> = {};
    before(async () => {
      api = await startTestApi(dialect);
      await smallCloud(api, { hosts: 1 });
      start = (await api.admin.get<Log>('/v1/changes?limit=1')).head;
      const a = await api.admin.post<{ token: { id: string }; secret: string }>('/v1/tokens', { name: 'ops-alice', role: 'admin' });
      alice = { id: a.token.id, secret: a.secret };
      const t = await api.admin.post<{ token: { id: string }; secret: string }>('/v1/tokens', { name: 'acme-ci', role: 'tenant', tenant: 'acme' });
      tenant = { id: t.token.id, secret: t.secret };
      const as = api.as(alice.secret);
      made.net = (await as.post<{ id: string }>('/v1/networks', { tenant: 'acme', name: 'web', kind: 'overlay', subnets: ['10.1.0.0/24'] })).id;
      const vm = await as.post<{ id: string; ports: { id: string; mac: string }[] }>('/v1/instances', {
        tenant: 'acme',
        name: 'vm1',
        site: 'ams1',
        size: 'small',
        ports: [{ network: 'web' }],
      });
      made.vm = vm.id;
      made.port = vm.ports[0]?.id as string;
      made.mac = vm.ports[0]?.mac as string;
      made.vip = (await as.post<{ id: string }>('/v1/vips', { tenant: 'acme', name: 'lb', site: 'ams1', healthCheck: { type: 'tcp', port: 80 } })).id;
      made.gone = (await api.as(tenant.secret).post<{ id: string }>('/v1/networks', { name: 'scratch', kind: 'overlay', subnets: ['10.2.0.0/24'] })).id;
      await api.as(tenant.secret).delete('/v1/networks/scratch');
      // Without a token: as `--db` and the lab's internal writes do.
      made.host = (await infra.createHost(api.ctx, { name: 'hv-direct', site: 'ams1', capacity: { cpus: 8, memoryMb: 8192, diskGb: 100 } })).id;
    });
    after(() => api?.close());

    test('each item names the token that made it (or none) and the object, with its name', async () => {
      const log = await api.admin.get<Log>(`/v1/changes?after=${start}&limit=100`);
      const rows = log.items.map((c) => [c.kind, c.object.kind, c.object.id, c.object.name, c.actor]);
      const byAlice = { tokenId: alice.id, name: 'ops-alice' };
      const byTenant = { tokenId: tenant.id, name: 'acme-ci' };
      assert.deepEqual(rows, [
        ['network.created', 'network', made.net, 'web', byAlice],
        ['port.created', 'port', made.port, made.mac, byAlice],
        // What its host's agent runs it from (docs/vm-profiles.md).
        ['instance.updated', 'instance', made.vm, 'vm1', byAlice],
        ['vip.created', 'vip', made.vip, 'lb', byAlice],
        // A network that is gone has no row to take its name from.
        ['network.created', 'network', made.gone, null, byTenant],
        ['network.deleted', 'network', made.gone, null, byTenant],
        ['host.created', 'host', made.host, 'hv-direct', null],
      ]);
      assert.equal(log.head, start + 7);
      for (const c of log.items) assert.ok(!Number.isNaN(Date.parse(c.at)), `at ${c.at}`);
    });

    test('changes made with the bootstrap admin token name it', async () => {
      const first = await api.admin.get<Log>('/v1/changes?after=0&limit=1');
      assert.equal(first.items[0]?.kind, 'host.created');
      assert.equal(first.items[0]?.actor?.name, 'bootstrap-admin');
      assert.deepEqual(first.items[0]?.object, { kind: 'host', id: first.items[0]?.object.id, name: 'hv1' });
    });

    test('order=desc gives the newest first, and before= pages down to the first version', async () => {
      const asc = await api.admin.get<Log>('/v1/changes?after=0&limit=1000');
      const newest = await api.admin.get<Log>('/v1/changes?order=desc&limit=2');
      assert.deepEqual(
        newest.items.map((c) => c.version),
        [asc.head, asc.head - 1],
      );
      assert.equal(newest.head, asc.head);
      const seen: number[] = [];
      let cursor: number | null = null;
      for (let pages = 0; pages < 100; pages++) {
        const page: Log = await api.admin.get(`/v1/changes?order=desc&limit=2${cursor === null ? '' : `&before=${cursor}`}`);
        if (page.items.length === 0) break;
        seen.push(...page.items.map((c) => c.version));
        cursor = page.items.at(-1)?.version ?? null;
      }
      assert.deepEqual(seen, asc.items.map((c) => c.version).reverse());
      // after and before together: a window, in either order.
      const window = await api.admin.get<Log>(`/v1/changes?after=${start}&before=${start + 4}&order=desc`);
      assert.deepEqual(
        window.items.map((c) => c.version),
        [start + 3, start + 2, start + 1],
      );
    });

    test('after= alone pages oldest first, as agents and followers read it', async () => {
      const a = await api.admin.get<Log>(`/v1/changes?after=${start}&limit=2`);
      const b = await api.admin.get<Log>(`/v1/changes?after=${a.items.at(-1)?.version}&limit=2`);
      assert.deepEqual(
        [...a.items, ...b.items].map((c) => c.version),
        [start + 1, start + 2, start + 3, start + 4],
      );
    });

    test('bad paging values are refused naming the parameter', async () => {
      for (const [qs, field] of [
        ['order=sideways', 'order'],
        ['before=0', 'before'],
        ['before=x', 'before'],
        ['after=-1', 'after'],
        ['limit=0', 'limit'],
      ] as const) {
        const e = await expectError(() => api.admin.get(`/v1/changes?${qs}`), 'E_INVALID_ARG');
        assert.match(e.message, new RegExp(field), `${qs}: ${e.message}`);
      }
    });
  });
}
