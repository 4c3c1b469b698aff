// The SVP shoot-down log against a real server, from an address nobody
// registered: a LOG_REQ naming a host's underlay no longer makes it an SVP
// client nor shows its log, a LOG_RM of its ids removes nothing; only the
// host's underlay and its svpClientAddresses read and trim it (IPv4 on a
// `::` listener arrives as ::ffff:a.b.c.d and counts as the IPv4 address);
// a host that is no SVP client keeps no rows. And the API refuses a bad
// address list, naming the field and the value, writing nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SvpClient } from '../../src/mapping/client.js';
import { ip16 } from '../../src/mapping/codec.js';
import { SvpServer } from '../../src/mapping/server.js';
import type { MappingService } from '../../src/mapping/service.js';
import { STATUS } from '../../src/mapping/wire.js';
import { parseIp } from '../../src/model/addr.js';
import type { Host } from '../../src/model/types.js';
import { expectError, smallCloud, startTestApi, type TestApi } from '../support/api.js';
import { DIALECTS } from '../support/stores.js';

const u16 = (ip: string) => {
  const p = parseIp('ip', ip);
  return ip16(p.family, p.n);
};

for (const dialect of DIALECTS) {
  describe(`security, SVP log bound to its client's address: ${dialect}`, () => {
    let api: TestApi;
    let hosts: Map<string, Host>;
    let svp: SvpClient;
    /** A second SVP listener on `::` over the same index and store, for IPv4-mapped and IPv6 sources. */
    let dual: SvpServer;
    let dualPort: number;
    const open: SvpClient[] = [];
    const client = async (host: string, port: number) => {
      const c = await SvpClient.connect(host, port);
      open.push(c);
      return c;
    };
    const rowsOf = (name: string) => api.store.read(async (tx) => (await tx.shootdownsOf((hosts.get(name) as Host).id, 1000)).map((r) => r.id).sort());
    const hostNamed = (name: string) => api.admin.get<Host>(`/v1/hosts/${name}`);
    let n = 0;
    /** A port created and deleted on hv3's network: a VL3 and a VL2 shoot-down for every SVP client on the VNI. */
    const churn = async () => {
      const name = `churn${n++}`;
      await api.admin.post('/v1/instances', { tenant: 'acme', name, site: 'ams1', host: 'hv3', size: 'nano', ports: [{ network: 'net' }] });
      await api.admin.delete(`/v1/instances/${name}`);
    };

    before(async () => {
      api = await startTestApi(dialect, {}, { mapping: true });
      await smallCloud(api, { hosts: 3 });
      await api.admin.post('/v1/networks', { tenant: 'acme', name: 'net', kind: 'overlay', subnets: ['10.0.0.0/24', 'fd00::/64'] });
      // hv1 and hv2 are SVP clients (their varpd connects from their underlay, which this test cannot be); hv3 is push-mode.
      for (const h of ['hv1', 'hv2']) await api.admin.patch(`/v1/hosts/${h}`, { svpClient: true });
      for (const h of ['hv1', 'hv2', 'hv3'])
        await api.admin.post('/v1/instances', { tenant: 'acme', name: `vm-${h}`, site: 'ams1', host: h, size: 'nano', ports: [{ network: 'net' }] });
      hosts = new Map((await api.admin.all<Host>('/v1/hosts')).map((h) => [h.name, h]));
      for (const h of hosts.values()) assert.notEqual(h.underlayIp, '127.0.0.1');
      await churn();
      svp = await client('127.0.0.1', api.mapping?.svpAddress?.port as number);
      dual = new SvpServer((api.mapping as MappingService).follower.index, api.store);
      dualPort = (await dual.listen('::', 0)).port;
    });
    after(async () => {
      for (const c of open) c.close();
      await dual?.close();
      await api?.close();
    });

    test('an unregistered source naming a host that is no SVP client gets an empty log and marks nothing', async () => {
      const hv3 = hosts.get('hv3') as Host;
      assert.equal(hv3.svpClient, false);
      const r = await svp.log(u16(hv3.underlayIp), 4096);
      assert.equal(r.status, STATUS.OK);
      assert.deepEqual(r.entries, []);
      assert.equal((await hostNamed('hv3')).svpClient, false, 'a LOG_REQ does not make a host an SVP client');
      assert.equal(Number((await api.store.read((tx) => tx.get('hosts', hv3.id)))?.svpClient), 0);
      await churn();
      assert.deepEqual(await rowsOf('hv3'), [], 'no shoot-downs are kept for a host that is no SVP client');
    });

    test("an unregistered source gets an empty log for an SVP client's underlay", async () => {
      const pending = await rowsOf('hv1');
      assert.ok(pending.length >= 2, `hv1 has shoot-downs pending (${pending.length})`);
      const r = await svp.log(u16((hosts.get('hv1') as Host).underlayIp), 4096);
      assert.equal(r.status, STATUS.OK);
      assert.deepEqual(r.entries, []);
      assert.deepEqual(await rowsOf('hv1'), pending);
    });

    test("an unregistered source's LOG_RM of another host's ids removes nothing", async () => {
      const pending = await rowsOf('hv1');
      const ids = pending.map((id) => Buffer.from(id, 'hex'));
      assert.equal(await svp.logRemove(ids), STATUS.OK);
      assert.deepEqual(await rowsOf('hv1'), pending);
    });

    test('a registered address reads the log and trims it, and only the logs it is registered for', async () => {
      await api.admin.patch('/v1/hosts/hv1', { svpClientAddresses: ['127.0.0.1'] });
      assert.deepEqual((await hostNamed('hv1')).svpClientAddresses, ['127.0.0.1']);
      const pending = await rowsOf('hv1');
      // The same connection: the binding is checked per request, from the index.
      const r = await svp.log(u16((hosts.get('hv1') as Host).underlayIp), 4096);
      assert.equal(r.status, STATUS.OK);
      assert.deepEqual(r.entries.map((e) => e.id.toString('hex')).sort(), pending, 'the registered client still gets every entry');
      // Registered for hv1 only: hv2's log stays closed, and hv2's ids stay.
      const hv2 = await rowsOf('hv2');
      assert.ok(hv2.length > 0);
      assert.deepEqual((await svp.log(u16((hosts.get('hv2') as Host).underlayIp), 4096)).entries, []);
      const mixed = [...pending, ...hv2].map((id) => Buffer.from(id, 'hex'));
      assert.equal(await svp.logRemove(mixed), STATUS.OK);
      assert.deepEqual(await rowsOf('hv1'), [], "hv1's entries are trimmed");
      assert.deepEqual(await rowsOf('hv2'), hv2, "hv2's are not");
    });

    test('IPv4 on a dual-stack listener (::ffff:127.0.0.1) is the registered 127.0.0.1; ::1 counts once registered', async () => {
      await churn();
      const pending = await rowsOf('hv1');
      assert.ok(pending.length > 0);
      const mapped = await client('127.0.0.1', dualPort);
      const got = await mapped.log(u16((hosts.get('hv1') as Host).underlayIp), 4096);
      assert.deepEqual(got.entries.map((e) => e.id.toString('hex')).sort(), pending);
      const six = await client('::1', dualPort);
      const hv2 = (hosts.get('hv2') as Host).underlayIp;
      assert.deepEqual((await six.log(u16(hv2), 4096)).entries, [], '::1 is not registered for hv2');
      await api.admin.patch('/v1/hosts/hv2', { svpClientAddresses: ['::1'] });
      const hv2rows = await rowsOf('hv2');
      const r = await six.log(u16(hv2), 8192);
      assert.deepEqual(r.entries.map((e) => e.id.toString('hex')).sort(), hv2rows);
      assert.equal(await six.logRemove(r.entries.map((e) => e.id)), STATUS.OK);
      assert.deepEqual(await rowsOf('hv2'), []);
    });

    test('a host switched from SVP client to not loses its rows, serves nothing and gets no new ones', async () => {
      await churn();
      assert.ok((await rowsOf('hv1')).length > 0);
      await api.admin.patch('/v1/hosts/hv1', { svpClient: false });
      assert.deepEqual(await rowsOf('hv1'), []);
      await churn();
      assert.deepEqual(await rowsOf('hv1'), []);
      assert.deepEqual((await svp.log(u16((hosts.get('hv1') as Host).underlayIp), 4096)).entries, [], 'its registered address now reads nothing');
      const back = await api.admin.patch<Host>('/v1/hosts/hv1', { svpClient: true });
      assert.equal(back.svpClient, true);
      await churn();
      assert.ok((await svp.log(u16(back.underlayIp), 4096)).entries.length > 0, 'made a client again, it gets new shoot-downs');
    });

    test('the API refuses a bad svpClientAddresses list, naming the field and the value, and writes nothing', async () => {
      const cases: [unknown, string, string][] = [
        [['127.0.0.1', '10.0.0.300'], 'svpClientAddresses[1]', '"10.0.0.300"'],
        [['fe80::1%eth0'], 'svpClientAddresses[0]', '"fe80::1%eth0"'],
        [['::ffff:127.0.0.1'], 'svpClientAddresses[0]', '"::ffff:127.0.0.1"'],
        [['10.0.0.0/24'], 'svpClientAddresses[0]', '"10.0.0.0/24"'],
        [['0.0.0.0'], 'svpClientAddresses[0]', '"0.0.0.0"'],
        [['224.0.0.1'], 'svpClientAddresses[0]', '"224.0.0.1"'],
        [['ff02::1'], 'svpClientAddresses[0]', '"ff02::1"'],
        [['10.1.2.3', '10.1.2.3'], 'svpClientAddresses[1]', '"10.1.2.3"'],
        [['2001:db8::1', '2001:DB8:0::1'], 'svpClientAddresses[1]', '"2001:DB8:0::1"'],
      ];
      const before = await hostNamed('hv2');
      const head = await api.store.headVersion();
      for (const [list, field, value] of cases) {
        const e = await expectError(() => api.admin.patch('/v1/hosts/hv2', { svpClientAddresses: list }), 'E_INVALID_ARG');
        assert.equal(e.field, field, JSON.stringify(list));
        assert.ok(e.message.includes(value), `${e.message} names ${value}`);
        const c = await expectError(
          () => api.admin.post('/v1/hosts', { name: 'hv-bad', site: 'ams1', capacity: { cpus: 1, memoryMb: 1024, diskGb: 10 }, svpClientAddresses: list }),
          'E_INVALID_ARG',
        );
        assert.equal(c.field, field);
      }
      const many = Array.from({ length: 17 }, (_, i) => `10.9.0.${i + 1}`);
      const e = await expectError(() => api.admin.patch('/v1/hosts/hv2', { svpClientAddresses: many }), 'E_INVALID_ARG');
      assert.match(`${e.field} ${e.message}`, /svpClientAddresses/);
      await expectError(() => api.admin.patch('/v1/hosts/hv2', { svpClient: 'yes' }), 'E_INVALID_ARG');
      assert.deepEqual(await hostNamed('hv2'), before);
      assert.equal(await api.store.headVersion(), head, 'nothing was logged');
      assert.equal((await api.admin.all<Host>('/v1/hosts')).filter((h) => h.name === 'hv-bad').length, 0);
      // Canonical text is stored, and a host is created with both fields.
      const made = await api.admin.post<Host>('/v1/hosts', {
        name: 'hv-varpd',
        site: 'ams1',
        capacity: { cpus: 1, memoryMb: 1024, diskGb: 10 },
        svpClient: true,
        svpClientAddresses: ['2001:DB8:0:0::7', '198.51.100.7'],
      });
      assert.equal(made.svpClient, true);
      assert.deepEqual(made.svpClientAddresses, ['2001:db8::7', '198.51.100.7']);
      const plain = await api.admin.post<Host>('/v1/hosts', { name: 'hv-plain', site: 'ams1', capacity: { cpus: 1, memoryMb: 1024, diskGb: 10 } });
      assert.equal(plain.svpClient, false);
      assert.deepEqual(plain.svpClientAddresses, []);
    });
  });
}
