// The routing nft table (routed-port guards, VIP DNAT) as golden files,
// checked by the real nft in a throwaway namespace.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { assertGolden } from '../../../../test/support/golden.js';
import { renderRoutingNft, routedPortLines } from './guards-routed.js';

const cases: Record<string, Parameters<typeof renderRoutingNft>> = {
  empty: [[], []],
  full: [
    [
      { ifname: 'wp00aa11bb22cc', mtu: 1500 },
      { ifname: 'wp0123456789ab', mtu: 9000 },
    ],
    [
      { vip: '198.51.100.80', backends: ['203.0.113.11', '203.0.113.10'] },
      { vip: '2001:db8:ffff::80', backends: ['2001:db8:1:2::10'] },
      { vip: '198.51.100.81', backends: [] },
    ],
  ],
};

function nftChecks(script: string): string {
  const ns = `wnftchk${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'weft-nft-'));
  try {
    execFileSync('ip', ['netns', 'add', ns]);
    writeFileSync(join(dir, 'r.nft'), script);
    return execFileSync('ip', ['netns', 'exec', ns, 'nft', '-c', '-f', join(dir, 'r.nft')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } finally {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('routing nftables table', () => {
  for (const [name, args] of Object.entries(cases)) {
    test(`${name}: golden, and accepted by nft`, { skip: process.getuid?.() !== 0 ? 'needs root for nft -c in a namespace' : false }, () => {
      const script = renderRoutingNft(...args);
      assertGolden(`guards/routed-${name}.nft`, script);
      nftChecks(script);
    });
  }

  test('a VIP without healthy backends gets no rule; several are hashed over', () => {
    const s = renderRoutingNft(...(cases.full as Parameters<typeof renderRoutingNft>));
    assert.ok(!s.includes('198.51.100.81'));
    assert.match(s, /ip daddr 198\.51\.100\.80 dnat ip to jhash ip saddr \. th sport mod 2 map \{ 0 : 203\.0\.113\.10, 1 : 203\.0\.113\.11 \}/);
    assert.match(s, /ip6 daddr 2001:db8:ffff::80 dnat ip6 to 2001:db8:1:2::10/);
  });

  test('a bad interface name is refused before nft sees it', () => {
    assert.throws(() => renderRoutingNft([{ ifname: 'wp"; flush ruleset', mtu: 1500 }], []), /invalid ports\[0\]\.ifname/);
  });

  test('a routed port gets its gateways', () => {
    assert.deepEqual(routedPortLines({ ifname: 'wp1', mtu: 1500 }), [
      'link set dev wp1 mtu 1500 up',
      'addr replace 169.254.0.1/32 dev wp1 scope link',
      'addr replace fe80::1/64 dev wp1',
    ]);
  });
});
