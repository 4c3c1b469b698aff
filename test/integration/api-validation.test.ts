// Bad input over real HTTP: each gets a clear {code, message, field} naming
// the field, the value and what is allowed, and nothing partial is written.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { expectError, smallCloud, startTestApi, type TestApi } from '../support/api.js';
import { DIALECTS } from '../support/stores.js';

/** Everything a failed request could have left behind. */
async function footprint(api: TestApi) {
  return api.store.read(async (tx) => ({
    head: await tx.headVersion(),
    allocations: (await tx.allocationCount()).reduce((a, p) => a + p.n, 0),
    instances: await tx.count('instances'),
    ports: await tx.count('ports'),
    networks: await tx.count('networks'),
    hosts: await tx.count('hosts'),
  }));
}

for (const dialect of DIALECTS) {
  describe(`API validation: ${dialect}`, () => {
    let api: TestApi;
    before(async () => {
      api = await startTestApi(dialect);
      await smallCloud(api, { hosts: 1, cpus: 4 });
      await api.admin.post('/v1/networks', { tenant: 'acme', name: 'net', kind: 'overlay', subnets: ['10.0.0.0/24', 'fd00::/64'] });
    });
    after(() => api?.close());

    const cases: [string, string, unknown, string, RegExp][] = [
      [
        'invalid CIDR',
        '/v1/networks',
        { tenant: 'acme', name: 'a', kind: 'overlay', subnets: ['10.0.0.0/33'] },
        'subnets[0]',
        /invalid subnets\[0\] "10.0.0.0\/33": prefix length must be 0..32/,
      ],
      ['host bits set', '/v1/networks', { tenant: 'acme', name: 'a', kind: 'overlay', subnets: ['10.0.0.5/24'] }, 'subnets[0]', /did you mean 10.0.0.0\/24/],
      [
        'overlapping subnets in one network',
        '/v1/networks',
        { tenant: 'acme', name: 'a', kind: 'overlay', subnets: ['10.1.0.0/16', '10.1.2.0/24'] },
        'subnets[1]',
        /overlaps subnets\[0\] 10.1.0.0\/16/,
      ],
      [
        'VNI out of range',
        '/v1/networks',
        { tenant: 'acme', name: 'a', kind: 'overlay', subnets: ['10.2.0.0/24'], vni: 16777216 },
        'vni',
        /invalid vni 16777216: must be an integer 1..16777215/,
      ],
      ['VNI on a routed network', '/v1/networks', { tenant: 'acme', name: 'a', kind: 'routed', site: 'ams1', vni: 5 }, 'vni', /routed networks have no VNI/],
      [
        'MTU out of range',
        '/v1/networks',
        { tenant: 'acme', name: 'a', kind: 'overlay', subnets: ['10.2.0.0/24'], mtu: 100 },
        'mtu',
        /invalid mtu 100: must be an integer 1280..9000/,
      ],
      ['bad name', '/v1/tenants', { name: 'Not OK!' }, 'name', /invalid name "Not OK!"/],
      ['unknown site', '/v1/hosts', { name: 'hv9', site: 'nowhere', capacity: { cpus: 1, memoryMb: 1, diskGb: 1 } }, '', /site "nowhere" not found/],
      ['unknown field', '/v1/sites', { name: 'x', ipv4Pool: '203.0.113.0/24' }, 'body.ipv4Pool', /unknown field body.ipv4Pool/],
      [
        'wrong type',
        '/v1/networks',
        { tenant: 'acme', name: 'a', kind: 'overlay', subnets: ['10.2.0.0/24'], vni: '12' },
        'body.vni',
        /invalid body.vni "12": must be integer/,
      ],
      ['enum', '/v1/networks', { tenant: 'acme', name: 'a', kind: 'bridged' }, 'body.kind', /must be one of overlay, routed/],
      ['bad ASN', '/v1/peers', { host: 'hv1', neighbor: '198.51.100.1', remoteAsn: 23456 }, 'remoteAsn', /reserved ASN/],
      ['multicast neighbour', '/v1/peers', { host: 'hv1', neighbor: '224.0.0.5', remoteAsn: 65000 }, 'neighbor', /must be a unicast address/],
      [
        'both families over an IPv4 session',
        '/v1/peers',
        { host: 'hv1', neighbor: '198.51.100.1', remoteAsn: 65000, multiprotocol: true },
        'multiprotocol',
        /needs an IPv6 neighbor .*neighbor is 198.51.100.1/,
      ],
      ['link-local neighbour', '/v1/peers', { host: 'hv1', neighbor: 'fe80::1', remoteAsn: 65000 }, 'neighbor', /must not be link-local/],
      ['iBGP to its own ASN', '/v1/peers', { host: 'hv1', neighbor: '198.51.100.1', remoteAsn: 65001 }, 'remoteAsn', /must differ from host hv1's own asn/],
      [
        'unknown max-prefix action',
        '/v1/peers',
        { host: 'hv1', neighbor: '198.51.100.1', remoteAsn: 65000, maxPrefixAction: 'drop' },
        'body.maxPrefixAction',
        /must be one of disable, restart, block, warn/,
      ],
      ['pool overlap across sites', '/v1/sites', { name: 'fra1', ipv4Pools: ['203.0.113.128/25'] }, 'ipv4Pools', /overlaps 203.0.113.0\/24 of site ams1/],
    ];
    for (const [what, path, body, field, message] of cases) {
      test(`${what} is rejected with the field and value named`, async () => {
        const before = await footprint(api);
        const e = await expectError(
          () => api.admin.post(path, body),
          what.startsWith('unknown site') ? 'E_NOT_FOUND' : what.includes('across sites') ? 'E_CONFLICT' : 'E_INVALID_ARG',
          message,
        );
        if (field) assert.equal(e.field, field);
        assert.deepEqual(await footprint(api), before, 'nothing written');
      });
    }

    test('one session per neighbour on a host, counting its rack; rack peers and host ASNs stay eBGP', async () => {
      await api.admin.post('/v1/racks', { site: 'ams1', name: 'rk' });
      await api.admin.patch('/v1/hosts/hv1', { rack: 'rk' });
      const p = await api.admin.post<{ id: string }>('/v1/peers', { host: 'hv1', neighbor: '198.51.100.9', remoteAsn: 65000 });
      const before = await footprint(api);
      const e = await expectError(
        () => api.admin.post('/v1/peers', { rack: 'rk', neighbor: '198.51.100.9', remoteAsn: 65000 }),
        'E_CONFLICT',
        /neighbor 198\.51\.100\.9 already has a session on the same host\(s\): peer .* of host hv1/,
      );
      assert.equal(e.field, 'neighbor');
      await expectError(
        () => api.admin.post('/v1/peers', { rack: 'rk', neighbor: '198.51.100.10', remoteAsn: 65001 }),
        'E_INVALID_ARG',
        /must differ from the asn of host hv1 in the rack/,
      );
      await expectError(() => api.admin.patch('/v1/hosts/hv1', { asn: 65000 }), 'E_INVALID_ARG', /invalid asn 65000: is the remote ASN of peer/);
      assert.deepEqual(await footprint(api), before, 'nothing written');
      await api.admin.delete(`/v1/peers/${p.id}`);
      await api.admin.patch('/v1/hosts/hv1', { rack: null });
      await api.admin.delete('/v1/racks/rk').catch(() => undefined);
    });

    test('BGP peers need a host with an ASN; VIP backends must be routed ports', async () => {
      await api.admin.post('/v1/hosts', { name: 'noasn', site: 'ams1', capacity: { cpus: 1, memoryMb: 1024, diskGb: 10 } });
      const vm = await api.admin.post<{ ports: { id: string }[] }>('/v1/instances', {
        tenant: 'acme',
        name: 'ovl',
        site: 'ams1',
        host: 'hv1',
        ports: [{ network: 'net' }],
      });
      const before = await footprint(api);
      const e = await expectError(
        () => api.admin.post('/v1/peers', { host: 'noasn', neighbor: '198.51.100.1', remoteAsn: 65000 }),
        'E_INVALID_ARG',
        /invalid host "noasn": has no asn/,
      );
      assert.equal(e.field, 'host');
      const b = await expectError(
        () =>
          api.admin.post('/v1/vips', {
            tenant: 'acme',
            name: 'lb',
            address: '203.0.113.77',
            backends: [vm.ports[0]?.id],
            healthCheck: { type: 'tcp', port: 80 },
          }),
        'E_INVALID_ARG',
        /backends\[0\].*must be a port on a routed network/,
      );
      assert.equal(b.field, 'backends[0]');
      assert.deepEqual(await footprint(api), before, 'nothing written');
      await api.admin.delete('/v1/instances/ovl');
      await api.admin.delete('/v1/hosts/noasn');
    });

    test('an IP outside its subnet fails the whole instance: no instance, port, allocation or change', async () => {
      const before = await footprint(api);
      const e = await expectError(
        () => api.admin.post('/v1/instances', { tenant: 'acme', name: 'vm', site: 'ams1', ports: [{ network: 'net' }, { network: 'net', ipv4: '10.9.9.9' }] }),
        'E_INVALID_ARG',
        /invalid ports\[1\].ipv4 "10.9.9.9": must be a usable address in the network's IPv4 subnets \(10.0.0.0\/24\)/,
      );
      assert.equal(e.field, 'ports[1].ipv4');
      assert.deepEqual(await footprint(api), before);
    });

    test('the network and broadcast addresses are not usable', async () => {
      await expectError(
        () => api.admin.post('/v1/instances', { tenant: 'acme', name: 'vm', site: 'ams1', ports: [{ network: 'net', ipv4: '10.0.0.255' }] }),
        'E_INVALID_ARG',
        /usable/,
      );
      await expectError(
        () => api.admin.post('/v1/instances', { tenant: 'acme', name: 'vm', site: 'ams1', ports: [{ network: 'net', ipv4: '10.0.0.0' }] }),
        'E_INVALID_ARG',
        /usable/,
      );
    });

    test('a host without capacity: E_CAPACITY naming the request, nothing written', async () => {
      const before = await footprint(api);
      await expectError(
        () => api.admin.post('/v1/instances', { tenant: 'acme', name: 'big', site: 'ams1', cpus: 5, ports: [{ network: 'net' }] }),
        'E_CAPACITY',
        /no active host in site ams1 has room for 5 cpus/,
      );
      assert.deepEqual(await footprint(api), before);
    });

    test('duplicates of explicit values are conflicts naming the value', async () => {
      const vm = await api.admin.post<{ ports: { mac: string; ipv4: string }[] }>('/v1/instances', {
        tenant: 'acme',
        name: 'vm1',
        site: 'ams1',
        ports: [{ network: 'net' }],
      });
      const port = vm.ports[0] as { mac: string; ipv4: string };
      const before = await footprint(api);
      await expectError(
        () => api.admin.post('/v1/instances', { tenant: 'acme', name: 'vm2', site: 'ams1', ports: [{ network: 'net', mac: port.mac }] }),
        'E_CONFLICT',
        new RegExp(`ports\\[0\\].mac ${port.mac} is already in use`),
      );
      await expectError(
        () => api.admin.post('/v1/instances', { tenant: 'acme', name: 'vm2', site: 'ams1', ports: [{ network: 'net', ipv4: port.ipv4 }] }),
        'E_CONFLICT',
        new RegExp(`ports\\[0\\].ipv4 ${port.ipv4.replace(/\./g, '\\.')} is already in use`),
      );
      await expectError(() => api.admin.post('/v1/instances', { tenant: 'acme', name: 'vm1', site: 'ams1' }), 'E_CONFLICT', /instance "vm1" already exists/);
      const net = (await api.admin.get<{ items: { vni: number }[] }>('/v1/networks?name=net')).items[0];
      await expectError(
        () => api.admin.post('/v1/networks', { tenant: 'globex', name: 'n', kind: 'overlay', subnets: ['10.0.0.0/24'], vni: net?.vni }),
        'E_CONFLICT',
        /vni \d+ is already in use/,
      );
      assert.deepEqual(await footprint(api), before);
      await api.admin.delete('/v1/instances/vm1');
    });

    test('deleting what is still in use is a conflict that says what uses it', async () => {
      await expectError(() => api.admin.delete('/v1/sites/ams1'), 'E_CONFLICT', /site ams1 still has 1 hosts/);
      await expectError(() => api.admin.delete('/v1/tenants/acme'), 'E_CONFLICT', /tenant acme still has/);
    });

    test('malformed JSON and unknown routes get the error shape too', async () => {
      const r = await fetch(`${api.url}/v1/tenants`, {
        method: 'POST',
        headers: { authorization: 'Bearer test-admin-secret-0123456789', 'content-type': 'application/json' },
        body: '{"name": ',
      });
      assert.equal(r.status, 400);
      const body = (await r.json()) as { code: string; message: string };
      assert.equal(body.code, 'E_INVALID_ARG');
      const nf = await fetch(`${api.url}/v1/nothing`, { headers: { authorization: 'Bearer x' } });
      assert.equal(nf.status, 404);
      assert.equal(((await nf.json()) as { code: string }).code, 'E_NOT_FOUND');
    });

    test('addresses have one owner: VIPs claim in the site pool; outside every pool is for operators only', async () => {
      const acme = (await api.admin.post<{ secret: string }>('/v1/tokens', { name: 'acme-vip', role: 'tenant', tenant: 'acme' })).secret;
      const t = api.as(acme);
      await expectError(
        () => t.post('/v1/vips', { name: 'dns', address: '8.8.8.8', healthCheck: { type: 'tcp', port: 53 } }),
        'E_FORBIDDEN',
        /outside every site's pools/,
      );
      await expectError(
        () => t.post('/v1/vips', { name: 'u', address: '192.0.2.10', healthCheck: { type: 'tcp', port: 53 } }),
        'E_INVALID_ARG',
        /underlayPool/,
      );
      // Inside ams1's public pool without naming the site: claimed there, so no port gets it too.
      const vip = await t.post<{ address: string }>('/v1/vips', { name: 'w', address: '203.0.113.1', healthCheck: { type: 'tcp', port: 80 } });
      await api.admin.post('/v1/networks', { tenant: 'acme', name: 'pub', kind: 'routed', site: 'ams1' });
      const vm = await api.admin.post<{ ports: { ipv4: string }[] }>('/v1/instances', {
        tenant: 'acme',
        name: 'pubvm',
        site: 'ams1',
        size: 'nano',
        ports: [{ network: 'pub' }],
      });
      assert.notEqual(vm.ports[0]?.ipv4, vip.address);
      const anycast = await api.admin.post<{ address: string }>('/v1/vips', {
        tenant: 'acme',
        name: 'any',
        address: '198.51.100.53',
        healthCheck: { type: 'tcp', port: 53 },
      });
      assert.equal(anycast.address, '198.51.100.53', 'operators may use their own anycast range');
      await api.admin.delete('/v1/instances/pubvm');
    });

    test('pools never overlap across kinds; explicit underlay IPs stay in the underlay pool', async () => {
      await expectError(
        () => api.admin.post('/v1/sites', { name: 'lon1', underlayPool: '198.18.0.0/24', ipv4Pools: ['198.18.0.128/25'] }),
        'E_INVALID_ARG',
        /overlaps this site's underlayPool/,
      );
      await expectError(
        () => api.admin.post('/v1/sites', { name: 'lon1', underlayPool: '203.0.113.0/26' }),
        'E_CONFLICT',
        /overlaps 203.0.113.0\/24 of site ams1/,
      );
      const cap = { cpus: 1, memoryMb: 1, diskGb: 1 };
      await expectError(
        () => api.admin.post('/v1/hosts', { name: 'h', site: 'ams1', underlayIp: '198.18.5.5', capacity: cap }),
        'E_INVALID_ARG',
        /must be inside site ams1's underlayPool 192.0.2.0\/24/,
      );
      await expectError(() => api.admin.patch('/v1/hosts/hv1', { underlayIp: '203.0.113.9' }), 'E_INVALID_ARG', /underlayPool|public pool/);
    });

    test('routed IPv6 needs a site block; tenants choose neither VNIs nor globally assigned MACs', async () => {
      await api.admin.post('/v1/sites', { name: 'nov6', ipv4Pools: ['198.19.0.0/24'] });
      await api.admin.post('/v1/hosts', { name: 'nov6-hv', site: 'nov6', underlayIp: '198.19.255.1', capacity: { cpus: 4, memoryMb: 8192, diskGb: 100 } });
      await api.admin.post('/v1/networks', { tenant: 'acme', name: 'pub6', kind: 'routed', site: 'nov6' });
      await expectError(
        () =>
          api.admin.post('/v1/instances', {
            tenant: 'acme',
            name: 'v6',
            site: 'nov6',
            size: 'nano',
            ports: [{ network: 'pub6', ipv6: '2001:4860:4860::8888' }],
          }),
        'E_INVALID_ARG',
        /usable address in site nov6's ipv6Block \(none\)/,
      );
      const acme = (await api.admin.post<{ secret: string }>('/v1/tokens', { name: 'acme-net', role: 'tenant', tenant: 'acme' })).secret;
      const t = api.as(acme);
      await expectError(
        () => t.post('/v1/networks', { name: 'mine', kind: 'overlay', subnets: ['10.3.0.0/24'], vni: 100 }),
        'E_FORBIDDEN',
        /only operators choose VNIs/,
      );
      await expectError(
        () => t.post('/v1/instances', { name: 'vrrp', site: 'ams1', size: 'nano', ports: [{ network: 'net', mac: '00:00:5e:00:01:01' }] }),
        'E_INVALID_ARG',
        /must be locally administered/,
      );
      const ok = await t.post<{ ports: { mac: string }[] }>('/v1/instances', {
        name: 'lamac',
        site: 'ams1',
        size: 'nano',
        ports: [{ network: 'net', mac: '06:00:00:00:00:01' }],
      });
      assert.equal(ok.ports[0]?.mac, '06:00:00:00:00:01');
      await api.admin.delete('/v1/instances/lamac');
    });

    test('renaming an instance by name answers with the renamed instance', async () => {
      await api.admin.post('/v1/instances', { tenant: 'acme', name: 'old-name', site: 'ams1', size: 'nano' });
      const r = await api.admin.patch<{ name: string; ports: unknown[] }>('/v1/instances/old-name', { name: 'new-name' });
      assert.equal(r.name, 'new-name');
      assert.deepEqual(r.ports, []);
      await api.admin.delete('/v1/instances/new-name');
    });

    test('inherited property names and control characters are bad input, not 500s', async () => {
      await expectError(() => api.admin.get('/v1/sites?constructor=x'), 'E_INVALID_ARG', /is not a filter of sites/);
      await expectError(() => api.admin.get('/v1/instances?hasOwnProperty=1'), 'E_INVALID_ARG', /is not a filter/);
      await expectError(
        () => api.admin.post('/v1/instances', { tenant: 'acme', name: 'x', site: 'ams1', size: 'constructor' }),
        'E_INVALID_ARG',
        /invalid size "constructor": must be one of nano/,
      );
      await expectError(() => api.admin.get('/v1/sites/a%00b'), 'E_INVALID_ARG', /must not contain control characters/);
      await expectError(() => api.admin.get('/v1/sites?name=%00'), 'E_INVALID_ARG', /must not contain control characters/);
      await expectError(
        () => api.admin.post('/v1/peers', { host: 'hv1', neighbor: '198.51.100.1', remoteAsn: 65000, description: 'a\u0000b' }),
        'E_INVALID_ARG',
        /control characters/,
      );
    });

    test('an update that changes nothing writes no change-log entry', async () => {
      const before = await api.store.headVersion();
      await api.admin.patch('/v1/hosts/hv1', { state: 'active' });
      await api.admin.patch('/v1/hosts/hv1', { capacity: { cpus: 4, memoryMb: 262144, diskGb: 4000 } });
      assert.equal(await api.store.headVersion(), before);
      await api.admin.patch('/v1/hosts/hv1', { state: 'draining' });
      assert.equal(await api.store.headVersion(), before + 1);
      await api.admin.patch('/v1/hosts/hv1', { state: 'active' });
    });

    test('an unknown list filter names the filters there are', async () => {
      await expectError(
        () => api.admin.get('/v1/hosts?colour=red'),
        'E_INVALID_ARG',
        /colour "red": is not a filter of hosts; filters are site, rack, state, name/,
      );
    });
  });
}
