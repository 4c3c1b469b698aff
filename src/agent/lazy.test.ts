// Lazy mode on the FakeDataplane against a scripted SVP server on loopback:
// misses are looked up and installed, NOTFOUND leaves nothing, a failed
// install is retried on the next miss, and shoot-downs remove entries.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { decodeLogRm, encodeFrame, fromIp16, ip16, type LogEntry, logAck, statusOnly, vl2Ack, vl3Ack } from '../mapping/codec.js';
import { Framer } from '../mapping/framer.js';
import { OP, STATUS } from '../mapping/wire.js';
import { formatIp, parseIp, parseMac } from '../model/addr.js';
import { FakeDataplane } from './dataplane/fake/fake-dataplane.js';
import { LazyResolver } from './lazy.js';

const VNI = 4100;
const u16 = (ip: string) => {
  const p = parseIp('ip', ip);
  return ip16(p.family, p.n);
};

/** An SVP server that knows one IP and one MAC, and hands out a shoot-down log until it is acknowledged. */
class ScriptedSvp {
  readonly server: Server;
  log: LogEntry[] = [];
  removed = 0;
  constructor(
    readonly ip: { ip: string; mac: string; vtep: string },
    readonly mac: { mac: string; vtep: string },
  ) {
    this.server = createServer((sock) => {
      const framer = new Framer();
      sock.on('error', () => {});
      sock.on('data', (chunk: Buffer) => {
        for (const f of framer.push(chunk)) {
          const p = f.payload;
          const id = f.header.id;
          if (f.header.op === OP.VL3_REQ) {
            const ip = formatIp(fromIp16(p.subarray(0, 16)).family, fromIp16(p.subarray(0, 16)).n);
            const ok = ip === this.ip.ip && p.readUInt32BE(20) === VNI;
            const a = ok
              ? { status: STATUS.OK, mac: parseMac('mac', this.ip.mac).n, uport: 4789, uip: u16(this.ip.vtep) }
              : { status: STATUS.NOTFOUND, mac: 0n, uport: 0, uip: Buffer.alloc(16) };
            sock.write(encodeFrame(OP.VL3_ACK, id, vl3Ack(a)));
          } else if (f.header.op === OP.VL2_REQ) {
            const ok = BigInt(p.readUIntBE(0, 6)) === parseMac('mac', this.mac.mac).n && p.readUInt32BE(8) === VNI;
            const a = ok ? { status: STATUS.OK, port: 4789, addr: u16(this.mac.vtep) } : { status: STATUS.NOTFOUND, port: 0, addr: Buffer.alloc(16) };
            sock.write(encodeFrame(OP.VL2_ACK, id, vl2Ack(a)));
          } else if (f.header.op === OP.LOG_REQ) {
            sock.write(encodeFrame(OP.LOG_ACK, id, logAck(STATUS.OK, this.log, p.readUInt32BE(0)).payload));
          } else if (f.header.op === OP.LOG_RM) {
            const ids = (decodeLogRm(p) ?? []).map((b) => b.toString('hex'));
            this.removed += ids.length;
            this.log = this.log.filter((e) => !ids.includes(e.id.toString('hex')));
            sock.write(encodeFrame(OP.LOG_RM_ACK, id, statusOnly(STATUS.OK)));
          }
        }
      });
    });
  }
}

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('lazy mode on the fake dataplane', () => {
  const svp = new ScriptedSvp({ ip: '10.0.0.5', mac: '02:57:46:00:00:05', vtep: '192.0.2.5' }, { mac: '02:57:46:00:00:06', vtep: '192.0.2.6' });
  let port = 0;
  const quiet = { info() {}, warn() {} };
  before(async () => {
    await new Promise<void>((r) => svp.server.listen(0, '127.0.0.1', r));
    port = (svp.server.address() as { port: number }).port;
  });
  after(() => new Promise<void>((r) => svp.server.close(() => r())));

  async function setup() {
    const dp = new FakeDataplane();
    assert.deepEqual((await dp.apply({ ops: [{ op: 'vni.add', vni: { vni: VNI, mtu: 1450, local: '192.0.2.1', lazy: true } }], waiting: [] })).failed, []);
    const lazy = new LazyResolver({ svpHost: '127.0.0.1', svpPort: port, underlayIp: () => '192.0.2.1', dataplane: dp, logPollMs: 60_000, log: quiet });
    lazy.start();
    return { dp, lazy };
  }

  test('misses are looked up and installed; NOTFOUND installs nothing', async () => {
    const { dp, lazy } = await setup();
    try {
      dp.raiseMiss({ kind: 'l3', vni: VNI, ip: '10.0.0.5' });
      dp.raiseMiss({ kind: 'l2', vni: VNI, mac: '02:57:46:00:00:06' });
      dp.raiseMiss({ kind: 'l3', vni: VNI, ip: '10.0.0.99' });
      await until('three answers', () => lazy.stats.resolved + lazy.stats.notFound === 3);
      assert.deepEqual([...dp.lazy.fdb].sort(), [
        [`${VNI}|02:57:46:00:00:05`, '192.0.2.5'],
        [`${VNI}|02:57:46:00:00:06`, '192.0.2.6'],
      ]);
      assert.deepEqual([...dp.lazy.neigh], [[`${VNI}|10.0.0.5`, '02:57:46:00:00:05']]);
      assert.deepEqual({ ...lazy.stats }, { misses: 3, resolved: 2, notFound: 1, shootdowns: 0, errors: 0 });
    } finally {
      lazy.stop();
    }
  });

  test('an install the kernel refuses is counted and tried again on the next miss', async () => {
    const { dp, lazy } = await setup();
    try {
      dp.failNext('lazy.set');
      dp.raiseMiss({ kind: 'l2', vni: VNI, mac: '02:57:46:00:00:06' });
      await until('the error', () => lazy.stats.errors === 1);
      assert.equal(dp.lazy.fdb.size, 0);
      dp.raiseMiss({ kind: 'l2', vni: VNI, mac: '02:57:46:00:00:06' });
      await until('resolved', () => lazy.stats.resolved === 1);
      assert.equal(dp.lazy.fdb.get(`${VNI}|02:57:46:00:00:06`), '192.0.2.6');
    } finally {
      lazy.stop();
    }
  });

  test('shoot-downs remove the named entries, then are acknowledged; stop ends the miss watch', async () => {
    const { dp, lazy } = await setup();
    try {
      await dp.lazySet({ kind: 'l3', vni: VNI, ip: '10.0.0.5', mac: '02:57:46:00:00:05', dst: '192.0.2.5' });
      await dp.lazySet({ kind: 'l2', vni: VNI, mac: '02:57:46:00:00:06', dst: '192.0.2.6' });
      svp.log = [
        { type: 'vl3', id: Buffer.alloc(16, 1), ip: u16('10.0.0.5'), vlan: 0, vnetid: VNI },
        { type: 'vl2', id: Buffer.alloc(16, 2), mac: parseMac('mac', '02:57:46:00:00:06').n, vnetid: VNI },
      ];
      // The agent asks for 64 bytes of log a poll: one entry of each kind takes two polls.
      await lazy.pollLog();
      assert.equal(lazy.stats.shootdowns, 1);
      await lazy.pollLog();
      assert.equal(lazy.stats.shootdowns, 2);
      assert.equal(svp.removed, 2);
      assert.deepEqual([...dp.lazy.neigh], []);
      // The l3 shoot-down removes the neighbour entry only (as the kernel's `neigh del`); the MAC's VTEP entry stays.
      assert.deepEqual([...dp.lazy.fdb], [[`${VNI}|02:57:46:00:00:05`, '192.0.2.5']]);
    } finally {
      lazy.stop();
    }
    dp.raiseMiss({ kind: 'l2', vni: VNI, mac: '02:57:46:00:00:06' });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(lazy.stats.misses, 0, 'no miss is handled after stop');
  });
});
