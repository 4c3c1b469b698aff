// The weft CLI as an operator uses it: a real server process, real commands.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../../scripts/pg-cluster.js';
import { portIfname as agentPortIfname } from '../../src/agent/names.js';
import { type ServerProcess, startServerProcess, WEFT_BIN } from '../../src/lab/server-process.js';
import { type TestDb, testDb } from '../support/stores.js';

const TOKEN = 'cli-test-admin-token-0123456789';

function weft(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(WEFT_BIN, args, { env: { ...process.env, ...env } }, (e, out, err) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }));
  });
}

describe('weft CLI', () => {
  let db: TestDb;
  let server: ServerProcess;
  let env: Record<string, string>;
  before(async () => {
    db = await testDb('sqlite');
    server = await startServerProcess({ db: db.url, adminToken: TOKEN });
    env = { WEFT_API: server.url, WEFT_TOKEN: TOKEN };
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  test('create, list as table and JSON, get, delete', async () => {
    assert.equal(
      (await weft(['site', 'create', 'ams1', '--underlay-pool', '192.0.2.0/24', '--ipv4-pool', '203.0.113.0/24', '--ipv6-block', '2001:db8::/48'], env)).code,
      0,
    );
    const h = await weft(['host', 'create', 'hv1', '--site', 'ams1', '--cpus', '8', '--memory-mb', '16384', '--disk-gb', '100'], env);
    assert.equal(h.code, 0, h.err);
    assert.match(h.out, /hv1\s+ams1\s+-\s+active\s+192\.0\.2\.1\s+2001:db8::\/64/);
    await weft(['tenant', 'create', 'acme'], env);
    const n = await weft(['network', 'create', 'priv', '--tenant', 'acme', '--subnet', '10.0.0.0/24', '--subnet', 'fd00::/64'], env);
    assert.equal(n.code, 0, n.err);
    const i = await weft(
      ['-o', 'json', 'instance', 'create', 'vm1', '--tenant', 'acme', '--site', 'ams1', '--size', 'nano', '--net', 'priv,ipv4=10.0.0.9'],
      env,
    );
    assert.equal(i.code, 0, i.err);
    const vm = JSON.parse(i.out) as { name: string; ports: { ipv4: string; ipv6: string }[] };
    assert.equal(vm.ports[0]?.ipv4, '10.0.0.9');
    const list = await weft(['-o', 'json', 'instance', 'list', '--tenant', 'acme'], env);
    assert.deepEqual(
      (JSON.parse(list.out) as { name: string; ports: { ipv4: string }[] }[]).map((x) => [x.name, x.ports[0]?.ipv4]),
      [['vm1', '10.0.0.9']],
      'lists carry the ports of each instance',
    );
    const table = await weft(['port', 'list'], env);
    assert.match(table.out.split('\n')[0] ?? '', /^MAC\s+IPV4\s+IPV6\s+INTERFACE\s+INSTANCE\s+NETWORK$/);
    assert.match(table.out, /10\.0\.0\.9\s+fd00::1\s+wp[0-9a-f]{12}\s+vm1\s+priv$/m);
    // The port names the device its hypervisor creates: the name the agent plugs and guards.
    const portId = (JSON.parse(i.out) as { ports: { id: string }[] }).ports[0]?.id as string;
    const port = JSON.parse((await weft(['-o', 'json', 'port', 'get', portId], env)).out) as { interface: string };
    assert.equal(port.interface, agentPortIfname(portId));
    // whoami: the token the CLI authenticates with.
    const me = await weft(['whoami'], env);
    assert.equal(me.code, 0, me.err);
    assert.match(me.out, /^token bootstrap-admin \([0-9a-f-]+\), role admin\n$/);
    assert.equal((JSON.parse((await weft(['-o', 'json', 'whoami'], env)).out) as { role: string }).role, 'admin');
    const anon = await weft(['whoami'], { ...env, WEFT_TOKEN: '' });
    assert.notEqual(anon.code, 0);
    assert.match(anon.err, /missing bearer token/);
    assert.equal((await weft(['instance', 'delete', 'vm1'], env)).code, 0);
    assert.equal((await weft(['-o', 'json', 'instance', 'list'], env)).out.trim(), '[]');
  });

  test('errors print "error: ..." and exit non-zero; --debug adds the stack', async () => {
    const r = await weft(['network', 'create', 'bad', '--tenant', 'acme', '--subnet', '10.0.0.0/33'], env);
    assert.equal(r.code, 1);
    assert.equal(r.err.trim(), 'error: invalid --subnet (the 1st) "10.0.0.0/33": prefix length must be 0..32', 'the flag typed, not the API field');
    const d = await weft(['--debug', 'site', 'get', 'nowhere'], env);
    assert.equal(d.code, 4, 'not found exits 4');
    assert.match(d.err, /^error: site "nowhere" not found\n.*at /s);
    const off = await weft(['site', 'list'], { WEFT_API: 'http://127.0.0.1:1', WEFT_TOKEN: TOKEN });
    assert.equal(off.code, 3);
    assert.match(off.err, /^error: cannot reach the API at http:\/\/127.0.0.1:1/);
    const usage = await weft(['site', 'frobnicate'], env);
    assert.equal(usage.code, 2, 'an unknown command is a usage error');
    assert.match(usage.err, /^error: unknown command 'frobnicate'/);
    const badOpt = await weft(['site', 'list', '--no-such-flag'], env);
    assert.equal(badOpt.code, 2, 'an unknown option is a usage error');
    const help = await weft(['--help'], env);
    assert.equal(help.code, 0, help.err);
    assert.match(help.out, /Exit codes:\n {2}0 {2}success\n {2}1 .*\n {2}2 {2}usage error.*\n {2}3 {2}the API is unreachable\n {2}4 {2}not found/);
    const version = await weft(['--version'], env);
    assert.equal(version.code, 0, version.err);
    const noauth = await weft(['site', 'list'], { WEFT_API: server.url, WEFT_TOKEN: '' });
    assert.match(noauth.err, /^error: missing bearer token/);
  });

  test('host create|update --svp-client, --svp-client-address (repeatable, comma lists), --no-svp-client-addresses', async () => {
    type H = { svpClient: boolean; svpClientAddresses: string[] };
    const json = async (args: string[]) => {
      const r = await weft(['-o', 'json', ...args], env);
      assert.equal(r.code, 0, r.err);
      return JSON.parse(r.out) as H;
    };
    const args = ['host', 'create', 'hv-svp', '--site', 'ams1', '--svp-client', '--svp-client-address', '198.51.100.7,2001:DB8::7'];
    const made = await json([...args, '--svp-client-address', '198.51.100.8']);
    assert.deepEqual([made.svpClient, made.svpClientAddresses], [true, ['198.51.100.7', '2001:db8::7', '198.51.100.8']]);
    const off = await json(['host', 'update', 'hv-svp', '--no-svp-client']);
    assert.deepEqual([off.svpClient, off.svpClientAddresses], [false, ['198.51.100.7', '2001:db8::7', '198.51.100.8']], 'the list stays');
    const other = await json(['host', 'update', 'hv-svp', '--svp-client', '--svp-client-address', '10.0.0.9']);
    assert.deepEqual([other.svpClient, other.svpClientAddresses], [true, ['10.0.0.9']], 'the list is replaced');
    const none = await json(['host', 'update', 'hv-svp', '--no-svp-client-addresses']);
    assert.deepEqual([none.svpClient, none.svpClientAddresses], [true, []]);
    const plain = await json(['host', 'create', 'hv-nosvp', '--site', 'ams1']);
    assert.deepEqual([plain.svpClient, plain.svpClientAddresses], [false, []]);
    const bad = await weft(['host', 'update', 'hv-svp', '--svp-client-address', '10.0.0.1,10.0.0.x'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^error: invalid --svp-client-address \(the 2nd\) "10\.0\.0\.x": must be an IPv4 or IPv6 address/);
  });

  test('errors name the flag typed; unknown filter values are errors; tokens, ports and peers by name, MAC and neighbor', async () => {
    const run = async (args: string[], code: number, err?: RegExp) => {
      const r = await weft(args, env);
      assert.equal(r.code, code, `weft ${args.join(' ')}: ${r.err}`);
      if (err) assert.match(r.err, err);
      return r.out;
    };
    await run(
      ['host', 'create', 'hv-bad', '--site', 'ams1', '--underlay-ip', 'bogus'],
      1,
      /^error: invalid --underlay-ip "bogus": must be an IPv4 or IPv6 address\n$/,
    );
    await run(['host', 'create', 'hv-bad', '--site', 'ams1', '--memory-mb', '0'], 1, /^error: invalid --memory-mb 0: /);
    await run(
      ['instance', 'create', 'vm-bad', '--tenant', 'acme', '--site', 'ams1', '--net', 'priv', '--net', 'priv,mac=zz'],
      1,
      /^error: invalid --net \(the 2nd\) mac "zz": /,
    );
    assert.equal((await weft(['-o', 'json', 'host', 'list', '--name', 'hv-bad'], env)).out.trim(), '[]', 'nothing partial was written');
    // Filters: a value outside the set is a usage error before any request; a name of nothing is "not found".
    await run(['host', 'list', '--state', 'bogus'], 2, /argument 'bogus' is invalid\. Allowed choices are active, draining, down/);
    await run(['instance', 'list', '--state', 'bogus'], 2, /Allowed choices are /);
    await run(['network', 'list', '--kind', 'bogus'], 2, /Allowed choices are overlay, routed/);
    await run(['token', 'list', '--role', 'bogus'], 2, /Allowed choices are admin, tenant, readonly, agent/);
    await run(['instance', 'list', '--tenant', 'nosuch'], 4, /^error: tenant "nosuch" not found \(--tenant\)\n$/);
    await run(['host', 'list', '--site', 'nosuch'], 4, /^error: site "nosuch" not found \(--site\)\n$/);
    await run(['port', 'list', '--mac', 'zz'], 1, /^error: invalid --mac "zz": must be a MAC address/);
    // Ports by MAC, any spelling; the interface a hypervisor creates comes with it.
    const vm = JSON.parse(
      await run(['-o', 'json', 'instance', 'create', 'vm-mac', '--tenant', 'acme', '--site', 'ams1', '--net', 'priv,mac=02:aa:00:00:00:07'], 0),
    ) as {
      ports: { id: string }[];
    };
    const portId = vm.ports[0]?.id as string;
    for (const mac of ['02:aa:00:00:00:07', '02:AA:00:00:00:07', '02-aa-00-00-00-07'])
      assert.equal((JSON.parse(await run(['-o', 'json', 'port', 'get', mac], 0)) as { id: string }).id, portId);
    assert.equal(
      (JSON.parse(await run(['-o', 'json', 'port', 'update', '02:aa:00:00:00:07', '--ipv4', '10.0.0.77'], 0)) as { ipv4: string }).ipv4,
      '10.0.0.77',
    );
    await run(['port', 'get', '02:aa:00:00:00:08'], 4, /^error: port "02:aa:00:00:00:08" not found/);
    // Another tenant's port is not found by its MAC either.
    await run(['tenant', 'create', 'other'], 0);
    const other = JSON.parse(await run(['-o', 'json', 'token', 'create', '--role', 'tenant', '--tenant', 'other'], 0)) as { secret: string };
    const theirs = await weft(['port', 'get', '02:aa:00:00:00:07'], { ...env, WEFT_TOKEN: other.secret });
    assert.equal(theirs.code, 4, theirs.err);
    assert.match(theirs.err, /^error: port "02:aa:00:00:00:07" not found/);
    // Filtering by another tenant reads as filtering by none: nothing is learnt about it.
    const filter = await weft(['instance', 'list', '--tenant', 'acme'], { ...env, WEFT_TOKEN: other.secret });
    assert.equal(filter.code, 4, filter.err);
    assert.equal(filter.err, 'error: tenant "acme" not found (--tenant)\n');
    await run(['port', 'delete', '02:aa:00:00:00:07'], 0);
    await run(['instance', 'delete', 'vm-mac'], 0);
    // Tokens by name: one token with the name is found; two need the id.
    await run(['token', 'create', '--role', 'readonly', '--name', 'ro-one'], 0);
    await run(['token', 'create', '--role', 'readonly', '--name', 'ro-twice'], 0);
    await run(['token', 'create', '--role', 'readonly', '--name', 'ro-twice'], 0);
    assert.equal((JSON.parse(await run(['-o', 'json', 'token', 'get', 'ro-one'], 0)) as { name: string }).name, 'ro-one');
    await run(['token', 'delete', 'ro-twice'], 1, /^error: token name "ro-twice" is used by 2 tokens: give the token's id/);
    await run(['token', 'delete', 'ro-one'], 0);
    await run(['token', 'get', 'ro-one'], 4, /^error: token "ro-one" not found/);
    // Peers by neighbor address: unique is found, shared needs the id.
    await run(['host', 'update', 'hv1', '--asn', '65001'], 0);
    await run(['host', 'create', 'hv-peer', '--site', 'ams1', '--asn', '65002'], 0);
    await run(['peer', 'create', '--host', 'hv1', '--neighbor', '192.0.2.253', '--remote-asn', '65100'], 0);
    await run(['peer', 'create', '--host', 'hv1', '--neighbor', '2001:db8::fe', '--remote-asn', '65100'], 0);
    await run(['peer', 'create', '--host', 'hv-peer', '--neighbor', '2001:db8::fe', '--remote-asn', '65100'], 0);
    assert.equal((JSON.parse(await run(['-o', 'json', 'peer', 'get', '192.0.2.253'], 0)) as { remoteAsn: number }).remoteAsn, 65100);
    assert.equal(
      (JSON.parse(await run(['-o', 'json', 'peer', 'update', '192.0.2.253', '--remote-asn', '65200'], 0)) as { remoteAsn: number }).remoteAsn,
      65200,
    );
    await run(['peer', 'get', '2001:DB8:0::FE'], 1, /^error: neighbor "2001:DB8:0::FE" has 2 peers \(one per host or rack\): give the peer's id/);
    await run(['peer', 'delete', '192.0.2.253'], 0);
    await run(['peer', 'get', '192.0.2.253'], 4, /not found/);
  });

  test('token create --db bootstraps straight into the store, and the token works', async () => {
    const r = await weft(['token', 'create', '--role', 'readonly', '--name', 'boot', '--db', db.url]);
    assert.equal(r.code, 0, r.err);
    const secret = r.out.trim();
    assert.match(secret, /^weft_[A-Za-z0-9_-]{43}$/);
    const sites = await weft(['-o', 'json', 'site', 'list'], { WEFT_API: server.url, WEFT_TOKEN: secret });
    assert.equal(sites.code, 0, sites.err);
    assert.equal((JSON.parse(sites.out) as unknown[]).length, 1);
    const denied = await weft(['tenant', 'create', 'x'], { WEFT_API: server.url, WEFT_TOKEN: secret });
    assert.match(denied.err, /^error: a readonly token may not POST/);
  });

  test('weft server --api HOST:PORT listens there, as the issue spells it', async () => {
    const port = await freePort();
    const db2 = await testDb('sqlite');
    const proc = spawn(WEFT_BIN, ['server', '--db', db2.url, '--api', `127.0.0.1:${port}`, '--svp', 'off', '--stream', 'off', '--log-level', 'warn'], {
      env: { ...process.env, WEFT_ADMIN_TOKEN: TOKEN },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let err = '';
        proc.stderr.on('data', (d) => {
          err += d;
          if (err.includes('API http')) resolve(err);
        });
        proc.once('exit', (c) => reject(new Error(`exited ${c}: ${err}`)));
      });
      assert.match(line, new RegExp(`API http://127.0.0.1:${port}`));
      const h = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { status: string };
      assert.equal(h.status, 'ok');
    } finally {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await gone;
      await db2.drop();
    }
  });

  test('weft server takes the tenant rate maximum and default quotas (flags and env); tenant update sets quotas, tenant get shows them', async () => {
    const bad = await weft(['server', '--max-tenant-arp-rate', '0'], env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /--max-tenant-arp-rate must be an integer 1\.\.100000/);
    const db2 = await testDb('sqlite');
    process.env.WEFT_DEFAULT_QUOTA_VIPS = '3';
    const s2 = await startServerProcess({
      db: db2.url,
      adminToken: TOKEN,
      args: ['--log-level', 'warn', '--max-tenant-arp-rate', '30', '--default-quota-public-ipv4', '1'],
    }).finally(() => delete process.env.WEFT_DEFAULT_QUOTA_VIPS);
    try {
      const e2 = { WEFT_API: s2.url, WEFT_TOKEN: TOKEN };
      assert.equal((await weft(['tenant', 'create', 'acme'], e2)).code, 0);
      const u = await weft(['tenant', 'update', 'acme', '--quota-instances', '5', '--quota-ports', '7'], e2);
      assert.equal(u.code, 0, u.err);
      const g = await weft(['tenant', 'get', 'acme'], e2);
      assert.match(g.out.split('\n')[0] ?? '', /^NAME\s+QUOTAS$/);
      assert.match(g.out, /instances 0\/5\*, ports 0\/7\*, networks 0\/50, publicIpv4 0\/1, vips 0\/3$/m);
      const d = await weft(['-o', 'json', 'tenant', 'update', 'acme', '--quota-ports', 'default'], e2);
      assert.equal(d.code, 0, d.err);
      const back = JSON.parse(d.out) as { quotas: { instances: number | null; ports: number | null }; limits: { ports: number } };
      assert.deepEqual([back.quotas.instances, back.quotas.ports, back.limits.ports], [5, null, 500]);
      assert.match((await weft(['tenant', 'list'], e2)).out, /acme\s+instances 5$/m);
      assert.notEqual((await weft(['tenant', 'update', 'acme', '--quota-vips', 'lots'], e2)).code, 0);
      const t = JSON.parse((await weft(['-o', 'json', 'token', 'create', '--role', 'tenant', '--tenant', 'acme'], e2)).out) as { secret: string };
      const et = { WEFT_API: s2.url, WEFT_TOKEN: t.secret };
      const loud = await weft(['network', 'create', 'loud', '--subnet', '10.0.0.0/24', '--arp-rate', '31'], et);
      assert.notEqual(loud.code, 0);
      assert.match(loud.err, /error: invalid --arp-rate 31: must be 1\.\.30 packets\/s for a tenant/);
      assert.equal((await weft(['network', 'create', 'ok', '--subnet', '10.0.0.0/24', '--arp-rate', '30'], et)).code, 0);
      const mine = await weft(['tenant', 'update', 'acme', '--quota-instances', '100'], et);
      assert.notEqual(mine.code, 0);
      assert.match(mine.err, /error: a tenant token may not PATCH/);
    } finally {
      await s2.stop();
      await db2.drop();
    }
  });

  test('weft seed builds the example cloud and is idempotent', async () => {
    const db2 = await testDb('sqlite');
    const s2 = await startServerProcess({ db: db2.url, adminToken: TOKEN });
    try {
      const e2 = { WEFT_API: s2.url, WEFT_TOKEN: TOKEN };
      assert.equal((await weft(['seed'], e2)).code, 0);
      const again = await weft(['seed'], e2);
      assert.equal(again.code, 0, again.err);
      assert.equal(again.err, '', 'nothing created the second time');
      const inst = JSON.parse((await weft(['-o', 'json', 'instance', 'list'], e2)).out) as unknown[];
      assert.equal(inst.length, 6);
    } finally {
      await s2.stop();
      await db2.drop();
    }
  });
});
