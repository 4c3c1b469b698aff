// The one interface-name pattern: what Linux and weft's renderers accept.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkIfname } from './ifname.js';

test('checkIfname: 1..15 of [A-Za-z0-9_.-], a letter or digit first; the caller names the field and may word the rule', () => {
  for (const ok of ['wp0123456789ab', 'eth0', '0x', 'br-lan.10', 'a_b']) assert.equal(checkIfname('ifname', ok), ok);
  for (const bad of ['', 'wp0123456789abcd', 'a b', 'a/b', 'a:b', '-x', '.', '..', 'wp0";', 5, null])
    assert.throws(() => checkIfname('ports[0].ifname', bad), /invalid ports\[0\]\.ifname .*: must be 1\.\.15 of \[A-Za-z0-9_.-\]$/);
  assert.throws(() => checkIfname('x', 'a b', 'must be short'), /invalid x "a b": must be short$/);
});
