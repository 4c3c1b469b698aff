// The SVP v1 server over real TCP, on both stores: lookups, shoot-downs with
// LOG_REQ/LOG_RM, durability, pipelining and bad input.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SvpClient } from '../../src/mapping/client.js';
import { encodeFrame, ip16, type LogEntry, logReq, vl2Req } from '../../src/mapping/codec.js';
import { L3_TYPE, OP, STATUS } from '../../src/mapping/wire.js';
import { parseIp, parseMac } from '../../src/model/addr.js';
import type { Host, Instance, Port } from '../../src/model/types.js';
import { smallCloud, startTestApi, type TestApi } from '../support/api.js';
import { DIALECTS } from '../support/stores.js';

type WithPorts = Instance & { ports: Port[] };
const u16 = (ip: string) => {
  const p = parseIp('ip', ip);
  return ip16(p.family, p.n);
};
const mac = (m: string) => parseMac('mac', m).n;

for (const dialect of DIALECTS) {
  describe(`SVP server: ${dialect}`, () => {
    let api: TestApi;
    let svp: SvpClient;
    let net: { id: string; vni: number };
    let hosts: Host[];
    let vm1: WithPorts;
    let vm2: WithPorts;
    const connectSvp = () => SvpClient.connect('127.0.0.1', api.mapping?.svpAddress?.port as number);

    before(async () => {
      api = await startTestApi(dialect, {}, { mapping: true });
      await smallCloud(api, { hosts: 3 });
      net = await api.admin.post('/v1/networks', { tenant: 'acme', name: 'net', kind: 'overlay', subnets: ['10.0.0.0/24', 'fd00::/64'] });
      hosts = await api.admin.all<Host>('/v1/hosts');
      vm1 = await api.admin.post('/v1/instances', { tenant: 'acme', name: 'vm1', site: 'ams1', host: 'hv1', ports: [{ network: 'net' }] });
      vm2 = await api.admin.post('/v1/instances', { tenant: 'acme', name: 'vm2', site: 'ams1', host: 'hv2', ports: [{ network: 'net' }] });
      svp = await connectSvp();
      // Each host is an SVP client whose varpd is this test, connecting from loopback.
      for (const h of ['hv1', 'hv2', 'hv3']) await api.admin.patch(`/v1/hosts/${h}`, { svpClient: true, svpClientAddresses: ['127.0.0.1'] });
      for (const h of ['hv1', 'hv2', 'hv3']) await svp.log(u16(underlay(h)), 4096);
    });
    after(async () => {
      svp?.close();
      await api?.close();
    });
    const underlay = (name: string) => (hosts.find((h) => h.name === name) as Host).underlayIp;

    test('PING is answered with PONG and the same id', async () => {
      await svp.ping();
    });

    test('VL2 and VL3 (IPv4 and IPv6) lookups answer the port host and MAC; misses are NOTFOUND with zeros', async () => {
      const p = vm1.ports[0] as Port;
      const l2 = await svp.vl2(mac(p.mac), net.vni);
      assert.deepEqual(l2, { status: STATUS.OK, port: 4789, addr: u16(underlay('hv1')) });
      const l3 = await svp.vl3(u16(p.ipv4 as string), L3_TYPE.IPV4, net.vni);
      assert.deepEqual(l3, { status: STATUS.OK, mac: mac(p.mac), uport: 4789, uip: u16(underlay('hv1')) });
      const l36 = await svp.vl3(u16(p.ipv6 as string), L3_TYPE.IPV6, net.vni);
      assert.equal(l36.mac, mac(p.mac));
      assert.deepEqual(await svp.vl2(mac(p.mac), net.vni + 1), { status: STATUS.NOTFOUND, port: 0, addr: Buffer.alloc(16) });
      assert.deepEqual(await svp.vl3(u16('10.0.0.250'), L3_TYPE.IPV4, net.vni), { status: STATUS.NOTFOUND, mac: 0n, uport: 0, uip: Buffer.alloc(16) });
      assert.equal((await svp.vl3(u16(p.ipv4 as string), 7, net.vni)).status, STATUS.BADL3TYPE);
    });

    test('a move is served at once: the API answer comes after the index has it', async () => {
      const moved = await api.admin.post<WithPorts>(`/v1/instances/${vm1.id}/migrate`, { target: 'hv3' });
      const p = moved.ports[0] as Port;
      assert.deepEqual((await svp.vl2(mac(p.mac), net.vni)).addr, u16(underlay('hv3')));
      assert.deepEqual((await svp.vl3(u16(p.ipv4 as string), L3_TYPE.IPV4, net.vni)).uip, u16(underlay('hv3')));
    });

    test('shoot-downs: a host polls its entries in order within the byte budget, removes them idempotently', async () => {
      const hv2 = u16(underlay('hv2'));
      // Clear what earlier changes left for hv2.
      for (;;) {
        const l = await svp.log(hv2, 4096);
        if (l.entries.length === 0) break;
        assert.equal(await svp.logRemove(l.entries.map((e) => e.id)), STATUS.OK);
      }
      const p = vm1.ports[0] as Port;
      await api.admin.patch(`/v1/ports/${p.id}`, { ipv4: '10.0.0.99' });
      const l = await svp.log(hv2, 4096);
      assert.equal(l.status, STATUS.OK);
      assert.deepEqual(
        l.entries.map((e) => (e.type === 'vl3' ? [e.type, [...e.ip].join('.'), e.vnetid] : [e.type])),
        [
          ['vl3', [...u16(p.ipv4 as string)].join('.'), net.vni],
          ['vl3', [...u16('10.0.0.99')].join('.'), net.vni],
        ],
        'IP change: VL3 for the old and the new IP',
      );
      // The byte budget counts the status word: 4 + 44 fits one VL3 entry, 4 + 43 none.
      assert.equal((await svp.log(hv2, 48)).entries.length, 1);
      assert.equal((await svp.log(hv2, 47)).entries.length, 0);
      assert.equal((await svp.log(hv2, 48)).bytes, 48);
      const ids = l.entries.map((e) => e.id);
      assert.equal(await svp.logRemove(ids), STATUS.OK);
      assert.equal(await svp.logRemove(ids), STATUS.OK, 'removing again is fine');
      assert.deepEqual((await svp.log(hv2, 4096)).entries, []);

      await api.admin.delete(`/v1/instances/${vm2.id}`);
      const del = await svp.log(hv2, 4096);
      assert.deepEqual(
        del.entries.map((e: LogEntry) => (e.type === 'vl2' ? [e.type, e.mac, e.vnetid] : [e.type])),
        [['vl2', mac((vm2.ports[0] as Port).mac), net.vni]],
        'delete: VL2 for its MAC, to the host that had it too',
      );
      assert.equal((await svp.log(u16('192.0.2.250'), 4096)).status, STATUS.NOTFOUND, 'an unknown host is NOTFOUND');
    });

    test('a move sends VL2 and VL3 to every host on the VNI, the one it left included', async () => {
      const vm = await api.admin.post<WithPorts>('/v1/instances', {
        tenant: 'acme',
        name: 'mv',
        site: 'ams1',
        host: 'hv1',
        ports: [{ network: 'net', ipv6: null }],
      });
      const hv1 = u16(underlay('hv1'));
      const drain = async (u: Buffer) => {
        const l = await svp.log(u, 8192);
        if (l.entries.length) await svp.logRemove(l.entries.map((e) => e.id));
      };
      await drain(hv1);
      await api.admin.post(`/v1/instances/${vm.id}/migrate`, { target: 'hv2' });
      const kinds = (await svp.log(hv1, 8192)).entries.map((e) => e.type);
      assert.deepEqual(kinds, ['vl2', 'vl3']);
    });

    test('pipelined requests on one connection are all answered, ids echoed', async () => {
      const p = vm1.ports[0] as Port;
      const replies = await Promise.all(Array.from({ length: 2000 }, () => svp.vl2(mac(p.mac), net.vni)));
      assert.ok(replies.every((r) => r.status === STATUS.OK));
    });

    test('a bad CRC, a wrong version, an oversized frame or garbage closes that connection only', async () => {
      const good = encodeFrame(OP.VL2_REQ, 9, vl2Req({ mac: 1n, vnetid: 1 }));
      const badCrc = Buffer.from(good);
      badCrc[20] = (badCrc[20] as number) ^ 1;
      const badVersion = Buffer.from(good);
      badVersion.writeUInt16BE(9, 0);
      const huge = Buffer.from(good.subarray(0, 16));
      huge.writeUInt32BE(1 << 30, 4);
      const shortVl2 = encodeFrame(OP.VL2_REQ, 3, Buffer.alloc(5));
      for (const bad of [badCrc, badVersion, huge, shortVl2, Buffer.from('GET / HTTP/1.1\r\n\r\n')]) {
        const port = api.mapping?.svpAddress?.port as number;
        const closed = await new Promise<boolean>((resolve) => {
          const s = connect(port, '127.0.0.1', () => s.write(bad));
          s.on('close', () => resolve(true));
          s.on('error', () => undefined);
          setTimeout(() => {
            s.destroy();
            resolve(false);
          }, 2000);
        });
        assert.ok(closed, `closed after ${bad.subarray(0, 8).toString('hex')}`);
        await svp.ping();
      }
      // An unknown op gets no reply, and the connection stays.
      const c = await connectSvp();
      c.raw(encodeFrame(0x77, 1));
      await c.ping();
      c.close();
    });

    test('more log requests in flight than any client has is abuse: that connection is closed', async () => {
      const port = api.mapping?.svpAddress?.port as number;
      const burst = Buffer.concat(Array.from({ length: 40 }, (_, i) => encodeFrame(OP.LOG_REQ, i + 1, logReq({ count: 1 << 30, ip: u16(underlay('hv1')) }))));
      const closed = await new Promise<boolean>((resolve) => {
        const s = connect(port, '127.0.0.1', () => s.write(burst));
        s.on('data', () => undefined);
        s.on('close', () => resolve(true));
        s.on('error', () => undefined);
        setTimeout(() => {
          s.destroy();
          resolve(false);
        }, 3000);
      });
      assert.ok(closed);
      await svp.ping();
    });

    test('a peer that never reads does not stop the server serving others', async () => {
      const port = api.mapping?.svpAddress?.port as number;
      const flood = connect(port, '127.0.0.1');
      await new Promise((r) => flood.once('connect', r));
      flood.pause();
      const one = encodeFrame(OP.VL2_REQ, 1, vl2Req({ mac: 1n, vnetid: 1 }));
      const chunk = Buffer.concat(Array.from({ length: 2048 }, () => one));
      for (let i = 0; i < 100; i++) flood.write(chunk); // about 5.7 MB of requests, replies never read
      await new Promise((r) => setTimeout(r, 300));
      await svp.ping();
      flood.destroy();
    });

    test("a host's new underlay: its MACs are shot down (VL2) on every host of their VNIs, and served at the new address", async () => {
      const hv2 = u16(underlay('hv2'));
      const drain = async () => {
        const l = await svp.log(hv2, 8192);
        if (l.entries.length) await svp.logRemove(l.entries.map((e) => e.id));
      };
      await drain();
      const onHv3 = (await api.admin.all<WithPorts>('/v1/instances', { host: 'hv3' })).flatMap((i) => i.ports).filter((p) => p.networkId === net.id);
      assert.ok(onHv3.length > 0);
      await api.admin.patch('/v1/hosts/hv3', { underlayIp: '192.0.2.203' });
      const got = (await svp.log(hv2, 8192)).entries.filter((e) => e.type === 'vl2').map((e) => (e as { mac: bigint }).mac);
      assert.deepEqual(got.sort(), onHv3.map((p) => mac(p.mac)).sort());
      assert.deepEqual((await svp.vl2(mac((onHv3[0] as Port).mac), net.vni)).addr, u16('192.0.2.203'));
      hosts = await api.admin.all<Host>('/v1/hosts');
    });

    test('a host that is no SVP client (a push-mode agent) gets no shoot-downs, even when its log is polled', async () => {
      const quiet = await api.admin.post<Host>('/v1/hosts', { name: 'hv-push', site: 'ams1', capacity: { cpus: 4, memoryMb: 8192, diskGb: 100 } });
      await api.admin.post('/v1/instances', { tenant: 'acme', name: 'pushvm', site: 'ams1', host: 'hv-push', size: 'nano', ports: [{ network: 'net' }] });
      await api.admin.post('/v1/instances', { tenant: 'acme', name: 'pushvm2', site: 'ams1', host: 'hv1', size: 'nano', ports: [{ network: 'net' }] });
      assert.equal(quiet.svpClient, false);
      await svp.log(u16(quiet.underlayIp), 64);
      assert.equal((await api.admin.get<Host>('/v1/hosts/hv-push')).svpClient, false, 'a LOG_REQ marks nothing');
      await api.admin.delete('/v1/instances/pushvm2');
      await api.admin.post('/v1/instances', { tenant: 'acme', name: 'pushvm2', site: 'ams1', host: 'hv1', size: 'nano', ports: [{ network: 'net' }] });
      assert.deepEqual(await api.store.read((tx) => tx.shootdownsOf(quiet.id, 100)), []);
      await api.admin.delete('/v1/instances/pushvm');
      await api.admin.delete('/v1/instances/pushvm2');
      await api.admin.delete('/v1/hosts/hv-push');
    });

    test("a deleted host's shoot-downs go with it", async () => {
      await api.admin.post('/v1/hosts', { name: 'hv-gone', site: 'ams1', capacity: { cpus: 4, memoryMb: 8192, diskGb: 100 }, svpClient: true });
      const vm = await api.admin.post<WithPorts>('/v1/instances', {
        tenant: 'acme',
        name: 'short',
        site: 'ams1',
        host: 'hv-gone',
        size: 'nano',
        ports: [{ network: 'net' }],
      });
      const gone = await api.admin.get<Host>('/v1/hosts/hv-gone');
      assert.equal(gone.svpClient, true);
      await api.admin.post('/v1/instances', { tenant: 'acme', name: 'other', site: 'ams1', host: 'hv1', size: 'nano', ports: [{ network: 'net' }] });
      await api.admin.delete(`/v1/instances/${vm.id}`);
      assert.ok((await api.store.read((tx) => tx.shootdownsOf(gone.id, 100))).length > 0);
      await api.admin.delete('/v1/hosts/hv-gone');
      assert.deepEqual(await api.store.read((tx) => tx.shootdownsOf(gone.id, 100)), []);
    });

    test('shoot-downs survive a restart of the store', async () => {
      const hv3 = u16(underlay('hv3'));
      const before = (await svp.log(hv3, 8192)).entries.map((e) => e.id.toString('hex'));
      assert.ok(before.length > 0);
      const rows = await api.store.read((tx) => tx.all('shootdowns', {}));
      const again = await api.db.open();
      try {
        const after = await again.read((tx) => tx.all('shootdowns', {}));
        assert.deepEqual(after.map((r) => r.id).sort(), rows.map((r) => r.id).sort());
      } finally {
        await again.close();
      }
    });
  });
}
