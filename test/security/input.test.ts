// Input a hostile tenant (or a careless operator) sends to a real server to
// hurt others: special-purpose subnets and addresses the agents' guards
// cannot render, junk after a CIDR and zone ids, names that read as ids, VIP
// addresses no port could have. Each is refused with E_INVALID_ARG naming
// the field and the value, and leaves nothing behind; and a migrate without
// a body works as documented.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newId } from '../../src/model/ids.js';
import { ADMIN_SECRET, expectError, smallCloud, startTestApi, type TestApi } from '../support/api.js';
import { DIALECTS } from '../support/stores.js';

/** Everything a refused request could have left behind. */
async function footprint(api: TestApi) {
  return api.store.read(async (tx) => ({
    head: await tx.headVersion(),
    allocations: (await tx.allocationCount()).reduce((a, p) => a + p.n, 0),
    sites: await tx.count('sites'),
    racks: await tx.count('racks'),
    hosts: await tx.count('hosts'),
    tenants: await tx.count('tenants'),
    networks: await tx.count('networks'),
    instances: await tx.count('instances'),
    ports: JSON.stringify((await tx.all('ports', {})).map((p) => [p.id, p.ipv4, p.ipv6]).sort()),
    vips: await tx.count('vips'),
    tokens: await tx.count('tokens'),
    peers: await tx.count('peers'),
  }));
}

type Who = 'admin' | 'tenant';
const HC = { type: 'tcp', port: 80 };
/** [what, who, method, path, body, field, value]: the value must appear in the message as JSON. */
type Case = [string, Who, 'POST' | 'PATCH', string, unknown, string, string];

for (const dialect of DIALECTS) {
  describe(`security, input: ${dialect}`, () => {
    let api: TestApi;
    let acme: string;
    let portId: string;
    let instId: string;
    before(async () => {
      api = await startTestApi(dialect);
      await smallCloud(api, { hosts: 2, cpus: 8 });
      await api.admin.post('/v1/sites', { name: 'fra1', underlayPool: '192.0.3.0/24', ipv4Pools: ['198.51.100.0/24'], ipv6Block: '2001:db8:200::/48' });
      acme = (await api.admin.post<{ secret: string }>('/v1/tokens', { name: 'acme-ci', role: 'tenant', tenant: 'acme' })).secret;
      const t = api.as(acme);
      await t.post('/v1/networks', { name: 'net', kind: 'overlay', subnets: ['10.0.0.0/24', 'fd00::/64'] });
      await t.post('/v1/networks', { name: 'pub', kind: 'routed', site: 'ams1' });
      const inst = await t.post<{ id: string; ports: { id: string }[] }>('/v1/instances', { name: 'vm1', site: 'ams1', cpus: 1, ports: [{ network: 'net' }] });
      instId = inst.id;
      portId = inst.ports[0]!.id;
    });
    after(() => api?.close());

    const attack = async (c: Case) => {
      const [what, who, method, path, body, field, value] = c;
      const client = who === 'admin' ? api.admin : api.as(acme);
      const before = await footprint(api);
      const err = await expectError(() => client.call(method, path, body), 'E_INVALID_ARG');
      assert.equal(err.field, field, `${what}: field in ${err.message}`);
      assert.ok(err.message.startsWith(`invalid ${field} ${JSON.stringify(value)}: `), `${what}: message names field and value: ${err.message}`);
      assert.deepEqual(await footprint(api), before, `${what}: nothing written`);
      return err;
    };

    // Item 1: subnets and addresses the agent's guard renderer refuses (and
    // other special-purpose ranges) never get into the store.
    const subnet = (v: string): Case => [
      `overlay subnet ${v}`,
      'tenant',
      'POST',
      '/v1/networks',
      { name: 'evil', kind: 'overlay', subnets: ['10.7.0.0/24', v] },
      'subnets[1]',
      v,
    ];
    const special: Case[] = [
      subnet('224.1.0.0/24'),
      subnet('127.0.0.0/8'),
      subnet('fe80::/64'),
      subnet('::/0'),
      subnet('::/127'),
      subnet('0.0.0.0/8'),
      subnet('0.0.0.0/32'),
      subnet('240.0.0.0/8'),
      subnet('255.255.255.255/32'),
      subnet('169.254.0.0/16'),
      subnet('ff05::/64'),
      subnet('::1/128'),
      subnet('::ffff:0:0/96'),
      subnet('10.0.0.0/7'),
      subnet('2000::/15'),
      ['port ipv4 loopback', 'tenant', 'POST', '/v1/ports', { instance: 'vm1', network: 'net', ipv4: '127.0.0.1' }, 'port.ipv4', '127.0.0.1'],
      ['port ipv4 unspecified', 'tenant', 'POST', '/v1/ports', { instance: 'vm1', network: 'net', ipv4: '0.0.0.0' }, 'port.ipv4', '0.0.0.0'],
      ['port ipv4 multicast', 'tenant', 'POST', '/v1/ports', { instance: 'vm1', network: 'net', ipv4: '224.1.0.5' }, 'port.ipv4', '224.1.0.5'],
      ['port ipv6 unspecified', 'tenant', 'POST', '/v1/ports', { instance: 'vm1', network: 'net', ipv6: '::' }, 'port.ipv6', '::'],
      ['port ipv6 loopback', 'tenant', 'POST', '/v1/ports', { instance: 'vm1', network: 'net', ipv6: '::1' }, 'port.ipv6', '::1'],
      ['port ipv6 link-local', 'tenant', 'POST', '/v1/ports', { instance: 'vm1', network: 'net', ipv6: 'fe80::1' }, 'port.ipv6', 'fe80::1'],
      ['port ipv6 multicast', 'tenant', 'POST', '/v1/ports', { instance: 'vm1', network: 'net', ipv6: 'ff02::1' }, 'port.ipv6', 'ff02::1'],
      ['port ipv6 IPv4-mapped', 'tenant', 'POST', '/v1/ports', { instance: 'vm1', network: 'net', ipv6: '::ffff:10.0.0.9' }, 'port.ipv6', '::ffff:10.0.0.9'],
      [
        'instance port multicast',
        'tenant',
        'POST',
        '/v1/instances',
        { name: 'vm2', site: 'ams1', cpus: 1, ports: [{ network: 'net', ipv4: '239.1.1.1' }] },
        'ports[0].ipv4',
        '239.1.1.1',
      ],
      ['admin is held to it too: port ipv6 ::', 'admin', 'POST', '/v1/ports', { instance: 'vm1', network: 'net', ipv6: '::' }, 'port.ipv6', '::'],
      ['VIP loopback (operator)', 'admin', 'POST', '/v1/vips', { healthCheck: HC, tenant: 'acme', name: 'v', address: '127.0.0.1' }, 'address', '127.0.0.1'],
      ['VIP multicast (operator)', 'admin', 'POST', '/v1/vips', { healthCheck: HC, tenant: 'acme', name: 'v', address: '224.0.0.5' }, 'address', '224.0.0.5'],
      [
        'VIP broadcast (operator)',
        'admin',
        'POST',
        '/v1/vips',
        { healthCheck: HC, tenant: 'acme', name: 'v', address: '255.255.255.255' },
        'address',
        '255.255.255.255',
      ],
      ['VIP unspecified IPv6', 'tenant', 'POST', '/v1/vips', { healthCheck: HC, name: 'v', address: '::' }, 'address', '::'],
      ['VIP link-local', 'tenant', 'POST', '/v1/vips', { healthCheck: HC, name: 'v', site: 'ams1', address: 'fe80::1' }, 'address', 'fe80::1'],
      ['site ipv4Pools multicast', 'admin', 'POST', '/v1/sites', { name: 'bad', ipv4Pools: ['224.1.0.0/24'] }, 'ipv4Pools[0]', '224.1.0.0/24'],
      ['site ipv4Pools loopback', 'admin', 'POST', '/v1/sites', { name: 'bad', ipv4Pools: ['100.64.0.0/24', '127.0.0.0/8'] }, 'ipv4Pools[1]', '127.0.0.0/8'],
      ['site ipv4Pools everything', 'admin', 'POST', '/v1/sites', { name: 'bad', ipv4Pools: ['0.0.0.0/0'] }, 'ipv4Pools[0]', '0.0.0.0/0'],
      ['site ipv6Block everything', 'admin', 'POST', '/v1/sites', { name: 'bad', ipv6Block: '::/0' }, 'ipv6Block', '::/0'],
      ['site ipv6Block link-local', 'admin', 'POST', '/v1/sites', { name: 'bad', ipv6Block: 'fe80::/48' }, 'ipv6Block', 'fe80::/48'],
      ['site ipv6Block multicast', 'admin', 'POST', '/v1/sites', { name: 'bad', ipv6Block: 'ff00::/16' }, 'ipv6Block', 'ff00::/16'],
    ];
    for (const c of special) {
      test(`special-purpose: ${c[0]} is refused`, async () => {
        const err = await attack(c);
        assert.match(err.message, /special-purpose|too short/);
      });
    }

    test('special-purpose: changing a port to a special address is refused and the port is unchanged', async () => {
      for (const [field, value] of [
        ['ipv4', '127.0.0.1'],
        ['ipv4', '224.0.0.1'],
        ['ipv6', '::1'],
        ['ipv6', 'fe80::5'],
      ] as const) {
        const err = await attack([`patch ${field}`, 'tenant', 'PATCH', `/v1/ports/${portId}`, { [field]: value }, field, value]);
        assert.match(err.message, /must be a unicast address, not /);
      }
    });

    // Item 2: junk after a CIDR and zone ids are refused, not trimmed.
    const junk: Case[] = [
      ['CIDR with junk', 'tenant', 'POST', '/v1/networks', { name: 'j', kind: 'overlay', subnets: ['10.5.0.0/24/junk'] }, 'subnets[0]', '10.5.0.0/24/junk'],
      ['CIDR with a second prefix', 'tenant', 'POST', '/v1/networks', { name: 'j', kind: 'overlay', subnets: ['fd05::/64/32'] }, 'subnets[0]', 'fd05::/64/32'],
      ['CIDR with a zone id', 'tenant', 'POST', '/v1/networks', { name: 'j', kind: 'overlay', subnets: ['fd05::%eth0/64'] }, 'subnets[0]', 'fd05::%eth0/64'],
      ['pool with junk', 'admin', 'POST', '/v1/sites', { name: 'j', ipv4Pools: ['100.64.0.0/24/x'] }, 'ipv4Pools[0]', '100.64.0.0/24/x'],
      ['underlay pool with junk', 'admin', 'POST', '/v1/sites', { name: 'j', underlayPool: '192.0.9.0/24/0' }, 'underlayPool', '192.0.9.0/24/0'],
      ['port address with a zone id', 'tenant', 'POST', '/v1/ports', { instance: 'vm1', network: 'net', ipv6: 'fd00::5%eth0' }, 'port.ipv6', 'fd00::5%eth0'],
      [
        'VIP with a zone id',
        'tenant',
        'POST',
        '/v1/vips',
        { healthCheck: HC, name: 'v', site: 'ams1', address: '203.0.113.9%eth0' },
        'address',
        '203.0.113.9%eth0',
      ],
      [
        'host underlay with a zone id',
        'admin',
        'POST',
        '/v1/hosts',
        { name: 'hv9', site: 'ams1', rack: 'r1', asn: 65009, underlayIp: '192.0.2.50%ul0', capacity: { cpus: 1, memoryMb: 1024, diskGb: 1 } },
        'underlayIp',
        '192.0.2.50%ul0',
      ],
      [
        'peer neighbour with a zone id',
        'admin',
        'POST',
        '/v1/peers',
        { host: 'hv1', neighbor: '2001:db8:ffff::1%ul0', remoteAsn: 65100 },
        'neighbor',
        '2001:db8:ffff::1%ul0',
      ],
    ];
    for (const c of junk)
      test(`parsing: ${c[0]} is refused`, async () => {
        const err = await attack(c);
        assert.match(err.message, /without a zone id|one address and one prefix length/);
      });

    // Item 3: a name that parses as an id would shadow (or be shadowed by)
    // the object with that id wherever a reference takes "id or name".
    test('names that parse as ids are refused for every named entity', async () => {
      const id = newId();
      const cases: Case[] = [
        ['site', 'admin', 'POST', '/v1/sites', { name: id }, 'name', id],
        ['rack', 'admin', 'POST', '/v1/racks', { site: 'ams1', name: id }, 'name', id],
        [
          'host',
          'admin',
          'POST',
          '/v1/hosts',
          { name: id, site: 'ams1', rack: 'r1', asn: 65009, capacity: { cpus: 1, memoryMb: 1024, diskGb: 1 } },
          'name',
          id,
        ],
        ['tenant', 'admin', 'POST', '/v1/tenants', { name: id }, 'name', id],
        ['network', 'tenant', 'POST', '/v1/networks', { name: id, kind: 'overlay', subnets: ['10.8.0.0/24'] }, 'name', id],
        ['network rename', 'tenant', 'PATCH', '/v1/networks/net', { name: id }, 'name', id],
        ['instance', 'tenant', 'POST', '/v1/instances', { name: id, site: 'ams1', cpus: 1 }, 'name', id],
        ['instance rename', 'tenant', 'PATCH', `/v1/instances/${instId}`, { name: id }, 'name', id],
        ['vip', 'tenant', 'POST', '/v1/vips', { healthCheck: HC, name: id, site: 'ams1' }, 'name', id],
        ['token', 'admin', 'POST', '/v1/tokens', { name: id, role: 'readonly' }, 'name', id],
      ];
      // An existing object's own id as the new name: the shadowing attack.
      cases.push(['rename to another object id', 'tenant', 'PATCH', '/v1/networks/net', { name: instId }, 'name', instId]);
      for (const c of cases) {
        const err = await attack(c);
        assert.match(err.message, /must not look like an id/, c[0]);
      }
    });

    // Item 4: a VIP address gets the checks a port's gets.
    const vip: Case[] = [
      [
        'VIP on a pool network address',
        'tenant',
        'POST',
        '/v1/vips',
        { healthCheck: HC, name: 'v', site: 'ams1', address: '203.0.113.0' },
        'address',
        '203.0.113.0',
      ],
      [
        'VIP on a pool broadcast address',
        'tenant',
        'POST',
        '/v1/vips',
        { healthCheck: HC, name: 'v', site: 'ams1', address: '203.0.113.255' },
        'address',
        '203.0.113.255',
      ],
      [
        'VIP on a pool broadcast address (no site)',
        'admin',
        'POST',
        '/v1/vips',
        { healthCheck: HC, tenant: 'acme', name: 'v', address: '198.51.100.255' },
        'address',
        '198.51.100.255',
      ],
      [
        'VIP on a subnet-router anycast address',
        'tenant',
        'POST',
        '/v1/vips',
        { healthCheck: HC, name: 'v', site: 'ams1', address: '2001:db8:100:7::' },
        'address',
        '2001:db8:100:7::',
      ],
      [
        'VIP on the block anycast address',
        'tenant',
        'POST',
        '/v1/vips',
        { healthCheck: HC, name: 'v', address: '2001:db8:100::' },
        'address',
        '2001:db8:100::',
      ],
      [
        "VIP IPv6 from another site's block",
        'tenant',
        'POST',
        '/v1/vips',
        { healthCheck: HC, name: 'v', site: 'ams1', address: '2001:db8:200::5' },
        'address',
        '2001:db8:200::5',
      ],
      [
        "VIP IPv6 from another site's block (operator)",
        'admin',
        'POST',
        '/v1/vips',
        { healthCheck: HC, tenant: 'acme', name: 'v', site: 'fra1', address: '2001:db8:100::5' },
        'address',
        '2001:db8:100::5',
      ],
    ];
    for (const c of vip) test(`VIP: ${c[0]} is refused`, () => attack(c).then(() => undefined));

    test('VIP: a usable address of its own site is still accepted', async () => {
      const t = api.as(acme);
      const a = await t.post<{ id: string; address: string }>('/v1/vips', { healthCheck: HC, name: 'ok4', site: 'ams1', address: '203.0.113.77' });
      const b = await t.post<{ id: string; address: string }>('/v1/vips', { healthCheck: HC, name: 'ok6', site: 'ams1', address: '2001:db8:100:7::1' });
      assert.equal(a.address, '203.0.113.77');
      assert.equal(b.address, '2001:db8:100:7::1');
      await t.delete(`/v1/vips/${a.id}`);
      await t.delete(`/v1/vips/${b.id}`);
    });

    // Item 5: POST /v1/instances/{id}/migrate without a body lets placement pick.
    test('migrate: without a body, with an empty JSON body and with an empty text body it moves the instance', async () => {
      const raw = (headers: Record<string, string>, body?: string) =>
        fetch(`${api.url}/v1/instances/${instId}/migrate`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_SECRET}`, ...headers }, body });
      for (const [what, headers, body] of [
        ['no body', {}, undefined],
        ['Content-Type: application/json and no body', { 'content-type': 'application/json' }, undefined],
        ['Content-Type: application/json and an empty body', { 'content-type': 'application/json' }, ''],
        ['Content-Type: text/plain and an empty body', { 'content-type': 'text/plain' }, ''],
      ] as const) {
        const from = (await api.admin.get<{ hostId: string }>(`/v1/instances/${instId}`)).hostId;
        const res = await raw(headers, body);
        const text = await res.text();
        assert.equal(res.status, 200, `${what}: ${text}`);
        const moved = JSON.parse(text) as { id: string; hostId: string };
        assert.equal(moved.id, instId);
        assert.notEqual(moved.hostId, from, `${what}: placement picked another host`);
      }
      // A body is still checked.
      const res = await raw({ 'content-type': 'application/json' }, JSON.stringify({ target: 'hv1', junk: 1 }));
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { code: string }).code, 'E_INVALID_ARG');
    });
  });
}
