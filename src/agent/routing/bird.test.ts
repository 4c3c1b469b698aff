// Parsing what BIRD 2.0.12 prints for `birdc -v show protocols all` (a real
// capture from the lab), and the fake's model of BIRD's undo timer.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fixture } from '../../../test/support/golden.js';
import { FakeBird, parseProtocols } from './bird.js';

test('BGP sessions, their neighbours and route counts are read from a real capture; other protocols are skipped', () => {
  const s = parseProtocols(readFileSync(fixture('routing/show-protocols-all.txt'), 'utf8'));
  assert.deepEqual(
    s.map((x) => [x.name, x.bgpState, x.established, x.neighbor]),
    [
      ['up_01a2334d98d5', 'Established', true, '192.0.2.0'],
      ['up_01a2334d98dd', 'Established', true, '2001:db8::1'],
    ],
  );
  assert.deepEqual(s[0]?.channels, [{ family: 'ipv4', imported: 2, filtered: 0, exported: 0, receiveLimit: 1000, limitHit: false }]);
});

test('a session cut by its receive limit, and one that never came up', () => {
  const out = [
    '0001 BIRD 2.0.12 ready.',
    '2002-Name       Proto      Table      State  Since         Info',
    '1002-up_aaaaaaaaaaaa BGP        ---        start  20:31:40.100  Idle          Route limit exceeded',
    '1006-  Description:    session x',
    '       BGP state:          Idle',
    '         Neighbor address: 192.0.2.6',
    '         Last error:       Route limit exceeded',
    '       Channel ipv4',
    '         State:          DOWN',
    '         Receive limit:  5',
    '           Action:       disable',
    '         Routes:         0 imported, 3 filtered, 0 exported, 0 preferred',
    '     ',
    '1002-up_bbbbbbbbbbbb BGP        ---        start  20:31:40.100  Active        Socket: Connection refused',
    '',
  ].join('\n');
  const [cut, never] = parseProtocols(out);
  assert.equal(cut?.established, false);
  assert.equal(cut?.lastError, 'Route limit exceeded');
  assert.deepEqual(cut?.channels, [{ family: 'ipv4', imported: 0, filtered: 3, exported: 0, receiveLimit: 5, limitHit: true }]);
  assert.equal(never?.bgpState, 'Active');
  assert.deepEqual(never?.channels, []);
});

test('the fake undoes one step back, and a plain configure cancels a pending undo, as BIRD does', async () => {
  const b = new FakeBird();
  await b.configure('a');
  await b.configure('b', { undoAfterS: 30 });
  await b.configure('c', { undoAfterS: 30 });
  b.fireUndo();
  assert.equal(b.running, 'b');
  await b.configure('d', { undoAfterS: 30 });
  await b.configure('e');
  b.fireUndo();
  assert.equal(b.running, 'e');
});

test('configure: queued (0005) counts as applied; a parse error is a refusal; no answer is an error to retry', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { BirdControl } = await import('./bird.js');
  const dir = mkdtempSync(join(tmpdir(), 'weft-birdctl-'));
  try {
    let reply = { code: 0, stdout: '', stderr: '' };
    const ctl = new BirdControl({ socket: '/nowhere', confPath: join(dir, 'bird.conf'), run: async () => reply });
    reply = {
      code: 0,
      stdout: '0001 BIRD 2.0.12 ready.\n0002-Reading configuration from x\n0005 Reconfiguration already in progress, queueing new config\n',
      stderr: '',
    };
    await ctl.configure('router id 192.0.2.1;\n');
    reply = {
      code: 1,
      stdout: '0001 BIRD 2.0.12 ready.\n0002-Reading configuration from x\n8002 ' + join(dir, 'bird.conf') + ':3:1 syntax error\n',
      stderr: '',
    };
    await assert.rejects(ctl.configure('x'), (e: Error & { refused?: boolean }) => e.refused === true && /bird\.conf:3:1 syntax error/.test(e.message));
    reply = { code: 1, stdout: '', stderr: 'Unable to connect to server control socket (/nowhere): No such file or directory' };
    await assert.rejects(ctl.configure('y'), (e: Error & { refused?: boolean }) => e.refused !== true && /Unable to connect/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
