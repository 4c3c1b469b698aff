// Unit tests of the parsers behind the BIRD and kernel query helpers: birdc's
// protocol table and `ip -j route` output, single-path and multipath.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIpRoutes, parseProtocols, prefixesVia } from './bird.js';

test('show protocols: name, proto, state and info, whatever the time format', () => {
  const text = [
    'BIRD 2.0.12 ready.',
    'Name       Proto      Table      State  Since         Info',
    'device1    Device     ---        up     20:11:40.306  ',
    'kernel4    Kernel     master4    up     2026-11-30    ',
    'h_h1       BGP        ---        up     20:11:41.001  Established   ',
    'h_h2       BGP        ---        start  2026-12-01 20:11:40  Active        Socket: Connection refused',
    '',
  ].join('\n');
  assert.deepEqual(parseProtocols(text), [
    { name: 'device1', proto: 'Device', state: 'up', info: '' },
    { name: 'kernel4', proto: 'Kernel', state: 'up', info: '' },
    { name: 'h_h1', proto: 'BGP', state: 'up', info: 'Established' },
    { name: 'h_h2', proto: 'BGP', state: 'start', info: 'Active        Socket: Connection refused' },
  ]);
});

test('ip -j route: single path, multipath, IPv6 gateways of IPv4 routes; non-unicast routes skipped', () => {
  assert.deepEqual(parseIpRoutes(''), []);
  assert.deepEqual(parseIpRoutes('[]\n'), []);
  assert.deepEqual(parseIpRoutes('[{"dst":"203.0.113.11","gateway":"10.0.1.2","dev":"d1","flags":[]}]'), [{ via: '10.0.1.2', dev: 'd1' }]);
  assert.deepEqual(
    parseIpRoutes(
      '[{"dst":"203.0.113.10","flags":[],"nexthops":[{"gateway":"10.0.1.2","dev":"d1","weight":1,"flags":[]},{"gateway":"10.0.2.2","dev":"d2","weight":1,"flags":[]}]}]',
    ),
    [
      { via: '10.0.1.2', dev: 'd1' },
      { via: '10.0.2.2', dev: 'd2' },
    ],
  );
  assert.deepEqual(parseIpRoutes('[{"dst":"203.0.113.12","via":{"family":"inet6","host":"2001:db8:1::2"},"dev":"d1","flags":[]}]'), [
    { via: '2001:db8:1::2', dev: 'd1' },
  ]);
  assert.deepEqual(parseIpRoutes('[{"type":"blackhole","dst":"198.18.0.0/24","flags":[]}]'), []);
  assert.deepEqual(parseIpRoutes('[{"dst":"10.0.0.0/24","dev":"d1","protocol":"kernel","scope":"link","flags":[]}]'), [{ via: '', dev: 'd1' }]);
});

test('ip -j route: the prefixes with a next hop through one interface, host routes with their length', () => {
  const v4 =
    '[{"dst":"203.0.113.1","gateway":"192.0.2.1","dev":"h1","flags":[]},{"dst":"203.0.113.3","flags":[],"nexthops":[{"gateway":"192.0.2.1","dev":"h1"},{"gateway":"192.0.2.5","dev":"h2"}]},{"dst":"198.18.0.0/24","gateway":"192.0.2.5","dev":"h2","flags":[]},{"type":"blackhole","dst":"198.19.0.0/24","flags":[]}]';
  assert.deepEqual(prefixesVia(v4, 'h1', 4), ['203.0.113.1/32', '203.0.113.3/32']);
  assert.deepEqual(prefixesVia(v4, 'h2', 4), ['203.0.113.3/32', '198.18.0.0/24']);
  assert.deepEqual(prefixesVia(v4, 'h3', 4), []);
  assert.deepEqual(prefixesVia('', 'h1', 6), []);
  assert.deepEqual(
    prefixesVia(
      '[{"dst":"2001:db8:100::/64","gateway":"2001:db8::2","dev":"h1","flags":[]},{"dst":"2001:db8:100::1","gateway":"2001:db8::2","dev":"h1","flags":[]}]',
      'h1',
      6,
    ),
    ['2001:db8:100::/64', '2001:db8:100::1/128'],
  );
});
