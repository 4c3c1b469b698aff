// Fabric routers through the API, on both stores: create, validation,
// rendered configs, and the change log naming the routers a change alters.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApi, type TestApi } from '../support/api.js';
import { DIALECTS } from '../support/stores.js';

interface Change {
  kind: string;
  routers?: { name: string }[];
  cause?: { kind: string; id: string };
  object: { kind: string; name: string | null };
}

for (const dialect of DIALECTS) {
  describe(`fabric routers: ${dialect}`, () => {
    let api: TestApi;
    const fabricChanges = async () =>
      ((await api.admin.get<{ items: Change[] }>('/v1/changes?after=0&limit=1000')).items ?? []).filter((c) => c.kind === 'fabric.updated');
    before(async () => {
      api = await startTestApi(dialect);
      await api.admin.post('/v1/sites', { name: 'f1', underlayPool: '192.0.2.0/26', ipv4Pools: ['203.0.113.0/27'], ipv6Block: '2001:db8:101::/48' });
      await api.admin.post('/v1/racks', { site: 'f1', name: 'r1' });
      await api.admin.post('/v1/racks', { site: 'f1', name: 'r2' });
      await api.admin.post('/v1/hosts', { name: 'fh1', site: 'f1', rack: 'r1', asn: 65101, capacity: { cpus: 4, memoryMb: 4096, diskGb: 10 } });
    });
    after(() => api?.close());

    test('create, get, list and update; refusals name the field', async () => {
      const tor = await api.admin.post<{ id: string; role: string; rackId: string; maxPrefix: number; platform: string }>('/v1/routers', {
        name: 'f1r1',
        role: 'tor',
        site: 'f1',
        rack: 'r1',
        asn: 65010,
        bgpRouterId: '10.255.0.1',
        loopback: '10.255.0.1',
        bfd: true,
      });
      assert.equal(tor.role, 'tor');
      assert.equal(tor.maxPrefix, 1000);
      assert.equal(tor.platform, 'bird');
      await api.admin.post('/v1/routers', {
        name: 'f1sp',
        role: 'spine',
        site: 'f1',
        asn: 65001,
        bgpRouterId: '10.255.0.10',
        loopback: '10.255.0.10',
        platform: 'frr',
      });
      const bd = await api.admin.post<{ upstreams: { name: string; maxPrefix: number }[] }>('/v1/routers', {
        name: 'f1bd',
        role: 'border',
        site: 'f1',
        asn: 65000,
        bgpRouterId: '10.255.0.20',
        loopback: '10.255.0.20',
        upstreams: [{ name: 'transit1', neighbor: '198.51.100.1', remoteAsn: 64496 }],
      });
      assert.deepEqual(
        bd.upstreams.map((u) => [u.name, u.maxPrefix]),
        [['transit1', 1000]],
      );
      const list = await api.admin.get<{ items: { name: string }[] }>('/v1/routers?site=f1&role=tor');
      assert.deepEqual(
        list.items.map((r) => r.name),
        ['f1r1'],
      );
      assert.equal((await api.admin.get<{ name: string }>('/v1/routers/f1r1')).name, 'f1r1');
      const refused = async (body: Record<string, unknown>, re: RegExp) =>
        await assert.rejects(api.admin.post('/v1/routers', { site: 'f1', asn: 65020, bgpRouterId: '10.255.0.30', loopback: '10.255.0.30', ...body }), re);
      await refused({ name: 'x1', role: 'tor' }, /rack.*required for a tor/);
      await refused({ name: 'x2', role: 'spine', rack: 'r1' }, /only a tor belongs to a rack/);
      await refused(
        { name: 'x3', role: 'tor', rack: 'r2', upstreams: [{ name: 'u', neighbor: '198.51.100.9', remoteAsn: 64496 }] },
        /only border routers have upstreams/,
      );
      await refused({ name: 'x4', role: 'spine', loopback: '10.255.0.1' }, /loopback 10.255.0.1 is router f1r1's already/);
      await refused({ name: 'x5', role: 'spine', bgpRouterId: '2001:db8::1' }, /bgpRouterId.*nonzero IPv4/);
      await refused(
        { name: 'x6', role: 'border', upstreams: [{ name: 'u', neighbor: '198.51.100.9', remoteAsn: 65020 }] },
        /upstreams\[0\]\.remoteAsn.*must differ/,
      );
      const upd = await api.admin.patch<{ maxPrefix: number }>('/v1/routers/f1r1', { maxPrefix: 50 });
      assert.equal(upd.maxPrefix, 50);
      // Operators only.
      await assert.rejects(api.as(undefined).get('/v1/routers'), /token|auth/i);
    });

    test("the config endpoint renders the router's platform, or the format asked for", async () => {
      const bird = await api.admin.get<string>('/v1/routers/f1r1/config');
      assert.match(bird, /^protocol bgp h_fh1 \{$/m);
      assert.match(bird, /receive limit 50 action restart;/);
      const frr = await api.admin.get<string>('/v1/routers/f1sp/config');
      assert.match(frr, /^router bgp 65001$/m);
      assert.match(await api.admin.get<string>('/v1/routers/f1sp/config?format=bird'), /^router id 10\.255\.0\.10;$/m);
      await assert.rejects(api.admin.get('/v1/routers/f1sp/config?format=junos'), /format/);
    });

    test('a host added, drained or deleted logs fabric.updated naming its ToR, the spines and borders', async () => {
      const before = (await fabricChanges()).length;
      const h = await api.admin.post<{ id: string }>('/v1/hosts', {
        name: 'fh2',
        site: 'f1',
        rack: 'r2',
        asn: 65102,
        capacity: { cpus: 4, memoryMb: 4096, diskGb: 10 },
      });
      await api.admin.patch('/v1/hosts/fh1', { state: 'draining' });
      const got = (await fabricChanges()).slice(before);
      assert.deepEqual(
        got.map((c) => [c.cause?.kind, c.routers?.map((r) => r.name)]),
        [
          ['host.created', ['f1bd', 'f1sp']],
          ['host.updated', ['f1bd', 'f1r1', 'f1sp']],
        ],
      );
      assert.equal(got[0]?.cause?.id, h.id);
      assert.equal(got[1]?.object.kind, 'fabric');
      assert.equal(got[1]?.object.name, 'f1bd,f1r1,f1sp');
      assert.match(await api.admin.get<string>('/v1/routers/f1r1/config'), /bgp_local_pref = 0;\n {2}accept;/);
      await api.admin.delete('/v1/hosts/fh2');
      await api.admin.delete('/v1/routers/f1bd');
      const last = (await fabricChanges()).slice(-2);
      assert.deepEqual(
        last.map((c) => [c.cause?.kind, c.routers?.map((r) => r.name)]),
        [
          ['host.deleted', ['f1bd', 'f1sp']],
          ['router.deleted', ['f1sp']],
        ],
      );
      await assert.rejects(api.admin.delete('/v1/sites/f1'), /fabric routers|hosts/);
    });
  });
}
