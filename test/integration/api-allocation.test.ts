// Allocation and placement through the API on both stores: atomic under
// concurrency, reusable after free, exhaustion as E_CAPACITY, and the
// change-log entries every forwarding change must write.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LoggedChange } from '../../src/model/changes.js';
import type { Host, Instance, Port } from '../../src/model/types.js';
import { expectError, smallCloud, startTestApi, type TestApi } from '../support/api.js';
import { DIALECTS } from '../support/stores.js';

type WithPorts = Instance & { ports: Port[] };

async function changesAfter(api: TestApi, v: number): Promise<LoggedChange[]> {
  return (await api.admin.get<{ items: LoggedChange[] }>(`/v1/changes?after=${v}&limit=1000`)).items;
}
const head = async (api: TestApi) => (await api.admin.get<{ head: number }>('/v1/changes?limit=1')).head;

for (const dialect of DIALECTS) {
  describe(`API allocation and placement: ${dialect}`, () => {
    let api: TestApi;
    before(async () => {
      // 500 clients at once from one address: past the API's per-source cap, which is for real clients.
      api = await startTestApi(dialect, {}, { limits: { max: 4096, perSource: 4096 } });
      await smallCloud(api, { hosts: 3, cpus: 100 });
      await api.admin.post('/v1/networks', { tenant: 'acme', name: 'big', kind: 'overlay', subnets: ['10.0.0.0/22', 'fd00:1::/64'] });
    });
    after(() => api?.close());

    test('500 concurrent creations: no duplicate MAC, IP or VNI, no host over-committed, exhaustion is E_CAPACITY', async () => {
      const v0 = await head(api);
      const results = await Promise.allSettled(
        Array.from({ length: 500 }, (_, i) =>
          api.admin.post<WithPorts>('/v1/instances', { tenant: 'acme', name: `c${i}`, site: 'ams1', cpus: 1, ports: [{ network: 'big' }] }),
        ),
      );
      const ok = results.filter((r): r is PromiseFulfilledResult<WithPorts> => r.status === 'fulfilled').map((r) => r.value);
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as { code: string });
      assert.equal(ok.length, 300, '3 hosts x 100 cpus hold exactly 300 one-cpu instances');
      assert.ok(
        failed.every((e) => e.code === 'E_CAPACITY'),
        `failures are capacity errors: ${[...new Set(failed.map((e) => e.code))]}`,
      );
      const ports = ok.flatMap((i) => i.ports);
      for (const k of ['mac', 'ipv4', 'ipv6'] as const) assert.equal(new Set(ports.map((p) => p[k])).size, 300, `distinct ${k}`);
      const hosts = await api.admin.all<Host>('/v1/hosts');
      const perHost = new Map<string, number>();
      for (const i of ok) perHost.set(i.hostId, (perHost.get(i.hostId) ?? 0) + 1);
      for (const h of hosts) {
        assert.ok((perHost.get(h.id) ?? 0) <= h.capacity.cpus, `${h.name} holds ${perHost.get(h.id)}`);
        assert.equal(h.used.cpus, perHost.get(h.id) ?? 0, `${h.name}'s usage counter matches its instances`);
      }
      const log = await changesAfter(api, v0);
      assert.equal(log.filter((c) => c.kind === 'port.created').length, 300);
      assert.deepEqual(
        log.map((c) => c.version),
        log.map((_, i) => v0 + 1 + i),
        'gap-free',
      );
      // What the store holds agrees with what the API answered.
      const listed = await api.admin.all<Port>('/v1/ports', { network: 'big' });
      assert.equal(listed.length, 300);
      await Promise.all(ok.map((i) => api.admin.delete(`/v1/instances/${i.id}`)));
      assert.equal((await api.admin.all('/v1/ports', { network: 'big' })).length, 0);
      for (const h of await api.admin.all<Host>('/v1/hosts')) assert.deepEqual(h.used, { cpus: 0, memoryMb: 0, diskGb: 0 }, `${h.name} is empty again`);
    });

    test('concurrent network creations get distinct VNIs', async () => {
      const nets = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          api.admin.post<{ vni: number }>('/v1/networks', { tenant: 'globex', name: `n${i}`, kind: 'overlay', subnets: ['10.0.0.0/24'] }),
        ),
      );
      assert.equal(new Set(nets.map((n) => n.vni)).size, 40);
      assert.ok(nets.every((n) => n.vni >= 4096 && n.vni <= 16777215));
    });

    test('a full subnet is E_CAPACITY; a freed address is handed out again', async () => {
      await api.admin.post('/v1/networks', { tenant: 'acme', name: 'tiny', kind: 'overlay', subnets: ['10.5.0.0/29'] });
      const made: WithPorts[] = [];
      for (let i = 0; i < 6; i++)
        made.push(await api.admin.post('/v1/instances', { tenant: 'acme', name: `t${i}`, site: 'ams1', size: 'nano', ports: [{ network: 'tiny' }] }));
      assert.deepEqual(
        made.map((m) => m.ports[0]?.ipv4),
        ['10.5.0.1', '10.5.0.2', '10.5.0.3', '10.5.0.4', '10.5.0.5', '10.5.0.6'],
      );
      await expectError(
        () => api.admin.post('/v1/instances', { tenant: 'acme', name: 't6', site: 'ams1', size: 'nano', ports: [{ network: 'tiny' }] }),
        'E_CAPACITY',
        /ports\[0\].ipv4: no free address left in the network's IPv4 subnets \(10.5.0.0\/29\)/,
      );
      await api.admin.delete('/v1/instances/t3');
      const again = await api.admin.post<WithPorts>('/v1/instances', { tenant: 'acme', name: 't6', site: 'ams1', size: 'nano', ports: [{ network: 'tiny' }] });
      assert.equal(again.ports[0]?.ipv4, '10.5.0.4');
    });

    test('explicit MAC, IPs, VNI and /64 are honoured and checked', async () => {
      const net = await api.admin.post<{ vni: number }>('/v1/networks', {
        tenant: 'acme',
        name: 'imported',
        kind: 'overlay',
        subnets: ['192.168.7.0/24', 'fd00:7::/64'],
        vni: 777,
      });
      assert.equal(net.vni, 777);
      const vm = await api.admin.post<WithPorts>('/v1/instances', {
        tenant: 'acme',
        name: 'imported-vm',
        site: 'ams1',
        ports: [{ network: 'imported', mac: '0E:00:00:AA:BB:CC', ipv4: '192.168.7.50', ipv6: 'fd00:7::50' }],
      });
      assert.deepEqual(
        { mac: vm.ports[0]?.mac, ipv4: vm.ports[0]?.ipv4, ipv6: vm.ports[0]?.ipv6 },
        { mac: '0e:00:00:aa:bb:cc', ipv4: '192.168.7.50', ipv6: 'fd00:7::50' },
      );
      const h = await api.admin.post<Host>('/v1/hosts', {
        name: 'hv-imported',
        site: 'ams1',
        ipv6Prefix: '2001:db8:100:ff::/64',
        underlayIp: '192.0.2.200',
        capacity: { cpus: 1, memoryMb: 1024, diskGb: 10 },
      });
      assert.equal(h.ipv6Prefix, '2001:db8:100:ff::/64');
      await expectError(
        () => api.admin.post('/v1/hosts', { name: 'hv-x', site: 'ams1', ipv6Prefix: '2001:db8:999::/64', capacity: { cpus: 1, memoryMb: 1, diskGb: 1 } }),
        'E_INVALID_ARG',
        /must be inside site ams1's ipv6Block 2001:db8:100::\/48/,
      );
      await expectError(
        () => api.admin.post('/v1/hosts', { name: 'hv-x', site: 'ams1', ipv6Prefix: '2001:db8:100:ff::/64', capacity: { cpus: 1, memoryMb: 1, diskGb: 1 } }),
        'E_CONFLICT',
        /ipv6Prefix 2001:db8:100:ff::\/64 is already in use/,
      );
      await expectError(
        () => api.admin.post('/v1/hosts', { name: 'hv-x', site: 'ams1', underlayIp: '192.0.2.200', capacity: { cpus: 1, memoryMb: 1, diskGb: 1 } }),
        'E_CONFLICT',
        /underlayIp 192.0.2.200 is already in use/,
      );
      await api.admin.delete('/v1/hosts/hv-imported');
    });

    test('placement skips draining and down hosts; migration moves ports and logs the move', async () => {
      await api.admin.patch('/v1/hosts/hv1', { state: 'draining' });
      await api.admin.patch('/v1/hosts/hv2', { state: 'down' });
      const hv3 = await api.admin.get<Host>('/v1/hosts/hv3');
      const vm = await api.admin.post<WithPorts>('/v1/instances', { tenant: 'acme', name: 'mover', site: 'ams1', ports: [{ network: 'big' }] });
      assert.equal(vm.hostId, hv3.id);
      await expectError(() => api.admin.post(`/v1/instances/${vm.id}/migrate`, {}), 'E_CAPACITY', /no active host in site ams1/);
      await expectError(() => api.admin.post(`/v1/instances/${vm.id}/migrate`, { target: 'hv1' }), 'E_CONFLICT', /host hv1 is draining/);
      await api.admin.patch('/v1/hosts/hv2', { state: 'active' });
      const v0 = await head(api);
      const moved = await api.admin.post<WithPorts>(`/v1/instances/${vm.id}/migrate`, {});
      const hv2 = await api.admin.get<Host>('/v1/hosts/hv2');
      assert.equal(moved.hostId, hv2.id);
      assert.deepEqual(moved.ports, vm.ports, 'MACs and addresses stay');
      const log = await changesAfter(api, v0);
      // Its ports, then its record for the VM's hosts (the one it left says so).
      assert.deepEqual(
        log.map((c) => c.kind),
        ['port.moved', 'instance.updated'],
      );
      const iu = log[1] as Extract<LoggedChange, { kind: 'instance.updated' }>;
      assert.deepEqual([iu.instance.hostId, iu.fromHostId], [hv2.id, hv3.id]);
      const c = log[0] as Extract<LoggedChange, { kind: 'port.moved' }>;
      assert.equal(c.kind, 'port.moved');
      assert.deepEqual(c.from, { hostId: hv3.id, underlayIp: hv3.underlayIp });
      assert.equal(c.port.hostId, hv2.id);
      assert.equal(c.port.underlayIp, hv2.underlayIp);
      assert.equal(c.port.mac, vm.ports[0]?.mac);
      await api.admin.patch('/v1/hosts/hv1', { state: 'active' });
    });

    test('an IP change frees the old address and logs before and after', async () => {
      const vm = await api.admin.post<WithPorts>('/v1/instances', { tenant: 'acme', name: 'renum', site: 'ams1', ports: [{ network: 'big' }] });
      const p = vm.ports[0] as Port;
      const v0 = await head(api);
      const changed = await api.admin.patch<Port>(`/v1/ports/${p.id}`, { ipv4: '10.0.3.200' });
      assert.equal(changed.ipv4, '10.0.3.200');
      const log = await changesAfter(api, v0);
      const c = log[0] as Extract<LoggedChange, { kind: 'port.updated' }>;
      assert.equal(c.kind, 'port.updated');
      assert.equal(c.before.ipv4, p.ipv4);
      assert.equal(c.port.ipv4, '10.0.3.200');
      const other = await api.admin.post<WithPorts>('/v1/instances', {
        tenant: 'acme',
        name: 'taker',
        site: 'ams1',
        ports: [{ network: 'big', ipv4: p.ipv4 }],
      });
      assert.equal(other.ports[0]?.ipv4, p.ipv4, 'the old address is free again');
    });

    test('routed ports: IPv4 from the site pool, IPv6 from the host /64, kept across a move', async () => {
      await api.admin.post('/v1/networks', { tenant: 'acme', name: 'public', kind: 'routed', site: 'ams1' });
      const vm = await api.admin.post<WithPorts>('/v1/instances', { tenant: 'acme', name: 'pub', site: 'ams1', ports: [{ network: 'public' }] });
      const host = await api.admin.get<Host>(`/v1/hosts/${vm.hostId}`);
      const p = vm.ports[0] as Port;
      assert.match(p.ipv4 ?? '', /^203\.0\.113\./);
      assert.ok(p.ipv6?.startsWith((host.ipv6Prefix as string).replace('::/64', ':')), `${p.ipv6} in ${host.ipv6Prefix}`);
      const moved = await api.admin.post<WithPorts>(`/v1/instances/${vm.id}/migrate`, {});
      assert.notEqual(moved.hostId, vm.hostId);
      assert.deepEqual(moved.ports[0], p);
    });

    test('VIP backends: a move or delete of a backend logs vip.updated with the new hosts', async () => {
      const vm = (await api.admin.get<WithPorts>('/v1/instances/pub')) as WithPorts;
      const vip = await api.admin.post<{ id: string; address: string; backends: string[] }>('/v1/vips', {
        tenant: 'acme',
        name: 'web',
        site: 'ams1',
        backends: [vm.ports[0]?.id],
        healthCheck: { type: 'tcp', port: 80 },
      });
      assert.match(vip.address, /^203\.0\.113\./);
      assert.notEqual(vip.address, vm.ports[0]?.ipv4, 'VIPs and routed ports share the site pool without collisions');
      const v0 = await head(api);
      const moved = await api.admin.post<WithPorts>(`/v1/instances/${vm.id}/migrate`, {});
      const log = await changesAfter(api, v0);
      assert.deepEqual(
        log.map((c) => c.kind),
        ['port.moved', 'vip.updated', 'instance.updated'],
      );
      const vu = log[1] as Extract<LoggedChange, { vip: unknown }>;
      assert.equal(vu.vip.backends[0]?.hostId, moved.hostId);
      const v1 = await head(api);
      await api.admin.delete(`/v1/instances/${vm.id}`);
      const del = await changesAfter(api, v1);
      assert.deepEqual(
        del.map((c) => c.kind),
        ['port.deleted', 'vip.updated', 'instance.deleted'],
      );
      assert.deepEqual((del[1] as Extract<LoggedChange, { vip: unknown }>).vip.backends, []);
      assert.deepEqual((await api.admin.get<{ backends: string[] }>(`/v1/vips/${vip.id}`)).backends, []);
    });

    test('host capacity cannot be cut below what its instances use', async () => {
      await expectError(() => api.admin.patch('/v1/hosts/hv2', { capacity: { cpus: 0, memoryMb: 1, diskGb: 1 } }), 'E_INVALID_ARG', /capacity.cpus 0/);
      const used = (await api.admin.all<Instance>('/v1/instances', { host: 'hv2' })).length;
      assert.ok(used > 0);
      // Every instance uses at least 512 MB, so 1 MB is below what hv2 uses.
      const e = await expectError(
        () => api.admin.patch('/v1/hosts/hv2', { capacity: { cpus: 64, memoryMb: 1, diskGb: 4000 } }),
        'E_CONFLICT',
        /capacity.memoryMb 1 is below what the host's instances use/,
      );
      assert.equal(e.field, 'capacity.memoryMb');
    });
  });
}
