// Unit tests of the lab plan: address and slot arithmetic, name limits, and
// the iproute2 batch lines the builder runs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MTU_MAX, MTU_MIN } from '../model/validate.js';
import {
  addrLine,
  checkIfaceCidr,
  checkIfname,
  checkLabName,
  checkNodeName,
  checkSlot,
  mgmtHostCidr,
  mgmtPlan,
  nsName,
  OVERLAY_MTU,
  p2pAddrs,
  rootLinkName,
  routeLine,
  UNDERLAY_MTU,
  VXLAN_OVERHEAD,
  vethLine,
} from './plan.js';

const code = (c: string) => (e: Error & { code?: string }) => e.code === c;

test('point-to-point links: consecutive /31s of 192.0.2.0/24 and /64s of 2001:db8::/48', () => {
  assert.deepEqual(p2pAddrs(0), {
    a: { v4: '192.0.2.0/31', v6: '2001:db8::1/64' },
    b: { v4: '192.0.2.1/31', v6: '2001:db8::2/64' },
    prefix4: '192.0.2.0/31',
    prefix6: '2001:db8::/64',
  });
  assert.equal(p2pAddrs(5).b.v4, '192.0.2.11/31');
  assert.equal(p2pAddrs(26).a.v6, '2001:db8:0:1a::1/64');
  assert.equal(p2pAddrs(127).b.v4, '192.0.2.255/31');
  assert.throws(() => p2pAddrs(128), code('E_CAPACITY'));
  assert.throws(() => p2pAddrs(-1), code('E_CAPACITY'));
});

test('management slots: one /26 of 198.51.100.0/24 each, the root namespace on .1', () => {
  assert.deepEqual(mgmtPlan(0), { subnet: '198.51.100.0/26', rootIp: '198.51.100.1', rootCidr: '198.51.100.1/26' });
  assert.deepEqual(mgmtPlan(3), { subnet: '198.51.100.192/26', rootIp: '198.51.100.193', rootCidr: '198.51.100.193/26' });
  assert.equal(mgmtHostCidr(1, 0), '198.51.100.66/26');
  assert.equal(mgmtHostCidr(3, 60), '198.51.100.254/26');
  assert.throws(() => mgmtHostCidr(3, 61), code('E_CAPACITY'));
  for (const bad of [-1, 4, 1.5, '0']) assert.throws(() => checkSlot(bad), /invalid slot .*: must be 0..3/);
  assert.throws(() => mgmtPlan(4), code('E_INVALID_ARG'));
});

test('names: short lab prefixes and node names so every interface fits in 15 characters', () => {
  assert.equal(nsName('wl3', 'h1'), 'wl3-h1');
  assert.equal(rootLinkName('wl3'), 'wl3m0');
  assert.equal(checkLabName('abcdef'), 'abcdef');
  for (const bad of ['', 'abcdefg', '3ab', 'a-b', 'AB', 5]) assert.throws(() => checkLabName(bad), /invalid name .*: must be 1\.\.6 of \[a-z0-9\]/);
  assert.equal(checkNodeName('name', 'abcdefghijkl'), 'abcdefghijkl');
  for (const bad of ['abcdefghijklm', 'h-1', '', 'lo', 'root', 'br0']) assert.throws(() => checkNodeName('name', bad), code('E_INVALID_ARG'));
  assert.equal(checkIfname('ifname', 'wp0123456789ab'), 'wp0123456789ab');
  for (const bad of ['wp0123456789abcd', '', 'a b', 'a/b', 'a:b']) assert.throws(() => checkIfname('ifname', bad), /must be 1\.\.15/);
});

test('interface addresses keep host bits and are checked per family', () => {
  assert.equal(checkIfaceCidr('ipv4', '10.0.0.5/24', 4), '10.0.0.5/24');
  assert.equal(checkIfaceCidr('ipv6', 'FD00:0::5/64', 6), 'fd00::5/64');
  assert.throws(() => checkIfaceCidr('ipv4', 'fd00::5/64', 4), /invalid ipv4 "fd00::5\/64": must be an IPv4 address/);
  assert.throws(() => checkIfaceCidr('ipv4', '10.0.0.5', 4), /with prefix length/);
  assert.throws(() => checkIfaceCidr('ipv4', '10.0.0.5/33', 4), /prefix length must be 0..32/);
});

test('iproute2 batch lines', () => {
  assert.equal(addrLine('ul0', '192.0.2.1/31'), 'addr add 192.0.2.1/31 dev ul0');
  assert.equal(addrLine('ul0', '2001:db8::2/64'), 'addr add 2001:db8::2/64 dev ul0 nodad');
  assert.equal(routeLine('default', '192.0.2.0'), 'route add default via 192.0.2.0');
  // Batch lines take no -6: an IPv6 default needs an IPv6 prefix.
  assert.equal(routeLine('default', '2001:db8::1'), 'route add ::/0 via 2001:db8::1');
  assert.equal(routeLine('2001:db8:0:3::/64', '2001:db8:0:1::1'), 'route add 2001:db8:0:3::/64 via 2001:db8:0:1::1');
  assert.equal(
    vethLine({ ifname: 'wp1', index: 100004, mtu: 1500 }, { ifname: 'eth0', index: 100005, mtu: 1500, mac: '02:00:00:00:00:05' }, 'wl3-v1'),
    'link add wp1 index 100004 mtu 1500 type veth peer name eth0 netns wl3-v1 index 100005 mtu 1500 address 02:00:00:00:00:05',
  );
  assert.equal(vethLine({ ifname: 'ul0' }, { ifname: 'h1' }, 'wl3-r1'), 'link add ul0 type veth peer name h1 netns wl3-r1');
});

test('the overlay MTU is the underlay MTU less VXLAN over IPv4, and the API takes it', () => {
  assert.equal(VXLAN_OVERHEAD, 20 + 8 + 8 + 14);
  assert.equal(OVERLAY_MTU, UNDERLAY_MTU - VXLAN_OVERHEAD);
  assert.equal(OVERLAY_MTU, 8950);
  assert.ok(OVERLAY_MTU >= MTU_MIN && OVERLAY_MTU <= MTU_MAX);
});
