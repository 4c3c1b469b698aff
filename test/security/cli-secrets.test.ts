// The real `bin/weft` never prints a secret: with recognisable secrets in
// every variable it reads (WEFT_TOKEN, WEFT_AGENT_TOKEN, WEFT_ADMIN_TOKEN, a
// password in WEFT_DB and WEFT_API), the help of every command, usage errors
// and API errors show none of them, and the token is still used.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { type ServerProcess, startServerProcess, WEFT_BIN } from '../../src/lab/server-process.js';
import { type TestDb, testDb } from '../support/stores.js';

/** The admin token of the server: WEFT_TOKEN in the tests, so it must work and never show. */
const TOKEN = 'weft-canary-token-Q7v9Xk2pL4';
const SECRETS = {
  WEFT_AGENT_TOKEN: 'weft-canary-agent-Z3m8Rt6wY1',
  WEFT_ADMIN_TOKEN: 'weft-canary-admin-H5n2Jd9cV0',
  WEFT_DB: 'postgres://weft:weft-canary-dbpass-B4x7@127.0.0.1:1/weft',
};
const CANARY = /weft-canary|Q7v9Xk2pL4|Z3m8Rt6wY1|H5n2Jd9cV0|B4x7/;

interface Run {
  code: number;
  out: string;
  err: string;
}

function weft(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(WEFT_BIN, args, { env: { ...process.env, ...env }, timeout: 30_000 }, (e, out, err) =>
      resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }),
    );
  });
}

function assertNoSecret(r: Run, what: string): void {
  assert.doesNotMatch(r.out, CANARY, `${what}: stdout shows a secret:\n${r.out}`);
  assert.doesNotMatch(r.err, CANARY, `${what}: stderr shows a secret:\n${r.err}`);
}

/** The subcommands a help text lists (`help` excepted). */
function subcommands(help: string): string[] {
  const i = help.indexOf('\nCommands:\n');
  if (i < 0) return [];
  const names: string[] = [];
  for (const line of help.slice(i + 11).split('\n')) {
    const m = /^ {2}([a-z][a-z0-9-]*)/.exec(line);
    if (m && m[1] !== 'help') names.push(m[1] as string);
  }
  return names;
}

describe('security: the CLI never prints a secret', () => {
  let db: TestDb;
  let server: ServerProcess;
  let env: Record<string, string>;
  before(async () => {
    db = await testDb('sqlite');
    server = await startServerProcess({ db: db.url, adminToken: TOKEN });
    env = { ...SECRETS, WEFT_API: server.url, WEFT_TOKEN: TOKEN, WEFT_SERVER: '192.0.2.1', WEFT_HOST: 'hv1' };
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  test('the token is still read from WEFT_TOKEN, and --token still overrides it', async () => {
    const ok = await weft(['site', 'list'], env);
    assert.equal(ok.code, 0, ok.err);
    assertNoSecret(ok, 'site list');
    const bad = await weft(['site', 'list'], { ...env, WEFT_TOKEN: 'weft-canary-unknown-token' });
    assert.match(bad.err, /^error: unknown or revoked token\n$/);
    assertNoSecret(bad, 'an unknown WEFT_TOKEN');
    const flag = await weft(['--token', TOKEN, 'site', 'list'], { ...env, WEFT_TOKEN: 'weft-canary-unknown-token' });
    assert.equal(flag.code, 0, flag.err);
  });

  test('help says (env: WEFT_TOKEN) and shows no value from the environment, for every command', async () => {
    const top = await weft(['--help'], env);
    assert.equal(top.code, 0);
    const flat = (t: string) => t.replace(/\s+/g, ' ');
    assert.match(flat(top.out), /--token <token> API bearer token .*\(env: WEFT_TOKEN\) --token-file <file> .*\(env: WEFT_TOKEN_FILE\)/);
    assert.match(flat(top.out), /\(default: "http:\/\/127\.0\.0\.1:8080", env:\s+WEFT_API\)/, 'the built-in default, not the environment');
    const seen: string[] = [];
    const queue: string[][] = [[]];
    while (queue.length > 0) {
      const batch = queue.splice(0, 4);
      const runs = await Promise.all(batch.map((path) => weft([...path, '--help'], env)));
      for (const [k, r] of runs.entries()) {
        const path = batch[k] as string[];
        assert.equal(r.code, 0, `weft ${path.join(' ')} --help: ${r.err}`);
        assertNoSecret(r, `weft ${path.join(' ')} --help`);
        assert.doesNotMatch(r.out, new RegExp(server.url.replace(/[.:/]/g, '\\$&')), 'no WEFT_API value in help');
        seen.push(path.join(' '));
        for (const sub of subcommands(r.out)) queue.push([...path, sub]);
      }
    }
    // The walk reached the commands that read secrets, and every entity's subcommands.
    for (const c of ['server', 'agent', 'token create', 'host create', 'lab up', 'instance migrate']) assert.ok(seen.includes(c), `${c} in ${seen.join(', ')}`);
    assert.ok(seen.length > 50, `${seen.length} commands`);
    for (const args of [['help'], ['help', 'server'], ['help', 'agent'], ['lab', 'daemon', '--help']]) assertNoSecret(await weft(args, env), args.join(' '));
    const agent = await weft(['agent', '--help'], env);
    assert.match(flat(agent.out), /\(env: WEFT_SERVER\)/);
    assert.match(agent.out, /WEFT_AGENT_TOKEN/);
    const srv = await weft(['server', '--help'], env);
    assert.match(flat(srv.out), /\(default: "sqlite:weft\.db", env:\s+WEFT_DB\)/);
  });

  test('a usage error prints the error and a hint, not the help', async () => {
    const cases: [string[], RegExp][] = [
      [['--bogus'], /^error: unknown option '--bogus'\n\(see weft --help\)\n$/],
      [['nosuchcommand'], /^error: unknown command 'nosuchcommand'\n\(see weft --help\)\n$/],
      [['site', 'get'], /^error: missing required argument 'ref'\n\(see weft site get --help\)\n$/],
      [['host', 'create', 'hv9'], /^error: required option '--site <site>' not specified\n\(see weft host create --help\)\n$/],
      [['-o', 'xml', 'site', 'list'], /^error: option .*--output.* argument 'xml' is invalid.*\n\(see weft --help\)\n$/],
      [['site', 'get', 'a', 'b'], /^error: too many arguments for 'get'.*\n\(see weft site get --help\)\n$/],
      [['token', 'create'], /^error: required option '--role <role>' not specified\n\(see weft token create --help\)\n$/],
      [['agent', '--stream-port', 'x'], /^error: option .*--stream-port.* argument 'x' is invalid.*\n\(see weft agent --help\)\n$/],
      [['server', '--cpu-overcommit', '0'], /\(see weft server --help\)\n$/],
      [['lab', 'up', '--sites', 'x'], /\(see weft lab up --help\)\n$/],
      [['--token'], /^error: option '--token <token>' argument missing\n\(see weft --help\)\n$/],
    ];
    const runs = await Promise.all(cases.map(([args]) => weft(args, env)));
    for (const [k, r] of runs.entries()) {
      const [args, want] = cases[k] as [string[], RegExp];
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.err, want, `weft ${args.join(' ')}`);
      assert.doesNotMatch(r.err, /Usage:|Options:/, `weft ${args.join(' ')} prints no help`);
      assert.equal(r.out, '');
      assertNoSecret(r, `weft ${args.join(' ')}`);
    }
    // Without WEFT_SERVER, the agent's mandatory option is a usage error too.
    const { WEFT_SERVER: _, ...noServer } = env;
    const a = await weft(['agent'], noServer);
    assert.match(a.err, /\(see weft agent --help\)\n$/);
    assertNoSecret(a, 'weft agent without --server');
  });

  test('API errors, connection errors and --debug stacks show no secret', async () => {
    const runs: [string, Promise<Run>][] = [
      ['not found', weft(['site', 'get', 'nowhere'], env)],
      ['not found --debug', weft(['--debug', 'site', 'get', 'nowhere'], env)],
      ['bad input', weft(['network', 'create', 'n', '--tenant', 'acme', '--subnet', '10.0.0.0/33'], env)],
      ['unreachable', weft(['site', 'list'], { ...env, WEFT_API: 'http://127.0.0.1:9' })],
      ['unreachable --debug', weft(['--debug', 'site', 'list'], { ...env, WEFT_API: 'http://127.0.0.1:9' })],
      // fetch's own message for a bad header quotes the header: the token is refused before it is sent.
      ['token with a line break', weft(['site', 'list'], { ...env, WEFT_TOKEN: `${TOKEN}\r\n` })],
      ['token with a space', weft(['--debug', 'site', 'list'], { ...env, WEFT_TOKEN: `${TOKEN} x` })],
      // fetch refuses a URL with credentials, and its message quotes the URL.
      ['password in WEFT_API', weft(['site', 'list'], { ...env, WEFT_API: `http://weft:weft-canary-urlpass@127.0.0.1:${new URL(server.url).port}` })],
      ['server on an unreachable store', weft(['server', '--api-listen', '127.0.0.1:0', '--svp', 'off', '--stream', 'off'], env)],
      ['agent token file missing', weft(['agent', '--token-file', '/nonexistent/weft-token'], env)],
    ];
    for (const [what, p] of runs) {
      const r = await p;
      assert.notEqual(r.code, 0, `${what}: ${r.out}`);
      assert.match(r.err, /^error: /, what);
      assertNoSecret(r, what);
    }
  });
});
