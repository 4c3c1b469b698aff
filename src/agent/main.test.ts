// `weft agent --server`: one address or the replicas' list, checked at the boundary.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WEFT_BIN } from '../lab/server-process.js';
import { run } from '../sys/exec.js';
import { MAX_SERVERS, parseServers } from './main.js';

test('--server takes one address or a comma-separated list of replicas, in order', () => {
  assert.deepEqual(parseServers('198.51.100.1'), ['198.51.100.1']);
  assert.deepEqual(parseServers('198.51.100.62,198.51.100.1'), ['198.51.100.62', '198.51.100.1']);
  assert.deepEqual(parseServers(' weft-a.mgmt , weft-b.mgmt '), ['weft-a.mgmt', 'weft-b.mgmt']);
  assert.deepEqual(parseServers('fd00::1,[fd00::2]'), ['fd00::1', 'fd00::2']);
});

test('a bad --server names the value and what is allowed', () => {
  const bad: [unknown, RegExp][] = [
    ['', /^invalid --server "": must be the server's address, or a comma-separated list of its replicas/],
    [undefined, /^invalid --server \(missing\)/],
    ['198.51.100.1,,198.51.100.2', /^invalid --server "198.51.100.1,,198.51.100.2": has an empty entry/],
    ['198.51.100.1:1297', /entry "198.51.100.1:1297" is not an IPv4, IPv6 or DNS name \(no port: the ports are --stream-port and --svp-port\)/],
    ['a b', /entry "a b" is not an IPv4, IPv6 or DNS name/],
    ['10.0.0.1,10.0.0.1', /names 10.0.0.1 twice: each replica once/],
    [Array.from({ length: MAX_SERVERS + 1 }, (_, i) => `10.0.0.${i + 1}`).join(','), /names 9 replicas: at most 8/],
  ];
  for (const [v, re] of bad)
    assert.throws(
      () => parseServers(v),
      (e: Error & { code?: string }) => e.code === 'E_INVALID_ARG' && re.test(e.message),
      String(v),
    );
});

test('weft agent refuses a bad --server before it touches anything', async () => {
  const r = await run(WEFT_BIN, ['agent', '--server', '198.51.100.1,', '--host', 'hv1'], { okCodes: [1] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: invalid --server "198.51.100.1,": has an empty entry: addresses separated by single commas \(a,b\)$/m);
});
