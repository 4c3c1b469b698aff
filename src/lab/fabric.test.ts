// Unit tests of the fabric's bird.conf rendering: golden files for ToR,
// core, spine and WAN configs (each also checked by `bird -p` when BIRD is installed), the
// protocol names, and the validation of every input that reaches the config.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { assertGolden, fixture } from '../../test/support/golden.js';
import {
  type CoreConfig,
  hostProtocol,
  rackProtocol,
  renderCoreConf,
  renderSpineConf,
  renderTorConf,
  renderWanConf,
  type SpineConfig,
  spineProtocol,
  type TorConfig,
  uplinkProtocol,
  type WanConfig,
} from './fabric.js';

const hasBird = spawnSync('bird', ['--version']).status === 0;

/** A rack as the lab builds it: r1's core link is 192.0.2.0/31, h1 and h2 on the next /31s. */
const tor = (o: Partial<TorConfig> = {}): TorConfig => ({
  name: 'r1',
  routerId: '192.0.2.0',
  asn: 65001,
  uplink: { name: 'core', asn: 65000, ipv4: '192.0.2.1', multiprotocol: true },
  hosts: [
    { name: 'h1', asn: 65101, ipv4: '192.0.2.3', multiprotocol: true },
    { name: 'h2', asn: 65102, ipv4: '192.0.2.5', multiprotocol: true },
  ],
  ...o,
});

const core = (o: Partial<CoreConfig> = {}): CoreConfig => ({
  routerId: '192.0.2.1',
  asn: 65000,
  racks: [
    { name: 'r1', asn: 65001, ipv4: '192.0.2.0', multiprotocol: true },
    { name: 'r2', asn: 65002, ipv4: '192.0.2.6', ipv6: '2001:db8:0:3::1', bfd: true },
  ],
  ...o,
});

/** A spine as a lab of sites builds it: s1sp under the WAN on 192.0.2.254/31, racks s1r1 and s1r2 below. */
const spine = (o: Partial<SpineConfig> = {}): SpineConfig => ({
  name: 's1sp',
  routerId: '192.0.2.254',
  asn: 65001,
  uplink: { name: 'wan', asn: 65000, ipv4: '192.0.2.255', ipv6: '2001:db8:0:7f::2' },
  racks: [
    { name: 's1r1', asn: 65010, ipv4: '192.0.2.250', ipv6: '2001:db8:0:7d::1' },
    { name: 's1r2', asn: 65011, ipv4: '192.0.2.248', ipv6: '2001:db8:0:7c::1', bfd: true },
  ],
  ...o,
});

const wan = (o: Partial<WanConfig> = {}): WanConfig => ({
  routerId: '192.0.2.255',
  asn: 65000,
  spines: [
    { name: 's1sp', asn: 65001, ipv4: '192.0.2.254', ipv6: '2001:db8:0:7f::1' },
    { name: 's2sp', asn: 65002, ipv4: '192.0.2.252', ipv6: '2001:db8:0:7e::1' },
  ],
  ...o,
});

const cases: Array<[string, string]> = [
  ['tor-basic.conf', renderTorConf(tor())],
  [
    'tor-full.conf',
    renderTorConf(
      tor({
        uplink: { name: 's1sp', asn: 65000, ipv6: '2001:db8::2', multiprotocol: true, bfd: true },
        hosts: [
          { name: 'h1', asn: 65101, ipv4: '192.0.2.3', ipv6: '2001:db8:0:1::2', bfd: true },
          { name: 'h2', asn: 65102, ipv6: '2001:db8:0:2::2', multiprotocol: true },
          { name: 'h3', asn: 65103, ipv4: '192.0.2.7' },
        ],
        originate: [
          { prefix: '10.0.0.0/8' },
          { prefix: '198.51.100.0/24', path: [64500, 64496] },
          { prefix: '2001:db8:ffff::/48', path: [64511] },
          ...Array.from({ length: 3 }, (_, i) => ({ prefix: `198.18.${i}.0/24` })),
        ],
        hostRoutes: true,
        bfd: { intervalMs: 50, multiplier: 5 },
      }),
    ),
  ],
  ['tor-no-default.conf', renderTorConf(tor({ defaultRoute: false, originate: [{ prefix: '0.0.0.0/0', path: [64496] }] }))],
  ['core.conf', renderCoreConf(core())],
  ['spine.conf', renderSpineConf(spine())],
  ['wan.conf', renderWanConf(wan())],
];

for (const [name, text] of cases) {
  test(`golden ${name}`, () => assertGolden(`fabric/${name}`, text));
  test(`bird -p accepts ${name}`, { skip: !hasBird && 'bird is not installed' }, () => {
    const r = spawnSync('bird', ['-p', '-c', fixture(`fabric/${name}`)], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });
}

test('protocol names follow host, rack, spine and transport', () => {
  assert.equal(hostProtocol('h1'), 'h_h1');
  assert.equal(hostProtocol('h1', 6), 'h_h1_v6');
  assert.equal(rackProtocol('r2'), 'r_r2');
  assert.equal(rackProtocol('r2', 6), 'r_r2_v6');
  assert.equal(spineProtocol('s1sp', 6), 's_s1sp_v6');
  assert.deepEqual([uplinkProtocol(), uplinkProtocol(6)], ['uplink', 'uplink_v6']);
  const text = renderTorConf(tor({ hosts: [{ name: 'h7', asn: 65107, ipv4: '192.0.2.9', ipv6: '2001:db8:0:9::2' }] }));
  assert.match(text, /^protocol bgp h_h7 \{$/m);
  assert.match(text, /^protocol bgp h_h7_v6 \{$/m);
  assert.match(text, /^protocol bgp uplink \{$/m);
  const sp = renderSpineConf(spine());
  for (const p of ['uplink', 'uplink_v6', 'r_s1r1', 'r_s1r1_v6', 'r_s1r2_v6']) assert.match(sp, new RegExp(`^protocol bgp ${p} \\{$`, 'm'));
  for (const p of ['s_s1sp', 's_s2sp_v6']) assert.match(renderWanConf(wan()), new RegExp(`^protocol bgp ${p} \\{$`, 'm'));
});

test('routes only travel up: a spine exports to the WAN what racks sent, and sends racks and WAN nothing back down', () => {
  const sp = renderSpineConf(spine());
  const block = (text: string, name: string) => new RegExp(`^protocol bgp ${name} \\{\\n([\\s\\S]*?)^\\}$`, 'm').exec(text)?.[1] ?? '';
  assert.match(block(sp, 'uplink'), /import none;\n\s+export where source = RTS_BGP;/);
  assert.match(block(sp, 'r_s1r1'), /import filter from_peer;\n\s+export none;/);
  assert.match(block(renderWanConf(wan()), 's_s1sp'), /import filter from_peer;\n\s+export none;/);
  assert.match(sp, /bfd on;/, 'a rack asking for BFD gets it');
  assert.doesNotMatch(renderWanConf(wan()), /bfd/);
});

test('bfd is rendered only when a session asks for it; host routes go to hosts only when asked', () => {
  const plain = renderTorConf(tor());
  assert.doesNotMatch(plain, /protocol bfd|bfd on/);
  assert.match(plain, /export where source = RTS_STATIC;/);
  assert.doesNotMatch(plain, /RTS_STATIC \|\| source = RTS_BGP/);
  assert.doesNotMatch(renderCoreConf(core({ racks: [{ name: 'r1', asn: 65001, ipv4: '192.0.2.0' }] })), /bfd/);
});

test('inputs that could break the config are refused, naming field and value', () => {
  const bad: Array<[string, () => unknown, RegExp]> = [
    ['name', () => renderTorConf(tor({ name: 'r 1' })), /^invalid name "r 1": must be 1\.\.32 of \[a-z0-9\]/],
    ['routerId v6', () => renderTorConf(tor({ routerId: '2001:db8::1' })), /^invalid routerId "2001:db8::1": must be an IPv4 address/],
    ['routerId junk', () => renderTorConf(tor({ routerId: '1.2.3' })), /^invalid routerId "1\.2\.3"/],
    ['asn 0', () => renderTorConf(tor({ asn: 0 })), /^invalid asn 0: must be an AS number 1\.\.4294967294/],
    ['asn big', () => renderCoreConf(core({ asn: 2 ** 32 })), /^invalid asn 4294967296/],
    ['host name', () => renderTorConf(tor({ hosts: [{ name: 'h_1', asn: 65101, ipv4: '192.0.2.3' }] })), /^invalid hosts\[0\]\.name "h_1"/],
    ['host name injection', () => renderTorConf(tor({ hosts: [{ name: 'h1 { }', asn: 65101, ipv4: '192.0.2.3' }] })), /^invalid hosts\[0\]\.name/],
    [
      'host asn = tor asn',
      () => renderTorConf(tor({ hosts: [{ name: 'h1', asn: 65001, ipv4: '192.0.2.3' }] })),
      /^invalid hosts\[0\]\.asn 65001: must differ from the local AS 65001/,
    ],
    ['host asn fraction', () => renderTorConf(tor({ hosts: [{ name: 'h1', asn: 1.5, ipv4: '192.0.2.3' }] })), /^invalid hosts\[0\]\.asn 1\.5/],
    [
      'host ipv4 family',
      () => renderTorConf(tor({ hosts: [{ name: 'h1', asn: 65101, ipv4: '2001:db8::2' }] })),
      /^invalid hosts\[0\]\.ipv4 "2001:db8::2": must be an IPv4 address/,
    ],
    [
      'host ipv6 family',
      () => renderTorConf(tor({ hosts: [{ name: 'h1', asn: 65101, ipv6: '192.0.2.3' }] })),
      /^invalid hosts\[0\]\.ipv6 "192\.0\.2\.3": must be an IPv6 address/,
    ],
    ['host no address', () => renderTorConf(tor({ hosts: [{ name: 'h1', asn: 65101 }] })), /^invalid hosts\[0\] .*: needs ipv4, ipv6 or both/],
    [
      'multiprotocol with two addresses',
      () => renderTorConf(tor({ hosts: [{ name: 'h1', asn: 65101, ipv4: '192.0.2.3', ipv6: '2001:db8::3', multiprotocol: true }] })),
      /^invalid hosts\[0\]\.multiprotocol true: needs exactly one of ipv4 and ipv6/,
    ],
    [
      'duplicate host name',
      () =>
        renderTorConf(
          tor({
            hosts: [
              { name: 'h1', asn: 65101, ipv4: '192.0.2.3' },
              { name: 'h1', asn: 65102, ipv4: '192.0.2.5' },
            ],
          }),
        ),
      /^invalid hosts\[1\]\.name "h1": must be unique: "h1" is also hosts\[0\]\.name/,
    ],
    [
      'duplicate neighbour',
      () =>
        renderTorConf(
          tor({
            hosts: [
              { name: 'h1', asn: 65101, ipv4: '192.0.2.3' },
              { name: 'h2', asn: 65102, ipv4: '192.0.2.3' },
            ],
          }),
        ),
      /^invalid hosts\[1\]\.ipv4 "192\.0\.2\.3": must be unique/,
    ],
    [
      'host = uplink',
      () => renderTorConf(tor({ hosts: [{ name: 'h1', asn: 65101, ipv4: '192.0.2.1' }] })),
      /^invalid hosts\[0\]\.ipv4 "192\.0\.2\.1": must not be the uplink's address/,
    ],
    [
      'rack = uplink',
      () => renderSpineConf(spine({ racks: [{ name: 's1r1', asn: 65010, ipv4: '192.0.2.255' }] })),
      /^invalid racks\[0\]\.ipv4 "192\.0\.2\.255": must not be the uplink's address/,
    ],
    ['uplink name', () => renderSpineConf(spine({ uplink: { name: 'W A N', asn: 65000, ipv4: '192.0.2.255' } })), /^invalid uplink\.name "W A N"/],
    ['uplink asn = spine asn', () => renderSpineConf(spine({ uplink: { name: 'wan', asn: 65001, ipv4: '192.0.2.255' } })), /^invalid uplink\.asn 65001/],
    ['spine name', () => renderSpineConf(spine({ name: 's1_sp' })), /^invalid name "s1_sp"/],
    [
      'duplicate spine',
      () =>
        renderWanConf(
          wan({
            spines: [
              { name: 's1sp', asn: 65001, ipv4: '192.0.2.254' },
              { name: 's1sp', asn: 65002, ipv4: '192.0.2.252' },
            ],
          }),
        ),
      /^invalid spines\[1\]\.name "s1sp": must be unique/,
    ],
    ['spine no address', () => renderWanConf(wan({ spines: [{ name: 's1sp', asn: 65001 }] })), /^invalid spines\[0\] .*: needs ipv4, ipv6 or both/],
    ['wan routerId', () => renderWanConf(wan({ routerId: '::1' })), /^invalid routerId "::1": must be an IPv4 address/],
    ['hosts not a list', () => renderTorConf(tor({ hosts: 'h1' as never })), /^invalid hosts "h1": must be a list/],
    ['uplink asn = tor asn', () => renderTorConf(tor({ uplink: { name: 'core', asn: 65001, ipv4: '192.0.2.1' } })), /^invalid uplink\.asn 65001/],
    ['rack name', () => renderCoreConf(core({ racks: [{ name: 'R1', asn: 65001, ipv4: '192.0.2.0' }] })), /^invalid racks\[0\]\.name "R1"/],
    [
      'prefix host bits',
      () => renderTorConf(tor({ originate: [{ prefix: '10.0.0.1/8' }] })),
      /^invalid originate\[0\]\.prefix "10\.0\.0\.1\/8": host bits set/,
    ],
    [
      'prefix no length',
      () => renderTorConf(tor({ originate: [{ prefix: '10.0.0.0' }] })),
      /^invalid originate\[0\]\.prefix "10\.0\.0\.0": must be a CIDR prefix/,
    ],
    [
      'duplicate prefix',
      () => renderTorConf(tor({ originate: [{ prefix: '10.0.0.0/8' }, { prefix: '10.0.0.0/8', path: [64500] }] })),
      /^invalid originate\[1\]\.prefix "10\.0\.0\.0\/8": must be unique: "10\.0\.0\.0\/8" is also originate\[0\]\.prefix/,
    ],
    [
      'default twice',
      () => renderTorConf(tor({ originate: [{ prefix: '::/0' }] })),
      /^invalid originate\[0\]\.prefix "::\/0": is the default route, sent already/,
    ],
    ['path asn', () => renderTorConf(tor({ originate: [{ prefix: '10.0.0.0/8', path: [64500, -1] }] })), /^invalid originate\[0\]\.path\[1\] -1/],
    ['bfd interval', () => renderTorConf(tor({ bfd: { intervalMs: 0, multiplier: 3 } })), /^invalid bfd\.intervalMs 0: must be an integer 1\.\.60000/],
    ['bfd multiplier', () => renderCoreConf(core({ bfd: { intervalMs: 100, multiplier: 256 } })), /^invalid bfd\.multiplier 256: must be an integer 1\.\.255/],
  ];
  for (const [what, fn, re] of bad) {
    assert.throws(fn, (e: Error & { code?: string }) => {
      assert.equal(e.code, 'E_INVALID_ARG', what);
      assert.match(e.message, re, what);
      return true;
    });
  }
});

test('addresses are written canonical', () => {
  const text = renderTorConf(tor({ hosts: [{ name: 'h1', asn: 65101, ipv6: '2001:DB8:0:1:0:0:0:2' }] }));
  assert.match(text, /neighbor 2001:db8:0:1::2 as 65101;/);
});
