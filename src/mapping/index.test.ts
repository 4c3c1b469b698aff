import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIp } from '../model/addr.js';
import type { LoggedChange, PortMapping } from '../model/changes.js';
import { ip16, vl2Req, vl3Req } from './codec.js';
import { MappingIndex } from './index.js';
import { L3_TYPE } from './wire.js';

const port: PortMapping = {
  portId: 'p1',
  instanceId: 'i1',
  tenantId: 't',
  networkId: 'n',
  networkKind: 'overlay',
  vni: 4096,
  mac: '02:57:46:00:00:01',
  ipv4: '10.0.0.5',
  ipv6: 'fd00::5',
  hostId: 'h1',
  underlayIp: '192.0.2.1',
};
let v = 0;
const at = (c: object) => ({ ...c, version: ++v, at: '' }) as LoggedChange;
const q2 = (mac: bigint, vni: number) => vl2Req({ mac, vnetid: vni });
const q3 = (ip: string, vni: number) => {
  const p = parseIp('ip', ip);
  return vl3Req({ ip: ip16(p.family, p.n), type: p.family === 4 ? L3_TYPE.IPV4 : L3_TYPE.IPV6, vnetid: vni });
};

test('created, moved, updated and deleted ports are found exactly where they are', () => {
  const ix = new MappingIndex();
  ix.apply(at({ kind: 'port.created', port }));
  assert.equal(ix.lookupVl2(q2(0x025746000001n, 4096))?.underlayIp, '192.0.2.1');
  assert.equal(ix.lookupVl2(q2(0x025746000001n, 4097)), undefined, 'another VNI is another network');
  assert.equal(ix.lookupVl3(q3('10.0.0.5', 4096))?.mac, 0x025746000001);
  assert.equal(ix.lookupVl3(q3('fd00::5', 4096))?.host.hostId, 'h1');
  assert.deepEqual(ix.vnisOf('h1'), [4096]);

  const moved = { ...port, hostId: 'h2', underlayIp: '192.0.2.2' };
  ix.apply(at({ kind: 'port.moved', port: moved, from: { hostId: 'h1', underlayIp: '192.0.2.1' } }));
  assert.equal(ix.lookupVl2(q2(0x025746000001n, 4096))?.underlayIp, '192.0.2.2');
  assert.equal(ix.lookupVl3(q3('10.0.0.5', 4096))?.host.underlayIp, '192.0.2.2');
  assert.deepEqual(ix.vnisOf('h1'), []);
  assert.deepEqual(ix.vnisOf('h2'), [4096]);

  ix.apply(at({ kind: 'port.updated', port: { ...moved, ipv4: '10.0.0.6' }, before: moved }));
  assert.equal(ix.lookupVl3(q3('10.0.0.5', 4096)), undefined);
  assert.equal(ix.lookupVl3(q3('10.0.0.6', 4096))?.host.hostId, 'h2');

  ix.apply(at({ kind: 'port.deleted', port: { ...moved, ipv4: '10.0.0.6' } }));
  assert.equal(ix.lookupVl2(q2(0x025746000001n, 4096)), undefined);
  assert.equal(ix.lookupVl3(q3('10.0.0.6', 4096)), undefined);
  assert.equal(ix.lookupVl3(q3('fd00::5', 4096)), undefined);
  assert.deepEqual(ix.vnisOf('h2'), []);
  assert.equal(ix.version, v);
});

test('an underlay change moves every entry of the host at once; LOG_REQ finds hosts by underlay', () => {
  const ix = new MappingIndex();
  ix.apply(at({ kind: 'port.created', port }));
  const before = { hostId: 'h1', name: 'h1', siteId: 's', rackId: null, underlayIp: '192.0.2.1', asn: null, state: 'active', ipv6Prefix: null };
  ix.apply(at({ kind: 'host.updated', host: { ...before, underlayIp: '192.0.2.9' }, before }));
  assert.equal(ix.lookupVl2(q2(0x025746000001n, 4096))?.underlayIp, '192.0.2.9');
  assert.equal(ix.hostByUnderlay16(ip16(4, parseIp('x', '192.0.2.9').n))?.hostId, 'h1');
  assert.equal(ix.hostByUnderlay16(ip16(4, parseIp('x', '192.0.2.1').n)), undefined);
});

test('routed ports are not in the overlay index', () => {
  const ix = new MappingIndex();
  ix.apply(at({ kind: 'port.created', port: { ...port, vni: null, networkKind: 'routed' } }));
  assert.deepEqual(ix.size, { hosts: 0, vl2: 0, vl3: 0 });
});
