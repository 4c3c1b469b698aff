// `weft changes` against a real server process: newest first, --after
// ascending, and --follow seeing a change made with a named token appear,
// through a restart of the server (said on stderr), in table and JSON lines.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { ApiClient } from '../../src/cli/client.js';
import { type ServerProcess, startServerProcess, WEFT_BIN } from '../../src/lab/server-process.js';
import { until } from '../../src/sys/until.js';
import { type TestDb, testDb } from '../support/stores.js';

const TOKEN = 'cli-changes-admin-token-0123456789';
/** A generous bound for a row to appear on a busy machine (the follower polls twice a second). */
const APPEAR_MS = 20_000;

function weft(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(WEFT_BIN, args, { env: { ...process.env, ...env } }, (e, out, err) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }));
  });
}

/** `weft changes --follow ...` running, with everything it printed so far. */
function follow(
  args: string[],
  env: Record<string, string>,
  globalArgs: string[] = [],
): { proc: ChildProcess; out: () => string; err: () => string; exited: Promise<void> } {
  const proc = spawn(WEFT_BIN, [...globalArgs, 'changes', '--follow', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d) => {
    out += String(d);
  });
  proc.stderr?.on('data', (d) => {
    err += String(d);
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return { proc, out: () => out, err: () => err, exited };
}

/** Ends a follower, however the test went. */
async function stop(f: { proc: ChildProcess; exited: Promise<void> }): Promise<void> {
  if (f.proc.exitCode === null && f.proc.signalCode === null) f.proc.kill('SIGINT');
  await f.exited;
}

describe('weft changes', () => {
  let db: TestDb;
  let server: ServerProcess;
  let env: Record<string, string>;
  let bot: ApiClient;
  let botSecret: string;
  before(async () => {
    db = await testDb('sqlite');
    server = await startServerProcess({ db: db.url, adminToken: TOKEN });
    env = { WEFT_API: server.url, WEFT_TOKEN: TOKEN };
    const admin = new ApiClient(server.url, TOKEN);
    await admin.post('/v1/sites', { name: 'ams1', underlayPool: '192.0.2.0/24' });
    for (const h of ['hv1', 'hv2', 'hv3']) await admin.post('/v1/hosts', { name: h, site: 'ams1', capacity: { cpus: 8, memoryMb: 8192, diskGb: 100 } });
    await admin.post('/v1/tenants', { name: 'acme' });
    botSecret = (await admin.post<{ secret: string }>('/v1/tokens', { name: 'deploy-bot', role: 'admin' })).secret;
    bot = new ApiClient(server.url, botSecret);
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  test('prints newest first with VERSION, AT, KIND, OBJECT and ACTOR; --after V ascending; --limit', async () => {
    const r = await weft(['changes'], env);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n');
    assert.match(lines[0] ?? '', /^VERSION\s+AT\s+KIND\s+OBJECT\s+ACTOR$/);
    assert.deepEqual(
      lines.slice(1).map((l) => l.split(/\s+/).filter((_, i) => i !== 1)),
      [
        ['3', 'host.created', 'hv3', 'bootstrap-admin'],
        ['2', 'host.created', 'hv2', 'bootstrap-admin'],
        ['1', 'host.created', 'hv1', 'bootstrap-admin'],
      ],
    );
    const asc = await weft(['changes', '--after', '1', '--limit', '1'], env);
    assert.equal(asc.code, 0, asc.err);
    assert.match(asc.out.trim().split('\n')[1] ?? '', /^2\s+\S+\s+host\.created\s+hv2\s+bootstrap-admin$/);
    const json = await weft(['-o', 'json', 'changes', '--limit', '2'], env);
    const items = JSON.parse(json.out) as { version: number; object: { kind: string; name: string }; actor: { name: string } }[];
    assert.deepEqual(
      items.map((c) => [c.version, c.object.kind, c.object.name, c.actor.name]),
      [
        [3, 'host', 'hv3', 'bootstrap-admin'],
        [2, 'host', 'hv2', 'bootstrap-admin'],
      ],
    );
  });

  test('bad flag values are refused naming the flag', async () => {
    for (const [args, flag] of [
      [['--limit', '0'], '--limit'],
      [['--limit', '1001'], '--limit'],
      [['--after', '-1'], '--after'],
      [['--after', 'x'], '--after'],
    ] as const) {
      const r = await weft(['changes', ...args], env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, new RegExp(`${flag} must be an integer`), r.err);
    }
  });

  test('--follow shows a change made with a named token as it commits, and follows through a server restart', async (t) => {
    const f = follow([], env);
    try {
      await until('the newest page', () => /hv3\s+bootstrap-admin/.test(f.out()), APPEAR_MS);
      assert.match(f.out().split('\n')[0] ?? '', /^VERSION\s+AT\s+KIND\s+OBJECT\s+ACTOR$/);
      // Oldest of the page first, as tail -f: hv1 above hv3.
      assert.ok(f.out().indexOf('hv1') < f.out().indexOf('hv3'), f.out());
      const made = performance.now();
      await bot.post('/v1/networks', { tenant: 'acme', name: 'blue', kind: 'overlay', subnets: ['10.9.0.0/24'] });
      await until('the new row', () => /^4\s+\S+\s+network\.created\s+blue\s+deploy-bot$/m.test(f.out()), APPEAR_MS);
      t.diagnostic(`the row appeared ${Math.round(performance.now() - made)} ms after the write was sent`);

      // The server goes away and comes back on the same address: the follower says so and carries on.
      const port = new URL(server.url).port;
      await server.stop();
      await until('the loss said on stderr', () => f.err().includes('lost the API'), APPEAR_MS);
      assert.equal(f.proc.exitCode, null, 'the follower keeps running while the server is down');
      server = await startServerProcess({ db: db.url, adminToken: TOKEN, args: ['--api-listen', `127.0.0.1:${port}`, '--log-level', 'warn'] });
      bot = new ApiClient(server.url, botSecret);
      await bot.post('/v1/networks', { tenant: 'acme', name: 'green', kind: 'overlay', subnets: ['10.10.0.0/24'] });
      await until('the row after the restart', () => /^5\s+\S+\s+network\.created\s+green\s+deploy-bot$/m.test(f.out()), APPEAR_MS);
      assert.match(f.err(), /the API answers again after \d+ retries; following from version 4/);
      assert.equal(f.out().match(/network\.created\s+blue/g)?.length, 1, 'nothing printed twice');
    } finally {
      await stop(f);
    }
  });

  test('-o json --follow --after V prints JSON lines from V on, each with its actor and object', async () => {
    const f = follow(['--after', '3'], env, ['-o', 'json']);
    try {
      await until('versions 4 and 5', () => f.out().split('\n').length > 2, APPEAR_MS);
      await bot.delete('/v1/networks/blue');
      await until('version 6', () => f.out().split('\n').length > 3, APPEAR_MS);
      const lines = f.out().trim().split('\n');
      const items = lines.map((l) => JSON.parse(l) as { version: number; kind: string; object: { name: string | null }; actor: { name: string } | null });
      assert.deepEqual(
        items.map((c) => [c.version, c.kind, c.actor?.name]),
        [
          [4, 'network.created', 'deploy-bot'],
          [5, 'network.created', 'deploy-bot'],
          [6, 'network.deleted', 'deploy-bot'],
        ],
      );
      assert.equal(items[1]?.object.name, 'green');
    } finally {
      await stop(f);
    }
  });
});
