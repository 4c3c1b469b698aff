import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCidr, parseIp } from './addr.js';
import { checkTenantAddress, checkTenantPrefix, tenantAddressProblem } from './tenant-addr.js';

const refusedAddr = (field: string, text: string, what: RegExp) => {
  const a = parseIp('x', text);
  assert.throws(
    () => checkTenantAddress(field, a.family, a.n, text),
    (e: Error & { code: string; field: string }) =>
      e.code === 'E_INVALID_ARG' &&
      e.field === field &&
      e.message.startsWith(`invalid ${field} ${JSON.stringify(text)}: must be a unicast address, not `) &&
      what.test(e.message),
  );
};

test('special-purpose addresses are refused, naming the range', () => {
  refusedAddr('ipv4', '0.0.0.0', /this network/);
  refusedAddr('ipv4', '0.1.2.3', /this network/);
  refusedAddr('ipv4', '127.0.0.1', /loopback/);
  refusedAddr('ipv4', '169.254.1.1', /link-local/);
  refusedAddr('ipv4', '224.1.0.5', /multicast/);
  refusedAddr('ipv4', '239.255.255.255', /multicast/);
  refusedAddr('ipv4', '240.0.0.1', /reserved/);
  refusedAddr('ipv4', '255.255.255.255', /broadcast/);
  refusedAddr('ipv6', '::', /unspecified/);
  refusedAddr('ipv6', '::1', /loopback/);
  refusedAddr('ipv6', '::ffff:10.0.0.1', /IPv4-mapped/);
  refusedAddr('ipv6', 'fe80::1', /link-local/);
  refusedAddr('ipv6', 'febf::1', /link-local/);
  refusedAddr('ipv6', 'ff02::1', /multicast/);
});

test('ordinary unicast addresses pass', () => {
  for (const t of ['10.0.0.1', '192.168.1.1', '203.0.113.5', '1.1.1.1', '223.255.255.254', '2001:db8::1', 'fd00::1', 'fec0::1', '::2']) {
    const a = parseIp('x', t);
    assert.equal(tenantAddressProblem(a.family, a.n), null, t);
  }
});

test('subnets and pools: special ranges and too-short prefixes are refused', () => {
  for (const [text, what] of [
    ['224.1.0.0/24', /multicast/],
    ['127.0.0.0/8', /loopback/],
    ['0.0.0.0/8', /this network/],
    ['169.254.0.0/24', /link-local/],
    ['240.0.0.0/8', /reserved/],
    ['0.0.0.0/0', /too short/],
    ['10.0.0.0/7', /too short/],
    ['fe80::/64', /link-local/],
    ['ff00::/16', /multicast/],
    ['::/0', /too short/],
    ['::/127', /unspecified/],
    ['::/16', /unspecified/],
    ['::ffff:0:0/96', /IPv4-mapped/],
    ['2000::/15', /too short/],
  ] as const) {
    assert.throws(
      () => checkTenantPrefix('subnets[0]', parseCidr('x', text)),
      (e: Error & { code: string; field: string }) =>
        e.code === 'E_INVALID_ARG' && e.field === 'subnets[0]' && e.message.startsWith(`invalid subnets[0] ${JSON.stringify(text)}: `) && what.test(e.message),
      text,
    );
  }
  for (const ok of ['10.0.0.0/8', '10.5.0.0/24', '203.0.113.0/24', '10.0.0.1/32', '2001:db8::/64', '2001::/16', 'fd00::/48', '2001:db8::1/128'])
    checkTenantPrefix('subnets[0]', parseCidr('x', ok));
});
