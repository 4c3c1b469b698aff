// `weft router` and `weft fabric render|diff` as an operator uses them: a real server process, real commands.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ServerProcess, startServerProcess, WEFT_BIN } from '../../src/lab/server-process.js';
import { type TestDb, testDb } from '../support/stores.js';

const TOKEN = 'cli-routers-admin-token-0123456789';

function weft(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(WEFT_BIN, args, { env: { ...process.env, ...env } }, (e, out, err) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }));
  });
}

describe('weft router and weft fabric', () => {
  let db: TestDb;
  let server: ServerProcess;
  let env: Record<string, string>;
  const dir = mkdtempSync(join(tmpdir(), 'weft-cli-routers-'));
  before(async () => {
    db = await testDb('sqlite');
    server = await startServerProcess({ db: db.url, adminToken: TOKEN });
    env = { WEFT_API: server.url, WEFT_TOKEN: TOKEN };
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('create, list, update; render both formats; diff against a running file', async () => {
    const ok = async (args: string[]) => {
      const r = await weft(args, env);
      assert.equal(r.code, 0, `weft ${args.join(' ')}: ${r.err}`);
      return r.out;
    };
    await ok(['site', 'create', 'c1', '--underlay-pool', '192.0.2.0/26', '--ipv4-pool', '203.0.113.0/27', '--ipv6-block', '2001:db8:101::/48']);
    await ok(['rack', 'create', 'r1', '--site', 'c1']);
    await ok(['host', 'create', 'ch1', '--site', 'c1', '--rack', 'r1', '--asn', '65101']);
    await ok([
      'router',
      'create',
      'c1r1',
      '--role',
      'tor',
      '--site',
      'c1',
      '--rack',
      'r1',
      '--asn',
      '65010',
      '--router-id',
      '10.255.0.1',
      '--loopback',
      '10.255.0.1',
    ]);
    await ok([
      'router',
      'create',
      'c1bd',
      '--role',
      'border',
      '--site',
      'c1',
      '--asn',
      '65000',
      '--router-id',
      '10.255.0.20',
      '--loopback',
      '10.255.0.20',
      '--platform',
      'frr',
      '--upstream',
      'transit1,198.51.100.1,64496,max-prefix=1000',
    ]);
    assert.match(await ok(['router', 'list']), /c1r1\s+tor\s+c1\s+r1\s+65010\s+10\.255\.0\.1\s+bird/);
    assert.match(await ok(['router', 'update', 'c1r1', '--max-prefix', '20']), /c1r1/);
    const bird = await ok(['fabric', 'render', 'c1r1']);
    assert.match(bird, /receive limit 20 action restart;/);
    assert.match(await ok(['fabric', 'render', 'c1bd']), /^ neighbor 198\.51\.100\.1 remote-as 64496$/m);
    assert.match(await ok(['fabric', 'render', 'c1bd', '--format', 'bird']), /^protocol bgp u_transit1 \{$/m);
    const running = join(dir, 'bird.conf');
    writeFileSync(running, bird);
    assert.equal((await weft(['fabric', 'diff', 'c1r1', '--running', running], env)).code, 0, 'no diff');
    await ok(['host', 'update', 'ch1', '--state', 'draining']);
    const d = await weft(['fabric', 'diff', 'c1r1', '--running', running], env);
    assert.equal(d.code, 1, d.err);
    assert.match(d.out, /^\+ {2}bgp_local_pref = 0;$/m);
    const bad = await weft(
      ['router', 'create', 'x', '--role', 'tor', '--site', 'c1', '--asn', '65011', '--router-id', '10.255.0.2', '--loopback', '10.255.0.2'],
      env,
    );
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /^error: invalid --rack null: required for a tor/m);
  });
});
