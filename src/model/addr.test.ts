import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cidrContains, cidrsOverlap, formatIp, formatMac, fromKey, keyOf, linkLocalOf, parseCidr, parseIp, parseMac, usableRange } from './addr.js';

test('parseIp canonicalises IPv4 and IPv6 and rejects odd forms', () => {
  assert.deepEqual(parseIp('f', '10.0.0.1'), { family: 4, n: 0x0a000001n, text: '10.0.0.1' });
  assert.equal(parseIp('f', '2001:DB8:0:0::1').text, '2001:db8::1');
  for (const bad of ['10.0.0', '0x0a.0.0.1', '1', '10.0.0.1/24', 'zz::1', '', 5, null]) {
    assert.throws(
      () => parseIp('f', bad),
      (e: Error & { code: string }) => e.code === 'E_INVALID_ARG' && e.message.startsWith('invalid f'),
    );
  }
});

test('parseCidr checks prefix length and host bits, naming the fix', () => {
  assert.equal(parseCidr('s', '10.1.0.0/16').text, '10.1.0.0/16');
  assert.equal(parseCidr('s', '2001:db8::/32').prefix, 32);
  assert.throws(() => parseCidr('s', '10.0.0.0/33'), /prefix length must be 0..32/);
  assert.throws(() => parseCidr('s', '2001:db8::/129'), /prefix length must be 0..128/);
  assert.throws(() => parseCidr('s', '10.0.0.1/24'), /did you mean 10.0.0.0\/24\?/);
  assert.throws(() => parseCidr('s', '10.0.0.0'), /must be a CIDR prefix/);
});

test('containment, overlap and usable ranges', () => {
  const a = parseCidr('a', '10.0.0.0/24');
  const b = parseCidr('b', '10.0.0.128/25');
  const c = parseCidr('c', '10.0.1.0/24');
  assert.equal(cidrsOverlap(a, b), true);
  assert.equal(cidrsOverlap(a, c), false);
  assert.equal(cidrsOverlap(a, parseCidr('v6', '::/0')), false, 'families never overlap');
  assert.equal(cidrContains(a, 4, parseIp('x', '10.0.0.255').n), true);
  assert.equal(cidrContains(a, 4, parseIp('x', '10.0.1.0').n), false);
  const u = usableRange(a);
  assert.equal(formatIp(4, u.lo), '10.0.0.1');
  assert.equal(formatIp(4, u.hi), '10.0.0.254');
  const p = usableRange(parseCidr('p', '192.0.2.4/31'));
  assert.equal(p.hi - p.lo, 1n, '/31 has two usable addresses');
  const v6 = usableRange(parseCidr('v6', 'fd00::/64'));
  assert.equal(formatIp(6, v6.lo), 'fd00::1');
  assert.equal(formatIp(6, v6.hi), 'fd00::ffff:ffff:ffff:ffff');
});

test('MACs: canonical form, unicast only', () => {
  assert.equal(parseMac('m', '02:AB:cd:00:00:01').text, '02:ab:cd:00:00:01');
  assert.equal(parseMac('m', '02-ab-cd-00-00-01').text, '02:ab:cd:00:00:01');
  assert.equal(formatMac(0x025746000001n), '02:57:46:00:00:01');
  assert.throws(() => parseMac('m', '01:00:5e:00:00:01'), /unicast/);
  assert.throws(() => parseMac('m', '00:00:00:00:00:00'), /all zeros/);
  assert.throws(() => parseMac('m', '02:00:00:00:00'), /must be a MAC/);
});

test('allocator keys sort like the numbers they encode', () => {
  const ns = [0n, 1n, 255n, 256n, 0xffffffffn, 1n << 100n];
  const keys = ns.map(keyOf);
  assert.deepEqual([...keys].sort(), keys);
  assert.deepEqual(keys.map(fromKey), ns);
});

test('linkLocalOf derives the modified EUI-64 link-local address', () => {
  // The universal/local bit flips: locally administered 02:... becomes 00:..., and the reverse.
  assert.equal(linkLocalOf('02:00:00:00:00:01'), 'fe80::ff:fe00:1');
  assert.equal(linkLocalOf('52:54:00:12:34:56'), 'fe80::5054:ff:fe12:3456');
  assert.equal(linkLocalOf('00:1B:21:AA:BB:CC'), 'fe80::21b:21ff:feaa:bbcc');
  assert.equal(linkLocalOf('0a-00-27-00-00-00'), 'fe80::800:27ff:fe00:0');
  assert.throws(() => linkLocalOf('01:00:5e:00:00:01'), /invalid mac "01:00:5e:00:00:01": must be a unicast MAC/);
  assert.throws(() => linkLocalOf('nope'), /invalid mac "nope"/);
});

test('junk after a CIDR and zone ids are refused, not trimmed', () => {
  for (const bad of ['10.5.0.0/24/junk', '10.5.0.0/24/', '2001:db8::/64/1', 'fe80::%eth0/64']) {
    assert.throws(
      () => parseCidr('s', bad),
      (e: Error & { code: string }) => e.code === 'E_INVALID_ARG' && e.message.startsWith(`invalid s ${JSON.stringify(bad)}`),
    );
  }
  for (const bad of ['fe80::1%eth0', 'fe80::1%1', '10.0.0.1%eth0']) {
    assert.throws(
      () => parseIp('f', bad),
      (e: Error & { code: string }) => e.code === 'E_INVALID_ARG' && /zone id/.test(e.message),
    );
  }
});
