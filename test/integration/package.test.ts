// `bash scripts/package.sh` builds the Debian package, and the package is
// what an operator installs: its control fields (the Node.js major its
// native module was built for), its files (the build, production
// node_modules only, /usr/bin/weft, the units, the env files as conffiles),
// units that systemd accepts and that are hardened, and, unpacked into a
// scratch root with dpkg -x, a weft that runs: --version, and a server on
// SQLite answering /healthz (so better-sqlite3 loads from the package).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { program } from '../../src/cli/main.js';

const root = join(import.meta.dirname, '../..');
const pkgJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

function need(tool: string, why: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`]);
  assert.equal(r.status, 0, `${tool} is not installed: it is needed to ${why} (apt-get install ${tool === 'systemd-analyze' ? 'systemd' : 'dpkg'})`);
}

function sh(cmd: string, args: string[], opts: { timeout?: number } = {}): { out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeout ?? 60_000, maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}${r.error ?? ''}`);
  return { out: r.stdout, err: r.stderr };
}

/** A unit file's `Key=value` lines by section; a key may repeat. */
function unit(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const line of text.split('\n')) {
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) section = s[1] as string;
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (kv) keys.set(`${section}.${kv[1]}`, [...(keys.get(`${section}.${kv[1]}`) ?? []), kv[2] as string]);
  }
  return keys;
}
const one = (u: Map<string, string[]>, key: string) => u.get(key)?.join(' ');

describe('the Debian package', { timeout: 300_000 }, () => {
  let deb: string;
  let scratch: string;
  let files: string[];
  before(() => {
    need('dpkg-deb', 'build and unpack the package');
    need('systemd-analyze', 'check the units');
    // npm ci (registry) and, when this checkout's better-sqlite3 cannot be reused, a native build: minutes, not more.
    const r = spawnSync('bash', [join(root, 'scripts/package.sh')], { encoding: 'utf8', timeout: 240_000 });
    assert.equal(r.status, 0, `scripts/package.sh failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
    deb = r.stdout.trim().split('\n').at(-1) as string;
    assert.match(deb, new RegExp(`/dist/weft_${pkgJson.version.replace(/\./g, '\\.')}_[a-z0-9]+\\.deb$`));
    scratch = mkdtempSync(join(tmpdir(), 'weft-package-'));
    sh('dpkg-deb', ['-x', deb, join(scratch, 'root')]);
    files = sh('dpkg-deb', ['-c', deb]).out.trim().split('\n');
  });
  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('control: name, version, architecture, and the Node.js major its native module was built for', () => {
    const field = (f: string) => sh('dpkg-deb', ['-f', deb, f]).out.trim();
    assert.equal(field('Package'), 'weft');
    assert.equal(field('Version'), pkgJson.version);
    assert.equal(field('Architecture'), sh('dpkg', ['--print-architecture']).out.trim());
    const major = Number(process.versions.node.split('.')[0]);
    const depends = field('Depends');
    assert.match(depends, new RegExp(`nodejs \\(>= ${major}\\.\\d+\\), nodejs \\(<< ${major + 1}\\)`), depends);
    for (const d of ['adduser', 'iproute2', 'nftables', 'python3']) assert.match(depends, new RegExp(`\\b${d}\\b`));
    assert.match(field('Description'), new RegExp(`module ABI ${process.versions.modules}\\b`));
    assert.deepEqual(sh('dpkg-deb', ['-I', deb, 'conffiles']).out.trim().split('\n'), ['/etc/weft/server.env', '/etc/weft/agent.env']);
    const postinst = sh('dpkg-deb', ['-I', deb, 'postinst']).out;
    assert.match(postinst, /adduser --quiet --system --group --home \/var\/lib\/weft .* weft/);
    assert.match(postinst, /install -d -o weft -g weft -m 0750 \/var\/lib\/weft/);
    assert.match(postinst, /chown root:weft \/etc\/weft\/server\.env/);
  });

  test('files: the build, production node_modules with the native driver, /usr/bin/weft, units, env files; root-owned', () => {
    const names = files.map((l) => l.split(/\s+/).slice(5).join(' '));
    for (const want of [
      './usr/bin/weft -> ../lib/weft/bin/weft',
      './usr/lib/weft/bin/weft',
      './usr/lib/weft/package.json',
      './usr/lib/weft/dist/current/BUILT',
      './usr/lib/weft/dist/current/cli/main.js',
      './usr/lib/weft/dist/current/server/server.js',
      './usr/lib/weft/dist/current/agent/main.js',
      './usr/lib/weft/dist/current/web/index.html',
      './usr/lib/weft/node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      './usr/lib/weft/node_modules/fastify/package.json',
      './lib/systemd/system/weft-server.service',
      './lib/systemd/system/weft-agent.service',
      './etc/weft/server.env',
      './etc/weft/agent.env',
      './usr/share/doc/weft/install.md',
      './usr/share/bash-completion/completions/weft',
      './usr/share/zsh/vendor-completions/_weft',
      './usr/share/doc/weft/deploy.md',
    ])
      assert.ok(names.includes(want), `${want} is in the package`);
    // tsx, TypeScript, Biome and the type packages are development tools; none of weft's sources or tests.
    for (const bad of [
      /node_modules\/(tsx|typescript|esbuild|@biomejs|@types)\//,
      /^\.\/usr\/lib\/weft\/(?!node_modules\/).*\.ts$/,
      /^\.\/usr\/lib\/weft\/(src|test|scripts)\//,
      /\/pino\/test\//,
    ])
      assert.deepEqual(
        names.filter((n) => bad.test(n)),
        [],
        `nothing matching ${bad}`,
      );
    for (const l of files) assert.match(l, /^\S+ root\/root /, `owned by root: ${l}`);
    const mode = (name: string) => files.find((l) => l.endsWith(` ${name}`))?.split(' ')[0];
    assert.equal(mode('./etc/weft/server.env'), '-rw-r-----', 'server.env holds the admin token');
    assert.equal(mode('./etc/weft/agent.env'), '-rw-------');
  });

  test('weft --version runs from the unpacked package, without a checkout around it', () => {
    const r = sh(join(scratch, 'root/usr/bin/weft'), ['--version']);
    assert.equal(r.out.trim(), pkgJson.version);
    assert.equal(r.err, '', 'no rebuild, no warning');
  });

  test('the shell completion it ships is what its own CLI generates', () => {
    for (const [shell, path] of [
      ['bash', 'usr/share/bash-completion/completions/weft'],
      ['zsh', 'usr/share/zsh/vendor-completions/_weft'],
    ] as const) {
      const shipped = readFileSync(join(scratch, 'root', path), 'utf8');
      assert.equal(shipped, sh(join(scratch, 'root/usr/bin/weft'), ['completion', shell]).out, path);
      assert.match(shipped, /instance/);
    }
  });

  test('weft server from the unpacked package opens SQLite, answers /healthz and serves the console at /ui/', async () => {
    const proc = spawn(
      join(scratch, 'root/usr/bin/weft'),
      ['server', '--db', `sqlite:${join(scratch, 'weft.db')}`, '--api-listen', '127.0.0.1:0', '--svp', 'off', '--stream', 'off', '--log-level', 'warn'],
      { env: { ...process.env, WEFT_ADMIN_TOKEN: 'package-test-admin-token-0123' }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let err = '';
        const t = setTimeout(() => reject(new Error(`no start in 60 s: ${err}`)), 60_000);
        proc.stderr.on('data', (d) => {
          err += d;
          const m = /API (http:\/\/[\d.:]+)/.exec(err);
          if (m) {
            clearTimeout(t);
            resolve(m[1] as string);
          }
        });
        proc.once('exit', (c) => reject(new Error(`exited ${c}: ${err}`)));
      });
      const h = (await (await fetch(`${url}/healthz`)).json()) as { status: string };
      assert.equal(h.status, 'ok');
      // The web console, from the package's own build (no CDN, no dev dependency at run time).
      const ui = await fetch(`${url}/ui/`);
      assert.equal(ui.status, 200);
      assert.match(ui.headers.get('content-security-policy') ?? '', /default-src 'self'/);
      const js = /src="(app-[A-Z0-9]+\.js)"/.exec(await ui.text())?.[1];
      assert.ok(js, 'index.html names its script');
      assert.equal((await fetch(`${url}/ui/${js}`)).status, 200);
    } finally {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await gone;
    }
  });

  test('the units: what the issue asks of each', () => {
    const server = unit(readFileSync(join(scratch, 'root/lib/systemd/system/weft-server.service'), 'utf8'));
    assert.equal(one(server, 'Service.User'), 'weft');
    assert.equal(one(server, 'Service.StateDirectory'), 'weft');
    assert.equal(one(server, 'Service.EnvironmentFile'), '-/etc/weft/server.env');
    assert.equal(one(server, 'Service.ExecStart'), '/usr/bin/weft server');
    assert.equal(one(server, 'Service.Environment'), 'WEFT_DB=sqlite:/var/lib/weft/weft.db');
    assert.equal(one(server, 'Service.CapabilityBoundingSet'), '', 'the server needs no capability');
    const agent = unit(readFileSync(join(scratch, 'root/lib/systemd/system/weft-agent.service'), 'utf8'));
    assert.match(one(agent, 'Unit.After') ?? '', /\bbird\.service\b/);
    assert.match(one(agent, 'Unit.After') ?? '', /\bnetwork-online\.target\b/);
    assert.equal(one(agent, 'Service.Restart'), 'on-failure');
    assert.equal(one(agent, 'Service.EnvironmentFile'), '-/etc/weft/agent.env');
    assert.equal(one(agent, 'Service.ExecStart'), '/usr/bin/weft agent');
    assert.deepEqual((one(agent, 'Service.CapabilityBoundingSet') ?? '').split(' ').sort(), ['CAP_DAC_OVERRIDE', 'CAP_NET_ADMIN', 'CAP_NET_RAW']);
    for (const u of [server, agent]) {
      assert.equal(one(u, 'Service.NoNewPrivileges'), 'yes');
      assert.equal(one(u, 'Service.ProtectSystem'), 'strict');
      assert.equal(one(u, 'Service.ProtectHome'), 'yes');
      assert.equal(one(u, 'Service.PrivateTmp'), 'yes');
      assert.equal(one(u, 'Install.WantedBy'), 'multi-user.target');
    }
  });

  test('systemd-analyze verify accepts both units without a warning; security rates them', () => {
    // verify needs the binary a unit runs to exist: the same units, pointing into the scratch root.
    const dir = join(scratch, 'units');
    mkdirSync(dir);
    const paths = ['weft-server', 'weft-agent'].map((name) => {
      const text = readFileSync(join(scratch, `root/lib/systemd/system/${name}.service`), 'utf8');
      const p = join(dir, `${name}.service`);
      writeFileSync(p, text.replaceAll('/usr/bin/weft', join(scratch, 'root/usr/bin/weft')));
      return p;
    });
    const v = sh('systemd-analyze', ['verify', ...paths]);
    // verify exits 0 on unknown keys and bad values: any line it prints is a defect.
    assert.equal(v.err.trim(), '', `systemd-analyze verify: ${v.err}`);
    const exposure = (p: string) => {
      const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', p], { encoding: 'utf8' });
      const m = /Overall exposure level for [\w-]+\.service: ([\d.]+)/.exec(r.stdout);
      assert.ok(m, `systemd-analyze security ${p}: ${r.stdout}${r.stderr}`);
      return Number(m[1]);
    };
    // 0 is fully locked down, 10 is unprotected; "OK" is below 4.5 (systemd's own scale).
    const [server, agent] = paths.map(exposure) as [number, number];
    assert.ok(server <= 2.5, `weft-server.service exposure ${server}`);
    assert.ok(agent <= 4.5, `weft-agent.service exposure ${agent}`);
  });

  test("the env files name every flag's variable, each commented out (the defaults)", () => {
    for (const [name, file] of [
      ['server', 'server.env'],
      ['agent', 'agent.env'],
    ] as const) {
      const text = readFileSync(join(scratch, 'root/etc/weft', file), 'utf8');
      const cmd = program.commands.find((c) => c.name() === name);
      assert.ok(cmd);
      for (const o of cmd.options) assert.match(text, new RegExp(`^#${o.envVar}=`, 'm'), `${file} shows ${o.envVar} (${o.flags})`);
      assert.deepEqual(
        text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')),
        [],
        `${file} sets nothing`,
      );
    }
  });
});
