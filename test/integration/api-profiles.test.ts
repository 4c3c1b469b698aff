// VM profiles through the API: tenants' SSH keys, an instance's image, a
// site's VM settings, and GET /v1/instances/{id}/profile, tenant-scoped.
// The renderer itself is golden-tested (src/model/profile-render.test.ts)
// and its output checked with libvirt's and cloud-init's tools
// (test/integration/profile-tools.test.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ApiClient } from '../../src/cli/client.js';
import { portIfname } from '../../src/model/ifname.js';
import { expectError, smallCloud, startTestApi, type TestApi } from '../support/api.js';
import { DIALECTS } from '../support/stores.js';

// Made with ssh-keygen -t ed25519; the fingerprint is what ssh-keygen -l printed.
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICsGYMEXLBhGso2iwZ5c4n6I0X5XwSK/tagQqQ/PKa/k user@ed25519';
const KEY_FP = 'SHA256:3QLCeKh7PS725Ez3mGKXizfs5ApPEVEOf+3CSiS0FEE';

interface Profile {
  instanceId: string;
  hostId: string;
  domain: string;
  metaData: string;
  networkConfig: string;
  userData: string;
}

for (const dialect of DIALECTS) {
  describe(`VM profiles through the API: ${dialect}`, () => {
    let api: TestApi;
    let acme: ApiClient;
    let globex: ApiClient;
    before(async () => {
      api = await startTestApi(dialect);
      await smallCloud(api, { hosts: 1 });
      const token = async (tenant: string) => (await api.admin.post<{ secret: string }>('/v1/tokens', { name: `${tenant}-ci`, role: 'tenant', tenant })).secret;
      acme = api.as(await token('acme'));
      globex = api.as(await token('globex'));
    });
    after(() => api?.close());

    test('a tenant manages its SSH keys; another tenant never sees them', async () => {
      const k = await acme.post<{ id: string; fingerprint: string; type: string; tenantId: string }>('/v1/keys', { name: 'laptop', publicKey: KEY });
      assert.equal(k.fingerprint, KEY_FP);
      assert.equal(k.type, 'ssh-ed25519');
      assert.equal((await acme.get<{ name: string }>('/v1/keys/laptop')).name, 'laptop');
      assert.deepEqual(
        (await acme.get<{ items: { id: string }[] }>('/v1/keys')).items.map((x) => x.id),
        [k.id],
      );
      assert.deepEqual((await globex.get<{ items: unknown[] }>('/v1/keys')).items, []);
      await expectError(() => globex.get(`/v1/keys/${k.id}`), 'E_NOT_FOUND');
      await expectError(() => globex.delete(`/v1/keys/${k.id}`), 'E_NOT_FOUND');
      // The same name, or the same key under another name, is a conflict in one tenant, not across tenants.
      await expectError(() => acme.post('/v1/keys', { name: 'laptop', publicKey: KEY }), 'E_CONFLICT', /laptop/);
      await expectError(() => acme.post('/v1/keys', { name: 'again', publicKey: KEY }), 'E_CONFLICT', /already tenant acme's key laptop/);
      await globex.post('/v1/keys', { name: 'laptop', publicKey: KEY });
      const bad = await expectError(() => acme.post('/v1/keys', { name: 'bad', publicKey: 'ssh-rsa AAAAB3NzaC1yc2E' }), 'E_INVALID_ARG');
      assert.equal(bad.field, 'publicKey');
      await expectError(() => acme.post('/v1/keys', { name: 'bad', publicKey: `${KEY}\nssh-ed25519 AAAA` }), 'E_INVALID_ARG', /line breaks/);
      assert.equal((await acme.get<{ items: unknown[] }>('/v1/keys?name=bad')).items.length, 0, 'nothing partial is written');
    });

    test('an instance gets its profile once it has an image; the tenant scope holds', async () => {
      await api.admin.patch('/v1/sites/ams1', { vm: { dnsServers: ['192.0.2.53'], arpTimeoutMs: 60_000 } });
      const site = await api.admin.get<{ vm: { dnsServers: string[]; arpTimeoutMs: number; imagePath: string } }>('/v1/sites/ams1');
      assert.deepEqual(site.vm.dnsServers, ['192.0.2.53']);
      assert.equal(site.vm.imagePath, '/var/lib/weft/images/{image}.qcow2', 'the rest stay defaults');
      await acme.post('/v1/networks', { name: 'front', kind: 'overlay', subnets: ['10.20.0.0/24', 'fd00:20::/64'], mtu: 1450 });
      const inst = await acme.post<{ id: string; hostId: string; image: string | null; ports: { id: string; mac: string; ipv4: string; ipv6: string }[] }>(
        '/v1/instances',
        { name: 'web1', site: 'ams1', size: 'small', ports: [{ network: 'front' }] },
      );
      assert.equal(inst.image, null);
      const none = await expectError(() => acme.get('/v1/instances/web1/profile'), 'E_INVALID_ARG', /web1 has no image/);
      assert.equal(none.field, 'image');
      await expectError(() => acme.patch('/v1/instances/web1', { image: '../../etc/shadow' }), 'E_INVALID_ARG', /image name/);
      assert.equal((await acme.patch<{ image: string }>('/v1/instances/web1', { image: 'debian-12' })).image, 'debian-12');

      const p = await acme.get<Profile>('/v1/instances/web1/profile');
      const port = inst.ports[0]!;
      assert.equal(p.instanceId, inst.id);
      assert.equal(p.hostId, inst.hostId);
      assert.ok(p.domain.includes(`<target dev='${portIfname(port.id)}'`), 'the tap the agent plugs');
      assert.ok(p.domain.includes(`<mac address='${port.mac}'/>`));
      assert.ok(p.domain.includes(`<uuid>${inst.id}</uuid>`));
      assert.ok(p.domain.includes('/var/lib/weft/images/debian-12.qcow2'), 'the disk from the site imagePath');
      assert.ok(p.domain.includes("<mtu size='1450'/>"));
      assert.match(p.metaData, new RegExp(`instance-id: "?${inst.id}"?`));
      assert.ok(p.networkConfig.includes(`${port.ipv4}/24`) && p.networkConfig.includes(`${port.ipv6}/64`), p.networkConfig);
      assert.ok(p.networkConfig.includes('192.0.2.53'), 'DNS from the site');
      assert.ok(p.userData.startsWith('#cloud-config\n'));
      assert.ok(p.userData.includes(KEY), "the tenant's key");
      assert.ok(p.userData.includes('base_reachable_time_ms = 60000'), 'the ARP timeout from the site');
      // Another tenant: not found, as the instance itself.
      await expectError(() => globex.get(`/v1/instances/${inst.id}/profile`), 'E_NOT_FOUND');
      // A deleted key leaves later profiles.
      await acme.delete('/v1/keys/laptop');
      assert.ok(!(await acme.get<Profile>('/v1/instances/web1/profile')).userData.includes(KEY));
    });

    test('site VM settings are checked field by field and only operators change them', async () => {
      const e = await expectError(() => api.admin.patch('/v1/sites/ams1', { vm: { dnsServers: ['x'] } }), 'E_INVALID_ARG');
      assert.equal(e.field, 'vm.dnsServers[0]');
      await expectError(() => api.admin.patch('/v1/sites/ams1', { vm: { imagePath: '/x/../../etc/{image}' } }), 'E_INVALID_ARG', /\.\./);
      await expectError(() => acme.patch('/v1/sites/ams1', { vm: { sharedStorage: true } }), 'E_FORBIDDEN');
      assert.deepEqual((await api.admin.get<{ vm: { dnsServers: string[] } }>('/v1/sites/ams1')).vm.dnsServers, ['192.0.2.53'], 'nothing partial');
      const s = await api.admin.post<{ vm: { imagePool: string | null } }>('/v1/sites', { name: 'fra1', vm: { imagePool: 'images' } });
      assert.equal(s.vm.imagePool, 'images');
    });
  });
}
