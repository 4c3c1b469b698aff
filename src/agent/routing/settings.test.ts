// The routing settings files (ROAs, IRR lists, RPKI, BFD): validation with
// the bad entry named, and the defaults.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { checkIrr, checkRoas, hostPort, loadRoutingSettings } from './settings.js';

describe('routing settings', () => {
  test('ROAs, IRR lists and host:port are validated with the entry named', () => {
    assert.deepEqual(
      checkRoas('roas', [
        { prefix: '203.0.113.0/24', maxLength: 24, asn: 64500 },
        { prefix: '2001:db8::/32', asn: 64501 },
      ]),
      [
        { prefix: '203.0.113.0/24', maxLength: 24, asn: 64500 },
        { prefix: '2001:db8::/32', maxLength: 32, asn: 64501 },
      ],
    );
    assert.throws(
      () => checkRoas('roas', [{ prefix: '203.0.113.0/24', maxLength: 16, asn: 1 }]),
      /invalid roas\[0\]\.maxLength 16: must be an integer 24\.\.32/,
    );
    assert.throws(() => checkRoas('roas', {}), /must be a JSON array/);
    assert.deepEqual(checkIrr('irr', { AS64500: ['203.0.113.0/24{24,32}', '2001:db8::/32'] }), { '64500': ['203.0.113.0/24{24,32}', '2001:db8::/32'] });
    assert.throws(() => checkIrr('irr', { '64500': ['203.0.113.0/24{20,32}'] }), /invalid irr\.64500\[0\] .*needs 24 <= min/);
    assert.throws(() => checkIrr('irr', { x: [] }), /keys must be ASNs/);
    assert.deepEqual(hostPort('--rpki', '[2001:db8::1]:323'), { host: '2001:db8::1', port: 323 });
    assert.throws(() => hostPort('--rpki', 'validator'), /invalid --rpki "validator": must be host:port/);
  });

  test('files: unreadable or not JSON is named; defaults for BFD', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-settings-'));
    try {
      writeFileSync(join(dir, 'bad.json'), '{');
      assert.throws(() => loadRoutingSettings({ roaFile: join(dir, 'bad.json') }), /invalid --roa-file .*must hold JSON/);
      assert.throws(() => loadRoutingSettings({ irrFile: join(dir, 'none.json') }), /invalid --irr-file .*ENOENT/);
      assert.deepEqual(loadRoutingSettings({}), { rpki: null, roas: [], irr: {}, bfd: { intervalMs: 100, multiplier: 3 } });
      assert.throws(() => loadRoutingSettings({ bfdMultiplier: 0 }), /invalid --bfd-multiplier 0/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
