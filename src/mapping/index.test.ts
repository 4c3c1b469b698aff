import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIp } from '../model/addr.js';
import type { LoggedChange, PortMapping } from '../model/changes.js';
import { ip16, vl2Req, vl3Req } from './codec.js';
import { MappingIndex, svpSourceKey } from './index.js';
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

test('svpSourceKey: IPv4, its IPv4-mapped form and a zoned address are one source; junk is none', () => {
  assert.equal(svpSourceKey('::ffff:127.0.0.1'), svpSourceKey('127.0.0.1'));
  assert.equal(svpSourceKey('fe80::1%eth0'), svpSourceKey('fe80::1'));
  assert.notEqual(svpSourceKey('::1'), svpSourceKey('127.0.0.1'));
  for (const bad of [undefined, '', 'nonsense', '10.0.0.0/8', '1']) assert.equal(svpSourceKey(bad), null, String(bad));
});

test("a host's SVP log is served to its underlay and its svpClientAddresses, as its HostInfo changes say", () => {
  const ix = new MappingIndex();
  const host = (o: object) => ({
    hostId: 'h1',
    name: 'h1',
    siteId: 's',
    rackId: null,
    underlayIp: '192.0.2.1',
    asn: null,
    state: 'active',
    ipv6Prefix: null,
    ...o,
  });
  const h1 = () => ix.hostByUnderlay16(ip16(4, parseIp('ip', '192.0.2.1').n)) as NonNullable<ReturnType<MappingIndex['hostByUnderlay16']>>;
  const serves = (src: string) => ix.svpServes(h1(), svpSourceKey(src));
  // Logged before migration 0008: no fields, no client.
  ix.apply(at({ kind: 'host.created', host: host({}) }));
  assert.equal(serves('192.0.2.1'), false);
  ix.apply(at({ kind: 'host.updated', host: host({ svpClient: true, svpClientAddresses: ['198.51.100.7'] }), before: host({}) }));
  assert.deepEqual(['192.0.2.1', '::ffff:192.0.2.1', '198.51.100.7', '::ffff:198.51.100.7', '127.0.0.1', '192.0.2.2'].map(serves), [
    true,
    true,
    true,
    true,
    false,
    false,
  ]);
  assert.deepEqual(ix.svpHostsServed(svpSourceKey('198.51.100.7')), ['h1']);
  assert.deepEqual(ix.svpHostsServed(svpSourceKey('127.0.0.1')), []);
  // A port of the host (its mapping carries no SVP fields) leaves the binding alone.
  ix.addPort(port);
  assert.equal(serves('198.51.100.7'), true);
  // A new underlay moves the binding with it.
  ix.apply(at({ kind: 'host.updated', host: host({ underlayIp: '192.0.2.9', svpClient: true, svpClientAddresses: [] }), before: host({}) }));
  const moved = ix.hostByUnderlay16(ip16(4, parseIp('ip', '192.0.2.9').n));
  assert.ok(moved);
  assert.deepEqual(
    ['192.0.2.9', '192.0.2.1', '198.51.100.7'].map((a) => ix.svpServes(moved, svpSourceKey(a))),
    [true, false, false],
  );
  ix.apply(at({ kind: 'host.updated', host: host({ underlayIp: '192.0.2.9', svpClient: false, svpClientAddresses: [] }), before: host({}) }));
  assert.equal(ix.svpServes(moved, svpSourceKey('192.0.2.9')), false, 'not a client any more');
  ix.apply(at({ kind: 'host.updated', host: host({ underlayIp: '192.0.2.9', svpClient: true, svpClientAddresses: [] }), before: host({}) }));
  ix.apply(at({ kind: 'host.deleted', host: host({ underlayIp: '192.0.2.9' }) }));
  assert.equal(ix.svpServes(moved, svpSourceKey('192.0.2.9')), false, 'a deleted host serves nothing');
  assert.deepEqual(ix.svpHostsServed(svpSourceKey('192.0.2.9')), []);
});
