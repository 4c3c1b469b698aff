import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cidrContains,
  cidrsOverlap,
  formatIp,
  formatMac,
  fromKey,
  ipv4Number,
  ipv6Key,
  keyOf,
  linkLocalOf,
  macNumber,
  parseCidr,
  parseIp,
  parseMac,
  usableRange,
} from './addr.js';
import { mulberry32 } from './prng.js';

test('parseIp text is formatIp of its number, for odd spellings and random addresses of both families', () => {
  const rnd = mulberry32(7);
  const byte = () => Math.floor(rnd() * 256);
  const samples = [
    '::ffff:1.2.3.4',
    '::ffff:102:304',
    '0:0:0:0:0:0:0:1',
    '::',
    '0.0.0.0',
    '255.255.255.255',
    'FE80::1',
    '2001:db8:0:0:1:0:0:1',
    '2001:0db8::0001',
  ];
  for (let i = 0; i < 500; i++) samples.push([byte(), byte(), byte(), byte()].join('.'));
  for (let i = 0; i < 500; i++) {
    // Zero runs of varied length, so the :: compression is exercised.
    const groups = Array.from({ length: 8 }, () => (rnd() < 0.4 ? 0 : Math.floor(rnd() * 0x10000)));
    samples.push(groups.map((g) => g.toString(16)).join(':'));
  }
  for (const v of samples) {
    const p = parseIp('f', v);
    assert.equal(p.text, formatIp(p.family, p.n), v);
    assert.deepEqual(parseIp('f', p.text), p, `${v}: its text parses back to itself`);
  }
});

test('parseMac text is formatMac of its number, however it was spelled', () => {
  for (const v of ['02:00:5E:10:00:0A', '02-00-5e-10-00-0a', '0a:bc:de:f0:12:34', 'FE:FF:FF:FF:FF:FF']) {
    const m = parseMac('f', v);
    assert.equal(m.text, formatMac(m.n), v);
  }
});

/** parseIp's answer as ipv4Number would give it: the number for IPv4, null for IPv6 or a refusal. */
const slowV4 = (v: string): number | null => {
  try {
    const p = parseIp('f', v);
    return p.family === 4 ? Number(p.n) : null;
  } catch {
    return null;
  }
};
const slowMac = (v: string): number | null => {
  try {
    return Number(parseMac('f', v).n);
  } catch {
    return null;
  }
};

test('ipv4Number agrees with parseIp on good, odd and bad forms', () => {
  const rnd = mulberry32(11);
  const byte = () => Math.floor(rnd() * 256);
  const samples = [
    '0.0.0.0',
    '255.255.255.255',
    '10.0.0.1',
    '01.2.3.4',
    '1.2.3.04',
    '00.0.0.0',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '1.2.3.256',
    '1.2.3.',
    '.1.2.3',
    '1..2.3',
    '1.2.3.4 ',
    ' 1.2.3.4',
    '1.2.3.1000',
    '0x1.2.3.4',
    '1',
    '',
    '::1',
    '::ffff:1.2.3.4',
    '1.2.3.4/32',
    '1.2.3.4%eth0',
    '-1.2.3.4',
    '1.2.3.+4',
  ];
  for (let i = 0; i < 2000; i++) samples.push([byte(), byte(), byte(), byte()].join('.'));
  // Random strings over the characters an address is made of.
  const chars = '0123456789.';
  for (let i = 0; i < 5000; i++) {
    const len = 1 + Math.floor(rnd() * 16);
    samples.push(Array.from({ length: len }, () => chars[Math.floor(rnd() * chars.length)]).join(''));
  }
  for (const v of samples) assert.equal(ipv4Number(v), slowV4(v), JSON.stringify(v));
});

/** parseIp's IPv6 answer as ipv6Key gives it: the 16 bytes as latin1, null for IPv4 or a refusal. */
const slowV6 = (v: string): string | null => {
  try {
    const p = parseIp('f', v);
    if (p.family !== 6) return null;
    const b = Buffer.alloc(16);
    b.writeBigUInt64BE(p.n >> 64n, 0);
    b.writeBigUInt64BE(p.n & 0xffffffffffffffffn, 8);
    return b.toString('latin1');
  } catch {
    return null;
  }
};

test('ipv6Key agrees with parseIp where it answers, and answers for every plain form', () => {
  const rnd = mulberry32(17);
  const plain: string[] = [
    '::',
    '::1',
    '1::',
    'fe80::1',
    '2001:db8::53',
    '2001:DB8:0:0:0:0:0:1',
    '0:0:0:0:0:0:0:0',
    'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
    '2001:0db8:0000::0001',
  ];
  for (let i = 0; i < 2000; i++) {
    const groups = Array.from({ length: 8 }, () => (rnd() < 0.4 ? 0 : Math.floor(rnd() * 0x10000)));
    plain.push(groups.map((g) => g.toString(16)).join(':'));
    plain.push(formatIp(6, BigInt(`0x${groups.map((g) => g.toString(16).padStart(4, '0')).join('')}`)));
  }
  for (const v of plain) {
    if (slowV6(v) === null) continue;
    assert.equal(ipv6Key(v), slowV6(v), v);
  }
  const odd = [
    '',
    ':',
    ':::',
    '1:::2',
    '1::2::3',
    ':1',
    '1:',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9',
    '1::2:3:4:5:6:7:8',
    '12345::',
    'g::1',
    '::ffff:1.2.3.4',
    '::1%eth0',
    '::/0',
    ' ::1',
    '1.2.3.4',
    'fe80::1:',
  ];
  const chars = '0123456789abcdefABCDEF::.';
  for (let i = 0; i < 5000; i++) {
    const len = 1 + Math.floor(rnd() * 20);
    odd.push(Array.from({ length: len }, () => chars[Math.floor(rnd() * chars.length)]).join(''));
  }
  for (const v of odd) {
    const fast = ipv6Key(v);
    if (fast !== null) assert.equal(fast, slowV6(v), `${JSON.stringify(v)}: what ipv6Key accepts, parseIp accepts as the same address`);
  }
});

test('macNumber agrees with parseMac: shape, multicast and all-zero refused alike', () => {
  const rnd = mulberry32(13);
  const samples = [
    '02:00:5e:10:00:0a',
    '02-00-5E-10-00-0A',
    '01:00:5e:00:00:01',
    '03:00:00:00:00:00',
    'ff:ff:ff:ff:ff:ff',
    '00:00:00:00:00:00',
    '00:00:00:00:00:01',
    'fe:ff:ff:ff:ff:ff',
    '02:00:00:00:00',
    '02:00:00:00:00:00:00',
    '02:00:00:00:00:0g',
    '0200.0000.0001',
    '',
    '2:0:0:0:0:1',
  ];
  const hex = '0123456789abcdefABCDEF:-x';
  for (let i = 0; i < 5000; i++) {
    // Mostly well-shaped, so the multicast and zero checks are what decide.
    const octets = Array.from({ length: 6 }, () =>
      Math.floor(rnd() * 256)
        .toString(16)
        .padStart(2, '0'),
    );
    samples.push(octets.join(rnd() < 0.5 ? ':' : '-'));
    const len = 11 + Math.floor(rnd() * 8);
    samples.push(Array.from({ length: len }, () => hex[Math.floor(rnd() * hex.length)]).join(''));
  }
  for (const v of samples) assert.equal(macNumber(v), slowMac(v), JSON.stringify(v));
});

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
