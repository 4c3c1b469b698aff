// Fabric routers' configs from the source of truth: the derived sessions and
// filters (fabricView), golden bird.conf and frr.conf for a ToR, a spine and
// a border, every golden checked by BIRD (`bird -p`) and FRR (`vtysh -C -f`).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { assertGolden } from '../../test/support/golden.js';
import { run } from '../sys/exec.js';
import { affectedRouters, type FabricInput, fabricView } from './fabric.js';
import { renderBird } from './fabric-bird.js';
import { renderFrr } from './fabric-frr.js';
import type { Host, Peer, Router, Site } from './types.js';

const AT = '2026-01-01T00:00:00.000Z';
const site: Site = {
  id: 'site-1',
  name: 's1',
  underlayPool: '192.0.2.0/26',
  ipv4Pools: ['203.0.113.0/27'],
  ipv6Block: '2001:db8:101::/48',
  vm: { imagePool: null, imagePath: '', dnsServers: [], arpTimeoutMs: 0, ndTimeoutMs: 0, sharedStorage: false, migrationUri: '' },
  createdAt: AT,
};
const racks = [
  { id: 'rack-1', name: 's1r1' },
  { id: 'rack-2', name: 's1r2' },
];
const host = (name: string, rackId: string, ip: string, asn: number | null, state: Host['state'], prefix: string | null): Host => ({
  id: `host-${name}`,
  name,
  siteId: site.id,
  rackId,
  underlayIp: ip,
  asn,
  capacity: { cpus: 1, memoryMb: 1, diskGb: 1 },
  used: { cpus: 0, memoryMb: 0, diskGb: 0 },
  svpClient: false,
  svpClientAddresses: [],
  state,
  ipv6Prefix: prefix,
  createdAt: AT,
});
const hosts: Host[] = [
  host('s1r1h1', 'rack-1', '192.0.2.1', 65101, 'active', '2001:db8:101:1::/64'),
  host('s1r1h2', 'rack-1', '192.0.2.3', 65102, 'draining', '2001:db8:101:2::/64'),
  host('s1r1h3', 'rack-1', '192.0.2.5', 65103, 'down', '2001:db8:101:3::/64'),
  // No ASN: no BGP, no session.
  host('s1r1h4', 'rack-1', '192.0.2.7', null, 'active', '2001:db8:101:4::/64'),
  host('s1r2h1', 'rack-2', '192.0.2.9', 65104, 'active', '2001:db8:101:5::/64'),
];
const router = (name: string, role: Router['role'], rackId: string | null, asn: number, loopback: string, over: Partial<Router> = {}): Router => ({
  id: `router-${name}`,
  name,
  role,
  siteId: site.id,
  rackId,
  asn,
  bgpRouterId: loopback.includes(':') ? '10.255.0.99' : loopback,
  loopback,
  mgmtAddress: null,
  platform: 'bird',
  bfd: true,
  maxPrefix: 1000,
  upstreams: [],
  createdAt: AT,
  ...over,
});
const routers: Router[] = [
  router('s1r1', 'tor', 'rack-1', 65010, '10.255.0.1', { mgmtAddress: '198.51.100.11' }),
  router('s1r2', 'tor', 'rack-2', 65011, '10.255.0.2'),
  router('s1sp', 'spine', null, 65001, '10.255.0.10'),
  router('s1bd', 'border', null, 65000, '10.255.0.20', {
    upstreams: [
      { name: 'transit1', neighbor: '198.51.100.1', remoteAsn: 64496, maxPrefix: 1000000, bfd: false, description: 'full table' },
      { name: 'ix6', neighbor: '2001:db8:ffff::1', remoteAsn: 64497, maxPrefix: 200000, bfd: true, description: null },
    ],
  }),
];
const peer = (hostId: string, bfd: boolean): Peer => ({
  id: `peer-${hostId}`,
  hostId,
  rackId: null,
  neighbor: '192.0.2.254',
  remoteAsn: 65010,
  importPolicy: 'default',
  maxPrefix: 1000,
  maxPrefixAction: 'restart',
  bfd,
  multiprotocol: false,
  description: null,
  createdAt: AT,
});
const input = (name: string): FabricInput => ({
  router: routers.find((r) => r.name === name) as Router,
  site,
  racks,
  routers,
  hosts,
  peers: [peer('host-s1r1h1', true), peer('host-s1r1h2', false)],
  vips: ['203.0.113.30', '198.51.100.200'],
});

test('a ToR has one session per host of its rack with an ASN, and one per spine', () => {
  const v = fabricView(input('s1r1'));
  assert.deepEqual(
    v.sessions.map((s) => [s.name, s.neighbor, s.remoteAsn, s.bfd, s.drain, s.shutdown]),
    [
      ['h_s1r1h1', '192.0.2.1', 65101, true, false, false],
      ['h_s1r1h2', '192.0.2.3', 65102, false, true, false],
      ['h_s1r1h3', '192.0.2.5', 65103, false, false, true],
      ['s_s1sp', '10.255.0.10', 65001, true, false, false],
    ],
  );
  const h1 = v.sessions[0];
  assert.deepEqual(
    h1?.accept6.map((r) => `${r.prefix}{${r.min},${r.max}}`),
    ['2001:db8:101:1::/64{64,64}', '2001:db8:101::/48{128,128}'],
  );
  assert.deepEqual(
    h1?.accept4.map((r) => `${r.prefix}{${r.min},${r.max}}`),
    ['203.0.113.0/27{32,32}', '198.51.100.200/32{32,32}', '203.0.113.30/32{32,32}'],
  );
  // The site's own ranges are not refused as bogons; the VIP outside them neither.
  assert.ok(!v.bogons4.includes('203.0.113.0/24') && !v.bogons4.includes('198.51.100.0/24') && v.bogons4.includes('10.0.0.0/8'));
  assert.ok(!v.bogons6.includes('2001:db8::/32') && v.bogons6.includes('fc00::/7'));
});

test("a spine accepts from each ToR what that rack's hosts may announce; a border from the spine what the site's may", () => {
  const sp = fabricView(input('s1sp'));
  assert.deepEqual(
    sp.sessions.map((s) => [s.name, s.import, s.export]),
    [
      ['t_s1r1', 'owned', 'default'],
      ['t_s1r2', 'owned', 'default'],
      ['b_s1bd', 'default', 'learned'],
    ],
  );
  const r1 = sp.sessions[0]?.accept6.map((r) => r.prefix) ?? [];
  // Host 4 has no ASN but its /64 is still its rack's (it may get one); rack 2's is not rack 1's.
  assert.ok(r1.includes('2001:db8:101:1::/64') && !r1.includes('2001:db8:101:5::/64'));
  const bd = fabricView(input('s1bd'));
  assert.deepEqual(
    bd.sessions.map((s) => [s.name, s.import, s.export, s.maxPrefix]),
    [
      ['s_s1sp', 'owned', 'default', 1000],
      ['u_ix6', 'full', 'aggregates', 200000],
      ['u_transit1', 'full', 'aggregates', 1000000],
    ],
  );
  assert.ok(bd.sessions[0]?.accept6.some((r) => r.prefix === '2001:db8:101:5::/64'));
  assert.deepEqual(bd.aggregates, ['203.0.113.0/27', '2001:db8:101::/48']);
});

test('a change of a host touches its ToR, the spines and borders of its site; a VIP every router of the site', () => {
  assert.deepEqual(
    affectedRouters(routers, site.id, ['rack-2']).map((r) => r.name),
    ['s1bd', 's1r2', 's1sp'],
  );
  assert.deepEqual(
    affectedRouters(routers, site.id, 'all').map((r) => r.name),
    ['s1bd', 's1r1', 's1r2', 's1sp'],
  );
  assert.deepEqual(affectedRouters(routers, 'elsewhere', 'all'), []);
});

test('fabricView refuses a session whose ASN is the router’s own (sessions are eBGP)', () => {
  const same = { ...input('s1r1'), hosts: [host('x', 'rack-1', '192.0.2.11', 65010, 'active', null)] };
  assert.throws(() => fabricView(same), /must differ from router s1r1's asn 65010/);
});

const ROUTERS = ['s1r1', 's1sp', 's1bd'] as const;

for (const name of ROUTERS) {
  test(`golden configs of ${name}`, () => {
    const v = fabricView(input(name));
    assertGolden(`fabric/${name}.bird.conf`, renderBird(v));
    assertGolden(`fabric/${name}.frr.conf`, renderFrr(v));
    assert.equal(renderBird(fabricView(input(name))), renderBird(v), 'deterministic');
  });
}

const dir = mkdtempSync(join(tmpdir(), 'weft-fabric-golden-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

test('BIRD 2 parses every golden bird.conf (bird -p)', { skip: !have('bird') && 'bird is not on PATH' }, async () => {
  for (const name of ROUTERS) {
    const path = join(dir, `${name}.bird.conf`);
    writeFileSync(path, renderBird(fabricView(input(name))));
    const r = await run('bird', ['-p', '-c', path], { okCodes: [1] });
    assert.equal(r.code, 0, `bird -p rejects ${name}: ${r.stderr.trim()}`);
  }
});

test('FRR checks every golden frr.conf (vtysh -C -f)', { skip: !have('vtysh') && 'vtysh is not on PATH' }, async () => {
  for (const name of ROUTERS) {
    const path = join(dir, `${name}.frr.conf`);
    writeFileSync(path, renderFrr(fabricView(input(name))));
    const r = await run('vtysh', ['-C', '-f', path], { okCodes: [1, 2] });
    assert.equal(r.code, 0, `vtysh -C rejects ${name}: ${r.stderr.trim()}${r.stdout.trim()}`);
  }
  // The check itself refuses a broken config.
  const bad = join(dir, 'bad.frr.conf');
  writeFileSync(bad, renderFrr(fabricView(input('s1r1'))).replace('maximum-paths 64', 'maximum-paths lots'));
  const r = await run('vtysh', ['-C', '-f', bad], { okCodes: [1, 2] });
  assert.notEqual(r.code, 0, 'vtysh -C accepts a broken config');
});
