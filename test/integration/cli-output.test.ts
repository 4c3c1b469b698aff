// The CLI's output as an operator reads it, against a real server process:
// tables with names (a tenant token's too, falling back to ids it may not
// read), -o wide|json|yaml|name, --no-headers; and the completion scripts,
// run in a real bash and zsh.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { type ServerProcess, startServerProcess, WEFT_BIN } from '../../src/lab/server-process.js';
import { type TestDb, testDb } from '../support/stores.js';

const TOKEN = 'cli-output-test-admin-token-0123456789';

function weft(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(WEFT_BIN, args, { env: { ...process.env, ...env } }, (e, out, err) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }));
  });
}

describe('weft CLI output', () => {
  let db: TestDb;
  let server: ServerProcess;
  let admin: Record<string, string>;
  let tenant: Record<string, string>;
  const ok = async (args: string[], env = admin) => {
    const r = await weft(args, env);
    assert.equal(r.code, 0, `weft ${args.join(' ')}: ${r.err}`);
    assert.equal(r.err, '', `weft ${args.join(' ')} wrote to stderr`);
    return r.out;
  };

  before(async () => {
    db = await testDb('sqlite');
    server = await startServerProcess({ db: db.url, adminToken: TOKEN });
    admin = { WEFT_API: server.url, WEFT_TOKEN: TOKEN };
    await ok(['site', 'create', 'ams1', '--underlay-pool', '192.0.2.0/24']);
    await ok(['rack', 'create', 'r1', '--site', 'ams1']);
    await ok(['host', 'create', 'hv1', '--site', 'ams1', '--rack', 'r1', '--cpus', '8', '--memory-mb', '16384', '--disk-gb', '100']);
    await ok(['tenant', 'create', 'acme']);
    await ok(['network', 'create', 'priv', '--tenant', 'acme', '--subnet', '10.0.0.0/24', '--subnet', 'fd00::/64']);
    await ok(['instance', 'create', 'web1', '--tenant', 'acme', '--site', 'ams1', '--size', 'nano', '--net', 'priv,ipv4=10.0.0.9']);
    const t = JSON.parse(await ok(['-o', 'json', 'token', 'create', '--role', 'tenant', '--tenant', 'acme', '--name', 'acme-ci'])) as { secret: string };
    tenant = { WEFT_API: server.url, WEFT_TOKEN: t.secret };
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  test('tables name the tenant, host, site and rack; wide adds ids and detail', async () => {
    const inst = (await ok(['instance', 'list'])).split('\n');
    assert.match(inst[0] as string, /^NAME\s+TENANT\s+HOST\s+STATE\s+IPV4\s+IPV6$/);
    assert.match(inst[1] as string, /^web1\s+acme\s+hv1\s+running\s+10\.0\.0\.9\s+fd00::\S+$/);
    assert.match(await ok(['host', 'list']), /^hv1\s+ams1\s+r1\s+active\s+192\.0\.2\.1/m);
    assert.match(await ok(['network', 'get', 'priv']), /^priv\s+acme\s+overlay\s+\d+\s+10\.0\.0\.0\/24,fd00::\/64\s+\d+$/m);
    assert.match(await ok(['rack', 'list']), /^r1\s+ams1$/m);
    assert.match(await ok(['port', 'list']), /^02:\S+\s+10\.0\.0\.9\s+fd00::\S+\s+wp[0-9a-f]{12}\s+web1\s+priv$/m);
    assert.match(await ok(['token', 'list']), /^acme-ci\s+tenant\s+acme\s+-\s+/m);
    const id = (JSON.parse(await ok(['-o', 'json', 'instance', 'get', 'web1'])) as { id: string }).id;
    const wide = (await ok(['-o', 'wide', 'instance', 'list'])).split('\n');
    assert.match(wide[0] as string, /^ID\s+NAME\s+TENANT\s+HOST\s+STATE\s+IPV4\s+IPV6\s+SITE\s+SIZE\s+IMAGE\s+MACS$/);
    assert.match(wide[1] as string, new RegExp(`^${id}\\s+web1\\s+acme\\s+hv1\\s+running\\s+.*\\s+ams1\\s+1c/512M/\\d+G\\s+-\\s+02:`));
  });

  test('--no-headers: rows only, for table and wide', async () => {
    assert.match(await ok(['--no-headers', 'instance', 'list']), /^web1\s+acme\s+hv1\s+running\s+\S+\s+\S+\n$/);
    assert.match(await ok(['-o', 'wide', '--no-headers', 'host', 'list']), /^\S+\s+hv1\s+ams1\s+r1\s+active/);
  });

  test('json is exactly what the API returns; yaml the same data; name is kind/name', async () => {
    const api = (await (await fetch(`${server.url}/v1/instances`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { items: unknown[] };
    assert.deepEqual(JSON.parse(await ok(['-o', 'json', 'instance', 'list'])), api.items);
    assert.deepEqual(parseYaml(await ok(['-o', 'yaml', 'instance', 'list'])), api.items);
    assert.deepEqual(parseYaml(await ok(['-o', 'yaml', 'whoami'])), JSON.parse(await ok(['-o', 'json', 'whoami'])));
    assert.equal(await ok(['-o', 'name', 'instance', 'list']), 'instance/web1\n');
    assert.equal(await ok(['-o', 'name', 'site', 'list']), 'site/ams1\n');
    assert.match(await ok(['-o', 'name', 'port', 'list']), /^port\/02(:[0-9a-f]{2}){5}\n$/);
    const bad = await weft(['-o', 'xml', 'instance', 'list'], admin);
    assert.equal(bad.code, 2, 'a usage error');
    assert.match(bad.err, /error: option '-o, --output <format>' argument 'xml' is invalid\. Allowed choices are table, wide, json, yaml, name\./);
  });

  test('a tenant token: its own names, the ids of what it may not read, and no error', async () => {
    const hostId = (JSON.parse(await ok(['-o', 'json', 'host', 'get', 'hv1'])) as { id: string }).id;
    // A tenant may not list hosts: its table shows the host's id, as its JSON does.
    assert.notEqual((await weft(['host', 'list'], tenant)).code, 0, 'a tenant token may not list hosts');
    const rows = await ok(['instance', 'list'], tenant);
    assert.match(rows, new RegExp(`^web1\\s+acme\\s+${hostId}\\s+running`, 'm'));
    assert.match(await ok(['port', 'list'], tenant), /\s+web1\s+priv$/m);
    // Sites it may read: the wide row names the site.
    assert.match(await ok(['-o', 'wide', 'instance', 'list'], tenant), new RegExp(`\\s+web1\\s+acme\\s+${hostId}\\s+running\\s+.*\\s+ams1\\s+1c/`));
  });
});

describe('weft completion', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-completion-'));
  const script = (shell: string) => {
    const r = spawnSync(WEFT_BIN, ['completion', shell], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  // Each case: the words typed so far (the last is the one at the cursor) and what must (and must not) be offered.
  const cases: { words: string[]; want: string[]; not?: string[] }[] = [
    { words: ['weft', 'inst'], want: ['instance'], not: ['host'] },
    { words: ['weft', 'instance', 'l'], want: ['list'], not: ['get'] },
    { words: ['weft', '-o', ''], want: ['table', 'wide', 'json', 'yaml', 'name'] },
    { words: ['weft', '--api', 'http://x', 'instance', ''], want: ['list', 'get', 'create', 'delete', 'update', 'migrate'] },
    { words: ['weft', '-o', 'json', 'instance', 'list', '--st'], want: ['--state'] },
    { words: ['weft', 'instance', 'list', '--state', ''], want: ['running', 'stopped'] },
    { words: ['weft', 'lab', 'fail', ''], want: ['host', 'backend', 'link', 'server'] },
    { words: ['weft', 'completion', ''], want: ['bash', 'zsh'] },
    { words: ['weft', 'server', '--placement', ''], want: ['spread', 'pack'] },
  ];
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('bash: sourced, the completion function offers commands, subcommands, flags and their values', () => {
    const file = join(dir, 'weft.bash');
    writeFileSync(file, script('bash'));
    for (const c of cases) {
      const words = c.words.map((w) => `'${w}'`).join(' ');
      const r = spawnSync(
        'bash',
        ['--norc', '-c', `source ${file}; COMP_WORDS=(${words}); COMP_CWORD=${c.words.length - 1}; _weft_complete; printf '%s\\n' "\${COMPREPLY[@]}"`],
        { encoding: 'utf8' },
      );
      assert.equal(r.stderr, '', r.stderr);
      const got = r.stdout.split('\n').filter((x) => x);
      for (const w of c.want) assert.ok(got.includes(w), `${c.words.join(' ')}: ${w} offered, got ${got.join(' ')}`);
      for (const w of c.not ?? []) assert.ok(!got.includes(w), `${c.words.join(' ')}: ${w} not offered`);
    }
    // A flag's value that is not a fixed set completes as a file name.
    writeFileSync(join(dir, 'token-secret'), '');
    const f = spawnSync(
      'bash',
      ['--norc', '-c', `source ${file}; cd ${dir}; COMP_WORDS=(weft token create --output-file tok); COMP_CWORD=4; _weft_complete; echo "\${COMPREPLY[@]}"`],
      { encoding: 'utf8' },
    );
    assert.equal(f.stdout.trim(), 'token-secret');
  });

  test('zsh: autoloaded from $fpath by compinit, the function offers the same', () => {
    const fpath = join(dir, 'zsh');
    mkdirSync(fpath);
    writeFileSync(join(fpath, '_weft'), script('zsh'));
    // compinit finds _weft by its #compdef line; compadd and _files are stood in for to print what would be offered.
    const driver = (words: string[]) => `
      fpath=(${fpath} $fpath); autoload -Uz compinit; compinit -u -D
      [[ \${_comps[weft]} == _weft ]] || { print -u2 "compinit did not register _weft: \${_comps[weft]}"; exit 1; }
      compadd() { shift \${@[(i)--]}; print -rl -- "$@"; }
      _files() { print -r -- FILES; }
      words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}
      _weft`;
    for (const c of cases) {
      const r = spawnSync('zsh', ['-f', '-c', driver(c.words)], { encoding: 'utf8', env: { ...process.env, HOME: dir } });
      assert.equal(r.status, 0, r.stderr);
      // zsh filters by the prefix itself: the function offers every candidate at that position.
      const got = r.stdout.split('\n').filter((x) => x.startsWith(c.words.at(-1) as string));
      for (const w of c.want) assert.ok(got.includes(w), `${c.words.join(' ')}: ${w} offered, got ${got.join(' ')}`);
      for (const w of c.not ?? []) assert.ok(!got.includes(w), `${c.words.join(' ')}: ${w} not offered`);
    }
    const f = spawnSync('zsh', ['-f', '-c', driver(['weft', 'token', 'create', '--output-file', ''])], {
      encoding: 'utf8',
      env: { ...process.env, HOME: dir },
    });
    assert.equal(f.stdout.trim(), 'FILES', f.stderr);
  });

  test('an unknown shell is a usage error naming the choices', () => {
    const r = spawnSync(WEFT_BIN, ['completion', 'fish'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /value 'fish' is invalid for argument 'shell'\. Allowed choices are bash, zsh\./);
  });
});
