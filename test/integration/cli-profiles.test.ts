// VM profiles from the CLI: SSH keys from a .pub file that ssh-keygen
// wrote, an instance's image, a site's VM flags, and `weft instance
// profile`, with errors in the flags' terms.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ServerProcess, startServerProcess, WEFT_BIN } from '../../src/lab/server-process.js';
import { run } from '../../src/sys/exec.js';
import { type TestDb, testDb } from '../support/stores.js';

const TOKEN = 'cli-profiles-admin-token-0123456789';

function weft(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(WEFT_BIN, args, { env: { ...process.env, ...env } }, (e, out, err) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }));
  });
}

describe('weft key and weft instance profile', () => {
  let db: TestDb;
  let server: ServerProcess;
  let env: Record<string, string>;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-cli-profiles-'));
    db = await testDb('sqlite');
    server = await startServerProcess({ db: db.url, adminToken: TOKEN });
    env = { WEFT_API: server.url, WEFT_TOKEN: TOKEN };
    const ok = async (args: string[]) => {
      const r = await weft(args, env);
      assert.equal(r.code, 0, `weft ${args.join(' ')}: ${r.err}`);
    };
    await ok(['site', 'create', 'ams1', '--underlay-pool', '192.0.2.0/24', '--dns-server', '192.0.2.53']);
    await ok(['host', 'create', 'hv1', '--site', 'ams1']);
    await ok(['tenant', 'create', 'acme']);
    await ok(['network', 'create', 'priv', '--tenant', 'acme', '--subnet', '10.0.0.0/24']);
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a key from ssh-keygen, by @file; its fingerprint as ssh-keygen shows it', async () => {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'op@laptop', '-f', join(dir, 'id')]);
    const fp = (await run('ssh-keygen', ['-l', '-f', join(dir, 'id.pub')])).stdout.split(' ')[1] as string;
    const c = await weft(['key', 'create', 'laptop', '--tenant', 'acme', '--public-key', `@${join(dir, 'id.pub')}`], env);
    assert.equal(c.code, 0, c.err);
    assert.match(c.out, /^NAME\s+TENANT\s+TYPE\s+FINGERPRINT$/m);
    assert.ok(c.out.includes(fp), `${fp} in ${c.out}`);
    const l = await weft(['key', 'list', '--tenant', 'acme'], env);
    assert.match(l.out, new RegExp(`laptop\\s+acme\\s+ssh-ed25519\\s+${fp.replace(/[+/]/g, '\\$&')}`));
    const bad = await weft(['key', 'create', 'x', '--tenant', 'acme', '--public-key', 'ssh-ed25519 AAAA'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /--public-key/);
    const missing = await weft(['key', 'create', 'x', '--tenant', 'acme', '--public-key', `@${join(dir, 'nosuch.pub')}`], env);
    assert.equal(missing.code, 2, 'an unreadable file is a usage error');
    assert.match(missing.err, /cannot read/);
    // The same holds for any usage error found in an action rather than by Commander: it is printed.
    const net = await weft(['instance', 'create', 'x', '--tenant', 'acme', '--site', 'ams1', '--net', 'priv,foo=1'], env);
    assert.equal(net.code, 2);
    assert.match(net.err, /--net priv,foo=1: expected NETWORK/);
  });

  test('instance profile prints each part, or one as its file; errors name the flag', async () => {
    const none = await weft(['instance', 'create', 'web1', '--tenant', 'acme', '--site', 'ams1', '--size', 'nano', '--net', 'priv', '--image', '../x'], env);
    assert.equal(none.code, 1);
    assert.match(none.err, /--image/);
    const c = await weft(['instance', 'create', 'web1', '--tenant', 'acme', '--site', 'ams1', '--size', 'nano', '--net', 'priv', '--image', 'debian-12'], env);
    assert.equal(c.code, 0, c.err);
    const all = await weft(['instance', 'profile', 'web1'], env);
    assert.equal(all.code, 0, all.err);
    for (const part of ['domain', 'meta-data', 'network-config', 'user-data']) assert.ok(all.out.includes(`# --- ${part}\n`), part);
    const ud = await weft(['instance', 'profile', 'web1', '--part', 'user-data'], env);
    assert.ok(ud.out.startsWith('#cloud-config\n'), ud.out);
    assert.ok(ud.out.includes((await readFile(join(dir, 'id.pub'), 'utf8')).trim()), 'the key from the file');
    const xml = await weft(['instance', 'profile', 'web1', '--part', 'domain'], env);
    assert.match(xml.out, /^<domain type='kvm'>/);
    const nc = await weft(['instance', 'profile', 'web1', '--part', 'network-config'], env);
    assert.ok(nc.out.includes('192.0.2.53'), 'DNS from the site');
    const j = await weft(['-o', 'json', 'instance', 'profile', 'web1'], env);
    assert.deepEqual(Object.keys(JSON.parse(j.out)).sort(), ['domain', 'hostId', 'instanceId', 'metaData', 'networkConfig', 'userData']);
    const part = await weft(['instance', 'profile', 'web1', '--part', 'disk'], env);
    assert.equal(part.code, 2);
    const dns = await weft(['site', 'update', 'ams1', '--dns-server', 'nope'], env);
    assert.equal(dns.code, 1);
    assert.match(dns.err, /--dns-server/);
    const u = await weft(['site', 'update', 'ams1', '--dns-server', 'none', '--arp-timeout-ms', '60000'], env);
    assert.equal(u.code, 0, u.err);
    const nc2 = await weft(['instance', 'profile', 'web1', '--part', 'network-config'], env);
    assert.ok(!nc2.out.includes('192.0.2.53'), 'no resolvers any more');
  });
});
